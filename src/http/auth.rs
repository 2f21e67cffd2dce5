//! The authenticated-caller extractors: SCIM (`scim` scope), the gate (`gate`)
//! and the admin API, whose routes admit the scopes `admin::access` lists.
//! Each admits the request to its tenant's share of the database
//! (`limiter`): the plain extractors take their slot at once;
//! the `…Upload` ones (handlers with a body) only once `ready` is called,
//! after the body is read, so a slow upload holds no slot.

use super::error::ApiError;
use super::limiter::{Admission, Kind, Limiter, Permit};
use super::{AppState, blocking};
use crate::auth::header::presented_token;
use crate::auth::{AuthError, Principal, Scope};
use crate::domain::Actor;
use crate::scim::error::ScimError;
use actix_web::dev::Payload;
use actix_web::http::Method;
use actix_web::http::header::AUTHORIZATION;
use actix_web::{FromRequest, HttpRequest, web};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// A caller holding a `scim`-scope token.
pub struct ScimCaller {
    pub principal: Principal,
    pub caller: Actor,
    _permit: Permit,
}

/// Authenticated and admitted, not yet holding a database slot.
pub struct Admitted {
    principal: Principal,
    admission: Admission,
    kind: Kind,
    state: web::Data<AppState>,
    /// The token's revocation was not read yet (no idle SQLite connection,
    /// or PostgreSQL): read once the slot is held, so it counts in the share.
    check_live: bool,
}

impl Admitted {
    fn tenant(&self) -> &str {
        &self.principal.tenant_id
    }

    /// The tenant's slot (waited for here, on the worker, without blocking
    /// it), then the revocation read if still due.
    async fn ready(self) -> Result<(Principal, Permit), ApiError> {
        let Admitted {
            principal,
            admission,
            kind,
            state,
            check_live,
        } = self;
        let deadline = std::time::Duration::from_millis(state.settings.request_deadline_ms);
        let permit = slot(&state, admission.acquire(kind), deadline).await?;
        if check_live {
            let st = state.clone();
            let p = principal.clone();
            blocking(move || Ok(st.verifier.still_live(&st.db, &p)?)).await?;
        }
        Ok((principal, permit))
    }
}

/// A slot within `deadline`: 429 when the tenant's queue is full, 503 past it.
pub(super) async fn slot(
    state: &AppState,
    acquire: impl Future<Output = Result<Permit, super::limiter::QueueFull>>,
    deadline: std::time::Duration,
) -> Result<Permit, ApiError> {
    match actix_web::rt::time::timeout(deadline, acquire).await {
        Ok(Ok(permit)) => Ok(permit),
        Ok(Err(_full)) => Err(ApiError::Overloaded {
            retry_after: state.settings.retry_after_seconds,
        }),
        Err(_elapsed) => Err(crate::store::StoreError::Deadline(
            "waited for this tenant's turn at the database past request_deadline_ms",
        )
        .into()),
    }
}

/// The lane a request runs in: reads (GET, HEAD, a `/.search`, a gate check)
/// or writes.
fn kind_of(req: &HttpRequest, allowed: &[Scope]) -> Kind {
    let m = req.method();
    if m == Method::GET
        || m == Method::HEAD
        || matches!(allowed, [Scope::Gate])
        || (m == Method::POST && req.path().ends_with("/.search"))
    {
        Kind::Read
    } else {
        Kind::Write
    }
}

/// Authenticates and admits the request: a cached token costs no database
/// read before its tenant's admission (so a tenant over its queue is refused
/// for the price of a hash lookup); an uncached one is verified (a database
/// read and argon2) in a slot of the budget shared by that token id's
/// verifications, so no tenant drives reads outside a share.
async fn authenticate(req: HttpRequest, allowed: &'static [Scope]) -> Result<Admitted, ApiError> {
    let token = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(presented_token)
        .ok_or(AuthError::Missing)?;
    authenticate_token(req, token, allowed).await
}

/// The console's sign-in: a token pasted into a form, verified and admitted
/// exactly as one presented in `Authorization` (same verifier, caches,
/// failure limits, held refusals and tenant shares); the slot is held
/// until the returned permit drops.
pub async fn sign_in(
    req: HttpRequest,
    token: String,
    allowed: &'static [Scope],
) -> Result<(Principal, Permit), ApiError> {
    authenticate_token(req, token, allowed).await?.ready().await
}

async fn authenticate_token(
    req: HttpRequest,
    token: String,
    allowed: &'static [Scope],
) -> Result<Admitted, ApiError> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or(ApiError::Blocking)?;
    let client = client_address(&req, state.settings.trust_forwarded_headers);
    let kind = kind_of(&req, allowed);
    let limiter: &Arc<Limiter> = if matches!(allowed, [Scope::Gate]) {
        &state.gate_limiter
    } else {
        &state.limiter
    };
    if let Some(cached) = state.verifier.cached(&token, allowed, client) {
        let principal = match cached {
            Ok(p) => p,
            Err(e) => return Err(refusal(&state, limiter, e).await),
        };
        let admission = admit(&state, limiter, &principal.tenant_id).await?;
        let check_live = match state.verifier.still_live_now(&state.db, &principal) {
            Some(live) => {
                live?;
                false
            }
            None => true,
        };
        return Ok(Admitted {
            principal,
            admission,
            kind,
            state,
            check_live,
        });
    }
    // Not cached: the token id is all we know before the database.
    let id = crate::auth::token::split(&token)
        .map(|(id, _)| id)
        .unwrap_or_default();
    let key = format!("token:{id}");
    let deadline = std::time::Duration::from_millis(state.settings.request_deadline_ms);
    // A full queue for this token id is refused like a tenant's: held first,
    // so random secrets sent at once on many connections cannot spin.
    let admission = admit(&state, limiter, &key).await?;
    let verifying = slot(&state, admission.acquire(Kind::Read), deadline).await?;
    let st = state.clone();
    let verified =
        blocking(move || Ok(st.verifier.verify_from(&st.db, &token, allowed, client))).await?;
    drop(verifying);
    let principal = match verified {
        Ok(p) => p,
        Err(e) => return Err(refusal(&state, limiter, e).await),
    };
    let admission = admit(&state, limiter, &principal.tenant_id).await?;
    Ok(Admitted {
        principal,
        admission,
        kind,
        state,
        check_live: false,
    })
}

/// The tenant's admission, or its 429 after `overload_delay_ms`.
pub(super) async fn admit(
    state: &AppState,
    limiter: &Arc<Limiter>,
    tenant: &str,
) -> Result<Admission, ApiError> {
    match limiter.admit(tenant) {
        Ok(admission) => Ok(admission),
        Err(_full) => {
            hold(state, limiter).await;
            Err(ApiError::Overloaded {
                retry_after: state.settings.retry_after_seconds,
            })
        }
    }
}

/// A verifier's refusal; the 429s (failures over their limit, argon2's queue
/// full) held first, like a tenant's.
async fn refusal(state: &AppState, limiter: &Arc<Limiter>, e: AuthError) -> ApiError {
    if matches!(e, AuthError::TooManyFailures { .. } | AuthError::Busy) {
        hold(state, limiter).await;
    }
    e.into()
}

/// Holds a refusal for `overload_delay_ms` (an async timer, no thread, no
/// slot) so a client retrying at once on many connections cannot spend the
/// CPU other tenants' answers need; at once when `MAX_HELD_REFUSALS` are
/// held already.
async fn hold(state: &AppState, limiter: &Arc<Limiter>) {
    let delay = std::time::Duration::from_millis(state.settings.overload_delay_ms);
    if !delay.is_zero()
        && let Some(_held) = limiter.hold_refusal()
    {
        actix_web::rt::time::sleep(delay).await;
    }
}

/// The caller's address for the verifier's per-address limits: the peer, or,
/// only with `trust_forwarded_headers`, the last `X-Forwarded-For` entry (the
/// one our own proxy appended; earlier entries are the client's to forge).
pub(crate) fn client_address(req: &HttpRequest, trust_forwarded: bool) -> Option<std::net::IpAddr> {
    if trust_forwarded
        && let Some(ip) = req
            .headers()
            // The last header line: a proxy that adds a line of its own leaves
            // the client's (forgeable) lines before it.
            .get_all("x-forwarded-for")
            .last()
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .and_then(|v| v.trim().parse().ok())
    {
        return Some(ip);
    }
    req.peer_addr().map(|a| a.ip())
}

/// A `scim` caller whose handler reads a body first: `ready` after reading it.
pub struct ScimUpload(Admitted);

impl ScimUpload {
    /// The caller's tenant, known before its body is read.
    pub fn tenant(&self) -> &str {
        self.0.tenant()
    }

    pub async fn ready(self) -> Result<ScimCaller, ApiError> {
        let (principal, permit) = self.0.ready().await?;
        Ok(ScimCaller {
            caller: caller_of(&principal),
            principal,
            _permit: permit,
        })
    }
}

impl FromRequest for ScimUpload {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { Ok(ScimUpload(authenticate(req, &[Scope::Scim]).await?)) })
    }
}

impl FromRequest for ScimCaller {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let (principal, permit) = authenticate(req, &[Scope::Scim]).await?.ready().await?;
            Ok(ScimCaller {
                caller: caller_of(&principal),
                principal,
                _permit: permit,
            })
        })
    }
}

fn caller_of(p: &Principal) -> Actor {
    Actor {
        tenant_id: p.tenant_id.clone(),
        tenant_name: p.tenant_name.clone(),
        actor: p.token_name.clone(),
        acts_as: p.acts_as.clone(),
        caller_user_id: None,
    }
}

macro_rules! scoped_caller {
    ($(#[$doc:meta])* $name:ident, $upload:ident, $scopes:path) => {
        $(#[$doc])*
        pub struct $name {
            pub caller: Actor,
            _permit: Permit,
        }

        /// The same caller, for a handler that reads a body first: `ready`
        /// (its database slot) after reading it.
        pub struct $upload(Admitted);

        impl $upload {
            /// The caller's tenant, known before its body is read.
            pub fn tenant(&self) -> &str {
                self.0.tenant()
            }

            pub async fn ready(self) -> Result<$name, ApiError> {
                let (principal, permit) = self.0.ready().await?;
                Ok($name { caller: caller_of(&principal), _permit: permit })
            }
        }

        impl FromRequest for $upload {
            type Error = ApiError;
            type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

            fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
                let req = req.clone();
                Box::pin(async move {
                    let scopes = $scopes(&req)?;
                    Ok($upload(authenticate(req, scopes).await?))
                })
            }
        }

        impl FromRequest for $name {
            type Error = ApiError;
            type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

            fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
                let req = req.clone();
                Box::pin(async move {
                    let scopes = $scopes(&req)?;
                    let (principal, permit) = authenticate(req, scopes).await?.ready().await?;
                    Ok($name { caller: caller_of(&principal), _permit: permit })
                })
            }
        }
    };
}

/// The scopes the matched `/admin/v1` route admits (`admin::access`). A route
/// missing from that table refuses every token: fail closed, and loudly.
fn route_scopes(req: &HttpRequest) -> Result<&'static [Scope], ApiError> {
    let pattern = req.match_pattern();
    match pattern
        .as_deref()
        .and_then(|p| super::admin::access::of(req.method(), p))
    {
        Some(access) => Ok(access.scopes()),
        None => {
            tracing::error!(route = ?pattern, method = %req.method(), "admin route missing from admin::access: refused");
            Err(ScimError::new(
                403,
                None,
                "no token scope may call this route: it is missing from the access table",
            )
            .into())
        }
    }
}

fn gate_scopes(_: &HttpRequest) -> Result<&'static [Scope], ApiError> {
    Ok(&[Scope::Gate])
}

scoped_caller!(
    /// A caller of the admin API, admitted by its route's class in
    /// `admin::access` (admin, ledger or auditor scope, as the route allows).
    AdminCaller,
    AdminUpload,
    route_scopes
);
scoped_caller!(
    /// A caller holding a `gate`-scope token.
    GateCaller,
    GateUpload,
    gate_scopes
);

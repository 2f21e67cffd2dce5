//! The authenticated-caller extractors: one per scope, so a handler's signature
//! says which token it accepts. Each also takes a per-tenant in-flight slot.

use super::error::ApiError;
use super::limiter::Permit;
use super::{AppState, blocking};
use crate::auth::header::presented_token;
use crate::auth::{AuthError, Principal, Scope};
use crate::provisioning::Caller;
use actix_web::dev::Payload;
use actix_web::http::header::AUTHORIZATION;
use actix_web::{FromRequest, HttpRequest, web};
use std::future::Future;
use std::pin::Pin;

/// A caller holding a `scim`-scope token.
pub struct ScimCaller {
    pub principal: Principal,
    pub caller: Caller,
    _permit: Permit,
}

async fn authenticate(
    req: HttpRequest,
    allowed: &'static [Scope],
) -> Result<(Principal, Permit), ApiError> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or(ApiError::Blocking)?;
    let token = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(presented_token)
        .ok_or(AuthError::Missing)?;
    let client = client_address(&req, state.settings.trust_forwarded_headers);
    let principal = match state
        .verifier
        .verify_cached(&state.db, &token, allowed, client)
    {
        Some(verified) => verified?,
        None => {
            let st = state.clone();
            blocking(move || {
                st.verifier
                    .verify_from(&st.db, &token, allowed, client)
                    .map_err(ApiError::from)
            })
            .await?
        }
    };
    // A slot of the tenant's share of the database (gate checks have a budget
    // of their own), waited for here, on the worker, without blocking it.
    let limiter = if matches!(allowed, [Scope::Gate]) {
        &state.gate_limiter
    } else {
        &state.limiter
    };
    let deadline = std::time::Duration::from_millis(state.settings.request_deadline_ms);
    let permit =
        match actix_web::rt::time::timeout(deadline, limiter.acquire(&principal.tenant_id)).await {
            Ok(Ok(permit)) => permit,
            Ok(Err(_full)) => {
                return Err(ApiError::Overloaded {
                    retry_after: state.settings.retry_after_seconds,
                });
            }
            Err(_elapsed) => {
                return Err(crate::store::StoreError::Deadline(
                    "waited for this tenant's turn at the database past request_deadline_ms",
                )
                .into());
            }
        };
    Ok((principal, permit))
}

/// The caller's address for the verifier's per-address limits: the peer, or,
/// only with `trust_forwarded_headers`, the last `X-Forwarded-For` entry (the
/// one our own proxy appended; earlier entries are the client's to forge).
fn client_address(req: &HttpRequest, trust_forwarded: bool) -> Option<std::net::IpAddr> {
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

impl FromRequest for ScimCaller {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let (principal, permit) = authenticate(req, &[Scope::Scim]).await?;
            let caller = Caller {
                tenant_id: principal.tenant_id.clone(),
                tenant_name: principal.tenant_name.clone(),
                actor: principal.token_name.clone(),
                acts_as: principal.acts_as.clone(),
            };
            Ok(ScimCaller {
                principal,
                caller,
                _permit: permit,
            })
        })
    }
}

fn caller_of(p: &Principal) -> Caller {
    Caller {
        tenant_id: p.tenant_id.clone(),
        tenant_name: p.tenant_name.clone(),
        actor: p.token_name.clone(),
        acts_as: p.acts_as.clone(),
    }
}

macro_rules! scoped_caller {
    ($(#[$doc:meta])* $name:ident, $scopes:expr) => {
        $(#[$doc])*
        pub struct $name {
            pub caller: Caller,
            _permit: Permit,
        }

        impl FromRequest for $name {
            type Error = ApiError;
            type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

            fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
                let req = req.clone();
                Box::pin(async move {
                    let (principal, permit) = authenticate(req, $scopes).await?;
                    Ok($name { caller: caller_of(&principal), _permit: permit })
                })
            }
        }
    };
}

scoped_caller!(
    /// A caller holding an `admin`-scope token.
    AdminCaller,
    &[Scope::Admin]
);
scoped_caller!(
    /// A caller allowed to write the content ledger: `ledger` or `admin` scope.
    LedgerCaller,
    &[Scope::Ledger, Scope::Admin]
);
scoped_caller!(
    /// A caller holding a `gate`-scope token.
    GateCaller,
    &[Scope::Gate]
);

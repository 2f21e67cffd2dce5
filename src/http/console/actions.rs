//! The console's POSTs: sign-in and sign-out, and the actions, each through
//! the admin API's own domain service (same audit trail), then 303 back to
//! the page with a flash message (post/redirect/get).

use super::pages::{self, load_person, person_body, tombstones_body};
use super::views;
use super::{
    COOKIE, SIGNIN_COOKIE, cookie, done, error_page, hash_id, html, post_session, random_hex,
    same_origin, same_secret, see_other, set_cookie,
};
use crate::auth::{AuthError, Scope};
use crate::deprovision::admin::ParentRef;
use crate::deprovision::commands::content::{self as content_cmd, Selection};
use crate::deprovision::commands::disposals as disposal_cmd;
use crate::deprovision::commands::tombstones as tombstone_cmd;
use crate::deprovision::commands::webhooks as webhook_cmd;
use crate::deprovision::service::Outcome;
use crate::deprovision::tombstone::IdType;
use crate::http::error::ApiError;
use crate::http::{AppState, blocking};
use crate::scim::error::ScimError;
use crate::service_error::ServiceError;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};

/// Most form values taken from one body (checkboxes included).
const MAX_FIELDS: usize = 200;

/// A form body's fields, in order.
struct Form(Vec<(String, String)>);

impl Form {
    fn parse(body: &[u8]) -> Form {
        let mut v: Vec<(String, String)> = serde_urlencoded::from_bytes(body).unwrap_or_default();
        v.truncate(MAX_FIELDS);
        Form(v)
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .collect()
    }
}

/// The session for an action POST, or the answer replacing it.
macro_rules! acting {
    ($req:expr, $state:expr, $form:expr) => {
        match post_session(&$req, &$state, $form.get("csrf"), true).await {
            Ok(c) => c,
            Err(r) => return r,
        }
    };
}

pub(super) async fn signin(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> HttpResponse {
    let form = Form::parse(&body);
    let fresh = random_hex();
    let again = |status: StatusCode, why: &str| {
        let mut r = html(status, pages::signin_page(&fresh, Some(why)));
        if let Ok(v) = HeaderValue::from_str(&set_cookie(&state, SIGNIN_COOKIE, &fresh, Some(600)))
        {
            r.headers_mut().append(header::SET_COOKIE, v);
        }
        r
    };
    let expected = cookie(&req, SIGNIN_COOKIE).unwrap_or_default();
    let presented = form.get("csrf").unwrap_or_default();
    if !same_origin(&req, &state) || expected.is_empty() || !same_secret(&expected, presented) {
        return again(
            StatusCode::FORBIDDEN,
            "The sign-in form expired or came from another site. Try again.",
        );
    }
    let token = form.get("token").unwrap_or_default().trim().to_string();
    if token.is_empty() {
        return again(StatusCode::UNAUTHORIZED, "Paste an admin token.");
    }
    let principal = match crate::http::auth::sign_in(
        req.clone(),
        token,
        &[Scope::Admin, Scope::Auditor],
    )
    .await
    {
        Ok((p, _permit)) => p,
        Err(ApiError::Auth(
            AuthError::Invalid | AuthError::WrongScope { .. } | AuthError::Missing,
        )) => {
            return again(
                StatusCode::UNAUTHORIZED,
                "Sign-in failed: the token is invalid, revoked, or not an admin or auditor token.",
            );
        }
        Err(e) => {
            let s = e.scim_error();
            let status = StatusCode::from_u16(s.status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            return again(status, &s.detail);
        }
    };
    let id = random_hex();
    let id_hash = hash_id(&id);
    let csrf = random_hex();
    let now = crate::store::time::format(super::now(&state));
    let st = state.clone();
    let p = principal.clone();
    let stored = blocking(move || {
        Ok(st.db.write(|c| {
            crate::store::console::insert(
                c,
                &crate::store::console::NewSession {
                    id_hash: &id_hash,
                    tenant_id: &p.tenant_id,
                    token_id: &p.token_id,
                    scope: p.scope.as_str(),
                    created_at: &now,
                    last_seen: &now,
                    csrf: &csrf,
                },
            )
        })?)
    })
    .await;
    if let Err(e) = stored {
        return error_page(&e, None);
    }
    tracing::info!(token_id = %principal.token_id, tenant = %principal.tenant_id, "console sign-in");
    let mut r = see_other("/console/");
    for c in [
        set_cookie(&state, COOKIE, &id, None),
        set_cookie(&state, SIGNIN_COOKIE, "", Some(0)),
    ] {
        if let Ok(v) = HeaderValue::from_str(&c) {
            r.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    r
}

pub(super) async fn signout(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> HttpResponse {
    let form = Form::parse(&body);
    let c = match post_session(&req, &state, form.get("csrf"), false).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let st = state.clone();
    let h = c.id_hash.clone();
    drop(c);
    if let Err(e) =
        blocking(move || Ok(st.db.write(|cn| crate::store::console::delete(cn, &h))?)).await
    {
        return error_page(&e, None);
    }
    super::to_signin(&state)
}

pub(super) async fn legal_hold(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    let form = Form::parse(&body);
    let c = acting!(req, state, form);
    let id = id.into_inner();
    let on = form.get("on") == Some("true");
    let st = state.clone();
    let (who, uid) = (c.caller.clone(), id.clone());
    let r = blocking(move || Ok(st.svc.deprov.set_legal_hold(&st.svc.db, &who, &uid, on)?)).await;
    match r {
        Ok(()) => done(
            &state,
            &format!("/console/people/{id}"),
            if on { "hold_placed" } else { "hold_lifted" },
        ),
        Err(e) => error_page(&e, Some(&c)),
    }
}

pub(super) async fn dispose(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    let form = Form::parse(&body);
    let c = acting!(req, state, form);
    let id = id.into_inner();
    let Some(hash) = form
        .get("plan_hash")
        .map(str::to_string)
        .filter(|h| !h.is_empty() && h != "*")
    else {
        let e: ApiError = ScimError::invalid_value("the form carries no plan hash").into();
        return error_page(&e, Some(&c));
    };
    let st = state.clone();
    let (who, uid) = (c.caller.clone(), id.clone());
    let out = blocking(move || {
        Ok(disposal_cmd::dispose(
            &st.svc.deprov,
            &st.svc.db,
            &who,
            &uid,
            Some(&hash),
        ))
    })
    .await;
    let location = format!("/console/people/{id}");
    match out {
        Ok(Ok(Outcome::Disposed(_))) => done(&state, &location, "disposed"),
        Ok(Ok(Outcome::Held { reason, .. })) => done(
            &state,
            &location,
            if reason == "legal_hold" {
                "held_legal"
            } else {
                "held_brake"
            },
        ),
        Ok(Err(ServiceError::PlanChanged(_))) => match load_person(&state, &c, &id).await {
            Ok(Some(v)) => {
                let name = views::person_name(&v.person.user_name, v.person.state);
                html(
                    StatusCode::CONFLICT,
                    views::page(
                        &name,
                        &name,
                        Some(&c),
                        None,
                        person_body(
                            &c,
                            &v,
                            Some(
                                "The plan changed since the page was shown: nothing was disposed. Review the new plan below and dispose again if it is right.",
                            ),
                        ),
                    ),
                )
            }
            Ok(None) => error_page(
                &ScimError::not_found(format!("no person with id {id}")).into(),
                Some(&c),
            ),
            Err(e) => error_page(&e, Some(&c)),
        },
        Ok(Err(e)) => error_page(&e.into(), Some(&c)),
        Err(e) => error_page(&e, Some(&c)),
    }
}

pub(super) async fn disposals(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> HttpResponse {
    let form = Form::parse(&body);
    let c = acting!(req, state, form);
    let st = state.clone();
    let who = c.caller.clone();
    match form.get("action") {
        Some("reset_brake") => {
            match blocking(move || Ok(st.svc.deprov.reset_brake(&st.svc.db, &who)?)).await {
                Ok(()) => done(&state, "/console/disposals", "brake_reset"),
                Err(e) => error_page(&e, Some(&c)),
            }
        }
        Some("release") => {
            let ids = form.all("id");
            if ids.is_empty() {
                return done(&state, "/console/disposals", "none");
            }
            // Each its own transaction, as the admin API's release; another
            // tenant's id is not found (404) and releases nothing.
            let r = blocking(move || {
                let mut released = 0u64;
                let mut failed = 0u64;
                let asked = ids.len().min(super::PAGE as usize) as u64;
                for id in ids.iter().take(super::PAGE as usize) {
                    match st.svc.deprov.release(&st.svc.db, &who, id) {
                        Ok(_) => released += 1,
                        Err(ServiceError::NoDisposal(d))
                            if released == 0 && failed == 0 && ids.len() == 1 =>
                        {
                            return Err(ServiceError::NoDisposal(d).into());
                        }
                        // Nothing released yet: the error page says so truly.
                        Err(ServiceError::Store(e)) if released == 0 => return Err(e.into()),
                        // Some are released (each its own transaction): say
                        // how many were not, rather than "nothing was written".
                        Err(ServiceError::Store(_)) => {
                            failed = asked - released;
                            break;
                        }
                        Err(_) => failed += 1,
                    }
                }
                Ok((released, failed))
            })
            .await;
            match r {
                Ok((n, 0)) => done(&state, "/console/disposals", &format!("released-{n}")),
                Ok((_, f)) => done(&state, "/console/disposals", &format!("releasefail-{f}")),
                Err(e) => error_page(&e, Some(&c)),
            }
        }
        _ => {
            let e: ApiError = ScimError::invalid_value("unknown action").into();
            error_page(&e, Some(&c))
        }
    }
}

pub(super) async fn reassign(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> HttpResponse {
    let form = Form::parse(&body);
    let c = acting!(req, state, form);
    let (Some(kind), Some(id), Some(owner)) = (
        form.get("kind").map(str::to_string),
        form.get("id").map(str::to_string),
        form.get("owner")
            .map(|o| o.trim().to_string())
            .filter(|o| !o.is_empty()),
    ) else {
        let e: ApiError = ScimError::invalid_value("name the item and its new owner").into();
        return error_page(&e, Some(&c));
    };
    let st = state.clone();
    let who = c.caller.clone();
    let r = blocking(move || {
        // A userName or an id: the visible person by id, else by userName.
        let tenant = who.tenant_id.clone();
        let to = st.db.read(|cn| {
            Ok::<_, crate::store::StoreError>(
                match crate::store::users::find(cn, &tenant, &owner)? {
                    Some(u) => Some(u.id),
                    None => crate::store::users::visible_id_by_name(
                        cn,
                        &tenant,
                        &crate::scim::fold::fold(&owner),
                    )?,
                },
            )
        })?;
        let Some(to) = to else {
            return Err(ScimError::not_found(
                "no active or suspended person with that userName or id",
            )
            .into());
        };
        let sel = Selection::Items(vec![ParentRef { kind, id }]);
        Ok(content_cmd::reassign(
            &st.svc.deprov,
            &st.svc.db,
            &who,
            &sel,
            &to,
        )?)
    })
    .await;
    let back = match form.get("filter") {
        Some(k) => format!(
            "/console/orphans?kind={}",
            percent_encoding::utf8_percent_encode(k, percent_encoding::NON_ALPHANUMERIC)
        ),
        None => "/console/orphans".to_string(),
    };
    match r {
        Ok(moved) => done(&state, &back, &format!("reassigned-{}", moved.items)),
        Err(e) => error_page(&e, Some(&c)),
    }
}

/// "Is this identifier tombstoned?": hashed here, answered on this page (200,
/// no redirect), never stored, logged or put in a URL. Auditors may check.
pub(super) async fn tombstone_check(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> HttpResponse {
    let form = Form::parse(&body);
    let c = match post_session(&req, &state, form.get("csrf"), false).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let value = form
        .get("identifier")
        .unwrap_or_default()
        .trim()
        .to_string();
    let kind = match form.get("kind").unwrap_or("userName") {
        "userName" => IdType::UserName,
        "email" => IdType::Email,
        "externalId" => IdType::ExternalId,
        "sso" => IdType::Sso,
        _ => {
            let e: ApiError = ScimError::invalid_value("unknown identifier type").into();
            return error_page(&e, Some(&c));
        }
    };
    if value.is_empty() || value.len() > 1024 {
        let e: ApiError =
            ScimError::invalid_value("type an identifier (at most 1024 characters)").into();
        return error_page(&e, Some(&c));
    }
    let value = if kind == IdType::Sso {
        match value.split_once(char::is_whitespace) {
            Some((iss, sub)) => crate::deprovision::tombstone::sso_value(iss.trim(), sub.trim()),
            None => {
                let e: ApiError = ScimError::invalid_value(
                    "an SSO subject is the issuer, a space, and the subject",
                )
                .into();
                return error_page(&e, Some(&c));
            }
        }
    } else {
        value
    };
    let st = state.clone();
    let tenant = c.caller.tenant_id.clone();
    let found = blocking(move || {
        let matches = st.db.read(|cn| {
            crate::deprovision::tombstones::matching(
                cn,
                &st.svc.deprov.keys,
                &tenant,
                &[(kind, value.clone())],
            )
        })?;
        let mut ids: Vec<String> = matches.into_iter().map(|m| m.tombstone_id).collect();
        ids.sort();
        ids.dedup();
        Ok(ids)
    })
    .await;
    let ids = match found {
        Ok(ids) => ids,
        Err(e) => return error_page(&e, Some(&c)),
    };
    match tombstones_body(&state, &c, Some(&ids)).await {
        Ok(body) => html(
            StatusCode::OK,
            views::page("Tombstones", "Tombstones", Some(&c), None, body),
        ),
        Err(e) => error_page(&e, Some(&c)),
    }
}

pub(super) async fn tombstone_lift(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> HttpResponse {
    let form = Form::parse(&body);
    let c = acting!(req, state, form);
    let ids = form.all("tombstone");
    let reason = form.get("reason").unwrap_or_default().trim().to_string();
    if ids.is_empty() || reason.is_empty() || reason.len() > 500 {
        let e: ApiError =
            ScimError::invalid_value("give a reason (at most 500 characters) for lifting").into();
        return error_page(&e, Some(&c));
    }
    let st = state.clone();
    let who = c.caller.clone();
    let r = blocking(move || {
        let now = st.svc.deprov.now();
        Ok(tombstone_cmd::lift_by_id(
            &st.db,
            &who.tenant_id,
            &ids,
            &who.actor,
            &now,
            &reason,
        )?)
    })
    .await;
    match r {
        Ok(0) => error_page(
            &ScimError::not_found("no live tombstone of this tenant with that id").into(),
            Some(&c),
        ),
        Ok(n) => done(&state, "/console/tombstones", &format!("lifted-{n}")),
        Err(e) => error_page(&e, Some(&c)),
    }
}

pub(super) async fn webhooks_resume(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> HttpResponse {
    let form = Form::parse(&body);
    let c = acting!(req, state, form);
    let st = state.clone();
    let who = c.caller.clone();
    match blocking(move || Ok(webhook_cmd::resume(&st.svc.deprov, &st.svc.db, &who)?)).await {
        Ok(n) => done(&state, "/console/webhooks", &format!("resumed-{n}")),
        Err(e) => error_page(&e, Some(&c)),
    }
}

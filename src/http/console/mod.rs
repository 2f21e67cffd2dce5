//! The admin console at `/console/` (config key `console`): server-rendered
//! HTML (maud: compile-time templates, every value escaped), one stylesheet
//! and one small script (the owner fields' type-ahead; every page works
//! without it), both from the binary. It acts through the same domain services
//! and audit trail as the admin API; its audit rows name the token with
//! " (console)".
//!
//! - Sign-in: an `admin` or `auditor` token pasted once, verified by the API's
//!   own verifier with its limits (`auth::sign_in`). It becomes a session: a
//!   random 256-bit id in an `HttpOnly`, `SameSite=Strict`, `Path=/console`
//!   cookie (`Secure` when `public_url` is https); the database keeps only its
//!   SHA-256 (`store::console`), so every replica honours it. Every request
//!   reads the row joined with its token: a revoked token's session ends
//!   (revoking also deletes the rows). Idle expiry `console_idle_timeout`,
//!   absolute 12 h; the scheduler sweeps expired rows.
//! - CSRF: a per-session secret in a hidden `csrf` field of every form,
//!   compared on every POST; a POST whose `Origin` is present and not this
//!   host is refused too. The sign-in form has its own (a short cookie).
//! - Every answer: a strict CSP (no inline script or style), `nosniff`,
//!   `no-referrer`, `no-store`.
//! - An `auditor` session renders no action forms and every POST action is 403.

mod actions;
mod pages;
mod views;

use super::AppState;
use super::error::ApiError;
use super::limiter::{Kind, Permit};
use crate::auth::Scope;
use crate::domain::Actor;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use sha2::{Digest, Sha256};

/// The session cookie.
const COOKIE: &str = "custodian_console";
/// The sign-in form's CSRF cookie (before a session exists).
const SIGNIN_COOKIE: &str = "custodian_console_signin";
/// A one-shot status message after a POST (a fixed code, never PII).
const FLASH_COOKIE: &str = "custodian_console_flash";
/// A session ends this long after sign-in, however active.
const ABSOLUTE_SECONDS: i64 = crate::store::console::MAX_AGE_SECONDS;
/// Rows on a list page.
pub(crate) const PAGE: i64 = 25;

// `connect-src 'self'`: the type-ahead script asks /console/people/suggest.
const CSP: &str = "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; \
                   base-uri 'none'";

pub fn configure(cfg: &mut web::ServiceConfig) {
    use actix_web::dev::Service;
    cfg.service(
        web::scope("/console")
            .wrap_fn(|req, srv| {
                let fut = srv.call(req);
                async move {
                    let mut res = fut.await?;
                    let h = res.headers_mut();
                    h.insert(
                        header::CONTENT_SECURITY_POLICY,
                        HeaderValue::from_static(CSP),
                    );
                    h.insert(
                        header::X_CONTENT_TYPE_OPTIONS,
                        HeaderValue::from_static("nosniff"),
                    );
                    h.insert(
                        header::REFERRER_POLICY,
                        HeaderValue::from_static("no-referrer"),
                    );
                    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
                    Ok(res)
                }
            })
            .route("", web::get().to(pages::overview))
            .route("/signin", web::get().to(pages::signin_form))
            .route("/signin", web::post().to(actions::signin))
            .route("/signout", web::post().to(actions::signout))
            .route("/static/console.css", web::get().to(pages::stylesheet))
            .route(
                "/static/typeahead.js",
                web::get().to(pages::typeahead_script),
            )
            .route("/people", web::get().to(pages::people))
            // Before `/people/{id}`, which would take "suggest" as an id.
            .route("/people/suggest", web::get().to(pages::suggest))
            .route("/people/{id}", web::get().to(pages::person))
            .route(
                "/people/{id}/legal-hold",
                web::post().to(actions::legal_hold),
            )
            .route("/people/{id}/dispose", web::post().to(actions::dispose))
            .route("/disposals", web::get().to(pages::disposals))
            .route("/disposals", web::post().to(actions::disposals))
            .route("/orphans", web::get().to(pages::orphans))
            .route("/orphans/reassign", web::post().to(actions::reassign))
            .route("/tombstones", web::get().to(pages::tombstones))
            .route(
                "/tombstones/check",
                web::post().to(actions::tombstone_check),
            )
            .route("/tombstones/lift", web::post().to(actions::tombstone_lift))
            .route("/webhooks", web::get().to(pages::webhooks))
            .route("/webhooks/resume", web::post().to(actions::webhooks_resume))
            .route("/audit", web::get().to(pages::audit))
            .route("/policy", web::get().to(pages::policy))
            .default_service(web::to(pages::not_found)),
    );
}

/// A signed-in console request: its tenant's slot is held until it drops.
pub(crate) struct Console {
    /// The actor its acts are recorded as: the token's name and " (console)".
    pub caller: Actor,
    /// May act (an `admin` token); an `auditor` session only reads.
    pub admin: bool,
    /// The session's CSRF secret: every form carries it.
    pub csrf: String,
    id_hash: String,
    _permit: Permit,
}

/// SHA-256 (hex) of a session id: what the database keeps.
fn hash_id(id: &str) -> String {
    hex::encode(Sha256::digest(id.as_bytes()))
}

/// 32 random bytes, hex.
fn random_hex() -> String {
    use rand::RngCore;
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

/// A cookie of the request, by name (the `Cookie` header, parsed here).
fn cookie(req: &HttpRequest, name: &str) -> Option<String> {
    req.headers()
        .get_all(header::COOKIE)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().to_string())
}

/// A `Set-Cookie` value: `HttpOnly`, `SameSite=Strict`, `Path=/console`,
/// `Secure` when the public URL is https; `max_age` seconds (0 deletes it).
fn set_cookie(state: &AppState, name: &str, value: &str, max_age: Option<i64>) -> String {
    let mut c = format!("{name}={value}; Path=/console; HttpOnly; SameSite=Strict");
    if state.public_base.starts_with("https://") {
        c.push_str("; Secure");
    }
    if let Some(a) = max_age {
        c.push_str(&format!("; Max-Age={a}"));
    }
    c
}

/// 303 to `location` (a console path).
fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location.to_string()))
        .finish()
}

/// 303 to the sign-in page, dropping the session cookie.
fn to_signin(state: &AppState) -> HttpResponse {
    let mut r = see_other("/console/signin");
    if let Ok(v) = HeaderValue::from_str(&set_cookie(state, COOKIE, "", Some(0))) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

/// The HTML page for an error: its status and detail from the one mapping
/// (`ApiError::scim_error`), in `role="alert"`.
fn error_page(e: &ApiError, signed_in: Option<&Console>) -> HttpResponse {
    let s = e.scim_error();
    let status = StatusCode::from_u16(s.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let title = match status.as_u16() {
        404 => "Not found",
        403 => "Not allowed",
        409 | 412 => "Conflict",
        429 => "Too many requests",
        503 => "Unavailable",
        _ => "Error",
    };
    let mut r = html(status, views::error(title, &s.detail, signed_in));
    // As the API's answers: a refusal under load says when to come back.
    if let Some(secs) = e.retry_after()
        && let Ok(v) = HeaderValue::from_str(&secs.to_string())
    {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}

fn html(status: StatusCode, body: maud::Markup) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(body.into_string())
}

fn now(state: &AppState) -> chrono::DateTime<chrono::Utc> {
    state.svc.deprov.clock.now()
}

fn parse_time(t: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(t)
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc))
}

/// The signed-in session, its tenant's slot held (a read slot for GET, a
/// write slot otherwise); `Err` is the answer instead: 303 to sign-in
/// without a live session, or an error page.
async fn session(req: &HttpRequest, state: &web::Data<AppState>) -> Result<Console, HttpResponse> {
    let Some(id) = cookie(req, COOKIE).filter(|v| !v.is_empty() && v.len() <= 128) else {
        return Err(to_signin(state));
    };
    let id_hash = hash_id(&id);
    let deadline = std::time::Duration::from_millis(state.settings.request_deadline_ms);
    // The lookup runs in a slot of its own key's share, like an uncached
    // token's verification: random cookies cannot take a tenant's share.
    let found = {
        let admission = super::auth::admit(state, &state.limiter, "console:session")
            .await
            .map_err(|e| error_page(&e, None))?;
        let _slot = super::auth::slot(state, admission.acquire(Kind::Read), deadline)
            .await
            .map_err(|e| error_page(&e, None))?;
        let st = state.clone();
        let h = id_hash.clone();
        super::blocking(move || Ok(st.db.read(|c| crate::store::console::find(c, &h))?))
            .await
            .map_err(|e| error_page(&e, None))?
    };
    let Some(s) = found else {
        return Err(to_signin(state));
    };
    let now = now(state);
    let idle = chrono::Duration::from_std(state.settings.console_idle_timeout)
        .unwrap_or(chrono::Duration::minutes(30));
    let last_seen = parse_time(&s.last_seen);
    let created = parse_time(&s.created_at);
    let scope = s.scope.parse::<Scope>().ok();
    let expired = s.token_revoked
        || last_seen.is_none_or(|t| t + idle <= now)
        || created.is_none_or(|t| t + chrono::Duration::seconds(ABSOLUTE_SECONDS) <= now)
        || !matches!(scope, Some(Scope::Admin | Scope::Auditor));
    if expired {
        let st = state.clone();
        let h = id_hash.clone();
        let _ =
            super::blocking(move || Ok(st.db.write(|c| crate::store::console::delete(c, &h))?))
                .await;
        return Err(to_signin(state));
    }
    let kind = if req.method() == actix_web::http::Method::GET {
        Kind::Read
    } else {
        Kind::Write
    };
    let admission = super::auth::admit(state, &state.limiter, &s.tenant_id)
        .await
        .map_err(|e| error_page(&e, None))?;
    let permit = super::auth::slot(state, admission.acquire(kind), deadline)
        .await
        .map_err(|e| error_page(&e, None))?;
    // The idle clock restarts; written at most every quarter of the idle
    // timeout (and every minute at most), not on every page.
    let touch_every = (idle / 4).min(chrono::Duration::minutes(1));
    if last_seen.is_some_and(|t| t + touch_every <= now) {
        let st = state.clone();
        let h = id_hash.clone();
        let at = crate::store::time::format(now);
        super::blocking(move || Ok(st.db.write(|c| crate::store::console::touch(c, &h, &at))?))
            .await
            .map_err(|e| error_page(&e, None))?;
    }
    Ok(Console {
        caller: Actor {
            tenant_id: s.tenant_id,
            tenant_name: s.tenant_name,
            actor: format!("{} (console)", s.token_name),
            acts_as: s.acts_as,
            caller_user_id: None,
        },
        admin: scope == Some(Scope::Admin),
        csrf: s.csrf,
        id_hash,
        _permit: permit,
    })
}

/// Whether the request's `Origin`, when it sends one, is this host: the
/// public URL's origin, the `Host` it was sent to, or (only with
/// `trust_forwarded_headers`) the proxy's `X-Forwarded-Host`. `Origin: null`
/// is what Chromium and Firefox send on a same-origin form POST from a page
/// served with `Referrer-Policy: no-referrer` (every console page): then the
/// Fetch Metadata header `Sec-Fetch-Site` decides (`same-origin` only), and
/// without it (an older browser) the CSRF token alone.
fn same_origin(req: &HttpRequest, state: &AppState) -> bool {
    let Some(origin) = req.headers().get(header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    let origin = origin.trim_end_matches('/');
    if origin == "null" {
        return match req.headers().get("sec-fetch-site").map(|v| v.to_str()) {
            Some(Ok(site)) => site == "same-origin",
            Some(Err(_)) => false,
            None => true,
        };
    }
    if origin == origin_of(&state.public_base) {
        return true;
    }
    // The Host it was sent to; behind a trusted proxy, also the host the
    // proxy says the browser used (a proxy may rewrite Host).
    let mut hosts = vec![req.headers().get(header::HOST)];
    if state.settings.trust_forwarded_headers {
        hosts.push(req.headers().get("x-forwarded-host"));
    }
    hosts
        .into_iter()
        .flatten()
        .filter_map(|h| h.to_str().ok())
        .map(|h| h.split(',').next().unwrap_or_default().trim())
        .filter(|h| !h.is_empty())
        .any(|host| origin == format!("http://{host}") || origin == format!("https://{host}"))
}

/// `scheme://host[:port]` of a URL.
fn origin_of(url: &str) -> &str {
    match url.find("://") {
        Some(i) => match url[i + 3..].find('/') {
            Some(j) => &url[..i + 3 + j],
            None => url,
        },
        None => url,
    }
}

/// Constant-time comparison of two secrets.
fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// A POST's gate: a session, an admin one for actions, the same origin, the
/// CSRF field. `Err` is the answer (403 page, or 303 to sign-in).
async fn post_session(
    req: &HttpRequest,
    state: &web::Data<AppState>,
    csrf: Option<&str>,
    needs_admin: bool,
) -> Result<Console, HttpResponse> {
    let c = session(req, state).await?;
    if !same_origin(req, state) {
        return Err(refused(
            &c,
            "The request came from another site (its Origin is not this host).",
        ));
    }
    if !csrf.is_some_and(|t| same_secret(t, &c.csrf)) {
        return Err(refused(
            &c,
            "The form's security token is missing or wrong. Reload the page and try again.",
        ));
    }
    if needs_admin && !c.admin {
        return Err(refused(
            &c,
            "auditor tokens are read-only: this console session cannot change anything.",
        ));
    }
    Ok(c)
}

fn refused(c: &Console, why: &str) -> HttpResponse {
    html(
        StatusCode::FORBIDDEN,
        views::error("Not allowed", why, Some(c)),
    )
}

/// 303 back to `location` with a flash message code for the next page.
fn done(state: &AppState, location: &str, flash: &str) -> HttpResponse {
    let mut r = see_other(location);
    if let Ok(v) = HeaderValue::from_str(&set_cookie(state, FLASH_COOKIE, flash, Some(60))) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

/// The flash message the last POST left (its text), and the header that
/// clears it.
fn take_flash(req: &HttpRequest, state: &AppState) -> (Option<String>, Option<HeaderValue>) {
    match cookie(req, FLASH_COOKIE) {
        Some(code) if !code.is_empty() => (
            views::flash_text(&code),
            HeaderValue::from_str(&set_cookie(state, FLASH_COOKIE, "", Some(0))).ok(),
        ),
        _ => (None, None),
    }
}

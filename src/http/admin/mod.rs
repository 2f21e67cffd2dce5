//! `/admin/v1` (who may call each route: `access`) and `/gate/v1` (gate
//! scope), one module per resource. Handlers parse,
//! make one domain or store call on a blocking thread, and answer JSON; errors
//! use the SCIM error schema.

pub mod access;
mod audit;
mod content;
mod disposals;
mod gate;
mod sso;
mod tombstones;
mod webhooks;

use super::AppState;
use super::body::read_json;
use super::error::ApiError;
use super::ops::{method_not_allowed, not_found};
use crate::scim::error::ScimError;
use crate::store::reads::Page;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::Value;

/// A NUL (`%00`) in a path or query can never name anything, and PostgreSQL
/// cannot even compare it: refused before any handler runs.
fn refuse_nul(req: &actix_web::dev::ServiceRequest) -> Option<ApiError> {
    let raw = req.uri().to_string().to_ascii_lowercase();
    raw.contains("%00").then(|| {
        ApiError::Scim(ScimError::invalid_value(
            "NUL characters (%00) are not allowed in paths or query strings",
        ))
    })
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    use actix_web::dev::Service;
    cfg.service(
        web::scope("/admin/v1")
            .wrap_fn(|req, srv| {
                let call = match refuse_nul(&req) {
                    Some(e) => Err(e),
                    None => Ok(srv.call(req)),
                };
                async move {
                    match call {
                        Ok(fut) => fut.await,
                        Err(e) => Err(e.into()),
                    }
                }
            })
            .route("/content", web::get().to(content::list))
            .route("/content:reassign", web::post().to(content::reassign))
            .route(
                "/content:import",
                web::post().to(super::import::import_content),
            )
            .route(
                "/user-data:import",
                web::post().to(super::import::import_user_data),
            )
            .service(
                web::resource("/content/{kind}/{id}")
                    .route(web::put().to(content::put))
                    .route(web::get().to(content::get))
                    .route(web::delete().to(content::delete))
                    .default_service(web::to(method_not_allowed)),
            )
            .route(
                "/content/{kind}/{id}/history",
                web::get().to(content::history),
            )
            .route(
                "/user-data/{category}/{id}",
                web::put().to(content::put_user_data),
            )
            .route("/users/{id}/transfer", web::post().to(content::transfer))
            .route("/users/{id}/disposal-plan", web::get().to(disposals::plan))
            .route("/users/{id}/dispose", web::post().to(disposals::dispose))
            .service(
                web::resource("/users/{id}/sso-subjects")
                    .route(web::put().to(sso::put))
                    .route(web::delete().to(sso::delete))
                    .default_service(web::to(method_not_allowed)),
            )
            .route("/disposals", web::get().to(disposals::list))
            .route(
                "/disposals/{id}/release",
                web::post().to(disposals::release),
            )
            .route("/brake/reset", web::post().to(disposals::reset_brake))
            .service(
                web::resource("/users/{id}/legal-hold")
                    .route(web::put().to(disposals::legal_hold))
                    .route(web::delete().to(disposals::legal_hold))
                    .default_service(web::to(method_not_allowed)),
            )
            .route("/webhooks", web::get().to(webhooks::state))
            .route("/webhooks:resume", web::post().to(webhooks::resume))
            .route("/webhooks:skip", web::post().to(webhooks::skip))
            .route("/events", web::get().to(webhooks::events))
            .route("/disposals/{id}", web::get().to(disposals::get))
            .route("/tombstones", web::get().to(tombstones::list))
            .route("/tombstones:lift", web::post().to(tombstones::lift))
            .route("/tombstones:release", web::post().to(tombstones::release))
            .route("/policy", web::get().to(disposals::policy))
            .route("/audit", web::get().to(audit::list))
            .default_service(web::to(not_found)),
    )
    .service(
        web::scope("/gate/v1")
            .service(
                web::resource("/check")
                    .route(web::post().to(gate::check))
                    .default_service(web::to(method_not_allowed)),
            )
            .default_service(web::to(not_found)),
    );
}

fn ok(status: StatusCode, v: Value) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("application/json")
        .body(v.to_string())
}

/// 201 for a created resource, 200 for a replaced one.
fn created_or_ok(created: bool) -> StatusCode {
    if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    }
}

/// The query parameters and their page: `startIndex` (1-based) and `count`
/// (≤ 1000, default 100).
struct Query {
    pairs: Vec<(String, String)>,
    /// `startIndex`, at least 1.
    start: i64,
    count: i64,
}

impl Query {
    fn page(&self) -> Page {
        Page {
            offset: self.start - 1,
            limit: self.count,
        }
    }

    fn param(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

fn query(req: &HttpRequest) -> Result<Query, ApiError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(req.query_string())
        .map_err(|e| ScimError::invalid_syntax(format!("query string is not valid: {e}")))?;
    let int = |name: &str, default: i64| -> Result<i64, ApiError> {
        match pairs.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)) {
            Some((_, v)) => v.trim().parse::<i64>().map_err(|_| {
                ScimError::invalid_value(format!("'{name}' must be an integer")).into()
            }),
            None => Ok(default),
        }
    };
    let start = int("startIndex", 1)?.max(1);
    let count = int("count", 100)?.clamp(0, 1000);
    Ok(Query {
        pairs,
        start,
        count,
    })
}

/// The JSON body (within `max_body_bytes`) as a `T`.
async fn body<T: serde::de::DeserializeOwned>(
    req: &HttpRequest,
    state: &AppState,
    payload: web::Payload,
    tenant: &str,
) -> Result<T, ApiError> {
    let v = read_json(req, payload, state.settings.max_body_bytes, tenant).await?;
    serde_json::from_value(v)
        .map_err(|e| ScimError::invalid_value(format!("invalid request body: {e}")).into())
}

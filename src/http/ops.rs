//! Operational endpoints and the catch-all 404.

use super::error::ApiError;
use super::{AppState, blocking};
use crate::scim::error::ScimError;
use actix_web::{HttpRequest, HttpResponse, web};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz));
}

/// Alive: the process answers.
async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

/// Ready: the database answers.
async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let st = state.clone();
    blocking(move || st.db.ping().map_err(ApiError::from)).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({"status": "ready"})))
}

pub async fn not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::Scim(ScimError::not_found(format!(
        "no such endpoint: {} {}",
        req.method(),
        req.path()
    ))))
}

pub async fn method_not_allowed(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::Scim(ScimError::new(
        405,
        None,
        format!("{} is not allowed on {}", req.method(), req.path()),
    )))
}

pub async fn not_implemented(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let me = req.path().contains("/Me");
    let what = if me {
        "Me".to_string()
    } else {
        req.path()
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string()
    };
    Err(ApiError::Scim(ScimError::not_implemented(match what.as_str() {
        "Me" => "/Me is not supported: Custodian's tokens belong to identity-provider clients, not to people".to_string(),
        _ => format!("{what} is not supported"),
    })))
}

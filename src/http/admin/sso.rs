//! `/users/{id}/sso-subjects`: register (PUT) or remove (DELETE) one subject.

use super::body;
use crate::deprovision::commands::sso as cmd;
use crate::http::auth::AdminUpload;
use crate::http::error::ApiError;
use crate::http::{AppState, blocking};
use actix_web::{HttpRequest, HttpResponse, web};

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SsoBody {
    issuer: String,
    subject: String,
}

pub(super) async fn put(
    req: HttpRequest,
    state: web::Data<AppState>,
    w: AdminUpload,
    id: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let b: SsoBody = body(&req, &state, payload, w.tenant()).await?;
    let w = w.ready().await?;
    let st = state.clone();
    let id = id.into_inner();
    blocking(move || {
        let svc = &st.svc;
        Ok(cmd::register(
            &svc.deprov,
            &svc.db,
            &w.caller,
            &id,
            &b.issuer,
            &b.subject,
        )?)
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

pub(super) async fn delete(
    req: HttpRequest,
    state: web::Data<AppState>,
    w: AdminUpload,
    id: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let b: SsoBody = body(&req, &state, payload, w.tenant()).await?;
    let w = w.ready().await?;
    let st = state.clone();
    let id = id.into_inner();
    blocking(move || {
        Ok(cmd::remove(
            &st.svc.db, &w.caller, &id, &b.issuer, &b.subject,
        )?)
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

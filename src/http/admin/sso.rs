//! `/users/{id}/sso-subjects`: register (PUT) or remove (DELETE) one subject.

use super::body;
use crate::deprovision::commands::sso as cmd;
use crate::http::auth::AdminUpload;
use crate::http::error::ApiError;
use crate::http::{AppState, blocking};
use actix_web::{HttpRequest, HttpResponse, web};

/// An SSO subject: the IdP's issuer and the user's subject there.
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct SsoBody {
    #[schema(min_length = 1)]
    issuer: String,
    #[schema(min_length = 1)]
    subject: String,
}

#[utoipa::path(
    put, path = "/admin/v1/users/{id}/sso-subjects", operation_id = "putSsoSubject", tag = "gate",
    summary = "Register an SSO subject for a user",
    params(("id" = String, Path, description = "User id")),
    request_body = SsoBody,
    responses((status = 204, description = "Registered")),
    security(("admin" = [])),
)]
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

#[utoipa::path(
    delete, path = "/admin/v1/users/{id}/sso-subjects", operation_id = "deleteSsoSubject", tag = "gate",
    summary = "Remove an SSO subject of a user",
    params(("id" = String, Path, description = "User id")),
    request_body = SsoBody,
    responses((status = 204, description = "Removed")),
    security(("admin" = [])),
)]
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

//! `/tombstones`, `/tombstones:lift`, `/tombstones:release`.

use super::{body, ok, query};
use crate::deprovision::commands::tombstones::{self as cmd, Action};
use crate::deprovision::gate::GateRequest;
use crate::http::auth::{AdminCaller, AdminUpload};
use crate::http::error::ApiError;
use crate::http::{AppState, blocking};
use crate::scim::error::ScimError;
use crate::store::reads::tombstones::{self as reads, TombstoneRow};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

/// A tombstone: identifier types only, hashes are never shown.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(super) struct Tombstone {
    id: String,
    #[serde(rename = "disposalId")]
    disposal_id: Option<String>,
    #[serde(rename = "createdAt")]
    created_at: String,
    #[serde(rename = "liftedAt")]
    lifted_at: Option<String>,
    /// `userName`, `email`, `externalId`, `sso`: sorted, without repeats.
    #[serde(rename = "identifierTypes")]
    identifier_types: Vec<String>,
}

impl From<TombstoneRow> for Tombstone {
    fn from(t: TombstoneRow) -> Self {
        Tombstone {
            id: t.id,
            disposal_id: t.disposal_id,
            created_at: t.created_at,
            lifted_at: t.lifted_at,
            identifier_types: t.identifier_types,
        }
    }
}

/// A page of tombstones.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(super) struct Tombstones {
    #[serde(rename = "Resources")]
    resources: Vec<Tombstone>,
}

/// How many tombstones were lifted.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(super) struct Lifted {
    lifted: usize,
}

/// How many identifiers were released from tombstones.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(super) struct Released {
    released: usize,
}

#[utoipa::path(
    get, path = "/admin/v1/tombstones", operation_id = "listTombstones", tag = "tombstones",
    summary = "List the tenant's tombstones",
    params(super::Paging),
    responses((status = 200, description = "A page of tombstones", body = Tombstones)),
    security(("admin" = [])),
)]
pub(super) async fn list(
    req: HttpRequest,
    state: web::Data<AppState>,
    w: AdminCaller,
) -> Result<HttpResponse, ApiError> {
    let page = query(&req)?.page();
    let st = state.clone();
    let rows = blocking(move || {
        Ok(st
            .svc
            .db
            .read(|c| reads::page(c, &w.caller.tenant_id, page))?)
    })
    .await?;
    let resources = rows.into_iter().map(Tombstone::from).collect();
    Ok(ok(StatusCode::OK, Tombstones { resources }))
}

/// Lifts every live tombstone holding one of the identifiers: the person may
/// be provisioned again.
#[utoipa::path(
    post, path = "/admin/v1/tombstones:lift", operation_id = "liftTombstones", tag = "tombstones",
    summary = "Lift the tombstones holding these identifiers",
    request_body = GateRequest,
    responses((status = 200, description = "Lifted", body = Lifted)),
    security(("admin" = [])),
)]
pub(super) async fn lift(
    req: HttpRequest,
    state: web::Data<AppState>,
    w: AdminUpload,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let n = apply(req, state, w, payload, Action::Lift).await?;
    Ok(ok(StatusCode::OK, Lifted { lifted: n }))
}

/// Releases only these identifiers from the tombstones that hold them.
#[utoipa::path(
    post, path = "/admin/v1/tombstones:release", operation_id = "releaseTombstoneIdentifiers", tag = "tombstones",
    summary = "Release these identifiers from tombstones",
    request_body = GateRequest,
    responses((status = 200, description = "Released", body = Released)),
    security(("admin" = [])),
)]
pub(super) async fn release(
    req: HttpRequest,
    state: web::Data<AppState>,
    w: AdminUpload,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let n = apply(req, state, w, payload, Action::Release).await?;
    Ok(ok(StatusCode::OK, Released { released: n }))
}

async fn apply(
    req: HttpRequest,
    state: web::Data<AppState>,
    w: AdminUpload,
    payload: web::Payload,
    action: Action,
) -> Result<usize, ApiError> {
    let b: GateRequest = body(&req, &state, payload, w.tenant()).await?;
    let w = w.ready().await?;
    let ids = b.identifiers();
    if ids.is_empty() {
        return Err(ScimError::invalid_value(
            "name at least one identifier: userName, email, externalId or sso",
        )
        .into());
    }
    let st = state.clone();
    let n = blocking(move || {
        let svc = &st.svc;
        let now = svc.deprov.now();
        Ok(cmd::apply(
            &svc.db,
            &svc.deprov.keys,
            &w.caller.tenant_id,
            &ids,
            action,
            &w.caller.actor,
            &now,
        )?)
    })
    .await?;
    if n == 0 {
        return Err(ScimError::not_found("no live tombstone holds those identifiers").into());
    }
    Ok(n)
}

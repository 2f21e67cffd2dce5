//! `/audit`: the tenant's audit log, oldest first.

use super::{ok, query};
use crate::http::auth::AdminCaller;
use crate::http::error::ApiError;
use crate::http::{AppState, blocking};
use crate::store::reads::audit::{self as reads, AuditRow};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::Value;

/// One audit row.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(super) struct Audit {
    id: String,
    at: String,
    /// The token's name, or `scheduler`.
    actor: String,
    /// E.g. `user.suspended`, `disposal.done`, `tombstone.lifted`.
    action: String,
    #[serde(rename = "subjectType")]
    subject_type: String,
    #[serde(rename = "subjectId")]
    subject_id: String,
    /// The action's details, when it has any.
    #[schema(value_type = Option<Object>)]
    detail: Option<Value>,
}

impl From<AuditRow> for Audit {
    fn from(r: AuditRow) -> Self {
        Audit {
            id: r.id,
            at: r.at,
            actor: r.actor,
            action: r.action,
            subject_type: r.subject_type,
            subject_id: r.subject_id,
            detail: r
                .detail
                .and_then(|d| serde_json::from_str::<Value>(&d).ok()),
        }
    }
}

/// A page of audit rows, oldest first.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(super) struct AuditPage {
    #[serde(rename = "Resources")]
    resources: Vec<Audit>,
}

#[utoipa::path(
    get, path = "/admin/v1/audit", operation_id = "listAudit", tag = "audit",
    summary = "The tenant's audit log, oldest first",
    params(super::Paging),
    responses((status = 200, description = "A page of audit rows", body = AuditPage)),
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
    let resources = rows.into_iter().map(Audit::from).collect();
    Ok(ok(StatusCode::OK, AuditPage { resources }))
}

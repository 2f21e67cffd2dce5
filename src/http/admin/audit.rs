//! `/audit`: the tenant's audit log, oldest first.

use super::{ok, query};
use crate::http::auth::AdminCaller;
use crate::http::error::ApiError;
use crate::http::{AppState, blocking};
use crate::store::reads::audit::{self as reads, AuditRow};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

fn row_json(r: AuditRow) -> Value {
    json!({
        "id": r.id, "at": r.at, "actor": r.actor, "action": r.action,
        "subjectType": r.subject_type, "subjectId": r.subject_id,
        "detail": r.detail.and_then(|d| serde_json::from_str::<Value>(&d).ok()),
    })
}

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
    let rows: Vec<Value> = rows.into_iter().map(row_json).collect();
    Ok(ok(StatusCode::OK, json!({"Resources": rows})))
}

//! `/webhooks`, `/webhooks:resume`, `/events`: delivery state and the event feed.

use super::{ok, query, who};
use crate::deprovision::commands::webhooks as cmd;
use crate::http::auth::AdminCaller;
use crate::http::error::ApiError;
use crate::http::{AppState, blocking};
use crate::scim::error::ScimError;
use crate::store::reads::webhooks::{self as reads, EndpointState};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

fn endpoint_json(e: EndpointState) -> Value {
    json!({
        "endpoint": e.endpoint, "lastDeliveredSeq": e.last_delivered_seq,
        "failedAttempts": e.failed_attempts, "nextAttemptAt": e.next_attempt_at, "paused": e.paused,
    })
}

/// Delivery state per webhook endpoint of the tenant.
pub(super) async fn state(
    state: web::Data<AppState>,
    w: AdminCaller,
) -> Result<HttpResponse, ApiError> {
    let st = state.clone();
    let rows = blocking(move || {
        Ok(st
            .svc
            .db
            .read(|c| reads::endpoints(c, &w.caller.tenant_id))?)
    })
    .await?;
    let rows: Vec<Value> = rows.into_iter().map(endpoint_json).collect();
    Ok(ok(StatusCode::OK, json!({"Resources": rows})))
}

/// Un-pauses every paused endpoint of the tenant; delivery resumes where it stopped.
pub(super) async fn resume(
    state: web::Data<AppState>,
    w: AdminCaller,
) -> Result<HttpResponse, ApiError> {
    let st = state.clone();
    let n = blocking(move || {
        let svc = &st.svc;
        Ok(cmd::resume(&svc.deprov, &svc.db, &who(&w.caller))?)
    })
    .await?;
    Ok(ok(StatusCode::OK, json!({"resumed": n})))
}

/// The tenant's events after `?after=` (a seq), at most `count`.
pub(super) async fn events(
    req: HttpRequest,
    state: web::Data<AppState>,
    w: AdminCaller,
) -> Result<HttpResponse, ApiError> {
    let q = query(&req)?;
    let after = match q.param("after") {
        Some(a) => a
            .trim()
            .parse::<i64>()
            .map_err(|_| ScimError::invalid_value("'after' must be an event seq (an integer)"))?,
        None => 0,
    };
    let count = q.count.max(1);
    let st = state.clone();
    let v = blocking(move || {
        Ok(st.svc.db.read(|c| {
            crate::events::feed(c, &w.caller.tenant_id, &w.caller.tenant_name, after, count)
        })?)
    })
    .await?;
    let next = v.last().and_then(|e| e["seq"].as_i64()).unwrap_or(after);
    Ok(ok(StatusCode::OK, json!({"events": v, "next": next})))
}

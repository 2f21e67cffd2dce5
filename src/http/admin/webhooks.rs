//! `/webhooks`, `/webhooks:resume`, `/webhooks:skip`, `/events`: delivery
//! state, its controls, and the event feed.

use super::{body, ok, query};
use crate::deprovision::commands::webhooks as cmd;
use crate::http::auth::{AdminCaller, AdminUpload};
use crate::http::error::ApiError;
use crate::http::{AppState, blocking};
use crate::scim::error::ScimError;
use crate::store::reads::webhooks::{self as reads, EndpointState};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

fn endpoint_json(e: EndpointState, configured: bool, next: Option<String>) -> Value {
    json!({
        "endpoint": e.endpoint, "configured": configured, "lastDeliveredSeq": e.last_delivered_seq,
        "failedAttempts": e.failed_attempts, "nextAttemptAt": e.next_attempt_at, "paused": e.paused,
        "nextEventId": next,
    })
}

/// An endpoint the relay has not written a cursor for yet (it claims one at
/// the first due event): nothing delivered, nothing failed.
fn not_started(endpoint: &str, next: Option<String>) -> Value {
    json!({
        "endpoint": endpoint, "configured": true, "lastDeliveredSeq": 0,
        "failedAttempts": 0, "nextAttemptAt": null, "paused": false, "nextEventId": next,
    })
}

/// Delivery state per webhook endpoint of the tenant: every configured
/// endpoint (an operator checks a new one here before its first event), and
/// any no longer configured that still holds a cursor (`configured: false`).
pub(super) async fn state(
    state: web::Data<AppState>,
    w: AdminCaller,
) -> Result<HttpResponse, ApiError> {
    let configured: std::collections::BTreeSet<String> = state
        .svc
        .deprov
        .policy(&w.caller.tenant_name)
        .webhooks
        .into_iter()
        .map(|h| h.url)
        .collect();
    let st = state.clone();
    // Each endpoint with the event it waits on (the head of its queue: the one
    // `/webhooks:skip` may skip); one lookup per endpoint, the policy's few.
    let (rows, first) = blocking(move || {
        let tenant = &w.caller.tenant_id;
        Ok(st.svc.db.read(|c| {
            let rows = reads::endpoints(c, tenant)?
                .into_iter()
                .map(|r| Ok((reads::next_event(c, tenant, r.last_delivered_seq)?, r)))
                .collect::<Result<Vec<_>, crate::store::StoreError>>()?;
            Ok::<_, crate::store::StoreError>((rows, reads::next_event(c, tenant, 0)?))
        })?)
    })
    .await?;
    let mut out: Vec<(String, Value)> = configured
        .iter()
        .filter(|url| !rows.iter().any(|(_, r)| &r.endpoint == *url))
        .map(|url| (url.clone(), not_started(url, first.clone())))
        .collect();
    for (next, r) in rows {
        let known = configured.contains(&r.endpoint);
        out.push((r.endpoint.clone(), endpoint_json(r, known, next)));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    let rows: Vec<Value> = out.into_iter().map(|(_, v)| v).collect();
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
        Ok(cmd::resume(&svc.deprov, &svc.db, &w.caller)?)
    })
    .await?;
    Ok(ok(StatusCode::OK, json!({"resumed": n})))
}

/// `POST /webhooks:skip` body: the endpoint (its URL, as `GET /webhooks`
/// lists it) and the id of the event at the head of its queue.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct SkipBody {
    endpoint: String,
    event_id: String,
}

/// Skips the poison event at the head of one endpoint's queue; the events
/// behind it follow at once.
pub(super) async fn skip(
    req: HttpRequest,
    state: web::Data<AppState>,
    w: AdminUpload,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let b: SkipBody = body(&req, &state, payload, w.tenant()).await?;
    let w = w.ready().await?;
    let st = state.clone();
    let (endpoint, event_id) = (b.endpoint, b.event_id);
    let skipped = event_id.clone();
    let seq = blocking(move || {
        let svc = &st.svc;
        Ok(cmd::skip(
            &svc.deprov,
            &svc.db,
            &w.caller,
            &endpoint,
            &event_id,
        )?)
    })
    .await?;
    Ok(ok(
        StatusCode::OK,
        json!({"skipped": skipped, "lastDeliveredSeq": seq}),
    ))
}

/// The tenant's events after `?after=` (a seq), at most `count`. Without
/// `after`, from the oldest retained event; an `after` older than
/// `event_retention` kept is 410.
pub(super) async fn events(
    req: HttpRequest,
    state: web::Data<AppState>,
    w: AdminCaller,
) -> Result<HttpResponse, ApiError> {
    let q = query(&req)?;
    let asked =
        match q.param("after") {
            Some(a) => Some(a.trim().parse::<i64>().map_err(|_| {
                ScimError::invalid_value("'after' must be an event seq (an integer)")
            })?),
            None => None,
        };
    let after = asked.unwrap_or(0);
    let count = q.count.max(1);
    let st = state.clone();
    let v = blocking(move || {
        let (tenant, name) = (&w.caller.tenant_id, &w.caller.tenant_name);
        Ok(st
            .svc
            .db
            .read(|c| crate::events::feed_from(c, tenant, name, asked, count))?)
    })
    .await?
    .map_err(|gone| {
        ScimError::new(
            410,
            None,
            format!(
                "events after seq {after} up to {gone} are older than event_retention and were deleted; \
                 this cursor cannot resume. Resynchronise from the current state (GET /admin/v1/disposals \
                 and each receipt, GET /admin/v1/tombstones), then continue the feed with after={gone}"
            ),
        )
    })?;
    let next = v.last().and_then(|e| e["seq"].as_i64()).unwrap_or(after);
    Ok(ok(StatusCode::OK, json!({"events": v, "next": next})))
}

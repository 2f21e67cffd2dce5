//! `/webhooks`, `/webhooks:resume`, `/events`: delivery state and the event feed.

use super::{ok, query};
use crate::deprovision::commands::webhooks as cmd;
use crate::events::payload::Envelope;
use crate::http::auth::AdminCaller;
use crate::http::error::ApiError;
use crate::http::{AppState, blocking};
use crate::scim::error::ScimError;
use crate::store::reads::webhooks::{self as reads, EndpointState};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::Value;

/// One webhook endpoint's delivery state.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(super) struct Endpoint {
    endpoint: String,
    /// False for an endpoint no longer in the policy that still holds a cursor.
    configured: bool,
    #[serde(rename = "lastDeliveredSeq")]
    last_delivered_seq: i64,
    #[serde(rename = "failedAttempts")]
    failed_attempts: i32,
    /// Null before the first delivery attempt.
    #[serde(rename = "nextAttemptAt")]
    next_attempt_at: Option<String>,
    paused: bool,
}

fn endpoint(e: EndpointState, configured: bool) -> Endpoint {
    Endpoint {
        endpoint: e.endpoint,
        configured,
        last_delivered_seq: e.last_delivered_seq,
        failed_attempts: e.failed_attempts,
        next_attempt_at: Some(e.next_attempt_at),
        paused: e.paused,
    }
}

/// An endpoint the relay has not written a cursor for yet (it claims one at
/// the first due event): nothing delivered, nothing failed.
fn not_started(url: &str) -> Endpoint {
    Endpoint {
        endpoint: url.to_string(),
        configured: true,
        last_delivered_seq: 0,
        failed_attempts: 0,
        next_attempt_at: None,
        paused: false,
    }
}

/// Every endpoint's delivery state, by URL.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(super) struct Endpoints {
    #[serde(rename = "Resources")]
    resources: Vec<Endpoint>,
}

/// How many paused endpoints were resumed.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(super) struct Resumed {
    resumed: usize,
}

/// A page of the events feed.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(super) struct Events {
    /// Oldest first; each as a webhook receives it.
    #[schema(value_type = Vec<Envelope>)]
    events: Vec<Value>,
    /// The `after` of the next page: the last event's seq (or `after` when empty).
    next: i64,
}

/// Delivery state per webhook endpoint of the tenant: every configured
/// endpoint (an operator checks a new one here before its first event), and
/// any no longer configured that still holds a cursor (`configured: false`).
#[utoipa::path(
    get, path = "/admin/v1/webhooks", operation_id = "listWebhookEndpoints", tag = "events",
    summary = "Delivery state of each webhook endpoint",
    responses((status = 200, description = "Every configured endpoint, and any unconfigured one that still holds a cursor", body = Endpoints)),
    security(("admin" = [])),
)]
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
    let rows = blocking(move || {
        Ok(st
            .svc
            .db
            .read(|c| reads::endpoints(c, &w.caller.tenant_id))?)
    })
    .await?;
    let mut out: Vec<(String, Endpoint)> = configured
        .iter()
        .filter(|url| !rows.iter().any(|r| &r.endpoint == *url))
        .map(|url| (url.clone(), not_started(url)))
        .collect();
    for r in rows {
        let known = configured.contains(&r.endpoint);
        out.push((r.endpoint.clone(), endpoint(r, known)));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    let resources = out.into_iter().map(|(_, v)| v).collect();
    Ok(ok(StatusCode::OK, Endpoints { resources }))
}

/// Un-pauses every paused endpoint of the tenant; delivery resumes where it stopped.
#[utoipa::path(
    post, path = "/admin/v1/webhooks:resume", operation_id = "resumeWebhooks", tag = "events",
    summary = "Resume every paused webhook endpoint",
    responses((status = 200, description = "How many were resumed", body = Resumed)),
    security(("admin" = [])),
)]
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
    Ok(ok(StatusCode::OK, Resumed { resumed: n }))
}

/// The tenant's events after `?after=` (a seq), at most `count`.
#[utoipa::path(
    get, path = "/admin/v1/events", operation_id = "listEvents", tag = "events",
    summary = "The events feed",
    description = "The source of truth behind webhooks: page with `after` = the previous page's `next`.",
    params(
        ("after" = Option<i64>, Query, description = "Events after this seq (default 0)"),
        ("count" = Option<i64>, Query, description = "Events per page (default 100; clamped to 1..=1000)"),
    ),
    responses((status = 200, description = "A page of events", body = Events)),
    security(("admin" = [])),
)]
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
    Ok(ok(StatusCode::OK, Events { events: v, next }))
}

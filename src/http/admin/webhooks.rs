//! `/webhooks`, `/webhooks:resume`, `/webhooks:skip`, `/events`: delivery
//! state, its controls, and the event feed.

use super::{body, ok, query};
use crate::deprovision::commands::webhooks as cmd;
use crate::events::payload::Envelope;
use crate::http::auth::{AdminCaller, AdminUpload};
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
    /// The last failed delivery's reason ("HTTP 503", "transport: …"; never
    /// the receiver's body) and when; null before any failure. Kept after a
    /// later success.
    #[serde(rename = "lastError")]
    last_error: Option<String>,
    #[serde(rename = "lastErrorAt")]
    last_error_at: Option<String>,
    /// The id of the event it waits on (the head of its queue, which
    /// `/webhooks:skip` may skip); null when it has received every event.
    #[serde(rename = "nextEventId")]
    next_event_id: Option<String>,
}

fn endpoint(e: EndpointState, configured: bool, next: Option<String>) -> Endpoint {
    Endpoint {
        endpoint: e.endpoint,
        configured,
        last_delivered_seq: e.last_delivered_seq,
        failed_attempts: e.failed_attempts,
        next_attempt_at: Some(e.next_attempt_at),
        paused: e.paused,
        last_error: e.last_error,
        last_error_at: e.last_error_at,
        next_event_id: next,
    }
}

/// An endpoint the relay has not written a cursor for yet (it claims one at
/// the first due event): nothing delivered, nothing failed.
fn not_started(url: &str, next: Option<String>) -> Endpoint {
    Endpoint {
        endpoint: url.to_string(),
        configured: true,
        last_delivered_seq: 0,
        failed_attempts: 0,
        next_attempt_at: None,
        paused: false,
        last_error: None,
        last_error_at: None,
        next_event_id: next,
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

/// What `/webhooks:skip` did.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(super) struct Skipped {
    /// The event skipped.
    skipped: String,
    /// The endpoint's cursor now: the skipped event's seq.
    #[serde(rename = "lastDeliveredSeq")]
    last_delivered_seq: i64,
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
    let configured = state
        .svc
        .deprov
        .policy(&w.caller.tenant_name)
        .webhook_urls();
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
    let mut out: Vec<(String, Endpoint)> = configured
        .iter()
        .filter(|url| !rows.iter().any(|(_, r)| &r.endpoint == *url))
        .map(|url| (url.clone(), not_started(url, first.clone())))
        .collect();
    for (next, r) in rows {
        let known = configured.contains(&r.endpoint);
        out.push((r.endpoint.clone(), endpoint(r, known, next)));
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

/// `POST /webhooks:skip` body: the endpoint (its URL, as `GET /webhooks`
/// lists it) and the id of the event at the head of its queue.
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct SkipBody {
    endpoint: String,
    event_id: String,
}

/// Skips the poison event at the head of one endpoint's queue; the events
/// behind it follow at once.
#[utoipa::path(
    post, path = "/admin/v1/webhooks:skip", operation_id = "skipWebhookEvent", tag = "events",
    summary = "Skip the event at the head of one endpoint's queue",
    description = "Audited (`webhooks.event_skipped`); clears the endpoint's failures and un-pauses it. Only the head event may be skipped: another id is 409 naming the head; an endpoint the tenant does not have is 404.",
    request_body = SkipBody,
    responses((status = 200, description = "Skipped", body = Skipped)),
    security(("admin" = [])),
)]
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
        Skipped {
            skipped,
            last_delivered_seq: seq,
        },
    ))
}

/// The tenant's events after `?after=` (a seq), at most `count`. Without
/// `after`, from the oldest retained event; an `after` older than
/// `event_retention` kept is 410.
#[utoipa::path(
    get, path = "/admin/v1/events", operation_id = "listEvents", tag = "events",
    summary = "The events feed",
    description = "The source of truth behind webhooks: page with `after` = the previous page's `next`. An `after` older than `event_retention` kept is 410 (the detail says how to resynchronise).",
    params(
        ("after" = Option<i64>, Query, minimum = 0, description = "Events after this seq (default: from the oldest retained)"),
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
    let asked = match q.param("after") {
        Some(a) => Some(
            a.trim()
                .parse::<i64>()
                .ok()
                .filter(|n| *n >= 0)
                .ok_or_else(|| {
                    ScimError::invalid_value("'after' must be an event seq (an integer, 0 or more)")
                })?,
        ),
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
    Ok(ok(StatusCode::OK, Events { events: v, next }))
}

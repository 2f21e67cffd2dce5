//! Prometheus metrics: the family names dashboards and alerts depend on, the
//! process-wide recorder, and the helpers every layer records through.
//!
//! Labels never carry tenant names, URLs or identifiers: a webhook endpoint is
//! an opaque id (`endpoint_id`). With `metrics_tenant_labels = true` a `tenant`
//! label (the tenant's name) is added to the per-tenant families (disposals,
//! gate decisions, webhooks). The recorder is global (one per process), so the
//! switch is too (`set_tenant_labels`, once at start).

use metrics::Label;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use sha2::{Digest, Sha256};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

pub const HTTP_REQUESTS: &str = "custodian_http_requests_total";
pub const HTTP_DURATION: &str = "custodian_http_request_duration_seconds";
pub const DISPOSALS_OPEN: &str = "custodian_disposals_open";
pub const DISPOSALS: &str = "custodian_disposals_total";
pub const GATE_DECISIONS: &str = "custodian_gate_decisions_total";
pub const WEBHOOK_PENDING: &str = "custodian_webhook_pending_events";
pub const WEBHOOK_PAUSED: &str = "custodian_webhook_endpoint_paused";
pub const WEBHOOK_DELIVERIES: &str = "custodian_webhook_deliveries_total";
pub const BACKGROUND_LAST_RUN: &str = "custodian_background_last_run_timestamp_seconds";
pub const BACKGROUND_STALE: &str = "custodian_background_task_stale";
pub const BACKGROUND_PANICS: &str = "custodian_background_panics_total";
pub const DB_POOL: &str = "custodian_db_pool_connections";
pub const BUILD_INFO: &str = "custodian_build_info";
pub const POLICY_DIGEST_MISMATCH: &str = "custodian_policy_digest_mismatch";
pub const REPLICA_VERSION_MISMATCH: &str = "custodian_replica_version_mismatch";
pub const REPLICAS_LIVE: &str = "custodian_replicas_live";

/// The route label of a request no route matched: never the raw path, which
/// a scanner could make into unbounded series.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// Request latency buckets (seconds): a gate check takes a millisecond, a
/// large Group PUT or an import seconds.
const DURATION_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
static TENANT_LABELS: AtomicBool = AtomicBool::new(false);

/// Installs the recorder on first use (the server calls it at start; tests
/// that build several servers in one process share it). `None` only if another
/// recorder was installed first.
pub fn install() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full(HTTP_DURATION.into()), DURATION_BUCKETS)
                .ok()?;
            match builder.install_recorder() {
                Ok(h) => {
                    metrics::gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
                    Some(h)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "metrics recorder not installed; /metrics stays empty");
                    None
                }
            }
        })
        .as_ref()
}

/// The Prometheus text exposition of every family recorded so far.
pub fn render() -> String {
    install().map(|h| h.render()).unwrap_or_default()
}

/// Drains histogram samples into their buckets, so memory stays flat between
/// scrapes (a background task calls it every few seconds).
pub fn upkeep() {
    if let Some(h) = install() {
        h.run_upkeep();
    }
}

/// Whether per-tenant families carry a `tenant` label (`metrics_tenant_labels`).
pub fn set_tenant_labels(on: bool) {
    TENANT_LABELS.store(on, Ordering::Relaxed);
}

pub fn tenant_labels() -> bool {
    TENANT_LABELS.load(Ordering::Relaxed)
}

/// A webhook endpoint's label: a short hash of the tenant id and the URL, so
/// neither appears in a scrape (README "Metrics" gives the derivation, so an
/// operator can map an alert back to the endpoint).
pub fn endpoint_id(tenant_id: &str, url: &str) -> String {
    let mut h = Sha256::new();
    h.update(tenant_id.as_bytes());
    h.update([0]);
    h.update(url.as_bytes());
    hex::encode(&h.finalize()[..6])
}

fn with_tenant(mut labels: Vec<Label>, tenant: &str) -> Vec<Label> {
    if tenant_labels() {
        labels.push(Label::new("tenant", tenant.to_string()));
    }
    labels
}

/// One HTTP request: `route` is the matched template (`/scim/v2/Users/{id}`)
/// or `UNMATCHED_ROUTE`.
pub fn http_request(route: &str, method: &str, status: u16, seconds: f64) {
    metrics::counter!(
        HTTP_REQUESTS,
        "route" => route.to_string(),
        "method" => method.to_string(),
        "status" => status.to_string()
    )
    .increment(1);
    metrics::histogram!(
        HTTP_DURATION,
        "route" => route.to_string(),
        "method" => method.to_string()
    )
    .record(seconds);
}

/// A disposal request's outcome (`disposed`, `held`, `failed`) by cause.
pub fn disposal(cause: &str, outcome: &str, tenant: &str) {
    let labels = vec![
        Label::new("cause", cause.to_string()),
        Label::new("outcome", outcome.to_string()),
    ];
    metrics::counter!(DISPOSALS, with_tenant(labels, tenant)).increment(1);
}

/// A gate answer.
pub fn gate_decision(decision: &str, reason: &str, tenant: &str) {
    let labels = vec![
        Label::new("decision", decision.to_string()),
        Label::new("reason", reason.to_string()),
    ];
    metrics::counter!(GATE_DECISIONS, with_tenant(labels, tenant)).increment(1);
}

/// One webhook send: `delivered` (2xx) or `failed`.
pub fn webhook_delivery(endpoint: &str, outcome: &str, tenant: &str) {
    let labels = vec![
        Label::new("endpoint", endpoint.to_string()),
        Label::new("outcome", outcome.to_string()),
    ];
    metrics::counter!(WEBHOOK_DELIVERIES, with_tenant(labels, tenant)).increment(1);
}

/// Events not yet delivered to an endpoint, and whether it is paused.
pub fn webhook_backlog(endpoint: &str, tenant: &str, pending: u64, paused: bool) {
    let labels = with_tenant(vec![Label::new("endpoint", endpoint.to_string())], tenant);
    metrics::gauge!(WEBHOOK_PENDING, labels.clone()).set(pending as f64);
    metrics::gauge!(WEBHOOK_PAUSED, labels).set(if paused { 1.0 } else { 0.0 });
}

/// Open disposals in one state (`scheduled`, `held`), all tenants.
pub fn disposals_open(state: &str, n: u64) {
    metrics::gauge!(DISPOSALS_OPEN, "state" => state.to_string()).set(n as f64);
}

/// Database connections in one state (`idle`, `in_use`, `max`).
pub fn db_pool(state: &'static str, n: u32) {
    metrics::gauge!(DB_POOL, "state" => state).set(f64::from(n));
}

/// A background task completed a pass at `unix_seconds`.
pub fn background_pass(task: &'static str, unix_seconds: f64) {
    metrics::gauge!(BACKGROUND_LAST_RUN, "task" => task).set(unix_seconds);
}

/// A background task's pass panicked (caught; the loop goes on).
pub fn background_panic(task: &'static str) {
    metrics::counter!(BACKGROUND_PANICS, "task" => task).increment(1);
}

/// Whether a background task has gone several periods without a pass.
pub fn background_stale(task: &'static str, stale: bool) {
    metrics::gauge!(BACKGROUND_STALE, "task" => task).set(if stale { 1.0 } else { 0.0 });
}

/// What this replica last saw of the live replicas (its own row included):
/// how many, whether one enforces another policy than this one, and whether
/// they run different versions or schemas (a rolling upgrade).
pub fn replicas(live: usize, digest_mismatch: bool, version_mismatch: bool) {
    metrics::gauge!(REPLICAS_LIVE).set(live as f64);
    metrics::gauge!(POLICY_DIGEST_MISMATCH).set(if digest_mismatch { 1.0 } else { 0.0 });
    metrics::gauge!(REPLICA_VERSION_MISMATCH).set(if version_mismatch { 1.0 } else { 0.0 });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_id_is_short_opaque_and_stable() {
        let a = endpoint_id("t1", "https://hooks.example.com/custodian");
        assert_eq!(a.len(), 12);
        assert!(!a.contains("example"));
        assert_eq!(a, endpoint_id("t1", "https://hooks.example.com/custodian"));
        assert_ne!(a, endpoint_id("t2", "https://hooks.example.com/custodian"));
    }

    #[test]
    fn families_render_with_their_names_and_labels() {
        install();
        http_request("/scim/v2/Users/{id}", "GET", 200, 0.003);
        gate_decision("deny", "tombstoned", "acme");
        let text = render();
        assert!(text.contains(
            "custodian_http_requests_total{route=\"/scim/v2/Users/{id}\",method=\"GET\",status=\"200\"}"
        ), "{text}");
        assert!(text.contains("custodian_http_request_duration_seconds_bucket{route=\"/scim/v2/Users/{id}\",method=\"GET\",le=\"0.005\"}"), "{text}");
        assert!(text.contains("custodian_build_info{version=\""), "{text}");
        // Tenant labels are off by default: the tenant's name is nowhere.
        assert!(!text.contains("acme"), "{text}");
    }
}

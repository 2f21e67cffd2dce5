//! `GET /metrics` (Prometheus text format): on the main port for an
//! `admin`-scope token; on `metrics_bind`, when set, without one (a
//! management address). The database gauges are refreshed by the scrape
//! itself, on a blocking thread, from a few bounded reads (`store::gauges`).

use super::auth::AdminCaller;
use super::error::ApiError;
use super::{AppState, blocking};
use crate::store::gauges;
use actix_web::{HttpResponse, web};
use std::sync::Mutex;

const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// One scrape refreshes and renders at a time, so a scrape's gauges are the
/// ones it read (and a flood of scrapes queues on one thread's work).
static SCRAPE: Mutex<()> = Mutex::new(());

/// `/metrics` on the main port. Any tenant's admin token may scrape it, so
/// it never shows a series labelled with a tenant (`metrics_tenant_labels`):
/// those are for the management address only.
pub async fn scrape_admin(
    state: web::Data<AppState>,
    _w: AdminCaller,
) -> Result<HttpResponse, ApiError> {
    scrape(state, false).await
}

/// `/metrics` on `metrics_bind`.
pub async fn scrape_open(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    scrape(state, true).await
}

async fn scrape(state: web::Data<AppState>, tenants: bool) -> Result<HttpResponse, ApiError> {
    let st = state.clone();
    let text = blocking(move || {
        let _one = SCRAPE.lock().unwrap_or_else(|p| p.into_inner());
        refresh(&st);
        let all = crate::metrics::render();
        Ok(if tenants { all } else { without_tenants(&all) })
    })
    .await?;
    Ok(HttpResponse::Ok().content_type(CONTENT_TYPE).body(text))
}

/// The exposition without the samples that carry a `tenant` label.
fn without_tenants(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        if line.starts_with('#') || !(line.contains("{tenant=\"") || line.contains(",tenant=\"")) {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// Sets the gauges that are read, not counted: the pool, the background
/// tasks' staleness, open disposals and webhook backlogs. A failed read
/// leaves the previous values (and says so in the log).
fn refresh(st: &AppState) {
    let (open, idle) = st.db.pool_state();
    crate::metrics::db_pool("idle", idle);
    crate::metrics::db_pool("in_use", open.saturating_sub(idle));
    crate::metrics::db_pool("max", st.db.pool_size());
    // Sets `custodian_background_task_stale` as a side effect.
    let _ = st.background.status();
    match st.db.read(gauges::disposals_open) {
        Ok(rows) => {
            for (state, n) in rows {
                crate::metrics::disposals_open(state.as_str(), u64::try_from(n).unwrap_or(0));
            }
        }
        Err(e) => tracing::warn!(error = %e, "metrics: open disposals not read"),
    }
    match st.db.read(gauges::webhook_backlogs) {
        Ok(rows) => {
            for b in rows {
                crate::metrics::webhook_backlog(
                    &crate::metrics::endpoint_id(&b.tenant_id, &b.endpoint),
                    &b.tenant_name,
                    u64::try_from(b.pending).unwrap_or(0),
                    b.paused,
                );
            }
        }
        Err(e) => tracing::warn!(error = %e, "metrics: webhook backlogs not read"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_main_port_drops_tenant_labelled_samples() {
        let text = "# TYPE custodian_gate_decisions_total counter\n\
            custodian_gate_decisions_total{decision=\"allow\",reason=\"active\"} 3\n\
            custodian_gate_decisions_total{decision=\"allow\",reason=\"active\",tenant=\"acme\"} 3\n\
            custodian_disposals_total{tenant=\"acme\",cause=\"delete\"} 1\n";
        let shown = super::without_tenants(text);
        assert!(!shown.contains("acme"), "{shown}");
        assert!(shown.contains("reason=\"active\"} 3"), "{shown}");
        assert!(shown.starts_with("# TYPE"), "{shown}");
    }
}

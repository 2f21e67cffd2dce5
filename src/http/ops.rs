//! Operational endpoints and the catch-all 404.

use super::error::ApiError;
use super::{AppState, blocking};
use crate::scim::error::ScimError;
use actix_web::{HttpRequest, HttpResponse, web};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz))
        .route("/metrics", web::get().to(super::metrics::scrape_admin));
}

/// Alive: the process answers.
async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

/// Ready: the database answers. 503 only then: a stale background task is
/// reported in the body (and the metrics), never as a 503, which would pull
/// every replica, and the gate, out of the load balancer at once. So are the
/// replica registry's warnings (another live replica on another policy file,
/// or on another version), as of this replica's last heartbeat.
async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let st = state.clone();
    let db = blocking(move || st.db.ping().map_err(ApiError::from)).await;
    if let Err(e) = &db {
        tracing::warn!(error = ?e, "readyz: the database does not answer");
    }
    let ok = db.is_ok();
    let body = serde_json::json!({
        "status": if ok { "ready" } else { "unavailable" },
        "database": if ok { "ok" } else { "unreachable" },
        "tasks": state.background.status(),
        "replica": readyz_replica(state.replica.summary()),
    });
    if ok {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

/// The registry as `/readyz` shows it: this replica, the two warnings and the
/// live replicas' ids, versions and digests (the admin view has the rest).
fn readyz_replica(s: crate::background::replicas::ReplicaRegistry) -> serde_json::Value {
    let live: Vec<serde_json::Value> = s
        .replicas
        .iter()
        .filter(|r| r.live)
        .map(|r| {
            serde_json::json!({
                "id": r.id, "version": r.version, "schemaVersion": r.schema_version,
                "policyDigest": r.policy_digest, "this": r.this,
            })
        })
        .collect();
    serde_json::json!({
        "id": s.replica_id,
        "version": s.version,
        "schemaVersion": s.schema_version,
        "policyDigest": s.policy_digest,
        "policyDigestMismatch": s.policy_digest_mismatch,
        "versionMismatch": s.version_mismatch,
        "warnings": s.warnings,
        "live": live,
    })
}

pub async fn not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::Scim(ScimError::not_found(format!(
        "no such endpoint: {} {}",
        req.method(),
        req.path()
    ))))
}

pub async fn method_not_allowed(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::Scim(ScimError::new(
        405,
        None,
        format!("{} is not allowed on {}", req.method(), req.path()),
    )))
}

pub async fn not_implemented(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let me = req.path().contains("/Me");
    let what = if me {
        "Me".to_string()
    } else {
        req.path()
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string()
    };
    Err(ApiError::Scim(ScimError::not_implemented(match what.as_str() {
        "Me" => "/Me is not supported: Custodian's tokens belong to identity-provider clients, not to people".to_string(),
        _ => format!("{what} is not supported"),
    })))
}

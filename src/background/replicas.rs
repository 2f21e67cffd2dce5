//! The replica registry, live side: this process's row (`store::replicas`),
//! refreshed by the `heartbeat` task every `HEARTBEAT`, and what it last read
//! of the other replicas, for `/readyz`, the metrics and
//! `GET /admin/v1/replicas`.
//!
//! A replica is *live* while its row is younger than `LIVE_FOR` (four missed
//! heartbeats); rows older than `SWEEP_AFTER` are deleted by whichever
//! replica beats next (one that was SIGKILLed never deletes its own). Two
//! warnings come out of it, never an unreadiness (a 503 would pull every
//! replica out of the load balancer for a configuration slip): another live
//! replica enforcing a policy file with another digest (a SIGHUP given to one
//! replica only), and live replicas of different versions or schemas (a
//! rolling upgrade in progress, README "Upgrade").
//!
//! Times are wall-clock (not the service `Clock`, which tests move by hours),
//! written by each replica: a clock skew between hosts of more than a few
//! seconds shifts when a replica is seen as gone.

use crate::store::replicas::{self, ReplicaRow};
use crate::store::{Db, StoreError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const HEARTBEAT: Duration = Duration::from_secs(5);
/// A row not refreshed for this long is not live.
pub const LIVE_FOR: Duration = Duration::from_secs(20);
/// A row not refreshed for this long is deleted.
pub const SWEEP_AFTER: Duration = Duration::from_secs(600);

/// One replica as reported.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReplicaInfo {
    pub id: String,
    /// `host:pid`.
    pub label: String,
    pub version: String,
    /// The newest migration the replica's binary knows.
    pub schema_version: String,
    pub policy_digest: String,
    pub started_at: String,
    pub last_seen: String,
    /// Seen within the last 20 s (four heartbeats).
    pub live: bool,
    /// The replica answering.
    pub this: bool,
}

/// What one replica knows of the registry.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReplicaRegistry {
    /// This replica's id.
    pub replica_id: String,
    pub version: String,
    pub schema_version: String,
    /// SHA-256 over every effective policy this replica enforces (the
    /// default and each tenant's): equal digests, equal policies.
    pub policy_digest: String,
    /// Live replicas, this one included.
    pub live: usize,
    /// A live replica enforces a policy with another digest.
    pub policy_digest_mismatch: bool,
    /// Live replicas run different versions or schemas: a rolling upgrade
    /// in progress.
    pub version_mismatch: bool,
    /// The two conditions above, in words.
    pub warnings: Vec<String>,
    /// Rows seen within the last 10 minutes (the live ones and the recently
    /// gone), oldest start first.
    pub replicas: Vec<ReplicaInfo>,
}

/// This process in the registry.
pub struct Registry {
    me: Mutex<ReplicaRow>,
    /// The rows the last heartbeat read (this one's included).
    seen: Mutex<Vec<ReplicaRow>>,
}

fn ago(d: Duration) -> String {
    crate::store::time::format(
        chrono::Utc::now()
            - chrono::Duration::from_std(d).unwrap_or_else(|_| chrono::Duration::zero()),
    )
}

fn host_label() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown-host".into());
    format!("{host}:{}", std::process::id())
}

impl Registry {
    /// A new replica (a new random id) enforcing a policy of `policy_digest`.
    pub fn new(policy_digest: String) -> Arc<Registry> {
        let now = crate::store::time::now();
        Arc::new(Registry {
            me: Mutex::new(ReplicaRow {
                id: uuid::Uuid::new_v4().to_string(),
                label: host_label(),
                version: env!("CARGO_PKG_VERSION").to_string(),
                schema_version: crate::store::migrate::schema_version(),
                policy_digest,
                started_at: now.clone(),
                last_seen: now,
            }),
            seen: Mutex::new(Vec::new()),
        })
    }

    fn me(&self) -> ReplicaRow {
        self.me.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn id(&self) -> String {
        self.me().id
    }

    /// After a policy reload (SIGHUP): reported at once by this replica's
    /// `/readyz`, and to the others once `beat` has written it.
    pub fn set_policy_digest(&self, digest: String) {
        self.me
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .policy_digest = digest;
    }

    /// One heartbeat: this replica's row written, rows past `SWEEP_AFTER`
    /// deleted, the recent rows read (for `summary`) and the metrics set.
    /// Three short statements in one write transaction.
    pub fn beat(&self, db: &Db) -> Result<(), StoreError> {
        let row = {
            let mut me = self.me.lock().unwrap_or_else(|p| p.into_inner());
            me.last_seen = crate::store::time::now();
            me.clone()
        };
        let (swept_before, recent) = (ago(SWEEP_AFTER), ago(SWEEP_AFTER));
        let rows = db.write(|c| {
            replicas::beat(c, &row)?;
            replicas::sweep(c, &swept_before)?;
            replicas::seen_since(c, &recent)
        })?;
        *self.seen.lock().unwrap_or_else(|p| p.into_inner()) = rows;
        let s = self.summary();
        crate::metrics::replicas(s.live, s.policy_digest_mismatch, s.version_mismatch);
        Ok(())
    }

    /// What the last heartbeat saw, with this replica's current digest.
    pub fn summary(&self) -> ReplicaRegistry {
        let rows = self.seen.lock().unwrap_or_else(|p| p.into_inner()).clone();
        summarize(&self.me(), rows, &ago(LIVE_FOR))
    }

    /// The registry as the database holds it now (the admin view).
    pub fn read(&self, db: &Db) -> Result<ReplicaRegistry, StoreError> {
        let rows = db.read(|c| replicas::seen_since(c, &ago(SWEEP_AFTER)))?;
        Ok(summarize(&self.me(), rows, &ago(LIVE_FOR)))
    }

    /// A clean shutdown: the row is deleted, so the others stop counting
    /// this replica at once.
    pub fn leave(&self, db: &Db) -> Result<(), StoreError> {
        let id = self.id();
        db.write(|c| replicas::remove(c, &id))
    }
}

/// The summary of `rows` as `me` sees them: `me`'s own current values replace
/// its stored row (a reload not yet written counts already); rows last seen
/// before `live_since` are listed but not live.
pub fn summarize(me: &ReplicaRow, rows: Vec<ReplicaRow>, live_since: &str) -> ReplicaRegistry {
    let mut list: Vec<ReplicaInfo> = rows
        .into_iter()
        .filter(|r| r.id != me.id)
        .map(|r| ReplicaInfo {
            live: r.last_seen.as_str() >= live_since,
            this: false,
            id: r.id,
            label: r.label,
            version: r.version,
            schema_version: r.schema_version,
            policy_digest: r.policy_digest,
            started_at: r.started_at,
            last_seen: r.last_seen,
        })
        .collect();
    list.push(ReplicaInfo {
        id: me.id.clone(),
        label: me.label.clone(),
        version: me.version.clone(),
        schema_version: me.schema_version.clone(),
        policy_digest: me.policy_digest.clone(),
        started_at: me.started_at.clone(),
        last_seen: me.last_seen.clone(),
        live: true,
        this: true,
    });
    list.sort_by(|a, b| (&a.started_at, &a.id).cmp(&(&b.started_at, &b.id)));
    let live: Vec<&ReplicaInfo> = list.iter().filter(|r| r.live).collect();
    let other_digests: Vec<&ReplicaInfo> = live
        .iter()
        .copied()
        .filter(|r| r.policy_digest != me.policy_digest)
        .collect();
    let version_mismatch = live
        .iter()
        .any(|r| r.version != me.version || r.schema_version != me.schema_version);
    let mut warnings = Vec::new();
    if !other_digests.is_empty() {
        let names: Vec<String> = other_digests
            .iter()
            .map(|r| {
                format!(
                    "{} ({}, policy digest {})",
                    r.id,
                    r.label,
                    short(&r.policy_digest)
                )
            })
            .collect();
        warnings.push(format!(
            "policy digest mismatch: this replica enforces policy {}, live replica(s) {} another; \
             reload the same policy file on every replica (SIGHUP)",
            short(&me.policy_digest),
            names.join(", ")
        ));
    }
    if version_mismatch {
        let mut versions: Vec<String> = live
            .iter()
            .map(|r| format!("{} (schema {})", r.version, r.schema_version))
            .collect();
        versions.sort();
        versions.dedup();
        warnings.push(format!(
            "live replicas run different versions: {}; a rolling upgrade is in progress (README \"Upgrade\")",
            versions.join(", ")
        ));
    }
    ReplicaRegistry {
        replica_id: me.id.clone(),
        version: me.version.clone(),
        schema_version: me.schema_version.clone(),
        policy_digest: me.policy_digest.clone(),
        live: live.len(),
        policy_digest_mismatch: !other_digests.is_empty(),
        version_mismatch,
        warnings,
        replicas: list,
    }
}

fn short(digest: &str) -> &str {
    digest.get(..12).unwrap_or(digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, digest: &str, version: &str, last_seen: &str) -> ReplicaRow {
        ReplicaRow {
            id: id.into(),
            label: format!("host:{id}"),
            version: version.into(),
            schema_version: "20261207010000".into(),
            policy_digest: digest.into(),
            started_at: "2026-12-07T00:00:00.000000Z".into(),
            last_seen: last_seen.into(),
        }
    }

    #[test]
    fn a_live_replica_with_another_digest_or_version_is_reported_a_gone_one_is_not() {
        let me = row("a", "d1", "1.0.0", "2026-12-07T01:00:10.000000Z");
        let since = "2026-12-07T01:00:00.000000Z";
        // Alone, or with a peer of the same digest: no warning.
        let s = summarize(
            &me,
            vec![row("b", "d1", "1.0.0", "2026-12-07T01:00:05.000000Z")],
            since,
        );
        assert_eq!(
            (s.live, s.policy_digest_mismatch, s.version_mismatch),
            (2, false, false)
        );
        assert!(s.warnings.is_empty());
        // A live peer on another policy: mismatch, named.
        let s = summarize(
            &me,
            vec![row("b", "d2", "1.0.0", "2026-12-07T01:00:05.000000Z")],
            since,
        );
        assert!(s.policy_digest_mismatch && !s.version_mismatch);
        assert!(
            s.warnings[0].contains("policy digest mismatch") && s.warnings[0].contains("b (host:b")
        );
        // The same peer gone (last seen before `since`): listed, not live, no warning.
        let s = summarize(
            &me,
            vec![row("b", "d2", "1.1.0", "2026-12-07T00:59:00.000000Z")],
            since,
        );
        assert_eq!(
            (s.live, s.policy_digest_mismatch, s.version_mismatch),
            (1, false, false)
        );
        assert_eq!(s.replicas.len(), 2);
        assert!(s.replicas.iter().any(|r| r.id == "b" && !r.live));
        // A live peer of another version: a rolling upgrade.
        let s = summarize(
            &me,
            vec![row("b", "d1", "1.1.0", "2026-12-07T01:00:05.000000Z")],
            since,
        );
        assert!(s.version_mismatch && !s.policy_digest_mismatch);
        assert!(s.warnings[0].contains("1.0.0") && s.warnings[0].contains("1.1.0"));
        // This replica's stored row is replaced by its current values (a
        // reload not yet written).
        let stale_me = row("a", "d0", "1.0.0", since);
        let s = summarize(&me, vec![stale_me], since);
        assert_eq!(s.replicas.len(), 1);
        assert!(!s.policy_digest_mismatch && s.replicas[0].this);
    }
}

//! The server's background tasks, each a supervised loop (`Supervisor`):
//!
//! - `scheduler`: grace expiry needs no external cron; what is due runs every
//!   30 s (each disposal is claimed in the database, so replicas may run it
//!   together). The same loop keeps planner statistics fresh (every 5 s on
//!   PostgreSQL, a catalog query when nothing changed; every 10 minutes on
//!   SQLite).
//! - `checkpointer` (SQLite): WAL checkpoints five times a second, rather than
//!   inside the commit of whichever request crosses the WAL size limit.
//! - `relay`: webhook delivery; a pass every 2 s starts a worker thread for
//!   each endpoint not already being delivered to (leased in the database, so
//!   replicas share the work without double delivery).
//!   Every minute it also deletes expired console sessions.
//! - `metrics`: histogram upkeep, so memory stays flat between scrapes.
//! - `heartbeat`: this replica's row in the replica registry
//!   (`replicas.rs`), every 5 s: a task of its own, so a long scheduler pass
//!   (a large disposal) does not make the replica look gone.

use super::Supervisor;
use super::replicas::Registry;
use crate::deprovision::service::Deprov;
use crate::events::relay::{Relay, RelayOptions};
use crate::store::{Backend, Db};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const SCHEDULER: &str = "scheduler";
pub const CHECKPOINTER: &str = "checkpointer";
pub const RELAY: &str = "relay";
pub const METRICS: &str = "metrics";
pub const HEARTBEAT: &str = "heartbeat";

/// The running tasks, for shutdown.
pub struct Background {
    pub supervisor: Arc<Supervisor>,
    relay: Arc<Relay>,
    registry: Arc<Registry>,
    db: Db,
}

/// Starts every task.
pub fn start(
    db: &Db,
    deprov: &Arc<Deprov>,
    event_retention: Duration,
    console_idle_timeout: Duration,
    relay_options: RelayOptions,
    registry: &Arc<Registry>,
) -> Result<Background, String> {
    let supervisor = Supervisor::new();
    let spawn_err = |e: std::io::Error| format!("cannot start a background thread: {e}");

    let (d, dp) = (db.clone(), Arc::clone(deprov));
    let mut passes: u64 = 0;
    supervisor
        .spawn(SCHEDULER, Duration::from_secs(5), move || {
            // Counted before the work, so a pass that panics moves on.
            let n = passes;
            passes += 1;
            d.refresh_statistics();
            if n.is_multiple_of(120) {
                d.optimize();
                // Every 10 minutes: events past `event_retention`, in batches.
                match crate::events::retention::purge_past(&d, event_retention, dp.clock.now()) {
                    Ok(p) if p.events > 0 => tracing::info!(
                        events = p.events,
                        endpoints_skipped = p.endpoints_skipped,
                        "events past event_retention deleted"
                    ),
                    Ok(_) => {}
                    Err(e) => tracing::error!(error = %e, "event retention pass failed"),
                }
            }
            // Every minute: expired console sessions, in bounded batches.
            if n.is_multiple_of(12) {
                match sweep_console_sessions(&d, dp.clock.now(), console_idle_timeout) {
                    Ok(0) => {}
                    Ok(n) => tracing::debug!(sessions = n, "expired console sessions deleted"),
                    Err(e) => tracing::error!(error = %e, "console session sweep failed"),
                }
            }
            if n.is_multiple_of(6) {
                match dp.run_due(&d) {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(disposals = n, "scheduled disposals ran"),
                    Err(e) => tracing::error!(error = %e, "scheduler pass failed"),
                }
            }
        })
        .map_err(spawn_err)?;

    if db.backend() == Backend::Sqlite {
        let d = db.clone();
        supervisor
            .spawn(CHECKPOINTER, Duration::from_millis(200), move || {
                d.checkpoint_passive()
            })
            .map_err(spawn_err)?;
    }

    // Webhook secrets are named by `secret_env` in the policy: any variable name.
    let relay = Arc::new(Relay::with_options(
        Box::new(|name: &str| std::env::var(name).ok()),
        relay_options,
    ));
    let (d, dp, r) = (db.clone(), Arc::clone(deprov), Arc::clone(&relay));
    supervisor
        .spawn(RELAY, Duration::from_secs(2), move || {
            if let Err(e) = r.spawn_pass(&d, &dp) {
                tracing::error!(error = %e, "webhook relay pass failed");
            }
        })
        .map_err(spawn_err)?;

    supervisor
        .spawn(METRICS, Duration::from_secs(5), crate::metrics::upkeep)
        .map_err(spawn_err)?;

    let (d, reg) = (db.clone(), Arc::clone(registry));
    supervisor
        .spawn(HEARTBEAT, super::replicas::HEARTBEAT, move || {
            if let Err(e) = reg.beat(&d) {
                tracing::warn!(error = %e, "replica heartbeat failed");
            }
        })
        .map_err(spawn_err)?;

    Ok(Background {
        supervisor,
        relay,
        registry: Arc::clone(registry),
        db: db.clone(),
    })
}

/// Deletes console sessions idle for `idle` or older than the absolute
/// limit (`store::console::MAX_AGE_SECONDS`): batches of 500, at most 20
/// per pass, each its own short write. Returns how many.
pub fn sweep_console_sessions(
    db: &Db,
    now: chrono::DateTime<chrono::Utc>,
    idle: Duration,
) -> Result<usize, crate::store::StoreError> {
    let idle = chrono::Duration::from_std(idle).unwrap_or(chrono::Duration::minutes(30));
    let idle_before = crate::store::time::format(now - idle);
    let created_before = crate::store::time::format(
        now - chrono::Duration::seconds(crate::store::console::MAX_AGE_SECONDS),
    );
    let mut total = 0;
    for _ in 0..20 {
        let n =
            db.write(|c| crate::store::console::sweep(c, &idle_before, &created_before, 500))?;
        total += n;
        if n < 500 {
            break;
        }
    }
    Ok(total)
}

impl Background {
    /// Shutdown, after the HTTP server stopped: the loops end between passes,
    /// webhook workers before their next send, every lease this process
    /// holds is released, and SQLite's WAL is folded into the file. Bounded
    /// by `timeout` (passes and sends in progress may take that long).
    pub fn shutdown(self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        self.relay.stop();
        if !self.supervisor.stop_and_join(timeout) {
            tracing::warn!("a background pass was still running at the shutdown timeout");
        }
        // Workers end after their current send (bounded by the webhook timeout).
        while !self.relay.idle() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        match self.relay.release_all(&self.db) {
            Ok(0) => {}
            Ok(n) => tracing::info!(leases = n, "webhook leases released"),
            Err(e) => {
                tracing::warn!(error = %e, "webhook leases were not released; they expire on their own")
            }
        }
        // A queued DELETE's batch commits, then journals: never exit between.
        let left = deadline.saturating_duration_since(Instant::now());
        if !self.db.drain_write_queue(left.max(Duration::from_secs(5))) {
            tracing::error!(
                "the write queue was still running at shutdown: its last batch may be committed but not journaled"
            );
        }
        // The other replicas stop counting this one at once.
        if let Err(e) = self.registry.leave(&self.db) {
            tracing::warn!(error = %e, "this replica's registry row was not removed; it is ignored after 20 s");
        }
        self.db.checkpoint();
    }
}

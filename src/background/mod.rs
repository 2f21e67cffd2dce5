//! Supervised background loops. Each task runs passes on its own thread,
//! `period` apart: a panicking pass is caught, logged and counted, and the
//! loop goes on (a bug in one disposal must not stop grace expiry for
//! everyone); each completed pass is recorded (for `/readyz` and the
//! `custodian_background_*` metrics); the stop signal is checked between
//! passes, and wakes a task sleeping between them at once (SIGTERM).
//!
//! This file knows nothing of what the tasks do (`tasks.rs` does), so the
//! HTTP layer can read their status without importing the services;
//! `replicas.rs` is the replica registry the `heartbeat` task keeps.

pub mod replicas;
pub mod tasks;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

/// A task is stale after this many periods without a completed pass (and
/// never sooner than `STALE_MIN`): a pass may legitimately take a while (a
/// large disposal), so only a long silence is reported.
const STALE_PERIODS: u32 = 10;
const STALE_MIN: Duration = Duration::from_secs(60);

/// The stop signal: set once, wakes every task waiting between passes.
#[derive(Default)]
pub struct Stop {
    stopped: Mutex<bool>,
    wake: Condvar,
}

impl Stop {
    pub fn stop(&self) {
        *self.stopped.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.wake.notify_all();
    }

    pub fn is_stopped(&self) -> bool {
        *self.stopped.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits up to `d`; true when stopped (at once if already).
    pub fn wait(&self, d: Duration) -> bool {
        let guard = self.stopped.lock().unwrap_or_else(|p| p.into_inner());
        let (guard, _) = self
            .wake
            .wait_timeout_while(guard, d, |stopped| !*stopped)
            .unwrap_or_else(|p| p.into_inner());
        *guard
    }
}

/// One task's record.
struct Task {
    name: &'static str,
    period: Duration,
    started: Instant,
    /// The last completed pass: when (monotonic, for staleness) and the wall
    /// clock (for the body and the metric).
    last: Mutex<Option<(Instant, SystemTime)>>,
    passes: AtomicU64,
    panics: AtomicU64,
}

impl Task {
    fn stale_after(&self) -> Duration {
        self.period.saturating_mul(STALE_PERIODS).max(STALE_MIN)
    }
}

/// What `/readyz` reports of one task.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TaskStatus {
    pub task: &'static str,
    /// RFC 3339, UTC; `None` before the first pass.
    pub last_pass: Option<String>,
    /// Seconds since the last pass (or since the task started, before it).
    pub seconds_since_last_pass: u64,
    pub period_seconds: f64,
    pub passes: u64,
    pub panics: u64,
    /// No completed pass for several periods: reported, never a 503 (a stuck
    /// scheduler must not take the gate out of the load balancer).
    pub stale: bool,
}

/// The background tasks of one process and their stop signal.
#[derive(Default)]
pub struct Supervisor {
    stop: Arc<Stop>,
    tasks: Mutex<Vec<Arc<Task>>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Supervisor {
    pub fn new() -> Arc<Supervisor> {
        Arc::new(Supervisor::default())
    }

    /// The signal tasks check between passes (the relay's workers also check
    /// it between events).
    pub fn stop_signal(&self) -> Arc<Stop> {
        Arc::clone(&self.stop)
    }

    /// Runs `pass` every `period` on a thread named after the task, until
    /// stopped.
    pub fn spawn(
        &self,
        name: &'static str,
        period: Duration,
        mut pass: impl FnMut() + Send + 'static,
    ) -> std::io::Result<()> {
        let task = Arc::new(Task {
            name,
            period,
            started: Instant::now(),
            last: Mutex::new(None),
            passes: AtomicU64::new(0),
            panics: AtomicU64::new(0),
        });
        let stop = Arc::clone(&self.stop);
        let t = Arc::clone(&task);
        let handle = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                while !stop.is_stopped() {
                    // The pass's state is rebuilt or re-read on the next pass
                    // (database rows, poisoned locks are recovered), so
                    // continuing after a panic is safe.
                    match catch_unwind(AssertUnwindSafe(&mut pass)) {
                        Ok(()) => t.record_pass(),
                        Err(_) => {
                            t.panics.fetch_add(1, Ordering::Relaxed);
                            crate::metrics::background_panic(t.name);
                            tracing::error!(
                                task = t.name,
                                "background pass panicked; the loop goes on"
                            );
                        }
                    }
                    if stop.wait(t.period) {
                        break;
                    }
                }
                tracing::info!(task = t.name, "background task stopped");
            })?;
        self.tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(task);
        self.threads
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(handle);
        Ok(())
    }

    /// Every task's status now.
    pub fn status(&self) -> Vec<TaskStatus> {
        self.status_at(Instant::now())
    }

    /// Every task's status as of `now` (tests look ahead without sleeping).
    pub fn status_at(&self, now: Instant) -> Vec<TaskStatus> {
        let tasks = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
        tasks
            .iter()
            .map(|t| {
                let last = *t.last.lock().unwrap_or_else(|p| p.into_inner());
                let since = now.saturating_duration_since(last.map_or(t.started, |(i, _)| i));
                let stale = since > t.stale_after();
                crate::metrics::background_stale(t.name, stale);
                TaskStatus {
                    task: t.name,
                    last_pass: last.map(|(_, w)| {
                        chrono::DateTime::<chrono::Utc>::from(w)
                            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
                    }),
                    seconds_since_last_pass: since.as_secs(),
                    period_seconds: t.period.as_secs_f64(),
                    passes: t.passes.load(Ordering::Relaxed),
                    panics: t.panics.load(Ordering::Relaxed),
                    stale,
                }
            })
            .collect()
    }

    /// Signals every task to stop and waits, up to `timeout`, for each to end
    /// its current pass. True when all ended in time.
    pub fn stop_and_join(&self, timeout: Duration) -> bool {
        self.stop.stop();
        let deadline = Instant::now() + timeout;
        let threads: Vec<JoinHandle<()>> = self
            .threads
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
            .collect();
        let mut all = true;
        for h in threads {
            // A bounded join: JoinHandle has no timed join, so poll `is_finished`.
            while !h.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            if h.is_finished() {
                let _ = h.join();
            } else {
                all = false;
            }
        }
        all
    }
}

impl Task {
    fn record_pass(&self) {
        let wall = SystemTime::now();
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Some((Instant::now(), wall));
        self.passes.fetch_add(1, Ordering::Relaxed);
        let unix = wall
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        crate::metrics::background_pass(self.name, unix);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// Polls `f` until true, for at most 10 s.
    fn eventually(f: impl Fn() -> bool) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if f() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        f()
    }

    #[test]
    fn a_panicking_pass_is_counted_and_the_loop_goes_on() {
        crate::metrics::install();
        let s = Supervisor::new();
        let calls = Arc::new(AtomicUsize::new(0));
        let c = Arc::clone(&calls);
        s.spawn("test-panics", Duration::from_millis(1), move || {
            if c.fetch_add(1, Ordering::SeqCst) == 0 {
                panic!("first pass fails");
            }
        })
        .ok();
        assert!(eventually(|| calls.load(Ordering::SeqCst) >= 3));
        let st = s.status();
        assert_eq!(st.len(), 1);
        assert_eq!(st[0].panics, 1);
        assert!(st[0].passes >= 2 && st[0].last_pass.is_some() && !st[0].stale);
        assert!(
            crate::metrics::render()
                .contains("custodian_background_panics_total{task=\"test-panics\"} 1")
        );
        assert!(s.stop_and_join(Duration::from_secs(10)), "the thread ended");
    }

    #[test]
    fn stop_wakes_a_task_between_passes_and_a_silent_task_turns_stale() {
        crate::metrics::install();
        let s = Supervisor::new();
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let rx = Mutex::new(rx);
        // Period of an hour: only the stop signal can end the wait.
        s.spawn("test-idle", Duration::from_secs(3600), move || {
            let _ = tx.send(());
        })
        .ok();
        assert!(
            rx.lock()
                .map(|r| r.recv_timeout(Duration::from_secs(10)).is_ok())
                .unwrap_or(false)
        );
        assert!(eventually(|| s.status()[0].passes == 1));
        assert!(!s.status()[0].stale);
        let later = Instant::now() + Duration::from_secs(11 * 3600);
        assert!(s.status_at(later)[0].stale, "ten periods without a pass");
        assert!(
            crate::metrics::render()
                .contains("custodian_background_task_stale{task=\"test-idle\"} 1")
        );
        assert!(
            s.stop_and_join(Duration::from_secs(10)),
            "woken from its hour-long wait"
        );
    }
}

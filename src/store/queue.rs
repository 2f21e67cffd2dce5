//! SQLite: the write queue. Writes handed to it from an async HTTP worker
//! (`Db::write_queued`: a SCIM DELETE's small disposal) run on one thread of
//! their own, back to back in one write group, instead of on a blocking-pool
//! thread each that then queues for the writer.
//!
//! Per write this saves the hand-off to a blocking-pool thread, the wait for
//! the writer's lock and the wait for the group's `COMMIT` (each a sleep and a
//! wake-up, `futex`), and the disposal journal's per-write append: the queue's
//! thread commits its batch, appends every record the batch queued in one
//! write with one `fsync`, and only then answers each write (its future
//! resolves on the HTTP worker). The promises are the writer's: each write
//! runs in its own savepoint (a failure undoes only itself), none is answered
//! before the shared `COMMIT`, none whose records are not yet durable in the
//! journal. Other writers (blocking-pool threads) share the writer's turn as
//! before: the thread takes it like any of them (`Writer::batch`).
//!
//! The thread starts with the first queued write and ends after `IDLE` with
//! nothing to do (it holds a handle on the pool); the next write starts it
//! again.

use super::db::Db;
use super::error::StoreError;
use super::pool::AnyConnection;
use crate::domain::journal::JournalRecord;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// Writes taken per batch at most (one write group: `writer::MAX_GROUP`).
const BATCH: usize = 32;
/// The thread ends after this long with nothing queued.
const IDLE: Duration = Duration::from_secs(5);

/// Tells a queued write's caller how it ended: the group's outcome (`Ok` once
/// committed, and journaled when the write queued records).
pub(super) type Deliver = Box<dyn FnOnce(Result<(), StoreError>) + Send>;

/// A queued write: run on the group's connection (or told why it cannot run).
pub(super) type Job = Box<dyn FnOnce(Result<&mut AnyConnection, StoreError>) -> Ran + Send>;

/// A queued write that ran (or failed before running).
pub(super) struct Ran {
    /// It succeeded: its savepoint was released into the group.
    pub ok: bool,
    /// The group's transaction is still intact (`tx::atomic`).
    pub sound: bool,
    /// The journal records it queued (none unless `ok`).
    pub records: Vec<JournalRecord>,
    pub deliver: Deliver,
}

/// The queue and whether its thread runs.
#[derive(Default)]
pub(super) struct WriteQueue {
    state: Mutex<QueueState>,
    wake: Condvar,
    /// Signalled when a batch has been committed, journaled and answered.
    settled: Condvar,
}

#[derive(Default)]
struct QueueState {
    jobs: VecDeque<Job>,
    running: bool,
    /// A batch taken off `jobs` is still being run, journaled or answered.
    in_batch: bool,
}

/// Marks the thread gone if it panics (a normal end is marked by
/// `next_batch`), so the next write starts another.
struct Running<'a>(&'a WriteQueue);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        let mut st = self.0.lock();
        st.running = false;
        st.in_batch = false;
        self.0.settled.notify_all();
        // Whatever is left (only after a panic) is failed, not lost.
        let left: Vec<Job> = st.jobs.drain(..).collect();
        drop(st);
        for job in left {
            let ran = job(Err(StoreError::Corrupt(
                "the write queue's thread stopped".into(),
            )));
            (ran.deliver)(Ok(()));
        }
    }
}

impl WriteQueue {
    fn lock(&self) -> std::sync::MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `job` for `db`'s queue thread, starting it if needed. `Err`
    /// gives the job back when no thread could be started.
    pub(super) fn push(&self, db: &Db, job: Job) -> Result<(), Job> {
        let mut st = self.lock();
        if !st.running {
            let db = db.clone();
            let spawned = std::thread::Builder::new()
                .name("write-queue".into())
                .spawn(move || db.run_queue());
            if spawned.is_err() {
                return Err(job);
            }
            st.running = true;
        }
        st.jobs.push_back(job);
        drop(st);
        self.wake.notify_one();
        Ok(())
    }

    /// The next batch: up to `BATCH` queued writes, waiting up to `IDLE` for
    /// one; `None` when none came (the thread ends).
    fn next_batch(&self) -> Option<Vec<Job>> {
        let mut st = self.lock();
        // The previous batch (if any) is answered: a drain may end.
        st.in_batch = false;
        self.settled.notify_all();
        while st.jobs.is_empty() {
            let (next, waited) = self
                .wake
                .wait_timeout(st, IDLE)
                .unwrap_or_else(|p| p.into_inner());
            st = next;
            if waited.timed_out() && st.jobs.is_empty() {
                st.running = false;
                return None;
            }
        }
        let n = st.jobs.len().min(BATCH);
        st.in_batch = true;
        Some(st.jobs.drain(..n).collect())
    }

    /// Waits, up to `timeout`, until no write is queued or in a batch: at
    /// shutdown, so the process never exits between a batch's commit and its
    /// journal append. Whether it drained.
    pub(super) fn drain(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut st = self.lock();
        while !st.jobs.is_empty() || st.in_batch {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            st = self
                .settled
                .wait_timeout(st, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        true
    }
}

impl Db {
    /// Waits, up to `timeout`, for the write queue to run, journal and answer
    /// every write given to it (nothing on PostgreSQL); whether it did.
    pub fn drain_write_queue(&self, timeout: Duration) -> bool {
        self.queue.as_deref().is_none_or(|q| q.drain(timeout))
    }

    /// The queue thread's body: batches run in the writers' turn, their
    /// journal records appended once per batch, then every write answered.
    fn run_queue(&self) {
        let (Some(writer), Some(queue)) = (self.writer.as_deref(), self.queue.as_deref()) else {
            return;
        };
        let guard = Running(queue);
        lower_priority();
        while let Some(jobs) = queue.next_batch() {
            let finished = writer.batch(&self.pool, jobs);
            // One append (one `fsync`) for the batch's committed records.
            let mut records = Vec::new();
            for (ran, group) in &finished {
                if ran.ok && group.is_ok() {
                    records.extend(ran.records.iter().cloned());
                }
            }
            let journaled = match &self.journal {
                Some(sink) if !records.is_empty() => sink.append(&records).map_err(|e| {
                    tracing::error!(error = %e, records = records.len(), "committed, but the disposal journal could not be appended to");
                    e
                }),
                _ => Ok(()),
            };
            for (ran, group) in finished {
                let outcome = match (group, &journaled) {
                    (Err(why), _) => Err(StoreError::Commit(why)),
                    (Ok(()), Err(e)) if !ran.records.is_empty() => {
                        Err(StoreError::Journal(e.clone()))
                    }
                    (Ok(()), _) => Ok(()),
                };
                (ran.deliver)(outcome);
            }
        }
        drop(guard);
    }
}

/// The queue thread's nice value (`blocking_thread_nice`: it runs tenants'
/// writes, as blocking-pool threads do), set by the server at start.
static NICE: AtomicI32 = AtomicI32::new(0);

/// Sets the nice value queue threads started from now on take.
pub fn set_write_queue_nice(nice: i32) {
    NICE.store(nice, Ordering::Relaxed);
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn lower_priority() {
    let nice = NICE.load(Ordering::Relaxed);
    if nice > 0 {
        // SAFETY: gettid has no arguments; setpriority changes only this
        // thread's own scheduling weight (raising nice needs no privilege).
        unsafe {
            let tid = libc::syscall(libc::SYS_gettid);
            libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, nice);
        }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn lower_priority() {}

#[cfg(test)]
#[allow(clippy::expect_used)]
mod tests {
    use crate::domain::journal::JournalRecord;
    use crate::store::journal_queue::{JournalSink, record_at_commit};
    use crate::store::{Db, StoreError};
    use diesel::connection::SimpleConnection;
    use diesel::prelude::*;
    use std::sync::mpsc::channel;
    use std::sync::{Arc, Mutex};

    /// A journal that remembers how many records each append carried, or fails.
    #[derive(Default)]
    struct Appends {
        sizes: Mutex<Vec<usize>>,
        fail: bool,
    }

    impl JournalSink for Appends {
        fn append(&self, records: &[JournalRecord]) -> Result<(), String> {
            if self.fail {
                return Err("the journal's disk is gone".into());
            }
            self.sizes.lock().expect("lock").push(records.len());
            Ok(())
        }
    }

    fn lifted(k: i64) -> JournalRecord {
        JournalRecord::Lifted {
            tenant_id: "t".into(),
            tombstone_ids: vec![k.to_string()],
            at: "2026-12-06T00:00:00Z".into(),
        }
    }

    #[derive(QueryableByName)]
    struct K {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        k: i64,
    }

    /// A database with an empty `scratch (k)` table, journaled to `sink`.
    fn scratch(sink: Arc<Appends>) -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join("q.db").display());
        let db = Db::open(&url, 4, true).expect("open").with_journal(sink);
        db.write(|c| {
            c.batch_execute("CREATE TABLE scratch (k INTEGER PRIMARY KEY)")
                .map_err(StoreError::from)
        })
        .expect("create");
        (dir, db)
    }

    /// Queues ten writes while another writer holds the turn (the fourth
    /// fails after writing), then lets it go; returns their answers.
    fn ten_queued_behind_a_writer(db: &Db) -> Vec<Result<i64, StoreError>> {
        let ((held_tx, held_rx), (go_tx, go_rx)) = (channel(), channel::<()>());
        let holder = db.clone();
        let held = std::thread::spawn(move || {
            holder.write(|_| {
                let _ = held_tx.send(());
                let _ = go_rx.recv();
                Ok::<_, StoreError>(())
            })
        });
        held_rx.recv().expect("the writer's turn is held");
        let queued: Vec<_> = (0..10_i64)
            .map(|k| {
                db.write_queued(move |c| {
                    c.batch_execute(&format!("INSERT INTO scratch VALUES ({k})"))
                        .map_err(StoreError::from)?;
                    record_at_commit(lifted(k));
                    if k == 3 {
                        return Err(StoreError::NotFound);
                    }
                    Ok(k)
                })
                .expect("SQLite has a write queue")
            })
            .collect();
        go_tx.send(()).expect("go");
        held.join().expect("holder").expect("held write");
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        queued.into_iter().map(|f| rt.block_on(f)).collect()
    }

    fn stored(db: &Db) -> Vec<i64> {
        db.read(|c| {
            diesel::sql_query("SELECT k FROM scratch ORDER BY k")
                .load::<K>(c)
                .map_err(StoreError::from)
        })
        .expect("read")
        .into_iter()
        .map(|r| r.k)
        .collect()
    }

    /// Writes queued together run as one batch: the failed one undoes only
    /// itself (its row and its journal record), the others are committed, and
    /// their records reach the journal in one or two appends (the thread may
    /// have taken the first write alone before the rest were queued), not
    /// one each.
    #[test]
    fn queued_writes_share_a_commit_and_a_journal_append() {
        let sink = Arc::new(Appends::default());
        let (_dir, db) = scratch(sink.clone());
        let answers = ten_queued_behind_a_writer(&db);
        for (k, a) in (0_i64..).zip(&answers) {
            match a {
                Ok(v) => assert_eq!(*v, k),
                Err(StoreError::NotFound) => assert_eq!(k, 3),
                Err(e) => panic!("write {k}: {e}"),
            }
        }
        assert_eq!(stored(&db), [0, 1, 2, 4, 5, 6, 7, 8, 9]);
        let sizes = sink.sizes.lock().expect("lock").clone();
        assert_eq!(sizes.iter().sum::<usize>(), 9, "{sizes:?}");
        assert!(sizes.len() <= 2, "one append per batch: {sizes:?}");
    }

    /// A journal that cannot be appended to fails the writes whose records it
    /// missed (committed, as with `Db::write`), and only those.
    #[test]
    fn a_failed_journal_append_fails_the_writes_it_missed() {
        let sink = Arc::new(Appends {
            fail: true,
            ..Appends::default()
        });
        let (_dir, db) = scratch(sink);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let journaled = db
            .write_queued(|c| {
                c.batch_execute("INSERT INTO scratch VALUES (1)")
                    .map_err(StoreError::from)?;
                record_at_commit(lifted(1));
                Ok::<_, StoreError>(())
            })
            .expect("queue");
        assert!(matches!(
            rt.block_on(journaled),
            Err(StoreError::Journal(_))
        ));
        let plain = db
            .write_queued(|c| {
                c.batch_execute("INSERT INTO scratch VALUES (2)")
                    .map_err(StoreError::from)
            })
            .expect("queue");
        assert!(rt.block_on(plain).is_ok());
        assert_eq!(stored(&db), [1, 2]);
    }

    /// Shutdown waits for the queue: while a queued write waits behind a held
    /// writer, `drain` times out; once it ran, committed and journaled,
    /// `drain` returns at once — and the write's answer is already sent.
    #[test]
    fn drain_waits_until_every_queued_write_is_journaled() {
        let sink = Arc::new(Appends::default());
        let (_dir, db) = scratch(sink.clone());
        assert!(db.drain_write_queue(std::time::Duration::ZERO), "idle");
        let ((held_tx, held_rx), (go_tx, go_rx)) = (channel(), channel::<()>());
        let holder = db.clone();
        let held = std::thread::spawn(move || {
            holder.write(|_| {
                let _ = held_tx.send(());
                let _ = go_rx.recv();
                Ok::<_, StoreError>(())
            })
        });
        held_rx.recv().expect("the writer's turn is held");
        let answer = db
            .write_queued(|c| {
                c.batch_execute("INSERT INTO scratch VALUES (7)")
                    .map_err(StoreError::from)?;
                record_at_commit(lifted(7));
                Ok::<_, StoreError>(7_i64)
            })
            .expect("SQLite has a write queue");
        assert!(
            !db.drain_write_queue(std::time::Duration::from_millis(50)),
            "a write is still queued"
        );
        go_tx.send(()).expect("go");
        held.join().expect("holder").expect("held write");
        assert!(db.drain_write_queue(std::time::Duration::from_secs(10)));
        assert_eq!(*sink.sizes.lock().expect("lock"), vec![1], "journaled");
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        assert_eq!(rt.block_on(answer).expect("answered"), 7);
    }
}

//! SQLite's single writer, with group commit.
//!
//! SQLite allows one write transaction at a time, so writes queue here (DESIGN
//! "Storage": `BEGIN IMMEDIATE` behind one in-process writer). Writes that
//! queue up share one transaction: each runs inside its own savepoint, so a
//! write that fails undoes only its own changes, and none is answered before
//! the shared `COMMIT`. If that `COMMIT` fails, every write in it reports the
//! failure and none of them is stored. A lone write commits at once, exactly
//! as before; under load the per-commit cost (WAL frames, locks) is paid once
//! per group instead of once per request.
//!
//! A write whose size has no bound (a disposal, an import, a group losing
//! all its members) runs alone instead (`write_alone`): its own transaction,
//! with no savepoint, while no group is open.

use super::error::StoreError;
use super::pool::{AnyConnection, Manager};
use super::queue::{Job, Ran};
use super::tx::{at_top_level, atomic, rollback, transaction};
use diesel::connection::{AnsiTransactionManager, TransactionManager};
use diesel::r2d2::{Pool, PooledConnection};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// A group closes when nobody else is waiting to write, or at this many
/// writes, or this long after it opened, whichever comes first.
const MAX_GROUP: usize = 32;
const MAX_OPEN: Duration = Duration::from_millis(10);

#[derive(Default)]
pub struct Writer {
    state: Mutex<State>,
    closed: Condvar,
    /// Writers waiting for `state`: while there are some, the group stays open.
    queued: AtomicUsize,
}

#[derive(Default)]
struct State {
    /// The open group's connection, inside its outer transaction.
    open: Option<PooledConnection<Manager>>,
    /// The current (or last) group's number.
    group: u64,
    /// Successful writes in the open group.
    members: usize,
    opened_at: Option<Instant>,
    /// Groups up to this one are closed (committed or failed).
    closed_up_to: u64,
    /// Failed groups: (members still to be told, why).
    failed: HashMap<u64, (usize, String)>,
    /// A write is running alone (`write_alone`): no group opens meanwhile.
    alone: bool,
}

/// Ends a write's turn alone, however it ends.
struct AloneTurn<'a>(&'a Writer);

impl Drop for AloneTurn<'_> {
    fn drop(&mut self) {
        self.0.lock().alone = false;
        self.0.closed.notify_all();
    }
}

impl Writer {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.queued.fetch_add(1, Ordering::SeqCst);
        // A poisoned lock only means a writer panicked; its savepoint was
        // rolled back (`transaction` catches panics), so carry on.
        let st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        self.queued.fetch_sub(1, Ordering::SeqCst);
        st
    }

    /// The writers' turn: the lock, once no write is running alone.
    fn turn(&self) -> MutexGuard<'_, State> {
        let mut st = self.lock();
        while st.alone {
            st = self.closed.wait(st).unwrap_or_else(|p| p.into_inner());
        }
        st
    }

    /// The writers' turn, after committing the open group (if any): for a
    /// write that must not share a transaction.
    fn turn_with_no_group(&self) -> MutexGuard<'_, State> {
        let mut st = self.turn();
        if st.open.is_some() {
            // A failure is recorded for the group's members; nothing of ours to report.
            let _ = self.end(&mut st, 0, true);
        }
        st
    }

    /// Runs `f` as one atomic write; returns once it is committed.
    pub fn write<T, E>(
        &self,
        pool: &Pool<Manager>,
        f: impl FnOnce(&mut AnyConnection) -> Result<T, E>,
    ) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        let mut st = self.turn();
        self.open_group(&mut st, pool)?;
        let group = st.group;
        let (outcome, sound) = match st.open.as_mut() {
            // Nested inside the group's transaction: a savepoint.
            Some(conn) => {
                let (outcome, sound) = atomic(conn, f);
                (outcome, sound && at_top_level(conn))
            }
            None => (
                Err(StoreError::Corrupt("the write group has no connection".into()).into()),
                false,
            ),
        };
        if !sound {
            // The savepoint's rollback failed or SQLite ended the group's
            // transaction itself (disk full, I/O error): nothing in the group
            // can be trusted, so none of it is committed and every member fails.
            // The error is this caller's to report (below); the members are told.
            let _ = self.end(&mut st, 0, false);
            drop(st);
            return match outcome {
                Ok(_) => {
                    Err(StoreError::Commit("the write group's transaction was lost".into()).into())
                }
                Err(e) => Err(e),
            };
        }
        if outcome.is_ok() {
            st.members += 1;
        }
        let full =
            st.members >= MAX_GROUP || st.opened_at.is_some_and(|at| at.elapsed() >= MAX_OPEN);
        if full || self.queued.load(Ordering::SeqCst) == 0 {
            let own = usize::from(outcome.is_ok());
            let committed = self.end(&mut st, own, true);
            drop(st);
            return match (outcome, committed) {
                (Ok(v), Ok(())) => Ok(v),
                (Ok(_), Err(e)) => Err(e.into()),
                (Err(e), _) => Err(e),
            };
        }
        // Somebody queued behind this write will close the group (or a later
        // one will); a failed write has nothing to wait for.
        let v = outcome?;
        while st.closed_up_to < group {
            st = self.closed.wait(st).unwrap_or_else(|p| p.into_inner());
        }
        if let Some((left, why)) = st.failed.get_mut(&group) {
            let why = why.clone();
            *left -= 1;
            if *left == 0 {
                st.failed.remove(&group);
            }
            return Err(StoreError::Commit(why).into());
        }
        Ok(v)
    }

    /// Opens a group on a pooled connection when none is open.
    fn open_group(&self, st: &mut State, pool: &Pool<Manager>) -> Result<(), StoreError> {
        if st.open.is_some() {
            return Ok(());
        }
        let mut conn = pool.get().map_err(StoreError::from)?;
        if let AnyConnection::Sqlite(c) = &mut *conn {
            begin_group(c).map_err(StoreError::from)?;
        }
        st.open = Some(conn);
        st.group += 1;
        st.members = 0;
        st.opened_at = Some(Instant::now());
        Ok(())
    }

    /// The write queue's batch (`store::queue`): each job in its own
    /// savepoint of the open group (opening one if needed), then the group
    /// committed — never left open for another writer to close, so the queue's
    /// thread never waits for one. Returns each job with its group's outcome
    /// (`Err`: why it was not stored); the caller answers them.
    pub(super) fn batch(
        &self,
        pool: &Pool<Manager>,
        jobs: Vec<Job>,
    ) -> Vec<(Ran, Result<(), String>)> {
        let mut done = Vec::with_capacity(jobs.len());
        // This batch's jobs in the open group.
        let mut mine: Vec<Ran> = Vec::new();
        let mut st = self.turn();
        for job in jobs {
            let full =
                st.members >= MAX_GROUP || st.opened_at.is_some_and(|at| at.elapsed() >= MAX_OPEN);
            if full && !mine.is_empty() {
                // As any group closes: commit, and let other writers have a
                // turn before the rest of the batch.
                self.commit_mine(&mut st, &mut mine, &mut done);
                drop(st);
                st = self.turn();
            }
            if let Err(e) = self.open_group(&mut st, pool) {
                done.push((job(Err(e)), Ok(())));
                continue;
            }
            let (ran, sound) = match st.open.as_mut() {
                Some(conn) => {
                    let ran = job(Ok(&mut **conn));
                    let sound = ran.sound && at_top_level(conn);
                    (ran, sound)
                }
                None => (
                    job(Err(StoreError::Corrupt(
                        "the write group has no connection".into(),
                    ))),
                    true,
                ),
            };
            if ran.ok {
                st.members += 1;
            }
            mine.push(ran);
            if !sound {
                // As in `write`: nothing in the group can be trusted.
                let own = mine.iter().filter(|r| r.ok).count();
                let _ = self.end(&mut st, own, false);
                let why = "the write group's transaction was lost; nothing in it was stored";
                done.extend(mine.drain(..).map(|r| (r, Err(why.to_string()))));
            }
        }
        self.commit_mine(&mut st, &mut mine, &mut done);
        done
    }

    /// Commits the open group holding `mine` (the batch's jobs in it) and
    /// moves them to `done` with the outcome.
    fn commit_mine(
        &self,
        st: &mut State,
        mine: &mut Vec<Ran>,
        done: &mut Vec<(Ran, Result<(), String>)>,
    ) {
        if mine.is_empty() {
            return;
        }
        let own = mine.iter().filter(|r| r.ok).count();
        let committed = self.end(st, own, true).map_err(|e| match e {
            StoreError::Commit(why) => why,
            other => other.to_string(),
        });
        done.extend(mine.drain(..).map(|r| (r, committed.clone())));
    }

    /// Runs `f` as a transaction of its own, outside any group: for writes
    /// whose size has no bound (a disposal rewrites every item its owner
    /// held, an import applies many lines). In a group each write is a
    /// savepoint, and SQLite keeps a copy of every page a savepoint changes
    /// until it ends (in memory, `begin_group`); alone it needs no savepoint,
    /// only each statement's own short journal, on file.
    pub fn write_alone<T, E>(
        &self,
        pool: &Pool<Manager>,
        f: impl FnOnce(&mut AnyConnection) -> Result<T, E>,
    ) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        let mut st = self.turn_with_no_group();
        // The lock is released while `f` runs, so the members of the group
        // just committed are answered now, not after this (long) write.
        st.alone = true;
        drop(st);
        let _turn = AloneTurn(self);
        let mut conn = pool.get().map_err(StoreError::from)?;
        // Top level: `BEGIN IMMEDIATE`, with the connection's file temp store.
        transaction(&mut conn, f)
    }

    /// Runs `f` on a connection outside any transaction, with no write group
    /// open and no other writer running (checkpoints, ANALYZE).
    pub fn exclusive(&self, pool: &Pool<Manager>, f: impl FnOnce(&mut AnyConnection)) {
        let _st = self.turn_with_no_group();
        if let Ok(mut c) = pool.get() {
            f(&mut c);
        }
    }

    /// Ends the open group: commits it, or (`commit` false) rolls it back and
    /// fails it. `own` is how many of its writes belong to the caller (who
    /// learns the outcome from the return value); the others are woken and told.
    fn end(&self, st: &mut State, own: usize, commit: bool) -> Result<(), StoreError> {
        let Some(mut conn) = st.open.take() else {
            return Ok(());
        };
        let result = if commit {
            let committed = match &mut *conn {
                AnyConnection::Sqlite(c) => AnsiTransactionManager::commit_transaction(c),
                AnyConnection::Postgresql(c) => AnsiTransactionManager::commit_transaction(c),
            };
            committed.map_err(|e| {
                rollback(&mut conn);
                e.to_string()
            })
        } else {
            // Best effort: a connection left inside a transaction is discarded
            // by the pool (`has_broken`).
            rollback(&mut conn);
            Err("the write group's transaction was lost; nothing in it was stored".to_string())
        };
        if let Err(why) = &result {
            let waiting = st.members.saturating_sub(own);
            if waiting > 0 {
                st.failed.insert(st.group, (waiting, why.clone()));
            }
        }
        st.closed_up_to = st.group;
        st.opened_at = None;
        self.closed.notify_all();
        result.map_err(StoreError::Commit)
    }
}

/// Opens a group's transaction with its savepoint journals in memory.
/// SQLite decides where a transaction's savepoint journals live when it
/// begins (`temp_store`), so the setting is switched on for the `BEGIN` only
/// and the connection keeps its file temp store for everything else. On file,
/// a create's journal (past SQLite's 64 KiB in-memory start) went to a
/// temporary file: 11% of its CPU, inside the writer. A group's writes are
/// bounded by a request; the unbounded ones run alone (`write_alone`).
fn begin_group(c: &mut diesel::SqliteConnection) -> diesel::QueryResult<()> {
    use diesel::connection::SimpleConnection;
    // Changing `temp_store` drops TEMP tables (and reloads the schema) when the
    // TEMP database is open; Custodian never creates one.
    c.batch_execute("PRAGMA temp_store = MEMORY")?;
    let begun = AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE");
    // Even when `BEGIN` failed.
    let reset = c.batch_execute("PRAGMA temp_store = DEFAULT");
    if reset.is_err() {
        // In the transaction or not, this connection must not be handed out
        // again with its journals in memory: the pool discards it (`has_broken`).
        AnsiTransactionManager::transaction_manager_status_mut(c).set_in_error();
    }
    begun.and(reset)
}

#[cfg(test)]
mod tests {
    use crate::store::{Db, StoreError};
    use diesel::connection::SimpleConnection;
    use diesel::prelude::*;
    use std::sync::atomic::Ordering;

    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }

    /// A database in a temporary directory (kept while the guard lives) with
    /// an empty table `scratch (k)`.
    fn scratch_db() -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join("w.db").display());
        let db = Db::open(&url, 8, true).expect("open");
        db.write(|c| {
            c.batch_execute("CREATE TABLE scratch (k INTEGER PRIMARY KEY)")
                .map_err(StoreError::from)
        })
        .expect("create");
        (dir, db)
    }

    /// Many concurrent writes, every third failing after it wrote: exactly the
    /// successful ones are stored, whichever groups they shared.
    #[test]
    fn a_failed_write_undoes_only_itself() {
        let (_dir, db) = scratch_db();
        let handles: Vec<_> = (0..24_i64)
            .map(|k| {
                let db = db.clone();
                std::thread::spawn(move || {
                    (0..20_i64)
                        .map(|j| {
                            let key = k * 100 + j;
                            db.write(|c| {
                                c.batch_execute(&format!("INSERT INTO scratch VALUES ({key})"))
                                    .map_err(StoreError::from)?;
                                if key % 3 == 0 {
                                    return Err(StoreError::NotFound);
                                }
                                Ok(key)
                            })
                            .is_ok()
                        })
                        .filter(|ok| *ok)
                        .count()
                })
            })
            .collect();
        let succeeded: usize = handles.into_iter().map(|h| h.join().expect("thread")).sum();
        let stored = db
            .read(|c| {
                diesel::sql_query(
                    "SELECT COUNT(*) AS n FROM scratch WHERE k % 3 != 0 \
                     UNION ALL SELECT COUNT(*) AS n FROM scratch WHERE k % 3 = 0",
                )
                .load::<N>(c)
                .map_err(StoreError::from)
            })
            .expect("count");
        let expected = (0..24_i64)
            .flat_map(|k| (0..20_i64).map(move |j| k * 100 + j))
            .filter(|key| key % 3 != 0)
            .count();
        assert_eq!(succeeded, expected);
        assert_eq!(
            stored.iter().map(|r| r.n).collect::<Vec<_>>(),
            [expected as i64, 0]
        );
    }

    #[derive(QueryableByName)]
    struct TempStore {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        temp_store: i32,
    }

    fn temp_store(c: &mut crate::store::AnyConnection) -> Result<i32, StoreError> {
        Ok(diesel::sql_query("PRAGMA temp_store")
            .get_result::<TempStore>(c)?
            .temp_store)
    }

    /// A group switches its savepoint journals to memory for its `BEGIN`
    /// only: inside the write and afterwards, on every pooled connection, the
    /// temp store is the connection's default (file), so reads and large
    /// sorts never hold their temporary data in memory.
    #[test]
    fn groups_leave_the_temp_store_as_it_was() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let db = Db::open(&url, 4, true).expect("open");
        let inside = db.write(temp_store).expect("write");
        assert_eq!(inside, 0);
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let db = db.clone();
                std::thread::spawn(move || {
                    (0..20).map(|_| db.write(temp_store)).collect::<Vec<_>>()
                })
            })
            .collect();
        for h in handles {
            assert!(h.join().expect("thread").iter().all(|r| matches!(r, Ok(0))));
        }
        // Four connections at once: every one the pool holds.
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(4));
        let readers: Vec<_> = (0..4)
            .map(|_| {
                let (db, barrier) = (db.clone(), barrier.clone());
                std::thread::spawn(move || {
                    db.read(|c| {
                        barrier.wait();
                        temp_store(c)
                    })
                })
            })
            .collect();
        for r in readers {
            assert_eq!(r.join().expect("thread").expect("read"), 0);
        }
    }

    /// A write that runs alone (a disposal) runs at the top level (no
    /// savepoint: `RELEASE` has nothing to release) and is all-or-nothing like
    /// any write, while grouped writes go on around it.
    #[test]
    fn a_write_alone_is_its_own_transaction() {
        let (_dir, db) = scratch_db();
        let grouped: Vec<_> = (0..4_i64)
            .map(|t| {
                let db = db.clone();
                std::thread::spawn(move || {
                    (0..50_i64)
                        .filter(|j| {
                            db.write(|c| {
                                c.batch_execute(&format!(
                                    "INSERT INTO scratch VALUES ({})",
                                    t * 1000 + j
                                ))
                                .map_err(StoreError::from)
                            })
                            .is_ok()
                        })
                        .count()
                })
            })
            .collect();
        let top_level = db
            .write_alone(|c| {
                c.batch_execute("INSERT INTO scratch VALUES (100000)")?;
                Ok::<_, StoreError>(
                    c.batch_execute("RELEASE SAVEPOINT diesel_savepoint_1")
                        .is_err(),
                )
            })
            .expect("alone");
        assert!(top_level, "a write alone must not run inside a savepoint");
        let failed = db.write_alone(|c| {
            c.batch_execute(
                "WITH RECURSIVE s(v) AS (SELECT 1 UNION ALL SELECT v + 1 FROM s WHERE v < 5000) \
                 INSERT INTO scratch SELECT 200000 + v FROM s",
            )?;
            Err::<(), _>(StoreError::NotFound)
        });
        assert!(matches!(failed, Err(StoreError::NotFound)));
        let written: usize = grouped.into_iter().map(|h| h.join().expect("thread")).sum();
        assert_eq!(written, 200);
        let counts = db
            .read(|c| {
                diesel::sql_query(
                    "SELECT COUNT(*) AS n FROM scratch WHERE k < 100000 \
                     UNION ALL SELECT COUNT(*) AS n FROM scratch WHERE k >= 100000",
                )
                .load::<N>(c)
                .map_err(StoreError::from)
            })
            .expect("count");
        assert_eq!(counts.iter().map(|r| r.n).collect::<Vec<_>>(), [200, 1]);
    }

    /// A write alone commits the open group before it starts, and the
    /// group's members are answered at once, not when the (long) write ends.
    #[test]
    fn a_write_alone_answers_the_group_it_closes_at_once() {
        use std::sync::mpsc::channel;
        use std::time::{Duration, Instant};
        let (_dir, db) = scratch_db();
        let insert = |c: &mut crate::store::AnyConnection, k: i64| {
            c.batch_execute(&format!("INSERT INTO scratch VALUES ({k})"))
                .map_err(StoreError::from)
        };
        // A writes inside an open group and holds the turn until told.
        let ((a_in, in_a), (go_a, a_go), (a_done, done_a)) =
            (channel(), channel::<()>(), channel());
        let writer_a = db.clone();
        std::thread::spawn(move || {
            let r = writer_a.write(|c| {
                insert(c, 1)?;
                let _ = a_in.send(());
                let _ = a_go.recv();
                Ok::<_, StoreError>(())
            });
            let _ = a_done.send(r.is_ok());
        });
        in_a.recv().expect("A in its group");
        // B, alone, queues behind A; then A finishes, leaving its group open.
        let ((b_in, in_b), (go_b, b_go)) = (channel(), channel::<()>());
        let writer_b = db.clone();
        let b = std::thread::spawn(move || {
            writer_b.write_alone(|c| {
                let _ = b_in.send(());
                let _ = b_go.recv();
                insert(c, 2)
            })
        });
        let writer = db.writer().expect("SQLite has a writer");
        let deadline = Instant::now() + Duration::from_secs(10);
        while writer.queued.load(Ordering::SeqCst) == 0 {
            assert!(
                Instant::now() < deadline,
                "B never queued for the writers' turn"
            );
            std::thread::yield_now();
        }
        go_a.send(()).expect("go A");
        in_b.recv().expect("B running alone");
        // B is still running: A must already be committed and answered.
        let answered = done_a.recv_timeout(Duration::from_secs(10));
        assert_eq!(answered, Ok(true), "A's committed write waited for B");
        let visible = db
            .read(|c| {
                diesel::sql_query("SELECT COUNT(*) AS n FROM scratch WHERE k = 1")
                    .get_result::<N>(c)
                    .map_err(StoreError::from)
            })
            .expect("read");
        assert_eq!(visible.n, 1);
        go_b.send(()).expect("go B");
        b.join().expect("B").expect("B's write");
    }
}

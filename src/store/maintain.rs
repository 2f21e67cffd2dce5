//! Maintenance of the database behind a `Db`: SQLite's WAL checkpoints (after
//! disposals, to truncate the log their overwritten pages sit in) and planner
//! statistics on both backends. Best effort: failures are logged.

use super::db::Db;
use super::error::StoreError;
use super::pool::{BUSY_TIMEOUT_MS, Backend, mark_broken};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use std::time::{Duration, Instant};

/// How long the TRUNCATE checkpoint, run in the writers' turn, waits for readers.
const TRUNCATE_WAIT_MS: u32 = 5;
/// `checkpoint`: attempts at a TRUNCATE checkpoint, this far apart.
const TRUNCATE_ATTEMPTS: u32 = 20;
const TRUNCATE_RETRY: Duration = Duration::from_millis(50);
/// `checkpoint_soon`: disposals this close together share a checkpoint. Each
/// checkpoint copies every page written since the last, so under a stream of
/// DELETEs a longer batch copies the pages they all touch (indexes, counters)
/// fewer times; a disposed person's pages still leave the WAL within seconds.
const TRUNCATE_BATCH: Duration = Duration::from_millis(1000);
/// `checkpoint_soon`: retries stop after this (a reader that long on old
/// frames); the next disposal asks again.
const TRUNCATE_GIVE_UP: Duration = Duration::from_secs(30);
/// `checkpoint_soon`'s thread ends after this long with nothing to do.
const TRUNCATOR_IDLE: Duration = Duration::from_secs(5);

/// Pending TRUNCATE checkpoints after disposals, and whether a thread runs them.
#[derive(Default)]
pub(super) struct Truncation {
    state: std::sync::Mutex<TruncationState>,
    wake: std::sync::Condvar,
}

#[derive(Default)]
struct TruncationState {
    pending: bool,
    running: bool,
}

impl Db {
    /// SQLite: fold the WAL back into the database file and truncate it, so
    /// pages a disposal overwrote (with `secure_delete`) linger neither in the
    /// log nor in the file. Waits (outside the writer) for at most about a
    /// second when readers still need old frames; best effort. Disposals call
    /// `checkpoint_soon` instead, which batches this off the request path.
    pub fn checkpoint(&self) {
        if self.writer.is_none() {
            return;
        }
        for attempt in 0..TRUNCATE_ATTEMPTS {
            match self.try_truncate() {
                Ok(true) => return,
                Ok(false) if attempt + 1 < TRUNCATE_ATTEMPTS => std::thread::sleep(TRUNCATE_RETRY),
                Ok(false) => tracing::warn!(
                    "WAL checkpoint was busy (readers on old frames); a later one will truncate the log"
                ),
                Err(e) => {
                    tracing::warn!(error = %e, "WAL checkpoint failed");
                    return;
                }
            }
        }
    }

    /// SQLite: a disposal committed; its overwritten pages are folded into the
    /// file and the WAL truncated within `TRUNCATE_BATCH` plus retries (about
    /// a second and a half when readers let it), by a background thread. Returns at
    /// once: the request never waits for, nor holds the writer during, the
    /// retries; disposals that come close together share one checkpoint.
    pub fn checkpoint_soon(&self) {
        if self.writer.is_none() {
            return;
        }
        let t = &self.truncation;
        let mut st = t.state.lock().unwrap_or_else(|p| p.into_inner());
        st.pending = true;
        if st.running {
            t.wake.notify_all();
            return;
        }
        let db = self.clone();
        let spawned = std::thread::Builder::new()
            .name("wal-truncate".into())
            .spawn(move || db.truncator());
        if spawned.is_ok() {
            st.running = true;
        } else {
            drop(st);
            self.checkpoint();
        }
    }

    /// The body of `checkpoint_soon`'s thread. It ends after `TRUNCATOR_IDLE`
    /// with nothing to do (it holds a handle on the pool), and the next
    /// disposal starts another.
    fn truncator(&self) {
        let t = &self.truncation;
        loop {
            {
                let mut st = t.state.lock().unwrap_or_else(|p| p.into_inner());
                while !st.pending {
                    let (next, waited) = t
                        .wake
                        .wait_timeout(st, TRUNCATOR_IDLE)
                        .unwrap_or_else(|p| p.into_inner());
                    st = next;
                    if waited.timed_out() && !st.pending {
                        st.running = false;
                        return;
                    }
                }
                st.pending = false;
            }
            // Let disposals arriving together share one checkpoint.
            std::thread::sleep(TRUNCATE_BATCH);
            let deadline = Instant::now() + TRUNCATE_GIVE_UP;
            loop {
                match self.try_truncate() {
                    Ok(true) => break,
                    Ok(false) if Instant::now() < deadline => std::thread::sleep(TRUNCATE_RETRY),
                    Ok(false) => {
                        tracing::warn!(
                            "WAL checkpoint after disposal stayed busy (readers on old frames); the next disposal retries"
                        );
                        break;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "WAL checkpoint after disposal failed");
                        break;
                    }
                }
            }
        }
    }

    /// One attempt at a TRUNCATE checkpoint that holds the writer only for
    /// what is left to copy: a PASSIVE checkpoint first copies the log with no
    /// lock at all; then, in the writers' turn, the TRUNCATE copies the few
    /// frames committed since and resets the log, without waiting for readers
    /// (busy timeout 0: readers on old frames make it fail at once, and the
    /// caller retries outside the writer). `Ok(false)`: busy.
    fn try_truncate(&self) -> Result<bool, StoreError> {
        #[derive(QueryableByName)]
        struct Checkpoint {
            #[diesel(sql_type = diesel::sql_types::Integer)]
            busy: i32,
        }
        let Some(writer) = &self.writer else {
            return Ok(true);
        };
        let _one = self.checkpoints.lock().unwrap_or_else(|p| p.into_inner());
        self.pool
            .get()?
            .batch_execute("PRAGMA wal_checkpoint(PASSIVE)")?;
        let mut outcome = Ok(false);
        writer.exclusive(&self.pool, |c| {
            outcome = (|| {
                // A few milliseconds for readers still on old frames to finish
                // (no writer can add frames meanwhile): at 0 a truncate under
                // steady read load could fail on every retry.
                c.batch_execute(&format!("PRAGMA busy_timeout = {TRUNCATE_WAIT_MS}"))?;
                let rows =
                    diesel::sql_query("PRAGMA wal_checkpoint(TRUNCATE)").load::<Checkpoint>(c);
                if let Err(e) = c.batch_execute(&format!("PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}"))
                {
                    // Never hand out a connection that fails at once when busy.
                    mark_broken(c);
                    return Err(e.into());
                }
                Ok(rows?.first().is_none_or(|r| r.busy == 0))
            })();
        });
        outcome
    }

    /// SQLite: copy committed WAL pages into the database file without waiting
    /// for readers or writers (`PASSIVE`), off the request path. The server
    /// calls it a few times a second; without it the commit that crosses
    /// `wal_autocheckpoint` does the work while holding the write lock.
    pub fn checkpoint_passive(&self) {
        if self.backend != Backend::Sqlite {
            return;
        }
        let _one = self.checkpoints.lock().unwrap_or_else(|p| p.into_inner());
        if let Ok(mut c) = self.pool.get()
            && let Err(e) = c.batch_execute("PRAGMA wal_checkpoint(PASSIVE)")
        {
            tracing::warn!(error = %e, "WAL checkpoint failed");
        }
    }

    /// SQLite: refresh planner statistics where the tables changed enough
    /// (`PRAGMA optimize`, bounded by `analysis_limit`), as SQLite recommends
    /// for long-lived connections. Every few minutes is plenty.
    pub fn optimize(&self) {
        if let Some(writer) = &self.writer {
            // ANALYZE writes sqlite_stat1: take the writers' turn like any write.
            writer.exclusive(&self.pool, |c| {
                if let Err(e) = c.batch_execute("PRAGMA analysis_limit = 1000; PRAGMA optimize;") {
                    tracing::warn!(error = %e, "PRAGMA optimize failed");
                }
            });
        }
    }

    /// PostgreSQL: ANALYZE Custodian's tables that changed by more than 10%
    /// (and 500 rows) since their last statistics. Autovacuum does the same
    /// when it is on, once a minute; without statistics (autovacuum off, or a
    /// bulk import minutes old) the planner picked a tenant-wide index scan for
    /// `externalId eq` and the gate's email join: 20 ms instead of 0.05 ms at
    /// 5,500 users. Cheap when nothing changed: one catalog query.
    pub fn refresh_statistics(&self) {
        if self.backend != Backend::Postgres {
            return;
        }
        #[derive(QueryableByName)]
        struct Stale {
            #[diesel(sql_type = diesel::sql_types::Text)]
            relname: String,
        }
        let run = || -> Result<(), StoreError> {
            let mut c = self.checkout()?;
            let stale: Vec<Stale> = diesel::sql_query(
                "SELECT relname::text AS relname FROM pg_stat_user_tables \
                 WHERE schemaname = current_schema() \
                   AND relname IN ('users', 'user_emails', 'groups', 'group_members', 'tombstone_hashes', 'sso_subjects', 'content_items') \
                   AND n_mod_since_analyze > 500 + 0.1 * n_live_tup",
            )
            .load(&mut *c)?;
            for t in stale {
                // Names come from the fixed list above, never from a request.
                c.batch_execute(&format!("ANALYZE {}", t.relname))?;
            }
            Ok(())
        };
        if let Err(e) = run() {
            tracing::warn!(error = %e, "refreshing PostgreSQL statistics failed");
        }
    }
}

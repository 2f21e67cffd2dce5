//! The database handle (`Db`): reads on a pooled connection, writes in one
//! transaction each, under the deadlines.
//!
//! SQLite write discipline (DESIGN "Storage"): every write transaction is
//! `BEGIN IMMEDIATE` and writers are serialised in process by `store::writer`
//! (which also groups concurrent writes into one commit), so a read-then-write
//! never fails with "database is locked" and nobody relies on SQLite's
//! sleep-based busy handler.
//!
//! The connection (`pool`), transaction (`tx`) and paging (`page`) items are
//! re-exported here under the paths the crate has long used.

use super::error::{HoldsStoreError, StoreError};
use super::journal_queue::{self, JournalSink, journaled};
use super::maintain::Truncation;
use super::migrate::run_migrations;
use super::pool::{in_transaction, mark_broken};
use super::queue::{Job, Ran, WriteQueue};
use super::tx::{atomic, begin, pg_begin, run_begun};
use super::writer::Writer;
use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::r2d2::{ManageConnection, Pool, PooledConnection};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub use super::page::{Count, Order, Page, Positioned, Window};
pub(in crate::store) use super::page::{page_query, paged, paged_with};
pub use super::pool::{AnyConnection, Backend, DbUrl, Manager, backend_of};
pub use super::sql::{Bind, Sql};
pub(in crate::store) use super::sql::{execute_sql, load_sql};
pub(in crate::store) use super::tx::lock_row;

/// A pooled PostgreSQL connection idle at least this long is checked before
/// use (`Db::checkout`).
const IDLE_CHECK: Duration = Duration::from_secs(5);

/// When a pooled connection was last checked out, and the fault generation
/// (`Db::faults`) it was last known alive in (its r2d2 extension).
struct LastUsed(Instant, u64);

/// The session `statement_timeout` and `lock_timeout` (ms) a pooled
/// PostgreSQL connection was given (its r2d2 extension).
struct SessionTimeouts(u64, u64);

/// How long database work may wait, and run on PostgreSQL (README
/// "Configuration": `request_deadline_ms`, `pg_statement_timeout_ms`,
/// `pg_lock_timeout_ms`, `long_write_timeout_ms`). Past any of them the work
/// fails with `StoreError::Deadline` and its transaction rolls back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deadlines {
    /// The longest wait for a pooled connection or for SQLite's writer.
    pub wait: Duration,
    /// PostgreSQL: per statement, on every connection (session) and again
    /// per write transaction (`SET LOCAL`).
    pub pg_statement_timeout_ms: u64,
    /// PostgreSQL: the longest wait for a row or table lock.
    pub pg_lock_timeout_ms: u64,
    /// `write_alone` (disposals, imports, scheduler passes): replaces the
    /// three limits above inside its transaction. 0: none, so a
    /// million-item disposal is never cancelled and retried forever.
    pub long_write_timeout_ms: u64,
}

impl Default for Deadlines {
    fn default() -> Self {
        Deadlines {
            wait: Duration::from_secs(10),
            pg_statement_timeout_ms: 30_000,
            pg_lock_timeout_ms: 10_000,
            long_write_timeout_ms: 0,
        }
    }
}

/// Fails once `since` is more than `limit` ago (`None`: never).
fn within<E: From<StoreError>>(
    since: Instant,
    limit: Option<Duration>,
    what: &'static str,
) -> Result<(), E> {
    match limit {
        Some(l) if since.elapsed() > l => Err(StoreError::Deadline(what).into()),
        _ => Ok(()),
    }
}

/// The database handle shared by the service.
#[derive(Clone)]
pub struct Db {
    pub(super) pool: Pool<Manager>,
    pub(super) backend: Backend,
    /// SQLite's one writer (`None` on PostgreSQL, whose writers run in parallel).
    pub(super) writer: Option<Arc<Writer>>,
    /// SQLite: writes queued from async callers, run on a thread of their
    /// own (`write_queued`); `None` on PostgreSQL.
    pub(super) queue: Option<Arc<WriteQueue>>,
    /// Serialises checkpoints: a TRUNCATE checkpoint that meets a running
    /// PASSIVE one fails with "busy" at once (no busy handler), which would
    /// leave a disposal's pages in the WAL.
    pub(super) checkpoints: Arc<std::sync::Mutex<()>>,
    /// Disposals' requests for a TRUNCATE checkpoint (`checkpoint_soon`).
    pub(super) truncation: Arc<Truncation>,
    /// `read` takes only an idle connection, failing with `WouldWait` rather
    /// than waiting (handles from `idle_sqlite`).
    no_wait: bool,
    /// PostgreSQL behind a transaction-mode pooler (`prepared_statements =
    /// false`): a server connection is this client's only inside a
    /// transaction, so nothing may rest on the session. No named statements
    /// (`Manager`), no session `SET`: every read runs in a transaction of
    /// its own, its timeouts `SET LOCAL` as a write's are.
    pooled: bool,
    /// PostgreSQL: a connection idle this long is checked before use.
    idle_check: Duration,
    /// PostgreSQL: bumped whenever a connection is found dead (a restart, a
    /// terminated backend, a failover). A pooled connection last known alive
    /// in an older generation is checked before use, so after one request
    /// meets a dead connection the others are not handed out unchecked.
    faults: Arc<AtomicU64>,
    deadlines: Deadlines,
    /// Where committed disposals, lifts and releases are journaled
    /// (`journal_queue`); `None`: not journaled.
    pub(super) journal: Option<Arc<dyn JournalSink>>,
}

impl Db {
    /// Connects and applies pending migrations. `create_sqlite` decides whether a
    /// missing SQLite file may be created (only `serve` and `migrate` may).
    pub fn open(url: &str, pool_size: u32, create_sqlite: bool) -> Result<Db, StoreError> {
        Db::open_with(url, pool_size, create_sqlite, true)
    }

    /// `open`; on PostgreSQL `prepared_statements = false` runs without named
    /// prepared statements and without session state, for a transaction-mode
    /// pooler (`Db::pooled`). Ignored on SQLite (the configuration refuses it).
    pub fn open_with(
        url: &str,
        pool_size: u32,
        create_sqlite: bool,
        prepared_statements: bool,
    ) -> Result<Db, StoreError> {
        let parsed = DbUrl::parse(url);
        if let DbUrl::Sqlite(path) = &parsed {
            let p = Path::new(path);
            if !p.exists() {
                if !create_sqlite {
                    return Err(StoreError::Config(format!(
                        "no database at {} (run `custodian serve` or `custodian migrate` first, or run this command from the directory that holds ./data/)",
                        p.display()
                    )));
                }
                if let Some(parent) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(parent).map_err(|e| {
                        StoreError::Config(format!("cannot create {}: {e}", parent.display()))
                    })?;
                }
            }
        }
        let backend = parsed.backend();
        let pooled = backend == Backend::Postgres && !prepared_statements;
        let manager = |url: DbUrl| Manager {
            url,
            prepared_statements,
        };
        let mut conn = manager(parsed.clone())
            .connect()
            .map_err(|e| StoreError::Pool(e.to_string()))?;
        run_migrations(&mut conn)?;
        drop(conn);
        let pool = Pool::builder()
            .max_size(pool_size)
            // No `SELECT 1` before every checkout: a SQLite connection is a
            // file handle and cannot go stale; a PostgreSQL one is checked
            // only after it sat idle (`checkout`).
            .test_on_check_out(false)
            // Every connection opened at start and kept (r2d2 recycles one
            // after 10 minutes idle and every one at 30 minutes by default):
            // a new PostgreSQL connection costs its first requests a round
            // trip per statement shape to prepare it again, the session
            // timeouts (`checkout`) and a cold backend (issue 17). A dead
            // one is still replaced (`has_broken`, `Db::faults`).
            .min_idle(None)
            .max_lifetime(None)
            .idle_timeout(None)
            .connection_timeout(Duration::from_secs(10))
            .build(manager(parsed))
            .map_err(|e| StoreError::Pool(e.to_string()))?;
        Ok(Db {
            pool,
            backend,
            writer: match backend {
                Backend::Sqlite => Some(Arc::default()),
                Backend::Postgres => None,
            },
            queue: match backend {
                Backend::Sqlite => Some(Arc::default()),
                Backend::Postgres => None,
            },
            checkpoints: Arc::default(),
            truncation: Arc::default(),
            no_wait: false,
            pooled,
            idle_check: IDLE_CHECK,
            faults: Arc::default(),
            deadlines: Deadlines::default(),
            journal: None,
        })
    }

    /// This handle with another idle time after which a pooled PostgreSQL
    /// connection is checked before use (`checkout`; default 5 s).
    pub fn with_idle_check(self, idle_check: Duration) -> Db {
        Db { idle_check, ..self }
    }

    /// This handle with other deadlines (`Deadlines`; the defaults until set).
    pub fn with_deadlines(self, deadlines: Deadlines) -> Db {
        Db { deadlines, ..self }
    }

    /// This handle, journaling the disposals, lifts and releases its writes
    /// commit to `sink` (`journal_queue`).
    pub fn with_journal(self, sink: Arc<dyn JournalSink>) -> Db {
        Db {
            journal: Some(sink),
            // A queue of its own: its thread journals with this sink.
            queue: self.queue.as_ref().map(|_| Arc::default()),
            ..self
        }
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Whether this handle runs for a transaction-mode pooler (`pooled`).
    pub fn pooled(&self) -> bool {
        self.pooled
    }

    /// The connections the pool holds at most.
    pub fn pool_size(&self) -> u32 {
        self.pool.max_size()
    }

    /// The pool's connections now: (open, idle).
    pub fn pool_state(&self) -> (u32, u32) {
        let s = self.pool.state();
        (s.connections, s.idle_connections)
    }

    /// Runs `f` on a pooled connection, outside any explicit transaction
    /// (behind a pooler, in a transaction of its own: `read_once`).
    /// On PostgreSQL, a read that fails because its connection is gone (a
    /// restart, a terminated backend) runs once more on another, checked
    /// connection: it wrote nothing, so running it again is safe.
    pub fn read<T, E>(&self, mut f: impl FnMut(&mut AnyConnection) -> Result<T, E>) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        let mut conn = if self.no_wait {
            self.pool.try_get().ok_or(StoreError::WouldWait)?
        } else {
            self.checkout()?
        };
        match self.read_once(&mut conn, &mut f) {
            Err(_) if self.lost(&mut conn) => {
                drop(conn);
                let mut conn = self.checkout()?;
                let again = self.read_once(&mut conn, &mut f);
                if again.is_err() {
                    self.lost(&mut conn);
                }
                again
            }
            done => done,
        }
    }

    /// Runs `f` once. Behind a transaction-mode pooler (`pooled`) it runs in
    /// a transaction with the request timeouts `SET LOCAL` (sent with the
    /// `BEGIN`, one round trip; the `COMMIT` is another): a session
    /// `statement_timeout` would stay on whichever server connection the
    /// pooler had lent, and not be on the next. All of the read's statements
    /// then run on one server connection.
    fn read_once<T, E>(
        &self,
        conn: &mut AnyConnection,
        f: &mut impl FnMut(&mut AnyConnection) -> Result<T, E>,
    ) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        if !self.pooled || in_transaction_any(conn) {
            return f(conn);
        }
        let d = &self.deadlines;
        if let Err(e) = begin(
            conn,
            Some(&pg_begin(d.pg_statement_timeout_ms, d.pg_lock_timeout_ms)),
        ) {
            // Half a `BEGIN; SET LOCAL …` batch may have run: never reuse it.
            mark_broken(conn);
            return Err(e.into());
        }
        let out = f(conn);
        let ended = match (&out, &mut *conn) {
            (Ok(_), AnyConnection::Postgresql(c)) => AnsiTransactionManager::commit_transaction(c),
            (Err(_), AnyConnection::Postgresql(c)) => {
                AnsiTransactionManager::rollback_transaction(c)
            }
            (_, AnyConnection::Sqlite(_)) => Ok(()),
        };
        match ended {
            Ok(()) => out,
            Err(e) => {
                mark_broken(conn);
                // The read's own error says more than its rollback's.
                out.and(Err(StoreError::from(e).into()))
            }
        }
    }

    /// After an error on `conn`: whether the connection itself is gone. On
    /// PostgreSQL this asks libpq to read what the server sent
    /// (`PQconsumeInput`, no round trip), which fails on a closed
    /// connection; a dead one is marked for the pool to discard and starts
    /// a new fault generation.
    fn lost(&self, conn: &mut AnyConnection) -> bool {
        let dead = match conn {
            AnyConnection::Postgresql(c) => matches!(c.notifications_iter().next(), Some(Err(_))),
            AnyConnection::Sqlite(_) => false,
        };
        if dead {
            tracing::warn!("a PostgreSQL connection was lost; pooled connections are checked");
            mark_broken(conn);
            self.faults.fetch_add(1, Ordering::Relaxed);
        }
        dead
    }

    /// A pooled connection. A PostgreSQL connection that sat idle for
    /// `idle_check` is checked first (`SELECT 1`), since the server or
    /// something between may have closed it (restart, idle timeout); one in
    /// steady use is not, which saves a round trip per request (r2d2's
    /// `test_on_check_out` made it one of a lookup's four). A connection
    /// that dies in use fails that request, and the pool then discards it
    /// (libpq reports its transaction state unknown: `has_broken`).
    ///
    /// The wait for a connection is bounded by `Deadlines::wait`. A PostgreSQL
    /// connection gets the session timeouts once (one round trip when it is
    /// new, or when another handle's differ), which cover reads.
    pub(super) fn checkout(&self) -> Result<PooledConnection<Manager>, StoreError> {
        let get = || {
            self.pool.get_timeout(self.deadlines.wait).map_err(|e| {
                tracing::warn!(error = %e, "no pooled database connection within request_deadline_ms");
                // r2d2 appends the last failed connection attempt, if any
                // ("timed out waiting for connection: …"): then the database
                // is down or refusing, not merely busy.
                if e.to_string().starts_with("timed out waiting for connection: ") {
                    StoreError::Unavailable("the database is not accepting connections")
                } else {
                    StoreError::Deadline(
                        "no database connection became free within request_deadline_ms",
                    )
                }
            })
        };
        if self.backend != Backend::Postgres {
            return get();
        }
        // Behind a pooler the timeouts go with each transaction (`read_once`,
        // `pg_begin`), never on the session.
        let session = !self.pooled;
        let want = (
            self.deadlines.pg_statement_timeout_ms,
            self.deadlines.pg_lock_timeout_ms,
        );
        let generation = self.faults.load(Ordering::Relaxed);
        // Bounded: after a restart every idle connection may be dead.
        for _ in 0..=self.pool.max_size() {
            let mut conn = get()?;
            if self.pooled {
                drop_notifications(&mut conn);
            }
            let set = session
                && PooledConnection::extensions_mut(&mut conn)
                    .get::<SessionTimeouts>()
                    .is_none_or(|s| (s.0, s.1) != want);
            if set {
                let sql = format!(
                    "SET statement_timeout = {}; SET lock_timeout = {}",
                    want.0, want.1
                );
                if conn.batch_execute(&sql).is_ok() {
                    let ext = PooledConnection::extensions_mut(&mut conn);
                    ext.insert(SessionTimeouts(want.0, want.1));
                    ext.insert(LastUsed(Instant::now(), generation));
                    return Ok(conn);
                }
                mark_broken(&mut conn);
                continue;
            }
            let now = Instant::now();
            // Updated in place: an insert allocates, on every request.
            let unchecked = match PooledConnection::extensions_mut(&mut conn).get_mut::<LastUsed>()
            {
                Some(at) => {
                    let idle = now.saturating_duration_since(std::mem::replace(&mut at.0, now));
                    let older = std::mem::replace(&mut at.1, generation) < generation;
                    idle < self.idle_check && !older
                }
                None => {
                    PooledConnection::extensions_mut(&mut conn).insert(LastUsed(now, generation));
                    true
                }
            };
            if unchecked || conn.batch_execute("SELECT 1").is_ok() {
                return Ok(conn);
            }
            // Dead: the pool drops it on return and connects afresh.
            mark_broken(&mut conn);
        }
        Err(StoreError::Pool(
            "no live database connection (every pooled one failed its check)".into(),
        ))
    }

    /// On SQLite, a handle whose reads never wait for a connection (for code
    /// running on an async worker); `None` on PostgreSQL, where every read is
    /// a network round trip.
    pub fn idle_sqlite(&self) -> Option<Db> {
        (self.backend == Backend::Sqlite).then(|| Db {
            no_wait: true,
            ..self.clone()
        })
    }

    /// Runs `f` in one write transaction: all of it commits or none of it does.
    /// A write that waited for SQLite's writer longer than `Deadlines::wait`
    /// gives up when its turn comes, before writing anything; on PostgreSQL
    /// the transaction runs under `statement_timeout` and `lock_timeout`.
    pub fn write<T, E>(&self, f: impl FnOnce(&mut AnyConnection) -> Result<T, E>) -> Result<T, E>
    where
        E: From<StoreError> + HoldsStoreError,
    {
        journaled(self.journal.as_deref(), || {
            let asked = Instant::now();
            if let Some(writer) = &self.writer {
                let wait = Some(self.deadlines.wait);
                return writer.write(&self.pool, move |c| {
                    within::<E>(
                        asked,
                        wait,
                        "waited for the SQLite writer past request_deadline_ms",
                    )?;
                    f(c)
                });
            }
            let d = &self.deadlines;
            self.pg_write(
                &pg_begin(d.pg_statement_timeout_ms, d.pg_lock_timeout_ms),
                f,
            )
        })
    }

    /// SQLite: runs `f` as `write` does, on the write queue's thread
    /// (`store::queue`) rather than the caller's: for an async caller (an HTTP
    /// worker), which then needs no blocking-pool thread. The future resolves
    /// once the write is committed (and journaled, if it queued records).
    /// `None` on PostgreSQL, whose writes run on the caller's thread (the
    /// caller uses `write`).
    pub fn write_queued<T, E, F>(
        &self,
        f: F,
    ) -> Option<impl std::future::Future<Output = Result<T, E>> + use<T, E, F>>
    where
        F: FnOnce(&mut AnyConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + HoldsStoreError + Send + 'static,
    {
        let queue = self.queue.as_deref()?;
        let (tx, rx) = tokio::sync::oneshot::channel::<Result<T, E>>();
        let asked = Instant::now();
        let wait = self.deadlines.wait;
        let span = tracing::Span::current();
        let job: Job = Box::new(move |conn| {
            let _entered = span.enter();
            let (out, sound, records) = match conn {
                Ok(c) => {
                    let at = journal_queue::mark();
                    let (out, sound) = atomic(c, move |c| {
                        within::<E>(
                            asked,
                            Some(wait),
                            "waited for the SQLite writer past request_deadline_ms",
                        )?;
                        f(c)
                    });
                    (out, sound, journal_queue::take_from(at))
                }
                Err(e) => (Err(e.into()), true, Vec::new()),
            };
            Ran {
                ok: out.is_ok(),
                sound,
                records,
                deliver: Box::new(move |group: Result<(), StoreError>| {
                    let answer = match (out, group) {
                        (Ok(v), Ok(())) => Ok(v),
                        (Ok(_), Err(e)) => Err(e.into()),
                        (Err(e), _) => Err(e),
                    };
                    // The caller may be gone (its connection closed): the
                    // write stands either way.
                    let _ = tx.send(answer);
                }),
            }
        });
        let pushed = queue.push(self, job);
        Some(async move {
            if let Err(job) = pushed {
                // No thread: fail it, as a full pool would.
                let ran = job(Err(StoreError::Pool(
                    "the write queue's thread could not be started".into(),
                )));
                (ran.deliver)(Ok(()));
            }
            rx.await.unwrap_or_else(|_| {
                Err(StoreError::Corrupt("the write queue dropped a write".into()).into())
            })
        })
    }

    /// A PostgreSQL write transaction. Only its `BEGIN` is ever retried (once,
    /// on another connection, when the first one turns out dead): nothing of
    /// `f` has run then, so the retry cannot apply anything twice. A
    /// connection lost later fails the write (503); one lost in the commit
    /// says the outcome is unknown (`CommitUnknown`).
    fn pg_write<T, E>(
        &self,
        begin_sql: &str,
        f: impl FnOnce(&mut AnyConnection) -> Result<T, E>,
    ) -> Result<T, E>
    where
        E: From<StoreError> + HoldsStoreError,
    {
        let mut conn = self.checkout()?;
        if let Err(e) = begin(&mut conn, Some(begin_sql)) {
            // Half a `BEGIN; SET LOCAL …` batch may have run: never reuse it.
            mark_broken(&mut conn);
            if !self.lost(&mut conn) {
                return Err(e.into());
            }
            drop(conn);
            conn = self.checkout()?;
            if let Err(e) = begin(&mut conn, Some(begin_sql)) {
                mark_broken(&mut conn);
                self.lost(&mut conn);
                return Err(e.into());
            }
        }
        let (done, sound) = run_begun(&mut conn, f);
        if !sound {
            self.lost(&mut conn);
        }
        // A read-only session (a standby behind the same address after a
        // failover, `default_transaction_read_only` set while it was open)
        // stays read-only: the pool must not hand it out again, or writes
        // would keep failing after the database is writable again.
        if let Err(e) = &done
            && matches!(e.store_error(), Some(StoreError::ReadOnly))
        {
            mark_broken(&mut conn);
        }
        done
    }

    #[cfg(test)]
    pub(super) fn writer(&self) -> Option<&Writer> {
        self.writer.as_deref()
    }

    /// `write` for a change too large to share a write group (a group's whole
    /// member list): on SQLite it runs as a transaction of its own
    /// (`Writer::write_alone`), so its journal stays on file; it keeps the
    /// request's limits (`request_deadline_ms`, the PostgreSQL timeouts).
    pub fn write_alone<T, E>(
        &self,
        f: impl FnOnce(&mut AnyConnection) -> Result<T, E>,
    ) -> Result<T, E>
    where
        E: From<StoreError> + HoldsStoreError,
    {
        let d = &self.deadlines;
        self.alone(
            Some(d.wait),
            "waited for the SQLite writer past request_deadline_ms",
            (d.pg_statement_timeout_ms, d.pg_lock_timeout_ms),
            f,
        )
    }

    /// `write_alone` for the writes whose size has no bound and which must not
    /// be killed and retried forever — disposals, imports, transfers, scheduler
    /// passes: only `long_write_timeout_ms` limits them (default none).
    pub fn write_long<T, E>(
        &self,
        f: impl FnOnce(&mut AnyConnection) -> Result<T, E>,
    ) -> Result<T, E>
    where
        E: From<StoreError> + HoldsStoreError,
    {
        let limit = self.deadlines.long_write_timeout_ms;
        self.alone(
            (limit > 0).then(|| Duration::from_millis(limit)),
            "waited for the SQLite writer past long_write_timeout_ms",
            (limit, limit),
            f,
        )
    }

    fn alone<T, E>(
        &self,
        wait: Option<Duration>,
        waited: &'static str,
        (statement_ms, lock_ms): (u64, u64),
        f: impl FnOnce(&mut AnyConnection) -> Result<T, E>,
    ) -> Result<T, E>
    where
        E: From<StoreError> + HoldsStoreError,
    {
        journaled(self.journal.as_deref(), || {
            if let Some(writer) = &self.writer {
                let asked = Instant::now();
                return writer.write_alone(&self.pool, move |c| {
                    within::<E>(asked, wait, waited)?;
                    f(c)
                });
            }
            self.pg_write(&pg_begin(statement_ms, lock_ms), f)
        })
    }

    pub fn ping(&self) -> Result<(), StoreError> {
        self.read(|c| c.batch_execute("SELECT 1").map_err(StoreError::from))
    }
}

/// Behind a pooler a server connection may carry another session's
/// `LISTEN` (a listener pointed at the pooler), whose notifications then
/// queue in whichever client it was lent to, and would pile up in a pooled
/// connection that never reads them: drop them (what has arrived; no round
/// trip). A dead connection is found by the statement that follows.
fn drop_notifications(conn: &mut AnyConnection) {
    if let AnyConnection::Postgresql(c) = conn {
        for n in c.notifications_iter() {
            if n.is_err() {
                break;
            }
        }
    }
}

/// Whether `conn` is inside a transaction (or broken: then not to be used
/// for one).
fn in_transaction_any(conn: &mut AnyConnection) -> bool {
    match conn {
        AnyConnection::Sqlite(c) => in_transaction(c),
        AnyConnection::Postgresql(c) => in_transaction(c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_idle_only_handle_never_waits() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join("x.db").display());
        let db = Db::open(&url, 1, true).expect("open");
        let idle = db.idle_sqlite().expect("a SQLite handle");
        // The pool's one connection is busy: the idle-only handle refuses at once.
        let inner = db.read(|_| Ok::<_, StoreError>(idle.read(|_| Ok::<_, StoreError>(()))));
        assert!(matches!(inner, Ok(Err(StoreError::WouldWait))), "{inner:?}");
        assert!(idle.read(|_| Ok::<_, StoreError>(())).is_ok());
    }
}

//! Connections: one binary, SQLite or PostgreSQL chosen by the URL at start.
//!
//! SQLite write discipline (DESIGN "Storage"): every write transaction is
//! `BEGIN IMMEDIATE` and writers are serialised in process by `store::writer`
//! (which also groups concurrent writes into one commit), so a read-then-write
//! never fails with "database is locked" and nobody relies on SQLite's
//! sleep-based busy handler.

use super::error::StoreError;
pub use super::sql::{Bind, Sql, execute_sql, load_sql};
use super::writer::Writer;
use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::r2d2::{self, ManageConnection, Pool, PooledConnection};
use diesel::sqlite::Sqlite;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Runs a diesel DSL statement on the concrete connection inside an
/// [`AnyConnection`]: `per_backend!(conn, c => query.execute(c))`.
///
/// Through the MultiConnection wrapper, diesel builds every statement's SQL
/// text on each call to find it in the statement cache (the wrapper's query
/// type has no static id: 10–15% of a create's CPU, in the one writer). On the
/// concrete connection a statically typed statement is found by its type.
/// For the statements on the write and request hot paths.
#[macro_export]
macro_rules! per_backend {
    ($conn:expr, $c:ident => $body:expr) => {
        match $conn {
            $crate::store::db::AnyConnection::Sqlite($c) => $body,
            $crate::store::db::AnyConnection::Postgresql($c) => $body,
        }
    };
}

#[derive(diesel::MultiConnection)]
pub enum AnyConnection {
    Postgresql(diesel::PgConnection),
    Sqlite(diesel::SqliteConnection),
}

/// A pooled PostgreSQL connection idle at least this long is checked before
/// use (`Db::checkout`).
const IDLE_CHECK: Duration = Duration::from_secs(5);

/// When a pooled connection was last checked out (its r2d2 extension).
struct LastUsed(Instant);

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

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const PG_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Clone, Debug)]
pub enum DbUrl {
    Postgres(String),
    Sqlite(String),
}

impl DbUrl {
    /// `postgres://` / `postgresql://` select PostgreSQL; `sqlite://PATH` or a plain
    /// path select SQLite. Chosen by scheme, never by trial.
    pub fn parse(url: &str) -> DbUrl {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            DbUrl::Postgres(url.to_string())
        } else {
            DbUrl::Sqlite(url.strip_prefix("sqlite://").unwrap_or(url).to_string())
        }
    }
    pub fn backend(&self) -> Backend {
        match self {
            DbUrl::Postgres(_) => Backend::Postgres,
            DbUrl::Sqlite(_) => Backend::Sqlite,
        }
    }
}

pub struct Manager(DbUrl);

impl ManageConnection for Manager {
    type Connection = AnyConnection;
    type Error = r2d2::Error;

    fn connect(&self) -> Result<AnyConnection, r2d2::Error> {
        match &self.0 {
            DbUrl::Postgres(u) => diesel::PgConnection::establish(u)
                .map(AnyConnection::Postgresql)
                .map_err(r2d2::Error::ConnectionError),
            DbUrl::Sqlite(p) => {
                let mut c =
                    diesel::SqliteConnection::establish(p).map_err(r2d2::Error::ConnectionError)?;
                // busy_timeout first: WAL setup itself may wait on another connection.
                c.batch_execute(&format!("PRAGMA busy_timeout = {BUSY_TIMEOUT_MS};"))
                    .map_err(r2d2::Error::QueryError)?;
                // The server checkpoints from its own thread (`checkpoint_passive`);
                // the raised autocheckpoint (40 MiB of WAL) is the backstop. At the
                // default (4 MiB) a request's commit ran the checkpoint, fsyncs
                // included, while every other writer waited.
                c.batch_execute(
                    "PRAGMA journal_mode = WAL; \
                     PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA secure_delete = ON; \
                     PRAGMA wal_autocheckpoint = 10000;",
                )
                .map_err(r2d2::Error::QueryError)?;
                Ok(AnyConnection::Sqlite(c))
            }
        }
    }
    fn is_valid(&self, c: &mut AnyConnection) -> Result<(), r2d2::Error> {
        c.batch_execute("SELECT 1").map_err(r2d2::Error::QueryError)
    }
    /// A connection still inside a transaction (or whose transaction manager is
    /// broken) must never be handed out again.
    fn has_broken(&self, c: &mut AnyConnection) -> bool {
        match c {
            AnyConnection::Sqlite(inner) => in_transaction(inner),
            AnyConnection::Postgresql(inner) => in_transaction(inner),
        }
    }
}

/// Inside a transaction, or with a broken transaction manager.
fn in_transaction<C>(c: &mut C) -> bool
where
    C: diesel::Connection<TransactionManager = AnsiTransactionManager>,
{
    match AnsiTransactionManager::transaction_manager_status_mut(c).transaction_depth() {
        Ok(depth) => depth.is_some(),
        Err(_) => true,
    }
}

/// The connections' busy timeout (ms): how long a statement waits for a lock.
const BUSY_TIMEOUT_MS: u32 = 5000;
/// How long the TRUNCATE checkpoint, run in the writers' turn, waits for readers.
const TRUNCATE_WAIT_MS: u32 = 5;
/// `checkpoint`: attempts at a TRUNCATE checkpoint, this far apart.
const TRUNCATE_ATTEMPTS: u32 = 20;
const TRUNCATE_RETRY: Duration = Duration::from_millis(50);
/// `checkpoint_soon`: disposals this close together share a checkpoint.
const TRUNCATE_BATCH: Duration = Duration::from_millis(100);
/// `checkpoint_soon`: retries stop after this (a reader that long on old
/// frames); the next disposal asks again.
const TRUNCATE_GIVE_UP: Duration = Duration::from_secs(30);
/// `checkpoint_soon`'s thread ends after this long with nothing to do.
const TRUNCATOR_IDLE: Duration = Duration::from_secs(5);

/// Pending TRUNCATE checkpoints after disposals, and whether a thread runs them.
#[derive(Default)]
struct Truncation {
    state: std::sync::Mutex<TruncationState>,
    wake: std::sync::Condvar,
}

#[derive(Default)]
struct TruncationState {
    pending: bool,
    running: bool,
}

/// The database handle shared by the service.
#[derive(Clone)]
pub struct Db {
    pool: Pool<Manager>,
    backend: Backend,
    /// SQLite's one writer (`None` on PostgreSQL, whose writers run in parallel).
    writer: Option<Arc<Writer>>,
    /// Serialises checkpoints: a TRUNCATE checkpoint that meets a running
    /// PASSIVE one fails with "busy" at once (no busy handler), which would
    /// leave a disposal's pages in the WAL.
    checkpoints: Arc<std::sync::Mutex<()>>,
    /// Disposals' requests for a TRUNCATE checkpoint (`checkpoint_soon`).
    truncation: Arc<Truncation>,
    /// `read` takes only an idle connection, failing with `WouldWait` rather
    /// than waiting (handles from `idle_sqlite`).
    no_wait: bool,
    /// PostgreSQL: a connection idle this long is checked before use.
    idle_check: Duration,
    deadlines: Deadlines,
}

impl Db {
    /// Connects and applies pending migrations. `create_sqlite` decides whether a
    /// missing SQLite file may be created (only `serve` and `migrate` may).
    pub fn open(url: &str, pool_size: u32, create_sqlite: bool) -> Result<Db, StoreError> {
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
        let mut conn = Manager(parsed.clone())
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
            .connection_timeout(Duration::from_secs(10))
            .build(Manager(parsed))
            .map_err(|e| StoreError::Pool(e.to_string()))?;
        Ok(Db {
            pool,
            backend,
            writer: match backend {
                Backend::Sqlite => Some(Arc::default()),
                Backend::Postgres => None,
            },
            checkpoints: Arc::default(),
            truncation: Arc::default(),
            no_wait: false,
            idle_check: IDLE_CHECK,
            deadlines: Deadlines::default(),
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

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The connections the pool holds at most.
    pub fn pool_size(&self) -> u32 {
        self.pool.max_size()
    }

    /// Runs `f` on a pooled connection, outside any explicit transaction.
    pub fn read<T, E>(&self, f: impl FnOnce(&mut AnyConnection) -> Result<T, E>) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        let mut conn = if self.no_wait {
            self.pool.try_get().ok_or(StoreError::WouldWait)?
        } else {
            self.checkout()?
        };
        f(&mut conn)
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
    fn checkout(&self) -> Result<PooledConnection<Manager>, StoreError> {
        let get = || {
            self.pool.get_timeout(self.deadlines.wait).map_err(|e| {
                tracing::warn!(error = %e, "no pooled database connection within request_deadline_ms");
                StoreError::Deadline("no database connection became free within request_deadline_ms")
            })
        };
        if self.backend != Backend::Postgres {
            return get();
        }
        let want = (
            self.deadlines.pg_statement_timeout_ms,
            self.deadlines.pg_lock_timeout_ms,
        );
        // Bounded: after a restart every idle connection may be dead.
        for _ in 0..=self.pool.max_size() {
            let mut conn = get()?;
            let set = PooledConnection::extensions_mut(&mut conn)
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
                    ext.insert(LastUsed(Instant::now()));
                    return Ok(conn);
                }
                mark_broken(&mut conn);
                continue;
            }
            let now = Instant::now();
            // Updated in place: an insert allocates, on every request.
            let idle = match PooledConnection::extensions_mut(&mut conn).get_mut::<LastUsed>() {
                Some(at) => Some(now.saturating_duration_since(std::mem::replace(&mut at.0, now))),
                None => {
                    PooledConnection::extensions_mut(&mut conn).insert(LastUsed(now));
                    None
                }
            };
            if idle.is_none_or(|d| d < self.idle_check) || conn.batch_execute("SELECT 1").is_ok() {
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
        E: From<StoreError>,
    {
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
        let mut conn = self.checkout()?;
        let begin = pg_begin(d.pg_statement_timeout_ms, d.pg_lock_timeout_ms);
        atomic_with(&mut conn, Some(&begin), f).0
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
        E: From<StoreError>,
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
        E: From<StoreError>,
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
        E: From<StoreError>,
    {
        if let Some(writer) = &self.writer {
            let asked = Instant::now();
            return writer.write_alone(&self.pool, move |c| {
                within::<E>(asked, wait, waited)?;
                f(c)
            });
        }
        let mut conn = self.checkout()?;
        atomic_with(&mut conn, Some(&pg_begin(statement_ms, lock_ms)), f).0
    }

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
    /// half a second when readers let it), by a background thread. Returns at
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

    pub fn ping(&self) -> Result<(), StoreError> {
        self.read(|c| c.batch_execute("SELECT 1").map_err(StoreError::from))
    }
}

fn run_migrations(conn: &mut AnyConnection) -> Result<(), StoreError> {
    let set = match conn {
        AnyConnection::Postgresql(_) => PG_MIGRATIONS,
        AnyConnection::Sqlite(_) => SQLITE_MIGRATIONS,
    };
    if let AnyConnection::Postgresql(c) = conn {
        // Several replicas may start at once: migrate under an advisory lock.
        c.batch_execute("SELECT pg_advisory_lock(7428310021)")?;
    }
    let result = refuse_newer_schema(conn, &set)
        .and_then(|_| {
            conn.run_pending_migrations(set)
                .map(|_| ())
                .map_err(|e| StoreError::Migration(e.to_string()))
        })
        .and_then(|_| super::users::backfill_search(conn))
        .and_then(|_| match conn {
            AnyConnection::Sqlite(c) => sqlite_planner_stats(c),
            AnyConnection::Postgresql(_) => Ok(()),
        });
    if let AnyConnection::Postgresql(c) = conn {
        c.batch_execute("SELECT pg_advisory_unlock(7428310021)")?;
    }
    result
}

/// SQLite chooses plans from `sqlite_stat1`. A new database has no statistics,
/// and without them the planner answers `emails[type eq "work"].value eq …` by
/// walking the tenant's users in order and probing each (linear in users)
/// rather than from the email index. Until `PRAGMA optimize` has measured the
/// real tables, seed figures describing a large tenant: SQLite's documented
/// way to pin plans. Only the SCIM lookup tables are described.
fn sqlite_planner_stats(c: &mut diesel::SqliteConnection) -> Result<(), StoreError> {
    // Creates sqlite_stat1 when missing (analysing only the tiny tenants table).
    c.batch_execute("ANALYZE tenants")?;
    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let described: Vec<N> = diesel::sql_query(
        "SELECT COUNT(*) AS n FROM sqlite_stat1 WHERE tbl IN ('users', 'user_emails', 'group_members')",
    )
    .load(c)?;
    if described.first().is_some_and(|r| r.n > 0) {
        return Ok(());
    }
    // "rows, rows per distinct prefix…": a million users, 100,000 per tenant.
    c.batch_execute(
        "INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES
           ('users', 'sqlite_autoindex_users_1', '1000000 1'),
           ('users', 'users_order', '1000000 100000 1 1'),
           ('users', 'users_user_name_key', '1000000 100000 1'),
           ('users', 'users_external_id_unique', '1000000 100000 1'),
           ('users', 'users_display_name_key', '1000000 100000 2'),
           ('users', 'users_manager', '1000000 100000 10'),
           ('users', 'users_manager_key', '1000000 100000 10'),
           ('user_emails', 'sqlite_autoindex_user_emails_1', '2000000 2 1'),
           ('user_emails', 'user_emails_value_key', '2000000 200000 1'),
           ('group_members', 'sqlite_autoindex_group_members_1', '3000000 1000 1'),
           ('group_members', 'group_members_member', '3000000 300000 3');
         ANALYZE sqlite_schema;",
    )?;
    Ok(())
}

/// A binary older than the database must not run against it: it would not
/// know the columns and rules the newer schema relies on.
fn refuse_newer_schema(
    conn: &mut AnyConnection,
    set: &EmbeddedMigrations,
) -> Result<(), StoreError> {
    use diesel::migration::MigrationSource;
    let known: Vec<String> = MigrationSource::<diesel::sqlite::Sqlite>::migrations(set)
        .map_err(|e| StoreError::Migration(e.to_string()))?
        .iter()
        .map(|m| m.name().version().to_string())
        .collect();
    let applied = conn
        .applied_migrations()
        .map_err(|e| StoreError::Migration(e.to_string()))?;
    match applied
        .iter()
        .map(|v| v.to_string())
        .find(|v| !known.contains(v))
    {
        Some(unknown) => Err(StoreError::Migration(format!(
            "the database has migration {unknown}, which this binary does not know: it was migrated by a newer Custodian; run that version (or newer)"
        ))),
        None => Ok(()),
    }
}

/// A transaction on the concrete connection: `BEGIN IMMEDIATE` on SQLite.
/// Runs `f` atomically: a transaction (`BEGIN IMMEDIATE` on SQLite), or a
/// savepoint when `conn` is already inside one (a write group).
pub(super) fn transaction<T, E>(
    conn: &mut AnyConnection,
    f: impl FnOnce(&mut AnyConnection) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<StoreError>,
{
    atomic(conn, f).0
}

/// `transaction`, also telling whether the connection is still sound: `false`
/// when a commit or rollback of this level failed (the enclosing transaction,
/// if any, can then no longer be trusted).
pub(super) fn atomic<T, E>(
    conn: &mut AnyConnection,
    f: impl FnOnce(&mut AnyConnection) -> Result<T, E>,
) -> (Result<T, E>, bool)
where
    E: From<StoreError>,
{
    atomic_with(conn, None, f)
}

/// PostgreSQL's `BEGIN` with the transaction's own timeouts (ms; 0 = none),
/// sent in the same round trip.
fn pg_begin(statement_ms: u64, lock_ms: u64) -> String {
    format!(
        "BEGIN; SET LOCAL statement_timeout = {statement_ms}; SET LOCAL lock_timeout = {lock_ms}"
    )
}

/// `atomic`; a top-level PostgreSQL transaction begins with `pg_begin`
/// (its `SET LOCAL`s) when given.
fn atomic_with<T, E>(
    conn: &mut AnyConnection,
    pg_begin: Option<&str>,
    f: impl FnOnce(&mut AnyConnection) -> Result<T, E>,
) -> (Result<T, E>, bool)
where
    E: From<StoreError>,
{
    let begun = match conn {
        AnyConnection::Sqlite(c) => {
            if in_transaction(c) {
                AnsiTransactionManager::begin_transaction(c)
            } else {
                AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE")
            }
        }
        AnyConnection::Postgresql(c) => match pg_begin {
            Some(sql) if !in_transaction(c) => {
                AnsiTransactionManager::begin_transaction_sql(c, sql)
            }
            _ => AnsiTransactionManager::begin_transaction(c),
        },
    };
    if let Err(e) = begun {
        return (Err(StoreError::from(e).into()), false);
    }
    // Events `f` emits (`outbox::emit_at_commit`) are written last, just
    // before this level commits: their tenant's counter row stays locked only
    // that long.
    let events = super::outbox::EventsAtCommit::open(conn);
    // A panic inside `f` must not leave the transaction open on a pooled
    // connection (every later write would fail): roll back, then report it.
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let v = f(&mut *conn)?;
        events.write_before_commit(conn)?;
        Ok(v)
    }));
    match outcome {
        Ok(Ok(v)) => {
            let committed = match conn {
                AnyConnection::Sqlite(c) => AnsiTransactionManager::commit_transaction(c),
                AnyConnection::Postgresql(c) => AnsiTransactionManager::commit_transaction(c),
            };
            match committed {
                Ok(()) => {
                    events.committed();
                    (Ok(v), true)
                }
                Err(e) => {
                    rollback(conn);
                    (Err(StoreError::from(e).into()), false)
                }
            }
        }
        Ok(Err(e)) => {
            let sound = rollback(conn);
            (Err(e), sound)
        }
        Err(_) => {
            let sound = rollback(conn);
            (
                Err(
                    StoreError::Corrupt("a write transaction panicked and was rolled back".into())
                        .into(),
                ),
                sound,
            )
        }
    }
}

/// Marks `conn` so the pool discards it when it comes back (`has_broken`).
pub(super) fn mark_broken(conn: &mut AnyConnection) {
    match conn {
        AnyConnection::Sqlite(c) => {
            AnsiTransactionManager::transaction_manager_status_mut(c).set_in_error()
        }
        AnyConnection::Postgresql(c) => {
            AnsiTransactionManager::transaction_manager_status_mut(c).set_in_error()
        }
    }
}

/// Rolls back the innermost level; `false` if that failed.
pub(super) fn rollback(conn: &mut AnyConnection) -> bool {
    let r = match conn {
        AnyConnection::Sqlite(c) => AnsiTransactionManager::rollback_transaction(c),
        AnyConnection::Postgresql(c) => AnsiTransactionManager::rollback_transaction(c),
    };
    if let Err(e) = &r {
        tracing::error!(error = %e, "rollback failed");
    }
    r.is_ok()
}

/// Exactly one transaction level open (a write group between its members).
pub(super) fn at_top_level(conn: &mut AnyConnection) -> bool {
    fn depth<C>(c: &mut C) -> Option<u32>
    where
        C: diesel::Connection<TransactionManager = AnsiTransactionManager>,
    {
        AnsiTransactionManager::transaction_manager_status_mut(c)
            .transaction_depth()
            .ok()
            .flatten()
            .map(|d| d.get())
    }
    match conn {
        AnyConnection::Sqlite(c) => depth(c) == Some(1),
        AnyConnection::Postgresql(c) => depth(c) == Some(1),
    }
}

/// `SELECT COUNT(*) AS n …`
#[derive(QueryableByName)]
pub struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub n: i64,
}

/// The order of a list: `sortBy`'s expression (if any), then creation, then id.
#[derive(Debug, Clone, Default)]
pub struct Order {
    pub sort: Option<String>,
    pub descending: bool,
}

/// Which rows a page holds.
#[derive(Debug, Clone)]
pub enum Window {
    /// Skip this many rows (`startIndex` paging: O(offset), by nature).
    Offset(i64),
    /// The rows after a position (cursor paging: constant cost at any depth).
    After(Option<crate::scim::cursor::Position>),
}

/// A listed row with the value it was sorted by.
pub trait Positioned {
    fn position(&self) -> crate::scim::cursor::Position;
}

pub struct Page<R> {
    pub rows: Vec<R>,
    /// `None` when not counted (cursor pages after the first).
    pub total: Option<i64>,
    /// More rows follow (cursor paging only).
    pub more: bool,
}

/// One page of `from` (a table and its alias) matching `wh`, in `order`.
/// Rows carry their sort value as `sort_key`. Ties in the sort value fall back
/// to creation order and id, so the order is total and stable between pages.
pub fn paged<R>(
    conn: &mut AnyConnection,
    from: &str,
    alias: &str,
    wh: Sql,
    order: &Order,
    window: &Window,
    limit: i64,
) -> Result<Page<R>, StoreError>
where
    R: QueryableByName<Sqlite> + QueryableByName<Pg> + 'static,
{
    let counted = !matches!(window, Window::After(Some(_)));
    let count = |conn: &mut AnyConnection| -> Result<i64, StoreError> {
        let mut count = Sql::default();
        count
            .push(&format!("SELECT COUNT(*) AS n FROM {from}"))
            .append(wh.clone());
        Ok(load_sql::<Count>(conn, &count)?
            .first()
            .map(|r| r.n)
            .unwrap_or(0))
    };
    if limit == 0 {
        return Ok(Page {
            rows: vec![],
            total: counted.then(|| count(conn)).transpose()?,
            more: false,
        });
    }
    let page = page_query(from, alias, wh.clone(), order, window, limit);
    let mut rows = load_sql::<R>(conn, &page)?;
    let fetched = i64::try_from(rows.len()).unwrap_or(i64::MAX);
    let more = matches!(window, Window::After(_)) && fetched > limit;
    rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    // A page that ends before `limit` reached the last match, so the total is
    // known without a COUNT: an IdP's `userName eq` lookup is one statement.
    let total = match window {
        Window::After(Some(_)) => None,
        Window::Offset(skip) if fetched < limit && (fetched > 0 || *skip == 0) => {
            Some(skip + fetched)
        }
        Window::After(None) if fetched <= limit => Some(fetched),
        _ => Some(count(conn)?),
    };
    Ok(Page { rows, total, more })
}

/// The `SELECT` of one page (see `paged`); public so tests can EXPLAIN it.
pub fn page_query(
    from: &str,
    alias: &str,
    wh: Sql,
    order: &Order,
    window: &Window,
    limit: i64,
) -> Sql {
    let (dir, cmp) = if order.descending {
        ("DESC", "<")
    } else {
        ("ASC", ">")
    };
    let (c, i) = (format!("{alias}.created_at"), format!("{alias}.id"));
    let key = order.sort.as_deref();
    let mut page = Sql::default();
    page.push(&format!(
        "SELECT {alias}.*, {} AS sort_key FROM {from}",
        key.map(str::to_string)
            .unwrap_or_else(|| "CAST(NULL AS TEXT)".into())
    ))
    .append(wh);
    if let Window::After(Some(at)) = window {
        // The rows after `at` in this order: (key, created, id) beyond it, with
        // absent keys last ascending and first descending.
        let mut tie = Sql::default();
        tie.push(&format!("({c}, {i}) {cmp} ("))
            .bind_text(at.created.clone())
            .push(", ")
            .bind_text(at.id.clone())
            .push(")");
        page.push(" AND ");
        match (key, &at.sort, order.descending) {
            (None, _, _) => {
                page.append(tie);
            }
            (Some(k), Some(v), false) => {
                page.push(&format!("({k} > "))
                    .bind_text(v.clone())
                    .push(&format!(" OR ({k} = "))
                    .bind_text(v.clone())
                    .push(" AND ")
                    .append(tie)
                    .push(&format!(") OR {k} IS NULL)"));
            }
            (Some(k), None, false) => {
                page.push(&format!("({k} IS NULL AND "))
                    .append(tie)
                    .push(")");
            }
            (Some(k), Some(v), true) => {
                page.push(&format!("({k} < "))
                    .bind_text(v.clone())
                    .push(&format!(" OR ({k} = "))
                    .bind_text(v.clone())
                    .push(" AND ")
                    .append(tie)
                    .push("))");
            }
            (Some(k), None, true) => {
                page.push(&format!("(({k} IS NULL AND "))
                    .append(tie)
                    .push(&format!(") OR {k} IS NOT NULL)"));
            }
        }
    }
    page.push(" ORDER BY ");
    if let Some(k) = key {
        let nulls = if order.descending { "FIRST" } else { "LAST" };
        page.push(&format!("{k} {dir} NULLS {nulls}, "));
    }
    page.push(&format!("{c} {dir}, {i} {dir} LIMIT "));
    let fetch = match window {
        // One more than asked tells whether another page follows.
        Window::After(_) => limit.saturating_add(1),
        Window::Offset(_) => limit,
    };
    page.bind(Bind::BigInt(fetch));
    if let Window::Offset(offset) = window {
        page.push(" OFFSET ").bind(Bind::BigInt(*offset));
    }
    page
}

/// PostgreSQL: locks the row for the rest of the transaction, so concurrent
/// read-modify-writes (PUT, PATCH, If-Match) serialise instead of losing updates.
/// SQLite's single writer already serialises them.
pub fn lock_row(
    conn: &mut AnyConnection,
    table: &str,
    tenant: &str,
    id: &str,
) -> Result<(), StoreError> {
    if backend_of(conn) == Backend::Postgres {
        let mut sql = Sql::default();
        sql.push(&format!("SELECT 1 FROM {table} WHERE tenant_id = "))
            .bind_text(tenant);
        sql.push(" AND id = ").bind_text(id);
        sql.push(" FOR UPDATE");
        execute_sql(conn, &sql)?;
    }
    Ok(())
}

pub fn backend_of(conn: &AnyConnection) -> Backend {
    match conn {
        AnyConnection::Sqlite(_) => Backend::Sqlite,
        AnyConnection::Postgresql(_) => Backend::Postgres,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_scheme_picks_backend() {
        assert_eq!(
            DbUrl::parse("postgres://u@h/db").backend(),
            Backend::Postgres
        );
        assert_eq!(
            DbUrl::parse("postgresql://u@h/db").backend(),
            Backend::Postgres
        );
        assert_eq!(
            DbUrl::parse("sqlite://data/x.db").backend(),
            Backend::Sqlite
        );
        assert_eq!(
            DbUrl::parse("./data/custodian.db").backend(),
            Backend::Sqlite
        );
    }

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

    #[test]
    fn refuses_a_database_migrated_by_a_newer_binary() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join("x.db").display());
        let db = Db::open(&url, 1, true).expect("open");
        db.write(|c| {
            c.batch_execute(
                "INSERT INTO __diesel_schema_migrations (version) VALUES ('29991231000000')",
            )
            .map_err(StoreError::from)
        })
        .expect("insert");
        drop(db);
        let err = Db::open(&url, 1, false)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("29991231000000") && err.contains("newer"),
            "{err}"
        );
    }
}

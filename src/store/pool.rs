//! Connections: one binary, SQLite or PostgreSQL chosen by the URL at start;
//! how a connection is opened (SQLite's pragmas) and when the pool must
//! discard one.

use diesel::connection::{AnsiTransactionManager, CacheSize, SimpleConnection, TransactionManager};
use diesel::prelude::*;
use diesel::r2d2::{self, ManageConnection};

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
            $crate::store::AnyConnection::Sqlite($c) => $body,
            $crate::store::AnyConnection::Postgresql($c) => $body,
        }
    };
}

#[derive(diesel::MultiConnection)]
pub enum AnyConnection {
    Postgresql(diesel::PgConnection),
    Sqlite(diesel::SqliteConnection),
}

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

/// Opens the pool's connections.
pub struct Manager {
    pub url: DbUrl,
    /// PostgreSQL: whether diesel prepares named statements and keeps them
    /// per connection (`prepared_statements`, default true). `false` for a
    /// transaction-mode pooler (PgBouncer 1.18), which hands each
    /// transaction whichever server connection is free, so a statement
    /// prepared on one is missing on the next (or its name is already
    /// taken there by another client's). Without the cache every statement
    /// goes out unnamed as one Parse/Bind/Execute/Sync (`PQsendQueryParams`),
    /// which a pooler keeps on one server connection.
    pub prepared_statements: bool,
}

impl ManageConnection for Manager {
    type Connection = AnyConnection;
    type Error = r2d2::Error;

    fn connect(&self) -> Result<AnyConnection, r2d2::Error> {
        match &self.url {
            DbUrl::Postgres(u) => {
                let mut c =
                    diesel::PgConnection::establish(u).map_err(r2d2::Error::ConnectionError)?;
                if !self.prepared_statements {
                    c.set_prepared_statement_cache_size(CacheSize::Disabled);
                }
                Ok(AnyConnection::Postgresql(c))
            }
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
pub(super) fn in_transaction<C>(c: &mut C) -> bool
where
    C: diesel::Connection<TransactionManager = AnsiTransactionManager>,
{
    match AnsiTransactionManager::transaction_manager_status_mut(c).transaction_depth() {
        Ok(depth) => depth.is_some(),
        Err(_) => true,
    }
}

/// The connections' busy timeout (ms): how long a statement waits for a lock.
pub(super) const BUSY_TIMEOUT_MS: u32 = 5000;

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
}

//! The storage layer's error.

use diesel::result::{DatabaseErrorKind, Error as DieselError};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// A unique index refused the write (a concurrent writer won the race).
    #[error("unique constraint violated: {0}")]
    Unique(String),
    #[error("the database is busy; retry shortly")]
    Busy,
    /// The request ran past one of its deadlines (waiting for its turn, a
    /// connection or the SQLite writer; PostgreSQL's `statement_timeout`
    /// or `lock_timeout`). Its transaction was rolled back.
    #[error("deadline exceeded: {0}")]
    Deadline(&'static str),
    /// A deadline passed after an earlier step of the request had committed
    /// (the step is named): retrying finishes the request.
    #[error("deadline exceeded after a committed step: {0}")]
    DeadlineAfter(&'static str),
    #[error("database error: {0}")]
    Db(DieselError),
    #[error("connection pool error: {0}")]
    Pool(String),
    #[error("migration error: {0}")]
    Migration(String),
    /// A `Db::idle_sqlite` handle found no idle connection (the caller takes
    /// the blocking path instead).
    #[error("no idle database connection")]
    WouldWait,
    /// A shared SQLite commit (`store::writer`) failed: this write is not stored.
    #[error("the commit failed: {0}")]
    Commit(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("{0}")]
    Config(String),
    /// The write committed, but the disposal journal (a file outside the
    /// database) could not be appended to.
    #[error("committed, but the disposal journal could not be written: {0}")]
    Journal(String),
}

impl From<DieselError> for StoreError {
    fn from(e: DieselError) -> Self {
        match e {
            DieselError::NotFound => StoreError::NotFound,
            DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => {
                StoreError::Unique(info.constraint_name().unwrap_or(info.message()).to_string())
            }
            // PostgreSQL's 57014 query_canceled / 55P03 lock_not_available.
            // diesel does not expose the SQLSTATE, so the (English, the
            // server's default `lc_messages`) message decides.
            DieselError::DatabaseError(_, ref info)
                if info.message().contains("due to statement timeout") =>
            {
                StoreError::Deadline("the statement ran past pg_statement_timeout_ms")
            }
            DieselError::DatabaseError(_, ref info)
                if info.message().contains("due to lock timeout")
                    || info.message().starts_with("could not obtain lock") =>
            {
                StoreError::Deadline("a row stayed locked past pg_lock_timeout_ms")
            }
            DieselError::DatabaseError(_, ref info)
                if info.message().contains("database is locked")
                    || info.message().contains("database is busy") =>
            {
                StoreError::Busy
            }
            other => StoreError::Db(other),
        }
    }
}

impl From<diesel::r2d2::PoolError> for StoreError {
    fn from(e: diesel::r2d2::PoolError) -> Self {
        StoreError::Pool(e.to_string())
    }
}

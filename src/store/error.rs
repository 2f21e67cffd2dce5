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
    /// The database could not serve the request (connection lost, server
    /// restarting, out of disk): transient, answered 503 with `Retry-After`.
    /// Nothing was written unless the loss hit a commit (`CommitUnknown`).
    #[error("database unavailable: {0}")]
    Unavailable(&'static str),
    /// The connection was lost while the commit was on its way: the write
    /// may or may not be stored.
    #[error("connection lost during commit")]
    CommitUnknown,
    /// The database refuses writes (SQLSTATE 25006: a standby after a
    /// failover, `default_transaction_read_only`); reads still work.
    #[error("the database is read-only")]
    ReadOnly,
}

/// The store's error inside a layer's own error, if it holds one: lets
/// `Db`'s write paths see a fault (a read-only refusal) through the
/// caller's error type.
pub trait HoldsStoreError {
    fn store_error(&self) -> Option<&StoreError>;
}

impl HoldsStoreError for StoreError {
    fn store_error(&self) -> Option<&StoreError> {
        Some(self)
    }
}

/// The message of a connection that is gone (libpq's and the server's words
/// for SQLSTATE 57P01/57P02/57P03 and class 08), for errors diesel reports
/// without `ClosedConnection`.
fn lost_connection(message: &str) -> bool {
    const WORDS: [&str; 8] = [
        "server closed the connection unexpectedly",
        "terminating connection due to",
        "no connection to the server",
        "connection not open",
        "could not receive data from server",
        "could not send data to server",
        "the database system is",
        "SSL SYSCALL error",
    ];
    WORDS.iter().any(|w| message.contains(w))
}

/// PostgreSQL's SQLSTATE class 53 (insufficient resources) raised inside a
/// session, by the server's (English) words: diesel does not expose the
/// SQLSTATE. 53300 too_many_connections comes at connect, as a pool error
/// (503 already).
///
/// 53100 disk_full: a relation (its TOAST, an index, a free-space map)
/// extended, a temporary or WAL file written, with the errno's words; a short
/// write ("could not extend file \"…\": wrote only 4096 of 8192 bytes at
/// block N", a filesystem with half a page left) has no errno, hence no words.
fn disk_full(message: &str) -> bool {
    message.contains("No space left on device")
        || (message.starts_with("could not extend file") && message.contains("wrote only"))
}

/// 53200 out_of_memory: "out of memory", "out of shared memory".
fn out_of_memory(message: &str) -> bool {
    message.starts_with("out of memory") || message.starts_with("out of shared memory")
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
            DieselError::DatabaseError(
                DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
                _,
            ) => StoreError::Unavailable("the connection to the database was lost"),
            DieselError::DatabaseError(_, ref info) if lost_connection(info.message()) => {
                StoreError::Unavailable("the connection to the database was lost")
            }
            DieselError::DatabaseError(DatabaseErrorKind::ReadOnlyTransaction, _) => {
                StoreError::ReadOnly
            }
            // Transient: the statement rolled back, and writes succeed again once
            // space or memory is freed.
            DieselError::DatabaseError(_, ref info) if disk_full(info.message()) => {
                StoreError::Unavailable("the database server is out of disk space")
            }
            DieselError::DatabaseError(_, ref info) if out_of_memory(info.message()) => {
                StoreError::Unavailable("the database server is out of memory")
            }
            // 40P01 / 40001: the server broke a lock cycle or a serialisation
            // conflict by rolling this transaction back; a retry succeeds.
            DieselError::DatabaseError(DatabaseErrorKind::SerializationFailure, _) => {
                StoreError::Unavailable("the database rolled the request back over a lock conflict")
            }
            DieselError::DatabaseError(_, ref info) if info.message() == "deadlock detected" => {
                StoreError::Unavailable("the database rolled the request back over a lock conflict")
            }
            // A transaction whose connection failed under it.
            DieselError::BrokenTransactionManager => {
                StoreError::Unavailable("the connection to the database was lost")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_faults_are_recognised_by_kind_and_words() {
        let lost = |kind, msg: &str| {
            StoreError::from(DieselError::DatabaseError(kind, Box::new(msg.to_string())))
        };
        // A deadlock or serialisation failure rolled the transaction back: 503.
        assert!(matches!(
            lost(DatabaseErrorKind::Unknown, "deadlock detected"),
            StoreError::Unavailable(d) if d.contains("lock conflict")
        ));
        assert!(matches!(
            lost(
                DatabaseErrorKind::SerializationFailure,
                "could not serialize access due to concurrent update"
            ),
            StoreError::Unavailable(d) if d.contains("lock conflict")
        ));
        assert!(matches!(
            lost(DatabaseErrorKind::ClosedConnection, "x"),
            StoreError::Unavailable(_)
        ));
        assert!(matches!(
            lost(
                DatabaseErrorKind::Unknown,
                "terminating connection due to administrator command"
            ),
            StoreError::Unavailable(_)
        ));
        assert!(matches!(
            lost(
                DatabaseErrorKind::ReadOnlyTransaction,
                "cannot execute INSERT in a read-only transaction"
            ),
            StoreError::ReadOnly
        ));
        assert!(matches!(
            lost(
                DatabaseErrorKind::Unknown,
                "could not extend file \"base/1/2\": No space left on device"
            ),
            StoreError::Unavailable(d) if d.contains("disk")
        ));
        assert!(matches!(
            lost(DatabaseErrorKind::Unknown, "syntax error"),
            StoreError::Db(_)
        ));
    }

    /// SQLSTATE class 53 as PostgreSQL words it (diesel gives no SQLSTATE):
    /// each a 503 naming the resource, and look-alikes not.
    #[test]
    fn insufficient_resources_are_unavailable_by_the_servers_words() {
        let map = |msg: &str| {
            StoreError::from(DieselError::DatabaseError(
                DatabaseErrorKind::Unknown,
                Box::new(msg.to_string()),
            ))
        };
        for disk in [
            "could not extend file \"pg_tblspc/16385/PG_15_202209061/16384/16398\": No space left on device",
            "could not extend file \"base/5/16391\": wrote only 4096 of 8192 bytes at block 121",
            "could not extend file \"base/5/16391\" with FileFallocate(): No space left on device",
            "could not write to file \"pg_wal/xlogtemp.123\": No space left on device",
            "could not write block 7 of temporary file: No space left on device",
        ] {
            assert!(
                matches!(map(disk), StoreError::Unavailable(d) if d.contains("disk space")),
                "{disk}"
            );
        }
        for memory in ["out of memory", "out of shared memory"] {
            assert!(
                matches!(map(memory), StoreError::Unavailable(d) if d.contains("out of memory")),
                "{memory}"
            );
        }
        // Not class 53: an I/O error, a value named like one.
        for other in [
            "could not extend file \"base/5/16391\": Input/output error",
            "invalid input syntax for type integer: \"out of memory\"",
        ] {
            assert!(matches!(map(other), StoreError::Db(_)), "{other}");
        }
    }
}

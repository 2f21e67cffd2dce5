//! Transactions: `BEGIN IMMEDIATE` on SQLite, a savepoint inside an open
//! transaction, a rollback on error or panic, and the events emitted inside
//! written just before the commit (`outbox::EventsAtCommit`).

use super::error::StoreError;
use super::pool::{AnyConnection, Backend, backend_of, in_transaction};
use super::sql::{Sql, execute_sql};
use diesel::connection::{AnsiTransactionManager, TransactionManager};

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
pub(super) fn pg_begin(statement_ms: u64, lock_ms: u64) -> String {
    format!(
        "BEGIN; SET LOCAL statement_timeout = {statement_ms}; SET LOCAL lock_timeout = {lock_ms}"
    )
}

/// `atomic`; a top-level PostgreSQL transaction begins with `pg_begin`
/// (its `SET LOCAL`s) when given.
pub(super) fn atomic_with<T, E>(
    conn: &mut AnyConnection,
    pg_begin: Option<&str>,
    f: impl FnOnce(&mut AnyConnection) -> Result<T, E>,
) -> (Result<T, E>, bool)
where
    E: From<StoreError>,
{
    if let Err(e) = begin(conn, pg_begin) {
        return (Err(e.into()), false);
    }
    run_begun(conn, f)
}

/// Opens a transaction level (see `atomic_with`). Nothing of the caller's
/// has run when this fails, so a caller may retry it on another connection.
pub(super) fn begin(conn: &mut AnyConnection, pg_begin: Option<&str>) -> Result<(), StoreError> {
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
    begun.map_err(StoreError::from)
}

/// Runs `f` in the level `begin` opened, then commits it (or rolls back).
pub(super) fn run_begun<T, E>(
    conn: &mut AnyConnection,
    f: impl FnOnce(&mut AnyConnection) -> Result<T, E>,
) -> (Result<T, E>, bool)
where
    E: From<StoreError>,
{
    // Events `f` emits (`outbox::emit_at_commit`) are written last, just
    // before this level commits: their tenant's counter row stays locked only
    // that long.
    let events = super::outbox::EventsAtCommit::open(conn);
    // Journal records this level queues are dropped if it rolls back.
    let journal_mark = super::journal_queue::mark();
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
                    super::journal_queue::truncate(journal_mark);
                    // The COMMIT may have reached the server before the
                    // connection went: the outcome is unknown, and saying
                    // "nothing was written" could be false.
                    let e = match StoreError::from(e) {
                        StoreError::Unavailable(_) => StoreError::CommitUnknown,
                        other => other,
                    };
                    (Err(e.into()), false)
                }
            }
        }
        Ok(Err(e)) => {
            let sound = rollback(conn);
            super::journal_queue::truncate(journal_mark);
            (Err(e), sound)
        }
        Err(_) => {
            let sound = rollback(conn);
            super::journal_queue::truncate(journal_mark);
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

/// PostgreSQL: locks the row for the rest of the transaction, so concurrent
/// read-modify-writes (PUT, PATCH, If-Match) serialise instead of losing updates.
/// SQLite's single writer already serialises them.
pub(in crate::store) fn lock_row(
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

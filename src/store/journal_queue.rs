//! Disposal-journal records waiting for their write to commit.
//!
//! A disposal, lift or release queues its record here inside its write
//! (`record_at_commit`); `Db::write*` hands the records of a write that
//! committed to the journal (`JournalSink`, a file outside the database)
//! before the write returns, so the journal is durable before the answer.
//! A level of `tx::atomic` that rolls back drops what it queued; a write
//! whose group commit fails drops everything it queued.
//!
//! The queue is per thread, like the outbox's: a write's body runs on the
//! caller's thread, and `Db::write*` returns there after the commit (a write
//! group's members included).

use super::error::StoreError;
use crate::domain::journal::JournalRecord;
use std::cell::RefCell;

/// Where committed records go: the journal file (`crate::journal`).
pub trait JournalSink: Send + Sync {
    /// Appends durably (written and fsynced) or fails.
    fn append(&self, records: &[JournalRecord]) -> Result<(), String>;
}

thread_local! {
    static PENDING: RefCell<Vec<JournalRecord>> = const { RefCell::new(Vec::new()) };
}

/// Queues `record` for the journal, written once the enclosing write commits.
pub fn record_at_commit(record: JournalRecord) {
    PENDING.with_borrow_mut(|p| p.push(record));
}

/// The queue's length now: what a level or a write queues comes after it.
pub(super) fn mark() -> usize {
    PENDING.with_borrow(Vec::len)
}

/// Drops what was queued after `mark` (the level rolled back).
pub(super) fn truncate(mark: usize) {
    PENDING.with_borrow_mut(|p| p.truncate(mark));
}

/// Takes what was queued after `mark`.
pub(super) fn take_from(mark: usize) -> Vec<JournalRecord> {
    PENDING.with_borrow_mut(|p| p.split_off(mark.min(p.len())))
}

/// Runs a write and journals what it queued once it committed. A journal
/// that cannot be appended to fails the request with `StoreError::Journal`:
/// the change is committed, but the operator must know the journal missed it.
pub(super) fn journaled<T, E>(
    sink: Option<&dyn JournalSink>,
    write: impl FnOnce() -> Result<T, E>,
) -> Result<T, E>
where
    E: From<StoreError>,
{
    let at = mark();
    let out = write();
    let records = take_from(at);
    let v = out?;
    if let Some(sink) = sink
        && !records.is_empty()
    {
        sink.append(&records).map_err(|e| {
            tracing::error!(error = %e, records = records.len(), "committed, but the disposal journal could not be appended to");
            StoreError::Journal(e)
        })?;
    }
    Ok(v)
}

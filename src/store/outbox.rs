//! The outbox: event rows, written when the transaction that emits them
//! commits, and the tenant counter rows their `seq`s come from; the reads of
//! the feed and of the relay.
//!
//! An event's `seq` comes from its tenant's counter row, and taking it locks
//! that row until commit: that lock is what makes `seq` order commit order
//! (the `after=SEQ` feed never skips a late commit). Every other write of the
//! tenant that emits an event waits for it. So an event emitted inside a
//! transaction is only queued (`emit_at_commit`), and the transaction writes
//! its queue just before it commits (`EventsAtCommit`, opened by every
//! transaction level in `tx::atomic`; a savepoint's events wait for the
//! enclosing transaction): the lock is held for one statement (two on SQLite,
//! whose writes are serial anyway) and the `COMMIT`, not for the rest of the
//! request.
//!
//! Since events do not lock the counter row early, a transaction that moves
//! content rows locks it first itself (`lock_tenant`), as disposals and
//! transfers do: one lock order (DESIGN-NOTES "Locking").
//!
//! The queue is per thread: a transaction's body runs on the thread that
//! opened it (`atomic` calls it directly). An event emitted outside any
//! transaction, or on another connection than the open transaction's, is
//! written at once.

use super::error::StoreError;
use super::pool::{AnyConnection, Backend, backend_of};
use super::schema::outbox;
use super::sql::{Bind, Sql, execute_sql, load_sql};
use diesel::prelude::*;
use std::cell::RefCell;

/// One event, before its `seq` is known.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub id: String,
    pub tenant_id: String,
    pub event_type: String,
    pub subject_user_id: Option<String>,
    pub data: String,
    pub occurred_at: String,
}

#[derive(Default)]
struct Queue {
    /// Transaction levels open on this thread.
    levels: usize,
    /// The outermost open level's connection (its address): only events for
    /// that transaction are queued.
    conn: usize,
    events: Vec<NewEvent>,
}

thread_local! {
    static QUEUE: RefCell<Queue> = RefCell::new(Queue::default());
}

fn address(c: &AnyConnection) -> usize {
    std::ptr::from_ref(c) as usize
}

/// Queues `event` to be written when the transaction open on this thread
/// commits, when `c` is that transaction's connection; outside any
/// transaction, writes it now.
pub fn emit_at_commit(c: &mut AnyConnection, event: NewEvent) -> Result<(), StoreError> {
    let here = address(c);
    let leftover = QUEUE.with_borrow_mut(|q| {
        if q.levels == 0 || q.conn != here {
            Some(event)
        } else {
            q.events.push(event);
            None
        }
    });
    match leftover {
        Some(event) => write(c, vec![event]),
        None => Ok(()),
    }
}

/// A transaction level's share of the queue: the events queued since it
/// opened. Dropping it discards them (the level failed, or panicked); the
/// outermost level writes them just before its commit
/// (`write_before_commit`), an inner one leaves them to it.
pub(super) struct EventsAtCommit {
    mark: usize,
    outermost: bool,
    /// The level committed (or released its savepoint).
    committed: std::cell::Cell<bool>,
}

impl EventsAtCommit {
    pub(super) fn open(c: &AnyConnection) -> EventsAtCommit {
        QUEUE.with_borrow_mut(|q| {
            let outermost = q.levels == 0;
            if outermost {
                q.conn = address(c);
            }
            q.levels += 1;
            EventsAtCommit {
                mark: q.events.len(),
                outermost,
                committed: std::cell::Cell::new(false),
            }
        })
    }

    /// The outermost level writes its events; the caller commits next. An
    /// inner level (a savepoint) keeps them queued for the enclosing one, so
    /// every event is written once, last, in emission order.
    pub(super) fn write_before_commit(&self, c: &mut AnyConnection) -> Result<(), StoreError> {
        if !self.outermost {
            return Ok(());
        }
        let events = QUEUE.with_borrow_mut(|q| q.events.split_off(self.mark.min(q.events.len())));
        if events.is_empty() {
            return Ok(());
        }
        write(c, events)
    }

    /// The level's transaction or savepoint is committed: an inner level's
    /// events now belong to the enclosing one.
    pub(super) fn committed(&self) {
        self.committed.set(true);
    }
}

impl Drop for EventsAtCommit {
    fn drop(&mut self) {
        QUEUE.with_borrow_mut(|q| {
            if !self.committed.get() {
                q.events.truncate(self.mark);
            }
            q.levels = q.levels.saturating_sub(1);
        });
    }
}

/// Takes `events.len()` consecutive `seq`s per tenant (locking each counter
/// row not already locked, in tenant order) and inserts the rows, in
/// emission order within a tenant.
fn write(c: &mut AnyConnection, events: Vec<NewEvent>) -> Result<(), StoreError> {
    if backend_of(c) == Backend::Postgres {
        return write_pg(c, &events);
    }
    for tenant in tenants(&events) {
        let mine: Vec<&NewEvent> = events.iter().filter(|e| e.tenant_id == tenant).collect();
        let n = i64::try_from(mine.len()).unwrap_or(i64::MAX);
        let first = take_seqs(c, tenant, n)?;
        // Row by row: one statement diesel prepares once per connection (a
        // multi-row `INSERT` is a new statement for each row count).
        for (e, seq) in mine.into_iter().zip(first..) {
            crate::per_backend!(c, c => diesel::insert_into(outbox::table)
                .values((
                    outbox::id.eq(&e.id),
                    outbox::tenant_id.eq(&e.tenant_id),
                    outbox::seq.eq(seq),
                    outbox::event_type.eq(&e.event_type),
                    outbox::subject_user_id.eq(&e.subject_user_id),
                    outbox::data.eq(&e.data),
                    outbox::occurred_at.eq(&e.occurred_at),
                ))
                .execute(c))?;
        }
    }
    Ok(())
}

/// The tenants of `events`, in order.
fn tenants(events: &[NewEvent]) -> Vec<&str> {
    let mut tenants: Vec<&str> = events.iter().map(|e| e.tenant_id.as_str()).collect();
    tenants.sort_unstable();
    tenants.dedup();
    tenants
}

/// `write` on PostgreSQL: one statement per tenant takes the `seq`s and inserts
/// the rows, so the counter row is locked for one round trip and the commit
/// (not two: BENCHMARKS.md, round 4).
fn write_pg(c: &mut AnyConnection, events: &[NewEvent]) -> Result<(), StoreError> {
    for tenant in tenants(events) {
        let mine: Vec<&NewEvent> = events.iter().filter(|e| e.tenant_id == tenant).collect();
        let n = i64::try_from(mine.len()).unwrap_or(i64::MAX);
        let mut q = Sql::default();
        q.push("WITH s AS (UPDATE tenant_counters SET next_seq = next_seq + ")
            .bind(Bind::BigInt(n));
        q.push(" WHERE tenant_id = ").bind_text(tenant);
        q.push(" RETURNING next_seq - ").bind(Bind::BigInt(n));
        q.push(" AS first) INSERT INTO outbox (id, tenant_id, seq, event_type, subject_user_id, data, occurred_at) SELECT v.id, ")
            .bind_text(tenant);
        q.push(", s.first + v.k, v.event_type, v.subject_user_id, v.data, v.occurred_at FROM s, (VALUES ");
        for (k, e) in (0_i64..).zip(&mine) {
            if k > 0 {
                q.push(", ");
            }
            q.push("(").bind_text(e.id.clone());
            q.push(", ").bind(Bind::BigInt(k));
            q.push(", ").bind_text(e.event_type.clone());
            q.push(", ").bind(Bind::OptText(e.subject_user_id.clone()));
            q.push(", ").bind_text(e.data.clone());
            q.push(", ").bind_text(e.occurred_at.clone());
            q.push(")");
        }
        q.push(") AS v (id, k, event_type, subject_user_id, data, occurred_at)");
        if execute_sql(c, &q)? == 0 {
            // The tenant's first event: no counter row yet.
            create_counter(c, tenant)?;
            if execute_sql(c, &q)? != mine.len() {
                return Err(StoreError::Corrupt(
                    "the tenant's event counter row is missing".into(),
                ));
            }
        }
    }
    Ok(())
}

/// The first of `n` consecutive new `seq`s for `tenant`; its counter row stays
/// locked until commit. One statement once the row exists.
fn take_seqs(c: &mut AnyConnection, tenant: &str, n: i64) -> Result<i64, StoreError> {
    #[derive(QueryableByName)]
    struct First {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        first: i64,
    }
    let mut q = Sql::default();
    q.push("UPDATE tenant_counters SET next_seq = next_seq + ")
        .bind(Bind::BigInt(n));
    q.push(" WHERE tenant_id = ").bind_text(tenant);
    q.push(" RETURNING next_seq - ").bind(Bind::BigInt(n));
    q.push(" AS first");
    if let Some(r) = load_sql::<First>(c, &q)?.pop() {
        return Ok(r.first);
    }
    create_counter(c, tenant)?;
    Ok(load_sql::<First>(c, &q)?
        .pop()
        .ok_or(StoreError::NotFound)?
        .first)
}

/// The tenant's counter row, if it has none yet (its first event or brake check).
pub fn create_counter(c: &mut AnyConnection, tenant: &str) -> Result<(), StoreError> {
    let mut ins = Sql::default();
    ins.push("INSERT INTO tenant_counters (tenant_id, brake_tripped_at, next_seq) VALUES (")
        .bind_text(tenant);
    ins.push(", NULL, 1) ON CONFLICT DO NOTHING");
    execute_sql(c, &ins)?;
    Ok(())
}

/// The tenant's counter row, locked for the rest of the transaction.
#[derive(Debug, Clone)]
pub struct TenantCounter {
    pub brake_tripped_at: Option<String>,
    pub next_seq: i64,
    /// The tenant's disposals completed so far (`disposals_done`): an upper
    /// bound of those done in any hour.
    pub disposals_done: i64,
}

/// Locks the tenant's counter row (creating it if need be) for the rest of
/// the transaction: taken first by a transaction that moves content rows.
pub fn lock_tenant(c: &mut AnyConnection, tenant: &str) -> Result<TenantCounter, StoreError> {
    let pg = backend_of(c) == Backend::Postgres;
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
        brake_tripped_at: Option<String>,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        next_seq: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        disposals_done: i64,
    }
    let mut q = Sql::default();
    q.push(
        "SELECT brake_tripped_at, next_seq, disposals_done FROM tenant_counters WHERE tenant_id = ",
    )
    .bind_text(tenant);
    if pg {
        q.push(" FOR UPDATE");
    }
    // The row is created only when missing, so the usual call is one
    // statement (every DELETE takes this lock, and on PostgreSQL holds it to
    // its commit). Two first callers racing both insert; `ON CONFLICT DO
    // NOTHING` makes the second wait for the first and then lock its row.
    let row = match load_sql::<Row>(c, &q)?.pop() {
        Some(row) => row,
        None => {
            create_counter(c, tenant)?;
            load_sql::<Row>(c, &q)?.pop().ok_or(StoreError::NotFound)?
        }
    };
    Ok(TenantCounter {
        brake_tripped_at: row.brake_tripped_at,
        next_seq: row.next_seq,
        disposals_done: row.disposals_done,
    })
}

/// One stored event.
#[derive(Debug, Clone, Queryable)]
pub struct EventRow {
    pub id: String,
    pub seq: i64,
    pub event_type: String,
    pub subject_user_id: Option<String>,
    pub data: String,
    pub occurred_at: String,
}

/// The tenant's events after `after`, in `seq` order, at most `limit`.
pub fn after(
    c: &mut AnyConnection,
    tenant: &str,
    after: i64,
    limit: i64,
) -> Result<Vec<EventRow>, StoreError> {
    Ok(outbox::table
        .filter(outbox::tenant_id.eq(tenant))
        .filter(outbox::seq.gt(after))
        .order(outbox::seq)
        .limit(limit)
        .select((
            outbox::id,
            outbox::seq,
            outbox::event_type,
            outbox::subject_user_id,
            outbox::data,
            outbox::occurred_at,
        ))
        .load(c)?)
}

/// Whether the tenant has an event after `after`.
pub fn any_after(c: &mut AnyConnection, tenant: &str, after: i64) -> Result<bool, StoreError> {
    let next: Option<i64> = outbox::table
        .filter(outbox::tenant_id.eq(tenant))
        .filter(outbox::seq.gt(after))
        .select(outbox::seq)
        .order(outbox::seq)
        .first(c)
        .optional()?;
    Ok(next.is_some())
}

/// The tenant's highest event `seq` (0: none yet).
pub fn last_seq(c: &mut AnyConnection, tenant: &str) -> Result<i64, StoreError> {
    Ok(outbox::table
        .filter(outbox::tenant_id.eq(tenant))
        .select(diesel::dsl::max(outbox::seq))
        .first::<Option<i64>>(c)?
        .unwrap_or(0))
}

#[cfg(test)]
#[allow(clippy::expect_used, clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::store::Db;

    fn event(tenant: &str, event_type: &str) -> NewEvent {
        NewEvent {
            id: format!("evt_{}", crate::store::new_id().simple()),
            tenant_id: tenant.into(),
            event_type: event_type.into(),
            subject_user_id: None,
            data: "{}".into(),
            occurred_at: "2026-11-24T00:00:00Z".into(),
        }
    }

    fn stored(db: &Db) -> Vec<(i64, String)> {
        db.read(|c| {
            outbox::table
                .order(outbox::seq)
                .select((outbox::seq, outbox::event_type))
                .load(c)
                .map_err(StoreError::from)
        })
        .expect("outbox")
    }

    fn tenant_db() -> (tempfile::TempDir, Db, String) {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Db::open(
            &format!("sqlite://{}", dir.path().join("o.db").display()),
            8,
            true,
        )
        .expect("open");
        let t = db
            .write(|c| crate::store::tokens::ensure_tenant(c, "t", "2026-11-24T00:00:00Z"))
            .expect("tenant")
            .id;
        (dir, db, t)
    }

    /// Concurrent writes share SQLite write groups (each a savepoint of the
    /// group's transaction); every third fails after emitting. Exactly the
    /// successful writes' events are stored, with gap-free `seq`s.
    #[test]
    fn a_failed_write_in_a_group_leaves_no_event() {
        let (_dir, db, t) = tenant_db();
        let threads: Vec<_> = (0..8)
            .map(|k| {
                let (db, t) = (db.clone(), t.clone());
                std::thread::spawn(move || {
                    (0..30_u32)
                        .filter(|&j| {
                            db.write(|c| {
                                emit_at_commit(c, event(&t, &format!("w{k}.{j}")))?;
                                if j.is_multiple_of(3) {
                                    return Err(StoreError::NotFound);
                                }
                                Ok(())
                            })
                            .is_ok()
                        })
                        .count()
                })
            })
            .collect();
        let succeeded: usize = threads.into_iter().map(|h| h.join().expect("thread")).sum();
        let rows = stored(&db);
        assert_eq!(succeeded, 8 * 20);
        assert_eq!(
            rows.iter().map(|r| r.0).collect::<Vec<_>>(),
            (1..=i64::try_from(succeeded).expect("count")).collect::<Vec<_>>()
        );
        assert!(rows.iter().all(|(_, ty)| {
            let j: usize = ty
                .rsplit('.')
                .next()
                .and_then(|j| j.parse().ok())
                .expect("j");
            !j.is_multiple_of(3)
        }));
    }

    /// A savepoint's events wait for the enclosing transaction: discarded when
    /// the savepoint fails, written once and in emission order when it holds.
    #[test]
    fn a_savepoint_leaves_its_events_to_the_transaction() {
        let (_dir, db, t) = tenant_db();
        db.write_alone(|c| {
            emit_at_commit(c, event(&t, "outer.first"))?;
            let failed = crate::store::tx::transaction(c, |c| -> Result<(), StoreError> {
                emit_at_commit(c, event(&t, "inner.failed"))?;
                Err(StoreError::NotFound)
            });
            assert!(failed.is_err());
            crate::store::tx::transaction(c, |c| emit_at_commit(c, event(&t, "inner.kept")))?;
            let written: i64 = outbox::table.count().get_result(c)?;
            assert_eq!(written, 0, "nothing before the outer commit");
            emit_at_commit(c, event(&t, "outer.last"))
        })
        .expect("write");
        assert_eq!(
            stored(&db),
            vec![
                (1, "outer.first".to_string()),
                (2, "inner.kept".to_string()),
                (3, "outer.last".to_string())
            ]
        );
    }

    /// Events are written when their write commits, in emission order with
    /// consecutive `seq`s; a failed or panicking write leaves none behind (in
    /// the table, or queued for the thread's next write).
    #[test]
    fn events_land_with_their_commit_and_only_then() {
        let (_dir, db, t) = tenant_db();
        let failed = db.write(|c| -> Result<(), StoreError> {
            emit_at_commit(c, event(&t, "failed.first"))?;
            Err(StoreError::NotFound)
        });
        assert!(failed.is_err());
        let panicked = db.write(|c| -> Result<(), StoreError> {
            emit_at_commit(c, event(&t, "panicked"))?;
            panic!("inside a write");
        });
        assert!(panicked.is_err());
        db.write(|c| {
            emit_at_commit(c, event(&t, "kept.one"))?;
            // Nothing is written before the commit.
            let written: i64 = outbox::table.count().get_result(c)?;
            assert_eq!(written, 0);
            emit_at_commit(c, event(&t, "kept.two"))
        })
        .expect("write");
        // Outside any transaction: written at once.
        db.read(|c| emit_at_commit(c, event(&t, "alone")))
            .expect("emit");
        assert_eq!(
            stored(&db),
            vec![
                (1, "kept.one".to_string()),
                (2, "kept.two".to_string()),
                (3, "alone".to_string())
            ]
        );
        QUEUE.with_borrow(|q| {
            assert_eq!((q.levels, q.events.len()), (0, 0), "nothing left queued");
        });
    }
}

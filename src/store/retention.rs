//! Event retention's statements: the oldest events of a tenant, deleting a
//! prefix of them (by `seq`) and remembering how far (`events_purged_through`,
//! so the feed can tell an expired cursor), and moving webhook cursors that
//! pointed into the deleted range.

use super::error::StoreError;
use super::pool::AnyConnection;
use super::schema::{outbox, tenant_counters, webhook_cursors as wc};
use diesel::prelude::*;

/// The tenant's oldest `limit` events after `after`: (seq, occurred_at).
pub fn oldest(
    c: &mut AnyConnection,
    tenant: &str,
    after: i64,
    limit: i64,
) -> Result<Vec<(i64, String)>, StoreError> {
    Ok(outbox::table
        .filter(outbox::tenant_id.eq(tenant))
        .filter(outbox::seq.gt(after))
        .order(outbox::seq)
        .limit(limit)
        .select((outbox::seq, outbox::occurred_at))
        .load(c)?)
}

/// Every event of the tenant up to `seq` has been deleted (0: none).
pub fn purged_through(c: &mut AnyConnection, tenant: &str) -> Result<i64, StoreError> {
    Ok(tenant_counters::table
        .filter(tenant_counters::tenant_id.eq(tenant))
        .select(tenant_counters::events_purged_through)
        .first::<i64>(c)
        .optional()?
        .unwrap_or(0))
}

/// Deletes the tenant's events up to `seq` and records it; returns the rows
/// deleted.
pub fn delete_through(c: &mut AnyConnection, tenant: &str, seq: i64) -> Result<usize, StoreError> {
    let n = diesel::delete(
        outbox::table
            .filter(outbox::tenant_id.eq(tenant))
            .filter(outbox::seq.le(seq)),
    )
    .execute(c)?;
    diesel::update(
        tenant_counters::table
            .filter(tenant_counters::tenant_id.eq(tenant))
            .filter(tenant_counters::events_purged_through.lt(seq)),
    )
    .set(tenant_counters::events_purged_through.eq(seq))
    .execute(c)?;
    Ok(n)
}

/// Webhook cursors of the tenant still before `seq` (they had not received
/// events now deleted) move to `seq`; returns each one's (endpoint, old seq).
pub fn skip_cursors_to(
    c: &mut AnyConnection,
    tenant: &str,
    seq: i64,
) -> Result<Vec<(String, i64)>, StoreError> {
    let behind: Vec<(String, i64)> = wc::table
        .filter(wc::tenant_id.eq(tenant))
        .filter(wc::last_seq.lt(seq))
        .select((wc::endpoint, wc::last_seq))
        .load(c)?;
    if !behind.is_empty() {
        diesel::update(
            wc::table
                .filter(wc::tenant_id.eq(tenant))
                .filter(wc::last_seq.lt(seq)),
        )
        .set(wc::last_seq.eq(seq))
        .execute(c)?;
    }
    Ok(behind)
}

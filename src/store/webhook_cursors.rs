//! Webhook delivery progress, one row per (tenant, endpoint): the last `seq`
//! delivered, the failures in a row and when to retry, whether the endpoint is
//! paused, and the lease of the relay delivering to it. Every statement that
//! changes a leased cursor names the lease owner, so a relay that lost its
//! lease changes nothing.

use super::error::StoreError;
use super::pool::AnyConnection;
use super::schema::webhook_cursors as wc;
use super::sql::{Sql, execute_sql};
use diesel::prelude::*;

/// One endpoint's cursor, as the relay decides from it whether to deliver.
#[derive(Debug, Clone, Queryable)]
pub struct Cursor {
    pub last_seq: i64,
    pub paused: bool,
    pub next_attempt_at: String,
    pub lease_until: Option<String>,
    pub lease_owner: Option<String>,
}

/// The endpoint's cursor; `None` before its first delivery.
pub fn find(c: &mut AnyConnection, tenant: &str, url: &str) -> Result<Option<Cursor>, StoreError> {
    Ok(wc::table
        .filter(wc::tenant_id.eq(tenant))
        .filter(wc::endpoint.eq(url))
        .select((
            wc::last_seq,
            wc::paused,
            wc::next_attempt_at,
            wc::lease_until,
            wc::lease_owner,
        ))
        .first(c)
        .optional()?)
}

/// The endpoint's cursor, created at seq 0 if it has none yet (idempotent:
/// two replicas may see a new endpoint at once).
pub(in crate::store) fn ensure(
    c: &mut AnyConnection,
    tenant: &str,
    url: &str,
    now: &str,
) -> Result<(), StoreError> {
    let mut ins = Sql::default();
    ins.push("INSERT INTO webhook_cursors (tenant_id, endpoint, last_seq, attempts, next_attempt_at, paused) VALUES (")
        .bind_text(tenant)
        .push(", ")
        .bind_text(url)
        .push(", 0, 0, ")
        .bind_text(now)
        .push(", FALSE) ON CONFLICT DO NOTHING");
    execute_sql(c, &ins)?;
    Ok(())
}

/// Takes the lease for `owner` until `until` (creating the cursor on first
/// sight) unless the endpoint is paused, backing off past `now`, or leased to
/// another owner until `now` or later. The cursor's `last_seq` when taken.
pub fn claim(
    c: &mut AnyConnection,
    tenant: &str,
    url: &str,
    owner: &str,
    now: &str,
    until: &str,
) -> Result<Option<i64>, StoreError> {
    ensure(c, tenant, url, now)?;
    let n = diesel::update(
        wc::table
            .filter(wc::tenant_id.eq(tenant))
            .filter(wc::endpoint.eq(url))
            .filter(wc::paused.eq(false))
            .filter(wc::next_attempt_at.le(now))
            .filter(
                wc::lease_until
                    .is_null()
                    .or(wc::lease_until.lt(now))
                    .or(wc::lease_owner.eq(owner)),
            ),
    )
    .set((wc::lease_owner.eq(owner), wc::lease_until.eq(until)))
    .execute(c)?;
    if n == 0 {
        return Ok(None);
    }
    Ok(Some(
        wc::table
            .filter(wc::tenant_id.eq(tenant))
            .filter(wc::endpoint.eq(url))
            .select(wc::last_seq)
            .first(c)?,
    ))
}

/// Extends `owner`'s lease to `until` if it holds it and it has not expired
/// by `now` (an expired lease may already be another relay's); whether it did.
pub fn renew(
    c: &mut AnyConnection,
    tenant: &str,
    url: &str,
    owner: &str,
    now: &str,
    until: &str,
) -> Result<bool, StoreError> {
    let n = diesel::update(
        wc::table
            .filter(wc::tenant_id.eq(tenant))
            .filter(wc::endpoint.eq(url))
            .filter(wc::lease_owner.eq(owner))
            .filter(wc::lease_until.ge(now)),
    )
    .set(wc::lease_until.eq(until))
    .execute(c)?;
    Ok(n > 0)
}

/// A delivery up to `last_seq` succeeded: moves the cursor there, clears the
/// failures and extends the lease to `until`, only while `owner` holds the
/// lease (so a replica that lost it never moves the cursor back) and the
/// cursor is still behind `last_seq` (an admin's skip may have moved it on
/// mid-batch); whether it did.
pub fn advance(
    c: &mut AnyConnection,
    tenant: &str,
    url: &str,
    owner: &str,
    last_seq: i64,
    until: &str,
) -> Result<bool, StoreError> {
    let n = diesel::update(
        wc::table
            .filter(wc::tenant_id.eq(tenant))
            .filter(wc::endpoint.eq(url))
            .filter(wc::lease_owner.eq(owner))
            .filter(wc::last_seq.lt(last_seq)),
    )
    .set((
        wc::last_seq.eq(last_seq),
        wc::attempts.eq(0),
        wc::lease_until.eq(until),
    ))
    .execute(c)?;
    Ok(n > 0)
}

/// Gives up `owner`'s lease, if it still holds it.
pub fn release(
    c: &mut AnyConnection,
    tenant: &str,
    url: &str,
    owner: &str,
) -> Result<(), StoreError> {
    diesel::update(
        wc::table
            .filter(wc::tenant_id.eq(tenant))
            .filter(wc::endpoint.eq(url))
            .filter(wc::lease_owner.eq(owner)),
    )
    .set((
        wc::lease_owner.eq(None::<String>),
        wc::lease_until.eq(None::<String>),
    ))
    .execute(c)?;
    Ok(())
}

/// Gives up every lease `owner` (one relay, one process) holds, across
/// tenants: at shutdown, so other replicas take the endpoints over at once.
pub fn release_owner(c: &mut AnyConnection, owner: &str) -> Result<usize, StoreError> {
    Ok(diesel::update(wc::table.filter(wc::lease_owner.eq(owner)))
        .set((
            wc::lease_owner.eq(None::<String>),
            wc::lease_until.eq(None::<String>),
        ))
        .execute(c)?)
}

/// The failures in a row so far, if `owner` holds the lease.
pub fn attempts_if_held(
    c: &mut AnyConnection,
    tenant: &str,
    url: &str,
    owner: &str,
) -> Result<Option<i32>, StoreError> {
    Ok(wc::table
        .filter(wc::tenant_id.eq(tenant))
        .filter(wc::endpoint.eq(url))
        .filter(wc::lease_owner.eq(owner))
        .select(wc::attempts)
        .first::<i32>(c)
        .optional()?)
}

/// What a failed delivery records.
pub struct Failure<'a> {
    pub attempts: i32,
    pub next_attempt_at: &'a str,
    pub paused: bool,
    /// Why ("HTTP 503", "transport: …"): kept, cut to [`MAX_ERROR_CHARS`].
    pub error: &'a str,
    pub at: &'a str,
}

/// The longest failure reason kept.
pub const MAX_ERROR_CHARS: usize = 200;

/// Records a failed delivery while `owner` holds the lease: the failures in
/// a row, when to retry, whether the endpoint is now paused, and the reason
/// (kept after a later success: the console shows the last error and when).
pub fn record_failure(
    c: &mut AnyConnection,
    tenant: &str,
    url: &str,
    owner: &str,
    f: &Failure<'_>,
) -> Result<(), StoreError> {
    let error: String = f.error.chars().take(MAX_ERROR_CHARS).collect();
    diesel::update(
        wc::table
            .filter(wc::tenant_id.eq(tenant))
            .filter(wc::endpoint.eq(url))
            .filter(wc::lease_owner.eq(owner)),
    )
    .set((
        wc::attempts.eq(f.attempts),
        wc::next_attempt_at.eq(f.next_attempt_at),
        wc::paused.eq(f.paused),
        wc::last_error.eq(error),
        wc::last_error_at.eq(f.at),
    ))
    .execute(c)?;
    Ok(())
}

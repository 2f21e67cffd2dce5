//! The replica registry: one row per running `serve` process, refreshed by its
//! heartbeat. Deployment-wide (no tenant): what a replica reports of itself is
//! its version, the schema it was built for and the digest of the policy file
//! it enforces, never tenant data.

use super::db::AnyConnection;
use super::error::StoreError;
use super::schema::replicas;
use diesel::prelude::*;

/// At most this many rows are read at once: a registry is a handful of
/// replicas; the bound keeps a read bounded whatever the table holds.
pub const MAX_LISTED: i64 = 256;

/// One replica as its heartbeat last wrote it.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Insertable)]
#[diesel(table_name = replicas)]
pub struct ReplicaRow {
    pub id: String,
    /// `host:pid`, for an operator to find the process.
    pub label: String,
    /// The binary's version (`CARGO_PKG_VERSION`).
    pub version: String,
    /// The newest migration the binary knows.
    pub schema_version: String,
    /// SHA-256 of the policy set the replica enforces.
    pub policy_digest: String,
    pub started_at: String,
    pub last_seen: String,
}

/// Writes the replica's row (inserted the first time, replaced after).
pub fn beat(c: &mut AnyConnection, row: &ReplicaRow) -> Result<(), StoreError> {
    let n = diesel::update(replicas::table.filter(replicas::id.eq(&row.id)))
        .set((
            replicas::label.eq(&row.label),
            replicas::version.eq(&row.version),
            replicas::schema_version.eq(&row.schema_version),
            replicas::policy_digest.eq(&row.policy_digest),
            replicas::last_seen.eq(&row.last_seen),
        ))
        .execute(c)?;
    if n == 0 {
        // Only this process writes its id: no concurrent insert to race.
        diesel::insert_into(replicas::table)
            .values(row)
            .execute(c)?;
    }
    Ok(())
}

/// Rows seen at or after `since` (RFC 3339 text: text order is time order),
/// oldest start first, at most `MAX_LISTED`.
pub fn seen_since(c: &mut AnyConnection, since: &str) -> Result<Vec<ReplicaRow>, StoreError> {
    Ok(replicas::table
        .filter(replicas::last_seen.ge(since))
        .order((replicas::started_at.asc(), replicas::id.asc()))
        .limit(MAX_LISTED)
        .load(c)?)
}

/// Deletes rows last seen before `before` (replicas gone without saying so:
/// killed, or their host lost); how many.
pub fn sweep(c: &mut AnyConnection, before: &str) -> Result<usize, StoreError> {
    Ok(diesel::delete(replicas::table.filter(replicas::last_seen.lt(before))).execute(c)?)
}

/// Deletes the replica's own row (a clean shutdown).
pub fn remove(c: &mut AnyConnection, id: &str) -> Result<(), StoreError> {
    diesel::delete(replicas::table.filter(replicas::id.eq(id))).execute(c)?;
    Ok(())
}

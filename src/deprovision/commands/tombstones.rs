//! What an admin (API or CLI) does to the live tombstones holding some
//! identifiers: `Lift` forgets each whole tombstone; `Release` frees only the
//! named identifiers (a recycled name or address now belongs to a different
//! person), so the rest of each tombstone — the leaver's externalId, SSO
//! subjects, other emails — keeps denying the leaver.

use crate::deprovision::tombstone::{IdType, TombstoneKeys};
use crate::deprovision::tombstones;
use crate::store::{Db, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Lift,
    Release,
}

/// Applies `action` in one transaction; returns how many tombstones were
/// lifted or identifiers released (0: no live tombstone holds them).
pub fn apply(
    db: &Db,
    keys: &TombstoneKeys,
    tenant: &str,
    ids: &[(IdType, String)],
    action: Action,
    actor: &str,
    now: &str,
) -> Result<usize, StoreError> {
    // The HMACs run before the write begins, not while the writer is held.
    let hashes = tombstones::hashes_of(keys, tenant, ids);
    db.write(|c| {
        let found = tombstones::matching_hashes(c, tenant, &hashes)?;
        match action {
            Action::Lift => {
                let mut t: Vec<String> = found.into_iter().map(|m| m.tombstone_id).collect();
                t.sort();
                t.dedup();
                tombstones::lift(c, tenant, &t, actor, now, "admin")
            }
            Action::Release => tombstones::release_hashes(c, tenant, &found, actor, now),
        }
    })
}

/// Lifts these tombstones of the tenant, named by id (the console finds them
/// by a check and never sends the identifier back), in one transaction; the
/// admin's reason goes into each audit row. Returns how many were live.
pub fn lift_by_id(
    db: &Db,
    tenant: &str,
    tombstone_ids: &[String],
    actor: &str,
    now: &str,
    reason: &str,
) -> Result<usize, StoreError> {
    db.write(|c| {
        tombstones::lift_noted(c, tenant, tombstone_ids, actor, now, "admin", Some(reason))
    })
}

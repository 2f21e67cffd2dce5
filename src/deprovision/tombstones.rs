//! Tombstone lookups (SCIM POST, the gate) and lifting.

use super::tombstone::{IdType, TombstoneKeys};
use crate::domain::Cause;
use crate::events::payload::TombstoneLifted;
use crate::store::audit;
use crate::store::{self, AnyConnection, StoreError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TombstoneMatch {
    pub tombstone_id: String,
    pub disposal_id: Option<String>,
    pub id_type: String,
    pub hash: String,
    /// The disposed person had an externalId (identity evidence).
    pub had_external_id: bool,
    /// Written by a disposal the policy ran to free an identifier for someone
    /// else (`identity.on_reuse = "dispose_previous"`).
    pub reuse: bool,
}

/// Live (unlifted) tombstones matching any of the identifiers.
pub fn matching(
    c: &mut AnyConnection,
    keys: &TombstoneKeys,
    tenant: &str,
    ids: &[(IdType, String)],
) -> Result<Vec<TombstoneMatch>, StoreError> {
    matching_hashes(c, tenant, &hashes_of(keys, tenant, ids))
}

/// The hashes `matching` looks for (every deployment key's): computed before
/// a write begins, so the HMACs do not run while the writer is held.
pub fn hashes_of(keys: &TombstoneKeys, tenant: &str, ids: &[(IdType, String)]) -> Vec<String> {
    ids.iter()
        .flat_map(|(t, v)| keys.all_hashes(tenant, *t, v))
        .collect()
}

/// Live tombstones holding any of `hashes` (from `hashes_of`).
pub fn matching_hashes(
    c: &mut AnyConnection,
    tenant: &str,
    hashes: &[String],
) -> Result<Vec<TombstoneMatch>, StoreError> {
    Ok(store::tombstones::live_hashes(c, tenant, hashes)?
        .into_iter()
        .map(|r| TombstoneMatch {
            tombstone_id: r.tombstone_id,
            disposal_id: r.disposal_id,
            id_type: r.id_type,
            hash: r.hash,
            had_external_id: r.had_external_id,
            reuse: r.cause == Some(Cause::Reuse),
        })
        .collect())
}

pub fn lift(
    c: &mut AnyConnection,
    tenant: &str,
    tombstone_ids: &[String],
    actor: &str,
    now: &str,
    why: &str,
) -> Result<usize, StoreError> {
    lift_noted(c, tenant, tombstone_ids, actor, now, why, None)
}

/// `lift`, with the admin's own words (the console's reason) in each audit
/// row's detail as `note`; the event keeps `why` alone.
pub fn lift_noted(
    c: &mut AnyConnection,
    tenant: &str,
    tombstone_ids: &[String],
    actor: &str,
    now: &str,
    why: &str,
    note: Option<&str>,
) -> Result<usize, StoreError> {
    let detail = match note {
        Some(n) => serde_json::json!({ "reason": why, "note": n }),
        None => serde_json::json!({ "reason": why }),
    }
    .to_string();
    // Only what this write lifted is audited, journaled and announced: an id
    // already lifted (a concurrent request, a stale form), another tenant's,
    // or repeated, is not.
    let lifted = store::tombstones::lift_live(c, tenant, tombstone_ids, now)?;
    if lifted.is_empty() {
        return Ok(0);
    }
    super::journal::record_lifted(tenant, &lifted, now);
    for id in &lifted {
        audit::write(
            c,
            tenant,
            now,
            actor,
            "tombstone.lifted",
            "tombstone",
            id,
            Some(&detail),
        )?;
        crate::events::emit_at_commit(
            c,
            tenant,
            None,
            &TombstoneLifted {
                tombstone_id: id.to_string(),
                reason: why.to_string(),
            },
            now,
        )?;
    }
    Ok(lifted.len())
}

/// `relink`: hands the items of an old receipt back to the re-created person,
/// where their recipients (or nobody, for orphans) still hold them. One statement.
pub fn relink(
    c: &mut AnyConnection,
    tenant: &str,
    disposal_id: &str,
    new_owner: &str,
    now: &str,
) -> Result<usize, StoreError> {
    store::disposals::relink_items(c, tenant, disposal_id, new_owner, now)
}

/// Releases single identifiers of a tombstone (an email that now belongs to
/// someone else): the rest of the tombstone keeps denying the person.
pub fn release_hashes(
    c: &mut AnyConnection,
    tenant: &str,
    matches: &[TombstoneMatch],
    actor: &str,
    now: &str,
) -> Result<usize, StoreError> {
    let mut n = 0;
    for m in matches {
        let released = store::tombstones::delete_hash(c, tenant, &m.tombstone_id, &m.hash)?;
        if released > 0 {
            super::journal::record_released(tenant, &m.tombstone_id, &m.hash, now);
        }
        n += released;
        audit::write(
            c,
            tenant,
            now,
            actor,
            "tombstone.identifier_released",
            "tombstone",
            &m.tombstone_id,
            Some(&format!("{{\"type\":\"{}\"}}", m.id_type)),
        )?;
    }
    Ok(n)
}

//! Tombstone lookups (SCIM POST, the gate) and lifting.

use crate::store::audit;
use super::tombstone::{IdType, TombstoneKeys};
use crate::store::StoreError;
use crate::store::db::{AnyConnection, Sql, execute_sql, load_sql};
use crate::store::schema::{tombstone_hashes, tombstones};
use diesel::prelude::*;

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
    if hashes.is_empty() {
        return Ok(vec![]);
    }
    // Hand-built so the hash list is a padded `IN` list: one cached statement
    // for any number of identifiers (diesel's `eq_any` is never cached on SQLite).
    let mut q = Sql::default();
    q.push(
        "SELECT t.id AS tombstone_id, t.disposal_id, h.id_type, h.hash, t.had_external_id, d.cause \
         FROM tombstone_hashes h JOIN tombstones t ON t.id = h.tombstone_id \
         LEFT JOIN disposals d ON d.id = t.disposal_id \
         WHERE h.tenant_id = ",
    )
    .bind_text(tenant);
    q.push(" AND t.lifted_at IS NULL AND h.hash IN ")
        .bind_list(hashes);
    Ok(load_sql::<Row>(c, &q)?
        .into_iter()
        .map(|r| TombstoneMatch {
            tombstone_id: r.tombstone_id,
            disposal_id: r.disposal_id,
            id_type: r.id_type,
            hash: r.hash,
            had_external_id: r.had_external_id,
            reuse: r.cause.as_deref() == Some(REUSE),
        })
        .collect())
}

#[derive(diesel::QueryableByName)]
struct Row {
    #[diesel(sql_type = diesel::sql_types::Text)]
    tombstone_id: String,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    disposal_id: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Text)]
    id_type: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    hash: String,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    had_external_id: bool,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    cause: Option<String>,
}

/// The disposal cause of `identity.on_reuse = "dispose_previous"`.
pub const REUSE: &str = "reuse";

pub fn lift(
    c: &mut AnyConnection,
    tenant: &str,
    tombstone_ids: &[String],
    actor: &str,
    now: &str,
    why: &str,
) -> Result<usize, StoreError> {
    let n = diesel::update(
        tombstones::table
            .filter(tombstones::tenant_id.eq(tenant))
            .filter(tombstones::id.eq_any(tombstone_ids))
            .filter(tombstones::lifted_at.is_null()),
    )
    .set(tombstones::lifted_at.eq(now))
    .execute(c)?;
    if n == 0 {
        // Already lifted (a concurrent request): nothing to audit or announce.
        return Ok(0);
    }
    for id in tombstone_ids {
        audit::write(
            c,
            tenant,
            now,
            actor,
            "tombstone.lifted",
            "tombstone",
            id,
            Some(&format!("{{\"reason\":\"{why}\"}}")),
        )?;
        crate::events::emit(
            c,
            tenant,
            "tombstone.lifted",
            None,
            serde_json::json!({"tombstoneId": id, "reason": why}),
            now,
        )?;
    }
    Ok(n)
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
    let mut s = Sql::default();
    s.push("UPDATE content_items SET owner_id = ")
        .bind_text(new_owner);
    s.push(", updated_at = ").bind_text(now);
    s.push(" WHERE tenant_id = ").bind_text(tenant);
    s.push(" AND EXISTS (SELECT 1 FROM disposal_items d WHERE d.disposal_id = ")
        .bind_text(disposal_id);
    s.push(
        " AND d.kind = content_items.kind AND d.item_id = content_items.item_id \
         AND (d.to_owner = content_items.owner_id \
         OR (d.to_owner IS NULL AND content_items.owner_id IS NULL AND d.action = 'orphan') \
         OR (d.action = 'keep' AND content_items.owner_id = d.from_owner)))",
    );
    execute_sql(c, &s)
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
        n += diesel::delete(
            tombstone_hashes::table
                .filter(tombstone_hashes::tenant_id.eq(tenant))
                .filter(tombstone_hashes::tombstone_id.eq(&m.tombstone_id))
                .filter(tombstone_hashes::hash.eq(&m.hash)),
        )
        .execute(c)?;
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

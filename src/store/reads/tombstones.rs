//! The tenant's tombstones with the types of identifier each holds (never
//! the hashes).

use super::Page;
use crate::store::db::AnyConnection;
use crate::store::error::StoreError;
use crate::store::schema::{tombstone_hashes, tombstones};
use diesel::prelude::*;
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TombstoneRow {
    pub id: String,
    pub disposal_id: Option<String>,
    pub created_at: String,
    pub lifted_at: Option<String>,
    /// Sorted, without repeats.
    pub identifier_types: Vec<String>,
}

type Row = (String, Option<String>, String, Option<String>);

const COLUMNS: (
    tombstones::id,
    tombstones::disposal_id,
    tombstones::created_at,
    tombstones::lifted_at,
) = (
    tombstones::id,
    tombstones::disposal_id,
    tombstones::created_at,
    tombstones::lifted_at,
);

/// Newest first (the admin API).
pub fn page(
    c: &mut AnyConnection,
    tenant: &str,
    page: Page,
) -> Result<Vec<TombstoneRow>, StoreError> {
    let rows: Vec<Row> = tombstones::table
        .filter(tombstones::tenant_id.eq(tenant))
        .select(COLUMNS)
        .order((tombstones::created_at.desc(), tombstones::id))
        .offset(page.offset)
        .limit(page.limit)
        .load(c)?;
    with_types(c, tenant, rows)
}

/// Every tombstone, oldest first (the CLI's listing).
pub fn all(c: &mut AnyConnection, tenant: &str) -> Result<Vec<TombstoneRow>, StoreError> {
    let rows: Vec<Row> = tombstones::table
        .filter(tombstones::tenant_id.eq(tenant))
        .select(COLUMNS)
        .order(tombstones::created_at)
        .load(c)?;
    with_types(c, tenant, rows)
}

/// Ids per statement, well under every backend's bind limit.
const CHUNK: usize = 500;

fn with_types(
    c: &mut AnyConnection,
    tenant: &str,
    rows: Vec<Row>,
) -> Result<Vec<TombstoneRow>, StoreError> {
    let ids: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    let mut types: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for chunk in ids.chunks(CHUNK) {
        let found: Vec<(String, String)> = tombstone_hashes::table
            .filter(tombstone_hashes::tenant_id.eq(tenant))
            .filter(tombstone_hashes::tombstone_id.eq_any(chunk))
            .select((tombstone_hashes::tombstone_id, tombstone_hashes::id_type))
            .load(c)?;
        for (id, t) in found {
            types.entry(id).or_default().push(t);
        }
    }
    Ok(rows
        .into_iter()
        .map(|(id, disposal_id, created_at, lifted_at)| {
            let mut identifier_types = types.remove(&id).unwrap_or_default();
            identifier_types.sort();
            identifier_types.dedup();
            TombstoneRow {
                id,
                disposal_id,
                created_at,
                lifted_at,
                identifier_types,
            }
        })
        .collect())
}

//! Tenants and API tokens (only argon2id hashes of token secrets are stored).

use super::db::AnyConnection;
use super::error::StoreError;
use super::schema::{api_tokens, tenants};
use diesel::prelude::*;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = api_tokens)]
pub struct TokenRow {
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    pub scope: String,
    pub secret_hash: String,
    pub acts_as: Option<String>,
    pub created_at: String,
    pub revoked_at: Option<String>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = tenants)]
pub struct TenantRow {
    pub id: String,
    pub name: String,
    pub created_at: String,
}

pub fn find_tenant(conn: &mut AnyConnection, name: &str) -> Result<Option<TenantRow>, StoreError> {
    Ok(tenants::table
        .filter(tenants::name.eq(name))
        .select(TenantRow::as_select())
        .first(conn)
        .optional()?)
}

/// The tenant with this id, if any.
pub fn tenant_by_id(conn: &mut AnyConnection, id: &str) -> Result<Option<TenantRow>, StoreError> {
    Ok(tenants::table
        .filter(tenants::id.eq(id))
        .select(TenantRow::as_select())
        .first(conn)
        .optional()?)
}

/// Writes a tenant back under its own id (a restored database that predates it).
pub fn insert_tenant(conn: &mut AnyConnection, row: &TenantRow) -> Result<(), StoreError> {
    diesel::insert_into(tenants::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

/// Every tenant's (id, name).
pub fn all_tenants(conn: &mut AnyConnection) -> Result<Vec<(String, String)>, StoreError> {
    Ok(tenants::table
        .select((tenants::id, tenants::name))
        .load(conn)?)
}

/// The tenant's id, creating the tenant when it does not exist yet.
pub fn ensure_tenant(
    conn: &mut AnyConnection,
    name: &str,
    now: &str,
) -> Result<TenantRow, StoreError> {
    if let Some(t) = find_tenant(conn, name)? {
        return Ok(t);
    }
    let row = TenantRow {
        id: uuid::Uuid::new_v4().to_string(),
        name: name.to_string(),
        created_at: now.to_string(),
    };
    diesel::insert_into(tenants::table)
        .values(&row)
        .execute(conn)?;
    Ok(row)
}

pub fn insert(conn: &mut AnyConnection, row: &TokenRow) -> Result<(), StoreError> {
    diesel::insert_into(api_tokens::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

/// The token and its tenant's name.
pub fn find_with_tenant(
    conn: &mut AnyConnection,
    id: &str,
) -> Result<Option<(TokenRow, String)>, StoreError> {
    Ok(crate::per_backend!(conn, c => api_tokens::table
        .inner_join(tenants::table)
        .filter(api_tokens::id.eq(id))
        .select((TokenRow::as_select(), tenants::name))
        .first(c)
        .optional())?)
}

/// Tokens with their tenant names, newest first; optionally one tenant's.
pub fn list(
    conn: &mut AnyConnection,
    tenant: Option<&str>,
) -> Result<Vec<(TokenRow, String)>, StoreError> {
    let mut q = api_tokens::table
        .inner_join(tenants::table)
        .select((TokenRow::as_select(), tenants::name))
        .order((api_tokens::created_at.desc(), api_tokens::id))
        .into_boxed();
    if let Some(t) = tenant {
        q = q.filter(tenants::name.eq(t.to_string()));
    }
    Ok(q.load(conn)?)
}

/// Whether the token exists unrevoked: the per-request check once the rest
/// of its row is cached (revocation is the only change a token row sees).
pub fn is_live(conn: &mut AnyConnection, id: &str) -> Result<bool, StoreError> {
    Ok(
        crate::per_backend!(conn, c => diesel::select(diesel::dsl::exists(
        api_tokens::table
            .filter(api_tokens::id.eq(id))
            .filter(api_tokens::revoked_at.is_null()),
    ))
    .get_result::<bool>(c))?,
    )
}

/// Marks a token revoked and deletes its console sessions; returns false when no such (unrevoked) token exists.
/// On PostgreSQL the revocation is announced to every replica's listener
/// (`notify::RevocationListener`) when this transaction commits.
pub fn revoke(conn: &mut AnyConnection, id: &str, now: &str) -> Result<bool, StoreError> {
    let n = diesel::update(
        api_tokens::table
            .filter(api_tokens::id.eq(id))
            .filter(api_tokens::revoked_at.is_null()),
    )
    .set(api_tokens::revoked_at.eq(Some(now)))
    .execute(conn)?;
    if n > 0 {
        // Its console sessions end in the same transaction.
        super::console::delete_for_token(conn, id)?;
    }
    if n > 0
        && let AnyConnection::Postgresql(c) = conn
    {
        diesel::sql_query("SELECT pg_notify($1, $2)")
            .bind::<diesel::sql_types::Text, _>(super::notify::REVOKED_CHANNEL)
            .bind::<diesel::sql_types::Text, _>(id)
            .execute(c)?;
    }
    Ok(n > 0)
}

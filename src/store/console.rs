//! Admin console sessions (`http::console`): one row per signed-in browser,
//! keyed by the SHA-256 of the session id (the id itself is only in the
//! cookie). Every read joins the token, so a revoked token's session is
//! refused by the same statement that finds it.

use super::db::AnyConnection;
use super::error::StoreError;
use super::schema::{api_tokens, console_sessions, tenants};
use diesel::prelude::*;

/// A session ends this long after sign-in, however active (12 h).
pub const MAX_AGE_SECONDS: i64 = 12 * 3600;

/// A new session's row.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = console_sessions)]
pub struct NewSession<'a> {
    pub id_hash: &'a str,
    pub tenant_id: &'a str,
    pub token_id: &'a str,
    pub scope: &'a str,
    pub created_at: &'a str,
    pub last_seen: &'a str,
    pub csrf: &'a str,
}

/// A session as a console request sees it: the row, the token's name and
/// `acts_as`, the tenant's name, and whether the token is still live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub tenant_id: String,
    pub tenant_name: String,
    pub token_id: String,
    pub token_name: String,
    pub acts_as: Option<String>,
    pub scope: String,
    pub created_at: String,
    pub last_seen: String,
    pub csrf: String,
    pub token_revoked: bool,
}

pub fn insert(c: &mut AnyConnection, s: &NewSession<'_>) -> Result<(), StoreError> {
    diesel::insert_into(console_sessions::table)
        .values(s)
        .execute(c)?;
    Ok(())
}

/// The session whose id hashes to `id_hash`, with its token and tenant.
pub fn find(c: &mut AnyConnection, id_hash: &str) -> Result<Option<Session>, StoreError> {
    type Row = (
        String,
        String,
        String,
        String,
        String,
        String,
        String,
        Option<String>,
        Option<String>,
        String,
    );
    let row: Option<Row> = console_sessions::table
        .inner_join(api_tokens::table.inner_join(tenants::table))
        .filter(console_sessions::id_hash.eq(id_hash))
        .select((
            console_sessions::tenant_id,
            console_sessions::token_id,
            console_sessions::scope,
            console_sessions::created_at,
            console_sessions::last_seen,
            console_sessions::csrf,
            api_tokens::name,
            api_tokens::acts_as,
            api_tokens::revoked_at,
            tenants::name,
        ))
        .first(c)
        .optional()?;
    Ok(row.map(
        |(
            tenant_id,
            token_id,
            scope,
            created_at,
            last_seen,
            csrf,
            token_name,
            acts_as,
            revoked_at,
            tenant_name,
        )| Session {
            tenant_id,
            tenant_name,
            token_id,
            token_name,
            acts_as,
            scope,
            created_at,
            last_seen,
            csrf,
            token_revoked: revoked_at.is_some(),
        },
    ))
}

/// Records activity (the idle clock restarts).
pub fn touch(c: &mut AnyConnection, id_hash: &str, now: &str) -> Result<(), StoreError> {
    diesel::update(console_sessions::table.filter(console_sessions::id_hash.eq(id_hash)))
        .set(console_sessions::last_seen.eq(now))
        .execute(c)?;
    Ok(())
}

/// Ends one session (sign-out, expiry seen by a request).
pub fn delete(c: &mut AnyConnection, id_hash: &str) -> Result<usize, StoreError> {
    Ok(
        diesel::delete(console_sessions::table.filter(console_sessions::id_hash.eq(id_hash)))
            .execute(c)?,
    )
}

/// Ends every session of a token (its revocation, in the same transaction).
pub fn delete_for_token(c: &mut AnyConnection, token_id: &str) -> Result<usize, StoreError> {
    Ok(
        diesel::delete(console_sessions::table.filter(console_sessions::token_id.eq(token_id)))
            .execute(c)?,
    )
}

/// Deletes at most `limit` sessions idle since before `idle_before` or
/// created before `created_before`; returns how many (the scheduler's sweep,
/// in bounded batches).
pub fn sweep(
    c: &mut AnyConnection,
    idle_before: &str,
    created_before: &str,
    limit: i64,
) -> Result<usize, StoreError> {
    let ids: Vec<String> = console_sessions::table
        .filter(
            console_sessions::last_seen
                .lt(idle_before)
                .or(console_sessions::created_at.lt(created_before)),
        )
        .select(console_sessions::id_hash)
        .limit(limit)
        .load(c)?;
    if ids.is_empty() {
        return Ok(0);
    }
    Ok(
        diesel::delete(console_sessions::table.filter(console_sessions::id_hash.eq_any(&ids)))
            .execute(c)?,
    )
}

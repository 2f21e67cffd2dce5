//! A user's state changes outside SCIM writes: locks, suspension by the
//! service, deleted-pending, legal hold, stubs and the scrub of a disposal.

use super::UserRow;
use crate::domain::UserState;
use crate::store::db::{AnyConnection, Sql, execute_sql};
use crate::store::error::StoreError;
use crate::store::schema::{user_emails, users};
use diesel::prelude::*;

/// PostgreSQL: locks the user's row for the rest of the transaction (one lock
/// order on every path: the person first). SQLite's single writer serialises.
pub fn lock(conn: &mut AnyConnection, tenant: &str, id: &str) -> Result<(), StoreError> {
    crate::store::db::lock_row(conn, "users", tenant, id)
}

/// PostgreSQL: locks the user's row `FOR SHARE` (a ledger write naming them
/// as owner waits for a disposal of them to finish).
pub fn lock_shared(conn: &mut AnyConnection, tenant: &str, id: &str) -> Result<(), StoreError> {
    if crate::store::db::backend_of(conn) == crate::store::db::Backend::Postgres {
        let mut s = Sql::default();
        s.push("SELECT 1 FROM users WHERE tenant_id = ")
            .bind_text(tenant);
        s.push(" AND id = ").bind_text(id);
        s.push(" FOR SHARE");
        execute_sql(conn, &s)?;
    }
    Ok(())
}

/// The user's row in any state; `StoreError::NotFound` when there is none.
pub fn get_any(conn: &mut AnyConnection, tenant: &str, id: &str) -> Result<UserRow, StoreError> {
    Ok(users::table
        .filter(users::tenant_id.eq(tenant))
        .filter(users::id.eq(id))
        .select(UserRow::as_select())
        .first(conn)?)
}

/// The user's state, in any state.
pub fn state_of(
    conn: &mut AnyConnection,
    tenant: &str,
    id: &str,
) -> Result<Option<UserState>, StoreError> {
    Ok(users::table
        .filter(users::tenant_id.eq(tenant))
        .filter(users::id.eq(id))
        .select(users::state)
        .first(conn)
        .optional()?)
}

/// The user's state and legal hold.
pub fn state_and_hold(
    conn: &mut AnyConnection,
    tenant: &str,
    id: &str,
) -> Result<(UserState, bool), StoreError> {
    Ok(users::table
        .filter(users::tenant_id.eq(tenant))
        .filter(users::id.eq(id))
        .select((users::state, users::legal_hold))
        .first(conn)?)
}

/// A user's document rewritten by the service (not by SCIM): the new
/// document, its search text and the version it replaces.
#[derive(Debug, Clone, Copy)]
pub struct DocUpdate<'a> {
    pub id: &'a str,
    pub data: &'a str,
    pub search: Option<&'a str>,
    pub version: i64,
}

/// Points a report's manager at `manager_id` (document and columns).
pub fn set_manager(
    conn: &mut AnyConnection,
    tenant: &str,
    u: &DocUpdate<'_>,
    manager_id: &str,
    manager_key: &str,
    now: &str,
) -> Result<(), StoreError> {
    diesel::update(
        users::table
            .filter(users::tenant_id.eq(tenant))
            .filter(users::id.eq(u.id)),
    )
    .set((
        users::manager_id.eq(manager_id),
        users::manager_key.eq(manager_key),
        users::search.eq(u.search),
        users::data.eq(u.data),
        users::version.eq(u.version + 1),
        users::updated_at.eq(now),
    ))
    .execute(conn)?;
    Ok(())
}

/// Writes a state change `UserRow::apply_active` made, with the document
/// that says the same (`active`): state, column, clock and document together.
pub fn write_state(
    conn: &mut AnyConnection,
    row: &UserRow,
    u: &DocUpdate<'_>,
    now: &str,
) -> Result<(), StoreError> {
    diesel::update(
        users::table
            .filter(users::tenant_id.eq(&row.tenant_id))
            .filter(users::id.eq(&row.id)),
    )
    .set((
        users::state.eq(row.state.as_str()),
        users::active.eq(row.state == UserState::Active),
        users::suspended_at.eq(row.suspended_at.as_deref()),
        users::search.eq(u.search),
        users::data.eq(u.data),
        users::version.eq(u.version + 1),
        users::updated_at.eq(now),
    ))
    .execute(conn)?;
    Ok(())
}

/// A held DELETE: the user is deleted-pending (gone for SCIM) until disposed.
pub fn set_deleted_pending(
    conn: &mut AnyConnection,
    tenant: &str,
    id: &str,
    now: &str,
) -> Result<(), StoreError> {
    diesel::update(
        users::table
            .filter(users::tenant_id.eq(tenant))
            .filter(users::id.eq(id)),
    )
    .set((
        users::state.eq(UserState::DeletedPending.as_str()),
        users::updated_at.eq(now),
    ))
    .execute(conn)?;
    Ok(())
}

/// Sets or lifts the legal hold of a user not yet disposed; false when there is none.
pub fn set_legal_hold(
    conn: &mut AnyConnection,
    tenant: &str,
    id: &str,
    on: bool,
) -> Result<bool, StoreError> {
    let n = diesel::update(
        users::table
            .filter(users::tenant_id.eq(tenant))
            .filter(users::id.eq(id))
            .filter(users::state.eq_any([
                UserState::Active.as_str(),
                UserState::Suspended.as_str(),
                UserState::DeletedPending.as_str(),
            ])),
    )
    .set(users::legal_hold.eq(on))
    .execute(conn)?;
    Ok(n > 0)
}

/// A "Deleted User" stub row (`state` stub: holds anonymised user data).
pub fn insert_stub(
    conn: &mut AnyConnection,
    tenant: &str,
    id: &str,
    state: UserState,
    now: &str,
) -> Result<(), StoreError> {
    let name = format!("deleted:{id}");
    diesel::insert_into(users::table)
        .values((
            users::id.eq(id),
            users::tenant_id.eq(tenant),
            users::state.eq(state.as_str()),
            users::user_name.eq(&name),
            users::user_name_key.eq(&name),
            users::active.eq(false),
            users::data.eq(r#"{"displayName":"Deleted User"}"#),
            users::created_at.eq(now),
            users::updated_at.eq(now),
            users::version.eq(1_i64),
        ))
        .execute(conn)?;
    Ok(())
}

/// Scrubs a disposed person to a "Deleted User" stub: emails gone, every
/// identifying column cleared, state `disposed`. `version` is the row's current one.
pub fn scrub_to_stub(
    conn: &mut AnyConnection,
    tenant: &str,
    id: &str,
    version: i64,
    now: &str,
) -> Result<(), StoreError> {
    diesel::delete(
        user_emails::table
            .filter(user_emails::tenant_id.eq(tenant))
            .filter(user_emails::user_id.eq(id)),
    )
    .execute(conn)?;
    let mut s = Sql::default();
    push_scrub(&mut s, tenant, id, version, now);
    execute_sql(conn, &s)?;
    Ok(())
}

/// Appends the `UPDATE` that scrubs a person's row to the stub (every
/// identifying column cleared): the one list of what a disposal erases,
/// shared by `scrub_to_stub` and PostgreSQL's closing statement
/// (`disposals::close_pg`). Hand-built (a cached shape): diesel prepares an
/// UPDATE whose SET is a tuple again on every call.
pub(in crate::store) fn push_scrub(s: &mut Sql, tenant: &str, id: &str, version: i64, now: &str) {
    let stub_name = format!("deleted:{id}");
    s.push("UPDATE users SET state = 'disposed', user_name = ")
        .bind_text(stub_name.clone());
    s.push(", user_name_key = ").bind_text(stub_name);
    s.push(
        ", external_id = NULL, display_name_key = NULL, given_name_key = NULL, \
         family_name_key = NULL, manager_id = NULL, manager_key = NULL, search = NULL, \
         active = FALSE, data = '{\"displayName\":\"Deleted User\"}', updated_at = ",
    )
    .bind_text(now);
    s.push(", version = ")
        .bind(crate::store::db::Bind::BigInt(version + 1));
    s.push(" WHERE tenant_id = ").bind_text(tenant);
    s.push(" AND id = ").bind_text(id);
}

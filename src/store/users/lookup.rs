//! Who a user is to the deprovisioning side: active users by id, name or
//! another identifier, a person's aliases and the reports naming them.

use super::{STATE_IS_VISIBLE, visible};
use crate::domain::UserState;
use crate::store::db::{AnyConnection, Sql, load_sql};
use crate::store::error::StoreError;
use crate::store::schema::{user_emails, users};
use diesel::prelude::*;

/// The id, when the user exists and is active.
pub fn active_id(
    conn: &mut AnyConnection,
    tenant: &str,
    id: &str,
) -> Result<Option<String>, StoreError> {
    Ok(crate::per_backend!(conn, c => users::table
        .filter(users::tenant_id.eq(tenant))
        .filter(users::id.eq(id))
        .filter(users::state.eq(UserState::Active.as_str()))
        .select(users::id)
        .first(c)
        .optional())?)
}

/// The visible user with this folded userName.
pub fn visible_id_by_name(
    conn: &mut AnyConnection,
    tenant: &str,
    user_name_key: &str,
) -> Result<Option<String>, StoreError> {
    Ok(users::table
        .filter(users::tenant_id.eq(tenant))
        .filter(users::user_name_key.eq(user_name_key))
        .filter(visible())
        .select(users::id)
        .first(conn)
        .optional()?)
}

/// The active user with this folded userName.
pub fn active_id_by_name(
    conn: &mut AnyConnection,
    tenant: &str,
    user_name_key: &str,
) -> Result<Option<String>, StoreError> {
    Ok(users::table
        .filter(users::tenant_id.eq(tenant))
        .filter(users::user_name_key.eq(user_name_key))
        .filter(visible())
        .filter(users::state.eq(UserState::Active.as_str()))
        .select(users::id)
        .first(conn)
        .optional()?)
}

/// A column an identifier is looked up by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    Id,
    ExternalId,
    /// The folded userName.
    UserName,
}

impl Key {
    fn column(self) -> &'static str {
        match self {
            Key::Id => "id",
            Key::ExternalId => "external_id",
            Key::UserName => "user_name_key",
        }
    }
}

/// The oldest active user other than `not` whose `key` is `value`.
pub fn active_other_by(
    conn: &mut AnyConnection,
    tenant: &str,
    key: Key,
    value: &str,
    not: &str,
) -> Result<Option<String>, StoreError> {
    #[derive(QueryableByName)]
    struct Id {
        #[diesel(sql_type = diesel::sql_types::Text)]
        id: String,
    }
    let mut sql = Sql::default();
    sql.push("SELECT id FROM users WHERE tenant_id = ")
        .bind_text(tenant);
    // The visible-state predicate, literally, lets the partial unique index
    // on the column serve the lookup.
    sql.push(&format!(
        " AND {STATE_IS_VISIBLE} AND state = '{}' AND {} = ",
        UserState::Active.as_str(),
        key.column()
    ))
    .bind_text(value);
    sql.push(" AND id <> ").bind_text(not);
    sql.push(" ORDER BY created_at LIMIT 1");
    Ok(load_sql::<Id>(conn, &sql)?.pop().map(|r| r.id))
}

/// Whether an active user other than `not` holds an email with this folded value.
pub fn email_held_by_other_active(
    conn: &mut AnyConnection,
    tenant: &str,
    value_key: &str,
    not: &str,
) -> Result<bool, StoreError> {
    let mut sql = Sql::default();
    sql.push("SELECT COUNT(*) AS n FROM user_emails e JOIN users u ON u.id = e.user_id WHERE e.tenant_id = ").bind_text(tenant);
    sql.push(" AND e.value_key = ").bind_text(value_key);
    sql.push(&format!(
        " AND u.state = '{}' AND u.id <> ",
        UserState::Active.as_str()
    ))
    .bind_text(not);
    Ok(load_sql::<crate::store::db::Count>(conn, &sql)?
        .first()
        .is_some_and(|r| r.n > 0))
}

/// The user's emails: (value, folded value).
pub fn emails_of(
    conn: &mut AnyConnection,
    tenant: &str,
    id: &str,
) -> Result<Vec<(String, String)>, StoreError> {
    Ok(crate::per_backend!(conn, c => user_emails::table
        .filter(user_emails::tenant_id.eq(tenant))
        .filter(user_emails::user_id.eq(id))
        .select((user_emails::value, user_emails::value_key))
        .load(c))?)
}

/// The folded identifiers a report's `manager.value` may name the user by:
/// userName, externalId and emails. `StoreError::NotFound` when there is no such user.
pub fn alias_keys(
    conn: &mut AnyConnection,
    tenant: &str,
    id: &str,
) -> Result<Vec<String>, StoreError> {
    let (name_key, external): (String, Option<String>) = users::table
        .filter(users::tenant_id.eq(tenant))
        .filter(users::id.eq(id))
        .select((users::user_name_key, users::external_id))
        .first(conn)?;
    let mut keys = vec![name_key];
    keys.extend(external.map(|x| crate::scim::fold::fold(&x)));
    keys.extend(
        user_emails::table
            .filter(user_emails::tenant_id.eq(tenant))
            .filter(user_emails::user_id.eq(id))
            .select(user_emails::value_key)
            .load::<String>(conn)?,
    );
    Ok(keys)
}

/// Ids of the users other than `person` whose `manager_key` is one of `keys`, in id order.
pub fn report_ids(
    conn: &mut AnyConnection,
    tenant: &str,
    person: &str,
    keys: &[String],
) -> Result<Vec<String>, StoreError> {
    Ok(users::table
        .filter(users::tenant_id.eq(tenant))
        .filter(users::manager_key.eq_any(keys))
        .filter(users::id.ne(person))
        .select(users::id)
        .order(users::id)
        .load(conn)?)
}

/// A report's document, as stored.
#[derive(Debug, QueryableByName)]
pub struct Report {
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub id: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub data: String,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub version: i64,
}

/// The users other than `person` whose `manager_key` is one of `keys`.
pub fn reports(
    conn: &mut AnyConnection,
    tenant: &str,
    person: &str,
    keys: &[String],
) -> Result<Vec<Report>, StoreError> {
    load_sql::<Report>(conn, &reports_sql(tenant, person, keys))
}

/// `reports`' statement. A padded `IN` list: a few cached shapes, not one
/// prepared per DELETE.
fn reports_sql(tenant: &str, person: &str, keys: &[String]) -> Sql {
    let mut sql = Sql::default();
    sql.push("SELECT id, data, version FROM users WHERE tenant_id = ")
        .bind_text(tenant);
    sql.push(" AND manager_key IN ").bind_list(keys);
    sql.push(" AND id <> ").bind_text(person);
    sql
}

/// PostgreSQL: [`reports`], each row locked `FOR UPDATE` in id order (the
/// order `report_ids` gives every disposal path), in one statement instead
/// of a lookup and a lock per report. `keys` must not be empty.
pub fn reports_locked(
    conn: &mut AnyConnection,
    tenant: &str,
    person: &str,
    keys: &[String],
) -> Result<Vec<Report>, StoreError> {
    let mut sql = reports_sql(tenant, person, keys);
    sql.push(" ORDER BY id FOR UPDATE");
    load_sql::<Report>(conn, &sql)
}

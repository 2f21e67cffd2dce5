//! Users: the canonical document plus the columns derived from it.

use super::db::{AnyConnection, Sql, execute_sql, load_sql};
use super::error::StoreError;
use super::schema::{user_emails, users};
use super::sql::{Condition, LiteralCondition};
use crate::domain::{ActiveChange, UserState};
use crate::scim::resource::UserKeys;
use diesel::prelude::*;

mod lookup;
mod states;
pub(in crate::store) use states::push_scrub;

pub use lookup::{
    Key, Report, active_id, active_id_by_name, active_other_by, alias_keys,
    email_held_by_other_active, emails_of, report_ids, reports, reports_locked, visible_id_by_name,
};
pub use states::{
    DocUpdate, get_any, insert_stub, lock, lock_shared, scrub_to_stub, set_deleted_pending,
    set_legal_hold, set_manager, state_and_hold, state_of, write_state,
};

/// `state IN (…the visible states…)`, for SQL built as text (`Sql::push`).
pub const STATE_IS_VISIBLE: &str = super::vocab::VISIBLE;

/// The SCIM-visible states (uniqueness and every read use this predicate):
/// `UserState::VISIBLE` as literal SQL (`vocab::VISIBLE_USERS`). A bound list
/// (`eq_any`) has a placeholder per value, so diesel will not cache the
/// statement on SQLite, and a bound state cannot use the partial unique
/// `userName` index.
pub const fn visible() -> Condition<VisibleStates> {
    Condition::new()
}

#[derive(Debug, Clone, Copy, Default)]
pub struct VisibleStates;

impl LiteralCondition for VisibleStates {
    const SQL: &'static str = super::vocab::VISIBLE_USERS;
}

// `None` is NULL both in an update and in an insert: an insert with a
// possible `DEFAULT` is a new statement shape that diesel never caches (each
// create was parsed and planned anew on PostgreSQL).
#[derive(Debug, Clone, Queryable, Selectable, QueryableByName, Insertable, AsChangeset)]
#[diesel(table_name = users)]
#[diesel(treat_none_as_null = true, treat_none_as_default_value = false)]
pub struct UserRow {
    pub id: String,
    pub tenant_id: String,
    pub state: UserState,
    pub user_name: String,
    pub user_name_key: String,
    pub external_id: Option<String>,
    pub display_name_key: Option<String>,
    pub given_name_key: Option<String>,
    pub family_name_key: Option<String>,
    pub active: bool,
    pub manager_id: Option<String>,
    pub suspended_at: Option<String>,
    pub data: String,
    pub created_at: String,
    pub updated_at: String,
    pub version: i64,
    pub legal_hold: bool,
    pub manager_key: Option<String>,
    pub search: Option<String>,
}

impl UserRow {
    /// Applies `UserState::on_active` to the state and the grace clock
    /// (`suspended_at`); the caller writes the row.
    pub fn apply_active(&mut self, active: bool, now: &str) -> ActiveChange {
        let change = self.state.on_active(active);
        match change {
            ActiveChange::Suspend => {
                self.state = UserState::Suspended;
                self.suspended_at = Some(now.to_string());
            }
            ActiveChange::Reactivate => {
                self.state = UserState::Active;
                self.suspended_at = None;
            }
            ActiveChange::Unchanged => {}
        }
        change
    }

    /// A new user's row: version 1, created now, state from `active`.
    pub fn new(id: String, tenant_id: String, data: String, k: &UserKeys, now: &str) -> UserRow {
        let mut row = UserRow {
            id,
            tenant_id,
            state: UserState::from_active(k.active),
            user_name: String::new(),
            user_name_key: String::new(),
            external_id: None,
            display_name_key: None,
            given_name_key: None,
            family_name_key: None,
            active: true,
            manager_id: None,
            suspended_at: (!k.active).then(|| now.to_string()),
            data,
            created_at: now.to_string(),
            updated_at: now.to_string(),
            version: 1,
            legal_hold: false,
            manager_key: None,
            search: None,
        };
        row.set_keys(k);
        row
    }

    /// Copies the derived keys into the row (one pure function feeds them all).
    pub fn set_keys(&mut self, k: &UserKeys) {
        self.user_name = k.user_name.clone();
        self.user_name_key = k.user_name_key.clone();
        self.external_id = k.external_id.clone();
        self.display_name_key = k.display_name_key.clone();
        self.given_name_key = k.given_name.as_deref().map(crate::scim::fold::fold);
        self.family_name_key = k.family_name.as_deref().map(crate::scim::fold::fold);
        self.active = k.active;
        self.manager_id = k.manager_id.clone();
        self.manager_key = k.manager_id.as_deref().map(crate::scim::fold::fold);
        self.search = Some(k.search.clone());
    }
}

// NULL, not DEFAULT, for a missing `kind`: one statement shape, cached.
#[derive(Insertable)]
#[diesel(table_name = user_emails)]
#[diesel(treat_none_as_default_value = false)]
struct EmailRow<'a> {
    user_id: &'a str,
    position: i32,
    tenant_id: &'a str,
    value: &'a str,
    value_key: &'a str,
    kind: Option<&'a str>,
    is_primary: bool,
}

pub fn find(
    conn: &mut AnyConnection,
    tenant: &str,
    id: &str,
) -> Result<Option<UserRow>, StoreError> {
    Ok(crate::per_backend!(conn, c => users::table
        .filter(users::tenant_id.eq(tenant))
        .filter(users::id.eq(id))
        .filter(visible())
        .select(UserRow::as_select())
        .first(c)
        .optional())?)
}

/// `find`, the row locked for the rest of the transaction (`lock`): on
/// PostgreSQL one `SELECT … FOR UPDATE` instead of a lock and a read, one
/// round trip fewer for every PATCH, PUT and DELETE. A row that is not
/// visible is not locked (nor found). SQLite's single writer already
/// serialises writes.
pub fn find_locked(
    conn: &mut AnyConnection,
    tenant: &str,
    id: &str,
) -> Result<Option<UserRow>, StoreError> {
    if let AnyConnection::Postgresql(c) = conn {
        return Ok(users::table
            .filter(users::tenant_id.eq(tenant))
            .filter(users::id.eq(id))
            .filter(visible())
            .select(UserRow::as_select())
            .for_update()
            .first(c)
            .optional()?);
    }
    find(conn, tenant, id)
}

/// Visible users holding this userName (case-insensitively) or externalId.
/// Two indexed lookups, not one `OR`: SQLite answers the `OR` by walking the
/// tenant's users (linear in users), on every create.
pub fn find_by_identifiers(
    conn: &mut AnyConnection,
    tenant: &str,
    user_name_key: &str,
    external_id: Option<&str>,
) -> Result<Vec<UserRow>, StoreError> {
    // PostgreSQL: both lookups in one statement (one round trip, each branch
    // on its own index). SQLite, a local file, keeps two cached statements.
    if let (AnyConnection::Postgresql(c), Some(x)) = (&mut *conn, external_id) {
        let by_name = users::table
            .filter(users::tenant_id.eq(tenant))
            .filter(visible())
            .filter(users::user_name_key.eq(user_name_key))
            .select(UserRow::as_select());
        let by_external_id = users::table
            .filter(users::tenant_id.eq(tenant))
            .filter(visible())
            .filter(users::external_id.eq(x))
            .select(UserRow::as_select());
        let both: Vec<UserRow> = by_name.union_all(by_external_id).load(c)?;
        let mut found: Vec<UserRow> = Vec::with_capacity(both.len());
        for r in both {
            if !found.iter().any(|f| f.id == r.id) {
                found.push(r);
            }
        }
        found.sort_by(|a, b| a.created_at.cmp(&b.created_at));
        return Ok(found);
    }
    let mut found: Vec<UserRow> = crate::per_backend!(conn, c => users::table
        .filter(users::tenant_id.eq(tenant))
        .filter(visible())
        .filter(users::user_name_key.eq(user_name_key))
        .select(UserRow::as_select())
        .load(c))?;
    if let Some(x) = external_id {
        let by_external_id: Vec<UserRow> = crate::per_backend!(conn, c => users::table
            .filter(users::tenant_id.eq(tenant))
            .filter(visible())
            .filter(users::external_id.eq(x))
            .select(UserRow::as_select())
            .load(c))?;
        for r in by_external_id {
            if !found.iter().any(|f| f.id == r.id) {
                found.push(r);
            }
        }
    }
    found.sort_by(|a, b| a.created_at.cmp(&b.created_at));
    Ok(found)
}

pub fn insert(conn: &mut AnyConnection, row: &UserRow, keys: &UserKeys) -> Result<(), StoreError> {
    crate::per_backend!(conn, c => diesel::insert_into(users::table).values(row).execute(c))?;
    write_emails(conn, row, keys)
}

/// Stores `row` over `old` (the same user as read). Only the columns that
/// changed are written: a column named in `SET` makes SQLite rewrite every
/// index entry over it, changed or not (a PATCH of `active` rewrote all nine
/// users indexes). Email rows are rewritten only when `emails_changed`.
pub fn update(
    conn: &mut AnyConnection,
    old: &UserRow,
    row: &UserRow,
    keys: &UserKeys,
    emails_changed: bool,
) -> Result<(), StoreError> {
    use super::db::Bind;
    let mut s = Sql::default();
    s.push("UPDATE users SET version = ")
        .bind(Bind::BigInt(row.version));
    macro_rules! set_if_changed {
        ($($column:ident: $bind:path),* $(,)?) => {$(
            if old.$column != row.$column {
                s.push(concat!(", ", stringify!($column), " = "))
                    .bind($bind(row.$column.clone()));
            }
        )*};
    }
    if old.state != row.state {
        s.push(", state = ").bind_text(row.state.as_str());
    }
    set_if_changed!(
        user_name: Bind::Text,
        user_name_key: Bind::Text,
        external_id: Bind::OptText,
        display_name_key: Bind::OptText,
        given_name_key: Bind::OptText,
        family_name_key: Bind::OptText,
        active: Bind::Bool,
        manager_id: Bind::OptText,
        suspended_at: Bind::OptText,
        data: Bind::Text,
        updated_at: Bind::Text,
        legal_hold: Bind::Bool,
        manager_key: Bind::OptText,
        search: Bind::OptText,
    );
    s.push(" WHERE tenant_id = ")
        .bind_text(row.tenant_id.as_str());
    s.push(" AND id = ").bind_text(row.id.as_str());
    s.push(" AND ").push(super::vocab::VISIBLE);
    if execute_sql(conn, &s)? == 0 {
        return Err(StoreError::NotFound);
    }
    if emails_changed {
        diesel::delete(user_emails::table.filter(user_emails::user_id.eq(&row.id)))
            .execute(conn)?;
        write_emails(conn, row, keys)?;
    }
    Ok(())
}

/// Rows per email `INSERT` on PostgreSQL: at most this many statement shapes.
const EMAIL_CHUNK: usize = 8;

fn write_emails(
    conn: &mut AnyConnection,
    row: &UserRow,
    keys: &UserKeys,
) -> Result<(), StoreError> {
    let rows: Vec<EmailRow<'_>> = keys
        .emails
        .iter()
        .enumerate()
        .map(|(i, e)| EmailRow {
            user_id: &row.id,
            position: i32::try_from(i).unwrap_or(i32::MAX),
            tenant_id: &row.tenant_id,
            value: &e.value,
            value_key: &e.value_key,
            kind: e.kind.as_deref(),
            is_primary: e.primary,
        })
        .collect();
    if rows.is_empty() {
        return Ok(());
    }
    if super::db::backend_of(conn) == super::db::Backend::Postgres {
        // Multi-row statements: one round trip for a user's usual few
        // emails. Built by hand so each row count is one cached statement
        // (diesel never caches a batch insert), in chunks of at most
        // `EMAIL_CHUNK` rows so a client cannot spend the process's budget
        // of cached shapes (`store::sql`) on every count up to 1,000.
        use super::db::Bind;
        for chunk in rows.chunks(EMAIL_CHUNK) {
            let mut s = Sql::default();
            s.push("INSERT INTO user_emails (user_id, position, tenant_id, value, value_key, kind, is_primary) VALUES ");
            for (i, r) in chunk.iter().enumerate() {
                s.push(if i == 0 { "(" } else { ", (" })
                    .bind_text(r.user_id);
                s.push(", CAST(").bind(Bind::BigInt(i64::from(r.position)));
                s.push(" AS INTEGER), ").bind_text(r.tenant_id);
                s.push(", ").bind_text(r.value);
                s.push(", ").bind_text(r.value_key);
                s.push(", ").bind(Bind::OptText(r.kind.map(str::to_string)));
                s.push(", ").bind(Bind::Bool(r.is_primary));
                s.push(")");
            }
            execute_sql(conn, &s)?;
        }
        return Ok(());
    }
    {
        // One statement per email on SQLite (a local file); a user has few.
        for r in rows {
            crate::per_backend!(conn, c => diesel::insert_into(user_emails::table)
                .values(&r)
                .execute(c))?;
        }
    }
    Ok(())
}

/// A listed user with the value it was sorted by.
#[derive(QueryableByName)]
pub struct ListedUser {
    #[diesel(embed)]
    pub item: UserRow,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    pub sort_key: Option<String>,
}

impl super::db::Positioned for ListedUser {
    fn position(&self) -> crate::scim::cursor::Position {
        crate::scim::cursor::Position {
            sort: self.sort_key.clone(),
            created: self.item.created_at.clone(),
            id: self.item.id.clone(),
            total: 0,
        }
    }
}

/// One page of visible users matching `filter`, in `order`.
fn list_where(tenant: &str, filter: Option<Sql>) -> Sql {
    let mut wh = Sql::default();
    wh.push(" WHERE u.tenant_id = ").bind_text(tenant);
    wh.push(" AND ").push(super::vocab::VISIBLE_U);
    if let Some(f) = filter {
        wh.push(" AND ").append(f);
    }
    wh
}

/// The page `SELECT` that `list` runs (for EXPLAIN in tests and benchmarks).
pub fn list_sql(
    tenant: &str,
    filter: Option<Sql>,
    order: &super::db::Order,
    window: &super::db::Window,
    limit: i64,
) -> Sql {
    super::db::page_query(
        "users u",
        "u",
        list_where(tenant, filter),
        order,
        window,
        limit,
    )
}

/// One page matching `filter`, in `order`.
pub fn list(
    conn: &mut AnyConnection,
    tenant: &str,
    filter: Option<Sql>,
    order: &super::db::Order,
    window: &super::db::Window,
    limit: i64,
) -> Result<super::db::Page<ListedUser>, StoreError> {
    super::db::paged(
        conn,
        "users u",
        "u",
        list_where(tenant, filter),
        order,
        window,
        limit,
    )
}

/// PostgreSQL: each listed user's groups as JSON text, `[[group id,
/// displayName], …]` in the order `groups_of` gives (NULL: none), so a page
/// and its memberships are one statement: one round trip for an IdP's
/// lookup instead of two (issue 17).
const GROUPS_JSON_PG: &str = ", (SELECT json_agg(json_build_array(g.id, g.display_name) \
     ORDER BY g.created_at, g.id)::text FROM group_members m JOIN groups g ON g.id = m.group_id \
     WHERE m.tenant_id = u.tenant_id AND m.member_id = u.id) AS groups_json";

#[derive(QueryableByName)]
struct ListedWithGroups {
    #[diesel(embed)]
    listed: ListedUser,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    groups_json: Option<String>,
}

/// `list` and the listed users' memberships (`groups_of`: user id, group
/// id, displayName). On PostgreSQL in one statement (`GROUPS_JSON_PG`), on
/// SQLite (a local file, where a second statement costs no round trip) in two.
#[allow(clippy::type_complexity)]
pub fn list_with_groups(
    conn: &mut AnyConnection,
    tenant: &str,
    filter: Option<Sql>,
    order: &super::db::Order,
    window: &super::db::Window,
    limit: i64,
) -> Result<(super::db::Page<ListedUser>, Vec<(String, String, String)>), StoreError> {
    if super::db::backend_of(conn) != super::db::Backend::Postgres {
        let page = list(conn, tenant, filter, order, window, limit)?;
        let ids: Vec<String> = page.rows.iter().map(|r| r.item.id.clone()).collect();
        let groups = groups_of(conn, tenant, &ids)?;
        return Ok((page, groups));
    }
    let page: super::db::Page<ListedWithGroups> = super::db::paged_with(
        conn,
        "users u",
        "u",
        GROUPS_JSON_PG,
        list_where(tenant, filter),
        order,
        window,
        limit,
    )?;
    let mut groups = Vec::new();
    let mut rows = Vec::with_capacity(page.rows.len());
    for r in page.rows {
        if let Some(j) = &r.groups_json {
            let listed: Vec<(String, String)> = serde_json::from_str(j)
                .map_err(|e| StoreError::Corrupt(format!("a user's group list: {e}")))?;
            groups.extend(
                listed
                    .into_iter()
                    .map(|(g, name)| (r.listed.item.id.clone(), g, name)),
            );
        }
        rows.push(r.listed);
    }
    Ok((
        super::db::Page {
            rows,
            total: page.total,
            more: page.more,
        },
        groups,
    ))
}

/// The groups each of `user_ids` belongs to: (user id, group id, group displayName).
pub fn groups_of(
    conn: &mut AnyConnection,
    tenant: &str,
    user_ids: &[String],
) -> Result<Vec<(String, String, String)>, StoreError> {
    if user_ids.is_empty() {
        return Ok(vec![]);
    }
    #[derive(QueryableByName)]
    struct Membership {
        #[diesel(sql_type = diesel::sql_types::Text)]
        member_id: String,
        #[diesel(sql_type = diesel::sql_types::Text)]
        id: String,
        #[diesel(sql_type = diesel::sql_types::Text)]
        display_name: String,
    }
    // Hand-built so a page of any size is one of a few cached statements
    // (the id list is padded); diesel's `eq_any` is never cached on SQLite.
    let mut q = Sql::default();
    q.push(
        "SELECT m.member_id, g.id, g.display_name FROM group_members m \
         JOIN groups g ON g.id = m.group_id WHERE m.tenant_id = ",
    )
    .bind_text(tenant);
    q.push(" AND m.member_id IN ")
        .bind_list(user_ids)
        .push(" ORDER BY g.created_at, g.id");
    Ok(load_sql::<Membership>(conn, &q)?
        .into_iter()
        .map(|m| (m.member_id, m.id, m.display_name))
        .collect())
}

#[derive(QueryableByName)]
struct Unindexed {
    #[diesel(sql_type = diesel::sql_types::Text)]
    id: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    data: String,
}

/// Writes the search document of visible users that lack one (rows written
/// before the column existed). Runs at start-up, in batches; each batch
/// shrinks the set, so it ends.
pub fn backfill_search(conn: &mut AnyConnection) -> Result<(), StoreError> {
    const BATCH: i64 = 500;
    let mut filled = 0_u64;
    loop {
        let mut q = Sql::default();
        q.push("SELECT id, data FROM users WHERE search IS NULL AND ")
            .push(super::vocab::VISIBLE)
            .push(" LIMIT ")
            .bind(super::db::Bind::BigInt(BATCH));
        let rows = super::db::load_sql::<Unindexed>(conn, &q)?;
        if rows.is_empty() {
            break;
        }
        for r in rows {
            let search = match serde_json::from_str::<crate::scim::resource::Doc>(&r.data) {
                Ok(doc) => crate::scim::resource::user_keys(&doc).search,
                Err(_) => {
                    tracing::warn!(user_id = %r.id, "stored user document is not valid JSON; its search document is empty");
                    "{}".to_string()
                }
            };
            diesel::update(users::table.filter(users::id.eq(&r.id)))
                .set(users::search.eq(Some(search)))
                .execute(conn)?;
            filled += 1;
        }
    }
    if filled > 0 {
        tracing::info!(
            users = filled,
            "search documents written for existing users"
        );
    }
    Ok(())
}

/// Other users whose `manager_key` is one of `keys` (the person's aliases),
/// counted up to `limit + 1`.
pub fn reports_up_to(
    conn: &mut AnyConnection,
    tenant: &str,
    person: &str,
    keys: &[String],
    limit: usize,
) -> Result<usize, StoreError> {
    use super::db::{Bind, Count, Sql, load_sql};
    if keys.is_empty() {
        return Ok(0);
    }
    let cap = i64::try_from(limit).unwrap_or(i64::MAX).saturating_add(1);
    // A padded `IN` list: a few cached shapes, not one prepared per call.
    let mut q = Sql::default();
    q.push("SELECT COUNT(*) AS n FROM (SELECT 1 AS one FROM users WHERE tenant_id = ")
        .bind_text(tenant);
    q.push(" AND manager_key IN ").bind_list(keys);
    q.push(" AND id <> ").bind_text(person);
    q.push(" LIMIT ").bind(Bind::BigInt(cap)).push(") s");
    Ok(load_sql::<Count>(conn, &q)?
        .first()
        .map_or(0, |r| usize::try_from(r.n).unwrap_or(usize::MAX)))
}

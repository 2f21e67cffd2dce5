//! Groups and their memberships (one row per membership).

use super::db::{AnyConnection, Backend, Sql, backend_of, execute_sql, load_sql};
use super::error::StoreError;
use super::schema::{group_members, groups};
use super::sql::LiteralCondition;
use diesel::prelude::*;

#[derive(Debug, Clone, Queryable, Selectable, QueryableByName, Insertable, AsChangeset)]
#[diesel(table_name = groups)]
#[diesel(treat_none_as_null = true)]
pub struct GroupRow {
    pub id: String,
    pub tenant_id: String,
    pub display_name: String,
    pub display_name_key: String,
    pub external_id: Option<String>,
    pub data: String,
    pub created_at: String,
    pub updated_at: String,
    pub version: i64,
}

/// Candidate member ids split into known members and unknown ids.
pub type Resolved = (Vec<(String, MemberKind)>, Vec<String>);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub id: String,
    pub kind: MemberKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberKind {
    User,
    Group,
}

impl MemberKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MemberKind::User => "User",
            MemberKind::Group => "Group",
        }
    }
}

/// PostgreSQL: locks the group's row for the rest of the transaction.
pub fn lock(conn: &mut AnyConnection, tenant: &str, id: &str) -> Result<(), StoreError> {
    super::db::lock_row(conn, "groups", tenant, id)
}

pub fn find(
    conn: &mut AnyConnection,
    tenant: &str,
    id: &str,
) -> Result<Option<GroupRow>, StoreError> {
    Ok(groups::table
        .filter(groups::tenant_id.eq(tenant))
        .filter(groups::id.eq(id))
        .select(GroupRow::as_select())
        .first(conn)
        .optional()?)
}

pub fn find_by_display_name_key(
    conn: &mut AnyConnection,
    tenant: &str,
    key: &str,
) -> Result<Option<GroupRow>, StoreError> {
    Ok(groups::table
        .filter(groups::tenant_id.eq(tenant))
        .filter(groups::display_name_key.eq(key))
        .select(GroupRow::as_select())
        .first(conn)
        .optional()?)
}

pub fn insert(conn: &mut AnyConnection, row: &GroupRow) -> Result<(), StoreError> {
    diesel::insert_into(groups::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

pub fn update(conn: &mut AnyConnection, row: &GroupRow) -> Result<(), StoreError> {
    let n = diesel::update(
        groups::table
            .filter(groups::tenant_id.eq(&row.tenant_id))
            .filter(groups::id.eq(&row.id)),
    )
    .set(row)
    .execute(conn)?;
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

pub fn delete(conn: &mut AnyConnection, tenant: &str, id: &str) -> Result<bool, StoreError> {
    remove_all_members(conn, tenant, id)?;
    // The group may itself be a member of other groups.
    remove_from_all_groups(conn, tenant, id)?;
    diesel::delete(
        group_members::table
            .filter(group_members::tenant_id.eq(tenant))
            .filter(group_members::member_id.eq(id)),
    )
    .execute(conn)?;
    let n = diesel::delete(
        groups::table
            .filter(groups::tenant_id.eq(tenant))
            .filter(groups::id.eq(id)),
    )
    .execute(conn)?;
    Ok(n > 0)
}

/// Splits candidate member ids into users and groups of this tenant; unknown ids
/// (and ids of other tenants) are dropped and returned separately. One query
/// per `RESOLVE_CHUNK` ids, whatever their kind.
pub fn resolve_members(
    conn: &mut AnyConnection,
    tenant: &str,
    ids: &[String],
) -> Result<Resolved, StoreError> {
    use std::collections::HashSet;
    let mut user_ids: HashSet<String> = HashSet::new();
    let mut group_ids: HashSet<String> = HashSet::new();
    for chunk in ids.chunks(RESOLVE_CHUNK) {
        let mut sql = Sql::default();
        sql.push("SELECT users.id AS id, 'User' AS kind FROM users WHERE users.tenant_id = ")
            .bind_text(tenant)
            .push(" AND ")
            .push(<super::users::VisibleStates as LiteralCondition>::SQL)
            .push(" AND users.id IN ")
            .bind_list(chunk)
            .push(" UNION ALL SELECT groups.id, 'Group' FROM groups WHERE groups.tenant_id = ")
            .bind_text(tenant)
            .push(" AND groups.id IN ")
            .bind_list(chunk);
        for row in load_sql::<KindRow>(conn, &sql)? {
            if row.kind == "User" {
                user_ids.insert(row.id);
            } else {
                group_ids.insert(row.id);
            }
        }
    }
    let mut found = Vec::new();
    let mut unknown = Vec::new();
    let mut seen = HashSet::new();
    for id in ids {
        if !seen.insert(id) {
            continue;
        }
        if user_ids.contains(id) {
            found.push((id.clone(), MemberKind::User));
        } else if group_ids.contains(id) {
            found.push((id.clone(), MemberKind::Group));
        } else {
            unknown.push(id.clone());
        }
    }
    Ok((found, unknown))
}

#[derive(QueryableByName)]
struct KindRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    id: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    kind: String,
}

/// A membership change changes the member's `groups`: bump its version so
/// ETags and `meta.lastModified` follow. Set-based: two statements per `CHUNK`.
fn touch_members(conn: &mut AnyConnection, tenant: &str, ids: &[String]) -> Result<(), StoreError> {
    let now = crate::store::time::now();
    for chunk in ids.chunks(CHUNK) {
        for table in ["users", "groups"] {
            let mut sql = Sql::default();
            sql.push("UPDATE ")
                .push(table)
                .push(" SET version = version + 1, updated_at = ")
                .bind_text(now.as_str())
                .push(" WHERE tenant_id = ")
                .bind_text(tenant)
                .push(" AND id IN ")
                .bind_list(chunk);
            execute_sql(conn, &sql)?;
        }
    }
    Ok(())
}

fn member_ids_of(
    conn: &mut AnyConnection,
    tenant: &str,
    group_id: &str,
) -> Result<Vec<String>, StoreError> {
    Ok(group_members::table
        .filter(group_members::tenant_id.eq(tenant))
        .filter(group_members::group_id.eq(group_id))
        .select(group_members::member_id)
        .load(conn)?)
}

/// Removes `member` from every group (a disposed user, a deleted group), bumping
/// those groups' versions.
pub fn remove_from_all_groups(
    conn: &mut AnyConnection,
    tenant: &str,
    member: &str,
) -> Result<usize, StoreError> {
    let group_ids: Vec<String> = group_members::table
        .filter(group_members::tenant_id.eq(tenant))
        .filter(group_members::member_id.eq(member))
        .select(group_members::group_id)
        .load(conn)?;
    if group_ids.is_empty() && backend_of(conn) == Backend::Sqlite {
        // Under SQLite's single writer the DELETE below would match the rows
        // just read: none (a SCIM DELETE of a person in no group). On
        // PostgreSQL a membership committed since would be left behind.
        return Ok(0);
    }
    touch_members(conn, tenant, &group_ids)?;
    Ok(diesel::delete(
        group_members::table
            .filter(group_members::tenant_id.eq(tenant))
            .filter(group_members::member_id.eq(member)),
    )
    .execute(conn)?)
}

/// Ids per `IN (…)` list: a power of two (lists are padded to one, `Sql::bind_list`),
/// well under SQLite's historic limit of 999 bound values per statement.
pub const CHUNK: usize = 512;

/// Ids per member lookup: two lists of them in one statement.
const RESOLVE_CHUNK: usize = 256;

/// Rows per membership `INSERT`: five values each, 640 in all. A power of
/// two: a shorter chunk is padded to one, so any number of members makes at
/// most eight statement shapes (each cached once per connection).
const INSERT_ROWS: usize = 128;

/// Adds memberships; already-present ones are left alone. Returns the ids
/// that were new. One multi-row `INSERT … ON CONFLICT DO NOTHING RETURNING`
/// per `INSERT_ROWS` members, so a 20,000-member add is 157 statements inside
/// the writer, not 20,000; a member added to a huge group is still one row.
pub fn add_members(
    conn: &mut AnyConnection,
    tenant: &str,
    group_id: &str,
    members: &[(String, MemberKind)],
    now: &str,
) -> Result<Vec<String>, StoreError> {
    let mut added = Vec::new();
    for chunk in members.chunks(INSERT_ROWS) {
        let mut sql = Sql::default();
        sql.push(
            "INSERT INTO group_members (group_id, member_id, tenant_id, member_type, created_at) VALUES ",
        );
        // Padded with the last member: a repeated row conflicts with itself
        // and is skipped (`DO NOTHING` allows that on both backends), and
        // `RETURNING` names only rows actually inserted.
        for i in 0..chunk.len().next_power_of_two() {
            let Some((id, kind)) = chunk.get(i).or(chunk.last()) else {
                break;
            };
            sql.push(if i == 0 { "(" } else { ", (" })
                .bind_text(group_id)
                .push(", ")
                .bind_text(id.as_str())
                .push(", ")
                .bind_text(tenant)
                .push(", ")
                .bind_text(kind.as_str())
                .push(", ")
                .bind_text(now)
                .push(")");
        }
        sql.push(" ON CONFLICT DO NOTHING RETURNING member_id");
        added.extend(
            load_sql::<MemberIdRow>(conn, &sql)?
                .into_iter()
                .map(|r| r.member_id),
        );
    }
    touch_members(conn, tenant, &added)?;
    Ok(added)
}

#[derive(QueryableByName)]
struct MemberIdRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    member_id: String,
}

/// Removes the memberships of `ids` (absent ones are skipped); returns how many.
pub fn remove_members(
    conn: &mut AnyConnection,
    tenant: &str,
    group_id: &str,
    ids: &[String],
) -> Result<usize, StoreError> {
    let mut n = 0;
    for chunk in ids.chunks(CHUNK) {
        let mut sql = Sql::default();
        sql.push("DELETE FROM group_members WHERE tenant_id = ")
            .bind_text(tenant)
            .push(" AND group_id = ")
            .bind_text(group_id)
            .push(" AND member_id IN ")
            .bind_list(chunk);
        n += execute_sql(conn, &sql)?;
    }
    if n > 0 {
        touch_members(conn, tenant, ids)?;
    }
    Ok(n)
}

/// Removes the members matching `cond` (over `group_members m`); returns how many.
pub fn remove_members_where(
    conn: &mut AnyConnection,
    tenant: &str,
    group_id: &str,
    cond: Sql,
) -> Result<usize, StoreError> {
    let mut sql = Sql::default();
    sql.push("SELECT m.member_id, m.member_type FROM group_members m WHERE m.tenant_id = ")
        .bind_text(tenant)
        .push(" AND m.group_id = ")
        .bind_text(group_id)
        .push(" AND ")
        .append(cond);
    let ids: Vec<String> = load_sql::<MemberRow>(conn, &sql)?
        .into_iter()
        .map(|r| r.member_id)
        .collect();
    remove_members(conn, tenant, group_id, &ids)
}

pub fn remove_all_members(
    conn: &mut AnyConnection,
    tenant: &str,
    group_id: &str,
) -> Result<usize, StoreError> {
    let ids = member_ids_of(conn, tenant, group_id)?;
    remove_members(conn, tenant, group_id, &ids)
}

#[derive(QueryableByName)]
struct MemberRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    member_id: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    member_type: String,
}

/// The members of a group, in the order they were added.
pub fn members(
    conn: &mut AnyConnection,
    tenant: &str,
    group_id: &str,
) -> Result<Vec<Member>, StoreError> {
    let mut sql = Sql::default();
    sql.push("SELECT m.member_id, m.member_type FROM group_members m WHERE m.tenant_id = ")
        .bind_text(tenant)
        .push(" AND m.group_id = ")
        .bind_text(group_id)
        .push(" ORDER BY m.created_at, m.member_id");
    Ok(load_sql::<MemberRow>(conn, &sql)?
        .into_iter()
        .map(|r| Member {
            id: r.member_id,
            kind: if r.member_type == "Group" {
                MemberKind::Group
            } else {
                MemberKind::User
            },
        })
        .collect())
}

/// A listed group with the value it was sorted by.
#[derive(QueryableByName)]
pub struct ListedGroup {
    #[diesel(embed)]
    pub item: GroupRow,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    pub sort_key: Option<String>,
}

impl super::db::Positioned for ListedGroup {
    fn position(&self) -> crate::scim::cursor::Position {
        crate::scim::cursor::Position {
            sort: self.sort_key.clone(),
            created: self.item.created_at.clone(),
            id: self.item.id.clone(),
            total: 0,
        }
    }
}

/// One page of groups matching `filter`, in `order`.
fn list_where(tenant: &str, filter: Option<Sql>) -> Sql {
    let mut wh = Sql::default();
    wh.push(" WHERE g.tenant_id = ").bind_text(tenant);
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
        "groups g",
        "g",
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
) -> Result<super::db::Page<ListedGroup>, StoreError> {
    super::db::paged(
        conn,
        "groups g",
        "g",
        list_where(tenant, filter),
        order,
        window,
        limit,
    )
}

/// Whether the group has more than `limit` members: reads at most `limit + 1`
/// index entries, where a `COUNT(*)` read all 100,000 of a big group on every
/// PATCH (half of a member add's time).
pub fn has_more_members_than(
    conn: &mut AnyConnection,
    tenant: &str,
    group_id: &str,
    limit: i64,
) -> Result<bool, StoreError> {
    let beyond: Vec<String> = group_members::table
        .filter(group_members::tenant_id.eq(tenant))
        .filter(group_members::group_id.eq(group_id))
        .select(group_members::member_id)
        .offset(limit)
        .limit(1)
        .load(conn)?;
    Ok(!beyond.is_empty())
}

//! The content ledger: items people own, user-data records, SSO subjects.

use super::db::{AnyConnection, Sql, execute_sql, load_sql};
use super::error::StoreError;
use super::schema::{content_items, content_shares, sso_subjects, user_data};
use diesel::prelude::*;

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = content_items)]
#[diesel(treat_none_as_null = true)]
pub struct ItemRow {
    pub tenant_id: String,
    pub kind: String,
    pub item_id: String,
    pub owner_id: Option<String>,
    pub parent_kind: Option<String>,
    pub parent_id: Option<String>,
    pub title: Option<String>,
    pub personal_root: bool,
    pub created_at: String,
    pub updated_at: String,
}

pub fn find_item(
    c: &mut AnyConnection,
    tenant: &str,
    kind: &str,
    id: &str,
) -> Result<Option<ItemRow>, StoreError> {
    Ok(content_items::table
        .filter(content_items::tenant_id.eq(tenant))
        .filter(content_items::kind.eq(kind))
        .filter(content_items::item_id.eq(id))
        .select(ItemRow::as_select())
        .first(c)
        .optional()?)
}

/// Inserts or replaces an item; returns true when it was created.
pub fn upsert_item(c: &mut AnyConnection, row: &ItemRow) -> Result<bool, StoreError> {
    match find_item(c, &row.tenant_id, &row.kind, &row.item_id)? {
        Some(existing) => {
            let updated = ItemRow {
                created_at: existing.created_at,
                ..row.clone()
            };
            diesel::update(
                content_items::table
                    .filter(content_items::tenant_id.eq(&row.tenant_id))
                    .filter(content_items::kind.eq(&row.kind))
                    .filter(content_items::item_id.eq(&row.item_id)),
            )
            .set(&updated)
            .execute(c)?;
            Ok(false)
        }
        None => {
            diesel::insert_into(content_items::table)
                .values(row)
                .execute(c)?;
            Ok(true)
        }
    }
}

pub fn delete_item(
    c: &mut AnyConnection,
    tenant: &str,
    kind: &str,
    id: &str,
) -> Result<bool, StoreError> {
    diesel::delete(
        content_shares::table
            .filter(content_shares::tenant_id.eq(tenant))
            .filter(content_shares::kind.eq(kind))
            .filter(content_shares::item_id.eq(id)),
    )
    .execute(c)?;
    let n = diesel::delete(
        content_items::table
            .filter(content_items::tenant_id.eq(tenant))
            .filter(content_items::kind.eq(kind))
            .filter(content_items::item_id.eq(id)),
    )
    .execute(c)?;
    Ok(n > 0)
}

#[derive(Debug, Default, Clone)]
pub struct ItemQuery {
    pub owner: Option<String>,
    pub kind: Option<String>,
    pub orphaned: bool,
    pub offset: i64,
    pub limit: i64,
}

pub fn list_items(
    c: &mut AnyConnection,
    tenant: &str,
    q: &ItemQuery,
) -> Result<(i64, Vec<ItemRow>), StoreError> {
    let base = || {
        let mut b = content_items::table
            .filter(content_items::tenant_id.eq(tenant.to_string()))
            .into_boxed();
        if let Some(o) = &q.owner {
            b = b.filter(content_items::owner_id.eq(o.clone()));
        }
        if let Some(k) = &q.kind {
            b = b.filter(content_items::kind.eq(k.clone()));
        }
        if q.orphaned {
            // The tenant's Archive folder has no owner by design; it is not an orphan.
            b = b.filter(content_items::owner_id.is_null()).filter(
                content_items::kind
                    .ne("folder")
                    .or(content_items::item_id.ne("custodian-archive")),
            );
        }
        b
    };
    let total: i64 = base().count().get_result(c)?;
    let rows = base()
        .select(ItemRow::as_select())
        .order((content_items::kind, content_items::item_id))
        .offset(q.offset)
        .limit(q.limit)
        .load(c)?;
    Ok((total, rows))
}

pub fn shared_with(
    c: &mut AnyConnection,
    tenant: &str,
    kind: &str,
    id: &str,
) -> Result<Vec<String>, StoreError> {
    Ok(content_shares::table
        .filter(content_shares::tenant_id.eq(tenant))
        .filter(content_shares::kind.eq(kind))
        .filter(content_shares::item_id.eq(id))
        .select(content_shares::user_id)
        .order(content_shares::user_id)
        .load(c)?)
}

pub fn share(
    c: &mut AnyConnection,
    tenant: &str,
    kind: &str,
    id: &str,
    user: &str,
    now: &str,
) -> Result<(), StoreError> {
    let exists = diesel::select(diesel::dsl::exists(
        content_shares::table
            .filter(content_shares::tenant_id.eq(tenant))
            .filter(content_shares::kind.eq(kind))
            .filter(content_shares::item_id.eq(id))
            .filter(content_shares::user_id.eq(user)),
    ))
    .get_result::<bool>(c)?;
    if !exists {
        diesel::insert_into(content_shares::table)
            .values((
                content_shares::tenant_id.eq(tenant),
                content_shares::kind.eq(kind),
                content_shares::item_id.eq(id),
                content_shares::user_id.eq(user),
                content_shares::created_at.eq(now),
            ))
            .execute(c)?;
    }
    Ok(())
}

/// Inserts or re-points a user-data record; returns true when created.
pub fn upsert_user_data(
    c: &mut AnyConnection,
    tenant: &str,
    category: &str,
    record: &str,
    user: &str,
    now: &str,
) -> Result<bool, StoreError> {
    let n = diesel::update(
        user_data::table
            .filter(user_data::tenant_id.eq(tenant))
            .filter(user_data::category.eq(category))
            .filter(user_data::record_id.eq(record)),
    )
    .set((user_data::user_id.eq(user), user_data::updated_at.eq(now)))
    .execute(c)?;
    if n > 0 {
        return Ok(false);
    }
    diesel::insert_into(user_data::table)
        .values((
            user_data::tenant_id.eq(tenant),
            user_data::category.eq(category),
            user_data::record_id.eq(record),
            user_data::user_id.eq(user),
            user_data::created_at.eq(now),
            user_data::updated_at.eq(now),
        ))
        .execute(c)?;
    Ok(true)
}

pub fn user_data_owner(
    c: &mut AnyConnection,
    tenant: &str,
    category: &str,
    record: &str,
) -> Result<Option<String>, StoreError> {
    Ok(user_data::table
        .filter(user_data::tenant_id.eq(tenant))
        .filter(user_data::category.eq(category))
        .filter(user_data::record_id.eq(record))
        .select(user_data::user_id)
        .first(c)
        .optional()?)
}

/// Links an SSO subject to a user (idempotent); false when it belongs to someone else.
/// Links an SSO subject to a user (idempotent, safe under concurrency); false
/// when it belongs to someone else.
pub fn add_sso(
    c: &mut AnyConnection,
    tenant: &str,
    user: &str,
    issuer: &str,
    subject: &str,
    now: &str,
) -> Result<bool, StoreError> {
    let mut ins = super::db::Sql::default();
    ins.push("INSERT INTO sso_subjects (tenant_id, issuer, subject, user_id, created_at) VALUES (")
        .bind_text(tenant)
        .push(", ")
        .bind_text(issuer)
        .push(", ")
        .bind_text(subject)
        .push(", ")
        .bind_text(user)
        .push(", ")
        .bind_text(now)
        .push(") ON CONFLICT DO NOTHING");
    super::db::execute_sql(c, &ins)?;
    Ok(sso_owner(c, tenant, issuer, subject)?.as_deref() == Some(user))
}

pub fn remove_sso(
    c: &mut AnyConnection,
    tenant: &str,
    user: &str,
    issuer: &str,
    subject: &str,
) -> Result<bool, StoreError> {
    Ok(diesel::delete(
        sso_subjects::table
            .filter(sso_subjects::tenant_id.eq(tenant))
            .filter(sso_subjects::user_id.eq(user))
            .filter(sso_subjects::issuer.eq(issuer))
            .filter(sso_subjects::subject.eq(subject)),
    )
    .execute(c)?
        > 0)
}

pub fn sso_owner(
    c: &mut AnyConnection,
    tenant: &str,
    issuer: &str,
    subject: &str,
) -> Result<Option<String>, StoreError> {
    Ok(sso_subjects::table
        .filter(sso_subjects::tenant_id.eq(tenant))
        .filter(sso_subjects::issuer.eq(issuer))
        .filter(sso_subjects::subject.eq(subject))
        .select(sso_subjects::user_id)
        .first(c)
        .optional()?)
}

pub fn sso_of(
    c: &mut AnyConnection,
    tenant: &str,
    user: &str,
) -> Result<Vec<(String, String)>, StoreError> {
    Ok(sso_subjects::table
        .filter(sso_subjects::tenant_id.eq(tenant))
        .filter(sso_subjects::user_id.eq(user))
        .select((sso_subjects::issuer, sso_subjects::subject))
        .load(c)?)
}

/// The rows a disposal of `person` touches in the ledger and memberships —
/// items they own, shares granted to them, shares on their items, other
/// people's items in their folders, user data, group memberships — counted up
/// to `limit`: `None` past it. Each count stops at `limit + 1`.
pub fn disposal_rows_up_to(
    c: &mut AnyConnection,
    tenant: &str,
    person: &str,
    limit: usize,
) -> Result<Option<usize>, StoreError> {
    use super::db::{Bind, Count, Sql, load_sql};
    let cap = i64::try_from(limit).unwrap_or(i64::MAX).saturating_add(1);
    // One statement (one cached shape) for the six counts, each stopping at
    // `cap` rows: the disposal path runs it under the writer on every DELETE.
    // Beyond the person's own rows: shares *on* the items they own (granted to
    // anyone), and other people's items inside their folders (re-parented).
    let mut q = Sql::default();
    q.push("SELECT ");
    for (i, (from, owner)) in [
        ("content_items", "owner_id"),
        ("content_shares", "user_id"),
        ("user_data", "user_id"),
        ("group_members", "member_id"),
        (
            "content_shares x JOIN content_items i ON i.tenant_id = x.tenant_id \
             AND i.kind = x.kind AND i.item_id = x.item_id",
            "i.owner_id",
        ),
        (
            "content_items x JOIN content_items i ON i.tenant_id = x.tenant_id \
             AND i.kind = x.parent_kind AND i.item_id = x.parent_id",
            "i.owner_id",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let tenant_col = if owner.starts_with("i.") {
            "i.tenant_id"
        } else {
            "tenant_id"
        };
        if i > 0 {
            q.push(" + ");
        }
        q.push(&format!(
            "(SELECT COUNT(*) FROM (SELECT 1 AS one FROM {from} WHERE {tenant_col} = "
        ))
        .bind_text(tenant);
        q.push(&format!(" AND {owner} = ")).bind_text(person);
        q.push(" LIMIT ")
            .bind(Bind::BigInt(cap))
            .push(&format!(") s{i})"));
    }
    q.push(" AS n");
    let seen = load_sql::<Count>(c, &q)?
        .first()
        .map_or(0, |r| usize::try_from(r.n).unwrap_or(usize::MAX));
    Ok((seen <= limit).then_some(seen))
}

/// One item a person owns, as the planner sees it.
#[derive(Debug, Clone, QueryableByName)]
pub struct OwnedItem {
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub kind: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub item_id: String,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    pub personal_root: bool,
}

/// Rows per page when streaming an owner's items.
const PAGE: i64 = 5000;

/// Calls `f` for every item `person` owns, in (kind, item_id) byte order, a
/// page at a time (keyset paging on `content_items_owner`, whose key columns
/// compare as bytes on both backends).
pub fn for_each_owned(
    c: &mut AnyConnection,
    tenant: &str,
    person: &str,
    mut f: impl FnMut(OwnedItem),
) -> Result<(), StoreError> {
    let mut after: Option<(String, String)> = None;
    loop {
        let mut sql = Sql::default();
        sql.push("SELECT kind, item_id, personal_root FROM content_items WHERE tenant_id = ")
            .bind_text(tenant);
        sql.push(" AND owner_id = ").bind_text(person);
        if let Some((k, i)) = &after {
            sql.push(" AND (kind, item_id) > (")
                .bind_text(k.clone())
                .push(", ")
                .bind_text(i.clone())
                .push(")");
        }
        sql.push(&format!(" ORDER BY kind, item_id LIMIT {PAGE}"));
        let page = load_sql::<OwnedItem>(c, &sql)?;
        let full = page.len() == usize::try_from(PAGE).unwrap_or(usize::MAX);
        let mut last = None;
        for o in page {
            last = Some((o.kind.clone(), o.item_id.clone()));
            f(o);
        }
        match last {
            Some(l) if full => after = Some(l),
            _ => return Ok(()),
        }
    }
}

/// The person's user-data records per category, in category order.
pub fn user_data_counts(
    c: &mut AnyConnection,
    tenant: &str,
    person: &str,
) -> Result<Vec<(String, i64)>, StoreError> {
    #[derive(QueryableByName)]
    struct CategoryCount {
        #[diesel(sql_type = diesel::sql_types::Text)]
        category: String,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let mut sql = Sql::default();
    sql.push("SELECT category, COUNT(*) AS n FROM user_data WHERE tenant_id = ")
        .bind_text(tenant);
    sql.push(" AND user_id = ").bind_text(person);
    sql.push(" GROUP BY category ORDER BY category");
    Ok(load_sql::<CategoryCount>(c, &sql)?
        .into_iter()
        .map(|r| (r.category, r.n))
        .collect())
}

fn exec(c: &mut AnyConnection, f: impl FnOnce(&mut Sql)) -> Result<usize, StoreError> {
    let mut sql = Sql::default();
    f(&mut sql);
    execute_sql(c, &sql)
}

/// Shares the person's personal roots with `to` (set-based: any number of roots).
pub fn share_personal_roots(
    c: &mut AnyConnection,
    tenant: &str,
    person: &str,
    to: &str,
    now: &str,
) -> Result<(), StoreError> {
    exec(c, |s| {
        s.push("INSERT INTO content_shares (tenant_id, kind, item_id, user_id, created_at) SELECT tenant_id, kind, item_id, ")
            .bind_text(to)
            .push(", ")
            .bind_text(now);
        s.push(" FROM content_items WHERE tenant_id = ")
            .bind_text(tenant);
        s.push(" AND owner_id = ").bind_text(person);
        s.push(" AND personal_root = TRUE ON CONFLICT DO NOTHING");
    })?;
    Ok(())
}

/// Moves the person's personal roots under `parent` with a new title, to
/// `to` (or nobody); they stop being personal roots.
pub fn archive_personal_roots(
    c: &mut AnyConnection,
    tenant: &str,
    person: &str,
    parent: (&str, &str),
    title: &str,
    to: Option<&str>,
    now: &str,
) -> Result<(), StoreError> {
    exec(c, |s| {
        s.push("UPDATE content_items SET parent_kind = ")
            .bind_text(parent.0);
        s.push(", parent_id = ").bind_text(parent.1);
        s.push(", title = ").bind_text(title);
        s.push(", personal_root = FALSE, owner_id = ");
        match to {
            Some(o) => s.bind_text(o),
            None => s.push("NULL"),
        };
        s.push(", updated_at = ").bind_text(now);
        s.push(" WHERE tenant_id = ").bind_text(tenant);
        s.push(" AND owner_id = ").bind_text(person);
        s.push(" AND personal_root = TRUE");
    })?;
    Ok(())
}

/// Gives every item of `kind` the person owns to `to` (or nobody).
pub fn set_owner_of_kind(
    c: &mut AnyConnection,
    tenant: &str,
    person: &str,
    kind: &str,
    to: Option<&str>,
    now: &str,
) -> Result<(), StoreError> {
    exec(c, |s| {
        s.push("UPDATE content_items SET owner_id = ");
        match to {
            Some(o) => s.bind_text(o),
            None => s.push("NULL"),
        };
        s.push(", updated_at = ").bind_text(now);
        s.push(" WHERE tenant_id = ").bind_text(tenant);
        s.push(" AND owner_id = ").bind_text(person);
        s.push(" AND kind = ").bind_text(kind);
    })?;
    Ok(())
}

/// Deletes every item of `kind` the person owns, with the shares on them;
/// children of the deleted items (possibly other people's) lose their parent.
pub fn delete_of_kind(
    c: &mut AnyConnection,
    tenant: &str,
    person: &str,
    kind: &str,
) -> Result<(), StoreError> {
    exec(c, |s| {
        s.push("UPDATE content_items SET parent_kind = NULL, parent_id = NULL WHERE tenant_id = ")
            .bind_text(tenant);
        // Spelled out so the partial parent index applies.
        s.push(" AND parent_id IS NOT NULL AND parent_kind = ")
            .bind_text(kind);
        s.push(" AND parent_id IN (SELECT item_id FROM content_items WHERE tenant_id = ")
            .bind_text(tenant);
        s.push(" AND owner_id = ").bind_text(person);
        s.push(" AND kind = ").bind_text(kind);
        s.push(")");
    })?;
    exec(c, |s| {
        s.push("DELETE FROM content_shares WHERE tenant_id = ")
            .bind_text(tenant);
        s.push(" AND kind = ").bind_text(kind);
        s.push(" AND item_id IN (SELECT item_id FROM content_items WHERE tenant_id = ")
            .bind_text(tenant);
        s.push(" AND owner_id = ").bind_text(person);
        s.push(" AND kind = ").bind_text(kind);
        s.push(")");
    })?;
    exec(c, |s| {
        s.push("DELETE FROM content_items WHERE tenant_id = ")
            .bind_text(tenant);
        s.push(" AND owner_id = ").bind_text(person);
        s.push(" AND kind = ").bind_text(kind);
    })?;
    Ok(())
}

/// Deletes the person's user data of one category.
pub fn delete_user_data(
    c: &mut AnyConnection,
    tenant: &str,
    person: &str,
    category: &str,
) -> Result<(), StoreError> {
    exec(c, |s| {
        s.push("DELETE FROM user_data WHERE tenant_id = ")
            .bind_text(tenant);
        s.push(" AND user_id = ").bind_text(person);
        s.push(" AND category = ").bind_text(category);
    })?;
    Ok(())
}

/// Gives the person's user data of one category to `to`.
pub fn move_user_data(
    c: &mut AnyConnection,
    tenant: &str,
    person: &str,
    category: &str,
    to: &str,
    now: &str,
) -> Result<(), StoreError> {
    exec(c, |s| {
        s.push("UPDATE user_data SET user_id = ").bind_text(to);
        s.push(", updated_at = ").bind_text(now);
        s.push(" WHERE tenant_id = ").bind_text(tenant);
        s.push(" AND user_id = ").bind_text(person);
        s.push(" AND category = ").bind_text(category);
    })?;
    Ok(())
}

/// Removes every share granted to the person.
pub fn remove_shares_to(
    c: &mut AnyConnection,
    tenant: &str,
    person: &str,
) -> Result<(), StoreError> {
    exec(c, |s| {
        s.push("DELETE FROM content_shares WHERE tenant_id = ")
            .bind_text(tenant);
        s.push(" AND user_id = ").bind_text(person);
    })?;
    Ok(())
}

/// Removes every SSO subject of the person.
pub fn remove_all_sso(c: &mut AnyConnection, tenant: &str, person: &str) -> Result<(), StoreError> {
    diesel::delete(
        sso_subjects::table
            .filter(sso_subjects::tenant_id.eq(tenant))
            .filter(sso_subjects::user_id.eq(person)),
    )
    .execute(c)?;
    Ok(())
}

/// Gives everything `from` owns to `to`; returns how many items moved.
pub fn move_all_items(
    c: &mut AnyConnection,
    tenant: &str,
    from: &str,
    to: &str,
    now: &str,
) -> Result<usize, StoreError> {
    exec(c, |s| {
        s.push("UPDATE content_items SET owner_id = ").bind_text(to);
        s.push(", updated_at = ").bind_text(now);
        s.push(" WHERE tenant_id = ").bind_text(tenant);
        s.push(" AND owner_id = ").bind_text(from);
    })
}

/// Gives all of `from`'s user data to `to`; returns how many records moved.
pub fn move_all_user_data(
    c: &mut AnyConnection,
    tenant: &str,
    from: &str,
    to: &str,
    now: &str,
) -> Result<usize, StoreError> {
    exec(c, |s| {
        s.push("UPDATE user_data SET user_id = ").bind_text(to);
        s.push(", updated_at = ").bind_text(now);
        s.push(" WHERE tenant_id = ").bind_text(tenant);
        s.push(" AND user_id = ").bind_text(from);
    })
}

/// Gives one item to `to`; returns 0 when there is no such item.
pub fn set_item_owner(
    c: &mut AnyConnection,
    tenant: &str,
    kind: &str,
    id: &str,
    to: &str,
    now: &str,
) -> Result<usize, StoreError> {
    exec(c, |s| {
        s.push("UPDATE content_items SET owner_id = ").bind_text(to);
        s.push(", updated_at = ").bind_text(now);
        s.push(" WHERE tenant_id = ").bind_text(tenant);
        s.push(" AND kind = ").bind_text(kind);
        s.push(" AND item_id = ").bind_text(id);
    })
}

/// Gives every item of `owner` (every orphan when `None`), optionally of one
/// kind, to `to`, except the item `except` (kind, id); returns how many moved.
#[allow(clippy::too_many_arguments)]
pub fn set_owner_where(
    c: &mut AnyConnection,
    tenant: &str,
    owner: Option<&str>,
    kind: Option<&str>,
    except: (&str, &str),
    to: &str,
    now: &str,
) -> Result<usize, StoreError> {
    exec(c, |s| {
        s.push("UPDATE content_items SET owner_id = ").bind_text(to);
        s.push(", updated_at = ").bind_text(now);
        s.push(" WHERE tenant_id = ").bind_text(tenant);
        match owner {
            Some(o) => s.push(" AND owner_id = ").bind_text(o),
            None => s.push(" AND owner_id IS NULL"),
        };
        if let Some(k) = kind {
            s.push(" AND kind = ").bind_text(k);
        }
        s.push(" AND NOT (kind = ")
            .bind_text(except.0)
            .push(" AND item_id = ")
            .bind_text(except.1)
            .push(")");
    })
}

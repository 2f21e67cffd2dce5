//! Bulk loading for benchmarks and tests: multi-row INSERTs of rows the caller
//! built with the library's own normalisation (`scim::resource::normalize`,
//! `user_keys`), so they are exactly what the server would write. The
//! load driver's `seed` and the tests that need thousands of users use it;
//! the server never does. The caller chooses the transactions.

use super::StoreError;
use super::db::{AnyConnection, Count};
use super::sql::{Bind, Sql, execute_sql, load_sql};
use super::users::UserRow;
use crate::scim::resource::UserKeys;

/// How many users the tenant holds (all states).
pub fn user_count(c: &mut AnyConnection, tenant: &str) -> Result<i64, StoreError> {
    let mut s = Sql::default();
    s.push("SELECT COUNT(*) AS n FROM users WHERE tenant_id = ")
        .bind_text(tenant);
    Ok(load_sql::<Count>(c, &s)?.first().map_or(0, |r| r.n))
}

/// Adds `members` (user ids) to a group in one statement.
pub fn insert_members(
    c: &mut AnyConnection,
    tenant: &str,
    group: &str,
    members: &[String],
    at: &str,
) -> Result<(), StoreError> {
    if members.is_empty() {
        return Ok(());
    }
    let mut s = Sql::default();
    s.push("INSERT INTO group_members (group_id, member_id, tenant_id, member_type, created_at) VALUES ");
    for (n, id) in members.iter().enumerate() {
        if n > 0 {
            s.push(", ");
        }
        s.push("(")
            .bind_text(group)
            .push(", ")
            .bind_text(id.clone())
            .push(", ");
        s.bind_text(tenant)
            .push(", 'User', ")
            .bind_text(at)
            .push(")");
    }
    execute_sql(c, &s).map(|_| ())
}

/// Refreshes the planner's statistics after a bulk load.
pub fn analyze(c: &mut AnyConnection) -> Result<(), StoreError> {
    execute_sql(
        c,
        &Sql {
            text: "ANALYZE".into(),
            binds: vec![],
        },
    )
    .map(|_| ())
}

fn opt(s: &mut Sql, v: &Option<String>) {
    match v {
        Some(v) => s.bind_text(v.clone()),
        None => s.push("NULL"),
    };
}

pub fn insert_users(c: &mut AnyConnection, rows: &[(UserRow, UserKeys)]) -> Result<(), StoreError> {
    let mut s = Sql::default();
    s.push("INSERT INTO users (id, tenant_id, state, user_name, user_name_key, external_id, display_name_key, given_name_key, family_name_key, active, manager_id, suspended_at, data, created_at, updated_at, version, legal_hold, manager_key, search) VALUES ");
    let mut e = Sql::default();
    e.push("INSERT INTO user_emails (user_id, position, tenant_id, value, value_key, kind, is_primary) VALUES ");
    let mut emails = 0;
    for (n, (r, k)) in rows.iter().enumerate() {
        if n > 0 {
            s.push(", ");
        }
        s.push("(")
            .bind_text(r.id.clone())
            .push(", ")
            .bind_text(r.tenant_id.clone())
            .push(", ");
        s.bind_text(r.state.as_str())
            .push(", ")
            .bind_text(r.user_name.clone())
            .push(", ");
        s.bind_text(r.user_name_key.clone()).push(", ");
        for v in [
            &r.external_id,
            &r.display_name_key,
            &r.given_name_key,
            &r.family_name_key,
        ] {
            opt(&mut s, v);
            s.push(", ");
        }
        s.bind(Bind::Bool(r.active)).push(", ");
        opt(&mut s, &r.manager_id);
        s.push(", NULL, ")
            .bind_text(r.data.clone())
            .push(", ")
            .bind_text(r.created_at.clone())
            .push(", ");
        s.bind_text(r.updated_at.clone())
            .push(", 1, ")
            .bind(Bind::Bool(false))
            .push(", ");
        opt(&mut s, &r.manager_key);
        s.push(", ");
        opt(&mut s, &r.search);
        s.push(")");
        for (p, m) in k.emails.iter().enumerate() {
            if emails > 0 {
                e.push(", ");
            }
            emails += 1;
            e.push("(")
                .bind_text(r.id.clone())
                .push(&format!(", {p}, "))
                .bind_text(r.tenant_id.clone())
                .push(", ");
            e.bind_text(m.value.clone())
                .push(", ")
                .bind_text(m.value_key.clone())
                .push(", ");
            opt(&mut e, &m.kind);
            e.push(", ").bind(Bind::Bool(m.primary)).push(")");
        }
    }
    execute_sql(c, &s)?;
    if emails > 0 {
        execute_sql(c, &e)?;
    }
    Ok(())
}

pub fn insert_items<'a>(
    c: &mut AnyConnection,
    t: &str,
    now: &str,
    items: impl Iterator<Item = (&'a str, String, &'a str)>,
) -> Result<(), StoreError> {
    let mut s = Sql::default();
    s.push("INSERT INTO content_items (tenant_id, kind, item_id, owner_id, personal_root, created_at, updated_at) VALUES ");
    for (n, (kind, item, owner)) in items.enumerate() {
        if n > 0 {
            s.push(", ");
        }
        s.push("(")
            .bind_text(t)
            .push(&format!(", '{kind}', "))
            .bind_text(item)
            .push(", ");
        s.bind_text(owner)
            .push(", ")
            .bind(Bind::Bool(false))
            .push(", ")
            .bind_text(now)
            .push(", ")
            .bind_text(now)
            .push(")");
    }
    execute_sql(c, &s).map(|_| ())
}

//! Paging: one page of a list, by offset (`startIndex`) or after a cursor
//! position, in a total and stable order, counted only when needed.

use super::error::StoreError;
use super::pool::AnyConnection;
use super::sql::{Bind, Sql, load_sql};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::sqlite::Sqlite;

/// `SELECT COUNT(*) AS n …`
#[derive(QueryableByName)]
pub struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub n: i64,
}

/// The order of a list: `sortBy`'s expression (if any), then creation, then id.
#[derive(Debug, Clone, Default)]
pub struct Order {
    pub sort: Option<String>,
    pub descending: bool,
}

/// Which rows a page holds.
#[derive(Debug, Clone)]
pub enum Window {
    /// Skip this many rows (`startIndex` paging: O(offset), by nature).
    Offset(i64),
    /// The rows after a position (cursor paging: constant cost at any depth).
    After(Option<crate::scim::cursor::Position>),
}

/// A listed row with the value it was sorted by.
pub trait Positioned {
    fn position(&self) -> crate::scim::cursor::Position;
}

pub struct Page<R> {
    pub rows: Vec<R>,
    /// `None` when not counted (cursor pages after the first).
    pub total: Option<i64>,
    /// More rows follow (cursor paging only).
    pub more: bool,
}

/// One page of `from` (a table and its alias) matching `wh`, in `order`.
/// Rows carry their sort value as `sort_key`. Ties in the sort value fall back
/// to creation order and id, so the order is total and stable between pages.
pub(in crate::store) fn paged<R>(
    conn: &mut AnyConnection,
    from: &str,
    alias: &str,
    wh: Sql,
    order: &Order,
    window: &Window,
    limit: i64,
) -> Result<Page<R>, StoreError>
where
    R: QueryableByName<Sqlite> + QueryableByName<Pg> + 'static,
{
    paged_with(conn, from, alias, "", wh, order, window, limit)
}

/// `paged`, each row also carrying the columns `extra` selects (`", expr AS
/// name"`, fixed SQL without values): what a page needs from other tables,
/// read in the same statement.
#[allow(clippy::too_many_arguments)]
pub(in crate::store) fn paged_with<R>(
    conn: &mut AnyConnection,
    from: &str,
    alias: &str,
    extra: &str,
    wh: Sql,
    order: &Order,
    window: &Window,
    limit: i64,
) -> Result<Page<R>, StoreError>
where
    R: QueryableByName<Sqlite> + QueryableByName<Pg> + 'static,
{
    let counted = !matches!(window, Window::After(Some(_)));
    let count = |conn: &mut AnyConnection| -> Result<i64, StoreError> {
        let mut count = Sql::default();
        count
            .push(&format!("SELECT COUNT(*) AS n FROM {from}"))
            .append(wh.clone());
        Ok(load_sql::<Count>(conn, &count)?
            .first()
            .map(|r| r.n)
            .unwrap_or(0))
    };
    if limit == 0 {
        return Ok(Page {
            rows: vec![],
            total: counted.then(|| count(conn)).transpose()?,
            more: false,
        });
    }
    let page = page_query_with(from, alias, extra, wh.clone(), order, window, limit);
    let mut rows = load_sql::<R>(conn, &page)?;
    let fetched = i64::try_from(rows.len()).unwrap_or(i64::MAX);
    let more = matches!(window, Window::After(_)) && fetched > limit;
    rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    // A page that ends before `limit` reached the last match, so the total is
    // known without a COUNT: an IdP's `userName eq` lookup is one statement.
    let total = match window {
        Window::After(Some(_)) => None,
        Window::Offset(skip) if fetched < limit && (fetched > 0 || *skip == 0) => {
            Some(skip + fetched)
        }
        Window::After(None) if fetched <= limit => Some(fetched),
        _ => Some(count(conn)?),
    };
    Ok(Page { rows, total, more })
}

/// The `SELECT` of one page (see `paged`); tests EXPLAIN it through `users::list_sql`.
pub(in crate::store) fn page_query(
    from: &str,
    alias: &str,
    wh: Sql,
    order: &Order,
    window: &Window,
    limit: i64,
) -> Sql {
    page_query_with(from, alias, "", wh, order, window, limit)
}

/// `page_query` with `extra` columns (see `paged_with`).
fn page_query_with(
    from: &str,
    alias: &str,
    extra: &str,
    wh: Sql,
    order: &Order,
    window: &Window,
    limit: i64,
) -> Sql {
    let (dir, cmp) = if order.descending {
        ("DESC", "<")
    } else {
        ("ASC", ">")
    };
    let (c, i) = (format!("{alias}.created_at"), format!("{alias}.id"));
    let key = order.sort.as_deref();
    let mut page = Sql::default();
    page.push(&format!(
        "SELECT {alias}.*, {} AS sort_key{extra} FROM {from}",
        key.map(str::to_string)
            .unwrap_or_else(|| "CAST(NULL AS TEXT)".into())
    ))
    .append(wh);
    if let Window::After(Some(at)) = window {
        // The rows after `at` in this order: (key, created, id) beyond it, with
        // absent keys last ascending and first descending.
        let mut tie = Sql::default();
        tie.push(&format!("({c}, {i}) {cmp} ("))
            .bind_text(at.created.clone())
            .push(", ")
            .bind_text(at.id.clone())
            .push(")");
        page.push(" AND ");
        match (key, &at.sort, order.descending) {
            (None, _, _) => {
                page.append(tie);
            }
            (Some(k), Some(v), false) => {
                page.push(&format!("({k} > "))
                    .bind_text(v.clone())
                    .push(&format!(" OR ({k} = "))
                    .bind_text(v.clone())
                    .push(" AND ")
                    .append(tie)
                    .push(&format!(") OR {k} IS NULL)"));
            }
            (Some(k), None, false) => {
                page.push(&format!("({k} IS NULL AND "))
                    .append(tie)
                    .push(")");
            }
            (Some(k), Some(v), true) => {
                page.push(&format!("({k} < "))
                    .bind_text(v.clone())
                    .push(&format!(" OR ({k} = "))
                    .bind_text(v.clone())
                    .push(" AND ")
                    .append(tie)
                    .push("))");
            }
            (Some(k), None, true) => {
                page.push(&format!("(({k} IS NULL AND "))
                    .append(tie)
                    .push(&format!(") OR {k} IS NOT NULL)"));
            }
        }
    }
    page.push(" ORDER BY ");
    if let Some(k) = key {
        let nulls = if order.descending { "FIRST" } else { "LAST" };
        page.push(&format!("{k} {dir} NULLS {nulls}, "));
    }
    page.push(&format!("{c} {dir}, {i} {dir} LIMIT "));
    let fetch = match window {
        // One more than asked tells whether another page follows.
        Window::After(_) => limit.saturating_add(1),
        Window::Offset(_) => limit,
    };
    page.bind(Bind::BigInt(fetch));
    // No `OFFSET 0`: while the offset is a parameter PostgreSQL's generic
    // plan is costed as if it skipped rows, so the plan cache kept choosing
    // custom plans and planned every lookup anew (0.13 ms of planning for a
    // 0.02 ms execution; BENCHMARKS.md "Round 6").
    if let Window::Offset(offset) = window
        && *offset > 0
    {
        page.push(" OFFSET ").bind(Bind::BigInt(*offset));
    }
    page
}

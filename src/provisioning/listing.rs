//! From list parameters to a page query and back to a ListResponse: shared by
//! `GET /Users`, `GET /Groups` and their `/.search`.

use crate::scim::cursor::{self, Position};
use crate::scim::error::ScimError;
use crate::scim::list::{ListParams, Paging, cursor_response, list_response};
use crate::store::db::{Backend, Order, Page, Positioned, Sql, Window};
use crate::store::filter_sql::{self, Target};
use serde_json::Value;

pub struct Plan {
    pub filter: Option<Sql>,
    pub order: Order,
    pub window: Window,
    fingerprint: String,
}

/// Translates filter, sort and paging for `target` (all errors are the client's).
pub fn plan(
    target: &Target,
    resource_type: &str,
    backend: Backend,
    tenant: &str,
    params: &ListParams,
) -> Result<Plan, ScimError> {
    let filter = params
        .filter
        .as_ref()
        .map(|f| filter_sql::translate(target, backend, tenant, f))
        .transpose()?;
    let order = Order {
        sort: params
            .sort
            .as_ref()
            .map(|s| filter_sql::sort_expr(target, backend, &s.by))
            .transpose()?,
        descending: params.sort.as_ref().is_some_and(|s| s.descending),
    };
    let fingerprint = params.fingerprint(resource_type);
    let window = match &params.paging {
        Paging::Index(i) => Window::Offset(i - 1),
        Paging::Cursor(None) => Window::After(None),
        Paging::Cursor(Some(token)) => Window::After(Some(cursor::decode(&fingerprint, token)?)),
    };
    Ok(Plan {
        filter,
        order,
        window,
        fingerprint,
    })
}

/// Keeps the page's leading rows whose stored sizes add up to at most
/// `budget` bytes (always the first): a cut page says more rows follow, so
/// index paging answers fewer `itemsPerPage` with the same `totalResults`
/// and a cursor's next position is the last row kept.
pub fn fit<R>(page: &mut Page<R>, budget: usize, size: impl Fn(&R) -> usize) {
    let mut used = 0usize;
    let mut keep = 0;
    for r in &page.rows {
        used = used.saturating_add(size(r));
        if keep > 0 && used > budget {
            break;
        }
        keep += 1;
    }
    if keep < page.rows.len() {
        page.rows.truncate(keep);
        page.more = true;
    }
}

/// The ListResponse for a page: index paging as RFC 7644, cursor paging as RFC 9865.
pub fn respond<R: Positioned>(
    params: &ListParams,
    plan: &Plan,
    page: &Page<R>,
    resources: Vec<Value>,
) -> Value {
    match &params.paging {
        Paging::Index(start) => list_response(page.total.unwrap_or_default(), *start, resources),
        Paging::Cursor(_) => {
            let total = page.total.unwrap_or(match &plan.window {
                Window::After(Some(at)) => at.total,
                _ => 0,
            });
            let next = page.rows.last().filter(|_| page.more).map(|r| {
                cursor::encode(
                    &plan.fingerprint,
                    &Position {
                        total,
                        ..r.position()
                    },
                )
            });
            cursor_response(total, resources, next)
        }
    }
}

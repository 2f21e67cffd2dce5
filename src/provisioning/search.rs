//! `POST /.search` at the root: Users then Groups, paged by index as one list.
//! A filter naming an attribute only one type has matches nothing of the other
//! type (RFC 7644 §3.4.3); it is an error only when neither type can evaluate it.
//! `sortBy` orders within each type. Cursor paging is offered per resource
//! type (a cursor there is a position in one ordered table).

use super::{ServiceError, Services, listing};
use crate::domain::Actor;
use crate::scim::error::ScimError;
use crate::scim::list::{ListParams, Paging, list_response};
use crate::store::db::Window;
use crate::store::{self, filter_sql};

pub fn search_all(
    svc: &Services,
    caller: &Actor,
    params: &ListParams,
    base: &str,
) -> Result<serde_json::Value, ServiceError> {
    let Paging::Index(start) = params.paging else {
        return Err(ScimError::invalid_value(
            "cursor paging is offered on /Users/.search and /Groups/.search; the root /.search pages by startIndex",
        )
        .into());
    };
    let backend = svc.db.backend();
    let (users, groups) = match (
        listing::plan(
            &filter_sql::USERS,
            "User",
            backend,
            &caller.tenant_id,
            params,
        ),
        listing::plan(
            &filter_sql::GROUPS,
            "Group",
            backend,
            &caller.tenant_id,
            params,
        ),
    ) {
        (Err(e), Err(_)) => return Err(e.into()),
        (u, g) => (u.ok(), g.ok()),
    };
    let offset = start - 1;
    // Rows, memberships and members are read on the pooled connection;
    // rendering and projection run after it is returned.
    let (users_page, memberships, groups_page, members) =
        svc.db.read(|c| -> Result<_, ServiceError> {
            let mut users_total = 0;
            let (mut users_page, mut memberships) = (None, vec![]);
            if let Some(plan) = &users {
                let page = store::users::list(
                    c,
                    &caller.tenant_id,
                    plan.filter.clone(),
                    &plan.order,
                    &Window::Offset(offset),
                    params.count,
                )?;
                users_total = page.total.unwrap_or_default();
                memberships =
                    super::users::page_memberships(c, caller, &page.rows, &params.projection)?;
                users_page = Some(page);
            }
            let (mut groups_page, mut members) = (None, vec![]);
            if let Some(plan) = &groups {
                let shown = users_page.as_ref().map_or(0, |p| p.rows.len());
                let left = params.count - i64::try_from(shown).unwrap_or(i64::MAX);
                let group_offset = (offset - users_total).max(0);
                let page = store::groups::list(
                    c,
                    &caller.tenant_id,
                    plan.filter.clone(),
                    &plan.order,
                    &Window::Offset(group_offset),
                    left.max(0),
                )?;
                members = page
                    .rows
                    .iter()
                    .map(|r| super::groups::members_for(c, caller, &r.item, &params.projection))
                    .collect::<Result<Vec<_>, _>>()?;
                groups_page = Some(page);
            }
            Ok((users_page, memberships, groups_page, members))
        })?;
    let mut resources = Vec::new();
    let mut total = 0;
    if let Some(page) = users_page {
        total += page.total.unwrap_or_default();
        resources.extend(super::users::render_listed(
            &page.rows,
            &memberships,
            &params.projection,
            base,
        )?);
    }
    if let Some(page) = groups_page {
        total += page.total.unwrap_or_default();
        for (r, m) in page.rows.iter().zip(members) {
            resources.push(super::groups::render_row(
                &r.item,
                m,
                &params.projection,
                base,
            )?);
        }
    }
    Ok(list_response(total, start, resources))
}

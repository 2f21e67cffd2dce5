//! Listing users: the plan, the page read and its rendering.

use super::*;

pub fn list(
    svc: &Services,
    caller: &Actor,
    params: &ListParams,
    base: &str,
) -> Result<Value, ServiceError> {
    let plan = list_plan(svc, caller, params)?;
    fetch_list(svc, caller, params, plan)?.render(params, base)
}

/// A page of users as read on a pooled connection, with the memberships its
/// rendering needs; rendered (`UserPage::render`) after the connection is
/// returned.
pub struct UserPage {
    pub(super) plan: listing::Plan,
    pub(super) page: store::db::Page<store::users::ListedUser>,
    pub(super) memberships: Memberships,
}

/// The list plan for `params` (all errors are the client's).
pub fn list_plan(
    svc: &Services,
    caller: &Actor,
    params: &ListParams,
) -> Result<listing::Plan, ServiceError> {
    Ok(listing::plan(
        &filter_sql::USERS,
        "User",
        svc.db.backend(),
        &caller.tenant_id,
        params,
    )?)
}

/// Reads the page `plan` selects and its memberships.
pub fn fetch_list(
    svc: &Services,
    caller: &Actor,
    params: &ListParams,
    plan: listing::Plan,
) -> Result<UserPage, ServiceError> {
    let groups = params.projection.wants(&USER_TYPE, "groups");
    let (page, memberships) = svc.db.read(|c| -> Result<_, ServiceError> {
        let (mut page, mut memberships) = if groups {
            // The page and its memberships: one statement on PostgreSQL.
            store::users::list_with_groups(
                c,
                &caller.tenant_id,
                plan.filter.clone(),
                &plan.order,
                &plan.window,
                params.count,
            )?
        } else {
            let page = store::users::list(
                c,
                &caller.tenant_id,
                plan.filter.clone(),
                &plan.order,
                &plan.window,
                params.count,
            )?;
            (page, vec![])
        };
        listing::fit(&mut page, svc.limits.max_list_bytes, |r| r.item.data.len());
        if !memberships.is_empty() {
            let kept: std::collections::HashSet<&str> =
                page.rows.iter().map(|r| r.item.id.as_str()).collect();
            memberships.retain(|(uid, _, _)| kept.contains(uid.as_str()));
        }
        Ok((page, memberships))
    })?;
    Ok(UserPage {
        plan,
        page,
        memberships,
    })
}

/// `memberships_of` for listed rows.
pub(crate) fn page_memberships(
    conn: &mut AnyConnection,
    caller: &Actor,
    rows: &[store::users::ListedUser],
    projection: &Projection,
) -> Result<Memberships, ServiceError> {
    if !projection.wants(&USER_TYPE, "groups") {
        return Ok(vec![]);
    }
    let ids: Vec<String> = rows.iter().map(|r| r.item.id.clone()).collect();
    Ok(store::users::groups_of(conn, &caller.tenant_id, &ids)?)
}

impl UserPage {
    /// The bytes the rendering reads: the stored documents, and the groups
    /// it lists (a user may be in any number of them).
    pub fn stored_bytes(&self) -> usize {
        let docs: usize = self.page.rows.iter().map(|r| r.item.data.len()).sum();
        let groups: usize = self
            .memberships
            .iter()
            .map(|(u, g, name)| u.len() + g.len() + name.len() + 64)
            .sum();
        docs + groups
    }

    pub fn render(self, params: &ListParams, base: &str) -> Result<Value, ServiceError> {
        let resources =
            render_listed(&self.page.rows, &self.memberships, &params.projection, base)?;
        Ok(listing::respond(params, &self.plan, &self.page, resources))
    }
}

/// Renders listed users (no connection needed: memberships read before).
pub(crate) fn render_listed(
    rows: &[store::users::ListedUser],
    memberships: &Memberships,
    projection: &Projection,
    base: &str,
) -> Result<Vec<Value>, ServiceError> {
    render_with(rows.iter().map(|r| &r.item), memberships, projection, base)
}

//! `POST /.search` at the root: Users then Groups, paged as one list.
//! A filter naming an attribute only one type has matches nothing of the other
//! type (RFC 7644 §3.4.3); it is an error only when neither type can evaluate it.

use super::{Caller, ServiceError, Services};
use crate::scim::list::{ListParams, list_response};
use crate::store::{self, filter_sql};

pub fn search_all(
    svc: &Services,
    caller: &Caller,
    params: &ListParams,
    base: &str,
) -> Result<serde_json::Value, ServiceError> {
    let translate = |t: &filter_sql::Target| {
        params
            .filter
            .as_ref()
            .map(|f| filter_sql::translate(t, svc.db.backend(), f))
            .transpose()
    };
    let (users_where, groups_where) = match (
        translate(&filter_sql::USERS),
        translate(&filter_sql::GROUPS),
    ) {
        (Err(e), Err(_)) => return Err(e.into()),
        (u, g) => (u, g),
    };
    let offset = params.start_index - 1;
    svc.db.read(|c| {
        let mut resources = Vec::new();
        let mut total = 0;
        let mut users_total = 0;
        if let Ok(w) = users_where {
            let limit = params.count;
            let (t, rows) = store::users::list(c, &caller.tenant_id, w, offset, limit)?;
            users_total = t;
            total += t;
            resources.extend(super::users::render_rows(
                c,
                caller,
                &rows,
                &params.projection,
                base,
            )?);
        }
        if let Ok(w) = groups_where {
            let left = params.count - i64::try_from(resources.len()).unwrap_or(i64::MAX);
            let group_offset = (offset - users_total).max(0);
            let (t, rows) =
                store::groups::list(c, &caller.tenant_id, w, group_offset, left.max(0))?;
            total += t;
            for r in &rows {
                resources.push(super::groups::render_row(
                    c,
                    caller,
                    r,
                    &params.projection,
                    base,
                )?);
            }
        }
        Ok(list_response(total, params.start_index, resources))
    })
}

//! The database's side of the metrics gauges: a few bounded reads across
//! tenants (operational totals, never tenant data), each answered from an
//! index. Run on a blocking thread when `/metrics` is scraped.

use super::error::StoreError;
use super::pool::AnyConnection;
use super::schema::{disposals, outbox, tenants, webhook_cursors as wc};
use crate::domain::DisposalState;
use diesel::prelude::*;
use std::collections::HashMap;

/// At most this many webhook endpoints are reported (one series each).
pub const MAX_ENDPOINTS: i64 = 1000;

/// Open disposals per state (`scheduled`, `held`), all tenants (index
/// `disposals_due`, whose first column is the state).
pub fn disposals_open(c: &mut AnyConnection) -> Result<Vec<(DisposalState, i64)>, StoreError> {
    let mut out = Vec::new();
    for state in DisposalState::OPEN {
        let n: i64 = disposals::table
            .filter(disposals::state.eq(state.as_str()))
            .count()
            .get_result(c)?;
        out.push((state, n));
    }
    Ok(out)
}

/// One endpoint's delivery backlog.
#[derive(Debug, Clone)]
pub struct Backlog {
    pub tenant_id: String,
    pub tenant_name: String,
    pub endpoint: String,
    /// Events after the endpoint's cursor: the tenant's last `seq` minus the
    /// cursor's (`seq`s are dense per tenant: the counter row rolls back with
    /// its transaction).
    pub pending: i64,
    pub paused: bool,
}

/// Every endpoint that has a cursor (delivered to, or tried, at least once),
/// up to `MAX_ENDPOINTS`; one index lookup per tenant for its last `seq`.
pub fn webhook_backlogs(c: &mut AnyConnection) -> Result<Vec<Backlog>, StoreError> {
    let cursors: Vec<(String, String, i64, bool)> = wc::table
        .select((wc::tenant_id, wc::endpoint, wc::last_seq, wc::paused))
        .order((wc::tenant_id, wc::endpoint))
        .limit(MAX_ENDPOINTS)
        .load(c)?;
    let mut tenant_info: HashMap<String, (String, i64)> = HashMap::new();
    let mut out = Vec::with_capacity(cursors.len());
    for (tenant_id, endpoint, last_seq, paused) in cursors {
        if !tenant_info.contains_key(&tenant_id) {
            let name: String = tenants::table
                .filter(tenants::id.eq(&tenant_id))
                .select(tenants::name)
                .first(c)
                .optional()?
                .unwrap_or_default();
            let top: Option<i64> = outbox::table
                .filter(outbox::tenant_id.eq(&tenant_id))
                .select(diesel::dsl::max(outbox::seq))
                .first(c)?;
            tenant_info.insert(tenant_id.clone(), (name, top.unwrap_or(0)));
        }
        let (name, top) = tenant_info.get(&tenant_id).cloned().unwrap_or_default();
        out.push(Backlog {
            tenant_id,
            tenant_name: name,
            endpoint,
            pending: (top - last_seq).max(0),
            paused,
        });
    }
    Ok(out)
}

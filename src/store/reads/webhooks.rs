//! Delivery state of the tenant's webhook endpoints.

use crate::store::db::AnyConnection;
use crate::store::error::StoreError;
use crate::store::schema::webhook_cursors as wc;
use diesel::prelude::*;

#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
pub struct EndpointState {
    pub endpoint: String,
    pub last_delivered_seq: i64,
    pub failed_attempts: i32,
    pub next_attempt_at: String,
    pub paused: bool,
    /// The last failed delivery's reason and when (none yet: `None`).
    pub last_error: Option<String>,
    pub last_error_at: Option<String>,
}

/// One row per endpoint, by endpoint URL (bounded by the configured endpoints).
pub fn endpoints(c: &mut AnyConnection, tenant: &str) -> Result<Vec<EndpointState>, StoreError> {
    Ok(wc::table
        .filter(wc::tenant_id.eq(tenant))
        .select((
            wc::endpoint,
            wc::last_seq,
            wc::attempts,
            wc::next_attempt_at,
            wc::paused,
            wc::last_error,
            wc::last_error_at,
        ))
        .order(wc::endpoint)
        .load(c)?)
}

/// The id of the tenant's first event after `after`: the one an endpoint
/// whose cursor stands at `after` is waiting on (`None`: caught up).
pub fn next_event(
    c: &mut AnyConnection,
    tenant: &str,
    after: i64,
) -> Result<Option<String>, StoreError> {
    use crate::store::schema::outbox;
    Ok(outbox::table
        .filter(outbox::tenant_id.eq(tenant))
        .filter(outbox::seq.gt(after))
        .order(outbox::seq)
        .select(outbox::id)
        .first(c)
        .optional()?)
}

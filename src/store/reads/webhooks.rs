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
        ))
        .order(wc::endpoint)
        .load(c)?)
}

//! Webhook delivery cursors: the admin's controls over them.

use super::db::AnyConnection;
use super::error::StoreError;
use super::schema::webhook_cursors as wc;
use diesel::prelude::*;

/// Un-pauses every paused endpoint of the tenant, due again at `now`, its
/// failure count reset; returns how many were paused.
pub fn resume_paused(c: &mut AnyConnection, tenant: &str, now: &str) -> Result<usize, StoreError> {
    Ok(diesel::update(
        wc::table
            .filter(wc::tenant_id.eq(tenant))
            .filter(wc::paused.eq(true)),
    )
    .set((
        wc::paused.eq(false),
        wc::attempts.eq(0),
        wc::next_attempt_at.eq(now),
    ))
    .execute(c)?)
}

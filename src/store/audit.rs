//! The audit log: one row per administrative or deprovisioning act.

use super::db::AnyConnection;
use super::error::StoreError;
use super::schema::audit_log;
use diesel::prelude::*;

/// Appends one audit row in the caller's transaction. `detail` is a JSON
/// object's text, when the act has one.
#[allow(clippy::too_many_arguments)]
pub fn write(
    c: &mut AnyConnection,
    tenant: &str,
    now: &str,
    actor: &str,
    action: &str,
    subject_type: &str,
    subject_id: &str,
    detail: Option<&str>,
) -> Result<(), StoreError> {
    let id = super::new_id().to_string();
    crate::per_backend!(c, c => diesel::insert_into(audit_log::table)
        .values((
            audit_log::id.eq(&id),
            audit_log::tenant_id.eq(tenant),
            audit_log::at.eq(now),
            audit_log::actor.eq(actor),
            audit_log::action.eq(action),
            audit_log::subject_type.eq(subject_type),
            audit_log::subject_id.eq(subject_id),
            audit_log::detail.eq(detail),
        ))
        .execute(c))?;
    Ok(())
}

//! The tenant's audit log, oldest first.

use super::Page;
use crate::store::db::AnyConnection;
use crate::store::error::StoreError;
use crate::store::schema::audit_log;
use diesel::prelude::*;

#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
pub struct AuditRow {
    pub id: String,
    pub at: String,
    pub actor: String,
    pub action: String,
    pub subject_type: String,
    pub subject_id: String,
    /// A JSON document, when the action has details.
    pub detail: Option<String>,
}

pub fn page(c: &mut AnyConnection, tenant: &str, page: Page) -> Result<Vec<AuditRow>, StoreError> {
    Ok(audit_log::table
        .filter(audit_log::tenant_id.eq(tenant))
        .select((
            audit_log::id,
            audit_log::at,
            audit_log::actor,
            audit_log::action,
            audit_log::subject_type,
            audit_log::subject_id,
            audit_log::detail,
        ))
        .order((audit_log::at, audit_log::id))
        .offset(page.offset)
        .limit(page.limit)
        .load(c)?)
}

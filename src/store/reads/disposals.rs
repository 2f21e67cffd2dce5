//! Disposals as the admin lists them.

use super::Page;
use crate::domain::{Cause, DisposalState};
use crate::store::db::AnyConnection;
use crate::store::error::StoreError;
use crate::store::schema::disposals;
use diesel::prelude::*;

#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
pub struct DisposalRow {
    pub id: String,
    pub user_id: String,
    pub state: DisposalState,
    pub cause: Cause,
    pub due_at: String,
    pub plan_hash: Option<String>,
    /// JSON object of counts per action, written by the executor.
    pub counts: Option<String>,
    pub created_at: String,
    pub completed_at: Option<String>,
}

type Columns = (
    disposals::id,
    disposals::user_id,
    disposals::state,
    disposals::cause,
    disposals::due_at,
    disposals::plan_hash,
    disposals::counts,
    disposals::created_at,
    disposals::completed_at,
);

const COLUMNS: Columns = (
    disposals::id,
    disposals::user_id,
    disposals::state,
    disposals::cause,
    disposals::due_at,
    disposals::plan_hash,
    disposals::counts,
    disposals::created_at,
    disposals::completed_at,
);

/// Newest first; only those in `state` when one is given.
pub fn list(
    c: &mut AnyConnection,
    tenant: &str,
    state: Option<DisposalState>,
    page: Page,
) -> Result<Vec<DisposalRow>, StoreError> {
    let mut q = disposals::table
        .filter(disposals::tenant_id.eq(tenant.to_string()))
        .into_boxed();
    if let Some(s) = state {
        q = q.filter(disposals::state.eq(s));
    }
    Ok(q.select(COLUMNS)
        .order((disposals::created_at.desc(), disposals::id))
        .offset(page.offset)
        .limit(page.limit)
        .load(c)?)
}

pub fn find(
    c: &mut AnyConnection,
    tenant: &str,
    id: &str,
) -> Result<Option<DisposalRow>, StoreError> {
    Ok(disposals::table
        .filter(disposals::tenant_id.eq(tenant))
        .filter(disposals::id.eq(id))
        .select(COLUMNS)
        .first(c)
        .optional()?)
}

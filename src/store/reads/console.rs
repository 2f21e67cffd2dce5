//! What the admin console shows besides the admin API's reads: people by
//! userName prefix, email or externalId; a person in any state; items owned
//! by kind; the overview's lists and counts; the audit log filtered and
//! paged by key. Every query is scoped by the tenant and bounded by a limit.

use crate::domain::{DisposalState, UserState};
use crate::store::db::AnyConnection;
use crate::store::error::StoreError;
use crate::store::schema::{
    audit_log, content_items, disposals, tenant_counters, user_emails, users,
};
use crate::store::users::visible;
use diesel::prelude::*;

/// A person as the console lists them (no other PII than the userName,
/// which a disposed person's stub no longer has).
#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
pub struct PersonRow {
    pub id: String,
    pub user_name: String,
    pub user_name_key: String,
    pub state: UserState,
    pub legal_hold: bool,
    pub suspended_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

type PersonColumns = (
    users::id,
    users::user_name,
    users::user_name_key,
    users::state,
    users::legal_hold,
    users::suspended_at,
    users::created_at,
    users::updated_at,
);

const PERSON: PersonColumns = (
    users::id,
    users::user_name,
    users::user_name_key,
    users::state,
    users::legal_hold,
    users::suspended_at,
    users::created_at,
    users::updated_at,
);

/// Visible people whose folded userName starts with `prefix` (every visible
/// person for an empty prefix), after the `after` key, at most `limit`, by
/// userName: a range on the `userName` index.
pub fn people_by_prefix(
    c: &mut AnyConnection,
    tenant: &str,
    prefix: &str,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<PersonRow>, StoreError> {
    let mut q = users::table
        .filter(users::tenant_id.eq(tenant.to_string()))
        .filter(visible())
        .into_boxed();
    if !prefix.is_empty() {
        q = q
            .filter(users::user_name_key.ge(prefix.to_string()))
            .filter(users::user_name_key.lt(format!("{prefix}\u{10FFFF}")));
    }
    if let Some(a) = after {
        q = q.filter(users::user_name_key.gt(a.to_string()));
    }
    Ok(q.select(PERSON)
        .order(users::user_name_key)
        .limit(limit)
        .load(c)?)
}

/// Visible people holding exactly this externalId or (folded) email.
pub fn people_by_identifier(
    c: &mut AnyConnection,
    tenant: &str,
    external_id: &str,
    email_key: &str,
    limit: i64,
) -> Result<Vec<PersonRow>, StoreError> {
    let mut out: Vec<PersonRow> = users::table
        .filter(users::tenant_id.eq(tenant))
        .filter(users::external_id.eq(external_id))
        .filter(visible())
        .select(PERSON)
        .limit(limit)
        .load(c)?;
    let by_email: Vec<String> = user_emails::table
        .filter(user_emails::tenant_id.eq(tenant))
        .filter(user_emails::value_key.eq(email_key))
        .select(user_emails::user_id)
        .limit(limit)
        .load(c)?;
    if !by_email.is_empty() {
        let more: Vec<PersonRow> = users::table
            .filter(users::tenant_id.eq(tenant))
            .filter(users::id.eq_any(&by_email))
            .filter(visible())
            .select(PERSON)
            .limit(limit)
            .load(c)?;
        for p in more {
            if !out.iter().any(|o| o.id == p.id) {
                out.push(p);
            }
        }
    }
    Ok(out)
}

/// The person with this id, in any state.
pub fn person(
    c: &mut AnyConnection,
    tenant: &str,
    id: &str,
) -> Result<Option<PersonRow>, StoreError> {
    Ok(users::table
        .filter(users::tenant_id.eq(tenant))
        .filter(users::id.eq(id))
        .select(PERSON)
        .first(c)
        .optional()?)
}

/// (id, userName, state) of these people (at most the ids given).
pub fn names_of(
    c: &mut AnyConnection,
    tenant: &str,
    ids: &[String],
) -> Result<Vec<(String, String, UserState)>, StoreError> {
    if ids.is_empty() {
        return Ok(vec![]);
    }
    Ok(users::table
        .filter(users::tenant_id.eq(tenant))
        .filter(users::id.eq_any(ids))
        .select((users::id, users::user_name, users::state))
        .load(c)?)
}

/// How many items the person owns, per kind (a handful of kinds).
pub fn owned_by_kind(
    c: &mut AnyConnection,
    tenant: &str,
    owner: &str,
) -> Result<Vec<(String, i64)>, StoreError> {
    Ok(content_items::table
        .filter(content_items::tenant_id.eq(tenant))
        .filter(content_items::owner_id.eq(owner))
        .group_by(content_items::kind)
        .select((content_items::kind, diesel::dsl::count_star()))
        .order(content_items::kind)
        .limit(100)
        .load(c)?)
}

/// The kinds of the tenant's orphaned items (for the filter), at most 100.
pub fn orphan_kinds(c: &mut AnyConnection, tenant: &str) -> Result<Vec<String>, StoreError> {
    Ok(content_items::table
        .filter(content_items::tenant_id.eq(tenant))
        .filter(content_items::owner_id.is_null())
        .select(content_items::kind)
        .distinct()
        .order(content_items::kind)
        .limit(100)
        .load(c)?)
}

/// A disposal with its person, as the overview lists them.
#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
pub struct DisposalListed {
    pub id: String,
    pub user_id: String,
    pub state: DisposalState,
    pub due_at: String,
    pub plan_hash: Option<String>,
    pub completed_at: Option<String>,
    pub user_name: String,
    pub user_state: UserState,
}

/// The tenant's disposals in `state` with their people: by due date
/// (scheduled, held) or newest completed first (done), at most `limit`.
pub fn disposals_in(
    c: &mut AnyConnection,
    tenant: &str,
    state: DisposalState,
    limit: i64,
) -> Result<Vec<DisposalListed>, StoreError> {
    let q = disposals::table
        .inner_join(users::table.on(users::id.eq(disposals::user_id)))
        .filter(disposals::tenant_id.eq(tenant.to_string()))
        .filter(users::tenant_id.eq(tenant.to_string()))
        .filter(disposals::state.eq(state))
        .select((
            disposals::id,
            disposals::user_id,
            disposals::state,
            disposals::due_at,
            disposals::plan_hash,
            disposals::completed_at,
            users::user_name,
            users::state,
        ))
        .limit(limit)
        .into_boxed();
    let q = if state == DisposalState::Done {
        q.order((disposals::completed_at.desc(), disposals::id))
    } else {
        q.order((disposals::due_at, disposals::id))
    };
    Ok(q.load(c)?)
}

/// When the tenant's brake tripped (`None`: not tripped).
pub fn brake_tripped_at(c: &mut AnyConnection, tenant: &str) -> Result<Option<String>, StoreError> {
    Ok(tenant_counters::table
        .filter(tenant_counters::tenant_id.eq(tenant))
        .select(tenant_counters::brake_tripped_at)
        .first::<Option<String>>(c)
        .optional()?
        .flatten())
}

/// An audit filter: each part optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    pub subject: Option<String>,
    pub action: Option<String>,
    /// `at >= from` (RFC 3339 text).
    pub from: Option<String>,
    /// `at < to`.
    pub to: Option<String>,
    /// Rows after this (at, id), oldest first.
    pub after: Option<(String, String)>,
}

pub use super::audit::AuditRow;

/// A page of audit rows matching `f`, oldest first, at most `limit`.
pub fn audit(
    c: &mut AnyConnection,
    tenant: &str,
    f: &AuditFilter,
    limit: i64,
) -> Result<Vec<AuditRow>, StoreError> {
    let mut q = audit_log::table
        .filter(audit_log::tenant_id.eq(tenant.to_string()))
        .into_boxed();
    if let Some(s) = &f.subject {
        q = q.filter(audit_log::subject_id.eq(s.clone()));
    }
    if let Some(a) = &f.action {
        q = q.filter(audit_log::action.eq(a.clone()));
    }
    if let Some(t) = &f.from {
        q = q.filter(audit_log::at.ge(t.clone()));
    }
    if let Some(t) = &f.to {
        q = q.filter(audit_log::at.lt(t.clone()));
    }
    if let Some((at, id)) = &f.after {
        q = q.filter(
            audit_log::at.gt(at.clone()).or(audit_log::at
                .eq(at.clone())
                .and(audit_log::id.gt(id.clone()))),
        );
    }
    Ok(q.select((
        audit_log::id,
        audit_log::at,
        audit_log::actor,
        audit_log::action,
        audit_log::subject_type,
        audit_log::subject_id,
        audit_log::detail,
    ))
    .order((audit_log::at, audit_log::id))
    .limit(limit)
    .load(c)?)
}

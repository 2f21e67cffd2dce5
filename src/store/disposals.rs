//! Disposals: their rows, receipt lines, schedules and the brake's counters.

use super::db::{AnyConnection, Backend, Bind, Sql, backend_of, execute_sql, load_sql};
use super::error::StoreError;
use super::schema::{disposal_items, disposals, tenant_counters, tenants, users};
use super::vocab::{OPEN_DISPOSALS, open_disposals};
use crate::domain::{Cause, DisposalState, ItemAction};
use diesel::prelude::*;

/// Hands the items of a receipt back to `new_owner` where their recipients
/// (or nobody, for orphans; the person still, for kept items) hold them now.
/// One statement.
pub fn relink_items(
    c: &mut AnyConnection,
    tenant: &str,
    disposal_id: &str,
    new_owner: &str,
    now: &str,
) -> Result<usize, StoreError> {
    let mut s = Sql::default();
    s.push("UPDATE content_items SET owner_id = ")
        .bind_text(new_owner);
    s.push(", updated_at = ").bind_text(now);
    s.push(" WHERE tenant_id = ").bind_text(tenant);
    s.push(" AND EXISTS (SELECT 1 FROM disposal_items d WHERE d.disposal_id = ")
        .bind_text(disposal_id);
    s.push(
        " AND d.kind = content_items.kind AND d.item_id = content_items.item_id \
         AND (d.to_owner = content_items.owner_id \
         OR (d.to_owner IS NULL AND content_items.owner_id IS NULL AND d.action = 'orphan') \
         OR (d.action = 'keep' AND content_items.owner_id = d.from_owner)))",
    );
    execute_sql(c, &s)
}

/// The person's open (scheduled or held) disposal, if any.
pub fn open_for(
    c: &mut AnyConnection,
    tenant: &str,
    user: &str,
) -> Result<Option<String>, StoreError> {
    Ok(crate::per_backend!(c, c => disposals::table
        .filter(disposals::tenant_id.eq(tenant))
        .filter(disposals::user_id.eq(user))
        .filter(open_disposals())
        .select(disposals::id)
        .first(c)
        .optional())?)
}

/// [`open_for`], the row locked for the rest of the transaction: on
/// PostgreSQL one `SELECT … FOR UPDATE` instead of a read and a [`lock`].
pub fn open_for_locked(
    c: &mut AnyConnection,
    tenant: &str,
    user: &str,
) -> Result<Option<String>, StoreError> {
    if backend_of(c) != Backend::Postgres {
        return open_for(c, tenant, user);
    }
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Text)]
        id: String,
    }
    let mut sql = Sql::default();
    sql.push("SELECT id FROM disposals WHERE tenant_id = ")
        .bind_text(tenant);
    sql.push(" AND user_id = ").bind_text(user);
    sql.push(&format!(" AND {OPEN_DISPOSALS} LIMIT 1 FOR UPDATE"));
    Ok(load_sql::<Row>(c, &sql)?.pop().map(|r| r.id))
}

/// PostgreSQL: locks the disposal row for the rest of the transaction.
pub fn lock(c: &mut AnyConnection, tenant: &str, id: &str) -> Result<(), StoreError> {
    super::db::lock_row(c, "disposals", tenant, id)
}

/// A new disposal row.
#[derive(Debug, Clone, Copy)]
pub struct NewDisposal<'a> {
    pub id: &'a str,
    pub tenant_id: &'a str,
    pub user_id: &'a str,
    pub state: DisposalState,
    pub cause: Cause,
    pub due_at: &'a str,
    pub actor: &'a str,
    pub caller_user_id: Option<&'a str>,
    pub created_at: &'a str,
}

pub fn insert(c: &mut AnyConnection, d: &NewDisposal<'_>) -> Result<(), StoreError> {
    crate::per_backend!(c, c => diesel::insert_into(disposals::table)
        .values((
            disposals::id.eq(d.id),
            disposals::tenant_id.eq(d.tenant_id),
            disposals::user_id.eq(d.user_id),
            disposals::state.eq(d.state),
            disposals::cause.eq(d.cause),
            disposals::due_at.eq(d.due_at),
            disposals::actor.eq(d.actor),
            disposals::caller_user_id.eq(d.caller_user_id),
            disposals::created_at.eq(d.created_at),
        ))
        .execute(c))?;
    Ok(())
}

pub fn exists(c: &mut AnyConnection, tenant: &str, id: &str) -> Result<bool, StoreError> {
    let n: i64 = disposals::table
        .filter(disposals::tenant_id.eq(tenant))
        .filter(disposals::id.eq(id))
        .count()
        .get_result(c)?;
    Ok(n > 0)
}

/// An existing disposal starts running, for this cause and actor.
pub fn set_running(
    c: &mut AnyConnection,
    tenant: &str,
    id: &str,
    cause: Cause,
    actor: &str,
) -> Result<(), StoreError> {
    diesel::update(
        disposals::table
            .filter(disposals::tenant_id.eq(tenant))
            .filter(disposals::id.eq(id)),
    )
    .set((
        disposals::state.eq(DisposalState::Running),
        disposals::cause.eq(cause),
        disposals::actor.eq(actor),
    ))
    .execute(c)?;
    Ok(())
}

/// An existing disposal is parked (legal hold or brake), for this cause.
pub fn set_held(
    c: &mut AnyConnection,
    tenant: &str,
    id: &str,
    cause: Cause,
) -> Result<(), StoreError> {
    diesel::update(
        disposals::table
            .filter(disposals::tenant_id.eq(tenant))
            .filter(disposals::id.eq(id)),
    )
    .set((
        disposals::state.eq(DisposalState::Held),
        disposals::cause.eq(cause),
    ))
    .execute(c)?;
    Ok(())
}

/// The disposal is done: its plan hash, policy digest and counts (JSON).
pub fn set_done(
    c: &mut AnyConnection,
    tenant: &str,
    id: &str,
    plan_hash: &str,
    policy_digest: &str,
    counts: &str,
    now: &str,
) -> Result<(), StoreError> {
    let mut s = Sql::default();
    s.push("UPDATE disposals SET state = 'done', plan_hash = ")
        .bind_text(plan_hash);
    s.push(", policy_digest = ").bind_text(policy_digest);
    s.push(", counts = ").bind_text(counts);
    s.push(", completed_at = ").bind_text(now);
    s.push(" WHERE tenant_id = ").bind_text(tenant);
    s.push(" AND id = ").bind_text(id);
    execute_sql(c, &s)?;
    Ok(())
}

/// Who acts on the items in a receipt line: the new owner and the target
/// chain link that named them.
#[derive(Debug, Clone, Copy)]
pub struct Recipient<'a> {
    pub to_owner: Option<&'a str>,
    pub link: Option<&'a str>,
}

/// Receipt lines for the items of one kind `person` owns (all but personal
/// roots when `skip_roots`), in item order, before they change hands.
/// `target_link` is written only with a new owner.
#[allow(clippy::too_many_arguments)]
pub fn insert_lines_for_kind(
    c: &mut AnyConnection,
    tenant: &str,
    person: &str,
    disposal_id: &str,
    kind: &str,
    action: ItemAction,
    to: Recipient<'_>,
    skip_roots: bool,
) -> Result<(), StoreError> {
    let mut s = Sql::default();
    s.push("INSERT INTO disposal_items (disposal_id, kind, item_id, action, from_owner, to_owner, target_link) SELECT ")
        .bind_text(disposal_id)
        .push(", kind, item_id, ")
        .bind_text(action.as_str())
        .push(", owner_id, ");
    match to.to_owner {
        Some(o) => s.bind_text(o),
        None => s.push("NULL"),
    };
    s.push(", ");
    match (to.to_owner, to.link) {
        (Some(_), Some(l)) => s.bind_text(l),
        _ => s.push("NULL"),
    };
    s.push(" FROM content_items WHERE tenant_id = ")
        .bind_text(tenant);
    s.push(" AND owner_id = ").bind_text(person);
    s.push(" AND kind = ").bind_text(kind);
    if skip_roots {
        s.push(" AND personal_root = FALSE");
    }
    s.push(" ORDER BY item_id");
    execute_sql(c, &s)?;
    Ok(())
}

/// Receipt lines (`archive`) for the person's personal roots.
pub fn insert_lines_for_roots(
    c: &mut AnyConnection,
    tenant: &str,
    person: &str,
    disposal_id: &str,
    to: Recipient<'_>,
) -> Result<(), StoreError> {
    let mut s = Sql::default();
    s.push("INSERT INTO disposal_items (disposal_id, kind, item_id, action, from_owner, to_owner, target_link) SELECT ")
        .bind_text(disposal_id)
        .push(", kind, item_id, 'archive', owner_id, ");
    match to.to_owner {
        Some(o) => s.bind_text(o),
        None => s.push("NULL"),
    };
    s.push(", ");
    match to.link {
        Some(l) => s.bind_text(l),
        None => s.push("NULL"),
    };
    s.push(" FROM content_items WHERE tenant_id = ")
        .bind_text(tenant);
    s.push(" AND owner_id = ").bind_text(person);
    s.push(" AND personal_root = TRUE");
    execute_sql(c, &s)?;
    Ok(())
}

/// A pending schedule, with what its due time is computed from.
#[derive(Debug, Clone, Queryable)]
pub struct Schedule {
    pub id: String,
    pub tenant_id: String,
    pub tenant_name: String,
    pub suspended_at: Option<String>,
    pub due_at: String,
}

/// Every tenant's scheduled disposals (a maintenance pass after a policy reload).
pub fn scheduled(c: &mut AnyConnection) -> Result<Vec<Schedule>, StoreError> {
    Ok(disposals::table
        .inner_join(tenants::table)
        .inner_join(users::table.on(users::id.eq(disposals::user_id)))
        .filter(disposals::state.eq(DisposalState::Scheduled))
        .select((
            disposals::id,
            disposals::tenant_id,
            tenants::name,
            users::suspended_at,
            disposals::due_at,
        ))
        .load(c)?)
}

pub fn set_due(
    c: &mut AnyConnection,
    tenant: &str,
    id: &str,
    due_at: &str,
) -> Result<(), StoreError> {
    diesel::update(
        disposals::table
            .filter(disposals::tenant_id.eq(tenant))
            .filter(disposals::id.eq(id)),
    )
    .set(disposals::due_at.eq(due_at))
    .execute(c)?;
    Ok(())
}

/// A scheduled disposal whose time has come.
#[derive(Debug, Clone, Queryable)]
pub struct Due {
    pub id: String,
    pub tenant_id: String,
    pub tenant_name: String,
    pub user_id: String,
    pub caller_user_id: Option<String>,
}

/// Up to `limit` scheduled disposals due at `now`, earliest first (all tenants).
pub fn due(c: &mut AnyConnection, now: &str, limit: i64) -> Result<Vec<Due>, StoreError> {
    Ok(disposals::table
        .inner_join(tenants::table)
        .filter(disposals::state.eq(DisposalState::Scheduled))
        .filter(disposals::due_at.le(now))
        .select((
            disposals::id,
            disposals::tenant_id,
            tenants::name,
            disposals::user_id,
            disposals::caller_user_id,
        ))
        .order(disposals::due_at)
        .limit(limit)
        .load(c)?)
}

/// Locks a scheduled disposal for this transaction (PostgreSQL: `FOR UPDATE
/// SKIP LOCKED`); false when it is no longer scheduled or another replica holds it.
pub fn claim(c: &mut AnyConnection, tenant: &str, id: &str) -> Result<bool, StoreError> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Text)]
        #[allow(dead_code)]
        id: String,
    }
    let mut sql = Sql::default();
    sql.push("SELECT id FROM disposals WHERE tenant_id = ")
        .bind_text(tenant);
    sql.push(" AND id = ").bind_text(id);
    sql.push(" AND state = 'scheduled'");
    if backend_of(c) == Backend::Postgres {
        sql.push(" FOR UPDATE SKIP LOCKED");
    }
    Ok(!load_sql::<Row>(c, &sql)?.is_empty())
}

/// Closes a disposal without running it.
pub fn set_cancelled(c: &mut AnyConnection, tenant: &str, id: &str) -> Result<(), StoreError> {
    diesel::update(
        disposals::table
            .filter(disposals::tenant_id.eq(tenant))
            .filter(disposals::id.eq(id)),
    )
    .set(disposals::state.eq(DisposalState::Cancelled))
    .execute(c)?;
    Ok(())
}

/// Cancels the person's scheduled disposal, and a held one unless a DELETE
/// caused it; returns how many were cancelled.
pub fn cancel_for_reactivation(
    c: &mut AnyConnection,
    tenant: &str,
    user: &str,
    now: &str,
) -> Result<usize, StoreError> {
    Ok(diesel::update(
        disposals::table
            .filter(disposals::tenant_id.eq(tenant))
            .filter(disposals::user_id.eq(user))
            .filter(
                disposals::state
                    .eq(DisposalState::Scheduled)
                    .or(disposals::state
                        .eq(DisposalState::Held)
                        .and(disposals::cause.ne(Cause::Delete))),
            ),
    )
    .set((
        disposals::state.eq(DisposalState::Cancelled),
        disposals::completed_at.eq(now),
    ))
    .execute(c)?)
}

/// What a release needs to know of a disposal.
#[derive(Debug, Clone, Queryable)]
pub struct DisposalRef {
    pub user_id: String,
    pub state: DisposalState,
    pub cause: Cause,
    pub caller_user_id: Option<String>,
}

pub fn find(
    c: &mut AnyConnection,
    tenant: &str,
    id: &str,
) -> Result<Option<DisposalRef>, StoreError> {
    Ok(disposals::table
        .filter(disposals::tenant_id.eq(tenant))
        .filter(disposals::id.eq(id))
        .select((
            disposals::user_id,
            disposals::state,
            disposals::cause,
            disposals::caller_user_id,
        ))
        .first(c)
        .optional()?)
}

/// The new owner of some of a disposed person's items, from their receipt.
pub fn recipient_of(
    c: &mut AnyConnection,
    tenant: &str,
    person: &str,
) -> Result<Option<String>, StoreError> {
    let recipient: Option<Option<String>> = disposal_items::table
        .inner_join(disposals::table)
        .filter(disposals::tenant_id.eq(tenant))
        .filter(disposals::user_id.eq(person))
        .filter(disposal_items::to_owner.is_not_null())
        .select(disposal_items::to_owner)
        .first(c)
        .optional()?;
    Ok(recipient.flatten())
}

/// Counts a completed disposal on the tenant's counter (the brake reads it),
/// creating the row if need be (callers hold it, so it exists but for tests
/// and tools that run `execute` alone).
pub fn count_done(c: &mut AnyConnection, tenant: &str) -> Result<(), StoreError> {
    let mut q = Sql::default();
    q.push(COUNT_DONE).bind_text(tenant);
    q.push(COUNT_DONE_CONFLICT);
    execute_sql(c, &q)?;
    Ok(())
}

/// `count_done`'s statement, before and after the tenant's id.
const COUNT_DONE: &str =
    "INSERT INTO tenant_counters (tenant_id, brake_tripped_at, next_seq, disposals_done) VALUES (";
const COUNT_DONE_CONFLICT: &str = ", NULL, 1, 1) ON CONFLICT (tenant_id) DO UPDATE SET disposals_done = tenant_counters.disposals_done + 1";

/// Disposals of the tenant completed at or after `since`.
pub fn done_since(c: &mut AnyConnection, tenant: &str, since: &str) -> Result<i64, StoreError> {
    Ok(disposals::table
        .filter(disposals::tenant_id.eq(tenant))
        .filter(disposals::state.eq(DisposalState::Done))
        .filter(disposals::completed_at.ge(since))
        .count()
        .get_result(c)?)
}

/// Trips (`Some(now)`) or re-arms (`None`) the tenant's brake.
pub fn set_brake(
    c: &mut AnyConnection,
    tenant: &str,
    tripped_at: Option<&str>,
) -> Result<(), StoreError> {
    diesel::update(tenant_counters::table.filter(tenant_counters::tenant_id.eq(tenant)))
        .set(tenant_counters::brake_tripped_at.eq(tripped_at))
        .execute(c)?;
    Ok(())
}

/// A disposal's closing writes on PostgreSQL (`close_pg`): everything after
/// the items and user data have moved.
pub struct Closing<'a> {
    /// The disposal's row: inserted done when new, else moved to done.
    pub row: &'a NewDisposal<'a>,
    pub exists: bool,
    pub plan_hash: &'a str,
    pub policy_digest: &'a str,
    pub counts: &'a str,
    pub now: &'a str,
    /// The tombstone to write (`None`: a held DELETE wrote it).
    pub tombstone: Option<&'a crate::domain::journal::JournaledTombstone>,
    /// The person's row version before the scrub.
    pub version: i64,
    /// The `user.disposed` audit row's id and detail.
    pub audit_id: &'a str,
    pub audit_detail: &'a str,
}

/// PostgreSQL: a disposal's closing writes as one statement of
/// data-modifying CTEs: the disposal row done, shares granted to the person
/// removed, the tombstone and its hashes, SSO subjects, group memberships
/// (bumping those groups' versions), emails, the scrub to a stub, the audit
/// row and the tenant's disposal count. Run under the tenant's counter lock,
/// which is held to the commit: one round trip instead of a dozen (issue 17).
/// The parts touch disjoint rows, so the one snapshot they share is enough;
/// foreign keys are checked at the end of the statement. Each part as the
/// step functions of `deprovision::disposal::execute` write it on SQLite.
pub fn close_pg(c: &mut AnyConnection, tenant: &str, x: &Closing<'_>) -> Result<(), StoreError> {
    let d = x.row;
    let person = d.user_id;
    let mut s = Sql::default();
    if x.exists {
        s.push("WITH d AS (UPDATE disposals SET state = 'done', cause = ")
            .bind_text(d.cause.as_str());
        s.push(", actor = ").bind_text(d.actor);
        s.push(", plan_hash = ").bind_text(x.plan_hash);
        s.push(", policy_digest = ").bind_text(x.policy_digest);
        s.push(", counts = ").bind_text(x.counts);
        s.push(", completed_at = ").bind_text(x.now);
        s.push(" WHERE tenant_id = ").bind_text(tenant);
        s.push(" AND id = ").bind_text(d.id);
        s.push(")");
    } else {
        s.push(
            "WITH d AS (INSERT INTO disposals (id, tenant_id, user_id, state, cause, due_at, \
             actor, caller_user_id, created_at, plan_hash, policy_digest, counts, completed_at) \
             VALUES (",
        )
        .bind_text(d.id);
        s.push(", ").bind_text(tenant);
        s.push(", ").bind_text(person);
        s.push(", 'done', ").bind_text(d.cause.as_str());
        s.push(", ").bind_text(d.due_at);
        s.push(", ").bind_text(d.actor);
        s.push(", ")
            .bind(Bind::OptText(d.caller_user_id.map(str::to_string)));
        s.push(", ").bind_text(d.created_at);
        s.push(", ").bind_text(x.plan_hash);
        s.push(", ").bind_text(x.policy_digest);
        s.push(", ").bind_text(x.counts);
        s.push(", ").bind_text(x.now);
        s.push("))");
    }
    s.push(", sh AS (DELETE FROM content_shares WHERE tenant_id = ")
        .bind_text(tenant);
    s.push(" AND user_id = ").bind_text(person);
    s.push(")");
    if let Some(t) = x.tombstone {
        s.push(", t AS (INSERT INTO tombstones (id, tenant_id, disposal_id, created_at, had_external_id) VALUES (")
            .bind_text(t.id.as_str());
        s.push(", ").bind_text(tenant);
        s.push(", ").bind_text(d.id);
        s.push(", ").bind_text(t.created_at.as_str());
        s.push(", ").bind(Bind::Bool(t.had_external_id));
        s.push("))");
        if !t.hashes.is_empty() {
            s.push(", th AS (INSERT INTO tombstone_hashes (tombstone_id, tenant_id, hash, id_type, norm_version) VALUES ");
            for (i, h) in t.hashes.iter().enumerate() {
                if i > 0 {
                    s.push(", ");
                }
                s.push("(").bind_text(t.id.as_str());
                s.push(", ").bind_text(tenant);
                s.push(", ").bind_text(h.hash.as_str());
                s.push(", ").bind_text(h.id_type.as_str());
                s.push(", CAST(")
                    .bind(Bind::BigInt(i64::from(h.norm_version)));
                s.push(" AS INTEGER))");
            }
            s.push(")");
        }
    }
    s.push(", so AS (DELETE FROM sso_subjects WHERE tenant_id = ")
        .bind_text(tenant);
    s.push(" AND user_id = ").bind_text(person);
    // As `groups::remove_from_all_groups`: the memberships go, and the
    // groups they were in take a new version.
    s.push("), gm AS (DELETE FROM group_members WHERE tenant_id = ")
        .bind_text(tenant);
    s.push(" AND member_id = ").bind_text(person);
    s.push(" RETURNING group_id), g AS (UPDATE groups SET version = version + 1, updated_at = ")
        .bind_text(super::time::now());
    s.push(" WHERE tenant_id = ").bind_text(tenant);
    s.push(" AND id IN (SELECT group_id FROM gm))");
    // As `users::scrub_to_stub`.
    s.push(", e AS (DELETE FROM user_emails WHERE tenant_id = ")
        .bind_text(tenant);
    s.push(" AND user_id = ").bind_text(person);
    s.push("), u AS (");
    super::users::push_scrub(&mut s, tenant, person, x.version, x.now);
    s.push("), a AS (INSERT INTO audit_log (id, tenant_id, at, actor, action, subject_type, subject_id, detail) VALUES (")
        .bind_text(x.audit_id);
    s.push(", ").bind_text(tenant);
    s.push(", ").bind_text(x.now);
    s.push(", ").bind_text(d.actor);
    s.push(", 'user.disposed', 'user', ").bind_text(person);
    s.push(", ").bind_text(x.audit_detail);
    // `count_done`.
    s.push(")), k AS (").push(COUNT_DONE).bind_text(tenant);
    s.push(COUNT_DONE_CONFLICT);
    s.push(") SELECT 1");
    execute_sql(c, &s)?;
    Ok(())
}

//! The deprovisioning service: dispose now, preview, schedule on suspension,
//! cancel on reactivation, run what is due. Time comes from a `Clock` so tests
//! advance it instead of sleeping.

use super::disposal::{self, DisposeInput, Plan, Receipt};
use super::policy::{Policy, PolicySet};
use super::tombstone::TombstoneKeys;
use crate::clock::Clock;
use crate::domain::{Actor, Cause, DisposalState, UserState};
use crate::events::payload;
use crate::service_error::ServiceError;
use crate::store::disposals::{self, NewDisposal};
use crate::store::{AnyConnection, Db, StoreError, audit, time, users};
use std::sync::{Arc, RwLock};

/// `disposal::plan` or `disposal::plan_summary`.
type PlanFn = fn(
    &mut AnyConnection,
    &str,
    &str,
    Option<&str>,
    Option<&str>,
    &Policy,
) -> Result<Plan, StoreError>;

/// Shared deprovisioning state: the policy (swappable on reload), the tombstone keys, the clock.
pub struct Deprov {
    policies: RwLock<Arc<PolicySet>>,
    pub keys: TombstoneKeys,
    pub clock: Arc<dyn Clock>,
}

/// What a disposal request came to.
#[derive(Debug)]
pub enum Outcome {
    Disposed(Receipt),
    /// Parked by a legal hold or the brake; access stays revoked.
    Held {
        disposal_id: String,
        reason: &'static str,
    },
}

impl Deprov {
    pub fn new(policies: PolicySet, keys: TombstoneKeys, clock: Arc<dyn Clock>) -> Deprov {
        Deprov {
            policies: RwLock::new(Arc::new(policies)),
            keys,
            clock,
        }
    }

    pub fn policies(&self) -> Arc<PolicySet> {
        Arc::clone(&self.policies.read().unwrap_or_else(|p| p.into_inner()))
    }

    pub fn policy(&self, tenant_name: &str) -> Policy {
        self.policies().for_tenant(tenant_name).clone()
    }

    /// Pending schedules follow the policy: `due_at = suspended_at + grace` of the
    /// tenant's current policy (DESIGN "User states"). Returns schedules moved.
    pub fn recompute_schedules(&self, db: &Db) -> Result<usize, StoreError> {
        let policies = self.policies();
        db.write_long(|c| {
            let mut moved = 0;
            for s in disposals::scheduled(c)? {
                let Some(since) = s
                    .suspended_at
                    .and_then(|s| chrono::DateTime::parse_from_rfc3339(&s).ok())
                else {
                    continue;
                };
                let grace = i64::try_from(policies.for_tenant(&s.tenant_name).grace_period_seconds)
                    .unwrap_or(i64::MAX / 2);
                let new_due = time::format(
                    since.with_timezone(&chrono::Utc) + chrono::Duration::seconds(grace),
                );
                if new_due != s.due_at {
                    disposals::set_due(c, &s.tenant_id, &s.id, &new_due)?;
                    moved += 1;
                }
            }
            Ok(moved)
        })
    }

    /// Swaps in a new policy (SIGHUP reload).
    pub fn replace_policies(&self, p: PolicySet) {
        *self.policies.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(p);
    }

    pub fn now(&self) -> String {
        time::format(self.clock.now())
    }

    fn caller_user(c: &mut AnyConnection, r: &Actor) -> Result<Option<String>, StoreError> {
        if let Some(id) = &r.caller_user_id {
            return users::active_id(c, &r.tenant_id, id);
        }
        match &r.acts_as {
            Some(name) => users::active_id_by_name(c, &r.tenant_id, &crate::scim::fold::fold(name)),
            None => Ok(None),
        }
    }

    /// The plan a disposal of `user_id` would apply now.
    pub fn preview(&self, db: &Db, r: &Actor, user_id: &str) -> Result<Plan, ServiceError> {
        self.preview_with(db, r, user_id, disposal::plan)
    }

    /// The plan without its item list (`Plan::items` empty): summary, user
    /// data, target and hash, in memory that does not grow with the items
    /// (the console's pages).
    pub fn preview_summary(&self, db: &Db, r: &Actor, user_id: &str) -> Result<Plan, ServiceError> {
        self.preview_with(db, r, user_id, disposal::plan_summary)
    }

    /// The plan (summary, as [`Self::preview_summary`]) that releasing the held
    /// disposal `disposal_id` would apply now. A held SCIM DELETE leaves its
    /// person deleted-pending, which `preview` does not see: the person is
    /// read in any state, with the caller the release would use (the
    /// disposal's own, else this actor's).
    pub fn preview_held_summary(
        &self,
        db: &Db,
        r: &Actor,
        disposal_id: &str,
    ) -> Result<Plan, ServiceError> {
        let policy = self.policy(&r.tenant_name);
        db.read(|c| {
            let d = disposals::find(c, &r.tenant_id, disposal_id)?
                .ok_or_else(|| ServiceError::NoDisposal(disposal_id.into()))?;
            let row = users::get_any(c, &r.tenant_id, &d.user_id)?;
            let r = Actor {
                caller_user_id: d.caller_user_id.or_else(|| r.caller_user_id.clone()),
                ..r.clone()
            };
            let caller = Self::caller_user(c, &r)?;
            Ok(disposal::plan_summary(
                c,
                &r.tenant_id,
                &d.user_id,
                row.manager_id.as_deref(),
                caller.as_deref(),
                &policy,
            )?)
        })
    }

    fn preview_with(
        &self,
        db: &Db,
        r: &Actor,
        user_id: &str,
        plan: PlanFn,
    ) -> Result<Plan, ServiceError> {
        let policy = self.policy(&r.tenant_name);
        db.read(|c| {
            let row = users::find(c, &r.tenant_id, user_id)?
                .ok_or_else(|| ServiceError::NoUser(user_id.into()))?;
            let caller = Self::caller_user(c, r)?;
            Ok(plan(
                c,
                &r.tenant_id,
                user_id,
                row.manager_id.as_deref(),
                caller.as_deref(),
                &policy,
            )?)
        })
    }

    /// Disposes inside the caller's transaction (SCIM DELETE, dispose-now, grace
    /// expiry), unless a legal hold or the tenant's brake holds it.
    /// `expected_hash`: dispose only if the plan still has this hash.
    /// Counted in `custodian_disposals_total{cause,outcome}` (`disposed`,
    /// `held`, `refused` (the plan changed), `failed`; a person already gone
    /// is not a disposal).
    pub fn dispose_in(
        &self,
        c: &mut AnyConnection,
        r: &Actor,
        user_id: &str,
        cause: Cause,
        expected_hash: Option<&str>,
    ) -> Result<Outcome, ServiceError> {
        let out = self.dispose_uncounted(c, r, user_id, cause, expected_hash);
        let outcome = match &out {
            Ok(Outcome::Disposed(_)) => Some("disposed"),
            Ok(Outcome::Held { .. }) => Some("held"),
            Err(ServiceError::NoUser(_)) => None,
            Err(ServiceError::PlanChanged(_)) => Some("refused"),
            Err(_) => Some("failed"),
        };
        if let Some(o) = outcome {
            crate::metrics::disposal(cause.as_str(), o, &r.tenant_name);
        }
        out
    }

    fn dispose_uncounted(
        &self,
        c: &mut AnyConnection,
        r: &Actor,
        user_id: &str,
        cause: Cause,
        expected_hash: Option<&str>,
    ) -> Result<Outcome, ServiceError> {
        let policy = self.policy(&r.tenant_name);
        let now = self.now();
        // One lock order on every path: the person, then their disposal row,
        // then their reports, then the tenant counter. Everything below is read
        // under the person's lock, so concurrent triggers (DELETE, dispose-now,
        // grace expiry) serialise and the second finds the person gone.
        let row = users::find_locked(c, &r.tenant_id, user_id)?
            .ok_or_else(|| ServiceError::NoUser(user_id.into()))?;
        let caller = Self::caller_user(c, r)?;
        let open = disposals::open_for_locked(c, &r.tenant_id, user_id)?;
        // PostgreSQL: the reports are locked and everything the disposal
        // writes from is read here, before the tenant's counter row, which
        // is held to the commit (`disposal::prepare`, issue 17). SQLite's
        // single writer serialises anyway: it reads as it goes.
        let prepared = if crate::store::db::backend_of(c) == crate::store::Backend::Postgres {
            Some(disposal::prepare(
                c,
                &disposal::PrepareInput {
                    tenant_id: &r.tenant_id,
                    person: &row,
                    keys: &self.keys,
                    now: &now,
                    disposal_id: open.as_deref(),
                },
            )?)
        } else {
            None
        };
        if let Some(h) = expected_hash.map(str::trim).filter(|h| *h != "*") {
            let p = disposal::plan_summary(
                c,
                &r.tenant_id,
                user_id,
                row.manager_id.as_deref(),
                caller.as_deref(),
                &policy,
            )?;
            if p.hash != h.trim_matches('"') {
                return Err(ServiceError::PlanChanged(p.hash));
            }
        }
        if let Some(reason) = self.hold_reason(c, r, row.legal_hold, &policy, &now)? {
            return self.hold(c, r, user_id, cause, open, reason, &now);
        }
        self.execute_now(
            c,
            r,
            user_id,
            cause,
            open,
            caller,
            &policy,
            &now,
            Some(&row),
            prepared.as_ref(),
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn execute_now(
        &self,
        c: &mut AnyConnection,
        r: &Actor,
        user_id: &str,
        cause: Cause,
        open: Option<String>,
        caller: Option<String>,
        policy: &Policy,
        now: &str,
        person: Option<&users::UserRow>,
        prepared: Option<&disposal::Prepared>,
    ) -> Result<Outcome, ServiceError> {
        let receipt = disposal::execute(
            c,
            &DisposeInput {
                tenant_id: &r.tenant_id,
                person: user_id,
                caller: caller.as_deref(),
                actor: &r.actor,
                cause,
                policy,
                keys: &self.keys,
                now,
                disposal_id: open,
                person_row: person,
                prepared,
                hook: disposal::NO_HOOK,
            },
        )?;
        // Every completed disposal passes here, and `execute` counted it on
        // the tenant's counter row, which callers hold: the brake relies on
        // the count (`hold_reason`).
        // So is every disposal journaled (outside the database, after the commit).
        super::journal::record_disposed(c, r, user_id, cause, &receipt, now)?;
        crate::events::emit_at_commit(
            c,
            &r.tenant_id,
            Some(user_id),
            &payload::UserDisposed {
                disposal_id: receipt.disposal_id.clone(),
                counts: receipt.counts.clone(),
                receipt: format!("/admin/v1/disposals/{}", receipt.disposal_id),
            },
            now,
        )?;
        Ok(Outcome::Disposed(receipt))
    }

    /// Legal hold first, then the brake: a tripped breaker holds everything; the
    /// disposal that would exceed the hourly limit trips it (claimed under the
    /// tenant's counter lock, so replicas agree).
    fn hold_reason(
        &self,
        c: &mut AnyConnection,
        r: &Actor,
        legal_hold: bool,
        policy: &Policy,
        now: &str,
    ) -> Result<Option<&'static str>, StoreError> {
        if legal_hold {
            return Ok(Some("legal_hold"));
        }
        let counter = crate::events::lock_tenant(c, &r.tenant_id)?;
        if counter.brake_tripped_at.is_some() {
            return Ok(Some("brake"));
        }
        let max = i64::from(policy.max_disposals_per_hour);
        // Fewer disposals ever than the limit: the last hour cannot reach it,
        // so the count (which walks the hour's disposals) is skipped.
        let recent: i64 = if counter.disposals_done < max {
            counter.disposals_done
        } else {
            let since = time::format(self.clock.now() - chrono::Duration::hours(1));
            disposals::done_since(c, &r.tenant_id, &since)?
        };
        if recent + 1 > max {
            disposals::set_brake(c, &r.tenant_id, Some(now))?;
            crate::events::emit_at_commit(
                c,
                &r.tenant_id,
                None,
                &payload::BrakeTripped {
                    max_disposals_per_hour: policy.max_disposals_per_hour,
                },
                now,
            )?;
            audit::write(
                c,
                &r.tenant_id,
                now,
                &r.actor,
                "brake.tripped",
                "tenant",
                &r.tenant_id,
                None,
            )?;
            return Ok(Some("brake"));
        }
        Ok(None)
    }

    /// Parks a disposal: access stays revoked, nothing moves. A held DELETE makes
    /// the person deleted-pending (404 to SCIM, tombstoned for the gate); a held
    /// dispose-now suspends them.
    #[allow(clippy::too_many_arguments)]
    fn hold(
        &self,
        c: &mut AnyConnection,
        r: &Actor,
        user_id: &str,
        cause: Cause,
        open: Option<String>,
        reason: &'static str,
        now: &str,
    ) -> Result<Outcome, ServiceError> {
        let id = match open {
            Some(id) => {
                disposals::set_held(c, &r.tenant_id, &id, cause)?;
                id
            }
            None => {
                let id = crate::store::new_id().to_string();
                disposals::insert(
                    c,
                    &NewDisposal {
                        id: &id,
                        tenant_id: &r.tenant_id,
                        user_id,
                        state: DisposalState::Held,
                        cause,
                        due_at: now,
                        actor: &r.actor,
                        caller_user_id: None,
                        created_at: now,
                    },
                )?;
                id
            }
        };
        match cause {
            Cause::Delete => {
                disposal::tombstone_for(c, &r.tenant_id, user_id, &id, &self.keys, now)?;
                super::journal::record_tombstoned(c, r, user_id, &id, now)?;
                crate::store::groups::remove_from_all_groups(c, &r.tenant_id, user_id)?;
                users::set_deleted_pending(c, &r.tenant_id, user_id, now)?;
            }
            Cause::Admin => {
                // Suspend: state, column and document together (the document is canonical).
                let mut row = match users::get_any(c, &r.tenant_id, user_id) {
                    Err(StoreError::NotFound) => None,
                    found => Some(found?),
                };
                // The same transition as a SCIM `active=false` (`UserRow::apply_active`).
                if let Some(row) = row.as_mut().filter(|u| u.state == UserState::Active) {
                    // An unreadable document is not replaced: the hold fails and says whose.
                    let mut doc: serde_json::Value = serde_json::from_str(&row.data).map_err(|e| {
                        tracing::error!(user_id, error = %e, "a user's stored document is not valid JSON; the disposal is rolled back");
                        StoreError::Corrupt(format!(
                            "user {user_id}: stored document is not valid JSON: {e}"
                        ))
                    })?;
                    if let Some(o) = doc.as_object_mut() {
                        o.insert("active".into(), serde_json::Value::Bool(false));
                    }
                    let (data, search) =
                        (doc.to_string(), crate::scim::search_doc::of_user_json(&doc));
                    row.apply_active(false, now);
                    users::write_state(
                        c,
                        row,
                        &users::DocUpdate {
                            id: user_id,
                            data: &data,
                            search: search.as_deref(),
                            version: row.version,
                        },
                        now,
                    )?;
                    crate::events::emit_at_commit(
                        c,
                        &r.tenant_id,
                        Some(user_id),
                        &payload::UserSuspended {},
                        now,
                    )?;
                }
            }
            Cause::Grace | Cause::Reuse => {}
        }
        crate::events::emit_at_commit(
            c,
            &r.tenant_id,
            Some(user_id),
            &payload::DisposalHeld {
                disposal_id: id.to_string(),
                reason: reason.to_string(),
            },
            now,
        )?;
        audit::write(
            c,
            &r.tenant_id,
            now,
            &r.actor,
            "disposal.held",
            "user",
            user_id,
            Some(&format!("{{\"reason\":\"{reason}\"}}")),
        )?;
        Ok(Outcome::Held {
            disposal_id: id,
            reason,
        })
    }

    /// An admin releases a held disposal: it runs now, past the brake (not past a legal hold).
    pub fn release(&self, db: &Db, r: &Actor, disposal_id: &str) -> Result<Receipt, ServiceError> {
        let policy = self.policy(&r.tenant_name);
        let now = self.now();
        let out = db.write_long(|c| -> Result<Receipt, ServiceError> {
            let find = |c: &mut AnyConnection| -> Result<disposals::DisposalRef, ServiceError> {
                disposals::find(c, &r.tenant_id, disposal_id)?
                    .ok_or_else(|| ServiceError::NoDisposal(disposal_id.into()))
            };
            let first = find(c)?;
            // Lock order: the person, then the disposal; then re-read both.
            users::lock(c, &r.tenant_id, &first.user_id)?;
            disposals::lock(c, &r.tenant_id, disposal_id)?;
            let disposals::DisposalRef {
                user_id,
                state,
                cause,
                caller_user_id: stored_caller,
            } = find(c)?;
            disposal::lock_reports(c, &r.tenant_id, &user_id)?;
            // Then the tenant's counter, before any content row moves (DESIGN-NOTES
            // "Locking"): events no longer take it until the commit.
            crate::events::lock_tenant(c, &r.tenant_id)?;
            if state != DisposalState::Held {
                return Err(ServiceError::Conflict(format!(
                    "disposal {disposal_id} is {state}, not held"
                )));
            }
            let (user_state, legal_hold) = users::state_and_hold(c, &r.tenant_id, &user_id)?;
            if user_state == UserState::Active {
                return Err(ServiceError::Conflict(
                    "the person is active again; a held disposal of an active person is not run"
                        .into(),
                ));
            }
            if legal_hold {
                return Err(ServiceError::Conflict(
                    "the user is under legal hold; lift it before releasing".into(),
                ));
            }
            let r = Actor {
                caller_user_id: stored_caller.or_else(|| r.caller_user_id.clone()),
                ..r.clone()
            };
            let r = &r;
            let caller = Self::caller_user(c, r)?;
            match self.execute_now(
                c,
                r,
                &user_id,
                cause,
                Some(disposal_id.to_string()),
                caller,
                &policy,
                &now,
                None,
                None,
            )? {
                Outcome::Disposed(receipt) => Ok(receipt),
                Outcome::Held { .. } => {
                    Err(ServiceError::Conflict("the disposal is still held".into()))
                }
            }
        })?;
        db.checkpoint_soon();
        Ok(out)
    }

    /// Disposes `user_id` again under the journaled `disposal_id`, whose row
    /// exists (`custodian disposals reapply`): past the brake and any legal
    /// hold the restored database shows, since the disposal already ran once.
    pub fn redo_disposal(
        &self,
        c: &mut AnyConnection,
        r: &Actor,
        user_id: &str,
        disposal_id: &str,
        cause: Cause,
    ) -> Result<Receipt, ServiceError> {
        let policy = self.policy(&r.tenant_name);
        let now = self.now();
        // The lock order of every disposal: the person, the disposal, the
        // reports, the tenant's counter.
        users::lock(c, &r.tenant_id, user_id)?;
        disposals::lock(c, &r.tenant_id, disposal_id)?;
        disposal::lock_reports(c, &r.tenant_id, user_id)?;
        crate::events::lock_tenant(c, &r.tenant_id)?;
        let open = Some(disposal_id.to_string());
        match self.execute_now(c, r, user_id, cause, open, None, &policy, &now, None, None)? {
            Outcome::Disposed(receipt) => Ok(receipt),
            Outcome::Held { .. } => {
                Err(ServiceError::Conflict("the disposal is still held".into()))
            }
        }
    }

    /// Re-arms the breaker.
    pub fn reset_brake(&self, db: &Db, r: &Actor) -> Result<(), StoreError> {
        let now = self.now();
        db.write(|c| {
            crate::events::lock_tenant(c, &r.tenant_id)?;
            disposals::set_brake(c, &r.tenant_id, None)?;
            audit::write(
                c,
                &r.tenant_id,
                &now,
                &r.actor,
                "brake.reset",
                "tenant",
                &r.tenant_id,
                None,
            )
        })
    }

    pub fn set_legal_hold(
        &self,
        db: &Db,
        r: &Actor,
        user_id: &str,
        on: bool,
    ) -> Result<(), ServiceError> {
        let now = self.now();
        db.write(|c| {
            if !users::set_legal_hold(c, &r.tenant_id, user_id, on)? {
                return Err(ServiceError::NoUser(user_id.into()));
            }
            audit::write(
                c,
                &r.tenant_id,
                &now,
                &r.actor,
                if on {
                    "legal_hold.set"
                } else {
                    "legal_hold.lifted"
                },
                "user",
                user_id,
                None,
            )?;
            Ok(())
        })
    }

    /// Suspension: schedule disposal at now + grace, once (a repeated
    /// `active=false` keeps the original schedule).
    pub fn schedule_in(
        &self,
        c: &mut AnyConnection,
        r: &Actor,
        user_id: &str,
    ) -> Result<(), StoreError> {
        if disposals::open_for(c, &r.tenant_id, user_id)?.is_some() {
            return Ok(());
        }
        let policy = self.policy(&r.tenant_name);
        let now = self.clock.now();
        let grace = chrono::Duration::seconds(
            i64::try_from(policy.grace_period_seconds).unwrap_or(i64::MAX / 2),
        );
        let caller = Self::caller_user(c, r)?;
        let (id, due, created) = (
            crate::store::new_id().to_string(),
            time::format(now + grace),
            time::format(now),
        );
        disposals::insert(
            c,
            &NewDisposal {
                id: &id,
                tenant_id: &r.tenant_id,
                user_id,
                state: DisposalState::Scheduled,
                cause: Cause::Grace,
                due_at: &due,
                actor: &r.actor,
                caller_user_id: caller.as_deref(),
                created_at: &created,
            },
        )?;
        crate::events::emit_at_commit(
            c,
            &r.tenant_id,
            Some(user_id),
            &payload::DisposalScheduled {
                due_at: time::format(now + grace),
            },
            &time::format(now),
        )?;
        audit::write(
            c,
            &r.tenant_id,
            &time::format(now),
            &r.actor,
            "disposal.scheduled",
            "user",
            user_id,
            None,
        )
    }

    /// Reactivation cancels a scheduled disposal.
    pub fn cancel_in(
        &self,
        c: &mut AnyConnection,
        r: &Actor,
        user_id: &str,
    ) -> Result<(), StoreError> {
        let now = self.now();
        // A held disposal of someone who is active again must not run later;
        // a held DELETE is different (the IdP deleted them).
        let n = disposals::cancel_for_reactivation(c, &r.tenant_id, user_id, &now)?;
        if n > 0 {
            audit::write(
                c,
                &r.tenant_id,
                &now,
                &r.actor,
                "disposal.cancelled",
                "user",
                user_id,
                None,
            )?;
        }
        Ok(())
    }

    /// Runs every scheduled disposal whose grace has expired, each in its own
    /// transaction. Safe to run on several replicas: a disposal is claimed by
    /// moving it out of `scheduled` (PostgreSQL: `FOR UPDATE SKIP LOCKED`).
    pub fn run_due(&self, db: &Db) -> Result<usize, StoreError> {
        let now = self.now();
        let due = db.read(|c| disposals::due(c, &now, 100))?;
        let mut done = 0;
        for disposals::Due {
            id,
            tenant_id,
            tenant_name,
            user_id,
            caller_user_id: caller,
        } in due
        {
            let r = Actor {
                tenant_id,
                tenant_name,
                actor: "scheduler".to_string(),
                acts_as: None,
                caller_user_id: caller,
            };
            let tenant_id = &r.tenant_id;
            let ran = db.write_long(|c| -> Result<bool, ServiceError> {
                // Same lock order as every other path: the person, then the disposal.
                users::lock(c, tenant_id, &user_id)?;
                let claimed = disposals::claim(c, tenant_id, &id)?;
                if !claimed {
                    return Ok(false); // another replica took it, or it was cancelled
                }
                match self.dispose_in(c, &r, &user_id, Cause::Grace, None) {
                    Ok(Outcome::Disposed(_)) => Ok(true),
                    Ok(Outcome::Held { .. }) => Ok(false),
                    Err(ServiceError::NoUser(_)) => {
                        // Already disposed or deleted meanwhile: close the schedule.
                        disposals::set_cancelled(c, tenant_id, &id)?;
                        Ok(false)
                    }
                    Err(e) => Err(e),
                }
            });
            match ran {
                Ok(true) => done += 1,
                Ok(false) => {}
                Err(e) => {
                    tracing::error!(disposal_id = %id, error = %e, "scheduled disposal failed; will retry")
                }
            }
        }
        if done > 0 {
            db.checkpoint_soon();
        }
        Ok(done)
    }
}

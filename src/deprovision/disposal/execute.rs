//! Executing a disposal: `execute` checks the person, plans, then runs one
//! function per step of `STEPS`, calling the hook before each.

use super::plan::{item_action, plan_summary};
use super::prepare::{PrepareInput, Prepared, prepare};
use super::tombstone::{self, Tombstone};
use super::{ARCHIVE_ID, ARCHIVE_KIND, DisposeInput, Plan, Receipt, reports};
use crate::deprovision::policy::FolderAction;
use crate::deprovision::tombstone::IdType;
use crate::domain::journal::JournaledTombstone;
use crate::domain::{DisposalState, ItemAction, UserState};
use crate::scim::fold::fold;
use crate::store::disposals::{self, NewDisposal, Recipient};
use crate::store::users::UserRow;
use crate::store::{AnyConnection, Backend, StoreError, audit, groups, ledger, users};
use std::collections::BTreeMap;

/// What every step works on: the input, the person as read under lock, the
/// plan, and the disposal's id.
struct Run<'a> {
    inp: &'a DisposeInput<'a>,
    person: UserRow,
    plan: Plan,
    disposal_id: String,
    /// The disposal row existed before this run.
    existing: bool,
    /// The kinds the person owns, in key order.
    kinds: Vec<String>,
    /// Personal roots go to the Archive folder.
    archive: bool,
}

impl Run<'_> {
    fn tenant(&self) -> &str {
        self.inp.tenant_id
    }
    fn person_id(&self) -> &str {
        self.inp.person
    }
    fn to(&self) -> Option<&str> {
        self.plan.target.as_ref().map(|x| x.user_id.as_str())
    }
    fn link(&self) -> Option<&str> {
        self.plan.target.as_ref().map(|x| x.link.as_str())
    }
}

/// Applies the policy to everything `person` owns, inside the caller's write
/// transaction. The caller has checked the person is disposable.
/// Counts the disposal on the tenant's counter (the brake reads it): callers
/// hold the counter row.
pub fn execute(c: &mut AnyConnection, inp: &DisposeInput<'_>) -> Result<Receipt, StoreError> {
    if crate::store::db::backend_of(c) == Backend::Postgres {
        return execute_pg(c, inp);
    }
    let (t, p) = (inp.tenant_id, inp.person);
    let person = match inp.person_row {
        Some(row) if row.id == p => row.clone(),
        _ => users::get_any(c, t, p)?,
    };
    disposable(&person)?;
    let plan = plan_summary(
        c,
        t,
        p,
        person.manager_id.as_deref(),
        inp.caller,
        inp.policy,
    )?;
    let disposal_id = inp
        .disposal_id
        .clone()
        .unwrap_or_else(|| crate::store::new_id().to_string());
    let kinds = plan.summary.keys().cloned().collect();
    let archive = inp.policy.personal_folder.action == FolderAction::Archive
        && plan
            .summary
            .values()
            .any(|a| a.contains_key(&ItemAction::Archive));
    let mut run = Run {
        inp,
        person,
        plan,
        disposal_id,
        existing: false,
        kinds,
        archive,
    };
    (inp.hook)("run")?;
    start(c, &mut run)?;
    (inp.hook)("receipt")?;
    receipt(c, &run)?;
    (inp.hook)("archive")?;
    archive_roots(c, &run)?;
    (inp.hook)("items")?;
    items(c, &run)?;
    (inp.hook)("user_data")?;
    user_data(c, &run)?;
    (inp.hook)("tombstone")?;
    let (emails, tombstone) = write_tombstone(c, &run)?;
    (inp.hook)("scrub")?;
    // SQLite (one writer): the subjects the tombstone just read are all there
    // are; none, and there is nothing to delete.
    let sso = tombstone
        .as_ref()
        .is_none_or(|t| t.hashes.iter().any(|h| h.id_type == IdType::Sso.as_str()))
        || crate::store::db::backend_of(c) == Backend::Postgres;
    scrub(c, &run, emails, sso)?;
    let counts = counts(&run.plan);
    (inp.hook)("finish")?;
    finish(c, &run, &counts)?;
    disposals::count_done(c, t)?;
    Ok(Receipt {
        disposal_id: run.disposal_id,
        plan_hash: run.plan.hash,
        counts,
        target: run.plan.target,
        tombstone,
    })
}

/// Disposing twice, or disposing a stub, is never right (callers hold the
/// person's lock and have checked; this is the last line of defence).
fn disposable(person: &UserRow) -> Result<(), StoreError> {
    if matches!(
        person.state,
        UserState::Active | UserState::Suspended | UserState::DeletedPending
    ) {
        Ok(())
    } else {
        Err(StoreError::NotFound)
    }
}

/// `execute` on PostgreSQL, from a disposal's reads (`Prepared`; read here
/// when the caller did not): the same steps, but the disposal row, the
/// tombstone, the scrub, the audit row and the count are one closing
/// statement (`disposals::close_pg`), so a small disposal holds the
/// tenant's counter lock for that statement, the events' and the commit.
fn execute_pg(c: &mut AnyConnection, inp: &DisposeInput<'_>) -> Result<Receipt, StoreError> {
    let (t, p) = (inp.tenant_id, inp.person);
    let read;
    let prep = match inp.prepared {
        Some(prep) if prep.person.id == p => prep,
        _ => {
            // Ledger writes take FOR SHARE on the owner row; this waits for them.
            users::lock(c, t, p)?;
            let person = match inp.person_row {
                Some(row) if row.id == p => row.clone(),
                _ => users::get_any(c, t, p)?,
            };
            read = prepare(
                c,
                &PrepareInput {
                    tenant_id: t,
                    person: &person,
                    keys: inp.keys,
                    now: inp.now,
                    disposal_id: inp.disposal_id.as_deref(),
                },
            )?;
            &read
        }
    };
    disposable(&prep.person)?;
    // Under the tenant's counter row (`prepare` says why).
    let plan = plan_summary(
        c,
        t,
        p,
        prep.person.manager_id.as_deref(),
        inp.caller,
        inp.policy,
    )?;
    finish_pg(c, inp, prep, plan)
}

/// The steps of `execute_pg` once the plan is settled.
fn finish_pg(
    c: &mut AnyConnection,
    inp: &DisposeInput<'_>,
    prep: &Prepared,
    plan: Plan,
) -> Result<Receipt, StoreError> {
    let (t, p, now) = (inp.tenant_id, inp.person, inp.now);
    let kinds = plan.summary.keys().cloned().collect();
    let archive = inp.policy.personal_folder.action == FolderAction::Archive
        && plan
            .summary
            .values()
            .any(|a| a.contains_key(&ItemAction::Archive));
    let run = Run {
        inp,
        person: prep.person.clone(),
        plan,
        disposal_id: prep.disposal_id.clone(),
        existing: prep.existing,
        kinds,
        archive,
    };
    // The disposal's row is written last (`close_pg`): receipt lines carry
    // its id without a foreign key, and no other transaction sees it before
    // the commit either way.
    (inp.hook)("run")?;
    (inp.hook)("receipt")?;
    receipt(c, &run)?;
    (inp.hook)("archive")?;
    archive_roots(c, &run)?;
    (inp.hook)("items")?;
    items(c, &run)?;
    (inp.hook)("user_data")?;
    user_data_moves(c, &run)?;
    (inp.hook)("tombstone")?;
    // Under the counter row, as on SQLite (`prepare` says why): `None`, a
    // held DELETE already wrote it.
    let tombstone = tombstone::plan(
        c,
        t,
        &prep.person,
        &Tombstone {
            disposal_id: &prep.disposal_id,
            maybe_written: prep.existing,
            emails: prep.emails.clone(),
        },
        &prep.sso,
        inp.keys,
        now,
    )?
    .map(|planned| planned.tombstone);
    (inp.hook)("scrub")?;
    // Again under the counter row: those `prepare` locked (held already, no
    // wait) and any a create or PATCH committed since (`prepare` says why).
    let reports = users::reports_locked(c, t, p, &prep.aliases)?;
    debug_assert!(
        prep.reports
            .iter()
            .all(|r| reports.iter().any(|n| n.id == r.id))
    );
    reports::repoint_rows(c, t, p, &reports, now)?;
    let counts = counts(&run.plan);
    (inp.hook)("finish")?;
    let counts_json = serde_json::to_string(&counts).unwrap_or_default();
    let audit_id = crate::store::new_id().to_string();
    disposals::close_pg(
        c,
        t,
        &disposals::Closing {
            row: &NewDisposal {
                id: &run.disposal_id,
                tenant_id: t,
                user_id: p,
                state: DisposalState::Done,
                cause: inp.cause,
                due_at: now,
                actor: inp.actor,
                caller_user_id: inp.caller,
                created_at: now,
            },
            exists: run.existing,
            plan_hash: &run.plan.hash,
            policy_digest: &run.plan.policy_digest,
            counts: &counts_json,
            now,
            tombstone: tombstone.as_ref(),
            version: run.person.version,
            audit_id: &audit_id,
            audit_detail: &format!("{{\"disposalId\":\"{}\"}}", run.disposal_id),
        },
    )?;
    Ok(Receipt {
        disposal_id: run.disposal_id,
        plan_hash: run.plan.hash,
        counts,
        target: run.plan.target,
        tombstone,
    })
}

/// `run`: the disposal's row first (receipt lines reference it), running.
/// A new id has no row (and no tombstone) yet.
fn start(c: &mut AnyConnection, run: &mut Run<'_>) -> Result<(), StoreError> {
    let inp = run.inp;
    let t = inp.tenant_id;
    run.existing = inp.disposal_id.is_some() && disposals::exists(c, t, &run.disposal_id)?;
    if run.existing {
        disposals::set_running(c, t, &run.disposal_id, inp.cause, inp.actor)
    } else {
        disposals::insert(
            c,
            &NewDisposal {
                id: &run.disposal_id,
                tenant_id: t,
                user_id: inp.person,
                state: DisposalState::Running,
                cause: inp.cause,
                due_at: inp.now,
                actor: inp.actor,
                caller_user_id: inp.caller,
                created_at: inp.now,
            },
        )
    }
}

/// `receipt`: the receipt lines first (they record the owner before the
/// change), set-based, kind by kind in key order so each line lands at the end
/// of the receipt's key; then the personal roots going to the archive.
fn receipt(c: &mut AnyConnection, run: &Run<'_>) -> Result<(), StoreError> {
    let policy = run.inp.policy;
    let skip_roots = policy.personal_folder.action == FolderAction::Archive;
    for kind in &run.kinds {
        let (action, to_owner) = item_action(policy, kind, false, run.to());
        disposals::insert_lines_for_kind(
            c,
            run.tenant(),
            run.person_id(),
            &run.disposal_id,
            kind,
            action,
            Recipient {
                to_owner: to_owner.as_deref(),
                link: run.link(),
            },
            skip_roots,
        )?;
    }
    if run.archive {
        disposals::insert_lines_for_roots(
            c,
            run.tenant(),
            run.person_id(),
            &run.disposal_id,
            Recipient {
                to_owner: run.to(),
                link: run.link(),
            },
        )?;
    }
    Ok(())
}

/// `archive`: personal roots go under the tenant's Archive folder, relabelled,
/// shared with the new owner.
fn archive_roots(c: &mut AnyConnection, run: &Run<'_>) -> Result<(), StoreError> {
    if !run.archive {
        return Ok(());
    }
    let (t, p, now) = (run.tenant(), run.person_id(), run.inp.now);
    if ledger::find_item(c, t, ARCHIVE_KIND, ARCHIVE_ID)?.is_none() {
        ledger::upsert_item(
            c,
            &ledger::ItemRow {
                tenant_id: t.into(),
                kind: ARCHIVE_KIND.into(),
                item_id: ARCHIVE_ID.into(),
                owner_id: None,
                parent_kind: None,
                parent_id: None,
                title: Some("Archive".into()),
                personal_root: false,
                created_at: now.into(),
                updated_at: now.into(),
            },
        )?;
    }
    let template = &run.inp.policy.personal_folder.label;
    let display = if template.contains("{displayName}") {
        serde_json::from_str::<serde_json::Value>(&run.person.data)
            .ok()
            .and_then(|d| {
                d.get("displayName")
                    .and_then(|v| v.as_str())
                    .map(str::to_string)
            })
    } else {
        None
    };
    let title = label(template, now, &run.disposal_id, display.as_deref());
    // Shared with the new owner before the roots change hands.
    if let Some(o) = run.to() {
        ledger::share_personal_roots(c, t, p, o, now)?;
    }
    ledger::archive_personal_roots(c, t, p, (ARCHIVE_KIND, ARCHIVE_ID), &title, run.to(), now)
}

/// `items`: every other item, one statement per kind and action.
fn items(c: &mut AnyConnection, run: &Run<'_>) -> Result<(), StoreError> {
    let (t, p, now) = (run.tenant(), run.person_id(), run.inp.now);
    for kind in &run.kinds {
        let (action, to_owner) = item_action(run.inp.policy, kind, false, run.to());
        match action {
            ItemAction::Transfer | ItemAction::Orphan => {
                ledger::set_owner_of_kind(c, t, p, kind, to_owner.as_deref(), now)?;
            }
            ItemAction::Delete => ledger::delete_of_kind(c, t, p, kind)?,
            // keep: stays on the person's stub; personal roots (archive) have their own step
            ItemAction::Keep | ItemAction::Archive | ItemAction::Anonymize => {}
        }
    }
    Ok(())
}

/// `user_data`: deleted, anonymised (to a fresh stub for this disposal), or
/// kept; then the shares granted to the person are removed.
fn user_data(c: &mut AnyConnection, run: &Run<'_>) -> Result<(), StoreError> {
    user_data_moves(c, run)?;
    let (t, p) = (run.tenant(), run.person_id());
    ledger::remove_shares_to(c, t, p)
}

/// `user_data` but the shares (PostgreSQL's `close_pg` removes them).
fn user_data_moves(c: &mut AnyConnection, run: &Run<'_>) -> Result<(), StoreError> {
    let (t, p, now) = (run.tenant(), run.person_id(), run.inp.now);
    let mut anon_stub: Option<String> = None;
    for (category, (action, _)) in &run.plan.user_data {
        match action {
            ItemAction::Delete => ledger::delete_user_data(c, t, p, category)?,
            ItemAction::Anonymize => {
                let stub = match &anon_stub {
                    Some(s) => s.clone(),
                    None => {
                        let id = crate::store::new_id().to_string();
                        users::insert_stub(c, t, &id, UserState::Stub, now)?;
                        anon_stub = Some(id.clone());
                        id
                    }
                };
                ledger::move_user_data(c, t, p, category, &stub, now)?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// The person's emails: (value, folded value).
type Emails = Vec<(String, String)>;

/// `tombstone`: keyed hashes of every identifier, skipping any that another
/// active user holds now. Returns the person's emails (value, folded value)
/// and the tombstone written (`None`: a held DELETE wrote it before).
fn write_tombstone(
    c: &mut AnyConnection,
    run: &Run<'_>,
) -> Result<(Emails, Option<JournaledTombstone>), StoreError> {
    let emails = users::emails_of(c, run.tenant(), run.person_id())?;
    let t = Tombstone {
        disposal_id: &run.disposal_id,
        maybe_written: run.existing,
        emails: emails.iter().map(|(v, _)| v.clone()).collect(),
    };
    let written = tombstone::write(c, run.tenant(), &run.person, &t, run.inp.keys, run.inp.now)?;
    Ok((emails, written))
}

/// `scrub`: reports are repointed at the stub, then the person becomes a
/// "Deleted User" stub: no emails, SSO subjects, memberships or identifiers.
fn scrub(
    c: &mut AnyConnection,
    run: &Run<'_>,
    emails: Vec<(String, String)>,
    sso: bool,
) -> Result<(), StoreError> {
    let (t, p, now) = (run.tenant(), run.person_id(), run.inp.now);
    // The aliases `users::alias_keys` reads, from the rows already in hand.
    let mut aliases = vec![run.person.user_name_key.clone()];
    aliases.extend(run.person.external_id.as_deref().map(fold));
    aliases.extend(emails.into_iter().map(|(_, k)| k));
    reports::repoint(c, t, p, &aliases, now)?;
    if sso {
        ledger::remove_all_sso(c, t, p)?;
    }
    groups::remove_from_all_groups(c, t, p)?;
    users::scrub_to_stub(c, t, p, run.person.version, now)
}

/// `finish`: the disposal is done, with its counts, and audited.
fn finish(
    c: &mut AnyConnection,
    run: &Run<'_>,
    counts: &BTreeMap<String, u64>,
) -> Result<(), StoreError> {
    let (t, p, now) = (run.tenant(), run.person_id(), run.inp.now);
    let counts_json = serde_json::to_string(counts).unwrap_or_default();
    disposals::set_done(
        c,
        t,
        &run.disposal_id,
        &run.plan.hash,
        &run.plan.policy_digest,
        &counts_json,
        now,
    )?;
    audit::write(
        c,
        t,
        now,
        run.inp.actor,
        "user.disposed",
        "user",
        p,
        Some(&format!("{{\"disposalId\":\"{}\"}}", run.disposal_id)),
    )
}

/// The receipt's counts: items per action, user data per action.
fn counts(plan: &Plan) -> BTreeMap<String, u64> {
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for per_kind in plan.summary.values() {
        for (action, n) in per_kind {
            *counts.entry(action_count_name(*action).into()).or_default() += n;
        }
    }
    for (action, n) in plan.user_data.values() {
        *counts.entry(format!("userData.{action}")).or_default() += n;
    }
    counts
}

fn action_count_name(action: ItemAction) -> &'static str {
    match action {
        ItemAction::Transfer => "transferred",
        ItemAction::Orphan => "orphaned",
        ItemAction::Delete => "deleted",
        ItemAction::Archive => "archived",
        ItemAction::Keep | ItemAction::Anonymize => "kept",
    }
}

fn label(template: &str, now: &str, disposal_id: &str, display_name: Option<&str>) -> String {
    template
        .replace("{date}", now.get(..10).unwrap_or(now))
        .replace("{disposalId}", disposal_id)
        .replace("{displayName}", display_name.unwrap_or("Deleted User"))
}

#[cfg(test)]
mod tests {
    use super::label;

    #[test]
    fn archive_label_fills_its_placeholders() {
        assert_eq!(
            label(
                "(archived {date})",
                "2026-11-24T10:00:00.000000Z",
                "d1",
                None
            ),
            "(archived 2026-11-24)"
        );
        assert_eq!(
            label("(from {displayName})", "2026", "d", Some("Ann Lee")),
            "(from Ann Lee)"
        );
    }
}

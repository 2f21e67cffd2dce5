//! The disposal journal, as the deprovisioning side sees it: what each
//! disposal, held DELETE, lift and identifier release records
//! (`record_*`, queued in the write and appended by `Db` after the commit),
//! whether a database lacks a journaled change (`lacking`), and
//! `custodian disposals reapply` (`reapply`), which writes back what a
//! restored backup lacks, idempotently.

use super::disposal::Receipt;
use super::service::Deprov;
use crate::domain::journal::{JournalEntry, JournalRecord, JournaledTombstone};
use crate::domain::{Actor, Cause, DisposalState, UserState};
use crate::service_error::ServiceError;
use crate::store::disposals::{self, NewDisposal};
use crate::store::journal_queue::record_at_commit;
use crate::store::{AnyConnection, Db, StoreError, audit, deployment, tokens, tombstones, users};
use serde::Serialize;

/// The actor of what `reapply` writes (audit rows, disposal rows).
pub const REAPPLY_ACTOR: &str = "journal";

/// The deployment row holding the last journal `seq` this database was
/// checked against, as `<journal id>:<seq>` (a new journal starts over).
const CHECKED: &str = "journal_checked";

pub(super) fn record_disposed(
    c: &mut AnyConnection,
    r: &Actor,
    user_id: &str,
    cause: Cause,
    receipt: &Receipt,
    now: &str,
) -> Result<(), StoreError> {
    // The tombstone as this run wrote it; read back only when a held DELETE
    // wrote it before.
    let tombstones = match &receipt.tombstone {
        Some(t) => vec![t.clone()],
        None => tombstones::of_disposal(c, &r.tenant_id, &receipt.disposal_id)?,
    };
    record_at_commit(JournalRecord::Disposed {
        tenant_id: r.tenant_id.clone(),
        tenant_name: r.tenant_name.clone(),
        user_id: user_id.to_string(),
        disposal_id: receipt.disposal_id.clone(),
        cause,
        plan_hash: receipt.plan_hash.clone(),
        tombstones,
        at: now.to_string(),
    });
    Ok(())
}

pub(super) fn record_tombstoned(
    c: &mut AnyConnection,
    r: &Actor,
    user_id: &str,
    disposal_id: &str,
    now: &str,
) -> Result<(), StoreError> {
    let tombstones = tombstones::of_disposal(c, &r.tenant_id, disposal_id)?;
    record_at_commit(JournalRecord::Tombstoned {
        tenant_id: r.tenant_id.clone(),
        tenant_name: r.tenant_name.clone(),
        user_id: user_id.to_string(),
        disposal_id: disposal_id.to_string(),
        tombstones,
        at: now.to_string(),
    });
    Ok(())
}

pub(super) fn record_lifted(tenant: &str, tombstone_ids: &[String], now: &str) {
    record_at_commit(JournalRecord::Lifted {
        tenant_id: tenant.to_string(),
        tombstone_ids: tombstone_ids.to_vec(),
        at: now.to_string(),
    });
}

pub(super) fn record_released(tenant: &str, tombstone_id: &str, hash: &str, now: &str) {
    record_at_commit(JournalRecord::Released {
        tenant_id: tenant.to_string(),
        tombstone_id: tombstone_id.to_string(),
        hash: hash.to_string(),
        at: now.to_string(),
    });
}

/// A person the database still holds as someone (not a disposed stub).
fn live(state: Option<UserState>) -> bool {
    matches!(
        state,
        Some(UserState::Active | UserState::Suspended | UserState::DeletedPending)
    )
}

fn any_absent(
    c: &mut AnyConnection,
    tenant: &str,
    ts: &[JournaledTombstone],
) -> Result<bool, StoreError> {
    for t in ts {
        if tombstones::lifted(c, tenant, &t.id)?.is_none() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Whether the database lacks the change `record` journaled: a disposed
/// person still there (not a stub) or their tombstone missing; a held
/// DELETE's tombstone missing; a lifted tombstone live again; a released
/// hash back.
pub fn lacking(c: &mut AnyConnection, record: &JournalRecord) -> Result<bool, StoreError> {
    match record {
        JournalRecord::Disposed {
            tenant_id,
            user_id,
            tombstones: ts,
            ..
        } => Ok(live(users::state_of(c, tenant_id, user_id)?) || any_absent(c, tenant_id, ts)?),
        JournalRecord::Tombstoned {
            tenant_id,
            tombstones: ts,
            ..
        } => any_absent(c, tenant_id, ts),
        JournalRecord::Lifted {
            tenant_id,
            tombstone_ids,
            ..
        } => {
            for id in tombstone_ids {
                if tombstones::lifted(c, tenant_id, id)? == Some(false) {
                    return Ok(true);
                }
            }
            Ok(false)
        }
        JournalRecord::Released {
            tenant_id,
            tombstone_id,
            hash,
            ..
        } => tombstones::has_hash(c, tenant_id, tombstone_id, hash),
    }
}

/// The entries past the last check (`mark_checked`): entries up to the
/// marker were in this database when it was checked, so a backup taken
/// since holds them too.
pub fn unchecked<'a>(
    db: &Db,
    journal_id: &str,
    entries: &'a [JournalEntry],
) -> Result<Vec<&'a JournalEntry>, StoreError> {
    let checked = db.read(|c| deployment::check_value(c, CHECKED))?;
    let from = checked
        .as_deref()
        .and_then(|v| v.split_once(':'))
        .filter(|(id, _)| *id == journal_id)
        .and_then(|(_, seq)| seq.parse::<u64>().ok())
        .unwrap_or(0);
    Ok(entries.iter().filter(|e| e.seq > from).collect())
}

/// The entries past the last check whose changes the database lacks.
pub fn unapplied<'a>(
    db: &Db,
    journal_id: &str,
    entries: &'a [JournalEntry],
) -> Result<Vec<&'a JournalEntry>, StoreError> {
    let candidates = unchecked(db, journal_id, entries)?;
    db.read(|c| {
        let mut out = Vec::new();
        for e in candidates.iter().copied() {
            if lacking(c, &e.record)? {
                out.push(e);
            }
        }
        Ok(out)
    })
}

/// Records that the database holds every journal entry up to `seq`
/// (unchanged: nothing written).
pub fn mark_checked(db: &Db, journal_id: &str, seq: u64, now: &str) -> Result<(), StoreError> {
    let value = format!("{journal_id}:{seq}");
    if db.read(|c| deployment::check_value(c, CHECKED))?.as_deref() == Some(value.as_str()) {
        return Ok(());
    }
    db.write(|c| deployment::set_value(c, CHECKED, &value, now))
}

/// What `reapply` wrote back.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Reapplied {
    /// Journal entries the database lacked, written back.
    pub entries: usize,
    /// People the restored database still held, disposed again.
    pub people_disposed: usize,
    /// Tombstones written back (people the backup never had included).
    pub tombstones_restored: usize,
    pub lifts: usize,
    pub releases: usize,
    pub tenants_restored: usize,
}

impl Reapplied {
    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }
}

/// Writes back every journaled change the database lacks, in journal order,
/// each entry in its own transaction (`entries` from `unchecked`: an entry
/// can lack something only once an earlier one wrote it back, as a lift
/// needs its tombstone). Running it again changes nothing.
pub fn reapply(
    deprov: &Deprov,
    db: &Db,
    entries: &[&JournalEntry],
) -> Result<Reapplied, ServiceError> {
    let mut done = Reapplied::default();
    // Tombstones first, then lifts and releases: each append follows its
    // own commit, so within a write group a lift may be journaled before
    // the held DELETE's tombstone it lifts. A lift or release names its
    // tombstone by id, so applying them after every creation is the
    // journal's meaning whatever the line order.
    let changes = |e: &&&JournalEntry| {
        matches!(
            e.record,
            JournalRecord::Lifted { .. } | JournalRecord::Released { .. }
        )
    };
    let ordered = entries
        .iter()
        .filter(|e| !changes(e))
        .chain(entries.iter().filter(changes));
    for e in ordered {
        let now = deprov.now();
        let step = db.write_long(|c| -> Result<Reapplied, ServiceError> {
            let mut step = Reapplied::default();
            // Checked in the transaction, after the entries before it.
            if !lacking(c, &e.record)? {
                return Ok(step);
            }
            step.entries = 1;
            apply(deprov, c, &e.record, &mut step)?;
            audit::write(
                c,
                e.record.tenant_id(),
                &now,
                REAPPLY_ACTOR,
                "journal.reapplied",
                "journal",
                &e.seq.to_string(),
                None,
            )?;
            Ok(step)
        })?;
        done.entries += step.entries;
        done.people_disposed += step.people_disposed;
        done.tombstones_restored += step.tombstones_restored;
        done.lifts += step.lifts;
        done.releases += step.releases;
        done.tenants_restored += step.tenants_restored;
    }
    if done.people_disposed > 0 {
        // A command, not a request: fold the scrubbed pages into the file now,
        // before the process exits.
        db.checkpoint();
    }
    Ok(done)
}

fn apply(
    deprov: &Deprov,
    c: &mut AnyConnection,
    record: &JournalRecord,
    step: &mut Reapplied,
) -> Result<(), ServiceError> {
    match record {
        JournalRecord::Disposed {
            tenant_id,
            tenant_name,
            user_id,
            disposal_id,
            cause,
            tombstones: ts,
            at,
            ..
        } => {
            ensure_tenant(c, tenant_id, tenant_name, at, step)?;
            let row = disposals::find(c, tenant_id, disposal_id)?;
            if !live(users::state_of(c, tenant_id, user_id)?) {
                // Gone from the backup, or already a stub: only the tombstone.
                restore_tombstones(c, tenant_id, ts, row.map(|_| disposal_id.as_str()), step)?;
                return Ok(());
            }
            users::lock(c, tenant_id, user_id)?;
            if row.is_none() {
                disposals::insert(
                    c,
                    &NewDisposal {
                        id: disposal_id,
                        tenant_id,
                        user_id,
                        state: DisposalState::Held,
                        cause: *cause,
                        due_at: at,
                        actor: REAPPLY_ACTOR,
                        caller_user_id: None,
                        created_at: at,
                    },
                )?;
            }
            // The journaled tombstone first, under the disposal's id: the
            // disposal then keeps it rather than writing another.
            restore_tombstones(c, tenant_id, ts, Some(disposal_id), step)?;
            let r = Actor {
                tenant_id: tenant_id.clone(),
                tenant_name: tenant_name.clone(),
                actor: REAPPLY_ACTOR.to_string(),
                acts_as: None,
                caller_user_id: None,
            };
            deprov.redo_disposal(c, &r, user_id, disposal_id, *cause)?;
            step.people_disposed += 1;
        }
        JournalRecord::Tombstoned {
            tenant_id,
            tenant_name,
            disposal_id,
            tombstones: ts,
            at,
            ..
        } => {
            ensure_tenant(c, tenant_id, tenant_name, at, step)?;
            let row = disposals::find(c, tenant_id, disposal_id)?;
            restore_tombstones(c, tenant_id, ts, row.map(|_| disposal_id.as_str()), step)?;
        }
        JournalRecord::Lifted {
            tenant_id,
            tombstone_ids,
            at,
        } => {
            let n = tombstones::lift(c, tenant_id, tombstone_ids, at)?;
            step.lifts += n;
        }
        JournalRecord::Released {
            tenant_id,
            tombstone_id,
            hash,
            ..
        } => {
            step.releases += tombstones::delete_hash(c, tenant_id, tombstone_id, hash)?;
        }
    }
    Ok(())
}

fn restore_tombstones(
    c: &mut AnyConnection,
    tenant: &str,
    ts: &[JournaledTombstone],
    disposal_id: Option<&str>,
    step: &mut Reapplied,
) -> Result<(), StoreError> {
    for t in ts {
        if tombstones::lifted(c, tenant, &t.id)?.is_none() {
            tombstones::restore(c, tenant, t, disposal_id)?;
            step.tombstones_restored += 1;
        }
    }
    Ok(())
}

/// A restored database may predate the tenant: it comes back under its id.
fn ensure_tenant(
    c: &mut AnyConnection,
    id: &str,
    name: &str,
    at: &str,
    step: &mut Reapplied,
) -> Result<(), ServiceError> {
    if tokens::tenant_by_id(c, id)?.is_some() {
        return Ok(());
    }
    if tokens::find_tenant(c, name)?.is_some() {
        return Err(ServiceError::Conflict(format!(
            "the journal names tenant '{name}' with id {id}, but this database holds another tenant of that name"
        )));
    }
    tokens::insert_tenant(
        c,
        &tokens::TenantRow {
            id: id.to_string(),
            name: name.to_string(),
            created_at: at.to_string(),
        },
    )?;
    step.tenants_restored += 1;
    Ok(())
}

/// What the database lacks of the journal at `path`, as an error for
/// `serve` (which refuses to start) or `None`; records a clean check.
pub fn check_before_serving(db: &Db, path: &std::path::Path, now: &str) -> Result<(), String> {
    let Some(contents) = crate::journal::read(path)? else {
        return Ok(());
    };
    let missing = unapplied(db, &contents.id, &contents.entries).map_err(|e| e.to_string())?;
    if let (Some(first), Some(last)) = (missing.first(), missing.last()) {
        return Err(format!(
            "the disposal journal {} holds {} change(s) this database lacks (entries {}..{}): \
             it was probably restored from an older backup, and starting would bring disposed \
             people back. Run `custodian disposals reapply` (servers stopped) to write them back, \
             then start again, then force a full sync from your identity provider. If the journal \
             belongs to another database, point journal_path at this database's own journal.",
            path.display(),
            missing.len(),
            first.seq,
            last.seq
        ));
    }
    mark_checked(db, &contents.id, contents.last_seq(), now).map_err(|e| e.to_string())
}

//! PostgreSQL: what a disposal reads before it takes the tenant's counter
//! row (issue 17). The counter lock serialises a tenant's disposals and is
//! held to the commit, so every round trip after it costs the tenant's
//! disposal rate; everything here is read under the person's, their open
//! disposal's and their reports' row locks instead, which keep it true until
//! the commit (DESIGN-NOTES "Locking"): the person's emails and SSO subjects
//! (every write of them locks the person), the reports (locked here), the
//! tombstone's hashes (those skipped as another active user's are asked
//! again under the lock: `tombstone::Planned::recheck`). The plan is not: another disposal may still move
//! items to the person (its target) until it releases the counter row, so
//! `execute` plans under that lock, as before.

use super::tombstone::{self, Tombstone};
use crate::deprovision::tombstone::TombstoneKeys;
use crate::scim::fold::fold;
use crate::store::users::{Report, UserRow};
use crate::store::{AnyConnection, StoreError, disposals, ledger, users};

/// A disposal's reads, taken before the tenant's counter lock.
pub struct Prepared {
    pub(super) person: UserRow,
    pub(super) disposal_id: String,
    /// The disposal row existed before this run.
    pub(super) existing: bool,
    /// The person's reports, locked in id order.
    pub(super) reports: Vec<Report>,
    /// `None`: a held DELETE already wrote it.
    pub(super) tombstone: Option<tombstone::Planned>,
}

/// What `prepare` needs besides the connection.
pub struct PrepareInput<'a> {
    pub tenant_id: &'a str,
    /// The person's row, read in this transaction under their lock.
    pub person: &'a UserRow,
    pub keys: &'a TombstoneKeys,
    pub now: &'a str,
    /// The open disposal being completed (locked by the caller), if any.
    pub disposal_id: Option<&'a str>,
}

/// Locks the person's reports (in id order: the lock order of every
/// disposal path) and reads everything the disposal will write from. The
/// caller holds the person's row lock (and their open disposal's).
pub fn prepare(c: &mut AnyConnection, inp: &PrepareInput<'_>) -> Result<Prepared, StoreError> {
    let (t, person) = (inp.tenant_id, inp.person);
    let p = person.id.as_str();
    let emails = users::emails_of(c, t, p)?;
    // The aliases `users::alias_keys` reads, from the rows in hand.
    let mut aliases = vec![person.user_name_key.clone()];
    aliases.extend(person.external_id.as_deref().map(fold));
    aliases.extend(emails.iter().map(|(_, k)| k.clone()));
    let reports = users::reports_locked(c, t, p, &aliases)?;
    let (disposal_id, existing) = match inp.disposal_id {
        Some(id) => (id.to_string(), disposals::exists(c, t, id)?),
        None => (crate::store::new_id().to_string(), false),
    };
    let sso = ledger::sso_of(c, t, p)?;
    let tombstone = tombstone::plan(
        c,
        t,
        person,
        &Tombstone {
            disposal_id: &disposal_id,
            maybe_written: existing,
            emails: emails.iter().map(|(v, _)| v.clone()).collect(),
        },
        &sso,
        inp.keys,
        inp.now,
    )?;
    Ok(Prepared {
        person: person.clone(),
        disposal_id,
        existing,
        reports,
        tombstone,
    })
}

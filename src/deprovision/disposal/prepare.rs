//! PostgreSQL: what a disposal reads before it takes the tenant's counter
//! row (issue 17). The counter lock serialises a tenant's disposals and is
//! held to the commit, so every round trip after it costs the tenant's
//! disposal rate. Read here only what the person's and their open
//! disposal's row locks keep true until the commit (DESIGN-NOTES
//! "Locking"): the person's emails and SSO subjects (every write of them
//! locks the person) and whether the disposal row exists; and it locks the
//! person's reports (in id order) before the counter row, as a PATCH of a
//! report locks it before its commit takes the counter row. Read under the
//! counter lock by `execute`: the plan (another disposal may still move
//! items to the person, its target, until it releases the row), the reports
//! again (a create or PATCH may name the person as manager without locking
//! them: one that commits while this disposal waits must be repointed too)
//! and the tombstone (one that gives another active user one of the
//! person's emails meanwhile must keep it out).

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
    /// The person's reports when prepared, locked in id order.
    pub(super) reports: Vec<Report>,
    /// Every folded identifier reports may name the person by.
    pub(super) aliases: Vec<String>,
    /// The person's email values.
    pub(super) emails: Vec<String>,
    /// The person's SSO subjects (issuer, subject).
    pub(super) sso: Vec<(String, String)>,
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

/// Locks the person's reports and reads what the disposal will write from
/// that the caller's locks keep true. The caller holds the person's row lock
/// (and their open disposal's).
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
    Ok(Prepared {
        person: person.clone(),
        disposal_id,
        existing,
        reports,
        aliases,
        emails: emails.into_iter().map(|(v, _)| v).collect(),
        sso,
    })
}

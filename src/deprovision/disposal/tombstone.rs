//! The tombstone a disposal leaves: keyed hashes of every identifier the
//! person had, except those another active user holds now.

use crate::deprovision::evidence;
use crate::deprovision::tombstone::{IdType, NORM_VERSION, TombstoneKeys, sso_value};
use crate::domain::journal::{JournaledHash, JournaledTombstone};
use crate::scim::fold::fold;
use crate::store::users::{Key, UserRow};
use crate::store::{AnyConnection, StoreError, ledger, tombstones, users};

/// Tombstones a person now (a held DELETE), before their disposal runs.
pub fn tombstone_for(
    c: &mut AnyConnection,
    tenant: &str,
    person: &str,
    disposal_id: &str,
    keys: &TombstoneKeys,
    now: &str,
) -> Result<(), StoreError> {
    let row = users::get_any(c, tenant, person)?;
    let emails = users::emails_of(c, tenant, person)?
        .into_iter()
        .map(|(value, _)| value)
        .collect();
    let tombstone = Tombstone {
        disposal_id,
        maybe_written: true,
        emails,
    };
    write(c, tenant, &row, &tombstone, keys, now).map(|_| ())
}

/// A tombstone to write: for which disposal, and the person's emails.
pub(super) struct Tombstone<'a> {
    pub disposal_id: &'a str,
    /// The disposal existed before this run, so a held DELETE may already
    /// have tombstoned the person for it.
    pub maybe_written: bool,
    pub emails: Vec<String>,
}

/// Writes the tombstone and returns it as the journal records it (`None`:
/// a held DELETE had already written it, not this call).
pub(super) fn write(
    c: &mut AnyConnection,
    t: &str,
    person: &UserRow,
    tombstone: &Tombstone<'_>,
    keys: &TombstoneKeys,
    now: &str,
) -> Result<Option<JournaledTombstone>, StoreError> {
    let sso = ledger::sso_of(c, t, &person.id)?;
    let Some(planned) = plan(c, t, person, tombstone, &sso, keys, now)? else {
        return Ok(None);
    };
    insert(c, t, tombstone.disposal_id, &planned.tombstone)?;
    Ok(Some(planned.tombstone))
}

/// A tombstone read but not written.
#[derive(Debug, Clone)]
pub(super) struct Planned {
    pub tombstone: JournaledTombstone,
}

/// The tombstone a disposal would write, read but not written (`None`: a
/// held DELETE already wrote it): every identifier's keyed hash, skipping
/// those another active user holds now, in byte order (as
/// `tombstones::of_disposal` reads them back). `sso`: the person's subjects.
pub(super) fn plan(
    c: &mut AnyConnection,
    t: &str,
    person: &UserRow,
    tombstone: &Tombstone<'_>,
    sso: &[(String, String)],
    keys: &TombstoneKeys,
    now: &str,
) -> Result<Option<Planned>, StoreError> {
    let disposal_id = tombstone.disposal_id;
    // A held DELETE already tombstoned this person for this disposal.
    if tombstone.maybe_written && tombstones::exists_for(c, t, disposal_id)? {
        return Ok(None);
    }
    let p = person.id.as_str();
    let mut ids: Vec<(IdType, String)> = vec![(IdType::UserName, person.user_name.clone())];
    if let Some(x) = &person.external_id {
        ids.push((IdType::ExternalId, x.clone()));
    }
    ids.extend(tombstone.emails.iter().map(|e| (IdType::Email, e.clone())));
    for (issuer, subject) in sso {
        ids.push((IdType::Sso, sso_value(issuer, subject)));
    }
    // Kept even when the hash itself is skipped below: the identity rule
    // needs to know the person had one ("Identity evidence").
    let had_external_id = person
        .external_id
        .as_deref()
        .and_then(evidence::external_id)
        .is_some();
    let mut hashes: Vec<JournaledHash> = Vec::with_capacity(ids.len());
    for (ty, value) in ids {
        if !theirs_alone(person, ty, &value) && held_by_other_active(c, t, p, ty, &value)? {
            continue;
        }
        let hash = keys.hash(t, ty, &value);
        if hashes.iter().any(|h| h.hash == hash) {
            continue;
        }
        hashes.push(JournaledHash {
            id_type: ty.as_str().to_string(),
            hash,
            norm_version: NORM_VERSION,
        });
    }
    hashes.sort_by(|a, b| a.hash.cmp(&b.hash));
    Ok(Some(Planned {
        tombstone: JournaledTombstone {
            id: crate::store::new_id().to_string(),
            had_external_id,
            created_at: now.to_string(),
            hashes,
        },
    }))
}

/// Writes a planned tombstone for `disposal_id`: the row, then its hashes.
fn insert(
    c: &mut AnyConnection,
    t: &str,
    disposal_id: &str,
    planned: &JournaledTombstone,
) -> Result<(), StoreError> {
    let id = planned.id.as_str();
    tombstones::insert(
        c,
        t,
        id,
        disposal_id,
        planned.had_external_id,
        &planned.created_at,
    )?;
    for h in &planned.hashes {
        tombstones::insert_hash(c, t, id, &h.hash, &h.id_type, h.norm_version)?;
    }
    Ok(())
}

/// Whether no other visible user can hold this identifier of a visible
/// person: the partial unique indexes keep a userName key and an externalId
/// to one visible user of the tenant, so the lookup would find nobody (when
/// the value looked up is the one stored; a legacy untrimmed externalId is
/// looked up trimmed).
fn theirs_alone(person: &UserRow, ty: IdType, value: &str) -> bool {
    person.state.is_visible()
        && match ty {
            IdType::UserName => fold(value) == person.user_name_key,
            IdType::ExternalId => {
                value.trim() == value && person.external_id.as_deref() == Some(value)
            }
            IdType::Email | IdType::Sso => false,
        }
}

/// An identifier another active user holds is not tombstoned (it is theirs now).
fn held_by_other_active(
    c: &mut AnyConnection,
    tenant: &str,
    person: &str,
    ty: IdType,
    value: &str,
) -> Result<bool, StoreError> {
    let other = |c: &mut AnyConnection, key, v: &str| {
        users::active_other_by(c, tenant, key, v, person).map(|o| o.is_some())
    };
    match ty {
        IdType::UserName => other(c, Key::UserName, &fold(value)),
        IdType::ExternalId => other(c, Key::ExternalId, value.trim()),
        IdType::Email => users::email_held_by_other_active(c, tenant, &fold(value), person),
        IdType::Sso => Ok(false),
    }
}

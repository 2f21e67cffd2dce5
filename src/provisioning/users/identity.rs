//! Identity evidence on the SCIM path: tombstone checks and the joins they
//! allow (`deprovision::evidence` decides; this applies it to a write).

use super::*;

/// The tombstone hashes of a new user's identifiers (`tombstone_check`).
pub(super) fn tombstone_hashes(svc: &Services, caller: &Actor, k: &UserKeys) -> Vec<String> {
    let mut ids = vec![(IdType::UserName, k.user_name.clone())];
    if let Some(x) = &k.external_id {
        ids.push((IdType::ExternalId, x.clone()));
    }
    ids.extend(k.emails.iter().map(|e| (IdType::Email, e.value.clone())));
    tombstones::hashes_of(&svc.deprov.keys, &caller.tenant_id, &ids)
}

/// Whose identifiers a tombstone is compared with (see `tombstone_evidence`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Join {
    /// A POST's new record: may be the person coming back under their userName.
    New,
    /// An existing record taking a new identifier (rename, restore).
    Existing,
}

/// Live tombstones matching a record's new identifiers (`hashes`). Under
/// `on_scim_create = "reject"` any match is a 409, whether the evidence says
/// the person came back or someone else took a recycled identifier — except a
/// disagreeing match on a `reuse` tombstone: the policy already chose to free
/// that identifier for someone else.
pub(super) fn tombstone_check(
    c: &mut AnyConnection,
    caller: &Actor,
    policy: &Policy,
    hashes: &[String],
    has_external_id: bool,
    join: Join,
) -> Result<Vec<TombstoneMatch>, ServiceError> {
    let found = tombstones::matching_hashes(c, &caller.tenant_id, hashes)?;
    if policy.on_scim_create != OnScimCreate::Reject {
        return Ok(found);
    }
    for (tomb, matches) in by_tombstone(&found) {
        let detail = match tombstone_evidence(&matches, has_external_id, join) {
            Evidence::Disagrees if matches.iter().all(|m| m.reuse) => continue,
            Evidence::Agrees => format!(
                "this person was deprovisioned (tombstone {tomb}) and the tenant's policy rejects re-creating them until an admin lifts the tombstone"
            ),
            Evidence::Disagrees => format!(
                "an identifier of this user ({}) belonged to a deprovisioned, different person (tombstone {tomb}) and the tenant's policy rejects reusing it until an admin releases that identifier (POST /admin/v1/tombstones:release)",
                matched_types(&matches).join(", ")
            ),
        };
        return Err(ScimError::uniqueness(detail).into());
    }
    Ok(found)
}

/// Matches grouped by tombstone, in a stable order.
pub(super) fn by_tombstone(found: &[TombstoneMatch]) -> BTreeMap<&str, Vec<&TombstoneMatch>> {
    let mut by: BTreeMap<&str, Vec<&TombstoneMatch>> = BTreeMap::new();
    for m in found {
        by.entry(m.tombstone_id.as_str()).or_default().push(m);
    }
    by
}

pub(super) fn matched_types<'a>(matches: &[&'a TombstoneMatch]) -> Vec<&'a str> {
    let mut t: Vec<&str> = matches.iter().map(|m| m.id_type.as_str()).collect();
    t.sort_unstable();
    t.dedup();
    t
}

pub(super) fn tombstone_evidence(
    matches: &[&TombstoneMatch],
    has_external_id: bool,
    join: Join,
) -> Evidence {
    let types = matched_types(matches);
    match join {
        Join::New => {
            let had = matches.iter().any(|m| m.had_external_id);
            evidence::tombstone(had, has_external_id, &types)
        }
        Join::Existing => evidence::tombstone_for_existing(&types),
    }
}

/// After a record took identifiers that live tombstones hold (create, restore,
/// rename), per tombstone: the same person coming back lifts it (`relink` also
/// hands back the content of the old receipt); a different person in a recycled
/// identifier releases only the hashes of identifiers this record carries — the
/// rest (the old externalId, SSO subjects, other emails) keeps denying the
/// leaver — moves nothing, and is audited as `identity.reused`.
#[allow(clippy::too_many_arguments)]
pub(super) fn apply_tombstones(
    c: &mut AnyConnection,
    caller: &Actor,
    policy: &Policy,
    user_id: &str,
    found: &[TombstoneMatch],
    has_external_id: bool,
    join: Join,
    now: &str,
) -> Result<(), ServiceError> {
    let relink = policy.on_scim_create == OnScimCreate::Relink;
    for (tomb, matches) in by_tombstone(found) {
        if tombstone_evidence(&matches, has_external_id, join) == Evidence::Disagrees {
            let owned: Vec<TombstoneMatch> = matches.iter().map(|m| (*m).clone()).collect();
            tombstones::release_hashes(c, &caller.tenant_id, &owned, &caller.actor, now)?;
            crate::store::audit::write(
                c,
                &caller.tenant_id,
                now,
                &caller.actor,
                "identity.reused",
                "user",
                user_id,
                Some(
                    &json!({"tombstoneId": tomb, "identifiers": matched_types(&matches)})
                        .to_string(),
                ),
            )?;
            continue;
        }
        tombstones::lift(
            c,
            &caller.tenant_id,
            &[tomb.to_string()],
            &caller.actor,
            now,
            if relink { "relink" } else { "rehire" },
        )?;
        if relink && let Some(d) = matches.iter().find_map(|m| m.disposal_id.as_deref()) {
            // The tenant's counter before content rows, as transfers and disposals
            // take them (DESIGN-NOTES "Locking").
            crate::events::lock_tenant(c, &caller.tenant_id)?;
            tombstones::relink(c, &caller.tenant_id, d, user_id, now)?;
        }
    }
    Ok(())
}

/// A document and its keys that passed the identity checks of a write onto an
/// existing user, with the tombstones its new identifiers matched.
pub(super) struct Identity {
    pub(super) doc: Doc,
    pub(super) keys: UserKeys,
    pub(super) tombs: Vec<TombstoneMatch>,
}

pub(super) enum Checked {
    Write(Box<Identity>),
    /// A suspended user's externalId replaced by another person's, under
    /// `dispose_previous`: dispose the holder, answer 404 (the IdP re-POSTs).
    DisposeHolder,
}

/// The identity checks of every write onto an existing user (restore in place,
/// PUT, PATCH, Bulk): a suspended user cannot be given another person's
/// externalId; the new document takes no identifier another visible user
/// holds; identifiers it did not hold before follow the tombstone rules. (A
/// restore and a PUT without externalId keep the stored one, see their callers;
/// an explicit PATCH `remove` takes it away, RFC 7644 §3.5.2.2.)
pub(super) fn checked_identity(
    svc: &Services,
    c: &mut AnyConnection,
    caller: &Actor,
    policy: &Policy,
    row: &UserRow,
    old_doc: &Doc,
    doc: Doc,
) -> Result<Checked, ServiceError> {
    if row.state == UserState::Suspended {
        let keys_external = doc.get("externalId").and_then(Value::as_str);
        if evidence::live(row.external_id.as_deref(), keys_external, true) == Evidence::Disagrees {
            return match policy.on_reuse {
                OnReuse::Reject => Err(ScimError::uniqueness(format!(
                    "user {} is suspended pending disposal, and the new externalId says it is a different person: \
                     a recycled identifier cannot take over a suspended account (its content and schedule stay with it; \
                     the tenant's policy can dispose it at once: identity.on_reuse = \"dispose_previous\")",
                    row.id
                ))
                .into()),
                OnReuse::DisposePrevious => Ok(Checked::DisposeHolder),
            };
        }
    }
    let keys = user_keys(&doc);
    refuse_conflicts(c, caller, row, &keys)?;
    let hashes = new_identifier_hashes(svc, caller, row, old_doc, &doc, &keys);
    let tombs = tombstone_check(
        c,
        caller,
        policy,
        &hashes,
        keys.external_id.is_some(),
        Join::Existing,
    )?;
    Ok(Checked::Write(Box::new(Identity { doc, keys, tombs })))
}

/// Tombstone hashes of the identifiers `keys` gives the user that it does not
/// hold yet (a rename, a new email): the ones it holds were checked when it
/// took them.
pub(super) fn new_identifier_hashes(
    svc: &Services,
    caller: &Actor,
    row: &UserRow,
    old_doc: &Doc,
    doc: &Doc,
    keys: &UserKeys,
) -> Vec<String> {
    let mut ids = Vec::new();
    if keys.user_name_key != row.user_name_key {
        ids.push((IdType::UserName, keys.user_name.clone()));
    }
    if let Some(x) = &keys.external_id
        && row.external_id.as_ref() != Some(x)
    {
        ids.push((IdType::ExternalId, x.clone()));
    }
    if old_doc.get("emails") != doc.get("emails") {
        let held: HashSet<String> = old_doc
            .get("emails")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|e| e.get("value").and_then(Value::as_str))
            .map(fold)
            .collect();
        ids.extend(
            keys.emails
                .iter()
                .filter(|e| !held.contains(&e.value_key))
                .map(|e| (IdType::Email, e.value.clone())),
        );
    }
    tombstones::hashes_of(&svc.deprov.keys, &caller.tenant_id, &ids)
}

//! Users: create (or restore a suspended user in place), read, replace, patch,
//! delete, list. `active=false` suspends; it never hides the user.

use super::{Rendered, ServiceError, Services, check_if_match, corrupt, listing};
use crate::deprovision::evidence::{self, Evidence};
use crate::deprovision::policy::{OnReuse, OnScimCreate, Policy};
use crate::deprovision::service::Outcome;
use crate::deprovision::tombstone::IdType;
use crate::deprovision::tombstones::{self, TombstoneMatch};
use crate::scim::error::ScimError;
use crate::scim::fold::fold;
use crate::scim::list::ListParams;
use crate::scim::patch::{self, Operation, PatchContext};
use crate::scim::resource::{Doc, Meta, Projection, UserKeys, normalize_within, render, user_keys};
use crate::scim::schema::USER_TYPE;
use crate::store::users::UserRow;
use crate::store::{self, AnyConnection, StoreError, filter_sql};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashSet};

use crate::domain::{Actor, Cause, UserState};
use crate::events::payload;

mod identity;
mod lists;

use identity::*;
pub use lists::*;

fn meta(row: &UserRow, base: &str) -> Meta {
    Meta {
        resource_type: "User",
        created: row.created_at.clone(),
        last_modified: row.updated_at.clone(),
        version: row.version,
        location: format!("{base}/Users/{}", row.id),
    }
}

fn doc_of(row: &UserRow) -> Result<Doc, ServiceError> {
    Ok(serde_json::from_str(&row.data).map_err(corrupt)?)
}

/// (user id, group id, group displayName) of each membership.
pub(crate) type Memberships = Vec<(String, String, String)>;

/// The memberships that rendering `rows` needs: none unless the projection
/// wants the read-only `groups`.
fn memberships_of(
    conn: &mut AnyConnection,
    caller: &Actor,
    rows: &[UserRow],
    projection: &Projection,
) -> Result<Memberships, ServiceError> {
    if !projection.wants(&USER_TYPE, "groups") {
        return Ok(vec![]);
    }
    let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
    Ok(store::users::groups_of(conn, &caller.tenant_id, &ids)?)
}

/// Renders users, adding the read-only `groups` when the projection wants it.
fn render_with<'a>(
    rows: impl IntoIterator<Item = &'a UserRow>,
    memberships: &Memberships,
    projection: &Projection,
    base: &str,
) -> Result<Vec<Value>, ServiceError> {
    rows.into_iter()
        .map(|row| {
            let mut v = render(&USER_TYPE, &row.id, &doc_of(row)?, &meta(row, base));
            let groups: Vec<Value> = memberships
                .iter()
                .filter(|(uid, _, _)| uid == &row.id)
                .map(|(_, gid, name)| json!({"value": gid, "$ref": format!("{base}/Groups/{gid}"), "display": name, "type": "direct"}))
                .collect();
            if !groups.is_empty()
                && let Some(o) = v.as_object_mut()
            {
                o.insert("groups".into(), Value::Array(groups));
            }
            Ok(projection.apply(&USER_TYPE, v))
        })
        .collect()
}

/// A write reads what the response needs (`memberships_of`) and returns; the
/// rendering happens here, after the commit, so it does not hold the writer.
fn rendered_with(
    row: &UserRow,
    memberships: &Memberships,
    projection: &Projection,
    base: &str,
    restored: bool,
) -> Result<Rendered, ServiceError> {
    let body = render_with(std::slice::from_ref(row), memberships, projection, base)?
        .pop()
        .unwrap_or(Value::Null);
    let m = meta(row, base);
    Ok(Rendered {
        body,
        members_json: None,
        etag: m.etag(),
        location: m.location,
        restored,
    })
}

/// Visible users other than `except` that hold this userName or externalId.
fn conflicts(
    conn: &mut AnyConnection,
    caller: &Actor,
    k: &UserKeys,
    except: Option<&str>,
) -> Result<Vec<UserRow>, ServiceError> {
    Ok(store::users::find_by_identifiers(
        conn,
        &caller.tenant_id,
        &k.user_name_key,
        k.external_id.as_deref(),
    )?
    .into_iter()
    .filter(|r| Some(r.id.as_str()) != except)
    .collect())
}

fn conflict_error(found: &[UserRow], k: &UserKeys) -> ScimError {
    let which = |r: &UserRow| {
        if r.user_name_key == k.user_name_key {
            "userName"
        } else {
            "externalId"
        }
    };
    match found {
        [one] => ScimError::uniqueness(format!(
            "a user with this {} already exists (id {}){}",
            which(one),
            one.id,
            if one.state == UserState::Suspended {
                " and is suspended"
            } else {
                ""
            }
        )),
        many => ScimError::uniqueness(format!(
            "this userName and externalId belong to different existing users ({})",
            many.iter()
                .map(|r| format!("{} by {}", r.id, which(r)))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// What a create's write did; a new user is rendered after the commit.
enum Created {
    New,
    /// The suspended user restored in place, with its memberships.
    Restored(Box<UserRow>, Memberships),
    /// The userName is held by a suspended, *different* person and the policy
    /// says `identity.on_reuse = "dispose_previous"`: that user (this id) is
    /// disposed first, alone, then the create runs again.
    DisposeFirst(String),
}

/// Everything a create prepared before its write.
struct NewUser<'a> {
    doc: &'a Doc,
    keys: &'a UserKeys,
    tomb_hashes: &'a [String],
    row: &'a UserRow,
    attrs: &'a [String],
    now: &'a str,
}

pub fn create(
    svc: &Services,
    caller: &Actor,
    body: &Value,
    projection: &Projection,
    base: &str,
) -> Result<Rendered, ServiceError> {
    let mut doc = normalize_within(&USER_TYPE, body, &svc.limits)?;
    // POST without `active` means active.
    if !doc.contains_key("active") {
        doc.insert("active".into(), Value::Bool(true));
    }
    let now = svc.deprov.now();
    let policy = svc.deprov.policy(&caller.tenant_name);
    // Everything that needs no database is done before the write begins:
    // writes queue for SQLite's one writer, so time spent inside is everyone's.
    let keys = user_keys(&doc);
    let tomb_hashes = tombstone_hashes(svc, caller, &keys);
    let row = new_row(caller, &doc, &keys, &now);
    let attrs: Vec<String> = doc.keys().cloned().collect();
    let new = NewUser {
        doc: &doc,
        keys: &keys,
        tomb_hashes: &tomb_hashes,
        row: &row,
        attrs: &attrs,
        now: &now,
    };
    let attempt = || {
        svc.db
            .write(|c| create_in(svc, c, caller, &policy, &new, projection))
    };
    let created = match attempt()? {
        Created::DisposeFirst(holder) => {
            dispose_previous(svc, caller, &holder, |r| {
                r.user_name_key == keys.user_name_key
                    && evidence::live(r.external_id.as_deref(), keys.external_id.as_deref(), true)
                        == Evidence::Disagrees
            })?;
            // The holder's new tombstone is a `reuse` one: it never blocks the
            // person it was disposed for.
            let again = attempt().map_err(|e| match e {
                ServiceError::Store(StoreError::Deadline(_)) => ServiceError::Store(
                    StoreError::DeadlineAfter("the previous holder of the userName was disposed"),
                ),
                e => e,
            });
            match again? {
                Created::DisposeFirst(_) => {
                    return Err(ScimError::uniqueness(
                        "the userName was taken again by another suspended account while the request ran; retry the request",
                    )
                    .into());
                }
                done => done,
            }
        }
        done => done,
    };
    match created {
        // A new id: no group can hold it yet.
        Created::New | Created::DisposeFirst(_) => {
            rendered_with(&row, &vec![], projection, base, false)
        }
        Created::Restored(row, memberships) => {
            rendered_with(&row, &memberships, projection, base, true)
        }
    }
}

/// The create's write.
fn create_in(
    svc: &Services,
    c: &mut AnyConnection,
    caller: &Actor,
    policy: &Policy,
    new: &NewUser<'_>,
    projection: &Projection,
) -> Result<Created, ServiceError> {
    let (keys, row, now) = (new.keys, new.row, new.now);
    let found = conflicts(c, caller, keys, None)?;
    match found.as_slice() {
        [] => {
            let has_external_id = keys.external_id.is_some();
            let tombs = tombstone_check(
                c,
                caller,
                policy,
                new.tomb_hashes,
                has_external_id,
                Join::New,
            )?;
            store::users::insert(c, row, keys)?;
            audit_user(c, caller, "user.created", &row.id, Some(new.attrs), now)?;
            apply_tombstones(
                c,
                caller,
                policy,
                &row.id,
                &tombs,
                has_external_id,
                Join::New,
                now,
            )?;
            if row.state == UserState::Suspended {
                crate::events::emit_at_commit(
                    c,
                    &caller.tenant_id,
                    Some(&row.id),
                    &payload::UserSuspended {},
                    now,
                )?;
                svc.deprov.schedule_in(c, caller, &row.id)?;
            }
            tracing::info!(user_id = %row.id, actor = %caller.actor, "user created");
            Ok(Created::New)
        }
        [existing] if existing.state == UserState::Suspended => {
            let same = evidence::live(
                existing.external_id.as_deref(),
                keys.external_id.as_deref(),
                existing.user_name_key == keys.user_name_key,
            );
            if same == Evidence::Disagrees {
                return match policy.on_reuse {
                    OnReuse::Reject => Err(reuse_refused(&existing.id).into()),
                    OnReuse::DisposePrevious => {
                        // Everything else that could refuse this person is
                        // checked before anyone is disposed for them: a
                        // disposal cannot be undone.
                        tombstone_check(
                            c,
                            caller,
                            policy,
                            new.tomb_hashes,
                            keys.external_id.is_some(),
                            Join::New,
                        )?;
                        Ok(Created::DisposeFirst(existing.id.clone()))
                    }
                };
            }
            // The same person: Okta re-POSTs a user it deactivated. Restore that
            // record in place (PUT semantics), keeping its id.
            // Lock and re-read: a disposal (grace expiry) may have committed
            // since the conflict check.
            crate::store::users::lock(c, &caller.tenant_id, &existing.id)?;
            let mut row = match store::users::find(c, &caller.tenant_id, &existing.id)? {
                Some(r)
                    if r.state == UserState::Suspended
                        && (r.user_name_key == keys.user_name_key
                            || (r.external_id.is_some() && r.external_id == keys.external_id)) =>
                {
                    r
                }
                _ => {
                    return Err(ScimError::uniqueness("this user changed while the request ran (it was just disposed, reactivated or renamed); retry the request").into());
                }
            };
            let old_doc = doc_of(&row)?;
            // A restore that carries no externalId keeps the stored one.
            let mut doc = new.doc.clone();
            if let Some(x) = &row.external_id
                && !doc.contains_key("externalId")
            {
                doc.insert("externalId".into(), Value::String(x.clone()));
            }
            let (row, memberships) = match write_checked(
                svc, c, caller, policy, &mut row, &old_doc, doc, projection, now,
            )? {
                Written::Done(row, memberships) => (row, memberships),
                // Re-read under the lock, the holder now disagrees: the general rule.
                Written::DisposeHolder(row) => return Ok(Created::DisposeFirst(row.id)),
            };
            crate::events::emit_at_commit(
                c,
                &caller.tenant_id,
                Some(&row.id),
                &payload::UserRestored {},
                now,
            )?;
            audit_user(c, caller, "user.restored", &row.id, None, now)?;
            tracing::info!(user_id = %row.id, actor = %caller.actor, "user restored");
            Ok(Created::Restored(row, memberships))
        }
        many => Err(conflict_error(many, keys).into()),
    }
}

/// 409 for a recycled identifier that would take over a suspended account.
fn reuse_refused(holder: &str) -> ScimError {
    ScimError::uniqueness(format!(
        "this userName is held by a suspended account pending disposal (id {holder}) whose externalId says it is a different person; \
         the name is freed when that account is disposed (the tenant's policy can dispose it at once: identity.on_reuse = \"dispose_previous\")"
    ))
}

/// `identity.on_reuse = "dispose_previous"`: disposes the suspended holder now,
/// as its own transaction (like a DELETE: counted by the brake, audited, with a
/// receipt, a tombstone and a `user.disposed` event). `still` re-checks, under
/// the holder's lock, that it is still the different person the request saw.
/// A held disposal (brake, legal hold) is a 409: the holder keeps the name.
fn dispose_previous(
    svc: &Services,
    caller: &Actor,
    holder: &str,
    still: impl Fn(&UserRow) -> bool,
) -> Result<(), ServiceError> {
    let now = svc.deprov.now();
    let receipt = svc.db.write_long(|c| -> Result<_, ServiceError> {
        crate::store::users::lock(c, &caller.tenant_id, holder)?;
        match store::users::find(c, &caller.tenant_id, holder)? {
            Some(r) if r.state == UserState::Suspended && still(&r) => {}
            _ => {
                return Err(ScimError::uniqueness("the suspended account holding this identifier changed while the request ran; retry the request").into());
            }
        }
        match svc
            .deprov
            .dispose_in(c, caller, holder, Cause::Reuse, None)?
        {
            Outcome::Disposed(r) => {
                audit_user(c, caller, "identity.reused", holder, None, &now)?;
                Ok(r)
            }
            // An error rolls the hold back: a refused request must not park the
            // holder's scheduled disposal, trip the brake or announce anything.
            Outcome::Held { reason, .. } => Err(ScimError::uniqueness(format!(
                "this identifier is held by a suspended account whose disposal is held ({reason}); an admin must release or dispose it before the identifier can be reused"
            ))
            .into()),
        }
    })?;
    svc.db.checkpoint_soon();
    tracing::info!(user_id = %holder, disposal_id = %receipt.disposal_id, actor = %caller.actor, "previous holder disposed for reuse");
    Ok(())
}

/// The row for a new user (a fresh id).
fn new_row(caller: &Actor, doc: &Doc, keys: &UserKeys, now: &str) -> UserRow {
    UserRow::new(
        crate::store::new_id().to_string(),
        caller.tenant_id.clone(),
        Value::Object(doc.clone()).to_string(),
        keys,
        now,
    )
}

/// Top-level attribute names whose values differ (names only, never values).
fn changed_attributes(before: &Doc, after: &Doc) -> Vec<String> {
    let mut names: Vec<String> = before
        .keys()
        .chain(after.keys())
        .filter(|k| before.get(*k) != after.get(*k))
        .cloned()
        .collect();
    names.sort();
    names.dedup();
    names
}

fn audit_user(
    c: &mut AnyConnection,
    caller: &Actor,
    action: &str,
    id: &str,
    attrs: Option<&[String]>,
    now: &str,
) -> Result<(), ServiceError> {
    let detail = attrs.map(|a| json!({"attributes": a}).to_string());
    crate::store::audit::write(
        c,
        &caller.tenant_id,
        now,
        &caller.actor,
        action,
        "user",
        id,
        detail.as_deref(),
    )?;
    Ok(())
}

/// Stores a new document for an existing row: keys, state, version, emails; a
/// suspension schedules disposal, a reactivation cancels it (same transaction).
#[allow(clippy::too_many_arguments)]
fn write_doc(
    svc: &Services,
    c: &mut AnyConnection,
    caller: &Actor,
    row: &mut UserRow,
    old_doc: &Doc,
    doc: Doc,
    mut keys: UserKeys,
    now: &str,
) -> Result<(), ServiceError> {
    // A document without `active` (a PATCH removed it) changes no state: a
    // suspension is never lifted by accident.
    if !doc.contains_key("active") {
        keys.active = row.state == UserState::Active;
    }
    let before = row.state;
    let old_row = row.clone();
    let changed = changed_attributes(old_doc, &doc);
    let emails_changed = old_doc.get("emails") != doc.get("emails");
    row.set_keys(&keys);
    row.apply_active(keys.active, now);
    row.data = Value::Object(doc).to_string();
    row.updated_at = now.to_string();
    row.version += 1;
    store::users::update(c, &old_row, row, &keys, emails_changed)?;
    if old_row.external_id.is_some() && old_row.external_id != row.external_id {
        // Allowed for an active user (a suspended one keeps its own, see
        // `checked_identity`), but it re-points the person's identity evidence.
        audit_user(c, caller, "user.external_id_changed", &row.id, None, now)?;
    }
    if !changed.is_empty() {
        audit_user(c, caller, "user.updated", &row.id, Some(&changed), now)?;
    }
    match (before, row.state) {
        (UserState::Active, UserState::Suspended) => {
            audit_user(c, caller, "user.suspended", &row.id, None, now)?;
            // Event first: the platform ends sessions at once.
            crate::events::emit_at_commit(
                c,
                &caller.tenant_id,
                Some(&row.id),
                &payload::UserSuspended {},
                now,
            )?;
            svc.deprov.schedule_in(c, caller, &row.id)?;
        }
        (UserState::Suspended, UserState::Active) => {
            audit_user(c, caller, "user.reactivated", &row.id, None, now)?;
            svc.deprov.cancel_in(c, caller, &row.id)?;
            crate::events::emit_at_commit(
                c,
                &caller.tenant_id,
                Some(&row.id),
                &payload::UserReactivated {},
                now,
            )?;
        }
        _ => {}
    }
    Ok(())
}

pub fn get(
    svc: &Services,
    caller: &Actor,
    id: &str,
    projection: &Projection,
    base: &str,
) -> Result<Rendered, ServiceError> {
    // Read on the pooled connection; rendered after it is returned.
    let (row, memberships) = svc.db.read(|c| -> Result<_, ServiceError> {
        let row = store::users::find(c, &caller.tenant_id, id)?.ok_or_else(|| not_found(id))?;
        let memberships = memberships_of(c, caller, std::slice::from_ref(&row), projection)?;
        Ok((row, memberships))
    })?;
    rendered_with(&row, &memberships, projection, base, false)
}

pub fn not_found(id: &str) -> ScimError {
    ScimError::not_found(format!("no user with id {id}"))
}

pub fn replace(
    svc: &Services,
    caller: &Actor,
    id: &str,
    body: &Value,
    if_match: Option<&str>,
    projection: &Projection,
    base: &str,
) -> Result<Rendered, ServiceError> {
    let mut doc = normalize_within(&USER_TYPE, body, &svc.limits)?;
    let now = svc.deprov.now();
    let policy = svc.deprov.policy(&caller.tenant_name);
    let written = svc.db.write(|c| {
        let mut row = locked(c, caller, id, if_match, base)?;
        // PUT without `active` leaves it unchanged; so does PUT without
        // `externalId`: IdPs that PUT whole profiles would otherwise erase the
        // identity evidence on every update (removing it takes an explicit PATCH).
        if !doc.contains_key("active") {
            doc.insert("active".into(), Value::Bool(row.state == UserState::Active));
        }
        if let Some(x) = &row.external_id
            && !doc.contains_key("externalId")
        {
            doc.insert("externalId".into(), Value::String(x.clone()));
        }
        let old_doc = doc_of(&row)?;
        write_checked(
            svc,
            c,
            caller,
            &policy,
            &mut row,
            &old_doc,
            doc.clone(),
            projection,
            &now,
        )
    })?;
    finish_write(svc, caller, id, written, projection, base)
}

/// What a PUT's or PATCH's write did.
enum Written {
    Done(Box<UserRow>, Memberships),
    DisposeHolder(Box<UserRow>),
}

/// Stores `doc` over the locked `row` after the identity checks, reading what
/// the response needs.
#[allow(clippy::too_many_arguments)]
fn write_checked(
    svc: &Services,
    c: &mut AnyConnection,
    caller: &Actor,
    policy: &Policy,
    row: &mut UserRow,
    old_doc: &Doc,
    doc: Doc,
    projection: &Projection,
    now: &str,
) -> Result<Written, ServiceError> {
    let checked = match checked_identity(svc, c, caller, policy, row, old_doc, doc)? {
        Checked::Write(checked) => checked,
        Checked::DisposeHolder => return Ok(Written::DisposeHolder(Box::new(row.clone()))),
    };
    let has_external_id = checked.keys.external_id.is_some();
    write_doc(svc, c, caller, row, old_doc, checked.doc, checked.keys, now)?;
    apply_tombstones(
        c,
        caller,
        policy,
        &row.id,
        &checked.tombs,
        has_external_id,
        Join::Existing,
        now,
    )?;
    let memberships = memberships_of(c, caller, std::slice::from_ref(row), projection)?;
    Ok(Written::Done(Box::new(row.clone()), memberships))
}

/// Renders a PUT's or PATCH's result after the commit; under `dispose_previous`
/// a suspended user whose externalId another person's replaced is disposed and
/// the write answers 404, so the IdP re-POSTs the new person.
fn finish_write(
    svc: &Services,
    caller: &Actor,
    id: &str,
    written: Written,
    projection: &Projection,
    base: &str,
) -> Result<Rendered, ServiceError> {
    match written {
        Written::Done(row, memberships) => {
            rendered_with(&row, &memberships, projection, base, false)
        }
        Written::DisposeHolder(seen) => {
            dispose_previous(svc, caller, id, |r| r.external_id == seen.external_id)?;
            Err(ScimError::not_found(format!(
                "no user with id {id}: it was suspended, and the externalId this request gave it says it is a different person, \
                 so the tenant's policy (identity.on_reuse = \"dispose_previous\") disposed it; create the new person with POST"
            ))
            .into())
        }
    }
}

/// The user `id`, locked for this write, if `If-Match` (when given) matches.
fn locked(
    c: &mut AnyConnection,
    caller: &Actor,
    id: &str,
    if_match: Option<&str>,
    base: &str,
) -> Result<UserRow, ServiceError> {
    let row = store::users::find_locked(c, &caller.tenant_id, id)?.ok_or_else(|| not_found(id))?;
    check_if_match(if_match, &meta(&row, base).etag())?;
    Ok(row)
}

/// 409 when a new document would give the user another user's userName or
/// externalId. Looked up only when it gives the user one it does not hold
/// already: the unique indexes keep the ones it holds to itself.
fn refuse_conflicts(
    c: &mut AnyConnection,
    caller: &Actor,
    row: &UserRow,
    keys: &UserKeys,
) -> Result<(), ServiceError> {
    if keys.user_name_key == row.user_name_key && keys.external_id == row.external_id {
        return Ok(());
    }
    let found = conflicts(c, caller, keys, Some(&row.id))?;
    if found.is_empty() {
        Ok(())
    } else {
        Err(conflict_error(&found, keys).into())
    }
}

pub fn patch(
    svc: &Services,
    caller: &Actor,
    id: &str,
    ops: &[Operation],
    if_match: Option<&str>,
    projection: &Projection,
    base: &str,
) -> Result<Rendered, ServiceError> {
    let now = svc.deprov.now();
    let policy = svc.deprov.policy(&caller.tenant_name);
    let written = svc.db.write(|c| {
        let mut row = locked(c, caller, id, if_match, base)?;
        let mut current = doc_of(&row)?;
        current
            .entry("active")
            .or_insert(Value::Bool(row.state == UserState::Active));
        let doc = patch::apply(
            &PatchContext::new(&USER_TYPE, id, svc.limits),
            &current,
            ops,
        )?;
        if doc == current {
            let memberships = memberships_of(c, caller, std::slice::from_ref(&row), projection)?;
            return Ok(Written::Done(Box::new(row), memberships));
        }
        write_checked(
            svc, c, caller, &policy, &mut row, &current, doc, projection, &now,
        )
    })?;
    finish_write(svc, caller, id, written, projection, base)
}

/// A DELETE: the person's disposal, in one transaction. On SQLite a small
/// one (`is_small`, checked under the writer) shares a write group; a larger
/// one runs alone (`write_long`). Async callers on SQLite try
/// `delete_queued` first.
pub fn delete(
    svc: &Services,
    caller: &Actor,
    id: &str,
    if_match: Option<&str>,
    base: &str,
) -> Result<(), ServiceError> {
    let dispose = |c: &mut AnyConnection| dispose(&svc.deprov, c, caller, id, if_match, base);
    let grouped = svc.db.backend() == store::Backend::Sqlite
        && svc.db.write(|c| {
            if !crate::deprovision::disposal::is_small(c, &caller.tenant_id, id, SMALL_DISPOSAL)? {
                return Ok::<_, ServiceError>(false);
            }
            dispose(c).map(|()| true)
        })?;
    if !grouped {
        svc.db.write_long(dispose)?;
    }
    // Folds the disposal out of the WAL soon, off this request (the commit is done).
    svc.db.checkpoint_soon();
    Ok(())
}

/// SQLite: `delete` of a small disposal run on the write queue's thread
/// (`Db::write_queued`), for an async caller: no blocking-pool thread, and
/// the batch's writes share one `COMMIT` and one journal `fsync`. Resolves
/// to `false`, having written nothing, when the disposal is too large to
/// share a write group: the caller then runs `delete`. `None` on PostgreSQL.
pub fn delete_queued(
    svc: &Services,
    caller: &Actor,
    id: &str,
    if_match: Option<&str>,
    base: &str,
) -> Option<impl std::future::Future<Output = Result<bool, ServiceError>> + use<>> {
    let (deprov, caller, id) = (svc.deprov.clone(), caller.clone(), id.to_string());
    let (if_match, base) = (if_match.map(str::to_string), base.to_string());
    let written = svc.db.write_queued(move |c| {
        if !crate::deprovision::disposal::is_small(c, &caller.tenant_id, &id, SMALL_DISPOSAL)? {
            return Ok::<_, ServiceError>(false);
        }
        dispose(&deprov, c, &caller, &id, if_match.as_deref(), &base).map(|()| true)
    })?;
    let db = svc.db.clone();
    Some(async move {
        let done = written.await?;
        if done {
            db.checkpoint_soon();
        }
        Ok(done)
    })
}

/// DELETE disposes synchronously, in the caller's transaction: the policy
/// runs, the tombstone is written, the person becomes a stub (404 from now on).
fn dispose(
    deprov: &crate::deprovision::service::Deprov,
    c: &mut AnyConnection,
    caller: &Actor,
    id: &str,
    if_match: Option<&str>,
    base: &str,
) -> Result<(), ServiceError> {
    if if_match.is_some() {
        locked(c, caller, id, if_match, base)?;
    }
    // Without If-Match, `dispose_in` takes the same lock and reads the same
    // row first (a missing user is the same 404).
    match deprov.dispose_in(c, caller, id, Cause::Delete, None)? {
        Outcome::Disposed(r) => {
            tracing::info!(user_id = %id, disposal_id = %r.disposal_id, actor = %caller.actor, "user disposed")
        }
        Outcome::Held {
            disposal_id,
            reason,
        } => {
            tracing::info!(user_id = %id, %disposal_id, reason, actor = %caller.actor, "user deleted; disposal held")
        }
    }
    Ok(())
}

/// Rows a DELETE's disposal may touch and still share a write group.
const SMALL_DISPOSAL: usize = 256;

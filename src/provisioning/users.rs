//! Users: create (or restore a suspended user in place), read, replace, patch,
//! delete, list. `active=false` suspends; it never hides the user.

use super::{Caller, Rendered, ServiceError, Services, check_if_match, corrupt, listing};
use crate::deprovision::policy::OnScimCreate;
use crate::deprovision::service::Outcome;
use crate::deprovision::tombstone::IdType;
use crate::deprovision::tombstones::{self, TombstoneMatch};
use crate::scim::error::ScimError;
use crate::scim::list::ListParams;
use crate::scim::patch::{self, Operation, PatchContext};
use crate::scim::resource::{Doc, Meta, Projection, UserKeys, normalize, render, user_keys};
use crate::scim::schema::USER_TYPE;
use crate::store::users::UserRow;
use crate::store::{self, AnyConnection, filter_sql};
use serde_json::{Value, json};

pub const ACTIVE: &str = "active";
pub const SUSPENDED: &str = "suspended";

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
type Memberships = Vec<(String, String, String)>;

/// The memberships that rendering `rows` needs: none unless the projection
/// wants the read-only `groups`.
fn memberships_of(
    conn: &mut AnyConnection,
    caller: &Caller,
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
pub(crate) fn render_rows(
    conn: &mut AnyConnection,
    caller: &Caller,
    rows: &[UserRow],
    projection: &Projection,
    base: &str,
) -> Result<Vec<Value>, ServiceError> {
    let memberships = memberships_of(conn, caller, rows, projection)?;
    render_with(rows, &memberships, projection, base)
}

fn render_with(
    rows: &[UserRow],
    memberships: &Memberships,
    projection: &Projection,
    base: &str,
) -> Result<Vec<Value>, ServiceError> {
    rows.iter()
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

fn rendered(
    conn: &mut AnyConnection,
    caller: &Caller,
    row: &UserRow,
    projection: &Projection,
    base: &str,
    restored: bool,
) -> Result<Rendered, ServiceError> {
    let memberships = memberships_of(conn, caller, std::slice::from_ref(row), projection)?;
    rendered_with(row, &memberships, projection, base, restored)
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
    caller: &Caller,
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
            if one.state == SUSPENDED {
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

/// Applies the state transition implied by the document's `active`.
fn apply_state(row: &mut UserRow, active: bool, now: &str) {
    match (row.state.as_str(), active) {
        (ACTIVE, false) => {
            row.state = SUSPENDED.into();
            row.suspended_at = Some(now.to_string());
        }
        (SUSPENDED, true) => {
            row.state = ACTIVE.into();
            row.suspended_at = None;
        }
        // A repeated active=false is a no-op and keeps the original clock.
        _ => {}
    }
}

/// What a create's write did; a new user is rendered after the commit.
enum Created {
    New,
    /// The suspended user restored in place, with its memberships.
    Restored(Box<UserRow>, Memberships),
}

pub fn create(
    svc: &Services,
    caller: &Caller,
    body: &Value,
    projection: &Projection,
    base: &str,
) -> Result<Rendered, ServiceError> {
    let mut doc = normalize(&USER_TYPE, body)?;
    // POST without `active` means active.
    if !doc.contains_key("active") {
        doc.insert("active".into(), Value::Bool(true));
    }
    let now = svc.deprov.now();
    // Everything that needs no database is done before the write begins:
    // writes queue for SQLite's one writer, so time spent inside is everyone's.
    let keys = user_keys(&doc);
    let tomb_hashes = tombstone_hashes(svc, caller, &keys);
    let row = new_row(caller, &doc, &keys, &now);
    let attrs: Vec<String> = doc.keys().cloned().collect();
    let created = svc.db.write(|c| -> Result<Created, ServiceError> {
        let found = conflicts(c, caller, &keys, None)?;
        match found.as_slice() {
            [] => {
                let tombs = tombstone_check(svc, c, caller, &tomb_hashes)?;
                store::users::insert(c, &row, &keys)?;
                audit_user(c, caller, "user.created", &row.id, Some(&attrs), &now)?;
                after_tombstone_create(svc, c, caller, &row.id, &tombs, &now)?;
                if row.state == SUSPENDED {
                    crate::events::emit(
                        c,
                        &caller.tenant_id,
                        "user.suspended",
                        Some(&row.id),
                        json!({}),
                        &now,
                    )?;
                    svc.deprov.schedule_in(c, &caller.requester(), &row.id)?;
                }
                tracing::info!(user_id = %row.id, actor = %caller.actor, "user created");
                Ok(Created::New)
            }
            [existing] if existing.state == SUSPENDED => {
                // Okta re-POSTs a user it deactivated: restore that record in place
                // (PUT semantics), keeping its id.
                // Lock and re-read: a disposal (grace expiry) may have committed
                // since the conflict check.
                crate::store::db::lock_row(c, "users", &caller.tenant_id, &existing.id)?;
                let mut row = match store::users::find(c, &caller.tenant_id, &existing.id)? {
                    Some(r) if r.state == SUSPENDED => r,
                    _ => {
                        return Err(ScimError::new(409, None, "this user changed while the request ran (it was just disposed or reactivated); retry the request").into());
                    }
                };
                write_doc(svc, c, caller, &mut row, doc.clone(), keys.clone(), &now)?;
                crate::events::emit(
                    c,
                    &caller.tenant_id,
                    "user.restored",
                    Some(&row.id),
                    json!({}),
                    &now,
                )?;
                audit_user(c, caller, "user.restored", &row.id, None, &now)?;
                tracing::info!(user_id = %row.id, actor = %caller.actor, "user restored");
                let memberships = memberships_of(c, caller, std::slice::from_ref(&row), projection)?;
                Ok(Created::Restored(Box::new(row), memberships))
            }
            many => Err(conflict_error(many, &keys).into()),
        }
    })?;
    match created {
        // A new id: no group can hold it yet.
        Created::New => rendered_with(&row, &vec![], projection, base, false),
        Created::Restored(row, memberships) => {
            rendered_with(&row, &memberships, projection, base, true)
        }
    }
}

/// The row for a new user (a fresh id).
fn new_row(caller: &Caller, doc: &Doc, keys: &UserKeys, now: &str) -> UserRow {
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
    caller: &Caller,
    action: &str,
    id: &str,
    attrs: Option<&[String]>,
    now: &str,
) -> Result<(), ServiceError> {
    let detail = attrs.map(|a| json!({"attributes": a}).to_string());
    crate::deprovision::disposal::audit(
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
fn write_doc(
    svc: &Services,
    c: &mut AnyConnection,
    caller: &Caller,
    row: &mut UserRow,
    doc: Doc,
    mut keys: UserKeys,
    now: &str,
) -> Result<(), ServiceError> {
    // A document without `active` (a PATCH removed it) changes no state: a
    // suspension is never lifted by accident.
    if !doc.contains_key("active") {
        keys.active = row.state == ACTIVE;
    }
    let before = row.state.clone();
    let old_row = row.clone();
    let old_doc: Doc = serde_json::from_str(&row.data).unwrap_or_default();
    let changed = changed_attributes(&old_doc, &doc);
    let emails_changed = old_doc.get("emails") != doc.get("emails");
    row.set_keys(&keys);
    apply_state(row, keys.active, now);
    row.data = Value::Object(doc).to_string();
    row.updated_at = now.to_string();
    row.version += 1;
    store::users::update(c, &old_row, row, &keys, emails_changed)?;
    if !changed.is_empty() {
        audit_user(c, caller, "user.updated", &row.id, Some(&changed), now)?;
    }
    match (before.as_str(), row.state.as_str()) {
        (ACTIVE, SUSPENDED) => {
            audit_user(c, caller, "user.suspended", &row.id, None, now)?;
            // Event first: the platform ends sessions at once.
            crate::events::emit(
                c,
                &caller.tenant_id,
                "user.suspended",
                Some(&row.id),
                json!({}),
                now,
            )?;
            svc.deprov.schedule_in(c, &caller.requester(), &row.id)?;
        }
        (SUSPENDED, ACTIVE) => {
            audit_user(c, caller, "user.reactivated", &row.id, None, now)?;
            svc.deprov.cancel_in(c, &caller.requester(), &row.id)?;
            crate::events::emit(
                c,
                &caller.tenant_id,
                "user.reactivated",
                Some(&row.id),
                json!({}),
                now,
            )?;
        }
        _ => {}
    }
    Ok(())
}

/// The tombstone hashes of a new user's identifiers (`tombstone_check`).
fn tombstone_hashes(svc: &Services, caller: &Caller, k: &UserKeys) -> Vec<String> {
    let mut ids = vec![(IdType::UserName, k.user_name.clone())];
    if let Some(x) = &k.external_id {
        ids.push((IdType::ExternalId, x.clone()));
    }
    ids.extend(k.emails.iter().map(|e| (IdType::Email, e.value.clone())));
    tombstones::hashes_of(&svc.deprov.keys, &caller.tenant_id, &ids)
}

/// Live tombstones matching a new user's identifiers, per `on_scim_create`:
/// `reject` refuses; `new` and `relink` proceed (and lift after the insert).
fn tombstone_check(
    svc: &Services,
    c: &mut AnyConnection,
    caller: &Caller,
    hashes: &[String],
) -> Result<Vec<TombstoneMatch>, ServiceError> {
    let found = tombstones::matching_hashes(c, &caller.tenant_id, hashes)?;
    if !found.is_empty()
        && svc.deprov.policy(&caller.tenant_name).on_scim_create == OnScimCreate::Reject
    {
        return Err(ScimError::uniqueness(
            "this person was deprovisioned and the tenant's policy rejects re-creating them until an admin lifts the tombstone",
        )
        .into());
    }
    Ok(found)
}

fn after_tombstone_create(
    svc: &Services,
    c: &mut AnyConnection,
    caller: &Caller,
    user_id: &str,
    found: &[TombstoneMatch],
    now: &str,
) -> Result<(), ServiceError> {
    if found.is_empty() {
        return Ok(());
    }
    let relink = svc.deprov.policy(&caller.tenant_name).on_scim_create == OnScimCreate::Relink;
    // Decided per tombstone: one matched by userName, externalId or an SSO subject
    // is this person coming back (lift; relink hands content back); one matched
    // only by an email may be someone else's recycled address (release just that
    // email; the rest keeps denying its owner).
    let mut by_tomb: std::collections::BTreeMap<&str, Vec<TombstoneMatch>> =
        std::collections::BTreeMap::new();
    for m in found {
        by_tomb
            .entry(m.tombstone_id.as_str())
            .or_default()
            .push(m.clone());
    }
    for (tomb, matches) in by_tomb {
        let strong = matches.iter().any(|m| m.id_type != IdType::Email.as_str());
        if !strong {
            tombstones::release_hashes(c, &caller.tenant_id, &matches, &caller.actor, now)?;
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

pub fn get(
    svc: &Services,
    caller: &Caller,
    id: &str,
    projection: &Projection,
    base: &str,
) -> Result<Rendered, ServiceError> {
    svc.db.read(|c| {
        let row = store::users::find(c, &caller.tenant_id, id)?.ok_or_else(|| not_found(id))?;
        rendered(c, caller, &row, projection, base, false)
    })
}

pub fn not_found(id: &str) -> ScimError {
    ScimError::not_found(format!("no user with id {id}"))
}

pub fn replace(
    svc: &Services,
    caller: &Caller,
    id: &str,
    body: &Value,
    if_match: Option<&str>,
    projection: &Projection,
    base: &str,
) -> Result<Rendered, ServiceError> {
    let mut doc = normalize(&USER_TYPE, body)?;
    let now = svc.deprov.now();
    svc.db
        .write(|c| {
            let mut row = locked(c, caller, id, if_match, base)?;
            // PUT without `active` leaves it unchanged.
            if !doc.contains_key("active") {
                doc.insert("active".into(), Value::Bool(row.state == ACTIVE));
            }
            let keys = user_keys(&doc);
            refuse_conflicts(c, caller, &row, &keys)?;
            write_doc(svc, c, caller, &mut row, doc.clone(), keys, &now)?;
            let memberships = memberships_of(c, caller, std::slice::from_ref(&row), projection)?;
            Ok((row, memberships))
        })
        .and_then(|(row, memberships)| rendered_with(&row, &memberships, projection, base, false))
}

/// The user `id`, locked for this write, if `If-Match` (when given) matches.
fn locked(
    c: &mut AnyConnection,
    caller: &Caller,
    id: &str,
    if_match: Option<&str>,
    base: &str,
) -> Result<UserRow, ServiceError> {
    crate::store::db::lock_row(c, "users", &caller.tenant_id, id)?;
    let row = store::users::find(c, &caller.tenant_id, id)?.ok_or_else(|| not_found(id))?;
    check_if_match(if_match, &meta(&row, base).etag())?;
    Ok(row)
}

/// 409 when a new document would give the user another user's userName or
/// externalId. Looked up only when it gives the user one it does not hold
/// already: the unique indexes keep the ones it holds to itself.
fn refuse_conflicts(
    c: &mut AnyConnection,
    caller: &Caller,
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
    caller: &Caller,
    id: &str,
    ops: &[Operation],
    if_match: Option<&str>,
    projection: &Projection,
    base: &str,
) -> Result<Rendered, ServiceError> {
    let now = svc.deprov.now();
    svc.db
        .write(|c| {
            let mut row = locked(c, caller, id, if_match, base)?;
            let mut current = doc_of(&row)?;
            current
                .entry("active")
                .or_insert(Value::Bool(row.state == ACTIVE));
            let doc = patch::apply(&PatchContext { rt: &USER_TYPE, id }, &current, ops)?;
            if doc != current {
                let keys = user_keys(&doc);
                refuse_conflicts(c, caller, &row, &keys)?;
                write_doc(svc, c, caller, &mut row, doc, keys, &now)?;
            }
            let memberships = memberships_of(c, caller, std::slice::from_ref(&row), projection)?;
            Ok((row, memberships))
        })
        .and_then(|(row, memberships)| rendered_with(&row, &memberships, projection, base, false))
}

pub fn delete(
    svc: &Services,
    caller: &Caller,
    id: &str,
    if_match: Option<&str>,
    base: &str,
) -> Result<(), ServiceError> {
    let dispose = |c: &mut AnyConnection| {
        locked(c, caller, id, if_match, base)?;
        // DELETE disposes synchronously, in this transaction: the policy runs,
        // the tombstone is written, the person becomes a stub (404 from now on).
        match svc
            .deprov
            .dispose_in(c, &caller.requester(), id, "delete", None)?
        {
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
        Ok::<(), ServiceError>(())
    };
    // SQLite: a disposal of bounded size (checked under the writer) shares a
    // write group like any request; a larger one runs alone (`write_alone`).
    let grouped = svc.db.backend() == store::Backend::Sqlite
        && svc.db.write(|c| {
            if !crate::deprovision::disposal::is_small(c, &caller.tenant_id, id, SMALL_DISPOSAL)? {
                return Ok::<_, ServiceError>(false);
            }
            dispose(c).map(|()| true)
        })?;
    if !grouped {
        svc.db.write_alone(dispose)?;
    }
    // Folds the disposal out of the WAL soon, off this request (the commit is done).
    svc.db.checkpoint_soon();
    Ok(())
}

/// Rows a DELETE's disposal may touch and still share a write group.
const SMALL_DISPOSAL: usize = 256;

pub fn list(
    svc: &Services,
    caller: &Caller,
    params: &ListParams,
    base: &str,
) -> Result<Value, ServiceError> {
    let plan = listing::plan(
        &filter_sql::USERS,
        "User",
        svc.db.backend(),
        &caller.tenant_id,
        params,
    )?;
    svc.db.read(|c| {
        let page = store::users::list(
            c,
            &caller.tenant_id,
            plan.filter.clone(),
            &plan.order,
            &plan.window,
            params.count,
        )?;
        let rows: Vec<UserRow> = page.rows.iter().map(|r| r.item.clone()).collect();
        let resources = render_rows(c, caller, &rows, &params.projection, base)?;
        Ok(listing::respond(params, &plan, &page, resources))
    })
}

//! Admin and ledger operations (the `/admin/v1` surface's domain side).

use super::service::Deprov;
use crate::domain::{Actor, UserState};
use crate::scim::error::ScimError;
use crate::service_error::ServiceError;
use crate::store::ledger::{self, ItemRow};
use crate::store::{AnyConnection, StoreError, audit, disposals, users};
use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ItemBody {
    #[serde(default)]
    pub owner: Option<String>,
    #[serde(rename = "ownerUserName", default)]
    pub owner_user_name: Option<String>,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub parent: Option<ParentRef>,
    #[serde(rename = "personalRoot", default)]
    pub personal_root: bool,
    /// Import lines carry these; the path gives them for PUT.
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub id: Option<String>,
}

#[derive(Debug, Deserialize, Clone, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ParentRef {
    pub kind: String,
    pub id: String,
}

/// The owner a ledger write may name: an active or suspended user. A disposed
/// owner's content goes to the receipt's recipient when `forward_new_content`,
/// else 409 naming it. PostgreSQL: the owner row is locked `FOR SHARE`, so no
/// item escapes a disposal running at that moment.
pub(super) fn check_owner(
    dp: &Deprov,
    c: &mut AnyConnection,
    who: &Actor,
    owner: &str,
) -> Result<String, ServiceError> {
    users::lock_shared(c, &who.tenant_id, owner)?;
    match users::state_of(c, &who.tenant_id, owner)? {
        Some(UserState::Active | UserState::Suspended) => Ok(owner.to_string()),
        // DELETE held by the brake or a legal hold: no forwarding while pending.
        Some(UserState::DeletedPending) => Err(ScimError::new(
            409,
            None,
            format!("owner {owner} was deleted and their disposal is pending; new content cannot be given to them"),
        )
        .into()),
        Some(UserState::Disposed) => {
            let recipient = disposals::recipient_of(c, &who.tenant_id, owner)?;
            match (&recipient, dp.policy(&who.tenant_name).forward_new_content) {
                (Some(r), true) => Ok(r.clone()),
                (Some(r), false) => Err(ScimError::new(
                    409,
                    None,
                    format!("owner {owner} was deprovisioned; their content went to {r}: name that owner (or enable forward_new_content)"),
                )
                .into()),
                (None, _) => Err(ScimError::new(409, None, format!("owner {owner} was deprovisioned and their content has no recipient")).into()),
            }
        }
        Some(UserState::Stub) | None => Err(
            ScimError::invalid_value(format!("owner {owner} is not a user of this tenant")).into(),
        ),
    }
}

pub(super) fn resolve_owner_name(
    c: &mut AnyConnection,
    tenant: &str,
    name: &str,
) -> Result<String, ServiceError> {
    users::visible_id_by_name(c, tenant, &crate::scim::fold::fold(name))?.ok_or_else(|| {
        ScimError::invalid_value(format!("no user with userName '{name}' in this tenant")).into()
    })
}

/// An item of the content ledger as the admin API shows it.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ItemView {
    pub kind: String,
    pub id: String,
    /// The owner's user id; null for an orphan.
    pub owner: Option<String>,
    /// The owner's state (`active`, `suspended`, …), `orphaned`, or `unknown`.
    #[serde(rename = "ownerState")]
    pub owner_state: String,
    pub title: Option<String>,
    pub parent: Option<ParentView>,
    #[serde(rename = "personalRoot")]
    pub personal_root: bool,
    /// User ids the item is shared with.
    #[serde(rename = "sharedWith")]
    pub shared_with: Vec<String>,
    #[serde(rename = "createdAt")]
    pub created_at: String,
    #[serde(rename = "updatedAt")]
    pub updated_at: String,
}

/// An item's parent folder.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ParentView {
    pub kind: String,
    pub id: String,
}

pub fn item_json(c: &mut AnyConnection, row: &ItemRow) -> Result<Value, StoreError> {
    Ok(serde_json::to_value(item_view(c, row)?).unwrap_or(Value::Null))
}

pub fn item_view(c: &mut AnyConnection, row: &ItemRow) -> Result<ItemView, StoreError> {
    let owner_state = match &row.owner_id {
        None => "orphaned",
        Some(o) => users::state_of(c, &row.tenant_id, o)?.map_or("unknown", UserState::as_str),
    };
    let shared = ledger::shared_with(c, &row.tenant_id, &row.kind, &row.item_id)?;
    Ok(ItemView {
        kind: row.kind.clone(),
        id: row.item_id.clone(),
        owner: row.owner_id.clone(),
        owner_state: owner_state.to_string(),
        title: row.title.clone(),
        parent: row
            .parent_kind
            .as_ref()
            .zip(row.parent_id.as_ref())
            .map(|(k, i)| ParentView {
                kind: k.clone(),
                id: i.clone(),
            }),
        personal_root: row.personal_root,
        shared_with: shared,
        created_at: row.created_at.clone(),
        updated_at: row.updated_at.clone(),
    })
}

/// The tenant's Archive folder is Custodian's own: the ledger cannot write,
/// delete or reassign it.
pub(super) fn not_reserved(kind: &str, id: &str) -> Result<(), ScimError> {
    if kind == super::disposal::ARCHIVE_KIND && id == super::disposal::ARCHIVE_ID {
        return Err(ScimError::new(
            409,
            None,
            format!("{kind}/{id} is the tenant's Archive folder, managed by Custodian"),
        ));
    }
    Ok(())
}

fn valid_key(what: &str, v: &str) -> Result<(), ScimError> {
    if v.is_empty() || v.len() > 256 || v.contains('\0') || v.contains('/') {
        return Err(ScimError::invalid_value(format!(
            "{what} must be 1–256 characters without '/'"
        )));
    }
    Ok(())
}

/// PUT content: creates (true) or replaces (false) an item, in the caller's transaction.
pub fn put_item(
    dp: &Deprov,
    c: &mut AnyConnection,
    who: &Actor,
    kind: &str,
    id: &str,
    body: &ItemBody,
) -> Result<(bool, Value), ServiceError> {
    not_reserved(kind, id)?;
    valid_key("kind", kind)?;
    valid_key("id", id)?;
    if body.kind.as_deref().is_some_and(|k| k != kind)
        || body.id.as_deref().is_some_and(|i| i != id)
    {
        return Err(ScimError::invalid_value("the body's kind/id differ from the path's").into());
    }
    if let Some(p) = &body.parent {
        valid_key("parent.kind", &p.kind)?;
        valid_key("parent.id", &p.id)?;
        if p.kind == kind && p.id == id {
            return Err(ScimError::invalid_value("an item cannot be its own parent").into());
        }
    }
    if body
        .title
        .as_ref()
        .is_some_and(|t| t.chars().count() > 1024)
    {
        return Err(ScimError::invalid_value("title is longer than 1024 characters").into());
    }
    let owner = match (&body.owner, &body.owner_user_name) {
        (Some(o), _) => Some(check_owner(dp, c, who, o)?),
        (None, Some(n)) => {
            let o = resolve_owner_name(c, &who.tenant_id, n)?;
            Some(check_owner(dp, c, who, &o)?)
        }
        (None, None) => None,
    };
    let now = dp.now();
    let row = ItemRow {
        tenant_id: who.tenant_id.clone(),
        kind: kind.into(),
        item_id: id.into(),
        owner_id: owner,
        parent_kind: body.parent.as_ref().map(|p| p.kind.clone()),
        parent_id: body.parent.as_ref().map(|p| p.id.clone()),
        title: body.title.clone(),
        personal_root: body.personal_root,
        created_at: now.clone(),
        updated_at: now.clone(),
    };
    let created = ledger::upsert_item(c, &row)?;
    audit::write(
        c,
        &who.tenant_id,
        &now,
        &who.actor,
        if created {
            "content.created"
        } else {
            "content.replaced"
        },
        kind,
        id,
        None,
    )?;
    let stored = ledger::find_item(c, &who.tenant_id, kind, id)?.ok_or(StoreError::NotFound)?;
    Ok((created, item_json(c, &stored)?))
}

/// `DELETE /admin/v1/content/{kind}/{id}` refuses the Archive folder.
pub fn check_deletable(kind: &str, id: &str) -> Result<(), ServiceError> {
    Ok(not_reserved(kind, id)?)
}

pub fn put_user_data(
    dp: &Deprov,
    c: &mut AnyConnection,
    who: &Actor,
    category: &str,
    record: &str,
    user: &str,
) -> Result<bool, ServiceError> {
    valid_key("category", category)?;
    valid_key("id", record)?;
    let user = check_owner(dp, c, who, user)?;
    let now = dp.now();
    Ok(ledger::upsert_user_data(
        c,
        &who.tenant_id,
        category,
        record,
        &user,
        &now,
    )?)
}

/// One user-data import line: a record of a category, owned by a user named by
/// id or userName.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserDataLine {
    pub category: String,
    pub id: String,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(rename = "userName", default)]
    pub user_name: Option<String>,
}

pub fn put_user_data_line(
    dp: &Deprov,
    c: &mut AnyConnection,
    who: &Actor,
    line: &UserDataLine,
) -> Result<bool, ServiceError> {
    let user = match (&line.user, &line.user_name) {
        (Some(u), _) => u.clone(),
        (None, Some(n)) => resolve_owner_name(c, &who.tenant_id, n)?,
        (None, None) => {
            return Err(
                ScimError::invalid_value("each line needs \"user\" or \"userName\"").into(),
            );
        }
    };
    put_user_data(dp, c, who, &line.category, &line.id, &user)
}

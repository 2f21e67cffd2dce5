//! The content ledger: items and user-data lines, one transaction each.

use crate::deprovision::admin::{self, ItemBody, ItemView, ParentRef, UserDataLine};
use crate::deprovision::disposal::{ARCHIVE_ID, ARCHIVE_KIND};
use crate::deprovision::service::Deprov;
use crate::domain::{Actor, UserState};
use crate::events::payload::ContentReassigned;
use crate::scim::error::ScimError;
use crate::service_error::ServiceError;
use crate::store::ledger::{self, ItemQuery};
use crate::store::{Db, audit, users};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

/// Creates or replaces an item; true when created, with the item as stored.
pub fn put(
    dp: &Deprov,
    db: &Db,
    who: &Actor,
    kind: &str,
    id: &str,
    body: &ItemBody,
) -> Result<(bool, Value), ServiceError> {
    db.write(|c| admin::put_item(dp, c, who, kind, id, body))
}

pub fn get(db: &Db, tenant: &str, kind: &str, id: &str) -> Result<ItemView, ServiceError> {
    db.read(|c| {
        let row = ledger::find_item(c, tenant, kind, id)?
            .ok_or_else(|| ScimError::not_found(format!("no {kind} item with id {id}")))?;
        Ok(admin::item_view(c, &row)?)
    })
}

/// A page of the ledger's items.
#[derive(Debug, Serialize, ToSchema)]
pub struct ItemList {
    #[serde(rename = "totalResults")]
    pub total_results: i64,
    #[serde(rename = "startIndex")]
    pub start_index: i64,
    #[serde(rename = "itemsPerPage")]
    pub items_per_page: usize,
    #[serde(rename = "Resources")]
    pub resources: Vec<ItemView>,
}

pub fn list_items(db: &Db, tenant: &str, q: &ItemQuery) -> Result<ItemList, ServiceError> {
    db.read(|c| {
        let (total, rows) = ledger::list_items(c, tenant, q)?;
        let items = rows
            .iter()
            .map(|r| admin::item_view(c, r))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ItemList {
            total_results: total,
            start_index: q.offset + 1,
            items_per_page: items.len(),
            resources: items,
        })
    })
}

/// What a whole-user transfer moved.
#[derive(Debug, Serialize, ToSchema)]
pub struct Transferred {
    pub from: String,
    pub to: String,
    /// Items moved.
    pub items: usize,
    /// User-data lines moved.
    #[serde(rename = "userData")]
    pub user_data: usize,
}

/// What a reassignment moved.
#[derive(Debug, Serialize, ToSchema)]
pub struct Reassigned {
    pub to: String,
    /// Items moved.
    pub items: usize,
}

/// Deletes an item (never the Archive folder) and audits it.
pub fn delete(dp: &Deprov, db: &Db, who: &Actor, kind: &str, id: &str) -> Result<(), ServiceError> {
    db.write(|c| {
        admin::check_deletable(kind, id)?;
        if !ledger::delete_item(c, &who.tenant_id, kind, id)? {
            return Err(ScimError::not_found(format!("no {kind} item with id {id}")).into());
        }
        let now = dp.now();
        Ok(audit::write(
            c,
            &who.tenant_id,
            &now,
            &who.actor,
            "content.deleted",
            kind,
            id,
            None,
        )?)
    })
}

/// Moves everything `from` owns (content and user data) to `to`; nobody is deleted.
pub fn transfer(
    dp: &Deprov,
    db: &Db,
    who: &Actor,
    from: &str,
    to: &str,
) -> Result<Transferred, ServiceError> {
    let now = dp.now();
    // Moves everything the person owns, like a disposal: a transaction of its own.
    db.write_long(|c| {
        if users::state_of(c, &who.tenant_id, from)?
            .is_none_or(|s| matches!(s, UserState::Disposed | UserState::Stub))
        {
            return Err(ScimError::not_found(format!("no user with id {from}")).into());
        }
        if from == to {
            return Err(ScimError::invalid_value("'to' must be another user").into());
        }
        let to = admin::check_owner(dp, c, who, to)?;
        // Disposals lock the tenant counter before moving content rows: same order here.
        crate::events::lock_tenant(c, &who.tenant_id)?;
        let items = ledger::move_all_items(c, &who.tenant_id, from, &to, &now)?;
        let data = ledger::move_all_user_data(c, &who.tenant_id, from, &to, &now)?;
        audit::write(
            c,
            &who.tenant_id,
            &now,
            &who.actor,
            "content.reassigned",
            "user",
            from,
            Some(&format!(
                "{{\"to\":\"{to}\",\"items\":{items},\"userData\":{data}}}"
            )),
        )?;
        crate::events::emit_at_commit(
            c,
            &who.tenant_id,
            Some(from),
            &ContentReassigned {
                to: to.clone(),
                items: items as u64,
                user_data: Some(data as u64),
            },
            &now,
        )?;
        Ok(Transferred {
            from: from.to_string(),
            to,
            items,
            user_data: data,
        })
    })
}

/// What a reassignment moves.
#[derive(Debug, Clone)]
pub enum Selection {
    /// Exactly these items.
    Items(Vec<ParentRef>),
    /// Every item of `owner` (every orphan when `None`), optionally of one kind.
    Owned {
        owner: Option<String>,
        kind: Option<String>,
    },
}

/// Reassigns the selected items (typically orphans) to a user, in one
/// transaction: a named item that does not exist moves nothing; a selection
/// by owner moves what it matches when the transaction runs (never the
/// tenant's Archive folder, which has no owner by design).
pub fn reassign(
    dp: &Deprov,
    db: &Db,
    who: &Actor,
    selection: &Selection,
    to: &str,
) -> Result<Reassigned, ServiceError> {
    let now = dp.now();
    let tenant = &who.tenant_id;
    db.write(|c| {
        let to = admin::check_owner(dp, c, who, to)?;
        // Disposals lock the tenant counter before moving content rows: same order here.
        crate::events::lock_tenant(c, tenant)?;
        let moved = match selection {
            Selection::Items(items) => {
                let mut moved = 0;
                let mut missing = 0;
                for it in items {
                    admin::not_reserved(&it.kind, &it.id)?;
                    let n = ledger::set_item_owner(c, tenant, &it.kind, &it.id, &to, &now)?;
                    if n == 0 {
                        missing += 1;
                    }
                    moved += n;
                }
                if missing > 0 {
                    return Err(ScimError::not_found(format!(
                        "{missing} of the named items do not exist; nothing was reassigned"
                    ))
                    .into());
                }
                moved
            }
            Selection::Owned { owner, kind } => ledger::set_owner_where(
                c,
                tenant,
                owner.as_deref(),
                kind.as_deref(),
                (ARCHIVE_KIND, ARCHIVE_ID),
                &to,
                &now,
            )?,
        };
        audit::write(
            c,
            tenant,
            &now,
            &who.actor,
            "content.reassigned",
            "user",
            &to,
            Some(&format!("{{\"items\":{moved}}}")),
        )?;
        crate::events::emit_at_commit(
            c,
            tenant,
            None,
            &ContentReassigned {
                to: to.clone(),
                items: moved as u64,
                user_data: None,
            },
            &now,
        )?;
        Ok(Reassigned { to, items: moved })
    })
}

/// Records whose a user-data line is; true when the line is new.
pub fn put_user_data(
    dp: &Deprov,
    db: &Db,
    who: &Actor,
    line: &UserDataLine,
) -> Result<bool, ServiceError> {
    db.write(|c| admin::put_user_data_line(dp, c, who, line))
}

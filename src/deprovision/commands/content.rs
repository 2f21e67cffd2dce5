//! The content ledger: items and user-data lines, one transaction each.

use crate::deprovision::admin::{self, AdminError, ItemBody, ParentRef, UserDataLine, Who};
use crate::store::audit;
use crate::deprovision::service::Deprov;
use crate::scim::error::ScimError;
use crate::store::Db;
use crate::store::ledger::{self, ItemQuery};
use serde_json::Value;

/// Creates or replaces an item; true when created, with the item as stored.
pub fn put(
    dp: &Deprov,
    db: &Db,
    who: &Who<'_>,
    kind: &str,
    id: &str,
    body: &ItemBody,
) -> Result<(bool, Value), AdminError> {
    db.write(|c| admin::put_item(dp, c, who, kind, id, body))
}

pub fn get(db: &Db, tenant: &str, kind: &str, id: &str) -> Result<Value, AdminError> {
    db.read(|c| {
        let row = ledger::find_item(c, tenant, kind, id)?
            .ok_or_else(|| ScimError::not_found(format!("no {kind} item with id {id}")))?;
        Ok(admin::item_json(c, &row)?)
    })
}

/// Deletes an item (never the Archive folder) and audits it.
pub fn delete(dp: &Deprov, db: &Db, who: &Who<'_>, kind: &str, id: &str) -> Result<(), AdminError> {
    db.write(|c| {
        admin::check_deletable(kind, id)?;
        if !ledger::delete_item(c, who.tenant_id, kind, id)? {
            return Err(ScimError::not_found(format!("no {kind} item with id {id}")).into());
        }
        let now = dp.now();
        Ok(audit::write(
            c,
            who.tenant_id,
            &now,
            who.actor,
            "content.deleted",
            kind,
            id,
            None,
        )?)
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

pub fn reassign(
    dp: &Deprov,
    db: &Db,
    who: &Who<'_>,
    selection: &Selection,
    to: &str,
) -> Result<Value, AdminError> {
    let items = match selection {
        Selection::Items(items) => items.clone(),
        Selection::Owned { owner, kind } => {
            // Resolved to named items first; the move then takes exactly those.
            let q = ItemQuery {
                owner: owner.clone(),
                kind: kind.clone(),
                orphaned: owner.is_none(),
                offset: 0,
                limit: i64::MAX,
            };
            let (_, rows) = db.read(|c| ledger::list_items(c, who.tenant_id, &q))?;
            rows.into_iter()
                .map(|r| ParentRef {
                    kind: r.kind,
                    id: r.item_id,
                })
                .collect()
        }
    };
    admin::reassign(dp, db, who, &items, to)
}

/// Records whose a user-data line is; true when the line is new.
pub fn put_user_data(
    dp: &Deprov,
    db: &Db,
    who: &Who<'_>,
    line: &UserDataLine,
) -> Result<bool, AdminError> {
    db.write(|c| admin::put_user_data_line(dp, c, who, line))
}

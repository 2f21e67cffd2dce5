//! An item's history: its audit rows and the disposals that moved it.

use crate::domain::ItemAction;
use crate::store::db::AnyConnection;
use crate::store::error::StoreError;
use crate::store::ledger;
use crate::store::schema::{audit_log, disposal_items, disposals};
use diesel::prelude::*;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// An audit row about the item.
    Audit {
        at: String,
        actor: String,
        action: String,
    },
    /// A receipt line about the item; `at` is when its disposal completed
    /// (empty while it has not).
    Moved {
        at: String,
        disposal_id: String,
        action: ItemAction,
        from_owner: Option<String>,
        to_owner: Option<String>,
    },
}

impl Entry {
    fn at(&self) -> &str {
        match self {
            Entry::Audit { at, .. } | Entry::Moved { at, .. } => at,
        }
    }
}

/// Oldest first (audit rows before moves at the same instant). `None` when
/// nothing mentions the item and the ledger does not hold it.
pub fn of_item(
    c: &mut AnyConnection,
    tenant: &str,
    kind: &str,
    id: &str,
) -> Result<Option<Vec<Entry>>, StoreError> {
    let audited: Vec<(String, String, String)> = audit_log::table
        .filter(audit_log::tenant_id.eq(tenant))
        .filter(audit_log::subject_type.eq(kind))
        .filter(audit_log::subject_id.eq(id))
        .select((audit_log::at, audit_log::actor, audit_log::action))
        .load(c)?;
    type Move = (
        String,
        Option<String>,
        ItemAction,
        Option<String>,
        Option<String>,
    );
    let moves: Vec<Move> = disposal_items::table
        .inner_join(disposals::table)
        .filter(disposals::tenant_id.eq(tenant))
        .filter(disposal_items::kind.eq(kind))
        .filter(disposal_items::item_id.eq(id))
        .select((
            disposals::id,
            disposals::completed_at,
            disposal_items::action,
            disposal_items::from_owner,
            disposal_items::to_owner,
        ))
        .load(c)?;
    let mut out: Vec<Entry> = audited
        .into_iter()
        .map(|(at, actor, action)| Entry::Audit { at, actor, action })
        .chain(
            moves.into_iter().map(
                |(disposal_id, at, action, from_owner, to_owner)| Entry::Moved {
                    at: at.unwrap_or_default(),
                    disposal_id,
                    action,
                    from_owner,
                    to_owner,
                },
            ),
        )
        .collect();
    if out.is_empty() && ledger::find_item(c, tenant, kind, id)?.is_none() {
        return Ok(None);
    }
    // Stable: rows at the same instant keep the order above.
    out.sort_by(|a, b| a.at().cmp(b.at()));
    Ok(Some(out))
}

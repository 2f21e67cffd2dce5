//! A disposal's receipt: the disposal and a page of what it did to each item.

use super::Page;
use super::disposals::{self, DisposalRow};
use crate::domain::ItemAction;
use crate::store::db::AnyConnection;
use crate::store::error::StoreError;
use crate::store::schema::{disposal_items, disposals as d};
use diesel::prelude::*;

#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
pub struct ReceiptLine {
    pub kind: String,
    pub item_id: String,
    pub action: ItemAction,
    pub from_owner: Option<String>,
    pub to_owner: Option<String>,
    pub target_link: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub disposal: DisposalRow,
    /// Lines of the whole receipt, not only of this page.
    pub total_items: i64,
    /// Ordered by kind, then item id.
    pub items: Vec<ReceiptLine>,
}

/// `None` when the tenant has no disposal `id`.
pub fn find(
    c: &mut AnyConnection,
    tenant: &str,
    id: &str,
    page: Page,
) -> Result<Option<Receipt>, StoreError> {
    let Some(disposal) = disposals::find(c, tenant, id)? else {
        return Ok(None);
    };
    // Items carry no tenant: scoped through their disposal.
    let lines = || {
        disposal_items::table
            .inner_join(d::table)
            .filter(d::tenant_id.eq(tenant))
            .filter(disposal_items::disposal_id.eq(id))
    };
    let total_items: i64 = lines().count().get_result(c)?;
    let items = lines()
        .select((
            disposal_items::kind,
            disposal_items::item_id,
            disposal_items::action,
            disposal_items::from_owner,
            disposal_items::to_owner,
            disposal_items::target_link,
        ))
        .order((disposal_items::kind, disposal_items::item_id))
        .offset(page.offset)
        .limit(page.limit)
        .load(c)?;
    Ok(Some(Receipt {
        disposal,
        total_items,
        items,
    }))
}

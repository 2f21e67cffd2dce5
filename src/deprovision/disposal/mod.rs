//! Planning and executing a disposal. The plan is computed from the ledger and
//! the policy (`plan`); execution applies it in the caller's transaction with
//! set-based statements, one per kind and action, step by step (`execute`,
//! `STEPS`), writes the receipt, the tombstone (`tombstone`) and the audit
//! row, and scrubs the person's PII to a stub. Reports naming the person as
//! their manager are repointed to the stub (`reports`). The SQL is in
//! `store::{disposals, ledger, users, tombstones}`.

mod execute;
mod plan;
mod prepare;
mod reports;
mod tombstone;

pub use execute::execute;
pub use plan::{plan, plan_hash, plan_summary, resolve_target};
pub use prepare::{PrepareInput, Prepared, prepare};
pub use reports::{is_small, lock_reports};
pub use tombstone::tombstone_for;

use super::policy::Policy;
use super::tombstone::TombstoneKeys;
use crate::domain::{Cause, ItemAction};
use crate::store::StoreError;
use serde::Serialize;
use std::collections::BTreeMap;

pub const ARCHIVE_KIND: &str = "folder";
pub const ARCHIVE_ID: &str = "custodian-archive";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PlanItem {
    pub kind: String,
    pub id: String,
    pub action: ItemAction,
    #[serde(rename = "toOwner", skip_serializing_if = "Option::is_none")]
    pub to_owner: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ResolvedTarget {
    #[serde(rename = "userId")]
    pub user_id: String,
    /// Which chain link matched: manager, custodian, caller, user:<name>.
    pub link: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Plan {
    #[serde(rename = "userId")]
    pub user_id: String,
    pub target: Option<ResolvedTarget>,
    /// (kind, action) → count; actions are listed in the order of their text.
    #[serde(serialize_with = "actions_by_text")]
    #[schema(value_type = HashMap<String, HashMap<String, u64>>)]
    pub summary: BTreeMap<String, BTreeMap<ItemAction, u64>>,
    /// category → (action, count)
    #[serde(rename = "userData", serialize_with = "data_as_objects")]
    #[schema(value_type = HashMap<String, DataCount>)]
    pub user_data: BTreeMap<String, (ItemAction, u64)>,
    #[serde(rename = "policyDigest")]
    pub policy_digest: String,
    pub hash: String,
    #[serde(skip)]
    #[schema(ignore)]
    pub items: Vec<PlanItem>,
}

fn actions_by_text<S: serde::Serializer>(
    m: &BTreeMap<String, BTreeMap<ItemAction, u64>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut out = s.serialize_map(Some(m.len()))?;
    for (kind, per_action) in m {
        let by_text: BTreeMap<&str, u64> =
            per_action.iter().map(|(a, n)| (a.as_str(), *n)).collect();
        out.serialize_entry(kind, &by_text)?;
    }
    out.end()
}

/// A user-data category's action in a plan, with how many lines it covers.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DataCount {
    pub action: ItemAction,
    pub count: u64,
}

fn data_as_objects<S: serde::Serializer>(
    m: &BTreeMap<String, (ItemAction, u64)>,
    s: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut out = s.serialize_map(Some(m.len()))?;
    for (cat, (action, count)) in m {
        let entry = DataCount {
            action: *action,
            count: *count,
        };
        out.serialize_entry(cat, &entry)?;
    }
    out.end()
}

/// Everything the executor needs besides the connection.
pub struct DisposeInput<'a> {
    pub tenant_id: &'a str,
    pub person: &'a str,
    pub caller: Option<&'a str>,
    pub actor: &'a str,
    pub cause: Cause,
    pub policy: &'a Policy,
    pub keys: &'a TombstoneKeys,
    pub now: &'a str,
    /// The scheduled disposal being completed, if any.
    pub disposal_id: Option<String>,
    /// The person's row, when the caller read it in this transaction under
    /// the person's lock (else `execute` reads it).
    pub person_row: Option<&'a crate::store::users::UserRow>,
    /// PostgreSQL: the disposal's reads, taken before the tenant's counter
    /// lock (`prepare`); `None`: `execute` reads them.
    pub prepared: Option<&'a Prepared>,
    /// Called before each step (by name); tests make it fail to prove that a
    /// disposal interrupted anywhere leaves nothing behind. Production: `NO_HOOK`.
    pub hook: &'a dyn Fn(&str) -> Result<(), StoreError>,
}

/// The steps of `execute`, in order; each is one function of `execute.rs`.
pub const STEPS: [&str; 8] = [
    "run",
    "receipt",
    "archive",
    "items",
    "user_data",
    "tombstone",
    "scrub",
    "finish",
];

pub const NO_HOOK: &dyn Fn(&str) -> Result<(), StoreError> = &|_| Ok(());

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Receipt {
    #[serde(rename = "disposalId")]
    pub disposal_id: String,
    #[serde(rename = "planHash")]
    pub plan_hash: String,
    pub counts: BTreeMap<String, u64>,
    pub target: Option<ResolvedTarget>,
    /// The tombstone this run wrote, for the journal (`None`: written
    /// before, by a held DELETE; the journal reads it back).
    #[serde(skip)]
    #[schema(ignore)]
    pub tombstone: Option<crate::domain::journal::JournaledTombstone>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A plan's JSON lists each kind's actions in the order of their text
    /// (as when they were strings), not in the enum's declaration order.
    #[test]
    fn plan_json_lists_actions_by_text_and_data_as_objects() {
        let per_kind = BTreeMap::from([
            (ItemAction::Transfer, 3),
            (ItemAction::Orphan, 2),
            (ItemAction::Delete, 1),
            (ItemAction::Archive, 1),
        ]);
        let plan = Plan {
            user_id: "u".into(),
            target: None,
            summary: BTreeMap::from([("folder".to_string(), per_kind)]),
            user_data: BTreeMap::from([("like".to_string(), (ItemAction::Anonymize, 4))]),
            policy_digest: "p".into(),
            hash: "h".into(),
            items: vec![],
        };
        let text = serde_json::to_string(&plan).expect("serialises");
        assert_eq!(
            text,
            r#"{"userId":"u","target":null,"summary":{"folder":{"archive":1,"delete":1,"orphan":2,"transfer":3}},"userData":{"like":{"action":"anonymize","count":4}},"policyDigest":"p","hash":"h"}"#
        );
    }
}

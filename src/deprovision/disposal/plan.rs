//! The plan: the target chain resolved, what the policy does to each item and
//! each category of user data, and the plan's hash.

use super::{Plan, PlanItem, ResolvedTarget};
use crate::deprovision::policy::{FolderAction, Policy, Target};
use crate::domain::ItemAction;
use crate::scim::fold::fold;
use crate::store::users::Key;
use crate::store::{AnyConnection, StoreError, ledger, users};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// Resolves the target chain: the first link naming an active user of the tenant.
pub fn resolve_target(
    c: &mut AnyConnection,
    tenant: &str,
    person: &str,
    manager: Option<&str>,
    caller: Option<&str>,
    policy: &Policy,
) -> Result<Option<ResolvedTarget>, StoreError> {
    let by = |c: &mut AnyConnection, key, value: &str| {
        users::active_other_by(c, tenant, key, value, person)
    };
    for t in &policy.targets {
        let found = match t {
            // Okta puts its own ids in manager.value: try our id, then externalId, then userName.
            Target::Manager => match manager {
                Some(m) => match by(c, Key::Id, m)? {
                    Some(u) => Some(u),
                    None => match by(c, Key::ExternalId, m)? {
                        Some(u) => Some(u),
                        None => by(c, Key::UserName, &fold(m))?,
                    },
                },
                None => None,
            },
            Target::Custodian => match &policy.custodian {
                Some(name) => by(c, Key::UserName, &fold(name))?,
                None => None,
            },
            Target::Caller => match caller {
                Some(id) => by(c, Key::Id, id)?,
                None => None,
            },
            Target::User(name) => by(c, Key::UserName, &fold(name))?,
        };
        if let Some(user_id) = found {
            return Ok(Some(ResolvedTarget {
                user_id,
                link: String::from(t.clone()),
            }));
        }
    }
    Ok(None)
}

/// What the policy does to each item of `person`, and the plan's hash.
pub fn plan(
    c: &mut AnyConnection,
    tenant: &str,
    person: &str,
    manager: Option<&str>,
    caller: Option<&str>,
    policy: &Policy,
) -> Result<Plan, StoreError> {
    plan_with(c, tenant, person, manager, caller, policy, true)
}

/// The plan without its item list (`items` is empty): target, summary, user
/// data and hash, in memory that does not grow with the number of items.
pub fn plan_summary(
    c: &mut AnyConnection,
    tenant: &str,
    person: &str,
    manager: Option<&str>,
    caller: Option<&str>,
    policy: &Policy,
) -> Result<Plan, StoreError> {
    plan_with(c, tenant, person, manager, caller, policy, false)
}

fn plan_with(
    c: &mut AnyConnection,
    tenant: &str,
    person: &str,
    manager: Option<&str>,
    caller: Option<&str>,
    policy: &Policy,
    keep_items: bool,
) -> Result<Plan, StoreError> {
    let target = resolve_target(c, tenant, person, manager, caller, policy)?;
    let to = target.as_ref().map(|t| t.user_id.clone());
    let mut items = Vec::new();
    let mut summary: BTreeMap<String, BTreeMap<ItemAction, u64>> = BTreeMap::new();
    let mut hasher = PlanHasher::default();
    ledger::for_each_owned(c, tenant, person, |o| {
        let (action, to_owner) = item_action(policy, &o.kind, o.personal_root, to.as_deref());
        hasher.item(&o.kind, &o.item_id, action.as_str(), to_owner.as_deref());
        // Kinds are few: look up before allocating a key per item.
        match summary.get_mut(&o.kind) {
            Some(per_kind) => *per_kind.entry(action).or_default() += 1,
            None => {
                summary.entry(o.kind.clone()).or_default().insert(action, 1);
            }
        }
        if keep_items {
            items.push(PlanItem {
                kind: o.kind,
                id: o.item_id,
                action,
                to_owner,
            });
        }
    })?;
    let user_data = ledger::user_data_counts(c, tenant, person)?
        .into_iter()
        .map(|(category, n)| {
            let action = ItemAction::from(policy.data_action(&category));
            (category, (action, u64::try_from(n).unwrap_or(0)))
        })
        .collect::<BTreeMap<_, _>>();
    let policy_digest = policy.digest();
    let hash = hasher.finish(&user_data, &policy_digest);
    Ok(Plan {
        user_id: person.to_string(),
        target,
        summary,
        user_data,
        policy_digest,
        hash,
        items,
    })
}

/// The action for one item, and its new owner.
pub(super) fn item_action(
    policy: &Policy,
    kind: &str,
    personal_root: bool,
    to: Option<&str>,
) -> (ItemAction, Option<String>) {
    if personal_root && policy.personal_folder.action == FolderAction::Archive {
        return (ItemAction::Archive, to.map(str::to_string));
    }
    match (ItemAction::from(policy.kind_action(kind)), to) {
        (ItemAction::Transfer, Some(t)) => (ItemAction::Transfer, Some(t.to_string())),
        // Never delete for lack of an owner: orphan and report.
        (ItemAction::Transfer, None) => (ItemAction::Orphan, None),
        (action, _) => (action, None),
    }
}

/// Items sorted by (kind, id) with actions and targets, plus data actions and the
/// policy digest: no timestamps, no row order, so both backends hash alike.
pub fn plan_hash(
    items: &[PlanItem],
    data: &BTreeMap<String, (ItemAction, u64)>,
    policy_digest: &str,
) -> String {
    let mut sorted: Vec<&PlanItem> = items.iter().collect();
    sorted.sort_by(|a, b| (&a.kind, &a.id).cmp(&(&b.kind, &b.id)));
    let mut h = PlanHasher::default();
    for i in sorted {
        h.item(&i.kind, &i.id, i.action.as_str(), i.to_owner.as_deref());
    }
    h.finish(data, policy_digest)
}

/// The plan hash fed one item at a time; items must come in (kind, id) byte order.
#[derive(Default)]
struct PlanHasher(Sha256);

impl PlanHasher {
    fn item(&mut self, kind: &str, id: &str, action: &str, to_owner: Option<&str>) {
        for part in [
            kind,
            "\0",
            id,
            "\0",
            action,
            "\0",
            to_owner.unwrap_or(""),
            "\n",
        ] {
            self.0.update(part.as_bytes());
        }
    }

    fn finish(mut self, data: &BTreeMap<String, (ItemAction, u64)>, policy_digest: &str) -> String {
        for (cat, (action, n)) in data {
            self.0
                .update(format!("data\0{cat}\0{action}\0{n}\n").as_bytes());
        }
        self.0.update(policy_digest.as_bytes());
        hex::encode(self.0.finalize())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deprovision::policy::KindAction;

    fn item(kind: &str, id: &str, action: ItemAction, to: Option<&str>) -> PlanItem {
        PlanItem {
            kind: kind.into(),
            id: id.into(),
            action,
            to_owner: to.map(str::to_string),
        }
    }

    #[test]
    fn hash_ignores_order_and_changes_with_content() {
        let a = vec![
            item("recording", "1", ItemAction::Transfer, Some("u")),
            item("draft", "2", ItemAction::Delete, None),
        ];
        let b = vec![a[1].clone(), a[0].clone()];
        let d = BTreeMap::new();
        assert_eq!(plan_hash(&a, &d, "p"), plan_hash(&b, &d, "p"));
        assert_ne!(plan_hash(&a, &d, "p"), plan_hash(&a, &d, "q"));
        let c = vec![
            item("recording", "1", ItemAction::Orphan, None),
            a[1].clone(),
        ];
        assert_ne!(plan_hash(&a, &d, "p"), plan_hash(&c, &d, "p"));
    }

    #[test]
    fn actions_follow_policy_and_never_delete_for_lack_of_owner() {
        let mut p = Policy::default();
        p.kinds.insert("draft".into(), KindAction::Delete);
        p.kinds.insert("schedule".into(), KindAction::Orphan);
        assert_eq!(
            item_action(&p, "recording", false, Some("t")),
            (ItemAction::Transfer, Some("t".into()))
        );
        assert_eq!(
            item_action(&p, "recording", false, None),
            (ItemAction::Orphan, None)
        );
        assert_eq!(
            item_action(&p, "draft", false, Some("t")),
            (ItemAction::Delete, None)
        );
        assert_eq!(
            item_action(&p, "schedule", false, Some("t")),
            (ItemAction::Orphan, None)
        );
        assert_eq!(
            item_action(&p, "folder", true, Some("t")),
            (ItemAction::Archive, Some("t".into()))
        );
    }
}

//! Planning and executing a disposal. The plan is computed from the ledger and
//! the policy; execution applies it in the caller's transaction with set-based
//! statements (one per kind and action, not one per item), writes the receipt,
//! the tombstone and the audit row, and scrubs the person's PII to a stub.

use super::policy::{FolderAction, KindAction, Policy, Target};
use super::tombstone::{IdType, TombstoneKeys, sso_value};
use crate::scim::fold::fold;
use crate::store::db::{AnyConnection, Backend, Bind, Sql, backend_of, execute_sql, load_sql};
use crate::store::schema::{
    disposals, sso_subjects, tombstone_hashes, tombstones, user_emails, users,
};
use crate::store::{StoreError, ledger};
use diesel::prelude::*;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

pub const ARCHIVE_KIND: &str = "folder";
pub const ARCHIVE_ID: &str = "custodian-archive";

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlanItem {
    pub kind: String,
    pub id: String,
    /// transfer | orphan | delete | keep | archive
    pub action: String,
    #[serde(rename = "toOwner", skip_serializing_if = "Option::is_none")]
    pub to_owner: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResolvedTarget {
    #[serde(rename = "userId")]
    pub user_id: String,
    /// Which chain link matched: manager, custodian, caller, user:<name>.
    pub link: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    #[serde(rename = "userId")]
    pub user_id: String,
    pub target: Option<ResolvedTarget>,
    /// (kind, action) → count
    pub summary: BTreeMap<String, BTreeMap<String, u64>>,
    /// category → (action, count)
    #[serde(rename = "userData", serialize_with = "data_as_objects")]
    pub user_data: BTreeMap<String, (String, u64)>,
    #[serde(rename = "policyDigest")]
    pub policy_digest: String,
    pub hash: String,
    #[serde(skip)]
    pub items: Vec<PlanItem>,
}

fn data_as_objects<S: serde::Serializer>(
    m: &BTreeMap<String, (String, u64)>,
    s: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut out = s.serialize_map(Some(m.len()))?;
    for (cat, (action, count)) in m {
        out.serialize_entry(cat, &serde_json::json!({"action": action, "count": count}))?;
    }
    out.end()
}

#[derive(QueryableByName)]
struct OwnedItem {
    #[diesel(sql_type = diesel::sql_types::Text)]
    kind: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    item_id: String,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    personal_root: bool,
}

#[derive(QueryableByName)]
struct CategoryCount {
    #[diesel(sql_type = diesel::sql_types::Text)]
    category: String,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

fn active_user_by(
    c: &mut AnyConnection,
    tenant: &str,
    column: &str,
    value: &str,
    not: &str,
) -> Result<Option<String>, StoreError> {
    #[derive(QueryableByName)]
    struct Id {
        #[diesel(sql_type = diesel::sql_types::Text)]
        id: String,
    }
    let mut sql = Sql::default();
    sql.push("SELECT id FROM users WHERE tenant_id = ")
        .bind_text(tenant);
    // The visible-state predicate, literally, lets the partial unique index
    // on `column` serve the lookup.
    sql.push(&format!(
        " AND state IN ('active', 'suspended') AND state = 'active' AND {column} = "
    ))
    .bind_text(value);
    sql.push(" AND id <> ").bind_text(not);
    sql.push(" ORDER BY created_at LIMIT 1");
    Ok(load_sql::<Id>(c, &sql)?.pop().map(|r| r.id))
}

/// Resolves the target chain: the first link naming an active user of the tenant.
pub fn resolve_target(
    c: &mut AnyConnection,
    tenant: &str,
    person: &str,
    manager: Option<&str>,
    caller: Option<&str>,
    policy: &Policy,
) -> Result<Option<ResolvedTarget>, StoreError> {
    for t in &policy.targets {
        let found = match t {
            // Okta puts its own ids in manager.value: try our id, then externalId, then userName.
            Target::Manager => match manager {
                Some(m) => match active_user_by(c, tenant, "id", m, person)? {
                    Some(u) => Some(u),
                    None => match active_user_by(c, tenant, "external_id", m, person)? {
                        Some(u) => Some(u),
                        None => active_user_by(c, tenant, "user_name_key", &fold(m), person)?,
                    },
                },
                None => None,
            },
            Target::Custodian => match &policy.custodian {
                Some(name) => active_user_by(c, tenant, "user_name_key", &fold(name), person)?,
                None => None,
            },
            Target::Caller => match caller {
                Some(id) => active_user_by(c, tenant, "id", id, person)?,
                None => None,
            },
            Target::User(name) => active_user_by(c, tenant, "user_name_key", &fold(name), person)?,
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

/// Rows per page when streaming an owner's items.
const PAGE: i64 = 5000;

/// Calls `f` for every item `person` owns, in (kind, item_id) byte order, a
/// page at a time (keyset paging on `content_items_owner`, whose key columns
/// compare as bytes on both backends).
fn for_each_owned(
    c: &mut AnyConnection,
    tenant: &str,
    person: &str,
    mut f: impl FnMut(OwnedItem),
) -> Result<(), StoreError> {
    let mut after: Option<(String, String)> = None;
    loop {
        let mut sql = Sql::default();
        sql.push("SELECT kind, item_id, personal_root FROM content_items WHERE tenant_id = ")
            .bind_text(tenant);
        sql.push(" AND owner_id = ").bind_text(person);
        if let Some((k, i)) = &after {
            sql.push(" AND (kind, item_id) > (")
                .bind_text(k.clone())
                .push(", ")
                .bind_text(i.clone())
                .push(")");
        }
        sql.push(&format!(" ORDER BY kind, item_id LIMIT {PAGE}"));
        let page = load_sql::<OwnedItem>(c, &sql)?;
        let full = page.len() == usize::try_from(PAGE).unwrap_or(usize::MAX);
        let mut last = None;
        for o in page {
            last = Some((o.kind.clone(), o.item_id.clone()));
            f(o);
        }
        match last {
            Some(l) if full => after = Some(l),
            _ => return Ok(()),
        }
    }
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
    let mut summary: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    let mut hasher = PlanHasher::default();
    for_each_owned(c, tenant, person, |o| {
        let (action, to_owner) = item_action(policy, &o.kind, o.personal_root, to.as_deref());
        hasher.item(&o.kind, &o.item_id, action, to_owner.as_deref());
        // Kinds are few: look up before allocating a key per item.
        match summary.get_mut(&o.kind) {
            Some(per_kind) => *per_kind.entry(action.to_string()).or_default() += 1,
            None => {
                summary
                    .entry(o.kind.clone())
                    .or_default()
                    .insert(action.to_string(), 1);
            }
        }
        if keep_items {
            items.push(PlanItem {
                kind: o.kind,
                id: o.item_id,
                action: action.to_string(),
                to_owner,
            });
        }
    })?;
    let mut sql = Sql::default();
    sql.push("SELECT category, COUNT(*) AS n FROM user_data WHERE tenant_id = ")
        .bind_text(tenant);
    sql.push(" AND user_id = ").bind_text(person);
    sql.push(" GROUP BY category ORDER BY category");
    let user_data = load_sql::<CategoryCount>(c, &sql)?
        .into_iter()
        .map(|r| {
            let action = match policy.data_action(&r.category) {
                super::policy::DataAction::Delete => "delete",
                super::policy::DataAction::Anonymize => "anonymize",
                super::policy::DataAction::Keep => "keep",
            };
            (
                r.category,
                (action.to_string(), u64::try_from(r.n).unwrap_or(0)),
            )
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
fn item_action(
    policy: &Policy,
    kind: &str,
    personal_root: bool,
    to: Option<&str>,
) -> (&'static str, Option<String>) {
    if personal_root && policy.personal_folder.action == FolderAction::Archive {
        return ("archive", to.map(str::to_string));
    }
    match policy.kind_action(kind) {
        KindAction::Transfer => match to {
            Some(t) => ("transfer", Some(t.to_string())),
            // Never delete for lack of an owner: orphan and report.
            None => ("orphan", None),
        },
        KindAction::Orphan => ("orphan", None),
        KindAction::Delete => ("delete", None),
        KindAction::Keep => ("keep", None),
    }
}

/// Items sorted by (kind, id) with actions and targets, plus data actions and the
/// policy digest: no timestamps, no row order, so both backends hash alike.
pub fn plan_hash(
    items: &[PlanItem],
    data: &BTreeMap<String, (String, u64)>,
    policy_digest: &str,
) -> String {
    let mut sorted: Vec<&PlanItem> = items.iter().collect();
    sorted.sort_by(|a, b| (&a.kind, &a.id).cmp(&(&b.kind, &b.id)));
    let mut h = PlanHasher::default();
    for i in sorted {
        h.item(&i.kind, &i.id, &i.action, i.to_owner.as_deref());
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

    fn finish(mut self, data: &BTreeMap<String, (String, u64)>, policy_digest: &str) -> String {
        for (cat, (action, n)) in data {
            self.0
                .update(format!("data\0{cat}\0{action}\0{n}\n").as_bytes());
        }
        self.0.update(policy_digest.as_bytes());
        hex::encode(self.0.finalize())
    }
}

/// Everything the executor needs besides the connection.
pub struct DisposeInput<'a> {
    pub tenant_id: &'a str,
    pub person: &'a str,
    pub caller: Option<&'a str>,
    pub actor: &'a str,
    pub cause: &'a str,
    pub policy: &'a Policy,
    pub keys: &'a TombstoneKeys,
    pub now: &'a str,
    /// The scheduled disposal being completed, if any.
    pub disposal_id: Option<String>,
    /// Called before each step (by name); tests make it fail to prove that a
    /// disposal interrupted anywhere leaves nothing behind. Production: `NO_HOOK`.
    pub hook: &'a dyn Fn(&str) -> Result<(), StoreError>,
}

/// The steps of `execute`, in order.
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

#[derive(Debug, Clone, Serialize)]
pub struct Receipt {
    #[serde(rename = "disposalId")]
    pub disposal_id: String,
    #[serde(rename = "planHash")]
    pub plan_hash: String,
    pub counts: BTreeMap<String, u64>,
    pub target: Option<ResolvedTarget>,
}

fn label(template: &str, now: &str, disposal_id: &str, display_name: Option<&str>) -> String {
    template
        .replace("{date}", now.get(..10).unwrap_or(now))
        .replace("{disposalId}", disposal_id)
        .replace("{displayName}", display_name.unwrap_or("Deleted User"))
}

fn exec(c: &mut AnyConnection, f: impl FnOnce(&mut Sql)) -> Result<usize, StoreError> {
    let mut sql = Sql::default();
    f(&mut sql);
    execute_sql(c, &sql)
}

/// Applies the policy to everything `person` owns, inside the caller's write
/// transaction. The caller has checked the person is disposable.
pub fn execute(c: &mut AnyConnection, inp: &DisposeInput<'_>) -> Result<Receipt, StoreError> {
    let (t, p, now) = (inp.tenant_id, inp.person, inp.now);
    if backend_of(c) == Backend::Postgres {
        // Ledger writes take FOR SHARE on the owner row; this waits for them.
        exec(c, |s| {
            s.push("SELECT 1 FROM users WHERE id = ").bind_text(p);
            s.push(" FOR UPDATE");
        })?;
    }
    let person: crate::store::users::UserRow = users::table
        .filter(users::tenant_id.eq(t))
        .filter(users::id.eq(p))
        .select(crate::store::users::UserRow::as_select())
        .first(c)?;
    // Disposing twice, or disposing a stub, is never right (callers hold the
    // person's lock and have checked; this is the last line of defence).
    if !matches!(
        person.state.as_str(),
        "active" | "suspended" | "deleted_pending"
    ) {
        return Err(StoreError::NotFound);
    }
    let plan = plan_summary(
        c,
        t,
        p,
        person.manager_id.as_deref(),
        inp.caller,
        inp.policy,
    )?;
    let disposal_id = inp
        .disposal_id
        .clone()
        .unwrap_or_else(|| crate::store::new_id().to_string());
    let to = plan.target.as_ref().map(|x| x.user_id.clone());
    let link = plan.target.as_ref().map(|x| x.link.clone());

    (inp.hook)("run")?;
    // The run's row first: receipt lines reference it. A new id has no row
    // (and no tombstone) yet.
    let existing = inp.disposal_id.is_some()
        && disposals::table
            .filter(disposals::id.eq(&disposal_id))
            .count()
            .get_result::<i64>(c)?
            > 0;
    if existing {
        diesel::update(disposals::table.filter(disposals::id.eq(&disposal_id)))
            .set((
                disposals::state.eq("running"),
                disposals::cause.eq(inp.cause),
                disposals::actor.eq(inp.actor),
            ))
            .execute(c)?;
    } else {
        diesel::insert_into(disposals::table)
            .values((
                disposals::id.eq(&disposal_id),
                disposals::tenant_id.eq(t),
                disposals::user_id.eq(p),
                disposals::state.eq("running"),
                disposals::cause.eq(inp.cause),
                disposals::due_at.eq(now),
                disposals::actor.eq(inp.actor),
                disposals::caller_user_id.eq(inp.caller),
                disposals::created_at.eq(now),
            ))
            .execute(c)?;
    }

    (inp.hook)("receipt")?;
    // Receipt lines first (they record the owner before the change), set-based,
    // kind by kind in key order so each line lands at the end of the receipt's key.
    let kinds: Vec<String> = plan.summary.keys().cloned().collect();
    for kind in &kinds {
        let (action, to_owner) = item_action(inp.policy, kind, false, to.as_deref());
        exec(c, |s| {
            s.push("INSERT INTO disposal_items (disposal_id, kind, item_id, action, from_owner, to_owner, target_link) SELECT ")
                .bind_text(disposal_id.clone())
                .push(", kind, item_id, ")
                .bind_text(action)
                .push(", owner_id, ");
            match &to_owner {
                Some(o) => s.bind_text(o.clone()),
                None => s.push("NULL"),
            };
            s.push(", ");
            match (&to_owner, &link) {
                (Some(_), Some(l)) => s.bind_text(l.clone()),
                _ => s.push("NULL"),
            };
            s.push(" FROM content_items WHERE tenant_id = ")
                .bind_text(t);
            s.push(" AND owner_id = ").bind_text(p);
            s.push(" AND kind = ").bind_text(kind.clone());
            if inp.policy.personal_folder.action == FolderAction::Archive {
                s.push(" AND personal_root = FALSE");
            }
            s.push(" ORDER BY item_id");
        })?;
    }
    let archive = inp.policy.personal_folder.action == FolderAction::Archive
        && plan.summary.values().any(|a| a.contains_key("archive"));
    if archive {
        exec(c, |s| {
            s.push("INSERT INTO disposal_items (disposal_id, kind, item_id, action, from_owner, to_owner, target_link) SELECT ")
                .bind_text(disposal_id.clone())
                .push(", kind, item_id, 'archive', owner_id, ");
            match &to {
                Some(o) => s.bind_text(o.clone()),
                None => s.push("NULL"),
            };
            s.push(", ");
            match &link {
                Some(l) => s.bind_text(l.clone()),
                None => s.push("NULL"),
            };
            s.push(" FROM content_items WHERE tenant_id = ")
                .bind_text(t);
            s.push(" AND owner_id = ").bind_text(p);
            s.push(" AND personal_root = TRUE");
        })?;
    }

    (inp.hook)("archive")?;
    // Personal roots: under the tenant's Archive folder, relabelled, shared with the new owner.
    if archive {
        if ledger::find_item(c, t, ARCHIVE_KIND, ARCHIVE_ID)?.is_none() {
            ledger::upsert_item(
                c,
                &ledger::ItemRow {
                    tenant_id: t.into(),
                    kind: ARCHIVE_KIND.into(),
                    item_id: ARCHIVE_ID.into(),
                    owner_id: None,
                    parent_kind: None,
                    parent_id: None,
                    title: Some("Archive".into()),
                    personal_root: false,
                    created_at: now.into(),
                    updated_at: now.into(),
                },
            )?;
        }
        let display = if inp.policy.personal_folder.label.contains("{displayName}") {
            serde_json::from_str::<serde_json::Value>(&person.data)
                .ok()
                .and_then(|d| {
                    d.get("displayName")
                        .and_then(|v| v.as_str())
                        .map(str::to_string)
                })
        } else {
            None
        };
        let title = label(
            &inp.policy.personal_folder.label,
            now,
            &disposal_id,
            display.as_deref(),
        );
        // Shared with the new owner before the roots change hands (set-based:
        // any number of roots).
        if let Some(o) = &to {
            exec(c, |s| {
                s.push("INSERT INTO content_shares (tenant_id, kind, item_id, user_id, created_at) SELECT tenant_id, kind, item_id, ")
                    .bind_text(o.clone())
                    .push(", ")
                    .bind_text(now);
                s.push(" FROM content_items WHERE tenant_id = ")
                    .bind_text(t);
                s.push(" AND owner_id = ").bind_text(p);
                s.push(" AND personal_root = TRUE ON CONFLICT DO NOTHING");
            })?;
        }
        exec(c, |s| {
            s.push("UPDATE content_items SET parent_kind = ")
                .bind_text(ARCHIVE_KIND);
            s.push(", parent_id = ").bind_text(ARCHIVE_ID);
            s.push(", title = ").bind_text(title.clone());
            s.push(", personal_root = FALSE, owner_id = ");
            match &to {
                Some(o) => s.bind_text(o.clone()),
                None => s.push("NULL"),
            };
            s.push(", updated_at = ").bind_text(now);
            s.push(" WHERE tenant_id = ").bind_text(t);
            s.push(" AND owner_id = ").bind_text(p);
            s.push(" AND personal_root = TRUE");
        })?;
    }

    (inp.hook)("items")?;
    // Every other item: one statement per kind.
    for kind in &kinds {
        let (action, to_owner) = item_action(inp.policy, kind, false, to.as_deref());
        let scope = |s: &mut Sql| {
            s.push(" WHERE tenant_id = ").bind_text(t);
            s.push(" AND owner_id = ").bind_text(p);
            s.push(" AND kind = ").bind_text(kind.clone());
        };
        match action {
            "transfer" | "orphan" => {
                exec(c, |s| {
                    s.push("UPDATE content_items SET owner_id = ");
                    match &to_owner {
                        Some(o) => s.bind_text(o.clone()),
                        None => s.push("NULL"),
                    };
                    s.push(", updated_at = ").bind_text(now);
                    scope(s);
                })?;
            }
            "delete" => {
                // Children of deleted folders (possibly other people's) lose their parent.
                exec(c, |s| {
                    s.push("UPDATE content_items SET parent_kind = NULL, parent_id = NULL WHERE tenant_id = ").bind_text(t);
                    // Spelled out so the partial parent index applies.
                    s.push(" AND parent_id IS NOT NULL AND parent_kind = ")
                        .bind_text(kind.clone());
                    s.push(
                        " AND parent_id IN (SELECT item_id FROM content_items WHERE tenant_id = ",
                    )
                    .bind_text(t);
                    s.push(" AND owner_id = ").bind_text(p);
                    s.push(" AND kind = ").bind_text(kind.clone());
                    s.push(")");
                })?;
                exec(c, |s| {
                    s.push("DELETE FROM content_shares WHERE tenant_id = ")
                        .bind_text(t);
                    s.push(" AND kind = ").bind_text(kind.clone());
                    s.push(" AND item_id IN (SELECT item_id FROM content_items WHERE tenant_id = ")
                        .bind_text(t);
                    s.push(" AND owner_id = ").bind_text(p);
                    s.push(" AND kind = ").bind_text(kind.clone());
                    s.push(")");
                })?;
                exec(c, |s| {
                    s.push("DELETE FROM content_items");
                    scope(s);
                })?;
            }
            _ => {} // keep: stays on the person's stub
        }
    }

    (inp.hook)("user_data")?;
    // User data: delete, anonymise (to a fresh stub for this disposal), or keep.
    let mut anon_stub: Option<String> = None;
    for (category, (action, _)) in &plan.user_data {
        match action.as_str() {
            "delete" => {
                exec(c, |s| {
                    s.push("DELETE FROM user_data WHERE tenant_id = ")
                        .bind_text(t);
                    s.push(" AND user_id = ").bind_text(p);
                    s.push(" AND category = ").bind_text(category.clone());
                })?;
            }
            "anonymize" => {
                let stub = match &anon_stub {
                    Some(s) => s.clone(),
                    None => {
                        let id = crate::store::new_id().to_string();
                        insert_stub(c, t, &id, "stub", now)?;
                        anon_stub = Some(id.clone());
                        id
                    }
                };
                exec(c, |s| {
                    s.push("UPDATE user_data SET user_id = ")
                        .bind_text(stub.clone());
                    s.push(", updated_at = ").bind_text(now);
                    s.push(" WHERE tenant_id = ").bind_text(t);
                    s.push(" AND user_id = ").bind_text(p);
                    s.push(" AND category = ").bind_text(category.clone());
                })?;
            }
            _ => {}
        }
    }
    // Shares granted to the person are removed.
    exec(c, |s| {
        s.push("DELETE FROM content_shares WHERE tenant_id = ")
            .bind_text(t);
        s.push(" AND user_id = ").bind_text(p);
    })?;

    (inp.hook)("tombstone")?;
    // Tombstone: keyed hashes of every identifier, skipping any that another
    // active user holds now.
    let emails: Vec<(String, String)> = crate::per_backend!(c, c => user_emails::table
        .filter(user_emails::user_id.eq(p))
        .select((user_emails::value, user_emails::value_key))
        .load(c))?;
    let tombstone = Tombstone {
        disposal_id: &disposal_id,
        maybe_written: existing,
        emails: emails.iter().map(|(v, _)| v.clone()).collect(),
    };
    write_tombstone(c, t, &person, &tombstone, inp.keys, now)?;

    (inp.hook)("scrub")?;
    // The aliases `alias_keys` reads, from the rows already in hand.
    let mut aliases = vec![person.user_name_key.clone()];
    aliases.extend(person.external_id.as_deref().map(fold));
    aliases.extend(emails.into_iter().map(|(_, k)| k));
    repoint_subordinates(c, t, p, &aliases, now)?;
    // Scrub the person to a "Deleted User" stub.
    diesel::delete(user_emails::table.filter(user_emails::user_id.eq(p))).execute(c)?;
    diesel::delete(
        sso_subjects::table
            .filter(sso_subjects::tenant_id.eq(t))
            .filter(sso_subjects::user_id.eq(p)),
    )
    .execute(c)?;
    crate::store::groups::remove_from_all_groups(c, t, p)?;
    let stub_name = format!("deleted:{p}");
    // Hand-built (a cached shape): diesel prepares an UPDATE whose SET is a
    // tuple again on every call.
    exec(c, |s| {
        s.push("UPDATE users SET state = 'disposed', user_name = ")
            .bind_text(stub_name.clone());
        s.push(", user_name_key = ").bind_text(stub_name.clone());
        s.push(
            ", external_id = NULL, display_name_key = NULL, given_name_key = NULL, \
             family_name_key = NULL, manager_id = NULL, manager_key = NULL, search = NULL, \
             active = FALSE, data = '{\"displayName\":\"Deleted User\"}', updated_at = ",
        )
        .bind_text(now);
        s.push(", version = ")
            .bind(Bind::BigInt(person.version + 1));
        s.push(" WHERE tenant_id = ").bind_text(t);
        s.push(" AND id = ").bind_text(p);
    })?;

    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for per_kind in plan.summary.values() {
        for (action, n) in per_kind {
            *counts.entry(action_count_name(action).into()).or_default() += n;
        }
    }
    for (action, n) in plan.user_data.values() {
        *counts.entry(format!("userData.{action}")).or_default() += n;
    }
    let counts_json = serde_json::to_string(&counts).unwrap_or_default();
    (inp.hook)("finish")?;
    exec(c, |s| {
        s.push("UPDATE disposals SET state = 'done', plan_hash = ")
            .bind_text(plan.hash.clone());
        s.push(", policy_digest = ")
            .bind_text(plan.policy_digest.clone());
        s.push(", counts = ").bind_text(counts_json.clone());
        s.push(", completed_at = ").bind_text(now);
        s.push(" WHERE id = ").bind_text(disposal_id.clone());
    })?;
    crate::store::audit::write(
        c,
        t,
        now,
        inp.actor,
        "user.disposed",
        "user",
        p,
        Some(&format!("{{\"disposalId\":\"{disposal_id}\"}}")),
    )?;
    Ok(Receipt {
        disposal_id,
        plan_hash: plan.hash,
        counts,
        target: plan.target,
    })
}

/// Whether disposing `person` touches at most `limit` rows besides the
/// person's own few (items owned, shares granted to them, shares on their
/// items, other people's items in their folders, user data, group memberships,
/// reports repointed): a disposal that small is bounded like any request and
/// may share a write group; a larger one runs alone. Each count stops at
/// `limit + 1`, so this costs the same for an owner of a million items.
pub fn is_small(
    c: &mut AnyConnection,
    tenant: &str,
    person: &str,
    limit: usize,
) -> Result<bool, StoreError> {
    let Some(seen) = ledger::disposal_rows_up_to(c, tenant, person, limit)? else {
        return Ok(false);
    };
    let keys = match alias_keys(c, tenant, person) {
        Ok(keys) => keys,
        // No such person: nothing to dispose; the caller answers the 404.
        Err(StoreError::NotFound) => return Ok(true),
        Err(e) => return Err(e),
    };
    let reports = crate::store::users::reports_up_to(c, tenant, person, &keys, limit - seen)?;
    Ok(seen + reports <= limit)
}

/// Reports whose `manager.value` names the person by userName, externalId or
/// email (Okta sends its own identifiers there) would keep that identifier after
/// the scrub: point them at the stub's id instead.
fn repoint_subordinates(
    c: &mut AnyConnection,
    tenant: &str,
    person: &str,
    keys: &[String],
    now: &str,
) -> Result<(), StoreError> {
    #[derive(QueryableByName)]
    struct Report {
        #[diesel(sql_type = diesel::sql_types::Text)]
        id: String,
        #[diesel(sql_type = diesel::sql_types::Text)]
        data: String,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        version: i64,
    }
    // A padded `IN` list: a few cached shapes, not one prepared per DELETE.
    let mut sql = Sql::default();
    sql.push("SELECT id, data, version FROM users WHERE tenant_id = ")
        .bind_text(tenant);
    sql.push(" AND manager_key IN ").bind_list(keys);
    sql.push(" AND id <> ").bind_text(person);
    for Report { id, data, version } in load_sql::<Report>(c, &sql)? {
        let mut doc: serde_json::Value =
            serde_json::from_str(&data).unwrap_or_else(|_| serde_json::json!({}));
        if let Some(m) = doc
            .get_mut(crate::scim::schema::ENTERPRISE_URN)
            .and_then(|e| e.get_mut("manager"))
            .and_then(serde_json::Value::as_object_mut)
        {
            m.insert(
                "value".into(),
                serde_json::Value::String(person.to_string()),
            );
        }
        diesel::update(
            users::table
                .filter(users::tenant_id.eq(tenant))
                .filter(users::id.eq(&id)),
        )
        .set((
            users::manager_id.eq(person),
            users::manager_key.eq(crate::scim::fold::fold(person)),
            users::search.eq(crate::scim::search_doc::of_user_json(&doc)),
            users::data.eq(doc.to_string()),
            users::version.eq(version + 1),
            users::updated_at.eq(now),
        ))
        .execute(c)?;
        crate::store::audit::write(
            c,
            tenant,
            now,
            "disposal",
            "user.manager_repointed",
            "user",
            &id,
            None,
        )?;
    }
    Ok(())
}

/// The folded identifiers a report's `manager.value` may name the person by.
fn alias_keys(
    c: &mut AnyConnection,
    tenant: &str,
    person: &str,
) -> Result<Vec<String>, StoreError> {
    let (name_key, external): (String, Option<String>) = users::table
        .filter(users::tenant_id.eq(tenant))
        .filter(users::id.eq(person))
        .select((users::user_name_key, users::external_id))
        .first(c)?;
    let mut keys = vec![name_key];
    keys.extend(external.map(|x| fold(&x)));
    keys.extend(
        user_emails::table
            .filter(user_emails::user_id.eq(person))
            .select(user_emails::value_key)
            .load::<String>(c)?,
    );
    Ok(keys)
}

/// PostgreSQL: locks the person's reports (in id order) before the tenant
/// counter, keeping one lock order with PATCHes that suspend a report.
pub fn lock_reports(c: &mut AnyConnection, tenant: &str, person: &str) -> Result<(), StoreError> {
    if backend_of(c) != Backend::Postgres {
        return Ok(());
    }
    let keys = alias_keys(c, tenant, person)?;
    let ids: Vec<String> = users::table
        .filter(users::tenant_id.eq(tenant))
        .filter(users::manager_key.eq_any(&keys))
        .filter(users::id.ne(person))
        .select(users::id)
        .order(users::id)
        .load(c)?;
    for id in ids {
        crate::store::db::lock_row(c, "users", tenant, &id)?;
    }
    Ok(())
}

fn action_count_name(action: &str) -> &'static str {
    match action {
        "transfer" => "transferred",
        "orphan" => "orphaned",
        "delete" => "deleted",
        "archive" => "archived",
        _ => "kept",
    }
}

fn insert_stub(
    c: &mut AnyConnection,
    tenant: &str,
    id: &str,
    state: &str,
    now: &str,
) -> Result<(), StoreError> {
    let name = format!("deleted:{id}");
    diesel::insert_into(users::table)
        .values((
            users::id.eq(id),
            users::tenant_id.eq(tenant),
            users::state.eq(state),
            users::user_name.eq(&name),
            users::user_name_key.eq(&name),
            users::active.eq(false),
            users::data.eq(r#"{"displayName":"Deleted User"}"#),
            users::created_at.eq(now),
            users::updated_at.eq(now),
            users::version.eq(1_i64),
        ))
        .execute(c)?;
    Ok(())
}

/// Tombstones a person now (a held DELETE), before their disposal runs.
pub fn tombstone_for(
    c: &mut AnyConnection,
    tenant: &str,
    person: &str,
    disposal_id: &str,
    keys: &TombstoneKeys,
    now: &str,
) -> Result<(), StoreError> {
    let row: crate::store::users::UserRow = users::table
        .filter(users::tenant_id.eq(tenant))
        .filter(users::id.eq(person))
        .select(crate::store::users::UserRow::as_select())
        .first(c)?;
    let emails = user_emails::table
        .filter(user_emails::user_id.eq(person))
        .select(user_emails::value)
        .load(c)?;
    let tombstone = Tombstone {
        disposal_id,
        maybe_written: true,
        emails,
    };
    write_tombstone(c, tenant, &row, &tombstone, keys, now)
}

/// A tombstone to write: for which disposal, and the person's emails.
struct Tombstone<'a> {
    disposal_id: &'a str,
    /// The disposal existed before this run, so a held DELETE may already
    /// have tombstoned the person for it.
    maybe_written: bool,
    emails: Vec<String>,
}

fn write_tombstone(
    c: &mut AnyConnection,
    t: &str,
    person: &crate::store::users::UserRow,
    tombstone: &Tombstone<'_>,
    keys: &TombstoneKeys,
    now: &str,
) -> Result<(), StoreError> {
    let disposal_id = tombstone.disposal_id;
    // A held DELETE already tombstoned this person for this disposal.
    if tombstone.maybe_written {
        let already: i64 = tombstones::table
            .filter(tombstones::disposal_id.eq(disposal_id))
            .count()
            .get_result(c)?;
        if already > 0 {
            return Ok(());
        }
    }
    let p = person.id.as_str();
    let mut ids: Vec<(IdType, String)> = vec![(IdType::UserName, person.user_name.clone())];
    if let Some(x) = &person.external_id {
        ids.push((IdType::ExternalId, x.clone()));
    }
    ids.extend(tombstone.emails.iter().map(|e| (IdType::Email, e.clone())));
    for (issuer, subject) in ledger::sso_of(c, t, p)? {
        ids.push((IdType::Sso, sso_value(&issuer, &subject)));
    }
    let tomb_id = crate::store::new_id().to_string();
    diesel::insert_into(tombstones::table)
        .values((
            tombstones::id.eq(&tomb_id),
            tombstones::tenant_id.eq(t),
            tombstones::disposal_id.eq(disposal_id),
            tombstones::created_at.eq(now),
            // Kept even when the hash itself is skipped below: the identity rule
            // needs to know the person had one ("Identity evidence").
            tombstones::had_external_id.eq(person
                .external_id
                .as_deref()
                .and_then(super::evidence::external_id)
                .is_some()),
        ))
        .execute(c)?;
    let mut seen = std::collections::HashSet::new();
    for (ty, value) in ids {
        if held_by_other_active(c, t, p, ty, &value)? {
            continue;
        }
        let hash = keys.hash(t, ty, &value);
        if !seen.insert(hash.clone()) {
            continue;
        }
        diesel::insert_into(tombstone_hashes::table)
            .values((
                tombstone_hashes::tombstone_id.eq(&tomb_id),
                tombstone_hashes::tenant_id.eq(t),
                tombstone_hashes::hash.eq(&hash),
                tombstone_hashes::id_type.eq(ty.as_str()),
                tombstone_hashes::norm_version.eq(super::tombstone::NORM_VERSION),
            ))
            .execute(c)?;
    }
    Ok(())
}

/// An identifier another active user holds is not tombstoned (it is theirs now).
fn held_by_other_active(
    c: &mut AnyConnection,
    tenant: &str,
    person: &str,
    ty: IdType,
    value: &str,
) -> Result<bool, StoreError> {
    let others = |col: &str, v: &str, c: &mut AnyConnection| {
        active_user_by(c, tenant, col, v, person).map(|o| o.is_some())
    };
    match ty {
        IdType::UserName => others("user_name_key", &fold(value), c),
        IdType::ExternalId => others("external_id", value.trim(), c),
        IdType::Email => {
            let mut sql = Sql::default();
            sql.push("SELECT COUNT(*) AS n FROM user_emails e JOIN users u ON u.id = e.user_id WHERE e.tenant_id = ").bind_text(tenant);
            sql.push(" AND e.value_key = ").bind_text(fold(value));
            sql.push(" AND u.state = 'active' AND u.id <> ")
                .bind_text(person);
            Ok(load_sql::<crate::store::db::Count>(c, &sql)?
                .first()
                .is_some_and(|r| r.n > 0))
        }
        IdType::Sso => Ok(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(kind: &str, id: &str, action: &str, to: Option<&str>) -> PlanItem {
        PlanItem {
            kind: kind.into(),
            id: id.into(),
            action: action.into(),
            to_owner: to.map(str::to_string),
        }
    }

    #[test]
    fn hash_ignores_order_and_changes_with_content() {
        let a = vec![
            item("recording", "1", "transfer", Some("u")),
            item("draft", "2", "delete", None),
        ];
        let b = vec![a[1].clone(), a[0].clone()];
        let d = BTreeMap::new();
        assert_eq!(plan_hash(&a, &d, "p"), plan_hash(&b, &d, "p"));
        assert_ne!(plan_hash(&a, &d, "p"), plan_hash(&a, &d, "q"));
        let c = vec![item("recording", "1", "orphan", None), a[1].clone()];
        assert_ne!(plan_hash(&a, &d, "p"), plan_hash(&c, &d, "p"));
    }

    #[test]
    fn actions_follow_policy_and_never_delete_for_lack_of_owner() {
        let mut p = Policy::default();
        p.kinds.insert("draft".into(), KindAction::Delete);
        p.kinds.insert("schedule".into(), KindAction::Orphan);
        assert_eq!(
            item_action(&p, "recording", false, Some("t")),
            ("transfer", Some("t".into()))
        );
        assert_eq!(item_action(&p, "recording", false, None), ("orphan", None));
        assert_eq!(item_action(&p, "draft", false, Some("t")), ("delete", None));
        assert_eq!(
            item_action(&p, "schedule", false, Some("t")),
            ("orphan", None)
        );
        assert_eq!(
            item_action(&p, "folder", true, Some("t")),
            ("archive", Some("t".into()))
        );
        assert_eq!(
            label(
                "(archived {date})",
                "2026-11-24T10:00:00.000000Z",
                "d1",
                None
            ),
            "(archived 2026-11-24)"
        );
        assert_eq!(
            label("(from {displayName})", "2026", "d", Some("Ann Lee")),
            "(from Ann Lee)"
        );
    }
}

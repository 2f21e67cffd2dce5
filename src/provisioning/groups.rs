//! Groups. Memberships live in their own table, one row each: a PATCH that adds or
//! removes one member touches one row, and a read that excludes `members` never
//! reads memberships.

use super::{PatchOutcome, Rendered, ServiceError, Services, check_if_match, corrupt, listing};
use crate::domain::Actor;
use crate::scim::error::ScimError;
use crate::scim::filter::{CompValue, CompareOp, Filter};
use crate::scim::list::ListParams;
use crate::scim::patch::{self, Op, Operation, PatchContext, PatchPath};
use crate::scim::resource::{
    Doc, Meta, Projection, group_keys, normalize_attr, normalize_within, render,
};
use crate::scim::schema::{GROUP_SCHEMA, GROUP_TYPE};
use crate::store::groups::{GroupRow, MemberKind};
use crate::store::{self, AnyConnection, filter_sql};
use serde_json::{Value, json};

/// Above this many members a PATCH answers 204 instead of echoing the group.
pub const PATCH_ECHO_LIMIT: i64 = 1000;

/// A write naming more members than this runs alone (`Db::write_alone`): a
/// group holds at most what its body limit allows (~1.5 M ids), and such a
/// list commits as a transaction of its own instead of keeping other
/// tenants' writes in a shared write group, and their answers, waiting for
/// it. Smaller member changes, the common case, stay in the group.
pub const ALONE_MEMBERS: usize = 1000;

fn meta(row: &GroupRow, base: &str) -> Meta {
    Meta {
        resource_type: "Group",
        created: row.created_at.clone(),
        last_modified: row.updated_at.clone(),
        version: row.version,
        location: format!("{base}/Groups/{}", row.id),
    }
}

pub fn not_found(id: &str) -> ScimError {
    ScimError::not_found(format!("no group with id {id}"))
}

/// The members rendering `row` needs: `None` unless the projection wants them.
pub(crate) fn members_for(
    c: &mut AnyConnection,
    caller: &Actor,
    row: &GroupRow,
    projection: &Projection,
) -> Result<Option<Vec<store::groups::Member>>, ServiceError> {
    if !projection.wants(&GROUP_TYPE, "members") {
        return Ok(None);
    }
    Ok(Some(store::groups::members(c, &caller.tenant_id, &row.id)?))
}

/// Renders a listed group with the members read before (`members_for`),
/// after the connection is returned.
pub(crate) fn render_row(
    row: &GroupRow,
    members: Option<Vec<store::groups::Member>>,
    projection: &Projection,
    base: &str,
) -> Result<Value, ServiceError> {
    let doc: Doc = serde_json::from_str(&row.data).map_err(corrupt)?;
    let mut v = render(&GROUP_TYPE, &row.id, &doc, &meta(row, base));
    if let Some(members) = members {
        let members: Vec<Value> = members
            .into_iter()
            .map(|m| {
                let path = if m.kind == MemberKind::Group { "Groups" } else { "Users" };
                json!({"value": m.id, "$ref": format!("{base}/{path}/{}", m.id), "type": m.kind.as_str()})
            })
            .collect();
        if !members.is_empty()
            && let Some(o) = v.as_object_mut()
        {
            o.insert("members".into(), Value::Array(members));
        }
    }
    Ok(projection.apply(&GROUP_TYPE, v))
}

fn rendered(
    c: &mut AnyConnection,
    caller: &Actor,
    row: &GroupRow,
    projection: &Projection,
    base: &str,
) -> Result<Rendered, ServiceError> {
    let members = members_json(c, caller, &row.id, projection, base)?;
    rendered_with(row, members, projection, base)
}

/// `rendered` with the members already written (no connection needed).
fn rendered_with(
    row: &GroupRow,
    members_json: Option<String>,
    projection: &Projection,
    base: &str,
) -> Result<Rendered, ServiceError> {
    let m = meta(row, base);
    let doc: Doc = serde_json::from_str(&row.data).map_err(corrupt)?;
    let body = projection.apply(&GROUP_TYPE, render(&GROUP_TYPE, &row.id, &doc, &m));
    Ok(Rendered {
        body,
        members_json,
        etag: m.etag(),
        location: m.location,
        restored: false,
    })
}

/// The member sub-attributes `projection` keeps; `None` when it drops `members`.
fn kept_member_keys(projection: &Projection) -> Option<Vec<String>> {
    let probe = json!({"members": [{"value": "", "$ref": "", "type": ""}]});
    projection.apply(&GROUP_TYPE, probe)["members"][0]
        .as_object()
        .map(|o| o.keys().cloned().collect())
}

/// The members as JSON array text with the sub-attributes `projection`
/// keeps, written member by member; `None` when not wanted or empty.
fn members_json(
    c: &mut AnyConnection,
    caller: &Actor,
    group_id: &str,
    projection: &Projection,
    base: &str,
) -> Result<Option<String>, ServiceError> {
    let Some(kept) = kept_member_keys(projection) else {
        return Ok(None);
    };
    let members = store::groups::members(c, &caller.tenant_id, group_id)?;
    Ok(write_members(&members, &kept, base))
}

/// The members as JSON array text with the `kept` sub-attributes; `None` when empty.
fn write_members(members: &[store::groups::Member], kept: &[String], base: &str) -> Option<String> {
    if members.is_empty() {
        return None;
    }
    let quote = |s: &str| serde_json::to_string(s).unwrap_or_default();
    let mut out = String::with_capacity(members.len() * 112);
    out.push('[');
    for (i, m) in members.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('{');
        for (j, key) in kept.iter().enumerate() {
            if j > 0 {
                out.push(',');
            }
            let path = if m.kind == MemberKind::Group {
                "Groups"
            } else {
                "Users"
            };
            let value = match key.as_str() {
                "value" => quote(&m.id),
                "$ref" => quote(&format!("{base}/{path}/{}", m.id)),
                _ => quote(m.kind.as_str()),
            };
            out.push_str(&quote(key));
            out.push(':');
            out.push_str(&value);
        }
        out.push('}');
    }
    out.push(']');
    Some(out)
}

/// Member ids named by a `members` value (objects with `value`, or bare ids).
fn member_ids(v: &Value) -> Result<Vec<String>, ScimError> {
    let attr = GROUP_SCHEMA
        .attr("members")
        .ok_or_else(|| ScimError::invalid_path("members"))?;
    Ok(normalize_attr(attr, v, "members")?
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|m| m.get("value").and_then(Value::as_str).map(str::to_string))
        .collect())
}

fn take_members(doc: &mut Doc) -> Result<Vec<String>, ScimError> {
    match doc.remove("members") {
        Some(v) => member_ids(&v),
        None => Ok(vec![]),
    }
}

fn check_unique(
    c: &mut AnyConnection,
    caller: &Actor,
    doc: &Doc,
    except: Option<&str>,
) -> Result<(), ServiceError> {
    let k = group_keys(doc);
    if let Some(other) =
        store::groups::find_by_display_name_key(c, &caller.tenant_id, &k.display_name_key)?
        && Some(other.id.as_str()) != except
    {
        return Err(ScimError::uniqueness(format!(
            "a group with this displayName already exists (id {})",
            other.id
        ))
        .into());
    }
    Ok(())
}

/// Adds the known members among `ids`; unknown ids and other tenants' ids are
/// ignored (IdPs send ids of users that were never provisioned here).
fn add_known(
    c: &mut AnyConnection,
    caller: &Actor,
    group_id: &str,
    ids: &[String],
    now: &str,
) -> Result<(), ServiceError> {
    let (mut found, unknown) = store::groups::resolve_members(c, &caller.tenant_id, ids)?;
    found.retain(|(id, _)| id != group_id);
    if !unknown.is_empty() {
        tracing::warn!(group_id, ignored = unknown.len(), actor = %caller.actor, "ignored unknown member ids");
    }
    store::groups::add_members(c, &caller.tenant_id, group_id, &found, now)?;
    Ok(())
}

/// Array elements anywhere in `v`: an upper bound on the members a document
/// operation can carry (`members` spelled inside a schema URN object reaches
/// the document and is added from there).
fn array_items(v: &Value) -> usize {
    match v {
        Value::Array(a) => a.len() + a.iter().map(array_items).sum::<usize>(),
        Value::Object(o) => o.values().map(array_items).sum(),
        _ => 0,
    }
}

/// Whether a PATCH runs alone (`Db::write_alone`) instead of in a write group:
/// when it may remove any number of members (a replace of the list, a remove
/// of all or by filter), or names more than `ALONE_MEMBERS` of them.
fn runs_alone(doc_ops: &[Operation], member_ops: &[MemberOp]) -> bool {
    let mut named = 0;
    for m in member_ops {
        match m {
            MemberOp::Add(ids) | MemberOp::Remove(ids) => named += ids.len(),
            MemberOp::Replace(_) | MemberOp::RemoveAll | MemberOp::RemoveWhere(_) => return true,
        }
    }
    named += doc_ops
        .iter()
        .filter_map(|o| o.value.as_ref())
        .map(array_items)
        .sum::<usize>();
    named > ALONE_MEMBERS
}

fn set_members(
    c: &mut AnyConnection,
    caller: &Actor,
    group_id: &str,
    desired: &[String],
    now: &str,
) -> Result<(), ServiceError> {
    use std::collections::HashSet;
    let current: HashSet<String> = store::groups::members(c, &caller.tenant_id, group_id)?
        .into_iter()
        .map(|m| m.id)
        .collect();
    let wanted: HashSet<&String> = desired.iter().collect();
    let remove: Vec<String> = current
        .iter()
        .filter(|id| !wanted.contains(id))
        .cloned()
        .collect();
    let add: Vec<String> = desired
        .iter()
        .filter(|id| !current.contains(*id))
        .cloned()
        .collect();
    store::groups::remove_members(c, &caller.tenant_id, group_id, &remove)?;
    add_known(c, caller, group_id, &add, now)
}

fn bump(
    c: &mut AnyConnection,
    row: &mut GroupRow,
    doc: &Doc,
    now: &str,
) -> Result<(), ServiceError> {
    let k = group_keys(doc);
    row.display_name = k.display_name;
    row.display_name_key = k.display_name_key;
    row.external_id = k.external_id;
    row.data = Value::Object(doc.clone()).to_string();
    row.updated_at = now.to_string();
    row.version += 1;
    store::groups::update(c, row)?;
    Ok(())
}

pub fn create(
    svc: &Services,
    caller: &Actor,
    body: &Value,
    projection: &Projection,
    base: &str,
) -> Result<Rendered, ServiceError> {
    let mut doc = normalize_within(&GROUP_TYPE, body, &svc.limits)?;
    let members = take_members(&mut doc)?;
    let now = svc.deprov.now();
    let write = |c: &mut AnyConnection| {
        check_unique(c, caller, &doc, None)?;
        let k = group_keys(&doc);
        let row = GroupRow {
            id: crate::store::new_id().to_string(),
            tenant_id: caller.tenant_id.clone(),
            display_name: k.display_name,
            display_name_key: k.display_name_key,
            external_id: k.external_id,
            data: Value::Object(doc.clone()).to_string(),
            created_at: now.clone(),
            updated_at: now.clone(),
            version: 1,
        };
        store::groups::insert(c, &row)?;
        add_known(c, caller, &row.id, &members, &now)?;
        tracing::info!(group_id = %row.id, actor = %caller.actor, "group created");
        rendered(c, caller, &row, projection, base)
    };
    if members.len() > ALONE_MEMBERS {
        svc.db.write_alone(write)
    } else {
        svc.db.write(write)
    }
}

pub fn get(
    svc: &Services,
    caller: &Actor,
    id: &str,
    projection: &Projection,
    base: &str,
) -> Result<Rendered, ServiceError> {
    // Read on the pooled connection; written out after it is returned.
    let kept = kept_member_keys(projection);
    let (row, members) = svc.db.read(|c| -> Result<_, ServiceError> {
        let row = store::groups::find(c, &caller.tenant_id, id)?.ok_or_else(|| not_found(id))?;
        let members = match kept {
            Some(_) => store::groups::members(c, &caller.tenant_id, &row.id)?,
            None => vec![],
        };
        Ok((row, members))
    })?;
    let members_json = kept.and_then(|k| write_members(&members, &k, base));
    rendered_with(&row, members_json, projection, base)
}

/// PUT replaces the group, members included (RFC 7644 §3.5.1: a PUT without
/// `members` leaves the group empty). The member list is applied as a difference.
pub fn replace(
    svc: &Services,
    caller: &Actor,
    id: &str,
    body: &Value,
    if_match: Option<&str>,
    projection: &Projection,
    base: &str,
) -> Result<Rendered, ServiceError> {
    let mut doc = normalize_within(&GROUP_TYPE, body, &svc.limits)?;
    let members = take_members(&mut doc)?;
    let now = svc.deprov.now();
    // Replacing the member list may remove any number of memberships: a
    // transaction of its own (`Db::write_alone`), like the other unbounded writes.
    svc.db.write_alone(|c| {
        crate::store::groups::lock(c, &caller.tenant_id, id)?;
        let mut row =
            store::groups::find(c, &caller.tenant_id, id)?.ok_or_else(|| not_found(id))?;
        check_if_match(if_match, &meta(&row, base).etag())?;
        check_unique(c, caller, &doc, Some(id))?;
        set_members(c, caller, id, &members, &now)?;
        bump(c, &mut row, &doc, &now)?;
        rendered(c, caller, &row, projection, base)
    })
}

/// A membership change carried by a PATCH operation.
#[derive(Debug, Clone, PartialEq)]
enum MemberOp {
    Add(Vec<String>),
    Replace(Vec<String>),
    Remove(Vec<String>),
    RemoveAll,
    RemoveWhere(Filter),
}

fn is_members(path: &PatchPath) -> bool {
    path.attr.name.eq_ignore_ascii_case("members")
        && path
            .attr
            .urn
            .as_deref()
            .is_none_or(|u| u.eq_ignore_ascii_case(GROUP_SCHEMA.id))
}

/// The membership change an operation on a `members` path makes.
fn member_op(op: Op, path: &PatchPath, value: Option<&Value>) -> Result<MemberOp, ScimError> {
    if path.attr.sub.is_some() || path.sub_after_filter.is_some() {
        return Err(ScimError::invalid_path(
            "member sub-attributes cannot be changed; add or remove the member",
        ));
    }
    Ok(match (op, &path.filter, value) {
        (Op::Remove, Some(f), _) => match simple_value_eq(f) {
            Some(id) => MemberOp::Remove(vec![id]),
            None => MemberOp::RemoveWhere(f.clone()),
        },
        (Op::Remove, None, Some(v)) if !v.is_null() => MemberOp::Remove(member_ids(v)?),
        (Op::Remove, None, _) => MemberOp::RemoveAll,
        (Op::Add, None, Some(v)) => MemberOp::Add(member_ids(v)?),
        (Op::Replace, None, Some(v)) => MemberOp::Replace(member_ids(v)?),
        (_, Some(_), _) => {
            return Err(ScimError::invalid_path(
                "a filtered 'members[…]' path can only be removed; add members with path 'members'",
            ));
        }
        (_, None, None) => return Err(ScimError::invalid_value("'value' is required")),
    })
}

/// Splits a PATCH into document operations and membership operations, in order.
/// A path-less map's keys are read as paths (`patch::pathless_path`: trimmed,
/// any case), so `" members"` or `"MEMBERS"` is a membership change like
/// `members`, never a document edit of a member list.
fn split_ops(ops: &[Operation]) -> Result<(Vec<Operation>, Vec<MemberOp>), ScimError> {
    let mut doc_ops = Vec::new();
    let mut member_ops = Vec::new();
    for op in ops {
        if let Some(path) = op.path.as_ref().filter(|p| is_members(p)) {
            member_ops.push(member_op(op.op, path, op.value.as_ref())?);
        } else if op.path.is_none() && op.op != Op::Remove {
            // A path-less map may carry `members` beside other attributes.
            let mut rest = op.clone();
            if let Some(Value::Object(map)) = &mut rest.value {
                let mut others = serde_json::Map::with_capacity(map.len());
                // Rebuilt rather than removed from, so the other keys keep their order.
                for (k, v) in std::mem::take(map) {
                    match patch::pathless_path(&k) {
                        Ok(path) if is_members(&path) => {
                            member_ops.push(member_op(op.op, &path, Some(&v))?);
                        }
                        _ => {
                            others.insert(k, v);
                        }
                    }
                }
                *map = others;
            }
            doc_ops.push(rest);
        } else {
            doc_ops.push(op.clone());
        }
    }
    Ok((doc_ops, member_ops))
}

/// `value eq "x"`: the shape Okta and Entra use to remove one member.
fn simple_value_eq(f: &Filter) -> Option<String> {
    match f {
        Filter::Compare(p, CompareOp::Eq, CompValue::Str(s))
            if p.name.eq_ignore_ascii_case("value") && p.sub.is_none() =>
        {
            Some(s.clone())
        }
        _ => None,
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
) -> Result<PatchOutcome, ServiceError> {
    let (doc_ops, member_ops) = split_ops(ops)?;
    let now = svc.deprov.now();
    let alone = runs_alone(&doc_ops, &member_ops);
    let write = |c: &mut AnyConnection| {
        crate::store::groups::lock(c, &caller.tenant_id, id)?;
        let mut row =
            store::groups::find(c, &caller.tenant_id, id)?.ok_or_else(|| not_found(id))?;
        check_if_match(if_match, &meta(&row, base).etag())?;
        let current: Doc = serde_json::from_str(&row.data).map_err(corrupt)?;
        let mut doc = patch::apply(
            &PatchContext {
                rt: &GROUP_TYPE,
                id,
                limits: svc.limits,
            },
            &current,
            &doc_ops,
        )?;
        // Memberships live in their table only: `members` that reached the
        // document by another spelling become a membership addition.
        let stray = take_members(&mut doc)?;
        if doc != current {
            check_unique(c, caller, &doc, Some(id))?;
        }
        if !stray.is_empty() {
            add_known(c, caller, id, &stray, &now)?;
        }
        for m in &member_ops {
            match m {
                MemberOp::Add(ids) => add_known(c, caller, id, ids, &now)?,
                MemberOp::Replace(ids) => set_members(c, caller, id, ids, &now)?,
                MemberOp::Remove(ids) => {
                    store::groups::remove_members(c, &caller.tenant_id, id, ids)?;
                }
                MemberOp::RemoveAll => {
                    store::groups::remove_all_members(c, &caller.tenant_id, id)?;
                }
                MemberOp::RemoveWhere(f) => {
                    let cond =
                        filter_sql::members_condition(svc.db.backend(), &caller.tenant_id, f)?;
                    store::groups::remove_members_where(c, &caller.tenant_id, id, cond)?;
                }
            }
        }
        if doc != current || !member_ops.is_empty() || !stray.is_empty() {
            bump(c, &mut row, &doc, &now)?;
        }
        if projection.wants(&GROUP_TYPE, "members")
            && store::groups::has_more_members_than(c, &caller.tenant_id, id, PATCH_ECHO_LIMIT)?
        {
            return Ok(PatchOutcome::NoContent);
        }
        Ok(PatchOutcome::Resource(rendered(
            c, caller, &row, projection, base,
        )?))
    };
    if alone {
        svc.db.write_alone(write)
    } else {
        svc.db.write(write)
    }
}

pub fn delete(
    svc: &Services,
    caller: &Actor,
    id: &str,
    if_match: Option<&str>,
    base: &str,
) -> Result<(), ServiceError> {
    // Every membership goes with the group: no bound, so it runs alone.
    svc.db.write_alone(|c| {
        crate::store::groups::lock(c, &caller.tenant_id, id)?;
        let row = store::groups::find(c, &caller.tenant_id, id)?.ok_or_else(|| not_found(id))?;
        check_if_match(if_match, &meta(&row, base).etag())?;
        store::groups::delete(c, &caller.tenant_id, id)?;
        tracing::info!(group_id = %id, actor = %caller.actor, "group deleted");
        Ok(())
    })
}

pub fn list(
    svc: &Services,
    caller: &Actor,
    params: &ListParams,
    base: &str,
) -> Result<Value, ServiceError> {
    let plan = listing::plan(
        &filter_sql::GROUPS,
        "Group",
        svc.db.backend(),
        &caller.tenant_id,
        params,
    )?;
    // Rows and members are read on the pooled connection; rendering and
    // projection run after it is returned.
    let (page, members) = svc.db.read(|c| -> Result<_, ServiceError> {
        let mut page = store::groups::list(
            c,
            &caller.tenant_id,
            plan.filter.clone(),
            &plan.order,
            &plan.window,
            params.count,
        )?;
        // Members are not counted: a group's are bounded by its body limit.
        listing::fit(&mut page, svc.limits.max_list_bytes, |r| r.item.data.len());
        let members = page
            .rows
            .iter()
            .map(|r| members_for(c, caller, &r.item, &params.projection))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((page, members))
    })?;
    let resources = page
        .rows
        .iter()
        .zip(members)
        .map(|(r, m)| render_row(&r.item, m, &params.projection, base))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(listing::respond(params, &plan, &page, resources))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::patch::parse_request;

    fn split(body: Value) -> (Vec<Operation>, Vec<MemberOp>) {
        let ops = match parse_request(&body) {
            Ok(o) => o,
            Err(e) => panic!("{e:?}"),
        };
        match split_ops(&ops) {
            Ok(s) => s,
            Err(e) => panic!("{e:?}"),
        }
    }

    #[test]
    fn okta_and_entra_membership_shapes() {
        let (doc, m) = split(json!({"Operations": [
            {"op": "remove", "path": "members[value eq \"u1\"]"},
            {"op": "add", "path": "members", "value": [{"value": "u3", "display": "x"}]},
            {"op": "Remove", "path": "members", "value": [{"value": "u4"}]},
            {"op": "replace", "path": "members", "value": [{"value": "u5"}]},
            {"op": "remove", "path": "members"},
            {"op": "remove", "path": "members[type eq \"Group\"]"},
            {"op": "replace", "value": {"id": "g", "displayName": "N"}}
        ]}));
        assert_eq!(m[0], MemberOp::Remove(vec!["u1".into()]));
        assert_eq!(m[1], MemberOp::Add(vec!["u3".into()]));
        assert_eq!(m[2], MemberOp::Remove(vec!["u4".into()]));
        assert_eq!(m[3], MemberOp::Replace(vec!["u5".into()]));
        assert_eq!(m[4], MemberOp::RemoveAll);
        assert!(matches!(m[5], MemberOp::RemoveWhere(_)));
        assert_eq!(doc.len(), 1);
    }

    #[test]
    fn pathless_map_with_members_is_split() {
        let (doc, m) = split(
            json!({"Operations": [{"op": "add", "value": {"displayName": "X", "members": ["a", "b"]}}]}),
        );
        assert_eq!(m, vec![MemberOp::Add(vec!["a".into(), "b".into()])]);
        assert!(
            doc[0]
                .value
                .as_ref()
                .is_some_and(|v| v.get("members").is_none() && v.get("displayName").is_some())
        );
    }

    /// A path-less key is read as a path: `" members"`, `"Members "`,
    /// `"MEMBERS"` and the URN-qualified name are membership changes (the
    /// issue's `" members"` reached the document and its quadratic add), and
    /// the map's other keys keep their order.
    #[test]
    fn pathless_member_keys_are_trimmed_and_case_folded() {
        for key in [
            " members",
            "Members ",
            "MEMBERS",
            " urn:ietf:params:scim:schemas:core:2.0:Group:Members",
        ] {
            let mut map = serde_json::Map::new();
            map.insert("displayName".into(), json!("X"));
            map.insert(key.into(), json!(["a", {"value": "b"}]));
            map.insert("externalId".into(), json!("e"));
            let (doc, m) = split(json!({"Operations": [
                {"op": "add", "value": Value::Object(map.clone())},
                {"op": "replace", "value": Value::Object(map)}
            ]}));
            assert_eq!(
                m,
                vec![
                    MemberOp::Add(vec!["a".into(), "b".into()]),
                    MemberOp::Replace(vec!["a".into(), "b".into()])
                ],
                "{key:?}"
            );
            for op in &doc {
                let keys: Vec<&String> = op
                    .value
                    .as_ref()
                    .and_then(Value::as_object)
                    .map(|o| o.keys().collect())
                    .unwrap_or_default();
                assert_eq!(keys, ["displayName", "externalId"], "{key:?}");
            }
        }
        // A sub-attribute or filter by a path-less key is refused as the path would be.
        for key in [" members.value", "members[value eq \"x\"]"] {
            let ops = parse_request(&json!({"Operations": [{"op": "add", "value": {key: ["a"]}}]}));
            let r = ops.and_then(|o| split_ops(&o));
            assert!(
                r.is_err_and(|e| e.scim_type == Some(crate::scim::error::ScimType::InvalidPath)),
                "{key:?}"
            );
        }
    }

    /// Small named member changes stay in the write group; a list above
    /// `ALONE_MEMBERS` (by path, path-less key or inside a schema URN object)
    /// and every change that can remove any number of members run alone.
    #[test]
    fn large_member_changes_run_alone() {
        let ids = |n: usize| -> Vec<Value> { (0..n).map(|i| json!(format!("u{i}"))).collect() };
        let alone = |ops: Value| {
            let (doc, m) = split(json!({ "Operations": ops }));
            runs_alone(&doc, &m)
        };
        let at = ALONE_MEMBERS;
        assert!(!alone(
            json!([{"op": "add", "path": "members", "value": ids(at)}])
        ));
        assert!(!alone(
            json!([{"op": "remove", "path": "members", "value": ids(at)}])
        ));
        assert!(!alone(
            json!([{"op": "add", "path": "members", "value": ids(1)},
            {"op": "remove", "path": "members[value eq \"u2\"]"},
            {"op": "replace", "path": "displayName", "value": "X"}])
        ));
        assert!(alone(
            json!([{"op": "add", "path": "members", "value": ids(at + 1)}])
        ));
        assert!(alone(
            json!([{"op": "add", "value": {" members": ids(at + 1)}}])
        ));
        assert!(alone(
            json!([{"op": "add", "path": "members", "value": ids(at / 2 + 1)},
            {"op": "remove", "path": "members", "value": ids(at / 2)}])
        ));
        assert!(alone(json!([{"op": "add", "value": {
            "urn:ietf:params:scim:schemas:core:2.0:Group": {"members": ids(at + 1)}}}])));
        assert!(alone(
            json!([{"op": "replace", "path": "members", "value": ids(1)}])
        ));
        assert!(alone(json!([{"op": "remove", "path": "members"}])));
        assert!(alone(
            json!([{"op": "remove", "path": "members[type eq \"Group\"]"}])
        ));
    }

    #[test]
    fn filtered_member_add_is_rejected() {
        let ops = parse_request(
            &json!({"Operations": [{"op": "add", "path": "members[value eq \"x\"]", "value": {"value": "x"}}]}),
        );
        let r = ops.and_then(|o| split_ops(&o));
        assert!(r.is_err_and(|e| e.scim_type == Some(crate::scim::error::ScimType::InvalidPath)));
    }
}

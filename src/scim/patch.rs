//! RFC 7644 §3.5.2 PATCH, applied to a canonical document, with every shape Okta
//! and Entra send: case-insensitive `op`, path-less value maps with dotted and
//! URN-qualified keys, filtered value paths with upsert (`emails[type eq "work"].value`),
//! `Remove` with a value list, string booleans, the three `manager` shapes, and an
//! `id` inside a replace map equal to the resource's own id (Okta's group push).

use super::error::ScimError;
use super::filter::{self, AttrPath, CompValue, CompareOp, Filter};
use super::resource::{
    Doc, Limits, MAX_MULTI_VALUES, get_ci, is_capped, normalize_attr, normalize_within,
    too_many_values,
};
use super::schema::{Attr, Mutability, ResourceType};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::{BTreeSet, HashMap, HashSet};

pub const PATCH_URN: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
pub const MAX_OPERATIONS: usize = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Add,
    Replace,
    Remove,
}

#[derive(Debug, Clone)]
pub struct Operation {
    pub op: Op,
    pub path: Option<PatchPath>,
    pub raw_path: Option<String>,
    pub value: Option<Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PatchPath {
    pub attr: AttrPath,
    pub filter: Option<Filter>,
    /// Sub-attribute after a filter: `emails[type eq "work"].value`.
    pub sub_after_filter: Option<String>,
}

impl PatchPath {
    pub fn parse(raw: &str) -> Result<PatchPath, ScimError> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(ScimError::invalid_path("'path' is empty"));
        }
        let bad = |why: String| ScimError::invalid_path(format!("invalid path '{raw}': {why}"));
        if let Some(open) = raw.find('[') {
            let close = raw.rfind(']').ok_or_else(|| bad("missing ']'".into()))?;
            if close < open {
                return Err(bad("']' before '['".into()));
            }
            let attr = AttrPath::parse(&raw[..open]).map_err(bad)?;
            if attr.sub.is_some() {
                return Err(bad(
                    "a value filter must follow an attribute, not a sub-attribute".into(),
                ));
            }
            let filter = filter::parse(&raw[open + 1..close]).map_err(|e| bad(e.detail))?;
            let rest = &raw[close + 1..];
            let sub_after_filter = if rest.is_empty() {
                None
            } else {
                let sub = rest
                    .strip_prefix('.')
                    .filter(|s| {
                        !s.is_empty()
                            && s.chars()
                                .all(|c| c.is_ascii_alphanumeric() || c == '$' || c == '_')
                    })
                    .ok_or_else(|| bad(format!("unexpected '{rest}' after ']'")))?;
                Some(sub.to_string())
            };
            return Ok(PatchPath {
                attr,
                filter: Some(filter),
                sub_after_filter,
            });
        }
        let attr = AttrPath::parse(raw).map_err(bad)?;
        Ok(PatchPath {
            attr,
            filter: None,
            sub_after_filter: None,
        })
    }
}

#[derive(Deserialize)]
struct RawPatch {
    #[serde(default)]
    schemas: Vec<String>,
    #[serde(rename = "Operations", alias = "operations")]
    operations: Option<Vec<Value>>,
}

/// Parses a PatchOp request body.
pub fn parse_request(body: &Value) -> Result<Vec<Operation>, ScimError> {
    let raw: RawPatch = serde_json::from_value(body.clone())
        .map_err(|e| ScimError::invalid_syntax(format!("not a PatchOp message: {e}")))?;
    if !raw.schemas.is_empty()
        && !raw
            .schemas
            .iter()
            .any(|s| s.eq_ignore_ascii_case(PATCH_URN))
    {
        return Err(ScimError::invalid_syntax(format!(
            "'schemas' must contain {PATCH_URN}"
        )));
    }
    let ops = raw.operations.ok_or_else(|| {
        ScimError::invalid_syntax("a PatchOp message needs an 'Operations' array")
    })?;
    if ops.len() > MAX_OPERATIONS {
        return Err(ScimError::new(
            413,
            None,
            format!("a PATCH may carry at most {MAX_OPERATIONS} operations"),
        ));
    }
    ops.iter()
        .enumerate()
        .map(|(i, v)| {
            parse_operation(i, v).map_err(|e| {
                if e.detail.starts_with("Operations[") {
                    e
                } else {
                    ScimError {
                        detail: format!("Operations[{i}]: {}", e.detail),
                        ..e
                    }
                }
            })
        })
        .collect()
}

fn parse_operation(i: usize, v: &Value) -> Result<Operation, ScimError> {
    let obj = v
        .as_object()
        .ok_or_else(|| ScimError::invalid_syntax(format!("Operations[{i}] must be an object")))?;
    let op_name = get_ci(obj, "op")
        .and_then(Value::as_str)
        .ok_or_else(|| ScimError::invalid_syntax(format!("Operations[{i}] has no 'op'")))?;
    let op = match op_name.to_ascii_lowercase().as_str() {
        "add" => Op::Add,
        "replace" => Op::Replace,
        "remove" => Op::Remove,
        other => {
            return Err(ScimError::invalid_syntax(format!(
                "Operations[{i}].op '{other}' is not one of add, replace, remove"
            )));
        }
    };
    let raw_path = match get_ci(obj, "path") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            return Err(ScimError::invalid_path(format!(
                "Operations[{i}].path must be a string"
            )));
        }
    };
    let path = raw_path.as_deref().map(PatchPath::parse).transpose()?;
    let value = get_ci(obj, "value").cloned();
    if op != Op::Remove && value.is_none() {
        return Err(ScimError::invalid_value(format!(
            "Operations[{i}] ({op_name}) needs a 'value'"
        )));
    }
    if op == Op::Remove && path.is_none() {
        return Err(ScimError::no_target(format!(
            "Operations[{i}]: 'remove' needs a 'path'"
        )));
    }
    Ok(Operation {
        op,
        path,
        raw_path,
        value,
    })
}

/// Where a path points in the canonical document.
struct Target {
    /// `None`: the document root; `Some(urn)`: inside that extension object.
    container: Option<String>,
    attr: Option<&'static Attr>,
    /// The key in the container (schema case for known attributes).
    key: String,
}

fn resolve(rt: &ResourceType, path: &AttrPath) -> Result<Target, ScimError> {
    match &path.urn {
        None => {
            if path.name.eq_ignore_ascii_case("externalId") {
                return Ok(Target {
                    container: None,
                    attr: None,
                    key: "externalId".into(),
                });
            }
            for common in ["id", "meta", "schemas"] {
                if path.name.eq_ignore_ascii_case(common) {
                    return Err(ScimError::mutability(format!("'{common}' is read-only")));
                }
            }
            if let Some(attr) = rt.core.attr(&path.name) {
                return Ok(Target {
                    container: None,
                    attr: Some(attr),
                    key: attr.name.into(),
                });
            }
            // An extension attribute named without its URN (Entra's legacy
            // `"path": "manager"`), when exactly one extension has it.
            let mut found = rt
                .extensions
                .iter()
                .filter_map(|e| e.attr(&path.name).map(|a| (e, a)));
            match (found.next(), found.next()) {
                (Some((ext, attr)), None) => Ok(Target {
                    container: Some(ext.id.into()),
                    attr: Some(attr),
                    key: attr.name.into(),
                }),
                _ => Err(ScimError::invalid_path(format!(
                    "'{}' is not an attribute of {}",
                    path.name, rt.name
                ))),
            }
        }
        Some(urn) if urn.eq_ignore_ascii_case(rt.core.id) => resolve(
            rt,
            &AttrPath {
                urn: None,
                ..path.clone()
            },
        ),
        Some(urn) => {
            if let Some(ext) = rt.extension(urn) {
                let attr = ext.attr(&path.name).ok_or_else(|| {
                    ScimError::invalid_path(format!(
                        "'{}' is not an attribute of {}",
                        path.name, ext.id
                    ))
                })?;
                Ok(Target {
                    container: Some(ext.id.into()),
                    attr: Some(attr),
                    key: attr.name.into(),
                })
            } else {
                // An extension without a schema: kept as free-form JSON.
                Ok(Target {
                    container: Some(urn.clone()),
                    attr: None,
                    key: path.name.clone(),
                })
            }
        }
    }
}

/// Context a PATCH needs besides the document.
pub struct PatchContext<'a> {
    pub rt: &'static ResourceType,
    pub id: &'a str,
    /// What the result may cost (`max_resource_bytes`).
    pub limits: Limits,
}

impl<'a> PatchContext<'a> {
    pub fn new(rt: &'static ResourceType, id: &'a str, limits: Limits) -> Self {
        PatchContext { rt, id, limits }
    }
}

/// The path a key of a path-less value map names: the same trimming and case
/// rules as a `path` (`" members"`, `"Members "` and `"MEMBERS"` all name
/// `members`), so no spelling reaches a different code path.
pub fn pathless_path(key: &str) -> Result<PatchPath, ScimError> {
    PatchPath::parse(key)
}

/// Applies the operations in order and returns the new canonical document.
/// Nothing is written unless every operation succeeds (the caller stores the result).
pub fn apply(ctx: &PatchContext<'_>, doc: &Doc, ops: &[Operation]) -> Result<Doc, ScimError> {
    let mut work = doc.clone();
    for (i, op) in ops.iter().enumerate() {
        apply_one(ctx, &mut work, op).map_err(|e| {
            let at = op
                .raw_path
                .as_deref()
                .map(|p| format!(" (path '{p}')"))
                .unwrap_or_default();
            ScimError {
                detail: format!("Operations[{i}]{at}: {}", e.detail),
                ..e
            }
        })?;
    }
    normalize_within(ctx.rt, &Value::Object(work), &ctx.limits)
}

fn apply_one(ctx: &PatchContext<'_>, doc: &mut Doc, op: &Operation) -> Result<(), ScimError> {
    match &op.path {
        Some(p) => apply_path(ctx, doc, op.op, p, op.value.as_ref()),
        None => {
            let value = op
                .value
                .as_ref()
                .and_then(Value::as_object)
                .ok_or_else(|| {
                    ScimError::invalid_value(
                        "without a 'path', 'value' must be an object of attributes",
                    )
                })?;
            for (key, v) in value {
                apply_pathless_key(ctx, doc, op.op, key, v)?;
            }
            Ok(())
        }
    }
}

fn apply_pathless_key(
    ctx: &PatchContext<'_>,
    doc: &mut Doc,
    op: Op,
    key: &str,
    v: &Value,
) -> Result<(), ScimError> {
    // Trimmed as a `path` is, so `" id"` or `" urn:…"` is read as it would be there.
    let key = key.trim();
    if key.eq_ignore_ascii_case("id") {
        // Okta's group push repeats the id inside the value map.
        return if v.as_str() == Some(ctx.id) {
            Ok(())
        } else {
            Err(ScimError::mutability(
                "'id' is read-only and cannot be changed",
            ))
        };
    }
    if key.eq_ignore_ascii_case("meta") || key.eq_ignore_ascii_case("schemas") {
        return Ok(());
    }
    if key.to_ascii_lowercase().starts_with("urn:") {
        if let Some(ext) = ctx.rt.extension(key) {
            let inner = v.as_object().ok_or_else(|| {
                ScimError::invalid_value(format!(
                    "'{}' must be an object of extension attributes",
                    ext.id
                ))
            })?;
            for (k, iv) in inner
                .iter()
                .filter(|(k, _)| !k.eq_ignore_ascii_case("schemas"))
            {
                let path = PatchPath::parse(&format!("{}:{k}", ext.id))?;
                apply_path(ctx, doc, op, &path, Some(iv))?;
            }
            return Ok(());
        }
        let path = PatchPath::parse(key)?;
        let is_unknown_whole_ext = path.attr.urn.as_deref().is_some_and(|u| {
            ctx.rt.extension(u).is_none() && !u.eq_ignore_ascii_case(ctx.rt.core.id)
        }) && v.is_object()
            && !key.contains('.');
        if is_unknown_whole_ext && ctx.rt.core.attr(&path.attr.name).is_none() {
            // Could be either a whole unknown extension object or one of its
            // attributes; an object value whose key parses as `urn…:Name` is
            // taken as the whole extension, the common case.
            doc.insert(key.to_string(), v.clone());
            return Ok(());
        }
        return apply_path(ctx, doc, op, &path, Some(v));
    }
    let path = pathless_path(key)?;
    apply_path(ctx, doc, op, &path, Some(v))
}

fn container_mut<'d>(
    doc: &'d mut Doc,
    t: &Target,
    create: bool,
) -> Option<&'d mut Map<String, Value>> {
    match &t.container {
        None => Some(doc),
        Some(urn) => {
            if !doc.contains_key(urn) {
                if !create {
                    return None;
                }
                doc.insert(urn.clone(), Value::Object(Map::new()));
            }
            doc.get_mut(urn).and_then(Value::as_object_mut)
        }
    }
}

fn norm_value(attr: Option<&Attr>, key: &str, v: &Value) -> Result<Option<Value>, ScimError> {
    match attr {
        Some(a) => normalize_attr(a, v, key),
        None => Ok(if v.is_null() || v.as_str() == Some("") {
            None
        } else {
            Some(v.clone())
        }),
    }
}

/// A path naming a whole extension (`urn:…:enterprise:2.0:User`) parses as an
/// attribute `User` of schema `urn:…:2.0`; this recognises it.
fn whole_extension(ctx: &PatchContext<'_>, doc: &Doc, path: &PatchPath) -> Option<String> {
    let urn = path.attr.urn.as_deref()?;
    if path.attr.sub.is_some() || path.filter.is_some() {
        return None;
    }
    let full = format!("{urn}:{}", path.attr.name);
    if let Some(ext) = ctx.rt.extension(&full) {
        return Some(ext.id.to_string());
    }
    doc.keys().find(|k| k.eq_ignore_ascii_case(&full)).cloned()
}

fn apply_path(
    ctx: &PatchContext<'_>,
    doc: &mut Doc,
    op: Op,
    path: &PatchPath,
    value: Option<&Value>,
) -> Result<(), ScimError> {
    if let Some(ext) = whole_extension(ctx, doc, path) {
        return match (op, value) {
            (Op::Remove, _) => {
                doc.remove(&ext);
                Ok(())
            }
            (_, Some(Value::Object(attrs))) if ctx.rt.extension(&ext).is_some() => {
                // Clients may echo the extension's own `schemas` inside it.
                for (k, v) in attrs
                    .iter()
                    .filter(|(k, _)| !k.eq_ignore_ascii_case("schemas"))
                {
                    apply_path(
                        ctx,
                        doc,
                        op,
                        &PatchPath::parse(&format!("{ext}:{k}"))?,
                        Some(v),
                    )?;
                }
                Ok(())
            }
            (_, Some(v @ Value::Object(_))) => {
                doc.insert(ext, v.clone());
                Ok(())
            }
            _ => Err(ScimError::invalid_value(format!(
                "'{ext}' must be set to an object of its attributes"
            ))),
        };
    }
    let target = resolve(ctx.rt, &path.attr)?;
    if let Some(a) = target.attr {
        if a.mutability == Mutability::ReadOnly {
            return Err(ScimError::mutability(format!(
                "'{}' is read-only{}",
                a.name,
                if a.name == "groups" {
                    "; change membership through the Group resource"
                } else {
                    ""
                }
            )));
        }
        if a.mutability == Mutability::WriteOnly {
            // `password`: accepted and discarded.
            return Ok(());
        }
    }
    let sub_name = path
        .attr
        .sub
        .clone()
        .or_else(|| path.sub_after_filter.clone());
    let sub_attr = match (&sub_name, target.attr) {
        (Some(s), Some(a)) => {
            let sa = a.sub_attr(s).ok_or_else(|| {
                ScimError::invalid_path(format!("'{s}' is not a sub-attribute of '{}'", a.name))
            })?;
            if sa.mutability == Mutability::ReadOnly {
                return Err(ScimError::mutability(format!(
                    "'{}.{}' is read-only",
                    a.name, sa.name
                )));
            }
            Some(sa)
        }
        (Some(_), None) if target.key == "externalId" => {
            return Err(ScimError::invalid_path(
                "'externalId' has no sub-attributes",
            ));
        }
        _ => None,
    };
    let multi = target.attr.is_some_and(|a| a.multi);
    let key = target.key.clone();
    let create = op != Op::Remove;
    let Some(container) = container_mut(doc, &target, create) else {
        return Ok(()); // removing from an absent extension: nothing to do
    };

    if let Some(filter) = &path.filter {
        if !multi {
            return Err(ScimError::invalid_path(format!(
                "'{key}' is not multi-valued; a value filter cannot select from it"
            )));
        }
        let attr = target
            .attr
            .ok_or_else(|| ScimError::invalid_path("value filter on an unknown attribute"))?;
        return apply_filtered(container, attr, filter, sub_attr, op, value);
    }

    match (sub_name, op) {
        (None, Op::Remove) => {
            match (value, multi) {
                (Some(v @ Value::Array(_)), true) => {
                    // Entra: `{"op":"Remove","path":"members","value":[{"value":"id"}]}`.
                    let attr = target
                        .attr
                        .ok_or_else(|| ScimError::invalid_path("unknown attribute"))?;
                    let remove = normalize_attr(attr, v, &key)?
                        .and_then(|v| v.as_array().cloned())
                        .unwrap_or_default();
                    if let Some(Value::Array(items)) = container.get_mut(&key) {
                        let remove = Removals::new(&remove);
                        items.retain(|item| !remove.matches(item));
                    }
                }
                _ => {
                    container.remove(&key);
                }
            }
        }
        (None, Op::Add | Op::Replace) => {
            let v = value.ok_or_else(|| ScimError::invalid_value("'value' is required"))?;
            let nv = norm_value(target.attr, &key, v)?;
            let complex_single = target.attr.is_some_and(|a| a.is_complex() && !a.multi)
                || (target.attr.is_none() && v.is_object());
            match nv {
                None if complex_single && is_cleared(v) => {
                    // `{"value":""}` / `""`: Entra's "remove manager".
                    container.remove(&key);
                }
                None => {
                    if op == Op::Replace {
                        container.remove(&key);
                    }
                }
                Some(Value::Array(new_items)) if multi && op == Op::Add => {
                    let cap = target.attr.filter(|a| is_capped(a)).map(|_| key.as_str());
                    let existing = container
                        .entry(key.clone())
                        .or_insert_with(|| Value::Array(vec![]));
                    if let Value::Array(items) = existing {
                        add_values(items, new_items, cap)?;
                    }
                }
                Some(Value::Object(new_obj)) if complex_single => {
                    // RFC 7644 §3.5.2.3: sub-attributes not given are left unchanged.
                    let existing = container
                        .entry(key.clone())
                        .or_insert_with(|| Value::Object(Map::new()));
                    match existing {
                        Value::Object(o) => {
                            for (k, v) in new_obj {
                                o.insert(k, v);
                            }
                        }
                        other => *other = Value::Object(new_obj),
                    }
                }
                Some(nv) => {
                    container.insert(key.clone(), nv);
                }
            }
        }
        (Some(sub), _) => {
            let v = value.cloned().unwrap_or(Value::Null);
            let nv = match (sub_attr, op) {
                (_, Op::Remove) => None,
                (Some(sa), _) => super::resource::normalize_attr(sa, &v, &format!("{key}.{sub}"))?,
                (None, _) => norm_value(None, &sub, &v)?,
            };
            let sub_key = sub_attr.map(|s| s.name.to_string()).unwrap_or(sub);
            if multi {
                let items = container
                    .entry(key.clone())
                    .or_insert_with(|| Value::Array(vec![]));
                if let Value::Array(items) = items {
                    if items.is_empty() && nv.is_some() {
                        items.push(Value::Object(Map::new()));
                    }
                    for item in items.iter_mut() {
                        set_sub(item, &sub_key, nv.clone());
                    }
                    items.retain(|i| i.as_object().is_some_and(|o| !o.is_empty()));
                }
            } else {
                let obj = container
                    .entry(key.clone())
                    .or_insert_with(|| Value::Object(Map::new()));
                set_sub(obj, &sub_key, nv);
                if obj.as_object().is_some_and(Map::is_empty) {
                    container.remove(&key);
                }
            }
        }
    }
    Ok(())
}

fn is_cleared(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Object(o) => o.values().all(is_cleared),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

fn is_primary(v: &Value) -> bool {
    v.get("primary") == Some(&Value::Bool(true))
}

fn clear_primary(v: &mut Value) {
    if let Some(o) = v.as_object_mut() {
        o.remove("primary");
    }
}

/// A multi-valued `add`: each new value replaces the first element that is
/// the same (`same_element`) or is appended; a new primary value clears the
/// others' `primary`. `cap`: the attribute's name when it is held to
/// `MAX_MULTI_VALUES`.
/// Below this many new values an operation scans instead of indexing: building
/// the index costs a canonical string per *existing* element, so a PATCH of
/// 1,000 one-value operations on a 999-value attribute would build it 1,000
/// times (0.4–1.4 s inside the writer); a scan compares without allocating.
const SCAN_BELOW: usize = 16;

fn add_values(
    items: &mut Vec<Value>,
    new_items: Vec<Value>,
    cap: Option<&str>,
) -> Result<(), ScimError> {
    if new_items.len() < SCAN_BELOW {
        for n in new_items {
            if is_primary(&n) {
                items.iter_mut().for_each(clear_primary);
            }
            match items.iter().position(|i| same_element(i, &n)) {
                Some(pos) => items[pos] = n,
                None => {
                    items.push(n);
                    check_cap(items, cap)?;
                }
            }
        }
        return Ok(());
    }
    let mut index = ElementIndex::new(items);
    for n in new_items {
        if is_primary(&n) {
            // At most one new value is primary (normalize_attr), so this
            // runs at most once per operation.
            items.iter_mut().for_each(clear_primary);
            index = ElementIndex::new(items);
        }
        if let Some(pos) = index.find(&n) {
            index.replace(pos, &items[pos], &n);
            items[pos] = n;
        } else {
            index.insert(items.len(), &n);
            items.push(n);
            check_cap(items, cap)?;
        }
    }
    Ok(())
}

/// A filtered `add` of whole values: appends each new value no element is
/// the same as (existing elements are left as they are).
fn add_missing(
    items: &mut Vec<Value>,
    new_items: Vec<Value>,
    cap: Option<&str>,
) -> Result<(), ScimError> {
    if new_items.len() < SCAN_BELOW {
        for n in new_items {
            if !items.iter().any(|i| same_element(i, &n)) {
                items.push(n);
                check_cap(items, cap)?;
            }
        }
        return Ok(());
    }
    let mut index = ElementIndex::new(items);
    for n in new_items {
        if index.find(&n).is_none() {
            index.insert(items.len(), &n);
            items.push(n);
            check_cap(items, cap)?;
        }
    }
    Ok(())
}

/// Refused as the result is built, before any more work is done on it.
fn check_cap(items: &[Value], cap: Option<&str>) -> Result<(), ScimError> {
    match cap {
        Some(name) if items.len() > MAX_MULTI_VALUES => Err(too_many_values(name)),
        _ => Ok(()),
    }
}

/// Two elements of a multi-valued attribute are the same when their `value`s
/// match (or, without `value`, when they are equal). The index and removal
/// sets below apply this rule by hashing; small operations scan with it.
fn same_element(a: &Value, b: &Value) -> bool {
    match (a.get("value"), b.get("value")) {
        (Some(x), Some(y)) => x == y && (a.get("type") == b.get("type") || b.get("type").is_none()),
        _ => a == b,
    }
}

/// A JSON value as text that is equal exactly when the values are equal
/// (`Value`'s `==` ignores object key order, which `preserve_order` keeps).
fn canonical(v: &Value) -> String {
    fn write(v: &Value, out: &mut String) {
        match v {
            Value::Object(o) => {
                let mut keys: Vec<&String> = o.keys().collect();
                keys.sort_unstable();
                out.push('{');
                for (i, k) in keys.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&Value::String(k.clone()).to_string());
                    out.push(':');
                    if let Some(x) = o.get(k) {
                        write(x, out);
                    }
                }
                out.push('}');
            }
            Value::Array(a) => {
                out.push('[');
                for (i, x) in a.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write(x, out);
                }
                out.push(']');
            }
            // -0.0 == 0.0 as numbers, but not as text.
            Value::Number(n) if n.as_f64() == Some(0.0) && n.is_f64() => out.push_str("0.0"),
            other => out.push_str(&other.to_string()),
        }
    }
    let mut out = String::new();
    write(v, &mut out);
    out
}

/// `value` and `type` as one key (canonical text cannot hold a raw NUL).
fn value_type_key(value: &str, ty: &Value) -> String {
    format!("{value}\u{0}{}", canonical(ty))
}

/// The positions of a multi-valued attribute's elements, keyed the way
/// `same_element` compares them, so finding the element a new value replaces
/// is a lookup rather than a scan (an add of n values to m is n log m, not n·m).
/// Each key keeps its positions ordered: the first match wins, as a scan's would.
#[derive(Default)]
struct ElementIndex {
    /// Elements with a `value`, by that value.
    by_value: HashMap<String, BTreeSet<usize>>,
    /// Elements with a `value` and a `type`, by both.
    by_value_type: HashMap<String, BTreeSet<usize>>,
    /// Elements without a `value`, by the whole element.
    whole: HashMap<String, BTreeSet<usize>>,
}

impl ElementIndex {
    fn new(items: &[Value]) -> ElementIndex {
        let mut index = ElementIndex::default();
        for (i, item) in items.iter().enumerate() {
            index.insert(i, item);
        }
        index
    }

    /// The keys `element` is filed under: (map, key) pairs.
    fn keys(element: &Value) -> Vec<(u8, String)> {
        match element.get("value") {
            Some(v) => {
                let value = canonical(v);
                let mut keys = Vec::with_capacity(2);
                if let Some(t) = element.get("type") {
                    keys.push((1, value_type_key(&value, t)));
                }
                keys.push((0, value));
                keys
            }
            None => vec![(2, canonical(element))],
        }
    }

    fn map(&mut self, which: u8) -> &mut HashMap<String, BTreeSet<usize>> {
        match which {
            0 => &mut self.by_value,
            1 => &mut self.by_value_type,
            _ => &mut self.whole,
        }
    }

    fn insert(&mut self, pos: usize, element: &Value) {
        for (which, key) in Self::keys(element) {
            self.map(which).entry(key).or_default().insert(pos);
        }
    }

    fn remove(&mut self, pos: usize, element: &Value) {
        for (which, key) in Self::keys(element) {
            let map = self.map(which);
            if let Some(set) = map.get_mut(&key) {
                set.remove(&pos);
                if set.is_empty() {
                    map.remove(&key);
                }
            }
        }
    }

    fn replace(&mut self, pos: usize, old: &Value, new: &Value) {
        self.remove(pos, old);
        self.insert(pos, new);
    }

    /// The first element `same_element(element, new)` holds for.
    fn find(&self, new: &Value) -> Option<usize> {
        let first = |map: &HashMap<String, BTreeSet<usize>>, key: &str| {
            map.get(key).and_then(|s| s.first().copied())
        };
        match new.get("value") {
            Some(v) => {
                let value = canonical(v);
                match new.get("type") {
                    // A typed value matches only an element of that type…
                    Some(t) => first(&self.by_value_type, &value_type_key(&value, t)),
                    // …an untyped one, any element with that value.
                    None => first(&self.by_value, &value),
                }
            }
            None => first(&self.whole, &canonical(new)),
        }
    }
}

/// A `remove` value list as hash sets: whether `same_element(item, r)` holds
/// for some `r` of the list is a lookup per item.
struct Removals {
    /// Values listed without a type: they remove every element with that value.
    untyped: HashSet<String>,
    /// Values listed with a type: they remove elements of that value and type.
    typed: HashSet<String>,
    /// Elements listed without a value: they remove equal elements.
    whole: HashSet<String>,
}

impl Removals {
    fn new(list: &[Value]) -> Removals {
        let mut r = Removals {
            untyped: HashSet::new(),
            typed: HashSet::new(),
            whole: HashSet::new(),
        };
        for item in list {
            match (item.get("value"), item.get("type")) {
                (Some(v), Some(t)) => {
                    r.typed.insert(value_type_key(&canonical(v), t));
                }
                (Some(v), None) => {
                    r.untyped.insert(canonical(v));
                }
                (None, _) => {
                    r.whole.insert(canonical(item));
                }
            }
        }
        r
    }

    fn matches(&self, item: &Value) -> bool {
        match item.get("value") {
            Some(v) => {
                let value = canonical(v);
                self.untyped.contains(&value)
                    || item
                        .get("type")
                        .is_some_and(|t| self.typed.contains(&value_type_key(&value, t)))
            }
            None => self.whole.contains(&canonical(item)),
        }
    }
}

fn set_sub(obj: &mut Value, sub: &str, v: Option<Value>) {
    if !obj.is_object() {
        *obj = Value::Object(Map::new());
    }
    if let Some(o) = obj.as_object_mut() {
        let existing = o.keys().find(|k| k.eq_ignore_ascii_case(sub)).cloned();
        if let Some(k) = existing {
            o.remove(&k);
        }
        if let Some(v) = v {
            o.insert(sub.to_string(), v);
        }
    }
}

fn apply_filtered(
    container: &mut Map<String, Value>,
    attr: &'static Attr,
    filter: &Filter,
    sub_attr: Option<&'static Attr>,
    op: Op,
    value: Option<&Value>,
) -> Result<(), ScimError> {
    let case_exact = |name: &str| attr.sub_attr(name).is_some_and(|s| s.case_exact);
    let items = container
        .entry(attr.name.to_string())
        .or_insert_with(|| Value::Array(vec![]));
    let Value::Array(items) = items else {
        return Err(ScimError::invalid_path(format!(
            "'{}' is not a list",
            attr.name
        )));
    };
    let hits: Vec<usize> = items
        .iter()
        .enumerate()
        .filter(|(_, e)| filter::matches(filter, e, &case_exact))
        .map(|(i, _)| i)
        .collect();
    match (op, sub_attr) {
        (Op::Remove, None) => {
            retain_unmarked(items, &hits);
        }
        (Op::Remove, Some(sa)) => {
            for i in &hits {
                set_sub(&mut items[*i], sa.name, None);
            }
            items.retain(|i| i.as_object().is_some_and(|o| !o.is_empty()));
        }
        (Op::Add | Op::Replace, Some(sa)) => {
            let v = value.ok_or_else(|| ScimError::invalid_value("'value' is required"))?;
            let nv = normalize_attr(sa, v, &format!("{}.{}", attr.name, sa.name))?;
            if hits.is_empty() {
                // Entra sends add *and* replace on `emails[type eq "work"].value` for
                // an element that may not exist yet: upsert it from the filter.
                let Some(nv) = nv else { return Ok(()) };
                // A replace that names the value it replaces must find it (RFC 7644
                // §3.5.2.3 noTarget); only selections by type/primary create elements.
                if op == Op::Replace && filter_names(filter, "value") {
                    return Err(ScimError::no_target(format!(
                        "no value of '{}' matches the filter",
                        attr.name
                    )));
                }
                let mut element = element_from_filter(filter).ok_or_else(|| {
                    ScimError::no_target(format!(
                        "no value of '{}' matches the filter, and the filter is not a plain 'eq' selection to create one from",
                        attr.name
                    ))
                })?;
                element.insert(sa.name.to_string(), nv);
                let element =
                    normalize_attr(attr, &Value::Array(vec![Value::Object(element)]), attr.name)?
                        .and_then(|v| v.as_array().and_then(|a| a.first().cloned()));
                if let Some(e) = element {
                    if is_primary(&e) {
                        items.iter_mut().for_each(clear_primary);
                    }
                    items.push(e);
                }
            } else {
                if sa.name == "primary" && nv == Some(Value::Bool(true)) {
                    items.iter_mut().for_each(clear_primary);
                }
                for i in &hits {
                    set_sub(&mut items[*i], sa.name, nv.clone());
                }
            }
        }
        (Op::Replace, None) => {
            if hits.is_empty() {
                return Err(ScimError::no_target(format!(
                    "no value of '{}' matches the filter",
                    attr.name
                )));
            }
            let v = value.ok_or_else(|| ScimError::invalid_value("'value' is required"))?;
            let nv = normalize_attr(attr, &Value::Array(vec![v.clone()]), attr.name)?
                .and_then(|v| v.as_array().and_then(|a| a.first().cloned()));
            match &nv {
                Some(n) => {
                    for i in &hits {
                        // Replace merges into the selected value (RFC 7644 §3.5.2.3).
                        if let (Some(dst), Some(src)) = (items[*i].as_object_mut(), n.as_object()) {
                            for (k, v) in src {
                                dst.insert(k.clone(), v.clone());
                            }
                        }
                    }
                }
                None => retain_unmarked(items, &hits),
            }
        }
        (Op::Add, None) => {
            let v = value.ok_or_else(|| ScimError::invalid_value("'value' is required"))?;
            // `emails[type eq "work"]` + `{"value": …}`: the new element carries the
            // filter's equality terms (its type) unless it says otherwise.
            let defaults = element_from_filter(filter).unwrap_or_default();
            let v = match v {
                Value::Object(o) => {
                    let mut o = o.clone();
                    for (k, dv) in &defaults {
                        if !o.keys().any(|ok| ok.eq_ignore_ascii_case(k)) {
                            o.insert(k.clone(), dv.clone());
                        }
                    }
                    Value::Object(o)
                }
                other => other.clone(),
            };
            if let Some(Value::Array(new_items)) = normalize_attr(attr, &v, attr.name)? {
                add_missing(items, new_items, is_capped(attr).then_some(attr.name))?;
            }
        }
    }
    if items.is_empty() {
        container.remove(attr.name);
    }
    Ok(())
}

/// Drops the elements at the (ascending) positions `hits`, in one pass.
fn retain_unmarked(items: &mut Vec<Value>, hits: &[usize]) {
    let mut hits = hits.iter().peekable();
    let mut idx = 0;
    items.retain(|_| {
        let hit = hits.next_if(|h| **h == idx).is_some();
        idx += 1;
        !hit
    });
}

/// Whether the filter constrains sub-attribute `name`.
fn filter_names(f: &Filter, name: &str) -> bool {
    match f {
        Filter::And(a, b) | Filter::Or(a, b) => filter_names(a, name) || filter_names(b, name),
        Filter::Not(a) => filter_names(a, name),
        Filter::Compare(p, ..) | Filter::Present(p) => p.name.eq_ignore_ascii_case(name),
        Filter::ValuePath(_, inner) => filter_names(inner, name),
    }
}

/// `type eq "work"` (or an `and` of such terms) → `{"type": "work"}`.
fn element_from_filter(f: &Filter) -> Option<Map<String, Value>> {
    match f {
        Filter::Compare(p, CompareOp::Eq, v) if p.sub.is_none() && p.urn.is_none() => {
            let mut m = Map::new();
            let jv = match v {
                CompValue::Str(s) => Value::String(s.clone()),
                CompValue::Bool(b) => Value::Bool(*b),
                CompValue::Number(n) => Value::Number(n.clone()),
                CompValue::Null => return None,
            };
            m.insert(p.name.clone(), jv);
            Some(m)
        }
        Filter::And(a, b) => {
            let mut m = element_from_filter(a)?;
            m.extend(element_from_filter(b)?);
            Some(m)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::resource::normalize;
    use crate::scim::schema::{ENTERPRISE_URN, GROUP_TYPE, USER_TYPE};
    use serde_json::json;

    fn user() -> Doc {
        match normalize(
            &USER_TYPE,
            &json!({
                "userName": "jdoe@contoso.example", "active": true, "displayName": "J Doe",
                "name": {"givenName": "Seed", "familyName": "User"},
                "emails": [{"primary": true, "type": "work", "value": "jdoe@contoso.example"}],
                "preferredLanguage": "en"
            }),
        ) {
            Ok(d) => d,
            Err(e) => panic!("{e:?}"),
        }
    }

    fn patch(doc: &Doc, body: Value) -> Result<Doc, ScimError> {
        let ops = parse_request(&body)?;
        apply(
            &PatchContext {
                rt: &USER_TYPE,
                id: "uid",
                limits: Limits::default(),
            },
            doc,
            &ops,
        )
    }

    fn ok(doc: &Doc, ops: Value) -> Doc {
        match patch(doc, json!({"schemas": [PATCH_URN], "Operations": ops})) {
            Ok(d) => d,
            Err(e) => panic!("{e:?}"),
        }
    }

    #[test]
    fn okta_deactivate_value_map_and_entra_string_booleans() {
        let d = ok(
            &user(),
            json!([{"op": "replace", "value": {"active": false}}]),
        );
        assert_eq!(d["active"], false);
        let d = ok(
            &d,
            json!([{"op": "Replace", "path": "active", "value": "True"}]),
        );
        assert_eq!(d["active"], true);
        let d = ok(
            &d,
            json!([{"op": "REPLACE", "path": "active", "value": "false"}]),
        );
        assert_eq!(d["active"], false);
    }

    #[test]
    fn entra_legacy_multi_replace() {
        let d = ok(
            &user(),
            json!([
                {"op": "Replace", "path": "displayName", "value": "Pvlo"},
                {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "TestBcwqnm@test.example.com"},
                {"op": "Replace", "path": "name.givenName", "value": "Gtfd"},
                {"op": "Replace", "path": "name.familyName", "value": "Pkqf"},
                {"op": "Replace", "path": "externalId", "value": "Eqpj"},
                {"op": "Replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber", "value": "Eqpj"}
            ]),
        );
        assert_eq!(d["displayName"], "Pvlo");
        assert_eq!(
            d["emails"],
            json!([{"value": "TestBcwqnm@test.example.com", "type": "work", "primary": true}])
        );
        assert_eq!(
            d["name"],
            json!({"familyName": "Pkqf", "givenName": "Gtfd"})
        );
        assert_eq!(d["externalId"], "Eqpj");
        assert_eq!(d[ENTERPRISE_URN]["employeeNumber"], "Eqpj");
    }

    #[test]
    fn entra_flagged_value_map_with_dotted_and_urn_keys() {
        let d = ok(
            &user(),
            json!([
                {"op": "replace", "path": "emails[type eq \"work\"].value", "value": "new@test.example.com"},
                {"op": "replace", "value": {"displayName": "Bjfe", "name.givenName": "Kkom", "name.familyName": "Unua",
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": "Aklq"}}
            ]),
        );
        assert_eq!(d["displayName"], "Bjfe");
        assert_eq!(d["name"]["givenName"], "Kkom");
        assert!(!d.contains_key("name.givenName"));
        assert_eq!(d[ENTERPRISE_URN]["employeeNumber"], "Aklq");
        assert_eq!(d["emails"].as_array().map(Vec::len), Some(1));
    }

    #[test]
    fn add_on_filtered_path_upserts_a_typed_element() {
        let d = ok(
            &user(),
            json!([
                {"op": "Add", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "+1 555"},
                {"op": "Add", "path": "emails[type eq \"work\"].value", "value": "second@x.example"},
                {"op": "add", "path": "addresses[type eq \"work\"].streetAddress", "value": "1 Main St"}
            ]),
        );
        assert_eq!(
            d["phoneNumbers"],
            json!([{"value": "+1 555", "type": "mobile"}])
        );
        // Upsert overwrote the existing work email; no second work email.
        assert_eq!(d["emails"].as_array().map(Vec::len), Some(1));
        assert_eq!(d["emails"][0]["value"], "second@x.example");
        assert_eq!(d["addresses"][0]["streetAddress"], "1 Main St");
    }

    #[test]
    fn filtered_add_carries_type_and_replace_by_value_needs_a_target() {
        let d = ok(
            &user(),
            json!([{"op": "add", "path": "phoneNumbers[type eq \"work\"]", "value": {"value": "+1 555 0101"}}]),
        );
        assert_eq!(
            d["phoneNumbers"],
            json!([{"value": "+1 555 0101", "type": "work"}])
        );
        let e = patch(
            &user(),
            json!({"Operations": [{"op": "replace", "path": "emails[value eq \"zz@x\"].type", "value": "home"}]}),
        );
        assert!(e.is_err_and(|e| e.scim_type == Some(crate::scim::error::ScimType::NoTarget)));
    }

    #[test]
    fn manager_in_three_shapes_and_removal() {
        let m = |v: Value| {
            ok(
                &user(),
                json!([{"op": "Add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", "value": v}]),
            )
        };
        for shape in [
            json!({"value": "m1"}),
            json!("m1"),
            json!([{"$ref": null, "value": "m1"}]),
        ] {
            assert_eq!(
                m(shape.clone())[ENTERPRISE_URN]["manager"]["value"],
                "m1",
                "{shape}"
            );
        }
        let d = m(json!("m1"));
        for clear in [json!({"value": ""}), json!("")] {
            let c = ok(
                &d,
                json!([{"op": "replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", "value": clear}]),
            );
            assert!(
                c.get(ENTERPRISE_URN)
                    .and_then(|e| e.get("manager"))
                    .is_none()
            );
        }
        // Entra's legacy tutorial path names the extension attribute without its URN.
        let legacy = ok(
            &user(),
            json!([{"op": "Add", "path": "manager", "value": [{"$ref": null, "value": "m2"}]}]),
        );
        assert_eq!(legacy[ENTERPRISE_URN]["manager"]["value"], "m2");
    }

    #[test]
    fn whole_extension_by_urn_path() {
        let d = ok(
            &user(),
            json!([{"op": "add", "path": ENTERPRISE_URN, "value": {"schemas": [ENTERPRISE_URN], "employeeNumber": "7", "manager": {"value": "m"}}}]),
        );
        assert_eq!(
            d[ENTERPRISE_URN],
            json!({"employeeNumber": "7", "manager": {"value": "m"}})
        );
        assert!(
            !d.keys()
                .any(|k| k == "urn:ietf:params:scim:schemas:extension:enterprise:2.0")
        );
        let d = ok(
            &d,
            json!([{"op": "replace", "path": ENTERPRISE_URN, "value": {"employeeNumber": "8"}}]),
        );
        assert_eq!(d[ENTERPRISE_URN]["employeeNumber"], "8");
        let d = ok(&d, json!([{"op": "remove", "path": ENTERPRISE_URN}]));
        assert!(d.get(ENTERPRISE_URN).is_none());
    }

    #[test]
    fn validator_ordered_ops_on_same_attribute_and_remove() {
        let d = ok(
            &user(),
            json!([
                {"op": "add", "path": "displayName", "value": "NewDisplayName"},
                {"op": "replace", "path": "title", "value": "NewTitle"},
                {"op": "remove", "path": "preferredLanguage"}
            ]),
        );
        assert_eq!(d["title"], "NewTitle");
        assert!(!d.contains_key("preferredLanguage"));
        let d = ok(
            &d,
            json!([
                {"op": "remove", "path": "displayName"},
                {"op": "add", "path": "displayName", "value": "Intermediate"},
                {"op": "replace", "path": "displayName", "value": "FinalDisplay"}
            ]),
        );
        assert_eq!(d["displayName"], "FinalDisplay");
        let d = ok(
            &d,
            json!([{"op": "replace", "value": {"userName": "new@contoso.example"}}]),
        );
        assert_eq!(d["userName"], "new@contoso.example");
    }

    #[test]
    fn roles_stringified_json_and_primary_exclusivity() {
        let d = ok(
            &user(),
            json!([{"op": "Add", "path": "roles", "value": [{"value": "{\"id\":\"06b0\",\"value\":\"25\",\"displayName\":\"Role1234\"}"}]}]),
        );
        assert_eq!(d["roles"][0]["value"], "25");
        let d = ok(
            &d,
            json!([{"op": "add", "path": "emails", "value": [{"value": "p@x.example", "type": "home", "primary": true}]}]),
        );
        let primaries: Vec<_> = d["emails"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["primary"] == true)
            .collect();
        assert_eq!(primaries.len(), 1);
        assert_eq!(primaries[0]["value"], "p@x.example");
    }

    #[test]
    fn errors_have_the_right_scim_type_and_name_the_operation() {
        use crate::scim::error::ScimType::*;
        let cases = [
            (json!([{"op": "remove"}]), NoTarget),
            (
                json!([{"op": "update", "path": "title", "value": "x"}]),
                InvalidSyntax,
            ),
            (
                json!([{"op": "add", "path": "nope", "value": "x"}]),
                InvalidPath,
            ),
            (
                json!([{"op": "add", "path": "emails[type eq", "value": "x"}]),
                InvalidPath,
            ),
            (
                json!([{"op": "replace", "path": "groups", "value": []}]),
                Mutability,
            ),
            (
                json!([{"op": "replace", "value": {"id": "other"}}]),
                Mutability,
            ),
            (
                json!([{"op": "replace", "path": "active", "value": "perhaps"}]),
                InvalidValue,
            ),
            (
                json!([{"op": "replace", "path": "emails[type eq \"home\"]", "value": {"value": "x"}}]),
                NoTarget,
            ),
            (json!([{"op": "add", "path": "title"}]), InvalidValue),
            (
                json!([{"op": "replace", "path": "userName", "value": ""}]),
                InvalidValue,
            ),
        ];
        for (ops, want) in cases {
            match patch(&user(), json!({"schemas": [PATCH_URN], "Operations": ops})) {
                Err(e) => assert_eq!(e.scim_type, Some(want), "{ops}: {}", e.detail),
                Ok(d) => panic!("{ops} accepted: {d:?}"),
            }
        }
        let e = patch(
            &user(),
            json!({"Operations": [{"op": "add", "path": "title", "value": "ok"}, {"op": "add", "path": "bogus", "value": 1}]}),
        );
        assert!(e.is_err_and(|e| e.detail.starts_with("Operations[1] (path 'bogus')")));
        assert!(patch(&user(), json!({"schemas": ["urn:wrong"], "Operations": []})).is_err());
        assert!(patch(&user(), json!({"schemas": [PATCH_URN]})).is_err());
    }

    #[test]
    fn id_equal_to_own_id_is_ignored_in_group_rename() {
        let g = match normalize(&GROUP_TYPE, &json!({"displayName": "Old"})) {
            Ok(g) => g,
            Err(e) => panic!("{e:?}"),
        };
        let ops = match parse_request(
            &json!({"Operations": [{"op": "replace", "value": {"id": "gid", "displayName": "New"}}]}),
        ) {
            Ok(o) => o,
            Err(e) => panic!("{e:?}"),
        };
        let out = apply(
            &PatchContext {
                rt: &GROUP_TYPE,
                id: "gid",
                limits: Limits::default(),
            },
            &g,
            &ops,
        );
        assert!(out.is_ok_and(|d| d["displayName"] == "New"));
    }

    fn emails(n: usize, prefix: &str) -> Vec<Value> {
        (0..n)
            .map(|i| json!(format!("{prefix}{i}@x.example")))
            .collect()
    }

    fn refused(doc: &Doc, ops: Value, needles: &[&str]) {
        match patch(doc, json!({"Operations": ops})) {
            Err(e) => {
                assert_eq!(
                    e.scim_type,
                    Some(crate::scim::error::ScimType::InvalidValue),
                    "{}",
                    e.detail
                );
                for n in needles {
                    assert!(e.detail.contains(n), "{} lacks {n}", e.detail);
                }
            }
            Ok(d) => panic!("{ops} accepted: {} emails", d["emails"]),
        }
    }

    #[test]
    fn multi_valued_cap_on_add_replace_filtered_add_and_pathless_keys() {
        // user() has one email: 999 more fit.
        let full = ok(
            &user(),
            json!([{"op": "add", "path": "emails", "value": emails(999, "a")}]),
        );
        assert_eq!(full["emails"].as_array().map(Vec::len), Some(1000));
        // The issue's attack, refused by the operation's own value list.
        refused(
            &user(),
            json!([{"op": "add", "path": "emails", "value": emails(16_000, "b")}]),
            &["'emails'", "1000"],
        );
        // Within the cap alone, over it once merged.
        refused(
            &user(),
            json!([{"op": "add", "path": "emails", "value": emails(1000, "c")}]),
            &["'emails'", "1000"],
        );
        refused(
            &user(),
            json!([{"op": "add", "value": {" EMAILS ": emails(1000, "d")}}]),
            &["'emails'", "1000"],
        );
        refused(
            &full,
            json!([{"op": "add", "path": "emails[type eq \"home\"]", "value": {"value": "one@more.example"}}]),
            &["emails", "1000"],
        );
        refused(
            &user(),
            json!([{"op": "replace", "path": "roles", "value": emails(1001, "r")}]),
            &["'roles'", "1000"],
        );
        refused(
            &user(),
            json!([{"op": "add", "path": "urn:ietf:params:scim:schemas:extension:Custom:2.0:User:tags", "value": emails(1001, "t")}]),
            &["tags", "1000"],
        );
        // Duplicates do not count: adding what is there changes nothing.
        let again = ok(
            &full,
            json!([{"op": "add", "path": "emails", "value": emails(999, "a")}]),
        );
        assert_eq!(again, full);
    }

    #[test]
    fn group_members_have_no_value_cap() {
        let g = match normalize(&GROUP_TYPE, &json!({"displayName": "G"})) {
            Ok(g) => g,
            Err(e) => panic!("{e:?}"),
        };
        let ids: Vec<Value> = (0..5000).map(|i| json!(format!("m{i}"))).collect();
        let ops = match parse_request(&json!({"Operations": [
            {"op": "add", "value": {" members": ids}},
            {"op": "remove", "path": "members", "value": [{"value": "m0"}, {"value": "m4999"}]}
        ]})) {
            Ok(o) => o,
            Err(e) => panic!("{e:?}"),
        };
        let ctx = PatchContext {
            rt: &GROUP_TYPE,
            id: "gid",
            limits: Limits::default(),
        };
        let out = apply(&ctx, &g, &ops);
        assert!(
            out.is_ok_and(|d| d["members"].as_array().map(Vec::len) == Some(4998)
                && d["members"][0]["value"] == "m1")
        );
    }

    #[test]
    fn result_above_max_resource_bytes_is_refused_members_not_counted() {
        let limits = Limits {
            max_resource_bytes: 2048,
            ..Limits::default()
        };
        let apply_to = |rt: &'static ResourceType, doc: &Doc, ops: Value| {
            let ops = parse_request(&json!({"Operations": ops}))?;
            apply(
                &PatchContext {
                    rt,
                    id: "x",
                    limits,
                },
                doc,
                &ops,
            )
        };
        let e = apply_to(
            &USER_TYPE,
            &user(),
            json!([{"op": "add", "path": "urn:ietf:params:scim:schemas:extension:Custom:2.0:User:blob", "value": "x".repeat(2048)}]),
        );
        assert!(e.is_err_and(
            |e| e.scim_type == Some(crate::scim::error::ScimType::InvalidValue)
                && e.detail.contains("2048")
                && e.detail.contains("max_resource_bytes")
        ),);
        let g = match normalize(&GROUP_TYPE, &json!({"displayName": "G"})) {
            Ok(g) => g,
            Err(e) => panic!("{e:?}"),
        };
        let ids: Vec<Value> = (0..500).map(|i| json!(format!("member-{i:04}"))).collect();
        let d = apply_to(
            &GROUP_TYPE,
            &g,
            json!([{"op": "add", "path": "members", "value": ids}]),
        );
        assert!(d.is_ok_and(|d| d["members"].as_array().map(Vec::len) == Some(500)));
    }

    /// Entra's path-less maps: a key means what the same text means as a path,
    /// after the same trimming and case rules.
    #[test]
    fn pathless_keys_are_trimmed_and_case_folded_like_paths() {
        let by_path = ok(
            &user(),
            json!([
                {"op": "add", "path": "emails", "value": [{"value": "k@x.example", "type": "home"}]},
                {"op": "replace", "path": "name.givenName", "value": "K"},
                {"op": "replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", "value": "D"}
            ]),
        );
        for (emails, given, dept) in [
            (
                " emails",
                "name.givenName ",
                " urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
            ),
            (
                "EMAILS",
                " NAME.GIVENNAME",
                "URN:IETF:PARAMS:SCIM:SCHEMAS:EXTENSION:ENTERPRISE:2.0:USER:DEPARTMENT\t",
            ),
            (
                "Emails ",
                "name.givenname",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:Department",
            ),
        ] {
            let d = ok(
                &user(),
                json!([
                    {"op": "add", "value": {emails: [{"value": "k@x.example", "type": "home"}]}},
                    {"op": "replace", "value": {given: "K", dept: "D"}}
                ]),
            );
            assert_eq!(d, by_path, "{emails:?} {given:?} {dept:?}");
        }
        // `" id "` equal to the resource's own id is ignored, like `id`.
        let d = ok(
            &user(),
            json!([{"op": "replace", "value": {" id ": "uid", " META": {}, "displayName": "X"}}]),
        );
        assert_eq!(d["displayName"], "X");
        // An unknown extension's URN with spaces around it: as without them.
        let custom = "urn:ietf:params:scim:schemas:extension:Custom:2.0:User";
        for value in [json!({"tag": "t"}), json!("v")] {
            for key in [format!(" {custom} "), format!("{custom}:tag\t")] {
                let plain = key.trim().to_string();
                assert_eq!(
                    ok(
                        &user(),
                        json!([{"op": "add", "value": {key.clone(): value.clone()}}])
                    ),
                    ok(
                        &user(),
                        json!([{"op": "add", "value": {plain: value.clone()}}])
                    ),
                    "{key:?}"
                );
            }
        }
        for key in [
            " members",
            "Members ",
            "MEMBERS",
            "\turn:ietf:params:scim:schemas:core:2.0:Group:members",
        ] {
            let p = pathless_path(key);
            assert!(
                p.as_ref().is_ok_and(
                    |p| p.attr.name.eq_ignore_ascii_case("members") && p.attr.sub.is_none()
                ),
                "{key:?}: {p:?}"
            );
        }
    }

    #[test]
    fn path_parsing() {
        let p = PatchPath::parse(
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
        );
        assert!(
            p.is_ok_and(|p| p.attr.name == "manager" && p.attr.sub.as_deref() == Some("value"))
        );
        let p = PatchPath::parse(r#"members[value eq "2819c223"]"#);
        assert!(p.is_ok_and(|p| p.filter.is_some() && p.sub_after_filter.is_none()));
        let p = PatchPath::parse(r#"addresses[type eq "work"].streetAddress"#);
        assert!(p.is_ok_and(|p| p.sub_after_filter.as_deref() == Some("streetAddress")));
        for bad in ["", "name.familyName.x", "emails[type eq \"w\"]x", "emails]"] {
            assert!(PatchPath::parse(bad).is_err(), "{bad}");
        }
    }
}

#[cfg(test)]
mod index_properties {
    //! The hash-indexed add, filtered add and removal against the scans they
    //! replaced (`same_element` per element), on small values that collide often.
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn element() -> impl Strategy<Value = Value> {
        let value = prop_oneof![
            Just(json!("a")),
            Just(json!("b")),
            Just(json!(1)),
            Just(json!(1.0))
        ];
        let ty = prop_oneof![Just(None), Just(Some("work")), Just(Some("home"))];
        (
            proptest::option::of(value),
            ty,
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(|(v, t, primary, display)| {
                let mut m = Map::new();
                if display {
                    m.insert("display".into(), json!("d"));
                }
                if let Some(t) = t {
                    m.insert("type".into(), json!(t));
                }
                if let Some(v) = v {
                    m.insert("value".into(), v);
                }
                if primary {
                    m.insert("primary".into(), json!(true));
                }
                Value::Object(m)
            })
    }

    fn scan_add(items: &mut Vec<Value>, new_items: Vec<Value>) {
        for n in new_items {
            if is_primary(&n) {
                items.iter_mut().for_each(clear_primary);
            }
            if let Some(pos) = items.iter().position(|i| same_element(i, &n)) {
                items[pos] = n;
            } else {
                items.push(n);
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

        #[test]
        fn indexed_operations_equal_the_scans(
            items in proptest::collection::vec(element(), 0..12),
            // Both sides of SCAN_BELOW: small operations scan, large ones index.
            new_items in proptest::collection::vec(element(), 0..40),
        ) {
            let mut want = items.clone();
            scan_add(&mut want, new_items.clone());
            let mut got = items.clone();
            prop_assert!(add_values(&mut got, new_items.clone(), None).is_ok());
            prop_assert_eq!(&got, &want);

            let mut want = items.clone();
            for n in new_items.clone() {
                if !want.iter().any(|i| same_element(i, &n)) {
                    want.push(n);
                }
            }
            let mut got = items.clone();
            prop_assert!(add_missing(&mut got, new_items.clone(), None).is_ok());
            prop_assert_eq!(&got, &want);

            let mut want = items.clone();
            want.retain(|item| !new_items.iter().any(|r| same_element(item, r)));
            let removals = Removals::new(&new_items);
            let mut got = items.clone();
            got.retain(|item| !removals.matches(item));
            prop_assert_eq!(got, want);
        }

        #[test]
        fn canonical_text_is_equal_exactly_when_values_are(a in element(), b in element()) {
            // Key order differs, equality does not.
            let reversed: Value = match &b {
                Value::Object(o) => Value::Object(o.iter().rev().map(|(k, v)| (k.clone(), v.clone())).collect()),
                other => other.clone(),
            };
            prop_assert_eq!(canonical(&a) == canonical(&b), a == b);
            prop_assert_eq!(canonical(&reversed), canonical(&b));
        }
    }

    #[test]
    fn negative_zero_is_zero() {
        assert_eq!(canonical(&json!(-0.0)), canonical(&json!(0.0)));
        assert_ne!(canonical(&json!(0)), canonical(&json!(0.0)));
        assert!(json!(-0.0) == json!(0.0));
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use crate::scim::resource::normalize;
    use crate::scim::schema::USER_TYPE;
    use proptest::prelude::*;

    fn json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i32>().prop_map(Value::from),
            "[a-zA-Z0-9 .:@\\[\\]\"]{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::btree_map(
                    prop_oneof![
                        Just("userName".to_string()),
                        Just("emails".to_string()),
                        Just("name".to_string()),
                        Just("value".to_string()),
                        Just("active".to_string()),
                        "[a-z]{1,6}"
                    ],
                    inner,
                    0..4
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

        /// Any JSON body and any PATCH operation: an error or a valid document, never a panic,
        /// and a document that survives a second normalisation unchanged.
        #[test]
        fn normalise_and_patch_never_panic(body in json(), op in json(), path in proptest::option::of("[a-zA-Z.\\[\\] \"]{0,20}")) {
            if let Ok(doc) = normalize(&USER_TYPE, &body) {
                let again = normalize(&USER_TYPE, &Value::Object(doc.clone()));
                prop_assert_eq!(again.ok(), Some(doc.clone()));
                let mut o = serde_json::Map::new();
                o.insert("op".into(), Value::String("add".into()));
                if let Some(p) = path {
                    o.insert("path".into(), Value::String(p));
                }
                o.insert("value".into(), op);
                let req = serde_json::json!({"Operations": [Value::Object(o)]});
                if let Ok(ops) = parse_request(&req) {
                    let _ = apply(&PatchContext { rt: &USER_TYPE, id: "x", limits: Limits::default() }, &doc, &ops);
                }
            }
        }
    }
}

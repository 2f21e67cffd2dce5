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

mod filtered;
mod values;

use filtered::*;
use values::*;

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

#[cfg(test)]
mod tests;

#[cfg(test)]
mod index_properties;

#[cfg(test)]
mod properties;

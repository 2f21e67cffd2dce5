//! Request bodies → canonical documents, canonical documents → responses.
//!
//! The canonical document is what is stored: attribute names in schema case, values
//! as sent (booleans coerced from Entra's `"True"`/`"False"`), nulls and empty strings
//! dropped, read-only attributes (`id`, `meta`, `groups`) and `password` removed,
//! unknown extension objects kept verbatim. Every indexed column is derived from it
//! by `user_keys`/`group_keys`, so the document stays the one source of truth.

use super::error::ScimError;
use super::fold::fold;
use super::schema::{
    Attr, AttrType, ENTERPRISE_URN, Mutability, ResourceType, Returned, Schema, is_common_attr,
};
use serde_json::{Map, Value};

pub type Doc = Map<String, Value>;

/// Values one multi-valued attribute may hold (emails, roles, a multi-valued
/// attribute of an extension, an array inside an unknown extension). Group
/// `members` are exempt: Okta pushes whole member lists, bounded by the body
/// limit, and every members operation is n log n.
pub const MAX_MULTI_VALUES: usize = 1000;

/// The default of `max_resource_bytes`.
pub const DEFAULT_MAX_RESOURCE_BYTES: usize = 256 * 1024;

/// The default of `max_list_bytes`.
pub const DEFAULT_MAX_LIST_BYTES: usize = 1024 * 1024;

/// What one stored resource may cost, checked wherever a document is
/// normalised (POST, PUT, PATCH, Bulk) before anything is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The canonical document's size as stored (serialized JSON, unknown
    /// extensions included; a group's `members` excluded, they live in their
    /// own table).
    pub max_resource_bytes: usize,
    /// A list answer's stored documents: a page stops before the resource
    /// that would take it past this (it keeps at least one), with
    /// `totalResults` unchanged, so an IdP pages on (RFC 7644 §3.4.2.4 lets
    /// the server return fewer than `count`).
    pub max_list_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_resource_bytes: DEFAULT_MAX_RESOURCE_BYTES,
            max_list_bytes: DEFAULT_MAX_LIST_BYTES,
        }
    }
}

/// Normalises a POST/PUT body (or a patched document) into a canonical
/// document, under the default `Limits`.
pub fn normalize(rt: &ResourceType, input: &Value) -> Result<Doc, ScimError> {
    normalize_within(rt, input, &Limits::default())
}

/// Normalises a POST/PUT body (or a patched document) into a canonical document
/// no larger than `limits` allow.
pub fn normalize_within(
    rt: &ResourceType,
    input: &Value,
    limits: &Limits,
) -> Result<Doc, ScimError> {
    let out = normalize_doc(rt, input)?;
    check_size(&out, limits)?;
    Ok(out)
}

/// 400 `invalidValue` when the canonical document is above `max_resource_bytes`.
pub fn check_size(doc: &Doc, limits: &Limits) -> Result<(), ScimError> {
    let size = stored_size(doc);
    if size > limits.max_resource_bytes {
        return Err(ScimError::invalid_value(format!(
            "the resource would be {size} bytes as stored; at most {} bytes (max_resource_bytes) are allowed, unknown extensions included",
            limits.max_resource_bytes
        )));
    }
    Ok(())
}

/// Bytes of the document's serialized JSON, without `members` (a group's
/// memberships are rows of their own). Counted, not built.
pub fn stored_size(doc: &Doc) -> usize {
    struct WithoutMembers<'a>(&'a Doc);
    impl serde::Serialize for WithoutMembers<'_> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.collect_map(self.0.iter().filter(|(k, _)| k.as_str() != "members"))
        }
    }
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut n = Count(0);
    // Writing to a counter cannot fail, and a `Map` always serializes.
    let _ = serde_json::to_writer(&mut n, &WithoutMembers(doc));
    n.0
}

fn normalize_doc(rt: &ResourceType, input: &Value) -> Result<Doc, ScimError> {
    let obj = input
        .as_object()
        .ok_or_else(|| ScimError::invalid_syntax("the request body must be a JSON object"))?;
    let mut out = Doc::new();
    // Stored trimmed, blank as absent: the one form the store, the gate and
    // tombstones compare (deprovision::evidence::external_id).
    if let Some(v) = get_ci(obj, "externalId")
        && let Some(s) = scalar_string("externalId", v)?
        && !s.trim().is_empty()
    {
        out.insert("externalId".into(), Value::String(s.trim().to_string()));
    }
    normalize_schema_attrs(rt.core, obj, &mut out, "")?;
    let core_prefix = format!("{}:", rt.core.id);
    for (key, value) in obj {
        if !key.to_ascii_lowercase().starts_with("urn:") {
            continue;
        }
        if let Some(ext) = rt.extension(key) {
            let inner = match value {
                Value::Null => continue,
                Value::Object(o) => o,
                _ => {
                    return Err(ScimError::invalid_value(format!(
                        "'{}' must be an object of extension attributes",
                        ext.id
                    )));
                }
            };
            let mut ext_doc = Doc::new();
            normalize_schema_attrs(ext, inner, &mut ext_doc, ext.id)?;
            if !ext_doc.is_empty() {
                out.insert(ext.id.to_string(), Value::Object(ext_doc));
            }
        } else if let Some(name) = key
            .get(..core_prefix.len())
            .filter(|p| p.eq_ignore_ascii_case(&core_prefix))
            .and_then(|_| key.get(core_prefix.len()..))
            .filter(|n| !n.is_empty())
        {
            // A core attribute written with its URN prefix: already handled above
            // only when unprefixed, so take it here.
            if let Some(attr) = rt.core.attr(name)
                && writable(attr)
                && let Some(v) = normalize_attr(attr, value, attr.name)?
            {
                out.insert(attr.name.to_string(), v);
            }
        } else if let Value::Object(o) = value {
            // An extension Custodian has no schema for (Entra sends custom ones
            // without listing them in `schemas`): kept verbatim, minus nulls.
            let cleaned = strip_nulls(&Value::Object(o.clone()), key)?;
            if cleaned.as_object().is_some_and(|m| !m.is_empty()) {
                out.insert(key.clone(), cleaned);
            }
        }
    }
    for attr in rt.core.attrs {
        if attr.required && !out.contains_key(attr.name) {
            return Err(ScimError::invalid_value(format!(
                "'{}' is required and must be a non-empty value",
                attr.name
            )));
        }
    }
    Ok(out)
}

fn writable(attr: &Attr) -> bool {
    // readOnly attributes are ignored on input (Okta echoes `groups`), and
    // writeOnly `password` is accepted but never kept.
    !matches!(
        attr.mutability,
        Mutability::ReadOnly | Mutability::WriteOnly
    )
}

fn normalize_schema_attrs(
    schema: &Schema,
    obj: &Map<String, Value>,
    out: &mut Doc,
    prefix: &str,
) -> Result<(), ScimError> {
    for attr in schema.attrs {
        let Some(v) = get_ci(obj, attr.name) else {
            continue;
        };
        if attr.mutability == Mutability::WriteOnly {
            // Validate the type so garbage is still rejected, then drop it.
            scalar_string(attr.name, v)?;
            continue;
        }
        if !writable(attr) {
            continue;
        }
        let label = if prefix.is_empty() {
            attr.name.to_string()
        } else {
            format!("{prefix}:{}", attr.name)
        };
        if let Some(nv) = normalize_attr(attr, v, &label)? {
            out.insert(attr.name.to_string(), nv);
        }
    }
    Ok(())
}

pub fn get_ci<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.get(key).or_else(|| {
        obj.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

/// An unknown extension's value without nulls; its arrays are multi-valued
/// attributes too, so they are held to `MAX_MULTI_VALUES` (`label` names them).
fn strip_nulls(v: &Value, label: &str) -> Result<Value, ScimError> {
    Ok(match v {
        Value::Object(o) => Value::Object(
            o.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| Ok((k.clone(), strip_nulls(v, &format!("{label}:{k}"))?)))
                .collect::<Result<_, ScimError>>()?,
        ),
        Value::Array(a) => {
            let items = a
                .iter()
                .filter(|v| !v.is_null())
                .map(|v| strip_nulls(v, label))
                .collect::<Result<Vec<_>, _>>()?;
            if items.len() > MAX_MULTI_VALUES {
                return Err(too_many_values(label));
            }
            Value::Array(items)
        }
        other => other.clone(),
    })
}

/// Whether `attr` is held to `MAX_MULTI_VALUES` (every multi-valued attribute
/// but a group's `members`).
pub fn is_capped(attr: &Attr) -> bool {
    attr.multi && attr.name != "members"
}

/// The error for a multi-valued attribute above `MAX_MULTI_VALUES`.
pub fn too_many_values(label: &str) -> ScimError {
    ScimError::invalid_value(format!(
        "'{label}' has more than {MAX_MULTI_VALUES} values; a multi-valued attribute may hold at most {MAX_MULTI_VALUES}"
    ))
}

/// Normalises one attribute's value; `None` means "absent" (null, empty string,
/// empty list or object).
pub fn normalize_attr(attr: &Attr, v: &Value, label: &str) -> Result<Option<Value>, ScimError> {
    if v.is_null() {
        return Ok(None);
    }
    if attr.multi {
        let items: Vec<&Value> = match v {
            Value::Array(a) => a.iter().collect(),
            single => vec![single],
        };
        let mut out = Vec::with_capacity(items.len());
        // Duplicates are dropped in linear time: a group PUT may carry 100,000 members.
        let mut seen = std::collections::HashSet::with_capacity(items.len());
        let capped = is_capped(attr);
        for item in items {
            if let Some(nv) = normalize_single(attr, item, label)?
                && seen.insert(nv.to_string())
            {
                out.push(nv);
                // Refused as soon as the cap is passed: the rest is not read.
                if capped && out.len() > MAX_MULTI_VALUES {
                    return Err(too_many_values(label));
                }
            }
        }
        let primaries = out
            .iter()
            .filter(|e| e.get("primary") == Some(&Value::Bool(true)))
            .count();
        if primaries > 1 {
            return Err(ScimError::invalid_value(format!(
                "'{label}' has {primaries} values marked primary; at most one may be"
            )));
        }
        return Ok(if out.is_empty() {
            None
        } else {
            Some(Value::Array(out))
        });
    }
    if let Value::Array(a) = v
        && attr.is_complex()
    {
        // Entra's legacy manager shape: `[{"$ref": …, "value": "<id>"}]`.
        return match a.as_slice() {
            [] => Ok(None),
            [one] => normalize_single(attr, one, label),
            _ => Err(ScimError::invalid_value(format!(
                "'{label}' is single-valued but got a list"
            ))),
        };
    }
    normalize_single(attr, v, label)
}

fn normalize_single(attr: &Attr, v: &Value, label: &str) -> Result<Option<Value>, ScimError> {
    if v.is_null() {
        return Ok(None);
    }
    if attr.is_complex() {
        let obj = match v {
            Value::Object(o) => o.clone(),
            // A bare scalar for a complex attribute with a `value` (Entra's manager
            // as a string, bare member ids): read it as `{"value": …}`.
            scalar if attr.sub_attr("value").is_some() => {
                let mut m = Map::new();
                m.insert("value".into(), scalar.clone());
                m
            }
            _ => {
                return Err(ScimError::invalid_value(format!(
                    "'{label}' must be an object"
                )));
            }
        };
        let obj = if attr.name == "roles" {
            expand_stringified_role(obj)
        } else {
            obj
        };
        let mut out = Map::new();
        for sub in attr.sub {
            let Some(sv) = get_ci(&obj, sub.name) else {
                continue;
            };
            // Read-only sub-attributes (manager.displayName, manager.$ref) are
            // the server's to compute; a client's copy is not stored.
            if sub.mutability == Mutability::ReadOnly {
                continue;
            }
            if let Some(nv) = normalize_simple(sub, sv, &format!("{label}.{}", sub.name))? {
                out.insert(sub.name.to_string(), nv);
            }
        }
        return Ok(if out.is_empty() {
            None
        } else {
            Some(Value::Object(out))
        });
    }
    normalize_simple(attr, v, label)
}

/// Entra's SingleAppRoleAssignment PATCH sends a role as a JSON string inside
/// `value`; unpack it so POST and PATCH store the same shape.
///
/// Unpacked until `value` is no longer such a string, and found under any
/// spelling of `value` (as the sub-attribute is read): otherwise what is stored
/// would be unpacked once more by the next PATCH or PUT, changing a role the
/// request never named (found by the patch_apply fuzz target's invariant).
fn expand_stringified_role(mut obj: Map<String, Value>) -> Map<String, Value> {
    loop {
        let Some(key) = obj
            .keys()
            .find(|k| *k == "value")
            .or_else(|| obj.keys().find(|k| k.eq_ignore_ascii_case("value")))
            .cloned()
        else {
            return obj;
        };
        let inner = match obj.get(&key) {
            Some(Value::String(s)) if s.trim_start().starts_with('{') => {
                serde_json::from_str::<Map<String, Value>>(s).ok()
            }
            _ => None,
        };
        let Some(inner) = inner else {
            return obj;
        };
        if let Some(d) = inner.get("displayName").or_else(|| inner.get("display")) {
            obj.entry("display").or_insert_with(|| d.clone());
        }
        // Each round replaces `value` with a strictly shorter one, so this ends.
        match inner.get("value") {
            Some(v) => obj.insert(key, v.clone()),
            None => return obj,
        };
    }
}

fn normalize_simple(attr: &Attr, v: &Value, label: &str) -> Result<Option<Value>, ScimError> {
    if v.is_null() {
        return Ok(None);
    }
    match attr.ty {
        AttrType::Boolean => match v {
            Value::Bool(b) => Ok(Some(Value::Bool(*b))),
            Value::String(s) if s.trim().eq_ignore_ascii_case("true") => {
                Ok(Some(Value::Bool(true)))
            }
            Value::String(s) if s.trim().eq_ignore_ascii_case("false") => {
                Ok(Some(Value::Bool(false)))
            }
            Value::String(s) if s.is_empty() => Ok(None),
            _ => Err(ScimError::invalid_value(format!(
                "'{label}' must be a boolean, got {v}"
            ))),
        },
        AttrType::Integer => match v {
            Value::Number(n) if n.is_i64() => Ok(Some(v.clone())),
            Value::String(s) => s
                .trim()
                .parse::<i64>()
                .map(|i| Some(Value::from(i)))
                .map_err(|_| ScimError::invalid_value(format!("'{label}' must be an integer"))),
            _ => Err(ScimError::invalid_value(format!(
                "'{label}' must be an integer, got {v}"
            ))),
        },
        AttrType::Decimal => match v {
            Value::Number(_) => Ok(Some(v.clone())),
            _ => Err(ScimError::invalid_value(format!(
                "'{label}' must be a number, got {v}"
            ))),
        },
        AttrType::DateTime => match v {
            Value::String(s) if s.is_empty() => Ok(None),
            Value::String(s) if chrono::DateTime::parse_from_rfc3339(s).is_ok() => {
                Ok(Some(v.clone()))
            }
            _ => Err(ScimError::invalid_value(format!(
                "'{label}' must be an xsd:dateTime such as 2008-01-23T04:56:22Z"
            ))),
        },
        AttrType::Complex => Err(ScimError::invalid_value(format!(
            "'{label}' must be an object"
        ))),
        AttrType::String | AttrType::Reference | AttrType::Binary => {
            Ok(scalar_string(label, v)?.map(Value::String))
        }
    }
}

/// A string attribute's value: strings as sent (empty means absent), numbers as
/// their text (IdPs map numeric directory fields), anything else rejected.
fn scalar_string(label: &str, v: &Value) -> Result<Option<String>, ScimError> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) if s.is_empty() => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        Value::Number(n) => Ok(Some(n.to_string())),
        _ => Err(ScimError::invalid_value(format!(
            "'{label}' must be a string, got {v}"
        ))),
    }
}

/// Values derived from a user document for indexed columns and child tables.
#[derive(Debug, Clone, PartialEq)]
pub struct UserKeys {
    pub user_name: String,
    pub user_name_key: String,
    pub external_id: Option<String>,
    pub display_name: Option<String>,
    pub display_name_key: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub active: bool,
    pub manager_id: Option<String>,
    pub emails: Vec<EmailKey>,
    /// The search document (`scim::search_doc`).
    pub search: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EmailKey {
    pub value: String,
    pub value_key: String,
    pub kind: Option<String>,
    pub primary: bool,
}

fn str_at<'a>(doc: &'a Doc, key: &str) -> Option<&'a str> {
    doc.get(key).and_then(Value::as_str)
}

pub fn user_keys(doc: &Doc) -> UserKeys {
    let user_name = str_at(doc, "userName").unwrap_or_default().to_string();
    let name = doc.get("name");
    let sub = |k: &str| {
        name.and_then(|n| n.get(k))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let display_name = str_at(doc, "displayName").map(str::to_string);
    let emails = doc
        .get("emails")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|e| {
                    let value = e.get("value")?.as_str()?.to_string();
                    Some(EmailKey {
                        value_key: fold(&value),
                        value,
                        kind: e.get("type").and_then(Value::as_str).map(fold),
                        primary: e.get("primary") == Some(&Value::Bool(true)),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    UserKeys {
        user_name_key: fold(&user_name),
        user_name,
        external_id: str_at(doc, "externalId").map(str::to_string),
        display_name_key: display_name.as_deref().map(fold),
        display_name,
        given_name: sub("givenName"),
        family_name: sub("familyName"),
        active: doc.get("active").and_then(Value::as_bool).unwrap_or(true),
        manager_id: doc
            .get(ENTERPRISE_URN)
            .and_then(|e| e.get("manager"))
            .and_then(|m| m.get("value"))
            .and_then(Value::as_str)
            .map(str::to_string),
        emails,
        search: super::search_doc::search_doc(&super::schema::USER_TYPE, doc),
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct GroupKeys {
    pub display_name: String,
    pub display_name_key: String,
    pub external_id: Option<String>,
}

pub fn group_keys(doc: &Doc) -> GroupKeys {
    let display_name = str_at(doc, "displayName").unwrap_or_default().to_string();
    GroupKeys {
        display_name_key: fold(&display_name),
        display_name,
        external_id: str_at(doc, "externalId").map(str::to_string),
    }
}

/// Server-maintained metadata of a stored resource.
#[derive(Debug, Clone)]
pub struct Meta {
    pub resource_type: &'static str,
    pub created: String,
    pub last_modified: String,
    pub version: i64,
    pub location: String,
}

impl Meta {
    pub fn etag(&self) -> String {
        format!("W/\"{}\"", self.version)
    }
}

/// Builds the response representation: `schemas`, `id`, the document, `meta`.
pub fn render(rt: &ResourceType, id: &str, doc: &Doc, meta: &Meta) -> Value {
    let mut schemas = vec![Value::String(rt.core.id.to_string())];
    for key in doc.keys() {
        if key.starts_with("urn:") {
            schemas.push(Value::String(key.clone()));
        }
    }
    let mut out = Map::new();
    out.insert("schemas".into(), Value::Array(schemas));
    out.insert("id".into(), Value::String(id.to_string()));
    for (k, v) in doc {
        out.insert(k.clone(), v.clone());
    }
    let mut m = Map::new();
    m.insert(
        "resourceType".into(),
        Value::String(meta.resource_type.into()),
    );
    m.insert("created".into(), Value::String(meta.created.clone()));
    m.insert(
        "lastModified".into(),
        Value::String(meta.last_modified.clone()),
    );
    m.insert("location".into(), Value::String(meta.location.clone()));
    m.insert("version".into(), Value::String(meta.etag()));
    out.insert("meta".into(), Value::Object(m));
    Value::Object(out)
}

/// Entries one `attributes` or `excludedAttributes` list may name.
pub const MAX_PROJECTION_ENTRIES: usize = 256;

/// `attributes` / `excludedAttributes` (RFC 7644 §3.4.2.5), honouring `returned`.
///
/// Parsed once per request into hash lookups, so projecting a resource costs
/// time linear in its size whatever the lists hold.
#[derive(Debug, Clone, Default)]
pub struct Projection {
    attributes: Specs,
    excluded: Specs,
}

/// One list, by what its entries name.
#[derive(Debug, Clone, Default)]
struct Specs {
    /// Entries as sent (trimmed), for their number.
    len: usize,
    /// Every entry, lowercased: an entry equal to a schema URN names the schema.
    schemas: std::collections::HashSet<String>,
    /// Lowercased attribute name → lowercased schema URN (`""`: none given) →
    /// what is named of it.
    attrs: std::collections::HashMap<String, std::collections::HashMap<String, Named>>,
}

/// What entries name of one attribute: the whole of it and/or sub-attributes.
#[derive(Debug, Clone, Default)]
struct Named {
    whole: bool,
    subs: std::collections::HashSet<String>,
}

impl Specs {
    fn parse(param: &str, list: Option<&str>) -> Result<Specs, ScimError> {
        let mut out = Specs::default();
        for spec in list
            .into_iter()
            .flat_map(|s| s.split(','))
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            out.len += 1;
            if out.len > MAX_PROJECTION_ENTRIES {
                return Err(ScimError::invalid_value(format!(
                    "'{param}' lists more than {MAX_PROJECTION_ENTRIES} entries; at most {MAX_PROJECTION_ENTRIES} are allowed"
                )));
            }
            out.schemas.insert(spec.to_ascii_lowercase());
            let (urn, attr, sub) = split_spec(spec);
            let named = out
                .attrs
                .entry(attr)
                .or_default()
                .entry(urn.unwrap_or_default())
                .or_default();
            match sub {
                None => named.whole = true,
                Some(s) => {
                    named.subs.insert(s);
                }
            }
        }
        Ok(out)
    }

    fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// What entries name of attribute `name` (lowercased) of schema `urn`
    /// (lowercased): entries without a URN and entries with this one.
    fn named<'a>(&'a self, urn: &str, name: &str) -> impl Iterator<Item = &'a Named> {
        self.attrs
            .get(name)
            .into_iter()
            .flat_map(move |by_urn| [by_urn.get(""), by_urn.get(urn)].into_iter().flatten())
    }
}

/// Splits `[urn:]attr[.sub]` (the URN is everything before the last ':'),
/// lowercased.
fn split_spec(spec: &str) -> (Option<String>, String, Option<String>) {
    // `emails[type eq "work"]` (sent by Microsoft's reference collection): the
    // attribute is projected whole; a value filter has no meaning here.
    let owned;
    let spec = match (spec.find('['), spec.rfind(']')) {
        (Some(a), Some(b)) if a < b => {
            owned = format!("{}{}", &spec[..a], &spec[b + 1..]);
            owned.as_str()
        }
        _ => spec,
    };
    let (urn, rest) = match spec.rfind(':') {
        Some(i)
            if spec
                .get(..4)
                .is_some_and(|p| p.eq_ignore_ascii_case("urn:")) =>
        {
            (Some(spec[..i].to_ascii_lowercase()), &spec[i + 1..])
        }
        _ => (None, spec),
    };
    let (attr, sub) = match rest.split_once('.') {
        Some((a, s)) => (a.to_ascii_lowercase(), Some(s.to_ascii_lowercase())),
        None => (rest.to_ascii_lowercase(), None),
    };
    (urn, attr, sub)
}

impl Projection {
    /// Parses the two lists (comma-separated); 400 `invalidValue` when either
    /// names more than `MAX_PROJECTION_ENTRIES` entries.
    pub fn parse(
        attributes: Option<&str>,
        excluded: Option<&str>,
    ) -> Result<Projection, ScimError> {
        Ok(Projection {
            attributes: Specs::parse("attributes", attributes)?,
            excluded: Specs::parse("excludedAttributes", excluded)?,
        })
    }

    /// Entries in `attributes` and in `excludedAttributes`.
    pub fn entries(&self) -> (usize, usize) {
        (self.attributes.len, self.excluded.len)
    }

    /// Whether the top-level attribute `name` (no URN) will be in the response;
    /// lets a handler skip loading it (group members).
    pub fn wants(&self, rt: &ResourceType, name: &str) -> bool {
        let probe = {
            let mut m = Map::new();
            m.insert(name.to_string(), Value::Bool(true));
            Value::Object(m)
        };
        self.apply(rt, probe).get(name).is_some()
    }

    pub fn apply(&self, rt: &ResourceType, resource: Value) -> Value {
        let Value::Object(obj) = resource else {
            return resource;
        };
        let core_urn = rt.core.id.to_ascii_lowercase();
        let mut out = Map::new();
        for (k, v) in obj {
            let (schema, attr) = resolve_top(rt, &k);
            let returned = attr.map(|a| a.returned).unwrap_or(Returned::Default);
            if matches!(k.as_str(), "id" | "schemas") || returned == Returned::Always {
                out.insert(k, v);
                continue;
            }
            if returned == Returned::Never {
                continue;
            }
            if let Some(ext_schema) = schema.filter(|_| attr.is_none()) {
                // An extension object: project its attributes one by one.
                if let Value::Object(inner) = v {
                    let ext_urn = ext_schema.id.to_ascii_lowercase();
                    let kept: Map<String, Value> = inner
                        .into_iter()
                        .filter_map(|(ik, iv)| {
                            let name = ik.to_ascii_lowercase();
                            if !self.keep(&ext_urn, &name, returned) {
                                return None;
                            }
                            self.project_sub(&ext_urn, &name, iv).map(|v| (ik, v))
                        })
                        .collect();
                    if !kept.is_empty() {
                        out.insert(k, Value::Object(kept));
                    }
                }
                continue;
            }
            let name = k.to_ascii_lowercase();
            if !self.keep(&core_urn, &name, returned) {
                continue;
            }
            if let Some(v) = self.project_sub(&core_urn, &name, v) {
                out.insert(k, v);
            }
        }
        Value::Object(out)
    }

    /// Whether attribute `name` of schema `urn` (both lowercased) is returned.
    fn keep(&self, urn: &str, name: &str, returned: Returned) -> bool {
        if !self.attributes.is_empty() {
            return self.attributes.schemas.contains(urn)
                || self.attributes.named(urn, name).next().is_some();
        }
        if returned == Returned::Request {
            return false;
        }
        // Excluding a sub-attribute keeps the parent (handled in project_sub).
        !(self.excluded.schemas.contains(urn) || self.excluded.named(urn, name).any(|n| n.whole))
    }

    /// Narrows a complex attribute to the requested (or not excluded) sub-attributes;
    /// drops what becomes empty.
    fn project_sub(&self, urn: &str, name: &str, v: Value) -> Option<Value> {
        let wanted: Vec<&Named> = self.attributes.named(urn, name).collect();
        let dropped: Vec<&Named> = self
            .excluded
            .named(urn, name)
            .filter(|n| !n.subs.is_empty())
            .collect();
        let all_wanted = wanted.iter().any(|n| n.whole) || wanted.iter().all(|n| n.subs.is_empty());
        let keep_key = |k: &str| -> bool {
            if all_wanted && dropped.is_empty() {
                return true;
            }
            let kl = k.to_ascii_lowercase();
            (all_wanted || wanted.iter().any(|n| n.subs.contains(&kl)))
                && !dropped.iter().any(|n| n.subs.contains(&kl))
        };
        let filter_obj = |o: Map<String, Value>| -> Map<String, Value> {
            o.into_iter().filter(|(k, _)| keep_key(k)).collect()
        };
        match v {
            Value::Object(o) => {
                let o = filter_obj(o);
                (!o.is_empty()).then_some(Value::Object(o))
            }
            Value::Array(a) => {
                let items: Vec<Value> = a
                    .into_iter()
                    .filter_map(|e| match e {
                        Value::Object(o) => {
                            let o = filter_obj(o);
                            (!o.is_empty()).then_some(Value::Object(o))
                        }
                        other => Some(other),
                    })
                    .collect();
                (!items.is_empty()).then_some(Value::Array(items))
            }
            other => Some(other),
        }
    }
}

fn resolve_top(rt: &ResourceType, key: &str) -> (Option<&'static Schema>, Option<&'static Attr>) {
    if let Some(a) = rt.core.attr(key) {
        return (Some(rt.core), Some(a));
    }
    if let Some(ext) = rt.extension(key) {
        return (Some(ext), None);
    }
    if is_common_attr(key) {
        return (None, None);
    }
    (None, None)
}

#[cfg(test)]
mod tests;

//! The search document: a user's attributes as filters compare them, stored
//! beside the canonical document so that any attribute can be filtered and
//! sorted in SQL on both backends with the same results.
//!
//! Case-insensitive strings are folded here in Rust (SQL `lower()` differs
//! between SQLite and PostgreSQL beyond ASCII), dateTimes are rewritten to the
//! fixed-width UTC form whose text order is time order, and booleans become the
//! strings `"true"`/`"false"` so both backends' JSON functions return text.
//! Extension attributes sit under the extension's schema name (`EnterpriseUser`).

use super::fold::fold;
use super::resource::Doc;
use super::schema::{Attr, AttrType, ResourceType};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value};

/// An RFC 3339 instant in the stored fixed-width UTC form.
pub fn normalize_instant(s: &str) -> Option<String> {
    DateTime::parse_from_rfc3339(s.trim()).ok().map(|t| {
        t.with_timezone(&Utc)
            .to_rfc3339_opts(SecondsFormat::Micros, true)
    })
}

/// A scalar as the search document holds it (and as filters compare it).
pub fn searchable_scalar(attr: &Attr, v: &Value) -> Option<Value> {
    Some(match (attr.ty, v) {
        (AttrType::Boolean, Value::Bool(b)) => Value::String(b.to_string()),
        (AttrType::DateTime, Value::String(s)) => Value::String(normalize_instant(s)?),
        (_, Value::String(s)) if !attr.case_exact && attr.ty == AttrType::String => {
            Value::String(fold(s))
        }
        (_, Value::Null) => return None,
        (_, other) => other.clone(),
    })
}

fn element(attr: &Attr, v: &Value) -> Option<Value> {
    if !attr.is_complex() {
        return searchable_scalar(attr, v);
    }
    let obj = v.as_object()?;
    let mut out = Map::new();
    for sub in attr.sub {
        if let Some(sv) = obj.get(sub.name).and_then(|x| searchable_scalar(sub, x)) {
            out.insert(sub.name.to_string(), sv);
        }
    }
    (!out.is_empty()).then_some(Value::Object(out))
}

fn attrs_of(attrs: &[Attr], src: &Map<String, Value>, out: &mut Map<String, Value>) {
    for attr in attrs {
        let Some(v) = src.get(attr.name) else {
            continue;
        };
        let sv = if attr.multi {
            let items: Vec<Value> = v
                .as_array()
                .map(|a| a.iter().filter_map(|e| element(attr, e)).collect())
                .unwrap_or_default();
            (!items.is_empty()).then_some(Value::Array(items))
        } else {
            element(attr, v)
        };
        if let Some(sv) = sv {
            out.insert(attr.name.to_string(), sv);
        }
    }
}

/// Builds the search document of a normalized resource document.
pub fn search_doc(rt: &ResourceType, doc: &Doc) -> String {
    let mut out = Map::new();
    attrs_of(rt.core.attrs, doc, &mut out);
    for ext in rt.extensions {
        if let Some(Value::Object(src)) = doc.get(ext.id) {
            let mut inner = Map::new();
            attrs_of(ext.attrs, src, &mut inner);
            if !inner.is_empty() {
                out.insert(ext.name.to_string(), Value::Object(inner));
            }
        }
    }
    Value::Object(out).to_string()
}

/// The search document of a stored user document given as JSON.
pub fn of_user_json(doc: &Value) -> Option<String> {
    doc.as_object()
        .map(|o| search_doc(&super::schema::USER_TYPE, o))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::resource::normalize;
    use crate::scim::schema::USER_TYPE;
    use serde_json::json;

    #[test]
    fn folds_case_insensitive_strings_and_types_scalars() {
        let doc = normalize(
            &USER_TYPE,
            &json!({
                "userName": "Ann@X.example",
                "title": "Straße Chief",
                "profileUrl": "https://X.example/Ann",
                "phoneNumbers": [{"value": "+1 555", "type": "Work", "primary": true}],
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "R&D"}
            }),
        );
        let doc = match doc {
            Ok(d) => d,
            Err(e) => panic!("{e:?}"),
        };
        let s: Value = serde_json::from_str(&search_doc(&USER_TYPE, &doc)).unwrap_or_default();
        assert_eq!(s["userName"], "ann@x.example");
        assert_eq!(s["title"], fold("Straße Chief"));
        // References are case-exact.
        assert_eq!(s["profileUrl"], "https://X.example/Ann");
        assert_eq!(s["phoneNumbers"][0]["type"], "work");
        assert_eq!(s["phoneNumbers"][0]["primary"], "true");
        assert_eq!(s["EnterpriseUser"]["department"], "r&d");
    }

    #[test]
    fn instants_are_fixed_width_utc() {
        assert_eq!(
            normalize_instant("2015-10-10T14:38:21-07:00").as_deref(),
            Some("2015-10-10T21:38:21.000000Z")
        );
        assert!(normalize_instant("yesterday").is_none());
    }
}

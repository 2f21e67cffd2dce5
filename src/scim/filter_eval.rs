//! Filter semantics, evaluated in memory against a rendered resource.
//!
//! The database evaluates filters in SQL (`store::filter_sql`); this evaluator
//! is the reference those translations are tested against (a differential
//! property test), so it is written straight from the RFC and the schema:
//!
//! - a missing value compares as absent: `eq`/`co`/`sw`/`ew`/`gt`/… are false,
//!   `ne` is true, `eq null` is true, `pr` is false;
//! - a multi-valued attribute matches when any element does; with no elements
//!   it compares as absent;
//! - strings compare case-insensitively (folded) unless the schema says
//!   `caseExact`; dateTimes compare as instants; ordering is code-point order.

use super::error::ScimError;
use super::filter::{CompValue, CompareOp, Filter};
use super::fold::fold;
use super::resolve::{Owner, Resolved, resolve, resolve_in, resolve_value_path};
use super::schema::{Attr, AttrType, ResourceType};
use super::search_doc::normalize_instant;
use serde_json::Value;

/// A filter literal, typed and normalized for the attribute it is compared with.
#[derive(Debug, Clone, PartialEq)]
pub enum Lit {
    Null,
    Bool(bool),
    /// Folded for case-insensitive strings; fixed-width UTC for dateTimes.
    Text(String),
}

/// Checks a comparison against the attribute's type and normalizes the literal.
pub fn typed_literal(r: &Resolved, op: CompareOp, v: &CompValue) -> Result<Lit, ScimError> {
    let leaf = r.leaf();
    let name = r.display();
    if *v == CompValue::Null {
        return match op {
            CompareOp::Eq | CompareOp::Ne => Ok(Lit::Null),
            _ => Err(ScimError::invalid_filter(format!(
                "'{name} {} null': only eq and ne compare with null",
                op.as_str()
            ))),
        };
    }
    match leaf.ty {
        AttrType::Boolean => {
            let b = match v {
                CompValue::Bool(b) => *b,
                // Entra writes `primary eq "True"`.
                CompValue::Str(s) if s.eq_ignore_ascii_case("true") => true,
                CompValue::Str(s) if s.eq_ignore_ascii_case("false") => false,
                other => {
                    return Err(ScimError::invalid_filter(format!(
                        "'{name}' is a boolean; {} is not a boolean value",
                        describe(other)
                    )));
                }
            };
            match op {
                CompareOp::Eq | CompareOp::Ne => Ok(Lit::Bool(b)),
                _ => Err(ScimError::invalid_filter(format!(
                    "'{name}' is a boolean; only eq, ne and pr apply, not '{}'",
                    op.as_str()
                ))),
            }
        }
        AttrType::DateTime => {
            if matches!(op, CompareOp::Co | CompareOp::Sw | CompareOp::Ew) {
                return Err(ScimError::invalid_filter(format!(
                    "'{name}' is a dateTime; co, sw and ew do not apply"
                )));
            }
            match v {
                CompValue::Str(s) => normalize_instant(s).map(Lit::Text).ok_or_else(|| {
                    ScimError::invalid_filter(format!(
                        "'{name}' is a dateTime; \"{s}\" is not an RFC 3339 instant such as 2025-01-31T09:00:00Z"
                    ))
                }),
                other => Err(ScimError::invalid_filter(format!(
                    "'{name}' is a dateTime; {} is not a dateTime string",
                    describe(other)
                ))),
            }
        }
        AttrType::String | AttrType::Reference | AttrType::Binary => {
            let text = match v {
                CompValue::Str(s) => s.clone(),
                // Numeric directory values arrive unquoted (`employeeNumber eq 42`).
                CompValue::Number(n) => n.to_string(),
                other => {
                    return Err(ScimError::invalid_filter(format!(
                        "'{name}' is a string; {} is not a string value",
                        describe(other)
                    )));
                }
            };
            Ok(Lit::Text(if folds(leaf) { fold(&text) } else { text }))
        }
        AttrType::Complex | AttrType::Integer | AttrType::Decimal => Err(
            ScimError::invalid_filter(format!("'{name}' cannot be compared with a value")),
        ),
    }
}

fn describe(v: &CompValue) -> String {
    match v {
        CompValue::Null => "null".into(),
        CompValue::Bool(b) => b.to_string(),
        CompValue::Number(n) => n.to_string(),
        CompValue::Str(s) => format!("\"{s}\""),
    }
}

/// Whether comparisons on this attribute fold case.
pub fn folds(a: &Attr) -> bool {
    a.ty == AttrType::String && !a.case_exact
}

/// Does `resource` (as rendered: `id`, `meta`, extensions under their URN)
/// match `filter`? Errors are the same `invalidFilter`s the SQL translation gives.
pub fn matches(rt: &ResourceType, filter: &Filter, resource: &Value) -> Result<bool, ScimError> {
    eval(rt, filter, resource, None)
}

fn get_ci<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    let o = v.as_object()?;
    o.get(key).or_else(|| {
        o.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

fn present(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => a.iter().any(present),
        Value::Object(o) => o.values().any(present),
        _ => true,
    }
}

/// The node holding the top-level attribute.
fn top<'a>(resource: &'a Value, r: &Resolved) -> Option<&'a Value> {
    let holder = match r.owner {
        Owner::Core => Some(resource),
        Owner::Extension(s) => get_ci(resource, s.id),
    }?;
    get_ci(holder, r.attr.name).filter(|v| !v.is_null())
}

/// The values a path reaches: one per element for a multi-valued attribute
/// (an element without the sub-attribute yields `None`), one for a singular one.
fn values<'a>(resource: &'a Value, r: &Resolved) -> Vec<Option<&'a Value>> {
    let node = top(resource, r);
    let pick = |n: &'a Value| match r.sub {
        Some(s) => get_ci(n, s.name).filter(|v| !v.is_null()),
        None => Some(n),
    };
    match node {
        Some(Value::Array(items)) if r.attr.multi => items.iter().map(pick).collect(),
        Some(n) => vec![pick(n)],
        None => vec![],
    }
}

fn eval(
    rt: &ResourceType,
    f: &Filter,
    res: &Value,
    elem: Option<(Resolved, &Value)>,
) -> Result<bool, ScimError> {
    Ok(match f {
        Filter::And(a, b) => {
            // Both sides are checked even when the first is false: errors must
            // not depend on the data.
            let x = eval(rt, a, res, elem)?;
            let y = eval(rt, b, res, elem)?;
            x && y
        }
        Filter::Or(a, b) => {
            let x = eval(rt, a, res, elem)?;
            let y = eval(rt, b, res, elem)?;
            x || y
        }
        Filter::Not(a) => !eval(rt, a, res, elem)?,
        Filter::Present(p) => {
            let vals = match elem {
                Some((parent, e)) => {
                    let r = resolve_in(parent, p)?;
                    vec![r.sub.and_then(|s| get_ci(e, s.name))]
                }
                None => values(res, &resolve(rt, p)?),
            };
            vals.into_iter().flatten().any(present)
        }
        Filter::Compare(p, op, v) => {
            let (r, vals) = match elem {
                Some((parent, e)) => {
                    let r = resolve_in(parent, p)?;
                    (
                        r,
                        vec![
                            r.sub
                                .and_then(|s| get_ci(e, s.name))
                                .filter(|v| !v.is_null()),
                        ],
                    )
                }
                None => {
                    let r = resolve(rt, p)?.with_default_value()?;
                    (r, values(res, &r))
                }
            };
            let lit = typed_literal(&r, *op, v)?;
            if vals.is_empty() {
                compare(r.leaf(), None, *op, &lit)
            } else {
                vals.into_iter().any(|x| compare(r.leaf(), x, *op, &lit))
            }
        }
        Filter::ValuePath(p, inner) => {
            if elem.is_some() {
                return Err(ScimError::invalid_filter("value filters cannot be nested"));
            }
            let r = resolve_value_path(rt, p)?;
            let elements: Vec<&Value> = match top(res, &r) {
                Some(Value::Array(items)) => items.iter().collect(),
                Some(o @ Value::Object(_)) => vec![o],
                _ => vec![],
            };
            // Evaluate against an empty element too, so a bad inner filter is an
            // error whether or not there are elements.
            let probe = Value::Object(Default::default());
            eval(rt, inner, res, Some((r, &probe)))?;
            let mut any = false;
            for e in elements {
                any |= eval(rt, inner, res, Some((r, e)))?;
            }
            any
        }
    })
}

fn compare(leaf: &Attr, stored: Option<&Value>, op: CompareOp, lit: &Lit) -> bool {
    use std::cmp::Ordering;
    let Some(stored) = stored else {
        return match lit {
            Lit::Null => op == CompareOp::Eq,
            _ => op == CompareOp::Ne,
        };
    };
    let ord: Option<Ordering> = match (lit, stored) {
        (Lit::Null, _) => None,
        (Lit::Bool(b), Value::Bool(a)) => Some(a.cmp(b)),
        (Lit::Text(t), Value::String(s)) => {
            let s = match leaf.ty {
                AttrType::DateTime => match normalize_instant(s) {
                    Some(n) => n,
                    None => return op == CompareOp::Ne,
                },
                _ if folds(leaf) => fold(s),
                _ => s.clone(),
            };
            match op {
                CompareOp::Co => return s.contains(t.as_str()),
                CompareOp::Sw => return s.starts_with(t.as_str()),
                CompareOp::Ew => return s.ends_with(t.as_str()),
                _ => Some(s.as_str().cmp(t.as_str())),
            }
        }
        _ => None,
    };
    match (op, ord) {
        (CompareOp::Eq, Some(o)) => o == Ordering::Equal,
        (CompareOp::Ne, Some(o)) => o != Ordering::Equal,
        // Present but not comparable (or compared with null): not equal.
        (CompareOp::Ne, None) => true,
        (CompareOp::Gt, Some(o)) => o == Ordering::Greater,
        (CompareOp::Ge, Some(o)) => o != Ordering::Less,
        (CompareOp::Lt, Some(o)) => o == Ordering::Less,
        (CompareOp::Le, Some(o)) => o != Ordering::Greater,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::filter::parse;
    use crate::scim::schema::{GROUP_TYPE, USER_TYPE};
    use serde_json::json;

    fn user() -> Value {
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "id": "u1",
            "userName": "Ann.Lee@Example.com",
            "name": {"givenName": "Ann", "familyName": "Lee"},
            "active": true,
            "title": "Engineer",
            "emails": [
                {"value": "ann@work.example", "type": "work", "primary": true},
                {"value": "ann@home.example", "type": "home"}
            ],
            "phoneNumbers": [{"value": "+1 555 0100", "type": "mobile"}],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
                "department": "R&D", "manager": {"value": "M1"}
            },
            "meta": {"created": "2025-01-01T10:00:00.000000Z", "lastModified": "2025-02-01T10:00:00.000000Z", "resourceType": "User"}
        })
    }

    fn m(f: &str) -> Result<bool, ScimError> {
        matches(&USER_TYPE, &parse(f)?, &user())
    }

    #[test]
    fn the_grammar_on_a_full_user() {
        for (f, want) in [
            (r#"userName eq "ann.lee@example.COM""#, true),
            (r#"title co "GIN""#, true),
            (r#"title sw "eng" and not (title ew "x")"#, true),
            (r#"emails[type eq "work" and value co "@work"]"#, true),
            (r#"emails[type eq "home" and primary eq true]"#, false),
            (r#"emails.type eq "HOME""#, true),
            (r#"emails eq "ann@home.example""#, true),
            (r#"phoneNumbers[type eq "mobile"].value sw "+1""#, true),
            (r#"addresses.locality ne "x""#, true),
            (r#"addresses pr"#, false),
            (r#"nickName eq null"#, true),
            (r#"title ne null"#, true),
            (r#"meta.created lt "2025-01-01T11:30:00+01:00""#, true),
            (r#"meta.created gt "2025-01-01T09:59:59Z""#, true),
            (
                r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "r&d""#,
                true,
            ),
            (r#"manager eq "m1""#, true),
            (r#"active eq "False" or id eq "u1""#, true),
            (r#"name[givenName eq "ann" and familyName eq "lee"]"#, true),
            (r#"not(active eq true)"#, false),
        ] {
            assert_eq!(m(f).ok(), Some(want), "{f}");
        }
    }

    #[test]
    fn type_errors_do_not_depend_on_data() {
        for f in [
            r#"active gt true"#,
            r#"title eq true"#,
            r#"meta.created eq "yesterday""#,
            r#"meta.created co "2025""#,
            r#"addresses[bogus eq "x"]"#,
            r#"title gt null"#,
            r#"name eq "x""#,
            r#"title[value eq "x"]"#,
        ] {
            assert!(m(f).is_err_and(|e| e.status == 400), "{f}");
        }
    }

    #[test]
    fn groups_members() {
        let g =
            json!({"id": "g", "displayName": "Eng", "members": [{"value": "u1", "type": "User"}]});
        let f = parse(r#"members[value eq "u1" and type eq "user"]"#);
        assert!(f.is_ok_and(|f| matches(&GROUP_TYPE, &f, &g).is_ok_and(|b| b)));
    }
}

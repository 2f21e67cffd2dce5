//! Filtered value paths (`emails[type eq "work"].value`): replace, add with
//! upsert, and remove of the elements a filter selects.

use super::*;

pub(super) fn apply_filtered(
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
pub(super) fn retain_unmarked(items: &mut Vec<Value>, hits: &[usize]) {
    let mut hits = hits.iter().peekable();
    let mut idx = 0;
    items.retain(|_| {
        let hit = hits.next_if(|h| **h == idx).is_some();
        idx += 1;
        !hit
    });
}

/// Whether the filter constrains sub-attribute `name`.
pub(super) fn filter_names(f: &Filter, name: &str) -> bool {
    match f {
        Filter::And(a, b) | Filter::Or(a, b) => filter_names(a, name) || filter_names(b, name),
        Filter::Not(a) => filter_names(a, name),
        Filter::Compare(p, ..) | Filter::Present(p) => p.name.eq_ignore_ascii_case(name),
        Filter::ValuePath(_, inner) => filter_names(inner, name),
    }
}

/// `type eq "work"` (or an `and` of such terms) → `{"type": "work"}`.
pub(super) fn element_from_filter(f: &Filter) -> Option<Map<String, Value>> {
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

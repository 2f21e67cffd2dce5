//! Subset matcher.

use super::*;

pub(crate) fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

pub(crate) fn truncate_chars(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut cut = max;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}… ({} bytes total)", &text[..cut], text.len())
}

pub(crate) fn describe(value: Option<&Value>) -> String {
    match value {
        None => "<missing>".to_string(),
        Some(v) => truncate_chars(&v.to_string(), 300),
    }
}

/// Deep equality that compares numbers numerically (1 == 1.0).
pub(crate) fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            if let (Some(i), Some(j)) = (x.as_i64(), y.as_i64()) {
                i == j
            } else if let (Some(i), Some(j)) = (x.as_u64(), y.as_u64()) {
                i == j
            } else {
                x.as_f64() == y.as_f64()
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_equal(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|other| json_equal(v, other)))
        }
        _ => a == b,
    }
}

/// Equality used by `$ne:`: additionally a string equals a non-string scalar with the same text.
pub(crate) fn loose_equal(actual: &Value, expected: &Value) -> bool {
    if json_equal(actual, expected) {
        return true;
    }
    match (actual, expected) {
        (Value::String(s), other) | (other, Value::String(s))
            if !other.is_array() && !other.is_object() && !other.is_string() =>
        {
            let text = other.to_string();
            *s == text
        }
        _ => false,
    }
}

pub(crate) fn is_empty_value(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.is_empty(),
        Some(Value::Array(a)) => a.is_empty(),
        Some(Value::Object(o)) => o.is_empty(),
        Some(_) => false,
    }
}

/// JSON-path-like location used in mismatch messages: `$.name.givenName`, `$.emails[0]`,
/// `$["urn:...:User"].employeeNumber`.
pub(crate) fn child_path(parent: &str, key: &str) -> String {
    let simple = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$');
    if simple {
        format!("{parent}.{key}")
    } else {
        format!("{parent}[{}]", Value::String(key.to_string()))
    }
}

/// Applies a matcher string. `None` when `matcher` is not a recognized matcher (then the caller
/// compares it literally). `Err` holds what was expected.
pub(crate) fn apply_matcher(
    matcher: &str,
    actual: Option<&Value>,
    vars: &Vars,
) -> Option<Result<(), String>> {
    let present = actual.filter(|v| !v.is_null());
    let check = |ok: bool, expected: &str| {
        if ok {
            Ok(())
        } else {
            Err(expected.to_string())
        }
    };
    if let Some(operand) = matcher.strip_prefix("$ne:") {
        let unwanted = match expand_json_string(operand, vars) {
            Ok(v) => v,
            Err(e) => return Some(Err(format!("expectation error in `{matcher}`: {e}"))),
        };
        return Some(match actual {
            None => Err(format!(
                "a value not equal to {unwanted} ($ne), but the key is missing"
            )),
            Some(a) if loose_equal(a, &unwanted) => {
                Err(format!("a value not equal to {unwanted} ($ne)"))
            }
            Some(_) => Ok(()),
        });
    }
    if let Some(operand) = matcher.strip_prefix("$contains:") {
        let needle = match expand_str(operand, vars) {
            Ok(v) => v,
            Err(e) => return Some(Err(format!("expectation error in `{matcher}`: {e}"))),
        };
        return Some(match actual {
            Some(Value::String(s)) if s.contains(&needle) => Ok(()),
            _ => Err(format!("a string containing {}", Value::String(needle))),
        });
    }
    Some(match matcher {
        "$present" => check(present.is_some(), "a present, non-null value ($present)"),
        "$absent" => check(present.is_none(), "missing or null ($absent)"),
        "$int" => check(
            actual.is_some_and(|v| v.is_i64() || v.is_u64()),
            "an integer ($int)",
        ),
        "$number" => check(actual.is_some_and(Value::is_number), "a number ($number)"),
        "$string" => check(actual.is_some_and(Value::is_string), "a string ($string)"),
        "$array" => check(actual.is_some_and(Value::is_array), "an array ($array)"),
        "$nonempty" => check(
            matches!(
                actual,
                Some(Value::String(_) | Value::Array(_) | Value::Object(_))
            ) && !is_empty_value(actual),
            "a non-empty string, array or object ($nonempty)",
        ),
        "$empty" => check(
            is_empty_value(actual),
            "missing, null, [], {} or \"\" ($empty)",
        ),
        "$cleared" => {
            let cleared_object = match actual {
                Some(Value::Object(o)) => match o.get("value") {
                    None | Some(Value::Null) => true,
                    Some(Value::String(s)) => s.is_empty(),
                    Some(_) => false,
                },
                _ => false,
            };
            check(
                is_empty_value(actual) || cleared_object,
                "missing, null, [], {}, \"\" or an object whose value is \"\"/null ($cleared)",
            )
        }
        _ => return None,
    })
}

pub(crate) fn is_array_matcher(map: &Map<String, Value>) -> bool {
    !map.is_empty()
        && map
            .keys()
            .all(|key| ARRAY_MATCHER_KEYS.contains(&key.as_str()))
}

/// Recursive subset match of `expected` against the whole response body. Returns every mismatch,
/// each starting with its location (`$` = body root).
pub(crate) fn match_subset(expected: &Value, actual: &Value, vars: &Vars) -> Vec<String> {
    let mut out = Vec::new();
    match_at(expected, Some(actual), vars, "$", &mut out);
    out
}

pub(crate) fn matches_element(
    expected: &Value,
    actual: &Value,
    vars: &Vars,
    path: &str,
) -> Vec<String> {
    let mut out = Vec::new();
    match_at(expected, Some(actual), vars, path, &mut out);
    out
}

/// Every expected element must subset-match at least one actual element (order-insensitive).
pub(crate) fn match_contains(
    expected_items: &[Value],
    actual_items: &[Value],
    vars: &Vars,
    path: &str,
    label: &str,
    out: &mut Vec<String>,
) {
    for (ei, expected) in expected_items.iter().enumerate() {
        let mut candidates = Vec::new();
        let mut found = false;
        for (ai, actual) in actual_items.iter().enumerate() {
            let reasons = matches_element(expected, actual, vars, &format!("{path}[{ai}]"));
            if reasons.is_empty() {
                found = true;
                break;
            }
            if candidates.len() < 3 {
                candidates.push(reasons.join("; "));
            }
        }
        if !found {
            let shown = expand_value(expected, vars).unwrap_or_else(|_| expected.clone());
            let mut msg = format!(
                "{path}: no element matches {label}[{ei}] {} (array has {} elements)",
                describe(Some(&shown)),
                actual_items.len()
            );
            for candidate in candidates {
                let _ = write!(msg, "\n        candidate: {candidate}");
            }
            out.push(msg);
        }
    }
}

pub(crate) fn match_array_matcher(
    spec: &Map<String, Value>,
    actual: Option<&Value>,
    vars: &Vars,
    path: &str,
    out: &mut Vec<String>,
) {
    let Some(Value::Array(items)) = actual else {
        out.push(format!(
            "{path}: expected an array (for {}), got {}",
            spec.keys().cloned().collect::<Vec<_>>().join("/"),
            describe(actual)
        ));
        return;
    };
    if let Some(len) = spec.get("$len") {
        match expand_value(len, vars).map(|v| v.as_u64()) {
            Ok(Some(n)) => {
                if items.len() as u64 != n {
                    out.push(format!(
                        "{path}: expected $len {n}, got {} elements: {}",
                        items.len(),
                        describe(actual)
                    ));
                }
            }
            Ok(None) => out.push(format!(
                "{path}: expectation error: $len must be a non-negative integer, got {len}"
            )),
            Err(e) => out.push(format!("{path}: expectation error in $len: {e}")),
        }
    }
    if let Some(contains) = spec.get("$contains") {
        match contains {
            Value::Array(expected) => match_contains(expected, items, vars, path, "$contains", out),
            other => out.push(format!(
                "{path}: expectation error: $contains must be an array, got {other}"
            )),
        }
    }
    if let Some(excludes) = spec.get("$excludes") {
        match excludes {
            Value::Array(expected) => {
                for (ei, excluded) in expected.iter().enumerate() {
                    for (ai, actual_item) in items.iter().enumerate() {
                        if matches_element(excluded, actual_item, vars, path).is_empty() {
                            let shown =
                                expand_value(excluded, vars).unwrap_or_else(|_| excluded.clone());
                            out.push(format!(
                                "{path}[{ai}]: element {} matches $excludes[{ei}] {}",
                                describe(Some(actual_item)),
                                describe(Some(&shown))
                            ));
                        }
                    }
                }
            }
            other => out.push(format!(
                "{path}: expectation error: $excludes must be an array, got {other}"
            )),
        }
    }
}

pub(crate) fn match_at(
    expected: &Value,
    actual: Option<&Value>,
    vars: &Vars,
    path: &str,
    out: &mut Vec<String>,
) {
    match expected {
        Value::String(s) => {
            if s.starts_with('$')
                && let Some(result) = apply_matcher(s, actual, vars)
            {
                if let Err(wanted) = result {
                    out.push(format!(
                        "{path}: expected {wanted}, got {}",
                        describe(actual)
                    ));
                }
                return;
            }
            let wanted = match expand_json_string(s, vars) {
                Ok(v) => v,
                Err(e) => {
                    out.push(format!("{path}: expectation error: {e}"));
                    return;
                }
            };
            let ok = match actual {
                None => wanted.is_null(),
                Some(a) => json_equal(a, &wanted),
            };
            if !ok {
                let hint = if s.starts_with('$') {
                    " (note: the expectation starts with '$' but is not a known matcher; compared literally)"
                } else {
                    ""
                };
                out.push(format!(
                    "{path}: expected {}, got {}{hint}",
                    describe(Some(&wanted)),
                    describe(actual)
                ));
            }
        }
        Value::Object(spec) if is_array_matcher(spec) => {
            match_array_matcher(spec, actual, vars, path, out);
        }
        Value::Object(spec) => {
            let Some(Value::Object(actual_map)) = actual else {
                out.push(format!(
                    "{path}: expected an object, got {}",
                    describe(actual)
                ));
                return;
            };
            for (key, expected_child) in spec {
                let key = match expand_str(key, vars) {
                    Ok(k) => k,
                    Err(e) => {
                        out.push(format!("{path}: expectation error in key `{key}`: {e}"));
                        continue;
                    }
                };
                match_at(
                    expected_child,
                    actual_map.get(&key),
                    vars,
                    &child_path(path, &key),
                    out,
                );
            }
        }
        Value::Array(expected_items) => {
            let Some(Value::Array(actual_items)) = actual else {
                out.push(format!(
                    "{path}: expected an array, got {}",
                    describe(actual)
                ));
                return;
            };
            match_contains(expected_items, actual_items, vars, path, "expected", out);
        }
        Value::Null => {
            if !matches!(actual, None | Some(Value::Null)) {
                out.push(format!(
                    "{path}: expected null or missing, got {}",
                    describe(actual)
                ));
            }
        }
        scalar => {
            if !actual.is_some_and(|a| json_equal(a, scalar)) {
                out.push(format!(
                    "{path}: expected {scalar}, got {}",
                    describe(actual)
                ));
            }
        }
    }
}

/// `expect_headers_subset`: header names case-insensitive; values exact or `$contains:<s>`.
/// When a header occurs several times, any occurrence may satisfy the expectation.
pub(crate) fn match_headers(
    expected: &Map<String, Value>,
    actual: &[(String, String)],
    vars: &Vars,
) -> Vec<String> {
    let mut out = Vec::new();
    for (name, want) in expected {
        let values: Vec<&str> = actual
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect();
        let Some(want) = want.as_str() else {
            out.push(format!(
                "header {name}: expectation must be a string, got {want}"
            ));
            continue;
        };
        let (needle, contains) = match want.strip_prefix("$contains:") {
            Some(rest) => (rest, true),
            None => (want, false),
        };
        let needle = match expand_str(needle, vars) {
            Ok(n) => n,
            Err(e) => {
                out.push(format!("header {name}: expectation error: {e}"));
                continue;
            }
        };
        let ok = values.iter().any(|v| {
            if contains {
                v.contains(&needle)
            } else {
                *v == needle
            }
        });
        if !ok {
            let what = if contains { "containing" } else { "equal to" };
            let got = if values.is_empty() {
                "<missing>".to_string()
            } else {
                values.join(" | ")
            };
            out.push(format!(
                "header {name}: expected a value {what} {needle:?}, got {got}"
            ));
        }
    }
    out
}

//! Placeholders.

use super::*;

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Transform {
    Identity,
    Upper,
    Lower,
}

/// Parses the text between `{{` and `}}` into a transform and a variable name.
pub(crate) fn parse_placeholder(inner: &str) -> Result<(Transform, &str), String> {
    let trimmed = inner.trim();
    let (transform, name) = match trimmed.split_once(':') {
        Some(("upper", name)) => (Transform::Upper, name.trim()),
        Some(("lower", name)) => (Transform::Lower, name.trim()),
        Some((other, _)) => {
            return Err(format!(
                "unknown placeholder transform `{other}` in `{{{{{trimmed}}}}}` (known: upper, lower)"
            ));
        }
        None => (Transform::Identity, trimmed),
    };
    if name.is_empty() {
        return Err(format!(
            "empty variable name in placeholder `{{{{{trimmed}}}}}`"
        ));
    }
    Ok((transform, name))
}

pub(crate) fn lookup_var<'v>(vars: &'v Vars, name: &str) -> Result<&'v Value, String> {
    vars.get(name).ok_or_else(|| {
        let mut known: Vec<&str> = vars.keys().map(String::as_str).collect();
        known.sort_unstable();
        format!(
            "undefined variable `{name}` (defined: {})",
            known.join(", ")
        )
    })
}

/// Text used when a value is interpolated into a larger string: strings verbatim (no quotes),
/// everything else as compact JSON.
pub(crate) fn interpolation_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

pub(crate) fn apply_transform(transform: Transform, text: String) -> String {
    match transform {
        Transform::Identity => text,
        Transform::Upper => text.to_uppercase(),
        Transform::Lower => text.to_lowercase(),
    }
}

/// String interpolation of every `{{...}}` in `template`. An unterminated `{{` is kept literally.
pub(crate) fn expand_str(template: &str, vars: &Vars) -> Result<String, String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        let after_open = &rest[open + 2..];
        let Some(close) = after_open.find("}}") else {
            break;
        };
        out.push_str(&rest[..open]);
        let (transform, name) = parse_placeholder(&after_open[..close])?;
        let value = lookup_var(vars, name)?;
        out.push_str(&apply_transform(transform, interpolation_text(value)));
        rest = &after_open[close + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Like [`expand_str`], but a placeholder naming an undefined variable is left as literal text.
/// Used for `body_raw` only (a literal string that may still want e.g. `{{user_id}}`).
pub(crate) fn expand_str_lenient(template: &str, vars: &Vars) -> Result<String, String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        let after_open = &rest[open + 2..];
        let Some(close) = after_open.find("}}") else {
            break;
        };
        out.push_str(&rest[..open]);
        let inner = &after_open[..close];
        match parse_placeholder(inner) {
            Ok((transform, name)) if vars.contains_key(name) => {
                let value = lookup_var(vars, name)?;
                out.push_str(&apply_transform(transform, interpolation_text(value)));
            }
            _ => {
                out.push_str("{{");
                out.push_str(inner);
                out.push_str("}}");
            }
        }
        rest = &after_open[close + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// `Some(inner)` when the whole string is exactly one placeholder.
pub(crate) fn whole_placeholder(s: &str) -> Option<&str> {
    let inner = s.strip_prefix("{{")?.strip_suffix("}}")?;
    if inner.contains("{{") || inner.contains("}}") {
        None
    } else {
        Some(inner)
    }
}

/// Expands one JSON string. A string that is solely one placeholder whose variable holds a
/// non-string value becomes that raw value (transforms do not apply to non-strings).
pub(crate) fn expand_json_string(s: &str, vars: &Vars) -> Result<Value, String> {
    if let Some(inner) = whole_placeholder(s) {
        let (_, name) = parse_placeholder(inner)?;
        let value = lookup_var(vars, name)?;
        if !value.is_string() {
            return Ok(value.clone());
        }
    }
    expand_str(s, vars).map(Value::String)
}

/// Recursively expands placeholders in strings and object keys.
pub(crate) fn expand_value(value: &Value, vars: &Vars) -> Result<Value, String> {
    Ok(match value {
        Value::String(s) => expand_json_string(s, vars)?,
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|item| expand_value(item, vars))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => {
            let mut out = Map::with_capacity(map.len());
            for (key, item) in map {
                out.insert(expand_str(key, vars)?, expand_value(item, vars)?);
            }
            Value::Object(out)
        }
        other => other.clone(),
    })
}

/// Every variable name referenced by a placeholder anywhere in `value` (keys included).
pub(crate) fn placeholder_names(value: &Value, out: &mut Vec<String>) {
    fn scan(s: &str, out: &mut Vec<String>) {
        let mut rest = s;
        while let Some(open) = rest.find("{{") {
            let after_open = &rest[open + 2..];
            let Some(close) = after_open.find("}}") else {
                return;
            };
            let inner = after_open[..close].trim();
            let name = inner.split_once(':').map_or(inner, |(_, n)| n.trim());
            out.push(name.to_string());
            rest = &after_open[close + 2..];
        }
    }
    match value {
        Value::String(s) => scan(s, out),
        Value::Array(items) => items.iter().for_each(|item| placeholder_names(item, out)),
        Value::Object(map) => {
            for (key, item) in map {
                scan(key, out);
                placeholder_names(item, out);
            }
        }
        _ => {}
    }
}

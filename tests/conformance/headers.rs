//! Headers.

use super::*;

pub(crate) fn header_value_text(name: &str, value: &Value, vars: &Vars) -> Result<String, String> {
    let text = match value {
        Value::String(s) => expand_str(s, vars)?,
        Value::Number(_) | Value::Bool(_) => value.to_string(),
        other => return Err(format!("header `{name}`: unsupported value {other}")),
    };
    if text.contains(['\r', '\n']) || name.contains(['\r', '\n', ':', ' ']) || name.is_empty() {
        return Err(format!("header `{name}`: invalid name or value {text:?}"));
    }
    Ok(text)
}

/// Effective headers = defaults overlaid with the step's headers. Names compare
/// case-insensitively; an overriding header keeps the default's position and takes the step's
/// spelling; `null` removes. `Content-Type: application/scim+json` is appended when the step has
/// a body and neither layer mentions Content-Type (an explicit `null` counts as mentioning it,
/// i.e. it deliberately sends no Content-Type).
pub(crate) fn effective_headers(
    defaults: Option<&Map<String, Value>>,
    overlay: Option<&Map<String, Value>>,
    has_body: bool,
    vars: &Vars,
) -> Result<Vec<(String, String)>, String> {
    let mut headers: Vec<(String, String)> = Vec::new();
    let mut content_type_mentioned = false;
    for layer in [defaults, overlay].into_iter().flatten() {
        for (name, value) in layer {
            if name.eq_ignore_ascii_case("content-type") {
                content_type_mentioned = true;
            }
            let existing = headers
                .iter()
                .position(|(n, _)| n.eq_ignore_ascii_case(name));
            if value.is_null() {
                if let Some(index) = existing {
                    headers.remove(index);
                }
                continue;
            }
            let text = header_value_text(name, value, vars)?;
            match existing {
                Some(index) => headers[index] = (name.clone(), text),
                None => headers.push((name.clone(), text)),
            }
        }
    }
    if has_body && !content_type_mentioned {
        headers.push(("Content-Type".to_string(), DEFAULT_CONTENT_TYPE.to_string()));
    }
    Ok(headers)
}

//! Dot-path capture.

use super::*;

/// Resolves a capture path such as `Resources.0.id` or
/// `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User.manager.value`.
///
/// Inside an object the longest existing key that equals the remaining path or is followed by a
/// `.` is taken as one segment, so URN keys (which contain dots, e.g. `2.0`) are single segments.
/// Inside an array the segment must be a decimal index. A missing key, an out-of-range index or a
/// `null` result is an error.
pub(crate) fn resolve_path<'a>(root: &'a Value, path: &str) -> Result<&'a Value, String> {
    if path.is_empty() {
        return Err("empty capture path".to_string());
    }
    let mut current = root;
    let mut rest = path;
    let mut walked = String::new();
    loop {
        let segment_len = match current {
            Value::Object(map) => {
                let key = map
                    .keys()
                    .filter(|key| {
                        rest == key.as_str()
                            || (rest.starts_with(key.as_str())
                                && rest.as_bytes().get(key.len()) == Some(&b'.'))
                    })
                    .max_by_key(|key| key.len());
                let Some(key) = key else {
                    let mut keys: Vec<&str> = map.keys().map(String::as_str).collect();
                    keys.truncate(20);
                    return Err(format!(
                        "capture path `{path}`: no key matching `{rest}` at `{}` (keys there: {})",
                        display_walked(&walked),
                        keys.join(", ")
                    ));
                };
                match map.get(key) {
                    Some(next) => current = next,
                    None => return Err(format!("capture path `{path}`: key `{key}` vanished")),
                }
                key.len()
            }
            Value::Array(items) => {
                let segment = rest.split('.').next().unwrap_or(rest);
                let index: usize = segment.parse().map_err(|_| {
                    format!(
                        "capture path `{path}`: `{}` is an array, segment `{segment}` is not an index",
                        display_walked(&walked)
                    )
                })?;
                current = items.get(index).ok_or_else(|| {
                    format!(
                        "capture path `{path}`: index {index} out of range at `{}` (array has {} elements)",
                        display_walked(&walked),
                        items.len()
                    )
                })?;
                segment.len()
            }
            other => {
                return Err(format!(
                    "capture path `{path}`: cannot descend into {} at `{}` (remaining `{rest}`)",
                    json_type(other),
                    display_walked(&walked)
                ));
            }
        };
        if !walked.is_empty() {
            walked.push('.');
        }
        walked.push_str(&rest[..segment_len]);
        rest = &rest[segment_len..];
        if rest.is_empty() {
            break;
        }
        rest = &rest[1..]; // the '.' separator
        if rest.is_empty() {
            return Err(format!("capture path `{path}` ends with a '.'"));
        }
    }
    if current.is_null() {
        return Err(format!("capture path `{path}` resolved to null"));
    }
    Ok(current)
}

pub(crate) fn display_walked(walked: &str) -> &str {
    if walked.is_empty() { "<root>" } else { walked }
}

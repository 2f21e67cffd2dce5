//! List and search parameters (RFC 7644 §3.4.2), shared by `GET` lists and `POST /.search`.

use super::error::ScimError;
use super::filter::{self, Filter};
use super::resource::Projection;
use serde_json::{Value, json};

pub const LIST_URN: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
pub const SEARCH_URN: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";
pub const DEFAULT_COUNT: i64 = 100;
/// Advertised as `filter.maxResults`.
pub const MAX_COUNT: i64 = 1000;

#[derive(Debug, Clone)]
pub struct ListParams {
    pub filter: Option<Filter>,
    /// 1-based, ≥ 1.
    pub start_index: i64,
    /// 0 ≤ count ≤ MAX_COUNT.
    pub count: i64,
    pub projection: Projection,
}

fn parse_int(name: &str, raw: &str) -> Result<i64, ScimError> {
    let t = raw.trim();
    t.parse::<i64>().or_else(|_| {
        // A huge number is clamped like any other large value, not refused.
        let digits = t.strip_prefix('-').unwrap_or(t);
        if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            Ok(if t.starts_with('-') {
                i64::MIN
            } else {
                i64::MAX
            })
        } else {
            Err(ScimError::invalid_value(format!(
                "'{name}' must be an integer, got '{raw}'"
            )))
        }
    })
}

fn build(
    filter: Option<&str>,
    start: Option<i64>,
    count: Option<i64>,
    attributes: Option<&str>,
    excluded: Option<&str>,
) -> Result<ListParams, ScimError> {
    let filter = match filter.map(str::trim) {
        Some(f) if !f.is_empty() => Some(filter::parse(f)?),
        _ => None,
    };
    Ok(ListParams {
        filter,
        // RFC 7644 §3.4.2.4: a startIndex below 1 is read as 1, a negative count as 0.
        start_index: start.unwrap_or(1).max(1),
        count: count.unwrap_or(DEFAULT_COUNT).clamp(0, MAX_COUNT),
        projection: Projection::parse(attributes, excluded),
    })
}

/// Reads list parameters from a query string. Parameter names are matched
/// case-insensitively; unknown ones (Entra's `aadOptscim062020`) are ignored.
pub fn from_query(query: &str) -> Result<ListParams, ScimError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query)
        .map_err(|e| ScimError::invalid_syntax(format!("query string is not valid: {e}")))?;
    let get = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    build(
        get("filter"),
        get("startIndex")
            .map(|v| parse_int("startIndex", v))
            .transpose()?,
        get("count").map(|v| parse_int("count", v)).transpose()?,
        get("attributes"),
        get("excludedAttributes"),
    )
}

/// Reads projection-only parameters (GET by id, POST/PUT/PATCH responses).
pub fn projection_from_query(query: &str) -> Result<Projection, ScimError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query)
        .map_err(|e| ScimError::invalid_syntax(format!("query string is not valid: {e}")))?;
    let get = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    Ok(Projection::parse(
        get("attributes"),
        get("excludedAttributes"),
    ))
}

/// Reads a `SearchRequest` body (`POST …/.search`).
pub fn from_search_body(body: &Value) -> Result<ListParams, ScimError> {
    let obj = body
        .as_object()
        .ok_or_else(|| ScimError::invalid_syntax("a SearchRequest must be a JSON object"))?;
    let get = |name: &str| super::resource::get_ci(obj, name);
    let string = |name: &str| -> Result<Option<String>, ScimError> {
        match get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Array(a)) => Ok(Some(
                a.iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(","),
            )),
            Some(other) => Err(ScimError::invalid_value(format!(
                "'{name}' must be a string or a list, got {other}"
            ))),
        }
    };
    let int = |name: &str| -> Result<Option<i64>, ScimError> {
        match get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n
                .as_i64()
                .map(Some)
                .ok_or_else(|| ScimError::invalid_value(format!("'{name}' must be an integer"))),
            Some(Value::String(s)) => parse_int(name, s).map(Some),
            Some(other) => Err(ScimError::invalid_value(format!(
                "'{name}' must be an integer, got {other}"
            ))),
        }
    };
    build(
        string("filter")?.as_deref(),
        int("startIndex")?,
        int("count")?,
        string("attributes")?.as_deref(),
        string("excludedAttributes")?.as_deref(),
    )
}

pub fn list_response(total: i64, start_index: i64, resources: Vec<Value>) -> Value {
    json!({
        "schemas": [LIST_URN],
        "totalResults": total,
        "startIndex": start_index,
        "itemsPerPage": resources.len(),
        "Resources": resources,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn okta_plus_and_pct20_encodings_and_defaults() {
        for q in [
            "filter=userName+eq+%22jane.doe%40example.com%22&startIndex=1&count=100",
            "filter=userName%20eq%20%22jane.doe%40example.com%22&startIndex=1&count=100",
            "filter=userName+eq+\"jane.doe@example.com\"&startIndex=1&count=100",
            "FILTER=userName eq \"jane.doe@example.com\"&aadOptscim062020",
        ] {
            let p = match from_query(q) {
                Ok(p) => p,
                Err(e) => panic!("{q}: {e:?}"),
            };
            assert!(p.filter.is_some(), "{q}");
            assert_eq!(p.start_index, 1);
            assert_eq!(p.count, 100);
        }
        let p = from_query("startIndex=0&count=-5");
        assert!(p.is_ok_and(|p| p.start_index == 1 && p.count == 0));
        let p = from_query("count=99999999999999999999&startIndex=-99999999999999999999");
        assert!(p.is_ok_and(|p| p.count == MAX_COUNT && p.start_index == 1));
        let p = from_query("count=5000");
        assert!(p.is_ok_and(|p| p.count == MAX_COUNT));
        assert!(
            from_query("count=abc").is_err_and(|e| e.detail.contains("'count' must be an integer"))
        );
        assert!(from_query("filter=userName+garbage").is_err_and(|e| e.status == 400));
    }

    #[test]
    fn search_body() {
        let p = from_search_body(
            &json!({"schemas": [SEARCH_URN], "filter": "userName sw \"a\"", "startIndex": 2, "count": 10, "attributes": ["userName", "emails"]}),
        );
        assert!(p.is_ok_and(|p| p.start_index == 2
            && p.count == 10
            && p.projection.attributes.len() == 2));
        assert!(from_search_body(&json!({"count": true})).is_err());
    }

    #[test]
    fn list_response_counters_are_integers() {
        let r = list_response(3, 1, vec![json!({}), json!({})]);
        assert_eq!(r["totalResults"], 3);
        assert_eq!(r["itemsPerPage"], 2);
        assert_eq!(r["startIndex"], 1);
    }
}

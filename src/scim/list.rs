//! List and search parameters (RFC 7644 §3.4.2), shared by `GET` lists and `POST /.search`.

use super::error::{ScimError, ScimType};
use super::filter::{self, AttrPath, CompareOp, Filter};
use super::resource::Projection;
use serde_json::{Value, json};

pub const LIST_URN: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
pub const SEARCH_URN: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";
pub const DEFAULT_COUNT: i64 = 100;
/// Advertised as `filter.maxResults`.
pub const MAX_COUNT: i64 = 1000;

#[derive(Debug, Clone)]
pub struct Sort {
    pub by: AttrPath,
    pub descending: bool,
}

/// How a list is paged: by 1-based index (RFC 7644) or by cursor (RFC 9865).
#[derive(Debug, Clone, PartialEq)]
pub enum Paging {
    /// 1-based, ≥ 1.
    Index(i64),
    /// `None`: the first page (an empty `cursor` parameter).
    Cursor(Option<String>),
}

#[derive(Debug, Clone)]
pub struct ListParams {
    pub filter: Option<Filter>,
    pub sort: Option<Sort>,
    pub paging: Paging,
    /// 0 ≤ count ≤ MAX_COUNT.
    pub count: i64,
    pub projection: Projection,
    /// The filter and sort as sent, to bind cursors to their query.
    query: String,
}

impl ListParams {
    /// An IdP's lookup of a user by an identifier, first page, default order:
    /// `userName`, `externalId` or `id` eq a value (at most one row, from a
    /// unique index), or a work or any email eq a value (from the email
    /// index; one row in practice, and at most `count`, here ≤ 100). Its cost
    /// does not grow with the tenant, so the HTTP layer may answer it without
    /// handing the request to another thread.
    pub fn is_point_lookup(&self) -> bool {
        let first_page = matches!(self.paging, Paging::Index(1) | Paging::Cursor(None));
        let core = |p: &AttrPath| {
            p.urn
                .as_deref()
                .is_none_or(|u| u.eq_ignore_ascii_case(super::schema::USER_URN))
        };
        let named = |p: &AttrPath, name: &str| core(p) && p.name.eq_ignore_ascii_case(name);
        let eq_on = |f: &Filter, name: &str| matches!(f, Filter::Compare(p, CompareOp::Eq, _) if named(p, name) && p.sub.is_none());
        let email = match &self.filter {
            // emails.value eq "x"
            Some(Filter::Compare(p, CompareOp::Eq, _)) => {
                named(p, "emails")
                    && p.sub
                        .as_deref()
                        .is_some_and(|s| s.eq_ignore_ascii_case("value"))
            }
            // emails[value eq "x"], emails[type eq "work"].value eq "x" (Entra)
            Some(Filter::ValuePath(p, inner)) if named(p, "emails") => match inner.as_ref() {
                f if eq_on(f, "value") => true,
                Filter::And(a, b) => {
                    (eq_on(a, "value") && eq_on(b, "type"))
                        || (eq_on(a, "type") && eq_on(b, "value"))
                }
                _ => false,
            },
            _ => false,
        };
        let unique = self
            .filter
            .as_ref()
            .is_some_and(|f| ["userName", "externalId", "id"].iter().any(|n| eq_on(f, n)));
        first_page && self.sort.is_none() && (unique || (email && self.count <= 100))
    }

    /// The 1-based start index (1 in cursor mode).
    pub fn start_index(&self) -> i64 {
        match self.paging {
            Paging::Index(i) => i,
            Paging::Cursor(_) => 1,
        }
    }

    /// Identifies this query for cursors issued for resource type `rt`.
    pub fn fingerprint(&self, rt: &str) -> String {
        super::cursor::fingerprint(&[rt, &self.query])
    }
}

pub(crate) struct Raw<'a> {
    pub filter: Option<&'a str>,
    pub start: Option<i64>,
    pub cursor: Option<&'a str>,
    pub count: Option<i64>,
    pub sort_by: Option<&'a str>,
    pub sort_order: Option<&'a str>,
    pub attributes: Option<&'a str>,
    pub excluded: Option<&'a str>,
}

pub(crate) fn parse_int(name: &str, raw: &str) -> Result<i64, ScimError> {
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

pub(crate) fn build(raw: Raw<'_>) -> Result<ListParams, ScimError> {
    let filter = match raw.filter.map(str::trim) {
        Some(f) if !f.is_empty() => Some(filter::parse(f)?),
        _ => None,
    };
    let sort = match raw.sort_by.map(str::trim) {
        Some(s) if !s.is_empty() => Some(Sort {
            by: AttrPath::parse(s).map_err(|e| ScimError::invalid_value(format!("sortBy: {e}")))?,
            descending: match raw.sort_order.map(str::trim) {
                None | Some("") => false,
                Some(o) if o.eq_ignore_ascii_case("ascending") => false,
                Some(o) if o.eq_ignore_ascii_case("descending") => true,
                Some(o) => {
                    return Err(ScimError::invalid_value(format!(
                        "sortOrder must be 'ascending' or 'descending', got '{o}'"
                    )));
                }
            },
        }),
        _ => None,
    };
    let paging = match (raw.cursor, raw.start) {
        (Some(_), Some(_)) => {
            return Err(ScimError::invalid_value(
                "use either 'cursor' (RFC 9865) or 'startIndex' paging, not both",
            ));
        }
        (Some(c), None) if c.trim().is_empty() => Paging::Cursor(None),
        (Some(c), None) => Paging::Cursor(Some(c.trim().to_string())),
        // RFC 7644 §3.4.2.4: a startIndex below 1 is read as 1.
        (None, s) => Paging::Index(s.unwrap_or(1).max(1)),
    };
    let count = match (&paging, raw.count) {
        // RFC 9865 §3: a cursor page size above the maximum is refused, not clamped.
        (Paging::Cursor(_), Some(n)) if n > MAX_COUNT => {
            return Err(ScimError::bad_request(
                ScimType::InvalidCount,
                format!("count {n} exceeds the maximum page size of {MAX_COUNT}"),
            ));
        }
        // A negative count is read as 0 (RFC 7644 §3.4.2.4).
        (_, n) => n.unwrap_or(DEFAULT_COUNT).clamp(0, MAX_COUNT),
    };
    let query = format!(
        "{}\u{0}{}\u{0}{}",
        raw.filter.map(str::trim).unwrap_or_default(),
        raw.sort_by.map(str::trim).unwrap_or_default(),
        sort.as_ref().is_some_and(|s| s.descending)
    );
    Ok(ListParams {
        filter,
        sort,
        paging,
        count,
        projection: Projection::parse(raw.attributes, raw.excluded)?,
        query,
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
    build(Raw {
        filter: get("filter"),
        start: get("startIndex")
            .map(|v| parse_int("startIndex", v))
            .transpose()?,
        cursor: get("cursor"),
        count: get("count").map(|v| parse_int("count", v)).transpose()?,
        sort_by: get("sortBy"),
        sort_order: get("sortOrder"),
        attributes: get("attributes"),
        excluded: get("excludedAttributes"),
    })
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
    Projection::parse(get("attributes"), get("excludedAttributes"))
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

/// A cursor-paged ListResponse (RFC 9865): `nextCursor` unless this is the last page.
pub fn cursor_response(total: i64, resources: Vec<Value>, next: Option<String>) -> Value {
    let mut v = json!({
        "schemas": [LIST_URN],
        "totalResults": total,
        "itemsPerPage": resources.len(),
        "Resources": resources,
    });
    if let (Some(n), Some(o)) = (next, v.as_object_mut()) {
        o.insert("nextCursor".into(), Value::String(n));
    }
    v
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
            assert_eq!(p.paging, Paging::Index(1));
            assert_eq!(p.count, 100);
        }
        let p = from_query("startIndex=0&count=-5");
        assert!(p.is_ok_and(|p| p.paging == Paging::Index(1) && p.count == 0));
        let p = from_query("count=99999999999999999999&startIndex=-99999999999999999999");
        assert!(p.is_ok_and(|p| p.count == MAX_COUNT && p.paging == Paging::Index(1)));
        let p = from_query("count=5000");
        assert!(p.is_ok_and(|p| p.count == MAX_COUNT));
        assert!(
            from_query("count=abc").is_err_and(|e| e.detail.contains("'count' must be an integer"))
        );
        assert!(from_query("filter=userName+garbage").is_err_and(|e| e.status == 400));
    }

    #[test]
    fn point_lookups_are_unique_identifier_equalities_on_the_first_page() {
        let point = |q: &str| from_query(q).is_ok_and(|p| p.is_point_lookup());
        for q in [
            "filter=userName eq \"a@b.c\"",
            "filter=USERNAME eq \"a@b.c\"&startIndex=1&count=10",
            "filter=externalId eq \"x\"&cursor",
            "filter=id eq \"1\"",
            "filter=urn:ietf:params:scim:schemas:core:2.0:User:userName eq \"a\"",
            "filter=emails.value eq \"a@b.c\"",
            "filter=emails[type eq \"work\"].value eq \"a@b.c\"&startIndex=1&count=100",
            "filter=emails[value eq \"a@b.c\"]",
        ] {
            assert!(point(q), "{q}");
        }
        for q in [
            "",
            "filter=userName eq \"a\"&startIndex=2",
            "filter=userName eq \"a\"&sortBy=userName",
            "filter=userName co \"a\"",
            "filter=userName eq \"a\" or userName eq \"b\"",
            "filter=emails.value eq \"a\"&count=101",
            "filter=emails[type eq \"work\"].value co \"a\"",
            "filter=emails[type eq \"work\" or primary eq true].value eq \"a\"",
            "filter=phoneNumbers.value eq \"1\"",
            "filter=displayName eq \"a\"",
            "filter=name.givenName eq \"a\"",
            "filter=urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq \"1\"",
        ] {
            assert!(!point(q), "{q}");
        }
    }

    #[test]
    fn list_response_counters_are_integers() {
        let r = list_response(3, 1, vec![json!({}), json!({})]);
        assert_eq!(r["totalResults"], 3);
        assert_eq!(r["itemsPerPage"], 2);
        assert_eq!(r["startIndex"], 1);
    }
}

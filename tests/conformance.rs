//! IdP replay conformance suite.
//!
//! Replays every scenario of `conformance/idp-replay.json` against a live Custodian server
//! (once on SQLite, once on Postgres when `CUSTODIAN_TEST_PG_URL` is set), following the
//! file's `_conventions` object to the letter:
//!
//! * headers: `scenario.default_headers` overlaid with `step.headers` (case-insensitive header
//!   names, a `null` value removes the header); `Content-Type: application/scim+json` is added only
//!   when neither layer mentions Content-Type and the step has a body;
//! * query strings: ordered `[name, value]` pairs encoded as `pct20` (default), `plus` or
//!   `plus_rawquotes`; `raw_query` is appended verbatim (after placeholder expansion) and wins
//!   over `query`;
//! * bodies: `body` (JSON, placeholders expanded) or `body_raw` (literal string);
//! * placeholders `{{name}}`, `{{upper:name}}`, `{{lower:name}}` everywhere (also in expectations),
//!   with whole-string raw substitution of non-string values;
//! * generators, dot-path captures, status / JSON-subset / header / empty-body expectations;
//! * `max_ms` is reported (printed), never asserted;
//! * isolation: every scenario runs with a token of its own fresh, empty tenant.
//!
//! # Transport: a hand-written HTTP/1.1 client instead of reqwest
//!
//! `plus_rawquotes` requires `"` and `@` to reach the server *raw* (that is what the MS SCIM
//! Validator sends). reqwest builds every request from a `url::Url`, and the `url` crate
//! percent-encodes `"` in the query component of special schemes (its `SPECIAL_QUERY` encode set
//! is CONTROLS + space `"` `#` `<` `>` `'`), so reqwest cannot put `filter=userName+eq+"x"` on the
//! wire; the unit test `url_crate_would_reencode_raw_quotes` pins that behaviour down. reqwest also
//! adds headers of its own (e.g. `accept: */*` when a step removed Accept) and, without its `gzip`
//! feature, hands back compressed bytes when a step sends Okta's `Accept-Encoding: gzip,deflate`.
//! So every request (not only the `plus_rawquotes` ones, to keep a single code path and identical
//! latency measurement) is written by hand over a `std::net::TcpStream`, run inside
//! `tokio::task::spawn_blocking` so the server's runtime is never blocked. The request carries
//! exactly: the request line, `Host`, the effective scenario headers in order, and
//! `Content-Length` when there is a body. Responses are parsed with Content-Length, chunked or
//! read-to-EOF framing and decoded (gzip / deflate via the `flate2` dev-dependency).

mod common;

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use rand::Rng;
use serde_json::{Map, Value};

/// Scenario variables: generated values, captured values and `auth`.
type Vars = HashMap<String, Value>;

const CORPUS_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/conformance/idp-replay.json");
const SUPPORTED_FORMAT_VERSION: u64 = 1;
const MIN_SCENARIOS: usize = 20;
const BODY_EXCERPT_BYTES: usize = 2048;
const DEFAULT_CONTENT_TYPE: &str = "application/scim+json";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const IO_TIMEOUT: Duration = Duration::from_secs(60);
const MAX_RESPONSE_HEAD_BYTES: usize = 1024 * 1024;

const SCENARIO_KEYS: &[&str] = &[
    "id",
    "idp",
    "title",
    "source",
    "notes",
    "preconditions",
    "default_headers",
    "generate",
    "max_ms",
    "steps",
];
const STEP_KEYS: &[&str] = &[
    "name",
    "method",
    "path",
    "query",
    "query_encoding",
    "raw_query",
    "headers",
    "body",
    "body_raw",
    "capture",
    "expect_status",
    "expect_json_subset",
    "expect_json_subset_if_200",
    "expect_body_empty",
    "expect_headers_subset",
    "max_ms",
    "role",
    "idp_shape",
    "notes",
    "source",
];
const GENERATORS: &[&str] = &[
    "uuid",
    "email",
    "upn",
    "upn_mixed_case",
    "alpha8",
    "group_name",
    "okta_user_id",
    "runscope_given",
    "runscope_family",
    "runscope_email",
];
const SCALAR_MATCHERS: &[&str] = &[
    "$present",
    "$absent",
    "$int",
    "$number",
    "$string",
    "$array",
    "$nonempty",
    "$empty",
    "$cleared",
];
const ARRAY_MATCHER_KEYS: &[&str] = &["$len", "$contains", "$excludes"];

// ---------------------------------------------------------------------------------------------
// Placeholders
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq)]
enum Transform {
    Identity,
    Upper,
    Lower,
}

/// Parses the text between `{{` and `}}` into a transform and a variable name.
fn parse_placeholder(inner: &str) -> Result<(Transform, &str), String> {
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

fn lookup_var<'v>(vars: &'v Vars, name: &str) -> Result<&'v Value, String> {
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
fn interpolation_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn apply_transform(transform: Transform, text: String) -> String {
    match transform {
        Transform::Identity => text,
        Transform::Upper => text.to_uppercase(),
        Transform::Lower => text.to_lowercase(),
    }
}

/// String interpolation of every `{{...}}` in `template`. An unterminated `{{` is kept literally.
fn expand_str(template: &str, vars: &Vars) -> Result<String, String> {
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
fn expand_str_lenient(template: &str, vars: &Vars) -> Result<String, String> {
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
fn whole_placeholder(s: &str) -> Option<&str> {
    let inner = s.strip_prefix("{{")?.strip_suffix("}}")?;
    if inner.contains("{{") || inner.contains("}}") {
        None
    } else {
        Some(inner)
    }
}

/// Expands one JSON string. A string that is solely one placeholder whose variable holds a
/// non-string value becomes that raw value (transforms do not apply to non-strings).
fn expand_json_string(s: &str, vars: &Vars) -> Result<Value, String> {
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
fn expand_value(value: &Value, vars: &Vars) -> Result<Value, String> {
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
fn placeholder_names(value: &Value, out: &mut Vec<String>) {
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

// ---------------------------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------------------------

const LOWER: &[u8] = b"abcdefghijklmnopqrstuvwxyz";
const UPPER: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const DIGITS: &[u8] = b"0123456789";
const LETTERS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
const ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
const LOWER_ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

fn random_from(charset: &[u8], len: usize) -> String {
    let mut rng = rand::thread_rng();
    (0..len)
        .map(|_| char::from(charset[rng.gen_range(0..charset.len())]))
        .collect()
}

/// Generates one value. `runscope_email` is handled by [`generate_vars`] because it reuses the
/// scenario's other values.
fn generate_value(generator: &str) -> Result<String, String> {
    Ok(match generator {
        "uuid" => uuid::Uuid::new_v4().to_string(),
        "email" => format!(
            "{}{}@example.com",
            random_from(LOWER, 1),
            random_from(LOWER_ALNUM, 11)
        ),
        "upn" => format!(
            "{}{}@contoso.onmicrosoft.com",
            random_from(LOWER, 8),
            random_from(DIGITS, 3)
        ),
        "upn_mixed_case" => format!(
            "{}{}.{}{}{}@Contoso.example",
            random_from(UPPER, 1),
            random_from(LOWER, 5),
            random_from(UPPER, 1),
            random_from(LOWER, 6),
            random_from(DIGITS, 3)
        ),
        "alpha8" => random_from(LETTERS, 8),
        "group_name" => format!("Grp-{}", random_from(LETTERS, 8)),
        "okta_user_id" => format!("00u{}", random_from(ALNUM, 17)),
        "runscope_given" => format!("Runscope{}", random_from(DIGITS, 3)),
        "runscope_family" => format!(
            "{}{}{}",
            random_from(UPPER, 1),
            random_from(LOWER, 8),
            random_from(DIGITS, 3)
        ),
        other => {
            return Err(format!(
                "unknown generator `{other}` (known: {})",
                GENERATORS.join(", ")
            ));
        }
    })
}

/// Evaluates `scenario.generate` once. `runscope_email` is evaluated last and concatenates the
/// values of the scenario's first `runscope_given` and `runscope_family` variables (fresh ones
/// are generated when the scenario defines none).
fn generate_vars(spec: &Map<String, Value>) -> Result<Vars, String> {
    let mut vars = Vars::new();
    let mut given: Option<String> = None;
    let mut family: Option<String> = None;
    let mut emails: Vec<&str> = Vec::new();
    for (name, generator) in spec {
        let Some(generator) = generator.as_str() else {
            return Err(format!(
                "generator of `{name}` must be a string, got {generator}"
            ));
        };
        if generator == "runscope_email" {
            emails.push(name);
            continue;
        }
        let value = generate_value(generator)?;
        if generator == "runscope_given" && given.is_none() {
            given = Some(value.clone());
        }
        if generator == "runscope_family" && family.is_none() {
            family = Some(value.clone());
        }
        vars.insert(name.clone(), Value::String(value));
    }
    for name in emails {
        let given = match &given {
            Some(g) => g.clone(),
            None => generate_value("runscope_given")?,
        };
        let family = match &family {
            Some(f) => f.clone(),
            None => generate_value("runscope_family")?,
        };
        vars.insert(
            name.to_string(),
            Value::String(format!("{given}{family}@atko.com")),
        );
    }
    Ok(vars)
}

// ---------------------------------------------------------------------------------------------
// Query encoding
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq)]
enum QueryEncoding {
    /// RFC 3986: only unreserved characters stay raw; space = %20.
    Pct20,
    /// application/x-www-form-urlencoded (WHATWG serializer): space = '+'.
    Plus,
    /// Like `Plus`, but `"` and `@` are left raw (MS SCIM Validator capture).
    PlusRawQuotes,
}

impl QueryEncoding {
    fn parse(name: &str) -> Result<Self, String> {
        match name {
            "pct20" => Ok(Self::Pct20),
            "plus" => Ok(Self::Plus),
            "plus_rawquotes" => Ok(Self::PlusRawQuotes),
            other => Err(format!(
                "unknown query_encoding `{other}` (known: pct20, plus, plus_rawquotes)"
            )),
        }
    }
}

/// RFC 3986 unreserved = ALPHA / DIGIT / "-" / "." / "_" / "~".
const PCT20_SET: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');
/// WHATWG application/x-www-form-urlencoded byte serializer keeps ALPHA / DIGIT / "*-._".
const FORM_SET: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'*')
    .remove(b'-')
    .remove(b'.')
    .remove(b'_');
const FORM_RAWQUOTES_SET: &AsciiSet = &FORM_SET.remove(b'"').remove(b'@');

fn encode_component(text: &str, encoding: QueryEncoding) -> String {
    let set = match encoding {
        QueryEncoding::Pct20 => return utf8_percent_encode(text, PCT20_SET).to_string(),
        QueryEncoding::Plus => FORM_SET,
        QueryEncoding::PlusRawQuotes => FORM_RAWQUOTES_SET,
    };
    text.split(' ')
        .map(|part| utf8_percent_encode(part, set).to_string())
        .collect::<Vec<_>>()
        .join("+")
}

/// Encodes ordered `[name, value]` pairs (names and values alike) into a query string without
/// the leading `?`.
fn encode_query(pairs: &[(String, String)], encoding: QueryEncoding) -> String {
    pairs
        .iter()
        .map(|(name, value)| {
            format!(
                "{}={}",
                encode_component(name, encoding),
                encode_component(value, encoding)
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

// ---------------------------------------------------------------------------------------------
// Dot-path capture
// ---------------------------------------------------------------------------------------------

/// Resolves a capture path such as `Resources.0.id` or
/// `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User.manager.value`.
///
/// Inside an object the longest existing key that equals the remaining path or is followed by a
/// `.` is taken as one segment, so URN keys (which contain dots, e.g. `2.0`) are single segments.
/// Inside an array the segment must be a decimal index. A missing key, an out-of-range index or a
/// `null` result is an error.
fn resolve_path<'a>(root: &'a Value, path: &str) -> Result<&'a Value, String> {
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

fn display_walked(walked: &str) -> &str {
    if walked.is_empty() { "<root>" } else { walked }
}

// ---------------------------------------------------------------------------------------------
// Subset matcher
// ---------------------------------------------------------------------------------------------

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn truncate_chars(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut cut = max;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}… ({} bytes total)", &text[..cut], text.len())
}

fn describe(value: Option<&Value>) -> String {
    match value {
        None => "<missing>".to_string(),
        Some(v) => truncate_chars(&v.to_string(), 300),
    }
}

/// Deep equality that compares numbers numerically (1 == 1.0).
fn json_equal(a: &Value, b: &Value) -> bool {
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
fn loose_equal(actual: &Value, expected: &Value) -> bool {
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

fn is_empty_value(value: Option<&Value>) -> bool {
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
fn child_path(parent: &str, key: &str) -> String {
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
fn apply_matcher(matcher: &str, actual: Option<&Value>, vars: &Vars) -> Option<Result<(), String>> {
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

fn is_array_matcher(map: &Map<String, Value>) -> bool {
    !map.is_empty()
        && map
            .keys()
            .all(|key| ARRAY_MATCHER_KEYS.contains(&key.as_str()))
}

/// Recursive subset match of `expected` against the whole response body. Returns every mismatch,
/// each starting with its location (`$` = body root).
fn match_subset(expected: &Value, actual: &Value, vars: &Vars) -> Vec<String> {
    let mut out = Vec::new();
    match_at(expected, Some(actual), vars, "$", &mut out);
    out
}

fn matches_element(expected: &Value, actual: &Value, vars: &Vars, path: &str) -> Vec<String> {
    let mut out = Vec::new();
    match_at(expected, Some(actual), vars, path, &mut out);
    out
}

/// Every expected element must subset-match at least one actual element (order-insensitive).
fn match_contains(
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

fn match_array_matcher(
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

fn match_at(
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
fn match_headers(
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

// ---------------------------------------------------------------------------------------------
// Headers
// ---------------------------------------------------------------------------------------------

fn header_value_text(name: &str, value: &Value, vars: &Vars) -> Result<String, String> {
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
fn effective_headers(
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

// ---------------------------------------------------------------------------------------------
// HTTP/1.1 transport (see the module docs for why this is not reqwest)
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
struct ServerTarget {
    /// `host:port` to connect to and to send as `Host`.
    authority: String,
    /// Path prefix of the SCIM base URL, without a trailing '/', e.g. `/scim/v2`.
    base_path: String,
}

fn parse_base_url(url: &str) -> Result<ServerTarget, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("SCIM base URL `{url}` must start with http://"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if authority.is_empty() {
        return Err(format!("SCIM base URL `{url}` has no host"));
    }
    Ok(ServerTarget {
        authority: authority.to_string(),
        base_path: path.trim_end_matches('/').to_string(),
    })
}

#[derive(Debug)]
struct RawResponse {
    status: u16,
    headers: Vec<(String, String)>,
    /// Body after transfer decoding and content decoding.
    body: Vec<u8>,
}

impl RawResponse {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Serializes a request exactly as it goes on the wire.
fn build_request(
    method: &str,
    target: &str,
    authority: &str,
    headers: &[(String, String)],
    body: Option<&[u8]>,
) -> Vec<u8> {
    let mut head = format!("{method} {target} HTTP/1.1\r\n");
    if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
        let _ = write!(head, "Host: {authority}\r\n");
    }
    for (name, value) in headers {
        // Framing is ours: a scenario-supplied Content-Length could only desynchronize it.
        if name.eq_ignore_ascii_case("content-length") {
            continue;
        }
        let _ = write!(head, "{name}: {value}\r\n");
    }
    if let Some(body) = body {
        let _ = write!(head, "Content-Length: {}\r\n", body.len());
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    if let Some(body) = body {
        bytes.extend_from_slice(body);
    }
    bytes
}

fn read_line_crlf(reader: &mut impl BufRead, what: &str) -> Result<String, String> {
    let mut line = Vec::new();
    let n = reader
        .read_until(b'\n', &mut line)
        .map_err(|e| format!("reading {what}: {e}"))?;
    if n == 0 {
        return Err(format!("connection closed while reading {what}"));
    }
    while line.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        line.pop();
    }
    Ok(String::from_utf8_lossy(&line).into_owned())
}

/// Parses one HTTP/1.1 response (skipping 1xx interim responses) and decodes its body.
fn read_response(reader: &mut impl BufRead, method: &str) -> Result<RawResponse, String> {
    loop {
        let status_line = read_line_crlf(reader, "status line")?;
        let mut parts = status_line.splitn(3, ' ');
        let version = parts.next().unwrap_or_default();
        if !version.starts_with("HTTP/1.") {
            return Err(format!("malformed status line {status_line:?}"));
        }
        let status: u16 = parts
            .next()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("malformed status line {status_line:?}"))?;
        let mut headers = Vec::new();
        let mut head_bytes = status_line.len();
        loop {
            let line = read_line_crlf(reader, "response headers")?;
            if line.is_empty() {
                break;
            }
            head_bytes += line.len();
            if head_bytes > MAX_RESPONSE_HEAD_BYTES {
                return Err("response head exceeds 1 MiB".to_string());
            }
            let (name, value) = line
                .split_once(':')
                .ok_or_else(|| format!("malformed response header line {line:?}"))?;
            headers.push((name.trim().to_string(), value.trim().to_string()));
        }
        if (100..200).contains(&status) {
            continue;
        }
        let find = |name: &str| {
            headers
                .iter()
                .filter(|(n, _): &&(String, String)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let transfer_encoding = find("transfer-encoding").to_ascii_lowercase();
        let content_length = find("content-length");
        let mut body = Vec::new();
        if method.eq_ignore_ascii_case("HEAD") || status == 204 || status == 304 {
            // no body by definition
        } else if transfer_encoding.contains("chunked") {
            read_chunked(reader, &mut body)?;
        } else if !content_length.is_empty() {
            let first = content_length.split(',').next().unwrap_or_default().trim();
            let len: usize = first
                .parse()
                .map_err(|_| format!("invalid Content-Length {content_length:?}"))?;
            body.resize(len, 0);
            reader
                .read_exact(&mut body)
                .map_err(|e| format!("reading {len}-byte body: {e}"))?;
        } else {
            reader
                .read_to_end(&mut body)
                .map_err(|e| format!("reading body to EOF: {e}"))?;
        }
        let body = decode_content(&find("content-encoding"), body)?;
        return Ok(RawResponse {
            status,
            headers,
            body,
        });
    }
}

fn read_chunked(reader: &mut impl BufRead, body: &mut Vec<u8>) -> Result<(), String> {
    loop {
        let size_line = read_line_crlf(reader, "chunk size")?;
        let size_text = size_line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| format!("invalid chunk size line {size_line:?}"))?;
        if size == 0 {
            // trailers until the empty line
            while !read_line_crlf(reader, "chunked trailer")?.is_empty() {}
            return Ok(());
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader
            .read_exact(&mut body[start..])
            .map_err(|e| format!("reading {size}-byte chunk: {e}"))?;
        let terminator = read_line_crlf(reader, "chunk terminator")?;
        if !terminator.is_empty() {
            return Err(format!("chunk not followed by CRLF (got {terminator:?})"));
        }
    }
}

/// Undoes `Content-Encoding` (applied in order, so decoded in reverse order).
fn decode_content(content_encoding: &str, body: Vec<u8>) -> Result<Vec<u8>, String> {
    let mut body = body;
    let codings: Vec<String> = content_encoding
        .split(',')
        .map(|c| c.trim().to_ascii_lowercase())
        .filter(|c| !c.is_empty() && c != "identity")
        .collect();
    for coding in codings.iter().rev() {
        let mut out = Vec::new();
        match coding.as_str() {
            "gzip" | "x-gzip" => {
                flate2::read::MultiGzDecoder::new(body.as_slice())
                    .read_to_end(&mut out)
                    .map_err(|e| format!("gzip-decoding response body: {e}"))?;
            }
            "deflate" => {
                // RFC 9110 "deflate" is zlib-wrapped; some servers send raw deflate.
                if flate2::read::ZlibDecoder::new(body.as_slice())
                    .read_to_end(&mut out)
                    .is_err()
                {
                    out.clear();
                    flate2::read::DeflateDecoder::new(body.as_slice())
                        .read_to_end(&mut out)
                        .map_err(|e| format!("deflate-decoding response body: {e}"))?;
                }
            }
            other => return Err(format!("unsupported Content-Encoding `{other}`")),
        }
        body = out;
    }
    Ok(body)
}

/// Blocking round trip: connect, write the exact request bytes, read one response.
fn round_trip(authority: &str, request: &[u8], method: &str) -> Result<RawResponse, String> {
    let addr = authority
        .to_socket_addrs()
        .map_err(|e| format!("resolving {authority}: {e}"))?
        .next()
        .ok_or_else(|| format!("{authority} resolved to no address"))?;
    let mut stream = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)
        .map_err(|e| format!("connecting to {authority}: {e}"))?;
    stream
        .set_read_timeout(Some(IO_TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(IO_TIMEOUT)))
        .and_then(|()| stream.set_nodelay(true))
        .map_err(|e| format!("configuring socket: {e}"))?;
    stream
        .write_all(request)
        .and_then(|()| stream.flush())
        .map_err(|e| format!("writing request: {e}"))?;
    let mut reader = BufReader::new(stream);
    read_response(&mut reader, method)
}

async fn send(
    authority: &str,
    request: Vec<u8>,
    method: &str,
) -> Result<(RawResponse, Duration), String> {
    let authority = authority.to_string();
    let method = method.to_string();
    tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let response = round_trip(&authority, &request, &method)?;
        Ok((response, started.elapsed()))
    })
    .await
    .map_err(|e| format!("HTTP task panicked or was cancelled: {e}"))?
}

// ---------------------------------------------------------------------------------------------
// Corpus loading and static validation
// ---------------------------------------------------------------------------------------------

fn load_corpus() -> Result<Vec<Value>, String> {
    let text =
        std::fs::read_to_string(CORPUS_PATH).map_err(|e| format!("reading {CORPUS_PATH}: {e}"))?;
    let root: Value =
        serde_json::from_str(&text).map_err(|e| format!("parsing {CORPUS_PATH}: {e}"))?;
    let version = root.get("format_version").and_then(Value::as_u64);
    if version != Some(SUPPORTED_FORMAT_VERSION) {
        return Err(format!(
            "{CORPUS_PATH}: format_version {version:?} is not supported by this runner (expects {SUPPORTED_FORMAT_VERSION})"
        ));
    }
    match root.get("scenarios") {
        Some(Value::Array(scenarios)) => Ok(scenarios.clone()),
        other => Err(format!(
            "{CORPUS_PATH}: `scenarios` must be an array, got {}",
            describe(other)
        )),
    }
}

fn scenario_id(scenario: &Value) -> String {
    scenario
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or("<scenario without id>")
        .to_string()
}

fn unknown_keys(object: &Map<String, Value>, known: &[&str]) -> Vec<String> {
    object
        .keys()
        .filter(|k| !known.contains(&k.as_str()))
        .cloned()
        .collect()
}

/// Matcher-looking strings in an expectation that are not recognized matchers.
fn unknown_matchers(expectation: &Value, out: &mut Vec<String>) {
    match expectation {
        Value::String(s) if s.starts_with('$') => {
            let known = SCALAR_MATCHERS.contains(&s.as_str())
                || s.starts_with("$ne:")
                || s.starts_with("$contains:");
            if !known {
                out.push(s.clone());
            }
        }
        Value::Array(items) => items.iter().for_each(|item| unknown_matchers(item, out)),
        Value::Object(map) => map.values().for_each(|item| unknown_matchers(item, out)),
        _ => {}
    }
}

/// Checks a scenario without a server: known keys, generators, encodings, expectation shapes and
/// that every placeholder refers to a variable defined by then (`auth`, generated, or captured by
/// an earlier step; expectations may also use the same step's captures).
fn validate_scenario(scenario: &Value) -> Vec<String> {
    let id = scenario_id(scenario);
    let mut problems = Vec::new();
    let Some(object) = scenario.as_object() else {
        return vec![format!("[{id}] scenario is not an object")];
    };
    for key in unknown_keys(object, SCENARIO_KEYS) {
        problems.push(format!("[{id}] unknown scenario key `{key}`"));
    }
    let mut defined: HashSet<String> = HashSet::from(["auth".to_string()]);
    if let Some(generate) = object.get("generate") {
        match generate.as_object() {
            Some(map) => {
                for (name, generator) in map {
                    match generator.as_str() {
                        Some(g) if GENERATORS.contains(&g) => {}
                        _ => problems
                            .push(format!("[{id}] unknown generator {generator} for `{name}`")),
                    }
                    defined.insert(name.clone());
                }
            }
            None => problems.push(format!("[{id}] `generate` must be an object")),
        }
    }
    let mut referenced = Vec::new();
    placeholder_names(
        object.get("default_headers").unwrap_or(&Value::Null),
        &mut referenced,
    );
    for name in referenced {
        if !defined.contains(&name) {
            problems.push(format!(
                "[{id}] default_headers use undefined variable `{name}`"
            ));
        }
    }
    let Some(steps) = object.get("steps").and_then(Value::as_array) else {
        problems.push(format!("[{id}] `steps` must be an array"));
        return problems;
    };
    if steps.is_empty() {
        problems.push(format!("[{id}] has no steps"));
    }
    for (index, step) in steps.iter().enumerate() {
        let label = format!("[{id}] step {}", index + 1);
        let Some(step) = step.as_object() else {
            problems.push(format!("{label}: not an object"));
            continue;
        };
        for key in unknown_keys(step, STEP_KEYS) {
            problems.push(format!("{label}: unknown step key `{key}`"));
        }
        for required in ["name", "method", "path", "expect_status"] {
            if !step.contains_key(required) {
                problems.push(format!("{label}: missing `{required}`"));
            }
        }
        if let Err(e) = parse_expect_status(step.get("expect_status")) {
            problems.push(format!("{label}: {e}"));
        }
        if let Some(encoding) = step.get("query_encoding") {
            match encoding.as_str().map(QueryEncoding::parse) {
                Some(Ok(_)) => {}
                Some(Err(e)) => problems.push(format!("{label}: {e}")),
                None => problems.push(format!("{label}: query_encoding must be a string")),
            }
        }
        if step.contains_key("body") && step.contains_key("body_raw") {
            problems.push(format!("{label}: has both `body` and `body_raw`"));
        }
        let mut request_refs = Vec::new();
        for key in ["path", "query", "raw_query", "headers", "body", "body_raw"] {
            if let Some(v) = step.get(key) {
                placeholder_names(v, &mut request_refs);
            }
        }
        for name in request_refs {
            if !defined.contains(&name) {
                problems.push(format!("{label}: request uses undefined variable `{name}`"));
            }
        }
        if let Some(capture) = step.get("capture") {
            match capture.as_object() {
                Some(map) => defined.extend(map.keys().cloned()),
                None => problems.push(format!("{label}: `capture` must be an object")),
            }
        }
        let mut expectation_refs = Vec::new();
        for key in [
            "expect_json_subset",
            "expect_json_subset_if_200",
            "expect_headers_subset",
        ] {
            if let Some(v) = step.get(key) {
                placeholder_names(v, &mut expectation_refs);
                let mut unknown = Vec::new();
                unknown_matchers(v, &mut unknown);
                for m in unknown {
                    problems.push(format!(
                        "{label}: `{key}` uses unknown matcher string {m:?}"
                    ));
                }
            }
        }
        for name in expectation_refs {
            if !defined.contains(&name) {
                problems.push(format!(
                    "{label}: expectation uses undefined variable `{name}`"
                ));
            }
        }
    }
    problems
}

// ---------------------------------------------------------------------------------------------
// Scenario runner
// ---------------------------------------------------------------------------------------------

fn parse_expect_status(value: Option<&Value>) -> Result<Vec<u16>, String> {
    let as_status = |v: &Value| {
        v.as_u64()
            .and_then(|n| u16::try_from(n).ok())
            .filter(|n| (100..600).contains(n))
            .ok_or_else(|| format!("invalid status {v} in expect_status"))
    };
    match value {
        None => Err("missing expect_status".to_string()),
        Some(Value::Array(items)) if !items.is_empty() => items.iter().map(as_status).collect(),
        Some(v @ Value::Number(_)) => Ok(vec![as_status(v)?]),
        Some(other) => Err(format!(
            "expect_status must be an integer or a non-empty list, got {other}"
        )),
    }
}

fn body_excerpt(body: &[u8]) -> String {
    if body.is_empty() {
        return "<empty>".to_string();
    }
    let text = String::from_utf8_lossy(body);
    truncate_chars(&text, BODY_EXCERPT_BYTES)
}

struct PreparedRequest {
    method: String,
    target: String,
    bytes: Vec<u8>,
}

fn prepare_request(
    step: &Map<String, Value>,
    defaults: Option<&Map<String, Value>>,
    server: &ServerTarget,
    vars: &Vars,
) -> Result<PreparedRequest, String> {
    let method = step
        .get("method")
        .and_then(Value::as_str)
        .ok_or("step has no string `method`")?
        .to_string();
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(format!("invalid method {method:?}"));
    }
    let path_template = step
        .get("path")
        .and_then(Value::as_str)
        .ok_or("step has no string `path`")?;
    let path = expand_str(path_template, vars).map_err(|e| format!("path: {e}"))?;
    if !path.starts_with('/') {
        return Err(format!("path {path:?} does not start with '/'"));
    }
    let query = if let Some(raw) = step.get("raw_query") {
        let raw = raw.as_str().ok_or("raw_query must be a string")?;
        Some(expand_str(raw, vars).map_err(|e| format!("raw_query: {e}"))?)
    } else if let Some(query) = step.get("query") {
        let encoding = match step.get("query_encoding") {
            None => QueryEncoding::Pct20,
            Some(v) => QueryEncoding::parse(v.as_str().ok_or("query_encoding must be a string")?)?,
        };
        let items = query
            .as_array()
            .ok_or("query must be a list of [name, value] pairs")?;
        let mut pairs = Vec::with_capacity(items.len());
        for item in items {
            let (Some(name), Some(value), 2) = (
                item.get(0),
                item.get(1),
                item.as_array().map_or(0, Vec::len),
            ) else {
                return Err(format!("query item {item} is not a [name, value] pair"));
            };
            let text = |v: &Value| match v {
                Value::String(s) => expand_str(s, vars),
                other => Ok(other.to_string()),
            };
            pairs.push((
                text(name).map_err(|e| format!("query: {e}"))?,
                text(value).map_err(|e| format!("query: {e}"))?,
            ));
        }
        (!pairs.is_empty()).then(|| encode_query(&pairs, encoding))
    } else {
        None
    };
    let mut target = format!("{}{path}", server.base_path);
    // `idp_shape: aadOptscim062020`: the Entra tenant URL carries the compliance
    // flag, so every request of that job has it in its query string.
    let flagged = step.get("idp_shape").and_then(Value::as_str) == Some("aadOptscim062020");
    let query = match (query, flagged) {
        (Some(q), true) => Some(format!("aadOptscim062020&{q}")),
        (None, true) => Some("aadOptscim062020".to_string()),
        (q, false) => q,
    };
    if let Some(query) = query {
        target.push('?');
        target.push_str(&query);
    }
    if target.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err(format!(
            "request target {target:?} contains whitespace/control characters and cannot be sent"
        ));
    }
    let body: Option<Vec<u8>> = match (step.get("body"), step.get("body_raw")) {
        (Some(_), Some(_)) => return Err("step has both `body` and `body_raw`".to_string()),
        (Some(body), None) => {
            let expanded = expand_value(body, vars).map_err(|e| format!("body: {e}"))?;
            Some(serde_json::to_vec(&expanded).map_err(|e| format!("serializing body: {e}"))?)
        }
        (None, Some(raw)) => {
            let raw = raw.as_str().ok_or("body_raw must be a string")?;
            Some(expand_str_lenient(raw, vars)?.into_bytes())
        }
        (None, None) => None,
    };
    let overlay = match step.get("headers") {
        None => None,
        Some(Value::Object(map)) => Some(map),
        Some(other) => return Err(format!("headers must be an object, got {other}")),
    };
    let headers = effective_headers(defaults, overlay, body.is_some(), vars)?;
    let bytes = build_request(
        &method,
        &target,
        &server.authority,
        &headers,
        body.as_deref(),
    );
    Ok(PreparedRequest {
        method,
        target,
        bytes,
    })
}

#[derive(Default)]
struct ScenarioReport {
    id: String,
    steps_total: usize,
    steps_passed: usize,
    max_latency_ms: f64,
    /// Largest `max_ms` bound that applied to any step of the scenario.
    budget_ms: Option<u64>,
    steps_over_budget: usize,
    failures: Vec<String>,
}

struct StepContext<'a> {
    scenario: &'a str,
    index: usize,
    total: usize,
    step: &'a Map<String, Value>,
}

impl StepContext<'_> {
    fn header(&self, request: &str) -> String {
        let name = self
            .step
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("<unnamed>");
        let mut tags = String::new();
        if let Some(role) = self.step.get("role").and_then(Value::as_str) {
            let _ = write!(tags, " (role={role})");
        }
        if let Some(shape) = self.step.get("idp_shape").and_then(Value::as_str) {
            let _ = write!(tags, " (idp_shape={shape})");
        }
        format!(
            "[{}] step {}/{} {name:?}{tags}\n    request: {request}",
            self.scenario, self.index, self.total
        )
    }
}

async fn run_scenario(
    scenario: &Value,
    server: &ServerTarget,
    tenant_token: &str,
) -> ScenarioReport {
    let id = scenario_id(scenario);
    let mut report = ScenarioReport {
        id: id.clone(),
        ..ScenarioReport::default()
    };
    let static_problems = validate_scenario(scenario);
    if !static_problems.is_empty() {
        report.failures.push(format!(
            "[{id}] scenario is malformed for this runner (not executed):\n    - {}",
            static_problems.join("\n    - ")
        ));
        return report;
    }
    let empty = Map::new();
    let object = scenario.as_object().unwrap_or(&empty);
    let mut vars = match object.get("generate").and_then(Value::as_object) {
        Some(spec) => match generate_vars(spec) {
            Ok(vars) => vars,
            Err(e) => {
                report.failures.push(format!("[{id}] generate: {e}"));
                return report;
            }
        },
        None => Vars::new(),
    };
    vars.insert(
        "auth".to_string(),
        Value::String(format!("Bearer {tenant_token}")),
    );
    let defaults = object.get("default_headers").and_then(Value::as_object);
    let scenario_budget = object.get("max_ms").and_then(Value::as_u64);
    let steps: &[Value] = object
        .get("steps")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice);
    report.steps_total = steps.len();

    for (index, step_value) in steps.iter().enumerate() {
        let Some(step) = step_value.as_object() else {
            report
                .failures
                .push(format!("[{id}] step {}: not an object", index + 1));
            continue;
        };
        let ctx = StepContext {
            scenario: &id,
            index: index + 1,
            total: steps.len(),
            step,
        };
        let prepared = match prepare_request(step, defaults, server, &vars) {
            Ok(p) => p,
            Err(e) => {
                report.failures.push(format!(
                    "{}\n    - request not sent: {e}",
                    ctx.header("<not built>")
                ));
                continue;
            }
        };
        let request_line = format!("{} {}", prepared.method, prepared.target);
        let (response, elapsed) =
            match send(&server.authority, prepared.bytes, &prepared.method).await {
                Ok(r) => r,
                Err(e) => {
                    report.failures.push(format!(
                        "{}\n    - transport error: {e}",
                        ctx.header(&request_line)
                    ));
                    continue;
                }
            };
        let elapsed_ms = elapsed.as_secs_f64() * 1000.0;
        report.max_latency_ms = report.max_latency_ms.max(elapsed_ms);
        if let Some(budget) = step
            .get("max_ms")
            .and_then(Value::as_u64)
            .or(scenario_budget)
        {
            report.budget_ms = Some(report.budget_ms.map_or(budget, |b| b.max(budget)));
            if elapsed_ms > budget as f64 {
                report.steps_over_budget += 1;
                println!(
                    "latency note (not asserted): [{id}] step {} {request_line} took {elapsed_ms:.1} ms > max_ms {budget}",
                    index + 1
                );
            }
        }

        let reasons = check_step(step, &response, &mut vars);
        if reasons.is_empty() {
            report.steps_passed += 1;
        } else {
            let mut message = ctx.header(&request_line);
            for reason in &reasons {
                let _ = write!(message, "\n    - {reason}");
            }
            let _ = write!(
                message,
                "\n    response {} ({} bytes, {elapsed_ms:.1} ms): {}",
                response.status,
                response.body.len(),
                body_excerpt(&response.body)
            );
            report.failures.push(message);
        }
    }
    report
}

/// Evaluates a step's expectations and captures. Returns every failure reason.
fn check_step(step: &Map<String, Value>, response: &RawResponse, vars: &mut Vars) -> Vec<String> {
    let mut reasons = Vec::new();
    let expected_status = match parse_expect_status(step.get("expect_status")) {
        Ok(s) => s,
        Err(e) => return vec![e],
    };
    if !expected_status.contains(&response.status) {
        let wanted = expected_status
            .iter()
            .map(u16::to_string)
            .collect::<Vec<_>>()
            .join(" or ");
        reasons.push(format!(
            "status: expected {wanted}, got {}",
            response.status
        ));
        // Body/header expectations and captures are meaningless for an unexpected status.
        return reasons;
    }

    let parsed: Result<Value, String> = if response.body.is_empty() {
        Err("response body is empty".to_string())
    } else {
        serde_json::from_slice(&response.body)
            .map_err(|e| format!("response body is not valid JSON: {e}"))
    };

    // Captures run once the status expectation passed, before the JSON checks (so an expectation
    // could use a value captured by the same step).
    if let Some(capture) = step.get("capture").and_then(Value::as_object) {
        for (var, path) in capture {
            let Some(path) = path.as_str() else {
                reasons.push(format!(
                    "capture `{var}`: path must be a string, got {path}"
                ));
                continue;
            };
            let path = match expand_str(path, vars) {
                Ok(p) => p,
                Err(e) => {
                    reasons.push(format!("capture `{var}`: {e}"));
                    continue;
                }
            };
            match &parsed {
                Err(e) => reasons.push(format!("capture `{var}` from `{path}`: {e}")),
                Ok(body) => match resolve_path(body, &path) {
                    Ok(value) => {
                        vars.insert(var.clone(), value.clone());
                    }
                    Err(e) => reasons.push(format!("capture `{var}`: {e}")),
                },
            }
        }
    }

    let mut subset_checks = Vec::new();
    if let Some(expected) = step.get("expect_json_subset") {
        subset_checks.push(("expect_json_subset", expected));
    }
    if response.status == 200
        && let Some(expected) = step.get("expect_json_subset_if_200")
    {
        subset_checks.push(("expect_json_subset_if_200", expected));
    }
    for (label, expected) in subset_checks {
        match &parsed {
            Err(e) => reasons.push(format!("{label}: {e}")),
            Ok(body) => {
                for mismatch in match_subset(expected, body, vars) {
                    reasons.push(format!("{label} {mismatch}"));
                }
            }
        }
    }

    if step.get("expect_body_empty").and_then(Value::as_bool) == Some(true)
        && !response.body.is_empty()
    {
        reasons.push(format!(
            "expect_body_empty: body has {} bytes (Content-Type: {})",
            response.body.len(),
            response.header("content-type").unwrap_or("<none>")
        ));
    }

    if let Some(expected) = step.get("expect_headers_subset") {
        match expected.as_object() {
            Some(map) => {
                for mismatch in match_headers(map, &response.headers, vars) {
                    reasons.push(format!("expect_headers_subset: {mismatch}"));
                }
            }
            None => reasons.push("expect_headers_subset must be an object".to_string()),
        }
    }
    reasons
}

fn summary_table(label: &str, reports: &[ScenarioReport]) -> String {
    let width = reports.iter().map(|r| r.id.len()).max().unwrap_or(8).max(8);
    let mut out = format!(
        "\nIdP replay conformance ({label}):\n{:<width$}  {:>7}  {:<6}  {:>11}  {:>8}\n",
        "scenario", "steps", "result", "max lat ms", "max_ms"
    );
    for r in reports {
        let budget = match r.budget_ms {
            Some(b) if r.steps_over_budget > 0 => format!("{b} ({} over)", r.steps_over_budget),
            Some(b) => b.to_string(),
            None => "-".to_string(),
        };
        let _ = writeln!(
            out,
            "{:<width$}  {:>7}  {:<6}  {:>11.1}  {:>8}",
            r.id,
            format!("{}/{}", r.steps_passed, r.steps_total),
            if r.failures.is_empty() {
                "PASS"
            } else {
                "FAIL"
            },
            r.max_latency_ms,
            budget
        );
    }
    let passed = reports.iter().filter(|r| r.failures.is_empty()).count();
    let _ = writeln!(out, "{passed}/{} scenarios passed", reports.len());
    out
}

async fn replay_all(backend: common::Backend, label: &str) {
    let scenarios = match load_corpus() {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    };
    assert!(
        scenarios.len() >= MIN_SCENARIOS,
        "{CORPUS_PATH} holds {} scenarios; at least {MIN_SCENARIOS} are required",
        scenarios.len()
    );
    let mut seen = HashSet::new();
    for scenario in &scenarios {
        let id = scenario_id(scenario);
        assert!(
            seen.insert(id.clone()),
            "duplicate scenario id `{id}` in {CORPUS_PATH}"
        );
    }

    let app = common::spawn_app(backend).await;
    let server = match parse_base_url(&app.scim_url) {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    };
    let mut reports = Vec::with_capacity(scenarios.len());
    for scenario in &scenarios {
        // Isolation: a fresh, empty tenant per scenario.
        let token = app.new_tenant_token().await;
        reports.push(run_scenario(scenario, &server, &token).await);
    }

    let table = summary_table(label, &reports);
    println!("{table}");
    let failures: Vec<&String> = reports.iter().flat_map(|r| r.failures.iter()).collect();
    for failure in &failures {
        println!("FAILED {failure}\n");
    }
    assert!(
        failures.is_empty(),
        "{} conformance step failure(s) on {label}:\n\n{}\n{table}",
        failures.len(),
        failures
            .iter()
            .map(|f| f.as_str())
            .collect::<Vec<_>>()
            .join("\n\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_all_scenarios_sqlite() {
    replay_all(common::Backend::Sqlite, "sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_all_scenarios_postgres() {
    if common::pg_url().is_none() {
        eprintln!(
            "replay_all_scenarios_postgres: CUSTODIAN_TEST_PG_URL is not set; skipping the Postgres replay"
        );
        return;
    }
    replay_all(common::Backend::Postgres, "postgres").await;
}

// ---------------------------------------------------------------------------------------------
// Unit tests of the pure parts (no server needed)
// ---------------------------------------------------------------------------------------------

fn must<T, E: std::fmt::Display>(result: Result<T, E>, context: &str) -> T {
    match result {
        Ok(v) => v,
        Err(e) => panic!("{context}: {e}"),
    }
}

fn vars_of(value: Value) -> Vars {
    match value {
        Value::Object(map) => map.into_iter().collect(),
        other => panic!("vars_of needs an object, got {other}"),
    }
}

fn assert_match(expected: Value, actual: Value, vars: &Vars) {
    let mismatches = match_subset(&expected, &actual, vars);
    assert!(
        mismatches.is_empty(),
        "expected {expected} to match {actual}, got mismatches: {mismatches:#?}"
    );
}

fn assert_mismatch(expected: Value, actual: Value, vars: &Vars, location: &str) -> Vec<String> {
    let mismatches = match_subset(&expected, &actual, vars);
    assert!(
        mismatches.iter().any(|m| m.starts_with(location)),
        "expected a mismatch at `{location}` for {expected} vs {actual}, got {mismatches:#?}"
    );
    mismatches
}

#[test]
fn matcher_present_and_absent() {
    let v = Vars::new();
    assert_match(
        serde_json::json!({"a": "$present"}),
        serde_json::json!({"a": 0}),
        &v,
    );
    assert_mismatch(
        serde_json::json!({"a": "$present"}),
        serde_json::json!({"a": null}),
        &v,
        "$.a",
    );
    assert_mismatch(
        serde_json::json!({"a": "$present"}),
        serde_json::json!({}),
        &v,
        "$.a",
    );
    assert_match(
        serde_json::json!({"a": "$absent"}),
        serde_json::json!({}),
        &v,
    );
    assert_match(
        serde_json::json!({"a": "$absent"}),
        serde_json::json!({"a": null}),
        &v,
    );
    assert_mismatch(
        serde_json::json!({"a": "$absent"}),
        serde_json::json!({"a": ""}),
        &v,
        "$.a",
    );
}

#[test]
fn matcher_type_checks() {
    let v = Vars::new();
    assert_match(
        serde_json::json!({"a": "$int"}),
        serde_json::json!({"a": 3}),
        &v,
    );
    assert_match(
        serde_json::json!({"a": "$int"}),
        serde_json::json!({"a": -3}),
        &v,
    );
    assert_mismatch(
        serde_json::json!({"a": "$int"}),
        serde_json::json!({"a": 3.5}),
        &v,
        "$.a",
    );
    assert_mismatch(
        serde_json::json!({"a": "$int"}),
        serde_json::json!({"a": "3"}),
        &v,
        "$.a",
    );
    assert_mismatch(
        serde_json::json!({"a": "$int"}),
        serde_json::json!({}),
        &v,
        "$.a",
    );
    assert_match(
        serde_json::json!({"a": "$number"}),
        serde_json::json!({"a": 3.5}),
        &v,
    );
    assert_match(
        serde_json::json!({"a": "$number"}),
        serde_json::json!({"a": 3}),
        &v,
    );
    assert_mismatch(
        serde_json::json!({"a": "$number"}),
        serde_json::json!({"a": "3"}),
        &v,
        "$.a",
    );
    assert_match(
        serde_json::json!({"a": "$string"}),
        serde_json::json!({"a": ""}),
        &v,
    );
    assert_mismatch(
        serde_json::json!({"a": "$string"}),
        serde_json::json!({"a": 1}),
        &v,
        "$.a",
    );
    assert_match(
        serde_json::json!({"a": "$array"}),
        serde_json::json!({"a": []}),
        &v,
    );
    assert_mismatch(
        serde_json::json!({"a": "$array"}),
        serde_json::json!({"a": {}}),
        &v,
        "$.a",
    );
}

#[test]
fn matcher_nonempty_empty_cleared() {
    let v = Vars::new();
    for ok in [
        serde_json::json!("x"),
        serde_json::json!([1]),
        serde_json::json!({"k": 1}),
    ] {
        assert_match(
            serde_json::json!({"a": "$nonempty"}),
            serde_json::json!({ "a": ok }),
            &v,
        );
    }
    for bad in [
        serde_json::json!(""),
        serde_json::json!([]),
        serde_json::json!({}),
        serde_json::json!(null),
        serde_json::json!(5),
    ] {
        assert_mismatch(
            serde_json::json!({"a": "$nonempty"}),
            serde_json::json!({ "a": bad }),
            &v,
            "$.a",
        );
    }
    assert_mismatch(
        serde_json::json!({"a": "$nonempty"}),
        serde_json::json!({}),
        &v,
        "$.a",
    );

    assert_match(
        serde_json::json!({"a": "$empty"}),
        serde_json::json!({}),
        &v,
    );
    for ok in [
        serde_json::json!(null),
        serde_json::json!([]),
        serde_json::json!({}),
        serde_json::json!(""),
    ] {
        assert_match(
            serde_json::json!({"a": "$empty"}),
            serde_json::json!({ "a": ok }),
            &v,
        );
    }
    assert_mismatch(
        serde_json::json!({"a": "$empty"}),
        serde_json::json!({"a": {"value": ""}}),
        &v,
        "$.a",
    );
    assert_mismatch(
        serde_json::json!({"a": "$empty"}),
        serde_json::json!({"a": "x"}),
        &v,
        "$.a",
    );

    assert_match(
        serde_json::json!({"m": "$cleared"}),
        serde_json::json!({}),
        &v,
    );
    for ok in [
        serde_json::json!(null),
        serde_json::json!({}),
        serde_json::json!(""),
        serde_json::json!({"value": ""}),
        serde_json::json!({"value": null, "displayName": "x"}),
    ] {
        assert_match(
            serde_json::json!({"m": "$cleared"}),
            serde_json::json!({ "m": ok }),
            &v,
        );
    }
    assert_mismatch(
        serde_json::json!({"m": "$cleared"}),
        serde_json::json!({"m": {"value": "abc"}}),
        &v,
        "$.m",
    );
}

#[test]
fn matcher_ne_and_contains_with_placeholders() {
    let v = vars_of(serde_json::json!({"old": "abc", "n": 3, "part": "scim"}));
    assert_match(
        serde_json::json!({"id": "$ne:{{old}}"}),
        serde_json::json!({"id": "xyz"}),
        &v,
    );
    assert_mismatch(
        serde_json::json!({"id": "$ne:{{old}}"}),
        serde_json::json!({"id": "abc"}),
        &v,
        "$.id",
    );
    assert_mismatch(
        serde_json::json!({"id": "$ne:{{old}}"}),
        serde_json::json!({}),
        &v,
        "$.id",
    );
    assert_mismatch(
        serde_json::json!({"c": "$ne:{{n}}"}),
        serde_json::json!({"c": 3}),
        &v,
        "$.c",
    );
    assert_mismatch(
        serde_json::json!({"c": "$ne:3"}),
        serde_json::json!({"c": 3}),
        &v,
        "$.c",
    );
    assert_match(
        serde_json::json!({"c": "$ne:3"}),
        serde_json::json!({"c": 4}),
        &v,
    );
    assert_match(
        serde_json::json!({"t": "$contains:application/{{part}}+json"}),
        serde_json::json!({"t": "application/scim+json; charset=utf-8"}),
        &v,
    );
    assert_mismatch(
        serde_json::json!({"t": "$contains:scim"}),
        serde_json::json!({"t": "application/json"}),
        &v,
        "$.t",
    );
    assert_mismatch(
        serde_json::json!({"t": "$contains:1"}),
        serde_json::json!({"t": 1}),
        &v,
        "$.t",
    );
    let errors = assert_mismatch(
        serde_json::json!({"id": "$ne:{{nope}}"}),
        serde_json::json!({"id": "x"}),
        &v,
        "$.id",
    );
    assert!(
        errors
            .iter()
            .any(|e| e.contains("undefined variable `nope`")),
        "{errors:?}"
    );
}

#[test]
fn matcher_array_object_len_contains_excludes() {
    let v = vars_of(serde_json::json!({"uid": "u-1"}));
    let actual = serde_json::json!({"Resources": [
        {"id": "u-1", "userName": "a", "active": true},
        {"id": "u-2", "userName": "b", "active": false}
    ]});
    assert_match(
        serde_json::json!({"Resources": {"$len": 2}}),
        actual.clone(),
        &v,
    );
    assert_mismatch(
        serde_json::json!({"Resources": {"$len": 1}}),
        actual.clone(),
        &v,
        "$.Resources",
    );
    assert_match(
        serde_json::json!({"Resources": {"$contains": [{"userName": "b"}, {"id": "{{uid}}"}]}}),
        actual.clone(),
        &v,
    );
    let m = assert_mismatch(
        serde_json::json!({"Resources": {"$contains": [{"id": "{{uid}}", "active": false}]}}),
        actual.clone(),
        &v,
        "$.Resources",
    );
    assert!(
        m.iter()
            .any(|s| s.contains("candidate: $.Resources[0].active")),
        "{m:#?}"
    );
    assert_match(
        serde_json::json!({"Resources": {"$excludes": [{"id": "u-3"}, {"id": "u-1", "active": false}]}}),
        actual.clone(),
        &v,
    );
    assert_mismatch(
        serde_json::json!({"Resources": {"$excludes": [{"id": "u-2"}]}}),
        actual.clone(),
        &v,
        "$.Resources[1]",
    );
    assert_match(
        serde_json::json!({"Resources": {"$len": 2, "$contains": [{"id": "u-2"}], "$excludes": [{"id": "zzz"}]}}),
        actual.clone(),
        &v,
    );
    assert_match(
        serde_json::json!({"Resources": {"$len": 0}}),
        serde_json::json!({"Resources": []}),
        &v,
    );
    assert_mismatch(
        serde_json::json!({"Resources": {"$len": 0}}),
        serde_json::json!({}),
        &v,
        "$.Resources",
    );
    assert_mismatch(
        serde_json::json!({"Resources": {"$len": 0}}),
        serde_json::json!({"Resources": {}}),
        &v,
        "$.Resources",
    );
}

#[test]
fn matcher_nested_objects_extra_keys_and_exact_names() {
    let v = Vars::new();
    let actual = serde_json::json!({
        "name": {"givenName": "A", "familyName": "B", "middleName": "C"},
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"manager": {"value": "m1", "displayName": "M"}},
        "extra": 1
    });
    assert_match(
        serde_json::json!({
            "name": {"givenName": "A"},
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"manager": {"value": "m1"}}
        }),
        actual.clone(),
        &v,
    );
    assert_mismatch(
        serde_json::json!({"name": {"givenName": "X"}}),
        actual.clone(),
        &v,
        "$.name.givenName",
    );
    // attribute names compare exactly (no case folding)
    assert_mismatch(
        serde_json::json!({"Name": {"givenName": "A"}}),
        actual.clone(),
        &v,
        "$.Name",
    );
    assert_mismatch(
        serde_json::json!({"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"manager": {"value": "m2"}}}),
        actual.clone(),
        &v,
        "$[\"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User\"].manager.value",
    );
    assert_mismatch(
        serde_json::json!({"name": "A"}),
        actual.clone(),
        &v,
        "$.name",
    );
    assert_mismatch(
        serde_json::json!({"extra": {"k": 1}}),
        actual,
        &v,
        "$.extra",
    );
    // literal scalars: numbers compare numerically, booleans exactly
    assert_match(
        serde_json::json!({"n": 1}),
        serde_json::json!({"n": 1.0}),
        &v,
    );
    assert_mismatch(
        serde_json::json!({"b": true}),
        serde_json::json!({"b": "true"}),
        &v,
        "$.b",
    );
    assert_match(serde_json::json!({"x": null}), serde_json::json!({}), &v);
    // an unknown $-string is compared literally and the message says so
    let m = assert_mismatch(
        serde_json::json!({"a": "$nonEmpty"}),
        serde_json::json!({"a": "x"}),
        &v,
        "$.a",
    );
    assert!(m.iter().any(|s| s.contains("not a known matcher")), "{m:?}");
    // `$ref` is an ordinary attribute name, not an array matcher
    assert_match(
        serde_json::json!({"members": [{"$ref": "r", "value": "1"}]}),
        serde_json::json!({"members": [{"value": "1", "$ref": "r", "display": "d"}]}),
        &v,
    );
}

#[test]
fn matcher_plain_arrays_are_order_insensitive_subsets() {
    let v = Vars::new();
    let actual = serde_json::json!({
        "schemas": ["urn:a", "urn:b"],
        "emails": [{"value": "x@y", "type": "home"}, {"value": "w@y", "type": "work", "primary": true}]
    });
    assert_match(
        serde_json::json!({"schemas": ["urn:b", "urn:a"]}),
        actual.clone(),
        &v,
    );
    assert_match(
        serde_json::json!({"schemas": ["urn:b"]}),
        actual.clone(),
        &v,
    );
    assert_match(serde_json::json!({"schemas": []}), actual.clone(), &v);
    assert_match(
        serde_json::json!({"emails": [{"type": "work", "primary": true}, {"type": "home"}]}),
        actual.clone(),
        &v,
    );
    assert_mismatch(
        serde_json::json!({"schemas": ["urn:c"]}),
        actual.clone(),
        &v,
        "$.schemas",
    );
    assert_mismatch(
        serde_json::json!({"emails": [{"type": "home", "primary": true}]}),
        actual.clone(),
        &v,
        "$.emails",
    );
    assert_mismatch(
        serde_json::json!({"emails": ["x"]}),
        serde_json::json!({"emails": "x"}),
        &v,
        "$.emails",
    );
    // matcher strings work as array elements too
    assert_match(serde_json::json!({"schemas": ["$string"]}), actual, &v);
}

#[test]
fn matcher_expands_placeholders_in_expectations() {
    let v = vars_of(
        serde_json::json!({"user": "Alice@X.example", "count": 2, "flag": false, "key": "displayName"}),
    );
    assert_match(
        serde_json::json!({"userName": "{{user}}", "lower": "{{lower:user}}", "upper": "{{upper:user}}", "total": "{{count}}", "active": "{{flag}}", "{{key}}": "n={{count}}"}),
        serde_json::json!({"userName": "Alice@X.example", "lower": "alice@x.example", "upper": "ALICE@X.EXAMPLE", "total": 2, "active": false, "displayName": "n=2"}),
        &v,
    );
    assert_mismatch(
        serde_json::json!({"total": "{{count}}"}),
        serde_json::json!({"total": "2"}),
        &v,
        "$.total",
    );
    assert_match(
        serde_json::json!({"r": {"$len": "{{count}}"}}),
        serde_json::json!({"r": [1, 2]}),
        &v,
    );
    let m = assert_mismatch(
        serde_json::json!({"a": "{{missing}}"}),
        serde_json::json!({"a": "x"}),
        &v,
        "$.a",
    );
    assert!(
        m.iter().any(|s| s.contains("undefined variable `missing`")),
        "{m:?}"
    );
}

#[test]
fn placeholder_whole_string_substitutes_raw_non_string_values() {
    let v = vars_of(serde_json::json!({
        "n": 42, "b": true, "obj": {"k": [1, 2]}, "nul": null, "s": "text"
    }));
    let body = serde_json::json!({
        "n": "{{n}}", "b": "{{b}}", "obj": "{{obj}}", "nul": "{{nul}}", "s": "{{s}}",
        "interp": "n={{n}} b={{b}} obj={{obj}}",
        "spaced": " {{n}}",
        "arr": ["{{n}}", "{{s}}"],
        "upper_num": "{{upper:n}}"
    });
    let expanded = must(expand_value(&body, &v), "expand");
    assert_eq!(
        expanded,
        serde_json::json!({
            "n": 42, "b": true, "obj": {"k": [1, 2]}, "nul": null, "s": "text",
            "interp": "n=42 b=true obj={\"k\":[1,2]}",
            "spaced": " 42",
            "arr": [42, "text"],
            "upper_num": 42
        })
    );
}

#[test]
fn placeholder_transforms_and_errors() {
    let v = vars_of(serde_json::json!({"u": "Alice.Smith@Contoso.example"}));
    assert_eq!(
        must(expand_str("{{upper:u}}", &v), "upper"),
        "ALICE.SMITH@CONTOSO.EXAMPLE"
    );
    assert_eq!(
        must(expand_str("x {{lower:u}} y", &v), "lower"),
        "x alice.smith@contoso.example y"
    );
    assert_eq!(
        must(expand_str("{{ u }}", &v), "spaces"),
        "Alice.Smith@Contoso.example"
    );
    assert_eq!(
        must(expand_str("a{{u}}b{{lower:u}}", &v), "two"),
        "aAlice.Smith@Contoso.examplebalice.smith@contoso.example"
    );
    assert_eq!(
        must(expand_str("no {{ end", &v), "unterminated"),
        "no {{ end"
    );
    assert_eq!(
        must(
            expand_value(&serde_json::json!({"{{lower:u}}": 1}), &v),
            "keys"
        ),
        serde_json::json!({"alice.smith@contoso.example": 1})
    );
    assert!(
        matches!(expand_str("{{nope}}", &v), Err(e) if e.contains("undefined variable `nope`"))
    );
    assert!(
        matches!(expand_str("{{title:u}}", &v), Err(e) if e.contains("unknown placeholder transform `title`"))
    );
    // body_raw is literal except for defined variables
    assert_eq!(
        must(
            expand_str_lenient("{\"a\": \"{{u}}\", {{nope}}", &v),
            "lenient"
        ),
        "{\"a\": \"Alice.Smith@Contoso.example\", {{nope}}"
    );
}

#[test]
fn query_encodings_on_filter_value() {
    let pairs = vec![
        ("filter".to_string(), "userName eq \"a b@c.d\"".to_string()),
        ("count".to_string(), "100".to_string()),
    ];
    assert_eq!(
        encode_query(&pairs, QueryEncoding::Pct20),
        "filter=userName%20eq%20%22a%20b%40c.d%22&count=100"
    );
    assert_eq!(
        encode_query(&pairs, QueryEncoding::Plus),
        "filter=userName+eq+%22a+b%40c.d%22&count=100"
    );
    assert_eq!(
        encode_query(&pairs, QueryEncoding::PlusRawQuotes),
        "filter=userName+eq+\"a+b@c.d\"&count=100"
    );
}

#[test]
fn query_encodings_escape_delimiters_and_non_ascii() {
    let pairs = vec![("a b".to_string(), "x+y&z=w~*é".to_string())];
    assert_eq!(
        encode_query(&pairs, QueryEncoding::Pct20),
        "a%20b=x%2By%26z%3Dw~%2A%C3%A9"
    );
    assert_eq!(
        encode_query(&pairs, QueryEncoding::Plus),
        "a+b=x%2By%26z%3Dw%7E*%C3%A9"
    );
    assert_eq!(
        encode_query(&pairs, QueryEncoding::PlusRawQuotes),
        "a+b=x%2By%26z%3Dw%7E*%C3%A9"
    );
    assert_eq!(encode_query(&[], QueryEncoding::Pct20), "");
    assert!(QueryEncoding::parse("raw").is_err());
}

#[test]
fn url_crate_would_reencode_raw_quotes() {
    // Why the runner does not use reqwest: its Url re-encodes the raw quotes of plus_rawquotes.
    let url = must(
        reqwest::Url::parse("http://127.0.0.1:1/scim/v2/Users?filter=userName+eq+\"a+b@c.d\""),
        "parse",
    );
    assert_eq!(url.query(), Some("filter=userName+eq+%22a+b@c.d%22"));
}

#[test]
fn capture_dot_paths() {
    let body = serde_json::json!({
        "id": "u1",
        "meta": {"created": "2024-01-01T00:00:00Z"},
        "Resources": [{"id": "r0"}, {"id": "r1", "emails": [{"value": "e"}]}],
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"manager": {"value": "m1"}, "n": 7},
        "nothing": null
    });
    let get = |p: &str| must(resolve_path(&body, p), p).clone();
    assert_eq!(get("id"), serde_json::json!("u1"));
    assert_eq!(
        get("meta.created"),
        serde_json::json!("2024-01-01T00:00:00Z")
    );
    assert_eq!(get("Resources.0.id"), serde_json::json!("r0"));
    assert_eq!(get("Resources.1.emails.0.value"), serde_json::json!("e"));
    assert_eq!(
        get("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User.manager.value"),
        serde_json::json!("m1")
    );
    assert_eq!(
        get("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User.n"),
        serde_json::json!(7)
    );
    assert_eq!(
        get("Resources.1"),
        serde_json::json!({"id": "r1", "emails": [{"value": "e"}]})
    );
    for (path, fragment) in [
        ("missing", "no key matching `missing`"),
        ("meta.version", "no key matching `version` at `meta`"),
        ("Resources.2.id", "index 2 out of range"),
        ("Resources.x", "is not an index"),
        ("id.more", "cannot descend into string"),
        ("nothing", "resolved to null"),
        ("meta.", "ends with a '.'"),
        ("", "empty capture path"),
    ] {
        match resolve_path(&body, path) {
            Ok(v) => panic!("path `{path}` unexpectedly resolved to {v}"),
            Err(e) => assert!(
                e.contains(fragment),
                "path `{path}`: error {e:?} lacks {fragment:?}"
            ),
        }
    }
}

#[test]
fn headers_overlay_null_removal_and_default_content_type() {
    let v = vars_of(serde_json::json!({"auth": "Bearer t"}));
    let defaults = serde_json::json!({
        "Authorization": "{{auth}}", "Accept": "application/scim+json", "User-Agent": "Okta"
    });
    let overlay =
        serde_json::json!({"accept": "application/json", "User-Agent": null, "X-Extra": "1"});
    let headers = must(
        effective_headers(defaults.as_object(), overlay.as_object(), true, &v),
        "headers",
    );
    let expected: Vec<(String, String)> = [
        ("Authorization", "Bearer t"),
        ("accept", "application/json"),
        ("X-Extra", "1"),
        ("Content-Type", "application/scim+json"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(headers, expected);
    // no body -> no default Content-Type
    let no_body = must(
        effective_headers(defaults.as_object(), None, false, &v),
        "no body",
    );
    assert!(
        !no_body
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("content-type"))
    );
    // a defined Content-Type wins; an explicit null suppresses the default
    let ct = serde_json::json!({"Content-Type": "application/json"});
    let with_ct = must(effective_headers(None, ct.as_object(), true, &v), "ct");
    assert_eq!(
        with_ct,
        vec![("Content-Type".to_string(), "application/json".to_string())]
    );
    let null_ct = serde_json::json!({"Content-Type": null});
    let without = must(
        effective_headers(defaults.as_object(), null_ct.as_object(), true, &v),
        "null ct",
    );
    assert!(
        !without
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("content-type"))
    );
    let bad = serde_json::json!({"X": "a\r\nInjected: 1"});
    assert!(effective_headers(None, bad.as_object(), false, &v).is_err());
}

#[test]
fn headers_subset_matcher() {
    let v = Vars::new();
    let actual = vec![
        (
            "content-type".to_string(),
            "application/scim+json; charset=utf-8".to_string(),
        ),
        ("ETag".to_string(), "W/\"1\"".to_string()),
    ];
    let ok =
        serde_json::json!({"Content-Type": "$contains:application/scim+json", "etag": "W/\"1\""});
    let Some(ok) = ok.as_object() else {
        panic!("object")
    };
    assert!(match_headers(ok, &actual, &v).is_empty());
    let bad =
        serde_json::json!({"Content-Type": "$contains:text/html", "Location": "$contains:/Users/"});
    let Some(bad) = bad.as_object() else {
        panic!("object")
    };
    let m = match_headers(bad, &actual, &v);
    assert_eq!(m.len(), 2, "{m:?}");
    assert!(m[1].contains("<missing>"), "{m:?}");
}

#[test]
fn request_bytes_are_exactly_what_the_convention_says() {
    let server = must(parse_base_url("http://127.0.0.1:8080/scim/v2/"), "base");
    assert_eq!(server.authority, "127.0.0.1:8080");
    assert_eq!(server.base_path, "/scim/v2");
    let step = serde_json::json!({
        "name": "s", "method": "GET", "path": "/Users",
        "query": [["filter", "userName eq \"{{u}}\""], ["count", 5]],
        "query_encoding": "plus_rawquotes",
        "headers": {"Authorization": "{{auth}}"},
        "expect_status": 200
    });
    let Some(step) = step.as_object() else {
        panic!("object")
    };
    let v = vars_of(serde_json::json!({"u": "a b@c.d", "auth": "Bearer t"}));
    let prepared = must(prepare_request(step, None, &server, &v), "prepare");
    assert_eq!(
        String::from_utf8_lossy(&prepared.bytes),
        "GET /scim/v2/Users?filter=userName+eq+\"a+b@c.d\"&count=5 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nAuthorization: Bearer t\r\n\r\n"
    );

    let step = serde_json::json!({
        "name": "s", "method": "POST", "path": "/Users/{{id}}",
        "query": [["a", "1"]], "raw_query": "attributes=userName&x={{id}}",
        "body": {"n": "{{num}}"}, "expect_status": 200
    });
    let Some(step) = step.as_object() else {
        panic!("object")
    };
    let v = vars_of(serde_json::json!({"id": "42", "num": 7}));
    let prepared = must(prepare_request(step, None, &server, &v), "prepare");
    assert_eq!(
        String::from_utf8_lossy(&prepared.bytes),
        "POST /scim/v2/Users/42?attributes=userName&x=42 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nContent-Type: application/scim+json\r\nContent-Length: 7\r\n\r\n{\"n\":7}"
    );

    let step = serde_json::json!({
        "name": "s", "method": "POST", "path": "/Users", "body_raw": "{\"userName\": ", "expect_status": 400,
        "headers": {"Content-Type": "application/json"}
    });
    let Some(step) = step.as_object() else {
        panic!("object")
    };
    let prepared = must(
        prepare_request(step, None, &server, &Vars::new()),
        "prepare",
    );
    assert_eq!(
        String::from_utf8_lossy(&prepared.bytes),
        "POST /scim/v2/Users HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nContent-Type: application/json\r\nContent-Length: 13\r\n\r\n{\"userName\": "
    );
}

#[test]
fn response_parsing_content_length_chunked_and_gzip() {
    let raw = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Type: application/scim+json\r\nContent-Length: 11\r\n\r\n{\"id\":\"x\"}\nEXTRA";
    let r = must(read_response(&mut &raw[..], "POST"), "content-length");
    assert_eq!(r.status, 201);
    assert_eq!(r.body, b"{\"id\":\"x\"}\n");
    assert_eq!(r.header("CONTENT-TYPE"), Some("application/scim+json"));

    let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;ext=1\r\n{\"a\"\r\n3\r\n:1}\r\n0\r\nX-Trailer: t\r\n\r\n";
    let r = must(read_response(&mut &raw[..], "GET"), "chunked");
    assert_eq!(r.body, b"{\"a\":1}");

    let raw = b"HTTP/1.1 204 No Content\r\nContent-Type: application/scim+json\r\n\r\n";
    let r = must(read_response(&mut &raw[..], "DELETE"), "204");
    assert_eq!((r.status, r.body.len()), (204, 0));

    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    must(gz.write_all(b"{\"totalResults\":0}"), "gzip write");
    let compressed = must(gz.finish(), "gzip finish");
    let mut raw = format!(
        "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n",
        compressed.len()
    )
    .into_bytes();
    raw.extend_from_slice(&compressed);
    let r = must(read_response(&mut raw.as_slice(), "GET"), "gzip");
    assert_eq!(r.body, b"{\"totalResults\":0}");

    let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    must(zlib.write_all(b"{}"), "zlib write");
    let compressed = must(zlib.finish(), "zlib finish");
    assert_eq!(
        must(decode_content("deflate", compressed), "deflate"),
        b"{}"
    );
    assert!(decode_content("br", vec![1]).is_err());
}

#[test]
fn transport_round_trip_over_loopback_preserves_bytes() {
    let listener = must(std::net::TcpListener::bind("127.0.0.1:0"), "bind");
    let authority = must(listener.local_addr(), "addr").to_string();
    let server = std::thread::spawn(move || -> Result<Vec<u8>, String> {
        let (mut stream, _) = listener.accept().map_err(|e| e.to_string())?;
        let mut received = Vec::new();
        let mut buf = [0u8; 1024];
        while !received.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = stream.read(&mut buf).map_err(|e| e.to_string())?;
            if n == 0 {
                break;
            }
            received.extend_from_slice(&buf[..n]);
        }
        stream
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/scim+json\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n")
            .map_err(|e| e.to_string())?;
        Ok(received)
    });
    let request =
        b"GET /scim/v2/Users?filter=userName+eq+\"a+b@c.d\" HTTP/1.1\r\nHost: x\r\n\r\n".to_vec();
    let response = must(round_trip(&authority, &request, "GET"), "round trip");
    assert_eq!(
        (response.status, response.body.as_slice()),
        (200, &b"{}"[..])
    );
    let received = match server.join() {
        Ok(r) => must(r, "server"),
        Err(_) => panic!("loopback server thread panicked"),
    };
    assert_eq!(received, request);
}

#[test]
fn generators_produce_the_documented_shapes() {
    let spec = serde_json::json!({
        "id": "uuid", "mail": "email", "upn": "upn", "mixed": "upn_mixed_case", "a8": "alpha8",
        "g": "group_name", "okta": "okta_user_id", "rg": "runscope_given", "rf": "runscope_family",
        "re": "runscope_email"
    });
    let Some(spec) = spec.as_object() else {
        panic!("object")
    };
    let vars = must(generate_vars(spec), "generate");
    let s = |k: &str| {
        vars.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    assert!(uuid::Uuid::parse_str(&s("id")).is_ok(), "uuid {}", s("id"));
    assert!(s("mail").ends_with("@example.com") && s("mail").len() > "@example.com".len());
    assert!(s("upn").ends_with("@contoso.onmicrosoft.com"));
    let mixed = s("mixed");
    assert!(
        mixed.chars().any(|c| c.is_ascii_uppercase()) && mixed.contains('@'),
        "{mixed}"
    );
    assert_ne!(mixed, mixed.to_lowercase());
    assert!(s("a8").len() == 8 && s("a8").chars().all(|c| c.is_ascii_alphabetic()));
    assert!(s("g").starts_with("Grp-") && s("g").len() == 12);
    let okta = s("okta");
    assert!(
        okta.starts_with("00u")
            && okta.len() == 20
            && okta.chars().all(|c| c.is_ascii_alphanumeric())
    );
    let rg = s("rg");
    assert!(
        rg.starts_with("Runscope") && rg.len() == 11 && rg[8..].chars().all(|c| c.is_ascii_digit())
    );
    let rf = s("rf");
    assert!(rf.len() == 12 && rf[..1].chars().all(|c| c.is_ascii_uppercase()));
    assert!(
        rf[1..9].chars().all(|c| c.is_ascii_lowercase())
            && rf[9..].chars().all(|c| c.is_ascii_digit())
    );
    assert_eq!(s("re"), format!("{rg}{rf}@atko.com"));
    let again = must(generate_vars(spec), "generate again");
    assert_ne!(
        again.get("id"),
        vars.get("id"),
        "generators must be random per run"
    );
    let bad = serde_json::json!({"x": "nope"});
    let Some(bad) = bad.as_object() else {
        panic!("object")
    };
    assert!(generate_vars(bad).is_err());
}

#[test]
fn corpus_is_well_formed_for_this_runner() {
    let scenarios = must(load_corpus(), "load corpus");
    assert!(
        scenarios.len() >= MIN_SCENARIOS,
        "only {} scenarios",
        scenarios.len()
    );
    let problems: Vec<String> = scenarios.iter().flat_map(validate_scenario).collect();
    assert!(
        problems.is_empty(),
        "corpus problems:\n{}",
        problems.join("\n")
    );
    let ids: HashSet<String> = scenarios.iter().map(scenario_id).collect();
    assert_eq!(ids.len(), scenarios.len(), "duplicate scenario ids");
}

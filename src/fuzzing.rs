//! Entry points shared by the fuzz targets in `fuzz/` and by the corpus
//! regression test `tests/fuzz_corpus.rs`. Each takes arbitrary bytes, runs them
//! through the protocol layer and panics when an invariant does not hold, so a
//! fuzzer finding and a corpus file that regresses fail the same way.
//!
//! It lives at the crate root rather than in `scim` because the filter entry
//! also drives `store::filter_sql::translate` (pure, but a storage module), and
//! `scim` depends on nothing outside itself.
//!
//! Invariants checked (only ones the code actually promises):
//! * parsing and applying are deterministic;
//! * errors carry the status and `scimType` RFC 7644 §3.12 gives them;
//! * a parsed filter stays within `MAX_FILTER_LEN`, `MAX_DEPTH`, `MAX_TERMS`,
//!   reads back to the same tree from its canonical rendering, evaluates
//!   without panicking, and translates to SQL whose `?` placeholders match
//!   its binds and whose bound text never holds NUL (PostgreSQL cannot);
//! * a parsed PatchOp has one operation per element, a path for every
//!   `remove` and a value for every `add`/`replace`, and each path re-parses
//!   to itself;
//! * a successful PATCH yields a canonical document: `normalize` accepts it
//!   again unchanged, it holds no read-only or write-only attribute, and its
//!   required attributes are present;
//! * a path-less PATCH key means what the same text means as a `path` (same
//!   trimming and case rules);
//! * a projection keeps to its 256-entry cap, returns only what the resource
//!   has (`id` and `schemas` always), whatever the order or repetition of its
//!   entries, and projecting twice is projecting once.

use crate::scim::error::{ScimError, ScimType};
use crate::scim::filter::{self, CompValue, Filter, MAX_DEPTH, MAX_FILTER_LEN, MAX_TERMS};
use crate::scim::patch::{self, MAX_OPERATIONS, Op, Operation, PatchContext, PatchPath};
use crate::scim::resource::{
    self as resource, Doc, Limits, MAX_PROJECTION_ENTRIES, Meta, Projection, group_keys, normalize,
    user_keys,
};
use crate::scim::schema::{GROUP_TYPE, ResourceType, USER_TYPE};
use crate::store::db::{Backend, Bind};
use crate::store::filter_sql;
use serde_json::{Value, json};
use std::fmt::Write as _;
use std::sync::LazyLock;

/// The id of the seed User that `patch_apply` patches.
pub const SEED_USER_ID: &str = "2819c223-7f76-453a-919d-413861904646";
/// The id of the seed Group that `patch_apply` patches.
pub const SEED_GROUP_ID: &str = "e9e30dba-f08f-4109-8486-d5c6a331660a";

/// Fuzz entry: bytes → UTF-8 → `filter::parse`, then evaluation and SQL translation.
pub fn filter_parse(data: &[u8]) {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = filter::parse(input);
    assert_eq!(
        parsed,
        filter::parse(input),
        "filter parsing is not deterministic for {input:?}"
    );
    match parsed {
        Ok(f) => {
            assert!(
                input.len() <= MAX_FILTER_LEN,
                "a filter of {} bytes was accepted",
                input.len()
            );
            check_filter(&f, input);
        }
        Err(e) => assert_invalid_filter(&e, input),
    }
}

/// Fuzz entry: bytes → JSON → `patch::parse_request`.
pub fn patch_parse(data: &[u8]) {
    if let Ok(body) = serde_json::from_slice::<Value>(data) {
        check_parse_request(&body);
    }
}

/// Fuzz entry: bytes → JSON PatchOp → `parse_request` → `apply` to a seed User
/// and a seed Group.
pub fn patch_apply(data: &[u8]) {
    let Ok(body) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let Some(ops) = check_parse_request(&body) else {
        return;
    };
    for rt in [&USER_TYPE, &GROUP_TYPE] {
        // Every operation's value, taken as a POST/PUT body: what `normalize`
        // stores must be what it would store again.
        for op in &ops {
            if let Some(v @ Value::Object(_)) = &op.value {
                check_normalized(rt, v);
            }
        }
    }
    check_apply(&USER_TYPE, SEED_USER_ID, &SEED_USER, &ops);
    check_apply(&GROUP_TYPE, SEED_GROUP_ID, &SEED_GROUP, &ops);
}

/// `normalize` is idempotent: a stored document is re-normalised by every later
/// PATCH and PUT, which must not change attributes the request did not touch.
fn check_normalized(rt: &ResourceType, body: &Value) {
    if let Ok(doc) = normalize(rt, body) {
        assert_eq!(
            normalize(rt, &Value::Object(doc.clone())).as_ref(),
            Ok(&doc),
            "a normalised {} changes when normalised again\n  body: {body}\n  doc:  {}",
            rt.name,
            Value::Object(doc.clone())
        );
    }
}

/// A realistic stored User: what an Okta or Entra create leaves behind.
pub static SEED_USER: LazyLock<Doc> = LazyLock::new(|| {
    seed(
        &USER_TYPE,
        json!({
            "schemas": [
                "urn:ietf:params:scim:schemas:core:2.0:User",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
            ],
            "externalId": "00ujl29u0le5T6Aj10h7",
            "userName": "Barbara.Jensen@contoso.example",
            "name": {"formatted": "Ms. Barbara J Jensen III", "familyName": "Jensen", "givenName": "Barbara", "honorificPrefix": "Ms."},
            "displayName": "Babs Jensen",
            "nickName": "Babs",
            "title": "Tour Guide",
            "preferredLanguage": "en-US",
            "locale": "en-US",
            "timezone": "America/Los_Angeles",
            "active": true,
            "emails": [
                {"value": "Barbara.Jensen@contoso.example", "type": "work", "primary": true},
                {"value": "babs@jensen.example", "type": "home"}
            ],
            "phoneNumbers": [
                {"value": "+1 555 555 5555", "type": "work"},
                {"value": "+1 555 555 4444", "type": "mobile"}
            ],
            "addresses": [{"type": "work", "streetAddress": "100 Universal City Plaza", "locality": "Hollywood", "region": "CA", "postalCode": "91608", "country": "USA", "primary": true}],
            "roles": [{"value": "Admin", "display": "Admin", "type": "WindowsAzureActiveDirectoryRole", "primary": "True"}],
            "entitlements": [{"value": "license-e5"}],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
                "employeeNumber": "701984",
                "costCenter": "4130",
                "organization": "Universal Studios",
                "department": "Tour Operations",
                "manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d"}
            },
            "urn:ietf:params:scim:schemas:extension:CustomExtensionName:2.0:User": {"tag": "701984"}
        }),
    )
});

/// A realistic Group, with members in the document (as a PUT or POST body has them).
pub static SEED_GROUP: LazyLock<Doc> = LazyLock::new(|| {
    seed(
        &GROUP_TYPE,
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "externalId": "b7ad2b6d-1f3e-4c8a-9e2a-6a1c0d1b2e3f",
            "displayName": "Tour Guides",
            "members": [
                {"value": SEED_USER_ID, "display": "Babs Jensen"},
                {"value": "902c246b-6245-4190-8e05-00816be7344a", "display": "Mandy Pepperidge"}
            ]
        }),
    )
});

fn seed(rt: &ResourceType, body: Value) -> Doc {
    normalize(rt, &body).unwrap_or_else(|e| panic!("the seed {} is invalid: {e:?}", rt.name))
}

// ---------------------------------------------------------------------------
// Filters

fn assert_invalid_filter(e: &ScimError, input: &str) {
    assert_eq!(
        (e.status, e.scim_type),
        (400, Some(ScimType::InvalidFilter)),
        "{input:?} failed with the wrong error: {e:?}"
    );
}

/// Nesting of `not (…)` and `attr[…]` (each needs a group the parser counts) and
/// the number of attribute expressions.
fn shape(f: &Filter) -> (usize, usize) {
    match f {
        Filter::And(a, b) | Filter::Or(a, b) => {
            let (da, ta) = shape(a);
            let (db, tb) = shape(b);
            (da.max(db), ta + tb)
        }
        Filter::Not(a) => {
            let (d, t) = shape(a);
            (d + 1, t)
        }
        Filter::ValuePath(_, a) => {
            let (d, t) = shape(a);
            (d + 1, t + 1)
        }
        Filter::Present(_) | Filter::Compare(..) => (0, 1),
    }
}

fn check_filter(f: &Filter, input: &str) {
    let (depth, terms) = shape(f);
    assert!(
        depth <= MAX_DEPTH,
        "{input:?} parsed with nesting {depth} > {MAX_DEPTH}"
    );
    // Entra's `attr[…].sub op v` adds one comparison the parser does not count
    // as a term, at most one per value path.
    assert!(
        terms <= 2 * MAX_TERMS,
        "{input:?} parsed with {terms} attribute expressions"
    );

    // The canonical rendering reads back to the same tree, unless rendering made
    // it longer or deeper than the limits allow.
    let text = render(f);
    if text.len() <= MAX_FILTER_LEN {
        match filter::parse(&text) {
            Ok(again) => assert_eq!(
                &again, f,
                "{input:?} rendered as {text:?} reads back differently"
            ),
            Err(e) => assert!(
                e.detail.contains("depth") || e.detail.contains("terms"),
                "{input:?} rendered as {text:?} does not parse: {}",
                e.detail
            ),
        }
    }

    // Evaluation (PATCH value-path selection) never panics, and is deterministic.
    let exact_value = |n: &str| n.eq_ignore_ascii_case("value");
    let never = |_: &str| false;
    for subject in EVAL_SUBJECTS.iter() {
        for case_exact in [&exact_value as &dyn Fn(&str) -> bool, &never] {
            let hit = filter::matches(f, subject, case_exact);
            assert_eq!(hit, filter::matches(f, subject, case_exact));
        }
    }

    // Translation to SQL: every value is bound (one bind per placeholder), and
    // no bound text holds NUL, which PostgreSQL cannot compare or store.
    for target in [&filter_sql::USERS, &filter_sql::GROUPS] {
        for backend in [Backend::Sqlite, Backend::Postgres] {
            match filter_sql::translate(target, backend, "tenant", f) {
                Ok(sql) => {
                    assert_eq!(
                        sql.text().matches('?').count(),
                        sql.binds().len(),
                        "{input:?} → {sql:?}: placeholders and binds differ"
                    );
                    for b in sql.binds() {
                        if let Bind::Text(t) = b {
                            assert!(!t.contains('\0'), "{input:?} binds text with a NUL: {t:?}");
                        }
                    }
                }
                Err(e) => assert_invalid_filter(&e, input),
            }
        }
    }
}

/// JSON the parsed filter is evaluated against: whole documents (as rendered)
/// and elements of multi-valued attributes, including odd shapes.
static EVAL_SUBJECTS: LazyLock<Vec<Value>> = LazyLock::new(|| {
    let mut user = Value::Object(SEED_USER.clone());
    user["id"] = json!(SEED_USER_ID);
    user["meta"] = json!({"resourceType": "User", "version": "W/\"3\"", "created": "2011-08-01T18:29:49.793Z"});
    let mut subjects = vec![user, Value::Object(SEED_GROUP.clone())];
    for list in ["emails", "phoneNumbers", "addresses", "roles"] {
        if let Some(Value::Array(items)) = SEED_USER.get(list) {
            subjects.extend(items.iter().cloned());
        }
    }
    subjects.extend([
        json!({"value": 25, "primary": "True", "type": null, "display": ["a", "B"], "meta": {"version": 3}}),
        json!({"Value": "ÄÖÜ straße", "TYPE": "Work", "primary": false, "x": {"y": [1.5, -0.0, 1e300]}}),
        json!({"value": "", "type": "", "members": [{"value": "x"}, "bare", null]}),
        json!([1, 2, 3]),
        json!("a string"),
        Value::Null,
    ]);
    subjects
});

/// The canonical text of a filter: minimal parentheses, quoted strings.
pub fn render(f: &Filter) -> String {
    let mut out = String::new();
    render_into(f, 0, &mut out);
    out
}

/// `min`: the lowest precedence that may appear unparenthesised here
/// (0 = or, 1 = and, 2 = a unary or attribute expression).
fn render_into(f: &Filter, min: u8, out: &mut String) {
    let prec = match f {
        Filter::Or(..) => 0,
        Filter::And(..) => 1,
        _ => 2,
    };
    let paren = prec < min;
    if paren {
        out.push('(');
    }
    match f {
        Filter::Or(a, b) => {
            render_into(a, 0, out);
            out.push_str(" or ");
            render_into(b, 1, out);
        }
        Filter::And(a, b) => {
            render_into(a, 1, out);
            out.push_str(" and ");
            render_into(b, 2, out);
        }
        Filter::Not(a) => {
            out.push_str("not (");
            render_into(a, 0, out);
            out.push(')');
        }
        Filter::Present(p) => {
            let _ = write!(out, "{p} pr");
        }
        Filter::Compare(p, op, v) => {
            let v = match v {
                CompValue::Null => "null".to_string(),
                CompValue::Bool(b) => b.to_string(),
                CompValue::Number(n) => n.to_string(),
                CompValue::Str(s) => Value::String(s.clone()).to_string(),
            };
            let _ = write!(out, "{p} {} {v}", op.as_str());
        }
        Filter::ValuePath(p, inner) => {
            let _ = write!(out, "{p}[");
            render_into(inner, 0, out);
            out.push(']');
        }
    }
    if paren {
        out.push(')');
    }
}

// ---------------------------------------------------------------------------
// PATCH

/// Parses a PatchOp body, checks what holds of the result, and returns the
/// operations when it parsed.
fn check_parse_request(body: &Value) -> Option<Vec<Operation>> {
    let parsed = patch::parse_request(body);
    assert_eq!(
        format!("{parsed:?}"),
        format!("{:?}", patch::parse_request(body)),
        "PatchOp parsing is not deterministic for {body}"
    );
    let ops = match parsed {
        Ok(ops) => ops,
        Err(e) => {
            let expected = matches!(
                (e.status, e.scim_type),
                (413, None)
                    | (
                        400,
                        Some(
                            ScimType::InvalidSyntax
                                | ScimType::InvalidPath
                                | ScimType::InvalidValue
                                | ScimType::NoTarget
                        )
                    )
            );
            assert!(expected, "{body} failed with an unexpected error: {e:?}");
            return None;
        }
    };
    let listed = body
        .get("Operations")
        .or_else(|| body.get("operations"))
        .and_then(Value::as_array)
        .map(Vec::len);
    assert_eq!(
        Some(ops.len()),
        listed,
        "{body}: operations parsed ≠ listed"
    );
    assert!(ops.len() <= MAX_OPERATIONS);
    for op in &ops {
        assert_eq!(op.raw_path.is_some(), op.path.is_some(), "{op:?}");
        match op.op {
            Op::Remove => assert!(op.path.is_some(), "a remove without a path: {op:?}"),
            Op::Add | Op::Replace => {
                assert!(op.value.is_some(), "an add/replace without a value: {op:?}")
            }
        }
        if let (Some(raw), Some(path)) = (&op.raw_path, &op.path) {
            assert_eq!(
                PatchPath::parse(raw).as_ref(),
                Ok(path),
                "path {raw:?} re-parses differently"
            );
            if let Some(f) = &path.filter {
                check_filter(f, raw);
            }
        }
    }
    Some(ops)
}

fn check_apply(rt: &'static ResourceType, id: &str, doc: &Doc, ops: &[Operation]) {
    let ctx = PatchContext {
        rt,
        id,
        limits: Limits::default(),
    };
    let out = patch::apply(&ctx, doc, ops);
    assert_eq!(
        out,
        patch::apply(&ctx, doc, ops),
        "PATCH of a {} is not deterministic",
        rt.name
    );
    let new = match out {
        Ok(new) => new,
        Err(e) => {
            assert!(
                e.status == 400 && e.scim_type.is_some(),
                "PATCH of a {} failed with an unexpected error: {e:?}",
                rt.name
            );
            return;
        }
    };
    // The result is canonical: normalising it again changes nothing (the stored
    // document is re-normalised by the next PATCH or PUT).
    let again = normalize(rt, &Value::Object(new.clone()));
    assert_eq!(
        again.as_ref(),
        Ok(&new),
        "a patched {} is not stable under normalize\n  patched: {}",
        rt.name,
        Value::Object(new.clone())
    );
    for key in ["id", "meta", "schemas", "password", "groups"] {
        assert!(
            !new.keys().any(|k| k.eq_ignore_ascii_case(key)),
            "a patched {} holds '{key}'",
            rt.name
        );
    }
    if std::ptr::eq(rt, &USER_TYPE) {
        assert!(!user_keys(&new).user_name.is_empty(), "userName lost");
    } else {
        assert!(
            !group_keys(&new).display_name.is_empty(),
            "displayName lost"
        );
    }
}

// ---------------------------------------------------------------------------
// Path-less PATCH keys

/// Fuzz entry: bytes → a path-less PATCH key (the first line) and its value
/// (the rest, as JSON, else as a string), applied as `{"op", "value": {key: v}}`
/// to the seed User and Group. A key means what the same text means as a
/// `path`: the same trimming and case rules, so a key and its `path` twin give
/// the same result (keys naming `id`/`meta`/`schemas` or an extension URN
/// have rules of their own and are only checked for canonical results), and
/// so do the key with stray spaces around it and with its name in capitals.
pub fn pathless_keys(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (key, rest) = text.split_once('\n').unwrap_or((text, ""));
    let value = serde_json::from_str::<Value>(rest).unwrap_or_else(|_| Value::String(rest.into()));
    let parsed = patch::pathless_path(key);
    assert_eq!(
        parsed,
        PatchPath::parse(key),
        "a path-less key {key:?} parses unlike a path"
    );
    assert_eq!(
        parsed,
        patch::pathless_path(&format!(" \t{key}  ")),
        "{key:?} with spaces around it parses differently"
    );
    let trimmed = key.trim();
    let special = ["id", "meta", "schemas"]
        .iter()
        .any(|k| trimmed.eq_ignore_ascii_case(k))
        || trimmed
            .get(..4)
            .is_some_and(|p| p.eq_ignore_ascii_case("urn:"))
        || trimmed.is_empty();
    // The attribute part in capitals (a filter's literals keep their case).
    let upper = match key.find('[') {
        Some(i) => format!("{}{}", key[..i].to_ascii_uppercase(), &key[i..]),
        None => key.to_ascii_uppercase(),
    };
    for op in ["add", "replace"] {
        let pathless = |k: &str| {
            let mut map = serde_json::Map::new();
            map.insert(k.to_string(), value.clone());
            json!({"Operations": [{"op": op, "value": Value::Object(map)}]})
        };
        for (rt, id, doc) in [
            (&USER_TYPE, SEED_USER_ID, &*SEED_USER),
            (&GROUP_TYPE, SEED_GROUP_ID, &*SEED_GROUP),
        ] {
            let Some(ops) = check_parse_request(&pathless(key)) else {
                continue;
            };
            check_apply(rt, id, doc, &ops);
            let outcome = |body: &Value| -> Result<Doc, (u16, Option<ScimType>)> {
                let ops = patch::parse_request(body).map_err(|e| (e.status, e.scim_type))?;
                let ctx = PatchContext {
                    rt,
                    id,
                    limits: Limits::default(),
                };
                patch::apply(&ctx, doc, &ops).map_err(|e| (e.status, e.scim_type))
            };
            let got = outcome(&pathless(key));
            for variant in [trimmed.to_string(), format!("  {key}\t"), upper.clone()] {
                if variant.trim() == trimmed || !special {
                    assert_eq!(
                        outcome(&pathless(&variant)),
                        got,
                        "path-less key {variant:?} differs from {key:?} ({op} on a {})",
                        rt.name
                    );
                }
            }
            if !special {
                let with_path = json!({"Operations": [{"op": op, "path": key, "value": value}]});
                assert_eq!(
                    outcome(&with_path),
                    got,
                    "path-less key {key:?} differs from the same path ({op} on a {})",
                    rt.name
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Projection

/// Fuzz entry: bytes → `attributes` (the first line) and `excludedAttributes`
/// (the rest) → `Projection::parse`, applied to the seed User and Group as
/// rendered. Checks: the 256-entry cap (and its error); only what the resource
/// has comes out, `id` and `schemas` always; the answer does not depend on the
/// order of the entries or on repeating them; projecting twice is projecting once.
pub fn projection_parse(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (attributes, excluded) = match text.split_once('\n') {
        Some((a, e)) => (Some(a), Some(e)),
        None => (Some(text), None),
    };
    let entries =
        |s: Option<&str>| s.map_or(0, |s| s.split(',').filter(|p| !p.trim().is_empty()).count());
    let (na, ne) = (entries(attributes), entries(excluded));
    let projection = match Projection::parse(attributes, excluded) {
        Ok(p) => {
            assert!(
                na <= MAX_PROJECTION_ENTRIES && ne <= MAX_PROJECTION_ENTRIES,
                "{na} / {ne} entries accepted"
            );
            assert_eq!(p.entries(), (na, ne));
            p
        }
        Err(e) => {
            assert_eq!((e.status, e.scim_type), (400, Some(ScimType::InvalidValue)));
            assert!(
                na > MAX_PROJECTION_ENTRIES || ne > MAX_PROJECTION_ENTRIES,
                "{e:?}"
            );
            assert!(e.detail.contains("256"), "{e:?}");
            return;
        }
    };
    let reordered = |s: Option<&str>| {
        s.map(|s| {
            let mut v: Vec<&str> = s.split(',').collect();
            v.reverse();
            v.join(",")
        })
    };
    let doubled = |s: Option<&str>| s.map(|s| format!("{s},{s}"));
    let (ra, re) = (reordered(attributes), reordered(excluded));
    let (da, de) = (doubled(attributes), doubled(excluded));
    let variants: Vec<Projection> = [
        Projection::parse(ra.as_deref(), re.as_deref()),
        Projection::parse(da.as_deref(), de.as_deref()),
    ]
    .into_iter()
    .filter_map(Result::ok)
    .collect();
    for (rt, id, doc) in [
        (&USER_TYPE, SEED_USER_ID, &*SEED_USER),
        (&GROUP_TYPE, SEED_GROUP_ID, &*SEED_GROUP),
    ] {
        let meta = Meta {
            resource_type: rt.name,
            created: "2011-08-01T18:29:49.793Z".into(),
            last_modified: "2011-08-01T18:29:49.793Z".into(),
            version: 3,
            location: format!("https://example.test/scim/v2/x/{id}"),
        };
        let full = resource::render(rt, id, doc, &meta);
        let out = projection.apply(rt, full.clone());
        assert_eq!(out["id"], id, "{text:?} dropped id");
        assert_eq!(out["schemas"], full["schemas"], "{text:?} dropped schemas");
        assert!(
            within(&out, &full),
            "{text:?} produced what the resource lacks: {out}"
        );
        assert_eq!(
            projection.apply(rt, out.clone()),
            out,
            "{text:?}: projecting twice differs from once"
        );
        for v in &variants {
            assert_eq!(
                v.apply(rt, full.clone()),
                out,
                "{text:?}: the order or repetition of entries changed the answer"
            );
        }
    }
}

/// Whether every member of `part` is in `whole` (objects by key, arrays
/// element-wise in order, other values equal).
fn within(part: &Value, whole: &Value) -> bool {
    match (part, whole) {
        (Value::Object(p), Value::Object(w)) => p
            .iter()
            .all(|(k, v)| w.get(k).is_some_and(|wv| within(v, wv))),
        (Value::Array(p), Value::Array(w)) => {
            let mut it = w.iter();
            p.iter().all(|pv| it.any(|wv| within(pv, wv)))
        }
        (p, w) => p == w,
    }
}

/// Fuzz entry: bytes → `search_request::from_bytes` (the SearchRequest body,
/// parsed as it is read), against a reference that parses the whole body to a
/// `Value` first and reads the members from it. Checks: they accept and refuse
/// the same bodies, with a 400 of the same `scimType`, and what they accept
/// means the same (filter, sort, paging, count, projection sizes).
pub fn search_request(data: &[u8]) {
    let fast = crate::scim::search_request::from_bytes(data);
    if let Err(e) = &fast {
        assert_eq!(e.status, 400, "{e:?}");
    }
    // A name given twice means whichever JSON reader one asks: the streaming
    // read takes the first refusal or the last value, a `Value` the last.
    if has_duplicate_names(data) {
        return;
    }
    let slow = search_request_reference(data);
    match (&fast, &slow) {
        (Ok(f), Ok(s)) => {
            let meaning = |p: &crate::scim::list::ListParams| {
                format!(
                    "{:?} {:?} {:?} {} {:?}",
                    p.filter,
                    p.sort,
                    p.paging,
                    p.count,
                    p.projection.entries()
                )
            };
            assert_eq!(
                meaning(f),
                meaning(s),
                "{:?}",
                String::from_utf8_lossy(data)
            );
        }
        (Err(f), Err(s)) => {
            assert_eq!(f.status, 400, "{f:?}");
            assert_eq!(
                (f.status, f.scim_type),
                (s.status, s.scim_type),
                "{f:?} / {s:?}"
            );
        }
        _ => panic!(
            "{:?}: streaming {fast:?}, reference {slow:?}",
            String::from_utf8_lossy(data)
        ),
    }
}

/// Whether the top-level object names a member twice (case-insensitively).
fn has_duplicate_names(data: &[u8]) -> bool {
    use serde::de::{Deserializer as _, IgnoredAny, MapAccess, Visitor};
    struct Names;
    impl<'de> Visitor<'de> for Names {
        type Value = bool;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
            let mut seen = std::collections::HashSet::new();
            let mut twice = false;
            while let Some(k) = map.next_key::<String>()? {
                twice |= !seen.insert(k.to_ascii_lowercase());
                map.next_value::<IgnoredAny>()?;
            }
            Ok(twice)
        }
    }
    serde_json::Deserializer::from_slice(data)
        .deserialize_map(Names)
        .unwrap_or(false)
}

/// The members of a SearchRequest read from a whole `Value`: names match
/// case-insensitively (the last match wins, as a streaming read overwrites),
/// lists of strings are joined by commas, `null` is absent.
fn search_request_reference(data: &[u8]) -> Result<crate::scim::list::ListParams, ScimError> {
    use crate::scim::list::{Raw, build, parse_int};
    if data.iter().all(u8::is_ascii_whitespace) {
        return Err(ScimError::invalid_syntax("empty"));
    }
    let v: Value =
        serde_json::from_slice(data).map_err(|e| ScimError::invalid_syntax(e.to_string()))?;
    let obj = v
        .as_object()
        .ok_or_else(|| ScimError::invalid_syntax("not an object"))?;
    let get = |name: &str| {
        obj.iter()
            .rev()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    };
    let nul = || ScimError::invalid_value("NUL");
    let text = |name: &str| -> Result<Option<String>, ScimError> {
        match get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.contains('\0') => Err(nul()),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Array(a)) => {
                let strings: Vec<&str> = a.iter().filter_map(Value::as_str).collect();
                if strings.iter().any(|s| s.contains('\0')) {
                    return Err(nul());
                }
                Ok(Some(strings.join(",")))
            }
            Some(_) => Err(ScimError::invalid_value("wrong type")),
        }
    };
    let int = |name: &str| -> Result<Option<i64>, ScimError> {
        match get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n
                .as_i64()
                .map(Some)
                .ok_or_else(|| ScimError::invalid_value("not an integer")),
            Some(Value::String(s)) => parse_int(name, s).map(Some),
            Some(_) => Err(ScimError::invalid_value("wrong type")),
        }
    };
    // Members are read in the body's order (a refusal names the first bad
    // one); the order only decides which error, and both are 400 invalidValue.
    let (filter, sort_by, sort_order, cursor) = (
        text("filter")?,
        text("sortBy")?,
        text("sortOrder")?,
        text("cursor")?,
    );
    let (start, count) = (int("startIndex")?, int("count")?);
    let (attributes, excluded) = (text("attributes")?, text("excludedAttributes")?);
    build(Raw {
        filter: filter.as_deref(),
        start,
        cursor: cursor.as_deref(),
        count,
        sort_by: sort_by.as_deref(),
        sort_order: sort_order.as_deref(),
        attributes: attributes.as_deref(),
        excluded: excluded.as_deref(),
    })
}

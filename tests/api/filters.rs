//! Filters, sorting and paging over the whole RFC 7644 grammar, checked
//! against the in-memory reference evaluator (`scim::filter_eval`) on random
//! filters over a varied population: the SQL translation must return exactly
//! the resources the reference says match, on SQLite and PostgreSQL.

use super::body;
use crate::common::{Backend, TestApp, spawn_app};
use custodian::scim::filter::parse;
use custodian::scim::filter_eval::matches;
use custodian::scim::fold::fold;
use custodian::scim::schema::{GROUP_TYPE, USER_TYPE};
use proptest::prelude::*;
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::BTreeSet;

const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// Thirty users whose attributes vary in presence, case, script and shape.
fn population() -> Vec<Value> {
    let given = [
        "Ann", "ANN", "Zoë", "Straße", "bob", "Émile", "li", "O'Neil",
    ];
    let titles = [
        Some("Engineer"),
        Some("engineer II"),
        None,
        Some("STRASSE lead"),
        Some("Zoë's aide"),
    ];
    let depts = [Some("R&D"), Some("r&d"), Some("Sales"), None];
    (0..30)
        .map(|i| {
            let g = given[i % given.len()];
            let mut u = json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": format!("{g}.user{i}@Example.com"),
                "name": {"givenName": g, "familyName": format!("Fam{}", i % 4)},
                "active": i % 3 != 0,
            });
            let o = u.as_object_mut().expect("object");
            if i % 2 == 0 {
                o.insert("externalId".into(), json!(format!("ext-{i}")));
                o.insert("displayName".into(), json!(format!("{g} Display")));
            }
            if let Some(t) = titles[i % titles.len()] {
                o.insert("title".into(), json!(t));
            }
            if i % 4 == 1 {
                o.insert("nickName".into(), json!(format!("nick{}", i % 3)));
            }
            let mut emails = vec![];
            if i % 5 != 4 {
                emails.push(json!({"value": format!("{g}{i}@Work.example"), "type": "work", "primary": i % 2 == 0}));
            }
            if i % 3 == 1 {
                emails.push(json!({"value": format!("{g}{i}@home.example"), "type": "home"}));
            }
            if i % 7 == 3 {
                // An element without a value (only a type): filters must still see it.
                emails.push(json!({"type": "other", "display": "no address"}));
            }
            if !emails.is_empty() {
                o.insert("emails".into(), Value::Array(emails));
            }
            if i % 3 != 2 {
                o.insert(
                    "phoneNumbers".into(),
                    json!([{"value": format!("+1 555 01{i:02}"), "type": if i % 2 == 0 {"work"} else {"mobile"}}]),
                );
            }
            if i % 4 == 0 {
                o.insert(
                    "addresses".into(),
                    json!([{"locality": if i % 8 == 0 {"Berlin"} else {"berlin"}, "country": "DE", "type": "work", "primary": true}]),
                );
            }
            if i % 6 == 5 {
                o.insert("roles".into(), json!([{"value": "Admin", "primary": "True"}, {"value": "viewer"}]));
            }
            let mut ent = serde_json::Map::new();
            if let Some(d) = depts[i % depts.len()] {
                ent.insert("department".into(), json!(d));
            }
            if i % 3 == 0 {
                ent.insert("employeeNumber".into(), json!(format!("{}", 1000 + i)));
            }
            if i % 5 == 2 {
                ent.insert("manager".into(), json!({"value": format!("MGR-{}", i % 2)}));
            }
            if !ent.is_empty() {
                o.insert(ENT.into(), Value::Object(ent));
            }
            u
        })
        .collect()
}

async fn create_population(app: &TestApp) -> (Vec<Value>, Vec<Value>) {
    let mut ids = vec![];
    for u in population() {
        let (s, v) = body(
            app.req(Method::POST, "/Users")
                .json(&u)
                .send()
                .await
                .expect("send"),
        )
        .await;
        assert_eq!(s, 201, "{v}");
        ids.push(v["id"].as_str().expect("id").to_string());
    }
    let mut group_ids = vec![];
    for (n, name) in ["Engineering", "engineering-ops", "Sales Team", "Empty"]
        .iter()
        .enumerate()
    {
        let members: Vec<Value> = ids
            .iter()
            .enumerate()
            .filter(|(i, _)| n < 3 && i % (n + 2) == 0)
            .map(|(_, id)| json!({"value": id}))
            .collect();
        let mut g = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": name, "members": members});
        if n % 2 == 0 {
            g["externalId"] = json!(format!("G-{n}"));
        }
        let (s, v) = body(
            app.req(Method::POST, "/Groups")
                .json(&g)
                .send()
                .await
                .expect("send"),
        )
        .await;
        assert_eq!(s, 201, "{v}");
        group_ids.push(v["id"].as_str().expect("id").to_string());
    }
    // A group inside a group.
    let (s, _) = body(
        app.req(Method::PATCH, &format!("/Groups/{}", group_ids[3]))
            .json(&json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "add", "path": "members", "value": [{"value": group_ids[0], "type": "Group"}]}]}))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert!(s == 200 || s == 204);
    let all = |path: &'static str| async move {
        let (s, v) = body(app.req(Method::GET, path).send().await.expect("send")).await;
        assert_eq!(s, 200);
        v["Resources"].as_array().cloned().unwrap_or_default()
    };
    (
        all("/Users?count=1000").await,
        all("/Groups?count=1000").await,
    )
}

/// Literal values: pieces of the population's values in several cases, plus misses.
fn literals(users: &[Value], groups: &[Value]) -> Vec<String> {
    let mut out = BTreeSet::new();
    fn walk(v: &Value, out: &mut BTreeSet<String>) {
        match v {
            Value::String(s) if !s.starts_with("http") => {
                out.insert(s.clone());
                out.insert(s.to_uppercase());
                out.insert(fold(s));
                let chars: Vec<char> = s.chars().collect();
                if chars.len() > 3 {
                    out.insert(chars[..3].iter().collect());
                    out.insert(chars[chars.len() - 3..].iter().collect());
                    out.insert(chars[1..chars.len() - 1].iter().collect());
                }
            }
            Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            Value::Object(o) => o.values().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    users.iter().chain(groups).for_each(|u| walk(u, &mut out));
    for miss in [
        "",
        "zzz",
        "ß",
        "ss",
        "@",
        "1",
        "2099-01-01T00:00:00Z",
        "1970-01-01T00:00:00+02:00",
    ] {
        out.insert(miss.to_string());
    }
    out.into_iter().collect()
}

const USER_PATHS: &[&str] = &[
    "userName",
    "displayName",
    "name.givenName",
    "name.familyName",
    "nickName",
    "title",
    "active",
    "externalId",
    "id",
    "emails",
    "emails.value",
    "emails.type",
    "emails.primary",
    "emails.display",
    "phoneNumbers.value",
    "phoneNumbers.type",
    "addresses.locality",
    "addresses.primary",
    "roles.value",
    "roles.primary",
    "department",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
    "employeeNumber",
    "manager",
    "manager.value",
    "meta.created",
    "meta.lastModified",
    "groups.display",
    "groups.value",
    "urn:ietf:params:scim:schemas:core:2.0:User:title",
    "name",
];
const USER_VALUE_PATHS: &[(&str, &[&str])] = &[
    ("emails", &["value", "type", "primary", "display"]),
    ("phoneNumbers", &["value", "type"]),
    ("addresses", &["locality", "country", "primary", "type"]),
    ("roles", &["value", "primary"]),
    ("groups", &["value", "display", "type"]),
    ("name", &["givenName", "familyName"]),
];
const GROUP_PATHS: &[&str] = &[
    "displayName",
    "externalId",
    "id",
    "members",
    "members.value",
    "members.type",
    "meta.created",
];
const GROUP_VALUE_PATHS: &[(&str, &[&str])] = &[("members", &["value", "type"])];
const OPS: &[&str] = &["eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le", "pr"];

fn value_strategy(lits: Vec<String>) -> impl Strategy<Value = String> {
    prop_oneof![
        6 => prop::sample::select(lits).prop_map(|s| serde_json::to_string(&s).unwrap_or_default()),
        1 => prop::sample::select(vec!["true", "false", "null", "\"True\"", "42"]).prop_map(str::to_string),
    ]
}

fn comparison(paths: Vec<String>, lits: Vec<String>) -> BoxedStrategy<String> {
    (
        prop::sample::select(paths),
        prop::sample::select(OPS.to_vec()),
        value_strategy(lits),
    )
        .prop_map(|(p, op, v)| {
            if op == "pr" {
                format!("{p} pr")
            } else {
                format!("{p} {op} {v}")
            }
        })
        .boxed()
}

fn filter_strategy(
    paths: &[&str],
    value_paths: &'static [(&'static str, &'static [&'static str])],
    lits: Vec<String>,
) -> impl Strategy<Value = String> {
    let top = comparison(paths.iter().map(|s| s.to_string()).collect(), lits.clone());
    let vp = prop::sample::select(value_paths.to_vec()).prop_flat_map(move |(attr, subs)| {
        let inner = comparison(subs.iter().map(|s| s.to_string()).collect(), lits.clone());
        (
            inner.clone(),
            prop::option::of((prop::sample::select(vec!["and", "or"]), inner)),
        )
            .prop_map(move |(a, b)| match b {
                Some((op, b)) => format!("{attr}[{a} {op} {b}]"),
                None => format!("{attr}[{a}]"),
            })
    });
    let leaf = prop_oneof![3 => top, 1 => vp];
    leaf.prop_recursive(3, 12, 2, |inner| {
        prop_oneof![
            (
                inner.clone(),
                prop::sample::select(vec!["and", "or"]),
                inner.clone()
            )
                .prop_map(|(a, op, b)| format!("({a}) {op} ({b})")),
            inner.clone().prop_map(|a| format!("not ({a})")),
            inner.prop_map(|a| format!("not({a})")),
        ]
    })
}

async fn differential(b: Backend) {
    let app = spawn_app(b).await;
    let (users, groups) = create_population(&app).await;
    assert_eq!(users.len(), 30);
    let lits = literals(&users, &groups);
    let handle = tokio::runtime::Handle::current();
    let app = std::sync::Arc::new(app);
    let a = app.clone();
    tokio::task::spawn_blocking(move || {
        let checked = std::cell::Cell::new([0usize; 3]);
        for (rt, path, resources, strategy, cases) in [
            (
                &USER_TYPE,
                "/Users",
                &users,
                filter_strategy(USER_PATHS, USER_VALUE_PATHS, lits.clone()).boxed(),
                300,
            ),
            (
                &GROUP_TYPE,
                "/Groups",
                &groups,
                filter_strategy(GROUP_PATHS, GROUP_VALUE_PATHS, lits.clone()).boxed(),
                120,
            ),
        ] {
            let mut runner =
                proptest::test_runner::TestRunner::new(proptest::test_runner::Config {
                    cases,
                    failure_persistence: None,
                    ..Default::default()
                });
            runner
                .run(&strategy, |f| {
                    let expected: Result<BTreeSet<String>, _> = parse(&f).and_then(|parsed| {
                        resources
                            .iter()
                            .filter_map(|r| match matches(rt, &parsed, r) {
                                Ok(true) => {
                                    Some(Ok(r["id"].as_str().unwrap_or_default().to_string()))
                                }
                                Ok(false) => None,
                                Err(e) => Some(Err(e)),
                            })
                            .collect()
                    });
                    let (s, v) = handle.block_on(async {
                        body(
                            a.req(
                                Method::GET,
                                &format!("{path}?count=1000&filter={}", enc(&f)),
                            )
                            .send()
                            .await
                            .expect("send"),
                        )
                        .await
                    });
                    match expected {
                        Ok(ids) => {
                            prop_assert_eq!(s, 200, "{}: {}", f, v);
                            let got: BTreeSet<String> = v["Resources"]
                                .as_array()
                                .map(|a| {
                                    a.iter()
                                        .map(|r| r["id"].as_str().unwrap_or_default().to_string())
                                        .collect()
                                })
                                .unwrap_or_default();
                            prop_assert_eq!(&got, &ids, "filter {}", f);
                            let mut c = checked.get();
                            c[usize::from(!ids.is_empty())] += 1;
                            checked.set(c);
                        }
                        Err(e) => {
                            prop_assert_eq!(s, 400, "{}: reference says {:?}, server {}", f, e, v);
                            prop_assert_eq!(
                                v["scimType"].as_str(),
                                e.scim_type.map(|t| t.as_str()),
                                "{}",
                                f
                            );
                            let mut c = checked.get();
                            c[2] += 1;
                            checked.set(c);
                        }
                    }
                    Ok(())
                })
                .unwrap_or_else(|e| panic!("{e}"));
        }
        // The generator must exercise matches, misses and errors, or it proves little.
        let checked = checked.get();
        assert!(
            checked.iter().all(|n| *n > 10),
            "too one-sided: {checked:?}"
        );
    })
    .await
    .expect("property test");
}
crate::both_backends!(differential_sql_equals_reference, super::differential);

fn ids(v: &Value) -> Vec<String> {
    v["Resources"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|r| r["id"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// The reference order for `sortBy`: the sort key (folded), absent last
/// ascending / first descending, ties by creation then id.
fn reference_order(
    users: &[Value],
    key: impl Fn(&Value) -> Option<String>,
    descending: bool,
) -> Vec<String> {
    let mut rows: Vec<(Option<String>, String, String)> = users
        .iter()
        .map(|u| {
            (
                key(u),
                u["meta"]["created"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                u["id"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    rows.sort_by(|a, b| {
        let k = match (&a.0, &b.0) {
            (Some(x), Some(y)) => x.cmp(y),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => std::cmp::Ordering::Equal,
        };
        k.then_with(|| a.1.cmp(&b.1)).then_with(|| a.2.cmp(&b.2))
    });
    if descending {
        rows.reverse();
    }
    rows.into_iter().map(|r| r.2).collect()
}

async fn get(app: &TestApp, path: &str) -> (u16, Value) {
    body(app.req(Method::GET, path).send().await.expect("send")).await
}

/// Every page of a cursor walk, asserting RFC 9865's shape on the way.
async fn cursor_walk(app: &TestApp, query: &str, count: usize) -> Vec<String> {
    let mut out = vec![];
    let mut cursor = String::new();
    for _ in 0..100 {
        let (s, v) = get(
            app,
            &format!("/Users?{query}&count={count}&cursor={}", enc(&cursor)),
        )
        .await;
        assert_eq!(s, 200, "{v}");
        assert!(
            v.get("startIndex").is_none(),
            "cursor pages have no startIndex: {v}"
        );
        let page = ids(&v);
        assert!(page.len() <= count);
        assert_eq!(v["itemsPerPage"], page.len());
        out.extend(page);
        match v["nextCursor"].as_str() {
            Some(c) => cursor = c.to_string(),
            None => return out,
        }
    }
    panic!("cursor walk did not end");
}

async fn sorting_and_paging(b: Backend) {
    let app = spawn_app(b).await;
    let (users, _) = create_population(&app).await;
    let by_user_name = |u: &Value| u["userName"].as_str().map(fold);
    let by_title = |u: &Value| u["title"].as_str().map(fold);
    let by_email = |u: &Value| {
        let e = u["emails"].as_array()?;
        let primary = e
            .iter()
            .find(|x| x["primary"] == true)
            .or_else(|| e.first())?;
        primary["value"].as_str().map(fold)
    };
    let by_active = |u: &Value| u["active"].as_bool().map(|b| b.to_string());
    type Key = fn(&Value) -> Option<String>;
    let dept = |u: &Value| u[ENT]["department"].as_str().map(fold);
    let cases: Vec<(&str, Key)> = vec![
        ("userName", by_user_name),
        ("title", by_title),
        ("emails", by_email),
        ("active", by_active),
        (
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
            dept,
        ),
    ];
    for (attr, key) in cases {
        for desc in [false, true] {
            let order = if desc { "descending" } else { "ascending" };
            let want = reference_order(&users, key, desc);
            let q = format!("sortBy={}&sortOrder={order}", enc(attr));
            let (s, v) = get(&app, &format!("/Users?{q}&count=1000")).await;
            assert_eq!(s, 200, "{v}");
            assert_eq!(ids(&v), want, "sortBy={attr} {order}");
            // startIndex pages concatenate to the same order.
            let mut paged = vec![];
            for start in (1..=30).step_by(7) {
                let (_, v) = get(&app, &format!("/Users?{q}&startIndex={start}&count=7")).await;
                assert_eq!(v["totalResults"], 30);
                paged.extend(ids(&v));
            }
            assert_eq!(paged, want, "startIndex paging, sortBy={attr} {order}");
            // Cursor pages too.
            assert_eq!(
                cursor_walk(&app, &q, 4).await,
                want,
                "cursor paging, sortBy={attr} {order}"
            );
        }
    }
    // Filtered + default order, cursor and index agree.
    let q = format!("filter={}", enc(r#"emails[type eq "work"] or title pr"#));
    let (_, all) = get(&app, &format!("/Users?{q}&count=1000")).await;
    assert_eq!(cursor_walk(&app, &q, 3).await, ids(&all));
    // totalResults is the whole match, on every cursor page.
    let (_, first) = get(&app, "/Users?cursor&count=5").await;
    assert_eq!(first["totalResults"], 30);
    let next = first["nextCursor"]
        .as_str()
        .expect("nextCursor")
        .to_string();
    // A cursor belongs to its query.
    let (s, v) = get(
        &app,
        &format!("/Users?count=5&filter={}&cursor={next}", enc("title pr")),
    )
    .await;
    assert_eq!(
        (s, v["scimType"].as_str()),
        (400, Some("invalidCursor")),
        "{v}"
    );
    let (s, v) = get(&app, &format!("/Users?count=5&startIndex=2&cursor={next}")).await;
    assert_eq!(s, 400, "{v}");
    // Resources created or deleted between pages neither repeat nor shift the rest.
    let (_, second) = get(&app, &format!("/Users?count=5&cursor={next}")).await;
    let first_ids = ids(&first);
    let (s, _) = body(
        app.req(Method::DELETE, &format!("/Users/{}", first_ids[0]))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(s, 204);
    let (_, again) = get(&app, &format!("/Users?count=5&cursor={next}")).await;
    assert_eq!(
        ids(&again),
        ids(&second),
        "deleting an earlier user does not shift later pages"
    );
    // POST /.search takes a cursor too.
    let (s, v) = body(
        app.req(Method::POST, "/Users/.search")
            .json(&json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "cursor": "", "count": 2, "sortBy": "userName"}))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(ids(&v).len(), 2);
    assert!(v["nextCursor"].is_string());
    // Groups sort and page as well.
    let (s, v) = get(
        &app,
        "/Groups?sortBy=displayName&sortOrder=descending&excludedAttributes=members",
    )
    .await;
    assert_eq!(s, 200);
    let names: Vec<String> = v["Resources"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|g| fold(g["displayName"].as_str().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default();
    let mut sorted = names.clone();
    sorted.sort();
    sorted.reverse();
    assert_eq!(names, sorted);
    assert!(v["Resources"][0].get("members").is_none());
    // Unsortable and unknown attributes are refused precisely.
    for bad in [
        "sortBy=members",
        "sortBy=name",
        "sortBy=bogus",
        "sortBy=userName&sortOrder=sideways",
    ] {
        let (s, v) = get(&app, &format!("/Users?{bad}")).await;
        assert_eq!(
            (s, v["scimType"].as_str()),
            (400, Some("invalidValue")),
            "{bad}: {v}"
        );
    }
}
crate::both_backends!(sorting_and_cursor_paging, super::sorting_and_paging);

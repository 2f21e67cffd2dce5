//! Issue 14 §2, the caps that bound one request's work: values per
//! multi-valued attribute, a stored resource's size, projection entries, and
//! the group-member path (no cap, n log n) reached through a path-less key
//! spelled with stray spaces. Each cap's error is checked (status, `scimType`,
//! the limit named), so is that nothing was written, and that another tenant's
//! requests made meanwhile all succeed.

use crate::common::{Backend, TestApp, spawn_app};
use crate::{body, create_user, patch_body, user_body};
use reqwest::Method;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

const CUSTOM: &str = "urn:ietf:params:scim:schemas:extension:Custom:2.0:User";

/// A 400 `invalidValue` whose detail contains every needle (the cap's number
/// and what it applies to).
fn assert_cap(status: u16, v: &Value, needles: &[&str]) {
    assert_eq!(status, 400, "{v}");
    assert_eq!(v["scimType"], "invalidValue", "{v}");
    let detail = v["detail"].as_str().unwrap_or_default();
    for n in needles {
        assert!(detail.contains(n), "detail {detail:?} does not name {n:?}");
    }
}

async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    json_body: Option<&Value>,
) -> (u16, Value) {
    let mut r = app.req(method, path);
    if let Some(b) = json_body {
        r = r.json(b);
    }
    body(r.send().await.expect("send")).await
}

async fn get_ok(app: &TestApp, path: &str) -> Value {
    let (s, v) = send(app, Method::GET, path, None).await;
    assert_eq!(s, 200, "{path}: {v}");
    v
}

/// Another tenant's ordinary SCIM traffic (create, read, look up, patch), run
/// until `done` is set and at least `min_rounds` times; returns every request
/// that did not get the answer it should have.
fn other_tenant_traffic(
    app: &TestApp,
    token: String,
    done: Arc<AtomicBool>,
    min_rounds: usize,
) -> tokio::task::JoinHandle<(usize, Vec<String>)> {
    let client = app.client.clone();
    let base = app.scim_url.clone();
    tokio::spawn(async move {
        let mut failures = Vec::new();
        let mut round = 0;
        while round < min_rounds || !done.load(Ordering::SeqCst) {
            let name = format!(
                "b{round}-{}@tenant-b.example",
                uuid::Uuid::new_v4().simple()
            );
            let req = |m: Method, path: String| {
                client
                    .request(m, format!("{base}{path}"))
                    .bearer_auth(&token)
                    .header("Content-Type", "application/scim+json")
            };
            let (s, v) = body(
                req(Method::POST, "/Users".into())
                    .json(&user_body(&name))
                    .send()
                    .await
                    .expect("send"),
            )
            .await;
            if s != 201 {
                failures.push(format!("POST /Users: {s} {v}"));
                round += 1;
                continue;
            }
            let id = v["id"].as_str().unwrap_or_default().to_string();
            let (s, v) = body(
                req(Method::GET, format!("/Users/{id}"))
                    .send()
                    .await
                    .expect("send"),
            )
            .await;
            if s != 200 || v["userName"] != name.as_str() {
                failures.push(format!("GET /Users/{id}: {s} {v}"));
            }
            let (s, v) = body(
                req(Method::GET, "/Users".into())
                    .query(&[("filter", format!("userName eq \"{name}\""))])
                    .send()
                    .await
                    .expect("send"),
            )
            .await;
            if s != 200 || v["totalResults"] != 1 {
                failures.push(format!("GET /Users?filter: {s} {v}"));
            }
            let (s, v) = body(
                req(Method::PATCH, format!("/Users/{id}"))
                    .json(&patch_body(
                        json!([{"op": "replace", "path": "displayName", "value": "B"}]),
                    ))
                    .send()
                    .await
                    .expect("send"),
            )
            .await;
            if s != 200 || v["displayName"] != "B" {
                failures.push(format!("PATCH /Users/{id}: {s} {v}"));
            }
            round += 1;
        }
        (round, failures)
    })
}

/// One PATCH `add` of 16,000 bare-string emails (the issue's attack): 400
/// naming the cap, and the stored user is untouched (same document, same
/// `meta.version`), while another tenant's requests all succeed.
async fn sixteen_thousand_emails(b: Backend) {
    let app = spawn_app(b).await;
    let id = create_user(&app, "emails16k@example.edu").await;
    let before = get_ok(&app, &format!("/Users/{id}")).await;
    let done = Arc::new(AtomicBool::new(false));
    let other = other_tenant_traffic(&app, app.new_tenant_token().await, done.clone(), 5);
    let emails: Vec<Value> = (0..16_000)
        .map(|i| json!(format!("e{i}@flood.example")))
        .collect();
    let (s, v) = send(
        &app,
        Method::PATCH,
        &format!("/Users/{id}"),
        Some(&patch_body(
            json!([{"op": "add", "path": "emails", "value": emails}]),
        )),
    )
    .await;
    done.store(true, Ordering::SeqCst);
    assert_cap(s, &v, &["emails", "1000"]);
    let after = get_ok(&app, &format!("/Users/{id}")).await;
    assert_eq!(after, before, "the refused PATCH wrote something");
    assert_eq!(after["meta"]["version"], before["meta"]["version"]);
    // The same through a path-less key spelled with stray spaces and capitals.
    let emails: Vec<Value> = (0..1001)
        .map(|i| json!(format!("p{i}@flood.example")))
        .collect();
    let (s, v) = send(
        &app,
        Method::PATCH,
        &format!("/Users/{id}"),
        Some(&patch_body(
            json!([{"op": "add", "value": {" EMAILS ": emails}}]),
        )),
    )
    .await;
    assert_cap(s, &v, &["emails", "1000"]);
    assert_eq!(get_ok(&app, &format!("/Users/{id}")).await, before);
    let (rounds, failures) = other.await.expect("join");
    assert!(rounds >= 5);
    assert!(failures.is_empty(), "tenant B failed: {failures:#?}");
}
crate::both_backends!(caps_sixteen_thousand_emails, super::sixteen_thousand_emails);

/// The 1,000-value cap on POST, PUT and Bulk, on core attributes, an
/// unknown extension's arrays and after duplicates are dropped; 1,000 values fit.
async fn multi_valued_cap_everywhere(b: Backend) {
    let app = spawn_app(b).await;
    let many = |n: usize, f: &dyn Fn(usize) -> Value| -> Vec<Value> { (0..n).map(f).collect() };

    let mut at_cap = user_body("cap1000@example.edu");
    at_cap["emails"] = json!(many(1000, &|i| json!({"value": format!("c{i}@x.example")})));
    let (s, v) = send(&app, Method::POST, "/Users", Some(&at_cap)).await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["emails"].as_array().map(Vec::len), Some(1000));
    let id = v["id"].as_str().expect("id").to_string();

    // Duplicates are dropped before counting: 1,500 values, 1,000 distinct.
    let mut dupes = user_body("dupes@example.edu");
    dupes["emails"] = json!(many(1500, &|i| json!(format!("d{}@x.example", i % 1000))));
    let (s, v) = send(&app, Method::POST, "/Users", Some(&dupes)).await;
    assert_eq!(s, 201, "{v}");

    let mut over = user_body("cap1001@example.edu");
    over["emails"] = json!(many(1001, &|i| json!(format!("o{i}@x.example"))));
    let (s, v) = send(&app, Method::POST, "/Users", Some(&over)).await;
    assert_cap(s, &v, &["'emails'", "1000"]);

    let mut custom = user_body("custom@example.edu");
    custom[CUSTOM] = json!({"tags": many(1001, &|i| json!(i))});
    let (s, v) = send(&app, Method::POST, "/Users", Some(&custom)).await;
    assert_cap(s, &v, &[CUSTOM, "tags", "1000"]);

    for name in ["cap1001@example.edu", "custom@example.edu"] {
        let (_, l) = send(
            &app,
            Method::GET,
            &format!("/Users?filter=userName%20eq%20%22{name}%22"),
            None,
        )
        .await;
        assert_eq!(l["totalResults"], 0, "{name} was written: {l}");
    }

    // PUT: refused, and the stored user keeps its version and its 1,000 emails.
    let before = get_ok(&app, &format!("/Users/{id}")).await;
    let mut put = user_body("cap1000@example.edu");
    put["phoneNumbers"] = json!(many(1001, &|i| json!({"value": format!("+1 555 {i:04}")})));
    let (s, v) = send(&app, Method::PUT, &format!("/Users/{id}"), Some(&put)).await;
    assert_cap(s, &v, &["'phoneNumbers'", "1000"]);
    assert_eq!(get_ok(&app, &format!("/Users/{id}")).await, before);

    // PATCH: one more email than the cap, by a filtered add.
    let (s, v) = send(
        &app,
        Method::PATCH,
        &format!("/Users/{id}"),
        Some(&patch_body(
            json!([{"op": "add", "path": "emails[type eq \"home\"]", "value": {"value": "one-more@x.example"}}]),
        )),
    )
    .await;
    assert_cap(s, &v, &["emails", "1000"]);
    assert_eq!(get_ok(&app, &format!("/Users/{id}")).await, before);

    // Bulk: the operation fails alone with the same error.
    let mut roles = user_body("bulkroles@example.edu");
    roles["roles"] = json!(many(1001, &|i| json!({"value": format!("r{i}")})));
    let (s, v) = send(
        &app,
        Method::POST,
        "/Bulk",
        Some(&json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
            "Operations": [
                {"method": "POST", "path": "/Users", "bulkId": "r", "data": roles},
                {"method": "POST", "path": "/Users", "bulkId": "ok", "data": user_body("bulkok@example.edu")}
            ]
        })),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let results = v["Operations"].as_array().expect("Operations");
    assert_eq!(results[0]["status"], "400", "{v}");
    let st = results[0]["status"]
        .as_str()
        .unwrap_or_default()
        .parse()
        .unwrap_or(0);
    assert_cap(st, &results[0]["response"], &["'roles'", "1000"]);
    assert_eq!(results[1]["status"], "201", "{v}");
}
crate::both_backends!(caps_multi_valued, super::multi_valued_cap_everywhere);

/// `max_resource_bytes` (256 KiB by default) on the canonical document,
/// unknown extensions included, a group's members excluded.
async fn resource_size_cap(b: Backend) {
    let app = spawn_app(b).await;
    let blob = |n: usize| "x".repeat(n);

    let mut big = user_body("big@example.edu");
    big[CUSTOM] = json!({"blob": blob(300 * 1024)});
    let (s, v) = send(&app, Method::POST, "/Users", Some(&big)).await;
    assert_cap(s, &v, &["262144", "max_resource_bytes"]);

    // A PATCH whose result crosses the line: refused, nothing written.
    let mut half = user_body("half@example.edu");
    half[CUSTOM] = json!({"blob": blob(150 * 1024)});
    let (s, v) = send(&app, Method::POST, "/Users", Some(&half)).await;
    assert_eq!(s, 201, "{v}");
    let id = v["id"].as_str().expect("id").to_string();
    let before = get_ok(&app, &format!("/Users/{id}")).await;
    let (s, v) = send(
        &app,
        Method::PATCH,
        &format!("/Users/{id}"),
        Some(&patch_body(
            json!([{"op": "add", "path": format!("{CUSTOM}:more"), "value": blob(150 * 1024)}]),
        )),
    )
    .await;
    assert_cap(s, &v, &["262144", "max_resource_bytes"]);
    assert_eq!(get_ok(&app, &format!("/Users/{id}")).await, before);

    // PUT too.
    let (s, v) = send(&app, Method::PUT, &format!("/Users/{id}"), Some(&big)).await;
    assert_cap(s, &v, &["262144"]);
    assert_eq!(get_ok(&app, &format!("/Users/{id}")).await, before);

    // A group: its own document is capped, its member list is not counted.
    let (s, v) = send(
        &app,
        Method::POST,
        "/Groups",
        Some(&json!({"displayName": "Big", CUSTOM: {"blob": blob(300 * 1024)}})),
    )
    .await;
    assert_cap(s, &v, &["262144"]);
    let members: Vec<Value> = (0..20_000)
        .map(|_| json!({"value": uuid::Uuid::new_v4().to_string()}))
        .collect();
    let (s, v) = send(
        &app,
        Method::POST,
        "/Groups",
        Some(&json!({"displayName": "Many members", "members": members})),
    )
    .await;
    assert_eq!(
        s, 201,
        "a member list above 256 KiB is not the resource's size: {v}"
    );
}
crate::both_backends!(caps_resource_size, super::resource_size_cap);

/// At most 256 `attributes` / `excludedAttributes` entries, in the query and
/// in a `.search` body; 256 are answered.
async fn projection_entries_cap(b: Backend) {
    let app = spawn_app(b).await;
    let id = create_user(&app, "proj@example.edu").await;
    let list = |n: usize, last: &str| -> String {
        let mut v: Vec<String> = (0..n - 1).map(|i| format!("noSuchAttr{i}")).collect();
        v.push(last.to_string());
        v.join(",")
    };
    for param in ["attributes", "excludedAttributes"] {
        for path in ["/Users".to_string(), format!("/Users/{id}")] {
            let r = app
                .req(Method::GET, &path)
                .query(&[(param, list(257, "userName"))])
                .send()
                .await
                .expect("send");
            let (s, v) = body(r).await;
            assert_cap(s, &v, &[param, "256"]);
        }
        let (s, v) = send(
            &app,
            Method::POST,
            "/Users/.search",
            Some(&json!({param: list(257, "userName").split(',').collect::<Vec<_>>()})),
        )
        .await;
        assert_cap(s, &v, &[param, "256"]);
    }
    let r = app
        .req(Method::GET, "/Users")
        .query(&[("attributes", list(256, "userName"))])
        .send()
        .await
        .expect("send");
    let (s, v) = body(r).await;
    assert_eq!(s, 200, "{v}");
    let u = &v["Resources"][0];
    assert_eq!(u["userName"], "proj@example.edu", "{v}");
    assert!(u.get("emails").is_none(), "{v}");
    let (s, v) = send(
        &app,
        Method::POST,
        "/Users/.search",
        Some(&json!({"excludedAttributes": list(256, "emails")})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert!(v["Resources"][0].get("emails").is_none(), "{v}");
    assert_eq!(v["Resources"][0]["userName"], "proj@example.edu", "{v}");
}
crate::both_backends!(caps_projection_entries, super::projection_entries_cap);

/// The issue's group attack: a path-less PATCH whose key is `" members"`
/// (leading space) with 20,000 ids. It is a membership change like `members`:
/// every member is added (group members have no value cap), and other
/// spellings (`"Members "`, `"MEMBERS"`) replace and add the same way, while
/// another tenant's requests all succeed.
async fn pathless_members_key(b: Backend) {
    let app = spawn_app(b).await;
    const N: usize = 20_000;
    // 20,000 users, loaded straight into the database.
    let ids = crate::seeded_user_ids(&app, N).await;

    let (s, g) = send(
        &app,
        Method::POST,
        "/Groups",
        Some(&json!({"displayName": "Everyone"})),
    )
    .await;
    assert_eq!(s, 201, "{g}");
    let gid = g["id"].as_str().expect("id").to_string();

    let done = Arc::new(AtomicBool::new(false));
    let other = other_tenant_traffic(&app, app.new_tenant_token().await, done.clone(), 5);
    let members: Vec<Value> = ids.iter().map(|id| json!({"value": id})).collect();
    let (s, v) = send(
        &app,
        Method::PATCH,
        &format!("/Groups/{gid}"),
        Some(&patch_body(
            json!([{"op": "add", "value": {" members": members}}]),
        )),
    )
    .await;
    done.store(true, Ordering::SeqCst);
    // Above the echo limit the PATCH answers 204.
    assert!(s == 204 || s == 200, "{s} {v}");
    let g = get_ok(&app, &format!("/Groups/{gid}")).await;
    let mut got: Vec<String> = g["members"]
        .as_array()
        .expect("members")
        .iter()
        .map(|m| m["value"].as_str().expect("value").to_string())
        .collect();
    got.sort();
    assert_eq!(got.len(), N);
    assert_eq!(got, ids);
    assert!(
        g.as_object().is_some_and(|o| !o.contains_key(" members")),
        "the key reached the document"
    );
    let (rounds, failures) = other.await.expect("join");
    assert!(rounds >= 5);
    assert!(failures.is_empty(), "tenant B failed: {failures:#?}");

    // Other spellings: a replace with a trailing space and another attribute
    // beside it, then an add in capitals.
    let (s, v) = send(
        &app,
        Method::PATCH,
        &format!("/Groups/{gid}"),
        Some(&patch_body(json!([{"op": "replace", "value": {
            "displayName": "Few", "Members ": ids[..10].iter().map(|id| json!({"value": id})).collect::<Vec<_>>()
        }}]))),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["displayName"], "Few");
    assert_eq!(v["members"].as_array().map(Vec::len), Some(10), "{v}");
    let (s, v) = send(
        &app,
        Method::PATCH,
        &format!("/Groups/{gid}"),
        Some(&patch_body(
            json!([{"op": "add", "value": {"MEMBERS": [ids[10].clone()]}}]),
        )),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["members"].as_array().map(Vec::len), Some(11), "{v}");
}
crate::both_backends!(caps_pathless_members, super::pathless_members_key);

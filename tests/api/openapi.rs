//! The OpenAPI document: the committed `docs/openapi.json` is the one served,
//! it documents every registered admin, ledger, events and gate route (and
//! nothing that is not registered), and its webhooks cover every event type.
//! `CUSTODIAN_BLESS_OPENAPI=1 cargo test --test api openapi` rewrites the
//! committed file from the served one (as does `custodian openapi > docs/openapi.json`).

use crate::common::{Backend, spawn_app};
use serde_json::Value;

fn committed_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/openapi.json")
}

/// Keys sorted at every level, no whitespace: two documents are equal when
/// these strings are.
fn canonical(v: &Value) -> String {
    fn sorted(v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                Value::Object(
                    keys.into_iter()
                        .map(|k| (k.clone(), sorted(&m[k])))
                        .collect(),
                )
            }
            Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    serde_json::to_string(&sorted(v)).expect("serialises")
}

async fn served() -> (String, Value) {
    let app = spawn_app(Backend::Sqlite).await;
    // No token: the document holds no tenant's data.
    let r = app
        .client
        .get(format!("{}/admin/v1/openapi.json", app.addr))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(
        r.headers()["content-type"].to_str().expect("ascii"),
        "application/json"
    );
    let text = r.text().await.expect("body");
    app.stop().await;
    let v = serde_json::from_str(&text).expect("the served document is JSON");
    (text, v)
}

#[tokio::test]
async fn the_committed_document_is_the_served_one() {
    let (text, served) = served().await;
    assert_eq!(
        text,
        custodian::http::admin::openapi::document(),
        "served = what `custodian openapi` prints"
    );
    if std::env::var("CUSTODIAN_BLESS_OPENAPI").is_ok_and(|v| v == "1") {
        std::fs::write(committed_path(), &text).expect("write docs/openapi.json");
    }
    let committed = std::fs::read_to_string(committed_path()).expect("docs/openapi.json");
    let committed: Value = serde_json::from_str(&committed).expect("docs/openapi.json is JSON");
    assert!(
        canonical(&committed) == canonical(&served),
        "docs/openapi.json is stale: regenerate it with `cargo run -- openapi > docs/openapi.json` \
         (or CUSTODIAN_BLESS_OPENAPI=1 cargo test --test api openapi)"
    );
    assert_eq!(served["openapi"], "3.1.0");
}

#[tokio::test]
async fn every_registered_route_is_documented_and_nothing_else() {
    let doc: Value =
        serde_json::from_str(custodian::http::admin::openapi::document()).expect("JSON");
    let paths = doc["paths"].as_object().expect("paths");
    let routes = custodian::http::admin::routes();
    // The table is the real one: it holds the routes every API is known by.
    for (m, p) in [
        ("POST", "/gate/v1/check"),
        ("GET", "/admin/v1/events"),
        ("PUT", "/admin/v1/content/{kind}/{id}"),
        ("POST", "/admin/v1/content:import"),
        ("GET", "/admin/v1/audit"),
    ] {
        assert!(
            routes.iter().any(|(rm, rp)| rm.as_str() == m && rp == p),
            "{m} {p} is not in the route table"
        );
    }
    let mut missing = vec![];
    for (method, path) in &routes {
        let m = method.as_str().to_ascii_lowercase();
        if paths.get(path).and_then(|p| p.get(&m)).is_none() {
            missing.push(format!("{method} {path}"));
        }
    }
    assert!(
        missing.is_empty(),
        "registered but not documented: {missing:?}"
    );
    let mut ghosts = vec![];
    for (path, item) in paths {
        for m in item.as_object().expect("path item").keys() {
            let registered = routes
                .iter()
                .any(|(rm, rp)| rp == path && rm.as_str().eq_ignore_ascii_case(m));
            if !registered {
                ghosts.push(format!("{m} {path}"));
            }
        }
    }
    assert!(
        ghosts.is_empty(),
        "documented but not registered: {ghosts:?}"
    );
}

/// Every documented route answers on the real server: no 404 "no such
/// endpoint" and no 405 for a documented method (with no token, each answers
/// 401, or 200 for the document itself).
#[tokio::test]
async fn every_documented_operation_is_served() {
    let app = spawn_app(Backend::Sqlite).await;
    let doc: Value =
        serde_json::from_str(custodian::http::admin::openapi::document()).expect("JSON");
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().expect("paths") {
        let concrete = path
            .replace("{kind}", "doc")
            .replace("{id}", "x1")
            .replace("{category}", "c");
        for m in item.as_object().expect("path item").keys() {
            let method =
                reqwest::Method::from_bytes(m.to_ascii_uppercase().as_bytes()).expect("method");
            let r = app
                .client
                .request(method, format!("{}{concrete}", app.addr))
                .send()
                .await
                .expect("send");
            let open = item[m]["security"] == serde_json::json!([{}]);
            let want = if open { 200 } else { 401 };
            assert_eq!(r.status().as_u16(), want, "{m} {path}");
            checked += 1;
        }
    }
    assert_eq!(checked, custodian::http::admin::routes().len());
    app.stop().await;
}

#[test]
fn webhooks_describe_every_event_type_with_the_standard_webhook_headers() {
    let doc: Value =
        serde_json::from_str(custodian::http::admin::openapi::document()).expect("JSON");
    let hooks = doc["webhooks"].as_object().expect("webhooks");
    for t in custodian::domain::EventType::ALL {
        let op = &hooks[t.as_str()]["post"];
        let headers: Vec<&str> = op["parameters"]
            .as_array()
            .expect("parameters")
            .iter()
            .filter_map(|p| p["name"].as_str())
            .collect();
        assert_eq!(
            headers,
            ["webhook-id", "webhook-timestamp", "webhook-signature"],
            "{t}"
        );
        let schema = &op["requestBody"]["content"]["application/json"]["schema"]["allOf"];
        assert_eq!(schema[1]["properties"]["type"]["const"], t.as_str());
        let data = schema[1]["properties"]["data"]["$ref"]
            .as_str()
            .expect("data ref");
        let name = data.rsplit('/').next().expect("name");
        assert!(
            doc["components"]["schemas"].get(name).is_some(),
            "{t}: {data} is not a component"
        );
    }
    assert_eq!(hooks.len(), custodian::domain::EventType::ALL.len());
}

/// Found by schemathesis: a 405 must name the allowed methods (`Allow`, RFC
/// 9110); they are exactly the documented ones.
#[tokio::test]
async fn a_wrong_method_is_405_naming_the_documented_methods() {
    let app = spawn_app(Backend::Sqlite).await;
    let doc: Value =
        serde_json::from_str(custodian::http::admin::openapi::document()).expect("JSON");
    for (path, concrete) in [
        ("/admin/v1/content/{kind}/{id}", "/admin/v1/content/doc/x1"),
        (
            "/admin/v1/users/{id}/legal-hold",
            "/admin/v1/users/x1/legal-hold",
        ),
        ("/admin/v1/audit", "/admin/v1/audit"),
        ("/gate/v1/check", "/gate/v1/check"),
    ] {
        let r = app
            .client
            .request(reqwest::Method::TRACE, format!("{}{concrete}", app.addr))
            .bearer_auth(&app.token)
            .send()
            .await
            .expect("send");
        assert_eq!(r.status().as_u16(), 405, "{path}");
        let mut allow: Vec<String> = r.headers()["allow"]
            .to_str()
            .expect("ascii")
            .split(", ")
            .map(str::to_ascii_lowercase)
            .collect();
        allow.sort();
        let mut documented: Vec<String> = doc["paths"][path]
            .as_object()
            .expect("documented")
            .keys()
            .cloned()
            .collect();
        documented.sort();
        assert_eq!(allow, documented, "{path}");
        let body: Value = r.json().await.expect("SCIM error body");
        assert_eq!(body["status"], "405");
    }
    app.stop().await;
}

/// Found by schemathesis: `orphaned` is a boolean; anything else was read as
/// false and listed every item.
#[tokio::test]
async fn orphaned_must_be_a_boolean() {
    let app = spawn_app(Backend::Sqlite).await;
    let admin = app.token_for("default", custodian::auth::Scope::Admin);
    for (q, want) in [("true", 200), ("FALSE", 200), ("yes", 400), ("", 400)] {
        let r = app
            .client
            .get(format!("{}/admin/v1/content?orphaned={q}", app.addr))
            .bearer_auth(&admin)
            .send()
            .await
            .expect("send");
        assert_eq!(r.status().as_u16(), want, "orphaned={q}");
    }
    app.stop().await;
}

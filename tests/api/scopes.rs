//! Every admin route × every token scope over HTTP: who is admitted and who
//! gets 403 with a precise detail, on SQLite and PostgreSQL. The expectations
//! are written out here, apart from the server's own table
//! (`custodian::http::admin::access`), and both must list the same routes, so a
//! new route fails this test until it is classified in both.

use crate::body;
use crate::common::{Backend, Options, TestApp, spawn_app_with};
use custodian::auth::Scope;
use reqwest::Method;
use serde_json::{Value, json};

const ALL: [Scope; 5] = [
    Scope::Scim,
    Scope::Gate,
    Scope::Ledger,
    Scope::Admin,
    Scope::Auditor,
];

const ADMIN: &[Scope] = &[Scope::Admin];
const LEDGER_WRITE: &[Scope] = &[Scope::Admin, Scope::Ledger];
const READ: &[Scope] = &[Scope::Admin, Scope::Auditor];
const LEDGER_READ: &[Scope] = &[Scope::Admin, Scope::Auditor, Scope::Ledger];

/// Method, route template, the scopes admitted.
const EXPECTED: &[(&str, &str, &[Scope])] = &[
    ("GET", "/admin/v1/content", READ),
    ("POST", "/admin/v1/content:reassign", ADMIN),
    ("POST", "/admin/v1/content:import", LEDGER_WRITE),
    ("POST", "/admin/v1/user-data:import", LEDGER_WRITE),
    ("PUT", "/admin/v1/content/{kind}/{id}", LEDGER_WRITE),
    ("GET", "/admin/v1/content/{kind}/{id}", LEDGER_READ),
    ("DELETE", "/admin/v1/content/{kind}/{id}", LEDGER_WRITE),
    ("GET", "/admin/v1/content/{kind}/{id}/history", READ),
    ("PUT", "/admin/v1/user-data/{category}/{id}", LEDGER_WRITE),
    ("POST", "/admin/v1/users/{id}/transfer", ADMIN),
    ("GET", "/admin/v1/users/{id}/disposal-plan", READ),
    ("POST", "/admin/v1/users/{id}/dispose", ADMIN),
    ("PUT", "/admin/v1/users/{id}/sso-subjects", ADMIN),
    ("DELETE", "/admin/v1/users/{id}/sso-subjects", ADMIN),
    ("GET", "/admin/v1/disposals", READ),
    ("GET", "/admin/v1/disposals/{id}", LEDGER_READ),
    ("POST", "/admin/v1/disposals/{id}/release", ADMIN),
    ("POST", "/admin/v1/brake/reset", ADMIN),
    ("PUT", "/admin/v1/users/{id}/legal-hold", ADMIN),
    ("DELETE", "/admin/v1/users/{id}/legal-hold", ADMIN),
    ("GET", "/admin/v1/webhooks", READ),
    ("POST", "/admin/v1/webhooks:resume", ADMIN),
    ("POST", "/admin/v1/webhooks:skip", ADMIN),
    ("GET", "/admin/v1/events", LEDGER_READ),
    ("GET", "/admin/v1/tombstones", READ),
    ("POST", "/admin/v1/tombstones:lift", ADMIN),
    ("POST", "/admin/v1/tombstones:release", ADMIN),
    ("GET", "/admin/v1/policy", READ),
    ("GET", "/admin/v1/audit", READ),
    ("GET", "/admin/v1/replicas", READ),
    ("GET", "/metrics", ADMIN),
];

#[test]
fn the_expectations_and_the_servers_access_table_list_the_same_routes() {
    use custodian::http::admin::access::ROUTES;
    let mut ours: Vec<(String, String)> = EXPECTED
        .iter()
        .map(|(m, p, _)| (m.to_string(), p.to_string()))
        .collect();
    let mut theirs: Vec<(String, String)> = ROUTES
        .iter()
        .map(|r| (r.method.to_string(), r.path.to_string()))
        .collect();
    ours.sort();
    theirs.sort();
    assert_eq!(
        ours, theirs,
        "classify a new admin route in src/http/admin/access.rs and here"
    );
}

/// A concrete path for a template: ids nobody has, so an admitted write finds
/// nothing to change (404) or is refused for its empty body (400).
fn concrete(template: &str) -> String {
    template
        .replace("{kind}", "recording")
        .replace("{category}", "favorite")
        .replace("{id}", "00000000-0000-7000-8000-000000000000")
}

/// The 403 detail each refused scope must get.
fn refusal(have: Scope, allowed: &[Scope]) -> String {
    let names: Vec<String> = allowed.iter().map(|s| format!("'{s}'")).collect();
    let need = match names.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => unreachable!("every route admits some scope"),
    };
    if have == Scope::Auditor {
        format!("auditor tokens are read-only: this request changes data and needs {need}")
    } else {
        format!("this token's scope is '{have}'; this endpoint needs {need}")
    }
}

async fn call(app: &TestApp, token: &str, method: &str, path: &str) -> (u16, Value) {
    let method = Method::from_bytes(method.as_bytes()).expect("method");
    body(
        app.client
            .request(method, format!("{}{path}", app.addr))
            .bearer_auth(token)
            .send()
            .await
            .expect("send"),
    )
    .await
}

async fn every_route_admits_exactly_its_scopes(b: Backend) {
    let app = spawn_app_with(
        b,
        Options {
            policy: Some("[default]\n".into()),
            ..Default::default()
        },
    )
    .await;
    let tokens: Vec<(Scope, String)> = ALL
        .iter()
        .map(|s| (*s, app.token_for("default", *s)))
        .collect();
    let mut refused = 0;
    for (method, template, allowed) in EXPECTED {
        let path = concrete(template);
        for (scope, token) in &tokens {
            let (s, v) = call(&app, token, method, &path).await;
            if allowed.contains(scope) {
                assert!(
                    s != 401 && s != 403 && s < 500,
                    "{scope} must be admitted to {method} {template}: {s} {v}"
                );
            } else {
                refused += 1;
                assert_eq!(s, 403, "{scope} must be refused {method} {template}: {v}");
                assert_eq!(
                    v["detail"].as_str().unwrap_or_default(),
                    refusal(*scope, allowed),
                    "{method} {template}"
                );
            }
        }
    }
    // Every write refuses the auditor, a read-only scope, and every admin
    // read admits it (`/metrics` is the operator's: admin only).
    for (method, template, allowed) in EXPECTED {
        assert_eq!(
            allowed.contains(&Scope::Auditor),
            *method == "GET" && *template != "/metrics",
            "{method} {template}"
        );
    }
    assert!(
        refused > EXPECTED.len(),
        "the sweep refused {refused} calls"
    );
    // The gate and SCIM take only their own scope.
    for (method, path, own) in [
        ("POST", "/gate/v1/check", Scope::Gate),
        ("GET", "/scim/v2/Users", Scope::Scim),
    ] {
        for (scope, token) in &tokens {
            let (s, v) = call(&app, token, method, path).await;
            assert_eq!(s == 403, *scope != own, "{scope} {method} {path}: {s} {v}");
        }
    }
}
crate::both_backends!(route_scopes, super::every_route_admits_exactly_its_scopes);

/// What a platform receiver does with a `ledger` token, and what an auditor
/// sees, on real data: the receipt (paged), the events feed, the audit log.
async fn ledger_reads_receipts_and_events_auditor_reads_the_rest(b: Backend) {
    let app = spawn_app_with(
        b,
        Options {
            policy: Some("[default]\n".into()),
            ..Default::default()
        },
    )
    .await;
    let admin = app.token_for("default", Scope::Admin);
    let ledger = app.token_for("default", Scope::Ledger);
    let auditor = app.token_for("default", Scope::Auditor);
    let person = crate::create_user(&app, "leaver@example.edu").await;
    for id in ["r1", "r2", "r3"] {
        let r = app
            .client
            .put(format!("{}/admin/v1/content/recording/{id}", app.addr))
            .bearer_auth(&ledger)
            .json(&json!({"owner": person}))
            .send()
            .await
            .expect("send");
        assert_eq!(r.status().as_u16(), 201);
    }
    let (s, v) = call(
        &app,
        &admin,
        "POST",
        &format!("/admin/v1/users/{person}/dispose"),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let disposal = v["disposalId"].as_str().expect("disposalId").to_string();

    // The receiver pages through the receipt named by the event.
    let (s, feed) = call(&app, &ledger, "GET", "/admin/v1/events?after=0").await;
    assert_eq!(s, 200, "{feed}");
    let events = feed["events"].as_array().cloned().unwrap_or_default();
    let disposed = events
        .iter()
        .find(|e| e["type"] == "user.disposed")
        .unwrap_or_else(|| panic!("no user.disposed in {feed}"));
    assert_eq!(disposed["data"]["disposalId"], disposal.as_str());
    let mut lines = Vec::new();
    for start in 1..=3 {
        let (s, r) = call(
            &app,
            &ledger,
            "GET",
            &format!("/admin/v1/disposals/{disposal}?count=1&startIndex={start}"),
        )
        .await;
        assert_eq!(s, 200, "{r}");
        assert_eq!(r["totalItems"], 3, "{r}");
        lines.extend(r["items"].as_array().cloned().unwrap_or_default());
    }
    let ids: Vec<&str> = lines.iter().filter_map(|l| l["id"].as_str()).collect();
    assert_eq!(ids, ["r1", "r2", "r3"]);

    // The auditor reads what happened, and can undo none of it.
    for path in [
        "/admin/v1/audit".to_string(),
        "/admin/v1/disposals?state=done".to_string(),
        format!("/admin/v1/disposals/{disposal}"),
        "/admin/v1/tombstones".to_string(),
        "/admin/v1/policy".to_string(),
        "/admin/v1/content/recording/r1/history".to_string(),
    ] {
        let (s, v) = call(&app, &auditor, "GET", &path).await;
        assert_eq!(s, 200, "{path}: {v}");
    }
    let (_, tombstones) = call(&app, &auditor, "GET", "/admin/v1/tombstones").await;
    assert_eq!(tombstones["Resources"].as_array().map(Vec::len), Some(1));
    let lift = app
        .client
        .post(format!("{}/admin/v1/tombstones:lift", app.addr))
        .bearer_auth(&auditor)
        .json(&json!({"userName": "leaver@example.edu"}))
        .send()
        .await
        .expect("send");
    assert_eq!(lift.status().as_u16(), 403);
    let (_, after) = call(&app, &admin, "GET", "/admin/v1/tombstones").await;
    assert_eq!(after["Resources"][0]["liftedAt"], Value::Null, "{after}");
}
crate::both_backends!(
    ledger_and_auditor_reads,
    super::ledger_reads_receipts_and_events_auditor_reads_the_rest
);

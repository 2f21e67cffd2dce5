//! The benchmark tools against a real server: `custodian-load crud` runs
//! workloads 1–6 and verifies every answer; `seed` loads a dataset straight
//! into the database and `scale` runs lookups, paging, member changes and
//! disposals on it. A run passes only with zero errors and every check held,
//! so these tests fail if the driver, the seeder or the server goes wrong.

use crate::common::{Backend, TestApp, spawn_app};
use custodian::auth::token::Scope;
use serde_json::Value;

fn run_driver(args: Vec<String>) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_custodian-load"))
        .args(&args)
        .output()
        .expect("run custodian-load");
    let log = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), log)
}

fn report(path: &std::path::Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).expect("report written")).expect("report is JSON")
}

fn stats<'a>(r: &'a Value, prefix: &str) -> &'a Value {
    r["results"]
        .as_array()
        .and_then(|a| {
            a.iter().find(|s| {
                s["workload"]
                    .as_str()
                    .is_some_and(|w| w.starts_with(prefix))
            })
        })
        .unwrap_or_else(|| panic!("no workload {prefix} in {r}"))
}

fn all_clean(r: &Value) {
    for s in r["results"].as_array().expect("results") {
        assert_eq!(s["errors"], 0, "{s}");
        assert!(s["requests"].as_u64().expect("requests") > 0, "{s}");
    }
    for v in r["verifications"].as_array().expect("verifications") {
        assert_eq!(v["failed"], 0, "{v}");
        assert!(v["checked"].as_u64().expect("checked") > 0, "{v}");
    }
}

fn common_args(app: &TestApp, tenant: &str, json: &std::path::Path) -> Vec<String> {
    vec![
        "--url".into(),
        app.addr.clone(),
        "--token".into(),
        app.token_for(tenant, Scope::Scim),
        "--gate-token".into(),
        app.token_for(tenant, Scope::Gate),
        "--admin-token".into(),
        app.token_for(tenant, Scope::Admin),
        "--concurrency".into(),
        "4".into(),
        "--warmup".into(),
        "4".into(),
        "--time-limit".into(),
        "300".into(),
        "--server-pid".into(),
        std::process::id().to_string(),
        "--json".into(),
        json.display().to_string(),
    ]
}

async fn crud_workloads(backend: Backend) {
    let app = spawn_app(backend).await;
    let dir = tempfile::tempdir().expect("tmp");
    let json = dir.path().join("crud.json");
    let mut args = vec!["crud".to_string()];
    args.extend(common_args(&app, "load", &json));
    args.extend(
        [
            "--users",
            "40",
            "--requests",
            "120",
            "--page-walks",
            "2",
            "--gate-rate",
            "500",
        ]
        .map(String::from),
    );
    let (ok, log) = tokio::task::spawn_blocking(move || run_driver(args))
        .await
        .expect("join");
    assert!(ok, "{log}");
    let r = report(&json);
    all_clean(&r);
    assert_eq!(stats(&r, "create")["requests"], 40);
    assert_eq!(stats(&r, "lookup userName eq")["requests"], 120);
    assert_eq!(stats(&r, "PATCH active=false (Entra")["requests"], 10);
    assert_eq!(stats(&r, "PATCH active=false (Okta")["requests"], 10);
    assert_eq!(stats(&r, "DELETE")["requests"], 10);
    assert_eq!(stats(&r, "gate check (open loop")["requests"], 120);
    assert!(stats(&r, "page of 100 (cursor)")["requests"].as_u64() >= Some(2));
    // The server's peak memory was read from /proc (the server is this process).
    assert!(
        stats(&r, "create")["server_peak_rss_mib"]
            .as_f64()
            .is_some_and(|m| m > 1.0)
    );
    // And the effects are real: 40 + 4 created, 10 + 4 deleted, 10 + 10 left inactive.
    let tok = app.token_for("load", Scope::Scim);
    let count = |filter: &'static str| {
        let (client, url, tok) = (app.client.clone(), app.url("/Users"), tok.clone());
        async move {
            let mut q = vec![("count", "0".to_string())];
            if !filter.is_empty() {
                q.push(("filter", filter.to_string()));
            }
            let v: Value = client
                .get(url)
                .query(&q)
                .bearer_auth(tok)
                .send()
                .await
                .expect("get")
                .json()
                .await
                .expect("json");
            v["totalResults"].as_u64().expect("total")
        }
    };
    assert_eq!(count("").await, 30);
    assert_eq!(count("active eq false").await, 20);
}

async fn seeded_scale_workloads(backend: Backend) {
    let app = spawn_app(backend).await;
    let dir = tempfile::tempdir().expect("tmp");
    let (url, users) = (app.db_url.clone(), 300);
    let seed = vec![
        "seed".to_string(),
        "--database-url".into(),
        url,
        "--tenant".into(),
        "scaled".into(),
        "--users".into(),
        users.to_string(),
        "--group-size".into(),
        "120".into(),
        "--items-per-user".into(),
        "2".into(),
        "--owners".into(),
        "30,700".into(),
    ];
    let (ok, log) = tokio::task::spawn_blocking(move || run_driver(seed))
        .await
        .expect("join");
    assert!(ok, "{log}");
    // Seeding refuses a tenant that already holds users.
    let again = vec![
        "seed",
        "--database-url",
        &app.db_url,
        "--tenant",
        "scaled",
        "--users",
        "5",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    let (ok, log) = tokio::task::spawn_blocking(move || run_driver(again))
        .await
        .expect("join");
    assert!(!ok && log.contains("already holds users"), "{log}");

    let json = dir.path().join("scale.json");
    let mut args = vec!["scale".to_string()];
    args.extend(common_args(&app, "scaled", &json));
    args.extend(
        [
            "--users",
            "300",
            "--requests",
            "60",
            "--group-size",
            "120",
            "--member-ops",
            "10",
            "--index-samples",
            "5",
            "--owners",
            "30,700",
        ]
        .map(String::from),
    );
    let (ok, log) = tokio::task::spawn_blocking(move || run_driver(args))
        .await
        .expect("join");
    assert!(ok, "{log}");
    let r = report(&json);
    all_clean(&r);
    // 300 seeded + the heir + two owners, 100 per page.
    assert_eq!(stats(&r, "page of 100 (cursor)")["requests"], 4);
    assert_eq!(stats(&r, "add one member")["requests"], 10);
    assert_eq!(stats(&r, "dispose owner of 700 items")["requests"], 1);
    let checks: Vec<&str> = r["verifications"]
        .as_array()
        .expect("verifications")
        .iter()
        .filter_map(|v| v["workload"].as_str())
        .collect();
    for w in [
        "cursor walk",
        "group add",
        "group remove",
        "dispose 30",
        "dispose 700",
    ] {
        assert!(checks.contains(&w), "{w} not verified: {checks:?}");
    }
}

crate::both_backends!(crud_driver_runs_and_verifies, super::crud_workloads);
crate::both_backends!(
    seed_and_scale_driver_run_and_verify,
    super::seeded_scale_workloads
);

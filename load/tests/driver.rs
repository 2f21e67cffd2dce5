//! The benchmark tools against a real server: `custodian-load crud` runs
//! workloads 1–6 and verifies every answer; `seed` loads a dataset straight
//! into the database and `scale` runs lookups, paging, member changes and
//! disposals on it. A run passes only with zero errors and every check held,
//! so these tests fail if the driver, the seeder or the server goes wrong.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../tests/common/mod.rs"]
mod common;

use common::{Backend, TestApp, spawn_app};
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

/// The rows of `r` whose workload starts with `prefix`.
fn rows<'a>(r: &'a Value, prefix: &str) -> Vec<&'a Value> {
    r["results"]
        .as_array()
        .expect("results")
        .iter()
        .filter(|s| {
            s["workload"]
                .as_str()
                .is_some_and(|w| w.starts_with(prefix))
        })
        .collect()
}

/// Status counts of a row (`extra.status_*`), which must account for every request.
fn statuses(s: &Value) -> std::collections::BTreeMap<String, u64> {
    let codes: std::collections::BTreeMap<String, u64> = s["extra"]
        .as_object()
        .expect("status counts")
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix("status_")?.to_string(), v.as_f64()? as u64)))
        .collect();
    assert_eq!(
        codes.values().sum::<u64>(),
        s["requests"].as_u64().expect("requests"),
        "every request's status is counted: {s}"
    );
    codes
}

/// `custodian-load hostile`, briefly and small: every attack runs (tenant A,
/// seeded with an owner of 500 items for the disposal) while tenant B's
/// lookups, PATCHes and gate checks are measured; the report has B's figures
/// and every status code for each attack. Timings are not judged here.
async fn hostile_workload(backend: Backend) {
    let app = spawn_app(backend).await;
    let dir = tempfile::tempdir().expect("tmp");
    let seed: Vec<String> = [
        "seed",
        "--database-url",
        &app.db_url,
        "--tenant",
        "attacker",
        "--users",
        "50",
        "--group-size",
        "10",
        "--items-per-user",
        "1",
        "--owners",
        "500",
    ]
    .map(String::from)
    .to_vec();
    let (ok, log) = tokio::task::spawn_blocking(move || run_driver(seed))
        .await
        .expect("join");
    assert!(ok, "{log}");
    let json = dir.path().join("hostile.json");
    let mut args = vec!["hostile".to_string()];
    args.extend(common_args(&app, "attacker", &json));
    // Tenant B: the victim, with its own SCIM and gate tokens.
    let gate = args.iter().position(|a| a == "--gate-token").expect("gate") + 1;
    args[gate] = app.token_for("victim", Scope::Gate);
    args.extend(
        [
            "--b-token".to_string(),
            app.token_for("victim", Scope::Scim),
        ]
        .into_iter()
        .chain(
            [
                "--window",
                "1",
                "--attack-timeout",
                "60",
                "--b-users",
                "6",
                "--b-concurrency",
                "3",
                "--b-rate",
                "60",
                "--emails",
                "40",
                "--member-ids",
                "40",
                "--search-users",
                "5",
                "--search-conns",
                "2",
                "--attr-bytes",
                "2000",
                "--ext-users",
                "3",
                "--ext-bytes",
                "4000",
                "--ext-conns",
                "2",
                "--secret-conns",
                "2",
                "--flood-conns",
                "4",
                "--flood-requests",
                "40",
                "--dispose-owner",
                "500",
            ]
            .map(String::from),
        ),
    );
    let (ok, log) = tokio::task::spawn_blocking(move || run_driver(args))
        .await
        .expect("join");
    assert!(ok, "{log}");
    let r = report(&json);
    for attack in [
        "baseline",
        "emails",
        "members",
        "search",
        "extension",
        "secrets",
        "flood",
        "dispose",
    ] {
        for op in ["lookup userName eq", "PATCH displayName", "gate check"] {
            let row = stats(&r, &format!("{attack}: tenant B {op}"));
            assert!(row["requests"].as_u64() > Some(0), "{row}");
            assert!(row["p99_ms"].as_f64().is_some(), "{row}");
            statuses(row);
        }
        let a = rows(&r, &format!("{attack}: tenant A attack"));
        if attack == "baseline" {
            assert!(a.is_empty(), "the baseline has no attack: {a:?}");
        } else {
            assert_eq!(a.len(), 1, "{attack}: {r}");
            statuses(a[0]);
        }
    }
    // The disposal really ran: one DELETE, answered 204, and the owner is gone.
    let codes = statuses(stats(&r, "dispose: tenant A attack"));
    assert_eq!(codes.get("204"), Some(&1), "{codes:?}");
    let tok = app.token_for("attacker", Scope::Scim);
    let v: Value = app
        .client
        .get(app.url("/Users"))
        .query(&[("filter", "userName eq \"owner-500@scale.example.edu\"")])
        .bearer_auth(&tok)
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(v["totalResults"], 0, "{v}");
    // The flood created users in tenant A.
    let flood = statuses(stats(&r, "flood: tenant A attack"));
    assert!(flood.get("201").is_some_and(|n| *n > 0), "{flood:?}");
}

crate::both_backends!(hostile_driver_runs_and_reports, super::hostile_workload);

/// `custodian-load hostile --attacks webhook`, small: the driver runs both
/// receivers (A's answers each event after 2 s), A's events are queued, B
/// suspends three users; every one of B's `user.suspended` is delivered to
/// B's receiver while A's receiver is slow, and the report times each.
async fn hostile_webhook_attack(backend: Backend) {
    let port = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port()
    };
    let (a_port, b_port) = (port(), port());
    let policy = format!(
        "[tenants.attacker]\nwebhooks = [{{ url = \"http://127.0.0.1:{a_port}/hook\", secret_env = \"HOOK\" }}]\n\
         [tenants.victim]\nwebhooks = [{{ url = \"http://127.0.0.1:{b_port}/hook\", secret_env = \"HOOK\" }}]\n"
    );
    let app = crate::common::spawn_app_with(
        backend,
        crate::common::Options {
            policy: Some(policy),
            ..Default::default()
        },
    )
    .await;
    // The server's relay loop (the test app runs none): a pass every 100 ms
    // until the test ends.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let relay = {
        let (db, deprov, stop) = (app.db.clone(), app.deprov.clone(), stop.clone());
        std::thread::spawn(move || {
            let relay = std::sync::Arc::new(custodian::events::relay::Relay::new(Box::new(
                |name: &str| {
                    (name == "HOOK").then(|| "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_string())
                },
            )));
            for _ in 0..6_000 {
                if stop.load(std::sync::atomic::Ordering::SeqCst) {
                    break;
                }
                let _ = relay.spawn_pass(&db, &deprov);
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        })
    };
    let dir = tempfile::tempdir().expect("tmp");
    let json = dir.path().join("hostile.json");
    let mut args = vec!["hostile".to_string()];
    args.extend(common_args(&app, "attacker", &json));
    let gate = args.iter().position(|a| a == "--gate-token").expect("gate") + 1;
    args[gate] = app.token_for("victim", Scope::Gate);
    args.extend(
        [
            "--b-token".to_string(),
            app.token_for("victim", Scope::Scim),
            "--hook-a-port".into(),
            a_port.to_string(),
            "--hook-b-port".into(),
            b_port.to_string(),
        ]
        .into_iter()
        .chain(
            [
                "--attacks",
                "webhook",
                "--window",
                "2",
                "--attack-timeout",
                "60",
                "--b-users",
                "6",
                "--b-concurrency",
                "3",
                "--b-rate",
                "30",
                "--hook-delay",
                "2",
                "--hook-a-suspends",
                "3",
                "--hook-b-suspends",
                "3",
            ]
            .map(String::from),
        ),
    );
    let (ok, log) = tokio::task::spawn_blocking(move || run_driver(args))
        .await
        .expect("join");
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let r = report(&json);
    assert!(ok, "{log}");
    let row = stats(&r, "webhook: tenant B user.suspended delivered");
    assert_eq!(row["requests"].as_u64(), Some(3), "{row}");
    assert_eq!(statuses(row).get("200"), Some(&3), "all delivered: {row}");
    let a = statuses(stats(&r, "webhook: tenant B suspend PATCH"));
    assert_eq!(a.get("200"), Some(&3), "B's suspensions answered: {a:?}");
    tokio::task::spawn_blocking(move || relay.join().expect("relay"))
        .await
        .expect("join");
}
crate::both_backends!(hostile_driver_webhook, super::hostile_webhook_attack);

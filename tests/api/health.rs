//! `/readyz` is 503 only when the database cannot be reached, and `/healthz`
//! stays 200 throughout: a PostgreSQL database of its own that refuses
//! connections for a while.

use crate::common::{self, TEST_TOMBSTONE_KEY};
use custodian::clock::SystemClock;
use custodian::config::Settings;
use custodian::deprovision::policy::PolicySet;
use custodian::deprovision::service::Deprov;
use custodian::deprovision::tombstone::TombstoneKeys;
use custodian::store::Db;
use diesel::Connection;
use diesel::connection::SimpleConnection;
use std::sync::Arc;
use std::time::{Duration, Instant};

async fn status_of(client: &reqwest::Client, url: &str) -> (u16, serde_json::Value) {
    let r = client.get(url).send().await.expect("send");
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(serde_json::Value::Null))
}

/// Polls `/readyz` (bounded) until it answers `want`.
async fn readyz_becomes(client: &reqwest::Client, addr: &str, want: u16) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (s, v) = status_of(client, &format!("{addr}/readyz")).await;
        if s == want {
            return v;
        }
        assert!(Instant::now() < deadline, "readyz stayed {s}: {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_is_503_only_while_postgres_is_unreachable() {
    let Some(base) = common::pg_url() else {
        eprintln!("CUSTODIAN_TEST_PG_URL not set: PostgreSQL tier not run");
        return;
    };
    let name = format!("ready_{}", uuid::Uuid::new_v4().simple());
    let mut admin = diesel::PgConnection::establish(&base).expect("connect");
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .expect("create database");
    let (prefix, _) = base.rsplit_once('/').expect("a database in the URL");
    let url = format!("{prefix}/{name}");

    let db = Db::open(&url, 2, true).expect("open");
    let keys = TombstoneKeys::from_spec(TEST_TOMBSTONE_KEY).expect("key");
    custodian::deprovision::setup::check_key(&db, &keys).expect("key");
    let deprov = Arc::new(Deprov::new(
        PolicySet::default(),
        keys,
        Arc::new(SystemClock),
    ));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = format!("http://{}", listener.local_addr().expect("addr"));
    let settings = Settings {
        workers: Some(1),
        request_deadline_ms: 2_000,
        ..Settings::default()
    };
    let state = custodian::http::AppState::new(db, deprov, settings, addr.clone());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let srv = custodian::http::server(state, listener).expect("server");
            tx.send(srv.handle()).expect("handle");
            let _ = srv.await;
        });
    });
    let handle = rx.recv().expect("handle");
    let client = reqwest::Client::new();

    let v = readyz_becomes(&client, &addr, 200).await;
    assert_eq!(v["database"], "ok");
    assert!(v["tasks"].is_array(), "{v}");

    // The database refuses new connections and drops the server's.
    admin
        .batch_execute(&format!(
            "ALTER DATABASE {name} ALLOW_CONNECTIONS false; \
             SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
        ))
        .expect("cut off");
    let v = readyz_becomes(&client, &addr, 503).await;
    assert_eq!(
        (v["status"].as_str(), v["database"].as_str()),
        (Some("unavailable"), Some("unreachable"))
    );
    assert_eq!(
        status_of(&client, &format!("{addr}/healthz")).await.0,
        200,
        "liveness does not depend on the database"
    );

    // Back: ready again, without a restart.
    admin
        .batch_execute(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true"))
        .expect("allow");
    readyz_becomes(&client, &addr, 200).await;

    handle.stop(false).await;
    let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
}

/// The replica registry's admin view, from the rows in the database: another
/// live replica on another policy or version is reported (200, a warning),
/// one gone quiet is listed but not counted; `/readyz` names this replica's
/// policy digest.
async fn the_registry_reports_other_replicas(backend: common::Backend) {
    use crate::common::sql::{Sql, execute_sql};
    use custodian::auth::Scope;
    let app = common::spawn_app(backend).await;
    let admin = app.token_for("default", Scope::Admin);
    let digest = app.deprov.policies().digest();
    let (s, r) = status_of(&app.client, &format!("{}/readyz", app.addr)).await;
    assert_eq!(s, 200);
    assert_eq!(r["replica"]["policyDigest"], digest.as_str(), "{r}");
    assert_eq!(r["replica"]["policyDigestMismatch"], false, "{r}");
    let view = |app: &common::TestApp| {
        app.client
            .get(format!("{}/admin/v1/replicas", app.addr))
            .bearer_auth(&admin)
            .send()
    };
    let v: serde_json::Value = view(&app).await.expect("send").json().await.expect("json");
    assert_eq!(
        (v["live"].as_u64(), v["policyDigestMismatch"].as_bool()),
        (Some(1), Some(false)),
        "{v}"
    );
    let now = custodian::store::time::now();
    let old = custodian::store::time::format(chrono::Utc::now() - chrono::Duration::seconds(60));
    let insert = |id: &str, version: &str, digest: &str, seen: &str| {
        let mut q = Sql::new(
            "INSERT INTO replicas (id, label, version, schema_version, policy_digest, started_at, last_seen) VALUES (",
        );
        q.bind_text(id).push(", 'peer:1', ").bind_text(version);
        q.push(", ")
            .bind_text(custodian::store::migrate::schema_version());
        q.push(", ")
            .bind_text(digest)
            .push(", ")
            .bind_text(seen.to_string());
        q.push(", ").bind_text(seen.to_string()).push(")");
        q
    };
    // A replica gone quiet a minute ago, on another policy: listed, not live, no warning.
    let q = insert("gone", env!("CARGO_PKG_VERSION"), "0000", &old);
    app.db.write(|c| execute_sql(c, &q)).expect("insert");
    let v: serde_json::Value = view(&app).await.expect("send").json().await.expect("json");
    assert_eq!(
        (v["live"].as_u64(), v["policyDigestMismatch"].as_bool()),
        (Some(1), Some(false)),
        "{v}"
    );
    assert!(
        v["replicas"]
            .as_array()
            .is_some_and(|r| r.iter().any(|r| r["id"] == "gone" && r["live"] == false)),
        "{v}"
    );
    // A live one on another policy and another version.
    let q = insert("peer", "9.9.9", "1111", &now);
    app.db.write(|c| execute_sql(c, &q)).expect("insert");
    let r = view(&app).await.expect("send");
    assert_eq!(r.status().as_u16(), 200);
    let v: serde_json::Value = r.json().await.expect("json");
    assert_eq!(v["live"], 2, "{v}");
    assert_eq!(v["policyDigestMismatch"], true, "{v}");
    assert_eq!(v["versionMismatch"], true, "{v}");
    let warnings = v["warnings"].to_string();
    assert!(
        warnings.contains("policy digest mismatch") && warnings.contains("peer (peer:1"),
        "{v}"
    );
    assert!(
        warnings.contains("9.9.9") && warnings.contains("rolling upgrade"),
        "{v}"
    );
}

crate::both_backends!(
    registry_reports_other_replicas,
    super::the_registry_reports_other_replicas
);

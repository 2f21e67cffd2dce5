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

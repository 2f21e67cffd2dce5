//! `examples/platform/receiver.py` against a real server (issue 16): after
//! suspensions, disposals, a receiver outage (events happen while it is down;
//! it resyncs from the feed when restarted) and replays, the platform's
//! ownership table equals Custodian's ledger.

use crate::common::python::{Proc, python, repo_path};
use crate::common::{self, Backend, TestApp};
use crate::{body, create_user, patch_body, user_body};
use custodian::auth::Scope;
use custodian::events::relay::Relay;
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const SECRET: &str = "whsec_Y3VzdG9kaWFuLXRlc3QtaG9vay1zZWNyZXQtMzJieXQ=";
/// The receiver's token: `ledger` reads receipts and the events feed, so a
/// platform needs no admin token.
const PLATFORM_SCOPE: Scope = Scope::Ledger;

/// The platform receiver, its database and how to reach Custodian.
struct Platform {
    py: std::path::PathBuf,
    port: u16,
    env: Vec<(&'static str, String)>,
    client: reqwest::Client,
}

impl Platform {
    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.py);
        c.arg(repo_path("examples/platform/receiver.py")).args(args);
        c.envs(self.env.iter().map(|(k, v)| (*k, v.as_str())));
        c
    }

    /// `receiver.py serve`, once it listens (it resyncs from the feed first).
    async fn serve(&self) -> Proc {
        let p = Proc::spawn(&mut self.command(&["serve"]));
        tokio::task::spawn_blocking(move || {
            let line = p.line(Duration::from_secs(60));
            assert!(line.starts_with("listening on"), "{line}");
            p
        })
        .await
        .expect("join")
    }

    /// A one-shot command, to completion (its HTTP requests have timeouts).
    async fn run(&self, args: &[&str]) {
        let mut cmd = self.command(args);
        let out = tokio::task::spawn_blocking(move || cmd.output().expect("run"))
            .await
            .expect("join");
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    async fn state(&self) -> Value {
        let r = self
            .client
            .get(format!("http://127.0.0.1:{}/state", self.port))
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .expect("state");
        r.json().await.expect("json")
    }

    /// The ownership table as (kind, id) → (owner, parent).
    async fn table(&self) -> BTreeMap<(String, String), (Value, Value)> {
        ownership(&self.state().await["ownership"])
    }
}

fn ownership(rows: &Value) -> BTreeMap<(String, String), (Value, Value)> {
    rows.as_array()
        .expect("rows")
        .iter()
        .map(|r| {
            (
                (
                    r["kind"].as_str().expect("kind").to_string(),
                    r["id"].as_str().expect("id").to_string(),
                ),
                (r["owner"].clone(), r["parent"].clone()),
            )
        })
        .collect()
}

async fn admin(app: &TestApp, method: Method, path: &str) -> Value {
    let r = app
        .client
        .request(method, format!("{}/admin/v1{path}", app.addr))
        .bearer_auth(app.token_for("default", Scope::Admin))
        .send()
        .await
        .expect("send");
    let (s, v) = body(r).await;
    assert_eq!(s, 200, "{path}: {v}");
    v
}

fn last_seq(app: &TestApp) -> i64 {
    custodian::events::relay::last_seq(&app.db, &app.default_tenant_id()).expect("seq")
}

/// Waits (bounded) until `done` holds of the platform's state; the last state.
async fn until(p: &Platform, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let s = p.state().await;
        if done(&s) {
            return s;
        }
        assert!(Instant::now() < deadline, "{what}: {s}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits (bounded) until Custodian has delivered every event to the endpoint.
async fn delivered_all(app: &TestApp) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let hooks = admin(app, Method::GET, "/webhooks").await;
        if hooks["Resources"][0]["lastDeliveredSeq"] == last_seq(app) {
            return;
        }
        assert!(Instant::now() < deadline, "not delivered: {hooks}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn set_active(app: &TestApp, id: &str, active: bool) {
    let r = app
        .req(Method::PATCH, &format!("/Users/{id}"))
        .json(&patch_body(
            json!([{"op": "replace", "value": {"active": active}}]),
        ))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 200);
}

async fn delete(app: &TestApp, id: &str) {
    let r = app
        .req(Method::DELETE, &format!("/Users/{id}"))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 204);
}

async fn user_with_manager(app: &TestApp, name: &str, manager: &str) -> String {
    let mut u = user_body(name);
    u["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"] =
        json!({"manager": {"value": manager}});
    let (s, v) = body(
        app.req(Method::POST, "/Users")
            .json(&u)
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    v["id"].as_str().expect("id").to_string()
}

async fn platform_table_equals_the_ledger(b: Backend) {
    let py = tokio::task::spawn_blocking(python).await.expect("python");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let app = common::spawn_app_with(
        b,
        common::Options {
            policy: Some(format!(
                "[default]\ntargets = [\"manager\"]\n\
                 kinds = {{ recording = \"transfer\", schedule = \"orphan\", draft = \"delete\" }}\n\
                 webhooks = [{{ url = \"http://127.0.0.1:{port}/hooks/custodian\", secret_env = \"PLATFORM_HOOK_SECRET\" }}]\n"
            )),
            ..Default::default()
        },
    )
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let p = Platform {
        py,
        port,
        env: vec![
            ("CUSTODIAN_URL", app.addr.clone()),
            ("CUSTODIAN_TOKEN", app.token_for("default", PLATFORM_SCOPE)),
            ("WEBHOOK_SECRET", SECRET.into()),
            (
                "PLATFORM_DB",
                dir.path().join("platform.db").display().to_string(),
            ),
            ("LISTEN", format!("127.0.0.1:{port}")),
            // Small pages: a receipt takes several requests.
            ("PAGE_SIZE", "2".into()),
        ],
        client: reqwest::Client::new(),
    };
    // The server's relay loop (the test app runs none): a pass every 50 ms.
    let stop = Arc::new(AtomicBool::new(false));
    let relay = {
        let (db, deprov, stop) = (app.db.clone(), app.deprov.clone(), stop.clone());
        std::thread::spawn(move || {
            let relay = Arc::new(Relay::new(Box::new(|name: &str| {
                (name == "PLATFORM_HOOK_SECRET").then(|| SECRET.to_string())
            })));
            for _ in 0..12_000 {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let _ = relay.spawn_pass(&db, &deprov);
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };

    let boss = create_user(&app, "boss@example.edu").await;
    let alice = user_with_manager(&app, "alice@example.edu", "boss@example.edu").await;
    let bob = create_user(&app, "bob@example.edu").await;
    let carol = user_with_manager(&app, "carol@example.edu", "boss@example.edu").await;
    let dave = create_user(&app, "dave@example.edu").await;
    let item = |kind: &str, id: &str, owner: &str| json!({"kind": kind, "id": id, "owner": owner});
    let home = |id: &str, owner: &str| json!({"kind": "folder", "id": id, "owner": owner, "personalRoot": true});
    let items = json!([
        item("recording", "r1", &alice),
        item("recording", "r2", &alice),
        item("recording", "r3", &alice),
        item("schedule", "s1", &alice),
        item("draft", "d1", &alice),
        home("home-alice", &alice),
        item("recording", "r4", &bob),
        item("draft", "d2", &bob),
        home("home-bob", &bob),
        item("recording", "r5", &carol),
        item("recording", "r6", &dave),
        item("recording", "r7", &boss),
    ]);
    p.run(&["own", &items.to_string()]).await;

    // Receiver up: a suspension and a disposal arrive as webhooks.
    let mut receiver = p.serve().await;
    set_active(&app, &carol, false).await;
    delete(&app, &alice).await;
    let last = last_seq(&app);
    let s = until(&p, "alice's disposal applied", |s| s["cursor"] == last).await;
    assert_eq!(s["people"][&alice], "disposed", "{s}");
    assert_eq!(s["people"][&carol], "suspended", "{s}");
    assert_eq!(
        p.table().await[&("recording".into(), "r1".into())].0,
        json!(boss)
    );

    // Outage: events happen while the receiver is down; delivery fails.
    receiver.stop();
    delete(&app, &bob).await;
    set_active(&app, &dave, false).await;
    set_active(&app, &carol, true).await;
    let last = last_seq(&app);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let hooks = admin(&app, Method::GET, "/webhooks").await;
        if hooks["Resources"][0]["failedAttempts"].as_i64() >= Some(1) {
            assert!(hooks["Resources"][0]["lastDeliveredSeq"].as_i64() < Some(last));
            break;
        }
        assert!(Instant::now() < deadline, "no failed delivery: {hooks}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Restarted, it resyncs from the feed before it listens: everything is
    // applied while Custodian's delivery still backs off (the clock stands).
    let receiver = p.serve().await;
    let s = p.state().await;
    assert_eq!(s["cursor"], last, "resynced from the feed: {s}");
    let hooks = admin(&app, Method::GET, "/webhooks").await;
    assert!(
        hooks["Resources"][0]["lastDeliveredSeq"].as_i64() < Some(last),
        "not by webhook: {hooks}"
    );
    assert_eq!(s["people"][&bob], "disposed", "{s}");
    assert_eq!(s["people"][&dave], "suspended", "{s}");
    assert_eq!(s["people"][&carol], "active", "{s}");
    let settled = ownership(&s["ownership"]);

    // Replays: the backed-off deliveries, then every event again (as after
    // a redelivery from the start), then the whole feed: nothing changes.
    app.clock.advance(chrono::Duration::hours(2));
    delivered_all(&app).await;
    app.db
        .write(|c| {
            use crate::common::schema::webhook_cursors as wc;
            use diesel::prelude::*;
            diesel::update(wc::table)
                .set(wc::last_seq.eq(0))
                .execute(c)
                .map_err(custodian::store::StoreError::from)
        })
        .expect("rewind");
    delivered_all(&app).await;
    p.run(&["resync", "--from", "0"]).await;
    let s = p.state().await;
    assert_eq!(
        ownership(&s["ownership"]),
        settled,
        "a replay changed nothing"
    );
    assert!(
        s["stats"]["duplicates"].as_i64() >= Some(last),
        "every event came again: {s}"
    );
    // A request that does not verify is refused and changes nothing.
    let r = p
        .client
        .post(format!("http://127.0.0.1:{port}/hooks/custodian"))
        .header("webhook-id", "evt_forged")
        .header(
            "webhook-timestamp",
            chrono::Utc::now().timestamp().to_string(),
        )
        .header("webhook-signature", "v1,Zm9yZ2Vk")
        .body(
            json!({"id": "evt_forged", "seq": last + 1, "type": "user.disposed", "data": {}})
                .to_string(),
        )
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 401);
    assert_eq!(p.table().await, settled);

    // The platform's table equals Custodian's ledger (its Archive folder aside).
    let ledger = admin(&app, Method::GET, "/content?count=1000").await;
    let ledger: Vec<Value> = ledger["Resources"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|i| i["id"] != "custodian-archive")
        .cloned()
        .collect();
    assert_eq!(ownership(&Value::Array(ledger)), settled);
    // And it is what the policy says, not merely equal.
    let of = |kind: &str, id: &str| settled.get(&(kind.to_string(), id.to_string())).cloned();
    let archive = json!({"kind": "folder", "id": "custodian-archive"});
    assert_eq!(of("recording", "r1"), Some((json!(boss), Value::Null)));
    assert_eq!(of("schedule", "s1"), Some((Value::Null, Value::Null)));
    assert_eq!(of("draft", "d1"), None);
    assert_eq!(
        of("folder", "home-alice"),
        Some((json!(boss), archive.clone()))
    );
    assert_eq!(of("recording", "r4"), Some((Value::Null, Value::Null)));
    assert_eq!(of("draft", "d2"), None);
    assert_eq!(of("folder", "home-bob"), Some((Value::Null, archive)));
    assert_eq!(of("recording", "r5"), Some((json!(carol), Value::Null)));
    assert_eq!(of("recording", "r6"), Some((json!(dave), Value::Null)));
    assert_eq!(settled.len(), 10);
    drop(receiver);
    stop.store(true, Ordering::SeqCst);
    tokio::task::spawn_blocking(move || relay.join().expect("relay thread"))
        .await
        .expect("join");
}
crate::both_backends!(platform_receiver, super::platform_table_equals_the_ledger);

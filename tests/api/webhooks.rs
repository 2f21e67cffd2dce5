//! Webhooks as receivers see them (issue 16): Standard Webhooks signatures
//! verified by the reference Python library, during a secret rotation too;
//! the opt-in `Custodian-Signature` scheme; skipping a poison event.

use crate::body;
use crate::common::python::{Proc, python, repo_path};
use crate::common::{self, Backend, TestApp};
use custodian::auth::Scope;
use custodian::events::relay::{Relay, RelayOptions, RetrySchedule};
use reqwest::Method;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// Standard Webhooks secrets (`whsec_` + a base64 key of 32 bytes).
const NEW_SECRET: &str = "whsec_Y3VzdG9kaWFuLXRlc3QtaG9vay1hLXNlY3JldC0zMmI=";
const OLD_SECRET: &str = "whsec_Y3VzdG9kaWFuLXRlc3QtaG9vay1iLXNlY3JldC0zMmI=";
/// The opt-in scheme's secret: any string.
const PLAIN_SECRET: &str = "custodian-scheme-secret";

fn secrets(name: &str) -> Option<String> {
    match name {
        "HOOK_NEW" => Some(NEW_SECRET.into()),
        "HOOK_OLD" => Some(OLD_SECRET.into()),
        "HOOK_PLAIN" => Some(PLAIN_SECRET.into()),
        _ => None,
    }
}

async fn app_with_policy(b: Backend, policy: String) -> TestApp {
    common::spawn_app_with(
        b,
        common::Options {
            policy: Some(policy),
            ..Default::default()
        },
    )
    .await
}

/// `n` events for the default tenant, straight to the outbox; their ids.
fn emit_events(app: &TestApp, n: usize) -> Vec<String> {
    let tenant = app.default_tenant_id();
    for _ in 0..n {
        app.db
            .write(|c| {
                custodian::events::emit_at_commit(
                    c,
                    &tenant,
                    None,
                    &custodian::events::payload::UserSuspended {},
                    "2026-11-24T00:00:00Z",
                )
            })
            .expect("emit");
    }
    app.db
        .read(|c| custodian::events::feed(c, &tenant, "default", 0, 1_000))
        .expect("feed")
        .iter()
        .map(|e| e["id"].as_str().expect("id").to_string())
        .collect()
}

/// One relay pass on a blocking thread; events delivered.
async fn pass(app: &TestApp, relay: &Arc<Relay>) -> usize {
    let (db, deprov, r) = (app.db.clone(), app.deprov.clone(), relay.clone());
    tokio::task::spawn_blocking(move || r.run_once(&db, &deprov).expect("pass"))
        .await
        .expect("join")
}

/// The reference `standardwebhooks` library (Python) verifies every delivery
/// of an endpoint mid-rotation with the new secret alone and with the old one
/// alone, and refuses a tampered body; `webhook-id` is the event id. An
/// endpoint with `signature = "custodian"` gets the older header instead; a
/// standard endpoint whose secret is not a `whsec_` secret is sent nothing.
async fn deliveries_verify_with_the_reference_library(b: Backend) {
    let py = tokio::task::spawn_blocking(python).await.expect("python");
    let receiver = Proc::spawn(
        std::process::Command::new(py)
            .arg(repo_path("tests/py/verifying_receiver.py"))
            .env("WEBHOOK_SECRET_NEW", NEW_SECRET)
            .env("WEBHOOK_SECRET_OLD", OLD_SECRET),
    );
    let port: u16 = receiver
        .line(Duration::from_secs(30))
        .parse()
        .expect("port");
    let base = format!("http://127.0.0.1:{port}");
    let app = app_with_policy(
        b,
        format!(
            "[default]\nwebhooks = [\n  {{ url = \"{base}/rotating\", secret_env = \"HOOK_NEW\", previous_secret_env = \"HOOK_OLD\" }},\n  \
             {{ url = \"{base}/custodian\", secret_env = \"HOOK_PLAIN\", signature = \"custodian\" }},\n  \
             {{ url = \"{base}/unsigned\", secret_env = \"HOOK_PLAIN\" }},\n]\n"
        ),
    )
    .await;
    let ids = emit_events(&app, 3);
    let relay = Arc::new(Relay::new(Box::new(secrets)));
    // A standard endpoint whose secret is not `whsec_…` gets nothing (and
    // the others are not held up by it).
    assert_eq!(
        pass(&app, &relay).await,
        6,
        "three events to each of the two usable endpoints"
    );
    let reports: Vec<Value> = tokio::task::spawn_blocking(move || {
        (0..6)
            .map(|_| serde_json::from_str(&receiver.line(Duration::from_secs(30))).expect("json"))
            .collect()
    })
    .await
    .expect("join");
    let rotating: Vec<&Value> = reports
        .iter()
        .filter(|r| r["path"] == "/rotating")
        .collect();
    assert_eq!(rotating.len(), 3, "{reports:?}");
    for (r, (seq, id)) in rotating.iter().zip((1..).zip(&ids)) {
        assert_eq!(r["seq"], seq, "in seq order: {r}");
        assert_eq!(r["new"], true, "verifies with the new secret: {r}");
        assert_eq!(r["old"], true, "verifies with the old secret: {r}");
        assert_eq!(r["tampered"], false, "a changed body fails: {r}");
        assert_eq!(r["webhookId"], id.as_str(), "webhook-id is the event id");
    }
    let custodian: Vec<&Value> = reports
        .iter()
        .filter(|r| r["path"] == "/custodian")
        .collect();
    assert_eq!(custodian.len(), 3, "{reports:?}");
    for r in custodian {
        let h = &r["headers"];
        let sig = h["custodian-signature"]
            .as_str()
            .expect("Custodian-Signature");
        let t: i64 = sig
            .strip_prefix("t=")
            .and_then(|s| s.split(',').next())
            .and_then(|s| s.parse().ok())
            .expect("t=");
        let body = r["body"].as_str().expect("body");
        assert_eq!(
            sig,
            custodian::events::relay::signature(PLAIN_SECRET, t, body)
        );
        assert_eq!(h["custodian-event-id"], r["id"]);
        assert!(h.get("webhook-signature").is_none(), "{h}");
    }
}
crate::both_backends!(
    webhook_standard_signatures,
    super::deliveries_verify_with_the_reference_library
);

/// A receiver on 127.0.0.1 that answers 500 to the event with seq `poison`
/// and 200 to every other; reports each accepted seq.
fn poisoned_receiver(poison: i64) -> (String, std::sync::mpsc::Receiver<i64>) {
    use std::io::Write;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(200) {
            let Ok(mut stream) = stream else { continue };
            let body = crate::common::request_body(&stream);
            let seq = serde_json::from_slice::<Value>(&body).unwrap_or_default()["seq"]
                .as_i64()
                .unwrap_or(-1);
            let status = if seq == poison {
                "500 Internal Server Error"
            } else {
                "200 OK"
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            if seq != poison {
                let _ = tx.send(seq);
            }
        }
    });
    (url, rx)
}

async fn admin(app: &TestApp, method: Method, path: &str, b: Option<Value>) -> (u16, Value) {
    let mut r = app
        .client
        .request(method, format!("{}/admin/v1{path}", app.addr))
        .bearer_auth(app.token_for("default", Scope::Admin));
    if let Some(b) = b {
        r = r.json(&b);
    }
    body(r.send().await.expect("send")).await
}

/// A receiver refuses event 1 until the endpoint is paused (visible in the
/// admin API). Only the head of the endpoint's queue can be skipped (another
/// pending event is 409, naming the head); skipping it is audited, un-pauses
/// the endpoint and loses nothing: events 2 and 3 follow, in order.
async fn a_poison_event_is_skipped_without_losing_the_rest(b: Backend) {
    let (url, accepted) = poisoned_receiver(1);
    let app = app_with_policy(
        b,
        format!("[default]\nwebhooks = [{{ url = \"{url}\", secret_env = \"HOOK_NEW\" }}]\n"),
    )
    .await;
    let ids = emit_events(&app, 3);
    let relay = Arc::new(Relay::with_options(
        Box::new(secrets),
        RelayOptions {
            retry: RetrySchedule {
                base: Duration::from_secs(1),
                max: Duration::from_secs(2),
                pause_after: Duration::from_secs(5),
            },
            ..Default::default()
        },
    ));
    // Waits 1, 2, 2 s: the fourth failure pauses (bounded by the loop).
    for _ in 0..10 {
        assert_eq!(pass(&app, &relay).await, 0, "event 1 never goes through");
        let (_, hooks) = admin(&app, Method::GET, "/webhooks", None).await;
        if hooks["Resources"][0]["paused"] == true {
            break;
        }
        app.clock.advance(chrono::Duration::milliseconds(2_300));
    }
    let (_, hooks) = admin(&app, Method::GET, "/webhooks", None).await;
    let h = &hooks["Resources"][0];
    assert_eq!(
        (
            &h["endpoint"],
            &h["paused"],
            &h["failedAttempts"],
            &h["lastDeliveredSeq"],
            &h["nextEventId"]
        ),
        (
            &json!(url),
            &json!(true),
            &json!(4),
            &json!(0),
            &json!(ids[0])
        ),
        "the paused endpoint and the event it waits on: {hooks}"
    );
    assert_eq!(h["lastError"], "HTTP 500", "why it failed: {hooks}");
    assert!(h["lastErrorAt"].is_string(), "{hooks}");
    // Not the head: refused, naming the head.
    let skip = |event: &str, endpoint: &str| json!({"endpoint": endpoint, "eventId": event});
    let (s, v) = admin(
        &app,
        Method::POST,
        "/webhooks:skip",
        Some(skip(&ids[1], &url)),
    )
    .await;
    assert_eq!(s, 409, "{v}");
    assert!(
        v["detail"].as_str().is_some_and(|d| d.contains(&ids[0])),
        "{v}"
    );
    let (s, v) = admin(
        &app,
        Method::POST,
        "/webhooks:skip",
        Some(skip(&ids[0], "http://127.0.0.1:1/elsewhere")),
    )
    .await;
    assert_eq!(s, 404, "an endpoint the tenant does not have: {v}");
    let (s, v) = admin(
        &app,
        Method::POST,
        "/webhooks:skip",
        Some(json!({"endpoint": url})),
    )
    .await;
    assert_eq!(s, 400, "the event id is required: {v}");
    // A scim-scope token may not skip.
    let r = app
        .client
        .post(format!("{}/admin/v1/webhooks:skip", app.addr))
        .bearer_auth(&app.token)
        .json(&skip(&ids[0], &url))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 403);
    // The head: skipped, the endpoint due again.
    let (s, v) = admin(
        &app,
        Method::POST,
        "/webhooks:skip",
        Some(skip(&ids[0], &url)),
    )
    .await;
    assert_eq!(
        (s, &v),
        (200, &json!({"skipped": ids[0], "lastDeliveredSeq": 1}))
    );
    let (_, hooks) = admin(&app, Method::GET, "/webhooks", None).await;
    let h = &hooks["Resources"][0];
    assert_eq!(
        (
            &h["paused"],
            &h["failedAttempts"],
            &h["lastDeliveredSeq"],
            &h["nextEventId"]
        ),
        (&json!(false), &json!(0), &json!(1), &json!(ids[1])),
        "{hooks}"
    );
    let (s, v) = admin(
        &app,
        Method::POST,
        "/webhooks:skip",
        Some(skip(&ids[0], &url)),
    )
    .await;
    assert_eq!(s, 409, "skipped once only: {v}");
    // The events behind it, and the `webhook.paused` event the pause wrote.
    assert_eq!(pass(&app, &relay).await, 3, "the events behind it");
    let got: Vec<i64> = tokio::task::spawn_blocking(move || {
        (0..3)
            .map(|_| accepted.recv_timeout(Duration::from_secs(30)).expect("seq"))
            .collect()
    })
    .await
    .expect("join");
    assert_eq!(got, vec![2, 3, 4]);
    let (_, hooks) = admin(&app, Method::GET, "/webhooks", None).await;
    assert_eq!(
        hooks["Resources"][0]["nextEventId"],
        Value::Null,
        "caught up"
    );
    let (_, audit) = admin(&app, Method::GET, "/audit?count=100", None).await;
    let skipped: Vec<&Value> = audit["Resources"]
        .as_array()
        .expect("rows")
        .iter()
        .filter(|r| r["action"] == "webhooks.event_skipped")
        .collect();
    assert_eq!(skipped.len(), 1, "{audit}");
    assert_eq!(skipped[0]["subjectId"], ids[0].as_str());
    let tenant = app.default_tenant_id();
    assert_eq!(
        skipped[0]["detail"],
        json!({"endpoint": custodian::metrics::endpoint_id(&tenant, &url), "seq": 1}),
        "the opaque endpoint id, never the URL"
    );
}
crate::both_backends!(
    webhook_skip_poison_event,
    super::a_poison_event_is_skipped_without_losing_the_rest
);

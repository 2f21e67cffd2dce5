//! Webhook delivery and exactly-once disposal under replicas and concurrent
//! triggers.

use super::*;

/// A local webhook receiver: fails the first `fail_first` requests with 500,
/// then accepts; records every accepted (headers, body). Bounded by `max`.
fn receiver(fail_first: usize, max: usize) -> (String, Received) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = got.clone();
    std::thread::spawn(move || {
        for (n, stream) in listener.incoming().take(max).enumerate() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut head = String::new();
            let mut len = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
                head.push_str(&line);
            }
            let mut body = vec![0u8; len];
            reader.read_exact(&mut body).ok();
            let status = if n < fail_first {
                "500 Internal Server Error"
            } else {
                "200 OK"
            };
            if n >= fail_first {
                sink.lock()
                    .expect("lock")
                    .push((head, String::from_utf8_lossy(&body).into_owned()));
            }
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
        }
    });
    (url, got)
}

/// A Standard Webhooks secret (`whsec_` and a base64 key of 24 bytes).
const HOOK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

async fn webhooks_survive_failures_in_order_and_signed(b: Backend) {
    let (url, got) = receiver(3, 200);
    let policy = format!(
        "[default]\nwebhooks = [{{ url = \"{url}\", secret_env = \"TEST_HOOK_SECRET\" }}]\n"
    );
    let app = policy_app(b, &policy).await;
    // A configured endpoint is listed before its first event (no cursor yet).
    let (_, hooks) = Admin::new(&app).call(Method::GET, "/webhooks", None).await;
    assert_eq!(hooks["Resources"][0]["endpoint"], url.as_str(), "{hooks}");
    assert_eq!(hooks["Resources"][0]["configured"], true);
    assert_eq!(hooks["Resources"][0]["lastDeliveredSeq"], 0);
    assert_eq!(hooks["Resources"][0]["paused"], false);
    let person = create_user(&app, "hooked@example.edu").await;
    let deactivate = patch_body(json!([{"op": "replace", "value": {"active": false}}]));
    app.req(Method::PATCH, &format!("/Users/{person}"))
        .json(&deactivate)
        .send()
        .await
        .expect("send");
    delete_user(&app, &app.token, &person).await;
    let tenant_id = app.default_tenant_id();
    let last = custodian::events::relay::last_seq(&app.db, &tenant_id).expect("seq");
    let (_, feed) = Admin::new(&app)
        .call(Method::GET, "/events?after=0", None)
        .await;
    assert!(
        last >= 3,
        "suspended, scheduled, disposed: last={last} feed={feed}"
    );
    let relay = custodian::events::relay::Relay::new(Box::new(|name: &str| {
        (name == "TEST_HOOK_SECRET").then(|| HOOK_SECRET.to_string())
    }));
    let (db, deprov, clock) = (app.db.clone(), app.deprov.clone(), app.clock.clone());
    tokio::task::spawn_blocking(move || {
        // Bounded: each failed pass backs off; the clock jumps past the backoff.
        for _ in 0..20 {
            relay.run_once(&db, &deprov).expect("relay");
            clock.advance(chrono::Duration::minutes(5));
        }
    })
    .await
    .expect("join");
    let got = got.lock().expect("lock").clone();
    let seqs: Vec<i64> = got
        .iter()
        .filter_map(|(_, b)| serde_json::from_str::<Value>(b).ok())
        .filter_map(|v| v["seq"].as_i64())
        .collect();
    assert_eq!(
        seqs,
        (1..=last).collect::<Vec<_>>(),
        "every event, once each after the failures, in seq order"
    );
    // Standard Webhooks headers (the default): the event id, the time, and
    // `v1,<base64 HMAC>` over id.timestamp.body with the whsec_ key.
    let signer = custodian::events::signing::Signer::new(
        custodian::events::signing::Scheme::Standard,
        HOOK_SECRET,
        &[],
    )
    .expect("secret");
    for (head, body) in &got {
        let header = |name: &str| {
            head.lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
                })
                .unwrap_or_else(|| panic!("{name} header in {head}"))
        };
        let v: Value = serde_json::from_str(body).expect("json");
        assert_eq!(v["tenant"], "default");
        let id = header("webhook-id");
        assert_eq!(
            id,
            v["id"].as_str().unwrap_or("-"),
            "webhook-id is the event id"
        );
        let t: i64 = header("webhook-timestamp").parse().expect("unix seconds");
        assert_eq!(
            header("webhook-signature"),
            signer.headers(&id, t, body)[2].1,
            "valid HMAC over id.timestamp.body"
        );
        assert!(
            !head.to_ascii_lowercase().contains("custodian-signature"),
            "{head}"
        );
    }
    // Delivery state is visible; a paused endpoint can be resumed.
    let a = Admin::new(&app);
    let (_, hooks) = a.call(Method::GET, "/webhooks", None).await;
    assert_eq!(hooks["Resources"][0]["lastDeliveredSeq"], last);
    assert_eq!(hooks["Resources"][0]["configured"], true);
    assert_eq!(hooks["Resources"][0]["paused"], false);
    assert_eq!(
        hooks["Resources"].as_array().map(Vec::len),
        Some(1),
        "{hooks}"
    );
    app.db
        .write(|c| {
            use crate::common::schema::webhook_cursors as wc;
            use diesel::prelude::*;
            diesel::update(wc::table)
                .set(wc::paused.eq(true))
                .execute(c)
                .map_err(custodian::store::StoreError::from)
        })
        .expect("pause");
    let (s, r) = a.call(Method::POST, "/webhooks:resume", None).await;
    assert_eq!((s, r["resumed"].as_i64()), (200, Some(1)));
    let (_, hooks) = a.call(Method::GET, "/webhooks", None).await;
    assert_eq!(hooks["Resources"][0]["paused"], false);
}
crate::both_backends!(
    webhooks,
    super::webhooks_survive_failures_in_order_and_signed
);

async fn replicas_and_concurrent_triggers_dispose_once(b: Backend) {
    let app = policy_app(b, "[default]\ngrace_period = \"1h\"\n").await;
    let a = Admin::new(&app);
    // Ten suspended people, then two scheduler "replicas" race over them.
    let mut ids = vec![];
    for i in 0..10 {
        let id = create_user(&app, &format!("r{i}@example.edu")).await;
        a.put_item("recording", &format!("rr{i}"), &id, false, None)
            .await;
        let (s, _) = body(
            app.req(Method::PATCH, &format!("/Users/{id}"))
                .json(&patch_body(
                    json!([{"op": "replace", "path": "active", "value": false}]),
                ))
                .send()
                .await
                .expect("send"),
        )
        .await;
        assert_eq!(s, 200);
        ids.push(id);
    }
    app.clock.advance(chrono::Duration::hours(2));
    let runs: Vec<_> = (0..2)
        .map(|_| {
            let (db, deprov) = (app.db.clone(), app.deprov.clone());
            std::thread::spawn(move || deprov.run_due(&db).expect("run_due"))
        })
        .collect();
    let total: usize = runs.into_iter().map(|h| h.join().expect("join")).sum();
    assert_eq!(total, 10, "each due disposal ran on exactly one replica");
    // Concurrent DELETEs of one person: one disposal, one 204.
    let person = create_user(&app, "twice@example.edu").await;
    a.put_item("recording", "tw", &person, false, None).await;
    let mut tasks = vec![];
    for _ in 0..6 {
        let req = app.req(Method::DELETE, &format!("/Users/{person}"));
        tasks.push(tokio::spawn(async move {
            req.send().await.map(|r| r.status().as_u16())
        }));
    }
    let mut codes = vec![];
    for t in tasks {
        codes.push(t.await.expect("join").expect("send"));
    }
    assert_eq!(codes.iter().filter(|c| **c == 204).count(), 1, "{codes:?}");
    assert!(codes.iter().all(|c| *c == 204 || *c == 404), "{codes:?}");
    let (_, done) = a
        .call(Method::GET, "/disposals?state=done&count=100", None)
        .await;
    assert_eq!(done["Resources"].as_array().map(Vec::len), Some(11));
    let (_, ev) = a
        .call(Method::GET, "/events?after=0&count=1000", None)
        .await;
    let disposed = ev["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["type"] == "user.disposed")
        .count();
    assert_eq!(disposed, 11);
}
crate::both_backends!(
    replicas_and_concurrency,
    super::replicas_and_concurrent_triggers_dispose_once
);

/// Regressions from the deprovisioning review.
async fn concurrent_triggers_and_releases_apply_once(b: Backend) {
    let app = policy_app(b, "[default]\n").await;
    let a = Admin::new(&app);
    let person = create_user(&app, "contested@example.edu").await;
    a.put_item("recording", "ct", &person, false, None).await;
    let admin_url = format!("{}/admin/v1/users/{person}/dispose", app.addr);
    let mut tasks = vec![];
    for i in 0..3 {
        let req = if i == 2 {
            app.req(Method::DELETE, &format!("/Users/{person}"))
        } else {
            app.client.post(&admin_url).bearer_auth(&a.token)
        };
        tasks.push(tokio::spawn(async move {
            req.send().await.map(|r| r.status().as_u16())
        }));
    }
    let mut codes = vec![];
    for t in tasks {
        codes.push(t.await.expect("join").expect("send"));
    }
    assert_eq!(
        codes.iter().filter(|c| **c == 200 || **c == 204).count(),
        1,
        "{codes:?}"
    );
    assert!(
        codes.iter().all(|c| matches!(c, 200 | 204 | 404)),
        "no 500, no deadlock: {codes:?}"
    );
    let (_, done) = a.call(Method::GET, "/disposals?state=done", None).await;
    assert_eq!(done["Resources"].as_array().map(Vec::len), Some(1));
    let (_, ts) = a.call(Method::GET, "/tombstones", None).await;
    assert_eq!(ts["Resources"].as_array().map(Vec::len), Some(1));
}
crate::both_backends!(
    concurrent_triggers,
    super::concurrent_triggers_and_releases_apply_once
);

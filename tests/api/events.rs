//! The event outbox under concurrent writers.

use crate::common;
use custodian::store::StoreError;
use serde_json::json;
use std::time::Duration;

/// `seq` order is commit order even when the first write to emit commits
/// last: a `seq` is taken as its transaction commits, so a write that emitted
/// early holds nobody up (PostgreSQL, whose writes run in parallel; SQLite's
/// are serial and cannot interleave like this).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_seq_is_commit_order() {
    let Some(app) = common::postgres_app().await else {
        return;
    };
    let tenant = app.default_tenant_id();
    let now = "2026-11-24T00:00:00Z";
    let (began, has_begun) = std::sync::mpsc::channel();
    let (second_done, second_has_committed) = std::sync::mpsc::channel::<()>();
    let first = {
        let (db, t) = (app.db.clone(), tenant.clone());
        std::thread::spawn(move || {
            db.write(|c| {
                custodian::events::emit(c, &t, "test.emitted_first", None, json!({}), now)?;
                began.send(()).ok();
                // Open until the second write has committed (bounded: with
                // the counter locked at `emit`, it never could).
                second_has_committed
                    .recv_timeout(Duration::from_secs(20))
                    .map_err(|_| {
                        StoreError::Commit(
                            "the second write could not commit while the first was open".into(),
                        )
                    })
            })
        })
    };
    has_begun
        .recv_timeout(Duration::from_secs(20))
        .expect("the first write began");
    let second = {
        let (db, t) = (app.db.clone(), tenant.clone());
        std::thread::spawn(move || {
            db.write(|c| {
                custodian::events::emit(c, &t, "test.emitted_second", None, json!({}), now)
            })
        })
    };
    let second = second.join().expect("thread");
    second_done.send(()).ok();
    let first = first.join().expect("thread");
    assert!(second.is_ok() && first.is_ok(), "{second:?} {first:?}");
    let feed = app
        .db
        .read(|c| custodian::events::feed(c, &tenant, "default", 0, 100))
        .expect("feed");
    let order: Vec<(i64, &str)> = feed
        .iter()
        .filter_map(|e| Some((e["seq"].as_i64()?, e["type"].as_str()?)))
        .collect();
    assert_eq!(
        order,
        vec![(1, "test.emitted_second"), (2, "test.emitted_first")],
        "seq follows commit order, gap-free"
    );
}

/// What a receiver saw: (seq, type) per accepted request.
type Seen = std::sync::mpsc::Receiver<(i64, String)>;

/// A webhook receiver on 127.0.0.1. With `held`, it holds every request open
/// (unanswered) until the test sends on the returned release channel, and
/// says on `held` that it is holding one; without, it answers at once.
fn receiver(
    held: Option<std::sync::mpsc::Sender<()>>,
) -> (String, Seen, std::sync::mpsc::Sender<()>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    let (seen_tx, seen) = std::sync::mpsc::channel();
    let (release, released) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        let mut open = held.is_none();
        for stream in listener.incoming().take(500) {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut len = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0u8; len];
            reader.read_exact(&mut body).ok();
            if !open {
                if let Some(h) = &held {
                    let _ = h.send(());
                }
                // Bounded: a test that never releases fails on its own timeouts.
                open = released.recv_timeout(Duration::from_secs(60)).is_ok();
            }
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            let _ = seen_tx.send((
                v["seq"].as_i64().unwrap_or(-1),
                v["type"].as_str().unwrap_or_default().to_string(),
            ));
        }
    });
    (url, seen, release)
}

/// Issue 14: tenant B's receiver holds every delivery open; tenant A's
/// `user.suspended`, emitted while B's delivery hangs, still reaches A's
/// receiver; once B's receiver answers, B's events all arrive, in seq order.
async fn slow_endpoint_delays_only_itself(b: crate::common::Backend) {
    use crate::{body, patch_body, user_body};
    use custodian::auth::Scope;
    let (held_tx, held) = std::sync::mpsc::channel();
    let (url_b, seen_b, release_b) = receiver(Some(held_tx));
    let (url_a, seen_a, _) = receiver(None);
    let policy = format!(
        "[default]\nwebhooks = [{{ url = \"{url_a}\", secret_env = \"HOOK_A\" }}]\n\
         [tenants.beta]\nwebhooks = [{{ url = \"{url_b}\", secret_env = \"HOOK_B\" }}]\n"
    );
    let app = common::spawn_app_with(
        b,
        common::Options {
            policy: Some(policy),
            ..Default::default()
        },
    )
    .await;
    let beta = app.token_for("beta", Scope::Scim);
    let suspend = patch_body(json!([{"op": "replace", "value": {"active": false}}]));
    let create_and_suspend = |token: String, name: String| {
        let (app, suspend) = (&app, suspend.clone());
        async move {
            let (s, v) = body(
                app.client
                    .post(app.url("/Users"))
                    .bearer_auth(&token)
                    .header("Content-Type", "application/scim+json")
                    .json(&user_body(&name))
                    .send()
                    .await
                    .expect("send"),
            )
            .await;
            assert_eq!(s, 201, "{v}");
            let id = v["id"].as_str().expect("id").to_string();
            let s = app
                .client
                .patch(app.url(&format!("/Users/{id}")))
                .bearer_auth(&token)
                .header("Content-Type", "application/scim+json")
                .json(&suspend)
                .send()
                .await
                .expect("send")
                .status()
                .as_u16();
            assert_eq!(s, 200);
        }
    };
    for i in 0..5 {
        create_and_suspend(beta.clone(), format!("b{i}@beta.example.edu")).await;
    }
    let beta_id: String = app
        .db
        .read(|c| {
            use custodian::store::schema::tenants;
            use diesel::prelude::*;
            tenants::table
                .filter(tenants::name.eq("beta"))
                .select(tenants::id)
                .first(c)
                .map_err(StoreError::from)
        })
        .expect("beta tenant");
    let beta_last = custodian::events::relay::last_seq(&app.db, &beta_id).expect("seq");
    assert!(beta_last >= 5, "beta has events queued: {beta_last}");
    let relay = std::sync::Arc::new(custodian::events::relay::Relay::with_options(
        Box::new(|name: &str| match name {
            "HOOK_A" => Some("a-secret".into()),
            "HOOK_B" => Some("b-secret".into()),
            _ => None,
        }),
        custodian::events::relay::RelayOptions {
            // Longer than the test holds B: the hold must not end in a timeout.
            timeout: Duration::from_secs(30),
            max_concurrent: 4,
        },
    ));
    let pass = || {
        let (relay, db, deprov) = (relay.clone(), app.db.clone(), app.deprov.clone());
        tokio::task::spawn_blocking(move || relay.spawn_pass(&db, &deprov).expect("pass"))
    };
    pass().await.expect("join");
    // B's worker is now stuck inside its first delivery.
    tokio::task::spawn_blocking(move || {
        held.recv_timeout(Duration::from_secs(30))
            .expect("B's receiver holds a delivery")
    })
    .await
    .expect("join");
    // Tenant A suspends someone while B's delivery hangs.
    let default_token = app.token.clone();
    create_and_suspend(default_token, "leaver@example.edu".into()).await;
    pass().await.expect("join");
    let got_a = tokio::task::spawn_blocking(move || {
        let mut got = Vec::new();
        while !got
            .iter()
            .any(|(_, t): &(i64, String)| t == "user.suspended")
        {
            got.push(
                seen_a
                    .recv_timeout(Duration::from_secs(30))
                    .expect("A's user.suspended while B is held"),
            );
        }
        got
    })
    .await
    .expect("join");
    assert!(got_a.iter().any(|(_, t)| t == "user.suspended"));
    assert!(
        seen_b.try_recv().is_err(),
        "B's receiver has answered nothing yet"
    );
    // Release B: its events all arrive, in order, once each.
    release_b.send(()).expect("release");
    let got_b = tokio::task::spawn_blocking(move || {
        let mut got = Vec::new();
        for _ in 0..beta_last {
            got.push(
                seen_b
                    .recv_timeout(Duration::from_secs(30))
                    .expect("B's events after release")
                    .0,
            );
        }
        got
    })
    .await
    .expect("join");
    assert_eq!(got_b, (1..=beta_last).collect::<Vec<_>>(), "B in seq order");
}
crate::both_backends!(
    webhook_slow_endpoint,
    super::slow_endpoint_delays_only_itself
);

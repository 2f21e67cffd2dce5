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
                custodian::events::emit_at_commit(
                    c,
                    &t,
                    None,
                    &custodian::events::payload::UserSuspended {},
                    now,
                )?;
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
                custodian::events::emit_at_commit(
                    c,
                    &t,
                    None,
                    &custodian::events::payload::UserReactivated {},
                    now,
                )
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
        vec![(1, "user.reactivated"), (2, "user.suspended")],
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
    use std::io::Write;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    let (seen_tx, seen) = std::sync::mpsc::channel();
    let (release, released) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        let mut open = held.is_none();
        for stream in listener.incoming().take(500) {
            let Ok(mut stream) = stream else { continue };
            let body = crate::common::request_body(&stream);
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
            use crate::common::schema::tenants;
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
            "HOOK_A" => Some("whsec_Y3VzdG9kaWFuLXRlc3QtaG9vay1hLXNlY3JldC0zMmI=".into()),
            "HOOK_B" => Some("whsec_Y3VzdG9kaWFuLXRlc3QtaG9vay1iLXNlY3JldC0zMmI=".into()),
            _ => None,
        }),
        custodian::events::relay::RelayOptions {
            // Longer than the test holds B: the hold must not end in a timeout.
            timeout: Duration::from_secs(30),
            max_concurrent: 4,
            ..Default::default()
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

/// An app whose default tenant's events go to `url` (secret env `HOOK`).
async fn hooked_app(b: crate::common::Backend, url: &str) -> crate::common::TestApp {
    common::spawn_app_with(
        b,
        common::Options {
            policy: Some(format!(
                "[default]\nwebhooks = [{{ url = \"{url}\", secret_env = \"HOOK\" }}]\n"
            )),
            ..Default::default()
        },
    )
    .await
}

fn relay_with(
    opts: custodian::events::relay::RelayOptions,
) -> std::sync::Arc<custodian::events::relay::Relay> {
    std::sync::Arc::new(custodian::events::relay::Relay::with_options(
        Box::new(|name: &str| {
            (name == "HOOK")
                .then(|| "whsec_Y3VzdG9kaWFuLXRlc3QtaG9vay1zZWNyZXQtMzJieXQ=".to_string())
        }),
        opts,
    ))
}

/// `n` events for the default tenant, written straight to the outbox.
fn emit_events(app: &crate::common::TestApp, n: usize) {
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
}

/// The webhook cursor's (lease_owner, attempts, paused, next_attempt_at).
fn cursor(app: &crate::common::TestApp) -> (Option<String>, i32, bool, String) {
    use crate::common::schema::webhook_cursors as wc;
    use diesel::prelude::*;
    app.db
        .read(|c| {
            wc::table
                .select((
                    wc::lease_owner,
                    wc::attempts,
                    wc::paused,
                    wc::next_attempt_at,
                ))
                .first(c)
                .map_err(StoreError::from)
        })
        .expect("cursor")
}

/// Counts every row written to `webhook_cursors` (insert or update) from now
/// on, in a table of its own; returns a reader of the count.
fn count_cursor_writes(app: &crate::common::TestApp) -> impl Fn() -> i64 + '_ {
    use custodian::store::db::Backend;
    let statements: &[&str] = match app.db.backend() {
        Backend::Sqlite => &[
            "CREATE TABLE cursor_writes (n INTEGER)",
            "CREATE TRIGGER cursor_w_u AFTER UPDATE ON webhook_cursors BEGIN INSERT INTO cursor_writes VALUES (1); END",
            "CREATE TRIGGER cursor_w_i AFTER INSERT ON webhook_cursors BEGIN INSERT INTO cursor_writes VALUES (1); END",
        ],
        Backend::Postgres => &[
            "CREATE TABLE cursor_writes (n INTEGER)",
            "CREATE FUNCTION cursor_w() RETURNS trigger AS $$ BEGIN INSERT INTO cursor_writes VALUES (1); RETURN NULL; END $$ LANGUAGE plpgsql",
            "CREATE TRIGGER cursor_w AFTER INSERT OR UPDATE ON webhook_cursors FOR EACH ROW EXECUTE FUNCTION cursor_w()",
        ],
    };
    app.db
        .write(|c| {
            for q in statements {
                let sql = crate::common::sql::Sql::new(q);
                crate::common::sql::execute_sql(c, &sql)?;
            }
            Ok::<_, StoreError>(())
        })
        .expect("triggers");
    move || {
        #[derive(diesel::QueryableByName)]
        struct N {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let sql = crate::common::sql::Sql::new("SELECT COUNT(*) AS n FROM cursor_writes");
        app.db
            .read(|c| crate::common::sql::load_sql::<N>(c, &sql))
            .expect("count")
            .first()
            .map_or(0, |r| r.n)
    }
}

/// Review of issue 14: a pass over an endpoint with nothing due only reads —
/// no lease claimed and released every two seconds on the SQLite writer —
/// whether it is caught up or backing off; an event due is claimed and sent.
async fn idle_passes_write_nothing(b: crate::common::Backend) {
    let (url, seen, _) = receiver(None);
    let app = hooked_app(b, &url).await;
    emit_events(&app, 2);
    let relay = relay_with(Default::default());
    let run = |relay: std::sync::Arc<custodian::events::relay::Relay>| {
        let (db, deprov) = (app.db.clone(), app.deprov.clone());
        tokio::task::spawn_blocking(move || relay.run_once(&db, &deprov).expect("pass"))
    };
    assert_eq!(run(relay.clone()).await.expect("join"), 2);
    let writes = count_cursor_writes(&app);
    for _ in 0..3 {
        assert_eq!(run(relay.clone()).await.expect("join"), 0);
    }
    assert_eq!(writes(), 0, "idle passes wrote to webhook_cursors");
    // Another relay (replica) polling idle writes nothing either.
    assert_eq!(run(relay_with(Default::default())).await.expect("join"), 0);
    assert_eq!(writes(), 0, "an idle replica wrote to webhook_cursors");
    emit_events(&app, 1);
    assert_eq!(run(relay.clone()).await.expect("join"), 1);
    assert!(writes() > 0, "a due event is claimed (the count works)");
    let got: Vec<i64> = (0..3)
        .map(|_| seen.recv_timeout(Duration::from_secs(10)).expect("seen").0)
        .collect();
    assert_eq!(got, vec![1, 2, 3]);
}
crate::both_backends!(webhook_idle_reads_only, super::idle_passes_write_nothing);

/// Review of issue 14: a send may take up to the relay's timeout, and the
/// lease must outlast it. Relay 1's first send hangs while the clock passes
/// the old fixed 60 s lease (but not the 120 s send timeout); relay 2 (another
/// replica) must not claim the endpoint and send the same events
/// concurrently. Every event arrives once, in order.
async fn lease_outlasts_a_slow_send(b: crate::common::Backend) {
    let (held_tx, held) = std::sync::mpsc::channel();
    let (url, seen, release) = receiver(Some(held_tx));
    let app = hooked_app(b, &url).await;
    emit_events(&app, 3);
    let opts = || custodian::events::relay::RelayOptions {
        timeout: Duration::from_secs(120),
        ..Default::default()
    };
    let (first, second) = (relay_with(opts()), relay_with(opts()));
    {
        let (db, deprov) = (app.db.clone(), app.deprov.clone());
        tokio::task::spawn_blocking(move || first.spawn_pass(&db, &deprov).expect("pass"))
            .await
            .expect("join");
    }
    tokio::task::spawn_blocking(move || {
        held.recv_timeout(Duration::from_secs(30))
            .expect("the first send is held")
    })
    .await
    .expect("join");
    let holder = cursor(&app).0;
    assert!(holder.is_some(), "relay 1 holds the lease");
    app.clock.advance(chrono::Duration::seconds(90));
    let other = {
        let (db, deprov) = (app.db.clone(), app.deprov.clone());
        tokio::task::spawn_blocking(move || second.run_once(&db, &deprov).expect("pass"))
    };
    // Bounded poll: relay 2 either gives up (done) or takes the lease.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !other.is_finished() && cursor(&app).0 == holder {
        assert!(
            std::time::Instant::now() < deadline,
            "relay 2 never decided"
        );
        tokio::task::yield_now().await;
    }
    assert_eq!(cursor(&app).0, holder, "relay 2 took a lease still in use");
    release.send(()).expect("release");
    assert_eq!(other.await.expect("join"), 0, "relay 2 sent nothing");
    let got: Vec<i64> = tokio::task::spawn_blocking(move || {
        (0..3)
            .map(|_| seen.recv_timeout(Duration::from_secs(30)).expect("seen").0)
            .collect()
    })
    .await
    .expect("join");
    assert_eq!(got, vec![1, 2, 3], "each event once, in order");
}
crate::both_backends!(
    webhook_lease_outlasts_send,
    super::lease_outlasts_a_slow_send
);

/// A receiver that answers every request 500; counts the requests.
fn failing_receiver() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::Write;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = count.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(100) {
            let Ok(mut stream) = stream else { continue };
            crate::common::request_body(&stream);
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let _ = write!(
                stream,
                "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
        }
    });
    (url, count)
}

/// A failing endpoint is retried on the configured schedule (doubling waits,
/// capped, ±10 % jitter) and paused once the waits span `pause_after`: with
/// 1 s, 2 s cap, 5 s, the waits are 1, 2, 2 and the fourth failure pauses it
/// (the schedule the default — 30 s, 1 h, a day — follows over ~24 h).
async fn failing_endpoint_pauses_on_schedule(b: crate::common::Backend) {
    let (url, requests) = failing_receiver();
    let app = hooked_app(b, &url).await;
    emit_events(&app, 1);
    let retry = custodian::events::relay::RetrySchedule {
        base: Duration::from_secs(1),
        max: Duration::from_secs(2),
        pause_after: Duration::from_secs(5),
    };
    let relay = relay_with(custodian::events::relay::RelayOptions {
        retry: retry.clone(),
        ..Default::default()
    });
    // The service clock runs with real time (plus the test's advances), so a
    // failure is recorded some time between `before` and `after`: each wait
    // is known to lie in [next - after, next - before].
    let mut waits = Vec::new();
    for _ in 0..10 {
        let before = app.deprov.clock.now();
        let (db, deprov, r) = (app.db.clone(), app.deprov.clone(), relay.clone());
        tokio::task::spawn_blocking(move || r.run_once(&db, &deprov).expect("pass"))
            .await
            .expect("join");
        let (_, attempts, paused, next) = cursor(&app);
        if paused {
            assert_eq!(attempts, 4, "paused at the fourth failure");
            break;
        }
        let next = chrono::DateTime::parse_from_rfc3339(&next).expect("time");
        let next = next.with_timezone(&chrono::Utc);
        let after = app.deprov.clock.now();
        waits.push((
            (next - after).num_milliseconds(),
            (next - before).num_milliseconds(),
        ));
        // Past the longest wait with jitter.
        app.clock.advance(chrono::Duration::milliseconds(2_300));
    }
    assert!(cursor(&app).2, "paused");
    // The receiver counts a request after reading it; a send the relay gave
    // up on under load may be counted a moment after its pass returned.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while requests.load(std::sync::atomic::Ordering::SeqCst) < 4
        && std::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(requests.load(std::sync::atomic::Ordering::SeqCst), 4);
    assert_eq!(waits.len(), 3, "{waits:?}");
    for ((lo, hi), nominal) in waits.iter().zip([1_000_i64, 2_000, 2_000]) {
        assert!(
            *hi >= nominal * 9 / 10 && *lo <= nominal * 11 / 10,
            "wait between {lo} and {hi} ms for nominal {nominal} ms ±10 %"
        );
    }
    let tenant = app.default_tenant_id();
    let feed = app
        .db
        .read(|c| custodian::events::feed(c, &tenant, "default", 0, 100))
        .expect("feed");
    assert!(
        feed.iter().any(|e| e["type"] == "webhook.paused"),
        "{feed:?}"
    );
}
crate::both_backends!(
    webhook_pause_schedule,
    super::failing_endpoint_pauses_on_schedule
);

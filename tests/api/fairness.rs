//! Fair shares between tenants, request deadlines, and point lookups over
//! large documents.
//!
//! A tenant's requests are held deterministically: a request whose last body
//! byte is not yet sent is admitted (it counts toward the tenant's queue) but
//! holds no slot; a running request is held by a write that waits for a long
//! write (SQLite's writer) or a row lock (PostgreSQL), or, where a test needs
//! a slot occupied without a request, by taking it from the server's own
//! limiter. The limiter's counts say when they run or wait; nothing is timed.

use crate::common::{self, Backend, Options, TestApp};
use crate::{body, create_user, patch_body, user_body};
use custodian::auth::Scope;
use custodian::http::limiter::Kind;
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

crate::both_backends!(a_flooding_tenant_never_stalls_another, super::flood);
crate::both_backends!(refusals_are_held_before_their_429, super::held_refusals);
crate::both_backends!(point_lookups_of_large_documents, super::large_lookups);
crate::both_backends!(a_slow_upload_holds_no_slot, super::slow_upload);
crate::both_backends!(reads_are_answered_while_writes_stall, super::stalled_writes);
crate::both_backends!(large_lists_are_paged_by_bytes, super::paged_by_bytes);
crate::both_backends!(
    large_bodies_are_parsed_in_the_tenants_cpu_share,
    super::large_parses
);
crate::both_backends!(
    an_uncached_token_is_verified_in_a_share,
    super::uncached_in_share
);

/// A request whose last body byte is not yet sent.
struct Held {
    stream: TcpStream,
    last: u8,
}

impl Held {
    async fn open(app: &TestApp, token: &str, path: &str, body: &Value) -> Held {
        let host = app.addr.trim_start_matches("http://");
        let body = body.to_string().into_bytes();
        let mut stream = TcpStream::connect(host).await.expect("connect");
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/scim+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).await.expect("head");
        let (most, last) = body.split_at(body.len() - 1);
        stream.write_all(most).await.expect("body");
        stream.flush().await.expect("flush");
        Held {
            stream,
            last: last[0],
        }
    }

    /// Sends the last byte; the response's status and `Retry-After`.
    async fn finish(mut self) -> (u16, Option<String>) {
        self.stream
            .write_all(&[self.last])
            .await
            .expect("last byte");
        let mut raw = Vec::new();
        self.stream.read_to_end(&mut raw).await.expect("response");
        let text = String::from_utf8_lossy(&raw);
        let status = text
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let retry = text
            .lines()
            .find(|l| l.to_ascii_lowercase().starts_with("retry-after:"))
            .map(|l| l["retry-after:".len()..].trim().to_string());
        (status, retry)
    }
}

/// Waits until the limiter shows `tenant` with (running, waiting) in `kind`'s lane.
async fn until_counts(
    limiter: &custodian::http::limiter::Limiter,
    tenant: &str,
    kind: Kind,
    want: (usize, usize),
) {
    for _ in 0..6000 {
        if limiter.counts(tenant, kind) == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!(
        "tenant never reached {want:?}: {:?}",
        limiter.counts(tenant, kind)
    );
}

/// Waits until the limiter shows `tenant` with `want` requests admitted.
async fn until_admitted(limiter: &custodian::http::limiter::Limiter, tenant: &str, want: usize) {
    for _ in 0..6000 {
        if limiter.admitted(tenant) == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!(
        "tenant never reached {want} admitted: {}",
        limiter.admitted(tenant)
    );
}

fn tenant_id(app: &TestApp, name: &str) -> String {
    app.db
        .read(|c| custodian::store::tokens::find_tenant(c, name))
        .expect("tenant")
        .expect("exists")
        .id
}

async fn gate_check(app: &TestApp, token: &str, user_name: &str) -> u16 {
    app.client
        .post(format!("{}/gate/v1/check", app.addr))
        .bearer_auth(token)
        .json(&json!({"userName": user_name}))
        .send()
        .await
        .expect("send")
        .status()
        .as_u16()
}

/// Tenant A holds its whole share and fills its queue: its next request gets
/// 429 with an integer Retry-After, while tenant B's reads, writes and gate
/// checks all succeed; with a third tenant holding the rest of the SCIM
/// budget, B's gate checks still succeed (their own budget). Once A's running
/// request finishes, every one of its queued requests is served (none 429).
async fn flood(backend: Backend) {
    const QUEUE: usize = 6;
    let app = common::spawn_app_with(
        backend,
        Options {
            max_in_flight_per_tenant: QUEUE,
            // Held requests wait as long as the test needs.
            tune: |s| s.request_deadline_ms = 600_000,
            ..Default::default()
        },
    )
    .await;
    // The harness's pool has 4 connections: 2 for the gate, 2 for SCIM, one
    // per tenant.
    assert_eq!(app.limiter.share(), 1);
    let a = app.token_for("tenant-a", Scope::Scim);
    let c = app.token_for("tenant-c", Scope::Scim);
    let b = app.token_for("tenant-b", Scope::Scim);
    let b_gate = app.token_for("tenant-b", Scope::Gate);
    let (a_id, c_id) = (tenant_id(&app, "tenant-a"), tenant_id(&app, "tenant-c"));

    // B has a user to look up and to check at the gate.
    let r = app
        .client
        .post(app.url("/Users"))
        .bearer_auth(&b)
        .json(&user_body("b.seed@example.edu"))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 201);

    // A's first write runs (its slot taken here, as a running request holds
    // it); its further writes queue behind it.
    let running = app
        .limiter
        .acquire(&a_id, Kind::Write)
        .await
        .expect("A's slot");
    let mut queued = Vec::new();
    for i in 1..QUEUE {
        let (client, url, a) = (app.client.clone(), app.url("/Users"), a.clone());
        queued.push(tokio::spawn(async move {
            let r = client
                .post(url)
                .bearer_auth(&a)
                .json(&user_body(&format!("a.{i}@example.edu")))
                .send()
                .await
                .expect("send");
            r.status().as_u16()
        }));
    }
    until_counts(&app.limiter, &a_id, Kind::Write, (1, QUEUE - 1)).await;

    // A's queue is full: 429 with an integer Retry-After.
    let r = app
        .client
        .get(app.url("/Users"))
        .bearer_auth(&a)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 429);
    let retry = r
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    assert!(
        retry.as_deref().is_some_and(|v| v.parse::<u32>().is_ok()),
        "{retry:?}"
    );

    // B, as an IdP with a few connections, reads, writes and checks logins.
    let streams = (0..4).map(|stream| {
        let (app, b, b_gate) = (&app, b.clone(), b_gate.clone());
        async move {
            let mut statuses = vec![];
            for i in 0..5 {
                let r = app
                    .client
                    .get(app.url("/Users"))
                    .bearer_auth(&b)
                    .query(&[("filter", "userName eq \"b.seed@example.edu\"")])
                    .send()
                    .await
                    .expect("send");
                let (s, v) = body(r).await;
                assert_eq!(v["totalResults"], 1, "{v}");
                statuses.push(s);
                let r = app
                    .client
                    .post(app.url("/Users"))
                    .bearer_auth(&b)
                    .json(&user_body(&format!("b.{stream}.{i}@example.edu")))
                    .send()
                    .await
                    .expect("send");
                statuses.push(r.status().as_u16());
                statuses.push(gate_check(app, &b_gate, "b.seed@example.edu").await);
            }
            statuses
        }
    });
    let statuses: Vec<u16> = futures_util::future::join_all(streams)
        .await
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(statuses.len(), 60);
    assert!(
        statuses.iter().all(|s| matches!(s, 200 | 201)),
        "{statuses:?}"
    );
    // A never ran more than its share meanwhile.
    assert_eq!(app.limiter.counts(&a_id, Kind::Write), (1, QUEUE - 1));

    // C takes the rest of the SCIM budget: B's logins still go through.
    let c_running = app
        .limiter
        .acquire(&c_id, Kind::Read)
        .await
        .expect("C's slot");
    for _ in 0..10 {
        assert_eq!(gate_check(&app, &b_gate, "b.seed@example.edu").await, 200);
    }
    // C holds the last free slot: a request of C itself waits for it.
    let _ = c;

    // Released, every one of A's queued requests is served, in turn.
    drop(c_running);
    drop(running);
    let mut finished = vec![];
    for q in queued {
        finished.push(q.await.expect("join"));
    }
    assert!(finished.iter().all(|status| *status == 201), "{finished:?}");
    assert_eq!(app.limiter.counts(&a_id, Kind::Write), (0, 0));
    assert_eq!(app.limiter.admitted(&a_id), 0);
    let r = app
        .client
        .get(app.url("/Users"))
        .bearer_auth(&a)
        .query(&[("filter", "userName sw \"a.\"")])
        .send()
        .await
        .expect("send");
    let (s, v) = body(r).await;
    assert_eq!(
        (s, v["totalResults"].as_u64()),
        (200, Some(QUEUE as u64 - 1)),
        "{v}"
    );
}

/// A client uploading its body slowly is admitted (it counts toward its
/// tenant's queue) but holds no database slot: with a share of one, the
/// same tenant's other requests run while the upload is pending, and a
/// full queue of uploads is refused with 429 before any body is read.
async fn slow_upload(backend: Backend) {
    const QUEUE: usize = 3;
    let app = common::spawn_app_with(
        backend,
        Options {
            max_in_flight_per_tenant: QUEUE,
            tune: |s| s.request_deadline_ms = 600_000,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(app.limiter.share(), 1);
    let tenant = app.default_tenant_id();
    let held = Held::open(
        &app,
        &app.token,
        "/scim/v2/Users",
        &user_body("slow@example.edu"),
    )
    .await;
    until_admitted(&app.limiter, &tenant, 1).await;
    assert_eq!(app.limiter.counts(&tenant, Kind::Write), (0, 0));

    // The tenant's share is one slot: its write and read proceed.
    let id = create_user(&app, "fast@example.edu").await;
    let v = crate::filter_users(&app, "userName eq \"fast@example.edu\"").await;
    assert_eq!(v["Resources"][0]["id"], id.as_str(), "{v}");

    // Uploads fill the tenant's queue: the next request is 429 at once.
    let held2 = Held::open(
        &app,
        &app.token,
        "/scim/v2/Users",
        &user_body("slow2@example.edu"),
    )
    .await;
    let held3 = Held::open(
        &app,
        &app.token,
        "/scim/v2/Users",
        &user_body("slow3@example.edu"),
    )
    .await;
    until_admitted(&app.limiter, &tenant, QUEUE).await;
    let r = app.req(Method::GET, "/Users").send().await.expect("send");
    assert_eq!(r.status().as_u16(), 429);

    for h in [held, held2, held3] {
        assert_eq!(h.finish().await.0, 201);
    }
    assert_eq!(app.limiter.admitted(&tenant), 0);
    let v = crate::filter_users(&app, "userName sw \"slow\"").await;
    assert_eq!(v["totalResults"], 3, "{v}");
}

/// A tenant whose writes are stalled — behind another tenant's long write on
/// SQLite (one writer), behind a row lock on PostgreSQL — still has its
/// lookups answered: its writes fill its write share and queue, its reads
/// run in their own lane.
async fn stalled_writes(backend: Backend) {
    use diesel::Connection;
    use diesel::connection::SimpleConnection;
    let app = common::spawn_app_with(
        backend,
        Options {
            tune: |s| {
                s.request_deadline_ms = 600_000;
                s.pg_lock_timeout_ms = 600_000;
            },
            ..Default::default()
        },
    )
    .await;
    assert_eq!(app.limiter.write_share(), 1);
    let tenant = app.default_tenant_id();
    let id = create_user(&app, "stalled@example.edu").await;

    // The stall: a long write holding SQLite's writer until released, or
    // another session holding the user's row.
    let (release, stalled) = std::sync::mpsc::channel::<()>();
    let mut pg_lock = None;
    let long_write = match backend {
        Backend::Sqlite => {
            let db = app.db.clone();
            let (started, running) = std::sync::mpsc::channel::<()>();
            let t = std::thread::spawn(move || {
                db.write_long(|_| {
                    let _ = started.send(());
                    let _ = stalled.recv();
                    Ok::<_, custodian::store::StoreError>(())
                })
            });
            running.recv().expect("the long write runs");
            Some(t)
        }
        Backend::Postgres => {
            let mut other = diesel::PgConnection::establish(&app.db_url).expect("connect");
            other
                .batch_execute(&format!(
                    "BEGIN; SELECT 1 FROM users WHERE id = '{id}' FOR UPDATE"
                ))
                .expect("lock the row");
            pg_lock = Some(other);
            None
        }
    };

    // Two PATCHes: one runs (stalled), one waits in the write lane.
    let mut patches = vec![];
    for name in ["One", "Two"] {
        let req = app
            .req(Method::PATCH, &format!("/Users/{id}"))
            .json(&patch_body(json!([
                {"op": "replace", "path": "displayName", "value": name}
            ])));
        patches.push(tokio::spawn(async move {
            req.send().await.expect("send").status().as_u16()
        }));
        if name == "One" {
            until_counts(&app.limiter, &tenant, Kind::Write, (1, 0)).await;
        }
    }
    until_counts(&app.limiter, &tenant, Kind::Write, (1, 1)).await;

    // Lookups, by filter and by id, are answered meanwhile.
    for _ in 0..5 {
        let v = crate::filter_users(&app, "userName eq \"stalled@example.edu\"").await;
        assert_eq!(v["Resources"][0]["id"], id.as_str(), "{v}");
        let r = app
            .req(Method::GET, &format!("/Users/{id}"))
            .send()
            .await
            .expect("send");
        assert_eq!(r.status().as_u16(), 200);
    }
    assert_eq!(app.limiter.counts(&tenant, Kind::Write), (1, 1));

    let _ = release.send(());
    if let Some(t) = long_write {
        t.join().expect("join").expect("the long write commits");
    }
    if let Some(mut other) = pg_lock {
        other.batch_execute("ROLLBACK").expect("release");
    }
    for p in patches {
        assert_eq!(p.await.expect("join"), 200);
    }
}

/// A list over large documents stops at `max_list_bytes` of stored
/// documents: fewer resources than asked, `totalResults` unchanged, and an
/// IdP's paging loop (index and cursor) retrieves every one exactly once.
async fn paged_by_bytes(backend: Backend) {
    let app = common::spawn_app_with(
        backend,
        Options {
            tune: |s| s.max_list_bytes = 250_000,
            ..Default::default()
        },
    )
    .await;
    let blob = "x".repeat(100_000);
    let mut ids = vec![];
    for i in 0..7 {
        let mut u = user_body(&format!("paged.{i}@example.edu"));
        u["schemas"] = json!(["urn:ietf:params:scim:schemas:core:2.0:User", EXT]);
        u["emails"] = json!([{"value": "team@example.edu", "type": "work"}]);
        u[EXT] = json!({"blob": blob});
        let (s, v) = body(
            app.req(Method::POST, "/Users")
                .json(&u)
                .send()
                .await
                .expect("send"),
        )
        .await;
        assert_eq!(s, 201, "{v}");
        ids.push(v["id"].as_str().expect("id").to_string());
    }
    ids.sort();
    let filter = "emails.value eq \"team@example.edu\"";

    // Index paging, as Entra and Okta page: startIndex += itemsPerPage.
    let mut found = vec![];
    let mut start = 1;
    let mut pages = 0;
    loop {
        let r = app
            .req(Method::GET, "/Users")
            .query(&[
                ("filter", filter),
                ("count", "100"),
                ("startIndex", &start.to_string()),
            ])
            .send()
            .await
            .expect("send");
        let (s, v) = body(r).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["totalResults"], 7, "{}", v["totalResults"]);
        let n = v["itemsPerPage"].as_u64().expect("itemsPerPage") as usize;
        let res = v["Resources"].as_array().expect("resources");
        assert_eq!(res.len(), n);
        assert!(
            (1..=2).contains(&n),
            "250,000 bytes hold two 100 KB users: {n}"
        );
        found.extend(
            res.iter()
                .map(|r| r["id"].as_str().unwrap_or_default().to_string()),
        );
        pages += 1;
        start += n;
        if start > 7 {
            break;
        }
    }
    assert_eq!(pages, 4);
    found.sort();
    assert_eq!(found, ids);

    // Cursor paging: nextCursor follows the last resource answered.
    let mut found = vec![];
    let mut cursor = String::new();
    loop {
        let r = app
            .req(Method::GET, "/Users")
            .query(&[
                ("filter", filter),
                ("count", "100"),
                ("cursor", cursor.as_str()),
            ])
            .send()
            .await
            .expect("send");
        let (s, v) = body(r).await;
        assert_eq!(s, 200, "{v}");
        let res = v["Resources"].as_array().expect("resources");
        assert!(res.len() <= 2, "{}", res.len());
        found.extend(
            res.iter()
                .map(|r| r["id"].as_str().unwrap_or_default().to_string()),
        );
        match v["nextCursor"].as_str() {
            Some(next) => cursor = next.to_string(),
            None => break,
        }
    }
    found.sort();
    assert_eq!(found, ids);
}

/// A write that meets a locked row gives up at `pg_lock_timeout_ms`: 503
/// with an integer Retry-After, and nothing of it is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_lock_timeout_is_a_503_and_writes_nothing() {
    use diesel::Connection;
    use diesel::connection::SimpleConnection;
    if common::pg_url().is_none() {
        eprintln!("CUSTODIAN_TEST_PG_URL not set: PostgreSQL tier not run");
        return;
    }
    let app = common::spawn_app_with(
        Backend::Postgres,
        Options {
            tune: |s| s.pg_lock_timeout_ms = 200,
            ..Default::default()
        },
    )
    .await;
    let id = create_user(&app, "locked@example.edu").await;
    let (_, before) = body(
        app.req(Method::GET, &format!("/Users/{id}"))
            .send()
            .await
            .expect("send"),
    )
    .await;

    // Another session holds the row.
    let mut other = diesel::PgConnection::establish(&app.db_url).expect("connect");
    other
        .batch_execute(&format!(
            "BEGIN; SELECT 1 FROM users WHERE id = '{id}' FOR UPDATE"
        ))
        .expect("lock the row");

    let r = app
        .req(Method::PATCH, &format!("/Users/{id}"))
        .json(&patch_body(json!([
            {"op": "replace", "path": "displayName", "value": "Changed"},
            {"op": "replace", "path": "title", "value": "Changed"}
        ])))
        .send()
        .await
        .expect("send");
    let retry = r
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let (status, v) = body(r).await;
    assert_eq!(status, 503, "{v}");
    assert!(
        retry.as_deref().is_some_and(|v| v.parse::<u32>().is_ok()),
        "{retry:?}"
    );
    assert!(
        v["detail"]
            .as_str()
            .is_some_and(|d| d.contains("pg_lock_timeout_ms") && d.contains("nothing was written")),
        "{v}"
    );

    other.batch_execute("ROLLBACK").expect("release");
    let (s, after) = body(
        app.req(Method::GET, &format!("/Users/{id}"))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(after, before, "nothing of the timed-out PATCH is stored");
    // The same PATCH, unhindered, succeeds.
    let r = app
        .req(Method::PATCH, &format!("/Users/{id}"))
        .json(&patch_body(json!([
            {"op": "replace", "path": "displayName", "value": "Changed"}
        ])))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 200);
}

const EXT: &str = "urn:ietf:params:scim:schemas:extension:acme:2.0:User";

/// Lookups of users whose documents carry a large unknown extension are
/// answered in full (rendered off the HTTP worker), by a unique identifier
/// and by a shared email; a small document's lookup likewise.
async fn large_lookups(backend: Backend) {
    let app = common::spawn_app(backend).await;
    let blob = "x".repeat(200_000);
    let mut ids = vec![];
    for i in 0..3 {
        let mut u = user_body(&format!("big.{i}@example.edu"));
        u["schemas"] = json!(["urn:ietf:params:scim:schemas:core:2.0:User", EXT]);
        u["emails"] = json!([{"value": "shared@example.edu", "type": "work"}]);
        u[EXT] = json!({"blob": blob});
        let (s, v) = body(
            app.req(Method::POST, "/Users")
                .json(&u)
                .send()
                .await
                .expect("send"),
        )
        .await;
        assert_eq!(s, 201, "{v}");
        ids.push(v["id"].as_str().expect("id").to_string());
    }
    let small = create_user(&app, "small@example.edu").await;

    let v = crate::filter_users(&app, "userName eq \"big.1@example.edu\"").await;
    assert_eq!(v["totalResults"], 1, "{}", v["totalResults"]);
    assert_eq!(v["Resources"][0]["id"], ids[1].as_str());
    assert_eq!(
        v["Resources"][0][EXT]["blob"].as_str().map(str::len),
        Some(200_000)
    );

    let v = crate::filter_users(&app, "emails.value eq \"shared@example.edu\"").await;
    assert_eq!(v["totalResults"], 3);
    let mut found: Vec<String> = v["Resources"]
        .as_array()
        .expect("resources")
        .iter()
        .map(|r| {
            assert_eq!(r[EXT]["blob"].as_str().map(str::len), Some(200_000));
            r["id"].as_str().unwrap_or_default().to_string()
        })
        .collect();
    found.sort();
    ids.sort();
    assert_eq!(found, ids);

    // With a projection, the large document is still read and projected.
    let r = app
        .client
        .get(app.url("/Users"))
        .bearer_auth(&app.token)
        .query(&[
            (
                "filter",
                "externalId eq \"none\" or userName eq \"big.2@example.edu\"",
            ),
            ("attributes", "userName"),
        ])
        .send()
        .await
        .expect("send");
    let (s, v) = body(r).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["Resources"][0]["userName"], "big.2@example.edu");
    assert!(
        v["Resources"][0].get(EXT).is_none(),
        "{}",
        v["Resources"][0]
    );

    let v = crate::filter_users(&app, "userName eq \"small@example.edu\"").await;
    assert_eq!(v["Resources"][0]["id"], small.as_str());
}

/// A request's write past `pg_statement_timeout_ms` is cancelled (a
/// `Deadline`, rolled back), and so is a `write_alone` (a large group write:
/// alone, but a request); a `write_long` (disposals, imports) is not subject to
/// it while `long_write_timeout_ms` is 0, and is when it is set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_long_writes_have_their_own_limit() {
    use custodian::store::db::Deadlines;
    use custodian::store::{Db, StoreError};
    use diesel::connection::SimpleConnection;
    let Some(app) = common::postgres_app().await else {
        return;
    };
    let url = app.db_url.clone();
    tokio::task::spawn_blocking(move || {
        let limits = Deadlines {
            pg_statement_timeout_ms: 50,
            ..Deadlines::default()
        };
        let db = Db::open(&url, 2, false)
            .expect("open")
            .with_deadlines(limits);
        // The sleep is 20 times the timeout: cancelled whatever the load.
        let slow = |c: &mut custodian::store::AnyConnection| {
            c.batch_execute(
                "CREATE TABLE IF NOT EXISTS fairness_probe (n int); \
                 INSERT INTO fairness_probe VALUES (1); SELECT pg_sleep(1)",
            )
            .map_err(StoreError::from)
        };
        let r = db.write(slow);
        assert!(matches!(r, Err(StoreError::Deadline(_))), "{r:?}");
        let r = db.read(|c| {
            c.batch_execute("SELECT pg_sleep(1)")
                .map_err(StoreError::from)
        });
        assert!(
            matches!(r, Err(StoreError::Deadline(_))),
            "reads too: {r:?}"
        );
        let r = db.write_alone(slow);
        assert!(
            matches!(r, Err(StoreError::Deadline(_))),
            "a request written alone: {r:?}"
        );
        db.write_long(slow).expect("no limit for a long write");
        let limited = db.clone().with_deadlines(Deadlines {
            long_write_timeout_ms: 50,
            ..limits
        });
        let r = limited.write_long(slow);
        assert!(matches!(r, Err(StoreError::Deadline(_))), "{r:?}");
        // Exactly one row: the cancelled writes rolled back.
        #[derive(diesel::QueryableByName)]
        struct N {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let n = db
            .read(|c| {
                use diesel::RunQueryDsl;
                diesel::sql_query("SELECT COUNT(*) AS n FROM fairness_probe")
                    .get_result::<N>(c)
                    .map_err(StoreError::from)
            })
            .expect("count");
        assert_eq!(n.n, 1);
    })
    .await
    .expect("blocking");
}

/// A token not yet verified is verified (its database read, argon2) in a
/// slot of the budget, shared by that token id's verifications: with the
/// SCIM budget full, a new tenant's first request waits for a slot before
/// anything is read, and is answered once one is free.
async fn uncached_in_share(backend: Backend) {
    let app = common::spawn_app_with(
        backend,
        Options {
            tune: |s| s.request_deadline_ms = 600_000,
            ..Default::default()
        },
    )
    .await;
    let token = app.new_tenant_token().await;
    let id = custodian::auth::token::split(&token)
        .expect("token shape")
        .0;
    let verifying = format!("token:{id}");
    // Two other tenants hold the SCIM budget's two slots.
    let x = app.limiter.acquire("x", Kind::Read).await.expect("slot");
    let y = app.limiter.acquire("y", Kind::Read).await.expect("slot");
    let req = app.client.get(app.url("/Users")).bearer_auth(&token).send();
    let pending = tokio::spawn(req);
    until_counts(&app.limiter, &verifying, Kind::Read, (0, 1)).await;
    drop((x, y));
    let r = pending.await.expect("join").expect("send");
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(app.limiter.counts(&verifying, Kind::Read), (0, 0));
}

/// A tenant over `max_in_flight_per_tenant` gets its 429 only after
/// `overload_delay_ms` (here longer than the test): the refused request is
/// held without a slot or an admission, while another tenant is answered.
async fn held_refusals(backend: Backend) {
    let app = common::spawn_app_with(
        backend,
        Options {
            max_in_flight_per_tenant: 2,
            tune: |s| s.overload_delay_ms = 600_000,
            ..Default::default()
        },
    )
    .await;
    let a = app.token_for("tenant-a", Scope::Scim);
    let b = app.token_for("tenant-b", Scope::Scim);
    // Both tokens verified and cached first (the refusal path is the cached one).
    for t in [&a, &b] {
        let r = app
            .client
            .get(app.url("/Users"))
            .bearer_auth(t)
            .send()
            .await
            .expect("send");
        assert_eq!(r.status().as_u16(), 200);
    }
    let a_id = tenant_id(&app, "tenant-a");
    let full: Vec<_> = (0..2)
        .map(|_| app.limiter.admit(&a_id).expect("A admitted"))
        .collect();
    assert_eq!(app.limiter.held_refusals(), 0);

    let (client, url, token) = (app.client.clone(), app.url("/Users"), a.clone());
    let refused = tokio::spawn(async move {
        client
            .get(url)
            .bearer_auth(&token)
            .send()
            .await
            .map(|r| r.status().as_u16())
    });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while app.limiter.held_refusals() == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the refusal was never held"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        app.limiter.admitted(&a_id),
        2,
        "a held refusal is not admitted"
    );

    // B is answered while A's refusal is held.
    for _ in 0..3 {
        let r = app
            .client
            .get(app.url("/Users"))
            .bearer_auth(&b)
            .send()
            .await
            .expect("send");
        assert_eq!(r.status().as_u16(), 200);
    }
    assert!(
        !refused.is_finished(),
        "A's 429 waits for overload_delay_ms"
    );
    assert_eq!(app.limiter.held_refusals(), 1);
    refused.abort();
    drop(full);

    // A token not yet verified is refused the same way when its token id's
    // verifications fill their queue (random secrets on many connections).
    let fresh = app.token_for("tenant-c", Scope::Scim);
    let id = custodian::auth::token::split(&fresh).expect("shape").0;
    let verifying: Vec<_> = (0..2)
        .map(|_| app.limiter.admit(&format!("token:{id}")).expect("admitted"))
        .collect();
    let held_before = app.limiter.held_refusals();
    let (client, url) = (app.client.clone(), app.url("/Users"));
    let guessed = format!("cust_{id}_{}", "0".repeat(43));
    let refused = tokio::spawn(async move {
        client
            .get(url)
            .bearer_auth(&guessed)
            .send()
            .await
            .map(|r| r.status().as_u16())
    });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while app.limiter.held_refusals() == held_before {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the uncached token's refusal was never held"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!refused.is_finished());
    refused.abort();
    drop(verifying);

    // A token id locked by failed guesses: its further guesses' 429s are
    // held too, not answered at once.
    let target = app.token_for("tenant-d", Scope::Scim);
    let id = custodian::auth::token::split(&target).expect("shape").0;
    let guess = |n: usize| format!("cust_{id}_{n:0>43}");
    let mut n = 0;
    loop {
        let held_before = app.limiter.held_refusals();
        let (client, url, token) = (app.client.clone(), app.url("/Users"), guess(n));
        let attempt = tokio::spawn(async move {
            client
                .get(url)
                .bearer_auth(&token)
                .send()
                .await
                .map(|r| r.status().as_u16())
        });
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if attempt.is_finished() || app.limiter.held_refusals() > held_before {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "guess {n} hung");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        if app.limiter.held_refusals() > held_before {
            assert!(!attempt.is_finished(), "the locked guess's 429 is held");
            attempt.abort();
            break;
        }
        let status = attempt.await.expect("join").expect("send");
        assert_eq!(status, 401, "guess {n} before the lock");
        n += 1;
        assert!(
            n <= 10,
            "locked after auth_max_failures_per_token (10) guesses"
        );
    }
    assert_eq!(n, 10, "the guess after the tenth failure is the held one");
}

/// A body past the inline size is parsed off the HTTP worker in one of its
/// tenant's CPU slots: with all of tenant A's slots taken, A's large
/// SearchRequest waits in A's queue while A's small one and tenant B's large
/// one are answered; once A's slots are free, A's is answered too.
async fn large_parses(backend: Backend) {
    let app = common::spawn_app_with(
        backend,
        Options {
            tune: |s| s.request_deadline_ms = 600_000,
            ..Default::default()
        },
    )
    .await;
    let a = app.token_for("tenant-a", Scope::Scim);
    let b = app.token_for("tenant-b", Scope::Scim);
    let a_id = tenant_id(&app, "tenant-a");
    for (token, name) in [(&a, "a.seed@example.edu"), (&b, "b.seed@example.edu")] {
        let r = app
            .client
            .post(app.url("/Users"))
            .bearer_auth(token)
            .json(&user_body(name))
            .send()
            .await
            .expect("send");
        assert_eq!(r.status().as_u16(), 201);
    }
    // ~40 KB: past the 16 KiB parsed inline, within the 256-entry cap.
    let padding: Vec<String> = (0..200).map(|i| format!("{i:0>190}")).collect();
    let large = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
        "filter": "userName sw \"a.seed\" or userName sw \"b.seed\"",
        "attributes": ["userName"], "excludedAttributes": padding});
    let small = json!({"filter": "userName sw \"a.seed\"", "attributes": ["userName"]});
    let search = |token: &str, body: &Value| {
        app.client
            .post(app.url("/Users/.search"))
            .bearer_auth(token)
            .json(body)
            .send()
    };

    let mut held = Vec::new();
    for _ in 0..app.cpu.share() {
        held.push(
            app.cpu
                .acquire(&a_id, Kind::Read)
                .await
                .expect("A's CPU slot"),
        );
    }
    let waiting = {
        let (client, url) = (app.client.clone(), app.url("/Users/.search"));
        let (token, body) = (a.clone(), large.clone());
        tokio::spawn(async move { client.post(url).bearer_auth(token).json(&body).send().await })
    };
    until_counts(&app.cpu, &a_id, Kind::Read, (held.len(), 1)).await;

    for (token, body) in [(&a, &small), (&b, &large)] {
        let r = search(token, body).await.expect("send");
        assert_eq!(r.status().as_u16(), 200);
        let v: Value = r.json().await.expect("json");
        assert_eq!(v["totalResults"], 1, "each tenant sees its own user: {v}");
    }
    assert!(!waiting.is_finished(), "A's large body waits for A's slot");

    drop(held);
    let r = waiting.await.expect("join").expect("send");
    assert_eq!(r.status().as_u16(), 200);
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["Resources"][0]["userName"], "a.seed@example.edu", "{v}");
}

//! Fair shares between tenants, request deadlines, and point lookups over
//! large documents.
//!
//! A tenant's requests are held deterministically by sending their headers
//! and all but the last byte of their body: each holds its slot (taken when
//! it is authenticated) until the test sends the rest. The limiter's counts
//! say when they run or wait; nothing is timed.

use crate::common::{self, Backend, Options, TestApp};
use crate::{body, create_user, patch_body, user_body};
use custodian::auth::Scope;
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

crate::both_backends!(a_flooding_tenant_never_stalls_another, super::flood);
crate::both_backends!(point_lookups_of_large_documents, super::large_lookups);

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

/// Waits until the limiter shows `tenant` with (running, waiting).
async fn until_counts(
    limiter: &custodian::http::limiter::Limiter,
    tenant: &str,
    want: (usize, usize),
) {
    for _ in 0..6000 {
        if limiter.counts(tenant) == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!(
        "tenant never reached {want:?}: {:?}",
        limiter.counts(tenant)
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
/// budget, B's gate checks still succeed (their own budget). Once A's held
/// requests finish, every one of its queued requests is served (none 429).
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

    let mut held = Vec::new();
    held.push(Held::open(&app, &a, "/scim/v2/Users", &user_body("a.0@example.edu")).await);
    until_counts(&app.limiter, &a_id, (1, 0)).await;
    for i in 1..QUEUE {
        let u = user_body(&format!("a.{i}@example.edu"));
        held.push(Held::open(&app, &a, "/scim/v2/Users", &u).await);
    }
    until_counts(&app.limiter, &a_id, (1, QUEUE - 1)).await;

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
    assert_eq!(app.limiter.counts(&a_id), (1, QUEUE - 1));

    // C takes the rest of the SCIM budget: B's logins still go through.
    let c_held = Held::open(&app, &c, "/scim/v2/Users", &user_body("c.0@example.edu")).await;
    until_counts(&app.limiter, &c_id, (1, 0)).await;
    for _ in 0..10 {
        assert_eq!(gate_check(&app, &b_gate, "b.seed@example.edu").await, 200);
    }

    // Released, every one of A's queued requests is served, in turn.
    assert_eq!(c_held.finish().await.0, 201);
    // All at once: which of them holds A's slot depends on arrival order.
    let finished = futures_util::future::join_all(held.into_iter().map(Held::finish)).await;
    assert!(
        finished.iter().all(|(status, _)| *status == 201),
        "{finished:?}"
    );
    assert_eq!(app.limiter.counts(&a_id), (0, 0));
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
        (200, Some(QUEUE as u64)),
        "{v}"
    );
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

//! `/metrics` on the main port (admin token), its families and labels: route
//! templates, never raw paths or identifiers; the database gauges read at
//! scrape; webhook endpoints as opaque ids. And `X-Request-Id` on every answer.
//!
//! The recorder is process-wide and these tests share it, so they assert on
//! series only their own requests can make (a fresh tenant's endpoint id) or
//! on gauges a scrape sets from its own database just before rendering.

use crate::common::{self, Backend};
use crate::{body, create_user, patch_body};
use custodian::auth::Scope;
use reqwest::{Method, StatusCode};
use serde_json::json;
use std::time::Duration;

async fn scrape(app: &common::TestApp, token: Option<&str>) -> (StatusCode, String) {
    let mut r = app.client.get(format!("{}/metrics", app.addr));
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let r = r.send().await.expect("send");
    let status = r.status();
    (status, r.text().await.expect("text"))
}

/// The value of the series `line_prefix` (name and labels), if present.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

async fn scrape_needs_admin_and_labels_are_templates(b: Backend) {
    let app = common::spawn_app(b).await;
    let admin = app.token_for("default", Scope::Admin);
    let (s, _) = scrape(&app, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _) = scrape(&app, Some(&app.token)).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "a scim token may not scrape");

    let id = create_user(&app, "metrics-ann@example.com").await;
    let r = app
        .req(Method::GET, &format!("/Users/{id}"))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    let r = app
        .client
        .get(format!("{}/no-such-route-4711", app.addr))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 404);

    let (s, text) = scrape(&app, Some(&admin)).await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        text.contains(
            "custodian_http_requests_total{route=\"/scim/v2/Users/{id}\",method=\"GET\",status=\"200\"}"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "custodian_http_request_duration_seconds_bucket{route=\"/scim/v2/Users\",method=\"POST\",le=\"0.1\"}"
        ),
        "a histogram with buckets: {text}"
    );
    assert!(text.contains("route=\"unmatched\""), "{text}");
    for leaked in [id.as_str(), "no-such-route-4711", "metrics-ann"] {
        assert!(!text.contains(leaked), "{leaked} in a label");
    }
    assert!(text.contains("custodian_build_info{version=\""), "{text}");
    assert_eq!(
        value(&text, "custodian_db_pool_connections{state=\"max\"}"),
        Some(4.0),
        "the test pool's size"
    );
    assert!(value(&text, "custodian_db_pool_connections{state=\"idle\"}").is_some());
}
crate::both_backends!(
    metrics_admin_scrape,
    super::scrape_needs_admin_and_labels_are_templates
);

/// Open disposals come from the database, at scrape; DELETE and the gate
/// are counted.
async fn database_gauges_and_counters(b: Backend) {
    let app = common::spawn_app(b).await;
    let admin = app.token_for("default", Scope::Admin);
    let (_, text) = scrape(&app, Some(&admin)).await;
    assert_eq!(
        value(&text, "custodian_disposals_open{state=\"scheduled\"}"),
        Some(0.0)
    );
    // A suspension schedules a disposal (30 days' grace by default).
    let ids = [
        create_user(&app, "gauge-a@example.com").await,
        create_user(&app, "gauge-b@example.com").await,
    ];
    for id in &ids {
        let r = app
            .req(Method::PATCH, &format!("/Users/{id}"))
            .json(&patch_body(
                json!([{"op": "replace", "path": "active", "value": false}]),
            ))
            .send()
            .await
            .expect("send");
        assert_eq!(r.status(), 200);
    }
    let (_, text) = scrape(&app, Some(&admin)).await;
    assert_eq!(
        value(&text, "custodian_disposals_open{state=\"scheduled\"}"),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        value(&text, "custodian_disposals_open{state=\"held\"}"),
        Some(0.0)
    );
    // A DELETE disposes at once.
    let r = app
        .req(Method::DELETE, &format!("/Users/{}", ids[0]))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 204);
    let (_, text) = scrape(&app, Some(&admin)).await;
    assert_eq!(
        value(&text, "custodian_disposals_open{state=\"scheduled\"}"),
        Some(1.0)
    );
    assert!(
        value(
            &text,
            "custodian_disposals_total{cause=\"delete\",outcome=\"disposed\"}"
        )
        .is_some_and(|n| n >= 1.0),
        "{text}"
    );
    // The gate.
    let gate = app.token_for("default", Scope::Gate);
    let (s, v) = body(
        app.client
            .post(format!("{}/gate/v1/check", app.addr))
            .bearer_auth(&gate)
            .json(&json!({"userName": "gauge-b@example.com"}))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let series = format!(
        "custodian_gate_decisions_total{{decision=\"{}\",reason=\"{}\"}}",
        v["decision"].as_str().expect("decision"),
        v["reason"].as_str().expect("reason")
    );
    let (_, text) = scrape(&app, Some(&admin)).await;
    assert!(
        value(&text, &series).is_some_and(|n| n >= 1.0),
        "{series}: {text}"
    );
    assert!(!text.contains("gauge-b"), "no user name in a label");
}
crate::both_backends!(metrics_database_gauges, super::database_gauges_and_counters);

/// A webhook endpoint that refuses connections: its failed send is counted,
/// it is paused (a one-second schedule: at the second failure), and its backlog and pause show under
/// an opaque id — never the URL.
async fn webhook_endpoint_gauges(b: Backend) {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    }; // closed again: connections are refused
    let url = format!("http://127.0.0.1:{port}/hook");
    let app = common::spawn_app_with(
        b,
        common::Options {
            policy: Some(format!(
                "[default]\nwebhooks = [{{ url = \"{url}\", secret_env = \"HOOK\" }}]\n"
            )),
            ..Default::default()
        },
    )
    .await;
    // A suspension emits an event to deliver.
    let id = create_user(&app, "hooked@example.com").await;
    let r = app
        .req(Method::PATCH, &format!("/Users/{id}"))
        .json(&patch_body(
            json!([{"op": "replace", "path": "active", "value": false}]),
        ))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    let relay = std::sync::Arc::new(custodian::events::relay::Relay::with_options(
        Box::new(|name: &str| {
            (name == "HOOK")
                .then(|| "whsec_Y3VzdG9kaWFuLXRlc3QtaG9vay1zZWNyZXQtMzJieXQ=".to_string())
        }),
        custodian::events::relay::RelayOptions {
            timeout: Duration::from_secs(2),
            max_concurrent: 1,
            retry: custodian::events::relay::RetrySchedule {
                base: Duration::from_secs(1),
                max: Duration::from_secs(1),
                pause_after: Duration::from_secs(1),
            },
        },
    ));
    let tenant = app.default_tenant_id();
    // Failures until paused (the second, with this schedule), past each wait.
    let mut attempts = 0;
    for _ in 0..10 {
        let (db, deprov, r) = (app.db.clone(), app.deprov.clone(), relay.clone());
        tokio::task::spawn_blocking(move || r.run_once(&db, &deprov).expect("pass"))
            .await
            .expect("join");
        let cur = app
            .db
            .read(|c| custodian::store::webhook_cursors::find(c, &tenant, &url))
            .expect("cursor")
            .expect("a cursor after a failure");
        if cur.paused {
            break;
        }
        attempts += 1;
        app.clock.advance(chrono::Duration::seconds(2));
    }
    let attempts = attempts + 1;
    assert_eq!(attempts, 2, "paused at the second failure");
    let endpoint = custodian::metrics::endpoint_id(&tenant, &url);
    let last = custodian::events::relay::last_seq(&app.db, &tenant).expect("seq");
    assert!(last >= 2, "the suspension's event and webhook.paused");

    let admin = app.token_for("default", Scope::Admin);
    let (_, text) = scrape(&app, Some(&admin)).await;
    assert_eq!(
        value(
            &text,
            &format!(
                "custodian_webhook_deliveries_total{{endpoint=\"{endpoint}\",outcome=\"failed\"}}"
            )
        ),
        Some(f64::from(attempts)),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            &format!("custodian_webhook_endpoint_paused{{endpoint=\"{endpoint}\"}}")
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            &format!("custodian_webhook_pending_events{{endpoint=\"{endpoint}\"}}")
        ),
        Some(last as f64),
        "nothing was delivered: every event is pending"
    );
    assert!(
        !text.contains(&format!("127.0.0.1:{port}")),
        "no URL in a label"
    );
    assert!(!text.contains(&tenant), "no tenant id in a label");
}
crate::both_backends!(metrics_webhook_gauges, super::webhook_endpoint_gauges);

/// Every answer carries `X-Request-Id`: the caller's when it is safe, a new
/// UUID otherwise; errors too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_id_on_every_answer() {
    let app = common::spawn_app(Backend::Sqlite).await;
    let rid = |r: &reqwest::Response| {
        r.headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let r = app
        .req(Method::GET, "/Users")
        .header("X-Request-Id", "trace-42.a_b:c")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    assert_eq!(rid(&r).as_deref(), Some("trace-42.a_b:c"));
    // An error answered by the authentication extractor.
    let r = app
        .client
        .get(app.url("/Users"))
        .header("X-Request-Id", "caller-401")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 401);
    assert_eq!(rid(&r).as_deref(), Some("caller-401"));
    // Unsafe or oversized ids are replaced, not echoed.
    for bad in ["has spaces", "quote\"d", &"x".repeat(129)] {
        let r = app
            .req(Method::GET, "/Users")
            .header("X-Request-Id", bad)
            .send()
            .await
            .expect("send");
        let got = rid(&r).expect("an id");
        assert_ne!(got, bad);
        assert!(uuid::Uuid::parse_str(&got).is_ok(), "{got}");
    }
    // No id sent, and no route matched: one is made.
    let r = app
        .client
        .get(format!("{}/nowhere", app.addr))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 404);
    assert!(rid(&r).is_some_and(|v| uuid::Uuid::parse_str(&v).is_ok()));
    // The admin scope (a NUL in the path is refused by the scope's middleware,
    // as an error rather than a response).
    let r = app
        .client
        .get(format!("{}/admin/v1/content?owner=%00", app.addr))
        .header("X-Request-Id", "nul-path")
        .send()
        .await
        .expect("send");
    assert!(r.status().is_client_error());
    assert_eq!(rid(&r).as_deref(), Some("nul-path"));
}

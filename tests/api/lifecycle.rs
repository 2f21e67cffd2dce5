//! The real binary's lifecycle: SIGTERM under load (every answer complete,
//! every 201'd user still there after a restart, exit 0, JSON logs that say
//! so), `/readyz` reporting the background tasks, and the management
//! listener (`metrics_bind`) with tenant labels, stopped by SIGINT.

use custodian::auth::{Scope, create_token};
use custodian::store::Db;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// Starts `custodian serve` in `dir` (its `./data/custodian.db`), logging to
/// `log`, and waits (bounded) until the port answers.
fn start(dir: &std::path::Path, port: u16, env: &[(&str, &str)], log: &std::path::Path) -> Child {
    let log = std::fs::File::create(log).expect("log file");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_custodian"));
    cmd.args(["serve", "--bind", &format!("127.0.0.1:{port}")])
        .current_dir(dir)
        .env_remove("CUSTODIAN_CONFIG")
        .env_remove("CUSTODIAN_DATABASE_URL")
        .env_remove("CUSTODIAN_POLICY_FILE")
        .env("CUSTODIAN_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::from(log));
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd.spawn().expect("spawn custodian");
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{sig}"), &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(ok.success());
}

/// Waits (bounded) for the process to exit; its status.
fn exit_status(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            return s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("custodian did not exit within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[derive(Debug, PartialEq)]
enum Answer {
    /// Status, headers (lower-cased) and the whole body.
    Complete(u16, String, String),
    /// The connection closed before any byte of an answer.
    Closed,
    /// Some bytes, then the connection ended: a broken answer.
    Partial(String),
}

/// One request on a keep-alive connection; reads exactly one answer.
fn exchange(s: &mut TcpStream, method: &str, path: &str, headers: &str, body: &str) -> Answer {
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\n{headers}Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    if s.write_all(req.as_bytes()).is_err() {
        return Answer::Closed;
    }
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match s.read(&mut chunk) {
            Ok(0) | Err(_) if buf.is_empty() => return Answer::Closed,
            Ok(0) | Err(_) => return Answer::Partial(String::from_utf8_lossy(&buf).into()),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let status = head.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + len {
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return Answer::Partial(String::from_utf8_lossy(&buf).into()),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let body = String::from_utf8_lossy(&buf[head_end..head_end + len]).into_owned();
    Answer::Complete(status, head, body)
}

fn get(port: u16, path: &str, token: Option<&str>) -> (u16, String, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).ok();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    match exchange(&mut s, "GET", path, &auth, "") {
        Answer::Complete(st, h, b) => (st, h, b),
        other => panic!("GET {path}: {other:?}"),
    }
}

/// A database with a scim and an admin token for tenant `tenant`.
fn prepared(dir: &std::path::Path, tenant: &str, scopes: &[Scope]) -> Vec<String> {
    let url = format!("sqlite://{}", dir.join("data/custodian.db").display());
    let db = Db::open(&url, 2, true).expect("open");
    scopes
        .iter()
        .map(|s| {
            create_token(&db, tenant, *s, "t", None)
                .expect("token")
                .plaintext
        })
        .collect()
}

#[test]
fn sigterm_under_load_answers_completely_loses_nothing_and_exits_zero() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tokens = prepared(dir.path(), "life", &[Scope::Scim]);
    let scim = tokens[0].clone();
    let port = free_port();
    let log = dir.path().join("serve.log");
    let mut child = start(
        dir.path(),
        port,
        &[
            ("CUSTODIAN_LOG_FORMAT", "json"),
            ("CUSTODIAN_SHUTDOWN_TIMEOUT", "10"),
        ],
        &log,
    );

    // /readyz reports every background task once each has passed.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (st, _, body) = get(port, "/readyz", None);
        assert_eq!(st, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).expect("json");
        let passed: Vec<&str> = v["tasks"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|t| t["last_pass"].is_string() && t["stale"] == false)
            .filter_map(|t| t["task"].as_str())
            .collect();
        if ["scheduler", "relay", "checkpointer"]
            .iter()
            .all(|t| passed.contains(t))
        {
            assert_eq!(v["database"], "ok");
            break;
        }
        assert!(Instant::now() < deadline, "tasks never passed: {body}");
        std::thread::sleep(Duration::from_millis(100));
    }
    // A caller's request id reaches the access log.
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let a = exchange(
        &mut s,
        "GET",
        "/scim/v2/Users?count=1",
        &format!("Authorization: Bearer {scim}\r\nX-Request-Id: life-rid-1\r\n"),
        "",
    );
    assert!(
        matches!(&a, Answer::Complete(200, h, _) if h.contains("x-request-id: life-rid-1")),
        "{a:?}"
    );

    // Load: four keep-alive connections creating users until the server goes.
    let created = Arc::new(Mutex::new(Vec::<(String, String)>::new()));
    let broken = Arc::new(Mutex::new(Vec::<String>::new()));
    let count = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..4)
        .map(|w| {
            let (created, broken, count, scim) = (
                Arc::clone(&created),
                Arc::clone(&broken),
                Arc::clone(&count),
                scim.clone(),
            );
            std::thread::spawn(move || {
                let connect = || {
                    let s = TcpStream::connect(("127.0.0.1", port)).ok()?;
                    s.set_read_timeout(Some(Duration::from_secs(30))).ok();
                    Some(s)
                };
                let Some(mut s) = connect() else { return };
                let headers = format!(
                    "Authorization: Bearer {scim}\r\nContent-Type: application/scim+json\r\n"
                );
                for i in 0..5_000 {
                    let name = format!("load-{w}-{i}@example.com");
                    let body = serde_json::json!({
                        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                        "userName": name,
                    })
                    .to_string();
                    match exchange(&mut s, "POST", "/scim/v2/Users", &headers, &body) {
                        Answer::Complete(201, _, b) => {
                            let v: serde_json::Value = match serde_json::from_str(&b) {
                                Ok(v) => v,
                                Err(_) => {
                                    broken.lock().unwrap().push(b);
                                    continue;
                                }
                            };
                            let id = v["id"].as_str().unwrap_or_default().to_string();
                            created.lock().unwrap().push((name, id));
                            count.fetch_add(1, Ordering::SeqCst);
                        }
                        // 503 while shutting down is a complete answer too;
                        // anything else (a 500) is a broken one.
                        Answer::Complete(503, ..) => {}
                        Answer::Complete(status, _, b) => {
                            broken.lock().unwrap().push(format!("{status}: {b}"))
                        }
                        Answer::Partial(p) => broken.lock().unwrap().push(p),
                        // Not answered: the server is draining; a new
                        // connection is refused once it stopped accepting.
                        Answer::Closed => match connect() {
                            Some(n) => s = n,
                            None => return,
                        },
                    }
                }
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    while count.load(Ordering::SeqCst) < 40 {
        assert!(Instant::now() < deadline, "load never got going");
        std::thread::sleep(Duration::from_millis(10));
    }
    signal(&child, "TERM");
    let status = exit_status(&mut child, Duration::from_secs(60));
    assert!(status.success(), "exit status {status:?}");
    for w in workers {
        w.join().expect("load thread");
    }
    let broken = broken.lock().unwrap();
    assert!(broken.is_empty(), "incomplete answers: {broken:?}");
    let created = created.lock().unwrap().clone();
    assert!(created.len() >= 40);

    // Every JSON line; the startup line with the version and configuration,
    // the access line with the caller's request id and latency, the signal
    // and the end.
    let text = std::fs::read_to_string(&log).expect("log");
    let lines: Vec<serde_json::Value> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON: {l}")))
        .collect();
    let msg = |v: &serde_json::Value| v["fields"]["message"].as_str().unwrap_or("").to_string();
    let first = lines
        .iter()
        .find(|v| msg(v) == "custodian starting")
        .expect("startup line");
    assert_eq!(first["fields"]["version"], env!("CARGO_PKG_VERSION"));
    let config = first["fields"]["config"].as_str().unwrap_or("");
    assert!(config.contains("shutdown_timeout: 10"), "{config}");
    assert!(
        lines.iter().any(|v| msg(v) == "request finished"
            && v["span"]["request_id"] == "life-rid-1"
            && v["span"]["route"] == "/scim/v2/Users"
            && v["span"]["latency_ms"].is_number()),
        "no access line for life-rid-1"
    );
    assert!(lines.iter().any(|v| v["fields"]["signal"] == "SIGTERM"));
    assert_eq!(
        lines.last().map(msg).as_deref(),
        Some("custodian shut down"),
        "the last line"
    );

    // Restart: every user that got a 201 is there.
    let port = free_port();
    let mut child = start(dir.path(), port, &[], &dir.path().join("second.log"));
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).ok();
    let auth = format!("Authorization: Bearer {scim}\r\n");
    for (name, id) in &created {
        match exchange(&mut s, "GET", &format!("/scim/v2/Users/{id}"), &auth, "") {
            Answer::Complete(200, _, b) => assert!(b.contains(name.as_str()), "{b}"),
            other => panic!("user {name} ({id}) lost: {other:?}"),
        }
    }
    signal(&child, "TERM");
    assert!(exit_status(&mut child, Duration::from_secs(60)).success());
}

#[test]
fn metrics_bind_serves_without_a_token_with_tenant_labels_and_sigint_stops() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tokens = prepared(dir.path(), "acme-metrics", &[Scope::Gate]);
    let (port, mport) = (free_port(), free_port());
    let log = dir.path().join("serve.log");
    let mbind = format!("127.0.0.1:{mport}");
    let mut child = start(
        dir.path(),
        port,
        &[
            ("CUSTODIAN_METRICS_BIND", &mbind),
            ("CUSTODIAN_METRICS_TENANT_LABELS", "true"),
            // Kubernetes' service link for a Service named custodian: not ours.
            ("CUSTODIAN_PORT", "tcp://10.0.0.1:80"),
        ],
        &log,
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", mport)).is_err() {
        assert!(Instant::now() < deadline, "metrics listener did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let a = exchange(
        &mut s,
        "POST",
        "/gate/v1/check",
        &format!(
            "Authorization: Bearer {}\r\nContent-Type: application/json\r\n",
            tokens[0]
        ),
        r#"{"userName":"nobody@example.com"}"#,
    );
    assert!(matches!(a, Answer::Complete(200, ..)), "{a:?}");

    let (st, head, text) = get(mport, "/metrics", None);
    assert_eq!(st, 200, "{text}");
    assert!(head.contains("content-type: text/plain"), "{head}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("custodian_gate_decisions_total{")
                && l.contains("tenant=\"acme-metrics\"")),
        "{text}"
    );
    for task in ["scheduler", "relay", "checkpointer"] {
        assert!(
            text.contains(&format!(
                "custodian_background_last_run_timestamp_seconds{{task=\"{task}\"}}"
            )),
            "{task}: {text}"
        );
    }
    assert_eq!(
        get(mport, "/scim/v2/Users", None).0,
        404,
        "only /metrics there"
    );
    assert_eq!(
        get(port, "/metrics", None).0,
        401,
        "the main port wants a token"
    );

    signal(&child, "INT");
    let status = exit_status(&mut child, Duration::from_secs(60));
    assert!(status.success(), "exit status {status:?}");
    let text = std::fs::read_to_string(&log).expect("log");
    assert!(
        text.contains("SIGINT") && text.contains("custodian shut down"),
        "{text}"
    );
}

/// A receiver that holds each request until released: (url, a channel that
/// says a request arrived, the release channel, requests seen).
fn gated_receiver() -> (
    String,
    std::sync::mpsc::Receiver<()>,
    std::sync::mpsc::Sender<()>,
    Arc<AtomicUsize>,
) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    let (arrived_tx, arrived) = std::sync::mpsc::channel();
    let (release, released) = std::sync::mpsc::channel::<()>();
    let seen = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&seen);
    std::thread::spawn(move || {
        for stream in listener.incoming().take(100) {
            let Ok(mut stream) = stream else { continue };
            crate::common::request_body(&stream);
            counted.fetch_add(1, Ordering::SeqCst);
            let _ = arrived_tx.send(());
            // Bounded: a test that never releases fails on its own.
            if released.recv_timeout(Duration::from_secs(60)).is_err() {
                return;
            }
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
        }
    });
    (url, arrived, release, seen)
}

/// Shutdown's relay side: once stopped, a worker finishes the send in
/// progress, records it, sends nothing more and gives its lease up; a new
/// pass starts no worker.
async fn relay_stop_ends_delivery_between_sends(b: crate::common::Backend) {
    let (url, arrived, release, seen) = gated_receiver();
    let app = crate::common::spawn_app_with(
        b,
        crate::common::Options {
            policy: Some(format!(
                "[default]\nwebhooks = [{{ url = \"{url}\", secret_env = \"HOOK\" }}]\n"
            )),
            ..Default::default()
        },
    )
    .await;
    let tenant = app.default_tenant_id();
    for _ in 0..5 {
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
    let relay = Arc::new(custodian::events::relay::Relay::with_options(
        Box::new(|name: &str| {
            (name == "HOOK")
                .then(|| "whsec_Y3VzdG9kaWFuLXRlc3QtaG9vay1zZWNyZXQtMzJieXQ=".to_string())
        }),
        custodian::events::relay::RelayOptions::default(),
    ));
    assert_eq!(relay.spawn_pass(&app.db, &app.deprov).expect("pass"), 1);
    let arrived = tokio::task::spawn_blocking(move || {
        arrived
            .recv_timeout(Duration::from_secs(30))
            .expect("the first event is being sent");
        arrived
    })
    .await
    .expect("join");
    relay.stop();
    release.send(()).expect("release");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !relay.idle() {
        assert!(Instant::now() < deadline, "the worker did not end");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(seen.load(Ordering::SeqCst), 1, "nothing sent after stop");
    let cursor = app
        .db
        .read(|c| custodian::store::webhook_cursors::find(c, &tenant, &url))
        .expect("read")
        .expect("cursor");
    let first = custodian::events::relay::last_seq(&app.db, &tenant).expect("seq") - 4;
    assert_eq!(cursor.last_seq, first, "the send in progress was recorded");
    assert_eq!(cursor.lease_owner, None, "the lease was given up");
    assert_eq!(relay.spawn_pass(&app.db, &app.deprov).expect("pass"), 0);
    assert_eq!(
        relay.release_all(&app.db).expect("release"),
        0,
        "nothing left held"
    );

    // A worker still in its send at the shutdown timeout: its lease is
    // released for it, and the send it then finishes is not recorded (the
    // event goes again, from whichever replica takes over: at least once).
    let second = Arc::new(custodian::events::relay::Relay::with_options(
        Box::new(|name: &str| {
            (name == "HOOK")
                .then(|| "whsec_Y3VzdG9kaWFuLXRlc3QtaG9vay1zZWNyZXQtMzJieXQ=".to_string())
        }),
        custodian::events::relay::RelayOptions::default(),
    ));
    assert_eq!(second.spawn_pass(&app.db, &app.deprov).expect("pass"), 1);
    tokio::task::spawn_blocking(move || {
        arrived
            .recv_timeout(Duration::from_secs(30))
            .expect("the second event is being sent");
    })
    .await
    .expect("join");
    second.stop();
    assert_eq!(second.release_all(&app.db).expect("release"), 1);
    let cursor = |app: &crate::common::TestApp| {
        app.db
            .read(|c| custodian::store::webhook_cursors::find(c, &tenant, &url))
            .expect("read")
            .expect("cursor")
    };
    assert_eq!(cursor(&app).lease_owner, None);
    release.send(()).expect("release");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !second.idle() {
        assert!(Instant::now() < deadline, "the worker did not end");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(seen.load(Ordering::SeqCst), 2);
    assert_eq!(
        cursor(&app).last_seq,
        first,
        "not recorded without the lease"
    );
}
crate::both_backends!(relay_stop, super::relay_stop_ends_delivery_between_sends);

//! The gate's example login-callback clients (`examples/gate/`: Python, Node,
//! Rust) against a real server: each one's decision for an active person, a
//! suspended one, an unknown one (JIT on and off), a wrong token, a server that
//! is down and one that never answers (fail-closed, and fail-open on request).

use crate::common::{Backend, TestApp, spawn_app};
use reqwest::Method;
use serde_json::{Value, json};
use std::process::Command;

#[allow(dead_code)]
#[path = "../../examples/gate/rust/gate.rs"]
mod rust_client;

#[derive(Debug, Clone, Copy)]
enum Client {
    Python,
    Node,
    Rust,
}

/// One login as the callback sees it, and the client's options.
#[derive(Default)]
struct Case<'a> {
    email: Option<&'a str>,
    sso: Option<(&'a str, &'a str)>,
    no_jit: bool,
    fail_open: bool,
    timeout: Option<&'a str>,
}

fn example(path: &str) -> String {
    format!("{}/examples/gate/{path}", env!("CARGO_MANIFEST_DIR"))
}

/// The interpreter, or a failure saying what to install (`.ci/run` does).
fn interpreter(program: &str, min_major: u32) -> String {
    let out = Command::new(program)
        .arg("--version")
        .output()
        .unwrap_or_else(|e| {
            panic!("{program} is needed for the gate client examples ({e}); .ci/run installs it")
        });
    let v =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    let major: u32 = v
        .trim()
        .trim_start_matches("Python ")
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    assert!(
        major >= min_major,
        "{program} {v} is older than {min_major}"
    );
    program.to_string()
}

/// The client's decision as JSON: `{"action", "reason", "userId"}`.
fn decide(client: Client, url: &str, token: &str, case: &Case<'_>) -> Value {
    if let Client::Rust = client {
        let who = rust_client::Login {
            emails: case.email.into_iter().collect(),
            sso: case.sso,
            ..Default::default()
        };
        let mut opts = rust_client::Options {
            allow_jit_accounts: !case.no_jit,
            fail_open: case.fail_open,
            ..Default::default()
        };
        if let Some(t) = case.timeout {
            opts.timeout = std::time::Duration::from_secs_f64(t.parse().expect("seconds"));
        }
        let d = rust_client::check_login(url, token, &who, &opts);
        return json!({"action": d.action.as_str(), "reason": d.reason, "userId": d.user_id});
    }
    let (program, script) = match client {
        Client::Python => (interpreter("python3", 3), example("python/gate_client.py")),
        _ => (interpreter("node", 18), example("node/gate_client.mjs")),
    };
    let mut args = vec![script, "--url".to_string(), url.to_string()];
    if let Some(e) = case.email {
        args.extend(["--email".to_string(), e.to_string()]);
    }
    if let Some((i, s)) = case.sso {
        args.extend([
            "--issuer".to_string(),
            i.to_string(),
            "--subject".to_string(),
            s.to_string(),
        ]);
    }
    if case.no_jit {
        args.push("--no-jit".into());
    }
    if case.fail_open {
        args.push("--fail-open".into());
    }
    if let Some(t) = case.timeout {
        args.extend(["--timeout".to_string(), t.to_string()]);
    }
    let out = bounded(
        Command::new(program)
            .args(&args)
            .env("CUSTODIAN_GATE_TOKEN", token),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "{client:?}: {e}: {stdout} {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    // Exit status: 0 for login or create_account, 1 otherwise.
    let admitted = matches!(v["action"].as_str(), Some("login" | "create_account"));
    assert_eq!(out.status.success(), admitted, "{client:?}: {v}");
    v
}

/// Runs a client, killing it if it outlives its own timeout by far (a client
/// whose timeout is broken fails here instead of hanging the suite).
fn bounded(cmd: &mut Command) -> std::process::Output {
    use std::process::Stdio;
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the client");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while child.try_wait().expect("wait").is_none() {
        if std::time::Instant::now() > deadline {
            child.kill().ok();
            panic!("the client did not finish within 30 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

async fn gate(app: &TestApp, token: &str, b: Value) -> Value {
    let r = app
        .client
        .post(format!("{}/gate/v1/check", app.addr))
        .bearer_auth(token)
        .json(&b)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 200);
    r.json().await.expect("json")
}

async fn each_client_decides_as_the_gate_says(b: Backend) {
    let app = spawn_app(b).await;
    let token = app.token_for("default", custodian::auth::Scope::Gate);
    let alice = crate::create_user(&app, "alice@example.edu").await;
    let bob = crate::create_user(&app, "bob@example.edu").await;
    let r = app
        .req(Method::PATCH, &format!("/Users/{bob}"))
        .json(&crate::patch_body(
            json!([{"op": "replace", "path": "active", "value": false}]),
        ))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 200);
    // Down: a port nobody listens on. Silent: a listener that never accepts,
    // so the request is sent and no answer ever comes.
    let down = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        format!("http://{}", l.local_addr().expect("addr"))
    };
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let silent_url = format!("http://{}", silent.local_addr().expect("addr"));
    let issuer = "https://idp.example.edu";

    for client in [Client::Python, Client::Node, Client::Rust] {
        let subject = format!("sub-{client:?}");
        let d = |url: &str, token: &str, case: Case<'_>| decide(client, url, token, &case);
        // Active: log in as that person, and the SSO subject is registered.
        let v = d(
            &app.addr,
            &token,
            Case {
                email: Some("alice@example.edu"),
                sso: Some((issuer, &subject)),
                ..Default::default()
            },
        );
        assert_eq!(
            v,
            json!({"action": "login", "reason": "active", "userId": alice}),
            "{client:?}"
        );
        let by_sso = gate(
            &app,
            &token,
            json!({"sso": {"issuer": issuer, "subject": subject}}),
        )
        .await;
        assert_eq!(by_sso["userId"], alice.as_str(), "{client:?}: {by_sso}");
        // Suspended: refused with the gate's reason.
        let v = d(
            &app.addr,
            &token,
            Case {
                email: Some("bob@example.edu"),
                ..Default::default()
            },
        );
        assert_eq!(
            (v["action"].as_str(), v["reason"].as_str()),
            (Some("refuse"), Some("suspended")),
            "{client:?}: {v}"
        );
        // Unknown, under `gate.unknown = "allow_jit"`: JIT, unless the
        // platform does not provision just in time.
        let unknown = Case {
            email: Some("new.hire@example.edu"),
            ..Default::default()
        };
        let v = d(&app.addr, &token, unknown);
        assert_eq!(
            (v["action"].as_str(), v["reason"].as_str()),
            (Some("create_account"), Some("unknown")),
            "{client:?}: {v}"
        );
        let v = d(
            &app.addr,
            &token,
            Case {
                email: Some("new.hire@example.edu"),
                no_jit: true,
                ..Default::default()
            },
        );
        assert_eq!(v["action"], "refuse", "{client:?}: {v}");
        assert_eq!(v["reason"], "jit_disabled", "{client:?}: {v}");
        // No decision: a wrong token (401), a server down, one that never
        // answers. Fail-closed, unless asked to fail open.
        let alice_case = || Case {
            email: Some("alice@example.edu"),
            ..Default::default()
        };
        let wrong = app.token_for("default", custodian::auth::Scope::Scim);
        for (url, tok) in [(app.addr.as_str(), wrong.as_str()), (&down, &token)] {
            let v = d(url, tok, alice_case());
            assert_eq!(
                v,
                json!({"action": "refuse", "reason": "gate_unavailable", "userId": null}),
                "{client:?} {url}"
            );
        }
        let v = d(
            &silent_url,
            &token,
            Case {
                timeout: Some("0.5"),
                ..alice_case()
            },
        );
        assert_eq!(v["action"], "refuse", "{client:?} timed out: {v}");
        assert_eq!(v["reason"], "gate_unavailable", "{client:?}: {v}");
        let v = d(
            &down,
            &token,
            Case {
                fail_open: true,
                ..alice_case()
            },
        );
        assert_eq!(v["action"], "login_unchecked", "{client:?}: {v}");
    }
    drop(silent);
}
crate::both_backends!(gate_clients, super::each_client_decides_as_the_gate_says);

//! Helpers shared by the test targets that drive real `custodian` processes
//! over raw HTTP (tests/pg_faults.rs, tests/pgbouncer.rs, tests/replicas.rs):
//! a free port, a bounded poll, and a one-shot HTTP/1.1 request that reports
//! a dropped connection as status 0. Each includes it with `#[path]`.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

/// A port free on 127.0.0.1 now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("port")
        .local_addr()
        .expect("addr")
        .port()
}

/// Polls `f` until it returns `Some` (bounded by `limit`).
pub fn poll<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[derive(Debug, Clone)]
pub struct Reply {
    /// 0: the connection was dropped without an answer.
    pub status: u16,
    pub retry_after: Option<String>,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_default()
    }

    /// A 503 in the SCIM error schema with an integer `Retry-After`.
    pub fn is_retryable_503(&self) -> bool {
        self.status == 503
            && self
                .retry_after
                .as_deref()
                .is_some_and(|r| r.parse::<u32>().is_ok_and(|n| n > 0))
            && self.json()["status"] == "503"
    }
}

/// One request on a fresh connection (`Connection: close`), read to the end.
pub fn http(port: u16, method: &str, path: &str, token: &str, body: Option<&str>) -> Reply {
    let dropped = Reply {
        status: 0,
        retry_after: None,
        body: String::new(),
    };
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return dropped;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(120)));
    let body = body.unwrap_or("");
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Type: application/scim+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    if s.write_all(req.as_bytes()).is_err() {
        return dropped;
    }
    let mut out = Vec::new();
    if s.read_to_end(&mut out).is_err() || out.is_empty() {
        return dropped;
    }
    let out = String::from_utf8_lossy(&out).to_string();
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    let status = head.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    let retry_after = head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("retry-after")
            .then(|| v.trim().to_string())
    });
    Reply {
        status,
        retry_after,
        body: body.to_string(),
    }
}

/// `custodian token create --create-tenant` run by `cmd` (the binary with a
/// test's environment): the plaintext token, the last line of its output.
pub fn create_token(mut cmd: Command, tenant: &str, scope: &str) -> String {
    let out = cmd
        .args([
            "token",
            "create",
            "--tenant",
            tenant,
            "--create-tenant",
            "--scope",
            scope,
            "--name",
            scope,
        ])
        .output()
        .expect("run custodian token create");
    assert!(out.status.success(), "token create: {out:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .expect("token line")
        .trim()
        .to_string()
}

//! Kill the server (SIGKILL) while a large disposal runs: afterwards the disposal
//! is either fully applied or not at all, and a retry completes it.

use crate::common::sql::{Sql, execute_sql};
use custodian::auth::{Scope, create_token};
use custodian::store::Db;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const ITEMS: usize = 30_000;

fn start(dir: &std::path::Path, port: u16) -> Child {
    start_logged(dir, port, Stdio::null())
}

fn start_logged(dir: &std::path::Path, port: u16, stderr: Stdio) -> Child {
    let child = Command::new(env!("CARGO_BIN_EXE_custodian"))
        .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
        .current_dir(dir)
        .env_remove("CUSTODIAN_CONFIG")
        .env_remove("CUSTODIAN_DATABASE_URL")
        .env_remove("CUSTODIAN_POLICY_FILE")
        .env("CUSTODIAN_LOG", "info")
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("spawn custodian");
    // Readiness: poll until the port answers (bounded).
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

fn http(port: u16, method: &str, path: &str, token: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    write!(s, "{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n").expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read");
    let status = out.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

fn owned_by(port: u16, admin: &str, user: &str) -> i64 {
    let (s, body) = http(
        port,
        "GET",
        &format!("/admin/v1/content?owner={user}&count=0"),
        admin,
    );
    assert_eq!(s, 200, "{body}");
    serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["totalResults"].as_i64())
        .unwrap_or(-1)
}

#[test]
fn killed_mid_disposal_is_all_or_nothing_and_retry_completes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!(
        "sqlite://{}",
        dir.path().join("data/custodian.db").display()
    );
    let (scim, admin, heir, person) = {
        let db = Db::open(&url, 2, true).expect("open");
        let scim = create_token(&db, "crash", Scope::Scim, "idp", None)
            .expect("token")
            .plaintext;
        let admin = create_token(&db, "crash", Scope::Admin, "admin", None)
            .expect("token")
            .plaintext;
        let tenant = db
            .read(|c| custodian::store::tokens::find_tenant(c, "crash"))
            .expect("tenant")
            .expect("exists")
            .id;
        let now = custodian::store::time::now();
        let heir = uuid::Uuid::new_v4().to_string();
        let person = uuid::Uuid::new_v4().to_string();
        db.write(|c| {
            for (id, name, manager) in [(&heir, "heir", None), (&person, "victim", Some(&heir))] {
                let mut s = Sql::default();
                s.push("INSERT INTO users (id, tenant_id, state, user_name, user_name_key, external_id, display_name_key, given_name_key, family_name_key, active, manager_id, suspended_at, data, created_at, updated_at, version) VALUES (")
                    .bind_text(id.clone())
                    .push(", ")
                    .bind_text(tenant.clone())
                    .push(&format!(", 'active', '{name}@example.edu', '{name}@example.edu', NULL, NULL, NULL, NULL, TRUE, "));
                match manager {
                    Some(m) => s.bind_text(m.clone()),
                    None => s.push("NULL"),
                };
                s.push(&format!(", NULL, '{{\"userName\":\"{name}@example.edu\",\"active\":true}}', ")).bind_text(now.clone());
                s.push(", ").bind_text(now.clone()).push(", 1)");
                execute_sql(c, &s)?;
            }
            for chunk in (0..ITEMS).collect::<Vec<_>>().chunks(500) {
                let mut s = Sql::default();
                s.push("INSERT INTO content_items (tenant_id, kind, item_id, owner_id, parent_kind, parent_id, title, personal_root, created_at, updated_at) VALUES ");
                for (n, i) in chunk.iter().enumerate() {
                    if n > 0 {
                        s.push(", ");
                    }
                    s.push("(").bind_text(tenant.clone()).push(&format!(", 'recording', 'c{i}', ")).bind_text(person.clone());
                    s.push(", NULL, NULL, NULL, FALSE, ").bind_text(now.clone()).push(", ").bind_text(now.clone()).push(")");
                }
                execute_sql(c, &s)?;
            }
            Ok::<_, custodian::store::StoreError>(())
        })
        .expect("seed");
        (scim, admin, heir, person)
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("port")
        .local_addr()
        .expect("addr")
        .port();
    let mut server = start(dir.path(), port);
    // Send the DELETE and kill the server at once, without waiting for the answer.
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    write!(
        s,
        "DELETE /scim/v2/Users/{person} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {scim}\r\n\r\n"
    )
    .expect("write");
    s.flush().expect("flush");
    server.kill().expect("kill");
    server.wait().expect("wait");
    drop(s);
    let mut server = start(dir.path(), port);
    let (status, _) = http(port, "GET", &format!("/scim/v2/Users/{person}"), &scim);
    let (on_person, on_heir) = (
        owned_by(port, &admin, &person),
        owned_by(port, &admin, &heir),
    );
    match status {
        200 => assert_eq!(
            (on_person, on_heir),
            (ITEMS as i64, 0),
            "not applied: nothing moved"
        ),
        404 => assert_eq!(
            (on_person, on_heir),
            (0, ITEMS as i64),
            "applied: everything moved"
        ),
        other => panic!("unexpected status {other}"),
    }
    if status == 200 {
        let (s, _) = http(port, "DELETE", &format!("/scim/v2/Users/{person}"), &scim);
        assert_eq!(s, 204, "the retry completes");
        assert_eq!(
            (
                owned_by(port, &admin, &person),
                owned_by(port, &admin, &heir)
            ),
            (0, ITEMS as i64)
        );
    }
    let (_, body) = http(port, "GET", "/admin/v1/disposals?state=done", &admin);
    let done: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(
        done["Resources"].as_array().map(Vec::len),
        Some(1),
        "applied exactly once"
    );
    assert_eq!(done["Resources"][0]["counts"]["transferred"], ITEMS as i64);
    server.kill().ok();
    server.wait().ok();
}

fn cli(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_custodian"))
        .args(args)
        .current_dir(dir)
        .env_remove("CUSTODIAN_CONFIG")
        .output()
        .expect("run")
}

/// Polls `f` until it holds (bounded); panics with `what` otherwise.
fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn sighup_reloads_policy_and_keeps_the_old_one_when_invalid() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("custodian.toml"),
        "policy_file = \"policy.toml\"\n",
    )
    .expect("config");
    std::fs::write(
        dir.path().join("policy.toml"),
        "[default]\ngrace_period = \"1h\"\n",
    )
    .expect("policy");
    let log = dir.path().join("server.log");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("port")
        .local_addr()
        .expect("addr")
        .port();
    let mut server = start_logged(
        dir.path(),
        port,
        Stdio::from(std::fs::File::create(&log).expect("log")),
    );
    let out = cli(
        dir.path(),
        &[
            "token",
            "create",
            "--tenant",
            "t",
            "--create-tenant",
            "--scope",
            "admin",
            "--name",
            "a",
        ],
    );
    let admin = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .expect("token")
        .to_string();
    let grace = || {
        let (_, body) = http(port, "GET", "/admin/v1/policy", &admin);
        serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["grace_period_seconds"].as_i64())
            .unwrap_or(-1)
    };
    assert_eq!(grace(), 3600);
    let hup = || {
        let ok = Command::new("kill")
            .args(["-HUP", &server.id().to_string()])
            .status()
            .expect("kill")
            .success();
        assert!(ok);
    };
    std::fs::write(
        dir.path().join("policy.toml"),
        "[default]\ngrace_period = \"2h\"\n",
    )
    .expect("policy");
    hup();
    eventually("the new policy", || grace() == 7200);
    std::fs::write(
        dir.path().join("policy.toml"),
        "[default]\ngrace_period = \"soon\"\n",
    )
    .expect("policy");
    hup();
    eventually("the reload failure in the log", || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("policy reload failed")
    });
    assert_eq!(grace(), 7200, "an invalid reload keeps the old policy");
    let logged = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        logged.contains("policy.toml:2"),
        "the failure names file and line"
    );
    server.kill().ok();
    server.wait().ok();
}

#[test]
fn tombstone_cli_lists_and_lifts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("port")
        .local_addr()
        .expect("addr")
        .port();
    let mut server = start(dir.path(), port);
    let token = |scope: &str| {
        let out = cli(
            dir.path(),
            &[
                "token",
                "create",
                "--tenant",
                "t",
                "--create-tenant",
                "--scope",
                scope,
                "--name",
                scope,
            ],
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .expect("token")
            .to_string()
    };
    let scim = token("scim");
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let body = r#"{"userName":"Cli.Person@example.edu","externalId":"00uCLI"}"#;
    write!(s, "POST /scim/v2/Users HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {scim}\r\nContent-Type: application/scim+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read");
    let id = out
        .split("\"id\":\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("id")
        .to_string();
    assert_eq!(
        http(port, "DELETE", &format!("/scim/v2/Users/{id}"), &scim).0,
        204
    );
    let list = cli(dir.path(), &["tombstone", "list", "--tenant", "t"]);
    let listed = String::from_utf8_lossy(&list.stdout).to_string();
    assert!(
        listed.contains("externalId,userName") && !listed.to_lowercase().contains("cli.person"),
        "{listed}"
    );
    let lift = cli(
        dir.path(),
        &[
            "tombstone",
            "lift",
            "--tenant",
            "t",
            "--user-name",
            "  CLI.PERSON@example.edu ",
        ],
    );
    assert!(
        lift.status.success(),
        "{}",
        String::from_utf8_lossy(&lift.stderr)
    );
    let again = cli(
        dir.path(),
        &[
            "tombstone",
            "lift",
            "--tenant",
            "t",
            "--user-name",
            "cli.person@example.edu",
        ],
    );
    assert!(!again.status.success(), "nothing left to lift");
    let listed =
        String::from_utf8_lossy(&cli(dir.path(), &["tombstone", "list", "--tenant", "t"]).stdout)
            .to_string();
    assert!(
        listed.lines().nth(1).is_some_and(|l| !l.contains("  -  ")),
        "lifted time shown: {listed}"
    );
    server.kill().ok();
    server.wait().ok();
}

//! Kill the server (SIGKILL) while a large disposal runs: afterwards the disposal
//! is either fully applied or not at all, and a retry completes it.

use custodian::auth::{Scope, create_token};
use custodian::store::Db;
use custodian::store::db::{Sql, execute_sql};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const ITEMS: usize = 30_000;

fn start(dir: &std::path::Path, port: u16) -> Child {
    let child = Command::new(env!("CARGO_BIN_EXE_custodian"))
        .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
        .current_dir(dir)
        .env_remove("CUSTODIAN_CONFIG")
        .env_remove("CUSTODIAN_DATABASE_URL")
        .env("CUSTODIAN_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
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

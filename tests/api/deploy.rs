//! Deployment contracts: the CLI, public URLs behind a proxy, schema parity.

use crate::body;
use crate::common::{Backend, Options, pg_url, spawn_app, spawn_app_with};
use reqwest::Method;
use std::process::Command;

fn custodian(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_custodian"))
        .args(args)
        .current_dir(dir)
        .env_remove("CUSTODIAN_CONFIG")
        .env_remove("CUSTODIAN_DATABASE_URL")
        .output()
        .expect("run custodian")
}

#[test]
fn cli_token_lifecycle_and_no_accidental_database() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Run from the wrong directory: no database is created behind the user's back.
    let out = custodian(dir.path(), &["token", "list"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no database"));
    assert!(!dir.path().join("data").exists());
    // migrate creates ./data/custodian.db; token create prints the token last, alone.
    assert!(custodian(dir.path(), &["migrate"]).status.success());
    assert!(dir.path().join("data/custodian.db").exists());
    let out = custodian(
        dir.path(),
        &[
            "token",
            "create",
            "--tenant",
            "acme",
            "--create-tenant",
            "--scope",
            "scim",
            "--name",
            "okta",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let token = stdout.lines().last().expect("a line").to_string();
    assert!(
        token.starts_with("cust_") && token.len() == 5 + 16 + 1 + 43,
        "{token}"
    );
    let id = &token[5..21];
    // The secret is stored nowhere in clear: not in the database file.
    let db_bytes = std::fs::read(dir.path().join("data/custodian.db")).expect("read db");
    let secret = &token[22..];
    assert!(
        !db_bytes
            .windows(secret.len())
            .any(|w| w == secret.as_bytes())
    );
    let list = custodian(dir.path(), &["token", "list", "--tenant", "acme"]);
    let listed = String::from_utf8_lossy(&list.stdout);
    assert!(listed.contains(id) && listed.contains("okta") && !listed.contains(secret));
    assert!(
        custodian(dir.path(), &["token", "revoke", id])
            .status
            .success()
    );
    let again = custodian(dir.path(), &["token", "revoke", id]);
    assert!(
        !again.status.success(),
        "revoking twice reports that no active token has that id"
    );
    // Bad input to the CLI: unknown scope, unknown config key with its line.
    let bad = custodian(
        dir.path(),
        &[
            "token", "create", "--tenant", "a", "--scope", "root", "--name", "x",
        ],
    );
    assert!(!bad.status.success());
    std::fs::write(
        dir.path().join("custodian.toml"),
        "bind = \"127.0.0.1:9\"\nlog_levle = \"debug\"\n",
    )
    .expect("write");
    let bad = custodian(dir.path(), &["token", "list"]);
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        !bad.status.success() && err.contains("log_levle") && err.contains("line 2"),
        "{err}"
    );
}

async fn public_url_and_forwarded_headers(b: Backend) {
    let app = spawn_app_with(
        b,
        Options {
            public_url: Some("https://scim.example.edu".into()),
            ..Default::default()
        },
    )
    .await;
    let r = app
        .req(Method::POST, "/Users")
        .json(&crate::user_body("pub@example.edu"))
        .send()
        .await
        .expect("send");
    let loc = r
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let (_, v) = body(r).await;
    assert!(
        loc.starts_with("https://scim.example.edu/scim/v2/Users/"),
        "{loc}"
    );
    assert_eq!(v["meta"]["location"], loc.as_str());

    // Forwarded headers count only when trusted.
    let untrusted = spawn_app(b).await;
    let r = untrusted
        .req(Method::POST, "/Users")
        .header("X-Forwarded-Host", "evil.example")
        .json(&crate::user_body("a@example.edu"))
        .send()
        .await
        .expect("send");
    let loc = r
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(loc.starts_with(&untrusted.addr), "{loc}");
    let trusted = spawn_app_with(
        b,
        Options {
            trust_forwarded_headers: true,
            ..Default::default()
        },
    )
    .await;
    let r = trusted
        .req(Method::POST, "/Users")
        .header("X-Forwarded-Host", "scim.example.org")
        .header("X-Forwarded-Proto", "https")
        .json(&crate::user_body("b@example.edu"))
        .send()
        .await
        .expect("send");
    let loc = r
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(
        loc.starts_with("https://scim.example.org/scim/v2/Users/"),
        "{loc}"
    );
}
crate::both_backends!(public_urls, super::public_url_and_forwarded_headers);

#[derive(diesel::QueryableByName, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Col {
    #[diesel(sql_type = diesel::sql_types::Text)]
    table_name: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    column_name: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    data_type: String,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    nullable: bool,
}

/// The two migration sets must produce the same portable schema (one schema.rs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_and_sqlite_migrations_agree() {
    if pg_url().is_none() {
        eprintln!("CUSTODIAN_TEST_PG_URL not set: PostgreSQL tier not run");
        return;
    }
    use diesel::{Connection, RunQueryDsl};
    let lite = spawn_app(Backend::Sqlite).await;
    let pg = spawn_app(Backend::Postgres).await;
    let path = lite.db_url.trim_start_matches("sqlite://").to_string();
    let mut sc = diesel::SqliteConnection::establish(&path).expect("sqlite");
    let mut sqlite_cols: Vec<Col> = diesel::sql_query(
        "SELECT m.name AS table_name, p.name AS column_name, lower(p.type) AS data_type, p.\"notnull\" = 0 AND p.pk = 0 AS nullable \
         FROM sqlite_master m JOIN pragma_table_info(m.name) p \
         WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name <> '__diesel_schema_migrations'",
    )
    .load(&mut sc)
    .expect("sqlite columns");
    let mut pc = diesel::PgConnection::establish(&pg.db_url).expect("pg");
    let mut pg_cols: Vec<Col> = diesel::sql_query(
        "SELECT table_name::text, column_name::text, data_type::text, is_nullable = 'YES' AS nullable \
         FROM information_schema.columns WHERE table_schema = current_schema() AND table_name <> '__diesel_schema_migrations'",
    )
    .load(&mut pc)
    .expect("pg columns");
    sqlite_cols.sort();
    pg_cols.sort();
    assert!(!sqlite_cols.is_empty());
    assert_eq!(sqlite_cols, pg_cols);
}

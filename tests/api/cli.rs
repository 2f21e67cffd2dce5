//! The command line, run as the real binary: exit codes, `--json` output,
//! `token create --create-tenant`, `healthcheck`.

use crate::common::{Backend, TestApp, spawn_app};
use reqwest::Method;
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

fn custodian(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_custodian"));
    c.args(args)
        .current_dir(dir)
        .env_remove("CUSTODIAN_CONFIG")
        .env_remove("CUSTODIAN_DATABASE_URL")
        .env_remove("CUSTODIAN_BIND")
        .env_remove("CUSTODIAN_POLICY_FILE");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run custodian")
}

fn code(o: &Output) -> i32 {
    o.status.code().expect("exited, not killed")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn json_of(o: &Output) -> Value {
    serde_json::from_str(&stdout(o)).unwrap_or_else(|e| panic!("{e}: {}", stdout(o)))
}

#[test]
fn token_create_asks_for_create_tenant_and_lists_as_json() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    assert_eq!(code(&custodian(d, &["migrate"], &[])), 0);
    let create = |extra: &[&str]| {
        let mut args = vec![
            "token", "create", "--tenant", "acme", "--scope", "scim", "--name", "okta",
        ];
        args.extend_from_slice(extra);
        custodian(d, &args, &[])
    };
    // An unknown tenant: refused (4), the flag named, nothing created.
    let o = create(&[]);
    assert_eq!(code(&o), 4, "{}", stderr(&o));
    assert!(stdout(&o).is_empty(), "no token printed: {}", stdout(&o));
    let err = stderr(&o);
    assert!(
        err.contains("no tenant named 'acme'") && err.contains("--create-tenant"),
        "{err}"
    );
    assert_eq!(
        json_of(&custodian(d, &["token", "list", "--json"], &[])),
        Value::Array(vec![])
    );
    // --create-tenant creates it once; a second run uses it.
    let o = create(&["--create-tenant"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("created tenant 'acme'"),
        "{}",
        stderr(&o)
    );
    let first = stdout(&o).lines().last().expect("token").to_string();
    let o = create(&["--create-tenant"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(!stderr(&o).contains("created tenant"), "{}", stderr(&o));
    // Once it exists, the flag is not needed.
    assert_eq!(code(&create(&[])), 0);
    let o = custodian(
        d,
        &[
            "token", "create", "--tenant", "acme", "--scope", "auditor", "--name", "audit",
        ],
        &[],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));

    // token list --json: one array, stable field names, no secret.
    let revoked_id = &first[5..21];
    assert_eq!(
        code(&custodian(d, &["token", "revoke", revoked_id], &[])),
        0
    );
    let o = custodian(d, &["token", "list", "--tenant", "acme", "--json"], &[]);
    assert_eq!(code(&o), 0);
    assert!(!stdout(&o).contains(&first[22..]), "no secret in the list");
    let rows = json_of(&o).as_array().cloned().expect("an array");
    assert_eq!(rows.len(), 4);
    for r in &rows {
        let mut keys: Vec<&str> = r
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "actsAs",
                "createdAt",
                "id",
                "name",
                "revokedAt",
                "scope",
                "tenant"
            ]
        );
        assert_eq!(r["tenant"], "acme");
        assert_eq!(r["revokedAt"].is_string(), r["id"] == revoked_id, "{r}");
    }
    assert_eq!(
        rows.iter().filter(|r| r["scope"] == "auditor").count(),
        1,
        "{rows:?}"
    );

    // Exit codes: not found 4, usage 2 (clap's and the config file's).
    assert_eq!(
        code(&custodian(d, &["token", "revoke", revoked_id], &[])),
        4
    );
    let o = custodian(
        d,
        &["tombstone", "list", "--tenant", "nobody", "--json"],
        &[],
    );
    assert_eq!(code(&o), 4, "{}", stderr(&o));
    let o = custodian(
        d,
        &[
            "token", "create", "--tenant", "acme", "--scope", "root", "--name", "x",
        ],
        &[],
    );
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert_eq!(code(&custodian(d, &["token", "create"], &[])), 2);
    let help = stdout(&custodian(d, &["--help"], &[]));
    assert!(help.contains("Exit codes: 0 success"), "{help}");
    std::fs::write(d.join("custodian.toml"), "pool_sise = 3\n").expect("write");
    let o = custodian(d, &["token", "list"], &[]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("pool_sise"), "{}", stderr(&o));
}

#[test]
fn policy_check_json_and_its_exit_codes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    std::fs::write(
        d.join("good.toml"),
        "[default]\ngrace_period = \"2h\"\n\n[tenants.medschool]\ngrace_period = \"1h\"\n",
    )
    .expect("write");
    let o = custodian(d, &["policy", "check", "good.toml", "--json"], &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v = json_of(&o);
    assert_eq!(v["valid"], true);
    assert_eq!(v["source"], "good.toml");
    assert_eq!(v["default"]["grace_period_seconds"], 7200, "{v}");
    assert_eq!(v["tenants"]["medschool"]["grace_period_seconds"], 3600);
    assert!(v["default"]["digest"].is_string(), "{v}");
    assert_ne!(v["default"]["digest"], v["tenants"]["medschool"]["digest"]);
    let warnings = v["warnings"].as_array().cloned().unwrap_or_default();
    assert!(
        warnings
            .iter()
            .any(|w| w.as_str().is_some_and(|w| w.contains("user_data"))),
        "{v}"
    );

    std::fs::write(d.join("bad.toml"), "[default]\ngrace_period = \"soon\"\n").expect("write");
    let o = custodian(d, &["policy", "check", "bad.toml", "--json"], &[]);
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    let v = json_of(&o);
    assert_eq!(v["valid"], false);
    assert_eq!(v["error"]["file"], "bad.toml");
    assert_eq!(v["error"]["line"], 2, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("soon"),
        "{v}"
    );
    // Without --json: the same exit code, the position on stderr.
    let o = custodian(d, &["policy", "check", "bad.toml"], &[]);
    assert_eq!(code(&o), 3);
    assert!(stderr(&o).contains("bad.toml:2:"), "{}", stderr(&o));
    let o = custodian(d, &["policy", "check", "missing.toml", "--json"], &[]);
    assert_eq!(code(&o), 3);
    assert_eq!(json_of(&o)["valid"], false);
}

/// `tombstone list --json` against the database a live server writes.
async fn tombstone_list_json(b: Backend) {
    let app: TestApp = spawn_app(b).await;
    let user = crate::create_user(&app, "gone@example.edu").await;
    let r = app
        .req(Method::DELETE, &format!("/Users/{user}"))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 204);
    let dir = tempfile::tempdir().expect("tempdir");
    let env = [("CUSTODIAN_DATABASE_URL", app.db_url.as_str())];
    let o = custodian(
        dir.path(),
        &["tombstone", "list", "--tenant", "default", "--json"],
        &env,
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let rows = json_of(&o).as_array().cloned().expect("an array");
    assert_eq!(rows.len(), 1, "{rows:?}");
    let t = &rows[0];
    assert!(t["id"].is_string() && t["disposalId"].is_string(), "{t}");
    assert!(t["createdAt"].is_string(), "{t}");
    assert_eq!(t["liftedAt"], Value::Null);
    assert_eq!(
        t["identifierTypes"],
        serde_json::json!(["email", "userName"])
    );
    assert!(
        !stdout(&o).contains("gone@example.edu"),
        "no identifier values"
    );
}
crate::both_backends!(tombstone_json, super::tombstone_list_json);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthcheck_probes_a_running_server() {
    let app = spawn_app(Backend::Sqlite).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let url = format!("{}/healthz", app.addr);
    let o = custodian(d, &["healthcheck", "--url", &url], &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    // The default URL is /healthz on `bind`; a wildcard bind probes loopback.
    let port = app.addr.rsplit(':').next().expect("port");
    let bind = format!("0.0.0.0:{port}");
    let o = custodian(d, &["healthcheck"], &[("CUSTODIAN_BIND", bind.as_str())]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    // Not 200, or nobody listening: 1.
    let o = custodian(
        d,
        &["healthcheck", "--url", &format!("{}/nowhere", app.addr)],
        &[],
    );
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr");
    let o = custodian(
        d,
        &["healthcheck", "--url", &format!("http://{closed}/healthz")],
        &[],
    );
    assert_eq!(code(&o), 1, "{}", stderr(&o));
}

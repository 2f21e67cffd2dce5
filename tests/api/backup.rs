//! Backup, restore and the disposal journal, with the real binary on a real
//! SQLite file: a restored backup cannot bring a disposed person back.

use crate::{body, user_body};
use reqwest::Method;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn custodian(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_custodian"))
        .args(args)
        .current_dir(dir)
        .env_remove("CUSTODIAN_CONFIG")
        .env_remove("CUSTODIAN_DATABASE_URL")
        .env_remove("CUSTODIAN_JOURNAL_PATH")
        .output()
        .expect("run custodian")
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn token(dir: &Path, scope: &str) -> String {
    let out = custodian(
        dir,
        &[
            "token",
            "create",
            "--tenant",
            "acme",
            "--create-tenant",
            "--scope",
            scope,
            "--name",
            scope,
        ],
    );
    ok(&out).lines().last().expect("token").to_string()
}

/// `custodian serve` as a child process; killed on drop.
struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve_command(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_custodian"));
    cmd.args(["serve", "--bind", "127.0.0.1:0"])
        .current_dir(dir)
        .env_remove("CUSTODIAN_CONFIG")
        .env_remove("CUSTODIAN_DATABASE_URL")
        .env_remove("CUSTODIAN_JOURNAL_PATH")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

/// Starts a server and waits (bounded) for its listening line.
fn start(dir: &Path) -> Server {
    let mut child = serve_command(dir).spawn().expect("spawn serve");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(at) = line.find("SCIM base http://") {
                let rest = &line[at + "SCIM base ".len()..];
                let base = rest.split("/scim/v2").next().unwrap_or(rest).to_string();
                let _ = tx.send(base);
            }
        }
    });
    let base = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the server starts listening");
    Server { child, base }
}

/// Runs `serve` expecting it to refuse: its exit status and stderr.
fn refused_start(dir: &Path) -> (bool, String) {
    let mut child = serve_command(dir).spawn().expect("spawn serve");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            let mut err = String::new();
            use std::io::Read;
            child
                .stderr
                .take()
                .expect("stderr")
                .read_to_string(&mut err)
                .expect("read");
            return (status.success(), err);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("serve did not refuse to start within 60 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

struct Api {
    client: reqwest::Client,
    base: String,
}

impl Api {
    async fn call(&self, token: &str, m: Method, path: &str, b: Option<Value>) -> (u16, Value) {
        let mut r = self
            .client
            .request(m, format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(b) = b {
            r = r.json(&b);
        }
        body(r.send().await.expect("send")).await
    }

    async fn create(&self, scim: &str, user_name: &str) -> String {
        let mut u = user_body(user_name);
        u["externalId"] = json!(format!("ext-{user_name}"));
        let (s, v) = self
            .call(scim, Method::POST, "/scim/v2/Users", Some(u))
            .await;
        assert_eq!(s, 201, "{v}");
        v["id"].as_str().expect("id").to_string()
    }

    async fn delete(&self, scim: &str, id: &str) {
        let (s, v) = self
            .call(scim, Method::DELETE, &format!("/scim/v2/Users/{id}"), None)
            .await;
        assert_eq!(s, 204, "{v}");
    }

    async fn gate(&self, gate: &str, user_name: &str) -> Value {
        let (s, v) = self
            .call(
                gate,
                Method::POST,
                "/gate/v1/check",
                Some(json!({"userName": user_name})),
            )
            .await;
        assert_eq!(s, 200, "{v}");
        v
    }
}

/// The database file and its WAL, as bytes.
fn database_bytes(db: &Path) -> Vec<u8> {
    let mut bytes = std::fs::read(db).expect("read db");
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    if let Ok(w) = std::fs::read(PathBuf::from(wal)) {
        bytes.extend(w);
    }
    bytes
}

fn holds(bytes: &[u8], needle: &str) -> bool {
    bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// The whole procedure: back up while serving, dispose and lift after the
/// backup, restore; `serve` refuses; `disposals reapply` disposes again the
/// person the backup still holds (PII gone from the file), brings back the
/// tombstone of someone the backup never had, re-lifts the lifted one; a
/// second reapply changes nothing; the tombstones deny at the gate and on
/// re-POST.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_then_reapply_keeps_disposed_people_disposed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    std::fs::write(
        d.join("policy.toml"),
        "[default]\ntombstone = { on_scim_create = \"reject\" }\n",
    )
    .expect("policy");
    std::fs::write(d.join("custodian.toml"), "policy_file = \"policy.toml\"\n").expect("config");
    ok(&custodian(d, &["migrate"]));
    let (scim, gate) = (token(d, "scim"), token(d, "gate"));
    let db = d.join("data/custodian.db");
    let backup = d.join("before.db");
    let server = start(d);
    let api = Api {
        client: reqwest::Client::new(),
        base: server.base.clone(),
    };
    let alice = api.create(&scim, "alice.restored@example.edu").await;
    let carol = api.create(&scim, "carol.lifted@example.edu").await;

    // An online backup, verified; never over an existing file; no restore
    // while the server runs.
    let said = ok(&custodian(d, &["backup", backup.to_str().expect("utf-8")]));
    assert!(said.contains("integrity_check ok"), "{said}");
    assert!(said.contains("tombstone.key"), "the key reminder: {said}");
    let again = custodian(d, &["backup", backup.to_str().expect("utf-8")]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
    let busy = custodian(d, &["restore", backup.to_str().expect("utf-8")]);
    assert!(!busy.status.success());
    assert!(
        String::from_utf8_lossy(&busy.stderr).contains("running custodian serve"),
        "{}",
        String::from_utf8_lossy(&busy.stderr)
    );

    // After the backup: alice and carol disposed, bob created and disposed,
    // carol's tombstone lifted by the CLI (another process, the same journal).
    api.delete(&scim, &alice).await;
    let bob = api.create(&scim, "bob.never.backed.up@example.edu").await;
    api.delete(&scim, &bob).await;
    api.delete(&scim, &carol).await;
    ok(&custodian(
        d,
        &[
            "tombstone",
            "lift",
            "--tenant",
            "acme",
            "--user-name",
            "carol.lifted@example.edu",
        ],
    ));
    drop(server);

    let said = ok(&custodian(d, &["restore", backup.to_str().expect("utf-8")]));
    assert!(said.contains("disposals reapply"), "{said}");
    assert!(
        holds(&database_bytes(&db), "alice.restored@example.edu"),
        "the control: the backup holds alice"
    );
    let (started, err) = refused_start(d);
    assert!(!started, "serve must refuse: {err}");
    assert!(err.contains("custodian disposals reapply"), "{err}");

    let out: Value =
        serde_json::from_str(ok(&custodian(d, &["disposals", "reapply"])).trim()).expect("json");
    assert_eq!(out["lacking"], 4, "{out}");
    assert_eq!(
        out["reapplied"],
        json!({"entries": 4, "people_disposed": 2, "tombstones_restored": 3, "lifts": 1, "releases": 0, "tenants_restored": 0}),
        "{out}"
    );
    let bytes = database_bytes(&db);
    for pii in [
        "alice.restored@example.edu",
        "ext-alice.restored@example.edu",
    ] {
        assert!(!holds(&bytes, pii), "{pii} is still in the database file");
    }
    // Again: nothing lacking, nothing written.
    let before = std::fs::read(&db).expect("db");
    let out: Value =
        serde_json::from_str(ok(&custodian(d, &["disposals", "reapply"])).trim()).expect("json");
    assert_eq!(out["lacking"], 0, "{out}");
    assert_eq!(
        out["reapplied"],
        json!({"entries": 0, "people_disposed": 0, "tombstones_restored": 0, "lifts": 0, "releases": 0, "tenants_restored": 0})
    );
    assert!(
        std::fs::read(&db).expect("db") == before,
        "the second reapply wrote to the database"
    );

    let server = start(d);
    let api = Api {
        client: reqwest::Client::new(),
        base: server.base.clone(),
    };
    for (who, reason) in [
        ("alice.restored@example.edu", "deprovisioned"),
        ("bob.never.backed.up@example.edu", "deprovisioned"),
        ("carol.lifted@example.edu", "unknown"),
    ] {
        let g = api.gate(&gate, who).await;
        assert_eq!(g["reason"], reason, "{who}: {g}");
    }
    let (s, v) = api
        .call(
            &scim,
            Method::POST,
            "/scim/v2/Users",
            Some(user_body("alice.restored@example.edu")),
        )
        .await;
    assert_eq!(s, 409, "the tombstone refuses alice's re-creation: {v}");
    let (s, v) = api
        .call(&scim, Method::GET, &format!("/scim/v2/Users/{alice}"), None)
        .await;
    assert_eq!(s, 404, "alice is a stub again: {v}");
}

/// The journal lives beside the database; PostgreSQL has none by default.
#[test]
fn journal_path_defaults_beside_sqlite_and_follows_the_setting() {
    use custodian::config::Settings;
    let s = Settings::load(None, &|k| {
        (k == "CUSTODIAN_DATABASE_URL").then(|| "sqlite://var/lib/c/main.db".to_string())
    })
    .expect("settings");
    assert_eq!(
        s.journal_file(),
        Some(PathBuf::from("var/lib/c/main.disposal-journal.jsonl"))
    );
    let pg = Settings::load(None, &|k| {
        (k == "CUSTODIAN_DATABASE_URL").then(|| "postgres://db/custodian".to_string())
    })
    .expect("settings");
    assert_eq!(pg.journal_file(), None);
    let set = Settings::load(None, &|k| match k {
        "CUSTODIAN_DATABASE_URL" => Some("postgres://db/custodian".to_string()),
        "CUSTODIAN_JOURNAL_PATH" => Some("/shared/journal.jsonl".to_string()),
        "CUSTODIAN_EVENT_RETENTION" => Some("7d".to_string()),
        _ => None,
    })
    .expect("settings");
    assert_eq!(
        set.journal_file(),
        Some(PathBuf::from("/shared/journal.jsonl"))
    );
    assert_eq!(set.event_retention, Duration::from_secs(7 * 86_400));
    let short = Settings::load(None, &|k| {
        (k == "CUSTODIAN_EVENT_RETENTION").then(|| "10m".to_string())
    });
    assert!(short.is_err(), "retention under an hour is refused");
}

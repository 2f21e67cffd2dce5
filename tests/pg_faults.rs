//! PostgreSQL faults (issue 17), on a throw-away cluster each test starts on
//! its own port (`initdb` + `pg_ctl` into a temp dir, as the `postgres` OS
//! user when run as root; never the shared 5432 cluster), against the real
//! `custodian serve` binary: a restart under load, a backend terminated
//! mid-disposal, the database made read-only, a replica SIGKILLed
//! mid-disposal and mid-Bulk, a revocation seen across replicas, and the
//! disk full (Custodian's tables in a tablespace on a tmpfs of a few MiB the
//! test mounts inside its temp dir, and unmounts when done).
//! Part of the PostgreSQL tier: not run without `CUSTODIAN_TEST_PG_URL` (as
//! the rest of that tier); then skipped, with a note, only when the
//! PostgreSQL server binaries are missing, or, for the disk-full test, when
//! not root or `mount` is refused; under CI (`CI=true`) the disk-full test
//! fails instead when it cannot mount.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection, QueryableByName, RunQueryDsl};
use std::io::Write;
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
#[path = "support/raw.rs"]
mod raw;
use raw::{Reply, create_token, free_port, http, poll};

const TOMBSTONE_KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
const DB: &str = "custodian";

// ---------------------------------------------------------------------------
// The throw-away cluster

/// The newest installed PostgreSQL server binaries (Debian's layout).
fn pg_bin() -> Option<PathBuf> {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|b| b.join("initdb").exists() && b.join("pg_ctl").exists())
        .collect();
    versions.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    versions.pop()
}

struct Cluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    /// Run the server tools as `postgres` (PostgreSQL refuses root).
    as_postgres: bool,
    /// Filesystems mounted inside `dir` (`mount_tmpfs`), unmounted after the
    /// server stops.
    mounts: Vec<PathBuf>,
}

impl Cluster {
    fn start() -> Option<Cluster> {
        // Part of the PostgreSQL tier: `cargo test` alone (the SQLite tier)
        // starts no cluster.
        if std::env::var_os("CUSTODIAN_TEST_PG_URL").is_none() {
            eprintln!("CUSTODIAN_TEST_PG_URL unset (the SQLite tier): fault suite not run");
            return None;
        }
        let Some(bin) = pg_bin() else {
            eprintln!(
                "PostgreSQL server binaries (/usr/lib/postgresql/*/bin/initdb, pg_ctl) not found: fault suite not run"
            );
            return None;
        };
        let as_postgres = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
        let dir = tempfile::Builder::new()
            .prefix("custodian-pgfaults")
            .tempdir()
            .expect("tempdir");
        if as_postgres {
            let id = |flag: &str| -> u32 {
                let o = Command::new("id")
                    .args([flag, "postgres"])
                    .output()
                    .expect("id postgres");
                String::from_utf8_lossy(&o.stdout)
                    .trim()
                    .parse()
                    .expect("uid")
            };
            std::os::unix::fs::chown(dir.path(), Some(id("-u")), Some(id("-g"))).expect("chown");
        }
        let c = Cluster {
            port: free_port(),
            dir,
            bin,
            as_postgres,
            mounts: Vec::new(),
        };
        let data = c.data();
        let out = c.tool(
            "initdb",
            &[
                "-D",
                &data,
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
                "--no-instructions",
            ],
        );
        assert!(out.status.success(), "initdb: {out:?}");
        c.pg_ctl("start");
        let mut admin = c.admin();
        admin
            .batch_execute(&format!("CREATE DATABASE {DB}"))
            .expect("create database");
        Some(c)
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn tool(&self, name: &str, args: &[&str]) -> Output {
        let exe = self.bin.join(name);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        };
        cmd.args(args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .output()
            .expect("run a PostgreSQL tool")
    }

    /// `pg_ctl start|restart` (fast shutdown), waiting until it accepts
    /// connections (bounded by pg_ctl's own 60 s timeout).
    fn pg_ctl(&self, action: &str) {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=120",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("server.log").display().to_string();
        let out = self.tool(
            "pg_ctl",
            &[
                "-D",
                &self.data(),
                "-l",
                &log,
                "-w",
                "-t",
                "60",
                "-m",
                "fast",
                "-o",
                &opts,
                action,
            ],
        );
        assert!(
            out.status.success(),
            "pg_ctl {action}: {out:?}\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// Mounts a tmpfs of `size` (`mount -o size=`) at `<dir>/<name>`, owned
    /// by the server's user; unmounted in `Drop`. `None`, with a note, when
    /// not root or `mount` is refused, except under CI, where the test must
    /// not silently not run.
    fn mount_tmpfs(&mut self, name: &str, size: &str) -> Option<PathBuf> {
        let ci = std::env::var("CI").is_ok_and(|v| v == "true");
        let at = self.dir.path().join(name);
        std::fs::create_dir(&at).expect("mount point");
        let refused = if self.as_postgres {
            let out = Command::new("mount")
                .args([
                    "-t",
                    "tmpfs",
                    "-o",
                    &format!("size={size},mode=0700"),
                    "tmpfs",
                ])
                .arg(&at)
                .stdin(Stdio::null())
                .output();
            match out {
                Ok(o) if o.status.success() => None,
                Ok(o) => Some(String::from_utf8_lossy(&o.stderr).trim().to_string()),
                Err(e) => Some(e.to_string()),
            }
        } else {
            Some("not root".to_string())
        };
        if let Some(why) = refused {
            assert!(!ci, "the disk-full test needs a tmpfs mount (root): {why}");
            eprintln!("cannot mount a tmpfs ({why}): disk-full test not run");
            return None;
        }
        self.mounts.push(at.clone());
        let out = Command::new("chown")
            .arg("postgres:postgres")
            .arg(&at)
            .output()
            .expect("chown");
        assert!(out.status.success(), "chown: {out:?}");
        Some(at)
    }

    /// A superuser connection to the `postgres` database (unaffected by
    /// what the tests do to `custodian`).
    fn admin(&self) -> PgConnection {
        PgConnection::establish(&self.url("postgres")).expect("connect to the test cluster")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.tool(
            "pg_ctl",
            &["-D", &self.data(), "-m", "immediate", "-w", "stop"],
        );
        // Before `dir` is removed (its fields drop after this). Lazily if
        // still busy, so a failing test never leaves a mount behind.
        for m in self.mounts.drain(..) {
            let unmounted = Command::new("umount")
                .arg(&m)
                .status()
                .is_ok_and(|s| s.success());
            if !unmounted {
                let _ = Command::new("umount").arg("-l").arg(&m).status();
            }
        }
    }
}

#[derive(QueryableByName)]
struct Pid {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    pid: i32,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

fn count(c: &mut PgConnection, sql: &str) -> i64 {
    diesel::sql_query(sql)
        .get_result::<Count>(c)
        .expect("count")
        .n
}

/// Terminates the `custodian` database's backends matching `filter` (SQL
/// over pg_stat_activity); how many.
fn terminate(c: &mut PgConnection, filter: &str) -> usize {
    let sql = format!(
        "SELECT pid FROM pg_stat_activity WHERE datname = '{DB}' AND pid <> pg_backend_pid() AND {filter}"
    );
    let pids = diesel::sql_query(sql).load::<Pid>(c).expect("backends");
    for p in &pids {
        c.batch_execute(&format!("SELECT pg_terminate_backend({})", p.pid))
            .expect("terminate");
    }
    pids.len()
}

// ---------------------------------------------------------------------------
// The real server and CLI

struct Replica {
    child: Option<Child>,
    port: u16,
    url: String,
    dir: PathBuf,
    config: Option<PathBuf>,
}

impl Replica {
    fn start(cluster: &Cluster, config: Option<&str>) -> Replica {
        let dir = cluster.dir.path().to_path_buf();
        let config = config.map(|text| {
            let p = dir.join(format!("custodian-{}.toml", free_port()));
            std::fs::write(&p, text).expect("config");
            p
        });
        let mut r = Replica {
            child: None,
            port: free_port(),
            url: cluster.url(DB),
            dir,
            config,
        };
        r.restart();
        r
    }

    fn command(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_custodian"));
        c.current_dir(&self.dir)
            .env_remove("CUSTODIAN_CONFIG")
            .env("CUSTODIAN_DATABASE_URL", &self.url)
            .env("CUSTODIAN_TOMBSTONE_KEY", TOMBSTONE_KEY)
            .env("CUSTODIAN_LOG", "warn")
            .stdin(Stdio::null());
        if let Some(p) = &self.config {
            c.env("CUSTODIAN_CONFIG", p);
        }
        c
    }

    /// (Re)starts `serve` on the same port; ready when the port answers.
    fn restart(&mut self) {
        self.stop();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("serve-{}.log", self.port)))
            .expect("log");
        self.child = Some(
            self.command()
                .args(["serve", "--bind", &format!("127.0.0.1:{}", self.port)])
                .stdout(Stdio::null())
                .stderr(Stdio::from(log))
                .spawn()
                .expect("spawn custodian serve"),
        );
        let port = self.port;
        poll("custodian serve to listen", Duration::from_secs(60), || {
            TcpStream::connect(("127.0.0.1", port)).ok()
        });
    }

    /// SIGKILL (`Child::kill`), then reaped.
    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().expect("SIGKILL");
            c.wait().expect("reap");
        }
    }

    /// The `serve` process has not exited (was not restarted by a crash).
    fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().is_ok_and(|s| s.is_none()))
    }

    /// `custodian token create`: the plaintext token.
    fn token(&self, tenant: &str, scope: &str) -> String {
        create_token(self.command(), tenant, scope)
    }

    fn cli(&self, args: &[&str]) -> Output {
        self.command().args(args).output().expect("run custodian")
    }

    fn http(&self, method: &str, path: &str, token: &str, body: Option<&str>) -> Reply {
        http(self.port, method, path, token, body)
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn user_body(name: &str, manager: Option<&str>) -> String {
    let mut u = serde_json::json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": name,
        "active": true,
    });
    if let Some(m) = manager {
        u["schemas"] = serde_json::json!([
            "urn:ietf:params:scim:schemas:core:2.0:User",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
        ]);
        u["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"] =
            serde_json::json!({ "manager": { "value": m } });
    }
    u.to_string()
}

fn create_user(r: &Replica, token: &str, name: &str, manager: Option<&str>) -> String {
    let reply = r.http(
        "POST",
        "/scim/v2/Users",
        token,
        Some(&user_body(name, manager)),
    );
    assert_eq!(reply.status, 201, "{reply:?}");
    reply.json()["id"].as_str().expect("id").to_string()
}

// ---------------------------------------------------------------------------
// Restart under load

#[derive(Debug)]
struct Outcome {
    at: Instant,
    reply: Reply,
}

#[test]
fn postgres_cluster_restart_under_load_loses_no_acknowledged_write() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let replica = Arc::new(Replica::start(&cluster, None));
    let token = replica.token("load", "scim");
    let stop = Arc::new(AtomicBool::new(false));
    let outcomes = Arc::new(Mutex::new(Vec::<Outcome>::new()));
    let created = Arc::new(Mutex::new(Vec::<String>::new()));
    let clients: Vec<_> = (0..4)
        .map(|t| {
            let (replica, token, stop, outcomes, created) = (
                Arc::clone(&replica),
                token.clone(),
                Arc::clone(&stop),
                Arc::clone(&outcomes),
                Arc::clone(&created),
            );
            std::thread::spawn(move || {
                let deadline = Instant::now() + Duration::from_secs(150);
                let mut n = 0u32;
                while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                    n += 1;
                    let name = format!("u{t}-{n}@example.edu");
                    let at = Instant::now();
                    let reply = if n % 2 == 1 {
                        let r = replica.http(
                            "POST",
                            "/scim/v2/Users",
                            &token,
                            Some(&user_body(&name, None)),
                        );
                        if r.status == 201
                            && let Some(id) = r.json()["id"].as_str()
                        {
                            created.lock().unwrap().push(id.to_string());
                        }
                        r
                    } else {
                        let prev = format!("u{t}-{}@example.edu", n - 1);
                        replica.http(
                            "GET",
                            &format!("/scim/v2/Users?filter=userName%20eq%20%22{prev}%22"),
                            &token,
                            None,
                        )
                    };
                    outcomes.lock().unwrap().push(Outcome { at, reply });
                }
            })
        })
        .collect();
    let ok_count = |since: Instant| {
        outcomes
            .lock()
            .unwrap()
            .iter()
            .filter(|o| o.at >= since && matches!(o.reply.status, 200 | 201))
            .count()
    };
    let began = Instant::now();
    poll("load before the restart", Duration::from_secs(60), || {
        (ok_count(began) >= 40).then_some(())
    });
    let restart = Instant::now();
    cluster.pg_ctl("restart");
    let restarted = Instant::now();
    // Serving again by itself: a request sent after the restart succeeds.
    poll(
        "the replica to serve again after the restart",
        Duration::from_secs(60),
        || (ok_count(restarted) >= 1).then_some(()),
    );
    let recovered = outcomes
        .lock()
        .unwrap()
        .iter()
        .filter(|o| o.at >= restarted && matches!(o.reply.status, 200 | 201))
        .map(|o| o.at)
        .min()
        .expect("a success");
    let more = ok_count(restarted) + 40;
    poll("load after the restart", Duration::from_secs(60), || {
        (ok_count(restarted) >= more).then_some(())
    });
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().expect("client");
    }
    let outcomes = outcomes.lock().unwrap();
    let failed: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| !matches!(o.reply.status, 200 | 201))
        .collect();
    eprintln!(
        "restart under load: {} requests, {} failed (all 503 + Retry-After), pg_ctl restart took {} ms, first success {} ms after it returned ({} ms after it began)",
        outcomes.len(),
        failed.len(),
        restarted.duration_since(restart).as_millis(),
        recovered.saturating_duration_since(restarted).as_millis(),
        recovered.saturating_duration_since(restart).as_millis()
    );
    let mut details: Vec<&str> = failed
        .iter()
        .filter_map(|o| {
            o.reply.json()["detail"]
                .as_str()
                .map(|_| o.reply.body.as_str())
        })
        .collect();
    details.sort_unstable();
    details.dedup();
    eprintln!("errors during the fault: {details:?}");
    for o in &failed {
        assert!(
            o.reply.is_retryable_503(),
            "an error during the fault that is not a 503 with Retry-After: {:?}",
            o.reply
        );
    }
    // No acknowledged write lost.
    let created = created.lock().unwrap();
    assert!(!created.is_empty());
    for id in created.iter() {
        let r = replica.http("GET", &format!("/scim/v2/Users/{id}"), &token, None);
        assert_eq!(r.status, 200, "acknowledged user {id} is missing: {r:?}");
    }
}

// ---------------------------------------------------------------------------
// Disposals interrupted: a backend terminated, or the replica SIGKILLed

const ITEMS: i64 = 20_000;

struct Disposal {
    scim: String,
    admin: String,
    heir: String,
    person: String,
    tenant: String,
}

/// A person owning `items` content items whose manager (the heir) receives
/// them on disposal.
fn seed_disposal(replica: &Replica, c: &mut PgConnection, tenant: &str, items: i64) -> Disposal {
    let scim = replica.token(tenant, "scim");
    let admin = replica.token(tenant, "admin");
    let heir = create_user(replica, &scim, "heir@example.edu", None);
    let person = create_user(replica, &scim, "victim@example.edu", Some(&heir));
    let tenant_id = {
        #[derive(QueryableByName)]
        struct Id {
            #[diesel(sql_type = diesel::sql_types::Text)]
            id: String,
        }
        diesel::sql_query(format!("SELECT id FROM tenants WHERE name = '{tenant}'"))
            .get_result::<Id>(c)
            .expect("tenant")
            .id
    };
    c.batch_execute(&format!(
        "INSERT INTO content_items (tenant_id, kind, item_id, owner_id, parent_kind, parent_id, title, personal_root, created_at, updated_at) \
         SELECT '{tenant_id}', 'recording', 'c' || lpad(g::text, 6, '0'), '{person}', NULL, NULL, NULL, FALSE, '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z' \
         FROM generate_series(1, {items}) g"
    ))
    .expect("seed content");
    Disposal {
        scim,
        admin,
        heir,
        person,
        tenant: tenant_id,
    }
}

fn owned_by(c: &mut PgConnection, d: &Disposal, owner: &str) -> i64 {
    count(
        c,
        &format!(
            "SELECT count(*) AS n FROM content_items WHERE tenant_id = '{}' AND owner_id = '{owner}'",
            d.tenant
        ),
    )
}

fn disposals_done(c: &mut PgConnection, d: &Disposal) -> i64 {
    count(
        c,
        &format!(
            "SELECT count(*) AS n FROM disposals WHERE tenant_id = '{}' AND state = 'done'",
            d.tenant
        ),
    )
}

/// Holds the row lock on the person's last item (of `ITEMS`) in an open
/// transaction, so the disposal's transfer stops there, half done in its own
/// transaction.
fn block_last_item(cluster: &Cluster, d: &Disposal) -> PgConnection {
    let mut blocker = PgConnection::establish(&cluster.url(DB)).expect("blocker");
    blocker
        .batch_execute(&format!(
            "BEGIN; SELECT 1 FROM content_items WHERE tenant_id = '{}' AND item_id = 'c{:06}' FOR UPDATE",
            d.tenant, ITEMS
        ))
        .expect("lock the last item");
    blocker
}

/// The backend of a write transaction waiting for a lock the test holds (a
/// disposal having moved every other item, a Bulk operation's insert).
fn waiting_writer(c: &mut PgConnection) -> i32 {
    poll(
        "a write to wait on the test's lock",
        Duration::from_secs(60),
        || {
            diesel::sql_query(format!(
                "SELECT pid FROM pg_stat_activity WHERE datname = '{DB}' AND wait_event_type = 'Lock' AND backend_xid IS NOT NULL"
            ))
            .get_result::<Pid>(c)
            .ok()
            .map(|p| p.pid)
        },
    )
}

/// After an interrupted disposal: nothing moved and none recorded; a retry
/// moves everything, exactly once.
fn assert_not_applied_then_retry_completes(replica: &Replica, c: &mut PgConnection, d: &Disposal) {
    assert_eq!(
        (owned_by(c, d, &d.person), owned_by(c, d, &d.heir)),
        (ITEMS, 0),
        "half a disposal is visible"
    );
    assert_eq!(disposals_done(c, d), 0, "a disposal recorded as done");
    let still = replica.http(
        "GET",
        &format!("/scim/v2/Users/{}", d.person),
        &d.scim,
        None,
    );
    assert_eq!(still.status, 200, "{still:?}");
    let retry = poll(
        "the retried DELETE to be answered",
        Duration::from_secs(60),
        || {
            let r = replica.http(
                "DELETE",
                &format!("/scim/v2/Users/{}", d.person),
                &d.scim,
                None,
            );
            (r.status != 503).then_some(r)
        },
    );
    assert_eq!(retry.status, 204, "{retry:?}");
    assert_eq!(
        (owned_by(c, d, &d.person), owned_by(c, d, &d.heir)),
        (0, ITEMS)
    );
    assert_eq!(disposals_done(c, d), 1, "applied exactly once");
    let receipts = replica.http("GET", "/admin/v1/disposals?state=done", &d.admin, None);
    assert_eq!(receipts.status, 200, "{receipts:?}");
    let done = receipts.json();
    assert_eq!(done["Resources"].as_array().map(Vec::len), Some(1));
    assert_eq!(done["Resources"][0]["counts"]["transferred"], ITEMS);
}

#[test]
fn postgres_cluster_backend_terminated_mid_disposal_rolls_back_whole() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let replica = Arc::new(Replica::start(&cluster, None));
    let mut c = PgConnection::establish(&cluster.url(DB)).expect("connect");
    let d = seed_disposal(&replica, &mut c, "terminated", ITEMS);
    let mut blocker = block_last_item(&cluster, &d);
    let delete = {
        let (replica, path, token) = (
            Arc::clone(&replica),
            format!("/scim/v2/Users/{}", d.person),
            d.scim.clone(),
        );
        std::thread::spawn(move || replica.http("DELETE", &path, &token, None))
    };
    let pid = waiting_writer(&mut c);
    c.batch_execute(&format!("SELECT pg_terminate_backend({pid})"))
        .expect("terminate");
    let reply = delete.join().expect("delete");
    blocker.batch_execute("ROLLBACK").expect("unlock");
    assert!(
        reply.is_retryable_503(),
        "the interrupted DELETE is a 503 with Retry-After: {reply:?}"
    );
    assert_not_applied_then_retry_completes(&replica, &mut c, &d);
}

#[test]
fn postgres_cluster_replica_killed_mid_disposal_and_mid_bulk_applies_nothing_twice_or_half() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let mut replica = Replica::start(&cluster, None);
    let mut c = PgConnection::establish(&cluster.url(DB)).expect("connect");

    // Mid-disposal.
    let d = seed_disposal(&replica, &mut c, "killed", ITEMS);
    let mut blocker = block_last_item(&cluster, &d);
    let mut s = TcpStream::connect(("127.0.0.1", replica.port)).expect("connect");
    write!(
        s,
        "DELETE /scim/v2/Users/{} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\r\n",
        d.person, d.scim
    )
    .expect("send");
    let pid = waiting_writer(&mut c);
    replica.stop();
    drop(s);
    blocker.batch_execute("ROLLBACK").expect("unlock");
    // The orphaned backend finds its client gone and rolls back.
    poll(
        "the killed replica's disposal backend to end",
        Duration::from_secs(60),
        || {
            (count(
                &mut c,
                &format!("SELECT count(*) AS n FROM pg_stat_activity WHERE pid = {pid}"),
            ) == 0)
                .then_some(())
        },
    );
    replica.restart();
    assert_not_applied_then_retry_completes(&replica, &mut c, &d);

    // Mid-Bulk: each operation is its own transaction; the 6th user's
    // insert waits on an uncommitted row holding its userName.
    let ops: Vec<serde_json::Value> = (1..=10)
        .map(|i| {
            serde_json::json!({
                "method": "POST", "path": "/Users", "bulkId": format!("b{i}"),
                "data": serde_json::from_str::<serde_json::Value>(&user_body(&format!("bulk{i}@example.edu"), None)).expect("json"),
            })
        })
        .collect();
    let bulk = serde_json::json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
        "Operations": ops,
    })
    .to_string();
    let mut holder = PgConnection::establish(&cluster.url(DB)).expect("holder");
    holder
        .batch_execute(&format!(
            "BEGIN; INSERT INTO users (id, tenant_id, state, user_name, user_name_key, active, data, created_at, updated_at, version) \
             VALUES ('holder', '{}', 'active', 'bulk6@example.edu', 'bulk6@example.edu', TRUE, '{{}}', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z', 1)",
            d.tenant
        ))
        .expect("hold bulk6's userName");
    let mut s = TcpStream::connect(("127.0.0.1", replica.port)).expect("connect");
    write!(
        s,
        "POST /scim/v2/Bulk HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/scim+json\r\nContent-Length: {}\r\n\r\n{bulk}",
        d.scim,
        bulk.len()
    )
    .expect("send bulk");
    waiting_writer(&mut c);
    replica.stop();
    drop(s);
    holder.batch_execute("ROLLBACK").expect("release");
    replica.restart();
    let names = |c: &mut PgConnection| {
        count(
            c,
            &format!(
                "SELECT count(*) AS n FROM users WHERE tenant_id = '{}' AND user_name LIKE 'bulk%'",
                d.tenant
            ),
        )
    };
    assert_eq!(
        names(&mut c),
        5,
        "operations before the kill committed, none after"
    );
    // Each committed operation is whole (readable with its attributes).
    for i in 1..=5 {
        let r = replica.http(
            "GET",
            &format!("/scim/v2/Users?filter=userName%20eq%20%22bulk{i}@example.edu%22"),
            &d.scim,
            None,
        );
        assert_eq!(r.json()["totalResults"], 1, "{r:?}");
    }
    // The client, having no answer, sends the Bulk again: what was done is
    // refused as a duplicate, the rest is created, and each acknowledged
    // operation is present.
    let again = replica.http("POST", "/scim/v2/Bulk", &d.scim, Some(&bulk));
    assert_eq!(again.status, 200, "{again:?}");
    let statuses: Vec<String> = again.json()["Operations"]
        .as_array()
        .expect("operations")
        .iter()
        .map(|o| o["status"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(
        statuses,
        [
            "409", "409", "409", "409", "409", "201", "201", "201", "201", "201"
        ]
    );
    assert_eq!(names(&mut c), 10);
}

// ---------------------------------------------------------------------------
// Read-only

#[test]
fn postgres_cluster_read_only_database_refuses_writes_with_503_and_recovers() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let replica = Replica::start(&cluster, None);
    let token = replica.token("ro", "scim");
    create_user(&replica, &token, "before@example.edu", None);
    let mut admin = cluster.admin();
    admin
        .batch_execute(&format!(
            "ALTER DATABASE {DB} SET default_transaction_read_only = on"
        ))
        .expect("read-only");
    // Sessions read the default when they start: end the replica's.
    terminate(&mut admin, "TRUE");
    let mut n = 0;
    let refused = poll(
        "a write refused as read-only",
        Duration::from_secs(60),
        || {
            n += 1;
            let r = replica.http(
                "POST",
                "/scim/v2/Users",
                &token,
                Some(&user_body(&format!("ro{n}@example.edu"), None)),
            );
            assert!(r.is_retryable_503(), "{r:?}");
            r.json()["detail"]
                .as_str()
                .is_some_and(|d| d.contains("read-only"))
                .then_some(r)
        },
    );
    eprintln!(
        "read-only: {}",
        refused.json()["detail"].as_str().unwrap_or_default()
    );
    let list = replica.http("GET", "/scim/v2/Users", &token, None);
    assert_eq!(list.status, 200, "reads keep working: {list:?}");
    assert_eq!(list.json()["totalResults"], 1);
    // Undone without restarting anything: writes work again (each
    // read-only session is discarded by the write it refuses).
    admin
        .batch_execute(&format!(
            "ALTER DATABASE {DB} RESET default_transaction_read_only"
        ))
        .expect("read-write");
    let undone = Instant::now();
    poll("writes to work again", Duration::from_secs(60), || {
        n += 1;
        let r = replica.http(
            "POST",
            "/scim/v2/Users",
            &token,
            Some(&user_body(&format!("ro{n}@example.edu"), None)),
        );
        if r.status == 201 {
            return Some(());
        }
        assert!(r.is_retryable_503(), "{r:?}");
        None
    });
    eprintln!(
        "read-only undone: writes work again after {} ms",
        undone.elapsed().as_millis()
    );
}

// ---------------------------------------------------------------------------
// Disk full

/// A refusal for want of disk space: 503, `Retry-After`, the reason named.
fn out_of_space(r: &Reply) -> bool {
    r.is_retryable_503()
        && r.json()["detail"]
            .as_str()
            .is_some_and(|d| d.contains("out of disk space"))
}

/// Rows of `users` in `tenant` with this userName.
fn users_named(c: &mut PgConnection, tenant: &str, name: &str) -> i64 {
    count(
        c,
        &format!(
            "SELECT count(*) AS n FROM users WHERE tenant_id = '{tenant}' AND user_name = '{name}'"
        ),
    )
}

/// A user whose userName is also its email (what the gate matches).
fn mailed(name: &str) -> String {
    let mut u: serde_json::Value = serde_json::from_str(&user_body(name, None)).expect("json");
    u["emails"] = serde_json::json!([{"value": name, "type": "work", "primary": true}]);
    u.to_string()
}

/// `len` hex digits that pglz cannot shrink much: a value that needs new
/// pages (TOAST) wherever it is stored.
fn incompressible(len: usize) -> String {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from_digit((x % 16) as u32, 16).unwrap_or('0')
        })
        .collect()
}

#[test]
fn postgres_cluster_disk_full_refuses_writes_with_503_keeps_reads_and_recovers() {
    const TINY: &str = "8m";
    const OWNED: i64 = 2_000;
    let Some(mut cluster) = Cluster::start() else {
        return;
    };
    let Some(tiny) = cluster.mount_tmpfs("tiny", TINY) else {
        return;
    };
    let mut admin = cluster.admin();
    // Autovacuum would truncate the filler's dead tail, freeing space
    // mid-test.
    for sql in [
        "ALTER SYSTEM SET autovacuum = off",
        "SELECT pg_reload_conf()",
        &format!("CREATE TABLESPACE tiny LOCATION '{}'", tiny.display()),
    ] {
        admin.batch_execute(sql).expect(sql);
    }
    let mut replica = Replica::start(&cluster, None);
    let mut c = PgConnection::establish(&cluster.url(DB)).expect("connect");
    // Custodian's tables and indexes (and their TOAST) on the tmpfs; the
    // catalogs and the WAL stay on the cluster's disk, so the server itself
    // keeps running (a WAL write failing would PANIC it).
    c.batch_execute(
        "ALTER TABLE ALL IN TABLESPACE pg_default SET TABLESPACE tiny; \
         ALTER INDEX ALL IN TABLESPACE pg_default SET TABLESPACE tiny",
    )
    .expect("move to the tablespace");
    assert_eq!(
        count(
            &mut c,
            "SELECT count(*) AS n FROM pg_class r JOIN pg_namespace s ON s.oid = r.relnamespace \
             WHERE s.nspname = 'public' AND r.relkind IN ('r', 'i') \
             AND r.reltablespace <> (SELECT oid FROM pg_tablespace WHERE spcname = 'tiny')"
        ),
        0,
        "every Custodian relation is on the tmpfs"
    );
    let d = seed_disposal(&replica, &mut c, "diskfull", OWNED);
    let gate = replica.token("diskfull", "gate");
    // Acknowledged before the disk fills, read while it is full.
    let mut acked: Vec<(String, String)> = Vec::new();
    let r = replica.http(
        "POST",
        "/scim/v2/Users",
        &d.scim,
        Some(&mailed("before@example.edu")),
    );
    assert_eq!(r.status, 201, "{r:?}");
    acked.push((
        r.json()["id"].as_str().expect("id").to_string(),
        "before@example.edu".to_string(),
    ));
    let custodian_bytes = count(
        &mut c,
        "SELECT sum(pg_total_relation_size(r.oid))::bigint AS n FROM pg_class r \
         JOIN pg_namespace s ON s.oid = r.relnamespace WHERE s.nspname = 'public' AND r.relkind = 'r'",
    );

    // Fill the rest: one insert until the tmpfs refuses it (its pages stay
    // allocated, dead, until the table is dropped).
    c.batch_execute("CREATE TABLE filler (x TEXT) WITH (autovacuum_enabled = off) TABLESPACE tiny")
        .expect("filler");
    let full = c
        .batch_execute(
            "INSERT INTO filler SELECT repeat('x', 1000) FROM generate_series(1, 100000)",
        )
        .expect_err("the tmpfs fills up");
    eprintln!("disk full: the filler stopped at: {full}");
    let filler_bytes = count(&mut c, "SELECT pg_relation_size('filler')::bigint AS n");
    // Half a page left: the next 8 KiB extension writes 4 KiB and fails
    // short, in words without the errno's ("wrote only 4096 of 8192 bytes").
    let statfs = Command::new("stat")
        .args(["-f", "-c", "%S %b %f"])
        .arg(&tiny)
        .output()
        .expect("stat -f");
    let f: Vec<u64> = String::from_utf8_lossy(&statfs.stdout)
        .split_whitespace()
        .map(|v| v.parse().expect("stat -f figure"))
        .collect();
    let used = f[0] * (f[1] - f[2]);
    let out = Command::new("mount")
        .args(["-o", &format!("remount,size={}", used + 4096)])
        .arg(&tiny)
        .output()
        .expect("remount");
    assert!(out.status.success(), "remount: {out:?}");

    // Provision until the first refusal (pages Custodian's relations had
    // free take what fits).
    let mut n = 0;
    let (refused_name, refusal) = loop {
        n += 1;
        assert!(n <= 2_000, "no create was refused on a full disk");
        let name = format!("full{n}@example.edu");
        let r = replica.http("POST", "/scim/v2/Users", &d.scim, Some(&mailed(&name)));
        if r.status == 201 {
            acked.push((r.json()["id"].as_str().expect("id").to_string(), name));
            continue;
        }
        assert!(out_of_space(&r), "a create refused otherwise: {r:?}");
        break (name, r);
    };
    let before_refusal = acked.len() - 1;
    let log = std::fs::read_to_string(cluster.dir.path().join("server.log")).expect("server log");
    // PostgreSQL 15 extends a file by writing it, short on the last half
    // page; 16 and later allocate first and say "No space left on device".
    assert!(
        log.contains("wrote only 4096 of 8192 bytes") || log.contains("No space left on device"),
        "the refusal was not for want of space: {refusal:?}"
    );
    assert_eq!(
        users_named(&mut c, &d.tenant, &refused_name),
        0,
        "a refused create left a row"
    );

    // PATCH: a value that needs new pages.
    let patch = serde_json::json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "title", "value": incompressible(16_000)}],
    })
    .to_string();
    let patched = &d.heir;
    let before = replica.http("GET", &format!("/scim/v2/Users/{patched}"), &d.scim, None);
    assert_eq!(before.status, 200, "{before:?}");
    let r = replica.http(
        "PATCH",
        &format!("/scim/v2/Users/{patched}"),
        &d.scim,
        Some(&patch),
    );
    assert!(out_of_space(&r), "the PATCH: {r:?}");
    let after = replica.http("GET", &format!("/scim/v2/Users/{patched}"), &d.scim, None);
    assert_eq!(after.status, 200, "{after:?}");
    assert_eq!(
        after.json(),
        before.json(),
        "a refused PATCH changed the user"
    );

    // A disposal: moving OWNED items needs new pages.
    let r = replica.http(
        "DELETE",
        &format!("/scim/v2/Users/{}", d.person),
        &d.scim,
        None,
    );
    assert!(out_of_space(&r), "the DELETE: {r:?}");
    assert_eq!(
        (
            owned_by(&mut c, &d, &d.person),
            owned_by(&mut c, &d, &d.heir)
        ),
        (OWNED, 0),
        "a refused disposal moved items"
    );
    assert_eq!(
        count(
            &mut c,
            &format!(
                "SELECT count(*) AS n FROM disposals WHERE tenant_id = '{}'",
                d.tenant
            )
        ),
        0,
        "a refused disposal wrote a disposal row"
    );
    let still = replica.http(
        "GET",
        &format!("/scim/v2/Users/{}", d.person),
        &d.scim,
        None,
    );
    assert_eq!(
        still.status, 200,
        "the refused DELETE removed the user: {still:?}"
    );

    // A Bulk: each operation its own transaction, each refused one a 503.
    let bulk_names: Vec<String> = (1..=12)
        .map(|i| format!("bulkfull{i}@example.edu"))
        .collect();
    let bulk = serde_json::json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
        "Operations": bulk_names.iter().enumerate().map(|(i, name)| serde_json::json!({
            "method": "POST", "path": "/Users", "bulkId": format!("b{i}"),
            "data": serde_json::from_str::<serde_json::Value>(&mailed(name)).expect("json"),
        })).collect::<Vec<_>>(),
    })
    .to_string();
    let r = replica.http("POST", "/scim/v2/Bulk", &d.scim, Some(&bulk));
    assert_eq!(r.status, 200, "{r:?}");
    let ops = r.json()["Operations"]
        .as_array()
        .expect("operations")
        .clone();
    assert_eq!(ops.len(), bulk_names.len());
    let mut bulk_refused = Vec::new();
    for (op, name) in ops.iter().zip(&bulk_names) {
        match op["status"].as_str() {
            Some("201") => {
                let id = op["location"]
                    .as_str()
                    .and_then(|l| l.rsplit('/').next())
                    .expect("location");
                acked.push((id.to_string(), name.clone()));
            }
            Some("503") => {
                assert!(
                    op["response"]["detail"]
                        .as_str()
                        .is_some_and(|d| d.contains("out of disk space")),
                    "a Bulk operation refused otherwise: {op}"
                );
                assert_eq!(
                    users_named(&mut c, &d.tenant, name),
                    0,
                    "a refused operation left a row"
                );
                bulk_refused.push(name.clone());
            }
            _ => panic!("a Bulk operation neither created nor refused as out of space: {op}"),
        }
    }
    assert!(
        !bulk_refused.is_empty(),
        "no Bulk operation was refused: {ops:?}"
    );

    // Reads keep answering: by id, by filter, the gate.
    for (id, name) in &acked {
        let r = replica.http("GET", &format!("/scim/v2/Users/{id}"), &d.scim, None);
        assert_eq!(r.status, 200, "{r:?}");
        let r = replica.http(
            "GET",
            &format!("/scim/v2/Users?filter=userName%20eq%20%22{name}%22"),
            &d.scim,
            None,
        );
        assert_eq!(
            (r.status, r.json()["totalResults"].as_i64()),
            (200, Some(1)),
            "{r:?}"
        );
        let r = replica.http(
            "POST",
            "/gate/v1/check",
            &gate,
            Some(&serde_json::json!({"email": [name]}).to_string()),
        );
        assert_eq!(
            (r.status, r.json()["decision"].as_str()),
            (200, Some("allow")),
            "{r:?}"
        );
    }

    // Space freed: writes work again, without restarting anything.
    c.batch_execute("DROP TABLE filler")
        .expect("drop the filler");
    let freed = Instant::now();
    let mut m = 0;
    poll("writes to work again", Duration::from_secs(60), || {
        m += 1;
        let name = format!("freed{m}@example.edu");
        let r = replica.http("POST", "/scim/v2/Users", &d.scim, Some(&mailed(&name)));
        if r.status == 201 {
            acked.push((r.json()["id"].as_str().expect("id").to_string(), name));
            return Some(());
        }
        assert!(out_of_space(&r), "{r:?}");
        None
    });
    let recovered = freed.elapsed();
    assert!(replica.running(), "the replica exited");
    // Every refused write, retried, applies (nothing half-written blocks it).
    let r = replica.http(
        "POST",
        "/scim/v2/Users",
        &d.scim,
        Some(&mailed(&refused_name)),
    );
    assert_eq!(r.status, 201, "{r:?}");
    acked.push((
        r.json()["id"].as_str().expect("id").to_string(),
        refused_name.clone(),
    ));
    let r = replica.http(
        "PATCH",
        &format!("/scim/v2/Users/{patched}"),
        &d.scim,
        Some(&patch),
    );
    assert!(matches!(r.status, 200 | 204), "{r:?}");
    let r = replica.http(
        "DELETE",
        &format!("/scim/v2/Users/{}", d.person),
        &d.scim,
        None,
    );
    assert_eq!(r.status, 204, "{r:?}");
    assert_eq!(
        (
            owned_by(&mut c, &d, &d.person),
            owned_by(&mut c, &d, &d.heir)
        ),
        (0, OWNED)
    );
    assert_eq!(disposals_done(&mut c, &d), 1);
    let r = replica.http("POST", "/scim/v2/Bulk", &d.scim, Some(&bulk));
    assert_eq!(r.status, 200, "{r:?}");
    for (op, name) in r.json()["Operations"]
        .as_array()
        .expect("operations")
        .iter()
        .zip(&bulk_names)
    {
        let want = if bulk_refused.contains(name) {
            "201"
        } else {
            "409"
        };
        assert_eq!(op["status"].as_str(), Some(want), "{name}: {op}");
    }
    // Nothing acknowledged was lost.
    for (id, name) in &acked {
        let r = replica.http("GET", &format!("/scim/v2/Users/{id}"), &d.scim, None);
        assert_eq!(
            (r.status, r.json()["userName"].as_str()),
            (200, Some(name.as_str())),
            "{r:?}"
        );
    }
    eprintln!(
        "disk full: Custodian's tables ({} KiB) on a {TINY} tmpfs, filled by a {} KiB filler; \
         {before_refusal} creates acknowledged before the first refusal, then refused: the create, \
         a PATCH, a disposal of {OWNED} items, {} of {} Bulk operations, all 503 + Retry-After ({:?}); \
         reads (by id, filter, gate) 200 throughout; writes work again {} ms after the filler was \
         dropped (no restart)",
        custodian_bytes / 1024,
        filler_bytes / 1024,
        bulk_refused.len(),
        bulk_names.len(),
        refusal.json()["detail"].as_str().unwrap_or_default(),
        recovered.as_millis()
    );
}

// ---------------------------------------------------------------------------
// Revocation across replicas

/// Polls `token` on `replica` until it is refused (bounded); how long it took.
fn refused_after(replica: &Replica, token: &str, since: Instant) -> Duration {
    poll(
        "the revoked token to be refused",
        Duration::from_secs(30),
        || {
            let r = replica.http("GET", "/scim/v2/Users?count=1", token, None);
            assert!(matches!(r.status, 200 | 401), "{r:?}");
            (r.status == 401).then(|| since.elapsed())
        },
    )
}

#[test]
fn postgres_cluster_revocation_reaches_the_other_replica_within_a_second() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let a = Replica::start(&cluster, None);
    let b = Replica::start(&cluster, None);
    // A replica whose listener cannot connect: only the TTL bounds its cache.
    let deaf = Replica::start(
        &cluster,
        Some(&format!(
            "listen_url = \"postgres://postgres@127.0.0.1:{}/{DB}\"\nrevocation_ttl_ms = 1000\n",
            free_port()
        )),
    );
    let token = a.token("rev", "scim");
    // The token is verified and its liveness cached on both.
    for r in [&a, &b, &deaf] {
        for _ in 0..3 {
            let reply = r.http("GET", "/scim/v2/Users?count=1", &token, None);
            assert_eq!(reply.status, 200, "{reply:?}");
        }
    }
    // a's and b's listeners are connected.
    let mut admin = cluster.admin();
    poll("the listeners to connect", Duration::from_secs(30), || {
        (count(
                &mut admin,
                &format!("SELECT count(*) AS n FROM pg_stat_activity WHERE datname = '{DB}' AND application_name = 'custodian revocations'"),
            ) >= 2)
                .then_some(())
    });
    let id = token_id(&token);
    let revoked = a.cli(&["token", "revoke", &id]);
    assert!(revoked.status.success(), "{revoked:?}");
    let at = Instant::now();
    let on_b = refused_after(&b, &token, at);
    let on_deaf = refused_after(&deaf, &token, at);
    eprintln!(
        "revocation: refused by the listening replica after {} ms, by the replica without a listener after {} ms",
        on_b.as_millis(),
        on_deaf.as_millis()
    );
    // One second is the contract; the margin is for a loaded CI machine.
    assert!(on_b < Duration::from_millis(1500), "{on_b:?}");
    assert!(on_deaf < Duration::from_millis(2000), "{on_deaf:?}");
    // The listener reconnects after its backend is terminated, and keeps
    // delivering.
    let second = a.token("rev", "scim");
    let reply = b.http("GET", "/scim/v2/Users?count=1", &second, None);
    assert_eq!(reply.status, 200, "{reply:?}");
    terminate(&mut admin, "application_name = 'custodian revocations'");
    poll(
        "the listeners to reconnect",
        Duration::from_secs(30),
        || {
            (count(
                &mut admin,
                &format!("SELECT count(*) AS n FROM pg_stat_activity WHERE datname = '{DB}' AND application_name = 'custodian revocations'"),
            ) >= 2)
                .then_some(())
        },
    );
    let second_id = token_id(&second);
    assert!(a.cli(&["token", "revoke", &second_id]).status.success());
    let at = Instant::now();
    let after_reconnect = refused_after(&b, &second, at);
    eprintln!(
        "revocation after the listener reconnected: refused after {} ms",
        after_reconnect.as_millis()
    );
    assert!(after_reconnect < Duration::from_millis(1500));
}

fn token_id(token: &str) -> String {
    custodian::auth::token::split(token)
        .expect("a well-formed token")
        .0
        .to_string()
}

/// The cache itself, in process: once a token was read live, a replica
/// answers its revocation check without a database round trip (the old
/// behaviour asked PostgreSQL on every request), and a revocation committed
/// elsewhere empties it within a second, through the listener or, without
/// one, through the TTL.
#[test]
fn postgres_cluster_revocation_cache_answers_without_a_round_trip_until_revoked() {
    use custodian::auth::revocation::spawn_listener;
    use custodian::auth::{AuthLimits, Scope, Verifier, create_token};
    use custodian::store::Db;
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let url = cluster.url(DB);
    let db = Db::open(&url, 2, false).expect("open");
    let clock = Arc::new(custodian::clock::SystemClock);
    let listening = Verifier::new(AuthLimits::default(), clock.clone());
    spawn_listener(&listening.revocations, url.clone()).expect("listener");
    let deaf = Verifier::new(AuthLimits::default(), clock);
    spawn_listener(
        &deaf.revocations,
        format!("postgres://postgres@127.0.0.1:{}/{DB}", free_port()),
    )
    .expect("listener");
    poll("the listener to connect", Duration::from_secs(30), || {
        listening.revocations.listener_up().then_some(())
    });
    assert!(!deaf.revocations.listener_up());
    let token = create_token(&db, "cache", Scope::Scim, "idp", None)
        .expect("token")
        .plaintext;
    let mut principals = Vec::new();
    for v in [&listening, &deaf] {
        // Known live without asking the database, right after a live read.
        // A check that came later than half the one-second TTL (a starved
        // test thread) proves nothing either way: read again.
        let p = poll("a cached liveness", Duration::from_secs(30), || {
            let read = Instant::now();
            let p = v.verify(&db, &token, &[Scope::Scim]).expect("verified");
            let cached = matches!(v.still_live_now(&db, &p), Some(Ok(())));
            let prompt = read.elapsed() < Duration::from_millis(500);
            assert!(
                cached || !prompt,
                "a cached liveness answers without a round trip"
            );
            cached.then_some(p)
        });
        principals.push(p);
    }
    let id = token_id(&token);
    let now = custodian::store::time::now();
    assert!(
        db.write(|c| custodian::store::tokens::revoke(c, &id, &now))
            .expect("revoke")
    );
    let at = Instant::now();
    let refused = |v: &Verifier, p: &custodian::auth::Principal| {
        poll(
            "the revocation to be seen",
            Duration::from_secs(30),
            || match v.still_live_now(&db, p) {
                Some(Ok(())) => None,
                _ => Some(at.elapsed()),
            },
        )
    };
    let by_listener = refused(&listening, &principals[0]);
    let by_ttl = refused(&deaf, &principals[1]);
    eprintln!(
        "revocation cache: emptied by the listener after {} ms, by the TTL after {} ms",
        by_listener.as_millis(),
        by_ttl.as_millis()
    );
    assert!(by_listener < Duration::from_millis(1500), "{by_listener:?}");
    assert!(by_ttl < Duration::from_millis(1500), "{by_ttl:?}");
    for (v, p) in [(&listening, &principals[0]), (&deaf, &principals[1])] {
        assert!(matches!(
            v.still_live(&db, p),
            Err(custodian::auth::AuthError::Invalid)
        ));
    }
}

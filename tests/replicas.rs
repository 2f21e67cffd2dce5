//! Two replicas on one PostgreSQL database, soaked (issue 17): two real
//! `custodian serve` processes, each on its own port, over one fresh
//! database on the shared server, driven for `CUSTODIAN_SOAK_SECONDS`
//! (default 60; at least 10) by a load driver in the test — users created,
//! looked up and given content on both replicas, DELETEs and deactivations
//! with a 2 s grace (so grace expiry runs on both schedulers), reactivations
//! cancelling some, a mass deactivation that trips the brake, a policy edit
//! with SIGHUP on one replica and then the other — and two webhook receivers
//! (one answers every 25th delivery 500, so redelivery happens).
//!
//! Afterwards: every event of the feed reached each endpoint at least once,
//! in `seq` order; every disposal ran once (one done disposal per person,
//! one `user.disposed` event and one journal line per done disposal); the
//! brake tripped exactly at its limit summed over both replicas, once; the
//! policy mismatch showed on both `/readyz` and in the metric while the
//! files differed and cleared when they agreed; no answer was a 5xx.
//! `bench/soak.sh` runs the same for minutes and prints figures.
//!
//! Part of the PostgreSQL tier (not run without `CUSTODIAN_TEST_PG_URL`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
#[path = "support/raw.rs"]
mod raw;
use raw::{create_token, free_port};

const TOMBSTONE_KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
/// The brake's hourly limit; the run asks for more disposals than this.
const BRAKE: usize = 40;
/// Users deactivated at once a third of the way in (more than `BRAKE`).
const MASS: usize = 60;
/// Caps on the small DELETEs and deactivations before the brake trips.
const SMALL_DELETES: usize = 15;
const SMALL_DEACTIVATIONS: usize = 10;
const HOOK_SECRET_A: &str = "whsec_c29hay1yZXBsaWNhcy1lbmRwb2ludC1hLXNlY3JldA==";
const HOOK_SECRET_B: &str = "whsec_c29hay1yZXBsaWNhcy1lbmRwb2ludC1iLXNlY3JldA==";

fn soak_seconds() -> u64 {
    std::env::var("CUSTODIAN_SOAK_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60)
        .max(10)
}

// ---------------------------------------------------------------------------
// A fresh database on the shared server

struct FreshDb {
    base: String,
    name: String,
    url: String,
}

impl FreshDb {
    fn create(base: &str) -> FreshDb {
        let name = format!("custodian_soak_{}", uuid::Uuid::new_v4().simple());
        let mut c = PgConnection::establish(base).expect("connect to CUSTODIAN_TEST_PG_URL");
        c.batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("create database");
        let (no_query, query) = base.split_once('?').map_or((base, ""), |(a, q)| (a, q));
        let prefix = no_query.rsplit_once('/').map_or(no_query, |(p, _)| p);
        let url = if query.is_empty() {
            format!("{prefix}/{name}")
        } else {
            format!("{prefix}/{name}?{query}")
        };
        FreshDb {
            base: base.to_string(),
            name,
            url,
        }
    }
}

impl Drop for FreshDb {
    fn drop(&mut self) {
        if let Ok(mut c) = PgConnection::establish(&self.base) {
            let _ = c.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

// ---------------------------------------------------------------------------
// The webhook receivers

#[derive(Debug, Clone)]
struct Delivery {
    seq: i64,
    id: String,
    status: u16,
    /// From the event's `occurredAt` to its arrival here.
    lag_ms: i64,
}

struct Receiver {
    port: u16,
    got: Arc<Mutex<Vec<Delivery>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Receiver {
    /// Answers 200, except every `fail_every`-th request (500), recording each.
    fn spawn(fail_every: usize) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind receiver");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("addr").port();
        let got = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (g, s) = (Arc::clone(&got), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            let mut n = 0usize;
            // Bounded: ends when told, or after an hour at most.
            let deadline = Instant::now() + Duration::from_secs(3600);
            while !s.load(Ordering::Relaxed) && Instant::now() < deadline {
                let stream = match listener.accept() {
                    Ok((stream, _)) => stream,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(5));
                        continue;
                    }
                    Err(_) => continue,
                };
                stream.set_nonblocking(false).ok();
                stream.set_read_timeout(Some(Duration::from_secs(10))).ok();
                let body = common::request_body(&stream);
                let v: Value = serde_json::from_slice(&body).unwrap_or_default();
                n += 1;
                let status = if fail_every > 0 && n.is_multiple_of(fail_every) {
                    500
                } else {
                    200
                };
                let reply = format!(
                    "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
                let mut w = &stream;
                let answered = w.write_all(reply.as_bytes()).is_ok();
                let lag_ms = v["occurredAt"]
                    .as_str()
                    .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                    .map_or(-1, |t| (chrono::Utc::now() - t.to_utc()).num_milliseconds());
                g.lock().unwrap().push(Delivery {
                    seq: v["seq"].as_i64().unwrap_or(-1),
                    id: v["id"].as_str().unwrap_or_default().to_string(),
                    status: if answered { status } else { 0 },
                    lag_ms,
                });
            }
        });
        Receiver {
            port,
            got,
            stop,
            thread: Some(thread),
        }
    }

    fn accepted(&self) -> Vec<Delivery> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .filter(|d| d.status == 200)
            .cloned()
            .collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

// ---------------------------------------------------------------------------
// The real server

fn policy(hook_a: u16, hook_b: u16, edited: bool) -> String {
    // The edit changes one user-data action: harmless to what runs, but
    // another policy, so another digest.
    let user_data = if edited {
        "user_data = { favorite = \"delete\" }\n"
    } else {
        ""
    };
    format!(
        "[default]\n\
         grace_period = \"2s\"\n\
         targets = [\"manager\"]\n\
         brake = {{ max_disposals_per_hour = {BRAKE} }}\n\
         {user_data}\
         webhooks = [\n\
           {{ url = \"http://127.0.0.1:{hook_a}/hook\", secret_env = \"SOAK_HOOK_A\" }},\n\
           {{ url = \"http://127.0.0.1:{hook_b}/hook\", secret_env = \"SOAK_HOOK_B\" }},\n\
         ]\n"
    )
}

struct Serve {
    name: &'static str,
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
    db_url: String,
    policy: PathBuf,
}

impl Serve {
    fn command(dir: &Path, db_url: &str, policy: &Path) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_custodian"));
        c.current_dir(dir)
            .env_remove("CUSTODIAN_CONFIG")
            .env("CUSTODIAN_DATABASE_URL", db_url)
            .env("CUSTODIAN_TOMBSTONE_KEY", TOMBSTONE_KEY)
            .env("CUSTODIAN_POLICY_FILE", policy)
            // One journal file both replicas append to (README "Backup and restore").
            .env("CUSTODIAN_JOURNAL_PATH", dir.join("journal.jsonl"))
            .env("CUSTODIAN_POOL_SIZE", "6")
            .env("CUSTODIAN_GATE_CONNECTIONS", "2")
            .env("CUSTODIAN_WEBHOOK_RETRY_BASE_SECONDS", "1")
            .env("CUSTODIAN_WEBHOOK_RETRY_MAX_SECONDS", "2")
            .env("CUSTODIAN_LOG", "info")
            .env("SOAK_HOOK_A", HOOK_SECRET_A)
            .env("SOAK_HOOK_B", HOOK_SECRET_B)
            .stdin(Stdio::null());
        c
    }

    fn start(name: &'static str, dir: &Path, db_url: &str, policy_text: &str) -> Serve {
        let policy = dir.join(format!("policy-{name}.toml"));
        std::fs::write(&policy, policy_text).expect("policy");
        let port = free_port();
        let log = std::fs::File::create(dir.join(format!("serve-{name}.log"))).expect("log");
        let child = Serve::command(dir, db_url, &policy)
            .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn custodian serve");
        Serve {
            name,
            child: Some(child),
            port,
            dir: dir.to_path_buf(),
            db_url: db_url.to_string(),
            policy,
        }
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.pid().to_string()])
            .status()
            .expect("kill");
        assert!(ok.success(), "kill {sig} {}", self.name);
    }

    fn token(&self, tenant: &str, scope: &str) -> String {
        create_token(
            Serve::command(&self.dir, &self.db_url, &self.policy),
            tenant,
            scope,
        )
    }

    /// SIGTERM, then waits (bounded) for a clean exit.
    fn stop(&mut self) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(Some(s)) = child.try_wait() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        child.wait().ok()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join(format!("serve-{}.log", self.name)))
            .unwrap_or_default()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

// ---------------------------------------------------------------------------
// HTTP

#[derive(Clone)]
struct Api {
    http: reqwest::Client,
    scim: String,
    admin: String,
    ledger: String,
    /// Answers by status (the driver's tally).
    statuses: Arc<Mutex<BTreeMap<u16, usize>>>,
    /// Requests that failed without an answer.
    dropped: Arc<AtomicUsize>,
}

impl Api {
    async fn call(
        &self,
        base: &str,
        token: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut rq = self
            .http
            .request(method, format!("{base}{path}"))
            .bearer_auth(token);
        if let Some(b) = body {
            rq = rq
                .header("Content-Type", "application/scim+json")
                .body(b.to_string());
        }
        match rq.send().await {
            Ok(r) => {
                let s = r.status().as_u16();
                *self.statuses.lock().unwrap().entry(s).or_default() += 1;
                let text = r.text().await.unwrap_or_default();
                (s, serde_json::from_str(&text).unwrap_or(Value::Null))
            }
            Err(_) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                (0, Value::Null)
            }
        }
    }

    async fn create_user(&self, base: &str, user_name: &str, manager: Option<&str>) -> String {
        let mut body = json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": user_name,
            "externalId": format!("ext-{user_name}"),
            "active": true,
            "emails": [{"value": user_name, "type": "work", "primary": true}],
        });
        if let Some(m) = manager {
            body["schemas"].as_array_mut().unwrap().push(json!(
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
            ));
            body["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"] =
                json!({"manager": {"value": m}});
        }
        let (s, v) = self
            .call(
                base,
                &self.scim.clone(),
                reqwest::Method::POST,
                "/scim/v2/Users",
                Some(body),
            )
            .await;
        assert_eq!(s, 201, "create {user_name}: {v}");
        v["id"].as_str().unwrap().to_string()
    }

    async fn give_content(&self, base: &str, owner: &str, n: usize) {
        for k in 0..n {
            let path = format!("/admin/v1/content/recording/{owner}-{k}");
            let (s, v) = self
                .call(
                    base,
                    &self.ledger.clone(),
                    reqwest::Method::PUT,
                    &path,
                    Some(json!({"owner": owner, "title": format!("r{k}")})),
                )
                .await;
            // 409: the owner was disposed meanwhile (a DELETE racing the upload).
            assert!(s == 201 || s == 200 || s == 409, "content: {s} {v}");
        }
    }

    async fn set_active(&self, base: &str, id: &str, active: bool) -> u16 {
        let body = json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "value": {"active": active}}],
        });
        self.call(
            base,
            &self.scim.clone(),
            reqwest::Method::PATCH,
            &format!("/scim/v2/Users/{id}"),
            Some(body),
        )
        .await
        .0
    }

    async fn readyz(&self, base: &str) -> Value {
        let r = self.http.get(format!("{base}/readyz")).send().await;
        match r {
            Ok(r) if r.status() == 200 => r.json().await.unwrap_or_default(),
            _ => Value::Null,
        }
    }

    async fn metric(&self, base: &str, name: &str) -> Option<f64> {
        let r = self
            .http
            .get(format!("{base}/metrics"))
            .bearer_auth(&self.admin)
            .send()
            .await
            .ok()?;
        let text = r.text().await.ok()?;
        text.lines()
            .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    }

    /// Every event of the tenant's feed, oldest first.
    async fn feed(&self, base: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let mut after = 0i64;
        for _ in 0..10_000 {
            let (s, v) = self
                .call(
                    base,
                    &self.admin.clone(),
                    reqwest::Method::GET,
                    &format!("/admin/v1/events?after={after}&count=1000"),
                    None,
                )
                .await;
            assert_eq!(s, 200, "{v}");
            let page = v["events"].as_array().cloned().unwrap_or_default();
            if page.is_empty() {
                break;
            }
            after = v["next"].as_i64().unwrap();
            out.extend(page);
        }
        out
    }

    /// Every disposal (all states).
    async fn disposals(&self, base: &str) -> Vec<Value> {
        let mut out = Vec::new();
        for page in 0..1000 {
            let (s, v) = self
                .call(
                    base,
                    &self.admin.clone(),
                    reqwest::Method::GET,
                    &format!(
                        "/admin/v1/disposals?count=1000&startIndex={}",
                        page * 1000 + 1
                    ),
                    None,
                )
                .await;
            assert_eq!(s, 200, "{v}");
            let rows = v["Resources"].as_array().cloned().unwrap_or_default();
            let n = rows.len();
            out.extend(rows);
            if n < 1000 {
                break;
            }
        }
        out
    }
}

/// Polls `f` until it returns `Some`, for at most `limit`.
async fn until<T, F, Fut>(what: &str, limit: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// ---------------------------------------------------------------------------
// The soak

/// One worker of the load driver, on one replica, until `end`.
#[allow(clippy::too_many_arguments)]
async fn worker(
    api: Api,
    base: String,
    other: String,
    w: usize,
    managers: Arc<Vec<String>>,
    end: Instant,
    span: Duration,
    deletes: Arc<AtomicUsize>,
    deactivations: Arc<AtomicUsize>,
    brake_tripped: Arc<AtomicBool>,
) -> usize {
    let mut mine: Vec<String> = Vec::new();
    let mut suspended: Vec<String> = Vec::new();
    let mut ops = 0usize;
    for i in 0..1_000_000usize {
        if Instant::now() >= end {
            break;
        }
        ops += 1;
        match i % 10 {
            3 if !mine.is_empty() => {
                // Before the brake trips a few; after it, held DELETEs too.
                let cap = if brake_tripped.load(Ordering::Relaxed) {
                    SMALL_DELETES * 3
                } else {
                    SMALL_DELETES
                };
                if deletes.fetch_add(1, Ordering::Relaxed) < cap {
                    let id = mine.remove(0);
                    let (s, v) = api
                        .call(
                            &base,
                            &api.scim.clone(),
                            reqwest::Method::DELETE,
                            &format!("/scim/v2/Users/{id}"),
                            None,
                        )
                        .await;
                    assert!(s == 204 || s == 404, "DELETE: {s} {v}");
                }
            }
            6 if !mine.is_empty() => {
                // Spread over the first two thirds of the run (before the mass
                // deactivation), so they fall due in both schedulers' turns.
                let left = end.saturating_duration_since(Instant::now()).as_secs_f64();
                let elapsed = span.as_secs_f64() - left;
                let share = (elapsed / (span.as_secs_f64() * 2.0 / 3.0)).clamp(0.0, 1.0);
                let allowed = ((SMALL_DEACTIVATIONS as f64) * share).ceil() as usize;
                // Once the brake has tripped, every tenth operation: each is
                // held when due (events and webhook traffic to the end).
                let tripped = brake_tripped.load(Ordering::Relaxed);
                if tripped || deactivations.load(Ordering::Relaxed) < allowed {
                    let k = deactivations.fetch_add(1, Ordering::Relaxed);
                    if k < SMALL_DEACTIVATIONS || tripped {
                        let id = mine.remove(0);
                        // On the other replica: its scheduler or this one's may expire it.
                        let s = api.set_active(&other, &id, false).await;
                        assert!(s == 200 || s == 204, "deactivate: {s}");
                        // One in three is reactivated (its schedule cancelled)
                        // before a scheduler pass can expire it.
                        if k.is_multiple_of(3) {
                            suspended.push(id);
                        }
                    }
                }
            }
            8 if !suspended.is_empty() && i % 20 == 8 => {
                // Reactivation cancels the schedule, unless grace expiry won.
                let id = suspended.remove(0);
                let s = api.set_active(&base, &id, true).await;
                assert!(s == 200 || s == 204 || s == 404, "reactivate: {s}");
            }
            _ => {
                let name = format!("w{w}-u{i}@soak.example.edu");
                let manager = managers.get(i % managers.len()).map(String::as_str);
                let id = api.create_user(&base, &name, manager).await;
                // An IdP's lookup, on the other replica (it must see the commit).
                let (s, v) = api
                    .call(
                        &other,
                        &api.scim.clone(),
                        reqwest::Method::GET,
                        &format!("/scim/v2/Users?filter=userName%20eq%20%22{name}%22"),
                        None,
                    )
                    .await;
                assert_eq!(s, 200, "{v}");
                assert_eq!(v["totalResults"], 1, "{v}");
                api.give_content(&other, &id, 2).await;
                mine.push(id);
            }
        }
    }
    ops
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_soak_two_serve_processes_one_database() {
    let Some(base_url) = common::pg_url() else {
        eprintln!("CUSTODIAN_TEST_PG_URL not set: PostgreSQL tier (replica soak) not run");
        return;
    };
    let seconds = soak_seconds();
    let db = FreshDb::create(&base_url);
    let dir = tempfile::tempdir().expect("tempdir");
    let hook_a = Receiver::spawn(0);
    let hook_b = Receiver::spawn(25);
    let p1 = policy(hook_a.port, hook_b.port, false);
    let p2 = policy(hook_a.port, hook_b.port, true);

    // A migrates first; the tokens need the schema.
    let mut a = Serve::start("a", dir.path(), &db.url, &p1);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    until("replica a ready", Duration::from_secs(60), || {
        let (h, u) = (http.clone(), a.base());
        async move {
            let r = h.get(format!("{u}/readyz")).send().await.ok()?;
            (r.status() == 200).then_some(())
        }
    })
    .await;
    let a_ready = Instant::now();
    let api = Api {
        http: http.clone(),
        scim: a.token("soak", "scim"),
        admin: a.token("soak", "admin"),
        ledger: a.token("soak", "ledger"),
        statuses: Arc::default(),
        dropped: Arc::default(),
    };
    // Managers (the disposals' target) and the mass-deactivation cohort, with content.
    let mut managers = Vec::new();
    for m in 0..4 {
        managers.push(
            api.create_user(&a.base(), &format!("manager-{m}@soak.example.edu"), None)
                .await,
        );
    }
    let managers = Arc::new(managers);
    let mut cohort = Vec::new();
    for k in 0..MASS {
        let id = api
            .create_user(
                &a.base(),
                &format!("cohort-{k}@soak.example.edu"),
                Some(&managers[k % 4]),
            )
            .await;
        api.give_content(&a.base(), &id, 2).await;
        cohort.push(id);
    }

    // B starts half a grace-expiry period (30 s) after A, so the two
    // schedulers' passes alternate every 15 s and disposals falling due
    // through the run are taken by both.
    tokio::time::sleep_until((a_ready + Duration::from_secs(15)).into()).await;
    let mut b = Serve::start("b", dir.path(), &db.url, &p1);
    until("replica b ready", Duration::from_secs(60), || {
        let (h, u) = (http.clone(), b.base());
        async move {
            let r = h.get(format!("{u}/readyz")).send().await.ok()?;
            (r.status() == 200).then_some(())
        }
    })
    .await;
    let (ba, bb) = (a.base(), b.base());

    // Both see each other, on one policy.
    for base in [&ba, &bb] {
        let r = until("two live replicas", Duration::from_secs(30), || {
            let (api, base) = (api.clone(), base.clone());
            async move {
                let r = api.readyz(&base).await;
                (r["replica"]["live"].as_array().map_or(0, Vec::len) == 2).then_some(r)
            }
        })
        .await;
        assert_eq!(r["replica"]["policyDigestMismatch"], false, "{r}");
        assert_eq!(r["replica"]["versionMismatch"], false, "{r}");
    }
    let (s, v) = api
        .call(
            &ba,
            &api.admin.clone(),
            reqwest::Method::GET,
            "/admin/v1/replicas",
            None,
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["live"], 2, "{v}");
    let digest_1 = v["policyDigest"].as_str().unwrap().to_string();

    // The load: two workers per replica until the end.
    let total = |api: &Api| -> usize { api.statuses.lock().unwrap().values().sum() };
    let before_load = total(&api);
    let started = Instant::now();
    let end = started + Duration::from_secs(seconds);
    let deletes = Arc::new(AtomicUsize::new(0));
    let deactivations = Arc::new(AtomicUsize::new(0));
    let tripped = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for w in 0..4 {
        let (base, other) = if w % 2 == 0 {
            (ba.clone(), bb.clone())
        } else {
            (bb.clone(), ba.clone())
        };
        workers.push(tokio::spawn(worker(
            api.clone(),
            base,
            other,
            w,
            Arc::clone(&managers),
            end,
            Duration::from_secs(seconds),
            Arc::clone(&deletes),
            Arc::clone(&deactivations),
            Arc::clone(&tripped),
        )));
    }

    // Half-way: policy edited on a, SIGHUP: both report the mismatch.
    tokio::time::sleep_until((started + Duration::from_secs(seconds / 2)).into()).await;
    std::fs::write(&a.policy, &p2).unwrap();
    a.signal("-HUP");
    for base in [&ba, &bb] {
        until(
            "policy mismatch on both replicas",
            Duration::from_secs(30),
            || {
                let (api, base) = (api.clone(), base.clone());
                async move {
                    let r = api.readyz(&base).await;
                    (r["replica"]["policyDigestMismatch"] == true).then_some(())
                }
            },
        )
        .await;
        until("the mismatch metric", Duration::from_secs(30), || {
            let (api, base) = (api.clone(), base.clone());
            async move {
                (api.metric(&base, "custodian_policy_digest_mismatch").await == Some(1.0))
                    .then_some(())
            }
        })
        .await;
    }
    let r = api.readyz(&ba).await;
    assert_ne!(r["replica"]["policyDigest"], digest_1.as_str(), "{r}");
    assert!(
        r["replica"]["warnings"][0]
            .as_str()
            .is_some_and(|w| w.contains("policy digest mismatch")),
        "{r}"
    );
    // The other replica gets the same file: the mismatch clears on both.
    std::fs::write(&b.policy, &p2).unwrap();
    b.signal("-HUP");
    for base in [&ba, &bb] {
        until("the mismatch cleared", Duration::from_secs(30), || {
            let (api, base) = (api.clone(), base.clone());
            async move {
                let r = api.readyz(&base).await;
                let m = api.metric(&base, "custodian_policy_digest_mismatch").await;
                (r["replica"]["policyDigestMismatch"] == false
                    && r["replica"]["live"].as_array().map_or(0, Vec::len) == 2
                    && m == Some(0.0))
                .then_some(())
            }
        })
        .await;
    }

    // Two thirds of the way in: the mass deactivation, half through each replica.
    tokio::time::sleep_until((started + Duration::from_secs(seconds * 2 / 3)).into()).await;
    let mut mass = Vec::new();
    for (k, id) in cohort.iter().enumerate() {
        let (api, base, id) = (
            api.clone(),
            if k % 2 == 0 { ba.clone() } else { bb.clone() },
            id.clone(),
        );
        mass.push(tokio::spawn(async move {
            api.set_active(&base, &id, false).await
        }));
    }
    for m in mass {
        let s = m.await.unwrap();
        assert!(s == 200 || s == 204, "mass deactivation: {s}");
    }
    tripped.store(true, Ordering::Relaxed);

    let mut ops = 0;
    for w in workers {
        ops += w.await.expect("worker");
    }
    let load_secs = started.elapsed().as_secs_f64();
    let load_requests = total(&api) - before_load;

    // Drain: every due schedule run (grace expiry passes every 30 s per replica).
    until(
        "no scheduled disposal left",
        Duration::from_secs(90),
        || {
            let api = api.clone();
            let base = ba.clone();
            async move {
                let (s, v) = api
                    .call(
                        &base,
                        &api.admin.clone(),
                        reqwest::Method::GET,
                        "/admin/v1/disposals?state=scheduled&count=1",
                        None,
                    )
                    .await;
                (s == 200 && v["Resources"].as_array().is_some_and(Vec::is_empty)).then_some(())
            }
        },
    )
    .await;
    // Every event delivered to both endpoints.
    let feed = api.feed(&ba).await;
    let feed_ids: BTreeSet<String> = feed
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    for (name, hook) in [("a", &hook_a), ("b", &hook_b)] {
        until(
            &format!("endpoint {name} caught up"),
            Duration::from_secs(120),
            || {
                let got: BTreeSet<String> = hook.accepted().into_iter().map(|d| d.id).collect();
                let done = feed_ids.is_subset(&got);
                async move { done.then_some(()) }
            },
        )
        .await;
    }
    let drained_secs = started.elapsed().as_secs_f64();

    // --- Deliveries: at least once, in seq order per endpoint.
    let by_id: HashMap<&str, i64> = feed
        .iter()
        .map(|e| (e["id"].as_str().unwrap(), e["seq"].as_i64().unwrap()))
        .collect();
    let mut redelivered = BTreeMap::new();
    let mut lag = BTreeMap::new();
    for (name, hook) in [("a", &hook_a), ("b", &hook_b)] {
        let got = hook.accepted();
        let mut high = 0i64;
        let mut seen = BTreeSet::new();
        for d in &got {
            assert_eq!(
                by_id.get(d.id.as_str()),
                Some(&d.seq),
                "endpoint {name}: {d:?} is not in the feed as sent"
            );
            assert!(
                d.seq >= high || seen.contains(&d.seq),
                "endpoint {name}: seq {} delivered after seq {high} (reordered)",
                d.seq
            );
            // A repeat is a redelivery of an event already received, never a new one out of order.
            if d.seq < high {
                assert!(
                    seen.contains(&d.seq),
                    "endpoint {name}: seq {} out of order",
                    d.seq
                );
            }
            high = high.max(d.seq);
            seen.insert(d.seq);
        }
        redelivered.insert(name, got.len() - seen.len());
        // Delivery lag of each event's first accepted delivery.
        let mut first: HashMap<&str, i64> = HashMap::new();
        for d in &got {
            first.entry(d.id.as_str()).or_insert(d.lag_ms);
        }
        let mut lags: Vec<i64> = first.into_values().collect();
        lags.sort_unstable();
        let at = |q: f64| {
            lags.get(((lags.len() as f64 - 1.0) * q).round() as usize)
                .copied()
                .unwrap_or(0)
        };
        lag.insert(name, (at(0.5), at(0.99), lags.last().copied().unwrap_or(0)));
    }
    let failed_b = hook_b
        .got
        .lock()
        .unwrap()
        .iter()
        .filter(|d| d.status == 500)
        .count();
    assert!(failed_b > 0, "endpoint b answered some 500s");

    // --- Disposals: each once; the brake at its limit over both replicas.
    let disposals = api.disposals(&ba).await;
    let done: Vec<&Value> = disposals.iter().filter(|d| d["state"] == "done").collect();
    let held = disposals.iter().filter(|d| d["state"] == "held").count();
    let mut per_user: HashMap<&str, usize> = HashMap::new();
    for d in &done {
        *per_user.entry(d["userId"].as_str().unwrap()).or_default() += 1;
    }
    assert!(
        per_user.values().all(|n| *n == 1),
        "a person disposed twice: {per_user:?}"
    );
    assert_eq!(
        done.len(),
        BRAKE,
        "the brake holds the {}th disposal of the hour, counted over both replicas (held: {held})",
        BRAKE + 1
    );
    // The cohort alone asked for MASS disposals; at most BRAKE ran.
    assert!(held >= MASS - BRAKE, "held: {held}");
    let disposed_events: Vec<&Value> = feed
        .iter()
        .filter(|e| e["type"] == "user.disposed")
        .collect();
    let event_ids: BTreeSet<&str> = disposed_events
        .iter()
        .map(|e| e["data"]["disposalId"].as_str().unwrap())
        .collect();
    assert_eq!(
        disposed_events.len(),
        BRAKE,
        "one user.disposed per disposal"
    );
    let done_ids: BTreeSet<&str> = done.iter().map(|d| d["id"].as_str().unwrap()).collect();
    assert_eq!(event_ids, done_ids);
    let tripped_events = feed.iter().filter(|e| e["type"] == "brake.tripped").count();
    assert_eq!(tripped_events, 1, "the brake tripped once");
    for id in done_ids.iter().take(5) {
        let (s, v) = api
            .call(
                &bb,
                &api.admin.clone(),
                reqwest::Method::GET,
                &format!("/admin/v1/disposals/{id}"),
                None,
            )
            .await;
        assert_eq!(s, 200, "receipt {id}: {v}");
    }
    // The shared journal: one `disposed` line per completed disposal.
    let journal = std::fs::read_to_string(dir.path().join("journal.jsonl")).unwrap();
    let mut journaled: HashMap<String, usize> = HashMap::new();
    for line in journal.lines() {
        let v: Value = serde_json::from_str(line).unwrap_or_default();
        if v["type"] == "disposed" {
            *journaled
                .entry(v["disposal_id"].as_str().unwrap_or_default().to_string())
                .or_default() += 1;
        }
    }
    assert_eq!(journaled.len(), BRAKE, "journal: {journaled:?}");
    assert!(
        journaled.values().all(|n| *n == 1),
        "journal: {journaled:?}"
    );
    assert!(journaled.keys().all(|k| done_ids.contains(k.as_str())));

    // --- No 5xx, nothing dropped.
    let statuses = api.statuses.lock().unwrap().clone();
    assert!(statuses.keys().all(|s| *s < 500), "answers: {statuses:?}");
    assert_eq!(
        api.dropped.load(Ordering::Relaxed),
        0,
        "requests without an answer"
    );

    // Grace expiry ran on which schedulers (logged per pass).
    let ran = |log: &str| {
        log.lines()
            .filter(|l| l.contains("scheduled disposals ran"))
            .count()
    };
    let (ran_a, ran_b) = (ran(&a.log()), ran(&b.log()));
    assert!(ran_a + ran_b > 0, "grace expiry disposed nobody");
    if seconds >= 60 {
        // Deactivations fall due through 40 s while the schedulers take turns
        // every 15 s: both dispose.
        assert!(
            ran_a > 0 && ran_b > 0,
            "grace expiry on both schedulers: a {ran_a}, b {ran_b}"
        );
    }

    // A clean stop leaves the registry at once.
    assert!(a.stop().is_some_and(|s| s.success()), "a exits 0");
    let (s, v) = api
        .call(
            &bb,
            &api.admin.clone(),
            reqwest::Method::GET,
            "/admin/v1/replicas",
            None,
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(v["live"], 1, "a left the registry on SIGTERM: {v}");
    assert!(b.stop().is_some_and(|s| s.success()), "b exits 0");

    let requests: usize = statuses.values().sum();
    let errors: usize = statuses
        .iter()
        .filter(|(s, _)| **s >= 500)
        .map(|(_, n)| n)
        .sum();
    eprintln!(
        "replica soak: {seconds} s of load ({load_secs:.1} s), drained at {drained_secs:.1} s\n  \
         driver: {ops} operations, {load_requests} requests under load ({:.0} req/s over both replicas; {requests} in all), 5xx {errors}, dropped 0; by status {statuses:?}\n  \
         events: {} in the feed; endpoint a: {} redelivered, lag p50/p99/max {:?} ms; \
         endpoint b (every 25th answered 500, {failed_b} in all): {} redelivered, lag p50/p99/max {:?} ms\n  \
         disposals: done {} (the brake's limit {BRAKE}), held {held}; grace-expiry passes that disposed: a {ran_a}, b {ran_b}",
        load_requests as f64 / load_secs,
        feed.len(),
        redelivered["a"],
        lag["a"],
        redelivered["b"],
        lag["b"],
        done.len(),
    );
}

/// The rolling-upgrade rule (README "Upgrade") on the real binary: a replica
/// keeps serving while a newer release applies an expand migration, starts
/// again on the expanded schema (a restart or a rollback mid-rollout), and
/// refuses to start once a migration it does not know contracted the schema.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_rolling_upgrade_expand_keeps_an_older_replica_contract_stops_it() {
    let Some(base_url) = common::pg_url() else {
        eprintln!("CUSTODIAN_TEST_PG_URL not set: PostgreSQL tier (rolling upgrade) not run");
        return;
    };
    let db = FreshDb::create(&base_url);
    let dir = tempfile::tempdir().expect("tempdir");
    let text = policy(free_port(), free_port(), false);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let ready = |serve: &Serve| {
        let (h, u) = (http.clone(), serve.base());
        async move {
            until("ready", Duration::from_secs(60), || {
                let (h, u) = (h.clone(), u.clone());
                async move {
                    let r = h.get(format!("{u}/readyz")).send().await.ok()?;
                    (r.status() == 200).then_some(())
                }
            })
            .await
        }
    };
    let mut n = Serve::start("n", dir.path(), &db.url, &text);
    ready(&n).await;
    let token = n.token("up", "scim");
    let create = |base: String, name: &'static str| {
        let (h, t) = (http.clone(), token.clone());
        async move {
            h.post(format!("{base}/scim/v2/Users"))
                .bearer_auth(t)
                .header("Content-Type", "application/scim+json")
                .body(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": name}).to_string())
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0)
        }
    };
    assert_eq!(create(n.base(), "before@up.example").await, 201);

    // Release N+1 migrates (what its `serve` would do under the advisory
    // lock): a new nullable column and a new table, recorded as applied.
    let mut c = PgConnection::establish(&db.url).expect("connect");
    c.batch_execute(
        "ALTER TABLE users ADD COLUMN next_release_note TEXT;
         CREATE TABLE next_release_things (id TEXT PRIMARY KEY NOT NULL);
         INSERT INTO __diesel_schema_migrations (version) VALUES ('29990101000000');",
    )
    .expect("expand");
    // N keeps serving, reads and writes.
    assert_eq!(create(n.base(), "during@up.example").await, 201);
    // And N starts again on the expanded schema (a restart mid-rollout, or
    // a rollback to N), saying why it runs on a schema newer than it knows.
    assert!(n.stop().is_some_and(|s| s.success()));
    let n2 = Serve::start("n2", dir.path(), &db.url, &text);
    ready(&n2).await;
    assert_eq!(create(n2.base(), "after@up.example").await, 201);
    assert!(
        n2.log().contains("29990101000000") && n2.log().contains("rolling upgrade"),
        "{}",
        n2.log()
    );
    drop(n2);

    // A later release contracts (drops what N uses): N must not start.
    c.batch_execute(
        "INSERT INTO __diesel_schema_migrations (version) VALUES ('29990201000000');
         INSERT INTO deployment_keys (name, check_value, created_at)
             VALUES ('schema_contracted_by', '29990201000000', '2999-02-01T00:00:00.000000Z');",
    )
    .expect("contract");
    let out = Serve::command(dir.path(), &db.url, &dir.path().join("policy-n.toml"))
        .args(["serve", "--bind", &format!("127.0.0.1:{}", free_port())])
        .output()
        .expect("serve");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("29990201000000") && err.contains("contracts the schema"),
        "{err}"
    );
}

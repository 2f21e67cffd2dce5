//! Test harness: a real Custodian on a real port over a fresh database —
//! a temp-file SQLite, or a fresh PostgreSQL schema when CUSTODIAN_TEST_PG_URL is set.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use custodian::auth::{Scope, create_token};
use custodian::clock::ManualClock;
use custodian::deprovision::policy::{self, PolicySet};
use custodian::deprovision::service::Deprov;
use custodian::deprovision::setup;
use custodian::deprovision::tombstone::TombstoneKeys;
use std::sync::Arc;

pub const TEST_TOMBSTONE_KEY: &str =
    "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
use custodian::config::Settings;
use custodian::http::{AppState, server};
use custodian::store::Db;
use diesel::Connection;
use diesel::connection::SimpleConnection;
use secrecy::SecretString;
use std::net::TcpListener;

pub mod python;
/// The real diesel schema (private to the store in the crate), for tests that
/// check rows directly.
#[path = "../../src/store/schema.rs"]
pub mod schema;
pub mod sql;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub fn pg_url() -> Option<String> {
    std::env::var("CUSTODIAN_TEST_PG_URL")
        .ok()
        .filter(|u| !u.is_empty())
}

/// Keeps the database alive for the app's lifetime and removes it afterwards.
enum DbGuard {
    Sqlite(tempfile::TempDir),
    Postgres { base_url: String, schema: String },
}

impl Drop for DbGuard {
    fn drop(&mut self) {
        if let DbGuard::Postgres { base_url, schema } = self
            && let Ok(mut c) = diesel::PgConnection::establish(base_url)
        {
            let _ = c.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"));
        }
    }
}

pub struct TestApp {
    pub addr: String,
    pub scim_url: String,
    pub token: String,
    pub db: Db,
    pub db_url: String,
    pub client: reqwest::Client,
    pub deprov: Arc<Deprov>,
    pub clock: Arc<ManualClock>,
    /// The server's SCIM/admin and gate budgets (to see who runs and waits).
    pub limiter: Arc<custodian::http::limiter::Limiter>,
    pub gate_limiter: Arc<custodian::http::limiter::Limiter>,
    /// CPU slots for large renders and parses (`AppState::cpu`).
    pub cpu: Arc<custodian::http::limiter::Limiter>,
    handle: actix_web::dev::ServerHandle,
    _guard: DbGuard,
}

/// A database URL of its own: a temp SQLite file or a new PostgreSQL schema.
fn fresh_database(backend: Backend) -> (String, DbGuard) {
    match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().expect("tempdir");
            let url = format!("sqlite://{}", dir.path().join("custodian.db").display());
            (url, DbGuard::Sqlite(dir))
        }
        Backend::Postgres => {
            let base = pg_url().expect("CUSTODIAN_TEST_PG_URL");
            let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
            let mut c =
                diesel::PgConnection::establish(&base).expect("connect to CUSTODIAN_TEST_PG_URL");
            c.batch_execute(&format!("CREATE SCHEMA {schema}"))
                .expect("create schema");
            let sep = if base.contains('?') { '&' } else { '?' };
            let url = format!("{base}{sep}options=-csearch_path%3D{schema}");
            (
                url,
                DbGuard::Postgres {
                    base_url: base,
                    schema,
                },
            )
        }
    }
}

pub struct Options {
    pub max_in_flight_per_tenant: usize,
    pub max_body_bytes: usize,
    pub bulk_max_operations: usize,
    pub bulk_max_payload_bytes: usize,
    pub public_url: Option<String>,
    pub trust_forwarded_headers: bool,
    /// Deprovisioning policy (TOML); the built-in policy when None.
    pub policy: Option<String>,
    /// Any other setting.
    pub tune: fn(&mut Settings),
}

impl Default for Options {
    fn default() -> Self {
        let s = Settings::default();
        Options {
            max_in_flight_per_tenant: s.max_in_flight_per_tenant,
            max_body_bytes: s.max_body_bytes,
            bulk_max_operations: s.bulk_max_operations,
            bulk_max_payload_bytes: s.bulk_max_payload_bytes,
            public_url: None,
            trust_forwarded_headers: false,
            policy: None,
            tune: |_| {},
        }
    }
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, Options::default()).await
}

pub async fn spawn_app_with(backend: Backend, opts: Options) -> TestApp {
    let (db_url, guard) = fresh_database(backend);
    let db = Db::open(&db_url, 4, true).expect("open database");
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let addr = format!("http://127.0.0.1:{port}");
    let mut settings = Settings {
        database_url: SecretString::from(db_url.clone()),
        bind: format!("127.0.0.1:{port}"),
        workers: Some(2),
        max_in_flight_per_tenant: opts.max_in_flight_per_tenant,
        max_body_bytes: opts.max_body_bytes,
        bulk_max_operations: opts.bulk_max_operations,
        bulk_max_payload_bytes: opts.bulk_max_payload_bytes,
        public_url: opts.public_url.clone(),
        trust_forwarded_headers: opts.trust_forwarded_headers,
        ..Settings::default()
    };
    (opts.tune)(&mut settings);
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let policies = match &opts.policy {
        Some(text) => policy::parse(text, "test-policy.toml").expect("test policy"),
        None => PolicySet::default(),
    };
    let keys = TombstoneKeys::from_spec(TEST_TOMBSTONE_KEY).expect("key");
    setup::check_key(&db, &keys).expect("key check");
    let deprov = Arc::new(Deprov::new(policies, keys, clock.clone()));
    let state = AppState::new(
        db.clone(),
        Arc::clone(&deprov),
        settings,
        opts.public_url.unwrap_or_else(|| addr.clone()),
    );
    let (limiter, gate_limiter, cpu) = (
        state.limiter.clone(),
        state.gate_limiter.clone(),
        state.cpu.clone(),
    );
    // Its own thread and actix System, as `custodian serve` runs it: the server
    // never competes with the test's runtime for scheduling.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let srv = server(state, listener).expect("server");
            tx.send(srv.handle()).expect("send handle");
            let _ = srv.await;
        });
    });
    let handle = rx.recv().expect("server handle");
    let token = create_token(&db, "default", Scope::Scim, "test-idp", None)
        .expect("token")
        .plaintext;
    TestApp {
        scim_url: format!("{addr}/scim/v2"),
        addr,
        token,
        db,
        db_url,
        client: reqwest::Client::new(),
        deprov,
        clock,
        limiter,
        gate_limiter,
        cpu,
        handle,
        _guard: guard,
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // Stop the server thread; its database guard is dropped after this.
        let handle = self.handle.clone();
        std::thread::spawn(move || actix_web::rt::System::new().block_on(handle.stop(false)));
    }
}

/// A server over a fresh PostgreSQL schema, for a PostgreSQL-only test; `None`
/// (and a note) when CUSTODIAN_TEST_PG_URL is unset.
pub async fn postgres_app() -> Option<TestApp> {
    if pg_url().is_none() {
        eprintln!("CUSTODIAN_TEST_PG_URL not set: PostgreSQL tier not run");
        return None;
    }
    Some(spawn_app(Backend::Postgres).await)
}

impl TestApp {
    /// The id of the tenant behind `token` (named "default").
    pub fn default_tenant_id(&self) -> String {
        self.db
            .read(|c| custodian::store::tokens::find_tenant(c, "default"))
            .expect("tenant")
            .expect("exists")
            .id
    }

    /// A fresh, empty tenant and a scim-scope token for it.
    pub async fn new_tenant_token(&self) -> String {
        self.token_for(
            &format!("tenant-{}", uuid::Uuid::new_v4().simple()),
            Scope::Scim,
        )
    }

    /// A token bound to a user (`--acts-as`): the `caller` target of a policy.
    pub fn token_acting_as(&self, tenant: &str, scope: Scope, user_name: &str) -> String {
        create_token(&self.db, tenant, scope, "acting", Some(user_name))
            .expect("token")
            .plaintext
    }

    /// Whether `needle` occurs anywhere in the stored data: every row of every
    /// table on PostgreSQL; the database file itself on SQLite (after a checkpoint).
    pub fn database_contains(&self, needle: &str) -> bool {
        if let Some(path) = self.db_url.strip_prefix("sqlite://") {
            self.db.checkpoint();
            let mut hay = std::fs::read(path).expect("read db");
            if let Ok(wal) = std::fs::read(format!("{path}-wal")) {
                hay.extend(wal);
            }
            let lower: Vec<u8> = hay.iter().map(u8::to_ascii_lowercase).collect();
            let n = needle.to_ascii_lowercase();
            return lower.windows(n.len()).any(|w| w == n.as_bytes());
        }
        #[derive(diesel::QueryableByName)]
        struct T {
            #[diesel(sql_type = diesel::sql_types::Text)]
            t: String,
        }
        #[derive(diesel::QueryableByName)]
        struct N {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        use diesel::RunQueryDsl;
        let mut c = diesel::PgConnection::establish(&self.db_url).expect("pg");
        let tables: Vec<T> = diesel::sql_query("SELECT table_name::text AS t FROM information_schema.tables WHERE table_schema = current_schema()")
            .load(&mut c)
            .expect("tables");
        tables.iter().any(|t| {
            let q = format!(
                "SELECT COUNT(*) AS n FROM {} x WHERE lower(x::text) LIKE '%' || lower($1) || '%'",
                t.t
            );
            diesel::sql_query(q)
                .bind::<diesel::sql_types::Text, _>(needle)
                .load::<N>(&mut c)
                .expect("scan")
                .first()
                .is_some_and(|r| r.n > 0)
        })
    }

    pub fn token_for(&self, tenant: &str, scope: Scope) -> String {
        create_token(&self.db, tenant, scope, "test", None)
            .expect("token")
            .plaintext
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.scim_url, path)
    }

    pub fn req(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, self.url(path))
            .bearer_auth(&self.token)
            .header("Content-Type", "application/scim+json")
    }

    pub async fn stop(&self) {
        self.handle.stop(true).await;
    }
}

/// Generates a `sqlite` and a `postgres` test from one async body taking the backend.
/// The PostgreSQL variant returns early (and says so) when CUSTODIAN_TEST_PG_URL is unset.
#[macro_export]
macro_rules! both_backends {
    ($name:ident, $body:path) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                $body($crate::common::Backend::Sqlite).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if $crate::common::pg_url().is_none() {
                    eprintln!("CUSTODIAN_TEST_PG_URL not set: PostgreSQL tier not run");
                    return;
                }
                $body($crate::common::Backend::Postgres).await;
            }
        }
    };
}

/// The body of the HTTP/1.1 request on `stream` (headers read up to the blank
/// line, then `Content-Length` bytes), for the tests' one-shot receivers.
pub fn request_body(stream: &std::net::TcpStream) -> Vec<u8> {
    use std::io::{BufRead, BufReader, Read};
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut len = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0u8; len];
    reader.read_exact(&mut body).ok();
    body
}

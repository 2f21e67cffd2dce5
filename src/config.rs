//! Configuration: built-in defaults → optional TOML file → the documented
//! `CUSTODIAN_*` variables, validated once at start. Unknown keys in the file are
//! errors naming the key and line. Every key has exactly one variable, listed in
//! `KEYS` (containers mount no file); every other environment variable is
//! ignored (Kubernetes injects `CUSTODIAN_PORT=tcp://…` for a Service named
//! custodian).

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use std::path::{Path, PathBuf};

pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/custodian.db";
pub const DEFAULT_BIND: &str = "127.0.0.1:8080";
pub const DEFAULT_CONFIG_FILE: &str = "custodian.toml";
/// `event_retention`'s default: 30 days.
pub const DEFAULT_EVENT_RETENTION: std::time::Duration =
    std::time::Duration::from_secs(30 * 86_400);

/// `console_idle_timeout`'s default: 30 minutes.
pub const DEFAULT_CONSOLE_IDLE_TIMEOUT: std::time::Duration =
    std::time::Duration::from_secs(30 * 60);

/// The config file's location; every other variable Custodian reads is a key's
/// (`KEYS`).
pub const ENV_CONFIG: &str = "CUSTODIAN_CONFIG";

/// How a variable's text becomes the key's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    Number,
    Bool,
}

/// Every key of the config file with its one environment variable, and only
/// these variables are read. The README's configuration table names the same
/// (a test checks the file's keys, this list and the README agree).
pub const KEYS: &[(&str, &str, Kind)] = &[
    ("database_url", "CUSTODIAN_DATABASE_URL", Kind::Text),
    ("bind", "CUSTODIAN_BIND", Kind::Text),
    ("public_url", "CUSTODIAN_PUBLIC_URL", Kind::Text),
    ("policy_file", "CUSTODIAN_POLICY_FILE", Kind::Text),
    ("tombstone_key", "CUSTODIAN_TOMBSTONE_KEY", Kind::Text),
    ("log", "CUSTODIAN_LOG", Kind::Text),
    ("log_format", "CUSTODIAN_LOG_FORMAT", Kind::Text),
    (
        "trust_forwarded_headers",
        "CUSTODIAN_TRUST_FORWARDED_HEADERS",
        Kind::Bool,
    ),
    ("pool_size", "CUSTODIAN_POOL_SIZE", Kind::Number),
    (
        "gate_connections",
        "CUSTODIAN_GATE_CONNECTIONS",
        Kind::Number,
    ),
    (
        "tenant_connection_share",
        "CUSTODIAN_TENANT_CONNECTION_SHARE",
        Kind::Number,
    ),
    (
        "max_in_flight_per_tenant",
        "CUSTODIAN_MAX_IN_FLIGHT_PER_TENANT",
        Kind::Number,
    ),
    (
        "retry_after_seconds",
        "CUSTODIAN_RETRY_AFTER_SECONDS",
        Kind::Number,
    ),
    (
        "overload_delay_ms",
        "CUSTODIAN_OVERLOAD_DELAY_MS",
        Kind::Number,
    ),
    (
        "request_deadline_ms",
        "CUSTODIAN_REQUEST_DEADLINE_MS",
        Kind::Number,
    ),
    (
        "pg_statement_timeout_ms",
        "CUSTODIAN_PG_STATEMENT_TIMEOUT_MS",
        Kind::Number,
    ),
    (
        "pg_lock_timeout_ms",
        "CUSTODIAN_PG_LOCK_TIMEOUT_MS",
        Kind::Number,
    ),
    (
        "long_write_timeout_ms",
        "CUSTODIAN_LONG_WRITE_TIMEOUT_MS",
        Kind::Number,
    ),
    ("max_body_bytes", "CUSTODIAN_MAX_BODY_BYTES", Kind::Number),
    (
        "max_group_body_bytes",
        "CUSTODIAN_MAX_GROUP_BODY_BYTES",
        Kind::Number,
    ),
    (
        "bulk_max_operations",
        "CUSTODIAN_BULK_MAX_OPERATIONS",
        Kind::Number,
    ),
    (
        "bulk_max_payload_bytes",
        "CUSTODIAN_BULK_MAX_PAYLOAD_BYTES",
        Kind::Number,
    ),
    (
        "max_resource_bytes",
        "CUSTODIAN_MAX_RESOURCE_BYTES",
        Kind::Number,
    ),
    ("max_list_bytes", "CUSTODIAN_MAX_LIST_BYTES", Kind::Number),
    ("workers", "CUSTODIAN_WORKERS", Kind::Number),
    (
        "auth_max_concurrent_verifications",
        "CUSTODIAN_AUTH_MAX_CONCURRENT_VERIFICATIONS",
        Kind::Number,
    ),
    (
        "auth_max_failures_per_token",
        "CUSTODIAN_AUTH_MAX_FAILURES_PER_TOKEN",
        Kind::Number,
    ),
    (
        "auth_max_failures_per_address",
        "CUSTODIAN_AUTH_MAX_FAILURES_PER_ADDRESS",
        Kind::Number,
    ),
    (
        "auth_failure_window_seconds",
        "CUSTODIAN_AUTH_FAILURE_WINDOW_SECONDS",
        Kind::Number,
    ),
    (
        "webhook_timeout_seconds",
        "CUSTODIAN_WEBHOOK_TIMEOUT_SECONDS",
        Kind::Number,
    ),
    (
        "webhook_max_concurrent_deliveries",
        "CUSTODIAN_WEBHOOK_MAX_CONCURRENT_DELIVERIES",
        Kind::Number,
    ),
    (
        "webhook_retry_base_seconds",
        "CUSTODIAN_WEBHOOK_RETRY_BASE_SECONDS",
        Kind::Number,
    ),
    (
        "webhook_retry_max_seconds",
        "CUSTODIAN_WEBHOOK_RETRY_MAX_SECONDS",
        Kind::Number,
    ),
    (
        "webhook_pause_after_seconds",
        "CUSTODIAN_WEBHOOK_PAUSE_AFTER_SECONDS",
        Kind::Number,
    ),
    ("metrics_bind", "CUSTODIAN_METRICS_BIND", Kind::Text),
    (
        "metrics_tenant_labels",
        "CUSTODIAN_METRICS_TENANT_LABELS",
        Kind::Bool,
    ),
    (
        "shutdown_timeout",
        "CUSTODIAN_SHUTDOWN_TIMEOUT",
        Kind::Number,
    ),
    ("journal_path", "CUSTODIAN_JOURNAL_PATH", Kind::Text),
    ("event_retention", "CUSTODIAN_EVENT_RETENTION", Kind::Text),
    ("console", "CUSTODIAN_CONSOLE", Kind::Bool),
    (
        "console_idle_timeout",
        "CUSTODIAN_CONSOLE_IDLE_TIMEOUT",
        Kind::Text,
    ),
    ("listen_url", "CUSTODIAN_LISTEN_URL", Kind::Text),
    (
        "revocation_ttl_ms",
        "CUSTODIAN_REVOCATION_TTL_MS",
        Kind::Number,
    ),
    (
        "blocking_thread_nice",
        "CUSTODIAN_BLOCKING_THREAD_NICE",
        Kind::Number,
    ),
    (
        "prepared_statements",
        "CUSTODIAN_PREPARED_STATEMENTS",
        Kind::Bool,
    ),
];

#[derive(Clone)]
pub struct Settings {
    /// May hold a password: never printed.
    pub database_url: SecretString,
    pub bind: String,
    /// Base for every URL Custodian emits (`Location`, `meta.location`).
    pub public_url: Option<String>,
    pub trust_forwarded_headers: bool,
    pub policy_file: Option<PathBuf>,
    pub tombstone_key: Option<SecretString>,
    pub log: String,
    pub log_format: LogFormat,
    pub pool_size: u32,
    /// Connections for `/gate/v1/check`, in addition to `pool_size` (SCIM and
    /// admin); 0: the backend's default (`gate_connections()`).
    pub gate_connections: u32,
    /// Connections one tenant's requests may hold at once in each budget;
    /// 0: half the budget's connections (at least one).
    pub tenant_connection_share: u32,
    /// Requests per tenant and budget, running or waiting in the tenant's
    /// queue, before 429.
    pub max_in_flight_per_tenant: usize,
    /// The longest a request waits for its turn, a connection or SQLite's
    /// writer before 503.
    pub request_deadline_ms: u64,
    /// PostgreSQL `statement_timeout` / `lock_timeout` (0: none).
    pub pg_statement_timeout_ms: u64,
    pub pg_lock_timeout_ms: u64,
    /// Disposals, imports and scheduler passes (`Db::write_long`); 0: none.
    pub long_write_timeout_ms: u64,
    pub retry_after_seconds: u32,
    /// A 429 for a tenant over `max_in_flight_per_tenant` is answered after
    /// this long (0: at once), so instant retries cannot flood the CPU.
    pub overload_delay_ms: u64,
    pub max_body_bytes: usize,
    /// A Group PUT carries the whole member list (Okta), so it gets more room.
    pub max_group_body_bytes: usize,
    /// `/Bulk`: operations per request (advertised as `maxOperations`).
    pub bulk_max_operations: usize,
    /// `/Bulk`: body limit in bytes (advertised as `maxPayloadSize`).
    pub bulk_max_payload_bytes: usize,
    /// A stored resource's canonical JSON (a group's without `members`).
    pub max_resource_bytes: usize,
    /// A list answer's stored documents (`scim::resource::Limits`).
    pub max_list_bytes: usize,
    pub workers: Option<usize>,
    /// argon2 token verifications running at once (all callers).
    pub auth_max_concurrent_verifications: usize,
    /// Failed verifications of one token id per window before it is locked.
    pub auth_max_failures_per_token: u32,
    /// Failed verifications from one client address per window before it is
    /// locked; 0 turns the per-address limit off.
    pub auth_max_failures_per_address: u32,
    pub auth_failure_window_seconds: u64,
    /// Per-request timeout of a webhook delivery.
    pub webhook_timeout_seconds: u64,
    /// Webhook endpoints delivered to at once (each on its own thread).
    pub webhook_max_concurrent_deliveries: usize,
    /// A failing endpoint's first retry delay; each further one doubles.
    pub webhook_retry_base_seconds: u64,
    /// The longest retry delay (before jitter).
    pub webhook_retry_max_seconds: u64,
    /// A failing endpoint is paused once its retries span this long.
    pub webhook_pause_after_seconds: u64,
    /// A second listener serving `/metrics` without a token (management
    /// network only); none by default.
    pub metrics_bind: Option<String>,
    /// Adds a `tenant` label (the tenant's name) to per-tenant metrics.
    pub metrics_tenant_labels: bool,
    /// Seconds to finish in-flight requests and background passes after
    /// SIGTERM or SIGINT.
    pub shutdown_timeout: u64,
    /// The disposal journal (`crate::journal`). SQLite default: beside the
    /// database; PostgreSQL: none unless set.
    pub journal_path: Option<PathBuf>,
    /// Events older than this are deleted from the outbox.
    pub event_retention: std::time::Duration,
    /// Serve the admin console at `/console/` (`http::console`).
    pub console: bool,
    /// A console session unused this long ends.
    pub console_idle_timeout: std::time::Duration,
    /// PostgreSQL: where each replica listens for token revocations (a
    /// direct connection, not a transaction-mode pooler); `None`: the
    /// database URL. May hold a password: never printed.
    pub listen_url: Option<SecretString>,
    /// PostgreSQL: how long a token read live is trusted while the listener
    /// is not connected (0..=1000).
    pub revocation_ttl_ms: u64,
    /// The CPU priority (nice, 0–19) of blocking-pool threads, below the
    /// HTTP workers' (`http::blocking`); SQLite only (`http::blocking_nice`).
    pub blocking_thread_nice: u8,
    /// PostgreSQL: named prepared statements and session settings (true);
    /// false behind a transaction-mode pooler (`store::Db::open_with`).
    pub prepared_statements: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field(
                "database_url",
                &redact_url(self.database_url.expose_secret()),
            )
            .field("bind", &self.bind)
            .field("public_url", &self.public_url)
            .field("trust_forwarded_headers", &self.trust_forwarded_headers)
            .field("policy_file", &self.policy_file)
            .field(
                "tombstone_key",
                &self.tombstone_key.as_ref().map(|_| "[redacted]"),
            )
            .field("log", &self.log)
            .field("log_format", &self.log_format)
            .field("workers", &self.workers)
            .field("pool_size", &self.pool_size)
            .field("gate_connections", &self.gate_connections)
            .field("tenant_connection_share", &self.tenant_connection_share)
            .field("max_in_flight_per_tenant", &self.max_in_flight_per_tenant)
            .field("request_deadline_ms", &self.request_deadline_ms)
            .field("overload_delay_ms", &self.overload_delay_ms)
            .field("retry_after_seconds", &self.retry_after_seconds)
            .field("pg_statement_timeout_ms", &self.pg_statement_timeout_ms)
            .field("pg_lock_timeout_ms", &self.pg_lock_timeout_ms)
            .field("long_write_timeout_ms", &self.long_write_timeout_ms)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("max_group_body_bytes", &self.max_group_body_bytes)
            .field("bulk_max_operations", &self.bulk_max_operations)
            .field("bulk_max_payload_bytes", &self.bulk_max_payload_bytes)
            .field(
                "auth_max_concurrent_verifications",
                &self.auth_max_concurrent_verifications,
            )
            .field(
                "auth_max_failures_per_token",
                &self.auth_max_failures_per_token,
            )
            .field(
                "auth_max_failures_per_address",
                &self.auth_max_failures_per_address,
            )
            .field(
                "auth_failure_window_seconds",
                &self.auth_failure_window_seconds,
            )
            .field("webhook_timeout_seconds", &self.webhook_timeout_seconds)
            .field(
                "webhook_max_concurrent_deliveries",
                &self.webhook_max_concurrent_deliveries,
            )
            .field(
                "webhook_retry_base_seconds",
                &self.webhook_retry_base_seconds,
            )
            .field("webhook_retry_max_seconds", &self.webhook_retry_max_seconds)
            .field(
                "webhook_pause_after_seconds",
                &self.webhook_pause_after_seconds,
            )
            .field("max_resource_bytes", &self.max_resource_bytes)
            .field("max_list_bytes", &self.max_list_bytes)
            .field("metrics_bind", &self.metrics_bind)
            .field("metrics_tenant_labels", &self.metrics_tenant_labels)
            .field("shutdown_timeout", &self.shutdown_timeout)
            .field("journal_path", &self.journal_path)
            .field(
                "event_retention",
                &humantime::format_duration(self.event_retention).to_string(),
            )
            .field("console", &self.console)
            .field(
                "console_idle_timeout",
                &humantime::format_duration(self.console_idle_timeout).to_string(),
            )
            .field(
                "listen_url",
                &self
                    .listen_url
                    .as_ref()
                    .map(|u| redact_url(u.expose_secret())),
            )
            .field("revocation_ttl_ms", &self.revocation_ttl_ms)
            .field("blocking_thread_nice", &self.blocking_thread_nice)
            .field("prepared_statements", &self.prepared_statements)
            .finish()
    }
}

/// `postgres://user:pw@host/db` → `postgres://user:[redacted]@host/db`.
pub fn redact_url(url: &str) -> String {
    // The credentials end at the last '@' of the authority (a password may
    // hold a raw '@'); libpq also takes `?password=` in the query.
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let mut out = match base.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((creds, host)) => match creds.split_once(':') {
                Some((user, _)) => format!("{scheme}://{user}:[redacted]@{host}"),
                None => base.to_string(),
            },
            None => base.to_string(),
        },
        None => base.to_string(),
    };
    if let Some(q) = query {
        let params: Vec<String> = q
            .split('&')
            .map(|p| match p.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=[redacted]"),
                _ => p.to_string(),
            })
            .collect();
        out.push('?');
        out.push_str(&params.join("&"));
    }
    out
}

/// The gate's connections by default. A gate check is one short read; on
/// PostgreSQL each is a network round trip, so more of them must be in
/// flight to keep the cores busy: at 4 (2 per tenant) the gate ran 7,800
/// checks/s on PostgreSQL on a loaded box, at 8 10,150 (BENCHMARKS.md
/// "Round 6").
pub const GATE_CONNECTIONS_SQLITE: u32 = 4;
pub const GATE_CONNECTIONS_POSTGRES: u32 = 8;

impl Default for Settings {
    fn default() -> Self {
        Settings {
            database_url: SecretString::from(DEFAULT_DATABASE_URL),
            bind: DEFAULT_BIND.into(),
            public_url: None,
            trust_forwarded_headers: false,
            policy_file: None,
            tombstone_key: None,
            log: "info".into(),
            log_format: LogFormat::Text,
            // Two shares of 8: one tenant alone keeps the write-group depth it had
            // with the whole pool of 8 (create throughput fell ~25% at 4).
            pool_size: 16,
            gate_connections: 0,
            tenant_connection_share: 0,
            max_in_flight_per_tenant: 64,
            request_deadline_ms: 10_000,
            pg_statement_timeout_ms: 30_000,
            pg_lock_timeout_ms: 10_000,
            long_write_timeout_ms: 0,
            retry_after_seconds: 2,
            overload_delay_ms: 100,
            max_body_bytes: 1024 * 1024,
            max_group_body_bytes: 16 * 1024 * 1024,
            bulk_max_operations: 1000,
            bulk_max_payload_bytes: 1024 * 1024,
            max_resource_bytes: crate::scim::resource::DEFAULT_MAX_RESOURCE_BYTES,
            max_list_bytes: crate::scim::resource::DEFAULT_MAX_LIST_BYTES,
            workers: None,
            auth_max_concurrent_verifications: 4,
            auth_max_failures_per_token: 10,
            auth_max_failures_per_address: 100,
            auth_failure_window_seconds: 60,
            webhook_timeout_seconds: 10,
            webhook_max_concurrent_deliveries: 16,
            webhook_retry_base_seconds: 30,
            webhook_retry_max_seconds: 3_600,
            webhook_pause_after_seconds: 86_400,
            metrics_bind: None,
            metrics_tenant_labels: false,
            shutdown_timeout: 30,
            journal_path: None,
            event_retention: DEFAULT_EVENT_RETENTION,
            console: true,
            console_idle_timeout: DEFAULT_CONSOLE_IDLE_TIMEOUT,
            listen_url: None,
            revocation_ttl_ms: 1000,
            blocking_thread_nice: 10,
            prepared_statements: true,
        }
    }
}

/// The file's shape: every key optional, unknown keys rejected.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    database_url: Option<String>,
    bind: Option<String>,
    public_url: Option<String>,
    trust_forwarded_headers: Option<bool>,
    policy_file: Option<PathBuf>,
    tombstone_key: Option<String>,
    log: Option<String>,
    log_format: Option<LogFormat>,
    pool_size: Option<u32>,
    gate_connections: Option<u32>,
    tenant_connection_share: Option<u32>,
    max_in_flight_per_tenant: Option<usize>,
    request_deadline_ms: Option<u64>,
    pg_statement_timeout_ms: Option<u64>,
    pg_lock_timeout_ms: Option<u64>,
    long_write_timeout_ms: Option<u64>,
    retry_after_seconds: Option<u32>,
    overload_delay_ms: Option<u64>,
    max_body_bytes: Option<usize>,
    max_group_body_bytes: Option<usize>,
    bulk_max_operations: Option<usize>,
    bulk_max_payload_bytes: Option<usize>,
    max_resource_bytes: Option<usize>,
    max_list_bytes: Option<usize>,
    workers: Option<usize>,
    auth_max_concurrent_verifications: Option<usize>,
    auth_max_failures_per_token: Option<u32>,
    auth_max_failures_per_address: Option<u32>,
    auth_failure_window_seconds: Option<u64>,
    webhook_timeout_seconds: Option<u64>,
    webhook_max_concurrent_deliveries: Option<usize>,
    webhook_retry_base_seconds: Option<u64>,
    webhook_retry_max_seconds: Option<u64>,
    webhook_pause_after_seconds: Option<u64>,
    metrics_bind: Option<String>,
    metrics_tenant_labels: Option<bool>,
    shutdown_timeout: Option<u64>,
    journal_path: Option<PathBuf>,
    /// A duration such as "30d" or "12h" (humantime).
    event_retention: Option<String>,
    console: Option<bool>,
    /// A duration such as "30m" (humantime).
    console_idle_timeout: Option<String>,
    listen_url: Option<String>,
    revocation_ttl_ms: Option<u64>,
    blocking_thread_nice: Option<u8>,
    prepared_statements: Option<bool>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {message}")]
    Parse { path: String, message: String },
    #[error("invalid setting {key}: {message}")]
    Invalid { key: String, message: String },
}

impl Settings {
    /// Loads settings. `explicit` is `--config`; `env` looks a variable up (the
    /// process environment in production, a map in tests).
    pub fn load(
        explicit: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Settings, ConfigError> {
        let mut s = Settings::default();
        let file = explicit
            .map(Path::to_path_buf)
            .or_else(|| env(ENV_CONFIG).filter(|v| !v.is_empty()).map(PathBuf::from))
            .or_else(|| {
                Path::new(DEFAULT_CONFIG_FILE)
                    .exists()
                    .then(|| PathBuf::from(DEFAULT_CONFIG_FILE))
            });
        if let Some(path) = file {
            let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
                path: path.display().to_string(),
                source,
            })?;
            s.apply_file(&text, &path.display().to_string())?;
        }
        for (key, var, kind) in KEYS {
            if let Some(v) = env(var) {
                s.apply(env_value(key, var, *kind, &v)?)?;
            }
        }
        s.gate_connections = s.gate_connections();
        s.validate()?;
        Ok(s)
    }

    fn apply_file(&mut self, text: &str, path: &str) -> Result<(), ConfigError> {
        let f: FileConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_string(),
            message: describe_toml_error(text, &e),
        })?;
        self.apply(f)
    }

    /// Sets the keys `f` names, leaving the others.
    fn apply(&mut self, f: FileConfig) -> Result<(), ConfigError> {
        if let Some(v) = f.database_url {
            self.database_url = SecretString::from(v);
        }
        if let Some(v) = f.bind {
            self.bind = v;
        }
        self.public_url = f.public_url.or(self.public_url.take());
        if let Some(v) = f.trust_forwarded_headers {
            self.trust_forwarded_headers = v;
        }
        self.policy_file = f.policy_file.or(self.policy_file.take());
        if let Some(v) = f.tombstone_key {
            self.tombstone_key = Some(SecretString::from(v));
        }
        if let Some(v) = f.log {
            self.log = v;
        }
        if let Some(v) = f.log_format {
            self.log_format = v;
        }
        if let Some(v) = f.pool_size {
            self.pool_size = v;
        }
        if let Some(v) = f.max_in_flight_per_tenant {
            self.max_in_flight_per_tenant = v;
        }
        if let Some(v) = f.gate_connections {
            // 0 is the unset default; a file or variable must name a count.
            if v == 0 {
                return Err(ConfigError::Invalid {
                    key: "gate_connections".into(),
                    message: "must be between 1 and 1024".into(),
                });
            }
            self.gate_connections = v;
        }
        if let Some(v) = f.tenant_connection_share {
            self.tenant_connection_share = v;
        }
        if let Some(v) = f.request_deadline_ms {
            self.request_deadline_ms = v;
        }
        if let Some(v) = f.pg_statement_timeout_ms {
            self.pg_statement_timeout_ms = v;
        }
        if let Some(v) = f.pg_lock_timeout_ms {
            self.pg_lock_timeout_ms = v;
        }
        if let Some(v) = f.long_write_timeout_ms {
            self.long_write_timeout_ms = v;
        }
        if let Some(v) = f.retry_after_seconds {
            self.retry_after_seconds = v;
        }
        if let Some(v) = f.overload_delay_ms {
            self.overload_delay_ms = v;
        }
        if let Some(v) = f.max_body_bytes {
            self.max_body_bytes = v;
        }
        if let Some(v) = f.max_group_body_bytes {
            self.max_group_body_bytes = v;
        }
        if let Some(v) = f.bulk_max_operations {
            self.bulk_max_operations = v;
        }
        if let Some(v) = f.bulk_max_payload_bytes {
            self.bulk_max_payload_bytes = v;
        }
        if let Some(v) = f.max_resource_bytes {
            self.max_resource_bytes = v;
        }
        if let Some(v) = f.max_list_bytes {
            self.max_list_bytes = v;
        }
        self.workers = f.workers.or(self.workers);
        if let Some(v) = f.auth_max_concurrent_verifications {
            self.auth_max_concurrent_verifications = v;
        }
        if let Some(v) = f.auth_max_failures_per_token {
            self.auth_max_failures_per_token = v;
        }
        if let Some(v) = f.auth_max_failures_per_address {
            self.auth_max_failures_per_address = v;
        }
        if let Some(v) = f.auth_failure_window_seconds {
            self.auth_failure_window_seconds = v;
        }
        if let Some(v) = f.webhook_timeout_seconds {
            self.webhook_timeout_seconds = v;
        }
        if let Some(v) = f.webhook_max_concurrent_deliveries {
            self.webhook_max_concurrent_deliveries = v;
        }
        if let Some(v) = f.webhook_retry_base_seconds {
            self.webhook_retry_base_seconds = v;
        }
        if let Some(v) = f.webhook_retry_max_seconds {
            self.webhook_retry_max_seconds = v;
        }
        if let Some(v) = f.webhook_pause_after_seconds {
            self.webhook_pause_after_seconds = v;
        }
        self.metrics_bind = f.metrics_bind.or(self.metrics_bind.take());
        if let Some(v) = f.metrics_tenant_labels {
            self.metrics_tenant_labels = v;
        }
        if let Some(v) = f.shutdown_timeout {
            self.shutdown_timeout = v;
        }
        self.journal_path = f.journal_path.or(self.journal_path.take());
        if let Some(v) = f.event_retention {
            self.event_retention = parse_duration("event_retention", &v)?;
        }
        if let Some(v) = f.console {
            self.console = v;
        }
        if let Some(v) = f.console_idle_timeout {
            self.console_idle_timeout = parse_duration("console_idle_timeout", &v)?;
        }
        if let Some(v) = f.listen_url {
            self.listen_url = Some(SecretString::from(v));
        }
        if let Some(v) = f.revocation_ttl_ms {
            self.revocation_ttl_ms = v;
        }
        if let Some(v) = f.blocking_thread_nice {
            self.blocking_thread_nice = v;
        }
        if let Some(v) = f.prepared_statements {
            self.prepared_statements = v;
        }
        Ok(())
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str, message: String| {
            Err(ConfigError::Invalid {
                key: key.into(),
                message,
            })
        };
        if self.bind.parse::<std::net::SocketAddr>().is_err() {
            return invalid(
                "bind",
                format!("'{}' is not an address like 127.0.0.1:8080", self.bind),
            );
        }
        if let Some(u) = &self.public_url
            && !(u.starts_with("https://") || u.starts_with("http://"))
        {
            return invalid(
                "public_url",
                format!("'{u}' must start with https:// or http://"),
            );
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log).is_err() {
            return invalid(
                "log",
                format!(
                    "'{}' is not a tracing filter such as info or info,custodian=debug",
                    self.log
                ),
            );
        }
        if self.pool_size == 0 {
            return invalid("pool_size", "must be at least 1".into());
        }
        if self.max_in_flight_per_tenant == 0 {
            return invalid("max_in_flight_per_tenant", "must be at least 1".into());
        }
        if self.gate_connections() > 1024 {
            return invalid("gate_connections", "must be between 1 and 1024".into());
        }
        if self.tenant_connection_share > self.pool_size {
            return invalid(
                "tenant_connection_share",
                "must be at most pool_size (0: half of each budget)".into(),
            );
        }
        if self.overload_delay_ms > 10_000 {
            return invalid("overload_delay_ms", "must be at most 10000".into());
        }
        if self.request_deadline_ms < 100 {
            return invalid("request_deadline_ms", "must be at least 100".into());
        }
        // PostgreSQL takes a 32-bit number of milliseconds (0 = none).
        for (key, v) in [
            ("pg_statement_timeout_ms", self.pg_statement_timeout_ms),
            ("pg_lock_timeout_ms", self.pg_lock_timeout_ms),
            ("long_write_timeout_ms", self.long_write_timeout_ms),
        ] {
            if v > i32::MAX as u64 {
                return invalid(key, format!("must be at most {} (0: none)", i32::MAX));
            }
        }
        if self.max_body_bytes < 1024 || self.max_group_body_bytes < self.max_body_bytes {
            return invalid(
                "max_body_bytes",
                "must be ≥ 1024 and ≤ max_group_body_bytes".into(),
            );
        }
        if self.bulk_max_operations == 0 {
            return invalid("bulk_max_operations", "must be at least 1".into());
        }
        if self.bulk_max_payload_bytes < 1024 {
            return invalid("bulk_max_payload_bytes", "must be ≥ 1024".into());
        }
        if self.auth_max_concurrent_verifications == 0 {
            return invalid(
                "auth_max_concurrent_verifications",
                "must be at least 1".into(),
            );
        }
        if self.auth_max_failures_per_token == 0 {
            return invalid("auth_max_failures_per_token", "must be at least 1".into());
        }
        if !(1..=86_400).contains(&self.auth_failure_window_seconds) {
            return invalid(
                "auth_failure_window_seconds",
                "must be between 1 and 86400".into(),
            );
        }
        // The relay's lease is sized from it (events::relay), so this bound
        // only keeps a hung receiver's worker short.
        if !(1..=30).contains(&self.webhook_timeout_seconds) {
            return invalid("webhook_timeout_seconds", "must be between 1 and 30".into());
        }
        if self.webhook_max_concurrent_deliveries == 0 {
            return invalid(
                "webhook_max_concurrent_deliveries",
                "must be at least 1".into(),
            );
        }
        if !(1..=86_400).contains(&self.webhook_retry_base_seconds) {
            return invalid(
                "webhook_retry_base_seconds",
                "must be between 1 and 86400".into(),
            );
        }
        if self.webhook_retry_max_seconds < self.webhook_retry_base_seconds
            || self.webhook_retry_max_seconds > 86_400
        {
            return invalid(
                "webhook_retry_max_seconds",
                "must be between webhook_retry_base_seconds and 86400".into(),
            );
        }
        if !(1..=30 * 86_400).contains(&self.webhook_pause_after_seconds) {
            return invalid(
                "webhook_pause_after_seconds",
                "must be between 1 and 2592000 (30 days)".into(),
            );
        }
        if self.max_resource_bytes < 1024 {
            return invalid("max_resource_bytes", "must be ≥ 1024".into());
        }
        if self.revocation_ttl_ms > 1000 {
            return invalid(
                "revocation_ttl_ms",
                "must be at most 1000 (a revocation takes effect within one second)".into(),
            );
        }
        if let Some(u) = &self.listen_url
            && !u.expose_secret().starts_with("postgres://")
            && !u.expose_secret().starts_with("postgresql://")
        {
            return invalid(
                "listen_url",
                "must be a postgres:// or postgresql:// URL".into(),
            );
        }
        if !self.prepared_statements && self.sqlite_path().is_some() {
            return invalid(
                "prepared_statements",
                "false is for PostgreSQL behind a transaction-mode pooler (PgBouncer); database_url is SQLite, which always prepares its statements: remove the setting".into(),
            );
        }
        if self.max_list_bytes < 1024 {
            return invalid("max_list_bytes", "must be ≥ 1024".into());
        }
        if let Some(b) = &self.metrics_bind
            && b.parse::<std::net::SocketAddr>().is_err()
        {
            return invalid(
                "metrics_bind",
                format!("'{b}' is not an address like 127.0.0.1:9090"),
            );
        }
        if !(1..=3_600).contains(&self.shutdown_timeout) {
            return invalid("shutdown_timeout", "must be between 1 and 3600".into());
        }
        if self.blocking_thread_nice > 19 {
            return invalid("blocking_thread_nice", "must be between 0 and 19".into());
        }
        // Events must outlive the relay's first retries; a retention shorter
        // than webhook_pause_after_seconds skips a failing endpoint past the
        // events it has not received (audited as webhook.events_expired).
        if self.event_retention < std::time::Duration::from_secs(3600) {
            return invalid("event_retention", "must be at least 1h".into());
        }
        if !(std::time::Duration::from_secs(10)..=std::time::Duration::from_secs(86_400))
            .contains(&self.console_idle_timeout)
        {
            return invalid("console_idle_timeout", "must be between 10s and 24h".into());
        }
        Ok(())
    }

    /// The Bulk limits, as `/ServiceProviderConfig` advertises them.
    pub fn bulk_limits(&self) -> crate::scim::bulk::Limits {
        crate::scim::bulk::Limits {
            max_operations: self.bulk_max_operations,
            max_payload_size: self.bulk_max_payload_bytes,
        }
    }

    /// What one stored resource may cost.
    pub fn resource_limits(&self) -> crate::scim::resource::Limits {
        crate::scim::resource::Limits {
            max_resource_bytes: self.max_resource_bytes,
            max_list_bytes: self.max_list_bytes,
        }
    }

    /// The connections `serve` opens: SCIM's and the gate's.
    pub fn total_connections(&self) -> u32 {
        self.pool_size.saturating_add(self.gate_connections())
    }

    /// `gate_connections`, or when 0 the backend's default.
    pub fn gate_connections(&self) -> u32 {
        match (self.gate_connections, self.sqlite_path()) {
            (0, Some(_)) => GATE_CONNECTIONS_SQLITE,
            (0, None) => GATE_CONNECTIONS_POSTGRES,
            (n, _) => n,
        }
    }

    /// The database's wait and run limits (`store::db::Deadlines`).
    pub fn db_deadlines(&self) -> crate::store::db::Deadlines {
        crate::store::db::Deadlines {
            wait: std::time::Duration::from_millis(self.request_deadline_ms),
            pg_statement_timeout_ms: self.pg_statement_timeout_ms,
            pg_lock_timeout_ms: self.pg_lock_timeout_ms,
            long_write_timeout_ms: self.long_write_timeout_ms,
        }
    }

    /// The SQLite database file; `None` on PostgreSQL.
    pub fn sqlite_path(&self) -> Option<PathBuf> {
        match crate::store::db::DbUrl::parse(self.database_url.expose_secret()) {
            crate::store::db::DbUrl::Sqlite(p) => Some(PathBuf::from(p)),
            crate::store::db::DbUrl::Postgres(_) => None,
        }
    }

    /// The disposal journal: `journal_path`, else on SQLite
    /// `<db dir>/<db name>.disposal-journal.jsonl`; on PostgreSQL none unless
    /// set (README "Backup and restore").
    pub fn journal_file(&self) -> Option<PathBuf> {
        if let Some(p) = &self.journal_path {
            return Some(p.clone());
        }
        let db = self.sqlite_path()?;
        let stem = db.file_stem().map_or_else(
            || "custodian".to_string(),
            |s| s.to_string_lossy().into_owned(),
        );
        Some(db.with_file_name(format!("{stem}.disposal-journal.jsonl")))
    }

    /// The base URL for emitted links when no `public_url` is set.
    pub fn default_base_url(&self) -> String {
        format!("http://{}", self.bind)
    }
}

/// One key set by its environment variable, as if the file had said it;
/// errors name the variable.
fn env_value(key: &str, var: &str, kind: Kind, v: &str) -> Result<FileConfig, ConfigError> {
    let bad = |what: &str| ConfigError::Invalid {
        key: var.into(),
        message: format!("'{v}' is not {what}"),
    };
    let value = match kind {
        Kind::Text => toml::Value::String(v.to_string()),
        Kind::Number => toml::Value::Integer(
            v.trim()
                .parse::<i64>()
                .ok()
                .filter(|n| *n >= 0)
                .ok_or_else(|| bad("a non-negative integer"))?,
        ),
        Kind::Bool => match v.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => toml::Value::Boolean(true),
            "false" | "0" | "no" => toml::Value::Boolean(false),
            _ => return Err(bad("true or false")),
        },
    };
    let mut t = toml::Table::new();
    t.insert(key.to_string(), value);
    toml::Value::Table(t)
        .try_into::<FileConfig>()
        .map_err(|e| ConfigError::Invalid {
            key: var.into(),
            message: e.to_string(),
        })
}

/// A duration such as "30d", "12h" or "90days"; the error names the key.
fn parse_duration(key: &str, v: &str) -> Result<std::time::Duration, ConfigError> {
    humantime::parse_duration(v.trim()).map_err(|e| ConfigError::Invalid {
        key: key.into(),
        message: format!("'{v}' is not a duration such as 30d or 12h: {e}"),
    })
}

/// toml's message plus the line, and the key for unknown-field errors.
fn describe_toml_error(text: &str, e: &toml::de::Error) -> String {
    let msg = e.message().to_string();
    match e.span() {
        Some(span) => {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            let key = text[span.clone()].trim().to_string();
            if msg.contains("unknown field") {
                format!("line {line}: unknown key '{key}' ({msg})")
            } else {
                format!("line {line}: {msg}")
            }
        }
        None => msg,
    }
}

#[cfg(test)]
mod tests;

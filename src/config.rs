//! Configuration: built-in defaults → optional TOML file → the documented
//! `CUSTODIAN_*` variables, validated once at start. Unknown keys in the file are
//! errors naming the key and line; every other environment variable is ignored
//! (Kubernetes injects `CUSTODIAN_PORT=tcp://…` for a Service named custodian).

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use std::path::{Path, PathBuf};

pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/custodian.db";
pub const DEFAULT_BIND: &str = "127.0.0.1:8080";
pub const DEFAULT_CONFIG_FILE: &str = "custodian.toml";

/// The environment variables Custodian reads, and only these.
pub const ENV_CONFIG: &str = "CUSTODIAN_CONFIG";
pub const ENV_DATABASE_URL: &str = "CUSTODIAN_DATABASE_URL";
pub const ENV_BIND: &str = "CUSTODIAN_BIND";
pub const ENV_PUBLIC_URL: &str = "CUSTODIAN_PUBLIC_URL";
pub const ENV_POLICY_FILE: &str = "CUSTODIAN_POLICY_FILE";
pub const ENV_TOMBSTONE_KEY: &str = "CUSTODIAN_TOMBSTONE_KEY";
pub const ENV_LOG: &str = "CUSTODIAN_LOG";
pub const ENV_BULK_MAX_OPERATIONS: &str = "CUSTODIAN_BULK_MAX_OPERATIONS";
pub const ENV_BULK_MAX_PAYLOAD_BYTES: &str = "CUSTODIAN_BULK_MAX_PAYLOAD_BYTES";

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
    /// Connections for `/gate/v1/check`, in addition to `pool_size` (SCIM and admin).
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
    /// Disposals, imports and scheduler passes (`Db::write_alone`); 0: none.
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
    /// PostgreSQL: where each replica listens for token revocations (a
    /// direct connection, not a transaction-mode pooler); `None`: the
    /// database URL. May hold a password: never printed.
    pub listen_url: Option<SecretString>,
    /// PostgreSQL: how long a token read live is trusted while the listener
    /// is not connected (0..=1000).
    pub revocation_ttl_ms: u64,
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
            .field("pool_size", &self.pool_size)
            .field("gate_connections", &self.gate_connections)
            .field("tenant_connection_share", &self.tenant_connection_share)
            .field("max_in_flight_per_tenant", &self.max_in_flight_per_tenant)
            .field("request_deadline_ms", &self.request_deadline_ms)
            .field("overload_delay_ms", &self.overload_delay_ms)
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
            .field(
                "listen_url",
                &self
                    .listen_url
                    .as_ref()
                    .map(|u| redact_url(u.expose_secret())),
            )
            .field("revocation_ttl_ms", &self.revocation_ttl_ms)
            .finish()
    }
}

/// `postgres://user:pw@host/db` → `postgres://user:[redacted]@host/db`.
pub fn redact_url(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://")
        && let Some((creds, host)) = rest.split_once('@')
        && let Some((user, _)) = creds.split_once(':')
    {
        return format!("{scheme}://{user}:[redacted]@{host}");
    }
    url.to_string()
}

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
            gate_connections: 4,
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
            listen_url: None,
            revocation_ttl_ms: 1000,
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
    listen_url: Option<String>,
    revocation_ttl_ms: Option<u64>,
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
        if let Some(v) = env(ENV_DATABASE_URL) {
            s.database_url = SecretString::from(v);
        }
        if let Some(v) = env(ENV_BIND) {
            s.bind = v;
        }
        if let Some(v) = env(ENV_PUBLIC_URL) {
            s.public_url = Some(v);
        }
        if let Some(v) = env(ENV_POLICY_FILE) {
            s.policy_file = Some(PathBuf::from(v));
        }
        if let Some(v) = env(ENV_TOMBSTONE_KEY) {
            s.tombstone_key = Some(SecretString::from(v));
        }
        if let Some(v) = env(ENV_LOG) {
            s.log = v;
        }
        if let Some(v) = env(ENV_BULK_MAX_OPERATIONS) {
            s.bulk_max_operations = env_number(ENV_BULK_MAX_OPERATIONS, &v)?;
        }
        if let Some(v) = env(ENV_BULK_MAX_PAYLOAD_BYTES) {
            s.bulk_max_payload_bytes = env_number(ENV_BULK_MAX_PAYLOAD_BYTES, &v)?;
        }
        s.validate()?;
        Ok(s)
    }

    fn apply_file(&mut self, text: &str, path: &str) -> Result<(), ConfigError> {
        let f: FileConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_string(),
            message: describe_toml_error(text, &e),
        })?;
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
        if let Some(v) = f.listen_url {
            self.listen_url = Some(SecretString::from(v));
        }
        if let Some(v) = f.revocation_ttl_ms {
            self.revocation_ttl_ms = v;
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
        if self.gate_connections == 0 || self.gate_connections > 1024 {
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
        if self.max_list_bytes < 1024 {
            return invalid("max_list_bytes", "must be ≥ 1024".into());
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
        self.pool_size.saturating_add(self.gate_connections)
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

    /// The base URL for emitted links when no `public_url` is set.
    pub fn default_base_url(&self) -> String {
        format!("http://{}", self.bind)
    }
}

/// A numeric environment variable; the error names the variable.
fn env_number(name: &str, v: &str) -> Result<usize, ConfigError> {
    v.trim().parse().map_err(|_| ConfigError::Invalid {
        key: name.into(),
        message: format!("'{v}' is not a non-negative integer"),
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

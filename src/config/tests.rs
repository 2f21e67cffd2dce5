//! Unit tests of `config`.

use super::*;
use std::collections::HashMap;

fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let m: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k| m.get(k).cloned()
}

#[test]
fn defaults_need_no_file() {
    let dir = tempfile::tempdir().ok();
    let _ = dir;
    let s = Settings::load(None, &env_of(&[])).ok();
    assert!(s.is_some_and(
        |s| s.bind == DEFAULT_BIND && s.database_url.expose_secret() == DEFAULT_DATABASE_URL
    ));
}

#[test]
fn file_then_documented_env_and_other_env_ignored() {
    let dir = tempfile::tempdir().map_err(|e| e.to_string());
    let Ok(dir) = dir else { panic!("tempdir") };
    let p = dir.path().join("c.toml");
    std::fs::write(
        &p,
        "bind = \"127.0.0.1:9000\"\npublic_url = \"https://scim.example.edu\"\n",
    )
    .ok();
    let s = Settings::load(
        Some(&p),
        &env_of(&[
            ("CUSTODIAN_BIND", "127.0.0.1:9100"),
            ("CUSTODIAN_PORT", "tcp://10.0.0.1:80"),
        ]),
    );
    assert!(s.is_ok_and(|s| s.bind == "127.0.0.1:9100"
        && s.public_url.as_deref() == Some("https://scim.example.edu")));
}

#[test]
fn bulk_limits_from_defaults_file_and_env() {
    let s = Settings::default();
    assert_eq!(
        (s.bulk_max_operations, s.bulk_max_payload_bytes),
        (1000, 1048576)
    );
    let Ok(dir) = tempfile::tempdir() else {
        panic!("tempdir")
    };
    let p = dir.path().join("c.toml");
    std::fs::write(
        &p,
        "bulk_max_operations = 50\nbulk_max_payload_bytes = 65536\n",
    )
    .ok();
    let s = Settings::load(Some(&p), &env_of(&[]));
    assert!(s.is_ok_and(|s| s.bulk_limits()
        == crate::scim::bulk::Limits {
            max_operations: 50,
            max_payload_size: 65536
        }));
    let s = Settings::load(Some(&p), &env_of(&[("CUSTODIAN_BULK_MAX_OPERATIONS", "7")]));
    assert!(s.is_ok_and(|s| s.bulk_max_operations == 7 && s.bulk_max_payload_bytes == 65536));
    let s = Settings::load(
        None,
        &env_of(&[("CUSTODIAN_BULK_MAX_PAYLOAD_BYTES", "2048")]),
    );
    assert!(s.is_ok_and(|s| s.bulk_max_payload_bytes == 2048));
    for (k, v, needle) in [
        (
            "CUSTODIAN_BULK_MAX_OPERATIONS",
            "many",
            "CUSTODIAN_BULK_MAX_OPERATIONS",
        ),
        ("CUSTODIAN_BULK_MAX_OPERATIONS", "0", "bulk_max_operations"),
        (
            "CUSTODIAN_BULK_MAX_PAYLOAD_BYTES",
            "100",
            "bulk_max_payload_bytes",
        ),
    ] {
        let r = Settings::load(None, &env_of(&[(k, v)]));
        assert!(r.is_err_and(|e| e.to_string().contains(needle)), "{k}={v}");
    }
}

#[test]
fn auth_and_webhook_limits_from_file_and_validated() {
    let mut s = Settings::default();
    assert!(
        s.apply_file(
            "auth_max_concurrent_verifications = 8\nauth_max_failures_per_token = 5\n\
             auth_max_failures_per_address = 0\nauth_failure_window_seconds = 30\n\
             webhook_timeout_seconds = 5\nwebhook_max_concurrent_deliveries = 4\n\
             webhook_retry_base_seconds = 2\nwebhook_retry_max_seconds = 8\n\
             webhook_pause_after_seconds = 60\n",
            "c.toml"
        )
        .is_ok()
    );
    assert_eq!(
        (
            s.auth_max_concurrent_verifications,
            s.auth_max_failures_per_token,
            s.auth_max_failures_per_address,
            s.auth_failure_window_seconds,
            s.webhook_timeout_seconds,
            s.webhook_max_concurrent_deliveries
        ),
        (8, 5, 0, 30, 5, 4)
    );
    assert_eq!(
        (
            s.webhook_retry_base_seconds,
            s.webhook_retry_max_seconds,
            s.webhook_pause_after_seconds
        ),
        (2, 8, 60)
    );
    assert!(s.validate().is_ok());
    for (bad, key) in [
        (
            Settings {
                auth_max_failures_per_token: 0,
                ..Settings::default()
            },
            "auth_max_failures_per_token",
        ),
        (
            Settings {
                auth_failure_window_seconds: 0,
                ..Settings::default()
            },
            "auth_failure_window_seconds",
        ),
        (
            Settings {
                webhook_retry_max_seconds: 10,
                ..Settings::default()
            },
            "webhook_retry_max_seconds",
        ),
        (
            Settings {
                webhook_retry_base_seconds: 0,
                ..Settings::default()
            },
            "webhook_retry_base_seconds",
        ),
        (
            Settings {
                webhook_pause_after_seconds: 0,
                ..Settings::default()
            },
            "webhook_pause_after_seconds",
        ),
        (
            Settings {
                webhook_timeout_seconds: 61,
                ..Settings::default()
            },
            "webhook_timeout_seconds",
        ),
        (
            Settings {
                webhook_max_concurrent_deliveries: 0,
                ..Settings::default()
            },
            "webhook_max_concurrent_deliveries",
        ),
    ] {
        assert!(
            bad.validate().is_err_and(|e| e.to_string().contains(key)),
            "{key}"
        );
    }
}

#[test]
fn fairness_and_deadline_keys() {
    let Ok(dir) = tempfile::tempdir() else {
        panic!("tempdir")
    };
    let p = dir.path().join("c.toml");
    std::fs::write(
        &p,
        "pool_size = 12\ngate_connections = 3\ntenant_connection_share = 4\nrequest_deadline_ms = 2000\npg_statement_timeout_ms = 5000\npg_lock_timeout_ms = 700\nlong_write_timeout_ms = 0\n",
    )
    .ok();
    let s = Settings::load(Some(&p), &env_of(&[]));
    assert!(s.is_ok_and(
        |s| (s.gate_connections, s.tenant_connection_share) == (3, 4)
            && s.total_connections() == 15
            && s.db_deadlines()
                == crate::store::db::Deadlines {
                    wait: std::time::Duration::from_secs(2),
                    pg_statement_timeout_ms: 5000,
                    pg_lock_timeout_ms: 700,
                    long_write_timeout_ms: 0,
                }
    ));
    for (text, key) in [
        ("gate_connections = 0\n", "gate_connections"),
        ("tenant_connection_share = 17\n", "tenant_connection_share"),
        ("request_deadline_ms = 5\n", "request_deadline_ms"),
        ("pg_lock_timeout_ms = 9999999999\n", "pg_lock_timeout_ms"),
        ("overload_delay_ms = 10001\n", "overload_delay_ms"),
    ] {
        std::fs::write(&p, text).ok();
        let r = Settings::load(Some(&p), &env_of(&[]));
        assert!(r.is_err_and(|e| e.to_string().contains(key)), "{text}");
    }
}

#[test]
fn unknown_key_names_key_and_line() {
    let mut s = Settings::default();
    let err = s.apply_file("bind = \"127.0.0.1:1\"\nbnid = \"x\"\n", "c.toml");
    match err {
        Err(ConfigError::Parse { message, .. }) => {
            assert!(
                message.contains("line 2") && message.contains("bnid"),
                "{message}"
            );
        }
        other => panic!("{:?}", other.is_ok()),
    }
}

#[test]
fn invalid_values_are_named_and_secrets_redacted() {
    let r = Settings::load(None, &env_of(&[("CUSTODIAN_BIND", "nonsense")]));
    assert!(r.is_err_and(|e| e.to_string().contains("bind")));
    let s = Settings {
        database_url: SecretString::from("postgres://app:hunter2@db/x"),
        ..Settings::default()
    };
    let printed = format!("{s:?}");
    assert!(!printed.contains("hunter2") && printed.contains("[redacted]"));
}

/// The keys the file accepts, from the parser's own list of expected fields.
fn file_keys() -> Vec<String> {
    let e = toml::from_str::<FileConfig>("no_such_key_at_all = 1").err();
    let msg = e.map(|e| e.message().to_string()).unwrap_or_default();
    let expected = msg.split_once("expected").map(|(_, r)| r).unwrap_or("");
    expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

#[test]
fn every_key_has_exactly_one_listed_variable_named_in_the_readme() {
    let keys = file_keys();
    assert!(keys.len() >= 30, "parsed the file's keys: {keys:?}");
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .unwrap_or_default();
    for k in &keys {
        let listed: Vec<_> = KEYS.iter().filter(|(key, _, _)| key == k).collect();
        assert_eq!(listed.len(), 1, "key {k} must have exactly one variable");
        let var = listed[0].1;
        assert_eq!(var, format!("CUSTODIAN_{}", k.to_ascii_uppercase()));
        assert!(
            readme
                .lines()
                .any(|l| l.starts_with(&format!("| `{k}` | `{var}`"))),
            "README's configuration table names {k} with {var}"
        );
    }
    assert_eq!(KEYS.len(), keys.len(), "no variable without a key");
    let vars: std::collections::HashSet<_> = KEYS.iter().map(|(_, v, _)| v).collect();
    assert_eq!(vars.len(), KEYS.len(), "no variable listed twice");
}

#[test]
fn every_listed_variable_sets_its_key_and_others_are_ignored() {
    let s = Settings::load(
        None,
        &env_of(&[
            ("CUSTODIAN_POOL_SIZE", "5"),
            ("CUSTODIAN_LOG_FORMAT", "json"),
            ("CUSTODIAN_TRUST_FORWARDED_HEADERS", "true"),
            ("CUSTODIAN_WORKERS", "3"),
            ("CUSTODIAN_METRICS_BIND", "127.0.0.1:9464"),
            ("CUSTODIAN_METRICS_TENANT_LABELS", "1"),
            ("CUSTODIAN_SHUTDOWN_TIMEOUT", "7"),
            ("CUSTODIAN_WEBHOOK_RETRY_BASE_SECONDS", "2"),
            // Kubernetes service links: not ours, ignored.
            ("CUSTODIAN_PORT", "tcp://10.0.0.1:80"),
            ("CUSTODIAN_SERVICE_HOST", "10.0.0.1"),
        ]),
    );
    let Ok(s) = s else {
        panic!("loads: {:?}", s.err())
    };
    assert_eq!(s.pool_size, 5);
    assert_eq!(s.log_format, LogFormat::Json);
    assert!(s.trust_forwarded_headers && s.metrics_tenant_labels);
    assert_eq!(s.workers, Some(3));
    assert_eq!(s.metrics_bind.as_deref(), Some("127.0.0.1:9464"));
    assert_eq!((s.shutdown_timeout, s.webhook_retry_base_seconds), (7, 2));
    for (var, v, needle) in [
        ("CUSTODIAN_POOL_SIZE", "-1", "CUSTODIAN_POOL_SIZE"),
        (
            "CUSTODIAN_TRUST_FORWARDED_HEADERS",
            "maybe",
            "CUSTODIAN_TRUST_FORWARDED_HEADERS",
        ),
        ("CUSTODIAN_LOG_FORMAT", "xml", "CUSTODIAN_LOG_FORMAT"),
        ("CUSTODIAN_METRICS_BIND", "everywhere", "metrics_bind"),
        ("CUSTODIAN_SHUTDOWN_TIMEOUT", "0", "shutdown_timeout"),
    ] {
        let r = Settings::load(None, &env_of(&[(var, v)]));
        assert!(
            r.is_err_and(|e| e.to_string().contains(needle)),
            "{var}={v}"
        );
    }
}

#[test]
fn debug_shows_the_effective_configuration_without_secrets() {
    let s = Settings {
        database_url: SecretString::from("postgres://u:hunter2@db/custodian"),
        tombstone_key: Some(SecretString::from("00ff")),
        ..Settings::default()
    };
    let d = format!("{s:?}");
    assert!(!d.contains("hunter2") && !d.contains("00ff"), "{d}");
    assert!(
        d.contains("shutdown_timeout: 30") && d.contains("metrics_bind: None"),
        "{d}"
    );
    // The startup line shows every key's effective value.
    for (k, _, _) in KEYS {
        assert!(d.contains(&format!("{k}: ")), "{k} missing from {d}");
    }
}

#[test]
fn revocation_listener_settings_from_file_and_validated() {
    let mut s = Settings::default();
    assert_eq!((s.revocation_ttl_ms, s.listen_url.is_none()), (1000, true));
    assert!(
        s.apply_file(
            "listen_url = \"postgres://app:pw@db-primary:5432/custodian\"\nrevocation_ttl_ms = 250\n",
            "c.toml"
        )
        .is_ok()
    );
    assert_eq!(s.revocation_ttl_ms, 250);
    assert!(s.validate().is_ok());
    // The password never reaches the startup line.
    let shown = format!("{s:?}");
    assert!(
        shown.contains("db-primary") && !shown.contains("pw@"),
        "{shown}"
    );
    for (bad, key) in [
        (
            Settings {
                revocation_ttl_ms: 1001,
                ..Settings::default()
            },
            "revocation_ttl_ms",
        ),
        (
            Settings {
                listen_url: Some(SecretString::from("sqlite://x.db")),
                ..Settings::default()
            },
            "listen_url",
        ),
    ] {
        assert!(
            bad.validate().is_err_and(|e| e.to_string().contains(key)),
            "{key}"
        );
    }
}

/// `prepared_statements = false` is for PostgreSQL behind a pooler; on
/// SQLite it is refused, naming the key and why.
#[test]
fn prepared_statements_off_only_on_postgres() {
    assert!(Settings::default().prepared_statements);
    let mut s = Settings::default();
    assert!(
        s.apply(
            env_value(
                "prepared_statements",
                "CUSTODIAN_PREPARED_STATEMENTS",
                Kind::Bool,
                "false"
            )
            .expect("a boolean")
        )
        .is_ok()
    );
    assert!(!s.prepared_statements);
    let e = s.validate().expect_err("refused on SQLite").to_string();
    assert!(
        e.contains("prepared_statements") && e.contains("SQLite"),
        "{e}"
    );
    s.database_url = SecretString::from("postgres://app@pgbouncer:6432/custodian");
    assert!(s.validate().is_ok());
    assert!(format!("{s:?}").contains("prepared_statements: false"));
}

#[test]
fn redact_url_hides_every_password() {
    for (url, shown, hidden) in [
        (
            "postgres://app:s3cret@db:5432/custodian",
            "postgres://app:[redacted]@db:5432/custodian",
            "s3cret",
        ),
        // A raw '@' in the password: the last '@' ends the credentials.
        (
            "postgres://app:p@ss@db/custodian",
            "postgres://app:[redacted]@db/custodian",
            "p@ss",
        ),
        (
            "postgres://db/custodian?user=app&password=hunter2&sslmode=require",
            "postgres://db/custodian?user=app&password=[redacted]&sslmode=require",
            "hunter2",
        ),
    ] {
        let r = redact_url(url);
        assert_eq!(r, shown);
        assert!(!r.contains(hidden));
    }
    assert_eq!(
        redact_url("sqlite://data/custodian.db"),
        "sqlite://data/custodian.db"
    );
}

#[test]
fn gate_connections_default_by_backend_unless_set() {
    let pg = [("CUSTODIAN_DATABASE_URL", "postgres://db/custodian")];
    let gate = |pairs: &[(&str, &str)]| {
        Settings::load(None, &env_of(pairs))
            .map(|s| (s.gate_connections, s.total_connections()))
            .ok()
    };
    assert_eq!(
        gate(&[]),
        Some((GATE_CONNECTIONS_SQLITE, 16 + GATE_CONNECTIONS_SQLITE))
    );
    assert_eq!(
        gate(&pg),
        Some((GATE_CONNECTIONS_POSTGRES, 16 + GATE_CONNECTIONS_POSTGRES))
    );
    assert_eq!(
        gate(&[pg[0], ("CUSTODIAN_GATE_CONNECTIONS", "3")]),
        Some((3, 19)),
        "an explicit value wins on PostgreSQL"
    );
    assert_eq!(gate(&[("CUSTODIAN_GATE_CONNECTIONS", "6")]), Some((6, 22)));
}

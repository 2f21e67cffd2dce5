//! Start-up: the policy, the tombstone keys and their check value.

use super::policy::{self, PolicySet};
use super::service::Deprov;
use super::tombstone::TombstoneKeys;
use crate::clock::Clock;
use crate::config::Settings;
use crate::store::deployment;
use crate::store::{Backend, Db, StoreError};
use secrecy::ExposeSecret;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub fn load_policies(settings: &Settings) -> Result<PolicySet, String> {
    match &settings.policy_file {
        Some(p) => policy::load(p).map_err(|e| e.to_string()),
        None => Ok(PolicySet::default()),
    }
}

/// SQLite: `tombstone.key` beside the database file (generated once, 0600).
/// PostgreSQL: `tombstone_key` / `CUSTODIAN_TOMBSTONE_KEY` is required, since
/// every replica must share it.
pub fn load_keys(settings: &Settings, db: &Db) -> Result<TombstoneKeys, String> {
    if let Some(k) = &settings.tombstone_key {
        return TombstoneKeys::from_spec(k.expose_secret());
    }
    match db.backend() {
        Backend::Postgres => Err("CUSTODIAN_TOMBSTONE_KEY (or tombstone_key) is required with PostgreSQL: every replica must share the key".into()),
        Backend::Sqlite => {
            let url = settings.database_url.expose_secret();
            let file = PathBuf::from(url.strip_prefix("sqlite://").unwrap_or(url));
            let dir = file.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
            TombstoneKeys::load_or_create_file(&dir.join("tombstone.key"))
        }
    }
}

/// A database written with one key must not be served with another: every
/// `deprovisioned` would silently become `unknown`.
pub fn check_key(db: &Db, keys: &TombstoneKeys) -> Result<(), String> {
    let now = crate::store::time::now();
    db.write(|c| -> Result<Result<(), String>, StoreError> {
        // Replicas starting together may all find none: the first insert
        // wins, and every replica compares its key with what was stored.
        if deployment::check_value(c, "tombstone")?.is_none() {
            deployment::insert_check_value(c, "tombstone", &keys.check_value(), &now)?;
        }
        match deployment::check_value(c, "tombstone")? {
            Some(v) if keys.check_values().contains(&v) => Ok(Ok(())),
            _ => Ok(Err(
                "the tombstone key does not match the key this database was written with; refusing to start (restore the key, or list it after the new one)".into(),
            )),
        }
    })
    .map_err(|e| e.to_string())?
}

pub fn open(settings: &Settings, db: &Db, clock: Arc<dyn Clock>) -> Result<Deprov, String> {
    let policies = load_policies(settings)?;
    for w in &policies.warnings {
        tracing::warn!("policy: {w}");
    }
    let keys = load_keys(settings, db)?;
    check_key(db, &keys)?;
    Ok(Deprov::new(policies, keys, clock))
}

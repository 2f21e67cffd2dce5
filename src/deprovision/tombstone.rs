//! Tombstones: keyed hashes of a disposed person's identifiers, never the
//! identifiers themselves. `HMAC-SHA256(key, tenant_id ‖ 0 ‖ type ‖ 0 ‖ value)`
//! with normalisation v1, shared by the writer and the gate.

use crate::scim::fold::fold;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::path::Path;

pub const NORM_VERSION: i32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdType {
    UserName,
    ExternalId,
    Email,
    Sso,
}

impl IdType {
    pub fn as_str(self) -> &'static str {
        match self {
            IdType::UserName => "userName",
            IdType::ExternalId => "externalId",
            IdType::Email => "email",
            IdType::Sso => "sso",
        }
    }
}

/// Normalisation v1: userName and email folded (trim, NFC, lowercase);
/// externalId trimmed; SSO subject = issuer without a trailing '/', NUL, exact `sub`.
pub fn normalize(t: IdType, value: &str) -> String {
    match t {
        IdType::UserName | IdType::Email => fold(value),
        IdType::ExternalId => value.trim().to_string(),
        IdType::Sso => value.to_string(),
    }
}

pub fn sso_value(issuer: &str, subject: &str) -> String {
    format!("{}\u{0}{}", issuer.trim().trim_end_matches('/'), subject)
}

/// The per-deployment key. Rotation: `keys[0]` writes, all are checked.
#[derive(Clone)]
pub struct TombstoneKeys {
    keys: Vec<Vec<u8>>,
}

impl std::fmt::Debug for TombstoneKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TombstoneKeys([redacted; {}])", self.keys.len())
    }
}

type HmacSha256 = Hmac<Sha256>;

fn mac(key: &[u8], parts: &[&[u8]]) -> String {
    let mut m = match HmacSha256::new_from_slice(key) {
        Ok(m) => m,
        // HMAC accepts keys of any length; this branch cannot be taken.
        Err(_) => return String::new(),
    };
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            m.update(&[0]);
        }
        m.update(p);
    }
    hex::encode(m.finalize().into_bytes())
}

impl TombstoneKeys {
    /// Keys are given as a comma-separated list of hex or raw strings (≥ 16 bytes each).
    pub fn from_spec(spec: &str) -> Result<TombstoneKeys, String> {
        let keys: Vec<Vec<u8>> = spec
            .split(',')
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .map(|k| hex::decode(k).unwrap_or_else(|_| k.as_bytes().to_vec()))
            .collect();
        if keys.is_empty() || keys.iter().any(|k| k.len() < 16) {
            return Err(
                "the tombstone key must be at least 16 bytes (32 hex characters recommended)"
                    .into(),
            );
        }
        Ok(TombstoneKeys { keys })
    }

    /// SQLite deployments: `tombstone.key` beside the database, created once
    /// (mode 0600) and backed up with it.
    pub fn load_or_create_file(path: &Path) -> Result<TombstoneKeys, String> {
        if !path.exists() {
            use rand::RngCore;
            let mut k = [0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut k);
            write_private(path, hex::encode(k).as_bytes())
                .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        }
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        TombstoneKeys::from_spec(text.trim())
    }

    pub fn hash(&self, tenant_id: &str, t: IdType, value: &str) -> String {
        self.hash_with(0, tenant_id, t, value)
    }

    fn hash_with(&self, i: usize, tenant_id: &str, t: IdType, value: &str) -> String {
        let v = normalize(t, value);
        mac(
            &self.keys[i.min(self.keys.len() - 1)],
            &[tenant_id.as_bytes(), t.as_str().as_bytes(), v.as_bytes()],
        )
    }

    /// Every hash this identifier may be stored under (one per key).
    pub fn all_hashes(&self, tenant_id: &str, t: IdType, value: &str) -> Vec<String> {
        (0..self.keys.len())
            .map(|i| self.hash_with(i, tenant_id, t, value))
            .collect()
    }

    /// A value that identifies the writing key without revealing it.
    pub fn check_value(&self) -> String {
        mac(&self.keys[0], &[b"custodian tombstone key check v1"])
    }

    /// Check values of every key (a rotated-out key still matches old databases).
    pub fn check_values(&self) -> Vec<String> {
        self.keys
            .iter()
            .map(|k| mac(k, &[b"custodian tombstone key check v1"]))
            .collect()
    }
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_keyed_normalised_and_tenant_scoped() {
        let k = TombstoneKeys::from_spec(&"ab".repeat(32)).expect("key");
        let a = k.hash("t1", IdType::Email, " JDoe@Example.EDU ");
        assert_eq!(a, k.hash("t1", IdType::Email, "jdoe@example.edu"));
        assert_ne!(a, k.hash("t2", IdType::Email, "jdoe@example.edu"));
        assert_ne!(a, k.hash("t1", IdType::UserName, "jdoe@example.edu"));
        assert!(!a.contains("jdoe"));
        // externalId is only trimmed; SSO subjects are case-sensitive.
        assert_ne!(
            k.hash("t", IdType::ExternalId, "00uA"),
            k.hash("t", IdType::ExternalId, "00ua")
        );
        assert_eq!(
            k.hash("t", IdType::Sso, &sso_value("https://idp/", "Sub")),
            k.hash("t", IdType::Sso, &sso_value("https://idp", "Sub"))
        );
        assert_ne!(
            k.hash("t", IdType::Sso, &sso_value("https://idp", "Sub")),
            k.hash("t", IdType::Sso, &sso_value("https://idp", "sub"))
        );
        let other = TombstoneKeys::from_spec(&"cd".repeat(32)).expect("key");
        assert_ne!(k.check_value(), other.check_value());
        assert!(TombstoneKeys::from_spec("short").is_err());
    }

    #[test]
    fn key_file_is_created_once_and_private() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("tombstone.key");
        let a = TombstoneKeys::load_or_create_file(&p).expect("create");
        let b = TombstoneKeys::load_or_create_file(&p).expect("reload");
        assert_eq!(a.check_value(), b.check_value());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&p).expect("meta").permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
    }
}

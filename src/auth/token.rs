//! Token format and issuance. A token is `cust_<id>_<secret>`: the id is looked up
//! by primary key (never scan-and-verify) and only an argon2id hash of the secret
//! is stored. The plaintext exists once, in the issuer's output.

use crate::store::{self, Db, StoreError};
use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, SaltString, rand_core::OsRng};
use base64::Engine;
use rand::RngCore;
use std::fmt;
use std::str::FromStr;

pub const PREFIX: &str = "cust_";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The SCIM API (`/scim/v2`), for identity providers.
    Scim,
    /// The SSO gate (`/gate/v1`).
    Gate,
    /// Content-ledger writes only, for a platform's sync job.
    Ledger,
    /// The admin API (`/admin/v1`).
    Admin,
    /// The admin API's reads only: audit, receipts, disposals, policy,
    /// tombstones; every route that changes data refuses it.
    Auditor,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Scim => "scim",
            Scope::Gate => "gate",
            Scope::Ledger => "ledger",
            Scope::Admin => "admin",
            Scope::Auditor => "auditor",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scope {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "scim" => Ok(Scope::Scim),
            "gate" => Ok(Scope::Gate),
            "ledger" => Ok(Scope::Ledger),
            "admin" => Ok(Scope::Admin),
            "auditor" => Ok(Scope::Auditor),
            other => Err(format!(
                "unknown scope '{other}' (expected scim, gate, ledger, admin or auditor)"
            )),
        }
    }
}

/// Splits a presented token into (id, secret) if it has the right shape.
pub fn split(token: &str) -> Option<(&str, &str)> {
    let rest = token.strip_prefix(PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    let id_ok = id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit());
    let secret_ok = secret.len() == 43
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    (id_ok && secret_ok).then_some((id, secret))
}

pub fn hash_secret(secret: &str) -> Result<String, StoreError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(secret.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| StoreError::Config(format!("cannot hash token: {e}")))
}

pub struct NewToken {
    pub id: String,
    pub tenant: String,
    pub plaintext: String,
    /// Whether this call created the tenant.
    pub tenant_created: bool,
}

/// What `issue_token` does when the named tenant does not exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MissingTenant {
    /// Create it (idempotent: an existing tenant is used as it is).
    Create,
    /// Refuse with `StoreError::NotFound`, so a mistyped name makes no tenant.
    Refuse,
}

/// Creates a token (and its tenant when missing); returns the plaintext once.
pub fn create_token(
    db: &Db,
    tenant: &str,
    scope: Scope,
    name: &str,
    acts_as: Option<&str>,
) -> Result<NewToken, StoreError> {
    issue_token(db, tenant, scope, name, acts_as, MissingTenant::Create)
}

/// Creates a token for `tenant`, which must exist unless `missing` says to
/// create it; returns the plaintext once.
pub fn issue_token(
    db: &Db,
    tenant: &str,
    scope: Scope,
    name: &str,
    acts_as: Option<&str>,
    missing: MissingTenant,
) -> Result<NewToken, StoreError> {
    if tenant.trim().is_empty() || name.trim().is_empty() {
        return Err(StoreError::Config(
            "tenant and name must not be empty".into(),
        ));
    }
    let mut id_bytes = [0u8; 8];
    let mut secret_bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut id_bytes);
    rand::rngs::OsRng.fill_bytes(&mut secret_bytes);
    let id = hex::encode(id_bytes);
    let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret_bytes);
    let secret_hash = hash_secret(&secret)?;
    let now = store::time::now();
    let tenant_created = db.write(|c| {
        let (t, created) = match store::tokens::find_tenant(c, tenant)? {
            Some(t) => (t, false),
            None if missing == MissingTenant::Create => {
                (store::tokens::ensure_tenant(c, tenant, &now)?, true)
            }
            None => return Err(StoreError::NotFound),
        };
        store::tokens::insert(
            c,
            &store::tokens::TokenRow {
                id: id.clone(),
                tenant_id: t.id,
                name: name.to_string(),
                scope: scope.as_str().to_string(),
                secret_hash,
                acts_as: acts_as.map(str::to_string),
                created_at: now.clone(),
                revoked_at: None,
            },
        )?;
        Ok(created)
    })?;
    Ok(NewToken {
        plaintext: format!("{PREFIX}{id}_{secret}"),
        id,
        tenant: tenant.to_string(),
        tenant_created,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_shape() {
        let good = format!("cust_{}_{}", "0123456789abcdef", "a".repeat(43));
        assert_eq!(
            split(&good),
            Some(("0123456789abcdef", "a".repeat(43).as_str()))
        );
        assert!(split("cust_short_x").is_none());
        assert!(split(&good.replace("cust_", "tok_")).is_none());
        assert!(split(&format!("cust_{}_{}", "0123456789abcdef", "a".repeat(42))).is_none());
        assert_eq!("admin".parse::<Scope>(), Ok(Scope::Admin));
        assert!("root".parse::<Scope>().is_err());
    }
}

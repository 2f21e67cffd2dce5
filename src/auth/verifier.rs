//! Token verification. argon2 costs tens of milliseconds, so results (successes
//! and failures) are cached by (token id, SHA-256 of the presented secret),
//! with what a success admits (tenant, scope, name: a token row never changes
//! except to be revoked). Revocation is still read by primary key on every
//! request, so a revocation by the CLI or another replica takes effect at once. Concurrent argon2 runs are
//! capped so guessed tokens cannot burn the CPU.

use super::token::{Scope, split};
use crate::store::{self, Db, StoreError};
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordVerifier};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const CACHE_TTL: Duration = Duration::from_secs(300);
const CACHE_MAX: usize = 10_000;
const MAX_CONCURRENT_ARGON2: usize = 4;

#[derive(Debug, Clone)]
pub struct Principal {
    pub tenant_id: String,
    pub tenant_name: String,
    pub token_id: String,
    /// The token's name: the actor recorded in audit rows.
    pub token_name: String,
    pub scope: Scope,
    pub acts_as: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("missing credentials")]
    Missing,
    #[error("invalid or revoked token")]
    Invalid,
    #[error("this token's scope is '{have}'; this endpoint needs '{need}'")]
    WrongScope { have: Scope, need: Scope },
    #[error("too many token verifications in progress")]
    Busy,
    #[error(transparent)]
    Store(#[from] StoreError),
}

type Key = (String, [u8; 32]);

/// A cached verification: whether the secret matched, when that was found,
/// and for a match the principal the token's row described.
struct Verified {
    ok: bool,
    at: Instant,
    principal: Option<Principal>,
}

pub struct Verifier {
    cache: Mutex<HashMap<Key, Verified>>,
    /// One lock per key being verified: concurrent requests with the same token
    /// (an IdP's first burst) wait for one argon2 run instead of each paying for it.
    in_progress: Mutex<HashMap<Key, Arc<Mutex<()>>>>,
    running: AtomicUsize,
}

impl Default for Verifier {
    fn default() -> Self {
        Verifier {
            cache: Mutex::new(HashMap::new()),
            in_progress: Mutex::new(HashMap::new()),
            running: AtomicUsize::new(0),
        }
    }
}

struct RunningGuard<'a>(&'a AtomicUsize);
impl Drop for RunningGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Verifier {
    /// Blocking: call from a blocking thread.
    pub fn verify(
        &self,
        db: &Db,
        presented: &str,
        allowed: &[Scope],
    ) -> Result<Principal, AuthError> {
        let (id, secret) = split(presented).ok_or(AuthError::Invalid)?;
        let (row, tenant_name) = db
            .read(|c| store::tokens::find_with_tenant(c, id))?
            .ok_or(AuthError::Invalid)?;
        if row.revoked_at.is_some() {
            return Err(AuthError::Invalid);
        }
        let digest: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
        let key = (row.id.clone(), digest);
        let ok = match self.cached(&key) {
            Some(ok) => ok,
            None => {
                let slot = {
                    let mut map = self.in_progress.lock().unwrap_or_else(|p| p.into_inner());
                    Arc::clone(map.entry(key.clone()).or_default())
                };
                let _one_at_a_time = slot.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(ok) = self.cached(&key) {
                    return self.finish(ok, row, &tenant_name, allowed);
                }
                if self.running.fetch_add(1, Ordering::SeqCst) >= MAX_CONCURRENT_ARGON2 {
                    self.running.fetch_sub(1, Ordering::SeqCst);
                    self.in_progress
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .remove(&key);
                    return Err(AuthError::Busy);
                }
                let _g = RunningGuard(&self.running);
                let ok = PasswordHash::new(&row.secret_hash)
                    .map(|h| {
                        Argon2::default()
                            .verify_password(secret.as_bytes(), &h)
                            .is_ok()
                    })
                    .unwrap_or(false);
                let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
                if cache.len() >= CACHE_MAX {
                    cache.retain(|_, v| v.at.elapsed() < CACHE_TTL);
                    if cache.len() >= CACHE_MAX {
                        cache.clear();
                    }
                }
                let principal = ok.then(|| principal_of(&row, &tenant_name)).flatten();
                cache.insert(
                    key.clone(),
                    Verified {
                        ok,
                        at: Instant::now(),
                        principal,
                    },
                );
                drop(cache);
                self.in_progress
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&key);
                ok
            }
        };
        self.finish(ok, row, &tenant_name, allowed)
    }

    /// The fast path, safe to call on an async worker: when this secret's
    /// argon2 result is cached and the database is SQLite with an idle pooled
    /// connection, the revocation check is one cached primary-key read of a
    /// local file (microseconds), done here instead of on a blocking thread,
    /// which would cost two thread hand-offs. `None` means "take the blocking
    /// path" (`verify`): not cached, PostgreSQL (a network round trip), or no
    /// idle connection (waiting for one must not stall the worker).
    pub fn verify_cached(
        &self,
        db: &Db,
        presented: &str,
        allowed: &[Scope],
    ) -> Option<Result<Principal, AuthError>> {
        let idle = db.idle_sqlite()?;
        let (id, secret) = split(presented)?;
        let digest: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
        let principal = {
            let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            let hit = cache
                .get(&(id.to_string(), digest))
                .filter(|v| v.at.elapsed() < CACHE_TTL)?;
            if !hit.ok {
                return Some(Err(AuthError::Invalid));
            }
            hit.principal.clone()?
        };
        match idle.read(|c| store::tokens::is_live(c, id)) {
            Err(StoreError::WouldWait) => None,
            Err(e) => Some(Err(e.into())),
            Ok(false) => Some(Err(AuthError::Invalid)),
            Ok(true) => Some(admit(principal, allowed)),
        }
    }

    fn cached(&self, key: &Key) -> Option<bool> {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .get(key)
            .filter(|v| v.at.elapsed() < CACHE_TTL)
            .map(|v| v.ok)
    }

    fn finish(
        &self,
        ok: bool,
        row: store::tokens::TokenRow,
        tenant_name: &str,
        allowed: &[Scope],
    ) -> Result<Principal, AuthError> {
        if !ok {
            return Err(AuthError::Invalid);
        }
        admit(
            principal_of(&row, tenant_name).ok_or(AuthError::Invalid)?,
            allowed,
        )
    }
}

/// What a token's row admits; `None` for a scope this build does not know.
fn principal_of(row: &store::tokens::TokenRow, tenant_name: &str) -> Option<Principal> {
    Some(Principal {
        tenant_id: row.tenant_id.clone(),
        tenant_name: tenant_name.to_string(),
        token_id: row.id.clone(),
        token_name: row.name.clone(),
        scope: row.scope.parse().ok()?,
        acts_as: row.acts_as.clone(),
    })
}

fn admit(p: Principal, allowed: &[Scope]) -> Result<Principal, AuthError> {
    if !allowed.contains(&p.scope) {
        return Err(AuthError::WrongScope {
            have: p.scope,
            need: allowed.first().copied().unwrap_or(Scope::Admin),
        });
    }
    Ok(p)
}

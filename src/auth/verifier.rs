//! Token verification. argon2 costs tens of milliseconds, so results are cached
//! by (token id, SHA-256 of the presented secret): successes with what they
//! admit (tenant, scope, name: a token row never changes except to be revoked),
//! failures in a separate cache so a flood of wrong secrets cannot evict the
//! successes. Both are LRUs with a TTL. On SQLite revocation is still read by
//! primary key on every request, so a revocation by the CLI takes effect at
//! once; on PostgreSQL a token's liveness is cached until a replica's
//! listener hears of its revocation, or for at most a second without one
//! (`revocation`).
//!
//! Fairness (issue 14): argon2 only runs for a key that is in neither cache,
//! for a token id and a client address that have not failed too often in the
//! current window, and only in a slot: at most one run per token id at a
//! time, at most half the slots per tenant, and a global cap. So one token
//! id's wrong secrets cost at most `max_failures_per_token` argon2 runs per
//! window and one slot, and another tenant's first verification still finds
//! a slot. Concurrent requests with the same key wait for one run and share
//! its result (single-flight); a key whose slot is taken waits its turn in a
//! bounded queue (per tenant and in total) for a bounded time, so an honest
//! IdP's first burst is not answered 429 (Entra quarantines a job on repeated
//! 429s): 429 only when the queue is full or the wait runs out. Waiting
//! happens on the blocking thread `verify_from` already runs on, never on an
//! HTTP worker, and the queue bound also bounds the threads parked. The
//! price: while a token id is locked, its *correct* secret is refused too
//! unless already cached (429 with Retry-After).

use super::limits::{FailureWindows, TtlLru, address_group};
use super::revocation::Revocations;
use super::token::{Scope, split};
use crate::clock::{Clock, SystemClock};
use crate::store::{self, Backend, Db, StoreError};
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordVerifier};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroUsize;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Verified keys kept (successes and failures each).
const CACHE_MAX: usize = 10_000;
/// How long a verification is trusted before argon2 runs again.
const CACHE_TTL_SECONDS: i64 = 300;
/// Token ids and client addresses whose failures are counted (each).
const FAILURE_KEYS_MAX: usize = 10_000;
/// Requests waiting for a verification (their key's single flight or a
/// slot), in total; one tenant may hold a quarter of them. Each waits on a
/// blocking thread, so this also bounds the threads parked here.
const QUEUE_MAX: usize = 128;
/// How long a request waits for its key's verification or a slot before
/// 429: many argon2 runs' worth, far below an IdP's request timeout.
const QUEUE_WAIT: Duration = Duration::from_secs(3);

/// The verifier's limits (config keys `auth_*`).
#[derive(Debug, Clone)]
pub struct AuthLimits {
    /// argon2 runs at once, over all callers.
    pub max_concurrent: usize,
    /// Failed verifications of one token id per window before it is locked.
    pub max_failures_per_token: u32,
    /// Failed verifications (wrong secret, unknown or revoked token) from one
    /// client address per window before it is locked; 0 turns this off.
    pub max_failures_per_address: u32,
    pub window: chrono::Duration,
    /// PostgreSQL: how long a token read live is trusted while no
    /// revocation listener is connected (at most one second).
    pub revocation_ttl: Duration,
}

impl Default for AuthLimits {
    fn default() -> Self {
        AuthLimits {
            max_concurrent: 4,
            max_failures_per_token: 10,
            max_failures_per_address: 100,
            window: chrono::Duration::seconds(60),
            revocation_ttl: Duration::from_secs(1),
        }
    }
}

impl AuthLimits {
    pub fn from_settings(s: &crate::config::Settings) -> AuthLimits {
        AuthLimits {
            max_concurrent: s.auth_max_concurrent_verifications,
            max_failures_per_token: s.auth_max_failures_per_token,
            max_failures_per_address: s.auth_max_failures_per_address,
            window: chrono::Duration::seconds(
                i64::try_from(s.auth_failure_window_seconds).unwrap_or(i64::MAX / 1000),
            ),
            revocation_ttl: Duration::from_millis(s.revocation_ttl_ms),
        }
    }

    /// One tenant may hold at most half the slots (at least one).
    fn per_tenant(&self) -> usize {
        (self.max_concurrent / 2).max(1)
    }
}

/// One tenant may hold at most a quarter of the queue.
fn queue_per_tenant() -> usize {
    (QUEUE_MAX / 4).max(1)
}

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
    #[error("{}", wrong_scope(*have, allowed))]
    WrongScope { have: Scope, allowed: Vec<Scope> },
    #[error("too many token verifications in progress")]
    Busy,
    /// Too many failed verifications for this token id or client address in
    /// the current window; refused without running argon2.
    #[error("too many failed authentication attempts")]
    TooManyFailures { retry_after: u32 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

type Key = (String, [u8; 32]);

/// argon2 runs in progress: in total, per token id, per tenant; and the
/// requests queued for a run (a slot or their key's flight), in total and per
/// tenant.
#[derive(Default)]
struct Slots {
    total: usize,
    by_token: HashMap<String, usize>,
    by_tenant: HashMap<String, usize>,
    queued: usize,
    queued_by_tenant: HashMap<String, usize>,
}

/// A key's verification in progress: waiters sleep on `done` until its
/// leader finishes (whatever the outcome), then read the caches again.
#[derive(Default)]
struct Flight {
    finished: Mutex<bool>,
    done: Condvar,
}

pub struct Verifier {
    limits: AuthLimits,
    clock: Arc<dyn Clock>,
    accepted: Mutex<TtlLru<Key, Principal>>,
    refused: Mutex<TtlLru<Key, ()>>,
    failures_by_token: Mutex<FailureWindows<String>>,
    failures_by_address: Mutex<FailureWindows<IpAddr>>,
    /// The verification in flight per key: concurrent requests with the same
    /// token (an IdP's first burst) wait for one argon2 run instead of each
    /// paying for it.
    in_progress: Mutex<HashMap<Key, Arc<Flight>>>,
    slots: Mutex<Slots>,
    /// Signalled when a slot is given back.
    slot_freed: Condvar,
    /// PostgreSQL: tokens known live, and the listener keeping that true.
    pub revocations: Arc<Revocations>,
}

impl Default for Verifier {
    fn default() -> Self {
        Verifier::new(AuthLimits::default(), Arc::new(SystemClock))
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn nonzero(n: usize) -> NonZeroUsize {
    NonZeroUsize::new(n).unwrap_or(NonZeroUsize::MIN)
}

/// Holds one argon2 slot; gives it back on drop.
struct SlotGuard<'a> {
    slots: &'a Mutex<Slots>,
    freed: &'a Condvar,
    token: String,
    tenant: String,
}

impl Drop for SlotGuard<'_> {
    fn drop(&mut self) {
        let mut s = lock(self.slots);
        self.freed.notify_all();
        s.total = s.total.saturating_sub(1);
        if let Some(n) = s.by_token.get_mut(&self.token) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                s.by_token.remove(&self.token);
            }
        }
        if let Some(n) = s.by_tenant.get_mut(&self.tenant) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                s.by_tenant.remove(&self.tenant);
            }
        }
    }
}

/// Leads a key's verification: on drop (however it ends) the flight is
/// removed and its waiters are woken to read the caches it filled.
struct Leading<'a> {
    map: &'a Mutex<HashMap<Key, Arc<Flight>>>,
    key: &'a Key,
    flight: Arc<Flight>,
}

impl Drop for Leading<'_> {
    fn drop(&mut self) {
        lock(self.map).remove(self.key);
        *lock(&self.flight.finished) = true;
        self.flight.done.notify_all();
    }
}

/// A place in the queue (a slot or a key's flight); given back on drop.
struct Queued<'a> {
    slots: &'a Mutex<Slots>,
    tenant: String,
}

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        let mut s = lock(self.slots);
        s.queued = s.queued.saturating_sub(1);
        if let Some(n) = s.queued_by_tenant.get_mut(&self.tenant) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                s.queued_by_tenant.remove(&self.tenant);
            }
        }
    }
}

fn seconds(d: chrono::Duration) -> u32 {
    u32::try_from(d.num_seconds().max(0) + 1).unwrap_or(u32::MAX)
}

impl Verifier {
    pub fn new(limits: AuthLimits, clock: Arc<dyn Clock>) -> Verifier {
        let ttl = chrono::Duration::seconds(CACHE_TTL_SECONDS);
        Verifier {
            accepted: Mutex::new(TtlLru::new(nonzero(CACHE_MAX), ttl)),
            refused: Mutex::new(TtlLru::new(nonzero(CACHE_MAX), ttl)),
            failures_by_token: Mutex::new(FailureWindows::new(
                nonzero(FAILURE_KEYS_MAX),
                limits.max_failures_per_token,
                limits.window,
            )),
            failures_by_address: Mutex::new(FailureWindows::new(
                nonzero(FAILURE_KEYS_MAX),
                limits.max_failures_per_address,
                limits.window,
            )),
            in_progress: Mutex::new(HashMap::new()),
            slots: Mutex::new(Slots::default()),
            slot_freed: Condvar::new(),
            revocations: Arc::new(Revocations::new(limits.revocation_ttl)),
            limits,
            clock,
        }
    }

    /// Blocking: call from a blocking thread. No client address: only the
    /// per-token-id limits apply.
    pub fn verify(
        &self,
        db: &Db,
        presented: &str,
        allowed: &[Scope],
    ) -> Result<Principal, AuthError> {
        self.verify_from(db, presented, allowed, None)
    }

    /// Blocking: call from a blocking thread. `client` is the caller's address
    /// (when known) for the per-address limits.
    pub fn verify_from(
        &self,
        db: &Db,
        presented: &str,
        allowed: &[Scope],
        client: Option<IpAddr>,
    ) -> Result<Principal, AuthError> {
        let Some((id, secret)) = split(presented) else {
            self.record_address_failure(client);
            return Err(AuthError::Invalid);
        };
        let digest: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
        let key = (id.to_string(), digest);
        // Locked or known-wrong: refused before the database and argon2.
        let cached = self.accepted(&key);
        if cached.is_none() {
            self.refuse_early(&key, client)?;
        }
        let ticket = self.revocations.before_read();
        let Some((row, tenant_name)) = db.read(|c| store::tokens::find_with_tenant(c, id))? else {
            self.refuse_locked_address(client)?;
            self.record_address_failure(client);
            return Err(AuthError::Invalid);
        };
        if row.revoked_at.is_some() {
            self.record_address_failure(client);
            return Err(AuthError::Invalid);
        }
        if db.backend() == Backend::Postgres {
            self.revocations.read_live(id, ticket);
        }
        if let Some(p) = cached {
            return admit(p, allowed);
        }
        let deadline = Instant::now() + QUEUE_WAIT;
        // Lead this key's verification, or wait for the one in flight and
        // read its result from the caches (a leader that ended without one,
        // e.g. refused a slot, leaves the next waiter to lead).
        let _leading = loop {
            if let Some(p) = self.accepted(&key) {
                return admit(p, allowed);
            }
            self.refuse_early(&key, client)?;
            let flight = {
                let mut map = lock(&self.in_progress);
                match map.get(&key) {
                    Some(f) => Arc::clone(f),
                    None => {
                        let flight = Arc::new(Flight::default());
                        map.insert(key.clone(), Arc::clone(&flight));
                        break Leading {
                            map: &self.in_progress,
                            key: &key,
                            flight,
                        };
                    }
                }
            };
            let _queued = self.enqueue(&row.tenant_id)?;
            self.await_flight(&flight, deadline)?;
        };
        let _running = self.acquire_slot_by(id, &row.tenant_id, deadline)?;
        // While this request waited, the id may have been locked.
        self.refuse_early(&key, client)?;
        let ok = PasswordHash::new(&row.secret_hash)
            .map(|h| {
                Argon2::default()
                    .verify_password(secret.as_bytes(), &h)
                    .is_ok()
            })
            .unwrap_or(false);
        let now = self.clock.now();
        if !ok {
            lock(&self.refused).insert(key.clone(), (), now);
            lock(&self.failures_by_token).record(id.to_string(), now);
            self.record_address_failure(client);
            return Err(AuthError::Invalid);
        }
        let principal = principal_of(&row, &tenant_name).ok_or(AuthError::Invalid)?;
        lock(&self.accepted).insert(key.clone(), principal.clone(), now);
        admit(principal, allowed)
    }

    /// The fast path, safe to call on an async worker. A key cached as wrong,
    /// or a token id or client address locked for failures, is refused here
    /// (no thread hand-off, no database, no argon2). When this secret's
    /// success is cached and the database is SQLite with an idle pooled
    /// connection, the revocation check is one cached primary-key read of a
    /// local file (microseconds), done here instead of on a blocking thread,
    /// which would cost two thread hand-offs; on PostgreSQL it is answered
    /// from the liveness cache (`revocation`) when fresh. `None` means "take
    /// the blocking path" (`verify_from`): not cached, PostgreSQL without a
    /// fresh liveness (a network round trip), or no idle connection (waiting
    /// for one must not stall the worker).
    pub fn verify_cached(
        &self,
        db: &Db,
        presented: &str,
        allowed: &[Scope],
        client: Option<IpAddr>,
    ) -> Option<Result<Principal, AuthError>> {
        match self.cached(presented, allowed, client)? {
            Err(e) => Some(Err(e)),
            Ok(p) => match self.still_live_now(db, &p)? {
                Ok(()) => Some(Ok(p)),
                Err(e) => Some(Err(e)),
            },
        }
    }

    /// What the caches say, without the database (no revocation check: see
    /// `still_live_now` / `still_live`): `Some(Ok)` for a cached success
    /// admitting one of `allowed`, `Some(Err)` for a refusal that needs no
    /// database, `None` when only `verify_from` can tell.
    pub fn cached(
        &self,
        presented: &str,
        allowed: &[Scope],
        client: Option<IpAddr>,
    ) -> Option<Result<Principal, AuthError>> {
        let Some((id, secret)) = split(presented) else {
            // Malformed: no lookup can match it, so no blocking thread either.
            if let Some(d) = client.and_then(|a| {
                lock(&self.failures_by_address).locked_for(&address_group(a), self.clock.now())
            }) {
                return Some(Err(AuthError::TooManyFailures {
                    retry_after: seconds(d),
                }));
            }
            self.record_address_failure(client);
            return Some(Err(AuthError::Invalid));
        };
        let digest: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
        let key = (id.to_string(), digest);
        let Some(principal) = self.accepted(&key) else {
            return self.refuse_early(&key, client).err().map(Err);
        };
        Some(admit(principal, allowed))
    }

    /// The revocation check of a cached principal without blocking: on
    /// PostgreSQL from the liveness cache (`revocation`), on SQLite on an idle
    /// connection (see `verify_cached`); `None` when it would wait or
    /// PostgreSQL must be asked: then `still_live` on a blocking thread.
    pub fn still_live_now(&self, db: &Db, p: &Principal) -> Option<Result<(), AuthError>> {
        if db.backend() == Backend::Postgres {
            return self.revocations.fresh(&p.token_id).then_some(Ok(()));
        }
        let idle = db.idle_sqlite()?;
        match idle.read(|c| store::tokens::is_live(c, &p.token_id)) {
            Err(StoreError::WouldWait) => None,
            Err(e) => Some(Err(e.into())),
            Ok(false) => Some(Err(AuthError::Invalid)),
            Ok(true) => Some(Ok(())),
        }
    }

    /// Blocking: the revocation check of a cached principal.
    pub fn still_live(&self, db: &Db, p: &Principal) -> Result<(), AuthError> {
        let pg = db.backend() == Backend::Postgres;
        if pg && self.revocations.fresh(&p.token_id) {
            return Ok(());
        }
        let ticket = self.revocations.before_read();
        if !db.read(|c| store::tokens::is_live(c, &p.token_id))? {
            return Err(AuthError::Invalid);
        }
        if pg {
            self.revocations.read_live(&p.token_id, ticket);
        }
        Ok(())
    }

    fn accepted(&self, key: &Key) -> Option<Principal> {
        lock(&self.accepted).get(key, self.clock.now()).cloned()
    }

    /// Refusals that need no argon2: a secret already found wrong, a token id
    /// or address over its failure budget.
    fn refuse_early(&self, key: &Key, client: Option<IpAddr>) -> Result<(), AuthError> {
        let now = self.clock.now();
        if lock(&self.refused).get(key, now).is_some() {
            return Err(AuthError::Invalid);
        }
        if let Some(d) = lock(&self.failures_by_token).locked_for(&key.0, now) {
            return Err(AuthError::TooManyFailures {
                retry_after: seconds(d),
            });
        }
        // A locked address is refused only for token ids that have failed
        // themselves: a tenant whose token has not failed is not locked out
        // because another caller behind the same address (a NAT, a proxy,
        // loopback) guessed. Unknown ids are refused after their lookup.
        if lock(&self.failures_by_token).count(&key.0, now) > 0 {
            self.refuse_locked_address(client)?;
        }
        Ok(())
    }

    fn refuse_locked_address(&self, client: Option<IpAddr>) -> Result<(), AuthError> {
        if let Some(a) = client
            && let Some(d) =
                lock(&self.failures_by_address).locked_for(&address_group(a), self.clock.now())
        {
            return Err(AuthError::TooManyFailures {
                retry_after: seconds(d),
            });
        }
        Ok(())
    }

    fn record_address_failure(&self, client: Option<IpAddr>) {
        if let Some(a) = client {
            lock(&self.failures_by_address).record(address_group(a), self.clock.now());
        }
    }

    /// A place in the queue for `tenant`; `Busy` when the queue, or the
    /// tenant's quarter of it, is full.
    fn enqueue(&self, tenant: &str) -> Result<Queued<'_>, AuthError> {
        let mut s = lock(&self.slots);
        let mine = s.queued_by_tenant.get(tenant).copied().unwrap_or(0);
        if s.queued >= QUEUE_MAX || mine >= queue_per_tenant() {
            return Err(AuthError::Busy);
        }
        s.queued += 1;
        *s.queued_by_tenant.entry(tenant.to_string()).or_default() += 1;
        Ok(Queued {
            slots: &self.slots,
            tenant: tenant.to_string(),
        })
    }

    /// Waits until `flight` has finished, or `Busy` at `deadline`.
    fn await_flight(&self, flight: &Flight, deadline: Instant) -> Result<(), AuthError> {
        let mut finished = lock(&flight.finished);
        while !*finished {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(AuthError::Busy);
            }
            finished = flight
                .done
                .wait_timeout(finished, left)
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
        }
        Ok(())
    }

    /// An argon2 slot, waiting in the queue for one until `deadline`.
    fn acquire_slot_by(
        &self,
        token: &str,
        tenant: &str,
        deadline: Instant,
    ) -> Result<SlotGuard<'_>, AuthError> {
        if let Ok(g) = self.acquire_slot(token, tenant) {
            return Ok(g);
        }
        let _queued = self.enqueue(tenant)?;
        let mut s = lock(&self.slots);
        loop {
            if self.slot_free(&s, token, tenant) {
                return Ok(self.take_slot(&mut s, token, tenant));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(AuthError::Busy);
            }
            s = self
                .slot_freed
                .wait_timeout(s, left)
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
        }
    }

    /// An argon2 slot now: one per token id, half the slots per tenant, all
    /// of them in total; `Busy` if none is free. Shared per tenant, not per
    /// address: tenants behind one address (a NAT, a proxy, loopback) must
    /// not share one tenant's budget.
    fn acquire_slot(&self, token: &str, tenant: &str) -> Result<SlotGuard<'_>, AuthError> {
        let mut s = lock(&self.slots);
        if !self.slot_free(&s, token, tenant) {
            return Err(AuthError::Busy);
        }
        Ok(self.take_slot(&mut s, token, tenant))
    }

    fn slot_free(&self, s: &Slots, token: &str, tenant: &str) -> bool {
        s.total < self.limits.max_concurrent
            && s.by_token.get(token).copied().unwrap_or(0) == 0
            && s.by_tenant.get(tenant).copied().unwrap_or(0) < self.limits.per_tenant()
    }

    fn take_slot(&self, s: &mut Slots, token: &str, tenant: &str) -> SlotGuard<'_> {
        s.total += 1;
        *s.by_token.entry(token.to_string()).or_default() += 1;
        *s.by_tenant.entry(tenant.to_string()).or_default() += 1;
        SlotGuard {
            slots: &self.slots,
            freed: &self.slot_freed,
            token: token.to_string(),
            tenant: tenant.to_string(),
        }
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

/// The 403's detail: the token's scope and the scopes the endpoint takes; an
/// auditor token refused by an admin route is told it is read-only (every
/// admin route it may not call changes data).
fn wrong_scope(have: Scope, allowed: &[Scope]) -> String {
    let names: Vec<String> = allowed.iter().map(|s| format!("'{s}'")).collect();
    let need = match names.split_last() {
        None => "no token scope".to_string(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
    };
    if have == Scope::Auditor && allowed.contains(&Scope::Admin) {
        format!("auditor tokens are read-only: this request changes data and needs {need}")
    } else {
        format!("this token's scope is '{have}'; this endpoint needs {need}")
    }
}

fn admit(p: Principal, allowed: &[Scope]) -> Result<Principal, AuthError> {
    if !allowed.contains(&p.scope) {
        return Err(AuthError::WrongScope {
            have: p.scope,
            allowed: allowed.to_vec(),
        });
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argon2_slots_are_shared_fairly() {
        let v = Verifier::default();
        let first = v.acquire_slot("tok-a", "tenant-a");
        assert!(first.is_ok());
        // The same token id cannot take a second slot, whatever its secret.
        assert!(matches!(
            v.acquire_slot("tok-a", "tenant-a"),
            Err(AuthError::Busy)
        ));
        // One tenant holds at most half of the (default four) slots.
        let second = v.acquire_slot("tok-b", "tenant-a");
        assert!(second.is_ok());
        assert!(matches!(
            v.acquire_slot("tok-c", "tenant-a"),
            Err(AuthError::Busy)
        ));
        // Other tenants still get the rest, up to the global cap.
        let third = v.acquire_slot("tok-d", "tenant-b");
        let fourth = v.acquire_slot("tok-e", "tenant-c");
        assert!(third.is_ok() && fourth.is_ok());
        assert!(matches!(
            v.acquire_slot("tok-f", "tenant-d"),
            Err(AuthError::Busy)
        ));
        // Slots come back on drop, and the maps do not keep empty entries.
        drop((first, second, third, fourth));
        let s = lock(&v.slots);
        assert_eq!((s.total, s.by_token.len(), s.by_tenant.len()), (0, 0, 0));
    }

    /// A busy slot is waited for, not refused: the waiter takes the slot as
    /// soon as it is given back, and gives up (`Busy`) only at its deadline.
    #[test]
    fn a_busy_slot_is_queued_for_until_the_deadline() {
        let v = Verifier::default();
        let held = v.acquire_slot("tok-a", "tenant-a");
        assert!(held.is_ok());
        let (taking, took) = std::sync::mpsc::channel();
        std::thread::scope(|scope| {
            scope.spawn(|| {
                let deadline = Instant::now() + Duration::from_secs(30);
                let got = v.acquire_slot_by("tok-a", "tenant-a", deadline).is_ok();
                let _ = taking.send(got);
            });
            // Bounded poll: the waiter is queued before the slot is given back.
            let until = Instant::now() + Duration::from_secs(10);
            while lock(&v.slots).queued == 0 && Instant::now() < until {
                std::thread::yield_now();
            }
            assert_eq!(lock(&v.slots).queued, 1, "the second request waits");
            drop(held);
            assert_eq!(took.recv_timeout(Duration::from_secs(10)).ok(), Some(true));
        });
        let held = v.acquire_slot("tok-a", "tenant-a");
        assert!(held.is_ok());
        assert!(matches!(
            v.acquire_slot_by("tok-a", "tenant-a", Instant::now()),
            Err(AuthError::Busy)
        ));
        drop(held);
        let s = lock(&v.slots);
        assert_eq!((s.queued, s.queued_by_tenant.len(), s.total), (0, 0, 0));
    }

    /// The queue is bounded in total and per tenant (a quarter): one tenant
    /// filling its share leaves the rest to others.
    #[test]
    fn the_queue_is_bounded_per_tenant_and_in_total() {
        let v = Verifier::default();
        let mine: Vec<_> = (0..queue_per_tenant())
            .map_while(|_| v.enqueue("tenant-a").ok())
            .collect();
        assert_eq!(mine.len(), queue_per_tenant());
        assert!(matches!(v.enqueue("tenant-a"), Err(AuthError::Busy)));
        let others: Vec<_> = (0..QUEUE_MAX)
            .map_while(|i| v.enqueue(&format!("tenant-{}", i % 8)).ok())
            .collect();
        assert_eq!(mine.len() + others.len(), QUEUE_MAX, "total cap");
        drop((mine, others));
        assert_eq!(lock(&v.slots).queued, 0);
    }

    #[test]
    fn locked_token_id_is_refused_before_argon2_until_the_window_ends() {
        let clock = Arc::new(crate::clock::ManualClock::new(chrono::Utc::now()));
        let limits = AuthLimits {
            max_failures_per_token: 2,
            ..AuthLimits::default()
        };
        let v = Verifier::new(limits, clock.clone());
        let key = |s: u8| ("0123456789abcdef".to_string(), [s; 32]);
        for s in 0..2 {
            assert!(v.refuse_early(&key(s), None).is_ok());
            let now = clock.now();
            lock(&v.refused).insert(key(s), (), now);
            lock(&v.failures_by_token).record(key(s).0, now);
        }
        assert!(matches!(
            v.refuse_early(&key(0), None),
            Err(AuthError::Invalid)
        ));
        assert!(matches!(
            v.refuse_early(&key(9), None),
            Err(AuthError::TooManyFailures { retry_after }) if (1..=61).contains(&retry_after)
        ));
        clock.advance(chrono::Duration::seconds(61));
        assert!(v.refuse_early(&key(9), None).is_ok());
    }
}

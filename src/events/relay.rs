//! Webhook delivery. One relay per (tenant, endpoint) holds a lease, so events
//! reach each endpoint in `seq` order, at least once; progress lives in the
//! database, so delivery survives restarts and moves between replicas. Failures
//! back off exponentially with a cap and jitter (`RetrySchedule`); once the
//! retries span `pause_after` (a day by default) the endpoint is paused (the
//! events feed stays the source of truth).
//!
//! A pass over an idle endpoint only reads (its cursor and whether an event
//! is due): the lease is claimed, a write, only when there is something to
//! send, so idle endpoints cost the SQLite writer nothing. The lease outlasts
//! any one send (`lease_for`) and is renewed before a send whenever less than
//! a send's worth is left, so a slow receiver cannot lose it mid-send to
//! another replica, which would then send the same events concurrently.
//!
//! Each (tenant, endpoint) is delivered by its own worker thread, each request
//! bounded by a timeout, with a cap on workers at once: a slow or dead endpoint
//! delays only its own events (issue 14), never another endpoint's or tenant's.

use super::signing::{Scheme, Signer};
use crate::clock::Clock;
use crate::store::{Db, StoreError, outbox, time, tokens, webhook_cursors};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const BATCH: i64 = 50;
/// The shortest lease; longer when the send timeout asks for it (`lease_for`).
const LEASE_MIN: Duration = Duration::from_secs(60);
/// Room beyond a send's timeout for recording its outcome.
const LEASE_MARGIN: Duration = Duration::from_secs(10);

/// One endpoint a tenant's policy names, the environment variables holding
/// its signing secret (and, mid-rotation, the previous one), and its scheme.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    pub url: String,
    pub secret_env: String,
    pub previous_secret_env: Option<String>,
    pub signature: Scheme,
}

/// What delivery reads from the service around it: each tenant's endpoints,
/// from the policy in force (asked on every pass, so a reloaded policy applies
/// to the next one), and the time.
pub trait Context: Send + Sync {
    /// The endpoints the named tenant's policy delivers to.
    fn webhooks(&self, tenant_name: &str) -> Vec<Webhook>;
    fn clock(&self) -> &dyn Clock;
}

impl<C: Context + ?Sized> Context for Arc<C> {
    fn webhooks(&self, tenant_name: &str) -> Vec<Webhook> {
        (**self).webhooks(tenant_name)
    }
    fn clock(&self) -> &dyn Clock {
        (**self).clock()
    }
}

/// Reads a webhook secret by the environment variable name the policy gives.
pub type SecretLookup = Box<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Delivery limits (config keys `webhook_timeout_seconds`,
/// `webhook_max_concurrent_deliveries`).
#[derive(Debug, Clone)]
pub struct RelayOptions {
    /// Per request: connect, send, and the receiver's answer. Below `LEASE`.
    pub timeout: Duration,
    /// Endpoints delivered to at once (one thread each).
    pub max_concurrent: usize,
    /// When a failing endpoint is retried, and when it is paused.
    pub retry: RetrySchedule,
}

impl Default for RelayOptions {
    fn default() -> Self {
        RelayOptions {
            timeout: Duration::from_secs(10),
            max_concurrent: 16,
            retry: RetrySchedule::default(),
        }
    }
}

impl RelayOptions {
    pub fn from_settings(s: &crate::config::Settings) -> RelayOptions {
        RelayOptions {
            timeout: Duration::from_secs(s.webhook_timeout_seconds),
            max_concurrent: s.webhook_max_concurrent_deliveries.max(1),
            retry: RetrySchedule {
                base: Duration::from_secs(s.webhook_retry_base_seconds),
                max: Duration::from_secs(s.webhook_retry_max_seconds),
                pause_after: Duration::from_secs(s.webhook_pause_after_seconds),
            },
        }
    }
}

/// Retries of a failing endpoint: the n-th failure waits `base · 2^(n-1)`,
/// at most `max`, each with ±10 % jitter (so replicas and endpoints that
/// failed together do not retry together); the failure after which the
/// nominal waits add up to `pause_after` pauses the endpoint (config keys
/// `webhook_retry_base_seconds`, `webhook_retry_max_seconds`,
/// `webhook_pause_after_seconds`; by default 30 s, 1 h, a day: 31 attempts
/// over ~24 h).
#[derive(Debug, Clone)]
pub struct RetrySchedule {
    pub base: Duration,
    pub max: Duration,
    pub pause_after: Duration,
}

impl Default for RetrySchedule {
    fn default() -> Self {
        RetrySchedule {
            base: Duration::from_secs(30),
            max: Duration::from_secs(3_600),
            pause_after: Duration::from_secs(86_400),
        }
    }
}

impl RetrySchedule {
    /// The wait after the `failures`-th failure in a row (≥ 1), before jitter.
    pub fn delay(&self, failures: i32) -> Duration {
        let doublings = u32::try_from(failures.saturating_sub(1).clamp(0, 40)).unwrap_or(40);
        self.base
            .checked_mul(2_u32.saturating_pow(doublings.min(31)))
            .unwrap_or(self.max)
            .min(self.max)
    }

    /// The failure in a row that pauses the endpoint: the first whose nominal
    /// waits so far (after failures 1 … n-1) add up to `pause_after`.
    pub fn pausing_failure(&self) -> i32 {
        let mut waited = Duration::ZERO;
        let mut n = 1;
        // Bounded: every wait is at least `base` ≥ 1 s (config), at most
        // `pause_after / base` + 1 failures; the cap guards a zero base.
        while waited < self.pause_after && n < 100_000 {
            waited += self.delay(n);
            n += 1;
        }
        n
    }

    /// The nominal time from the first failure to the pause.
    pub fn span(&self) -> Duration {
        (1..self.pausing_failure()).map(|k| self.delay(k)).sum()
    }

    /// `delay(failures)` with ±10 % jitter.
    fn jittered(&self, failures: i32) -> chrono::Duration {
        use rand::Rng;
        let d = self
            .delay(failures)
            .mul_f64(rand::thread_rng().gen_range(0.9..1.1));
        chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
    }
}

/// The lease a relay takes on an endpoint: long enough for one send (its
/// timeout) and for recording the outcome, twice over, and at least a minute.
fn lease_for(timeout: Duration) -> Duration {
    timeout
        .saturating_mul(2)
        .saturating_add(LEASE_MARGIN)
        .max(LEASE_MIN)
}

pub struct Relay {
    owner: String,
    agent: ureq::Agent,
    /// Reads a secret by the environment variable name the policy gives.
    secret: SecretLookup,
    max_concurrent: usize,
    /// Per send (the agent's timeout); a lease is renewed before a send when
    /// less than this plus `LEASE_MARGIN` is left.
    timeout: Duration,
    lease: chrono::Duration,
    retry: RetrySchedule,
    /// `retry.pausing_failure()`, computed once.
    pausing_failure: i32,
    /// (tenant id, endpoint) pairs this process's workers are delivering to:
    /// they share one lease owner, so this keeps them to one worker each.
    in_flight: Mutex<HashSet<(String, String)>>,
    /// Where the next pass starts, so a full set of workers does not always
    /// leave the same endpoints for later.
    rotation: AtomicUsize,
    /// Shutdown: no new pass, and each worker stops before its next send and
    /// releases its lease (`stop`).
    stopping: AtomicBool,
}

/// One endpoint of one tenant, with its signing keys.
struct Endpoint {
    tenant_id: String,
    tenant_name: String,
    url: String,
    signer: Signer,
}

/// Marks an endpoint in flight; unmarks it when its worker ends, however it ends.
struct InFlight {
    relay: Arc<Relay>,
    key: (String, String),
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.relay
            .in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.key);
    }
}

/// `t=<unix>,v1=<hex HMAC-SHA256(secret, t + "." + body)>` (the `custodian` scheme).
pub use super::signing::custodian_signature as signature;

impl Relay {
    pub fn new(secret: SecretLookup) -> Relay {
        Relay::with_options(secret, RelayOptions::default())
    }

    pub fn with_options(secret: SecretLookup, opts: RelayOptions) -> Relay {
        let agent = ureq::AgentBuilder::new()
            .timeout(opts.timeout)
            .redirects(0)
            .build();
        Relay {
            owner: uuid::Uuid::new_v4().to_string(),
            agent,
            secret,
            max_concurrent: opts.max_concurrent.max(1),
            timeout: opts.timeout,
            lease: chrono::Duration::from_std(lease_for(opts.timeout))
                .unwrap_or(chrono::Duration::MAX),
            pausing_failure: opts.retry.pausing_failure(),
            retry: opts.retry,
            in_flight: Mutex::new(HashSet::new()),
            rotation: AtomicUsize::new(0),
            stopping: AtomicBool::new(false),
        }
    }

    /// Shutdown: passes start no worker, and running workers stop before
    /// their next send, releasing their leases, so another replica takes
    /// the endpoints over at once rather than after the lease runs out.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
    }

    fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// No worker of this relay is delivering.
    pub fn idle(&self) -> bool {
        self.in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_empty()
    }

    /// Gives up every lease this relay still holds (after `stop`, for the
    /// workers that did not end in time: the process is exiting).
    pub fn release_all(&self, db: &Db) -> Result<usize, StoreError> {
        db.write(|c| webhook_cursors::release_owner(c, &self.owner))
    }

    /// Every tenant's endpoints whose secrets are set and usable.
    fn endpoints<C: Context + ?Sized>(
        &self,
        db: &Db,
        ctx: &C,
    ) -> Result<Vec<Endpoint>, StoreError> {
        let all = db.read(tokens::all_tenants)?;
        let mut out = Vec::new();
        for (tenant_id, name) in all {
            for hook in ctx.webhooks(&name) {
                let Some(signer) = self.signer(&name, &hook) else {
                    continue;
                };
                out.push(Endpoint {
                    tenant_id: tenant_id.clone(),
                    tenant_name: name.clone(),
                    url: hook.url,
                    signer,
                });
            }
        }
        Ok(out)
    }

    /// The endpoint's signer from its secret variables; `None` (and an error
    /// naming the variable, never its value) when one is unset or unusable.
    fn signer(&self, tenant: &str, hook: &Webhook) -> Option<Signer> {
        let read = |var: &str| {
            let v = (self.secret)(var);
            if v.is_none() {
                tracing::error!(tenant, secret_env = %var, "webhook secret variable is not set; endpoint skipped");
            }
            v
        };
        let current = read(&hook.secret_env)?;
        let previous = match &hook.previous_secret_env {
            Some(var) => vec![read(var)?],
            None => vec![],
        };
        match Signer::new(hook.signature, &current, &previous) {
            Ok(s) => Some(s),
            Err(e) => {
                let hint = if hook.signature == Scheme::Standard {
                    " (or set signature = \"custodian\" on the endpoint for the older header)"
                } else {
                    ""
                };
                let previous = hook.previous_secret_env.as_deref().unwrap_or("-");
                tracing::error!(tenant, secret_env = %hook.secret_env, previous_secret_env = %previous, error = %e, "webhook secret unusable; endpoint skipped{hint}");
                None
            }
        }
    }

    /// One pass over every tenant's endpoints, in parallel (at most
    /// `max_concurrent` at once), returning when all are done; returns events
    /// delivered. For tests and one-shot use; the server uses `spawn_pass`.
    pub fn run_once<C: Context + ?Sized>(&self, db: &Db, ctx: &C) -> Result<usize, StoreError> {
        let queue = Mutex::new(self.endpoints(db, ctx)?);
        let workers = self
            .max_concurrent
            .min(queue.lock().unwrap_or_else(|p| p.into_inner()).len());
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..workers)
                .map(|_| {
                    scope.spawn(|| -> Result<usize, StoreError> {
                        let mut delivered = 0;
                        loop {
                            let next = queue.lock().unwrap_or_else(|p| p.into_inner()).pop();
                            let Some(e) = next else { break };
                            delivered += self.endpoint(
                                db,
                                ctx,
                                &e.tenant_id,
                                &e.tenant_name,
                                &e.url,
                                &e.signer,
                            )?;
                        }
                        Ok(delivered)
                    })
                })
                .collect();
            let mut delivered = 0;
            let mut first_err = None;
            for h in handles {
                match h.join() {
                    Ok(Ok(n)) => delivered += n,
                    Ok(Err(e)) => first_err = first_err.or(Some(e)),
                    Err(_) => {
                        first_err = first_err.or(Some(StoreError::Config(
                            "webhook delivery thread panicked".into(),
                        )))
                    }
                }
            }
            first_err.map_or(Ok(delivered), Err)
        })
    }

    /// Starts a worker thread for each endpoint that has none running here
    /// (up to `max_concurrent` in all) and returns at once with how many it
    /// started. A worker delivers batches until its endpoint is caught up or
    /// a delivery fails (which backs off in the database), so a slow endpoint
    /// holds only its own worker.
    pub fn spawn_pass<C: Context + ?Sized + 'static>(
        self: &Arc<Self>,
        db: &Db,
        ctx: &Arc<C>,
    ) -> Result<usize, StoreError> {
        if self.stopping() {
            return Ok(0);
        }
        let mut endpoints = self.endpoints(db, &**ctx)?;
        if !endpoints.is_empty() {
            let start = self.rotation.fetch_add(1, Ordering::Relaxed) % endpoints.len();
            endpoints.rotate_left(start);
        }
        let mut started = 0;
        for e in endpoints {
            let key = (e.tenant_id.clone(), e.url.clone());
            {
                let mut running = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
                if running.len() >= self.max_concurrent {
                    break;
                }
                // One tenant's endpoints, or one receiver shared by many tenants
                // (a `[default]` webhook), hold at most a quarter of the workers:
                // a slow one among them cannot take every worker from the rest.
                let share = (self.max_concurrent / 4).max(1);
                let same_tenant = running.iter().filter(|(t, _)| *t == key.0).count();
                let same_url = running.iter().filter(|(_, u)| *u == key.1).count();
                if same_tenant >= share || same_url >= share {
                    continue;
                }
                if !running.insert(key.clone()) {
                    continue;
                }
            }
            let guard = InFlight {
                relay: Arc::clone(self),
                key,
            };
            let (db, ctx) = (db.clone(), Arc::clone(ctx));
            let spawned = std::thread::Builder::new()
                .name("webhook".into())
                .spawn(move || {
                    let relay = Arc::clone(&guard.relay);
                    loop {
                        match relay.endpoint(
                            &db,
                            &*ctx,
                            &e.tenant_id,
                            &e.tenant_name,
                            &e.url,
                            &e.signer,
                        ) {
                            // A full batch: more may be waiting.
                            Ok(n)
                                if i64::try_from(n).is_ok_and(|n| n == BATCH)
                                    && !relay.stopping() =>
                            {
                                continue;
                            }
                            Ok(_) => break,
                            Err(err) => {
                                tracing::error!(tenant = %e.tenant_name, error = %err, "webhook delivery failed");
                                break;
                            }
                        }
                    }
                    drop(guard);
                });
            match spawned {
                Ok(_) => started += 1,
                Err(err) => {
                    tracing::error!(error = %err, "cannot start a webhook delivery thread");
                    break;
                }
            }
        }
        Ok(started)
    }

    fn endpoint<C: Context + ?Sized>(
        &self,
        db: &Db,
        ctx: &C,
        tenant: &str,
        tenant_name: &str,
        url: &str,
        signer: &Signer,
    ) -> Result<usize, StoreError> {
        let now = ctx.clock().now();
        if !self.due(db, tenant, url, &time::format(now))? {
            return Ok(0);
        }
        let Some(mut last) = self.claim(db, tenant, url, now)? else {
            return Ok(0);
        };
        let mut lease_until = now + self.lease;
        let events = db.read(|c| crate::events::feed(c, tenant, tenant_name, last, BATCH))?;
        let mut delivered = 0;
        let endpoint_id = crate::metrics::endpoint_id(tenant, url);
        for e in events {
            if self.stopping() {
                break;
            }
            let body = e.to_string();
            let seq = e["seq"].as_i64().unwrap_or(last);
            let id = e["id"].as_str().unwrap_or_default().to_string();
            // A send must end inside the lease: renew it first when less
            // than a send's worth is left; a lease already lost ends the batch.
            let now = ctx.clock().now();
            if lease_until - now < self.send_span() && !self.renew(db, tenant, url, now)? {
                tracing::warn!(tenant, "webhook lease lost; another relay continues");
                return Ok(delivered);
            }
            // The receiver checks the timestamp against its own clock (Standard
            // Webhooks libraries allow five minutes): wall time, not the service clock.
            let mut req = self.agent.post(url).set("Content-Type", "application/json");
            for (name, value) in signer.headers(&id, chrono::Utc::now().timestamp(), &body) {
                req = req.set(name, &value);
            }
            let sent = req.send_string(&body);
            match sent {
                Ok(r) if (200..300).contains(&r.status()) => {
                    crate::metrics::webhook_delivery(&endpoint_id, "delivered", tenant_name);
                    last = seq;
                    delivered += 1;
                    // Advance only while still holding the lease (and extend it), and
                    // only forwards: a replica that lost the lease, or a batch an
                    // admin skipped past, can never move the cursor back.
                    let renewed_at = ctx.clock().now();
                    let until = time::format(renewed_at + self.lease);
                    let held = db.write(|c| {
                        webhook_cursors::advance(c, tenant, url, &self.owner, last, &until)
                    })?;
                    if !held {
                        tracing::warn!(
                            tenant,
                            "webhook lease lost or cursor moved (a skip) mid-batch; the next pass continues"
                        );
                        // Released below if still ours (after a skip), so the
                        // next pass need not wait for the lease to expire.
                        break;
                    }
                    lease_until = renewed_at + self.lease;
                }
                failed => {
                    crate::metrics::webhook_delivery(&endpoint_id, "failed", tenant_name);
                    let why = match failed {
                        Ok(r) => format!("HTTP {}", r.status()),
                        Err(ureq::Error::Status(code, _)) => format!("HTTP {code}"),
                        Err(e) => format!("transport: {}", e.kind()),
                    };
                    self.fail(db, ctx, tenant, url, &why)?;
                    break;
                }
            }
        }
        db.write(|c| webhook_cursors::release(c, tenant, url, &self.owner))?;
        Ok(delivered)
    }

    /// A send's timeout plus the margin for recording its outcome.
    fn send_span(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.timeout.saturating_add(LEASE_MARGIN))
            .unwrap_or(chrono::Duration::MAX)
    }

    /// Whether the endpoint has an event to send now and nobody else holds
    /// its lease: read-only, so an idle pass writes nothing.
    fn due(&self, db: &Db, tenant: &str, url: &str, now_s: &str) -> Result<bool, StoreError> {
        db.read(|c| {
            let last = match webhook_cursors::find(c, tenant, url)? {
                None => 0,
                Some(cur) => {
                    let leased_elsewhere = cur.lease_until.is_some_and(|u| u.as_str() >= now_s)
                        && cur.lease_owner.as_deref() != Some(self.owner.as_str());
                    if cur.paused || cur.next_attempt_at.as_str() > now_s || leased_elsewhere {
                        return Ok(false);
                    }
                    cur.last_seq
                }
            };
            outbox::any_after(c, tenant, last)
        })
    }

    /// Claims the lease (creating the cursor on first sight); the cursor's
    /// `last_seq` when claimed, `None` when another relay holds it or the
    /// endpoint is paused or backing off.
    fn claim(
        &self,
        db: &Db,
        tenant: &str,
        url: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Option<i64>, StoreError> {
        let now_s = time::format(now);
        let until = time::format(now + self.lease);
        db.write(|c| webhook_cursors::claim(c, tenant, url, &self.owner, &now_s, &until))
    }

    /// Extends this relay's lease, if it still holds it and it has not
    /// expired (an expired lease may already be another relay's to claim).
    fn renew(
        &self,
        db: &Db,
        tenant: &str,
        url: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool, StoreError> {
        let now_s = time::format(now);
        let until = time::format(now + self.lease);
        db.write(|c| webhook_cursors::renew(c, tenant, url, &self.owner, &now_s, &until))
    }

    fn fail<C: Context + ?Sized>(
        &self,
        db: &Db,
        ctx: &C,
        tenant: &str,
        url: &str,
        why: &str,
    ) -> Result<(), StoreError> {
        let now = ctx.clock().now();
        db.write(|c| {
            // Only while this relay still holds the lease: a lease lost during a
            // slow delivery belongs to another replica, whose progress this
            // failure must not count against (or pause).
            let Some(attempts) = webhook_cursors::attempts_if_held(c, tenant, url, &self.owner)?
            else {
                return Ok(());
            };
            let attempts = attempts + 1;
            let paused = attempts >= self.pausing_failure;
            let next_attempt_at = time::format(now + self.retry.jittered(attempts));
            webhook_cursors::record_failure(
                c,
                tenant,
                url,
                &self.owner,
                &webhook_cursors::Failure {
                    attempts,
                    next_attempt_at: &next_attempt_at,
                    paused,
                    error: why,
                    at: &time::format(now),
                },
            )?;
            if paused {
                tracing::error!(
                    tenant,
                    attempts,
                    reason = why,
                    "webhook endpoint paused after repeated failures"
                );
                crate::events::emit_at_commit(
                    c,
                    tenant,
                    None,
                    &crate::events::payload::WebhookPaused {
                        attempts: i64::from(attempts),
                    },
                    &time::format(now),
                )?;
            } else {
                tracing::warn!(
                    tenant,
                    attempts,
                    reason = why,
                    "webhook delivery failed; will retry"
                );
            }
            Ok(())
        })
    }
}

/// Highest event seq written for a tenant (for tests and status).
pub fn last_seq(db: &Db, tenant: &str) -> Result<i64, StoreError> {
    db.read(|c| outbox::last_seq(c, tenant))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_format() {
        let s = signature("secret", 1_700_000_000, "{}");
        assert!(s.starts_with("t=1700000000,v1=") && s.len() == "t=1700000000,v1=".len() + 64);
        assert_ne!(s, signature("other", 1_700_000_000, "{}"));
    }

    /// DESIGN: a failing endpoint is retried for about a day before it is
    /// paused (it used to pause after ten attempts, ~17 minutes).
    #[test]
    fn default_retries_span_about_a_day_before_pause() {
        let r = RetrySchedule::default();
        let secs = |n| r.delay(n).as_secs();
        assert_eq!((secs(1), secs(2), secs(3)), (30, 60, 120), "doubling");
        assert_eq!(
            (secs(8), secs(30), secs(10_000)),
            (3_600, 3_600, 3_600),
            "capped"
        );
        let span = r.span().as_secs();
        assert!(
            (23 * 3_600..=25 * 3_600).contains(&span),
            "retries span {span} s before the pause"
        );
        assert_eq!(r.pausing_failure(), 31);
        // Jitter stays within ±10 % of the nominal wait.
        for n in [1, 5, 20] {
            let nominal = r.delay(n).as_secs_f64();
            let j = r.jittered(n).num_milliseconds() as f64 / 1000.0;
            assert!((nominal * 0.9..=nominal * 1.1).contains(&j), "{n}: {j}");
        }
    }

    #[test]
    fn short_schedule_and_lease_sizes() {
        let r = RetrySchedule {
            base: Duration::from_secs(1),
            max: Duration::from_secs(2),
            pause_after: Duration::from_secs(5),
        };
        // Waits 1, 2, 2: the fourth failure in a row pauses.
        assert_eq!(r.pausing_failure(), 4);
        assert_eq!(r.span(), Duration::from_secs(5));
        assert_eq!(lease_for(Duration::from_secs(10)), LEASE_MIN);
        assert_eq!(
            lease_for(Duration::from_secs(120)),
            Duration::from_secs(250),
            "a long send timeout gets a lease that covers it twice"
        );
    }
}

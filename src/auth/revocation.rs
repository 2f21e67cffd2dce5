//! Cached token liveness on PostgreSQL (issue 17, amending DESIGN's "a
//! revocation takes effect at once"): a revocation takes effect on every
//! replica within one second, and a request no longer pays a revocation
//! round trip.
//!
//! A token read live is trusted without another read
//! - while this replica's listener (`store::notify`) is connected and was
//!   already listening when the read began: a revocation committed after the
//!   read is announced, and the announcement drops the entry. The listener
//!   proves itself by hearing its ping (a `NOTIFY` every `PING`, sent from
//!   a second connection as revocations come from other sessions): heard,
//!   it has heard every revocation committed before; when no ping came back
//!   for `STALE` (a silent connection, a pooler that lost the `LISTEN`), it
//!   counts as down;
//! - otherwise for `ttl` (`revocation_ttl_ms`, at most one second) after the
//!   read began.
//!
//! An announcement that arrives while a read is under way keeps that read's
//! answer out of the cache (it may predate the revocation). SQLite does not
//! cache: its check is a local primary-key read and the CLI revokes in
//! another process.

use crate::store::notify::RevocationListener;
use lru::LruCache;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

/// Token ids whose liveness is cached.
const CACHE_MAX: usize = 10_000;
/// The listener is down when no heartbeat succeeded for this long.
const STALE: Duration = Duration::from_secs(1);
/// How often the listener reads what arrived, and pings itself.
const POLL: Duration = Duration::from_millis(20);
const PING: Duration = Duration::from_millis(250);
/// The longest a listener-backed entry is trusted (a safety net only).
const MAX_AGE: Duration = Duration::from_secs(300);

/// When a token was read live, and the listener's epoch then (`None`: the
/// listener was down, so only the TTL applies).
#[derive(Clone, Copy)]
struct Seen {
    at: Instant,
    epoch: Option<u64>,
}

struct State {
    live: LruCache<String, Seen>,
    /// Changes whenever the listener connects or drops.
    epoch: u64,
    listening: bool,
    /// When the listener last heard its own ping (`None`: not since it
    /// connected).
    heard_at: Option<Instant>,
    /// Counts announcements, so a read overtaken by one is not cached.
    announced: u64,
}

/// Taken before a liveness read (`Revocations::before_read`).
pub struct Ticket {
    at: Instant,
    epoch: Option<u64>,
    announced: u64,
}

pub struct Revocations {
    ttl: Duration,
    state: Mutex<State>,
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Revocations {
    /// `ttl` is capped at one second.
    pub fn new(ttl: Duration) -> Revocations {
        Revocations {
            ttl: ttl.min(Duration::from_secs(1)),
            state: Mutex::new(State {
                live: LruCache::new(NonZeroUsize::new(CACHE_MAX).unwrap_or(NonZeroUsize::MIN)),
                epoch: 0,
                listening: false,
                heard_at: None,
                announced: 0,
            }),
        }
    }

    /// Whether `token` is known live without a read.
    pub fn fresh(&self, token: &str) -> bool {
        let now = Instant::now();
        let mut s = lock(&self.state);
        let backed = s.backed(now);
        let epoch = s.epoch;
        let Some(seen) = s.live.get(token).copied() else {
            return false;
        };
        let age = now.saturating_duration_since(seen.at);
        age < self.ttl || (backed && seen.epoch == Some(epoch) && age < MAX_AGE)
    }

    pub fn before_read(&self) -> Ticket {
        let s = lock(&self.state);
        let now = Instant::now();
        let backed = s.backed(now);
        Ticket {
            at: now,
            epoch: backed.then_some(s.epoch),
            announced: s.announced,
        }
    }

    /// A read that began with `ticket` found `token` live.
    pub fn read_live(&self, token: &str, ticket: Ticket) {
        let mut s = lock(&self.state);
        if s.announced != ticket.announced {
            return;
        }
        s.live.put(
            token.to_string(),
            Seen {
                at: ticket.at,
                epoch: ticket.epoch,
            },
        );
    }

    /// An announcement: `token` was revoked.
    pub fn revoked(&self, token: &str) {
        let mut s = lock(&self.state);
        s.announced = s.announced.wrapping_add(1);
        s.live.pop(token);
    }

    fn listening(&self, on: bool) {
        let mut s = lock(&self.state);
        s.epoch = s.epoch.wrapping_add(1);
        s.listening = on;
        s.heard_at = None;
    }

    /// The listener heard its ping that was sent at `sent`: notifications
    /// were flowing then. Measured from the send, not the arrival, so a
    /// listener whose notifications arrive steadily late is stale, not
    /// healthy.
    fn heard(&self, sent: Instant) {
        let mut s = lock(&self.state);
        s.heard_at = Some(s.heard_at.map_or(sent, |h| h.max(sent)));
    }

    /// Whether the listener is connected and heard its ping within `STALE`.
    pub fn listener_up(&self) -> bool {
        lock(&self.state).backed(Instant::now())
    }
}

impl State {
    fn backed(&self, now: Instant) -> bool {
        self.listening
            && self
                .heard_at
                .is_some_and(|h| now.saturating_duration_since(h) < STALE)
    }
}

/// Listens for revocations on `url` on a thread of its own, reconnecting
/// after any failure (backing off up to a second), until `revocations` is
/// dropped.
pub fn spawn_listener(revocations: &Arc<Revocations>, url: String) -> std::io::Result<()> {
    let weak = Arc::downgrade(revocations);
    std::thread::Builder::new()
        .name("revocations".into())
        .spawn(move || listen(&weak, &url))
        .map(drop)
}

fn listen(weak: &Weak<Revocations>, url: &str) {
    let mut backoff = Duration::from_millis(100);
    // Ends when the owner is gone (checked at every step below).
    while let Some(r) = weak.upgrade() {
        let mut conn = match RevocationListener::connect(url) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "revocation listener cannot connect; cached revocations expire after revocation_ttl_ms");
                drop(r);
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        backoff = Duration::from_millis(100);
        r.listening(true);
        drop(r);
        // Token ids are hex: a ping's payload cannot be taken for one. Each
        // ping carries its number, so hearing it tells when it was sent.
        let ping = format!("ping:{}:", uuid::Uuid::new_v4().simple());
        let mut sent: std::collections::VecDeque<(u64, Instant)> =
            std::collections::VecDeque::new();
        let mut number: u64 = 0;
        let mut pinged: Option<Instant> = None;
        let failed = loop {
            let Some(r) = weak.upgrade() else { return };
            match conn.poll() {
                Ok(payloads) => {
                    for p in payloads {
                        if let Some(k) = p.strip_prefix(&ping).and_then(|k| k.parse::<u64>().ok()) {
                            if let Some(&(_, at)) = sent.iter().find(|(n, _)| *n == k) {
                                r.heard(at);
                            }
                        } else if !p.starts_with("ping:") {
                            r.revoked(&p);
                        }
                    }
                }
                Err(e) => break e,
            }
            if pinged.is_none_or(|at| at.elapsed() >= PING) {
                number += 1;
                let now = Instant::now();
                if let Err(e) = conn.ping(&format!("{ping}{number}")) {
                    break e;
                }
                pinged = Some(now);
                // A ping unheard after these many is stale anyway.
                sent.push_back((number, now));
                if sent.len() > 32 {
                    sent.pop_front();
                }
            }
            drop(r);
            std::thread::sleep(POLL);
        };
        tracing::warn!(error = %failed, "revocation listener lost its connection; reconnecting");
        if let Some(r) = weak.upgrade() {
            r.listening(false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_listener_liveness_is_trusted_for_the_ttl_only() {
        let r = Revocations::new(Duration::from_millis(50));
        assert!(!r.fresh("t1"));
        let ticket = r.before_read();
        r.read_live("t1", ticket);
        assert!(r.fresh("t1"));
        let until = Instant::now() + Duration::from_secs(5);
        while r.fresh("t1") && Instant::now() < until {
            std::thread::yield_now();
        }
        assert!(!r.fresh("t1"), "expired after the TTL");
    }

    #[test]
    fn a_listener_backed_entry_lasts_until_announced() {
        let r = Revocations::new(Duration::ZERO);
        r.listening(true);
        // Connected but not yet heard: nothing is listener-backed.
        let ticket = r.before_read();
        r.read_live("t1", ticket);
        assert!(!r.fresh("t1"));
        r.heard(Instant::now());
        let ticket = r.before_read();
        r.read_live("t1", ticket);
        assert!(r.fresh("t1"));
        r.revoked("t1");
        assert!(!r.fresh("t1"));
        // A read overtaken by an announcement is not cached.
        let ticket = r.before_read();
        r.revoked("t2");
        r.read_live("t1", ticket);
        assert!(!r.fresh("t1"));
        // An entry from before a reconnect is not listener-backed.
        let ticket = r.before_read();
        r.read_live("t1", ticket);
        r.listening(false);
        r.listening(true);
        r.heard(Instant::now());
        assert!(!r.fresh("t1"));
    }

    /// A ping heard late counts from when it was sent: a listener whose
    /// notifications arrive seconds behind backs nothing.
    #[test]
    fn a_late_ping_does_not_back_the_cache() {
        let r = Revocations::new(Duration::ZERO);
        r.listening(true);
        let long_ago = Instant::now()
            .checked_sub(STALE + Duration::from_secs(5))
            .unwrap_or_else(Instant::now);
        r.heard(long_ago);
        let ticket = r.before_read();
        r.read_live("t1", ticket);
        assert!(!r.fresh("t1"), "heard only a ping sent long ago");
        r.heard(Instant::now());
        let ticket = r.before_read();
        r.read_live("t1", ticket);
        assert!(r.fresh("t1"));
    }

    #[test]
    fn the_ttl_is_at_most_one_second() {
        assert_eq!(
            Revocations::new(Duration::from_secs(60)).ttl,
            Duration::from_secs(1)
        );
    }
}

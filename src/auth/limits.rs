//! Bounded state for token verification: a TTL'd LRU cache and per-key
//! failure windows. Both are plain LRUs of fixed capacity, so random token ids
//! or client addresses can evict old entries but never grow memory; time comes
//! from a `Clock` so tests advance it instead of sleeping.

use chrono::{DateTime, Duration, Utc};
use lru::LruCache;
use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroUsize;

/// The key failures from `a` are counted under: an IPv4 address by itself,
/// an IPv6 address by its /64 (the smallest block a site or a customer line
/// is given, so one attacker owns a whole /64 and could otherwise rotate
/// through 2^64 addresses). An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`,
/// a dual-stack socket's view of an IPv4 peer) counts as that IPv4 address.
pub fn address_group(a: IpAddr) -> IpAddr {
    match a {
        IpAddr::V4(_) => a,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// An LRU whose entries also expire `ttl` after insertion. A full cache evicts
/// its least recently used entry, one at a time (never wholesale).
pub struct TtlLru<K: Hash + Eq, V> {
    entries: LruCache<K, (V, DateTime<Utc>)>,
    ttl: Duration,
}

impl<K: Hash + Eq, V> TtlLru<K, V> {
    pub fn new(capacity: NonZeroUsize, ttl: Duration) -> Self {
        TtlLru {
            entries: LruCache::new(capacity),
            ttl,
        }
    }

    /// The live entry for `k`, marking it recently used and restarting its TTL
    /// (sliding): an entry in use never expires under its user — an IdP whose
    /// token id someone is guessing would otherwise fall back to argon2, and so
    /// into that id's lock, every TTL. An expired one is dropped.
    pub fn get(&mut self, k: &K, now: DateTime<Utc>) -> Option<&V> {
        let expired = match self.entries.peek(k) {
            None => return None,
            Some((_, at)) => now - *at >= self.ttl,
        };
        if expired {
            self.entries.pop(k);
            return None;
        }
        self.entries.get_mut(k).map(|(v, at)| {
            *at = now;
            &*v
        })
    }

    pub fn insert(&mut self, k: K, v: V, now: DateTime<Utc>) {
        self.entries.put(k, (v, now));
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// A fixed window of failures per key: after `max` failures within `window`
/// of the first, the key is locked until that window ends. `max == 0` turns
/// the limit off. Capacity-bounded (LRU): an evicted key starts afresh.
pub struct FailureWindows<K: Hash + Eq> {
    windows: LruCache<K, Window>,
    max: u32,
    window: Duration,
}

struct Window {
    start: DateTime<Utc>,
    count: u32,
}

impl<K: Hash + Eq> FailureWindows<K> {
    pub fn new(capacity: NonZeroUsize, max: u32, window: Duration) -> Self {
        FailureWindows {
            windows: LruCache::new(capacity),
            max,
            window,
        }
    }

    /// How long `k` stays locked, if it is.
    pub fn locked_for(&mut self, k: &K, now: DateTime<Utc>) -> Option<Duration> {
        if self.max == 0 {
            return None;
        }
        let w = self.windows.get(k)?;
        let ends = w.start + self.window;
        (w.count >= self.max && now < ends).then(|| ends - now)
    }

    /// Failures of `k` in its current window (0 once the window has ended).
    pub fn count(&mut self, k: &K, now: DateTime<Utc>) -> u32 {
        match self.windows.get(k) {
            Some(w) if now < w.start + self.window => w.count,
            _ => 0,
        }
    }

    /// Counts one failure for `k` (a new window when the last one has ended).
    pub fn record(&mut self, k: K, now: DateTime<Utc>) {
        if self.max == 0 {
            return;
        }
        match self.windows.get_mut(&k) {
            Some(w) if now < w.start + self.window => w.count = w.count.saturating_add(1),
            Some(w) => {
                *w = Window {
                    start: now,
                    count: 1,
                }
            }
            None => {
                self.windows.put(
                    k,
                    Window {
                        start: now,
                        count: 1,
                    },
                );
            }
        }
    }

    pub fn len(&self) -> usize {
        self.windows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.windows.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cap(n: usize) -> NonZeroUsize {
        NonZeroUsize::new(n).unwrap_or(NonZeroUsize::MIN)
    }

    #[test]
    fn addresses_group_by_ipv6_64_and_ipv4_address() {
        let g = |s: &str| address_group(s.parse().unwrap_or(IpAddr::V4([0; 4].into())));
        assert_eq!(g("2001:db8:1:2::1"), g("2001:db8:1:2:ffff:ffff:ffff:ffff"));
        assert_eq!(
            g("2001:db8:1:2:abcd::9"),
            "2001:db8:1:2::"
                .parse()
                .ok()
                .map(IpAddr::V6)
                .unwrap_or(g("::"))
        );
        assert_ne!(g("2001:db8:1:2::1"), g("2001:db8:1:3::1"), "another /64");
        assert_ne!(g("192.0.2.1"), g("192.0.2.2"), "IPv4: each address");
        assert_eq!(g("::ffff:192.0.2.1"), g("192.0.2.1"), "IPv4-mapped");
    }

    #[test]
    fn cache_evicts_least_recently_used_one_at_a_time() {
        let t0 = Utc::now();
        let mut c = TtlLru::new(cap(3), Duration::minutes(5));
        c.insert("a", 1, t0);
        c.insert("b", 2, t0);
        c.insert("c", 3, t0);
        // Touch "a": "b" is now the least recently used.
        assert_eq!(c.get(&"a", t0), Some(&1));
        c.insert("d", 4, t0);
        assert_eq!(c.len(), 3, "full cache drops one entry, not all");
        assert_eq!(c.get(&"b", t0), None, "the least recently used went");
        for (k, v) in [("a", 1), ("c", 3), ("d", 4)] {
            assert_eq!(c.get(&k, t0), Some(&v), "{k} stays");
        }
    }

    #[test]
    fn cache_entries_expire_after_ttl() {
        let t0 = Utc::now();
        let mut c = TtlLru::new(cap(10), Duration::minutes(5));
        c.insert("a", 1, t0);
        c.insert("b", 2, t0 + Duration::minutes(3));
        let later = t0 + Duration::minutes(5);
        assert_eq!(c.get(&"a", later), None, "expired at exactly ttl");
        assert_eq!(c.get(&"b", later), Some(&2), "younger entry still live");
        assert_eq!(c.len(), 1, "the expired entry was dropped");
        // A hit restarts the TTL (sliding): a token in use is not re-verified,
        // revocation being checked on every request anyway.
        assert_eq!(c.get(&"b", t0 + Duration::minutes(8)), Some(&2));
        assert_eq!(
            c.get(&"b", t0 + Duration::minutes(13)),
            None,
            "5 min unused"
        );
    }

    #[test]
    fn failures_lock_after_max_until_the_window_ends() {
        let t0 = Utc::now();
        let mut f = FailureWindows::new(cap(10), 3, Duration::seconds(60));
        for i in 0..2 {
            f.record("tok", t0 + Duration::seconds(i));
        }
        assert_eq!(f.locked_for(&"tok", t0 + Duration::seconds(2)), None);
        f.record("tok", t0 + Duration::seconds(2));
        assert_eq!(
            f.locked_for(&"tok", t0 + Duration::seconds(10)),
            Some(Duration::seconds(50)),
            "locked for the rest of the window that began with the first failure"
        );
        assert_eq!(f.locked_for(&"other", t0), None, "per key");
        assert_eq!(f.locked_for(&"tok", t0 + Duration::seconds(60)), None);
        // After the window, counting starts again from one.
        f.record("tok", t0 + Duration::seconds(61));
        assert_eq!(f.locked_for(&"tok", t0 + Duration::seconds(62)), None);
    }

    #[test]
    fn failure_state_is_bounded_and_zero_disables() {
        let t0 = Utc::now();
        let mut f = FailureWindows::new(cap(100), 1, Duration::seconds(60));
        for i in 0..10_000 {
            f.record(format!("random-{i}"), t0);
        }
        assert_eq!(f.len(), 100, "random keys cannot grow the map");
        assert!(f.locked_for(&"random-9999".to_string(), t0).is_some());
        let mut off = FailureWindows::new(cap(10), 0, Duration::seconds(60));
        for _ in 0..100 {
            off.record("k", t0);
        }
        assert!(off.is_empty() && off.locked_for(&"k", t0).is_none());
    }
}

//! Bounded in-flight requests per tenant; beyond the bound the caller gets 429
//! with an integer `Retry-After` instead of queueing without limit.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub struct Limiter {
    max: usize,
    in_flight: Mutex<HashMap<String, usize>>,
}

/// Held for the duration of a request; releases its slot when dropped.
pub struct Permit {
    limiter: Arc<Limiter>,
    tenant: String,
}

impl Limiter {
    pub fn new(max: usize) -> Arc<Limiter> {
        Arc::new(Limiter {
            max,
            in_flight: Mutex::new(HashMap::new()),
        })
    }

    pub fn try_acquire(self: &Arc<Self>, tenant: &str) -> Option<Permit> {
        let mut map = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        let n = map.entry(tenant.to_string()).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(Permit {
            limiter: Arc::clone(self),
            tenant: tenant.to_string(),
        })
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut map = self
            .limiter
            .in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(n) = map.get_mut(&self.tenant) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.tenant);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_per_tenant_and_releases() {
        let l = Limiter::new(2);
        let a = l.try_acquire("t1");
        let b = l.try_acquire("t1");
        assert!(a.is_some() && b.is_some());
        assert!(l.try_acquire("t1").is_none());
        assert!(l.try_acquire("t2").is_some());
        drop(a);
        assert!(l.try_acquire("t1").is_some());
    }
}

//! Time, from a `Clock` so tests advance it instead of sleeping. At the bottom
//! of the crate: auth, events and deprovision all read it.

use chrono::{DateTime, Utc};
use std::sync::Mutex;

pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

pub struct SystemClock;
impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock tests advance: real time plus an offset, so order within a test is
/// still real while grace periods can be jumped over without sleeping.
pub struct ManualClock(Mutex<chrono::Duration>);
impl ManualClock {
    pub fn new(_start: DateTime<Utc>) -> ManualClock {
        ManualClock(Mutex::new(chrono::Duration::zero()))
    }
    pub fn advance(&self, d: chrono::Duration) {
        let mut g = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *g += d;
    }
}
impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now() + *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

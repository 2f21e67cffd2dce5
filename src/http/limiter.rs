//! Fair shares of the database between tenants.
//!
//! A `Limiter` is one budget of database slots (one per pooled connection
//! it may use): SCIM and admin requests share one, gate checks have their
//! own (`AppState`), so logins keep working while an IdP imports. A request
//! takes a slot after authentication and holds it to its end, so it never
//! holds more than the one connection its slot stands for.
//!
//! - One tenant runs at most `share` requests at once (default: half the
//!   budget), so the others always find the rest.
//! - Beyond its share a tenant's requests wait in its own FIFO queue, without
//!   blocking an HTTP worker (an async wait, before the blocking hand-off).
//!   A freed slot goes to the next tenant in round-robin order that has
//!   waiters and is under its share: one tenant's backlog never stands in
//!   front of another tenant's request.
//! - 429 (with `Retry-After`) only when the tenant already has
//!   `max_per_tenant` requests running or waiting: its queue is full.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::oneshot;

pub struct Limiter {
    /// Requests running at once, all tenants together.
    slots: usize,
    /// Requests one tenant runs at once.
    share: usize,
    /// Requests one tenant has running or waiting.
    max_per_tenant: usize,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    running: usize,
    tenants: HashMap<String, Tenant>,
    /// Tenants with waiters, in the order they get a freed slot.
    turns: VecDeque<String>,
    next_ticket: u64,
}

#[derive(Default)]
struct Tenant {
    running: usize,
    waiting: VecDeque<(u64, oneshot::Sender<()>)>,
    /// Listed in `turns`.
    has_turn: bool,
}

impl Tenant {
    fn idle(&self) -> bool {
        self.running == 0 && self.waiting.is_empty() && !self.has_turn
    }
}

/// The tenant already has `max_per_tenant` requests running or waiting.
#[derive(Debug, PartialEq, Eq)]
pub struct QueueFull;

/// Held for the duration of a request; releases its slot when dropped.
pub struct Permit {
    limiter: Arc<Limiter>,
    tenant: String,
}

/// What `enqueue` decided.
enum Ticket {
    Run,
    Wait(u64, oneshot::Receiver<()>),
}

impl Limiter {
    /// `share` 0 means half of `slots` (at least one); `share` is at most `slots`.
    pub fn new(slots: usize, share: usize, max_per_tenant: usize) -> Arc<Limiter> {
        let slots = slots.max(1);
        let share = if share == 0 { slots / 2 } else { share }.clamp(1, slots);
        Arc::new(Limiter {
            slots,
            share,
            max_per_tenant: max_per_tenant.max(1),
            state: Mutex::new(State::default()),
        })
    }

    pub fn share(&self) -> usize {
        self.share
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding it; a poisoned lock still has sound counts.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A slot for `tenant`: at once when it is under its share and a slot is
    /// free, else after its earlier requests, in its turn among tenants.
    /// Dropping the future while it waits leaves the queue (or frees the
    /// slot it was just given).
    pub async fn acquire(self: &Arc<Self>, tenant: &str) -> Result<Permit, QueueFull> {
        let (ticket, rx) = match self.enqueue(tenant)? {
            Ticket::Run => return Ok(self.permit(tenant)),
            Ticket::Wait(ticket, rx) => (ticket, rx),
        };
        let mut waiting = Waiting {
            limiter: self,
            tenant,
            ticket,
            armed: true,
        };
        let granted = rx.await;
        // Granted: the slot is counted, and from here the permit frees it.
        // Not granted (cannot happen while the limiter lives): nothing to free.
        waiting.armed = false;
        match granted {
            Ok(()) => Ok(self.permit(tenant)),
            Err(_) => Err(QueueFull),
        }
    }

    fn permit(self: &Arc<Self>, tenant: &str) -> Permit {
        Permit {
            limiter: Arc::clone(self),
            tenant: tenant.to_string(),
        }
    }

    fn enqueue(&self, tenant: &str) -> Result<Ticket, QueueFull> {
        let mut st = self.lock();
        let st = &mut *st;
        let free = st.running < self.slots;
        let t = st.tenants.entry(tenant.to_string()).or_default();
        if t.running + t.waiting.len() >= self.max_per_tenant {
            if t.idle() {
                st.tenants.remove(tenant);
            }
            return Err(QueueFull);
        }
        if t.waiting.is_empty() && t.running < self.share && free {
            t.running += 1;
            st.running += 1;
            return Ok(Ticket::Run);
        }
        let (tx, rx) = oneshot::channel();
        let ticket = st.next_ticket;
        st.next_ticket = st.next_ticket.wrapping_add(1);
        t.waiting.push_back((ticket, tx));
        if !t.has_turn {
            t.has_turn = true;
            st.turns.push_back(tenant.to_string());
        }
        Ok(Ticket::Wait(ticket, rx))
    }

    /// Frees one of `tenant`'s slots and hands free slots to waiters.
    fn release(&self, tenant: &str) {
        let mut st = self.lock();
        let st = &mut *st;
        st.running = st.running.saturating_sub(1);
        if let Some(t) = st.tenants.get_mut(tenant) {
            t.running = t.running.saturating_sub(1);
            if t.idle() {
                st.tenants.remove(tenant);
            }
        }
        self.dispatch(st);
    }

    /// Round robin over the tenants with waiters: each in turn gets one slot
    /// if it is under its share; one at its share keeps its place.
    fn dispatch(&self, st: &mut State) {
        let mut passed = 0;
        while st.running < self.slots && passed < st.turns.len() {
            let Some(name) = st.turns.pop_front() else {
                break;
            };
            let Some(t) = st.tenants.get_mut(&name) else {
                continue;
            };
            if t.waiting.is_empty() {
                t.has_turn = false;
                if t.idle() {
                    st.tenants.remove(&name);
                }
                continue;
            }
            if t.running >= self.share {
                st.turns.push_back(name);
                passed += 1;
                continue;
            }
            passed = 0;
            if let Some((_, tx)) = t.waiting.pop_front() {
                t.running += 1;
                st.running += 1;
                // A closed receiver: its waiter is being dropped and, not
                // finding its ticket queued, frees this slot (`Waiting`).
                let _ = tx.send(());
            }
            if t.waiting.is_empty() {
                t.has_turn = false;
            } else {
                st.turns.push_back(name);
            }
        }
    }

    /// Requests of `tenant` running / waiting (for tests and diagnostics).
    pub fn counts(&self, tenant: &str) -> (usize, usize) {
        let st = self.lock();
        st.tenants
            .get(tenant)
            .map_or((0, 0), |t| (t.running, t.waiting.len()))
    }
}

/// A request waiting in its tenant's queue; cleans up if it is dropped
/// (client gone, deadline passed) before its slot arrived.
struct Waiting<'a> {
    limiter: &'a Limiter,
    tenant: &'a str,
    ticket: u64,
    armed: bool,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let mut st = self.limiter.lock();
        let queued = st.tenants.get_mut(self.tenant).and_then(|t| {
            let at = t.waiting.iter().position(|(n, _)| *n == self.ticket)?;
            t.waiting.remove(at)
        });
        match queued {
            // Still queued: leave the queue (`dispatch` drops an emptied turn).
            Some(_) => {}
            // Already given a slot that nobody will use: free it.
            None => {
                drop(st);
                self.limiter.release(self.tenant);
            }
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.limiter.release(&self.tenant);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::FutureExt;
    use std::pin::Pin;

    type Pending<'a> = Pin<Box<dyn std::future::Future<Output = Result<Permit, QueueFull>> + 'a>>;

    fn now(l: &Arc<Limiter>, t: &str) -> Option<Result<Permit, QueueFull>> {
        l.acquire(t).now_or_never()
    }

    fn wait<'a>(l: &'a Arc<Limiter>, t: &'a str) -> Pending<'a> {
        let mut f: Pending<'a> = Box::pin(l.acquire(t));
        assert!((&mut f).now_or_never().is_none(), "{t} should wait");
        f
    }

    /// The permit a waiting request now holds (it must have been granted).
    fn granted(f: &mut Pending<'_>) -> Permit {
        match f.now_or_never() {
            Some(Ok(p)) => p,
            Some(Err(_)) => panic!("refused"),
            None => panic!("still waiting"),
        }
    }

    fn run(l: &Arc<Limiter>, t: &str) -> Permit {
        match now(l, t) {
            Some(Ok(p)) => p,
            _ => panic!("{t} should run at once"),
        }
    }

    #[test]
    fn a_tenant_runs_at_most_its_share_and_queues_the_rest() {
        let l = Limiter::new(4, 0, 3);
        assert_eq!(l.share(), 2);
        let a1 = run(&l, "a");
        let a2 = run(&l, "a");
        // Over its share with two slots free: it waits, others do not.
        let mut a3 = wait(&l, "a");
        assert_eq!(l.counts("a"), (2, 1));
        assert!(matches!(now(&l, "a"), Some(Err(QueueFull))), "queue full");
        let b1 = run(&l, "b");
        drop(a1);
        let a3p = granted(&mut a3);
        assert_eq!(l.counts("a"), (2, 0));
        drop((a2, b1, a3p));
        assert_eq!((l.counts("a"), l.counts("b")), ((0, 0), (0, 0)));
    }

    #[test]
    fn freed_slots_go_round_robin_between_waiting_tenants() {
        // Two slots, each tenant may use both: b's backlog must not stand
        // in front of c's request.
        let l = Limiter::new(2, 2, 10);
        let a1 = run(&l, "a");
        let a2 = run(&l, "a");
        let mut b1 = wait(&l, "b");
        let mut b2 = wait(&l, "b");
        let mut c1 = wait(&l, "c");
        drop(a1);
        let b1p = granted(&mut b1);
        drop(a2);
        // c's turn before b's second.
        let c1p = granted(&mut c1);
        assert!((&mut b2).now_or_never().is_none());
        drop(c1p);
        let b2p = granted(&mut b2);
        assert_eq!(l.counts("b"), (2, 0));
        drop((b1p, b2p));
    }

    #[test]
    fn a_dropped_waiter_leaves_the_queue_and_a_dropped_grant_frees_its_slot() {
        let l = Limiter::new(1, 1, 10);
        let a1 = run(&l, "a");
        let b1 = wait(&l, "b");
        drop(b1);
        assert_eq!(l.counts("b"), (0, 0));
        let mut c1 = wait(&l, "c");
        let d1 = wait(&l, "d");
        drop(a1);
        let c1p = granted(&mut c1);
        drop(c1p);
        // d was granted the slot but never polled again: dropping it frees it.
        assert_eq!(l.counts("d"), (1, 0));
        drop(d1);
        assert_eq!(l.counts("d"), (0, 0));
        let e = run(&l, "e");
        drop(e);
    }
}

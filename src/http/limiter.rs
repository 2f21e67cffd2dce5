//! Fair shares of the database between tenants.
//!
//! A `Limiter` is one budget of database slots (one per pooled connection
//! it may use): SCIM and admin requests share one, gate checks have their
//! own (`AppState`), so logins keep working while an IdP imports.
//!
//! A request is first *admitted* (`admit`, right after authentication,
//! before its body is read): a tenant has at most `max_per_tenant` requests
//! admitted — uploading, waiting or running — and beyond that it gets 429
//! (with `Retry-After`) at once, for the price of one lock and one hash
//! lookup. Once its body is read the request takes a slot
//! (`Admission::acquire`) and holds it to its end, so it never holds more
//! than the one connection its slot stands for, and a slow upload holds no
//! slot.
//!
//! Slots come in two lanes, reads and writes, each with its own per-tenant
//! share and FIFO queue, so a tenant's reads never queue behind its own
//! writes waiting for SQLite's one writer:
//! - One tenant runs at most `share` reads and `share` writes at once (never
//!   every write slot); writes of all tenants together hold at most three
//!   quarters of the budget, so reads always find the rest.
//! - Beyond its share a tenant's requests wait in its lane's queue, without
//!   blocking an HTTP worker (an async wait, before the blocking hand-off).
//!   A freed slot goes to the next tenant in round-robin order that has
//!   waiters in a lane and is under that lane's share: one tenant's backlog
//!   never stands in front of another tenant's request.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::oneshot;

/// Which lane of the budget a request runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Read,
    Write,
}

impl Kind {
    fn lane(self) -> usize {
        match self {
            Kind::Read => 0,
            Kind::Write => 1,
        }
    }
}

const KINDS: [Kind; 2] = [Kind::Read, Kind::Write];

pub struct Limiter {
    /// Requests running at once, all tenants and lanes together.
    slots: usize,
    /// Writes running at once, all tenants together.
    write_slots: usize,
    /// Reads one tenant runs at once.
    share: usize,
    /// Writes one tenant runs at once.
    write_share: usize,
    /// Requests one tenant has admitted (uploading, waiting or running).
    max_per_tenant: usize,
    /// Refusals being held before their 429 (`hold_refusal`), all tenants.
    held: AtomicUsize,
    state: Mutex<State>,
}

/// Refusals held at once per limiter: beyond, a 429 is answered at once. Each
/// costs a parked future and its connection's buffers, nothing more.
const MAX_HELD_REFUSALS: usize = 4096;

/// A refusal being held; frees its place when dropped (answered, or the
/// client went away).
pub struct HeldRefusal {
    limiter: Arc<Limiter>,
}

impl Drop for HeldRefusal {
    fn drop(&mut self) {
        self.limiter.held.fetch_sub(1, Ordering::Relaxed);
    }
}

#[derive(Default)]
struct State {
    running: usize,
    writes: usize,
    tenants: HashMap<String, Tenant>,
    /// Per lane: tenants with waiters, in the order they get a freed slot.
    turns: [VecDeque<String>; 2],
    next_ticket: u64,
}

#[derive(Default)]
struct Lane {
    running: usize,
    waiting: VecDeque<(u64, oneshot::Sender<()>)>,
    /// Listed in the lane's `turns`.
    has_turn: bool,
}

impl Lane {
    fn idle(&self) -> bool {
        self.running == 0 && self.waiting.is_empty() && !self.has_turn
    }
}

#[derive(Default)]
struct Tenant {
    admitted: usize,
    lanes: [Lane; 2],
}

impl Tenant {
    fn idle(&self) -> bool {
        self.admitted == 0 && self.lanes.iter().all(Lane::idle)
    }
}

/// The tenant already has `max_per_tenant` requests admitted.
#[derive(Debug, PartialEq, Eq)]
pub struct QueueFull;

/// An admitted request, not yet holding a slot; leaves the count on drop.
pub struct Admission {
    limiter: Arc<Limiter>,
    tenant: String,
}

/// Held for the duration of a request; releases its slot when dropped (and
/// then its admission).
pub struct Permit {
    admission: Admission,
    kind: Kind,
}

/// What `enqueue` decided.
enum Ticket {
    Run,
    Wait(u64, oneshot::Receiver<()>),
}

impl Limiter {
    /// `share` 0 means half of `slots` (at least one); `share` is at most
    /// `slots`. Writes of all tenants hold at most three quarters of the
    /// slots (all of a budget of two or fewer), so reads always find the
    /// rest; a tenant at most `share` of them and never all, so another
    /// tenant's write finds one.
    pub fn new(slots: usize, share: usize, max_per_tenant: usize) -> Arc<Limiter> {
        let slots = slots.max(1);
        let share = if share == 0 { slots / 2 } else { share }.clamp(1, slots);
        let write_slots = (slots * 3 / 4).max(slots.min(2));
        let write_share = share.min(write_slots.saturating_sub(1)).max(1);
        Arc::new(Limiter {
            slots,
            write_slots,
            share,
            write_share,
            max_per_tenant: max_per_tenant.max(1),
            held: AtomicUsize::new(0),
            state: Mutex::new(State::default()),
        })
    }

    /// A place to hold a refused request before its 429, so a client that
    /// retries at once on every connection sends a few requests a second
    /// per connection instead of thousands, and its refusals stop taking
    /// CPU from other tenants. `None` when `MAX_HELD_REFUSALS` are held
    /// already: that refusal is answered at once.
    pub fn hold_refusal(self: &Arc<Self>) -> Option<HeldRefusal> {
        let prev = self.held.fetch_add(1, Ordering::Relaxed);
        if prev >= MAX_HELD_REFUSALS {
            self.held.fetch_sub(1, Ordering::Relaxed);
            return None;
        }
        Some(HeldRefusal {
            limiter: Arc::clone(self),
        })
    }

    /// Refusals being held now (for tests and diagnostics).
    pub fn held_refusals(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }

    pub fn share(&self) -> usize {
        self.share
    }

    pub fn write_share(&self) -> usize {
        self.write_share
    }

    fn lane_share(&self, kind: Kind) -> usize {
        match kind {
            Kind::Read => self.share,
            Kind::Write => self.write_share,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding it; a poisoned lock still has sound counts.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts a request of `tenant` as admitted, or refuses it when the
    /// tenant has `max_per_tenant` already. Allocates nothing when refused.
    pub fn admit(self: &Arc<Self>, tenant: &str) -> Result<Admission, QueueFull> {
        let mut st = self.lock();
        match st.tenants.get_mut(tenant) {
            Some(t) if t.admitted >= self.max_per_tenant => return Err(QueueFull),
            Some(t) => t.admitted += 1,
            None => {
                st.tenants.insert(
                    tenant.to_string(),
                    Tenant {
                        admitted: 1,
                        ..Tenant::default()
                    },
                );
            }
        }
        drop(st);
        Ok(Admission {
            limiter: Arc::clone(self),
            tenant: tenant.to_string(),
        })
    }

    /// `admit` and `Admission::acquire` in one step (no body to read between).
    pub async fn acquire(self: &Arc<Self>, tenant: &str, kind: Kind) -> Result<Permit, QueueFull> {
        self.admit(tenant)?.acquire(kind).await
    }

    fn enqueue(&self, tenant: &str, kind: Kind) -> Ticket {
        let mut st = self.lock();
        let st = &mut *st;
        let free = st.running < self.slots && (kind == Kind::Read || st.writes < self.write_slots);
        let share = self.lane_share(kind);
        // Admitted, so present; `entry` (allocating) only if not.
        if !st.tenants.contains_key(tenant) {
            st.tenants.insert(tenant.to_string(), Tenant::default());
        }
        let Some(t) = st.tenants.get_mut(tenant) else {
            return Ticket::Run;
        };
        let lane = &mut t.lanes[kind.lane()];
        if lane.waiting.is_empty() && lane.running < share && free {
            lane.running += 1;
            st.running += 1;
            if kind == Kind::Write {
                st.writes += 1;
            }
            return Ticket::Run;
        }
        let (tx, rx) = oneshot::channel();
        let ticket = st.next_ticket;
        st.next_ticket = st.next_ticket.wrapping_add(1);
        lane.waiting.push_back((ticket, tx));
        if !lane.has_turn {
            lane.has_turn = true;
            st.turns[kind.lane()].push_back(tenant.to_string());
        }
        Ticket::Wait(ticket, rx)
    }

    /// Frees one of `tenant`'s slots in `kind`'s lane and hands free slots to waiters.
    fn release(&self, tenant: &str, kind: Kind) {
        let mut st = self.lock();
        let st = &mut *st;
        st.running = st.running.saturating_sub(1);
        if kind == Kind::Write {
            st.writes = st.writes.saturating_sub(1);
        }
        if let Some(t) = st.tenants.get_mut(tenant) {
            let lane = &mut t.lanes[kind.lane()];
            lane.running = lane.running.saturating_sub(1);
        }
        self.dispatch(st);
    }

    /// Ends one admission of `tenant`.
    fn unadmit(&self, tenant: &str) {
        let mut st = self.lock();
        if let Some(t) = st.tenants.get_mut(tenant) {
            t.admitted = t.admitted.saturating_sub(1);
            if t.idle() {
                st.tenants.remove(tenant);
            }
        }
    }

    /// Per lane, reads first, round robin over the tenants with waiters: each
    /// in turn gets one slot if it is under its lane's share; one at its
    /// share keeps its place.
    fn dispatch(&self, st: &mut State) {
        for kind in KINDS {
            let i = kind.lane();
            let share = self.lane_share(kind);
            let mut passed = 0;
            while st.running < self.slots
                && (kind == Kind::Read || st.writes < self.write_slots)
                && passed < st.turns[i].len()
            {
                let Some(name) = st.turns[i].pop_front() else {
                    break;
                };
                let Some(t) = st.tenants.get_mut(&name) else {
                    continue;
                };
                let lane = &mut t.lanes[i];
                if lane.waiting.is_empty() {
                    lane.has_turn = false;
                    if t.idle() {
                        st.tenants.remove(&name);
                    }
                    continue;
                }
                if lane.running >= share {
                    st.turns[i].push_back(name);
                    passed += 1;
                    continue;
                }
                passed = 0;
                if let Some((_, tx)) = lane.waiting.pop_front() {
                    lane.running += 1;
                    st.running += 1;
                    if kind == Kind::Write {
                        st.writes += 1;
                    }
                    // A closed receiver: its waiter is being dropped and, not
                    // finding its ticket queued, frees this slot (`Waiting`).
                    let _ = tx.send(());
                }
                if lane.waiting.is_empty() {
                    lane.has_turn = false;
                } else {
                    st.turns[i].push_back(name);
                }
            }
        }
    }

    /// Requests of `tenant` running / waiting in `kind`'s lane (for tests and
    /// diagnostics).
    pub fn counts(&self, tenant: &str, kind: Kind) -> (usize, usize) {
        let st = self.lock();
        st.tenants.get(tenant).map_or((0, 0), |t| {
            let lane = &t.lanes[kind.lane()];
            (lane.running, lane.waiting.len())
        })
    }

    /// Requests of `tenant` admitted (for tests and diagnostics).
    pub fn admitted(&self, tenant: &str) -> usize {
        let st = self.lock();
        st.tenants.get(tenant).map_or(0, |t| t.admitted)
    }
}

impl Admission {
    /// A slot in `kind`'s lane: at once when the tenant is under its share
    /// and a slot is free, else after its earlier requests of that kind, in
    /// its turn among tenants. Dropping the future while it waits leaves the
    /// queue (or frees the slot it was just given) and the admission.
    pub async fn acquire(self, kind: Kind) -> Result<Permit, QueueFull> {
        let limiter = Arc::clone(&self.limiter);
        let (ticket, rx) = match limiter.enqueue(&self.tenant, kind) {
            Ticket::Run => {
                return Ok(Permit {
                    admission: self,
                    kind,
                });
            }
            Ticket::Wait(ticket, rx) => (ticket, rx),
        };
        let mut waiting = Waiting {
            limiter: &limiter,
            tenant: &self.tenant,
            kind,
            ticket,
            armed: true,
        };
        let granted = rx.await;
        // Granted: the slot is counted, and from here the permit frees it.
        // Not granted (cannot happen while the limiter lives): nothing to free.
        waiting.armed = false;
        drop(waiting);
        match granted {
            Ok(()) => Ok(Permit {
                admission: self,
                kind,
            }),
            Err(_) => Err(QueueFull),
        }
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.limiter.unadmit(&self.tenant);
    }
}

/// A request waiting in its tenant's queue; cleans up if it is dropped
/// (client gone, deadline passed) before its slot arrived.
struct Waiting<'a> {
    limiter: &'a Limiter,
    tenant: &'a str,
    kind: Kind,
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
            let lane = &mut t.lanes[self.kind.lane()];
            let at = lane.waiting.iter().position(|(n, _)| *n == self.ticket)?;
            lane.waiting.remove(at)
        });
        match queued {
            // Still queued: leave the queue (`dispatch` drops an emptied turn).
            Some(_) => {}
            // Already given a slot that nobody will use: free it.
            None => {
                drop(st);
                self.limiter.release(self.tenant, self.kind);
            }
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.admission
            .limiter
            .release(&self.admission.tenant, self.kind);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::FutureExt;
    use std::pin::Pin;

    type Pending<'a> = Pin<Box<dyn std::future::Future<Output = Result<Permit, QueueFull>> + 'a>>;

    fn now(l: &Arc<Limiter>, t: &str, k: Kind) -> Option<Result<Permit, QueueFull>> {
        l.acquire(t, k).now_or_never()
    }

    fn wait<'a>(l: &'a Arc<Limiter>, t: &'a str, k: Kind) -> Pending<'a> {
        let mut f: Pending<'a> = Box::pin(l.acquire(t, k));
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

    fn run(l: &Arc<Limiter>, t: &str, k: Kind) -> Permit {
        match now(l, t, k) {
            Some(Ok(p)) => p,
            _ => panic!("{t} should run at once"),
        }
    }

    use Kind::{Read, Write};

    #[test]
    fn a_tenant_runs_at_most_its_share_and_queues_the_rest() {
        let l = Limiter::new(4, 0, 3);
        assert_eq!(l.share(), 2);
        let a1 = run(&l, "a", Read);
        let a2 = run(&l, "a", Read);
        // Over its share with two slots free: it waits, others do not.
        let mut a3 = wait(&l, "a", Read);
        assert_eq!(l.counts("a", Read), (2, 1));
        assert!(
            matches!(now(&l, "a", Read), Some(Err(QueueFull))),
            "queue full"
        );
        let b1 = run(&l, "b", Read);
        drop(a1);
        let a3p = granted(&mut a3);
        assert_eq!(l.counts("a", Read), (2, 0));
        drop((a2, b1, a3p));
        assert_eq!((l.counts("a", Read), l.counts("b", Read)), ((0, 0), (0, 0)));
        assert_eq!(l.admitted("a"), 0);
    }

    #[test]
    fn freed_slots_go_round_robin_between_waiting_tenants() {
        // Two slots, each tenant may use both: b's backlog must not stand
        // in front of c's request.
        let l = Limiter::new(2, 2, 10);
        let a1 = run(&l, "a", Read);
        let a2 = run(&l, "a", Read);
        let mut b1 = wait(&l, "b", Read);
        let mut b2 = wait(&l, "b", Read);
        let mut c1 = wait(&l, "c", Read);
        drop(a1);
        let b1p = granted(&mut b1);
        drop(a2);
        // c's turn before b's second.
        let c1p = granted(&mut c1);
        assert!((&mut b2).now_or_never().is_none());
        drop(c1p);
        let b2p = granted(&mut b2);
        assert_eq!(l.counts("b", Read), (2, 0));
        drop((b1p, b2p));
    }

    #[test]
    fn a_dropped_waiter_leaves_the_queue_and_a_dropped_grant_frees_its_slot() {
        let l = Limiter::new(1, 1, 10);
        let a1 = run(&l, "a", Read);
        let b1 = wait(&l, "b", Read);
        drop(b1);
        assert_eq!(l.counts("b", Read), (0, 0));
        assert_eq!(l.admitted("b"), 0);
        let mut c1 = wait(&l, "c", Read);
        let d1 = wait(&l, "d", Read);
        drop(a1);
        let c1p = granted(&mut c1);
        drop(c1p);
        // d was granted the slot but never polled again: dropping it frees it.
        assert_eq!(l.counts("d", Read), (1, 0));
        drop(d1);
        assert_eq!(l.counts("d", Read), (0, 0));
        assert_eq!(l.admitted("d"), 0);
        let e = run(&l, "e", Read);
        drop(e);
    }

    #[test]
    fn reads_never_queue_behind_the_tenants_own_writes() {
        // 8 slots: a tenant runs 4 reads and 4 writes; writes 6 in all.
        let l = Limiter::new(8, 0, 64);
        assert_eq!((l.share(), l.write_share()), (4, 4));
        let mut w: Vec<Permit> = (0..4).map(|_| run(&l, "b", Write)).collect();
        let mut w5 = wait(&l, "b", Write);
        // b's writes are stalled (say, behind another tenant's long write):
        // its reads still run at once.
        let r = run(&l, "b", Read);
        assert_eq!(l.counts("b", Write), (4, 1));
        // Writes of all tenants hold at most 6 of the 8 slots: with the
        // write lane full, d's write waits while c's read runs.
        let a = run(&l, "a", Write);
        let a2 = run(&l, "a", Write);
        let mut d1 = wait(&l, "d", Write);
        let c = run(&l, "c", Read);
        assert!(now(&l, "c", Read).is_none(), "the budget is full");
        w.pop();
        // b's queued write was first in the write lane's turns.
        let w5p = granted(&mut w5);
        assert!((&mut d1).now_or_never().is_none());
        drop(a);
        let d1p = granted(&mut d1);
        drop((w, w5p, r, a2, d1p, c));
        assert_eq!(l.admitted("b") + l.admitted("c") + l.admitted("d"), 0);
    }

    #[test]
    fn budgets_split_between_lanes() {
        // (slots, share) -> (write share, writes in all)
        for (slots, share, write_share, writes) in [
            (1, 0, 1, 1),
            (2, 0, 1, 2),
            (4, 0, 2, 3),
            (16, 0, 8, 12),
            (16, 16, 11, 12),
        ] {
            let l = Limiter::new(slots, share, 64);
            assert_eq!(
                (l.write_share(), l.write_slots),
                (write_share, writes),
                "{slots}"
            );
        }
    }

    #[test]
    fn admissions_count_toward_the_queue_without_holding_a_slot() {
        let l = Limiter::new(1, 1, 2);
        // Two requests uploading their bodies: admitted, no slot held.
        let up1 = l.admit("a").ok();
        let up2 = l.admit("a").ok();
        assert!(up1.is_some() && up2.is_some());
        assert_eq!(l.admit("a").err(), Some(QueueFull));
        assert_eq!(l.counts("a", Read), (0, 0));
        // Another tenant still runs: the uploads hold no slot.
        let b = run(&l, "b", Read);
        drop(b);
        drop(up1);
        let p = run(&l, "a", Write);
        drop((p, up2));
        assert_eq!(l.admitted("a"), 0);
    }

    #[test]
    fn held_refusals_are_bounded_and_freed_on_drop() {
        let l = Limiter::new(2, 1, 1);
        let held: Vec<_> = (0..MAX_HELD_REFUSALS)
            .map(|_| l.hold_refusal().expect("under the cap"))
            .collect();
        assert_eq!(l.held_refusals(), MAX_HELD_REFUSALS);
        assert!(l.hold_refusal().is_none(), "over the cap: answered at once");
        assert_eq!(l.held_refusals(), MAX_HELD_REFUSALS);
        drop(held);
        assert_eq!(l.held_refusals(), 0);
        assert!(l.hold_refusal().is_some());
    }
}

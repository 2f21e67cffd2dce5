//! Closed- and open-loop request runners and their statistics.
//!
//! Everything runs on one thread (a current-thread runtime): the workers are
//! plain futures joined together, so they can borrow the workload's state.

use crate::client::{Conn, Endpoint, Response};
use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use hdrhistogram::Histogram;
use hyper::Method;
use serde::Serialize;
use std::cell::{Cell, RefCell};
use std::time::{Duration, Instant};

/// One request of a workload.
pub struct Req {
    pub method: Method,
    pub path: String,
    pub auth: Option<String>,
    pub body: Option<Bytes>,
}

/// How a response is judged: `Ok` counts, `Err` is an error with a reason.
pub type Verdict = Result<(), String>;

#[derive(Debug, Clone, Serialize)]
pub struct Stats {
    pub workload: String,
    pub requests: u64,
    pub errors: u64,
    pub concurrency: usize,
    /// Offered rate for open-loop runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offered_rps: Option<f64>,
    pub seconds: f64,
    pub rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// The server's peak resident set during this workload (VmHWM after a reset).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_peak_rss_mib: Option<f64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sample_errors: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Further figures by name (e.g. latency by paging depth).
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub extra: std::collections::BTreeMap<String, f64>,
}

/// Latency past which a request counts as slow (`extra.over_100ms`).
const SLOW: Duration = Duration::from_millis(100);

/// Collects latencies (µs) and errors of one measured phase.
pub struct Recorder {
    hist: RefCell<Histogram<u64>>,
    errors: Cell<u64>,
    sample_errors: RefCell<Vec<String>>,
    started: Instant,
    /// Requests slower than `SLOW`, and when (seconds into the phase) the
    /// slowest one began.
    slow: Cell<u64>,
    worst: Cell<(Duration, f64)>,
}

impl Recorder {
    pub fn new() -> Result<Recorder, String> {
        Ok(Recorder {
            // 1 µs .. 10 min at 3 significant digits.
            hist: RefCell::new(
                Histogram::new_with_bounds(1, 600_000_000, 3).map_err(|e| e.to_string())?,
            ),
            errors: Cell::new(0),
            sample_errors: RefCell::new(Vec::new()),
            started: Instant::now(),
            slow: Cell::new(0),
            worst: Cell::new((Duration::ZERO, 0.0)),
        })
    }

    pub fn record(&self, latency: Duration, verdict: Verdict) {
        let us = u64::try_from(latency.as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        self.hist.borrow_mut().saturating_record(us);
        if latency > SLOW {
            self.slow.set(self.slow.get() + 1);
            // For lining slow requests up with a server's or database's log.
            if std::env::var_os("LOAD_SLOW_LOG").is_some() {
                let began = std::time::SystemTime::now() - latency;
                let at = chrono::DateTime::<chrono::Utc>::from(began);
                eprintln!(
                    "slow: {} ms, began {}",
                    latency.as_millis(),
                    at.format("%H:%M:%S%.3f")
                );
            }
        }
        if latency > self.worst.get().0 {
            let began = self.started.elapsed().saturating_sub(latency);
            self.worst.set((latency, began.as_secs_f64()));
        }
        if let Err(e) = verdict {
            self.error(e);
        }
    }

    pub fn error(&self, e: String) {
        self.errors.set(self.errors.get() + 1);
        let mut s = self.sample_errors.borrow_mut();
        if s.len() < 5 {
            s.push(e);
        }
    }

    pub fn stats(&self, workload: &str, concurrency: usize, elapsed: Duration) -> Stats {
        let h = self.hist.borrow();
        let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
        let secs = elapsed.as_secs_f64();
        Stats {
            workload: workload.to_string(),
            requests: h.len(),
            errors: self.errors.get(),
            concurrency,
            offered_rps: None,
            seconds: secs,
            rps: if secs > 0.0 {
                h.len() as f64 / secs
            } else {
                0.0
            },
            p50_ms: ms(0.5),
            p99_ms: ms(0.99),
            max_ms: h.max() as f64 / 1000.0,
            server_peak_rss_mib: None,
            sample_errors: self.sample_errors.borrow().clone(),
            note: None,
            extra: [
                ("over_100ms".to_string(), self.slow.get() as f64),
                ("max_at_s".to_string(), self.worst.get().1),
            ]
            .into_iter()
            .collect(),
        }
    }
}

/// Sends `n` requests from `concurrency` workers, each waiting for its
/// response before sending the next (or, with `stop`, as many as fit before
/// that instant: no request starts after it). `make(i)` builds request `i`;
/// `check(i, response)` verifies it.
pub async fn closed_loop<M, C>(
    endpoint: &Endpoint,
    n: usize,
    concurrency: usize,
    deadline: Instant,
    stop: Option<Instant>,
    make: M,
    check: C,
) -> Result<(Recorder, Duration), String>
where
    M: Fn(usize) -> Req,
    C: Fn(usize, &Response) -> Verdict,
{
    let rec = Recorder::new()?;
    let next = Cell::new(0usize);
    let start = Instant::now();
    let workers = (0..concurrency.max(1)).map(|_| {
        let (rec, next, make, check) = (&rec, &next, &make, &check);
        async move {
            let mut conn = Conn::new(endpoint.clone());
            loop {
                let i = next.get();
                if i >= n || stop.is_some_and(|s| Instant::now() >= s) {
                    break;
                }
                next.set(i + 1);
                if Instant::now() > deadline {
                    rec.error(format!("time limit reached before request {i}"));
                    continue;
                }
                let req = make(i);
                let t0 = Instant::now();
                let res = conn
                    .send(
                        &req.method,
                        &req.path,
                        req.auth.as_deref(),
                        req.body.as_ref(),
                    )
                    .await;
                let verdict = res.and_then(|r| check(i, &r));
                rec.record(t0.elapsed(), verdict);
            }
        }
    });
    futures_util::future::join_all(workers).await;
    Ok((rec, start.elapsed()))
}

/// Offers `n` requests at `rate` per second regardless of how fast answers
/// come (open loop), over at most `max_conns` connections. Latency runs from
/// the moment a request is due, so waiting for a free connection counts.
pub async fn open_loop<M, C>(
    endpoint: &Endpoint,
    n: usize,
    rate: f64,
    max_conns: usize,
    deadline: Instant,
    make: M,
    check: C,
) -> Result<(Recorder, Duration, Duration), String>
where
    M: Fn(usize) -> Req,
    C: Fn(usize, &Response) -> Verdict,
{
    let rec = Recorder::new()?;
    let idle: RefCell<Vec<Conn>> = RefCell::new(Vec::new());
    let permits = tokio::sync::Semaphore::new(max_conns.max(1));
    let start = Instant::now();
    let mut max_lag = Duration::ZERO;
    let mut inflight = FuturesUnordered::new();
    for i in 0..n {
        let due = start + Duration::from_secs_f64(i as f64 / rate);
        if due > deadline {
            rec.error(format!("time limit reached before request {i}"));
            continue;
        }
        // Drive the requests in flight until this one is due.
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(due.into()) => break,
                Some(()) = inflight.next(), if !inflight.is_empty() => {}
            }
        }
        let t0 = Instant::now();
        max_lag = max_lag.max(t0.saturating_duration_since(due));
        let req = make(i);
        let (rec, idle, permits, check) = (&rec, &idle, &permits, &check);
        inflight.push(async move {
            let verdict = match permits.acquire().await {
                Ok(_permit) => {
                    let popped = idle.borrow_mut().pop();
                    let mut conn = popped.unwrap_or_else(|| Conn::new(endpoint.clone()));
                    let res = conn
                        .send(
                            &req.method,
                            &req.path,
                            req.auth.as_deref(),
                            req.body.as_ref(),
                        )
                        .await;
                    idle.borrow_mut().push(conn);
                    res.and_then(|r| check(i, &r))
                }
                Err(e) => Err(e.to_string()),
            };
            rec.record(t0.elapsed(), verdict);
        });
    }
    while inflight.next().await.is_some() {}
    drop(inflight);
    Ok((rec, start.elapsed(), max_lag))
}

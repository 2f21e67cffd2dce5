//! What every workload shares: where the server is, its tokens, limits, and
//! the results collected so far.

use crate::client::{Conn, Endpoint, Response};
use crate::rss::Server;
use crate::run::{self, Req, Stats, Verdict};
use bytes::Bytes;
use hyper::Method;
use serde::Serialize;
use std::cell::RefCell;
use std::time::Instant;

/// A correctness check made after a workload, so a fast wrong answer cannot count.
#[derive(Debug, Clone, Serialize)]
pub struct Verification {
    pub workload: String,
    pub what: String,
    pub checked: u64,
    pub failed: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sample_failures: Vec<String>,
}

pub struct Ctx {
    pub endpoint: Endpoint,
    /// Path prefix of the SCIM endpoints, e.g. `/scim/v2`.
    pub scim: String,
    pub scim_auth: Option<String>,
    pub gate_auth: Option<String>,
    pub admin_auth: Option<String>,
    pub concurrency: usize,
    pub warmup: usize,
    pub deadline: Instant,
    pub server: Server,
    pub results: RefCell<Vec<Stats>>,
    pub verifications: RefCell<Vec<Verification>>,
    probe: RefCell<Option<Conn>>,
}

impl Ctx {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        endpoint: Endpoint,
        scim: String,
        scim_auth: Option<String>,
        gate_auth: Option<String>,
        admin_auth: Option<String>,
        concurrency: usize,
        warmup: usize,
        deadline: Instant,
        server: Server,
    ) -> Ctx {
        Ctx {
            endpoint,
            scim,
            scim_auth,
            gate_auth,
            admin_auth,
            concurrency,
            warmup,
            deadline,
            server,
            results: RefCell::new(Vec::new()),
            verifications: RefCell::new(Vec::new()),
            probe: RefCell::new(None),
        }
    }

    pub fn scim_req(&self, method: Method, path: String, body: Option<Bytes>) -> Req {
        Req {
            method,
            path: format!("{}{path}", self.scim),
            auth: self.scim_auth.clone(),
            body,
        }
    }

    /// One request outside any measurement (setup and verification).
    pub async fn one(&self, req: Req) -> Result<Response, String> {
        let taken = self.probe.borrow_mut().take();
        let mut conn = taken.unwrap_or_else(|| Conn::new(self.endpoint.clone()));
        let res = conn
            .send(
                &req.method,
                &req.path,
                req.auth.as_deref(),
                req.body.as_ref(),
            )
            .await;
        *self.probe.borrow_mut() = Some(conn);
        res
    }

    pub async fn scim_json(
        &self,
        method: Method,
        path: String,
    ) -> Result<serde_json::Value, String> {
        let r = self.one(self.scim_req(method, path.clone(), None)).await?;
        if r.status != 200 {
            return Err(format!("GET {path}: status {}", r.status));
        }
        r.json()
    }

    /// Runs `n` requests unmeasured, to warm caches and connections; returns
    /// how many failed.
    pub async fn warm<M, C>(&self, n: usize, make: M, check: C) -> Result<u64, String>
    where
        M: Fn(usize) -> Req,
        C: Fn(usize, &Response) -> Verdict,
    {
        if n == 0 {
            return Ok(0);
        }
        let (rec, _) = run::closed_loop(
            &self.endpoint,
            n,
            self.concurrency,
            self.deadline,
            None,
            make,
            check,
        )
        .await?;
        Ok(rec
            .stats("warm-up", self.concurrency, Default::default())
            .errors)
    }

    /// Runs and records one measured closed-loop workload.
    pub async fn measure<M, C>(
        &self,
        name: &str,
        n: usize,
        concurrency: usize,
        make: M,
        check: C,
    ) -> Result<Stats, String>
    where
        M: Fn(usize) -> Req,
        C: Fn(usize, &Response) -> Verdict,
    {
        self.measure_for(name, n, None, concurrency, make, check)
            .await
    }

    /// `measure`; with `seconds`, for that long instead of `n` requests.
    pub async fn measure_for<M, C>(
        &self,
        name: &str,
        n: usize,
        seconds: Option<std::time::Duration>,
        concurrency: usize,
        make: M,
        check: C,
    ) -> Result<Stats, String>
    where
        M: Fn(usize) -> Req,
        C: Fn(usize, &Response) -> Verdict,
    {
        let fresh = self.server.reset_peak();
        let (n, stop) = match seconds {
            Some(d) => (usize::MAX, Some(Instant::now() + d)),
            None => (n, None),
        };
        let (rec, elapsed) = run::closed_loop(
            &self.endpoint,
            n,
            concurrency,
            self.deadline,
            stop,
            make,
            check,
        )
        .await?;
        let mut s = rec.stats(name, concurrency, elapsed);
        self.finish(&mut s, fresh);
        eprintln!("{}", crate::report::line(&s));
        self.results.borrow_mut().push(s.clone());
        Ok(s)
    }

    /// Fills in the server's peak memory and notes a dead server.
    pub fn finish(&self, s: &mut Stats, fresh_peak: bool) {
        s.server_peak_rss_mib = self.server.peak_mib();
        if s.server_peak_rss_mib.is_some() && !fresh_peak {
            s.note = Some("peak RSS since server start (clear_refs refused)".into());
        }
        if !self.server.alive() {
            s.sample_errors.push("the server process is gone".into());
            s.errors += 1;
        }
    }

    pub fn push(&self, s: Stats) {
        eprintln!("{}", crate::report::line(&s));
        self.results.borrow_mut().push(s);
    }

    pub fn verified(&self, workload: &str, what: &str, checked: u64, failures: Vec<String>) {
        let v = Verification {
            workload: workload.into(),
            what: what.into(),
            checked,
            failed: failures.len() as u64,
            sample_failures: failures.into_iter().take(5).collect(),
        };
        eprintln!(
            "  verify {workload}: {what}: {} checked, {} failed{}",
            v.checked,
            v.failed,
            v.sample_failures
                .first()
                .map(|f| format!(" (first: {f})"))
                .unwrap_or_default()
        );
        self.verifications.borrow_mut().push(v);
    }
}

/// A deterministic spread of indexes in `0..n` (Knuth's multiplicative hash).
pub fn spread(i: usize, n: usize) -> usize {
    ((i as u64).wrapping_mul(2_654_435_761) % n.max(1) as u64) as usize
}

pub fn total_results(v: &serde_json::Value) -> Option<u64> {
    v.get("totalResults").and_then(serde_json::Value::as_u64)
}

pub fn first_resource(v: &serde_json::Value) -> Option<&serde_json::Value> {
    v.get("Resources").and_then(|r| r.get(0))
}

/// Checks a list response holds exactly one resource with this userName.
pub fn one_user_named(r: &Response, user_name: &str) -> Verdict {
    if r.status != 200 {
        return Err(format!("status {}", r.status));
    }
    let v = r.json()?;
    let total = total_results(&v);
    let got = first_resource(&v)
        .and_then(|u| u.get("userName"))
        .and_then(serde_json::Value::as_str);
    match (total, got) {
        (Some(1), Some(u)) if u.eq_ignore_ascii_case(user_name) => Ok(()),
        _ => Err(format!(
            "expected exactly {user_name}, got totalResults {total:?}, userName {got:?}"
        )),
    }
}

//! The hostile workload: tenant A attacks the server with its own valid
//! token while tenant B runs its normal traffic (lookups, PATCH writes, gate
//! checks) at a modest paced rate. For each attack the report gives tenant
//! B's p50/p99 per operation and every status code B and A received: the
//! point is whether one tenant can stall another. A's requests are not
//! expected to succeed (caps answer 400/413); their codes are recorded.
//!
//! The attacks run on a thread of their own (their own runtime), so building
//! and reading multi-megabyte bodies never delays B's timer. Every loop is
//! bounded by a count and by `--window` (plus `--attack-timeout` per request).
//!
//! The `webhook` attack needs the server's policy to send tenant A's events to
//! 127.0.0.1:`--hook-a-port` and B's to `--hook-b-port` (bench/run.sh writes
//! it): webhooks are configured in the policy, not through the admin API. The
//! driver runs both receivers: A's answers each event after `--hook-delay`
//! seconds; B's records when each `user.suspended` arrives.

use crate::client::{Conn, Endpoint, Response};
use crate::ctx::Ctx;
use crate::payloads::{self, filter_eq};
use crate::run::{Req, Stats};
use bytes::Bytes;
use hdrhistogram::Histogram;
use hyper::Method;
use serde_json::{Value, json};
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod webhook;
use webhook::*;

/// Every attack, in the order they run (`--attacks` picks some). `webhook`
/// runs last: A's slow receiver keeps its delivery worker busy afterwards.
pub const ATTACKS: [&str; 9] = [
    "baseline",
    "emails",
    "members",
    "search",
    "extension",
    "secrets",
    "flood",
    "dispose",
    "webhook",
];

pub struct Hostile {
    /// Tenant B's SCIM authorization header (tenant A's is the context's).
    pub b_scim_auth: Option<String>,
    /// Tenant A's raw SCIM token: its id is presented with random secrets.
    pub a_token: Option<String>,
    pub attacks: Vec<String>,
    pub window: Duration,
    pub attack_timeout: Duration,
    pub b_users: usize,
    pub b_concurrency: usize,
    pub b_rate: f64,
    pub emails: usize,
    pub member_ids: usize,
    pub search_users: usize,
    pub search_conns: usize,
    pub attr_bytes: usize,
    pub ext_users: usize,
    pub ext_bytes: usize,
    pub ext_conns: usize,
    pub secret_conns: usize,
    pub flood_conns: usize,
    pub flood_requests: usize,
    pub dispose_owner: usize,
    /// Where the server delivers tenant A's / B's webhooks (0: no webhook attack).
    pub hook_a_port: u16,
    pub hook_b_port: u16,
    /// How long A's receiver takes to answer each event.
    pub hook_delay: Duration,
    /// Users A suspends before the attack (two events each: queued for its slow receiver).
    pub hook_a_suspends: usize,
    /// Users B suspends, paced over the window; each `user.suspended` is timed to B's receiver.
    pub hook_b_suspends: usize,
}

/// Latencies and status codes of one kind of request.
struct Tally {
    hist: Histogram<u64>,
    /// "200", "429", "timeout", "error" …
    statuses: BTreeMap<String, u64>,
    /// 2xx answers that were wrong (B's checks).
    wrong: u64,
    samples: Vec<String>,
}

impl Tally {
    fn new() -> Result<Tally, String> {
        Ok(Tally {
            // 1 µs .. 30 min at 3 significant digits.
            hist: Histogram::new_with_bounds(1, 1_800_000_000, 3).map_err(|e| e.to_string())?,
            statuses: BTreeMap::new(),
            wrong: 0,
            samples: Vec::new(),
        })
    }

    fn record(&mut self, latency: Duration, outcome: Result<u16, String>, bad: Option<String>) {
        let us = u64::try_from(latency.as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        self.hist.saturating_record(us);
        let outcome_ok = matches!(outcome, Ok(s) if (200..300).contains(&s));
        let key = match outcome {
            Ok(s) => s.to_string(),
            Err(e) => {
                let key = if e == "timeout" { "timeout" } else { "error" };
                if self.samples.len() < 3 {
                    self.samples.push(e);
                }
                key.to_string()
            }
        };
        *self.statuses.entry(key).or_default() += 1;
        if let Some(b) = bad {
            if outcome_ok {
                self.wrong += 1;
            }
            if self.samples.len() < 3 {
                self.samples.push(b);
            }
        }
    }

    /// Non-2xx answers, timeouts and transport errors.
    fn failures(&self) -> u64 {
        self.statuses
            .iter()
            .filter(|(k, _)| !k.starts_with('2'))
            .map(|(_, n)| n)
            .sum::<u64>()
            + self.wrong
    }

    fn stats(&self, workload: String, concurrency: usize, elapsed: Duration) -> Stats {
        let ms = |q: f64| self.hist.value_at_quantile(q) as f64 / 1000.0;
        let secs = elapsed.as_secs_f64();
        let codes = self
            .statuses
            .iter()
            .map(|(k, n)| format!("{k}×{n}"))
            .collect::<Vec<_>>()
            .join(", ");
        Stats {
            workload,
            requests: self.hist.len(),
            errors: self.failures(),
            concurrency,
            offered_rps: None,
            seconds: secs,
            rps: if secs > 0.0 {
                self.hist.len() as f64 / secs
            } else {
                0.0
            },
            p50_ms: ms(0.5),
            p99_ms: ms(0.99),
            max_ms: self.hist.max() as f64 / 1000.0,
            server_peak_rss_mib: None,
            sample_errors: self.samples.clone(),
            note: Some(format!("status {codes}")),
            extra: self
                .statuses
                .iter()
                .map(|(k, n)| (format!("status_{k}"), *n as f64))
                .collect(),
        }
    }
}

/// Tenant B's users (created by this run) and its three kinds of request.
struct TenantB {
    people: Vec<payloads::Person>,
    ids: Vec<String>,
}

const B_OPS: [&str; 3] = ["lookup userName eq", "PATCH displayName", "gate check"];

pub async fn run(ctx: &Ctx, cfg: &Hostile) -> Result<(), String> {
    let run_id = format!("{:06x}", rand::random::<u32>() & 0xff_ffff);
    let b = setup_b(ctx, cfg, &run_id).await?;
    eprintln!(
        "hostile run {run_id}: tenant B has {} users; {} workers at {} req/s",
        b.ids.len(),
        cfg.b_concurrency,
        cfg.b_rate
    );
    for attack in ATTACKS {
        if !cfg.attacks.iter().any(|a| a == attack) {
            continue;
        }
        if attack == "dispose" && cfg.dispose_owner == 0 {
            eprintln!("  dispose: skipped (no --dispose-owner)");
            continue;
        }
        if attack == "webhook" && (cfg.hook_a_port == 0 || cfg.hook_b_port == 0) {
            eprintln!("  webhook: skipped (no --hook-a-port / --hook-b-port)");
            continue;
        }
        if Instant::now() > ctx.deadline {
            return Err(format!("time limit reached before the {attack} attack"));
        }
        let plan = prepare(ctx, cfg, attack, &run_id).await?;
        phase(ctx, cfg, &b, attack, plan).await?;
    }
    Ok(())
}

async fn setup_b(ctx: &Ctx, cfg: &Hostile, run_id: &str) -> Result<TenantB, String> {
    let people: Vec<_> = (0..cfg.b_users.max(1))
        .map(|i| payloads::person(&format!("b{run_id}"), i))
        .collect();
    let mut ids = Vec::with_capacity(people.len());
    for (i, p) in people.iter().enumerate() {
        let r = ctx
            .one(b_req(
                ctx,
                cfg,
                Method::POST,
                "/Users".into(),
                Some(payloads::create_body(p, i)),
            ))
            .await?;
        if r.status != 201 {
            return Err(format!("tenant B's create: status {}", r.status));
        }
        let v = r.json()?;
        ids.push(v["id"].as_str().unwrap_or_default().to_string());
    }
    Ok(TenantB { people, ids })
}

fn b_req(ctx: &Ctx, cfg: &Hostile, method: Method, path: String, body: Option<Bytes>) -> Req {
    Req {
        method,
        path: format!("{}{path}", ctx.scim),
        auth: cfg.b_scim_auth.clone(),
        body,
    }
}

/// What an attack sends: `conns` connections sending up to `count` requests
/// in all (request `i` from `make(i)`), or one sleep for the baseline.
struct Plan {
    conns: usize,
    count: usize,
    /// Bodies are built before the phase starts (`make` only clones).
    make: Box<dyn Fn(usize) -> Req + Send>,
    describe: String,
    /// Request `i` is sent no earlier than `i · pace` into the attack (zero: at once).
    pace: Duration,
    /// The webhook attack's receivers: B's deliveries are timed after the phase.
    hooks: Option<Arc<Hooks>>,
}

async fn prepare(ctx: &Ctx, cfg: &Hostile, attack: &str, run_id: &str) -> Result<Plan, String> {
    let scim = ctx.scim.clone();
    let a_auth = ctx.scim_auth.clone();
    let req = move |method: Method, path: String, body: Option<Bytes>| Req {
        method,
        path: format!("{scim}{path}"),
        auth: a_auth.clone(),
        body,
    };
    let patch = |ops: Value| {
        Bytes::from(
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops})
                .to_string(),
        )
    };
    let repeats = 3;
    Ok(match attack {
        "baseline" => Plan {
            conns: 0,
            count: 0,
            make: Box::new(move |_| req(Method::GET, "/".into(), None)),
            describe: "no attack".into(),
            pace: Duration::ZERO,
            hooks: None,
        },
        "emails" => {
            let ids = create_a_users(ctx, &format!("em{run_id}"), repeats, |_| None).await?;
            let bodies: Vec<Bytes> = (0..repeats)
                .map(|r| {
                    let emails: Vec<String> = (0..cfg.emails)
                        .map(|i| format!("e{r}x{i}@flood.example"))
                        .collect();
                    patch(json!([{"op": "add", "path": "emails", "value": emails}]))
                })
                .collect();
            Plan {
                conns: 1,
                count: repeats,
                make: Box::new(move |i| {
                    req(
                        Method::PATCH,
                        format!("/Users/{}", ids[i % ids.len()]),
                        Some(bodies[i % bodies.len()].clone()),
                    )
                }),
                describe: format!(
                    "PATCH add of {} bare-string emails, {repeats} users in turn",
                    cfg.emails
                ),
                pace: Duration::ZERO,
                hooks: None,
            }
        }
        "members" => {
            let mut groups = Vec::new();
            for r in 0..repeats {
                let body = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                    "displayName": format!("hostile-{run_id}-{r}")});
                let resp = ctx
                    .one(req(
                        Method::POST,
                        "/Groups".into(),
                        Some(Bytes::from(body.to_string())),
                    ))
                    .await?;
                groups.push(resp.json()?["id"].as_str().unwrap_or_default().to_string());
            }
            let ids: Vec<Value> = (0..cfg.member_ids)
                .map(|_| json!({"value": uuid::Uuid::new_v4().to_string()}))
                .collect();
            let body = patch(json!([{"op": "add", "value": {" members": ids}}]));
            Plan {
                conns: 1,
                count: repeats,
                make: Box::new(move |i| {
                    req(
                        Method::PATCH,
                        format!("/Groups/{}", groups[i % groups.len()]),
                        Some(body.clone()),
                    )
                }),
                describe: format!(
                    "group PATCH, path-less key \" members\", {} ids",
                    cfg.member_ids
                ),
                pace: Duration::ZERO,
                hooks: None,
            }
        }
        "search" => {
            let prefix = format!("srch{run_id}");
            create_a_users(ctx, &prefix, cfg.search_users, |_| None).await?;
            // Distinct names of about 10 bytes each, up to --attr-bytes.
            let attrs: Vec<String> = (0..cfg.attr_bytes / 10)
                .map(|i| format!("x{i:07}"))
                .collect();
            let body = Bytes::from(
                json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
                    "filter": format!("userName sw \"{prefix}\""),
                    "attributes": attrs, "count": cfg.search_users})
                .to_string(),
            );
            Plan {
                conns: cfg.search_conns,
                count: cfg.search_conns * 2,
                make: Box::new(move |_| {
                    req(Method::POST, "/Users/.search".into(), Some(body.clone()))
                }),
                describe: format!(
                    "{} parallel POST /Users/.search, {} KB attributes, {} users",
                    cfg.search_conns,
                    cfg.attr_bytes / 1000,
                    cfg.search_users
                ),
                pace: Duration::ZERO,
                hooks: None,
            }
        }
        "extension" => {
            let shared = format!("shared-{run_id}@ext.example");
            let blob = "z".repeat(cfg.ext_bytes);
            let ext = "urn:example:hostile:2.0:Blob";
            let created = create_a_users(ctx, &format!("ext{run_id}"), cfg.ext_users, |u| {
                Some(json!({
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ext],
                    "userName": u,
                    "emails": [{"value": shared, "type": "work"}],
                    ext: {"blob": blob}
                }))
            })
            .await;
            let note = match &created {
                Ok(ids) => format!("{} users created", ids.len()),
                Err(e) => format!("setup refused: {e}"),
            };
            let path = format!("/Users?filter={}", filter_eq("emails.value", &shared));
            Plan {
                conns: cfg.ext_conns,
                count: cfg.ext_conns * 50,
                make: Box::new(move |_| req(Method::GET, path.clone(), None)),
                describe: format!(
                    "{} threads looking up by a shared email {} users with a {} KB unknown extension ({note})",
                    cfg.ext_conns,
                    cfg.ext_users,
                    cfg.ext_bytes / 1000
                ),
                pace: Duration::ZERO,
                hooks: None,
            }
        }
        "secrets" => {
            let id = cfg
                .a_token
                .as_deref()
                .and_then(|t| t.strip_prefix("cust_"))
                .and_then(|t| t.split_once('_'))
                .map(|(id, _)| id.to_string())
                .ok_or("the secrets attack needs tenant A's token (cust_<id>_<secret>)")?;
            let scim = ctx.scim.clone();
            Plan {
                conns: cfg.secret_conns,
                count: cfg.secret_conns * 500,
                make: Box::new(move |_| {
                    use rand::Rng;
                    let secret: String = rand::thread_rng()
                        .sample_iter(rand::distributions::Alphanumeric)
                        .take(43)
                        .map(char::from)
                        .collect();
                    Req {
                        method: Method::GET,
                        path: format!("{scim}/Users?count=1"),
                        auth: Some(format!("Bearer cust_{id}_{secret}")),
                        body: None,
                    }
                }),
                describe: format!(
                    "{} threads presenting A's token id with random secrets",
                    cfg.secret_conns
                ),
                pace: Duration::ZERO,
                hooks: None,
            }
        }
        "flood" => {
            let run = format!("fl{run_id}");
            Plan {
                conns: cfg.flood_conns,
                count: cfg.flood_requests,
                make: Box::new(move |i| {
                    let p = payloads::person(&run, i);
                    req(
                        Method::POST,
                        "/Users".into(),
                        Some(payloads::create_body(&p, i)),
                    )
                }),
                describe: format!(
                    "POST /Users flood at {} connections (up to {})",
                    cfg.flood_conns, cfg.flood_requests
                ),
                pace: Duration::ZERO,
                hooks: None,
            }
        }
        "dispose" => {
            let owner = payloads::scale_owner(cfg.dispose_owner);
            let v = ctx
                .scim_json(
                    Method::GET,
                    format!("/Users?filter={}", filter_eq("userName", &owner)),
                )
                .await?;
            let id = v["Resources"][0]["id"]
                .as_str()
                .ok_or_else(|| format!("no seeded owner {owner} in tenant A: run `seed` first"))?
                .to_string();
            Plan {
                conns: 1,
                count: 1,
                make: Box::new(move |_| req(Method::DELETE, format!("/Users/{id}"), None)),
                describe: format!("SCIM DELETE of the owner of {} items", cfg.dispose_owner),
                pace: Duration::ZERO,
                hooks: None,
            }
        }
        "webhook" => prepare_webhook(ctx, cfg, run_id).await?,
        other => return Err(format!("unknown attack {other}")),
    })
}

/// Creates `n` users in tenant A named `<prefix>-<i>@hostile.example` (or
/// from `body(userName)`); returns their ids. Stops at the first refusal.
async fn create_a_users(
    ctx: &Ctx,
    prefix: &str,
    n: usize,
    body: impl Fn(&str) -> Option<Value>,
) -> Result<Vec<String>, String> {
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let user_name = format!("{prefix}-{i}@hostile.example");
        let v = body(&user_name).unwrap_or_else(|| {
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": user_name, "emails": [{"value": user_name, "type": "work"}]})
        });
        let r = ctx
            .one(ctx.scim_req(
                Method::POST,
                "/Users".into(),
                Some(Bytes::from(v.to_string())),
            ))
            .await?;
        if r.status != 201 {
            return Err(format!("tenant A's create {i}: status {}", r.status));
        }
        ids.push(r.json()?["id"].as_str().unwrap_or_default().to_string());
    }
    Ok(ids)
}

/// One attack with tenant B's traffic around it.
async fn phase(
    ctx: &Ctx,
    cfg: &Hostile,
    b: &TenantB,
    name: &str,
    plan: Plan,
) -> Result<(), String> {
    eprintln!("  {name}: {}", plan.describe);
    let hooks = plan.hooks.clone();
    let done = Arc::new(AtomicBool::new(false));
    let fresh = ctx.server.reset_peak();
    let started = Instant::now();
    let window_end = started + cfg.window;
    let attacker = {
        let (endpoint, done, timeout) = (ctx.endpoint.clone(), done.clone(), cfg.attack_timeout);
        let window = cfg.window;
        std::thread::Builder::new()
            .name(format!("attack-{name}"))
            .spawn(move || {
                let out = attack(endpoint, plan, window_end, window, timeout);
                done.store(true, Ordering::SeqCst);
                out
            })
            .map_err(|e| e.to_string())?
    };
    // B runs until the attack ends, for at least the window (the baseline's
    // length); bounded by the attack's own bounds and the time limit.
    let hard_end = (window_end + cfg.attack_timeout).min(ctx.deadline);
    let tallies = b_traffic(ctx, cfg, b, &done, window_end, hard_end).await?;
    let elapsed = started.elapsed();
    let a = attacker
        .join()
        .map_err(|_| "the attack thread panicked".to_string())??;
    for (op, t) in B_OPS.iter().zip(tallies.iter()) {
        if t.hist.is_empty() {
            continue;
        }
        let s = t.stats(format!("{name}: tenant B {op}"), cfg.b_concurrency, elapsed);
        push(ctx, s, fresh);
    }
    if !a.0.hist.is_empty() {
        // The webhook attack's requests are B's suspensions (A's part is its receiver).
        let who = if hooks.is_some() {
            "tenant B suspend PATCH"
        } else {
            "tenant A attack"
        };
        let mut s = a.0.stats(format!("{name}: {who}"), a.1, a.2);
        s.note = Some(format!(
            "{}; {}",
            plan_note(name, cfg),
            s.note.unwrap_or_default()
        ));
        push(ctx, s, fresh);
    }
    if let Some(h) = hooks {
        let t = webhook_deliveries(&h, cfg.attack_timeout).await?;
        let mut s = t.stats(
            format!("{name}: tenant B user.suspended delivered"),
            1,
            elapsed,
        );
        s.note = Some(format!(
            "from the PATCH to B's receiver; A's slow receiver took {} events; {}",
            h.a_received.load(Ordering::SeqCst),
            s.note.unwrap_or_default()
        ));
        push(ctx, s, fresh);
    }
    Ok(())
}

/// Records a row, keeping its status note beside the server's memory note.
fn push(ctx: &Ctx, mut s: Stats, fresh: bool) {
    let codes = s.note.take();
    ctx.finish(&mut s, fresh);
    s.note = match (codes, s.note.take()) {
        (Some(a), Some(b)) => Some(format!("{a}; {b}")),
        (a, b) => a.or(b),
    };
    ctx.push(s);
}

fn plan_note(name: &str, cfg: &Hostile) -> String {
    match name {
        "emails" => format!("{} emails per PATCH", cfg.emails),
        "members" => format!("{} ids per PATCH", cfg.member_ids),
        "search" => format!("{} connections", cfg.search_conns),
        "extension" => format!("{} connections", cfg.ext_conns),
        "secrets" => format!("{} connections", cfg.secret_conns),
        "flood" => format!("{} connections", cfg.flood_conns),
        "dispose" => format!("{} items", cfg.dispose_owner),
        "webhook" => format!(
            "B's suspensions, every {} ms",
            cfg.window.as_millis() / cfg.hook_b_suspends.max(1) as u128
        ),
        _ => String::new(),
    }
}

/// Runs the plan on this (attack) thread; returns A's tally, its
/// connections and how long it ran.
fn attack(
    endpoint: Endpoint,
    plan: Plan,
    window_end: Instant,
    window: Duration,
    timeout: Duration,
) -> Result<(Tally, usize, Duration), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let started = Instant::now();
    if plan.conns == 0 {
        std::thread::sleep(window);
        return Ok((Tally::new()?, 0, started.elapsed()));
    }
    let tally = RefCell::new(Tally::new()?);
    let next = Cell::new(0usize);
    rt.block_on(async {
        let workers = (0..plan.conns).map(|_| {
            let (tally, next, plan, endpoint) = (&tally, &next, &plan, &endpoint);
            async move {
                let mut conn = Conn::new(endpoint.clone());
                loop {
                    let i = next.get();
                    // The first request always goes; later ones only in the window.
                    if i >= plan.count || (i > 0 && Instant::now() > window_end) {
                        break;
                    }
                    next.set(i + 1);
                    if !plan.pace.is_zero() {
                        let due = started + plan.pace * u32::try_from(i).unwrap_or(u32::MAX);
                        tokio::time::sleep_until(due.into()).await;
                    }
                    let req = (plan.make)(i);
                    let t0 = Instant::now();
                    let sent = tokio::time::timeout(
                        timeout,
                        conn.send(
                            &req.method,
                            &req.path,
                            req.auth.as_deref(),
                            req.body.as_ref(),
                        ),
                    )
                    .await;
                    let outcome = match sent {
                        Ok(r) => r.map(|r| r.status),
                        Err(_) => {
                            // The answer may still come: never reuse this connection.
                            conn = Conn::new(endpoint.clone());
                            Err("timeout".to_string())
                        }
                    };
                    tally.borrow_mut().record(t0.elapsed(), outcome, None);
                }
            }
        });
        futures_util::future::join_all(workers).await;
    });
    Ok((tally.into_inner(), plan.conns, started.elapsed()))
}

/// Tenant B's paced traffic: worker `w` sends operation `w % 3` (lookup,
/// PATCH, gate check; no gate token: lookups instead) at `b_rate /
/// b_concurrency` per second each, until the attack is done and the window
/// is over, or `hard_end`. Latency counts from each request's due time
/// (no coordinated omission). B's tokens are verified (and cached) during
/// setup, before any attack.
async fn b_traffic(
    ctx: &Ctx,
    cfg: &Hostile,
    b: &TenantB,
    done: &AtomicBool,
    window_end: Instant,
    hard_end: Instant,
) -> Result<[Tally; 3], String> {
    let tallies = [
        RefCell::new(Tally::new()?),
        RefCell::new(Tally::new()?),
        RefCell::new(Tally::new()?),
    ];
    let workers = cfg.b_concurrency.max(1);
    let interval = Duration::from_secs_f64(workers as f64 / cfg.b_rate.max(1.0));
    let n = b.ids.len();
    let jobs = (0..workers).map(|w| {
        let tallies = &tallies;
        async move {
            let mut conn = Conn::new(ctx.endpoint.clone());
            let op = if w % 3 == 2 && ctx.gate_auth.is_none() {
                0
            } else {
                w % 3
            };
            let mut due = Instant::now() + interval.mul_f64(w as f64 / workers as f64);
            // Bounded: at most this many requests per worker.
            for k in 0..1_000_000usize {
                let now = Instant::now();
                if now > hard_end || (now > window_end && done.load(Ordering::SeqCst)) {
                    break;
                }
                if due > now {
                    tokio::time::sleep_until(due.into()).await;
                }
                // Latency runs from when the request was due, not when it was
                // sent: a worker held up by a stall is late with every request
                // behind it, as a real client's queue would be.
                let t0 = due;
                due += interval;
                let i = (k * workers + w) % n;
                let p = &b.people[i];
                let req = match op {
                    0 => b_req(
                        ctx,
                        cfg,
                        Method::GET,
                        format!("/Users?filter={}", filter_eq("userName", &p.user_name)),
                        None,
                    ),
                    1 => b_req(
                        ctx,
                        cfg,
                        Method::PATCH,
                        format!("/Users/{}", b.ids[i]),
                        Some(Bytes::from(
                            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                                "Operations": [{"op": "replace", "path": "displayName",
                                    "value": format!("{} {} {k}", p.given, p.family)}]})
                            .to_string(),
                        )),
                    ),
                    _ => Req {
                        method: Method::POST,
                        path: "/gate/v1/check".into(),
                        auth: ctx.gate_auth.clone(),
                        body: Some(Bytes::from(json!({"userName": p.user_name}).to_string())),
                    },
                };
                let res = tokio::time::timeout(
                    cfg.attack_timeout,
                    conn.send(
                        &req.method,
                        &req.path,
                        req.auth.as_deref(),
                        req.body.as_ref(),
                    ),
                )
                .await;
                let latency = t0.elapsed();
                let (outcome, bad) = match res {
                    Ok(Ok(r)) => {
                        let bad = check_b(op, &p.user_name, &r);
                        (Ok(r.status), bad)
                    }
                    Ok(Err(e)) => (Err(e), None),
                    Err(_) => {
                        conn = Conn::new(ctx.endpoint.clone());
                        (Err("timeout".into()), None)
                    }
                };
                tallies[op].borrow_mut().record(latency, outcome, bad);
            }
        }
    });
    futures_util::future::join_all(jobs).await;
    Ok(tallies.map(RefCell::into_inner))
}

/// A 2xx answer that is wrong (a sample, reported beside the codes).
fn check_b(op: usize, user_name: &str, r: &Response) -> Option<String> {
    if !(200..300).contains(&r.status) {
        return Some(format!(
            "{}: status {}: {}",
            B_OPS[op],
            r.status,
            String::from_utf8_lossy(&r.body[..r.body.len().min(160)])
        ));
    }
    match op {
        0 => crate::ctx::one_user_named(r, user_name).err(),
        2 => match r.json() {
            Ok(v) if v.get("decision").and_then(Value::as_str) == Some("allow") => None,
            Ok(v) => Some(format!("gate: want allow for {user_name}, got {v}")),
            Err(e) => Some(e),
        },
        _ => None,
    }
}

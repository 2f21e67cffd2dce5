//! Workloads 1–6 on users this run creates: create, lookups, PATCH active,
//! paging, DELETE, and the SSO gate. Each is verified afterwards.

use crate::client::Conn;
use crate::ctx::{Ctx, one_user_named, spread, total_results};
use crate::payloads::{self, Person, enc, filter_eq};
use crate::run::{self, Req, Verdict};
use bytes::Bytes;
use hyper::Method;
use serde_json::{Value, json};
use std::cell::RefCell;
use std::collections::HashSet;
use std::time::Instant;

pub struct Crud {
    pub users: usize,
    pub requests: usize,
    /// Run each read workload (the lookups, the closed-loop gate) this long
    /// instead of `requests` requests.
    pub seconds: Option<std::time::Duration>,
    pub page_walks: usize,
    pub cursor: bool,
    pub gate_rate: f64,
    pub workloads: Vec<String>,
}

struct People {
    list: Vec<Person>,
    ids: RefCell<Vec<String>>,
}

impl People {
    fn new(run: &str, n: usize) -> People {
        People {
            list: (0..n).map(|i| payloads::person(run, i)).collect(),
            ids: RefCell::new(vec![String::new(); n]),
        }
    }
    fn id(&self, i: usize) -> String {
        self.ids.borrow().get(i).cloned().unwrap_or_default()
    }
}

/// Which user index plays which part: the first half is PATCHed inactive,
/// the third quarter deleted, the last quarter stays active.
fn suspended(n: usize, j: usize) -> usize {
    j % (n / 2).max(1)
}
fn deleted(n: usize, j: usize) -> usize {
    n / 2 + j % (n / 4).max(1)
}
fn active(n: usize, j: usize) -> usize {
    3 * n / 4 + j % (n - 3 * n / 4).max(1)
}

pub async fn run(ctx: &Ctx, cfg: &Crud) -> Result<(), String> {
    let run_id = format!("{:06x}", rand::random::<u32>() & 0xff_ffff);
    let n = cfg.users.max(8);
    let people = People::new(&run_id, n);
    let warm = People::new(&format!("w{}", &run_id[..5]), ctx.warmup);
    let wants = |w: &str| cfg.workloads.iter().any(|x| x == w);
    if wants("gate") && !(wants("patch") && wants("delete")) {
        return Err(
            "the gate workload needs patch and delete (its suspended and disposed people)".into(),
        );
    }
    eprintln!(
        "run {run_id}: {n} users, {} requests per read workload",
        cfg.requests
    );

    // Workload 1: create. Later workloads need the users, so it always runs.
    create(ctx, &warm, "create (warm-up)", true).await?;
    create(ctx, &people, "create", false).await?;
    verify_created(ctx, &people).await;
    if wants("lookup") {
        lookups(ctx, &people, cfg).await?;
    }
    if wants("patch") {
        patch(ctx, &people, &warm).await?;
    }
    if wants("page") {
        paging(ctx, &people, cfg, false).await?;
        if cfg.cursor {
            paging(ctx, &people, cfg, true).await?;
        }
    }
    if wants("delete") {
        delete(ctx, &people, &warm).await?;
    }
    if wants("gate") {
        gate(ctx, &people, cfg).await?;
    }
    Ok(())
}

async fn create(ctx: &Ctx, people: &People, name: &str, warmup: bool) -> Result<(), String> {
    let n = people.list.len();
    let make = |i: usize| {
        ctx.scim_req(
            Method::POST,
            "/Users".into(),
            Some(payloads::create_body(&people.list[i], i)),
        )
    };
    let check = |i: usize, r: &crate::client::Response| -> Verdict {
        if r.status != 201 {
            return Err(format!("POST /Users: status {} (want 201)", r.status));
        }
        let v = r.json()?;
        let (Some(id), Some(u)) = (
            v.get("id").and_then(Value::as_str),
            v.get("userName").and_then(Value::as_str),
        ) else {
            return Err("201 without id or userName".into());
        };
        if !u.eq_ignore_ascii_case(&people.list[i].user_name) {
            return Err(format!("created {u}, sent {}", people.list[i].user_name));
        }
        if let Some(slot) = people.ids.borrow_mut().get_mut(i) {
            *slot = id.to_string();
        }
        Ok(())
    };
    if warmup {
        let failed = ctx.warm(n, make, check).await?;
        if failed > 0 {
            return Err(format!("{failed} warm-up creates failed"));
        }
        return Ok(());
    }
    ctx.measure(name, n, ctx.concurrency, make, check).await?;
    Ok(())
}

async fn verify_created(ctx: &Ctx, people: &People) {
    let n = people.list.len();
    let mut failures = Vec::new();
    let samples = 100.min(n);
    for j in 0..samples {
        let i = spread(j, n);
        let p = &people.list[i];
        let id = people.id(i);
        match ctx
            .scim_json(Method::GET, format!("/Users/{id}"))
            .await
            .map(|v| {
                v.get("userName")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            }) {
            Ok(Some(u)) if u.eq_ignore_ascii_case(&p.user_name) => {}
            other => failures.push(format!("GET /Users/{id}: {other:?}")),
        }
        let r = ctx
            .one(ctx.scim_req(
                Method::GET,
                format!("/Users?filter={}", filter_eq("userName", &p.user_name)),
                None,
            ))
            .await;
        if let Err(e) = r.and_then(|r| one_user_named(&r, &p.user_name)) {
            failures.push(e);
        }
    }
    ctx.verified(
        "create",
        "created users are found by id and by userName",
        2 * samples as u64,
        failures,
    );
}

async fn lookups(ctx: &Ctx, people: &People, cfg: &Crud) -> Result<(), String> {
    let n = people.list.len();
    type Pick = fn(&Person) -> (&'static str, String);
    let kinds: [(&str, Pick); 3] = [
        ("lookup userName eq", |p| ("userName", p.user_name.clone())),
        ("lookup externalId eq", |p| {
            ("externalId", p.external_id.clone())
        }),
        ("lookup emails[type eq \"work\"].value eq", |p| {
            ("emails[type eq \"work\"].value", p.work_email.clone())
        }),
    ];
    for (name, pick) in kinds {
        let make = |i: usize| {
            let (attr, value) = pick(&people.list[spread(i, n)]);
            ctx.scim_req(
                Method::GET,
                format!("/Users?filter={}", filter_eq(attr, &value)),
                None,
            )
        };
        let check = |i: usize, r: &crate::client::Response| {
            one_user_named(r, &people.list[spread(i, n)].user_name)
        };
        let failed = ctx.warm(ctx.warmup, make, check).await?;
        if failed > 0 {
            eprintln!("  {failed} warm-up lookups failed");
        }
        ctx.measure_for(
            name,
            cfg.requests,
            cfg.seconds,
            ctx.concurrency,
            make,
            check,
        )
        .await?;
    }
    Ok(())
}

async fn patch(ctx: &Ctx, people: &People, warm: &People) -> Result<(), String> {
    let n = people.list.len();
    let check_inactive = |r: &crate::client::Response| -> Verdict {
        match r.status {
            204 => Ok(()),
            200 => match r.json()?.get("active") {
                Some(Value::Bool(false)) => Ok(()),
                other => Err(format!("PATCH answered active = {other:?}")),
            },
            s => Err(format!("PATCH: status {s}")),
        }
    };
    let wn = warm.list.len();
    let failed = ctx
        .warm(
            wn,
            |i| {
                ctx.scim_req(
                    Method::PATCH,
                    format!("/Users/{}", warm.id(i)),
                    Some(payloads::patch_active_entra(false)),
                )
            },
            |_, r| check_inactive(r),
        )
        .await?;
    if failed > 0 {
        eprintln!("  {failed} warm-up PATCHes failed");
    }
    // Even indexes are Okta's users, odd ones Entra's: each IdP's own shape.
    let half = n / 2;
    type Shape = fn(bool) -> Bytes;
    let shapes: [(&str, usize, Shape); 2] = [
        (
            "PATCH active=false (Entra shape)",
            1,
            payloads::patch_active_entra,
        ),
        (
            "PATCH active=false (Okta shape)",
            0,
            payloads::patch_active_okta,
        ),
    ];
    for (name, parity, body) in shapes {
        let count = (half + 1 - parity) / 2;
        ctx.measure(
            name,
            count,
            ctx.concurrency,
            |j| {
                let i = 2 * j + parity;
                ctx.scim_req(
                    Method::PATCH,
                    format!("/Users/{}", people.id(i)),
                    Some(body(false)),
                )
            },
            |_, r| check_inactive(r),
        )
        .await?;
    }
    let mut failures = Vec::new();
    let samples = 100.min(n);
    for j in 0..samples {
        let (i, want) = if j % 2 == 0 {
            (suspended(n, spread(j, n)), false)
        } else {
            (active(n, spread(j, n)), true)
        };
        let id = people.id(i);
        match ctx.scim_json(Method::GET, format!("/Users/{id}")).await {
            Ok(v) if v.get("active") == Some(&Value::Bool(want)) => {}
            other => failures.push(format!("user {i} should be active={want}: {other:?}")),
        }
    }
    ctx.verified(
        "patch",
        "PATCHed users read back inactive, others active",
        samples as u64,
        failures,
    );
    Ok(())
}

async fn paging(ctx: &Ctx, people: &People, cfg: &Crud, cursor: bool) -> Result<(), String> {
    let first = ctx.scim_json(Method::GET, "/Users?count=1".into()).await?;
    let total = total_results(&first).ok_or("GET /Users without totalResults")? as usize;
    let per = 100;
    let pages = total.div_ceil(per);
    let walks = cfg.page_walks.max(1);
    let name = if cursor {
        "page of 100 (cursor), full walks"
    } else {
        "page of 100 (startIndex), full walks"
    };
    let seen: Vec<RefCell<Vec<String>>> = (0..walks).map(|_| RefCell::new(Vec::new())).collect();
    let collect = |walk: usize, v: &Value| {
        if let Some(rs) = v.get("Resources").and_then(Value::as_array) {
            let mut s = seen[walk].borrow_mut();
            s.extend(
                rs.iter()
                    .filter_map(|r| r.get("id").and_then(Value::as_str))
                    .map(str::to_string),
            );
        }
    };
    let fresh = ctx.server.reset_peak();
    let mut stats = if cursor {
        let rec = run::Recorder::new()?;
        let start = Instant::now();
        let walkers = (0..walks).map(|w| {
            let (rec, collect) = (&rec, &collect);
            async move {
                let mut conn = Conn::new(ctx.endpoint.clone());
                let mut next = Some(String::new());
                let mut guard = 0;
                while let Some(c) = next.take() {
                    guard += 1;
                    if guard > pages + 2 || Instant::now() > ctx.deadline {
                        rec.error(format!("walk {w} did not end after {pages} pages"));
                        break;
                    }
                    let req = ctx.scim_req(
                        Method::GET,
                        format!("/Users?count={per}&cursor={}", enc(&c)),
                        None,
                    );
                    let t0 = Instant::now();
                    let res = conn
                        .send(&req.method, &req.path, req.auth.as_deref(), None)
                        .await;
                    let verdict = res.and_then(|r| {
                        if r.status != 200 {
                            return Err(format!("status {}", r.status));
                        }
                        let v = r.json()?;
                        collect(w, &v);
                        next = v
                            .get("nextCursor")
                            .and_then(Value::as_str)
                            .map(str::to_string);
                        Ok(())
                    });
                    let failed = verdict.is_err();
                    rec.record(t0.elapsed(), verdict);
                    if failed {
                        break;
                    }
                }
            }
        });
        futures_util::future::join_all(walkers).await;
        rec.stats(name, walks, start.elapsed())
    } else {
        let (rec, elapsed) = run::closed_loop(
            &ctx.endpoint,
            walks * pages,
            ctx.concurrency,
            ctx.deadline,
            None,
            |i| {
                let page = i % pages;
                ctx.scim_req(
                    Method::GET,
                    format!("/Users?startIndex={}&count={per}", page * per + 1),
                    None,
                )
            },
            |i, r| {
                if r.status != 200 {
                    return Err(format!("status {}", r.status));
                }
                let v = r.json()?;
                collect(i / pages, &v);
                Ok(())
            },
        )
        .await?;
        rec.stats(name, ctx.concurrency, elapsed)
    };
    ctx.finish(&mut stats, fresh);
    stats.note = Some(format!("{walks} walks of {pages} pages over {total} users"));
    ctx.push(stats);
    // Every walk saw every user exactly once, including all of this run's.
    let mut failures = Vec::new();
    let ours: HashSet<String> = people.ids.borrow().iter().cloned().collect();
    for (w, s) in seen.iter().enumerate() {
        let s = s.borrow();
        let distinct: HashSet<&String> = s.iter().collect();
        if s.len() != total || distinct.len() != total {
            failures.push(format!(
                "walk {w}: {} ids ({} distinct), totalResults {total}",
                s.len(),
                distinct.len()
            ));
        }
        let missing = ours.iter().filter(|id| !distinct.contains(id)).count();
        if missing > 0 {
            failures.push(format!("walk {w}: {missing} of this run's users missing"));
        }
    }
    ctx.verified(
        name,
        "each walk returns every user exactly once",
        walks as u64,
        failures,
    );
    Ok(())
}

async fn delete(ctx: &Ctx, people: &People, warm: &People) -> Result<(), String> {
    let n = people.list.len();
    let check = |_: usize, r: &crate::client::Response| -> Verdict {
        if r.status == 204 {
            Ok(())
        } else {
            Err(format!("DELETE: status {} (want 204)", r.status))
        }
    };
    let failed = ctx
        .warm(
            warm.list.len(),
            |i| ctx.scim_req(Method::DELETE, format!("/Users/{}", warm.id(i)), None),
            check,
        )
        .await?;
    if failed > 0 {
        eprintln!("  {failed} warm-up DELETEs failed");
    }
    let count = n / 4;
    ctx.measure(
        "DELETE",
        count,
        ctx.concurrency,
        |j| {
            ctx.scim_req(
                Method::DELETE,
                format!("/Users/{}", people.id(deleted(n, j))),
                None,
            )
        },
        check,
    )
    .await?;
    let mut failures = Vec::new();
    let samples = 100.min(count);
    for j in 0..samples {
        let i = deleted(n, spread(j, count));
        let id = people.id(i);
        match ctx
            .one(ctx.scim_req(Method::GET, format!("/Users/{id}"), None))
            .await
        {
            Ok(r) if r.status == 404 => {}
            other => failures.push(format!("GET deleted {id}: {:?}", other.map(|r| r.status))),
        }
        let p = &people.list[i];
        let r = ctx
            .one(ctx.scim_req(
                Method::GET,
                format!("/Users?filter={}", filter_eq("userName", &p.user_name)),
                None,
            ))
            .await
            .and_then(|r| r.json());
        match r.as_ref().map(total_results) {
            Ok(Some(0)) => {}
            other => failures.push(format!("deleted {} still listed: {other:?}", p.user_name)),
        }
    }
    ctx.verified(
        "DELETE",
        "deleted users are gone (404, not listed)",
        2 * samples as u64,
        failures,
    );
    Ok(())
}

/// The gate's four populations: active, suspended, disposed, never seen.
fn gate_case(
    people: &People,
    n: usize,
    i: usize,
) -> (Value, &'static str, &'static [&'static str]) {
    let j = i / 4;
    let by_email = (i / 2) % 2 == 1;
    let ident = |p: &Person| {
        if by_email {
            json!({"email": [p.work_email]})
        } else {
            json!({"userName": p.user_name})
        }
    };
    match i % 4 {
        0 => (
            ident(&people.list[active(n, spread(j, n))]),
            "active",
            &["allow"],
        ),
        1 => (
            ident(&people.list[suspended(n, spread(j, n))]),
            "suspended",
            &["deny"],
        ),
        2 => (
            ident(&people.list[deleted(n, spread(j, n))]),
            "deprovisioned",
            &["deny"],
        ),
        _ => (
            json!({"userName": format!("stranger{i}@elsewhere.example.org")}),
            "unknown",
            &["allow_jit", "deny"],
        ),
    }
}

async fn gate(ctx: &Ctx, people: &People, cfg: &Crud) -> Result<(), String> {
    let n = people.list.len();
    let make = |i: usize| Req {
        method: Method::POST,
        path: "/gate/v1/check".into(),
        auth: ctx.gate_auth.clone(),
        body: Some(Bytes::from(gate_case(people, n, i).0.to_string())),
    };
    let check = |i: usize, r: &crate::client::Response| -> Verdict {
        if r.status != 200 {
            return Err(format!("gate: status {}", r.status));
        }
        let v = r.json()?;
        let (_, reason, decisions) = gate_case(people, n, i);
        let got = (
            v.get("decision")
                .and_then(Value::as_str)
                .unwrap_or_default(),
            v.get("reason").and_then(Value::as_str).unwrap_or_default(),
        );
        if got.1 == reason && decisions.contains(&got.0) {
            Ok(())
        } else {
            Err(format!("case {}: want {reason}, got {got:?}", i % 4))
        }
    };
    let failed = ctx.warm(ctx.warmup, make, check).await?;
    if failed > 0 {
        eprintln!("  {failed} warm-up gate checks failed");
    }
    ctx.measure_for(
        "gate check (closed loop)",
        cfg.requests,
        cfg.seconds,
        ctx.concurrency,
        make,
        check,
    )
    .await?;
    let fresh = ctx.server.reset_peak();
    let (rec, elapsed, lag) = run::open_loop(
        &ctx.endpoint,
        cfg.requests,
        cfg.gate_rate,
        ctx.concurrency,
        ctx.deadline,
        make,
        check,
    )
    .await?;
    let mut s = rec.stats(
        &format!("gate check (open loop, {} req/s offered)", cfg.gate_rate),
        ctx.concurrency,
        elapsed,
    );
    s.offered_rps = Some(cfg.gate_rate);
    ctx.finish(&mut s, fresh);
    s.note = Some(format!(
        "driver timer lag max {:.2} ms",
        lag.as_secs_f64() * 1000.0
    ));
    ctx.push(s);
    // Every gate answer was checked against its population in `check`: the
    // error count is the verification.
    Ok(())
}

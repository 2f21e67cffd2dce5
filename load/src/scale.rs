//! Workloads at scale, on a tenant loaded by `seed`: lookups among a million
//! users, cursor and index paging at every depth, one member added to and
//! removed from a 100,000-member group, and disposal of owners of K items.

use crate::client::Conn;
use crate::ctx::{Ctx, first_resource, one_user_named, spread, total_results};
use crate::payloads::{self, enc, filter_eq};
use crate::run::{self, Req, Verdict};
use hyper::Method;
use serde_json::Value;
use std::time::Instant;

pub struct Scale {
    pub users: usize,
    pub requests: usize,
    pub group_size: usize,
    pub member_ops: usize,
    pub index_samples: usize,
    pub owners: Vec<usize>,
    pub workloads: Vec<String>,
}

pub async fn run(ctx: &Ctx, cfg: &Scale) -> Result<(), String> {
    let wants = |w: &str| cfg.workloads.iter().any(|x| x == w);
    let first = ctx.scim_json(Method::GET, "/Users?count=0".into()).await?;
    let total = total_results(&first).ok_or("no totalResults")? as usize;
    eprintln!("tenant holds {total} users");
    if total < cfg.users {
        return Err(format!(
            "the tenant holds {total} users, fewer than --users {}: run `seed` first",
            cfg.users
        ));
    }
    if wants("lookup") {
        lookups(ctx, cfg).await?;
    }
    if wants("page") {
        cursor_walk(ctx, total).await?;
        index_samples(ctx, cfg, total).await?;
    }
    if wants("members") {
        members(ctx, cfg).await?;
    }
    if wants("dispose") {
        for k in &cfg.owners {
            dispose(ctx, *k).await?;
        }
    }
    Ok(())
}

async fn lookups(ctx: &Ctx, cfg: &Scale) -> Result<(), String> {
    let n = cfg.users;
    type Pick = fn(usize) -> (&'static str, String);
    let kinds: [(&str, Pick); 3] = [
        ("lookup userName eq", |i| {
            ("userName", payloads::scale_user_name(i))
        }),
        ("lookup externalId eq", |i| {
            ("externalId", payloads::scale_external_id(i))
        }),
        ("lookup emails[type eq \"work\"].value eq", |i| {
            (
                "emails[type eq \"work\"].value",
                payloads::scale_work_email(i),
            )
        }),
    ];
    for (name, pick) in kinds {
        // Random users, so the working set is the whole table, not a cache line.
        let idx = |i: usize| spread(i.wrapping_mul(31).wrapping_add(7), n);
        let make = |i: usize| {
            let (attr, value) = pick(idx(i));
            ctx.scim_req(
                Method::GET,
                format!("/Users?filter={}", filter_eq(attr, &value)),
                None,
            )
        };
        let check = |i: usize, r: &crate::client::Response| {
            one_user_named(r, &payloads::scale_user_name(idx(i)))
        };
        ctx.warm(ctx.warmup, make, check).await?;
        ctx.measure(
            &format!("{name} ({n} users)"),
            cfg.requests,
            ctx.concurrency,
            make,
            check,
        )
        .await?;
        // The same lookups one at a time: the service time, without the
        // queueing that 32 connections on 2 cores add to every request.
        let alone = cfg.requests.min(5000);
        ctx.measure(
            &format!("{name} ({n} users, 1 connection)"),
            alone,
            1,
            make,
            check,
        )
        .await?;
    }
    Ok(())
}

/// One full cursor walk, page after page, as an IdP import does; latency is
/// reported overall and for the first and last tenth (depth).
async fn cursor_walk(ctx: &Ctx, total: usize) -> Result<(), String> {
    let per = 100;
    let pages = total.div_ceil(per);
    let fresh = ctx.server.reset_peak();
    let all = run::Recorder::new()?;
    let shallow = run::Recorder::new()?;
    let deep = run::Recorder::new()?;
    let mut conn = Conn::new(ctx.endpoint.clone());
    let mut next = Some(String::new());
    let mut seen = 0usize;
    let mut page = 0usize;
    let start = Instant::now();
    while let Some(c) = next.take() {
        if page > pages + 1 || Instant::now() > ctx.deadline {
            all.error(format!("walk stopped after {page} of {pages} pages"));
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
        let elapsed = t0.elapsed();
        let verdict = res.and_then(|r| {
            if r.status != 200 {
                return Err(format!("status {}", r.status));
            }
            let v = r.json()?;
            seen += v
                .get("Resources")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            next = v
                .get("nextCursor")
                .and_then(Value::as_str)
                .map(str::to_string);
            Ok(())
        });
        let failed = verdict.is_err();
        if page < pages / 10 {
            shallow.record(elapsed, Ok(()));
        } else if page >= pages - pages / 10 {
            deep.record(elapsed, Ok(()));
        }
        all.record(elapsed, verdict);
        page += 1;
        if failed {
            break;
        }
    }
    let mut s = all.stats(
        &format!("page of 100 (cursor), full walk of {total} users"),
        1,
        start.elapsed(),
    );
    ctx.finish(&mut s, fresh);
    let (a, b) = (
        shallow.stats("", 1, start.elapsed()),
        deep.stats("", 1, start.elapsed()),
    );
    s.note = Some(format!(
        "first tenth p50 {:.2} ms / p99 {:.2} ms; last tenth p50 {:.2} ms / p99 {:.2} ms",
        a.p50_ms, a.p99_ms, b.p50_ms, b.p99_ms
    ));
    s.extra.insert("first_tenth_p50_ms".into(), a.p50_ms);
    s.extra.insert("last_tenth_p50_ms".into(), b.p50_ms);
    s.extra.insert("last_tenth_p99_ms".into(), b.p99_ms);
    ctx.push(s);
    let failures = if seen == total {
        vec![]
    } else {
        vec![format!("walk returned {seen} users, totalResults {total}")]
    };
    ctx.verified(
        "cursor walk",
        "the walk returns totalResults users",
        1,
        failures,
    );
    Ok(())
}

/// `startIndex` paging costs O(offset): sampled at random depths.
async fn index_samples(ctx: &Ctx, cfg: &Scale, total: usize) -> Result<(), String> {
    let depth = |i: usize| spread(i.wrapping_add(11), total.saturating_sub(100).max(1)) + 1;
    let make = |i: usize| {
        ctx.scim_req(
            Method::GET,
            format!("/Users?startIndex={}&count=100", depth(i)),
            None,
        )
    };
    let check = |i: usize, r: &crate::client::Response| -> Verdict {
        if r.status != 200 {
            return Err(format!("status {}", r.status));
        }
        let v = r.json()?;
        let got = v
            .get("Resources")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        let want = 100.min(total + 1 - depth(i));
        if got == want {
            Ok(())
        } else {
            Err(format!("page at {} holds {got}, want {want}", depth(i)))
        }
    };
    let mut s = ctx
        .measure(
            &format!("page of 100 (startIndex), random depth in {total} users"),
            cfg.index_samples,
            1,
            make,
            check,
        )
        .await?;
    s.note = Some("startIndex costs O(offset); sampled, not walked".into());
    if let Some(last) = ctx.results.borrow_mut().last_mut() {
        last.note = s.note.take();
    }
    Ok(())
}

async fn user_id(ctx: &Ctx, user_name: &str) -> Result<String, String> {
    let v = ctx
        .scim_json(
            Method::GET,
            format!(
                "/Users?filter={}&attributes=id",
                filter_eq("userName", user_name)
            ),
        )
        .await?;
    first_resource(&v)
        .and_then(|u| u.get("id"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| format!("{user_name} not found (was the tenant seeded?)"))
}

async fn members(ctx: &Ctx, cfg: &Scale) -> Result<(), String> {
    let g = ctx
        .scim_json(
            Method::GET,
            format!(
                "/Groups?filter={}&excludedAttributes=members",
                filter_eq("displayName", payloads::SCALE_GROUP)
            ),
        )
        .await?;
    let gid = first_resource(&g)
        .and_then(|r| r.get("id"))
        .and_then(Value::as_str)
        .ok_or("the scale group is missing (was the tenant seeded?)")?
        .to_string();
    // Users outside the group: the ones after the first `group_size`.
    let ops = cfg.member_ops.min(cfg.users.saturating_sub(cfg.group_size));
    let mut ids = Vec::with_capacity(ops);
    for j in 0..ops {
        ids.push(user_id(ctx, &payloads::scale_user_name(cfg.group_size + j)).await?);
    }
    let ok = |_: usize, r: &crate::client::Response| -> Verdict {
        if matches!(r.status, 200 | 204) {
            Ok(())
        } else {
            Err(format!("PATCH group: status {}", r.status))
        }
    };
    let patch = |add: bool| {
        let (gid, ids) = (&gid, &ids);
        move |j: usize| {
            ctx.scim_req(
                Method::PATCH,
                format!("/Groups/{gid}"),
                Some(payloads::patch_member(add, &ids[j])),
            )
        }
    };
    // An IdP pushes one group's changes one at a time, so one connection.
    let label = |what: &str| format!("{what} one member, {}-member group", cfg.group_size);
    ctx.measure(&label("add"), ops, 1, patch(true), ok).await?;
    // Members or not, as the group's own filter sees them (a sample of 50).
    let check_members = |member: bool| {
        let gid = &gid;
        let sample: Vec<&String> = ids.iter().take(50).collect();
        async move {
            let mut failures = Vec::new();
            for uid in &sample {
                let probe = format!(
                    "/Groups?filter={}&excludedAttributes=members",
                    enc(&format!("id eq \"{gid}\" and members[value eq \"{uid}\"]"))
                );
                match ctx
                    .scim_json(Method::GET, probe)
                    .await
                    .map(|v| total_results(&v))
                {
                    Ok(Some(n)) if n == u64::from(member) => {}
                    other => failures.push(format!("{uid} member={member} expected: {other:?}")),
                }
            }
            (sample.len() as u64, failures)
        }
    };
    let (checked, failures) = check_members(true).await;
    ctx.verified("group add", "added users are members", checked, failures);
    ctx.measure(&label("remove"), ops, 1, patch(false), ok)
        .await?;
    let (checked, failures) = check_members(false).await;
    ctx.verified(
        "group remove",
        "removed users are no longer members",
        checked,
        failures,
    );
    let get = |_: usize| {
        ctx.scim_req(
            Method::GET,
            format!("/Groups/{gid}?excludedAttributes=members"),
            None,
        )
    };
    let check = |_: usize, r: &crate::client::Response| -> Verdict {
        if r.status != 200 {
            return Err(format!("status {}", r.status));
        }
        let v = r.json()?;
        if v.get("members").is_some() {
            Err("members present despite excludedAttributes".into())
        } else {
            Ok(())
        }
    };
    ctx.measure(
        &format!(
            "GET {}-member group, excludedAttributes=members",
            cfg.group_size
        ),
        cfg.requests,
        ctx.concurrency,
        get,
        check,
    )
    .await?;
    Ok(())
}

async fn dispose(ctx: &Ctx, k: usize) -> Result<(), String> {
    let owner = payloads::scale_owner(k);
    let id = user_id(ctx, &owner).await?;
    let fresh = ctx.server.reset_peak();
    let (rec, elapsed) = run::closed_loop(
        &ctx.endpoint,
        1,
        1,
        ctx.deadline,
        None,
        |_| ctx.scim_req(Method::DELETE, format!("/Users/{id}"), None),
        |_, r| {
            if r.status == 204 {
                Ok(())
            } else {
                Err(format!("DELETE: status {}", r.status))
            }
        },
    )
    .await?;
    let mut s = rec.stats(
        &format!("dispose owner of {k} items (SCIM DELETE)"),
        1,
        elapsed,
    );
    ctx.finish(&mut s, fresh);
    ctx.push(s);
    // The receipt must account for every item.
    let v = ctx
        .one(Req {
            method: Method::GET,
            path: "/admin/v1/disposals?state=done&count=1000".into(),
            auth: ctx.admin_auth.clone(),
            body: None,
        })
        .await
        .and_then(|r| r.json())?;
    let counted: Option<u64> = v
        .get("Resources")
        .and_then(Value::as_array)
        .and_then(|rs| {
            rs.iter()
                .find(|d| d.get("userId").and_then(Value::as_str) == Some(id.as_str()))
        })
        .and_then(|d| d.get("counts"))
        .and_then(Value::as_object)
        .map(|c| {
            c.iter()
                .filter(|(k, _)| !k.starts_with("userData."))
                .filter_map(|(_, v)| v.as_u64())
                .sum()
        });
    let failures = if counted == Some(k as u64) {
        vec![]
    } else {
        vec![format!("receipt counts {counted:?} items, owner had {k}")]
    };
    ctx.verified(
        &format!("dispose {k}"),
        "the receipt accounts for every item",
        1,
        failures,
    );
    Ok(())
}

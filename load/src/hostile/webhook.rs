//! The slow-webhook attack: A's receiver answers each event late while B's
//! `user.suspended` deliveries are timed from PATCH to arrival.

use super::*;

/// The webhook attack's state: when each of B's suspensions was sent, when
/// its `user.suspended` reached B's receiver, and what A's receiver took.
#[derive(Default)]
pub(super) struct Hooks {
    pub(super) sent: Mutex<HashMap<String, Instant>>,
    pub(super) arrived: Mutex<HashMap<String, Instant>>,
    pub(super) a_received: AtomicUsize,
}

pub(super) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A webhook receiver on 127.0.0.1:`port`, on a thread of its own. With
/// `delay`, it answers each request that late (A's slow receiver); without,
/// at once, noting when each `user.suspended` arrived, by its subject.
pub(super) fn spawn_receiver(
    port: u16,
    delay: Option<Duration>,
    hooks: Arc<Hooks>,
) -> Result<(), String> {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind(("127.0.0.1", port))
        .map_err(|e| format!("webhook receiver on port {port}: {e}"))?;
    std::thread::Builder::new()
        .name(format!("hook-{port}"))
        .spawn(move || {
            // Bounded: the run delivers far fewer events than this.
            for stream in listener.incoming().take(100_000) {
                let Ok(mut stream) = stream else { continue };
                let Ok(read_half) = stream.try_clone() else {
                    continue;
                };
                let mut reader = BufReader::new(read_half);
                let mut len = 0usize;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0u8; len.min(16 << 20)];
                if reader.read_exact(&mut body).is_err() {
                    continue;
                }
                let at = Instant::now();
                match delay {
                    Some(d) => {
                        hooks.a_received.fetch_add(1, Ordering::SeqCst);
                        // The slow receiver being emulated: it answers late.
                        std::thread::sleep(d);
                    }
                    None => {
                        let v: Value = serde_json::from_slice(&body).unwrap_or_default();
                        if v["type"] == "user.suspended"
                            && let Some(user) = v["subject"]["userId"].as_str()
                        {
                            lock(&hooks.arrived).entry(user.to_string()).or_insert(at);
                        }
                    }
                }
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
            }
        })
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// The slow-webhook attack (issue 14): A's receiver answers each event after
/// `--hook-delay` with A's events queued; B suspends users, paced over the
/// window, and each `user.suspended` is timed from its PATCH being sent to its
/// arrival at B's receiver.
pub(super) async fn prepare_webhook(
    ctx: &Ctx,
    cfg: &Hostile,
    run_id: &str,
) -> Result<Plan, String> {
    let hooks = Arc::new(Hooks::default());
    spawn_receiver(cfg.hook_a_port, Some(cfg.hook_delay), hooks.clone())?;
    spawn_receiver(cfg.hook_b_port, None, hooks.clone())?;
    let suspend = Bytes::from(
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "active", "value": false}]})
        .to_string(),
    );
    // A's events: two per suspension (user.suspended, disposal.scheduled).
    let a_ids =
        create_a_users(ctx, &format!("hook{run_id}"), cfg.hook_a_suspends, |_| None).await?;
    for id in &a_ids {
        let r = ctx
            .one(ctx.scim_req(Method::PATCH, format!("/Users/{id}"), Some(suspend.clone())))
            .await?;
        if r.status != 200 {
            return Err(format!("tenant A's suspension: status {}", r.status));
        }
    }
    // B's users to suspend (not the ones its lookups and gate checks use).
    let mut b_ids = Vec::with_capacity(cfg.hook_b_suspends);
    for i in 0..cfg.hook_b_suspends {
        let p = payloads::person(&format!("hb{run_id}"), i);
        let r = ctx
            .one(b_req(
                ctx,
                cfg,
                Method::POST,
                "/Users".into(),
                Some(payloads::create_body(&p, i)),
            ))
            .await?;
        if r.status != 201 {
            return Err(format!("tenant B's create: status {}", r.status));
        }
        b_ids.push(r.json()?["id"].as_str().unwrap_or_default().to_string());
    }
    // The attack is on once A's slow receiver holds a delivery (the relay
    // polls every 2 s); bounded poll.
    let until = Instant::now() + Duration::from_secs(30);
    while hooks.a_received.load(Ordering::SeqCst) == 0 {
        if Instant::now() > until {
            return Err("tenant A's receiver got no event within 30 s: is the policy's webhook for tenant A on --hook-a-port?".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let n = b_ids.len().max(1);
    let (scim, b_auth, sent) = (ctx.scim.clone(), cfg.b_scim_auth.clone(), hooks.clone());
    Ok(Plan {
        conns: 1,
        count: b_ids.len(),
        make: Box::new(move |i| {
            let id = b_ids[i % b_ids.len()].clone();
            lock(&sent.sent).insert(id.clone(), Instant::now());
            Req {
                method: Method::PATCH,
                path: format!("{scim}/Users/{id}"),
                auth: b_auth.clone(),
                body: Some(suspend.clone()),
            }
        }),
        describe: format!(
            "A's receiver answers each event after {} s ({} of A's events queued); B suspends {} users over the window",
            cfg.hook_delay.as_secs(),
            a_ids.len() * 2,
            cfg.hook_b_suspends
        ),
        pace: cfg.window / u32::try_from(n).unwrap_or(u32::MAX),
        hooks: Some(hooks),
    })
}

/// After the webhook attack: waits (bounded by `--attack-timeout`) for B's
/// deliveries and tallies each from its PATCH being sent to its arrival;
/// one never delivered counts as "timeout".
pub(super) async fn webhook_deliveries(hooks: &Hooks, timeout: Duration) -> Result<Tally, String> {
    let until = Instant::now() + timeout;
    loop {
        let all = {
            let (sent, arrived) = (lock(&hooks.sent), lock(&hooks.arrived));
            sent.keys().all(|id| arrived.contains_key(id))
        };
        if all || Instant::now() > until {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut t = Tally::new()?;
    let (sent, arrived) = (lock(&hooks.sent), lock(&hooks.arrived));
    for (id, at) in sent.iter() {
        match arrived.get(id) {
            Some(got) => t.record(got.saturating_duration_since(*at), Ok(200), None),
            None => t.record(at.elapsed(), Err("timeout".into()), None),
        }
    }
    Ok(t)
}

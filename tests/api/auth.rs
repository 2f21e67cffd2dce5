use crate::body;
use crate::common::{Backend, spawn_app};
use base64::Engine;
use custodian::auth::Scope;
use reqwest::Method;

async fn schemes_and_scopes(b: Backend) {
    let app = spawn_app(b).await;
    let url = app.url("/Users");
    // Missing and invalid -> 401 with WWW-Authenticate and a SCIM error body.
    for auth in [
        None,
        Some("Bearer nope"),
        Some("non-token"),
        Some("Bearer cust_0123456789abcdef_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
    ] {
        let mut r = app.client.get(&url);
        if let Some(a) = auth {
            r = r.header("Authorization", a);
        }
        let r = r.send().await.expect("send");
        assert!(
            r.headers()
                .get("www-authenticate")
                .is_some_and(|v| v.to_str().is_ok_and(|s| s.starts_with("Bearer")))
        );
        let (s, v) = body(r).await;
        assert_eq!((s, v["status"].as_str()), (401, Some("401")), "{auth:?}");
        assert!(v["detail"].as_str().is_some_and(|d| !d.is_empty()));
    }
    // Bearer, Basic (token as password) and a bare token all work.
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("okta:{}", app.token));
    for a in [
        format!("Bearer {}", app.token),
        format!("Basic {basic}"),
        app.token.clone(),
    ] {
        let s = app
            .client
            .get(&url)
            .header("Authorization", a)
            .send()
            .await
            .expect("send")
            .status()
            .as_u16();
        assert_eq!(s, 200);
    }
    // A gate token cannot call SCIM: 403.
    let gate = app.token_for("default", Scope::Gate);
    let (s, v) = body(
        app.client
            .get(&url)
            .bearer_auth(&gate)
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(s, 403, "{v}");
    // Revocation takes effect even with the verification cached.
    let t = app.token_for("default", Scope::Scim);
    assert_eq!(
        app.client
            .get(&url)
            .bearer_auth(&t)
            .send()
            .await
            .expect("send")
            .status()
            .as_u16(),
        200
    );
    let id = t.split('_').nth(1).expect("id").to_string();
    let now = custodian::store::time::now();
    let revoked = app
        .db
        .write(|c| custodian::store::tokens::revoke(c, &id, &now))
        .expect("revoke");
    assert!(revoked);
    // SQLite: at once. PostgreSQL: within one second (the replica's cached
    // liveness is dropped by its listener, or expires), polled.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let status = loop {
        let s = app
            .client
            .get(&url)
            .bearer_auth(&t)
            .send()
            .await
            .expect("send")
            .status()
            .as_u16();
        if s == 401 || b == Backend::Sqlite || std::time::Instant::now() > deadline {
            break s;
        }
        assert_eq!(s, 200);
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    };
    assert_eq!(status, 401);
    // Discovery needs no token; health needs none.
    assert_eq!(
        app.client
            .get(app.url("/ServiceProviderConfig"))
            .send()
            .await
            .expect("send")
            .status()
            .as_u16(),
        200
    );
    assert_eq!(
        app.client
            .get(format!("{}/healthz", app.addr))
            .send()
            .await
            .expect("send")
            .status()
            .as_u16(),
        200
    );
    assert_eq!(
        app.client
            .get(format!("{}/readyz", app.addr))
            .send()
            .await
            .expect("send")
            .status()
            .as_u16(),
        200
    );
}
crate::both_backends!(auth_schemes, super::schemes_and_scopes);

async fn overload_answers_429_with_integer_retry_after(b: Backend) {
    use std::io::{Read, Write};
    let app = crate::common::spawn_app_with(
        b,
        crate::common::Options {
            max_in_flight_per_tenant: 1,
            ..Default::default()
        },
    )
    .await;
    // Verify the token once so the held request does not wait on argon2.
    assert_eq!(
        app.req(Method::GET, "/Users")
            .send()
            .await
            .expect("send")
            .status()
            .as_u16(),
        200
    );
    // Hold the tenant's only slot: a POST whose body never completes keeps its
    // handler waiting for the body.
    let host = app.addr.trim_start_matches("http://").to_string();
    let head = format!(
        "POST /scim/v2/Users HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/scim+json\r\nContent-Length: 100\r\n\r\n{{",
        app.token
    );
    let hold = || {
        let mut held = std::net::TcpStream::connect(&host).expect("connect");
        held.set_nodelay(true).expect("nodelay");
        held.write_all(head.as_bytes()).expect("write");
        held.set_nonblocking(true).expect("nonblocking");
        held
    };
    let mut held = hold();
    // Polled, bounded. If one of our GETs had the slot when the held POST
    // arrived, the POST itself got the 429: hold again.
    let mut got = None;
    for _ in 0..2000 {
        let r = app.req(Method::GET, "/Users").send().await.expect("send");
        if r.status().as_u16() == 429 {
            got = Some(r);
            break;
        }
        let mut probe = [0u8; 1];
        if held.peek(&mut probe).is_ok_and(|n| n > 0) {
            held = hold();
        }
    }
    let r = got.expect("a 429 while the slot is held");
    let retry = r
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    assert!(
        retry.is_some_and(|v| v.parse::<u32>().is_ok()),
        "Retry-After must be an integer"
    );
    let (_, v) = body(r).await;
    assert_eq!(v["status"], "429");
    // Releasing the slot (the body fails to parse: 400) frees the tenant again.
    held.set_nonblocking(false).expect("blocking");
    write!(held, "{}", " ".repeat(99)).expect("write");
    let mut buf = [0u8; 12];
    held.read_exact(&mut buf).expect("read");
    assert_eq!(&buf, b"HTTP/1.1 400");
    drop(held);
    // The 400 was written after the handler (and its slot) finished.
    assert_eq!(
        app.req(Method::GET, "/Users")
            .send()
            .await
            .expect("send")
            .status()
            .as_u16(),
        200
    );
}
crate::both_backends!(
    overload_429,
    super::overload_answers_429_with_integer_retry_after
);

/// A well-formed secret nobody issued.
fn random_secret() -> String {
    let a = uuid::Uuid::new_v4().simple().to_string();
    let b = uuid::Uuid::new_v4().simple().to_string();
    format!("{a}{}", &b[..11])
}

fn token_id(token: &str) -> String {
    token.split('_').nth(1).expect("token id").to_string()
}

/// Issue 14: sixteen tasks present tenant A's *real* token id with random
/// secrets while tenant B's token, never verified before, is used for the
/// first time. B is never refused; A's guesses cost at most the per-token
/// failure budget in argon2 runs (every other guess is refused before it);
/// once the window has passed, A's correct token works again.
async fn guessing_one_token_id_does_not_stall_other_tenants(b: Backend) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let app = spawn_app(b).await;
    // Neither token has been presented yet: both need argon2.
    let attacker_id = token_id(&app.token);
    let other = app.token_for("other-tenant", Scope::Scim);
    let stop = Arc::new(AtomicBool::new(false));
    let locked = Arc::new(AtomicBool::new(false));
    let (seen, mut first_seen) = tokio::sync::mpsc::channel::<()>(64);
    let mut attackers = Vec::new();
    for _ in 0..16 {
        let (client, url, id, stop, locked, seen) = (
            app.client.clone(),
            app.url("/Users"),
            attacker_id.clone(),
            stop.clone(),
            locked.clone(),
            seen.clone(),
        );
        attackers.push(tokio::spawn(async move {
            let mut statuses = Vec::new();
            // Until B is done and the token id has been locked (bounded).
            for _ in 0..20_000 {
                if stop.load(Ordering::SeqCst) && locked.load(Ordering::SeqCst) {
                    break;
                }
                let r = client
                    .get(&url)
                    .bearer_auth(format!("cust_{id}_{}", random_secret()))
                    .send()
                    .await
                    .expect("send");
                let (s, v) = body(r).await;
                if s == 429
                    && v["detail"]
                        .as_str()
                        .is_some_and(|d| d.contains("failed authentication attempts"))
                {
                    locked.store(true, Ordering::SeqCst);
                }
                statuses.push(s);
                let _ = seen.try_send(());
            }
            statuses
        }));
    }
    drop(seen);
    // B starts once the attack is answering, and the attack goes on until B is done.
    first_seen.recv().await.expect("the attack is under way");
    let mut victims = Vec::new();
    for n in 0..4 {
        let (client, base, token) = (app.client.clone(), app.scim_url.clone(), other.clone());
        victims.push(tokio::spawn(async move {
            let mut statuses = Vec::new();
            for i in 0..5 {
                let r = client
                    .get(format!("{base}/Users"))
                    .bearer_auth(&token)
                    .send()
                    .await
                    .expect("send");
                statuses.push(r.status().as_u16());
                let r = client
                    .post(format!("{base}/Users"))
                    .bearer_auth(&token)
                    .header("Content-Type", "application/scim+json")
                    .json(&crate::user_body(&format!("victim-{n}-{i}@example.edu")))
                    .send()
                    .await
                    .expect("send");
                statuses.push(r.status().as_u16());
            }
            statuses
        }));
    }
    let mut other_statuses = Vec::new();
    for v in victims {
        other_statuses.extend(v.await.expect("join"));
    }
    stop.store(true, Ordering::SeqCst);
    let mut attack_statuses = Vec::new();
    for a in attackers {
        attack_statuses.extend(a.await.expect("join"));
    }
    assert_eq!(other_statuses.len(), 40);
    assert!(
        other_statuses.iter().all(|s| *s == 200 || *s == 201),
        "tenant B refused during the attack: {other_statuses:?}"
    );
    assert!(
        attack_statuses.iter().all(|s| *s == 401 || *s == 429),
        "the attacker only ever gets 401/429"
    );
    let wrong = attack_statuses.iter().filter(|s| **s == 401).count();
    assert!(
        (1..=10).contains(&wrong),
        "at most auth_max_failures_per_token (10) guesses reach argon2 per window; {wrong} did"
    );
    assert!(locked.load(Ordering::SeqCst), "the token id was locked");
    // The trade-off: while locked, even the correct (not yet cached) secret is
    // refused, with a Retry-After no longer than the window.
    let r = app.req(Method::GET, "/Users").send().await.expect("send");
    let retry = r
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u32>().ok());
    let (s, v) = body(r).await;
    assert_eq!(s, 429, "{v}");
    assert!(retry.is_some_and(|r| (1..=61).contains(&r)), "{retry:?}");
    assert!(
        v["detail"]
            .as_str()
            .is_some_and(|d| d.contains("failed authentication attempts")),
        "{v}"
    );
    // After the window, the correct token verifies again.
    app.clock.advance(chrono::Duration::seconds(61));
    let r = app.req(Method::GET, "/Users").send().await.expect("send");
    assert_eq!(r.status().as_u16(), 200);
}
crate::both_backends!(
    auth_guessing_fair,
    super::guessing_one_token_id_does_not_stall_other_tenants
);

/// Failures are also counted per client address: the peer, or with
/// `trust_forwarded_headers` the forwarded address. An address over its
/// budget (100 per window) has even an uncached valid token refused; another
/// address is not affected, and a cached correct secret still passes.
async fn failures_are_limited_per_client_address(b: Backend) {
    let app = crate::common::spawn_app_with(
        b,
        crate::common::Options {
            trust_forwarded_headers: true,
            ..Default::default()
        },
    )
    .await;
    let url = app.url("/Users");
    let get = |token: String, from: &'static str| {
        app.client
            .get(&url)
            .bearer_auth(token)
            .header("X-Forwarded-For", from)
            .send()
    };
    let hostile = "203.0.113.9";
    for _ in 0..100 {
        // Unknown token ids: each a failure for the address.
        let id = &uuid::Uuid::new_v4().simple().to_string()[..16];
        let s = get(format!("cust_{id}_{}", random_secret()), hostile)
            .await
            .expect("send")
            .status()
            .as_u16();
        assert_eq!(s, 401);
    }
    let unknown = || {
        let id = &uuid::Uuid::new_v4().simple().to_string()[..16];
        format!("cust_{id}_{}", random_secret())
    };
    let (s, v) = body(get(unknown(), hostile).await.expect("send")).await;
    assert_eq!(s, 429, "address over its failure budget: {v}");
    let s = get(unknown(), "198.51.100.4")
        .await
        .expect("send")
        .status()
        .as_u16();
    assert_eq!(s, 401, "another address is not affected");
    // A tenant whose own token has not failed is not locked out by another
    // caller behind the same address (a NAT, a proxy, loopback): its first,
    // uncached verification runs.
    let valid = app.token_for("other-tenant", Scope::Scim);
    let (s, v) = body(get(valid.clone(), hostile).await.expect("send")).await;
    assert_eq!(s, 200, "a clean token id passes a locked address: {v}");
    let s = get(valid.clone(), hostile)
        .await
        .expect("send")
        .status()
        .as_u16();
    assert_eq!(s, 200, "and its cached secret too");
    // A token id that has failed from a locked address is refused before argon2.
    let id = &valid[.."cust_".len() + 16];
    let (s, v) = body(
        get(format!("{id}_{}", random_secret()), hostile)
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(s, 401, "its first wrong secret is a plain failure: {v}");
    let (s, v) = body(
        get(format!("{id}_{}", random_secret()), hostile)
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(s, 429, "then the address lock covers that id: {v}");
    // Without trust_forwarded_headers the header is ignored: the peer counts.
    let plain = spawn_app(b).await;
    let url = plain.url("/Users");
    for _ in 0..100 {
        let id = &uuid::Uuid::new_v4().simple().to_string()[..16];
        let s = plain
            .client
            .get(&url)
            .bearer_auth(format!("cust_{id}_{}", random_secret()))
            .header("X-Forwarded-For", hostile)
            .send()
            .await
            .expect("send")
            .status()
            .as_u16();
        assert_eq!(s, 401);
    }
    let id = &uuid::Uuid::new_v4().simple().to_string()[..16];
    let s = plain
        .client
        .get(&url)
        .bearer_auth(format!("cust_{id}_{}", random_secret()))
        .header("X-Forwarded-For", "198.51.100.4")
        .send()
        .await
        .expect("send")
        .status()
        .as_u16();
    assert_eq!(
        s, 429,
        "a forged X-Forwarded-For does not escape the peer's limit"
    );
}
crate::both_backends!(
    auth_address_limit,
    super::failures_are_limited_per_client_address
);

/// The lock on a token id refuses guesses, not the client already using the
/// right secret: a cached correct secret still passes while its id is locked.
async fn cached_correct_secret_passes_a_locked_token_id(b: Backend) {
    let app = spawn_app(b).await;
    let get = |token: String| app.client.get(app.url("/Users")).bearer_auth(token).send();
    assert_eq!(
        get(app.token.clone())
            .await
            .expect("send")
            .status()
            .as_u16(),
        200
    );
    let id = token_id(&app.token);
    let mut locked = false;
    let mut refused = 0;
    for _ in 0..50 {
        let (s, v) = body(
            get(format!("cust_{id}_{}", random_secret()))
                .await
                .expect("send"),
        )
        .await;
        if s == 429 {
            assert!(
                v["detail"]
                    .as_str()
                    .is_some_and(|d| d.contains("failed authentication attempts")),
                "{v}"
            );
            locked = true;
            break;
        }
        assert_eq!(s, 401, "{v}");
        refused += 1;
    }
    assert!(locked, "locked within the failure budget");
    assert_eq!(
        refused, 10,
        "locked after auth_max_failures_per_token guesses"
    );
    assert_eq!(
        get(app.token.clone())
            .await
            .expect("send")
            .status()
            .as_u16(),
        200,
        "the cached correct secret still passes"
    );
}
crate::both_backends!(
    auth_locked_id_cached_secret,
    super::cached_correct_secret_passes_a_locked_token_id
);

/// Issue 14: an IdP's first burst is not refused. Several fresh tokens of
/// one tenant (more than its half of the argon2 slots) and of other tenants,
/// each presented by several requests at once, never verified before: every
/// request is answered 200 — the same token's requests share one
/// verification, the others queue for a slot instead of getting 429.
async fn first_burst_of_uncached_tokens_is_not_refused(b: Backend) {
    let app = spawn_app(b).await;
    let mut tokens: Vec<String> = (0..4)
        .map(|_| app.token_for("bursty", Scope::Scim))
        .collect();
    tokens.push(app.token_for("second", Scope::Scim));
    tokens.push(app.token_for("third", Scope::Scim));
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(tokens.len() * 4));
    let mut requests = Vec::new();
    for token in &tokens {
        for _ in 0..4 {
            let (client, url, token, start) = (
                app.client.clone(),
                app.url("/Users"),
                token.clone(),
                start.clone(),
            );
            requests.push(tokio::spawn(async move {
                start.wait().await;
                let r = client
                    .get(&url)
                    .bearer_auth(token)
                    .send()
                    .await
                    .expect("send");
                body(r).await
            }));
        }
    }
    let mut refused = Vec::new();
    for r in requests {
        let (s, v) = r.await.expect("join");
        if s != 200 {
            refused.push((s, v));
        }
    }
    assert!(refused.is_empty(), "first burst refused: {refused:?}");
}
crate::both_backends!(
    auth_first_burst_not_refused,
    super::first_burst_of_uncached_tokens_is_not_refused
);

/// Failures count per /64 for IPv6 (one attacker owns a whole /64): unknown
/// tokens from 100 addresses of one /64 lock every address of it, while
/// another /64 is not affected.
async fn ipv6_failures_count_per_64(b: Backend) {
    let app = crate::common::spawn_app_with(
        b,
        crate::common::Options {
            trust_forwarded_headers: true,
            ..Default::default()
        },
    )
    .await;
    let url = app.url("/Users");
    let unknown = || {
        let id = &uuid::Uuid::new_v4().simple().to_string()[..16];
        format!("cust_{id}_{}", random_secret())
    };
    let get = |from: String| {
        app.client
            .get(&url)
            .bearer_auth(unknown())
            .header("X-Forwarded-For", from)
            .send()
    };
    for i in 0..100 {
        let from = format!("2001:db8:aa:bb:{:x}::{:x}", i * 7 + 1, i + 1);
        let s = get(from).await.expect("send").status().as_u16();
        assert_eq!(s, 401);
    }
    let (s, v) = body(get("2001:db8:aa:bb:ffff:1:2:3".into()).await.expect("send")).await;
    assert_eq!(s, 429, "a fresh address of the same /64 is locked: {v}");
    let s = get("2001:db8:aa:bc::1".into())
        .await
        .expect("send")
        .status()
        .as_u16();
    assert_eq!(s, 401, "another /64 is not affected");
}
crate::both_backends!(auth_ipv6_per_64, super::ipv6_failures_count_per_64);

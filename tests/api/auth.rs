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
    // Revocation takes effect on the next request, even with the verification cached.
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
    assert_eq!(
        app.client
            .get(&url)
            .bearer_auth(&t)
            .send()
            .await
            .expect("send")
            .status()
            .as_u16(),
        401
    );
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

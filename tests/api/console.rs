//! The admin console (`/console/`): sign-in through the API's verifier,
//! sessions (cookie attributes, idle expiry on the test clock, revocation),
//! CSRF and Origin checks, the auditor's read-only console, tenant
//! isolation, escaping, headers, audit rows naming the console, and the
//! tombstone check keeping the identifier out of URLs and logs.

use crate::common::{Backend, Options, TestApp, spawn_app, spawn_app_with};
use crate::{both_backends, create_user};
use custodian::auth::Scope;
use custodian::clock::Clock;
use reqwest::Method;
use std::collections::HashMap;

/// A browser without JavaScript: its own cookies, no redirects followed.
struct Browser {
    base: String,
    client: reqwest::Client,
    cookies: HashMap<String, String>,
    /// Every `Set-Cookie` line seen, as sent.
    set_cookies: Vec<String>,
}

struct Page {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Page {
    fn location(&self) -> Option<&str> {
        self.headers.get("location").and_then(|v| v.to_str().ok())
    }

    /// The value of the first `name="csrf"` hidden input.
    fn csrf(&self) -> String {
        let at = self
            .body
            .find("name=\"csrf\" value=\"")
            .expect("a csrf field");
        let rest = &self.body[at + "name=\"csrf\" value=\"".len()..];
        rest[..rest.find('"').expect("end")].to_string()
    }

    /// The value after `marker` up to the next `<`.
    fn text_after(&self, marker: &str) -> String {
        let at = self
            .body
            .find(marker)
            .unwrap_or_else(|| panic!("{marker} in {}", self.body));
        let rest = &self.body[at + marker.len()..];
        rest[..rest.find('<').expect("end")].to_string()
    }
}

impl Browser {
    fn new(app: &TestApp) -> Browser {
        Browser {
            base: app.addr.clone(),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            cookies: HashMap::new(),
            set_cookies: vec![],
        }
    }

    async fn send(&mut self, method: Method, path: &str, form: Option<&[(&str, &str)]>) -> Page {
        let mut r = self.client.request(method, format!("{}{path}", self.base));
        if !self.cookies.is_empty() {
            let c: Vec<String> = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            r = r.header("Cookie", c.join("; "));
        }
        if let Some(f) = form {
            let body = serde_urlencoded::to_string(f).expect("form");
            r = r
                .header("Content-Type", "application/x-www-form-urlencoded")
                .body(body);
        }
        let res = r.send().await.expect("send");
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        for v in headers.get_all("set-cookie") {
            let line = v.to_str().expect("ascii").to_string();
            let pair = line.split(';').next().expect("pair");
            let (k, val) = pair.split_once('=').expect("name=value");
            if val.is_empty() || line.contains("Max-Age=0") {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_string(), val.to_string());
            }
            self.set_cookies.push(line);
        }
        let body = res.text().await.expect("body");
        Page {
            status,
            headers,
            body,
        }
    }

    async fn get(&mut self, path: &str) -> Page {
        self.send(Method::GET, path, None).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        self.send(Method::POST, path, Some(form)).await
    }

    /// Signs in with `token`: the form's page, then its POST.
    async fn sign_in(&mut self, token: &str) -> Page {
        let form = self.get("/console/signin").await;
        assert_eq!(form.status, 200, "{}", form.body);
        let csrf = form.csrf();
        self.post("/console/signin", &[("csrf", &csrf), ("token", token)])
            .await
    }

    /// Signs in and expects the session.
    async fn signed_in(app: &TestApp, token: &str) -> Browser {
        let mut b = Browser::new(app);
        let r = b.sign_in(token).await;
        assert_eq!(r.status, 303, "{}", r.body);
        assert_eq!(r.location(), Some("/console/"));
        b
    }
}

fn admin(app: &TestApp) -> String {
    app.token_for("default", Scope::Admin)
}

async fn console_pages_for_admin(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut b = Browser::new(&app);
    let r = b.get("/console/").await;
    assert_eq!(r.status, 303);
    assert_eq!(r.location(), Some("/console/signin"));
    let form = b.get("/console/signin").await;
    assert!(
        form.body
            .contains(r#"<label for="token">Admin token</label>"#),
        "{}",
        form.body
    );
    assert!(
        form.body
            .contains(r#"<input id="token" name="token" type="password""#)
    );
    let r = b.sign_in(&admin(&app)).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.location(), Some("/console/"));
    let session = b
        .set_cookies
        .iter()
        .find(|c| c.starts_with("custodian_console=") && !c.starts_with("custodian_console=;"))
        .expect("session cookie")
        .clone();
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/console"] {
        assert!(session.contains(attr), "{session}");
    }
    assert!(!session.contains("Secure"), "http public_url: {session}");
    let id = session
        .split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1;
    assert_eq!(id.len(), 64, "256 random bits, hex");
    assert!(
        !app.database_contains(id),
        "only the hash of the session id is stored"
    );

    create_user(&app, "ada@example.com").await;
    for (path, h1) in [
        ("/console/", "Overview"),
        ("/console/people", "People"),
        ("/console/people?q=ada", "People"),
        ("/console/disposals", "Disposals"),
        ("/console/orphans", "Orphaned content"),
        ("/console/tombstones", "Tombstones"),
        ("/console/webhooks", "Webhooks"),
        ("/console/audit", "Audit log"),
        ("/console/policy", "Policy"),
    ] {
        let p = b.get(path).await;
        assert_eq!(p.status, 200, "{path}: {}", p.body);
        assert_eq!(p.body.matches("<h1>").count(), 1, "{path}");
        assert!(
            p.body.contains(&format!("<h1>{h1}</h1>")),
            "{path}: {}",
            p.body
        );
        assert!(p.body.contains(r#"<html lang="en">"#));
        assert!(p.body.contains(r#"<nav aria-label="Console">"#));
        for link in [
            "Overview",
            "People",
            "Disposals",
            "Orphans",
            "Tombstones",
            "Webhooks",
            "Audit",
            "Policy",
        ] {
            assert!(p.body.contains(&format!(">{link}</a>")), "{path}: {link}");
        }
        assert!(
            p.body
                .contains(r#"<form method="post" action="/console/signout">"#)
        );
        let csp = p.headers.get("content-security-policy").expect("csp");
        assert_eq!(
            csp,
            "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
        );
        assert_eq!(p.headers.get("x-content-type-options").unwrap(), "nosniff");
        assert_eq!(p.headers.get("referrer-policy").unwrap(), "no-referrer");
        assert_eq!(p.headers.get("cache-control").unwrap(), "no-store");
    }
    let people = b.get("/console/people?q=ada").await;
    assert!(
        people.body.contains(">ada@example.com</a>"),
        "{}",
        people.body
    );
    let css = b.get("/console/static/console.css").await;
    assert_eq!(css.status, 200);
    assert!(
        css.headers
            .get("content-type")
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );

    // Sign-out is a POST that deletes the row: the cookie no longer opens anything.
    let old = b.cookies.clone();
    let csrf = b.get("/console/").await.csrf();
    let out = b.post("/console/signout", &[("csrf", &csrf)]).await;
    assert_eq!(out.status, 303);
    b.cookies = old;
    let r = b.get("/console/").await;
    assert_eq!(r.status, 303, "a signed-out session is gone");
}
both_backends!(console_pages_for_admin, super::console_pages_for_admin);

async fn auditor_is_read_only(backend: Backend) {
    let app = spawn_app(backend).await;
    let id = create_user(&app, "grace@example.com").await;
    let mut b = Browser::signed_in(&app, &app.token_for("default", Scope::Auditor)).await;
    let p = b.get(&format!("/console/people/{id}")).await;
    assert_eq!(p.status, 200, "{}", p.body);
    assert!(p.body.contains("data-testid=\"plan-hash\""));
    for action in ["Dispose now", "Place legal hold", "Lift legal hold"] {
        assert!(!p.body.contains(action), "an auditor sees no {action}");
    }
    let d = b.get("/console/disposals").await;
    assert!(!d.body.contains("Reset brake") && !d.body.contains("Release selected"));
    let csrf = p.csrf();
    let r = b
        .post(
            &format!("/console/people/{id}/legal-hold"),
            &[("csrf", &csrf), ("on", "true")],
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("role=\"alert\""));
    let r = b
        .post(
            "/console/disposals",
            &[("csrf", &csrf), ("action", "reset_brake")],
        )
        .await;
    assert_eq!(r.status, 403);
    let p = b.get(&format!("/console/people/{id}")).await;
    assert_eq!(
        p.text_after("data-testid=\"legal-hold\">"),
        "off",
        "nothing changed"
    );
}
both_backends!(auditor_is_read_only, super::auditor_is_read_only);

async fn other_scopes_cannot_sign_in(backend: Backend) {
    let app = spawn_app(backend).await;
    for scope in [Scope::Scim, Scope::Gate, Scope::Ledger] {
        let mut b = Browser::new(&app);
        let r = b.sign_in(&app.token_for("default", scope)).await;
        assert_eq!(r.status, 401, "{scope}: {}", r.body);
        assert!(r.body.contains("role=\"alert\""));
        assert!(!b.cookies.contains_key("custodian_console"));
    }
    let mut b = Browser::new(&app);
    let r = b
        .sign_in("cust_0123456789abcdef_nottherightsecretnottherightsecret12345")
        .await;
    assert_eq!(r.status, 401);
    // Without the sign-in form's own token: refused before any verification.
    let mut b = Browser::new(&app);
    let r = b.post("/console/signin", &[("token", &admin(&app))]).await;
    assert_eq!(r.status, 403);
}
both_backends!(
    other_scopes_cannot_sign_in,
    super::other_scopes_cannot_sign_in
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_cookie_is_secure_behind_https() {
    let app = spawn_app_with(
        Backend::Sqlite,
        Options {
            public_url: Some("https://scim.example.edu".into()),
            ..Options::default()
        },
    )
    .await;
    let b = Browser::signed_in(&app, &admin(&app)).await;
    let c = b
        .set_cookies
        .iter()
        .find(|c| c.starts_with("custodian_console=") && !c.starts_with("custodian_console=;"))
        .expect("cookie");
    assert!(c.contains("; Secure"), "{c}");
}

async fn idle_sessions_expire(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut b = Browser::signed_in(&app, &admin(&app)).await;
    // Used every 20 minutes (the default idle timeout is 30): it lives on.
    for _ in 0..3 {
        app.clock.advance(chrono::Duration::minutes(20));
        assert_eq!(b.get("/console/").await.status, 200);
    }
    app.clock.advance(chrono::Duration::minutes(31));
    let r = b.get("/console/").await;
    assert_eq!(r.status, 303);
    assert_eq!(r.location(), Some("/console/signin"));

    // The scheduler's sweep deletes expired rows.
    let mut b2 = Browser::signed_in(&app, &admin(&app)).await;
    assert_eq!(b2.get("/console/").await.status, 200);
    app.clock.advance(chrono::Duration::minutes(31));
    let n = custodian::background::tasks::sweep_console_sessions(
        &app.db,
        app.clock.now(),
        std::time::Duration::from_secs(30 * 60),
    )
    .expect("sweep");
    assert_eq!(n, 1);
    assert_eq!(b2.get("/console/").await.status, 303);

    // The absolute limit: 12 hours, however active.
    let mut b3 = Browser::signed_in(&app, &admin(&app)).await;
    for _ in 0..25 {
        app.clock.advance(chrono::Duration::minutes(29));
        if b3.get("/console/").await.status != 200 {
            break;
        }
    }
    assert_eq!(
        b3.get("/console/").await.status,
        303,
        "ended within 12 h 30 min"
    );
}
both_backends!(idle_sessions_expire, super::idle_sessions_expire);

async fn revoking_the_token_ends_its_sessions(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = admin(&app);
    let mut b = Browser::signed_in(&app, &token).await;
    assert_eq!(b.get("/console/").await.status, 200);
    let id = custodian::auth::token::split(&token).unwrap().0.to_string();
    let revoked = app
        .db
        .write(|c| custodian::store::tokens::revoke(c, &id, &custodian::store::time::now()))
        .expect("revoke");
    assert!(revoked);
    let r = b.get("/console/").await;
    assert_eq!(r.status, 303, "a revoked token's session ends at once");
    let rows = app
        .db
        .read(|c| custodian::store::console::delete_for_token(c, &id))
        .expect("count");
    assert_eq!(rows, 0, "the revocation deleted its session rows");
}
both_backends!(
    revoking_the_token_ends_its_sessions,
    super::revoking_the_token_ends_its_sessions
);

async fn posts_need_the_csrf_token_and_this_origin(backend: Backend) {
    let app = spawn_app(backend).await;
    let id = create_user(&app, "linus@example.com").await;
    let mut b = Browser::signed_in(&app, &admin(&app)).await;
    let page = b.get(&format!("/console/people/{id}")).await;
    let path = format!("/console/people/{id}/legal-hold");
    let r = b.post(&path, &[("on", "true")]).await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("role=\"alert\""));
    let r = b
        .post(&path, &[("csrf", "0".repeat(64).as_str()), ("on", "true")])
        .await;
    assert_eq!(r.status, 403);
    // The right token from another site's page.
    let csrf = page.csrf();
    let cookies: Vec<String> = b.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let r = b
        .client
        .post(format!("{}{path}", b.base))
        .header("Cookie", cookies.join("; "))
        .header("Origin", "https://evil.example")
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!("csrf={csrf}&on=true"))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 403);
    let p = b.get(&format!("/console/people/{id}")).await;
    assert_eq!(
        p.text_after("data-testid=\"legal-hold\">"),
        "off",
        "nothing changed"
    );
    // With it (and this host's Origin, as a browser sends): placed.
    let origin = b.base.clone();
    let r = b
        .client
        .post(format!("{}{path}", b.base))
        .header("Cookie", cookies.join("; "))
        .header("Origin", origin)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!("csrf={csrf}&on=true"))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 303);
    let p = b.get(&format!("/console/people/{id}")).await;
    assert_eq!(p.text_after("data-testid=\"legal-hold\">"), "on");
}
both_backends!(
    posts_need_the_csrf_token_and_this_origin,
    super::posts_need_the_csrf_token_and_this_origin
);

async fn another_tenants_ids_are_not_found(backend: Backend) {
    let app = spawn_app(backend).await;
    let other = app.token_for("other", Scope::Scim);
    let r = app
        .client
        .post(app.url("/Users"))
        .bearer_auth(&other)
        .json(&crate::user_body("theirs@example.com"))
        .send()
        .await
        .expect("send");
    let (s, v) = crate::body(r).await;
    assert_eq!(s, 201, "{v}");
    let theirs = v["id"].as_str().unwrap().to_string();
    let mut b = Browser::signed_in(&app, &admin(&app)).await;
    let p = b.get(&format!("/console/people/{theirs}")).await;
    assert_eq!(p.status, 404, "{}", p.body);
    assert!(!p.body.contains("theirs@example.com"));
    let csrf = b.get("/console/").await.csrf();
    let r = b
        .post(
            &format!("/console/people/{theirs}/legal-hold"),
            &[("csrf", &csrf), ("on", "true")],
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.body);
    let r = b
        .post(
            "/console/disposals",
            &[("csrf", &csrf), ("action", "release"), ("id", &theirs)],
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.body);
    let people = b.get("/console/people?q=theirs").await;
    assert!(!people.body.contains("theirs@example.com"));
}
both_backends!(
    another_tenants_ids_are_not_found,
    super::another_tenants_ids_are_not_found
);

async fn hostile_strings_render_inert(backend: Backend) {
    let app = spawn_app(backend).await;
    let hostile = "<script>alert(1)</script>";
    let id = create_user(&app, hostile).await;
    let mut b = Browser::signed_in(&app, &admin(&app)).await;
    for path in [
        format!("/console/people/{id}"),
        "/console/people?q=%3Cscript".to_string(),
    ] {
        let p = b.get(&path).await;
        assert_eq!(p.status, 200, "{path}");
        assert!(!p.body.contains("<script>"), "{path}: {}", p.body);
        assert!(
            p.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{path}: {}",
            p.body
        );
    }
}
both_backends!(
    hostile_strings_render_inert,
    super::hostile_strings_render_inert
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_off_is_not_found() {
    let app = spawn_app_with(
        Backend::Sqlite,
        Options {
            tune: |s| s.console = false,
            ..Options::default()
        },
    )
    .await;
    let mut b = Browser::new(&app);
    for path in [
        "/console/",
        "/console/signin",
        "/console/static/console.css",
    ] {
        assert_eq!(b.get(path).await.status, 404, "{path}");
    }
    let r = b.post("/console/signin", &[("token", &admin(&app))]).await;
    assert_eq!(r.status, 404);
}

async fn actions_go_through_the_services_and_name_the_console(backend: Backend) {
    let app = spawn_app(backend).await;
    let id = create_user(&app, "margaret@example.com").await;
    let mut b = Browser::signed_in(&app, &admin(&app)).await;
    let p = b.get(&format!("/console/people/{id}")).await;
    assert_eq!(p.text_after("data-testid=\"state\">"), "active");
    let csrf = p.csrf();
    let r = b
        .post(
            &format!("/console/people/{id}/legal-hold"),
            &[("csrf", &csrf), ("on", "true")],
        )
        .await;
    assert_eq!(r.status, 303);
    assert_eq!(r.location(), Some(format!("/console/people/{id}").as_str()));
    let p = b.get(&format!("/console/people/{id}")).await;
    assert!(
        p.body.contains("<p role=\"status\">Legal hold placed.</p>"),
        "{}",
        p.body
    );
    assert!(p.body.contains("Lift legal hold"));
    let again = b.get(&format!("/console/people/{id}")).await;
    assert!(
        !again.body.contains("role=\"status\""),
        "a flash shows once"
    );
    let r = b
        .post(
            &format!("/console/people/{id}/legal-hold"),
            &[("csrf", &csrf), ("on", "false")],
        )
        .await;
    assert_eq!(r.status, 303);

    let tenant = app.default_tenant_id();
    let rows = app
        .db
        .read(|c| {
            custodian::store::reads::console::audit(
                c,
                &tenant,
                &custodian::store::reads::console::AuditFilter {
                    subject: Some(id.clone()),
                    ..Default::default()
                },
                10,
            )
        })
        .expect("audit");
    let actions: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| (r.actor.as_str(), r.action.as_str()))
        .collect();
    assert!(
        actions.contains(&("test (console)", "legal_hold.set")),
        "{actions:?}"
    );
    assert!(
        actions.contains(&("test (console)", "legal_hold.lifted")),
        "{actions:?}"
    );
    let audit = b
        .get(&format!("/console/audit?person={id}&action=legal_hold.set"))
        .await;
    assert!(audit.body.contains("test (console)"));
    assert!(
        !audit.body.contains("legal_hold.lifted"),
        "filtered by action"
    );

    // A stale plan hash: refused, the new plan shown; the current one disposes.
    let p = b.get(&format!("/console/people/{id}")).await;
    let hash = p.text_after("data-testid=\"plan-hash\">");
    let r = b
        .post(
            &format!("/console/people/{id}/dispose"),
            &[("csrf", &csrf), ("plan_hash", &"0".repeat(64))],
        )
        .await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(
        r.body.contains("role=\"alert\">The plan changed"),
        "{}",
        r.body
    );
    assert!(r.body.contains("data-testid=\"plan\""));
    assert_eq!(p.text_after("data-testid=\"state\">"), "active");
    let r = b
        .post(
            &format!("/console/people/{id}/dispose"),
            &[("csrf", &csrf), ("plan_hash", &hash)],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let p = b.get(&format!("/console/people/{id}")).await;
    assert!(p.body.contains("<h1>Deleted User</h1>"), "{}", p.body);
    assert_eq!(p.text_after("data-testid=\"state\">"), "disposed");
    assert!(!p.body.contains("margaret"), "no PII of a disposed person");
    let overview = b.get("/console/").await;
    assert!(!overview.body.contains("margaret"));
    assert!(
        overview.body.contains("Deleted User"),
        "recent disposals: {}",
        overview.body
    );
}
both_backends!(
    actions_go_through_the_services_and_name_the_console,
    super::actions_go_through_the_services_and_name_the_console
);

async fn held_disposals_are_listed_for_release(backend: Backend) {
    let app = spawn_app(backend).await;
    let id = create_user(&app, "held@example.com").await;
    let mut b = Browser::signed_in(&app, &admin(&app)).await;
    let p = b.get(&format!("/console/people/{id}")).await;
    let csrf = p.csrf();
    b.post(
        &format!("/console/people/{id}/legal-hold"),
        &[("csrf", &csrf), ("on", "true")],
    )
    .await;
    let p = b.get(&format!("/console/people/{id}")).await;
    let hash = p.text_after("data-testid=\"plan-hash\">");
    let r = b
        .post(
            &format!("/console/people/{id}/dispose"),
            &[("csrf", &csrf), ("plan_hash", &hash)],
        )
        .await;
    assert_eq!(r.status, 303);
    let p = b.get(&format!("/console/people/{id}")).await;
    assert!(p.body.contains("under legal hold"), "{}", p.body);
    let d = b.get("/console/disposals").await;
    assert!(
        d.body.contains("type=\"checkbox\" name=\"id\" value=\""),
        "{}",
        d.body
    );
    assert!(
        d.body
            .contains("aria-label=\"Select the disposal of held@example.com\"")
    );
    assert!(d.body.contains(
        "<button type=\"submit\" name=\"action\" value=\"release\">Release selected</button>"
    ));
    assert_eq!(d.text_after("data-testid=\"brake\">"), "ok");
    let r = b
        .post(
            "/console/disposals",
            &[("csrf", &csrf), ("action", "reset_brake")],
        )
        .await;
    assert_eq!(r.status, 303);
    let d = b.get("/console/disposals").await;
    assert!(d.body.contains("The brake was reset"), "{}", d.body);
}
both_backends!(
    held_disposals_are_listed_for_release,
    super::held_disposals_are_listed_for_release
);

async fn tombstone_check_keeps_the_identifier_out_of_urls(backend: Backend) {
    let app = spawn_app(backend).await;
    let name = "departed-4711@example.com";
    let id = create_user(&app, name).await;
    let r = app
        .req(Method::DELETE, &format!("/Users/{id}"))
        .send()
        .await
        .expect("delete");
    assert_eq!(r.status().as_u16(), 204);
    let mut b = Browser::signed_in(&app, &admin(&app)).await;
    let csrf = b.get("/console/tombstones").await.csrf();
    let r = b
        .post(
            "/console/tombstones/check",
            &[("csrf", &csrf), ("kind", "userName"), ("identifier", name)],
        )
        .await;
    assert_eq!(r.status, 200, "answered in place, no redirect: {}", r.body);
    assert!(r.location().is_none());
    assert_eq!(
        r.text_after("data-testid=\"tombstone-result\">"),
        "Tombstoned"
    );
    assert!(!r.body.contains("4711"), "the identifier is not echoed");
    let at =
        r.body.find("name=\"tombstone\" value=\"").unwrap() + "name=\"tombstone\" value=\"".len();
    let tid = r.body[at..at + r.body[at..].find('"').unwrap()].to_string();
    let lift = b
        .post(
            "/console/tombstones/lift",
            &[("csrf", &csrf), ("tombstone", &tid), ("reason", "rehired")],
        )
        .await;
    assert_eq!(lift.status, 303, "{}", lift.body);
    assert!(!lift.location().unwrap().contains("4711"));
    // The stale form again, the id repeated, plus ids that are no tombstone
    // of this tenant: nothing more is lifted, audited or announced.
    let again = b
        .post(
            "/console/tombstones/lift",
            &[
                ("csrf", &csrf),
                ("tombstone", &tid),
                ("tombstone", &tid),
                ("tombstone", "00000000-0000-0000-0000-000000000000"),
                ("reason", "again"),
            ],
        )
        .await;
    assert!(again.status < 500, "{}", again.body);
    let audit: serde_json::Value = app
        .client
        .get(format!("{}/admin/v1/audit?count=1000", app.addr))
        .bearer_auth(admin(&app))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    let lifted: Vec<&serde_json::Value> = audit["Resources"]
        .as_array()
        .expect("rows")
        .iter()
        .filter(|r| r["action"] == "tombstone.lifted")
        .collect();
    assert_eq!(lifted.len(), 1, "one lift, audited once: {audit}");
    assert_eq!(lifted[0]["subjectId"], tid.as_str());
    let r = b
        .post(
            "/console/tombstones/check",
            &[("csrf", &csrf), ("kind", "userName"), ("identifier", name)],
        )
        .await;
    assert_eq!(
        r.text_after("data-testid=\"tombstone-result\">"),
        "Not tombstoned"
    );
    for c in &b.set_cookies {
        assert!(!c.contains("4711"), "{c}");
    }
    assert!(!app.database_contains("departed-4711"), "not stored");
}
both_backends!(
    tombstone_check_keeps_the_identifier_out_of_urls,
    super::tombstone_check_keeps_the_identifier_out_of_urls
);

/// The real binary at debug level: a tombstone check's identifier appears in
/// no log line (the form body is never logged; the answer is in place).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tombstone_check_keeps_the_identifier_out_of_the_logs() {
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};
    let dir = tempfile::tempdir().expect("tempdir");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let log_path = dir.path().join("server.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_custodian"))
        .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
        .current_dir(dir.path())
        .env_remove("CUSTODIAN_CONFIG")
        .env_remove("CUSTODIAN_DATABASE_URL")
        .env_remove("CUSTODIAN_POLICY_FILE")
        .env("CUSTODIAN_LOG", "debug")
        .stdout(Stdio::null())
        .stderr(Stdio::from(std::fs::File::create(&log_path).expect("log")))
        .spawn()
        .expect("spawn custodian");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let url = format!(
        "sqlite://{}",
        dir.path().join("data/custodian.db").display()
    );
    let db = custodian::store::Db::open(&url, 1, false).expect("db");
    let token = custodian::auth::create_token(&db, "acme", Scope::Admin, "ops", None)
        .expect("token")
        .plaintext;
    let mut b = Browser {
        base: format!("http://127.0.0.1:{port}"),
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client"),
        cookies: HashMap::new(),
        set_cookies: vec![],
    };
    let r = b.sign_in(&token).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let csrf = b.get("/console/tombstones").await.csrf();
    let secret = "quiet-identifier-93817@example.com";
    for kind in ["userName", "email", "externalId"] {
        let r = b
            .post(
                "/console/tombstones/check",
                &[("csrf", &csrf), ("kind", kind), ("identifier", secret)],
            )
            .await;
        assert_eq!(r.status, 200);
        assert_eq!(
            r.text_after("data-testid=\"tombstone-result\">"),
            "Not tombstoned"
        );
        assert!(!r.body.contains("93817"));
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = std::fs::read_to_string(&log_path).expect("log");
    assert!(
        log.contains("/console/tombstones/check"),
        "the requests were logged: {log}"
    );
    assert!(!log.contains("93817"), "the identifier is in the log");
    assert!(!log.contains(&token), "the token is in the log");
}

async fn orphans_are_filtered_and_reassigned(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = admin(&app);
    let owner = create_user(&app, "keeper@example.com").await;
    for (kind, id) in [("doc", "d1"), ("doc", "d2"), ("sheet", "s1")] {
        let r = app
            .client
            .put(format!("{}/admin/v1/content/{kind}/{id}", app.addr))
            .bearer_auth(&token)
            .json(&serde_json::json!({"title": format!("<b>{id}</b>")}))
            .send()
            .await
            .expect("put");
        assert!(r.status().is_success(), "{}", r.status());
    }
    let mut b = Browser::signed_in(&app, &token).await;
    let overview = b.get("/console/").await;
    assert_eq!(overview.text_after("data-testid=\"orphans\">"), "3");
    let p = b.get("/console/orphans?kind=doc").await;
    assert!(
        p.body.contains(r#"<select id="kind" name="kind">"#),
        "{}",
        p.body
    );
    assert!(p.body.contains("aria-label=\"New owner for doc d1\""));
    assert!(
        p.body.contains(r#"list="people-suggest" data-suggest"#)
            && p.body.contains(r#"<datalist id="people-suggest">"#),
        "owner fields wired to the type-ahead"
    );
    assert!(
        !p.body.contains("New owner for sheet s1"),
        "filtered by kind"
    );
    assert!(p.body.contains("&lt;b&gt;d1&lt;/b&gt;"), "titles escaped");
    let csrf = p.csrf();
    let r = b
        .post(
            "/console/orphans/reassign",
            &[
                ("csrf", &csrf),
                ("kind", "doc"),
                ("id", "d1"),
                ("owner", "KEEPER@example.com"),
                ("filter", "doc"),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.location(), Some("/console/orphans?kind=doc"));
    let p = b.get("/console/orphans?kind=doc").await;
    assert!(p.body.contains("Reassigned 1 item(s)."), "{}", p.body);
    assert!(!p.body.contains("New owner for doc d1"));
    let person = b.get(&format!("/console/people/{owner}")).await;
    assert!(
        person.body.contains("<th scope=\"row\">doc</th><td>1</td>"),
        "{}",
        person.body
    );
    // An unknown owner: refused, nothing moved.
    let r = b
        .post(
            "/console/orphans/reassign",
            &[
                ("csrf", &csrf),
                ("kind", "doc"),
                ("id", "d2"),
                ("owner", "nobody@example.com"),
            ],
        )
        .await;
    assert_eq!(r.status, 404);
    assert!(
        b.get("/console/orphans")
            .await
            .body
            .contains("New owner for doc d2")
    );
}
both_backends!(
    orphans_are_filtered_and_reassigned,
    super::orphans_are_filtered_and_reassigned
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_and_webhooks_pages() {
    let app = spawn_app_with(
        Backend::Sqlite,
        Options {
            policy: Some(
                "[default]\ngrace_period = \"10m\"\n\
                 webhooks = [{ url = \"https://hooks.example/in\", secret_env = \"HOOK\" },\n\
                 { url = \"https://svc:hunter2@hooks.example/b?key=k3y\", secret_env = \"HOOK\" }]\n"
                    .into(),
            ),
            ..Options::default()
        },
    )
    .await;
    let mut b = Browser::signed_in(&app, &admin(&app)).await;
    let p = b.get("/console/policy").await;
    let digest = app.deprov.policy("default").digest();
    assert_eq!(p.text_after("data-testid=\"policy-digest\">"), digest);
    assert!(p.body.contains("grace_period under one hour"), "{}", p.body);
    let w = b.get("/console/webhooks").await;
    assert!(w.body.contains("https://hooks.example/in"), "{}", w.body);
    assert!(w.body.contains("not started"));
    // A receiver's credential in its URL is shown redacted, on both pages.
    assert!(
        w.body.contains("https://redacted@hooks.example/b?redacted"),
        "{}",
        w.body
    );
    for page in [&p.body, &w.body] {
        assert!(!page.contains("hunter2") && !page.contains("k3y"), "{page}");
    }
}

async fn people_search_pages_by_key(backend: Backend) {
    let app = spawn_app(backend).await;
    crate::seeded_user_ids(&app, 30).await;
    let other = create_user(&app, "zed@example.com").await;
    let mut b = Browser::signed_in(&app, &admin(&app)).await;
    let first = b.get("/console/people?q=seed").await;
    assert_eq!(
        first.body.matches("<a href=\"/console/people/").count(),
        25,
        "{}",
        first.body
    );
    assert!(!first.body.contains("zed@example.com"));
    let at = first
        .body
        .find("<a href=\"/console/people?q=seed&amp;after=")
        .expect("a next page link");
    let href = &first.body[at + "<a href=\"".len()..];
    let href = href[..href.find('"').unwrap()].replace("&amp;", "&");
    assert!(first.body[at..].contains(">Next page</a>"));
    let second = b.get(&href).await;
    assert_eq!(
        second.body.matches("<a href=\"/console/people/").count(),
        5,
        "{}",
        second.body
    );
    assert!(!second.body.contains("Next page"));
    // An exact email or id finds the person; any other tenant's does not.
    let by_email = b.get("/console/people?q=ZED%40example.com").await;
    assert!(by_email.body.contains(&format!("/console/people/{other}")));
    let by_id = b.get(&format!("/console/people?q={other}")).await;
    assert!(by_id.body.contains("zed@example.com"));
}
both_backends!(
    people_search_pages_by_key,
    super::people_search_pages_by_key
);

async fn brake_held_disposals_are_released_from_the_console(backend: Backend) {
    let app = spawn_app_with(
        backend,
        Options {
            policy: Some("[default]\nbrake = { max_disposals_per_hour = 1 }\n".into()),
            ..Options::default()
        },
    )
    .await;
    let first = create_user(&app, "first@example.com").await;
    let second = create_user(&app, "second@example.com").await;
    for id in [&first, &second] {
        let r = app
            .req(Method::DELETE, &format!("/Users/{id}"))
            .send()
            .await
            .expect("delete");
        assert_eq!(r.status().as_u16(), 204);
    }
    let mut b = Browser::signed_in(&app, &admin(&app)).await;
    let d = b.get("/console/disposals").await;
    assert_eq!(
        d.text_after("data-testid=\"brake\">"),
        "tripped",
        "{}",
        d.body
    );
    let at = d
        .body
        .find("name=\"id\" value=\"")
        .expect("a held disposal")
        + "name=\"id\" value=\"".len();
    let disposal = d.body[at..at + d.body[at..].find('"').unwrap()].to_string();
    assert!(
        d.body
            .contains("aria-label=\"Select the disposal of second@example.com\"")
    );
    let csrf = d.csrf();
    let r = b
        .post(
            "/console/disposals",
            &[("csrf", &csrf), ("action", "release"), ("id", &disposal)],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let d = b.get("/console/disposals").await;
    assert!(
        d.body
            .contains("<p role=\"status\">Released 1 held disposal(s).</p>"),
        "{}",
        d.body
    );
    assert!(d.body.contains("No disposal is held."));
    let p = b.get(&format!("/console/people/{second}")).await;
    assert!(p.body.contains("<h1>Deleted User</h1>"));
    let r = b
        .post(
            "/console/disposals",
            &[("csrf", &csrf), ("action", "reset_brake")],
        )
        .await;
    assert_eq!(r.status, 303);
    assert_eq!(
        b.get("/console/")
            .await
            .text_after("data-testid=\"brake\">"),
        "ok"
    );
}
both_backends!(
    brake_held_disposals_are_released_from_the_console,
    super::brake_held_disposals_are_released_from_the_console
);

/// The owner fields' type-ahead: `/console/people/suggest` names at most ten
/// of the session's tenant's people by userName prefix, never another
/// tenant's, and only to a session; the orphans page wires its fields to it.
async fn type_ahead_suggests_people_by_prefix(backend: Backend) {
    let app = spawn_app(backend).await;
    crate::seeded_user_ids(&app, 12).await;
    let zed = create_user(&app, "Zed.Prefix@example.com").await;
    let other = app.token_for("other", Scope::Scim);
    let r = app
        .client
        .post(app.url("/Users"))
        .bearer_auth(&other)
        .json(&crate::user_body("zed.theirs@example.com"))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 201);

    let mut anon = Browser::new(&app);
    let r = anon.get("/console/people/suggest?q=zed").await;
    assert_eq!(r.status, 303, "no session, no names: {}", r.body);
    assert!(!r.body.contains("zed"));

    let mut b = Browser::signed_in(&app, &admin(&app)).await;
    let seeds = b.get("/console/people/suggest?q=SEED").await;
    assert_eq!(seeds.status, 200, "{}", seeds.body);
    let v: serde_json::Value = serde_json::from_str(&seeds.body).expect("json");
    let names: Vec<&str> = v
        .as_array()
        .expect("an array")
        .iter()
        .map(|p| p["userName"].as_str().expect("userName"))
        .collect();
    assert_eq!(names.len(), 10, "at most ten: {names:?}");
    assert!(names.iter().all(|n| n.starts_with("seed")), "{names:?}");
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "by userName");

    let z = b.get("/console/people/suggest?q=zed.").await;
    let v: serde_json::Value = serde_json::from_str(&z.body).expect("json");
    assert_eq!(
        v,
        serde_json::json!([{"id": zed, "userName": "Zed.Prefix@example.com"}]),
        "this tenant's only: {}",
        z.body
    );
    let none = b.get("/console/people/suggest?q=").await;
    assert_eq!(none.body, "[]");

    let script = b.get("/console/static/typeahead.js").await;
    assert_eq!(script.status, 200);
    assert!(
        script.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    assert!(script.body.contains("/console/people/suggest"));
    assert!(!script.body.contains("innerHTML"));
}
both_backends!(
    type_ahead_suggests_people_by_prefix,
    super::type_ahead_suggests_people_by_prefix
);

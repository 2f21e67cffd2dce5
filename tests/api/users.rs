use crate::common::{Backend, spawn_app};
use crate::{body, create_user, filter_users, patch_body, user_body};
use reqwest::Method;
use serde_json::json;

async fn lifecycle(b: Backend) {
    let app = spawn_app(b).await;
    // Create: 201, Location, ETag, meta, no password.
    let mut u = user_body("Jane.Doe@Example.edu");
    u["password"] = json!("1mz050nq");
    u["externalId"] = json!("00ujl29u0le5T6Aj10h7");
    let r = app
        .req(Method::POST, "/Users")
        .json(&u)
        .send()
        .await
        .expect("send");
    let location = r
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let etag = r
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let ct = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let (s, v) = body(r).await;
    assert_eq!(s, 201, "{v}");
    let id = v["id"].as_str().expect("id").to_string();
    assert_eq!(
        location.as_deref(),
        Some(format!("{}/Users/{id}", app.scim_url).as_str())
    );
    assert_eq!(etag.as_deref(), Some("W/\"1\""));
    assert!(ct.is_some_and(|c| c.starts_with("application/scim+json")));
    assert!(v.get("password").is_none());
    assert_eq!(v["meta"]["resourceType"], "User");
    assert_eq!(v["active"], true);

    // The password is not stored anywhere in the row either.
    let (_, got) = body(
        app.req(Method::GET, &format!("/Users/{id}"))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert!(!got.to_string().contains("1mz050nq"));

    // Duplicate in another case -> 409 uniqueness.
    let (s, v) = body(
        app.req(Method::POST, "/Users")
            .json(&user_body("jane.doe@example.EDU"))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(
        (s, v["scimType"].as_str()),
        (409, Some("uniqueness")),
        "{v}"
    );

    // Filters: case-insensitive userName, unquoted externalId, work-email value path.
    for f in [
        r#"userName eq "JANE.DOE@example.edu""#,
        "externalId eq 00ujl29u0le5T6Aj10h7",
        r#"emails[type eq "work"].value eq "jane.doe@EXAMPLE.edu""#,
        r#"emails.value co "doe@""#,
        r#"userName sw "jane" and active eq true"#,
        r#"not (userName eq "nobody") and name.familyName eq "user""#,
    ] {
        let l = filter_users(&app, f).await;
        assert_eq!(l["totalResults"], 1, "{f}: {l}");
        assert_eq!(l["Resources"][0]["id"], id.as_str());
    }
    assert_eq!(
        filter_users(&app, r#"externalId eq "00UJL29U0LE5T6AJ10H7""#).await["totalResults"],
        0,
        "externalId is case-exact"
    );
    let miss = filter_users(
        &app,
        r#"userName eq "6f1a1d9e-0000-4000-8000-000000000000""#,
    )
    .await;
    assert_eq!(
        (
            miss["totalResults"].as_i64(),
            miss["Resources"].as_array().map(Vec::len)
        ),
        (Some(0), Some(0))
    );

    // Deactivate (Entra legacy string boolean) -> still visible by id and filter.
    let (s, v) = body(
        app.req(Method::PATCH, &format!("/Users/{id}"))
            .json(&patch_body(
                json!([{"op": "Replace", "path": "active", "value": "False"}]),
            ))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!((s, &v["active"]), (200, &json!(false)), "{v}");
    let l = filter_users(&app, r#"userName eq "jane.doe@example.edu""#).await;
    assert_eq!(l["Resources"][0]["active"], false);

    // Okta re-POST of the suspended user restores it in place: same id, active.
    let (s, v) = body(
        app.req(Method::POST, "/Users")
            .json(&user_body("jane.doe@example.edu"))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["id"], id.as_str());
    assert_eq!(v["active"], true);
    assert_eq!(v["userName"], "jane.doe@example.edu");

    // PUT without `active` leaves it unchanged; PUT ignores echoed id/meta/groups.
    let put = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "id": id, "userName": "jane.doe@example.edu",
        "name": {"givenName": "Another", "middleName": "Excited", "familyName": "User"}, "groups": [],
        "meta": {"resourceType": "User", "created": "04-12-2018 00:00:00", "version": "v1.0"}});
    let (s, v) = body(
        app.req(Method::PUT, &format!("/Users/{id}"))
            .json(&put)
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["active"], true);
    assert_eq!(v["name"]["middleName"], "Excited");
    assert!(
        v.get("emails").is_none(),
        "PUT replaces: emails not sent are cleared"
    );

    // Stale If-Match -> 412, nothing written.
    let (s, _) = body(
        app.req(Method::PATCH, &format!("/Users/{id}"))
            .header("If-Match", "W/\"1\"")
            .json(&patch_body(
                json!([{"op": "replace", "path": "title", "value": "X"}]),
            ))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(s, 412);
    // If-None-Match with the current version -> 304.
    let r = app
        .req(Method::GET, &format!("/Users/{id}"))
        .send()
        .await
        .expect("send");
    let etag = r
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let r = app
        .req(Method::GET, &format!("/Users/{id}"))
        .header("If-None-Match", etag)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 304);

    // DELETE -> 204, then 404 (also for a repeat), and the userName is free again.
    let r = app
        .req(Method::DELETE, &format!("/Users/{id}"))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 204);
    assert!(r.text().await.is_ok_and(|t| t.is_empty()));
    let (s, v) = body(
        app.req(Method::GET, &format!("/Users/{id}"))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!((s, v["status"].as_str()), (404, Some("404")));
    assert_eq!(
        app.req(Method::DELETE, &format!("/Users/{id}"))
            .send()
            .await
            .expect("send")
            .status()
            .as_u16(),
        404
    );
    let new_id = create_user(&app, "jane.doe@example.edu").await;
    assert_ne!(new_id, id);
}
crate::both_backends!(user_lifecycle, super::lifecycle);

async fn paging_is_stable(b: Backend) {
    let app = spawn_app(b).await;
    let mut ids = vec![];
    for i in 0..5 {
        ids.push(create_user(&app, &format!("page{i}@example.edu")).await);
    }
    let mut seen = vec![];
    for start in [1, 3, 5] {
        let (s, v) = body(
            app.req(Method::GET, &format!("/Users?startIndex={start}&count=2"))
                .send()
                .await
                .expect("send"),
        )
        .await;
        assert_eq!(s, 200);
        assert_eq!(v["totalResults"], 5);
        assert_eq!(v["startIndex"], start);
        for r in v["Resources"].as_array().into_iter().flatten() {
            seen.push(r["id"].as_str().unwrap_or_default().to_string());
        }
    }
    assert_eq!(seen, ids, "pages cover every user once, in creation order");
    let (_, v) = body(
        app.req(Method::GET, "/Users?count=0")
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(
        (v["totalResults"].as_i64(), v["itemsPerPage"].as_i64()),
        (Some(5), Some(0))
    );
    // A page that ends early gives the total without a COUNT; one past the end
    // (nothing to infer from) and a full page count. Every kind must agree.
    for (q, items) in [
        ("startIndex=1&count=10", 5),
        ("startIndex=4&count=10", 2),
        ("startIndex=5&count=1", 1),
        ("startIndex=9&count=10", 0),
        ("cursor&count=10", 5),
        ("cursor&count=5", 5),
        ("cursor&count=4", 4),
        ("filter=userName%20eq%20%22page3%40example.edu%22", 1),
        ("filter=userName%20eq%20%22nobody%40example.edu%22", 0),
    ] {
        let (s, v) = body(
            app.req(Method::GET, &format!("/Users?{q}"))
                .send()
                .await
                .expect("send"),
        )
        .await;
        assert_eq!(s, 200, "{q}: {v}");
        let want_total = if q.starts_with("filter") { items } else { 5 };
        assert_eq!(
            (v["totalResults"].as_i64(), v["itemsPerPage"].as_i64()),
            (Some(want_total), Some(items)),
            "{q}"
        );
    }
}
crate::both_backends!(paging, super::paging_is_stable);

async fn entra_patch_shapes(b: Backend) {
    let app = spawn_app(b).await;
    let mgr = create_user(&app, "boss@contoso.example").await;
    let id = create_user(&app, "emp@contoso.example").await;
    let ops = json!([
        {"op": "replace", "path": "emails[type eq \"work\"].value", "value": "new@contoso.example"},
        {"op": "replace", "value": {"displayName": "Bjfe", "name.givenName": "Kkom",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": "Aklq"}},
        {"op": "Add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", "value": mgr},
        {"op": "Add", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "+1 555 0100"}
    ]);
    let (s, v) = body(
        app.req(Method::PATCH, &format!("/Users/{id}"))
            .json(&patch_body(ops))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v["emails"],
        json!([{"value": "new@contoso.example", "type": "work", "primary": true}])
    );
    assert_eq!(
        v["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]["manager"]["value"],
        mgr.as_str()
    );
    // Derived columns follow the document: the old email no longer matches, the new one does.
    assert_eq!(
        filter_users(&app, r#"emails.value eq "emp@contoso.example""#).await["totalResults"],
        0
    );
    assert_eq!(
        filter_users(
            &app,
            r#"emails[type eq "work"].value eq "NEW@contoso.example""#
        )
        .await["totalResults"],
        1
    );
    let l = filter_users(&app, &format!(r#"id eq "{id}" and manager eq "{mgr}""#)).await;
    assert_eq!(l["totalResults"], 1);
    // A bad op rolls back the whole PATCH.
    let (s, v) = body(
        app.req(Method::PATCH, &format!("/Users/{id}"))
            .json(&patch_body(json!([
                {"op": "replace", "path": "displayName", "value": "Changed"},
                {"op": "replace", "path": "nosuch", "value": "x"}
            ])))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(
        (s, v["scimType"].as_str()),
        (400, Some("invalidPath")),
        "{v}"
    );
    let (_, v) = body(
        app.req(Method::GET, &format!("/Users/{id}"))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(v["displayName"], "Bjfe");
    // Renaming onto another user's userName is a conflict.
    let (s, _) = body(
        app.req(Method::PATCH, &format!("/Users/{id}"))
            .json(&patch_body(json!([
        {"op": "replace", "value": {"userName": "BOSS@contoso.example"}}])))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(s, 409);
}
crate::both_backends!(entra_patch, super::entra_patch_shapes);

async fn concurrent_duplicate_posts(b: Backend) {
    let app = spawn_app(b).await;
    let mut tasks = vec![];
    for _ in 0..8 {
        let req = app
            .req(Method::POST, "/Users")
            .json(&user_body("race@example.edu"));
        tasks.push(tokio::spawn(async move {
            req.send().await.map(|r| r.status().as_u16())
        }));
    }
    let mut codes = vec![];
    for t in tasks {
        codes.push(t.await.expect("join").expect("send"));
    }
    codes.sort();
    assert_eq!(codes.iter().filter(|c| **c == 201).count(), 1, "{codes:?}");
    assert!(codes.iter().all(|c| *c == 201 || *c == 409), "{codes:?}");
    assert_eq!(
        filter_users(&app, r#"userName eq "race@example.edu""#).await["totalResults"],
        1
    );
}
crate::both_backends!(concurrent_duplicates, super::concurrent_duplicate_posts);

async fn concurrent_writes_all_land(b: Backend) {
    // SQLite: writers are serialised in process; none may fail with "database is locked".
    let app = spawn_app(b).await;
    let mut tasks = vec![];
    for i in 0..24 {
        let req = app
            .req(Method::POST, "/Users")
            .json(&user_body(&format!("w{i}@example.edu")));
        tasks.push(tokio::spawn(async move {
            req.send().await.map(|r| r.status().as_u16())
        }));
    }
    for t in tasks {
        assert_eq!(t.await.expect("join").expect("send"), 201);
    }
    let (_, v) = body(
        app.req(Method::GET, "/Users?count=0")
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(v["totalResults"], 24);
}
crate::both_backends!(concurrent_writes, super::concurrent_writes_all_land);

async fn tenants_are_isolated(b: Backend) {
    let app = spawn_app(b).await;
    let id = create_user(&app, "mine@example.edu").await;
    let other = app.new_tenant_token().await;
    let get = |path: String| app.client.get(app.url(&path)).bearer_auth(&other).send();
    assert_eq!(
        get(format!("/Users/{id}"))
            .await
            .expect("send")
            .status()
            .as_u16(),
        404
    );
    let (_, v) = body(get("/Users".into()).await.expect("send")).await;
    assert_eq!(v["totalResults"], 0);
    // The same userName is free in the other tenant.
    let r = app
        .client
        .post(app.url("/Users"))
        .bearer_auth(&other)
        .json(&user_body("mine@example.edu"))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 201);
}
crate::both_backends!(tenant_isolation, super::tenants_are_isolated);

async fn raw_quotes_in_query(b: Backend) {
    // The MS SCIM Validator sends `?filter=userName+eq+"x"` with raw quotes; a
    // plain HTTP stack refuses that request line before any handler runs.
    use std::io::{Read, Write};
    let app = spawn_app(b).await;
    let id = create_user(&app, "quoted@example.edu").await;
    let host = app.addr.trim_start_matches("http://").to_string();
    let token = app.token.clone();
    let response = tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(&host).expect("connect");
        let req = format!(
            "GET /scim/v2/Users?filter=userName+eq+\"QUOTED@example.edu\" HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
        );
        s.write_all(req.as_bytes()).expect("write");
        let mut out = String::new();
        s.read_to_string(&mut out).expect("read");
        out
    })
    .await
    .expect("join");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let json_start = response.find("\r\n\r\n").map(|i| i + 4).unwrap_or(0);
    let v: serde_json::Value = serde_json::from_str(&response[json_start..]).expect("json");
    assert_eq!(v["totalResults"], 1);
    assert_eq!(v["Resources"][0]["id"], id.as_str());
}
crate::both_backends!(raw_quotes, super::raw_quotes_in_query);

/// A PATCH writes only the columns (and email rows) that changed: every
/// lookup key still finds the user after each kind of change, and a changed
/// key finds it only under its new value.
async fn patch_keeps_every_lookup_key_true(b: Backend) {
    let app = spawn_app(b).await;
    let (s, v) = body(
        app.req(Method::POST, "/Users")
            .json(&json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": "keys@example.edu", "externalId": "ext-keys", "active": true,
                "emails": [{"type": "work", "value": "keys@example.edu", "primary": true}]
            }))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    let id = v["id"].as_str().expect("id").to_string();
    let patch = |ops: serde_json::Value| {
        let app = &app;
        let id = id.clone();
        async move {
            let (s, v) = body(
                app.req(Method::PATCH, &format!("/Users/{id}"))
                    .json(&patch_body(ops))
                    .send()
                    .await
                    .expect("send"),
            )
            .await;
            assert!(s == 200 || s == 204, "{s}: {v}");
        }
    };
    let found = |filter: &'static str| {
        let app = &app;
        async move {
            let l = filter_users(app, filter).await;
            (
                l["totalResults"].as_i64(),
                l["Resources"][0]["active"].clone(),
            )
        }
    };
    patch(json!([{"op": "Replace", "path": "active", "value": "False"}])).await;
    for f in [
        r#"userName eq "keys@example.edu""#,
        r#"externalId eq "ext-keys""#,
        r#"emails[type eq "work"].value eq "keys@example.edu""#,
    ] {
        assert_eq!(found(f).await, (Some(1), json!(false)), "{f}");
    }
    patch(json!([{"op": "replace", "path": "emails[type eq \"work\"].value", "value": "moved@example.edu"}])).await;
    assert_eq!(
        found(r#"emails.value eq "keys@example.edu""#).await.0,
        Some(0)
    );
    assert_eq!(
        found(r#"emails.value eq "moved@example.edu""#).await.0,
        Some(1)
    );
    patch(json!([{"op": "replace", "path": "userName", "value": "renamed@example.edu"}])).await;
    assert_eq!(found(r#"userName eq "keys@example.edu""#).await.0, Some(0));
    assert_eq!(
        found(r#"userName eq "renamed@example.edu""#).await.0,
        Some(1)
    );
    assert_eq!(found(r#"externalId eq "ext-keys""#).await.0, Some(1));
    assert_eq!(
        found(r#"emails.value eq "moved@example.edu""#).await.0,
        Some(1)
    );
    patch(json!([{"op": "replace", "path": "active", "value": true}])).await;
    assert_eq!(
        found(r#"userName eq "renamed@example.edu""#).await,
        (Some(1), json!(true))
    );
}
crate::both_backends!(patch_lookup_keys, super::patch_keeps_every_lookup_key_true);

/// A user with more emails than one email `INSERT` carries on PostgreSQL
/// (`store::users::EMAIL_CHUNK`): every one is stored, in order, and finds
/// the user.
async fn many_emails_all_stored(b: Backend) {
    let app = spawn_app(b).await;
    let emails: Vec<serde_json::Value> = (0..20)
        .map(|i| json!({"type": "other", "value": format!("m{i}@example.edu")}))
        .collect();
    let (s, v) = body(
        app.req(Method::POST, "/Users")
            .json(&json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": "many@example.edu", "emails": emails
            }))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    let got: Vec<String> = v["emails"]
        .as_array()
        .expect("emails")
        .iter()
        .map(|e| e["value"].as_str().unwrap_or_default().to_string())
        .collect();
    let want: Vec<String> = (0..20).map(|i| format!("m{i}@example.edu")).collect();
    assert_eq!(got, want);
    for i in [0, 7, 8, 15, 16, 19] {
        let f = format!(r#"emails.value eq "m{i}@example.edu""#);
        let l = filter_users(&app, &f).await;
        assert_eq!(l["totalResults"].as_i64(), Some(1), "{f}");
    }
}
crate::both_backends!(many_emails, super::many_emails_all_stored);

//! Regressions from review: each test reproduces a reported failure.

use crate::common::{Backend, spawn_app};
use crate::{body, create_user, filter_users, patch_body, user_body};
use reqwest::Method;
use serde_json::json;

async fn non_ascii_urn_key_does_not_wedge_writes(b: Backend) {
    let app = spawn_app(b).await;
    let id = create_user(&app, "p0@example.edu").await;
    let key = format!("urn:{}:X", "é".repeat(19));
    let (s, _) = body(
        app.req(Method::POST, "/Users")
            .json(&json!({"userName": "p1", key.clone(): {"a": 1}}))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(s, 201);
    let ops = json!([{"op": "add", "value": {key: {"a": 2}}}]);
    let (s, _) = body(
        app.req(Method::PATCH, &format!("/Users/{id}"))
            .json(&patch_body(ops))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(s, 200);
    // Writes keep working afterwards, in this tenant and another.
    create_user(&app, "p2@example.edu").await;
    let other = app.new_tenant_token().await;
    let r = app
        .client
        .post(app.url("/Users"))
        .bearer_auth(&other)
        .json(&user_body("p3@example.edu"))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 201);
}
crate::both_backends!(
    non_ascii_urn_key,
    super::non_ascii_urn_key_does_not_wedge_writes
);

async fn if_match_races_have_one_winner(b: Backend) {
    let app = spawn_app(b).await;
    let id = create_user(&app, "race2@example.edu").await;
    let mut tasks = vec![];
    for i in 0..8 {
        let mut u = user_body("race2@example.edu");
        u["title"] = json!(format!("t{i}"));
        let req = app
            .req(Method::PUT, &format!("/Users/{id}"))
            .header("If-Match", "W/\"1\"")
            .json(&u);
        tasks.push(tokio::spawn(async move {
            req.send().await.map(|r| r.status().as_u16())
        }));
    }
    let mut codes = vec![];
    for t in tasks {
        codes.push(t.await.expect("join").expect("send"));
    }
    assert_eq!(codes.iter().filter(|c| **c == 200).count(), 1, "{codes:?}");
    assert!(codes.iter().all(|c| *c == 200 || *c == 412), "{codes:?}");
    // Concurrent PATCHes without If-Match all land: nothing is lost.
    let mut tasks = vec![];
    for i in 0..8 {
        let ops = json!([{"op": "add", "path": "emails", "value": [{"value": format!("e{i}@example.edu"), "type": "other"}]}]);
        let req = app
            .req(Method::PATCH, &format!("/Users/{id}"))
            .json(&patch_body(ops));
        tasks.push(tokio::spawn(async move {
            req.send().await.map(|r| r.status().as_u16())
        }));
    }
    for t in tasks {
        assert_eq!(t.await.expect("join").expect("send"), 200);
    }
    let (_, v) = body(
        app.req(Method::GET, &format!("/Users/{id}"))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(v["emails"].as_array().map(Vec::len), Some(9), "{v}");
    assert_eq!(v["meta"]["version"], "W/\"10\"");
}
crate::both_backends!(if_match_races, super::if_match_races_have_one_winner);

async fn external_id_race_has_one_winner(b: Backend) {
    let app = spawn_app(b).await;
    let mut tasks = vec![];
    for i in 0..6 {
        let mut u = user_body(&format!("x{i}@example.edu"));
        u["externalId"] = json!("00u-same");
        let req = app.req(Method::POST, "/Users").json(&u);
        tasks.push(tokio::spawn(async move {
            req.send().await.map(|r| r.status().as_u16())
        }));
    }
    let mut codes = vec![];
    for t in tasks {
        codes.push(t.await.expect("join").expect("send"));
    }
    assert_eq!(codes.iter().filter(|c| **c == 201).count(), 1, "{codes:?}");
    assert_eq!(
        filter_users(&app, r#"externalId eq "00u-same""#).await["totalResults"],
        1
    );
}
crate::both_backends!(external_id_race, super::external_id_race_has_one_winner);

async fn nul_characters_are_refused_not_500(b: Backend) {
    let app = spawn_app(b).await;
    let (s, v) = body(
        app.req(Method::POST, "/Users")
            .json(&json!({"userName": "nul\u{0}x"}))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(
        (s, v["scimType"].as_str()),
        (400, Some("invalidValue")),
        "{v}"
    );
    for path in ["/Users/%00", "/Groups/a%00b"] {
        assert_eq!(
            app.req(Method::GET, path)
                .send()
                .await
                .expect("send")
                .status()
                .as_u16(),
            404,
            "{path}"
        );
        assert_eq!(
            app.req(Method::DELETE, path)
                .send()
                .await
                .expect("send")
                .status()
                .as_u16(),
            404,
            "{path}"
        );
    }
    let r = app
        .client
        .get(app.url("/Users"))
        .bearer_auth(&app.token)
        .query(&[("filter", "externalId eq \"a\\u0000\"")])
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 400);
    // Unquoted (Entra's `externalId eq jyoung` form): found by the filter_parse fuzz target.
    for filter in ["externalId eq a\u{0}b", "userName eq a\u{0}b"] {
        let r = app
            .client
            .get(app.url("/Users"))
            .bearer_auth(&app.token)
            .query(&[("filter", filter)])
            .send()
            .await
            .expect("send");
        assert_eq!(r.status().as_u16(), 400, "{filter:?}");
    }
}
crate::both_backends!(nul_characters, super::nul_characters_are_refused_not_500);

async fn entra_mapping_paths_and_state_safety(b: Backend) {
    let app = spawn_app(b).await;
    let id = create_user(&app, "roles@example.edu").await;
    // roles[primary eq "True"].value (string boolean) updates in place, every sync.
    for v in ["Admin0", "Admin1", "Admin2"] {
        let ops = json!([{"op": "Add", "path": "roles[primary eq \"True\"].value", "value": v}]);
        let (s, r) = body(
            app.req(Method::PATCH, &format!("/Users/{id}"))
                .json(&patch_body(ops))
                .send()
                .await
                .expect("send"),
        )
        .await;
        assert_eq!(s, 200, "{r}");
    }
    let (_, v) = body(
        app.req(Method::GET, &format!("/Users/{id}"))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(
        v["roles"],
        json!([{"value": "Admin2", "primary": true}]),
        "one role, updated in place"
    );
    assert_eq!(
        filter_users(&app, r#"active eq "True""#).await["totalResults"],
        1
    );
    // Removing `active` never lifts a suspension.
    let ops = json!([{"op": "Replace", "path": "active", "value": "False"}]);
    app.req(Method::PATCH, &format!("/Users/{id}"))
        .json(&patch_body(ops))
        .send()
        .await
        .expect("send");
    let ops = json!([{"op": "remove", "path": "active"}]);
    let (s, _) = body(
        app.req(Method::PATCH, &format!("/Users/{id}"))
            .json(&patch_body(ops))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(
        filter_users(&app, "active eq false").await["totalResults"],
        1
    );
    assert_eq!(
        filter_users(&app, "active eq true").await["totalResults"],
        0
    );
}
crate::both_backends!(
    entra_mapping_paths,
    super::entra_mapping_paths_and_state_safety
);

async fn membership_changes_move_etags_and_qualified_names_work(b: Backend) {
    let app = spawn_app(b).await;
    let uid = create_user(&app, "etag@example.edu").await;
    let r = app
        .req(Method::GET, &format!("/Users/{uid}"))
        .send()
        .await
        .expect("send");
    let user_etag = r
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let (_, g) = body(
        app.req(Method::POST, "/Groups")
            .json(&json!({"displayName": "E"}))
            .send()
            .await
            .expect("send"),
    )
    .await;
    let gid = g["id"].as_str().expect("id").to_string();
    // A URN-qualified `members` key in a path-less PATCH: real memberships, unknown ids dropped.
    let ops = json!([{"op": "add", "value": {"urn:ietf:params:scim:schemas:core:2.0:Group:members": [{"value": "not-a-user"}, {"value": uid}]}}]);
    let (s, g) = body(
        app.req(Method::PATCH, &format!("/Groups/{gid}"))
            .json(&patch_body(ops))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(s, 200, "{g}");
    assert_eq!(
        g["members"],
        json!([{"value": uid, "$ref": format!("{}/Users/{uid}", app.scim_url), "type": "User"}])
    );
    let r = app
        .req(Method::GET, &format!("/Users/{uid}"))
        .header("If-None-Match", &user_etag)
        .send()
        .await
        .expect("send");
    assert_eq!(
        r.status().as_u16(),
        200,
        "the user's groups changed, so its ETag did"
    );
    // Fully qualified excludedAttributes.
    let (_, g2) = body(app.req(Method::GET, &format!("/Groups/{gid}?excludedAttributes=urn:ietf:params:scim:schemas:core:2.0:Group:members")).send().await.expect("send")).await;
    assert!(g2.get("members").is_none(), "{g2}");
    // Disposing a member moves the group's ETag.
    let r = app
        .req(Method::GET, &format!("/Groups/{gid}"))
        .send()
        .await
        .expect("send");
    let group_etag = r
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert_eq!(
        app.req(Method::DELETE, &format!("/Users/{uid}"))
            .send()
            .await
            .expect("send")
            .status()
            .as_u16(),
        204
    );
    let r = app
        .req(Method::GET, &format!("/Groups/{gid}"))
        .header("If-None-Match", &group_etag)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 200);
}
crate::both_backends!(
    etags_and_qualified_names,
    super::membership_changes_move_etags_and_qualified_names_work
);

/// Two PATCHes with the same `If-Match`: one wins, one gets 412, and the loser
/// re-reads and retries, so nothing is lost — for users and for groups.
async fn patch_if_match_race(b: Backend) {
    let app = spawn_app(b).await;
    let uid = create_user(&app, "etag@example.edu").await;
    let (s, g) = body(
        app.req(Method::POST, "/Groups")
            .json(&json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "etag-group"}))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(s, 201);
    let gid = g["id"].as_str().expect("id").to_string();
    let m1 = create_user(&app, "m1@example.edu").await;
    let m2 = create_user(&app, "m2@example.edu").await;
    let cases = [
        (
            format!("/Users/{uid}"),
            [
                json!([{"op": "add", "path": "phoneNumbers", "value": [{"value": "+1 555 0001", "type": "work"}]}]),
                json!([{"op": "add", "path": "phoneNumbers", "value": [{"value": "+1 555 0002", "type": "home"}]}]),
            ],
        ),
        (
            format!("/Groups/{gid}"),
            [
                json!([{"op": "add", "path": "members", "value": [{"value": m1}]}]),
                json!([{"op": "add", "path": "members", "value": [{"value": m2}]}]),
            ],
        ),
    ];
    for (path, ops) in cases {
        let (_, before) = body(app.req(Method::GET, &path).send().await.expect("send")).await;
        let etag = before["meta"]["version"]
            .as_str()
            .expect("version")
            .to_string();
        let send = |ops: &serde_json::Value, etag: &str| {
            app.req(Method::PATCH, &path)
                .header("If-Match", etag)
                .json(&patch_body(ops.clone()))
                .send()
        };
        let (a, b2) = tokio::join!(send(&ops[0], &etag), send(&ops[1], &etag));
        let codes = [
            a.expect("send").status().as_u16(),
            b2.expect("send").status().as_u16(),
        ];
        let winners = codes.iter().filter(|c| **c == 200 || **c == 204).count();
        assert_eq!(winners, 1, "{path}: {codes:?}");
        assert!(codes.contains(&412), "{path}: {codes:?}");
        let loser = usize::from(codes[1] == 412);
        // The loser re-reads, sees the winner's change, and retries with the new ETag.
        let (_, now) = body(app.req(Method::GET, &path).send().await.expect("send")).await;
        let fresh = now["meta"]["version"]
            .as_str()
            .expect("version")
            .to_string();
        assert_ne!(fresh, etag);
        let r = send(&ops[loser], &fresh).await.expect("send");
        assert!(matches!(r.status().as_u16(), 200 | 204), "{path}");
        let (_, after) = body(app.req(Method::GET, &path).send().await.expect("send")).await;
        let attr = if path.starts_with("/Users") {
            "phoneNumbers"
        } else {
            "members"
        };
        assert_eq!(
            after[attr].as_array().map(Vec::len),
            Some(2),
            "{path}: {after}"
        );
    }
}
crate::both_backends!(patch_if_match_races, super::patch_if_match_race);

use crate::common::{Backend, spawn_app};
use crate::{body, create_user, patch_body};
use reqwest::Method;
use serde_json::{Value, json};

fn member_ids(v: &Value) -> Vec<String> {
    let mut ids: Vec<String> = v["members"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["value"].as_str().map(str::to_string))
        .collect();
    ids.sort();
    ids
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

async fn membership(b: Backend) {
    let app = spawn_app(b).await;
    let u1 = create_user(&app, "g1@example.edu").await;
    let u2 = create_user(&app, "g2@example.edu").await;
    let u3 = create_user(&app, "g3@example.edu").await;
    let (s, g) = body(app.req(Method::POST, "/Groups").json(&json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group", "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"],
        "displayName": "Staff", "externalId": "ext-1", "members": [{"value": u1}, {"value": "not-a-user"}]
    })).send().await.expect("send")).await;
    assert_eq!(s, 201, "{g}");
    let gid = g["id"].as_str().expect("id").to_string();
    assert_eq!(
        member_ids(&g),
        vec![u1.clone()],
        "unknown member ids are ignored"
    );

    // Okta delta PATCH: remove one by filter, add one; id inside the rename map.
    let ops = json!([
        {"op": "replace", "value": {"id": gid, "displayName": "Staff"}},
        {"op": "add", "path": "members", "value": [{"value": u2, "display": "g2"}, {"value": u3}]},
        {"op": "remove", "path": format!("members[value eq \"{u1}\"]")},
        {"op": "add", "path": "members", "value": [{"value": u2}]}
    ]);
    let (s, g) = body(
        app.req(Method::PATCH, &format!("/Groups/{gid}"))
            .json(&patch_body(ops))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(s, 200, "{g}");
    assert_eq!(member_ids(&g), sorted(vec![u2.clone(), u3.clone()]));

    // Entra legacy remove-with-value, then excludedAttributes=members everywhere.
    let ops = json!([{"op": "Remove", "path": "members", "value": [{"value": u3}]}]);
    let (s, _) = body(
        app.req(Method::PATCH, &format!("/Groups/{gid}"))
            .json(&patch_body(ops))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(s, 200);
    let (_, g) = body(
        app.req(
            Method::GET,
            &format!("/Groups/{gid}?excludedAttributes=members"),
        )
        .send()
        .await
        .expect("send"),
    )
    .await;
    assert!(g.get("members").is_none() && g["displayName"] == "Staff");
    let (_, l) = body(
        app.req(
            Method::GET,
            "/Groups?excludedAttributes=members&filter=displayName%20eq%20%22STAFF%22",
        )
        .send()
        .await
        .expect("send"),
    )
    .await;
    assert_eq!(l["totalResults"], 1);
    assert!(l["Resources"][0].get("members").is_none());
    let (_, l) = body(
        app.req(
            Method::GET,
            &format!(
                "/Groups?filter=id%20eq%20%22{gid}%22%20and%20members%5Bvalue%20eq%20%22{u2}%22%5D"
            ),
        )
        .send()
        .await
        .expect("send"),
    )
    .await;
    assert_eq!(l["totalResults"], 1, "Entra's membership check");

    // User.groups is computed from memberships.
    let (_, u) = body(
        app.req(Method::GET, &format!("/Users/{u2}"))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(
        u["groups"],
        json!([{"value": gid, "$ref": format!("{}/Groups/{gid}", app.scim_url), "display": "Staff", "type": "direct"}])
    );
    let (s, v) = body(
        app.req(Method::PATCH, &format!("/Users/{u2}"))
            .json(&patch_body(
                json!([{"op": "add", "path": "groups", "value": [{"value": gid}]}]),
            ))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!((s, v["scimType"].as_str()), (400, Some("mutability")));

    // PUT replaces the member list (as a difference); replace members with [] empties it.
    let (s, g) = body(
        app.req(Method::PUT, &format!("/Groups/{gid}"))
            .json(&json!({"displayName": "Staff 2", "members": [{"value": u1}, {"value": u3}]}))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(member_ids(&g), sorted(vec![u1.clone(), u3.clone()]));
    let (_, g) = body(
        app.req(Method::PATCH, &format!("/Groups/{gid}"))
            .json(&patch_body(
                json!([{"op": "replace", "path": "members", "value": []}]),
            ))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert!(member_ids(&g).is_empty());

    // Duplicate displayName (case-insensitive) -> 409.
    let (s, v) = body(
        app.req(Method::POST, "/Groups")
            .json(&json!({"displayName": "STAFF 2"}))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!((s, v["scimType"].as_str()), (409, Some("uniqueness")));

    // Deleting a user removes its memberships; deleting the group leaves users alone.
    let ops = json!([{"op": "add", "path": "members", "value": [{"value": u1}]}]);
    app.req(Method::PATCH, &format!("/Groups/{gid}"))
        .json(&patch_body(ops))
        .send()
        .await
        .expect("send");
    assert_eq!(
        app.req(Method::DELETE, &format!("/Users/{u1}"))
            .send()
            .await
            .expect("send")
            .status()
            .as_u16(),
        204
    );
    let (_, g) = body(
        app.req(Method::GET, &format!("/Groups/{gid}"))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert!(member_ids(&g).is_empty());
    assert_eq!(
        app.req(Method::DELETE, &format!("/Groups/{gid}"))
            .send()
            .await
            .expect("send")
            .status()
            .as_u16(),
        204
    );
    assert_eq!(
        app.req(Method::GET, &format!("/Groups/{gid}"))
            .send()
            .await
            .expect("send")
            .status()
            .as_u16(),
        404
    );
    assert_eq!(
        app.req(Method::DELETE, &format!("/Groups/{gid}"))
            .send()
            .await
            .expect("send")
            .status()
            .as_u16(),
        404
    );
    assert_eq!(
        app.req(Method::GET, &format!("/Users/{u2}"))
            .send()
            .await
            .expect("send")
            .status()
            .as_u16(),
        200
    );
}
crate::both_backends!(group_membership, super::membership);

async fn member_of_another_tenant_is_ignored(b: Backend) {
    let app = spawn_app(b).await;
    let other = app.new_tenant_token().await;
    let r = app
        .client
        .post(app.url("/Users"))
        .bearer_auth(&other)
        .json(&crate::user_body("x@other.example"))
        .send()
        .await
        .expect("send");
    let (_, foreign) = body(r).await;
    let (s, g) = body(
        app.req(Method::POST, "/Groups")
            .json(&json!({"displayName": "G", "members": [{"value": foreign["id"]}]}))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(s, 201);
    assert!(member_ids(&g).is_empty());
}
crate::both_backends!(
    cross_tenant_member,
    super::member_of_another_tenant_is_ignored
);

/// A group's members are written row by row into the response; projection of
/// their sub-attributes still applies, and `excludedAttributes=members` omits them.
async fn member_rendering_and_projection(b: Backend) {
    let app = spawn_app(b).await;
    let mut ids = vec![];
    for i in 0..3 {
        ids.push(create_user(&app, &format!("mr{i}@example.edu")).await);
    }
    let members: Vec<serde_json::Value> = ids.iter().map(|id| json!({"value": id})).collect();
    let (s, g) = body(
        app.req(Method::POST, "/Groups")
            .json(&json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "rendered", "members": members}))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(s, 201);
    let gid = g["id"].as_str().expect("id").to_string();
    assert_eq!(g["members"].as_array().map(Vec::len), Some(3), "{g}");
    let get = |q: &str| app.req(Method::GET, &format!("/Groups/{gid}{q}")).send();
    let (_, full) = body(get("").await.expect("send")).await;
    let listed = full["members"].as_array().cloned().unwrap_or_default();
    let mut values: Vec<String> = listed
        .iter()
        .map(|m| m["value"].as_str().unwrap_or_default().to_string())
        .collect();
    values.sort();
    let mut want = ids.clone();
    want.sort();
    assert_eq!(values, want);
    for m in &listed {
        assert_eq!(m["type"], "User");
        let id = m["value"].as_str().unwrap_or_default();
        assert!(
            m["$ref"]
                .as_str()
                .is_some_and(|r| r.ends_with(&format!("/Users/{id}"))),
            "{m}"
        );
    }
    assert_eq!(full["displayName"], "rendered");
    let (_, only) = body(get("?attributes=members.value").await.expect("send")).await;
    let only_members = only["members"].as_array().cloned().unwrap_or_default();
    assert_eq!(only_members.len(), 3);
    assert!(
        only_members
            .iter()
            .all(|m| m.as_object().is_some_and(|o| o.len() == 1
                && ids.contains(&m["value"].as_str().unwrap_or_default().to_string()))),
        "{only}"
    );
    assert!(only.get("displayName").is_none());
    let (_, none) = body(get("?excludedAttributes=members").await.expect("send")).await;
    assert!(none.get("members").is_none(), "{none}");
    assert_eq!(none["displayName"], "rendered");
}
crate::both_backends!(member_rendering, super::member_rendering_and_projection);

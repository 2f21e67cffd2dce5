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

/// A list or lookup of users renders each one's groups, in the groups'
/// creation order (on PostgreSQL read in the page's own statement).
async fn listed_users_carry_their_groups(b: Backend) {
    let app = spawn_app(b).await;
    let u1 = create_user(&app, "lg1@example.edu").await;
    let u2 = create_user(&app, "lg2@example.edu").await;
    let u3 = create_user(&app, "lg3@example.edu").await;
    let mut gids = Vec::new();
    for (name, members) in [("Alpha", vec![&u1, &u2]), ("Beta", vec![&u2])] {
        let members: Vec<Value> = members.iter().map(|u| json!({"value": u})).collect();
        let (s, g) = body(
            app.req(Method::POST, "/Groups")
                .json(&json!({"displayName": name, "members": members}))
                .send()
                .await
                .expect("send"),
        )
        .await;
        assert_eq!(s, 201);
        gids.push(g["id"].as_str().expect("id").to_string());
    }
    let groups_of = |u: &Value| -> Vec<(String, String)> {
        u["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|g| {
                (
                    g["value"].as_str().unwrap_or_default().to_string(),
                    g["display"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect()
    };
    let (alpha, beta) = (
        (gids[0].clone(), "Alpha".to_string()),
        (gids[1].clone(), "Beta".to_string()),
    );
    // An IdP's lookup.
    let (s, l) = body(
        app.req(
            Method::GET,
            "/Users?filter=userName%20eq%20%22LG2@example.edu%22",
        )
        .send()
        .await
        .expect("send"),
    )
    .await;
    assert_eq!((s, l["totalResults"].as_i64()), (200, Some(1)));
    assert_eq!(
        groups_of(&l["Resources"][0]),
        vec![alpha.clone(), beta.clone()]
    );
    // A page of several users: each has its own groups only.
    let (_, l) = body(
        app.req(Method::GET, "/Users?count=10")
            .send()
            .await
            .expect("send"),
    )
    .await;
    let by_id = |id: &str| -> Value {
        l["Resources"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|u| u["id"] == id)
            .cloned()
            .unwrap_or(Value::Null)
    };
    assert_eq!(groups_of(&by_id(&u1)), vec![alpha.clone()]);
    assert_eq!(groups_of(&by_id(&u2)), vec![alpha, beta]);
    assert!(by_id(&u3).is_object() && by_id(&u3).get("groups").is_none());
    // Not asked for: not read.
    let (_, l) = body(
        app.req(
            Method::GET,
            "/Users?filter=userName%20eq%20%22lg2@example.edu%22&excludedAttributes=groups",
        )
        .send()
        .await
        .expect("send"),
    )
    .await;
    assert!(l["Resources"][0].get("groups").is_none());
}
crate::both_backends!(listed_groups, super::listed_users_carry_their_groups);

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

fn stored_members(app: &crate::common::TestApp, gid: &str) -> Vec<String> {
    let tenant = app.default_tenant_id();
    sorted(
        app.db
            .read(|c| custodian::store::groups::members(c, &tenant, gid))
            .expect("members")
            .into_iter()
            .map(|m| m.id)
            .collect(),
    )
}

async fn user_version(app: &crate::common::TestApp, id: &str) -> Value {
    let (s, u) = body(
        app.req(Method::GET, &format!("/Users/{id}"))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(s, 200, "{u}");
    u["meta"]["version"].clone()
}

/// Membership writes are batched (multi-row INSERTs of 128 rows, lookups of
/// 256 ids, updates of 512): adds across those boundaries, with duplicates,
/// unknown ids and another tenant's ids, store exactly the known members and
/// report exactly the new ones. An add above `ALONE_MEMBERS` (a transaction
/// of its own) works by PATCH and POST, and when a later operation of its
/// PATCH fails, none of it is stored.
async fn batched_member_writes(b: Backend) {
    use custodian::store::groups::{MemberKind, add_members, resolve_members};
    let app = spawn_app(b).await;
    let pool = crate::seeded_user_ids(&app, 1400).await;
    let tenant = app.default_tenant_id();
    let other = app.new_tenant_token().await;
    let mut foreign = vec![];
    for i in 0..2 {
        let (s, v) = body(
            app.client
                .post(app.url("/Users"))
                .bearer_auth(&other)
                .json(&crate::user_body(&format!("f{i}@other.example")))
                .send()
                .await
                .expect("send"),
        )
        .await;
        assert_eq!(s, 201, "{v}");
        foreign.push(v["id"].as_str().expect("id").to_string());
    }
    let unknown: Vec<String> = (0..3).map(|i| format!("no-such-id-{i}")).collect();
    let (s, g) = body(
        app.req(Method::POST, "/Groups")
            .json(&json!({"displayName": "Batched"}))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(s, 201, "{g}");
    let gid = g["id"].as_str().expect("id").to_string();

    // Store level, where the report is visible: resolve, then add.
    let add = |ids: Vec<String>| {
        app.db.write(|c| {
            let (found, ignored) = resolve_members(c, &tenant, &ids)?;
            let now = custodian::store::time::now();
            let added = add_members(c, &tenant, &gid, &found, &now)?;
            Ok::<_, custodian::store::StoreError>((found, ignored, sorted(added)))
        })
    };
    let with_noise = |ids: &[String]| -> Vec<String> {
        let mut v: Vec<String> = ids.to_vec();
        v.extend(ids[..10].iter().cloned()); // duplicates
        v.insert(3, unknown[0].clone());
        v.insert(7, foreign[0].clone());
        v.extend(unknown[1..].iter().cloned());
        v.push(foreign[1].clone());
        v
    };
    let mut ignored_want = vec![
        unknown[0].clone(),
        foreign[0].clone(),
        unknown[1].clone(),
        unknown[2].clone(),
        foreign[1].clone(),
    ];
    ignored_want.sort();
    // 129 = one INSERT chunk + 1.
    let (found, ignored, added) = add(with_noise(&pool[..129])).expect("add 129");
    assert_eq!(
        found,
        pool[..129]
            .iter()
            .map(|id| (id.clone(), MemberKind::User))
            .collect::<Vec<_>>(),
        "each known id once, in request order"
    );
    assert_eq!(sorted(ignored), ignored_want);
    assert_eq!(added, pool[..129].to_vec());
    // 259 = two INSERT chunks + 3 and one lookup chunk + 3; 29 already members.
    let (found, _, added) = add(with_noise(&pool[100..359])).expect("add 259");
    assert_eq!(found.len(), 259);
    assert_eq!(added, pool[129..359].to_vec(), "only the new ones reported");
    let (_, _, added) = add(pool[..359].to_vec()).expect("add again");
    assert!(added.is_empty(), "{added:?}");
    assert_eq!(stored_members(&app, &gid), pool[..359].to_vec());

    // Over HTTP, above ALONE_MEMBERS: 1,201 ids path-less (` members`). A
    // failing later operation (a filter on an unknown sub-attribute) leaves
    // none of the 842 new members stored.
    let big: Vec<Value> = with_noise(&pool[..1201])
        .into_iter()
        .map(|id| json!({"value": id}))
        .collect();
    let (kept, joined) = (pool[50].clone(), pool[1100].clone());
    let (kept_v, joined_v) = (
        user_version(&app, &kept).await,
        user_version(&app, &joined).await,
    );
    let (s, v) = body(
        app.req(Method::PATCH, &format!("/Groups/{gid}"))
            .json(&patch_body(json!([
                {"op": "add", "value": {" members": big}},
                {"op": "remove", "path": "members[bogus eq \"x\"]"}
            ])))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(stored_members(&app, &gid), pool[..359].to_vec(), "{v}");
    assert_eq!(user_version(&app, &joined).await, joined_v);
    let (s, v) = body(
        app.req(Method::PATCH, &format!("/Groups/{gid}"))
            .json(&patch_body(
                json!([{"op": "add", "value": {" members": big}}]),
            ))
            .send()
            .await
            .expect("send"),
    )
    .await;
    // Above the echo limit the PATCH answers 204.
    assert_eq!(s, 204, "{v}");
    assert_eq!(stored_members(&app, &gid), pool[..1201].to_vec());
    assert_eq!(
        user_version(&app, &kept).await,
        kept_v,
        "a member already present is not touched"
    );
    assert_ne!(
        user_version(&app, &joined).await,
        joined_v,
        "a new member's version follows its groups"
    );

    // A POST above ALONE_MEMBERS (2 × 512 + 3 ids: over an update chunk too).
    let (s, g) = body(
        app.req(Method::POST, "/Groups")
            .json(&json!({"displayName": "Big", "members": big_slice(&pool[..1027], &unknown)}))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(s, 201);
    let big_gid = g["id"].as_str().expect("id").to_string();
    assert_eq!(member_ids(&g), pool[..1027].to_vec());
    assert_eq!(stored_members(&app, &big_gid), pool[..1027].to_vec());
}
crate::both_backends!(batched_members, super::batched_member_writes);

fn big_slice(ids: &[String], unknown: &[String]) -> Vec<Value> {
    ids.iter()
        .chain(unknown)
        .chain(ids)
        .map(|id| json!({"value": id}))
        .collect()
}

//! `POST /Bulk` (RFC 7644 §3.7) against a real server: every result is checked
//! in the BulkResponse and again through the API (what was, and was not, written).

use crate::common::{Backend, Options, TestApp, spawn_app, spawn_app_with};
use crate::{body, create_user, filter_users, user_body};
use reqwest::Method;
use serde_json::{Value, json};

const BULK_REQUEST: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";
const BULK_RESPONSE: &str = "urn:ietf:params:scim:api:messages:2.0:BulkResponse";
const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

async fn bulk_raw(app: &TestApp, req: &Value) -> (u16, Value) {
    body(
        app.req(Method::POST, "/Bulk")
            .json(req)
            .send()
            .await
            .expect("send"),
    )
    .await
}

/// Sends a BulkRequest; asserts the envelope is a 200 BulkResponse.
async fn bulk(app: &TestApp, ops: Value, fail_on_errors: Option<u64>) -> Vec<Value> {
    let mut req = json!({"schemas": [BULK_REQUEST], "Operations": ops});
    if let Some(n) = fail_on_errors {
        req["failOnErrors"] = json!(n);
    }
    let r = app
        .req(Method::POST, "/Bulk")
        .json(&req)
        .send()
        .await
        .expect("send");
    let ct = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let (s, v) = body(r).await;
    assert_eq!(s, 200, "{v}");
    assert!(ct.starts_with("application/scim+json"), "{ct}");
    assert_eq!(v["schemas"], json!([BULK_RESPONSE]), "{v}");
    v["Operations"].as_array().cloned().expect("Operations")
}

fn statuses(results: &[Value]) -> Vec<&str> {
    results
        .iter()
        .map(|r| r["status"].as_str().expect("status is a string"))
        .collect()
}

async fn get(app: &TestApp, path: &str) -> (u16, Value, Option<String>) {
    let r = app.req(Method::GET, path).send().await.expect("send");
    let etag = r
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let (s, v) = body(r).await;
    (s, v, etag)
}

/// The id at the end of a result's `location`.
fn id_of(result: &Value) -> String {
    result["location"]
        .as_str()
        .and_then(|l| l.rsplit('/').next())
        .expect("location")
        .to_string()
}

fn member_ids(group: &Value) -> Vec<String> {
    let mut ids: Vec<String> = group["members"]
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

async fn create_group(app: &TestApp, name: &str) -> (String, String) {
    let r = app
        .req(Method::POST, "/Groups")
        .json(&json!({"displayName": name}))
        .send()
        .await
        .expect("send");
    let etag = r
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .expect("etag");
    let (s, v) = body(r).await;
    assert_eq!(s, 201, "{v}");
    (v["id"].as_str().expect("id").to_string(), etag)
}

async fn user_count(app: &TestApp, user_name: &str) -> i64 {
    filter_users(app, &format!("userName eq \"{user_name}\"")).await["totalResults"]
        .as_i64()
        .expect("totalResults")
}

async fn group_count(app: &TestApp, name: &str) -> i64 {
    let r = app
        .client
        .get(app.url("/Groups"))
        .bearer_auth(&app.token)
        .query(&[("filter", format!("displayName eq \"{name}\""))])
        .send()
        .await
        .expect("send");
    let (s, v) = body(r).await;
    assert_eq!(s, 200, "{v}");
    v["totalResults"].as_i64().expect("totalResults")
}

async fn mixed_operations(b: Backend) {
    let app = spawn_app(b).await;
    let kept = create_user(&app, "kept@example.edu").await;
    let doomed = create_user(&app, "doomed@example.edu").await;
    let member = create_user(&app, "member@example.edu").await;
    let (_, _, kept_etag) = get(&app, &format!("/Users/{kept}")).await;
    let (old_group, _) = create_group(&app, "Old Group").await;
    let results = bulk(
        &app,
        json!([
            {"method": "POST", "path": "/Users", "bulkId": "alice", "data": user_body("alice@example.edu")},
            {"method": "POST", "path": "/Groups", "bulkId": "guides", "data": {
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                "displayName": "Tour Guides",
                "members": [{"type": "User", "value": "bulkId:alice"}, {"value": member}]}},
            {"method": "PUT", "path": format!("/Users/{kept}"), "version": kept_etag, "data": {
                "userName": "kept@example.edu", "displayName": "Kept Renamed"}},
            {"method": "PATCH", "path": "/Groups/bulkId:guides", "data": {
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "replace", "path": "displayName", "value": "Senior Guides"}]}},
            {"method": "PATCH", "path": "/Users/bulkId:alice", "data": {
                "Operations": [{"op": "add", "path": "title", "value": "Guide"}]}},
            {"method": "DELETE", "path": format!("/Groups/{old_group}")},
            {"method": "DELETE", "path": format!("/Users/{doomed}")}
        ]),
        None,
    )
    .await;
    assert_eq!(
        statuses(&results),
        ["201", "201", "200", "200", "200", "204", "204"],
        "{results:?}"
    );
    let methods: Vec<&str> = results
        .iter()
        .map(|r| r["method"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        methods,
        ["POST", "POST", "PUT", "PATCH", "PATCH", "DELETE", "DELETE"]
    );
    assert_eq!(
        (results[0]["bulkId"].as_str(), results[1]["bulkId"].as_str()),
        (Some("alice"), Some("guides"))
    );
    assert!(results.iter().all(|r| r.get("response").is_none()));
    let alice = id_of(&results[0]);
    let guides = id_of(&results[1]);
    assert_eq!(
        results[0]["location"],
        format!("{}/Users/{alice}", app.scim_url)
    );
    assert_eq!(
        results[3]["location"],
        format!("{}/Groups/{guides}", app.scim_url)
    );
    assert_eq!(
        results[5]["location"],
        format!("{}/Groups/{old_group}", app.scim_url)
    );
    assert!(results[5].get("version").is_none());

    // What the response says is what the API serves: versions are the ETags.
    let (s, g, etag) = get(&app, &format!("/Groups/{guides}")).await;
    assert_eq!(s, 200);
    assert_eq!(g["displayName"], "Senior Guides");
    assert_eq!(member_ids(&g), sorted(vec![alice.clone(), member.clone()]));
    assert_eq!(etag.as_deref(), results[3]["version"].as_str());
    let (_, u, etag) = get(&app, &format!("/Users/{alice}")).await;
    assert_eq!(
        (u["userName"].as_str(), u["title"].as_str()),
        (Some("alice@example.edu"), Some("Guide"))
    );
    assert_eq!(etag.as_deref(), results[4]["version"].as_str());
    let (_, u, etag) = get(&app, &format!("/Users/{kept}")).await;
    assert_eq!(u["displayName"], "Kept Renamed");
    assert_eq!(etag.as_deref(), results[2]["version"].as_str());
    assert_ne!(etag, kept_etag);
    assert_eq!(get(&app, &format!("/Groups/{old_group}")).await.0, 404);
    assert_eq!(get(&app, &format!("/Users/{doomed}")).await.0, 404);
}
crate::both_backends!(mixed_post_put_patch_delete, super::mixed_operations);

async fn forward_references(b: Backend) {
    let app = spawn_app(b).await;
    // The group comes first and names users created later; the second user's
    // manager is the first one (also a forward reference from the group's view).
    let results = bulk(
        &app,
        json!([
            {"method": "POST", "path": "/Groups", "bulkId": "team", "data": {
                "displayName": "Team", "members": [{"value": "bulkId:lead"}, {"value": "bulkId:dev"}]}},
            {"method": "PATCH", "path": "/Users/bulkId:dev", "data": {
                "Operations": [{"op": "replace", "path": "nickName", "value": "Dev"}]}},
            {"method": "POST", "path": "/Users", "bulkId": "dev", "data": {
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE],
                "userName": "dev@example.edu",
                ENTERPRISE: {"employeeNumber": "2", "manager": {"value": "bulkId:lead"}}}},
            {"method": "POST", "path": "/Users", "bulkId": "lead", "data": user_body("lead@example.edu")}
        ]),
        None,
    )
    .await;
    // Results come back in the request's order, whatever order they ran in.
    assert_eq!(
        statuses(&results),
        ["201", "200", "201", "201"],
        "{results:?}"
    );
    let bulk_ids: Vec<Option<&str>> = results.iter().map(|r| r["bulkId"].as_str()).collect();
    assert_eq!(bulk_ids, [Some("team"), None, Some("dev"), Some("lead")]);
    let (team, dev, lead) = (id_of(&results[0]), id_of(&results[2]), id_of(&results[3]));
    assert_eq!(id_of(&results[1]), dev);
    let (_, g, _) = get(&app, &format!("/Groups/{team}")).await;
    assert_eq!(member_ids(&g), sorted(vec![dev.clone(), lead.clone()]));
    let (_, u, etag) = get(&app, &format!("/Users/{dev}")).await;
    assert_eq!(u[ENTERPRISE]["manager"]["value"], lead.as_str());
    assert_eq!(u["nickName"], "Dev");
    assert_eq!(etag.as_deref(), results[1]["version"].as_str());
    // No "bulkId:" string reached the database.
    assert!(!app.database_contains("bulkId:"));
}
crate::both_backends!(forward_references_resolve, super::forward_references);

async fn circular_references(b: Backend) {
    let app = spawn_app(b).await;
    // RFC 7644 §3.7.1: two groups that contain each other are resolved.
    let results = bulk(
        &app,
        json!([
            {"method": "POST", "path": "/Groups", "bulkId": "qwerty", "data": {
                "displayName": "Group A", "members": [{"type": "Group", "value": "bulkId:ytrewq"}]}},
            {"method": "POST", "path": "/Groups", "bulkId": "ytrewq", "data": {
                "displayName": "Group B", "members": [{"type": "Group", "value": "bulkId:qwerty"}]}}
        ]),
        None,
    )
    .await;
    assert_eq!(statuses(&results), ["201", "201"], "{results:?}");
    let (a, bb) = (id_of(&results[0]), id_of(&results[1]));
    let (_, ga, etag_a) = get(&app, &format!("/Groups/{a}")).await;
    let (_, gb, _) = get(&app, &format!("/Groups/{bb}")).await;
    assert_eq!(member_ids(&ga), vec![bb.clone()]);
    assert_eq!(member_ids(&gb), vec![a.clone()]);
    assert_eq!(ga["members"][0]["type"], "Group");
    // The version reported is the one after the members were added.
    assert_eq!(etag_a.as_deref(), results[0]["version"].as_str());

    // Users whose managers form a cycle cannot be created without the other:
    // both fail with 409 (no scimType: RFC 7644 names none), and neither exists.
    let results = bulk(
        &app,
        json!([
            {"method": "POST", "path": "/Users", "bulkId": "u1", "data": {
                "userName": "cyc1@example.edu", ENTERPRISE: {"manager": {"value": "bulkId:u2"}}}},
            {"method": "POST", "path": "/Users", "bulkId": "u2", "data": {
                "userName": "cyc2@example.edu", ENTERPRISE: {"manager": {"value": "bulkId:u1"}}}},
            {"method": "POST", "path": "/Users", "bulkId": "ok", "data": user_body("acyclic@example.edu")}
        ]),
        None,
    )
    .await;
    assert_eq!(statuses(&results), ["409", "409", "201"], "{results:?}");
    let detail = "circular bulkId reference among Operations[0] (bulkId 'u1'), Operations[1] (bulkId 'u2') cannot be resolved: a cycle can be broken only through group members (each group is created first, its members are added afterwards)";
    for r in &results[..2] {
        assert_eq!(r["response"]["detail"], detail);
        assert_eq!(r["response"]["status"], "409");
        assert!(r["response"].get("scimType").is_none(), "{r}");
        assert!(r.get("location").is_none(), "a failed POST has no location");
    }
    assert_eq!(user_count(&app, "cyc1@example.edu").await, 0);
    assert_eq!(user_count(&app, "cyc2@example.edu").await, 0);
    assert_eq!(user_count(&app, "acyclic@example.edu").await, 1);

    // A resolvable cycle whose partner fails: the other group is not kept.
    let results = bulk(
        &app,
        json!([
            {"method": "POST", "path": "/Groups", "bulkId": "x", "data": {
                "displayName": "Group X", "members": [{"value": "bulkId:y"}]}},
            {"method": "POST", "path": "/Groups", "bulkId": "y", "data": {
                "displayName": "Group A", "members": [{"value": "bulkId:x"}]}}
        ]),
        None,
    )
    .await;
    assert_eq!(statuses(&results), ["409", "409"], "{results:?}");
    assert_eq!(results[1]["response"]["scimType"], "uniqueness");
    assert_eq!(
        results[0]["response"]["detail"],
        "circular bulkId reference with Operations[1] (bulkId 'y') could not be resolved: that operation failed with status 409, so this group was not created"
    );
    assert!(results[0].get("location").is_none());
    assert_eq!(group_count(&app, "Group X").await, 0);
    // Group A is untouched: still exactly its one member.
    let (_, ga, _) = get(&app, &format!("/Groups/{a}")).await;
    assert_eq!(member_ids(&ga), vec![bb]);
}
crate::both_backends!(circular_reference, super::circular_references);

async fn invalid_operations_and_references(b: Backend) {
    let app = spawn_app(b).await;
    create_user(&app, "taken@example.edu").await;
    let results = bulk(
        &app,
        json!([
            {"method": "PATCH", "path": "/Groups/bulkId:nope", "data": {"Operations": [{"op": "remove", "path": "members"}]}},
            {"method": "POST", "path": "/Users", "bulkId": "dupe", "data": user_body("taken@example.edu")},
            {"method": "POST", "path": "/Groups", "bulkId": "g", "data": {"displayName": "Never", "members": [{"value": "bulkId:dupe"}]}},
            {"method": "GET", "path": "/Users"},
            {"method": "DELETE"},
            {"method": "POST", "path": "/Users", "data": user_body("nobulk@example.edu")},
            {"method": "PUT", "path": "/Users/abc"},
            {"method": "PUT", "path": "/Users", "data": {"userName": "x"}},
            {"method": "POST", "path": "/Users", "bulkId": "bad", "data": {"userName": "bad@example.edu", "active": "perhaps"}},
            {"method": "POST", "path": "/Users", "bulkId": "good", "data": user_body("good@example.edu")},
            {"method": "DELETE", "path": "/Users/00000000-0000-0000-0000-000000000000"}
        ]),
        None,
    )
    .await;
    let expected: [(&str, Option<&str>, &str); 11] = [
        (
            "400",
            Some("invalidValue"),
            "'bulkId:nope' refers to no POST operation of this request (no operation has bulkId 'nope')",
        ),
        (
            "409",
            Some("uniqueness"),
            "a user with this userName already exists",
        ),
        (
            "409",
            None,
            "'bulkId:dupe' cannot be resolved: Operations[1] (bulkId 'dupe') failed with status 409, so this operation was not performed",
        ),
        (
            "400",
            Some("invalidValue"),
            "'method' must be POST, PUT, PATCH or DELETE, got 'GET'",
        ),
        (
            "400",
            Some("invalidSyntax"),
            "'path' is required: /Users/{id} or /Groups/{id}",
        ),
        (
            "400",
            Some("invalidSyntax"),
            "'bulkId' is required for a POST operation",
        ),
        (
            "400",
            Some("invalidSyntax"),
            "'data' is required for a PUT operation",
        ),
        (
            "400",
            Some("invalidPath"),
            "invalid 'path' '/Users': a PUT's path names one resource, as /Users/{id}",
        ),
        ("400", Some("invalidValue"), "'active' must be a boolean"),
        ("201", None, ""),
        (
            "404",
            None,
            "no user with id 00000000-0000-0000-0000-000000000000",
        ),
    ];
    assert_eq!(results.len(), expected.len(), "{results:?}");
    for (i, (r, (status, scim_type, detail))) in results.iter().zip(expected).enumerate() {
        assert_eq!(r["status"], status, "Operations[{i}]: {r}");
        if status == "201" {
            continue;
        }
        assert_eq!(r["response"]["status"], status, "Operations[{i}]: {r}");
        assert_eq!(
            r["response"]["schemas"],
            json!(["urn:ietf:params:scim:api:messages:2.0:Error"])
        );
        assert_eq!(
            r["response"]["scimType"].as_str(),
            scim_type,
            "Operations[{i}]: {r}"
        );
        let d = r["response"]["detail"].as_str().unwrap_or_default();
        assert!(d.starts_with(detail), "Operations[{i}]: {d}");
    }
    // Invalid methods are echoed as sent; a failed non-POST keeps its location.
    assert_eq!(results[3]["method"], "GET");
    assert_eq!(
        results[10]["location"],
        format!(
            "{}/Users/00000000-0000-0000-0000-000000000000",
            app.scim_url
        )
    );
    assert!(results[0].get("location").is_none() && results[1].get("location").is_none());
    // The failed operations wrote nothing; the good one is committed.
    assert_eq!(group_count(&app, "Never").await, 0);
    assert_eq!(user_count(&app, "taken@example.edu").await, 1);
    assert_eq!(user_count(&app, "nobulk@example.edu").await, 0);
    assert_eq!(user_count(&app, "bad@example.edu").await, 0);
    assert_eq!(user_count(&app, "good@example.edu").await, 1);

    // A malformed envelope is one 400 for the whole request.
    for (req, scim_type, detail) in [
        (
            json!({"Operations": "all of them"}),
            "invalidSyntax",
            "'Operations' must be an array of operations",
        ),
        (
            json!({"schemas": [BULK_REQUEST]}),
            "invalidSyntax",
            "a BulkRequest needs an 'Operations' array",
        ),
        (
            json!({"Operations": [], "failOnErrors": -1}),
            "invalidValue",
            "'failOnErrors' must be a positive integer, got -1",
        ),
        (
            json!(["not", "an", "object"]),
            "invalidSyntax",
            "a BulkRequest must be a JSON object",
        ),
    ] {
        let (s, v) = bulk_raw(&app, &req).await;
        assert_eq!(
            (s, v["scimType"].as_str(), v["detail"].as_str()),
            (400, Some(scim_type), Some(detail)),
            "{req}"
        );
    }
    // An empty request is valid, and does nothing.
    assert!(bulk(&app, json!([]), None).await.is_empty());
    let (s, v) = body(
        app.req(Method::POST, "/Bulk")
            .body("{\"Operations\": [")
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!((s, v["scimType"].as_str()), (400, Some("invalidSyntax")));
    // Other methods, and callers without a token, get the usual errors.
    assert_eq!(
        body(app.req(Method::GET, "/Bulk").send().await.expect("send"))
            .await
            .0,
        405
    );
    let (s, _) = body(
        app.client
            .post(app.url("/Bulk"))
            .json(&json!({"Operations": [{"method": "POST", "path": "/Users", "bulkId": "x", "data": user_body("anon@example.edu")}]}))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(s, 401);
    assert_eq!(user_count(&app, "anon@example.edu").await, 0);
}
crate::both_backends!(
    invalid_operations_and_unknown_bulk_ids,
    super::invalid_operations_and_references
);

async fn fail_on_errors(b: Backend) {
    let app = spawn_app(b).await;
    let missing = "/Users/00000000-0000-0000-0000-000000000001";
    let results = bulk(
        &app,
        json!([
            {"method": "POST", "path": "/Users", "bulkId": "a", "data": user_body("foe-a@example.edu")},
            {"method": "DELETE", "path": missing},
            {"method": "POST", "path": "/Users", "bulkId": "b", "data": user_body("foe-b@example.edu")},
            {"method": "PATCH", "path": missing, "data": {"Operations": [{"op": "add", "path": "title", "value": "x"}]}},
            {"method": "POST", "path": "/Users", "bulkId": "c", "data": user_body("foe-c@example.edu")}
        ]),
        Some(2),
    )
    .await;
    // Stopped at the second error: the fifth operation was never processed.
    assert_eq!(
        statuses(&results),
        ["201", "404", "201", "404"],
        "{results:?}"
    );
    assert_eq!(user_count(&app, "foe-b@example.edu").await, 1);
    assert_eq!(user_count(&app, "foe-c@example.edu").await, 0);

    // failOnErrors counts in execution order: a forward reference runs its POST
    // first, so that POST's failure is the first error and stops everything.
    let results = bulk(
        &app,
        json!([
            {"method": "POST", "path": "/Users", "bulkId": "d", "data": user_body("foe-d@example.edu")},
            {"method": "POST", "path": "/Groups", "bulkId": "g", "data": {"displayName": "FoE", "members": [{"value": "bulkId:bad"}]}},
            {"method": "POST", "path": "/Users", "bulkId": "bad", "data": user_body("foe-a@example.edu")}
        ]),
        Some(1),
    )
    .await;
    assert_eq!(statuses(&results), ["201", "409"], "{results:?}");
    let bulk_ids: Vec<Option<&str>> = results.iter().map(|r| r["bulkId"].as_str()).collect();
    assert_eq!(bulk_ids, [Some("d"), Some("bad")]);
    assert_eq!(group_count(&app, "FoE").await, 0);
}
crate::both_backends!(fail_on_errors_stops_processing, super::fail_on_errors);

async fn limits(b: Backend) {
    let app = spawn_app_with(
        b,
        Options {
            bulk_max_operations: 3,
            bulk_max_payload_bytes: 2048,
            ..Default::default()
        },
    )
    .await;
    let (_, spc, _) = get(&app, "/ServiceProviderConfig").await;
    assert_eq!(
        spc["bulk"],
        json!({"supported": true, "maxOperations": 3, "maxPayloadSize": 2048})
    );
    let post = |n: usize| json!({"method": "POST", "path": "/Users", "bulkId": format!("u{n}"), "data": {"userName": format!("lim{n}@example.edu")}});
    let (s, v) = bulk_raw(
        &app,
        &json!({"schemas": [BULK_REQUEST], "Operations": [post(1), post(2), post(3), post(4)]}),
    )
    .await;
    assert_eq!(s, 413, "{v}");
    assert_eq!(v["status"], "413");
    assert_eq!(
        v["detail"],
        "the bulk request has 4 operations, more than maxOperations (3)"
    );
    assert_eq!(user_count(&app, "lim1@example.edu").await, 0);
    // Within maxOperations but over maxPayloadSize (the body exceeds 2048 bytes).
    let mut big = post(5);
    big["data"]["title"] = json!("t".repeat(2100));
    let (s, v) = bulk_raw(
        &app,
        &json!({"schemas": [BULK_REQUEST], "Operations": [big]}),
    )
    .await;
    assert_eq!(s, 413, "{v}");
    assert_eq!(
        v["detail"],
        "the size of the bulk request exceeds maxPayloadSize (2048 bytes)"
    );
    assert_eq!(user_count(&app, "lim5@example.edu").await, 0);
    // At the limits, it runs.
    let results = bulk(&app, json!([post(1), post(2), post(3)]), None).await;
    assert_eq!(statuses(&results), ["201", "201", "201"]);
}
crate::both_backends!(max_operations_and_payload_size, super::limits);

async fn version_mismatch(b: Backend) {
    let app = spawn_app(b).await;
    let id = create_user(&app, "ver@example.edu").await;
    let (gid, g_etag) = create_group(&app, "Versioned").await;
    let (_, _, etag) = get(&app, &format!("/Users/{id}")).await;
    let etag = etag.expect("etag");
    let stale = "W/\"999\"";
    let results = bulk(
        &app,
        json!([
            {"method": "PUT", "path": format!("/Users/{id}"), "version": stale, "data": {"userName": "ver@example.edu", "displayName": "Stale"}},
            {"method": "PATCH", "path": format!("/Groups/{gid}"), "version": stale, "data": {"Operations": [{"op": "replace", "path": "displayName", "value": "Stale"}]}},
            {"method": "DELETE", "path": format!("/Groups/{gid}"), "version": stale},
            {"method": "PATCH", "path": format!("/Users/{id}"), "version": etag, "data": {"Operations": [{"op": "replace", "path": "displayName", "value": "Fresh"}]}},
            {"method": "PATCH", "path": format!("/Groups/{gid}"), "version": g_etag, "data": {"Operations": [{"op": "replace", "path": "displayName", "value": "Fresh Group"}]}}
        ]),
        None,
    )
    .await;
    assert_eq!(
        statuses(&results),
        ["412", "412", "412", "200", "200"],
        "{results:?}"
    );
    assert_eq!(
        results[0]["response"]["detail"],
        format!("If-Match {stale} does not match the current version {etag}")
    );
    assert_eq!(
        results[0]["location"],
        format!("{}/Users/{id}", app.scim_url)
    );
    let (_, u, _) = get(&app, &format!("/Users/{id}")).await;
    assert_eq!(u["displayName"], "Fresh");
    let (s, g, _) = get(&app, &format!("/Groups/{gid}")).await;
    assert_eq!((s, g["displayName"].as_str()), (200, Some("Fresh Group")));
}
crate::both_backends!(version_mismatch_is_412, super::version_mismatch);

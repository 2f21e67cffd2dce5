//! Identity evidence (issue 14): a recycled userName never inherits another
//! person — not by POST onto a suspended holder, not by PUT/PATCH/Bulk replacing
//! a suspended user's externalId, not after disposal, not by a rename, not at
//! the gate. Both backends, through the HTTP surfaces.

use crate::common::{Backend, Options, TestApp, spawn_app_with};
use crate::{body, patch_body, user_body};
use custodian::auth::Scope;
use reqwest::Method;
use serde_json::{Value, json};

const HEIR: &str = "heir@example.edu";
const ISSUER: &str = "https://idp.example.edu";

async fn app_with(b: Backend, extra: &str) -> TestApp {
    let policy = format!("[default]\ntargets = [\"user:{HEIR}\"]\n{extra}");
    let app = spawn_app_with(
        b,
        Options {
            policy: Some(policy),
            ..Default::default()
        },
    )
    .await;
    post(&app, HEIR, None).await;
    app
}

fn person(user_name: &str, external_id: Option<&str>) -> Value {
    let mut u = user_body(user_name);
    if let Some(x) = external_id {
        u["externalId"] = json!(x);
    }
    u
}

async fn post(app: &TestApp, user_name: &str, external_id: Option<&str>) -> (u16, Value) {
    body(
        app.req(Method::POST, "/Users")
            .json(&person(user_name, external_id))
            .send()
            .await
            .expect("send"),
    )
    .await
}

async fn send(app: &TestApp, method: Method, path: &str, v: Option<Value>) -> (u16, Value) {
    let mut r = app.req(method, path);
    if let Some(v) = v {
        r = r.json(&v);
    }
    body(r.send().await.expect("send")).await
}

async fn admin(app: &TestApp, method: Method, path: &str, v: Option<Value>) -> (u16, Value) {
    let mut r = app
        .client
        .request(method, format!("{}/admin/v1{path}", app.addr))
        .bearer_auth(app.token_for("default", Scope::Admin));
    if let Some(v) = v {
        r = r.json(&v);
    }
    body(r.send().await.expect("send")).await
}

async fn gate(app: &TestApp, req: Value) -> Value {
    let (s, v) = body(
        app.client
            .post(format!("{}/gate/v1/check", app.addr))
            .bearer_auth(app.token_for("default", Scope::Gate))
            .json(&req)
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    v
}

async fn owner_of(app: &TestApp, item: &str) -> String {
    let (s, v) = admin(
        app,
        Method::GET,
        &format!("/content/recording/{item}"),
        None,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    v["owner"].as_str().unwrap_or_default().to_string()
}

async fn audit_actions(app: &TestApp) -> Vec<String> {
    let (s, v) = admin(app, Method::GET, "/audit?count=1000", None).await;
    assert_eq!(s, 200, "{v}");
    v["Resources"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["action"].as_str().map(str::to_string))
        .collect()
}

/// A person with a recording and a registered SSO subject, created active.
async fn owner(app: &TestApp, user_name: &str, external_id: &str, item: &str) -> String {
    let (s, v) = post(app, user_name, Some(external_id)).await;
    assert_eq!(s, 201, "{v}");
    let id = v["id"].as_str().expect("id").to_string();
    let (s, v) = admin(
        app,
        Method::PUT,
        &format!("/content/recording/{item}"),
        Some(json!({"owner": id, "title": "Lecture"})),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    let (s, v) = admin(
        app,
        Method::PUT,
        &format!("/users/{id}/sso-subjects"),
        Some(json!({"issuer": ISSUER, "subject": format!("sub-{external_id}")})),
    )
    .await;
    assert!(matches!(s, 200 | 201 | 204), "{s} {v}");
    id
}

async fn suspend(app: &TestApp, id: &str) {
    let (s, v) = send(
        app,
        Method::PATCH,
        &format!("/Users/{id}"),
        Some(patch_body(
            json!([{"op": "Replace", "path": "active", "value": "False"}]),
        )),
    )
    .await;
    assert_eq!(s, 200, "{v}");
}

async fn scheduled(app: &TestApp) -> usize {
    let (s, v) = admin(app, Method::GET, "/disposals?state=scheduled", None).await;
    assert_eq!(s, 200, "{v}");
    v["Resources"].as_array().map_or(0, Vec::len)
}

fn sso(external_id: &str) -> Value {
    json!({"issuer": ISSUER, "subject": format!("sub-{external_id}")})
}

/// The suspended person is exactly as before: same externalId, still
/// suspended, still owning the content, still scheduled, still denied.
async fn untouched(app: &TestApp, id: &str, user_name: &str, external_id: &str, item: &str) {
    let (s, v) = send(app, Method::GET, &format!("/Users/{id}"), None).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["externalId"], external_id, "{v}");
    assert_eq!(v["userName"], user_name, "{v}");
    assert_eq!(v["active"], false, "{v}");
    assert_eq!(owner_of(app, item).await, id);
    assert_eq!(scheduled(app).await, 1, "the disposal is still scheduled");
    let g = gate(app, json!({"sso": sso(external_id)})).await;
    assert_eq!(
        (g["decision"].as_str(), g["reason"].as_str()),
        (Some("deny"), Some("suspended")),
        "{g}"
    );
}

async fn post_onto_suspended_holder(b: Backend) {
    let app = app_with(b, "").await;
    let p1 = owner(&app, "recycled@example.edu", "obj-1", "r1").await;
    suspend(&app, &p1).await;
    // A different person hired into the recycled UPN.
    let (s, v) = post(&app, "Recycled@Example.edu", Some("obj-2")).await;
    assert_eq!(
        (s, v["scimType"].as_str()),
        (409, Some("uniqueness")),
        "{v}"
    );
    let detail = v["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("suspended") && detail.contains("pending disposal"),
        "{detail}"
    );
    untouched(&app, &p1, "recycled@example.edu", "obj-1", "r1").await;
    // The same person (equal externalId) restores in place.
    let (s, v) = post(&app, "recycled@example.edu", Some("obj-1")).await;
    assert_eq!((s, v["id"].as_str()), (201, Some(p1.as_str())), "{v}");
    assert_eq!(scheduled(&app).await, 0, "the restore cancels the schedule");
    suspend(&app, &p1).await;
    // Okta's re-POST with no externalId: the userName decides; the stored one stays.
    let (s, v) = post(&app, "recycled@example.edu", None).await;
    assert_eq!((s, v["id"].as_str()), (201, Some(p1.as_str())), "{v}");
    assert_eq!(
        v["externalId"], "obj-1",
        "a restore without externalId keeps the stored one"
    );
    assert_eq!(owner_of(&app, "r1").await, p1);
    let g = gate(&app, json!({"sso": sso("obj-1")})).await;
    assert_eq!(
        (g["decision"].as_str(), g["userId"].as_str()),
        (Some("allow"), Some(p1.as_str())),
        "{g}"
    );
}
crate::both_backends!(
    identity_post_onto_suspended,
    super::post_onto_suspended_holder
);

async fn dispose_previous_on_post(b: Backend) {
    let app = app_with(b, "identity = { on_reuse = \"dispose_previous\" }\n").await;
    let p1 = owner(&app, "recycled@example.edu", "obj-1", "r1").await;
    suspend(&app, &p1).await;
    let heir = gate(&app, json!({"userName": HEIR})).await["userId"]
        .as_str()
        .expect("heir")
        .to_string();
    let (s, v) = post(&app, "recycled@example.edu", Some("obj-2")).await;
    assert_eq!(s, 201, "{v}");
    let p2 = v["id"].as_str().expect("id").to_string();
    assert_ne!(p2, p1, "a new person, not person 1's record");
    assert_eq!(v["externalId"], "obj-2");
    // Person 1 was disposed by the policy: gone, content moved to the heir, not to person 2.
    let (s, _) = send(&app, Method::GET, &format!("/Users/{p1}"), None).await;
    assert_eq!(s, 404);
    assert_eq!(owner_of(&app, "r1").await, heir);
    let (_, done) = admin(&app, Method::GET, "/disposals?state=done", None).await;
    assert_eq!(
        done["Resources"].as_array().map(Vec::len),
        Some(1),
        "{done}"
    );
    // Person 1's SSO subject and externalId stay denied; person 2 is allowed.
    let g = gate(&app, json!({"sso": sso("obj-1")})).await;
    assert_eq!(
        (g["decision"].as_str(), g["reason"].as_str()),
        (Some("deny"), Some("deprovisioned")),
        "{g}"
    );
    let g = gate(&app, json!({"externalId": "obj-1"})).await;
    assert_eq!(g["reason"], "deprovisioned", "{g}");
    let g = gate(
        &app,
        json!({"userName": "recycled@example.edu", "externalId": "obj-2"}),
    )
    .await;
    assert_eq!(
        (g["decision"].as_str(), g["userId"].as_str()),
        (Some("allow"), Some(p2.as_str())),
        "{g}"
    );
    let actions = audit_actions(&app).await;
    assert!(
        actions.iter().filter(|a| *a == "identity.reused").count() >= 2,
        "{actions:?}"
    );

    // A held disposal keeps the holder: 409, nothing changes.
    let p3 = owner(&app, "held@example.edu", "obj-3", "r3").await;
    let (s, _) = admin(&app, Method::PUT, &format!("/users/{p3}/legal-hold"), None).await;
    assert_eq!(s, 204);
    suspend(&app, &p3).await;
    let (_, before) = admin(&app, Method::GET, "/disposals?state=scheduled", None).await;
    let (s, v) = post(&app, "held@example.edu", Some("obj-4")).await;
    assert_eq!(
        (s, v["scimType"].as_str()),
        (409, Some("uniqueness")),
        "{v}"
    );
    assert!(
        v["detail"].as_str().is_some_and(|d| d.contains("held")),
        "{v}"
    );
    // The refusal changed nothing: the holder's disposal is still scheduled
    // (not parked as held), and no disposal.held was announced.
    let (_, after) = admin(&app, Method::GET, "/disposals?state=scheduled", None).await;
    assert_eq!(before, after);
    let (_, held) = admin(&app, Method::GET, "/disposals?state=held", None).await;
    assert_eq!(
        held["Resources"].as_array().map(Vec::len),
        Some(0),
        "{held}"
    );
    let (s, v) = send(&app, Method::GET, &format!("/Users/{p3}"), None).await;
    assert_eq!(
        (s, v["externalId"].as_str(), v["active"].as_bool()),
        (200, Some("obj-3"), Some(false)),
        "{v}"
    );
    assert_eq!(owner_of(&app, "r3").await, p3);
}
crate::both_backends!(
    identity_dispose_previous_post,
    super::dispose_previous_on_post
);

async fn dispose_previous_under_reject(b: Backend) {
    let app = app_with(
        b,
        "identity = { on_reuse = \"dispose_previous\" }\ntombstone = { on_scim_create = \"reject\" }\n",
    )
    .await;
    // A third person's old address, tombstoned.
    let gone = owner(&app, "gone@example.edu", "obj-g", "rg").await;
    let (s, _) = send(&app, Method::DELETE, &format!("/Users/{gone}"), None).await;
    assert_eq!(s, 204);
    let p1 = owner(&app, "recycled@example.edu", "obj-1", "r1").await;
    suspend(&app, &p1).await;
    // The new person carries the tombstoned address: refused before anyone is
    // disposed for them.
    let mut u = person("recycled@example.edu", Some("obj-2"));
    u["emails"] = json!([{"value": "gone@example.edu", "primary": true}]);
    let (s, v) = send(&app, Method::POST, "/Users", Some(u)).await;
    assert_eq!(
        (s, v["scimType"].as_str()),
        (409, Some("uniqueness")),
        "{v}"
    );
    untouched(&app, &p1, "recycled@example.edu", "obj-1", "r1").await;
    // Without it: the holder is disposed and the new person created, although
    // the policy rejects re-creations: the reuse tombstone never blocks them.
    let (s, v) = post(&app, "recycled@example.edu", Some("obj-2")).await;
    assert_eq!(s, 201, "{v}");
    assert_ne!(v["id"].as_str(), Some(p1.as_str()));
    // The PUT/PATCH way: 404, then the IdP's re-POST succeeds.
    let p7 = owner(&app, "person7@example.edu", "obj-7", "r7").await;
    suspend(&app, &p7).await;
    let takeover =
        patch_body(json!([{"op": "replace", "value": {"externalId": "obj-8", "active": true}}]));
    let (s, v) = send(&app, Method::PATCH, &format!("/Users/{p7}"), Some(takeover)).await;
    assert_eq!(s, 404, "{v}");
    let (s, v) = post(&app, "person7@example.edu", Some("obj-8")).await;
    assert_eq!(s, 201, "the re-POST the 404 asks for: {v}");
    // The leaver coming back is still refused under reject.
    let (s, v) = post(&app, "someone@example.edu", Some("obj-7")).await;
    assert_eq!(
        (s, v["scimType"].as_str()),
        (409, Some("uniqueness")),
        "{v}"
    );
}
crate::both_backends!(
    identity_dispose_previous_reject,
    super::dispose_previous_under_reject
);

async fn writes_onto_suspended_user(b: Backend) {
    let app = app_with(b, "").await;
    let p7 = owner(&app, "person7@example.edu", "obj-7", "r7").await;
    suspend(&app, &p7).await;
    // Entra's matching finds the suspended record by userName and PATCHes it.
    let takeover = patch_body(json!([
        {"op": "Replace", "path": "externalId", "value": "obj-8"},
        {"op": "Replace", "path": "active", "value": "True"}
    ]));
    let (s, v) = send(
        &app,
        Method::PATCH,
        &format!("/Users/{p7}"),
        Some(takeover.clone()),
    )
    .await;
    assert_eq!(
        (s, v["scimType"].as_str()),
        (409, Some("uniqueness")),
        "{v}"
    );
    untouched(&app, &p7, "person7@example.edu", "obj-7", "r7").await;
    // The same by PUT, and by Bulk.
    let mut put = person("person7@example.edu", Some("obj-8"));
    put["active"] = json!(true);
    let (s, v) = send(&app, Method::PUT, &format!("/Users/{p7}"), Some(put)).await;
    assert_eq!(
        (s, v["scimType"].as_str()),
        (409, Some("uniqueness")),
        "{v}"
    );
    let bulk = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
        "Operations": [{"method": "PATCH", "path": format!("/Users/{p7}"), "data": takeover}]
    });
    let (s, v) = send(&app, Method::POST, "/Bulk", Some(bulk)).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["Operations"][0]["status"], "409", "{v}");
    untouched(&app, &p7, "person7@example.edu", "obj-7", "r7").await;
    // Entra's path-less shape.
    let pathless =
        patch_body(json!([{"op": "Replace", "value": {"ExternalId": "obj-8", "active": "True"}}]));
    let (s, v) = send(&app, Method::PATCH, &format!("/Users/{p7}"), Some(pathless)).await;
    assert_eq!(
        (s, v["scimType"].as_str()),
        (409, Some("uniqueness")),
        "{v}"
    );
    untouched(&app, &p7, "person7@example.edu", "obj-7", "r7").await;
    // Reactivating without an externalId is the same person coming back.
    let back = patch_body(json!([{"op": "Replace", "path": "active", "value": "True"}]));
    let (s, v) = send(&app, Method::PATCH, &format!("/Users/{p7}"), Some(back)).await;
    assert_eq!(
        (s, v["active"].as_bool(), v["externalId"].as_str()),
        (200, Some(true), Some("obj-7")),
        "{v}"
    );
    // An active user's externalId may change, and it is audited.
    let change = patch_body(json!([{"op": "Replace", "path": "externalId", "value": "obj-7b"}]));
    let (s, v) = send(&app, Method::PATCH, &format!("/Users/{p7}"), Some(change)).await;
    assert_eq!((s, v["externalId"].as_str()), (200, Some("obj-7b")), "{v}");
    assert!(
        audit_actions(&app)
            .await
            .iter()
            .any(|a| a == "user.external_id_changed")
    );
    // A PUT without externalId (an IdP replacing the profile) keeps it, so it
    // cannot be erased and the record taken over after a suspension.
    let (s, v) = send(
        &app,
        Method::PUT,
        &format!("/Users/{p7}"),
        Some(person("person7@example.edu", None)),
    )
    .await;
    assert_eq!((s, v["externalId"].as_str()), (200, Some("obj-7b")), "{v}");
    // Removing it takes an explicit PATCH remove (RFC 7644 §3.5.2.2).
    let remove = patch_body(json!([{"op": "remove", "path": "externalId"}]));
    let (s, v) = send(&app, Method::PATCH, &format!("/Users/{p7}"), Some(remove)).await;
    assert_eq!((s, v.get("externalId")), (200, None), "{v}");
}
crate::both_backends!(
    identity_writes_onto_suspended,
    super::writes_onto_suspended_user
);

async fn dispose_previous_on_write(b: Backend) {
    let app = app_with(b, "identity = { on_reuse = \"dispose_previous\" }\n").await;
    let p7 = owner(&app, "person7@example.edu", "obj-7", "r7").await;
    suspend(&app, &p7).await;
    let takeover = patch_body(json!([
        {"op": "Replace", "path": "externalId", "value": "obj-8"},
        {"op": "Replace", "path": "active", "value": "True"}
    ]));
    let (s, v) = send(&app, Method::PATCH, &format!("/Users/{p7}"), Some(takeover)).await;
    assert_eq!(
        s, 404,
        "the holder is disposed and the IdP is told to re-POST: {v}"
    );
    let (s, _) = send(&app, Method::GET, &format!("/Users/{p7}"), None).await;
    assert_eq!(s, 404);
    assert_ne!(owner_of(&app, "r7").await, p7);
    // The IdP re-POSTs the new person: a new id, nothing of person 7's.
    let (s, v) = post(&app, "person7@example.edu", Some("obj-8")).await;
    assert_eq!(s, 201, "{v}");
    let p8 = v["id"].as_str().expect("id").to_string();
    assert_ne!(p8, p7);
    assert_ne!(owner_of(&app, "r7").await, p8);
    let g = gate(&app, json!({"sso": sso("obj-7")})).await;
    assert_eq!(g["reason"], "deprovisioned", "{g}");
}
crate::both_backends!(
    identity_dispose_previous_write,
    super::dispose_previous_on_write
);

async fn disposed_reuse(b: Backend) {
    for mode in ["new", "relink", "reject"] {
        let app = app_with(
            b,
            &format!("tombstone = {{ on_scim_create = \"{mode}\" }}\n"),
        )
        .await;
        let same = owner(&app, "same@example.edu", "obj-3", "r3").await;
        let other = owner(&app, "other@example.edu", "obj-5", "r5").await;
        let okta = owner(&app, "okta@example.edu", "obj-6", "r6").await;
        for id in [&same, &other, &okta] {
            let (s, _) = send(&app, Method::DELETE, &format!("/Users/{id}"), None).await;
            assert_eq!(s, 204);
        }
        let heir_r3 = owner_of(&app, "r3").await;
        // Evidence agrees: the same externalId.
        let (s, v) = post(&app, "same@example.edu", Some("obj-3")).await;
        // Evidence disagrees: a different externalId in the recycled name.
        let (s2, v2) = post(&app, "other@example.edu", Some("obj-4")).await;
        // No externalId on the new record: the userName decides (agrees).
        let (s3, v3) = post(&app, "okta@example.edu", None).await;
        if mode == "reject" {
            for (s, v) in [(s, &v), (s2, &v2), (s3, &v3)] {
                assert_eq!(
                    (s, v["scimType"].as_str()),
                    (409, Some("uniqueness")),
                    "{mode}: {v}"
                );
            }
            // An admin releases just the recycled name and address: the new person is
            // created, and the leaver's externalId and SSO subject stay denied.
            let (s, r) = admin(
                &app,
                Method::POST,
                "/tombstones:release",
                Some(json!({"userName": "other@example.edu", "email": "other@example.edu"})),
            )
            .await;
            assert_eq!((s, r["released"].as_u64()), (200, Some(2)), "{r}");
            let (s, r) = post(&app, "other@example.edu", Some("obj-4")).await;
            assert_eq!(s, 201, "{r}");
            let g = gate(&app, json!({"sso": sso("obj-5")})).await;
            assert_eq!(g["reason"], "deprovisioned", "{g}");
            let g = gate(&app, json!({"externalId": "obj-5"})).await;
            assert_eq!(g["reason"], "deprovisioned", "{g}");
            assert!(
                v2["detail"]
                    .as_str()
                    .is_some_and(|d| d.contains("different person")),
                "{v2}"
            );
            continue;
        }
        assert_eq!((s, s2, s3), (201, 201, 201), "{mode}: {v} {v2} {v3}");
        let back = v["id"].as_str().expect("id");
        let reuser = v2["id"].as_str().expect("id");
        if mode == "relink" {
            assert_eq!(
                owner_of(&app, "r3").await,
                back,
                "relink hands content back when evidence agrees"
            );
            assert_eq!(owner_of(&app, "r6").await, v3["id"].as_str().expect("id"));
        } else {
            assert_eq!(owner_of(&app, "r3").await, heir_r3);
        }
        assert_ne!(
            owner_of(&app, "r5").await,
            reuser,
            "{mode}: nothing moves to a different person"
        );
        // The agreeing tombstone was lifted: the person's SSO subject is unknown now.
        let g = gate(&app, json!({"sso": sso("obj-3")})).await;
        assert_eq!(g["reason"], "unknown", "{mode}: {g}");
        // The disagreeing one keeps the leaver's old externalId and SSO subject.
        let g = gate(&app, json!({"sso": sso("obj-5")})).await;
        assert_eq!(g["reason"], "deprovisioned", "{mode}: {g}");
        let g = gate(&app, json!({"externalId": "obj-5"})).await;
        assert_eq!(g["reason"], "deprovisioned", "{mode}: {g}");
        // ... but no longer the name the new person carries.
        let g = gate(
            &app,
            json!({"userName": "other@example.edu", "externalId": "obj-4"}),
        )
        .await;
        assert_eq!(
            (g["decision"].as_str(), g["userId"].as_str()),
            (Some("allow"), Some(reuser)),
            "{mode}: {g}"
        );
        assert!(
            audit_actions(&app)
                .await
                .iter()
                .any(|a| a == "identity.reused"),
            "{mode}"
        );
    }
}
crate::both_backends!(identity_disposed_reuse, super::disposed_reuse);

async fn renames_onto_held_identifiers(b: Backend) {
    for mode in ["new", "relink", "reject"] {
        let app = app_with(
            b,
            &format!("tombstone = {{ on_scim_create = \"{mode}\" }}\n"),
        )
        .await;
        let gone = owner(&app, "gone@example.edu", "obj-g", "rg").await;
        let (s, _) = send(&app, Method::DELETE, &format!("/Users/{gone}"), None).await;
        assert_eq!(s, 204);
        let sus = owner(&app, "sus@example.edu", "obj-s", "rs").await;
        suspend(&app, &sus).await;
        let (s, v) = post(&app, "live@example.edu", Some("obj-l")).await;
        assert_eq!(s, 201, "{v}");
        let live = v["id"].as_str().expect("id").to_string();
        let rename =
            |to: &str| patch_body(json!([{"op": "replace", "path": "userName", "value": to}]));
        // Onto a suspended user's name: taken.
        let (s, v) = send(
            &app,
            Method::PATCH,
            &format!("/Users/{live}"),
            Some(rename("SUS@example.edu")),
        )
        .await;
        assert_eq!(
            (s, v["scimType"].as_str()),
            (409, Some("uniqueness")),
            "{v}"
        );
        // Onto a disposed person's name, by a different person (another externalId).
        let (s, v) = send(
            &app,
            Method::PATCH,
            &format!("/Users/{live}"),
            Some(rename("gone@example.edu")),
        )
        .await;
        if mode == "reject" {
            assert_eq!(
                (s, v["scimType"].as_str()),
                (409, Some("uniqueness")),
                "{v}"
            );
            let (_, now) = send(&app, Method::GET, &format!("/Users/{live}"), None).await;
            assert_eq!(now["userName"], "live@example.edu");
            continue;
        }
        assert_eq!(
            (s, v["userName"].as_str()),
            (200, Some("gone@example.edu")),
            "{v}"
        );
        assert_ne!(
            owner_of(&app, "rg").await,
            live,
            "a rename hands nothing over"
        );
        let g = gate(&app, json!({"externalId": "obj-g"})).await;
        assert_eq!(g["reason"], "deprovisioned", "{g}");
        let g = gate(&app, json!({"userName": "gone@example.edu"})).await;
        assert_eq!(g["userId"].as_str(), Some(live.as_str()), "{g}");
        assert!(
            audit_actions(&app)
                .await
                .iter()
                .any(|a| a == "identity.reused")
        );
        // Another account with no externalId renamed onto a leaver's name is
        // not the leaver: nothing moves, the leaver's SSO subject stays denied.
        let gone2 = owner(&app, "gone2@example.edu", "obj-g2", "rg2").await;
        let (s, _) = send(&app, Method::DELETE, &format!("/Users/{gone2}"), None).await;
        assert_eq!(s, 204);
        let (s, v) = post(&app, "plain@example.edu", None).await;
        assert_eq!(s, 201, "{v}");
        let plain = v["id"].as_str().expect("id").to_string();
        let (s, v) = send(
            &app,
            Method::PATCH,
            &format!("/Users/{plain}"),
            Some(rename("gone2@example.edu")),
        )
        .await;
        assert_eq!(s, 200, "{mode}: {v}");
        assert_ne!(
            owner_of(&app, "rg2").await,
            plain,
            "{mode}: a rename inherits nothing"
        );
        let g = gate(&app, json!({"sso": sso("obj-g2")})).await;
        assert_eq!(g["reason"], "deprovisioned", "{mode}: {g}");
    }
}
crate::both_backends!(identity_renames, super::renames_onto_held_identifiers);

async fn gate_and_external_id_form(b: Backend) {
    let app = app_with(b, "").await;
    // externalId is compared in one form everywhere: trimmed.
    let (s, v) = post(&app, "u@example.edu", Some("  obj-u ")).await;
    assert_eq!((s, v["externalId"].as_str()), (201, Some("obj-u")), "{v}");
    let u = v["id"].as_str().expect("id").to_string();
    let found = crate::filter_users(&app, "externalId eq \"obj-u\"").await;
    assert_eq!(found["totalResults"], 1, "{found}");
    let g = gate(
        &app,
        json!({"userName": "u@example.edu", "externalId": " obj-u"}),
    )
    .await;
    assert_eq!(
        (g["decision"].as_str(), g["userId"].as_str()),
        (Some("allow"), Some(u.as_str())),
        "{g}"
    );
    // Identifiers of people whose externalIds differ do not add up to a login.
    let g = gate(
        &app,
        json!({"userName": "u@example.edu", "externalId": "obj-other"}),
    )
    .await;
    assert_eq!(
        (g["decision"].as_str(), g["reason"].as_str()),
        (Some("deny"), Some("conflict")),
        "{g}"
    );
    // A user without an externalId: the userName decides.
    let (s, v) = post(&app, "noext@example.edu", None).await;
    assert_eq!(s, 201, "{v}");
    let g = gate(
        &app,
        json!({"userName": "noext@example.edu", "externalId": "obj-z"}),
    )
    .await;
    assert_eq!(g["decision"], "allow", "{g}");
}
crate::both_backends!(identity_gate, super::gate_and_external_id_form);

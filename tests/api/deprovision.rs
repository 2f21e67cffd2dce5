//! Deprovisioning acceptance scenarios, end to end through the HTTP surfaces.

use crate::common::{Backend, Options, TestApp, spawn_app_with};
use crate::{body, create_user, patch_body, user_body};
use custodian::auth::Scope;
use reqwest::Method;
use serde_json::{Value, json};

mod delivery;
mod policies;

fn policy_app(b: Backend, policy: &str) -> impl std::future::Future<Output = TestApp> {
    spawn_app_with(
        b,
        Options {
            policy: Some(policy.to_string()),
            ..Default::default()
        },
    )
}

struct Admin<'a> {
    app: &'a TestApp,
    token: String,
}

impl<'a> Admin<'a> {
    fn new(app: &'a TestApp) -> Admin<'a> {
        Admin {
            app,
            token: app.token_for("default", Scope::Admin),
        }
    }
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut r = self
            .app
            .client
            .request(method, format!("{}/admin/v1{path}", self.app.addr))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            r = r.json(&b);
        }
        body_of(r.send().await.expect("send")).await
    }
    async fn put_item(
        &self,
        kind: &str,
        id: &str,
        owner: &str,
        personal_root: bool,
        parent: Option<(&str, &str)>,
    ) {
        let parent = parent.map(|(k, i)| json!({"kind": k, "id": i}));
        let (s, v) = self
            .call(Method::PUT, &format!("/content/{kind}/{id}"), Some(json!({"owner": owner, "title": format!("t-{id}"), "personalRoot": personal_root, "parent": parent})))
            .await;
        assert_eq!(s, 201, "{v}");
    }
    async fn item(&self, kind: &str, id: &str) -> Value {
        let (s, v) = self
            .call(Method::GET, &format!("/content/{kind}/{id}"), None)
            .await;
        assert_eq!(s, 200, "{v}");
        v
    }
}

async fn body_of(r: reqwest::Response) -> (u16, Value) {
    body(r).await
}

async fn gate(app: &TestApp, req: Value) -> Value {
    let t = app.token_for("default", Scope::Gate);
    let (s, v) = body(
        app.client
            .post(format!("{}/gate/v1/check", app.addr))
            .bearer_auth(t)
            .json(&req)
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    v
}

async fn delete_user(app: &TestApp, token: &str, id: &str) {
    let r = app
        .client
        .delete(app.url(&format!("/Users/{id}")))
        .bearer_auth(token)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 204);
}

/// Accepted webhook requests: (head, body).
type Received = std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>>;

async fn review_regressions(b: Backend) {
    let policy = "[default]\nbrake = { max_disposals_per_hour = 1 }\ntargets = [\"caller\"]\ngrace_period = \"0\"\n";
    let app = policy_app(b, policy).await;
    let a = Admin::new(&app);
    let platform = create_user(&app, "platform@example.edu").await;
    // Grace expiry gives content to the user the suspending token acts as.
    let idp = app.token_acting_as("default", Scope::Scim, "platform@example.edu");
    let p1 = create_user(&app, "p1@example.edu").await;
    a.put_item("recording", "g1", &p1, false, None).await;
    let r = app
        .client
        .patch(app.url(&format!("/Users/{p1}")))
        .bearer_auth(&idp)
        .json(&patch_body(
            json!([{"op": "replace", "path": "active", "value": false}]),
        ))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(app.deprov.run_due(&app.db).expect("run"), 1);
    assert_eq!(
        a.item("recording", "g1").await["owner"],
        platform.as_str(),
        "caller stored with the schedule"
    );
    // The brake (1/hour) is now full: a held dispose-now of a suspended person is
    // cancelled by their reactivation, and cannot be released afterwards.
    let p2 = create_user(&app, "p2@example.edu").await;
    a.put_item("recording", "g2", &p2, false, None).await;
    let (s, held) = a
        .call(Method::POST, &format!("/users/{p2}/dispose"), None)
        .await;
    assert_eq!((s, held["reason"].as_str()), (202, Some("brake")), "{held}");
    let d = held["disposalId"].as_str().unwrap_or_default().to_string();
    let r = app
        .req(Method::PATCH, &format!("/Users/{p2}"))
        .json(&patch_body(
            json!([{"op": "replace", "path": "active", "value": true}]),
        ))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 200);
    let (s, _) = a
        .call(Method::POST, &format!("/disposals/{d}/release"), None)
        .await;
    assert_eq!(s, 409, "a cancelled disposal is not released");
    assert_eq!(a.item("recording", "g2").await["owner"], p2.as_str());
    let (s, _) = a.call(Method::POST, "/disposals/nope/release", None).await;
    assert_eq!(s, 404);
    // A held DELETE makes the person deleted-pending: content cannot be given to them.
    let p3 = create_user(&app, "p3@example.edu").await;
    delete_user(&app, &app.token, &p3).await;
    let (s, v) = a
        .call(
            Method::PUT,
            "/content/recording/late",
            Some(json!({"owner": p3})),
        )
        .await;
    assert_eq!(s, 409, "{v}");
    // The Archive folder is Custodian's.
    let (s, _) = a
        .call(
            Method::PUT,
            "/content/folder/custodian-archive",
            Some(json!({"owner": platform})),
        )
        .await;
    assert_eq!(s, 409);
    // NUL in an admin path is refused before the database sees it.
    let r = app
        .client
        .get(format!("{}/admin/v1/disposals/a%00b", app.addr))
        .bearer_auth(&a.token)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 400);
    let g = app
        .client
        .get(format!("{}/gate/v1/check", app.addr))
        .bearer_auth(app.token_for("default", Scope::Gate))
        .send()
        .await
        .expect("send");
    assert_eq!(g.status().as_u16(), 405);
}
crate::both_backends!(deprovisioning_review, super::review_regressions);

async fn email_only_reuse_and_manager_references(b: Backend) {
    let app = policy_app(
        b,
        "[default]\ntombstone = { on_scim_create = \"relink\" }\n",
    )
    .await;
    let mut alice = user_body("alice@example.edu");
    alice["emails"] = json!([{"value": "alice@example.edu", "type": "work"}, {"value": "recycled@example.edu", "type": "home"}]);
    alice["externalId"] = json!("ext-alice");
    let (_, v) = body(
        app.req(Method::POST, "/Users")
            .json(&alice)
            .send()
            .await
            .expect("send"),
    )
    .await;
    let alice_id = v["id"].as_str().expect("id").to_string();
    // Bob's manager is named by Alice's userName (Okta style), with a display name.
    let mut bob = user_body("bob@example.edu");
    bob["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"] =
        json!({"manager": {"value": "Alice@Example.EDU", "displayName": "Alice Liddell"}});
    let (s, v) = body(
        app.req(Method::POST, "/Users")
            .json(&bob)
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(s, 201);
    assert!(
        v["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]["manager"]
            .get("displayName")
            .is_none(),
        "read-only sub-attribute not stored"
    );
    delete_user(&app, &app.token, &alice_id).await;
    assert!(!app.database_contains("Liddell"));
    assert!(
        !app.database_contains("alice@example.edu"),
        "the subordinate's manager reference was repointed"
    );
    // A new hire with only Alice's recycled address: created, and only that address is released.
    let mut newhire = user_body("newhire@example.edu");
    newhire["emails"] = json!([{"value": "recycled@example.edu", "type": "work"}]);
    let (s, _) = body(
        app.req(Method::POST, "/Users")
            .json(&newhire)
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(s, 201);
    for (req, decision) in [
        (json!({"userName": "alice@example.edu"}), "deny"),
        (json!({"externalId": "ext-alice"}), "deny"),
        (json!({"email": "alice@example.edu"}), "deny"),
        (json!({"email": "recycled@example.edu"}), "allow"),
    ] {
        let g = gate(&app, req.clone()).await;
        assert_eq!(g["decision"], decision, "{req}: {g}");
    }
    // A new user whose userName is a fresh one but whose email was a disposed
    // person's: that person's tombstone is not lifted, nor their content relinked.
    let bob_id = create_user(&app, "bob2@example.edu").await;
    let a = Admin::new(&app);
    a.put_item("recording", "bob-secret", &bob_id, false, None)
        .await;
    delete_user(&app, &app.token, &bob_id).await;
    let mut other = user_body("someone-else@example.edu");
    other["emails"] = json!([{"value": "bob2@example.edu", "type": "work"}]);
    let (s, v) = body(
        app.req(Method::POST, "/Users")
            .json(&other)
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    let other_id = v["id"].as_str().unwrap_or_default().to_string();
    assert_ne!(
        a.item("recording", "bob-secret").await["owner"],
        other_id.as_str()
    );
    let g = gate(&app, json!({"userName": "bob2@example.edu"})).await;
    assert_eq!(g["decision"], "deny", "bob2 stays tombstoned: {g}");
}
crate::both_backends!(
    email_reuse_and_manager_refs,
    super::email_only_reuse_and_manager_references
);

async fn policy_change_moves_pending_schedules_and_gate_registers(b: Backend) {
    let app = policy_app(b, "[default]\ngrace_period = \"30d\"\n").await;
    let person = create_user(&app, "regrace@example.edu").await;
    app.req(Method::PATCH, &format!("/Users/{person}"))
        .json(&patch_body(
            json!([{"op": "replace", "path": "active", "value": false}]),
        ))
        .send()
        .await
        .expect("send");
    app.clock.advance(chrono::Duration::hours(2));
    assert_eq!(
        app.deprov.run_due(&app.db).expect("run"),
        0,
        "30 days not over"
    );
    let shorter =
        custodian::deprovision::policy::parse("[default]\ngrace_period = \"1h\"\n", "p.toml")
            .expect("policy");
    app.deprov.replace_policies(shorter);
    assert_eq!(
        app.deprov.recompute_schedules(&app.db).expect("recompute"),
        1
    );
    assert_eq!(
        app.deprov.run_due(&app.db).expect("run"),
        1,
        "due under the new grace"
    );
    // `register: true` links the SSO subject on an allowed login; the subject alone then allows.
    let active = create_user(&app, "sso-reg@example.edu").await;
    let sso = json!({"issuer": "https://idp.example.edu/", "subject": "Sub-42"});
    let g = gate(
        &app,
        json!({"userName": "sso-reg@example.edu", "sso": sso, "register": true}),
    )
    .await;
    assert_eq!(
        (g["decision"].as_str(), g["userId"].as_str()),
        (Some("allow"), Some(active.as_str()))
    );
    let g = gate(
        &app,
        json!({"sso": {"issuer": "https://idp.example.edu", "subject": "Sub-42"}}),
    )
    .await;
    assert_eq!(
        (g["decision"].as_str(), g["matched"].clone()),
        (Some("allow"), json!(["sso"]))
    );
    // Bad gate input: precise 400s.
    let t = app.token_for("default", Scope::Gate);
    for bad in [
        json!({}),
        json!({"sso": {"issuer": "", "subject": "x"}}),
        json!({"email": [1]}),
        json!({"email": vec!["a@b.c"; 21]}),
    ] {
        let r = app
            .client
            .post(format!("{}/gate/v1/check", app.addr))
            .bearer_auth(&t)
            .json(&bad)
            .send()
            .await
            .expect("send");
        assert_eq!(r.status().as_u16(), 400, "{bad}");
    }
}
crate::both_backends!(
    regrace_and_register,
    super::policy_change_moves_pending_schedules_and_gate_registers
);

/// An unreadable stored user document is never replaced by `{}` and written
/// back: the disposal that would rewrite it fails (500) and changes nothing.
async fn unreadable_documents_fail_the_disposal(b: Backend) {
    use crate::common::sql::{Sql, execute_sql};
    let app = policy_app(b, "[default]\n").await;
    let tenant = app.default_tenant_id();
    let corrupt = |id: &str| {
        let mut s = Sql::default();
        s.push("UPDATE users SET data = 'not json' WHERE tenant_id = ")
            .bind_text(tenant.clone());
        s.push(" AND id = ").bind_text(id);
        app.db
            .write(|c| execute_sql(c, &s))
            .expect("corrupt the document");
    };
    let stored = |id: &str| {
        app.db
            .read(|c| custodian::store::users::get_any(c, &tenant, id))
            .expect("row")
    };
    // A report's document is rewritten when their manager is disposed.
    // Named by userName (Okta style), so the disposal repoints it to the stub.
    let boss = create_user(&app, "boss@example.edu").await;
    let mut report = user_body("report@example.edu");
    report["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"] =
        json!({"manager": {"value": "boss@example.edu"}});
    let (s, v) = body(
        app.req(Method::POST, "/Users")
            .json(&report)
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    let report_id = v["id"].as_str().expect("id").to_string();
    corrupt(&report_id);
    let (s, v) = body(
        app.req(Method::DELETE, &format!("/Users/{boss}"))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(s, 500, "the disposal fails: {v}");
    assert_eq!(stored(&report_id).data, "not json", "the document is kept");
    assert_eq!(
        stored(&boss).state.as_str(),
        "active",
        "the boss is not disposed"
    );
    // A held dispose-now suspends the person, rewriting their document.
    let a = Admin::new(&app);
    let person = create_user(&app, "held@example.edu").await;
    let (s, _) = a
        .call(Method::PUT, &format!("/users/{person}/legal-hold"), None)
        .await;
    assert_eq!(s, 204);
    corrupt(&person);
    let (s, v) = a
        .call(Method::POST, &format!("/users/{person}/dispose"), None)
        .await;
    assert_eq!(s, 500, "{v}");
    let row = stored(&person);
    assert_eq!(
        (row.data.as_str(), row.state.as_str()),
        ("not json", "active")
    );
}
crate::both_backends!(
    unreadable_documents,
    super::unreadable_documents_fail_the_disposal
);

/// A reassignment by selection moves every item it matches, in one
/// transaction, and never the tenant's Archive folder (no owner by design).
async fn reassign_by_selection_spares_the_archive(b: Backend) {
    let app = policy_app(b, "[default]\ntargets = [\"custodian\"]\n").await;
    let a = Admin::new(&app);
    let keeper = create_user(&app, "keeper@example.edu").await;
    let person = create_user(&app, "leaver@example.edu").await;
    a.put_item("recording", "r1", &person, false, None).await;
    a.put_item("draft", "d1", &person, false, None).await;
    a.put_item("folder", "home", &person, true, None).await;
    // No custodian: nobody to transfer to, so everything is orphaned and the
    // personal root is archived without an owner.
    delete_user(&app, &app.token, &person).await;
    let archive = a.item("folder", "custodian-archive").await;
    assert_eq!(archive["owner"], Value::Null);
    let (s, r) = a
        .call(
            Method::POST,
            "/content:reassign",
            Some(json!({"to": keeper, "orphaned": true, "kind": "folder"})),
        )
        .await;
    assert_eq!((s, r["items"].as_i64()), (200, Some(1)), "{r}");
    assert_eq!(a.item("folder", "home").await["owner"], keeper.as_str());
    let (s, r) = a
        .call(
            Method::POST,
            "/content:reassign",
            Some(json!({"to": keeper, "orphaned": true})),
        )
        .await;
    assert_eq!((s, r["items"].as_i64()), (200, Some(2)), "{r}");
    for (kind, id) in [("recording", "r1"), ("draft", "d1")] {
        assert_eq!(a.item(kind, id).await["owner"], keeper.as_str(), "{id}");
    }
    let archive = a.item("folder", "custodian-archive").await;
    assert_eq!(
        archive["owner"],
        Value::Null,
        "the Archive folder stays Custodian's"
    );
}
crate::both_backends!(
    reassign_by_selection,
    super::reassign_by_selection_spares_the_archive
);

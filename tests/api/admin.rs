//! The admin read models (disposals, receipts, tombstones, audit, history)
//! through real HTTP: each answers from the caller's tenant only, page by page.

use crate::body;
use crate::common::{Backend, Options, TestApp, spawn_app_with};
use custodian::auth::Scope;
use reqwest::Method;
use serde_json::{Value, json};

/// An admin token's view of one tenant, with a SCIM token for its users.
struct Tenant<'a> {
    app: &'a TestApp,
    admin: String,
    scim: String,
}

impl<'a> Tenant<'a> {
    fn new(app: &'a TestApp, name: &str) -> Tenant<'a> {
        Tenant {
            app,
            admin: app.token_for(name, Scope::Admin),
            scim: app.token_for(name, Scope::Scim),
        }
    }

    async fn call(&self, method: Method, path: &str, b: Option<Value>) -> (u16, Value) {
        let mut r = self
            .app
            .client
            .request(method, format!("{}/admin/v1{path}", self.app.addr))
            .bearer_auth(&self.admin);
        if let Some(b) = b {
            r = r.json(&b);
        }
        body(r.send().await.expect("send")).await
    }

    async fn user(&self, user_name: &str) -> String {
        let (s, v) = body(
            self.app
                .client
                .post(self.app.url("/Users"))
                .bearer_auth(&self.scim)
                .json(&crate::user_body(user_name))
                .send()
                .await
                .expect("send"),
        )
        .await;
        assert_eq!(s, 201, "{v}");
        v["id"].as_str().expect("id").to_string()
    }

    /// A user owning `recording/{id}` for each of `items`, then disposed now.
    async fn leaver(&self, user_name: &str, items: &[&str]) -> String {
        let person = self.user(user_name).await;
        for id in items {
            let (s, v) = self
                .call(
                    Method::PUT,
                    &format!("/content/recording/{id}"),
                    Some(json!({"owner": person, "title": id})),
                )
                .await;
            assert_eq!(s, 201, "{v}");
        }
        let (s, v) = self
            .call(Method::POST, &format!("/users/{person}/dispose"), None)
            .await;
        assert_eq!(s, 200, "{v}");
        v["disposalId"].as_str().expect("disposalId").to_string()
    }
}

fn resources(v: &Value) -> Vec<Value> {
    v["Resources"].as_array().cloned().unwrap_or_default()
}

fn ids(v: &Value) -> Vec<String> {
    resources(v)
        .iter()
        .filter_map(|r| r["id"].as_str().map(str::to_string))
        .collect()
}

async fn admin_reads_stay_in_their_tenant(b: Backend) {
    let app = spawn_app_with(
        b,
        Options {
            policy: Some("[default]\n".into()),
            ..Default::default()
        },
    )
    .await;
    let mine = Tenant::new(&app, "default");
    let theirs = Tenant::new(&app, "other");
    // The same item ids in both tenants.
    let d1 = mine.leaver("one@example.edu", &["shared", "a2"]).await;
    let d2 = mine.leaver("two@example.edu", &["b1"]).await;
    let d3 = theirs
        .leaver("one@example.edu", &["shared", "x2", "x3"])
        .await;

    // Disposals: only mine, and paged.
    let (s, all) = mine.call(Method::GET, "/disposals", None).await;
    assert_eq!(s, 200, "{all}");
    let mut listed = ids(&all);
    listed.sort();
    let mut want = vec![d1.clone(), d2.clone()];
    want.sort();
    assert_eq!(listed, want);
    let (_, p1) = mine.call(Method::GET, "/disposals?count=1", None).await;
    let (_, p2) = mine
        .call(Method::GET, "/disposals?count=1&startIndex=2", None)
        .await;
    assert_eq!(ids(&p1).len(), 1, "{p1}");
    assert_eq!(ids(&p2).len(), 1, "{p2}");
    assert_ne!(ids(&p1), ids(&p2));
    assert_eq!(
        ids(&theirs.call(Method::GET, "/disposals", None).await.1),
        vec![d3.clone()]
    );

    // Receipts: another tenant's disposal is not found; lines are paged.
    let (s, v) = mine
        .call(Method::GET, &format!("/disposals/{d3}"), None)
        .await;
    assert_eq!(s, 404, "{v}");
    let (s, r) = mine
        .call(
            Method::GET,
            &format!("/disposals/{d1}?count=1&startIndex=2"),
            None,
        )
        .await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(
        (r["totalItems"].clone(), r["startIndex"].clone()),
        (json!(2), json!(2))
    );
    let lines = r["items"].as_array().cloned().unwrap_or_default();
    assert_eq!(lines.len(), 1, "{r}");
    // Ordered by kind, then id: "a2" < "shared".
    assert_eq!(lines[0]["id"], "shared");

    // Tombstones: one per disposed person of mine, paged, types only.
    let (_, ts) = mine.call(Method::GET, "/tombstones", None).await;
    let rows = resources(&ts);
    assert_eq!(rows.len(), 2, "{ts}");
    let mine_ids: std::collections::HashSet<_> = [d1.as_str(), d2.as_str()].into();
    for t in &rows {
        assert!(
            mine_ids.contains(t["disposalId"].as_str().unwrap_or_default()),
            "{t}"
        );
        assert_eq!(t["identifierTypes"], json!(["email", "userName"]), "{t}");
    }
    let (_, t2) = mine
        .call(Method::GET, "/tombstones?count=1&startIndex=2", None)
        .await;
    assert_eq!(
        ids(&t2),
        vec![rows[1]["id"].as_str().unwrap_or_default().to_string()]
    );
    let (_, tt) = theirs.call(Method::GET, "/tombstones", None).await;
    assert_eq!(resources(&tt).len(), 1, "{tt}");
    assert_eq!(resources(&tt)[0]["disposalId"], d3.as_str());

    // Audit: nothing about the other tenant's items.
    let (_, audit) = mine.call(Method::GET, "/audit?count=1000", None).await;
    let subjects: Vec<String> = resources(&audit)
        .iter()
        .filter_map(|r| r["subjectId"].as_str().map(str::to_string))
        .collect();
    assert!(subjects.iter().any(|s| s == "a2"), "{audit}");
    assert!(!subjects.iter().any(|s| s == "x2" || s == "x3"), "{audit}");

    // History of an id both tenants use: mine alone, oldest first.
    let (s, h) = mine
        .call(Method::GET, "/content/recording/shared/history", None)
        .await;
    assert_eq!(s, 200, "{h}");
    let history = h["history"].as_array().cloned().unwrap_or_default();
    let actions: Vec<&str> = history
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert_eq!(actions.len(), 2, "{h}");
    assert_eq!(actions[0], "content.created", "{h}");
    assert!(actions[1].starts_with("disposal."), "{h}");
    assert_eq!(history[1]["disposalId"], d1.as_str());
    let (s, v) = mine
        .call(Method::GET, "/content/recording/x2/history", None)
        .await;
    assert_eq!(s, 404, "{v}");
}
crate::both_backends!(admin_reads, super::admin_reads_stay_in_their_tenant);

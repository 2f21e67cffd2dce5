//! Integration tests: a real server on a real port, on SQLite and (when
//! CUSTODIAN_TEST_PG_URL is set) PostgreSQL. One binary, many modules.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../common/mod.rs"]
mod common;

mod admin;
mod atomicity;
mod auth;
mod backup;
mod bulk;
mod caps;
mod cli;
mod console;
mod crash;
mod deploy;
mod deprovision;
mod errors;
mod events;
mod explain;
mod fairness;
mod filters;
mod gate_clients;
mod groups;
mod health;
mod identity;
mod journal;
mod lifecycle;
mod metrics;
mod openapi;
mod platform;
mod pool;
mod retention;
mod robustness;
mod scopes;
mod users;
mod wal;
mod webhooks;

use reqwest::{Method, Response};
use serde_json::{Value, json};

pub async fn body(r: Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let text = r.text().await.expect("body");
    let v = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, v)
}

pub fn user_body(user_name: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": user_name,
        "name": {"givenName": "Seed", "familyName": "User"},
        "emails": [{"primary": true, "type": "work", "value": user_name}],
        "active": true
    })
}

pub async fn create_user(app: &common::TestApp, user_name: &str) -> String {
    let (s, v) = body(
        app.req(Method::POST, "/Users")
            .json(&user_body(user_name))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    v["id"].as_str().expect("id").to_string()
}

pub fn patch_body(ops: Value) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops})
}

pub async fn filter_users(app: &common::TestApp, filter: &str) -> Value {
    let r = app
        .client
        .get(app.url("/Users"))
        .bearer_auth(&app.token)
        .query(&[("filter", filter)])
        .send()
        .await
        .expect("send");
    let (s, v) = body(r).await;
    assert_eq!(s, 200, "{filter}: {v}");
    v
}

/// `n` users of the default tenant, written straight into the database with
/// the library's bulk loader (over HTTP this would take minutes), in id order.
pub async fn seeded_user_ids(app: &crate::common::TestApp, n: usize) -> Vec<String> {
    use custodian::scim::resource::{normalize, user_keys};
    use custodian::scim::schema::USER_TYPE;
    use custodian::store::users::UserRow;
    let tenant = app.default_tenant_id();
    let now = custodian::store::time::now();
    let mut ids: Vec<String> = (0..n).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    ids.sort();
    let rows: Vec<_> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let body = json!({"userName": format!("seed{i}@example.com"), "active": true});
            let doc = normalize(&USER_TYPE, &body).expect("a valid user");
            let keys = user_keys(&doc);
            let row = UserRow::new(
                id.clone(),
                tenant.clone(),
                serde_json::Value::Object(doc).to_string(),
                &keys,
                &now,
            );
            (row, keys)
        })
        .collect();
    app.db
        .write(|c| -> Result<(), custodian::store::StoreError> {
            for chunk in rows.chunks(500) {
                custodian::store::seed::insert_users(c, chunk)?;
            }
            Ok(())
        })
        .expect("seed users");
    ids
}

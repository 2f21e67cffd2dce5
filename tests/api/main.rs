//! Integration tests: a real server on a real port, on SQLite and (when
//! CUSTODIAN_TEST_PG_URL is set) PostgreSQL. One binary, many modules.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../common/mod.rs"]
mod common;

mod atomicity;
mod auth;
mod bulk;
mod caps;
mod crash;
mod deploy;
mod deprovision;
mod errors;
mod events;
mod explain;
mod fairness;
mod filters;
mod groups;
mod identity;
mod load_driver;
mod pool;
mod robustness;
mod users;
mod wal;

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

/// The ids of `n` users seeded straight into the default tenant (over HTTP
/// this would take a while), sorted; the seeder adds an heir and an owner.
pub async fn seeded_user_ids(app: &crate::common::TestApp, n: usize) -> Vec<String> {
    let seed: Vec<String> = [
        "seed",
        "--database-url",
        &app.db_url,
        "--tenant",
        "default",
        "--users",
        &n.to_string(),
        "--group-size",
        "0",
        "--items-per-user",
        "0",
        "--owners",
        "1",
    ]
    .map(String::from)
    .to_vec();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_custodian-load"))
            .args(&seed)
            .output()
            .expect("run custodian-load seed")
    })
    .await
    .expect("join");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    #[derive(diesel::QueryableByName)]
    struct Id {
        #[diesel(sql_type = diesel::sql_types::Text)]
        id: String,
    }
    let tenant = app.default_tenant_id();
    let mut ids: Vec<String> = app
        .db
        .read(|c| {
            let mut sql = custodian::store::db::Sql::default();
            sql.push("SELECT id FROM users WHERE tenant_id = ")
                .bind_text(tenant.clone());
            custodian::store::db::load_sql::<Id>(c, &sql)
        })
        .expect("user ids")
        .into_iter()
        .map(|r| r.id)
        .collect();
    ids.sort();
    assert_eq!(ids.len(), n + 2);
    ids
}

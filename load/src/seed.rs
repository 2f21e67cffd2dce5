//! The scale dataset, written straight into the database (multi-row INSERTs,
//! large transactions) through the library's own normalisation, so rows,
//! derived keys and search documents are exactly what the server would write.

use crate::payloads;
use custodian::scim::resource::{normalize, user_keys};
use custodian::scim::schema::USER_TYPE;
use custodian::store::seed::{analyze, insert_items, insert_members, insert_users, user_count};
use custodian::store::users::UserRow;
use custodian::store::{Db, StoreError};
use serde_json::{Value, json};
use std::time::Instant;

pub struct Seed {
    pub database_url: String,
    pub tenant: String,
    pub users: usize,
    pub group_size: usize,
    pub items_per_user: usize,
    pub owners: Vec<usize>,
}

const ROWS_PER_INSERT: usize = 500;
const ROWS_PER_TX: usize = 50_000;
const KINDS: [&str; 4] = ["recording", "presentation", "folder", "draft"];

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

pub fn run(cfg: &Seed) -> Result<(), String> {
    let started = Instant::now();
    let db = Db::open(&cfg.database_url, 2, true).map_err(err)?;
    let now = custodian::store::time::now();
    let tenant = db
        .write(|c| custodian::store::tokens::ensure_tenant(c, &cfg.tenant, &now))
        .map_err(err)?;
    let t = tenant.id;
    let existing = db.read(|c| user_count(c, &t)).map_err(err)?;
    if existing > 0 {
        return Err(format!(
            "tenant '{}' already holds users: seed a fresh tenant or database",
            cfg.tenant
        ));
    }
    let ids: Vec<String> = (0..cfg.users)
        .map(|_| uuid::Uuid::new_v4().to_string())
        .collect();
    // Creation times a second apart, in index order, ending now.
    let base = chrono::Utc::now() - chrono::Duration::seconds(cfg.users as i64 + 10);
    let at = |i: usize| custodian::store::time::format(base + chrono::Duration::seconds(i as i64));

    let step = Instant::now();
    for tx in (0..cfg.users).step_by(ROWS_PER_TX) {
        let end = (tx + ROWS_PER_TX).min(cfg.users);
        db.write(|c| -> Result<(), StoreError> {
            for lo in (tx..end).step_by(ROWS_PER_INSERT) {
                let hi = (lo + ROWS_PER_INSERT).min(end);
                let rows: Vec<(UserRow, custodian::scim::resource::UserKeys)> = (lo..hi)
                    .map(|i| {
                        let manager = (i > 0).then(|| ids[(i - 1) / 10].as_str());
                        user_row(&t, &ids[i], i, manager, &at(i))
                    })
                    .collect::<Result<_, _>>()
                    .map_err(StoreError::Config)?;
                insert_users(c, &rows)?;
            }
            Ok(())
        })
        .map_err(err)?;
        eprint!("\rusers: {end}/{}", cfg.users);
    }
    eprintln!(" in {:.1}s", step.elapsed().as_secs_f64());

    // The heir (every owner's manager) and the owners of K items.
    let heir = uuid::Uuid::new_v4().to_string();
    let owners: Vec<(usize, String)> = cfg
        .owners
        .iter()
        .map(|k| (*k, uuid::Uuid::new_v4().to_string()))
        .collect();
    db.write(|c| -> Result<(), StoreError> {
        let mut rows = vec![
            named_row(&t, &heir, payloads::SCALE_HEIR, None, &now).map_err(StoreError::Config)?,
        ];
        for (k, id) in &owners {
            rows.push(
                named_row(&t, id, &payloads::scale_owner(*k), Some(&heir), &now)
                    .map_err(StoreError::Config)?,
            );
        }
        insert_users(c, &rows)
    })
    .map_err(err)?;

    let step = Instant::now();
    let gid = uuid::Uuid::new_v4().to_string();
    let members = cfg.group_size.min(cfg.users);
    db.write(|c| -> Result<(), StoreError> {
        let doc = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": payloads::SCALE_GROUP});
        let row = custodian::store::groups::GroupRow {
            id: gid.clone(),
            tenant_id: t.clone(),
            display_name: payloads::SCALE_GROUP.into(),
            display_name_key: custodian::scim::fold::fold(payloads::SCALE_GROUP),
            external_id: None,
            data: doc.to_string(),
            created_at: now.clone(),
            updated_at: now.clone(),
            version: 1,
        };
        custodian::store::groups::insert(c, &row)?;
        for lo in (0..members).step_by(ROWS_PER_INSERT * 2) {
            let hi = (lo + ROWS_PER_INSERT * 2).min(members);
            insert_members(c, &t, &gid, &ids[lo..hi], &now)?;
        }
        Ok(())
    })
    .map_err(err)?;
    eprintln!(
        "group of {members} members in {:.1}s",
        step.elapsed().as_secs_f64()
    );

    let step = Instant::now();
    let mut items = 0usize;
    let owned = cfg.users * cfg.items_per_user;
    for tx in (0..owned).step_by(ROWS_PER_TX * 2) {
        let end = (tx + ROWS_PER_TX * 2).min(owned);
        db.write(|c| -> Result<(), StoreError> {
            for lo in (tx..end).step_by(ROWS_PER_INSERT * 2) {
                let hi = (lo + ROWS_PER_INSERT * 2).min(end);
                insert_items(
                    c,
                    &t,
                    &now,
                    (lo..hi).map(|n| {
                        let i = n / cfg.items_per_user.max(1);
                        (KINDS[n % 3], format!("u{i}-{n}"), ids[i].as_str())
                    }),
                )?;
            }
            Ok(())
        })
        .map_err(err)?;
        items = end;
        eprint!("\ritems: {items}/{owned}");
    }
    for (k, owner) in &owners {
        for tx in (0..*k).step_by(ROWS_PER_TX * 2) {
            let end = (tx + ROWS_PER_TX * 2).min(*k);
            db.write(|c| -> Result<(), StoreError> {
                for lo in (tx..end).step_by(ROWS_PER_INSERT * 2) {
                    let hi = (lo + ROWS_PER_INSERT * 2).min(end);
                    insert_items(
                        c,
                        &t,
                        &now,
                        (lo..hi).map(|n| (KINDS[n % 4], format!("o{k}-{n}"), owner.as_str())),
                    )?;
                }
                Ok(())
            })
            .map_err(err)?;
            items += end - tx;
        }
    }
    eprintln!("\ritems: {items} in {:.1}s", step.elapsed().as_secs_f64());
    let step = Instant::now();
    db.write(analyze).map_err(err)?;
    eprintln!("ANALYZE in {:.1}s", step.elapsed().as_secs_f64());
    eprintln!(
        "seeded tenant '{}': {} users, a {members}-member group, {items} items, owners {:?}, in {:.1}s",
        cfg.tenant,
        cfg.users + 1 + owners.len(),
        cfg.owners,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

type Row = (UserRow, custodian::scim::resource::UserKeys);

fn user_row(t: &str, id: &str, i: usize, manager: Option<&str>, at: &str) -> Result<Row, String> {
    let given = [
        "Ada", "Grace", "Linus", "Margaret", "Tim", "Barbara", "Søren",
    ][i % 7];
    let family = format!("Person{i}");
    let department = ["Engineering", "Sales", "Research", "Finance"][i % 4];
    let mut ent = json!({"employeeNumber": format!("{}", 1_000_000 + i), "department": department});
    if let Some(m) = manager {
        ent["manager"] = json!({"value": m});
    }
    let body = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
        "userName": payloads::scale_user_name(i),
        "externalId": payloads::scale_external_id(i),
        "active": true,
        "displayName": format!("{given} {family}"),
        "name": {"givenName": given, "familyName": family, "formatted": format!("{given} {family}")},
        "title": "Staff",
        "emails": [
            {"value": payloads::scale_work_email(i), "type": "work", "primary": true},
            {"value": format!("user{i}@home.example.net"), "type": "home"}
        ],
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": ent
    });
    row_of(t, id, &body, at)
}

fn named_row(
    t: &str,
    id: &str,
    user_name: &str,
    manager: Option<&str>,
    at: &str,
) -> Result<Row, String> {
    let mut body = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
        "userName": user_name, "active": true,
        "emails": [{"value": user_name, "type": "work", "primary": true}]
    });
    if let Some(m) = manager {
        body["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"] =
            json!({"manager": {"value": m}});
    }
    row_of(t, id, &body, at)
}

fn row_of(t: &str, id: &str, body: &Value, at: &str) -> Result<Row, String> {
    let doc = normalize(&USER_TYPE, body).map_err(|e| e.detail.clone())?;
    let keys = user_keys(&doc);
    let row = UserRow::new(
        id.to_string(),
        t.to_string(),
        Value::Object(doc).to_string(),
        &keys,
        at,
    );
    Ok((row, keys))
}

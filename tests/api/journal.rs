//! The disposal journal on both backends: a disposal and a lift are appended
//! after their commit with ids and hashes only; a database that lost them
//! (as a restored backup would) is told so, and `reapply` writes them back
//! once.

use crate::common::sql::{Sql, execute_sql};
use crate::common::{Backend, spawn_app};
use crate::{body, create_user};
use custodian::deprovision::commands::tombstones::{Action, apply};
use custodian::deprovision::journal::{reapply, unapplied, unchecked};
use custodian::deprovision::tombstone::IdType;
use custodian::domain::journal::JournalRecord;
use custodian::journal::{Journal, read};
use custodian::store::Db;
use reqwest::Method;
use serde_json::json;
use std::sync::Arc;

async fn journal_appends_and_reapplies(b: Backend) {
    let app = spawn_app(b).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("journal.jsonl");
    let db: Db = app
        .db
        .clone()
        .with_journal(Arc::new(Journal::open(&path).expect("journal")));
    let tenant = app.default_tenant_id();
    let dana = create_user(&app, "dana.journal@example.edu").await;
    let erin = create_user(&app, "erin.journal@example.edu").await;
    let frank = create_user(&app, "frank.held@example.edu").await;
    let actor = custodian::domain::Actor {
        tenant_id: tenant.clone(),
        tenant_name: "default".into(),
        actor: "test-admin".into(),
        acts_as: None,
        caller_user_id: None,
    };
    for who in [&dana, &erin] {
        custodian::deprovision::commands::disposals::dispose(&app.deprov, &db, &actor, who, None)
            .expect("dispose");
    }
    // A failed write journals nothing: disposing a stub is refused.
    assert!(
        custodian::deprovision::commands::disposals::dispose(&app.deprov, &db, &actor, &dana, None)
            .is_err()
    );
    let lifted = apply(
        &db,
        &app.deprov.keys,
        &tenant,
        &[(IdType::UserName, "erin.journal@example.edu".into())],
        Action::Lift,
        "test-admin",
        &app.deprov.now(),
    )
    .expect("lift");
    assert_eq!(lifted, 1);
    // A DELETE held by a legal hold: tombstoned now, disposed later.
    app.deprov
        .set_legal_hold(&db, &actor, &frank, true)
        .expect("hold");
    let held = db
        .write_long(|c| {
            app.deprov
                .dispose_in(c, &actor, &frank, custodian::domain::Cause::Delete, None)
        })
        .expect("held delete");
    assert!(matches!(
        held,
        custodian::deprovision::service::Outcome::Held { .. }
    ));

    let journal = read(&path).expect("read").expect("written");
    let text = std::fs::read_to_string(&path).expect("text");
    assert!(
        !text.contains("dana.journal")
            && !text.contains("erin.journal")
            && !text.contains("frank.held"),
        "no identifiers in the journal: {text}"
    );
    let kinds: Vec<(u64, &str)> = journal
        .entries
        .iter()
        .map(|e| {
            (
                e.seq,
                match &e.record {
                    JournalRecord::Disposed { .. } => "disposed",
                    JournalRecord::Lifted { .. } => "lifted",
                    JournalRecord::Tombstoned { .. } => "tombstoned",
                    JournalRecord::Released { .. } => "released",
                },
            )
        })
        .collect();
    assert_eq!(
        kinds,
        vec![
            (1, "disposed"),
            (2, "disposed"),
            (3, "lifted"),
            (4, "tombstoned")
        ]
    );
    let JournalRecord::Disposed {
        user_id,
        tombstones,
        plan_hash,
        ..
    } = &journal.entries[0].record
    else {
        panic!("a disposal first");
    };
    assert_eq!(user_id, &dana);
    assert!(!plan_hash.is_empty());
    let hash = app
        .deprov
        .keys
        .hash(&tenant, IdType::UserName, "dana.journal@example.edu");
    assert!(
        tombstones[0].hashes.iter().any(|h| h.hash == hash),
        "the tombstone's userName HMAC is journaled"
    );
    assert!(
        unapplied(&db, &journal.id, &journal.entries)
            .expect("check")
            .is_empty()
    );

    let JournalRecord::Tombstoned {
        tombstones: held_tombs,
        ..
    } = &journal.entries[3].record
    else {
        panic!("the held DELETE last");
    };
    // As a restore would: dana's and frank's tombstones gone, erin's lift undone.
    app.db
        .write(|c| {
            for id in [&tombstones[0].id, &held_tombs[0].id] {
                let mut del = Sql::new("DELETE FROM tombstone_hashes WHERE tombstone_id = ");
                del.bind_text(id.clone());
                execute_sql(c, &del)?;
                let mut del = Sql::new("DELETE FROM tombstones WHERE id = ");
                del.bind_text(id.clone());
                execute_sql(c, &del)?;
            }
            execute_sql(c, &Sql::new("UPDATE tombstones SET lifted_at = NULL"))
        })
        .expect("undo");
    let gate = app.token_for("default", custodian::auth::Scope::Gate);
    let check = |name: &'static str| {
        let (client, url, gate) = (
            app.client.clone(),
            format!("{}/gate/v1/check", app.addr),
            gate.clone(),
        );
        async move {
            let (s, v) = body(
                client
                    .request(Method::POST, url)
                    .bearer_auth(gate)
                    .json(&json!({"userName": name}))
                    .send()
                    .await
                    .expect("send"),
            )
            .await;
            assert_eq!(s, 200, "{v}");
            v["reason"].as_str().unwrap_or_default().to_string()
        }
    };
    assert_eq!(check("dana.journal@example.edu").await, "unknown");
    let lacking = unapplied(&db, &journal.id, &journal.entries).expect("check");
    assert_eq!(
        lacking.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![1, 3, 4]
    );
    let all = unchecked(&db, &journal.id, &journal.entries).expect("unchecked");
    let done = reapply(&app.deprov, &db, &all).expect("reapply");
    assert_eq!(
        (
            done.entries,
            done.tombstones_restored,
            done.lifts,
            done.people_disposed
        ),
        (3, 2, 1, 0)
    );
    assert_eq!(check("dana.journal@example.edu").await, "deprovisioned");
    assert_eq!(check("frank.held@example.edu").await, "deprovisioned");
    assert_eq!(check("erin.journal@example.edu").await, "unknown");
    let again = reapply(&app.deprov, &db, &all).expect("again");
    assert!(again.is_empty(), "{again:?}");
    // Writing back journals nothing again.
    assert_eq!(read(&path).expect("read").expect("some").last_seq(), 4);

    // Within a write group a lift can be journaled before the held DELETE's
    // tombstone it lifts (each append follows its own commit): reapply still
    // ends with the tombstone lifted.
    app.db
        .write(|c| {
            let mut del = Sql::new("DELETE FROM tombstone_hashes WHERE tombstone_id = ");
            del.bind_text(held_tombs[0].id.clone());
            execute_sql(c, &del)?;
            let mut del = Sql::new("DELETE FROM tombstones WHERE id = ");
            del.bind_text(held_tombs[0].id.clone());
            execute_sql(c, &del)
        })
        .expect("undo frank's tombstone");
    let lift = custodian::domain::journal::JournalEntry {
        seq: 5,
        record: JournalRecord::Lifted {
            tenant_id: tenant.clone(),
            tombstone_ids: vec![held_tombs[0].id.clone()],
            at: "2026-12-05T00:00:00Z".into(),
        },
    };
    let tombstoned = custodian::domain::journal::JournalEntry {
        seq: 6,
        ..journal.entries[3].clone()
    };
    let out_of_order = [&lift, &tombstoned];
    let done = reapply(&app.deprov, &db, &out_of_order).expect("reapply");
    assert_eq!((done.tombstones_restored, done.lifts), (1, 1), "{done:?}");
    assert_eq!(check("frank.held@example.edu").await, "unknown");
}
crate::both_backends!(
    journal_append_and_reapply,
    super::journal_appends_and_reapplies
);

/// `custodian backup` and `restore` on PostgreSQL say what to use instead and
/// fail (no connection needed).
#[test]
fn postgres_backup_and_restore_explain_pg_tools() {
    let dir = tempfile::tempdir().expect("tempdir");
    for args in [["backup", "x.dump"], ["restore", "x.dump"]] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_custodian"))
            .args(args)
            .current_dir(dir.path())
            .env_remove("CUSTODIAN_CONFIG")
            .env(
                "CUSTODIAN_DATABASE_URL",
                "postgres://nobody@127.0.0.1:1/none",
            )
            .output()
            .expect("run");
        assert!(!out.status.success(), "{args:?} must fail on PostgreSQL");
        let err = String::from_utf8_lossy(&out.stderr);
        let hint = if args[0] == "backup" {
            "pg_dump --format=custom --file=x.dump"
        } else {
            "pg_restore"
        };
        assert!(err.contains(hint), "{args:?}: {err}");
        assert!(!dir.path().join("x.dump").exists());
    }
}

//! Disposal is all or nothing, and the preview is exactly what executes.

use crate::common::schema::*;
use crate::common::{Backend, TestApp, spawn_app};
use custodian::deprovision::disposal::{self, DisposeInput, NO_HOOK, STEPS};
use custodian::deprovision::policy::{DataAction, FolderAction, KindAction, Policy, Target};
use custodian::domain::{Actor, Cause};
use custodian::provisioning::Services;
use custodian::store::{StoreError, ledger};
use diesel::prelude::*;
use proptest::prelude::*;
use serde_json::json;

fn services(app: &TestApp) -> Services {
    Services {
        db: app.db.clone(),
        deprov: app.deprov.clone(),
        limits: Default::default(),
    }
}

fn tenant(app: &TestApp, name: &str) -> Actor {
    let now = custodian::store::time::now();
    let t = app
        .db
        .write(|c| custodian::store::tokens::ensure_tenant(c, name, &now))
        .expect("tenant");
    Actor {
        tenant_id: t.id,
        tenant_name: name.into(),
        actor: "test".into(),
        acts_as: None,
        caller_user_id: None,
    }
}

fn user(svc: &Services, caller: &Actor, name: &str, manager: Option<&str>) -> String {
    let mut body = json!({"userName": name, "emails": [{"value": name, "type": "work"}]});
    if let Some(m) = manager {
        body["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"] =
            json!({"manager": {"value": m}});
    }
    let r =
        custodian::provisioning::users::create(svc, caller, &body, &Default::default(), "http://x")
            .expect("create");
    r.body["id"].as_str().expect("id").to_string()
}

fn item(
    app: &TestApp,
    caller: &Actor,
    kind: &str,
    id: &str,
    owner: &str,
    root: bool,
    parent: Option<&str>,
) {
    let now = custodian::store::time::now();
    app.db
        .write(|c| {
            ledger::upsert_item(
                c,
                &ledger::ItemRow {
                    tenant_id: caller.tenant_id.clone(),
                    kind: kind.into(),
                    item_id: id.into(),
                    owner_id: Some(owner.into()),
                    parent_kind: parent.map(|_| "folder".to_string()),
                    parent_id: parent.map(str::to_string),
                    title: Some(format!("t-{id}")),
                    personal_root: root,
                    created_at: now.clone(),
                    updated_at: now.clone(),
                },
            )
        })
        .expect("item");
}

/// kind, id, owner, parent, title, personal root.
type ItemSnap = (
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    bool,
);

/// Everything a disposal may touch, as text.
fn snapshot(app: &TestApp, tenant: &str) -> String {
    app.db
        .read(|c| -> Result<String, StoreError> {
            let items: Vec<ItemSnap> = content_items::table
                .filter(content_items::tenant_id.eq(tenant))
                .select((content_items::kind, content_items::item_id, content_items::owner_id, content_items::parent_id, content_items::title, content_items::personal_root))
                .order((content_items::kind, content_items::item_id))
                .load(c)?;
            let shares: Vec<(String, String, String)> = content_shares::table
                .filter(content_shares::tenant_id.eq(tenant))
                .select((content_shares::kind, content_shares::item_id, content_shares::user_id))
                .order((content_shares::kind, content_shares::item_id, content_shares::user_id))
                .load(c)?;
            let data: Vec<(String, String, String)> = user_data::table
                .filter(user_data::tenant_id.eq(tenant))
                .select((user_data::category, user_data::record_id, user_data::user_id))
                .order((user_data::category, user_data::record_id))
                .load(c)?;
            let people: Vec<(String, String, String, String)> = users::table
                .filter(users::tenant_id.eq(tenant))
                .select((users::id, users::state, users::user_name, users::data))
                .order(users::id)
                .load(c)?;
            let emails: i64 = user_emails::table.filter(user_emails::tenant_id.eq(tenant)).count().get_result(c)?;
            let runs: i64 = disposals::table.filter(disposals::tenant_id.eq(tenant)).count().get_result(c)?;
            let tombs: i64 = tombstones::table.filter(tombstones::tenant_id.eq(tenant)).count().get_result(c)?;
            let events: i64 = outbox::table.filter(outbox::tenant_id.eq(tenant)).count().get_result(c)?;
            let audits: i64 = audit_log::table.filter(audit_log::tenant_id.eq(tenant)).count().get_result(c)?;
            Ok(format!("{items:?}\n{shares:?}\n{data:?}\n{people:?}\n{emails} {runs} {tombs} {events} {audits}"))
        })
        .expect("snapshot")
}

fn run(
    app: &TestApp,
    caller: &Actor,
    person: &str,
    policy: &Policy,
    hook: &dyn Fn(&str) -> Result<(), StoreError>,
) -> Result<disposal::Receipt, StoreError> {
    let now = custodian::store::time::now();
    app.db.write(|c| {
        disposal::execute(
            c,
            &DisposeInput {
                tenant_id: &caller.tenant_id,
                person,
                caller: None,
                actor: "test",
                cause: Cause::Delete,
                policy,
                keys: &app.deprov.keys,
                now: &now,
                disposal_id: None,
                person_row: None,
                prepared: None,
                hook,
            },
        )
    })
}

async fn interrupted_anywhere_leaves_nothing(b: Backend) {
    let app = spawn_app(b).await;
    let svc = services(&app);
    let caller = tenant(&app, "atomic");
    let heir = user(&svc, &caller, "heir@example.edu", None);
    let person = user(&svc, &caller, "gone@example.edu", Some(&heir));
    item(&app, &caller, "folder", "home", &person, true, None);
    item(
        &app,
        &caller,
        "recording",
        "r1",
        &person,
        false,
        Some("home"),
    );
    item(&app, &caller, "draft", "d1", &person, false, None);
    app.db
        .write(|c| {
            ledger::upsert_user_data(
                c,
                &caller.tenant_id,
                "analytics",
                "a1",
                &person,
                "2026-01-01T00:00:00.000000Z",
            )
        })
        .expect("data");
    let mut policy = Policy::default();
    policy.kinds.insert("draft".into(), KindAction::Delete);
    let before = snapshot(&app, &caller.tenant_id);
    for step in STEPS {
        let fail = |s: &str| {
            if s == step {
                Err(StoreError::Config(format!("injected failure at {s}")))
            } else {
                Ok(())
            }
        };
        let r = run(&app, &caller, &person, &policy, &fail);
        assert!(r.is_err(), "{step}");
        assert_eq!(
            snapshot(&app, &caller.tenant_id),
            before,
            "a failure at '{step}' left a trace"
        );
    }
    // A retry completes it.
    let receipt = run(&app, &caller, &person, &policy, NO_HOOK).expect("retry completes");
    assert_eq!(receipt.counts.get("deleted"), Some(&1));
    assert_ne!(snapshot(&app, &caller.tenant_id), before);
    assert!(
        app.db
            .read(|c| custodian::store::users::find(c, &caller.tenant_id, &person))
            .expect("read")
            .is_none()
    );
}
crate::both_backends!(
    interrupted_disposal,
    super::interrupted_anywhere_leaves_nothing
);

#[derive(Debug, Clone)]
struct Case {
    items: Vec<(usize, bool)>,
    kind_actions: Vec<Option<KindAction>>,
    targets: Vec<usize>,
    archive: bool,
    data: Vec<(usize, usize)>,
    data_actions: Vec<Option<DataAction>>,
}

const KINDS: [&str; 4] = ["recording", "draft", "folder", "schedule"];
const CATEGORIES: [&str; 3] = ["analytics", "favorite", "viewing_history"];

fn case() -> impl Strategy<Value = Case> {
    let action = prop_oneof![
        Just(None),
        Just(Some(KindAction::Transfer)),
        Just(Some(KindAction::Orphan)),
        Just(Some(KindAction::Delete)),
        Just(Some(KindAction::Keep))
    ];
    let data_action = prop_oneof![
        Just(None),
        Just(Some(DataAction::Delete)),
        Just(Some(DataAction::Anonymize)),
        Just(Some(DataAction::Keep))
    ];
    (
        proptest::collection::vec((0..KINDS.len(), any::<bool>()), 0..25),
        proptest::collection::vec(action, KINDS.len()),
        proptest::collection::vec(0..4usize, 0..4),
        any::<bool>(),
        proptest::collection::vec((0..CATEGORIES.len(), 0..5usize), 0..6),
        proptest::collection::vec(data_action, CATEGORIES.len()),
    )
        .prop_map(
            |(items, kind_actions, targets, archive, data, data_actions)| Case {
                items,
                kind_actions,
                targets,
                archive,
                data,
                data_actions,
            },
        )
}

async fn preview_is_receipt(b: Backend) {
    let app = spawn_app(b).await;
    let svc = services(&app);
    tokio::task::spawn_blocking(move || {
        let mut runner = proptest::test_runner::TestRunner::new(proptest::test_runner::Config {
            cases: 24,
            ..Default::default()
        });
        runner
            .run(&case(), |case| {
                let caller = tenant(&app, &format!("p-{}", uuid::Uuid::new_v4().simple()));
                let boss = user(&svc, &caller, "boss@example.edu", None);
                user(&svc, &caller, "custodian@example.edu", None);
                user(&svc, &caller, "named@example.edu", None);
                let person = user(&svc, &caller, "p@example.edu", Some(&boss));
                for (i, (k, root)) in case.items.iter().enumerate() {
                    let kind = KINDS[*k];
                    item(
                        &app,
                        &caller,
                        kind,
                        &format!("i{i}"),
                        &person,
                        *root && kind == "folder",
                        None,
                    );
                }
                for (i, (cat, _)) in case.data.iter().enumerate() {
                    app.db
                        .write(|c| {
                            ledger::upsert_user_data(
                                c,
                                &caller.tenant_id,
                                CATEGORIES[*cat],
                                &format!("u{i}"),
                                &person,
                                "2026-01-01T00:00:00.000000Z",
                            )
                        })
                        .expect("data");
                }
                let mut policy = Policy::default();
                for (k, a) in KINDS.iter().zip(&case.kind_actions) {
                    if let Some(a) = a {
                        policy.kinds.insert(k.to_string(), *a);
                    }
                }
                for (c, a) in CATEGORIES.iter().zip(&case.data_actions) {
                    if let Some(a) = a {
                        policy.user_data.insert(c.to_string(), *a);
                    }
                }
                let chain = [
                    Target::Manager,
                    Target::Custodian,
                    Target::User("named@example.edu".into()),
                    Target::User("nobody@example.edu".into()),
                ];
                policy.targets = case.targets.iter().map(|i| chain[*i].clone()).collect();
                policy.custodian = Some("custodian@example.edu".into());
                policy.personal_folder.action = if case.archive {
                    FolderAction::Archive
                } else {
                    FolderAction::Transfer
                };
                let plan = app
                    .db
                    .read(|c| {
                        disposal::plan(c, &caller.tenant_id, &person, Some(&boss), None, &policy)
                    })
                    .expect("plan");
                let receipt = run(&app, &caller, &person, &policy, NO_HOOK).expect("execute");
                let mut lines: Vec<(String, String, String, Option<String>)> = app
                    .db
                    .read(|c| {
                        disposal_items::table
                            .filter(disposal_items::disposal_id.eq(&receipt.disposal_id))
                            .select((
                                disposal_items::kind,
                                disposal_items::item_id,
                                disposal_items::action,
                                disposal_items::to_owner,
                            ))
                            .load(c)
                            .map_err(StoreError::from)
                    })
                    .expect("receipt");
                lines.sort();
                let mut planned: Vec<(String, String, String, Option<String>)> = plan
                    .items
                    .iter()
                    .map(|i| {
                        (
                            i.kind.clone(),
                            i.id.clone(),
                            i.action.to_string(),
                            i.to_owner.clone(),
                        )
                    })
                    .collect();
                planned.sort();
                prop_assert_eq!(lines, planned);
                prop_assert_eq!(&receipt.plan_hash, &plan.hash);
                Ok(())
            })
            .expect("preview = receipt");
    })
    .await
    .expect("join");
}
crate::both_backends!(preview_equals_receipt, super::preview_is_receipt);

/// PostgreSQL: `victim`'s disposal, run on a thread of its own and holding
/// the tenant's counter row until told to commit (`commit`).
struct CounterHeld {
    thread: std::thread::JoinHandle<bool>,
    go: std::sync::mpsc::Sender<()>,
    /// Its backend's pid.
    pid: i64,
}

impl CounterHeld {
    fn hold(app: &TestApp, caller: &Actor, victim: &str) -> CounterHeld {
        use custodian::service_error::ServiceError;
        let (held, is_held) = std::sync::mpsc::channel();
        let (go, may_commit) = std::sync::mpsc::channel::<()>();
        let (db, dp, r, v) = (
            app.db.clone(),
            app.deprov.clone(),
            caller.clone(),
            victim.to_string(),
        );
        let thread = std::thread::spawn(move || {
            db.write_long(|c| {
                let out = dp.dispose_in(c, &r, &v, Cause::Delete, None)?;
                let pid = crate::common::sql::load_sql::<custodian::store::db::Count>(
                    c,
                    &crate::common::sql::Sql::new("SELECT pg_backend_pid()::bigint AS n"),
                )?
                .first()
                .map_or(0, |r| r.n);
                held.send(pid).ok();
                // Bounded: the test fails on its own if it never says go.
                may_commit
                    .recv_timeout(std::time::Duration::from_secs(30))
                    .map_err(|_| ServiceError::Conflict("never told to commit".into()))?;
                Ok::<_, ServiceError>(out)
            })
            .is_ok()
        });
        let pid = is_held
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("the first disposal holds the counter row");
        CounterHeld { thread, go, pid }
    }

    /// Polls (bounded) until `n` sessions wait for the held row, directly or
    /// behind another waiter; else lets the holder commit and fails.
    fn until_waiting(&self, app: &TestApp, n: i64, what: &str) {
        let sql = crate::common::sql::Sql::new(&format!(
            "WITH RECURSIVE w(pid) AS (SELECT {}::int \
             UNION SELECT a.pid FROM pg_stat_activity a, w WHERE w.pid = ANY(pg_blocking_pids(a.pid))) \
             SELECT COUNT(*) - 1 AS n FROM w",
            self.pid
        ));
        for _ in 0..600 {
            let waiting = app
                .db
                .read(|c| crate::common::sql::load_sql::<custodian::store::db::Count>(c, &sql))
                .expect("pg_stat_activity")
                .first()
                .map_or(0, |r| r.n);
            if waiting >= n {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        self.go.send(()).ok();
        panic!("{what} never waited for the counter row");
    }

    /// Lets the holder commit; whether its disposal succeeded.
    fn commit(self) -> bool {
        self.go.send(()).ok();
        self.thread.join().expect("thread")
    }
}

/// `caller`'s disposal of `person` on a thread of its own.
fn dispose_on_thread(app: &TestApp, caller: &Actor, person: &str) -> std::thread::JoinHandle<bool> {
    let (db, dp, r, p) = (
        app.db.clone(),
        app.deprov.clone(),
        caller.clone(),
        person.to_string(),
    );
    std::thread::spawn(move || {
        db.write_long(|c| dp.dispose_in(c, &r, &p, Cause::Delete, None))
            .is_ok()
    })
}

/// Creates a user; its id.
fn create_user(app: &TestApp, caller: &Actor, body: serde_json::Value) -> Result<String, String> {
    custodian::provisioning::users::create(
        &services(app),
        caller,
        &body,
        &Default::default(),
        "http://x",
    )
    .map(|r| r.body["id"].as_str().unwrap_or_default().to_string())
    .map_err(|e| format!("{e:?}"))
}

/// Creates a user on a thread of its own, waiting (bounded) for it: a create
/// made while a disposal waits for the counter row must not wait for it.
fn create_meanwhile(
    app: &TestApp,
    caller: &Actor,
    body: serde_json::Value,
) -> Result<String, String> {
    let (made, got) = std::sync::mpsc::channel();
    let (svc, caller) = (services(app), caller.clone());
    std::thread::spawn(move || {
        made.send(
            custodian::provisioning::users::create(
                &svc,
                &caller,
                &body,
                &Default::default(),
                "http://x",
            )
            .map(|r| r.body["id"].as_str().unwrap_or_default().to_string())
            .map_err(|e| format!("{e:?}")),
        )
        .ok();
    });
    got.recv_timeout(std::time::Duration::from_secs(20))
        .map_err(|_| "the create waited for the disposal".to_string())?
}

/// The tenant's email hashes in tombstones.
fn email_hashes(app: &TestApp, tenant: &str) -> i64 {
    app.db
        .read(|c| {
            tombstone_hashes::table
                .filter(tombstone_hashes::tenant_id.eq(tenant))
                .filter(tombstone_hashes::id_type.eq("email"))
                .count()
                .get_result(c)
                .map_err(StoreError::from)
        })
        .expect("hashes")
}

/// PostgreSQL: two people share an email; B's disposal holds the counter row
/// while A's waits for it (B still active then), then commits. A's tombstone,
/// planned under the row, must take the email (A's alone by then): B's
/// skipped it (A was active), so otherwise no tombstone would hold it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_skipped_identifier_is_asked_again_under_the_counter_lock() {
    let Some(app) = crate::common::postgres_app().await else {
        return;
    };
    let caller = tenant(&app, "shared-email");
    let shared = "shared@example.edu";
    let person = |name: &str| {
        create_user(
            &app,
            &caller,
            json!({"userName": name, "emails": [
            {"value": name, "type": "work"}, {"value": shared, "type": "home"}]}),
        )
        .expect("create")
    };
    let (a, b) = (person("a@example.edu"), person("b@example.edu"));
    let held = CounterHeld::hold(&app, &caller, &b);
    let second = dispose_on_thread(&app, &caller, &a);
    held.until_waiting(&app, 1, "A's disposal");
    assert!(held.commit());
    assert!(second.join().expect("thread"));
    // b@ (B's), a@ and the shared one (A's).
    assert_eq!(
        email_hashes(&app, &caller.tenant_id),
        3,
        "the shared email is tombstoned once, by A"
    );
}

/// A report that names the person and commits while their disposal waits for
/// the tenant's counter row is repointed: the disposal reads the reports
/// again under that row (a create takes no lock of the person it names).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_report_committed_while_the_disposal_waits_is_repointed() {
    let Some(app) = crate::common::postgres_app().await else {
        return;
    };
    let caller = tenant(&app, "late-report");
    let a = create_user(&app, &caller, json!({"userName": "a@example.edu"})).expect("A");
    let b = create_user(&app, &caller, json!({"userName": "b@example.edu"})).expect("B");
    let held = CounterHeld::hold(&app, &caller, &b);
    let second = dispose_on_thread(&app, &caller, &a);
    held.until_waiting(&app, 1, "A's disposal");
    let r = create_meanwhile(
        &app,
        &caller,
        json!({"userName": "r@example.edu",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"manager": {"value": "a@example.edu"}}}),
    );
    assert!(held.commit());
    let r = r.expect("R created while A's disposal waited");
    assert!(second.join().expect("thread"));
    let manager_key: Option<String> = app
        .db
        .read(|c| {
            users::table
                .filter(users::id.eq(&r))
                .select(users::manager_key)
                .first(c)
                .map_err(StoreError::from)
        })
        .expect("R");
    assert_ne!(
        manager_key.as_deref(),
        Some("a@example.edu"),
        "R still names the disposed person by their userName"
    );
}

/// An email another active user gets while the person's disposal waits for
/// the tenant's counter row stays out of the person's tombstone: it is
/// planned under that row (a create takes no lock of the person's), so the
/// new holder is not refused at the gate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_email_taken_while_the_disposal_waits_stays_out_of_the_tombstone() {
    let Some(app) = crate::common::postgres_app().await else {
        return;
    };
    let caller = tenant(&app, "late-holder");
    let shared = "shared@example.edu";
    let a = create_user(
        &app,
        &caller,
        json!({"userName": "a@example.edu", "emails": [
        {"value": "a@example.edu", "type": "work"}, {"value": shared, "type": "home"}]}),
    )
    .expect("A");
    let c = create_user(&app, &caller, json!({"userName": "c@example.edu"})).expect("C");
    let held = CounterHeld::hold(&app, &caller, &c);
    let second = dispose_on_thread(&app, &caller, &a);
    held.until_waiting(&app, 1, "A's disposal");
    let b = create_meanwhile(
        &app,
        &caller,
        json!({"userName": "b@example.edu", "emails": [{"value": shared, "type": "work"}]}),
    );
    assert!(held.commit());
    b.expect("B created while A's disposal waited");
    assert!(second.join().expect("thread"));
    // a@ only: the shared one belongs to B, active, now.
    assert_eq!(
        email_hashes(&app, &caller.tenant_id),
        1,
        "A's tombstone holds the email B has"
    );
}

//! Query plans on PostgreSQL: the lookups IdPs make (`userName`, `externalId`,
//! `emails.value`, Entra's `emails[type eq "work"].value`, group membership
//! checks) use indexes on a 20,000-user tenant, and cursor pages walk the
//! ordering index instead of sorting. Run with `--nocapture` to print the plans.

use crate::common::sql::{Sql, execute_sql, load_sql};
use crate::common::{Backend, pg_url, spawn_app};
use custodian::scim::filter::parse;
use custodian::store::db::{Order, Window};
use custodian::store::{StoreError, filter_sql, groups, users};
use diesel::QueryableByName;

#[derive(QueryableByName)]
struct PlanLine {
    #[diesel(sql_type = diesel::sql_types::Text)]
    #[diesel(column_name = "QUERY PLAN")]
    line: String,
}

fn raw(text: &str) -> Sql {
    Sql::new(text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idp_lookups_use_indexes_on_postgres() {
    if pg_url().is_none() {
        eprintln!("CUSTODIAN_TEST_PG_URL not set: PostgreSQL tier not run");
        return;
    }
    let app = spawn_app(Backend::Postgres).await;
    let db = app.db.clone();
    tokio::task::spawn_blocking(move || {
        db.write(|c| {
            for stmt in [
                "INSERT INTO users (id, tenant_id, state, user_name, user_name_key, external_id, display_name_key, active, data, search, created_at, updated_at, version)
                 SELECT 'u' || n, t.id, 'active', 'User' || n || '@Example.com', 'user' || n || '@example.com', 'ext-' || n, 'user ' || n, TRUE, '{}',
                        '{\"title\": \"t' || (n % 50) || '\"}', to_char(TIMESTAMP '2025-01-01' + n * INTERVAL '1 second', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'),
                        '2025-01-01T00:00:00.000000Z', 1
                 FROM generate_series(1, 20000) n, tenants t WHERE t.name = 'default'",
                "INSERT INTO user_emails (user_id, position, tenant_id, value, value_key, kind, is_primary)
                 SELECT u.id, 0, u.tenant_id, u.user_name, u.user_name_key, 'work', TRUE FROM users u",
                "INSERT INTO groups (id, tenant_id, display_name, display_name_key, data, created_at, updated_at, version)
                 SELECT 'g' || n, t.id, 'Group ' || n, 'group ' || n, '{}', '2025-01-01T00:00:00.000000Z', '2025-01-01T00:00:00.000000Z', 1
                 FROM generate_series(1, 200) n, tenants t WHERE t.name = 'default'",
                "INSERT INTO group_members (group_id, member_id, tenant_id, member_type, created_at)
                 SELECT 'g' || (1 + n % 200), u.id, u.tenant_id, 'User', '2025-01-01T00:00:00.000000Z'
                 FROM users u, generate_series(1, 3) n",
                "ANALYZE",
            ] {
                execute_sql(c, &raw(stmt))?;
            }
            Ok::<(), StoreError>(())
        })
        .expect("load");
        let tenant: String = db
            .read(|c| {
                #[derive(QueryableByName)]
                struct T {
                    #[diesel(sql_type = diesel::sql_types::Text)]
                    id: String,
                }
                load_sql::<T>(c, &raw("SELECT id FROM tenants WHERE name = 'default'"))
                    .map(|r| r.into_iter().map(|t| t.id).next().unwrap_or_default())
            })
            .expect("tenant");
        let explain = |sql: Sql| -> String {
            // EXPLAIN does not take parameters: inline them as SQL literals.
            let mut text = String::new();
            let mut binds = sql.binds.iter();
            for ch in sql.text.chars() {
                if ch == '?' {
                    match binds.next() {
                        Some(
                            custodian::store::db::Bind::Text(s)
                            | custodian::store::db::Bind::OptText(Some(s)),
                        ) => text.push_str(&format!("'{}'", s.replace('\'', "''"))),
                        Some(custodian::store::db::Bind::OptText(None)) => text.push_str("NULL"),
                        Some(custodian::store::db::Bind::Bool(b)) => text.push_str(&b.to_string()),
                        Some(custodian::store::db::Bind::BigInt(n)) => text.push_str(&n.to_string()),
                        None => text.push('?'),
                    }
                } else {
                    text.push(ch);
                }
            }
            db.read(|c| load_sql::<PlanLine>(c, &raw(&format!("EXPLAIN {text}"))))
                .expect("explain")
                .into_iter()
                .map(|l| l.line)
                .collect::<Vec<_>>()
                .join("\n")
        };
        let backend = custodian::store::Backend::Postgres;
        let user_cases = [
            (r#"userName eq "User777@example.com""#, "users_user_name_key"),
            (r#"externalId eq "ext-777""#, "users_external_id_unique"),
            (r#"emails.value eq "user777@example.com""#, "user_emails_value_key"),
            (r#"emails[type eq "work"].value eq "user777@example.com""#, "user_emails_value_key"),
        ];
        for (f, index) in user_cases {
            let w = filter_sql::translate(&filter_sql::USERS, backend, &tenant, &parse(f).expect("parse")).expect("translate");
            let plan = explain(Sql::of(&users::list_sql(&tenant, Some(w), &Order::default(), &Window::Offset(0), 100)));
            eprintln!("-- GET /Users?filter={f}\n{plan}\n");
            assert!(plan.contains(index), "{f} should use {index}:\n{plan}");
            assert!(!plan.contains("Seq Scan on users"), "{f}:\n{plan}");
            assert!(!plan.contains("Seq Scan on user_emails"), "{f}:\n{plan}");
        }
        let group_cases = [
            r#"id eq "g7" and members[value eq "u777"]"#,
            r#"members[value eq "u777"]"#,
        ];
        for f in group_cases {
            let w = filter_sql::translate(&filter_sql::GROUPS, backend, &tenant, &parse(f).expect("parse")).expect("translate");
            let plan = explain(Sql::of(&groups::list_sql(&tenant, Some(w), &Order::default(), &Window::Offset(0), 100)));
            eprintln!("-- GET /Groups?filter={f}\n{plan}\n");
            assert!(plan.contains("Index"), "{f}:\n{plan}");
            assert!(!plan.contains("Seq Scan on group_members"), "{f}:\n{plan}");
        }
        // A deep cursor page reads the ordering index from the position on.
        let at = custodian::scim::cursor::Position {
            sort: None,
            created: "2025-01-01T04:00:00.000000Z".into(),
            id: "u14400".into(),
            total: 0,
        };
        let plan = explain(Sql::of(&users::list_sql(&tenant, None, &Order::default(), &Window::After(Some(at)), 100)));
        eprintln!("-- GET /Users?cursor=<deep>&count=100\n{plan}\n");
        assert!(plan.contains("users_order"), "{plan}");
        assert!(!plan.contains("Sort"), "a cursor page must not sort the tenant:\n{plan}");

        // A lookup is planned once per connection, not at every request:
        // after PostgreSQL's five custom plans its plan cache must settle on
        // the generic plan (with `OFFSET $n` in the first page it never did,
        // and planning cost six times the execution).
        #[derive(QueryableByName)]
        struct Plans {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            generic_plans: i64,
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            custom_plans: i64,
        }
        let plans = db
            .read(|c| {
                for n in 0..10 {
                    let f = parse(&format!(r#"userName eq "User{}@example.com""#, 700 + n)).expect("parse");
                    let w = filter_sql::translate(&filter_sql::USERS, backend, &tenant, &f).expect("translate");
                    let (page, _) = users::list_with_groups(c, &tenant, Some(w), &Order::default(), &Window::Offset(0), 100)?;
                    assert_eq!(page.rows.len(), 1, "user{} found", 700 + n);
                }
                load_sql::<Plans>(
                    c,
                    &raw("SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE statement LIKE '%user_name_key = $%'"),
                )
            })
            .expect("prepared statements");
        assert_eq!(plans.len(), 1, "one prepared userName lookup on the connection");
        assert!(
            plans[0].generic_plans >= 5 && plans[0].custom_plans <= 5,
            "the userName lookup is planned anew at every request: {} generic, {} custom plans",
            plans[0].generic_plans,
            plans[0].custom_plans
        );
    })
    .await
    .expect("explain");
}

#[derive(QueryableByName)]
struct SqlitePlanLine {
    #[diesel(sql_type = diesel::sql_types::Text)]
    detail: String,
}

/// SQLite never turns a correlated EXISTS into a join, and without statistics
/// it walks the ordering index: the email lookup scanned every user. The
/// lookups must start from their index on a fresh database (no ANALYZE run
/// by the test: the server's own planner statistics decide).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idp_lookups_use_indexes_on_sqlite() {
    let app = spawn_app(Backend::Sqlite).await;
    let db = app.db.clone();
    tokio::task::spawn_blocking(move || {
        db.write(|c| {
            for stmt in [
                "INSERT INTO users (id, tenant_id, state, user_name, user_name_key, external_id, display_name_key, active, data, search, created_at, updated_at, version)
                 WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000)
                 SELECT 'u' || i, t.id, 'active', 'User' || i || '@Example.com', 'user' || i || '@example.com', 'ext-' || i, 'user ' || i, TRUE, '{}', '{}',
                        printf('2025-01-01T%02d:%02d:%02d.000000Z', i / 3600, (i / 60) % 60, i % 60), '2025-01-01T00:00:00.000000Z', 1
                 FROM n, tenants t WHERE t.name = 'default'",
                "INSERT INTO user_emails (user_id, position, tenant_id, value, value_key, kind, is_primary)
                 SELECT u.id, 0, u.tenant_id, u.user_name, u.user_name_key, 'work', TRUE FROM users u",
                "INSERT INTO groups (id, tenant_id, display_name, display_name_key, data, created_at, updated_at, version)
                 SELECT 'g' || i, t.id, 'Group ' || i, 'group ' || i, '{}', '2025-01-01T00:00:00.000000Z', '2025-01-01T00:00:00.000000Z', 1
                 FROM (SELECT value AS i FROM json_each('[1,2,3,4,5,6,7,8,9,10]')), tenants t WHERE t.name = 'default'",
                "INSERT INTO group_members (group_id, member_id, tenant_id, member_type, created_at)
                 SELECT 'g' || (1 + abs(random()) % 10), u.id, u.tenant_id, 'User', '2025-01-01T00:00:00.000000Z' FROM users u",
            ] {
                execute_sql(c, &raw(stmt))?;
            }
            Ok::<(), StoreError>(())
        })
        .expect("load");
        let tenant: String = db
            .read(|c| {
                #[derive(QueryableByName)]
                struct T {
                    #[diesel(sql_type = diesel::sql_types::Text)]
                    id: String,
                }
                load_sql::<T>(c, &raw("SELECT id FROM tenants WHERE name = 'default'"))
                    .map(|r| r.into_iter().map(|t| t.id).next().unwrap_or_default())
            })
            .expect("tenant");
        let explain = |sql: Sql| -> String {
            let mut q = sql.clone();
            q.text = format!("EXPLAIN QUERY PLAN {}", sql.text);
            db.read(|c| load_sql::<SqlitePlanLine>(c, &q))
                .expect("explain")
                .into_iter()
                .map(|l| l.detail)
                .collect::<Vec<_>>()
                .join("\n")
        };
        let backend = custodian::store::Backend::Sqlite;
        let user_cases = [
            (r#"userName eq "User777@example.com""#, "USING INDEX users_user_name_key"),
            (r#"externalId eq "ext-777""#, "USING INDEX users_external_id_unique"),
            (r#"emails.value eq "user777@example.com""#, "USING INDEX user_emails_value_key"),
            (r#"emails[type eq "work"].value eq "user777@example.com""#, "USING INDEX user_emails_value_key"),
        ];
        for (f, index) in user_cases {
            let w = filter_sql::translate(&filter_sql::USERS, backend, &tenant, &parse(f).expect("parse")).expect("translate");
            let plan = explain(Sql::of(&users::list_sql(&tenant, Some(w), &Order::default(), &Window::Offset(0), 100)));
            eprintln!("-- GET /Users?filter={f}\n{plan}\n");
            assert!(plan.contains(index), "{f} should use {index}:\n{plan}");
            assert!(!plan.contains("users_order"), "{f} must not walk the tenant in order:\n{plan}");
            assert!(!plan.contains("SCAN u"), "{f}:\n{plan}");
        }
        let f = r#"members[value eq "u777"]"#;
        let w = filter_sql::translate(&filter_sql::GROUPS, backend, &tenant, &parse(f).expect("parse")).expect("translate");
        let plan = explain(Sql::of(&groups::list_sql(&tenant, Some(w), &Order::default(), &Window::Offset(0), 100)));
        eprintln!("-- GET /Groups?filter={f}\n{plan}\n");
        assert!(plan.contains("group_members_member"), "{f}:\n{plan}");

        // The write path's identifier lookups, in the shapes the code builds
        // (store::users::find_by_identifiers, the caller and heir lookups of
        // a disposal): since the plain twins of the partial unique indexes
        // were dropped (migration 000009), each must probe a partial index,
        // which SQLite uses only when the query repeats its predicate.
        use crate::common::schema::users as u;
        use diesel::prelude::*;
        let t = tenant.as_str();
        let sql_of = |q: String| q.split(" -- binds").next().unwrap_or_default().to_string();
        let shapes = [
            (
                sql_of(diesel::debug_query::<diesel::sqlite::Sqlite, _>(
                    &u::table.filter(u::tenant_id.eq(t)).filter(users::visible()).filter(u::user_name_key.eq("user777@example.com")).select(u::id),
                ).to_string()),
                "users_user_name_key",
            ),
            (
                sql_of(diesel::debug_query::<diesel::sqlite::Sqlite, _>(
                    &u::table.filter(u::tenant_id.eq(t)).filter(users::visible()).filter(u::external_id.eq("ext-777")).select(u::id),
                ).to_string()),
                "users_external_id_unique",
            ),
            (
                sql_of(diesel::debug_query::<diesel::sqlite::Sqlite, _>(
                    &u::table.filter(u::tenant_id.eq(t)).filter(u::user_name_key.eq("user777@example.com")).filter(users::visible()).filter(u::state.eq("active")).select(u::id),
                ).to_string()),
                "users_user_name_key",
            ),
            (
                "SELECT id FROM users WHERE tenant_id = ? AND state IN ('active', 'suspended') AND state = 'active' AND external_id = ? AND id <> ? ORDER BY created_at LIMIT 1".to_string(),
                "users_external_id_unique",
            ),
        ];
        // The gate's lookup (deprovision::gate), one branch per identifier.
        let gate = |column: &str| format!(
            "SELECT 'userName' AS id_type, x.id AS user_id, x.state AS state FROM (SELECT u.id, u.state FROM users u WHERE u.tenant_id = ? AND u.state IN ('active', 'suspended') AND u.{column} = ?) x"
        );
        let shapes = shapes.into_iter().chain([
            (gate("user_name_key"), "users_user_name_key"),
            (gate("external_id"), "users_external_id_unique"),
        ]);
        for (sql, index) in shapes {
            let mut q = raw(&sql);
            let values = [t, "user777@example.com", "u1"];
            q.binds = values[..sql.matches('?').count()].iter().map(|v| custodian::store::db::Bind::Text(v.to_string())).collect();
            let plan = explain(q);
            eprintln!("-- {sql}\n{plan}\n");
            assert!(plan.contains(&format!("USING INDEX {index}")), "{sql} should use {index}:\n{plan}");
        }
    })
    .await
    .expect("explain");
}

/// PostgreSQL plans without statistics picked a tenant-wide index scan for
/// `externalId eq` after a bulk import (and autovacuum may be off, or a
/// minute away): the server's own pass ANALYZEs tables that changed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statistics_are_refreshed_on_postgres() {
    if pg_url().is_none() {
        eprintln!("CUSTODIAN_TEST_PG_URL not set: PostgreSQL tier not run");
        return;
    }
    let app = spawn_app(Backend::Postgres).await;
    let db = app.db.clone();
    tokio::task::spawn_blocking(move || {
        #[derive(QueryableByName)]
        struct Analyzed {
            #[diesel(sql_type = diesel::sql_types::Bool)]
            done: bool,
        }
        let analyzed = || -> bool {
            db.read(|c| {
                load_sql::<Analyzed>(
                    c,
                    &raw("SELECT (last_analyze IS NOT NULL) AS done FROM pg_stat_user_tables \
                          WHERE schemaname = current_schema() AND relname = 'users'"),
                )
            })
            .expect("stats")
            .first()
            .is_some_and(|r| r.done)
        };
        db.write(|c| {
            execute_sql(
                c,
                &raw("INSERT INTO users (id, tenant_id, state, user_name, user_name_key, active, data, created_at, updated_at, version)
                      SELECT 'u' || n, t.id, 'active', 'u' || n, 'u' || n, TRUE, '{}', '2025-01-01T00:00:00.000000Z', '2025-01-01T00:00:00.000000Z', 1
                      FROM generate_series(1, 3000) n, tenants t WHERE t.name = 'default'"),
            )?;
            // Activity counters reach the statistics system when this session
            // goes idle, at most once a second unless forced (PostgreSQL 15+).
            execute_sql(c, &raw("SELECT pg_stat_force_next_flush()"))
        })
        .expect("load");
        assert!(!analyzed(), "nothing has analysed the fresh table yet");
        db.refresh_statistics();
        assert!(analyzed(), "3,000 new rows: users must have been analysed");
    })
    .await
    .expect("refresh");
}

#[derive(QueryableByName)]
struct Used {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    used: i64,
}

/// Without the query planner stability guarantee SQLite plans `LIMIT ?` by its
/// bound value and re-prepares the statement whenever that value is bound
/// again, so every cached `.first()` or page query was parsed and planned per
/// request. `.cargo/config.toml` builds the bundled SQLite with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_is_built_with_stable_plans() {
    let app = spawn_app(Backend::Sqlite).await;
    let db = app.db.clone();
    let used = tokio::task::spawn_blocking(move || {
        db.read(|c| {
            load_sql::<Used>(
                c,
                &raw("SELECT sqlite_compileoption_used('ENABLE_QPSG') AS used"),
            )
        })
    })
    .await
    .expect("join")
    .expect("query");
    assert_eq!(used.first().map(|u| u.used), Some(1));
}

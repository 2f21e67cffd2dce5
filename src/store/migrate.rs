//! Schema migrations, applied at start-up (on PostgreSQL in one transaction
//! under a transaction-level advisory lock, so replicas starting together
//! migrate once, also behind a transaction-mode pooler), and the planner
//! statistics a new SQLite database starts with.

use super::error::StoreError;
use super::pool::AnyConnection;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const PG_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

pub(super) fn run_migrations(conn: &mut AnyConnection) -> Result<(), StoreError> {
    match conn {
        // Several replicas may start at once: they migrate one after the
        // other, each in one transaction holding a transaction-level advisory
        // lock. Never a session lock: behind a transaction-mode pooler its
        // unlock would run on another server connection than the lock, which
        // would stay held, blocking every later start.
        AnyConnection::Postgresql(_) => conn.transaction(|conn| {
            conn.batch_execute("SELECT pg_advisory_xact_lock(7428310021)")?;
            migrate(conn, PG_MIGRATIONS)
        }),
        AnyConnection::Sqlite(_) => migrate(conn, SQLITE_MIGRATIONS),
    }
}

fn migrate(conn: &mut AnyConnection, set: EmbeddedMigrations) -> Result<(), StoreError> {
    refuse_newer_schema(conn, &set)
        .and_then(|_| {
            conn.run_pending_migrations(set)
                .map(|_| ())
                .map_err(|e| StoreError::Migration(e.to_string()))
        })
        .and_then(|_| match conn {
            AnyConnection::Postgresql(_) => record_contraction(conn, &PG_MIGRATIONS),
            AnyConnection::Sqlite(_) => record_contraction(conn, &SQLITE_MIGRATIONS),
        })
        .and_then(|_| super::users::backfill_search(conn))
        .and_then(|_| match conn {
            AnyConnection::Sqlite(c) => sqlite_planner_stats(c),
            AnyConnection::Postgresql(_) => Ok(()),
        })
}

/// SQLite chooses plans from `sqlite_stat1`. A new database has no statistics,
/// and without them the planner answers `emails[type eq "work"].value eq …` by
/// walking the tenant's users in order and probing each (linear in users)
/// rather than from the email index. Until `PRAGMA optimize` has measured the
/// real tables, seed figures describing a large tenant: SQLite's documented
/// way to pin plans. Only the SCIM lookup tables are described.
fn sqlite_planner_stats(c: &mut diesel::SqliteConnection) -> Result<(), StoreError> {
    // Creates sqlite_stat1 when missing (analysing only the tiny tenants table).
    c.batch_execute("ANALYZE tenants")?;
    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let described: Vec<N> = diesel::sql_query(
        "SELECT COUNT(*) AS n FROM sqlite_stat1 WHERE tbl IN ('users', 'user_emails', 'group_members')",
    )
    .load(c)?;
    if described.first().is_some_and(|r| r.n > 0) {
        return Ok(());
    }
    // "rows, rows per distinct prefix…": a million users, 100,000 per tenant.
    c.batch_execute(
        "INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES
           ('users', 'sqlite_autoindex_users_1', '1000000 1'),
           ('users', 'users_order', '1000000 100000 1 1'),
           ('users', 'users_user_name_key', '1000000 100000 1'),
           ('users', 'users_external_id_unique', '1000000 100000 1'),
           ('users', 'users_display_name_key', '1000000 100000 2'),
           ('users', 'users_manager', '1000000 100000 10'),
           ('users', 'users_manager_key', '1000000 100000 10'),
           ('user_emails', 'sqlite_autoindex_user_emails_1', '2000000 2 1'),
           ('user_emails', 'user_emails_value_key', '2000000 200000 1'),
           ('group_members', 'sqlite_autoindex_group_members_1', '3000000 1000 1'),
           ('group_members', 'group_members_member', '3000000 300000 3');
         ANALYZE sqlite_schema;",
    )?;
    Ok(())
}

/// A migration whose directory name ends in this *contracts* the schema: it
/// drops, renames or narrows something an older release reads or writes
/// (README "Upgrade": releases expand; a later release contracts).
pub const CONTRACT_SUFFIX: &str = "_contract";

/// `deployment_keys` row naming the newest contracting migration applied: a
/// binary that does not know it must not run on this database.
const CONTRACTED_BY: &str = "schema_contracted_by";

fn known_migrations(set: &EmbeddedMigrations) -> Result<Vec<(String, bool)>, StoreError> {
    use diesel::migration::MigrationSource;
    Ok(MigrationSource::<diesel::sqlite::Sqlite>::migrations(set)
        .map_err(|e| StoreError::Migration(e.to_string()))?
        .iter()
        .map(|m| {
            (
                m.name().version().to_string(),
                m.name().to_string().ends_with(CONTRACT_SUFFIX),
            )
        })
        .collect())
}

/// The newest migration this binary knows: its schema version (both sets carry
/// the same names).
pub fn schema_version() -> String {
    known_migrations(&SQLITE_MIGRATIONS)
        .ok()
        .and_then(|m| m.into_iter().map(|(v, _)| v).max())
        .unwrap_or_default()
}

/// What a binary does on a database carrying migrations it does not know
/// (`applied` minus `known`): run, when those only expanded the schema (a
/// newer release's replica migrated it during a rolling upgrade; this one's
/// code ignores what they added); refuse, when a contracting migration this
/// binary does not know has been applied (`contracted_by`), since it may rely
/// on what that removed. Returns the unknown versions.
pub fn newer_schema_verdict(
    known: &[String],
    applied: &[String],
    contracted_by: Option<&str>,
) -> Result<Vec<String>, String> {
    let unknown: Vec<String> = applied
        .iter()
        .filter(|v| !known.contains(v))
        .cloned()
        .collect();
    match contracted_by {
        Some(c) if !known.iter().any(|k| k == c) => Err(format!(
            "the database has migration {c}, which this binary does not know and which contracts the schema \
             (it removes what older releases use): it was migrated by a newer Custodian; run that version (or newer)"
        )),
        _ => Ok(unknown),
    }
}

/// A binary older than the database runs only while the newer migrations
/// expanded the schema (see `newer_schema_verdict`).
fn refuse_newer_schema(
    conn: &mut AnyConnection,
    set: &EmbeddedMigrations,
) -> Result<(), StoreError> {
    let known: Vec<String> = known_migrations(set)?.into_iter().map(|(v, _)| v).collect();
    let applied: Vec<String> = conn
        .applied_migrations()
        .map_err(|e| StoreError::Migration(e.to_string()))?
        .iter()
        .map(|v| v.to_string())
        .collect();
    if applied.iter().all(|v| known.contains(v)) {
        return Ok(());
    }
    let contracted_by = super::deployment::check_value(conn, CONTRACTED_BY)?;
    let unknown = newer_schema_verdict(&known, &applied, contracted_by.as_deref())
        .map_err(StoreError::Migration)?;
    tracing::warn!(
        newer_migrations = ?unknown,
        "the database carries expand migrations of a newer release (a rolling upgrade): this binary runs on it and ignores what they added"
    );
    Ok(())
}

/// After migrating: records the newest contracting migration this binary
/// applied (or found applied), so older binaries refuse the database.
fn record_contraction(
    conn: &mut AnyConnection,
    set: &EmbeddedMigrations,
) -> Result<(), StoreError> {
    let Some(newest) = known_migrations(set)?
        .into_iter()
        .filter(|(_, contract)| *contract)
        .map(|(v, _)| v)
        .max()
    else {
        return Ok(());
    };
    let current = super::deployment::check_value(conn, CONTRACTED_BY)?;
    if current.as_deref().is_some_and(|c| c >= newest.as_str()) {
        return Ok(());
    }
    super::deployment::set_value(conn, CONTRACTED_BY, &newest, &super::time::now())
}

#[cfg(test)]
mod tests {
    use crate::store::{Db, StoreError};
    use diesel::connection::SimpleConnection;

    /// 000013 counts every tenant's completed disposals into
    /// `tenant_counters.disposals_done`, creating the counters row of a tenant
    /// that had none; held and scheduled disposals are not counted.
    #[test]
    fn disposals_done_backfill_counts_each_tenants_completed_disposals() {
        use diesel::prelude::*;
        use diesel_migrations::MigrationHarness;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("m.db");
        let mut c = diesel::SqliteConnection::establish(&path.display().to_string()).expect("open");
        // Migrate up to, not including, 000013.
        loop {
            let pending = c
                .pending_migrations(super::SQLITE_MIGRATIONS)
                .expect("pending");
            let next = pending.first().expect("000013 is pending");
            if next.name().to_string().contains("000013") {
                break;
            }
            c.run_migration(next.as_ref()).expect("migrate");
        }
        c.batch_execute(
            "INSERT INTO tenants (id, name, created_at) VALUES
                ('ta', 'a', '2026-01-01T00:00:00Z'), ('tb', 'b', '2026-01-01T00:00:00Z'),
                ('tc', 'c', '2026-01-01T00:00:00Z');
             INSERT INTO tenant_counters (tenant_id, brake_tripped_at, next_seq)
                VALUES ('ta', NULL, 42);
             INSERT INTO disposals (id, tenant_id, user_id, state, cause, due_at, actor, created_at)
             VALUES ('d1', 'ta', 'u1', 'done', 'deleted', 'x', 'x', 'x'),
                    ('d2', 'ta', 'u2', 'done', 'deleted', 'x', 'x', 'x'),
                    ('d3', 'ta', 'u3', 'held', 'deleted', 'x', 'x', 'x'),
                    ('d4', 'tb', 'u4', 'done', 'suspended', 'x', 'x', 'x'),
                    ('d5', 'tc', 'u5', 'scheduled', 'suspended', 'x', 'x', 'x');",
        )
        .expect("seed");
        c.run_pending_migrations(super::SQLITE_MIGRATIONS)
            .expect("migrate the rest");
        #[derive(QueryableByName, Debug, PartialEq)]
        struct Row {
            #[diesel(sql_type = diesel::sql_types::Text)]
            tenant_id: String,
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            next_seq: i64,
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            disposals_done: i64,
        }
        let rows: Vec<Row> = diesel::sql_query(
            "SELECT tenant_id, next_seq, disposals_done FROM tenant_counters ORDER BY tenant_id",
        )
        .load(&mut c)
        .expect("read");
        let row = |t: &str, next_seq, disposals_done| Row {
            tenant_id: t.into(),
            next_seq,
            disposals_done,
        };
        // ta keeps its sequence; tb gets a row; tc (nothing done) needs none.
        assert_eq!(rows, vec![row("ta", 42, 2), row("tb", 1, 1)]);
    }

    #[test]
    fn runs_on_a_newer_expand_migration_and_refuses_a_newer_contracting_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join("x.db").display());
        let db = Db::open(&url, 1, true).expect("open");
        // A newer release's expand migration: a table this binary never reads.
        db.write(|c| {
            c.batch_execute(
                "CREATE TABLE later_release (id TEXT PRIMARY KEY NOT NULL);
                 INSERT INTO __diesel_schema_migrations (version) VALUES ('29991231000000')",
            )
            .map_err(StoreError::from)
        })
        .expect("expand");
        drop(db);
        let db = Db::open(&url, 1, false)
            .expect("an expand migration of a newer release is no reason to refuse");
        // That release (or a later one) contracts: older binaries must stop.
        db.write(|c| {
            c.batch_execute(
                "INSERT INTO deployment_keys (name, check_value, created_at)
                 VALUES ('schema_contracted_by', '29991231000000', '2999-12-31T00:00:00.000000Z')",
            )
            .map_err(StoreError::from)
        })
        .expect("contract");
        drop(db);
        let err = Db::open(&url, 1, false)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("29991231000000") && err.contains("contracts") && err.contains("newer"),
            "{err}"
        );
    }

    #[test]
    fn the_verdict_names_unknown_migrations_and_refuses_only_an_unknown_contraction() {
        use super::newer_schema_verdict as v;
        let known = vec!["1".to_string(), "2".to_string()];
        let applied = vec!["1".to_string(), "2".to_string(), "3".to_string()];
        assert_eq!(v(&known, &applied, None), Ok(vec!["3".to_string()]));
        assert_eq!(v(&known, &applied, Some("2")), Ok(vec!["3".to_string()]));
        assert!(v(&known, &applied, Some("3")).is_err());
        assert!(super::schema_version().as_str() >= "20261207010000");
    }
}

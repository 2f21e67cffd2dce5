//! SQLite snapshots for `custodian backup` and `restore`: `VACUUM INTO`
//! (a consistent copy from one read transaction, while the server writes)
//! and the checks a copy must pass before it is trusted.

use super::db::Db;
use super::error::StoreError;
use super::pool::Backend;
use diesel::prelude::*;
use diesel::sqlite::SqliteConnection;
use std::path::Path;

impl Db {
    /// Writes a consistent copy of the SQLite database to `to` (which must
    /// not exist). A read transaction: writers carry on meanwhile.
    pub fn snapshot_into(&self, to: &Path) -> Result<(), StoreError> {
        if self.backend != Backend::Sqlite {
            return Err(StoreError::Config("snapshots are SQLite only".into()));
        }
        let target = to
            .to_str()
            .ok_or_else(|| StoreError::Config(format!("{} is not UTF-8", to.display())))?;
        self.read(|c| {
            diesel::sql_query("VACUUM INTO ?")
                .bind::<diesel::sql_types::Text, _>(target)
                .execute(c)
                .map(|_| ())
                .map_err(StoreError::from)
        })
    }
}

#[derive(QueryableByName)]
struct Line {
    #[diesel(sql_type = diesel::sql_types::Text)]
    integrity_check: String,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// Checks a SQLite file: `PRAGMA integrity_check` says `ok`, and it holds
/// Custodian's tables (its migrations table and `users`).
pub fn verify_file(path: &Path) -> Result<(), StoreError> {
    let name = path
        .to_str()
        .ok_or_else(|| StoreError::Config(format!("{} is not UTF-8", path.display())))?;
    if !path.is_file() {
        return Err(StoreError::Config(format!("no file at {name}")));
    }
    let mut c = SqliteConnection::establish(name)
        .map_err(|e| StoreError::Config(format!("{name}: not a SQLite database: {e}")))?;
    let lines: Vec<Line> = diesel::sql_query("PRAGMA integrity_check")
        .load(&mut c)
        .map_err(|e| StoreError::Config(format!("{name}: integrity check failed: {e}")))?;
    if lines.len() != 1 || lines[0].integrity_check != "ok" {
        let first: Vec<String> = lines
            .into_iter()
            .take(5)
            .map(|l| l.integrity_check)
            .collect();
        return Err(StoreError::Corrupt(format!(
            "{name}: integrity check failed: {}",
            first.join("; ")
        )));
    }
    let tables: Vec<Count> = diesel::sql_query(
        "SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table' \
         AND name IN ('__diesel_schema_migrations', 'users', 'tombstones')",
    )
    .load(&mut c)?;
    if tables.first().map_or(0, |t| t.n) != 3 {
        return Err(StoreError::Config(format!(
            "{name} is a SQLite database but not a Custodian one"
        )));
    }
    Ok(())
}

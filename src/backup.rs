//! `custodian backup`, `custodian restore` (SQLite) and `custodian
//! disposals reapply`, and the lock a serving process holds so a restore
//! cannot replace its database.
//!
//! The lock is `flock` on `<db>.lock` beside the database: `serve` holds it
//! shared for its whole life (several servers may share a file), `restore`
//! takes it exclusive without waiting and refuses when it cannot. The kernel
//! drops a dead process's lock, so a crashed server never blocks a restore,
//! and a server starting during a restore fails to take it and stops.

use crate::config::Settings;
use crate::store::Db;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

/// Held by `serve` until it exits.
#[derive(Debug)]
pub struct ServeLock {
    _file: File,
}

fn lock_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

fn open_lock(db: &Path) -> Result<File, String> {
    let path = lock_path(db);
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))
}

/// `serve` on SQLite: the shared lock, or an error when a restore holds it.
pub fn lock_for_serving(db: &Path) -> Result<ServeLock, String> {
    let file = open_lock(db)?;
    match file.try_lock_shared() {
        Ok(()) => Ok(ServeLock { _file: file }),
        Err(std::fs::TryLockError::WouldBlock) => Err(format!(
            "{} is being restored (custodian restore holds {}); start again when it is done",
            db.display(),
            lock_path(db).display()
        )),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(format!("cannot lock {}: {e}", lock_path(db).display()))
        }
    }
}

/// The lock `restore` and `disposals reapply` take: none while a server runs.
pub fn lock_exclusive(db: &Path) -> Result<File, String> {
    let lock = open_lock(db)?;
    match lock.try_lock() {
        Ok(()) => Ok(lock),
        Err(std::fs::TryLockError::WouldBlock) => Err(format!(
            "a running custodian serve is using {} (it holds {}); stop every server on this \
             database first",
            db.display(),
            lock_path(db).display()
        )),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(format!("cannot lock {}: {e}", lock_path(db).display()))
        }
    }
}

/// What to do on PostgreSQL instead of `custodian backup`.
pub fn postgres_advice(to: &Path) -> String {
    format!(
        "custodian backup copies SQLite databases only. On PostgreSQL use the database's own tools, \
         for example:\n  pg_dump --format=custom --file={} \"$CUSTODIAN_DATABASE_URL\"\n\
         (restore with pg_restore --clean --if-exists --dbname=…), or continuous archiving \
         (PITR). Keep CUSTODIAN_TOMBSTONE_KEY with the dump. See README \"Backup and restore\".",
        to.display()
    )
}

/// Where the tombstone key lives, for the reminder after a backup.
fn key_reminder(settings: &Settings, db: &Path) -> String {
    if settings.tombstone_key.is_some() {
        return "The tombstone key comes from tombstone_key / CUSTODIAN_TOMBSTONE_KEY: keep a copy \
                with this backup. Without it the backup's tombstones cannot be matched and serve \
                refuses the database."
            .into();
    }
    let dir = db
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    format!(
        "Back up the tombstone key too: {} (the backup's tombstones are keyed with it; serve \
         refuses a database written with another key). Keep the disposal journal ({}) where it \
         is: it is what restores bring back up to date.",
        dir.join("tombstone.key").display(),
        settings
            .journal_file()
            .map_or_else(|| "not set".into(), |p| p.display().to_string())
    )
}

/// `custodian backup FILE`: a consistent online copy of the SQLite database,
/// verified. On PostgreSQL: how to use `pg_dump`, and an error.
pub fn backup(settings: &Settings, db: &Db, to: &Path) -> Result<String, String> {
    let Some(db_path) = settings.sqlite_path() else {
        return Err(postgres_advice(to));
    };
    if to.exists() {
        return Err(format!(
            "{} already exists; custodian backup never overwrites a file",
            to.display()
        ));
    }
    db.snapshot_into(to)
        .map_err(|e| format!("backup to {} failed: {e}", to.display()))?;
    // VACUUM INTO writes without fsync: make the copy durable before saying so.
    File::open(to)
        .and_then(|f| f.sync_all())
        .map_err(|e| format!("cannot sync {}: {e}", to.display()))?;
    if let Err(e) = crate::store::snapshot::verify_file(to) {
        let _ = std::fs::remove_file(to);
        return Err(format!("the copy failed verification and was removed: {e}"));
    }
    Ok(format!(
        "backup written and verified (integrity_check ok): {}\n{}",
        to.display(),
        key_reminder(settings, &db_path)
    ))
}

fn sidecar(db: &Path, suffix: &str) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// `custodian restore FILE`: verifies FILE, refuses while a server uses the
/// database, then replaces the database atomically: a copy written beside it
/// and synced, the old WAL and shared-memory files removed (they belong to
/// the old database), the copy renamed over it, the directory synced.
/// Returns the database path; the lock is held until the caller drops it.
pub fn restore(settings: &Settings, from: &Path) -> Result<(PathBuf, File), String> {
    let Some(db) = settings.sqlite_path() else {
        return Err(
            "custodian restore replaces SQLite databases only. On PostgreSQL restore the dump with \
             pg_restore (or recover to a point in time), then run `custodian disposals reapply` \
             with the journal_path your servers used. See README \"Backup and restore\"."
                .into(),
        );
    };
    crate::store::snapshot::verify_file(from)
        .map_err(|e| format!("{} cannot be restored: {e}", from.display()))?;
    // A fresh machine has no data directory yet.
    if let Some(dir) = db.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let lock = lock_exclusive(&db)?;
    let staged = sidecar(&db, ".restoring");
    let _ = std::fs::remove_file(&staged);
    std::fs::copy(from, &staged)
        .and_then(|_| File::open(&staged))
        .and_then(|f| f.sync_all())
        .map_err(|e| format!("cannot copy {} beside the database: {e}", from.display()))?;
    for stale in [sidecar(&db, "-wal"), sidecar(&db, "-shm")] {
        match std::fs::remove_file(&stale) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("cannot remove {}: {e}", stale.display())),
        }
    }
    std::fs::rename(&staged, &db).map_err(|e| format!("cannot replace {}: {e}", db.display()))?;
    let dir = db
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    crate::journal::sync_dir(dir).map_err(|e| format!("cannot sync {}: {e}", dir.display()))?;
    Ok((db, lock))
}

/// Opens the database (the CLI's `open`: migrations, deadlines).
pub type Open<'a> = &'a dyn Fn() -> Result<Db, String>;

/// `custodian backup FILE`: what to print, or why not.
pub fn backup_command(settings: &Settings, open: Open<'_>, file: &Path) -> Result<String, String> {
    if settings.sqlite_path().is_none() {
        return Err(postgres_advice(file));
    }
    backup(settings, &open()?, file)
}

/// `custodian restore FILE`, then whether the journal holds changes the
/// restored database lacks.
pub fn restore_command(settings: &Settings, open: Open<'_>, file: &Path) -> Result<String, String> {
    let (path, _lock) = restore(settings, file)?;
    let mut out = format!("restored {} from {}", path.display(), file.display());
    let db = open()?;
    if let Some(journal) = settings.journal_file()
        && let Some(contents) = crate::journal::read(&journal)?
    {
        let n = crate::deprovision::journal::unapplied(&db, &contents.id, &contents.entries)
            .map_err(|e| e.to_string())?
            .len();
        if n > 0 {
            out.push_str(&format!(
                "\nthe disposal journal {} holds {n} change(s) this backup lacks: run `custodian disposals reapply` before `custodian serve`",
                journal.display()
            ));
        }
    }
    Ok(out)
}

/// `custodian disposals reapply`: what the database lacks of the journal,
/// written back; a JSON summary. `open` must give a handle without a journal.
pub fn reapply_command(settings: &Settings, open: Open<'_>) -> Result<String, String> {
    use crate::deprovision::journal::{mark_checked, reapply, unchecked};
    let path = settings.journal_file().ok_or(
        "no disposal journal: on PostgreSQL set journal_path (CUSTODIAN_JOURNAL_PATH) to the journal your servers wrote",
    )?;
    // No server may write meanwhile (SQLite: the lock `serve` holds shared).
    let _lock = match settings.sqlite_path() {
        Some(db) => Some(lock_exclusive(&db)?),
        None => None,
    };
    let db = open()?;
    let Some(contents) = crate::journal::read(&path)? else {
        return Ok(serde_json::json!({"journal": path, "entries": 0, "lacking": 0}).to_string());
    };
    let clock: std::sync::Arc<dyn crate::clock::Clock> =
        std::sync::Arc::new(crate::clock::SystemClock);
    let deprov = crate::deprovision::setup::open(settings, &db, clock)?;
    let pending = unchecked(&db, &contents.id, &contents.entries).map_err(|e| e.to_string())?;
    let done = reapply(&deprov, &db, &pending).map_err(|e| e.to_string())?;
    mark_checked(&db, &contents.id, contents.last_seq(), &deprov.now())
        .map_err(|e| e.to_string())?;
    Ok(serde_json::json!({
        "journal": path,
        "entries": contents.entries.len(),
        "lacking": done.entries,
        "reapplied": done,
    })
    .to_string())
}

//! Where SQLite keeps a write's savepoint journal (`store::writer`): in
//! memory for a write group, on file for a write alone. SQLite opens its
//! temporary files unlinked, named `etilqs_…`; they show in `/proc/self/fd`.
//! A test binary of its own, so no other test's temporary files are open.

#![cfg(target_os = "linux")]
#![allow(clippy::expect_used)]

use custodian::store::{AnyConnection, Db, StoreError};
use diesel::connection::SimpleConnection;

/// Whether this process holds one of SQLite's temporary files open.
fn temp_file_open() -> bool {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .filter_map(Result::ok)
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .any(|target| target.to_string_lossy().contains("etilqs_"))
}

/// Changes every row of `wide` (~1 MiB of existing pages; rotated, so each
/// value really changes and SQLite cannot skip the page): a savepoint's
/// journal copies each page, far past SQLite's 64 KiB in-memory start.
fn rewrite(c: &mut AnyConnection) -> Result<(), StoreError> {
    Ok(c.batch_execute("UPDATE wide SET v = substr(v, 2) || substr(v, 1, 1)")?)
}

#[test]
fn group_journals_stay_in_memory_and_alone_they_go_to_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("j.db").display());
    let db = Db::open(&url, 2, true).expect("open");
    db.write(|c| {
        Ok::<_, StoreError>(c.batch_execute(
            "CREATE TABLE wide (k INTEGER PRIMARY KEY, v TEXT NOT NULL); \
             WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < 4000) \
             INSERT INTO wide SELECT n, hex(randomblob(100)) FROM s;",
        )?)
    })
    .expect("seed");
    assert!(!temp_file_open(), "no temporary file before the writes");

    // The control: outside a group, a savepoint's journal spills to a file,
    // and this test can see it.
    let spilled = db
        .write_alone(|c| {
            c.batch_execute("SAVEPOINT control")?;
            rewrite(c)?;
            let open = temp_file_open();
            c.batch_execute("RELEASE control")?;
            Ok::<_, StoreError>(open)
        })
        .expect("write alone");
    assert!(
        spilled,
        "a savepoint's journal on file shows as an etilqs_ file"
    );

    // A write in a group is a savepoint too; its journal stays in memory.
    let in_group = db
        .write(|c| {
            rewrite(c)?;
            Ok::<_, StoreError>(temp_file_open())
        })
        .expect("group write");
    assert!(
        !in_group,
        "a write group's savepoint journal went to a file"
    );
}

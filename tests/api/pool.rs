//! Pooled PostgreSQL connections that the server closes.

use crate::common;
use custodian::store::{Db, StoreError};
use diesel::prelude::*;
use std::time::Duration;

#[derive(QueryableByName)]
struct Pid {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    pid: i32,
}

/// The server process behind the connection a read gets.
fn backend_pid(db: &Db) -> Result<i32, StoreError> {
    db.read(|c| {
        Ok(diesel::sql_query("SELECT pg_backend_pid() AS pid")
            .get_result::<Pid>(c)?
            .pid)
    })
}

/// Ends a server process from outside the pool (as a restart or an idle
/// timeout would), and waits until it has exited.
fn terminate(pid: i32) {
    let mut admin =
        diesel::PgConnection::establish(&common::pg_url().expect("url")).expect("connect");
    diesel::sql_query(format!("SELECT pg_terminate_backend({pid}, 10000)"))
        .execute(&mut admin)
        .expect("terminate");
}

/// A connection that sat idle is checked before use, so a closed one costs
/// no request; one in steady use is not checked, so a read that meets its
/// death runs again on a new connection (as does a write whose BEGIN meets
/// it), and the pool never hands it out again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_dead_connections_are_replaced() {
    let Some(app) = common::postgres_app().await else {
        return;
    };
    let url = app.db_url.clone();
    tokio::task::spawn_blocking(move || {
        // One connection, so every read gets the same one until it is replaced.
        let db = Db::open(&url, 1, false).expect("open");
        // Checked at every checkout (idle for at least zero seconds).
        let checked = db.clone().with_idle_check(Duration::ZERO);
        let first = backend_pid(&checked).expect("read");
        assert_eq!(
            backend_pid(&checked).expect("read"),
            first,
            "one connection"
        );
        terminate(first);
        let second = backend_pid(&checked).expect("the dead connection was replaced at checkout");
        assert_ne!(first, second);

        // Not checked (in steady use): the read meets the dead connection,
        // which is discarded, and runs once more on a new one.
        let unchecked = db.with_idle_check(Duration::from_secs(3600));
        assert_eq!(backend_pid(&unchecked).expect("read"), second);
        terminate(second);
        let third = backend_pid(&unchecked).expect("the read is retried on a new connection");
        assert!(third != second && third != first);
        // A write whose BEGIN meets a dead connection is retried too: none
        // of it had run.
        terminate(third);
        let fourth = unchecked
            .write(|c| {
                Ok::<_, StoreError>(
                    diesel::sql_query("SELECT pg_backend_pid() AS pid")
                        .get_result::<Pid>(c)?
                        .pid,
                )
            })
            .expect("the write's BEGIN is retried on a new connection");
        assert!(fourth != third && fourth != second);
    })
    .await
    .expect("blocking");
}

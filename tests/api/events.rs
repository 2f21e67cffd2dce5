//! The event outbox under concurrent writers.

use crate::common;
use custodian::store::StoreError;
use serde_json::json;
use std::time::Duration;

/// `seq` order is commit order even when the first write to emit commits
/// last: a `seq` is taken as its transaction commits, so a write that emitted
/// early holds nobody up (PostgreSQL, whose writes run in parallel; SQLite's
/// are serial and cannot interleave like this).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_seq_is_commit_order() {
    let Some(app) = common::postgres_app().await else {
        return;
    };
    let tenant = app.default_tenant_id();
    let now = "2026-11-24T00:00:00Z";
    let (began, has_begun) = std::sync::mpsc::channel();
    let (second_done, second_has_committed) = std::sync::mpsc::channel::<()>();
    let first = {
        let (db, t) = (app.db.clone(), tenant.clone());
        std::thread::spawn(move || {
            db.write(|c| {
                custodian::events::emit(c, &t, "test.emitted_first", None, json!({}), now)?;
                began.send(()).ok();
                // Open until the second write has committed (bounded: with
                // the counter locked at `emit`, it never could).
                second_has_committed
                    .recv_timeout(Duration::from_secs(20))
                    .map_err(|_| {
                        StoreError::Commit(
                            "the second write could not commit while the first was open".into(),
                        )
                    })
            })
        })
    };
    has_begun
        .recv_timeout(Duration::from_secs(20))
        .expect("the first write began");
    let second = {
        let (db, t) = (app.db.clone(), tenant.clone());
        std::thread::spawn(move || {
            db.write(|c| {
                custodian::events::emit(c, &t, "test.emitted_second", None, json!({}), now)
            })
        })
    };
    let second = second.join().expect("thread");
    second_done.send(()).ok();
    let first = first.join().expect("thread");
    assert!(second.is_ok() && first.is_ok(), "{second:?} {first:?}");
    let feed = app
        .db
        .read(|c| custodian::events::feed(c, &tenant, "default", 0, 100))
        .expect("feed");
    let order: Vec<(i64, &str)> = feed
        .iter()
        .filter_map(|e| Some((e["seq"].as_i64()?, e["type"].as_str()?)))
        .collect();
    assert_eq!(
        order,
        vec![(1, "test.emitted_second"), (2, "test.emitted_first")],
        "seq follows commit order, gap-free"
    );
}

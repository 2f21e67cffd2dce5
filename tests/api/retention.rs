//! Event retention on both backends: old events go in batches, an expired
//! feed cursor is 410 with a way back, a webhook cursor in the deleted range
//! skips ahead and the skip is audited.

use crate::body;
use crate::common::{Backend, spawn_app};
use custodian::auth::Scope;
use custodian::clock::Clock;
use custodian::events::retention::{BATCH, purge_past};
use custodian::store::{StoreError, retention, webhook_cursors};
use std::time::Duration;

const DAY: Duration = Duration::from_secs(86_400);

async fn old_events_expire(b: Backend) {
    let app = spawn_app(b).await;
    let tenant = app.default_tenant_id();
    let t0 = app.clock.now();
    let old = custodian::store::time::format(t0);
    // More than two batches of old events, then one recent one.
    let n_old = usize::try_from(2 * BATCH + 17).expect("count");
    app.db
        .write(|c| -> Result<(), StoreError> {
            for _ in 0..n_old {
                custodian::events::emit_at_commit(
                    c,
                    &tenant,
                    None,
                    &custodian::events::payload::UserSuspended {},
                    &old,
                )?;
            }
            Ok(())
        })
        .expect("old events");
    // A webhook endpoint that had received only the first 10.
    let url = "https://receiver.example/hook";
    app.db
        .write(|c| {
            webhook_cursors::claim(c, &tenant, url, "test", &old, &old)?;
            webhook_cursors::advance(c, &tenant, url, "test", 10, &old)
        })
        .expect("cursor");
    let later = t0 + chrono::Duration::days(31);
    app.db
        .write(|c| {
            custodian::events::emit_at_commit(
                c,
                &tenant,
                None,
                &custodian::events::payload::UserReactivated {},
                &custodian::store::time::format(later),
            )
        })
        .expect("recent event");

    // Within retention nothing goes.
    let none = purge_past(&app.db, 30 * DAY, t0 + chrono::Duration::days(29)).expect("purge");
    assert_eq!(none.events, 0);
    let p = purge_past(&app.db, 30 * DAY, later).expect("purge");
    assert_eq!((p.events, p.endpoints_skipped), (n_old, 1));
    let through = i64::try_from(n_old).expect("seq");
    let (gone, cursor) = app
        .db
        .read(|c| {
            Ok::<_, StoreError>((
                retention::purged_through(c, &tenant)?,
                webhook_cursors::find(c, &tenant, url)?,
            ))
        })
        .expect("read");
    assert_eq!(gone, through);
    assert_eq!(
        cursor.expect("cursor").last_seq,
        through,
        "skipped to the oldest retained"
    );
    // Idempotent: a second pass finds nothing more.
    assert_eq!(
        purge_past(&app.db, 30 * DAY, later).expect("again").events,
        0
    );

    let admin = app.token_for("default", Scope::Admin);
    let feed = |q: String| {
        let (client, admin) = (app.client.clone(), admin.clone());
        let url = format!("{}/admin/v1/events{q}", app.addr);
        async move {
            body(
                client
                    .get(url)
                    .bearer_auth(admin)
                    .send()
                    .await
                    .expect("send"),
            )
            .await
        }
    };
    let (s, v) = feed("?after=10".into()).await;
    assert_eq!(s, 410, "{v}");
    assert_eq!(v["status"], "410", "a SCIM error: {v}");
    let detail = v["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("Resynchronise") && detail.contains(&format!("after={through}")),
        "{detail}"
    );
    let (s, v) = feed(format!("?after={through}")).await;
    assert_eq!(s, 200, "{v}");
    let seqs: Vec<i64> = v["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["seq"].as_i64())
        .collect();
    assert_eq!(seqs, vec![through + 1]);
    let (s, v) = feed(String::new()).await;
    assert_eq!(
        (s, v["events"][0]["seq"].as_i64()),
        (200, Some(through + 1)),
        "{v}"
    );
    // A cursor is a seq: a negative or non-numeric one is the client's error,
    // not an expired cursor.
    for bad in ["-1", "-9223372036854775808", "ten"] {
        let (s, v) = feed(format!("?after={bad}")).await;
        assert_eq!(
            (s, v["scimType"].as_str()),
            (400, Some("invalidValue")),
            "{bad}: {v}"
        );
    }
    let (s, v) = body(
        app.client
            .get(format!("{}/admin/v1/audit", app.addr))
            .bearer_auth(&admin)
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert!(
        v.to_string().contains("webhook.events_expired"),
        "the skipped range is audited: {v}"
    );
}
crate::both_backends!(event_retention, super::old_events_expire);

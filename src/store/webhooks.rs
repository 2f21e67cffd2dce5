//! Webhook delivery cursors: the admin's controls over them.

use super::db::AnyConnection;
use super::error::StoreError;
use super::schema::webhook_cursors as wc;
use diesel::prelude::*;

/// Un-pauses every paused endpoint of the tenant, due again at `now`, its
/// failure count reset; returns how many were paused.
pub fn resume_paused(c: &mut AnyConnection, tenant: &str, now: &str) -> Result<usize, StoreError> {
    Ok(diesel::update(
        wc::table
            .filter(wc::tenant_id.eq(tenant))
            .filter(wc::paused.eq(true)),
    )
    .set((
        wc::paused.eq(false),
        wc::attempts.eq(0),
        wc::next_attempt_at.eq(now),
    ))
    .execute(c)?)
}

/// What skipping an endpoint's head event did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skip {
    /// The named event was the next to deliver: the cursor now stands on its `seq`.
    Skipped { seq: i64 },
    /// The next event to deliver is another one (its id), or there is none.
    NotHead { head: Option<String> },
}

/// Skips the endpoint's head event — the first after its cursor, the one a
/// failing delivery retries — if it is `event_id`: the cursor moves past it
/// (and nothing else), the failures are cleared and the endpoint is due at
/// `now`, un-paused. Compare-and-set on the cursor, so a relay that delivered
/// the event meanwhile makes this `NotHead` rather than skip the next one.
pub fn skip_head(
    c: &mut AnyConnection,
    tenant: &str,
    url: &str,
    event_id: &str,
    now: &str,
) -> Result<Skip, StoreError> {
    use super::schema::outbox;
    // An endpoint that never had a due event has no cursor yet: it starts at 0.
    super::webhook_cursors::ensure(c, tenant, url, now)?;
    let last: i64 = wc::table
        .filter(wc::tenant_id.eq(tenant))
        .filter(wc::endpoint.eq(url))
        .select(wc::last_seq)
        .first(c)?;
    let head: Option<(i64, String)> = outbox::table
        .filter(outbox::tenant_id.eq(tenant))
        .filter(outbox::seq.gt(last))
        .order(outbox::seq)
        .select((outbox::seq, outbox::id))
        .first(c)
        .optional()?;
    let seq = match head {
        Some((seq, id)) if id == event_id => seq,
        other => {
            return Ok(Skip::NotHead {
                head: other.map(|(_, id)| id),
            });
        }
    };
    let n = diesel::update(
        wc::table
            .filter(wc::tenant_id.eq(tenant))
            .filter(wc::endpoint.eq(url))
            .filter(wc::last_seq.eq(last)),
    )
    .set((
        wc::last_seq.eq(seq),
        wc::attempts.eq(0),
        wc::next_attempt_at.eq(now),
        wc::paused.eq(false),
    ))
    .execute(c)?;
    Ok(if n == 1 {
        Skip::Skipped { seq }
    } else {
        Skip::NotHead { head: None }
    })
}

#[cfg(test)]
#[allow(clippy::expect_used)]
mod tests {
    use super::*;
    use crate::store::{Db, webhook_cursors};

    const NOW: &str = "2026-11-24T00:00:00Z";
    const LATER: &str = "2026-11-24T01:00:00Z";

    /// Skips only the head; a relay mid-batch when the skip lands cannot move
    /// the cursor back over the skipped event (it would be sent again).
    #[test]
    fn skip_moves_the_cursor_past_the_head_only_and_forwards() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Db::open(
            &format!("sqlite://{}", dir.path().join("w.db").display()),
            4,
            true,
        )
        .expect("open");
        let t = db
            .write(|c| crate::store::tokens::ensure_tenant(c, "t", NOW))
            .expect("tenant")
            .id;
        let ids: Vec<String> = (0..3)
            .map(|i| {
                let id = format!("evt_{i}");
                db.write(|c| {
                    crate::store::outbox::emit_at_commit(
                        c,
                        crate::store::outbox::NewEvent {
                            id: id.clone(),
                            tenant_id: t.clone(),
                            event_type: "user.suspended".into(),
                            subject_user_id: None,
                            data: "{}".into(),
                            occurred_at: NOW.into(),
                        },
                    )
                })
                .expect("emit");
                id
            })
            .collect();
        let url = "https://r.example/h";
        // A relay claims the endpoint at seq 0 and is sending event 1.
        let claimed = db
            .write(|c| webhook_cursors::claim(c, &t, url, "relay", NOW, LATER))
            .expect("claim");
        assert_eq!(claimed, Some(0));
        let skip = |id: &str| db.write(|c| skip_head(c, &t, url, id, NOW)).expect("skip");
        assert_eq!(
            skip(&ids[1]),
            Skip::NotHead {
                head: Some(ids[0].clone())
            }
        );
        assert_eq!(skip(&ids[0]), Skip::Skipped { seq: 1 });
        assert_eq!(skip(&ids[1]), Skip::Skipped { seq: 2 });
        // The relay's send of event 1 succeeds now: the cursor stays at 2.
        let moved = db
            .write(|c| webhook_cursors::advance(c, &t, url, "relay", 1, LATER))
            .expect("advance");
        assert!(!moved, "the cursor went back over a skipped event");
        let last = db
            .read(|c| webhook_cursors::find(c, &t, url))
            .expect("find")
            .expect("cursor")
            .last_seq;
        assert_eq!(last, 2);
        assert_eq!(skip(&ids[2]), Skip::Skipped { seq: 3 });
        assert_eq!(skip(&ids[2]), Skip::NotHead { head: None });
    }
}

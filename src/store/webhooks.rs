//! Webhook delivery cursors: the admin's controls over them.

use super::db::AnyConnection;
use super::error::StoreError;
use super::schema::webhook_cursors as wc;
use super::sql::{Sql, execute_sql};
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
    let mut ins = Sql::default();
    ins.push("INSERT INTO webhook_cursors (tenant_id, endpoint, last_seq, attempts, next_attempt_at, paused) VALUES (")
        .bind_text(tenant)
        .push(", ")
        .bind_text(url)
        .push(", 0, 0, ")
        .bind_text(now)
        .push(", FALSE) ON CONFLICT DO NOTHING");
    execute_sql(c, &ins)?;
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

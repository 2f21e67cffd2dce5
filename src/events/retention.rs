//! Event retention (`event_retention`, default 30 days): a maintenance pass
//! deletes each tenant's events older than that, oldest first, in batches of
//! `BATCH` rows per write transaction (a short turn of SQLite's writer each,
//! never one large delete). What is deleted is always a prefix of the
//! tenant's `seq`s, recorded as `events_purged_through`: a feed cursor below
//! it has missed events, and the feed answers 410 (`expired`). A webhook
//! endpoint whose cursor pointed into the deleted range skips to the oldest
//! retained event; the gap is logged and audited (`webhook.events_expired`).

use crate::store::{Db, StoreError, audit, retention, time, tokens};

/// Rows deleted per write transaction.
pub const BATCH: i64 = 1000;
/// Batches per tenant per pass; a larger backlog continues next pass.
const MAX_BATCHES: usize = 100;

/// What a pass deleted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Purged {
    pub events: usize,
    /// Webhook endpoints that skipped events they had not received.
    pub endpoints_skipped: usize,
}

/// Deletes every tenant's events older than `retention` at `now`.
pub fn purge_past(
    db: &Db,
    retention: std::time::Duration,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Purged, StoreError> {
    let Some(cutoff) = chrono::Duration::from_std(retention)
        .ok()
        .and_then(|r| now.checked_sub_signed(r))
    else {
        return Ok(Purged::default());
    };
    purge(db, &time::format(cutoff), &time::format(now))
}

/// Deletes every tenant's events that occurred before `cutoff` (RFC 3339,
/// the stored format), in batches.
pub fn purge(db: &Db, cutoff: &str, now: &str) -> Result<Purged, StoreError> {
    let mut out = Purged::default();
    let tenants = db.read(tokens::all_tenants)?;
    for (tenant, _) in tenants {
        for _ in 0..MAX_BATCHES {
            let (events, full) = purge_batch(db, &tenant, cutoff, now, &mut out)?;
            out.events += events;
            if !full {
                break;
            }
        }
    }
    Ok(out)
}

/// One batch for one tenant: (rows deleted, whether the batch was full).
fn purge_batch(
    db: &Db,
    tenant: &str,
    cutoff: &str,
    now: &str,
    out: &mut Purged,
) -> Result<(usize, bool), StoreError> {
    db.write(|c| {
        let from = retention::purged_through(c, tenant)?;
        let oldest = retention::oldest(c, tenant, from, BATCH)?;
        // A prefix by seq, so "every event up to X is gone" stays exact even
        // where a replica's clock put a later seq at an earlier time.
        let expired: Vec<i64> = oldest
            .iter()
            .take_while(|(_, at)| at.as_str() < cutoff)
            .map(|(seq, _)| *seq)
            .collect();
        let Some(&through) = expired.last() else {
            return Ok((0, false));
        };
        let n = retention::delete_through(c, tenant, through)?;
        for (endpoint, was) in retention::skip_cursors_to(c, tenant, through)? {
            tracing::warn!(
                tenant_id = %tenant,
                from_seq = was,
                to_seq = through,
                "a webhook endpoint had not received events past event_retention; it skips to the oldest retained event"
            );
            audit::write(
                c,
                tenant,
                now,
                "retention",
                "webhook.events_expired",
                "webhook",
                &endpoint,
                Some(&serde_json::json!({"fromSeq": was, "toSeq": through}).to_string()),
            )?;
            out.endpoints_skipped += 1;
        }
        Ok((n, expired.len() == oldest.len() && oldest.len() as i64 == BATCH))
    })
}

/// `Some(p)` when a feed cursor `after` is below the tenant's deleted events
/// (everything up to `p` is gone): the reader missed events.
pub fn expired(
    c: &mut crate::store::AnyConnection,
    tenant: &str,
    after: i64,
) -> Result<Option<i64>, StoreError> {
    let p = retention::purged_through(c, tenant)?;
    Ok((after < p).then_some(p))
}

//! Event retention (`event_retention`, default 30 days): a maintenance pass
//! deletes each tenant's events older than that, oldest first, in batches of
//! `BATCH` rows per write transaction (a short turn of SQLite's writer each,
//! never one large delete). What is deleted is always a prefix of the
//! tenant's `seq`s, recorded as `events_purged_through`: a feed cursor below
//! it has missed events, and the feed answers 410 (`expired`). A webhook
//! endpoint whose cursor pointed into the deleted range skips to the oldest
//! retained event before anything is deleted (so no relay reads into the
//! range meanwhile); the gap is logged and audited (`webhook.events_expired`).

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
        purge_tenant(db, &tenant, cutoff, now, &mut out)?;
    }
    Ok(out)
}

/// The seqs of the tenant's expired prefix (at most `MAX_BATCHES` batches):
/// events in `seq` order up to the first one retention keeps. A prefix, so
/// "every event up to X is gone" stays exact even where a replica's clock
/// put a later seq at an earlier time.
fn expired_prefix(db: &Db, tenant: &str, cutoff: &str) -> Result<Vec<i64>, StoreError> {
    let mut after = db.read(|c| retention::purged_through(c, tenant))?;
    let mut seqs = Vec::new();
    for _ in 0..MAX_BATCHES {
        let rows = db.read(|c| retention::oldest(c, tenant, after, BATCH))?;
        let full = i64::try_from(rows.len()).unwrap_or(i64::MAX) == BATCH;
        let before = seqs.len();
        seqs.extend(
            rows.iter()
                .take_while(|(_, at)| at.as_str() < cutoff)
                .map(|(seq, _)| *seq),
        );
        let taken = seqs.len() - before;
        match seqs.last() {
            Some(&last) if taken == rows.len() && full => after = last,
            _ => break,
        }
    }
    Ok(seqs)
}

fn purge_tenant(
    db: &Db,
    tenant: &str,
    cutoff: &str,
    now: &str,
    out: &mut Purged,
) -> Result<(), StoreError> {
    let seqs = expired_prefix(db, tenant, cutoff)?;
    let Some(&through) = seqs.last() else {
        return Ok(());
    };
    // Endpoints first, so no relay reads into the range while it goes.
    db.write(|c| {
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
                // The opaque id, not the URL (it may carry a credential).
                &crate::metrics::endpoint_id(tenant, &endpoint),
                Some(&serde_json::json!({"fromSeq": was, "toSeq": through}).to_string()),
            )?;
            out.endpoints_skipped += 1;
        }
        Ok::<_, StoreError>(())
    })?;
    let batch = usize::try_from(BATCH).unwrap_or(1000);
    for chunk in seqs.chunks(batch) {
        if let Some(&upto) = chunk.last() {
            out.events += db.write(|c| retention::delete_through(c, tenant, upto))?;
        }
    }
    Ok(())
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

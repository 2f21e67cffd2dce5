//! Events: a transactional outbox. An event is written in the state change's
//! transaction, as its last statement before the commit (`emit_at_commit`);
//! `seq` comes from the tenant's counter row, locked until commit, so `seq`
//! order is commit order and the `after=SEQ` feed never skips a late commit
//! (`store::outbox`). Webhook delivery (`relay`) only reads the outbox; `signing`
//! makes each request's signature headers.

pub mod payload;
pub mod relay;
pub mod retention;
pub mod signing;

use crate::store::outbox::{self, EventRow, NewEvent};
use crate::store::{AnyConnection, StoreError};
use payload::{Envelope, Payload, Subject};
use serde_json::Value;

pub use crate::store::outbox::{TenantCounter, lock_tenant};

/// Emits one event in the caller's transaction: its row (and `seq`) is
/// written when that transaction commits, and not at all if it rolls back.
/// Outside a transaction it is written at once.
/// The event type is the payload's (`payload::Payload`).
pub fn emit_at_commit<P: Payload>(
    c: &mut AnyConnection,
    tenant: &str,
    subject_user: Option<&str>,
    data: &P,
    now: &str,
) -> Result<(), StoreError> {
    // A payload is plain fields: serialising it cannot fail.
    let data = serde_json::to_string(data).unwrap_or_else(|_| "{}".into());
    outbox::emit_at_commit(
        c,
        NewEvent {
            id: format!("evt_{}", crate::store::new_id().simple()),
            tenant_id: tenant.to_string(),
            event_type: P::TYPE.as_str().to_string(),
            subject_user_id: subject_user.map(str::to_string),
            data,
            occurred_at: now.to_string(),
        },
    )
}

/// Events after `after`, in `seq` order, as envelopes.
pub fn feed(
    c: &mut AnyConnection,
    tenant: &str,
    tenant_name: &str,
    after: i64,
    limit: i64,
) -> Result<Vec<Value>, StoreError> {
    Ok(outbox::after(c, tenant, after, limit)?
        .into_iter()
        .map(|r| envelope(tenant_name, r))
        .collect())
}

/// The feed from a reader's cursor (`None`: from the oldest retained
/// event); `Err(p)` when the cursor is below the events retention deleted
/// (every event up to `p` is gone), so the reader has missed some.
pub fn feed_from(
    c: &mut AnyConnection,
    tenant: &str,
    tenant_name: &str,
    after: Option<i64>,
    limit: i64,
) -> Result<Result<Vec<Value>, i64>, StoreError> {
    if let Some(a) = after
        && let Some(gone) = retention::expired(c, tenant, a)?
    {
        return Ok(Err(gone));
    }
    Ok(Ok(feed(c, tenant, tenant_name, after.unwrap_or(0), limit)?))
}

fn envelope(tenant_name: &str, r: EventRow) -> Value {
    let e = Envelope {
        id: r.id,
        seq: r.seq,
        tenant: tenant_name.to_string(),
        event_type: r.event_type,
        occurred_at: r.occurred_at,
        subject: Subject {
            user_id: r.subject_user_id,
        },
        data: serde_json::from_str::<Value>(&r.data).unwrap_or(Value::Null),
    };
    serde_json::to_value(e).unwrap_or(Value::Null)
}

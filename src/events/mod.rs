//! Events: a transactional outbox. An event is written in the state change's
//! transaction, as its last statement before the commit (`emit_at_commit`);
//! `seq` comes from the tenant's counter row, locked until commit, so `seq`
//! order is commit order and the `after=SEQ` feed never skips a late commit
//! (`store::outbox`). Webhook delivery (`relay`) only reads the outbox; `signing`
//! makes each request's signature headers.

pub mod relay;
pub mod retention;
pub mod signing;

use crate::domain::EventType;
use crate::store::outbox::{self, EventRow, NewEvent};
use crate::store::{AnyConnection, StoreError};
use serde_json::{Value, json};

pub use crate::store::outbox::{TenantCounter, lock_tenant};

/// Emits one event in the caller's transaction: its row (and `seq`) is
/// written when that transaction commits, and not at all if it rolls back.
/// Outside a transaction it is written at once.
pub fn emit_at_commit(
    c: &mut AnyConnection,
    tenant: &str,
    event_type: EventType,
    subject_user: Option<&str>,
    data: Value,
    now: &str,
) -> Result<(), StoreError> {
    outbox::emit_at_commit(
        c,
        NewEvent {
            id: format!("evt_{}", crate::store::new_id().simple()),
            tenant_id: tenant.to_string(),
            event_type: event_type.as_str().to_string(),
            subject_user_id: subject_user.map(str::to_string),
            data: data.to_string(),
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
    json!({
        "id": r.id, "seq": r.seq, "tenant": tenant_name, "type": r.event_type, "occurredAt": r.occurred_at,
        "subject": r.subject_user_id.map(|u| json!({"userId": u})).unwrap_or(json!({})),
        "data": serde_json::from_str::<Value>(&r.data).unwrap_or(Value::Null),
    })
}

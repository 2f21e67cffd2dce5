//! Events: a transactional outbox. Rows are written in the state change's
//! transaction, as its last statements before the commit; `seq` comes from the
//! tenant's counter row, locked until commit, so `seq` order is commit order
//! and the `after=SEQ` feed never skips a late commit (`store::outbox`).
//! Webhook delivery (`relay`) only reads the outbox.

pub mod relay;

use crate::store::StoreError;
use crate::store::db::{AnyConnection, Backend, Sql, backend_of, load_sql};
use crate::store::outbox::NewEvent;
use crate::store::schema::outbox;
use diesel::prelude::*;
use serde_json::{Value, json};

/// The tenant's counter row, locked for the rest of the transaction.
#[derive(Debug, Clone)]
pub struct TenantCounter {
    pub brake_tripped_at: Option<String>,
    pub next_seq: i64,
    /// The tenant's disposals completed so far (`disposals_done`): an upper
    /// bound of those done in any hour.
    pub disposals_done: i64,
}

pub fn lock_tenant(c: &mut AnyConnection, tenant: &str) -> Result<TenantCounter, StoreError> {
    crate::store::outbox::create_counter(c, tenant)?;
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
        brake_tripped_at: Option<String>,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        next_seq: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        disposals_done: i64,
    }
    let mut q = Sql::default();
    q.push(
        "SELECT brake_tripped_at, next_seq, disposals_done FROM tenant_counters WHERE tenant_id = ",
    )
    .bind_text(tenant);
    if backend_of(c) == Backend::Postgres {
        q.push(" FOR UPDATE");
    }
    let row = load_sql::<Row>(c, &q)?.pop().ok_or(StoreError::NotFound)?;
    Ok(TenantCounter {
        brake_tripped_at: row.brake_tripped_at,
        next_seq: row.next_seq,
        disposals_done: row.disposals_done,
    })
}

/// Emits one event in the caller's transaction. Its row (and `seq`) is
/// written when the transaction is about to commit (`store::outbox`).
pub fn emit(
    c: &mut AnyConnection,
    tenant: &str,
    event_type: &str,
    subject_user: Option<&str>,
    data: Value,
    now: &str,
) -> Result<(), StoreError> {
    crate::store::outbox::emit(
        c,
        NewEvent {
            id: format!("evt_{}", crate::store::new_id().simple()),
            tenant_id: tenant.to_string(),
            event_type: event_type.to_string(),
            subject_user_id: subject_user.map(str::to_string),
            data: data.to_string(),
            occurred_at: now.to_string(),
        },
    )
}

type OutboxRow = (String, i64, String, Option<String>, String, String);

/// Events after `after`, in `seq` order, as envelopes.
pub fn feed(
    c: &mut AnyConnection,
    tenant: &str,
    tenant_name: &str,
    after: i64,
    limit: i64,
) -> Result<Vec<Value>, StoreError> {
    let rows: Vec<OutboxRow> = outbox::table
        .filter(outbox::tenant_id.eq(tenant))
        .filter(outbox::seq.gt(after))
        .order(outbox::seq)
        .limit(limit)
        .select((
            outbox::id,
            outbox::seq,
            outbox::event_type,
            outbox::subject_user_id,
            outbox::data,
            outbox::occurred_at,
        ))
        .load(c)?;
    Ok(rows.into_iter().map(|r| envelope(tenant_name, r)).collect())
}

fn envelope(tenant_name: &str, (id, seq, ty, subject, data, at): OutboxRow) -> Value {
    json!({
        "id": id, "seq": seq, "tenant": tenant_name, "type": ty, "occurredAt": at,
        "subject": subject.map(|u| json!({"userId": u})).unwrap_or(json!({})),
        "data": serde_json::from_str::<Value>(&data).unwrap_or(Value::Null),
    })
}

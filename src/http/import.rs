//! `POST /admin/v1/content:import`: NDJSON, one item per line, streamed. Lines
//! are applied in batches, each batch one transaction, so a million items never
//! sit in memory; the answer counts created, replaced and rejected lines.

use super::auth::LedgerCaller;
use super::error::ApiError;
use super::{AppState, blocking};
use crate::deprovision::admin::{self as dadmin, AdminError, ItemBody, Who};
use crate::scim::error::ScimError;
use actix_web::{HttpResponse, web};
use futures_util::StreamExt;
use serde_json::json;

const BATCH: usize = 1000;
/// Rejected lines reported back (the count is always exact).
const MAX_REPORTED_ERRORS: usize = 100;
const MAX_LINE: usize = 64 * 1024;

/// A line number and its outcome: created (true) / replaced, or why it was rejected.
type LineResult = (u64, Result<bool, String>);

struct Tally {
    created: u64,
    replaced: u64,
    rejected: u64,
    errors: Vec<serde_json::Value>,
}

/// What an import writes.
#[derive(Clone, Copy)]
enum Target {
    Content,
    UserData,
}

pub async fn import_content(
    state: web::Data<AppState>,
    w: LedgerCaller,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    import(state, w, payload, Target::Content).await
}

/// `POST /admin/v1/user-data:import`: `{"category", "id", "user" | "userName"}` per line.
pub async fn import_user_data(
    state: web::Data<AppState>,
    w: LedgerCaller,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    import(state, w, payload, Target::UserData).await
}

async fn import(
    state: web::Data<AppState>,
    w: LedgerCaller,
    mut payload: web::Payload,
    target: Target,
) -> Result<HttpResponse, ApiError> {
    let mut tally = Tally {
        created: 0,
        replaced: 0,
        rejected: 0,
        errors: vec![],
    };
    let mut pending: Vec<(u64, String)> = Vec::with_capacity(BATCH);
    let mut buf: Vec<u8> = Vec::new();
    let mut line_no: u64 = 0;
    while let Some(chunk) = payload.next().await {
        let chunk = chunk
            .map_err(|e| ScimError::invalid_syntax(format!("cannot read the request body: {e}")))?;
        buf.extend_from_slice(&chunk);
        while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=pos).collect();
            line_no += 1;
            push_line(&mut pending, &mut tally, line_no, &line);
            if pending.len() >= BATCH {
                flush(&state, &w, &mut pending, &mut tally, target).await?;
            }
        }
        if buf.len() > MAX_LINE {
            return Err(ScimError::new(
                413,
                None,
                format!("line {} is longer than {MAX_LINE} bytes", line_no + 1),
            )
            .into());
        }
    }
    if !buf.is_empty() {
        line_no += 1;
        let rest = std::mem::take(&mut buf);
        push_line(&mut pending, &mut tally, line_no, &rest);
    }
    flush(&state, &w, &mut pending, &mut tally, target).await?;
    Ok(HttpResponse::Ok().content_type("application/json").body(
        json!({"lines": line_no, "created": tally.created, "replaced": tally.replaced, "rejected": tally.rejected, "errors": tally.errors}).to_string(),
    ))
}

fn reject(tally: &mut Tally, line: u64, detail: String) {
    tally.rejected += 1;
    if tally.errors.len() < MAX_REPORTED_ERRORS {
        tally.errors.push(json!({"line": line, "detail": detail}));
    }
}

fn push_line(pending: &mut Vec<(u64, String)>, tally: &mut Tally, n: u64, raw: &[u8]) {
    match std::str::from_utf8(raw) {
        Ok(s) if s.trim().is_empty() => {}
        Ok(s) => pending.push((n, s.trim().to_string())),
        Err(_) => reject(tally, n, "not UTF-8".into()),
    }
}

async fn flush(
    state: &web::Data<AppState>,
    w: &LedgerCaller,
    pending: &mut Vec<(u64, String)>,
    tally: &mut Tally,
    target: Target,
) -> Result<(), ApiError> {
    if pending.is_empty() {
        return Ok(());
    }
    let lines = std::mem::take(pending);
    let st = state.clone();
    let caller = w.caller.clone();
    let results = blocking(move || {
        let svc = &st.svc;
        let who = Who {
            tenant_id: &caller.tenant_id,
            tenant_name: &caller.tenant_name,
            actor: &caller.actor,
        };
        Ok(svc
            .db
            .write_alone(|c| -> Result<Vec<LineResult>, AdminError> {
                let mut out = Vec::with_capacity(lines.len());
                for (n, line) in &lines {
                    let r = apply_line(&svc.deprov, c, &who, target, line)?;
                    out.push((*n, r));
                }
                Ok(out)
            })?)
    })
    .await?;
    for (n, r) in results {
        match r {
            Ok(true) => tally.created += 1,
            Ok(false) => tally.replaced += 1,
            Err(d) => reject(tally, n, d),
        }
    }
    Ok(())
}

/// Applies one line. Outer error: storage failed (the batch rolls back); inner
/// error: the line is rejected, with why.
fn apply_line(
    dp: &crate::deprovision::service::Deprov,
    c: &mut crate::store::AnyConnection,
    who: &Who<'_>,
    target: Target,
    line: &str,
) -> Result<Result<bool, String>, AdminError> {
    // PostgreSQL cannot store NUL; no identifier or title may hold one.
    if line.contains("\\u0000") {
        return Ok(Err("the line contains a NUL character (\\u0000)".into()));
    }
    let outcome = match target {
        Target::Content => match serde_json::from_str::<ItemBody>(line) {
            Err(e) => return Ok(Err(format!("invalid JSON item: {e}"))),
            Ok(item) => match (item.kind.clone(), item.id.clone()) {
                (Some(k), Some(i)) => {
                    dadmin::put_item(dp, c, who, &k, &i, &item).map(|(created, _)| created)
                }
                _ => return Ok(Err("each line needs \"kind\" and \"id\"".into())),
            },
        },
        Target::UserData => match serde_json::from_str::<dadmin::UserDataLine>(line) {
            Err(e) => return Ok(Err(format!("invalid JSON record: {e}"))),
            Ok(rec) => dadmin::put_user_data_line(dp, c, who, &rec),
        },
    };
    match outcome {
        Ok(created) => Ok(Ok(created)),
        Err(AdminError::Scim(e)) => Ok(Err(e.detail)),
        Err(e) => Err(e),
    }
}

//! `POST /admin/v1/content:import`: NDJSON, one item per line, streamed. Lines
//! are applied in batches, each batch one transaction, so a million items never
//! sit in memory; the answer counts created, replaced and rejected lines.

use super::auth::AdminCaller;
use super::error::ApiError;
use super::{AppState, blocking};
use crate::deprovision::admin::{self as dadmin, ItemBody};
use crate::domain::Actor;
use crate::scim::error::ScimError;
use crate::service_error::ServiceError;
use crate::store::StoreError;
use actix_web::{HttpResponse, web};
use futures_util::StreamExt;

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
    errors: Vec<RejectedLine>,
}

/// What an import did.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Imported {
    /// Lines read.
    lines: u64,
    created: u64,
    replaced: u64,
    rejected: u64,
    /// The first rejected lines (at most 100; `rejected` is always exact).
    errors: Vec<RejectedLine>,
}

/// A line the import rejected, and why.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct RejectedLine {
    line: u64,
    detail: String,
}

/// What an import writes.
#[derive(Clone, Copy)]
enum Target {
    Content,
    UserData,
}

#[utoipa::path(
    post, path = "/admin/v1/content:import", operation_id = "importItems", tag = "ledger",
    summary = "Import ledger items, NDJSON",
    description = "One `ContentImportLine` (an `ItemBody` with `kind` and `id`) per line; applied in batches of 1000, each a transaction; a line over 64 KiB ends the import with 413.",
    request_body(content = String, content_type = "application/x-ndjson"),
    responses((status = 200, description = "What was imported", body = Imported)),
    security(("ledger" = []), ("admin" = [])),
)]
pub async fn import_content(
    state: web::Data<AppState>,
    w: AdminCaller,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    import(state, w, payload, Target::Content).await
}

/// `POST /admin/v1/user-data:import`: `{"category", "id", "user" | "userName"}` per line.
#[utoipa::path(
    post, path = "/admin/v1/user-data:import", operation_id = "importUserData", tag = "ledger",
    summary = "Import user-data lines, NDJSON",
    description = "One `UserDataLine` per line; applied in batches of 1000, each a transaction.",
    request_body(content = String, content_type = "application/x-ndjson"),
    responses((status = 200, description = "What was imported", body = Imported)),
    security(("ledger" = []), ("admin" = [])),
)]
pub async fn import_user_data(
    state: web::Data<AppState>,
    w: AdminCaller,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    import(state, w, payload, Target::UserData).await
}

/// Raw bytes gathered on the HTTP worker before the blocking pool splits them.
const HAND_OFF_BYTES: usize = 64 * 1024;

async fn import(
    state: web::Data<AppState>,
    w: AdminCaller,
    mut payload: web::Payload,
    target: Target,
) -> Result<HttpResponse, ApiError> {
    let mut progress = Progress {
        tally: Tally {
            created: 0,
            replaced: 0,
            rejected: 0,
            errors: vec![],
        },
        pending: Vec::with_capacity(BATCH),
        carry: Vec::new(),
        line_no: 0,
    };
    // The worker only gathers bytes; splitting, parsing and writing run on
    // the blocking pool, a hand-off at a time (memory: one hand-off, one
    // partial line, one batch).
    let mut raw: Vec<u8> = Vec::new();
    loop {
        let chunk = payload.next().await;
        let end = chunk.is_none();
        if let Some(chunk) = chunk {
            let chunk = chunk.map_err(|e| {
                ScimError::invalid_syntax(format!("cannot read the request body: {e}"))
            })?;
            raw.extend_from_slice(&chunk);
        }
        if raw.len() >= HAND_OFF_BYTES || end {
            let bytes = std::mem::take(&mut raw);
            let st = state.clone();
            let caller = w.caller.clone();
            progress = blocking(move || {
                progress.feed(&st, &caller, target, &bytes, end)?;
                Ok(progress)
            })
            .await?;
        }
        if end {
            break;
        }
    }
    let Progress { tally, line_no, .. } = progress;
    let done = Imported {
        lines: line_no,
        created: tally.created,
        replaced: tally.replaced,
        rejected: tally.rejected,
        errors: tally.errors,
    };
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .body(serde_json::to_string(&done).unwrap_or_default()))
}

/// An import's state between hand-offs.
struct Progress {
    tally: Tally,
    /// Lines read and not yet applied (fewer than `BATCH` between hand-offs).
    pending: Vec<(u64, String)>,
    /// The start of a line whose end has not arrived.
    carry: Vec<u8>,
    line_no: u64,
}

impl Progress {
    /// Splits `bytes` into lines, applying each full batch; `end`: the body
    /// ended, so the last line and batch are applied too.
    fn feed(
        &mut self,
        state: &AppState,
        caller: &Actor,
        target: Target,
        bytes: &[u8],
        end: bool,
    ) -> Result<(), ApiError> {
        let mut rest = bytes;
        while let Some(pos) = rest.iter().position(|b| *b == b'\n') {
            let (line, tail) = rest.split_at(pos + 1);
            rest = tail;
            self.line_no += 1;
            if self.carry.is_empty() {
                self.check_length(line.len())?;
                push_line(&mut self.pending, &mut self.tally, self.line_no, line);
            } else {
                self.carry.extend_from_slice(line);
                let whole = std::mem::take(&mut self.carry);
                self.check_length(whole.len())?;
                push_line(&mut self.pending, &mut self.tally, self.line_no, &whole);
            }
            if self.pending.len() >= BATCH {
                self.flush(state, caller, target)?;
            }
        }
        self.carry.extend_from_slice(rest);
        self.check_length(self.carry.len())?;
        if end {
            if !self.carry.is_empty() {
                self.line_no += 1;
                let last = std::mem::take(&mut self.carry);
                push_line(&mut self.pending, &mut self.tally, self.line_no, &last);
            }
            self.flush(state, caller, target)?;
        }
        Ok(())
    }

    /// A line (with its newline) longer than `MAX_LINE` ends the import: 413.
    fn check_length(&self, len: usize) -> Result<(), ApiError> {
        if len > MAX_LINE + 1 {
            return Err(ScimError::new(
                413,
                None,
                format!(
                    "line {} is longer than {MAX_LINE} bytes",
                    self.line_no.max(1)
                ),
            )
            .into());
        }
        Ok(())
    }

    /// Applies the pending lines as one transaction of their own.
    fn flush(&mut self, state: &AppState, caller: &Actor, target: Target) -> Result<(), ApiError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let lines = std::mem::take(&mut self.pending);
        let svc = &state.svc;
        let results = svc
            .db
            .write_long(|c| -> Result<Vec<LineResult>, ServiceError> {
                let mut out = Vec::with_capacity(lines.len());
                for (n, line) in &lines {
                    let r = apply_line(&svc.deprov, c, caller, target, line)?;
                    out.push((*n, r));
                }
                Ok(out)
            })
            .map_err(|e| match e {
                // Earlier batches are committed: say so, rather than "nothing
                // was written".
                ServiceError::Store(StoreError::Deadline(_))
                    if self.tally.created + self.tally.replaced + self.tally.rejected > 0 =>
                {
                    ServiceError::Store(StoreError::DeadlineAfter(
                        "earlier batches of the import were written",
                    ))
                }
                e => e,
            })?;
        for (n, r) in results {
            match r {
                Ok(true) => self.tally.created += 1,
                Ok(false) => self.tally.replaced += 1,
                Err(d) => reject(&mut self.tally, n, d),
            }
        }
        Ok(())
    }
}

fn reject(tally: &mut Tally, line: u64, detail: String) {
    tally.rejected += 1;
    if tally.errors.len() < MAX_REPORTED_ERRORS {
        tally.errors.push(RejectedLine { line, detail });
    }
}

fn push_line(pending: &mut Vec<(u64, String)>, tally: &mut Tally, n: u64, raw: &[u8]) {
    match std::str::from_utf8(raw) {
        Ok(s) if s.trim().is_empty() => {}
        Ok(s) => pending.push((n, s.trim().to_string())),
        Err(_) => reject(tally, n, "not UTF-8".into()),
    }
}

/// Applies one line. Outer error: storage failed (the batch rolls back); inner
/// error: the line is rejected, with why.
fn apply_line(
    dp: &crate::deprovision::service::Deprov,
    c: &mut crate::store::AnyConnection,
    who: &Actor,
    target: Target,
    line: &str,
) -> Result<Result<bool, String>, ServiceError> {
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
        Err(ServiceError::Scim(e)) => Ok(Err(e.detail)),
        Err(e) => Err(e),
    }
}

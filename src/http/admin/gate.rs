//! `POST /gate/v1/check`: may these identifiers sign in?

use super::{body, ok};
use crate::deprovision::commands::gate as cmd;
use crate::deprovision::gate::{GateAnswer, GateRequest};
use crate::http::auth::GateUpload;
use crate::http::error::ApiError;
use crate::http::{AppState, blocking};
use crate::scim::error::ScimError;
use crate::store::StoreError;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

fn validate(b: &GateRequest) -> Result<(), ScimError> {
    if b.email.len() > 20 {
        return Err(ScimError::invalid_value("at most 20 emails per check"));
    }
    if b.sso
        .as_ref()
        .is_some_and(|s| s.issuer.trim().is_empty() || s.subject.is_empty())
    {
        return Err(ScimError::invalid_value(
            "'sso' needs a non-empty issuer and subject",
        ));
    }
    if b.identifiers().is_empty() {
        return Err(ScimError::invalid_value(
            "name at least one identifier: userName, email, externalId or sso",
        ));
    }
    Ok(())
}

#[utoipa::path(
    post, path = "/gate/v1/check", operation_id = "checkGate", tag = "gate",
    summary = "May this identity sign in?",
    description = "Call it from the login callback; fail closed when it does not answer.",
    request_body = GateRequest,
    responses((status = 200, description = "The decision", body = GateAnswer)),
    security(("gate" = [])),
)]
pub(super) async fn check(
    req: HttpRequest,
    state: web::Data<AppState>,
    w: GateUpload,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let b: GateRequest = body(&req, &state, payload, w.tenant()).await?;
    let w = w.ready().await?;
    validate(&b)?;
    // A plain check on SQLite is one indexed statement on a local file: answered
    // here when a connection is idle (never waiting for one), without the two
    // thread hand-offs of the blocking pool.
    if !b.register
        && let Some(db) = state.svc.db.idle_sqlite()
    {
        match cmd::check(&state.svc.deprov, &db, &w.caller, &b) {
            Err(StoreError::WouldWait) => {}
            answer => {
                let answer = answer?;
                counted(&answer, &w.caller.tenant_name);
                return Ok(ok(StatusCode::OK, answer));
            }
        }
    }
    let st = state.clone();
    let tenant = w.caller.tenant_name.clone();
    let answer = blocking(move || {
        let svc = &st.svc;
        Ok(cmd::answer(&svc.deprov, &svc.db, &w.caller, &b)?)
    })
    .await?;
    counted(&answer, &tenant);
    Ok(ok(StatusCode::OK, answer))
}

/// `custodian_gate_decisions_total{decision,reason}`.
fn counted(a: &crate::deprovision::gate::GateAnswer, tenant: &str) {
    crate::metrics::gate_decision(a.decision.as_str(), a.reason.as_str(), tenant);
}

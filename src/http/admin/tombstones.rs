//! `/tombstones`, `/tombstones:lift`, `/tombstones:release`.

use super::{body, ok, query};
use crate::deprovision::commands::tombstones::{self as cmd, Action};
use crate::deprovision::gate::GateRequest;
use crate::http::auth::{AdminCaller, AdminUpload};
use crate::http::error::ApiError;
use crate::http::{AppState, blocking};
use crate::scim::error::ScimError;
use crate::store::reads::tombstones::{self as reads, TombstoneRow};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

fn tombstone_json(t: TombstoneRow) -> Value {
    // Identifier types only: hashes are never shown.
    json!({
        "id": t.id, "disposalId": t.disposal_id, "createdAt": t.created_at,
        "liftedAt": t.lifted_at, "identifierTypes": t.identifier_types,
    })
}

pub(super) async fn list(
    req: HttpRequest,
    state: web::Data<AppState>,
    w: AdminCaller,
) -> Result<HttpResponse, ApiError> {
    let page = query(&req)?.page();
    let st = state.clone();
    let rows = blocking(move || {
        Ok(st
            .svc
            .db
            .read(|c| reads::page(c, &w.caller.tenant_id, page))?)
    })
    .await?;
    let rows: Vec<Value> = rows.into_iter().map(tombstone_json).collect();
    Ok(ok(StatusCode::OK, json!({"Resources": rows})))
}

pub(super) async fn lift(
    req: HttpRequest,
    state: web::Data<AppState>,
    w: AdminUpload,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let n = apply(req, state, w, payload, Action::Lift).await?;
    Ok(ok(StatusCode::OK, json!({"lifted": n})))
}

pub(super) async fn release(
    req: HttpRequest,
    state: web::Data<AppState>,
    w: AdminUpload,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let n = apply(req, state, w, payload, Action::Release).await?;
    Ok(ok(StatusCode::OK, json!({"released": n})))
}

async fn apply(
    req: HttpRequest,
    state: web::Data<AppState>,
    w: AdminUpload,
    payload: web::Payload,
    action: Action,
) -> Result<usize, ApiError> {
    let b: GateRequest = body(&req, &state, payload, w.tenant()).await?;
    let w = w.ready().await?;
    let ids = b.identifiers();
    if ids.is_empty() {
        return Err(ScimError::invalid_value(
            "name at least one identifier: userName, email, externalId or sso",
        )
        .into());
    }
    let st = state.clone();
    let n = blocking(move || {
        let svc = &st.svc;
        let now = svc.deprov.now();
        Ok(cmd::apply(
            &svc.db,
            &svc.deprov.keys,
            &w.caller.tenant_id,
            &ids,
            action,
            &w.caller.actor,
            &now,
        )?)
    })
    .await?;
    if n == 0 {
        return Err(ScimError::not_found("no live tombstone holds those identifiers").into());
    }
    Ok(n)
}

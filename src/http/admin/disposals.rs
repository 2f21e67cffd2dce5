//! `/users/{id}/disposal-plan|dispose|legal-hold`, `/disposals…`,
//! `/brake/reset`, `/policy`: disposals and the policy behind them.

use super::{ok, query};
use crate::deprovision::commands::disposals as cmd;
use crate::deprovision::disposal::PlanItem;
use crate::deprovision::service::Outcome;
use crate::domain::DisposalState;
use crate::http::auth::AdminCaller;
use crate::http::error::ApiError;
use crate::http::{AppState, blocking};
use crate::scim::error::ScimError;
use crate::store::reads::disposals::{self as reads, DisposalRow};
use crate::store::reads::receipt::{self, ReceiptLine};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

pub(super) async fn plan(
    req: HttpRequest,
    state: web::Data<AppState>,
    w: AdminCaller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let q = query(&req)?;
    let (start, count) = (q.start, q.count);
    let st = state.clone();
    let id = id.into_inner();
    let plan = blocking(move || Ok(st.svc.deprov.preview(&st.svc.db, &w.caller, &id)?)).await?;
    let mut v = serde_json::to_value(&plan).unwrap_or_default();
    let skip = usize::try_from(start - 1).unwrap_or(0);
    let take = usize::try_from(count).unwrap_or(0);
    let page: Vec<&PlanItem> = plan.items.iter().skip(skip).take(take).collect();
    if let Some(o) = v.as_object_mut() {
        o.insert("planHash".into(), json!(plan.hash));
        o.insert("totalItems".into(), json!(plan.items.len()));
        o.insert("startIndex".into(), json!(start));
        o.insert(
            "items".into(),
            serde_json::to_value(page).unwrap_or_default(),
        );
    }
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .insert_header(("ETag", format!("\"{}\"", plan.hash)))
        .body(v.to_string()))
}

pub(super) async fn dispose(
    req: HttpRequest,
    state: web::Data<AppState>,
    w: AdminCaller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let expected = req
        .headers()
        .get("If-Match")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let st = state.clone();
    let id = id.into_inner();
    let outcome = blocking(move || {
        let svc = &st.svc;
        Ok(cmd::dispose(
            &svc.deprov,
            &svc.db,
            &w.caller,
            &id,
            expected.as_deref(),
        )?)
    })
    .await?;
    Ok(match outcome {
        Outcome::Disposed(r) => ok(StatusCode::OK, serde_json::to_value(&r).unwrap_or_default()),
        Outcome::Held {
            disposal_id,
            reason,
        } => ok(
            StatusCode::ACCEPTED,
            json!({"state": DisposalState::Held, "disposalId": disposal_id, "reason": reason}),
        ),
    })
}

pub(super) async fn release(
    state: web::Data<AppState>,
    w: AdminCaller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let st = state.clone();
    let id = id.into_inner();
    let r = blocking(move || Ok(st.svc.deprov.release(&st.svc.db, &w.caller, &id)?)).await?;
    Ok(ok(
        StatusCode::OK,
        serde_json::to_value(&r).unwrap_or_default(),
    ))
}

pub(super) async fn reset_brake(
    state: web::Data<AppState>,
    w: AdminCaller,
) -> Result<HttpResponse, ApiError> {
    let st = state.clone();
    blocking(move || Ok(st.svc.deprov.reset_brake(&st.svc.db, &w.caller)?)).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// PUT sets the hold, DELETE lifts it.
pub(super) async fn legal_hold(
    req: HttpRequest,
    state: web::Data<AppState>,
    w: AdminCaller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let on = req.method() == actix_web::http::Method::PUT;
    let st = state.clone();
    let id = id.into_inner();
    blocking(move || {
        Ok(st
            .svc
            .deprov
            .set_legal_hold(&st.svc.db, &w.caller, &id, on)?)
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

pub(super) async fn policy(
    state: web::Data<AppState>,
    w: AdminCaller,
) -> Result<HttpResponse, ApiError> {
    let p = state.svc.deprov.policy(&w.caller.tenant_name);
    let mut v = serde_json::to_value(&p).unwrap_or_default();
    if let Some(o) = v.as_object_mut() {
        o.insert("tenant".into(), json!(w.caller.tenant_name));
        o.insert("digest".into(), json!(p.digest()));
    }
    Ok(ok(StatusCode::OK, v))
}

fn disposal_json(r: DisposalRow) -> Value {
    json!({
        "id": r.id, "userId": r.user_id, "state": r.state, "cause": r.cause, "dueAt": r.due_at,
        "planHash": r.plan_hash,
        "counts": r.counts.and_then(|c| serde_json::from_str::<Value>(&c).ok()),
        "createdAt": r.created_at, "completedAt": r.completed_at,
    })
}

fn line_json(l: ReceiptLine) -> Value {
    json!({
        "kind": l.kind, "id": l.item_id, "action": l.action,
        "fromOwner": l.from_owner, "toOwner": l.to_owner, "targetLink": l.target_link,
    })
}

pub(super) async fn list(
    req: HttpRequest,
    state: web::Data<AppState>,
    w: AdminCaller,
) -> Result<HttpResponse, ApiError> {
    let q = query(&req)?;
    let wanted = match q.param("state") {
        None => None,
        Some(s) => Some(s.parse::<DisposalState>().map_err(|_| {
            ScimError::invalid_value(format!(
                "unknown state '{s}' (scheduled, held, done or cancelled)"
            ))
        })?),
    };
    let page = q.page();
    let st = state.clone();
    let rows = blocking(move || {
        Ok(st
            .svc
            .db
            .read(|c| reads::list(c, &w.caller.tenant_id, wanted, page))?)
    })
    .await?;
    let rows: Vec<Value> = rows.into_iter().map(disposal_json).collect();
    Ok(ok(StatusCode::OK, json!({"Resources": rows})))
}

/// The receipt: the disposal and a page of its lines.
pub(super) async fn get(
    req: HttpRequest,
    state: web::Data<AppState>,
    w: AdminCaller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let q = query(&req)?;
    let (start, page) = (q.start, q.page());
    let st = state.clone();
    let id = id.into_inner();
    let missing = format!("no disposal with id {id}");
    let r = blocking(move || {
        Ok(st
            .svc
            .db
            .read(|c| receipt::find(c, &w.caller.tenant_id, &id, page))?)
    })
    .await?
    .ok_or_else(|| ScimError::not_found(missing))?;
    let mut v = disposal_json(r.disposal);
    if let Some(o) = v.as_object_mut() {
        o.insert("totalItems".into(), json!(r.total_items));
        o.insert("startIndex".into(), json!(start));
        o.insert("items".into(), r.items.into_iter().map(line_json).collect());
    }
    Ok(ok(StatusCode::OK, v))
}

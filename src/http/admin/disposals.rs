//! `/users/{id}/disposal-plan|dispose|legal-hold`, `/disposals…`,
//! `/brake/reset`, `/policy`: disposals and the policy behind them.

use super::{ok, query};
use crate::deprovision::commands::disposals as cmd;
use crate::deprovision::disposal::{Plan, PlanItem, Receipt};
use crate::deprovision::policy::Policy;
use crate::deprovision::service::Outcome;
use crate::domain::{Cause, DisposalState, ItemAction};
use crate::http::auth::AdminCaller;
use crate::http::error::ApiError;
use crate::http::{AppState, blocking};
use crate::scim::error::ScimError;
use crate::store::reads::disposals::{self as reads, DisposalRow};
use crate::store::reads::receipt::{self, ReceiptLine};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::Value;

/// A disposal plan with a page of its items.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(super) struct PlanPage<'a> {
    #[serde(flatten)]
    plan: &'a Plan,
    /// Send it back as `If-Match` to dispose exactly this plan (also the `ETag`).
    #[serde(rename = "planHash")]
    plan_hash: &'a str,
    #[serde(rename = "totalItems")]
    total_items: usize,
    #[serde(rename = "startIndex")]
    start_index: i64,
    items: Vec<&'a PlanItem>,
}

#[utoipa::path(
    get, path = "/admin/v1/users/{id}/disposal-plan", operation_id = "getDisposalPlan", tag = "disposals",
    summary = "Preview what disposing a user would do",
    params(("id" = String, Path, description = "User id"), super::Paging),
    responses((status = 200, description = "The plan and a page of its items", body = PlanPage,
        headers(("ETag" = String, description = "The plan hash, quoted")))),
    security(("admin" = [])),
)]
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
    let skip = usize::try_from(start - 1).unwrap_or(0);
    let take = usize::try_from(count).unwrap_or(0);
    let page = PlanPage {
        plan: &plan,
        plan_hash: &plan.hash,
        total_items: plan.items.len(),
        start_index: start,
        items: plan.items.iter().skip(skip).take(take).collect(),
    };
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .insert_header(("ETag", format!("\"{}\"", plan.hash)))
        .body(serde_json::to_string(&page).unwrap_or_default()))
}

/// 202: the disposal is held (brake or legal hold) until an admin releases it.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(super) struct Held {
    /// Always `held`.
    state: DisposalState,
    #[serde(rename = "disposalId")]
    disposal_id: String,
    /// `brake` or `legal_hold`.
    reason: &'static str,
}

#[utoipa::path(
    post, path = "/admin/v1/users/{id}/dispose", operation_id = "disposeUser", tag = "disposals",
    summary = "Dispose a user now",
    params(
        ("id" = String, Path, description = "User id"),
        ("If-Match" = Option<String>, Header, description = "A plan hash from the disposal plan: refuse (412) if the plan has changed"),
    ),
    responses(
        (status = 200, description = "Disposed: the receipt", body = Receipt),
        (status = 202, description = "Held by the brake or a legal hold", body = Held),
    ),
    security(("admin" = [])),
)]

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
        Outcome::Disposed(r) => ok(StatusCode::OK, r),
        Outcome::Held {
            disposal_id,
            reason,
        } => ok(
            StatusCode::ACCEPTED,
            Held {
                state: DisposalState::Held,
                disposal_id,
                reason,
            },
        ),
    })
}

#[utoipa::path(
    post, path = "/admin/v1/disposals/{id}/release", operation_id = "releaseDisposal", tag = "disposals",
    summary = "Release a held disposal: it runs now",
    params(("id" = String, Path, description = "Disposal id")),
    responses((status = 200, description = "Disposed: the receipt", body = Receipt)),
    security(("admin" = [])),
)]
pub(super) async fn release(
    state: web::Data<AppState>,
    w: AdminCaller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let st = state.clone();
    let id = id.into_inner();
    let r = blocking(move || Ok(st.svc.deprov.release(&st.svc.db, &w.caller, &id)?)).await?;
    Ok(ok(StatusCode::OK, r))
}

#[utoipa::path(
    post, path = "/admin/v1/brake/reset", operation_id = "resetBrake", tag = "disposals",
    summary = "Reset the tripped brake: new disposals run again",
    responses((status = 204, description = "Reset")),
    security(("admin" = [])),
)]
pub(super) async fn reset_brake(
    state: web::Data<AppState>,
    w: AdminCaller,
) -> Result<HttpResponse, ApiError> {
    let st = state.clone();
    blocking(move || Ok(st.svc.deprov.reset_brake(&st.svc.db, &w.caller)?)).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(
    put, path = "/admin/v1/users/{id}/legal-hold", operation_id = "setLegalHold", tag = "disposals",
    summary = "Put a user under legal hold: no disposal runs",
    params(("id" = String, Path, description = "User id")),
    responses((status = 204, description = "Held")),
    security(("admin" = [])),
)]
pub(super) async fn set_legal_hold(
    state: web::Data<AppState>,
    w: AdminCaller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    legal_hold(state, w, id, true).await
}

#[utoipa::path(
    delete, path = "/admin/v1/users/{id}/legal-hold", operation_id = "liftLegalHold", tag = "disposals",
    summary = "Lift a user's legal hold",
    params(("id" = String, Path, description = "User id")),
    responses((status = 204, description = "Lifted")),
    security(("admin" = [])),
)]
pub(super) async fn lift_legal_hold(
    state: web::Data<AppState>,
    w: AdminCaller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    legal_hold(state, w, id, false).await
}

async fn legal_hold(
    state: web::Data<AppState>,
    w: AdminCaller,
    id: web::Path<String>,
    on: bool,
) -> Result<HttpResponse, ApiError> {
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

/// The tenant's effective policy, its name and digest.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(super) struct PolicyView {
    #[serde(flatten)]
    policy: Policy,
    tenant: String,
    /// Recorded in every plan (`policyDigest`).
    digest: String,
}

#[utoipa::path(
    get, path = "/admin/v1/policy", operation_id = "getPolicy", tag = "disposals",
    summary = "The tenant's effective deprovisioning policy",
    responses((status = 200, description = "The policy", body = PolicyView)),
    security(("admin" = [])),
)]
pub(super) async fn policy(
    state: web::Data<AppState>,
    w: AdminCaller,
) -> Result<HttpResponse, ApiError> {
    let policy = state.svc.deprov.policy(&w.caller.tenant_name);
    let digest = policy.digest();
    Ok(ok(
        StatusCode::OK,
        PolicyView {
            policy,
            tenant: w.caller.tenant_name.clone(),
            digest,
        },
    ))
}

/// A disposal: scheduled, held, done or cancelled.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(super) struct Disposal {
    id: String,
    #[serde(rename = "userId")]
    user_id: String,
    state: DisposalState,
    cause: Cause,
    #[serde(rename = "dueAt")]
    due_at: String,
    #[serde(rename = "planHash")]
    plan_hash: Option<String>,
    /// Receipt lines per action, once done.
    #[schema(value_type = Option<HashMap<String, u64>>)]
    counts: Option<Value>,
    #[serde(rename = "createdAt")]
    created_at: String,
    #[serde(rename = "completedAt")]
    completed_at: Option<String>,
}

fn disposal(r: DisposalRow) -> Disposal {
    Disposal {
        id: r.id,
        user_id: r.user_id,
        state: r.state,
        cause: r.cause,
        due_at: r.due_at,
        plan_hash: r.plan_hash,
        counts: r
            .counts
            .and_then(|c| serde_json::from_str::<Value>(&c).ok()),
        created_at: r.created_at,
        completed_at: r.completed_at,
    }
}

/// One line of a receipt: what the disposal did to one item or data line.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(super) struct Line {
    kind: String,
    id: String,
    action: ItemAction,
    #[serde(rename = "fromOwner")]
    from_owner: Option<String>,
    #[serde(rename = "toOwner")]
    to_owner: Option<String>,
    /// Which target-chain link chose `toOwner`.
    #[serde(rename = "targetLink")]
    target_link: Option<String>,
}

fn line(l: ReceiptLine) -> Line {
    Line {
        kind: l.kind,
        id: l.item_id,
        action: l.action,
        from_owner: l.from_owner,
        to_owner: l.to_owner,
        target_link: l.target_link,
    }
}

/// A page of disposals.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(super) struct Disposals {
    #[serde(rename = "Resources")]
    resources: Vec<Disposal>,
}

/// A disposal and a page of its receipt lines.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(super) struct ReceiptPage {
    #[serde(flatten)]
    disposal: Disposal,
    #[serde(rename = "totalItems")]
    total_items: i64,
    #[serde(rename = "startIndex")]
    start_index: i64,
    items: Vec<Line>,
}

#[utoipa::path(
    get, path = "/admin/v1/disposals", operation_id = "listDisposals", tag = "disposals",
    summary = "List disposals",
    params(
        ("state" = Option<DisposalState>, Query, description = "Only disposals in this state"),
        super::Paging,
    ),
    responses((status = 200, description = "A page of disposals, newest first", body = Disposals)),
    security(("admin" = [])),
)]
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
    let resources = rows.into_iter().map(disposal).collect();
    Ok(ok(StatusCode::OK, Disposals { resources }))
}

/// The receipt: the disposal and a page of its lines.
#[utoipa::path(
    get, path = "/admin/v1/disposals/{id}", operation_id = "getDisposal", tag = "disposals",
    summary = "A disposal and its receipt",
    params(("id" = String, Path, description = "Disposal id"), super::Paging),
    responses((status = 200, description = "The disposal and a page of its receipt lines", body = ReceiptPage)),
    security(("admin" = [])),
)]
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
    Ok(ok(
        StatusCode::OK,
        ReceiptPage {
            disposal: disposal(r.disposal),
            total_items: r.total_items,
            start_index: start,
            items: r.items.into_iter().map(line).collect(),
        },
    ))
}

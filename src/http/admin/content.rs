//! `/content…`, `/user-data/…`, `/users/{id}/transfer`: the content ledger.

use super::{body, created_or_ok, ok, query};
use crate::deprovision::admin::{ItemBody, ItemView, ParentRef, UserDataLine};
use crate::deprovision::commands::content::{
    self as cmd, ItemList, Reassigned, Selection, Transferred,
};
use crate::http::auth::{AdminCaller, AdminUpload};
use crate::http::error::ApiError;
use crate::http::{AppState, blocking};
use crate::scim::error::ScimError;
use crate::store::ledger::ItemQuery;
use crate::store::reads::history::{self, Entry};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

#[utoipa::path(
    put, path = "/admin/v1/content/{kind}/{id}", operation_id = "putItem", tag = "ledger",
    summary = "Create or replace a ledger item",
    params(("kind" = String, Path), ("id" = String, Path)),
    request_body = ItemBody,
    responses(
        (status = 200, description = "Replaced", body = ItemView),
        (status = 201, description = "Created", body = ItemView),
    ),
    security(("ledger" = []), ("admin" = [])),
)]
pub(super) async fn put(
    req: HttpRequest,
    state: web::Data<AppState>,
    w: AdminUpload,
    path: web::Path<(String, String)>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let item: ItemBody = body(&req, &state, payload, w.tenant()).await?;
    let w = w.ready().await?;
    let (kind, id) = path.into_inner();
    let st = state.clone();
    let (created, v) = blocking(move || {
        let svc = &st.svc;
        Ok(cmd::put(
            &svc.deprov,
            &svc.db,
            &w.caller,
            &kind,
            &id,
            &item,
        )?)
    })
    .await?;
    Ok(ok(created_or_ok(created), v))
}

#[utoipa::path(
    get, path = "/admin/v1/content/{kind}/{id}", operation_id = "getItem", tag = "ledger",
    summary = "Read a ledger item",
    params(("kind" = String, Path), ("id" = String, Path)),
    responses((status = 200, description = "The item", body = ItemView)),
    security(("ledger" = []), ("admin" = [])),
)]
pub(super) async fn get(
    state: web::Data<AppState>,
    w: AdminCaller,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (kind, id) = path.into_inner();
    let st = state.clone();
    let v = blocking(move || Ok(cmd::get(&st.svc.db, &w.caller.tenant_id, &kind, &id)?)).await?;
    Ok(ok(StatusCode::OK, v))
}

#[utoipa::path(
    delete, path = "/admin/v1/content/{kind}/{id}", operation_id = "deleteItem", tag = "ledger",
    summary = "Delete a ledger item",
    params(("kind" = String, Path), ("id" = String, Path)),
    responses((status = 204, description = "Deleted")),
    security(("ledger" = []), ("admin" = [])),
)]
pub(super) async fn delete(
    state: web::Data<AppState>,
    w: AdminCaller,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (kind, id) = path.into_inner();
    let st = state.clone();
    blocking(move || {
        let svc = &st.svc;
        Ok(cmd::delete(&svc.deprov, &svc.db, &w.caller, &kind, &id)?)
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(
    get, path = "/admin/v1/content", operation_id = "listItems", tag = "ledger",
    summary = "List ledger items",
    params(
        ("owner" = Option<String>, Query, description = "Only items of this user id"),
        ("kind" = Option<String>, Query, description = "Only items of this kind"),
        ("orphaned" = Option<bool>, Query, description = "Only items without an owner"),
        super::Paging,
    ),
    responses((status = 200, description = "A page of items", body = ItemList)),
    security(("admin" = [])),
)]
pub(super) async fn list(
    req: HttpRequest,
    state: web::Data<AppState>,
    w: AdminCaller,
) -> Result<HttpResponse, ApiError> {
    let qp = query(&req)?;
    let page = qp.page();
    let orphaned = match qp.param("orphaned") {
        None => false,
        Some(v) if v.eq_ignore_ascii_case("true") => true,
        Some(v) if v.eq_ignore_ascii_case("false") => false,
        Some(_) => {
            return Err(ScimError::invalid_value("'orphaned' must be true or false").into());
        }
    };
    let q = ItemQuery {
        owner: qp.param("owner").map(str::to_string),
        kind: qp.param("kind").map(str::to_string),
        orphaned,
        offset: page.offset,
        limit: page.limit,
    };
    let st = state.clone();
    let v = blocking(move || Ok(cmd::list_items(&st.svc.db, &w.caller.tenant_id, &q)?)).await?;
    Ok(ok(StatusCode::OK, v))
}

/// Names either `items`, or `owner` or `orphaned: true` (optionally with `kind`).
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ReassignBody {
    /// The receiving user's id.
    #[schema(min_length = 1)]
    to: String,
    /// Named items…
    #[serde(default)]
    items: Option<Vec<ParentRef>>,
    /// …or a selection: every item of `owner` (or every orphan), optionally of one kind.
    #[serde(default)]
    owner: Option<String>,
    #[serde(default)]
    orphaned: bool,
    #[serde(default)]
    kind: Option<String>,
}

impl ReassignBody {
    fn selection(self) -> Result<Selection, ApiError> {
        match (self.items, self.owner, self.orphaned) {
            (Some(items), None, false) => Ok(Selection::Items(items)),
            (None, owner, orphaned) if owner.is_some() != orphaned => Ok(Selection::Owned {
                owner,
                kind: self.kind,
            }),
            _ => Err(ScimError::invalid_value(
                "name either \"items\", or \"owner\" or \"orphaned\": true (optionally with \"kind\")",
            )
            .into()),
        }
    }
}

#[utoipa::path(
    post, path = "/admin/v1/content:reassign", operation_id = "reassignItems", tag = "ledger",
    summary = "Give items (typically orphans) to a user",
    request_body = ReassignBody,
    responses((status = 200, description = "What moved", body = Reassigned)),
    security(("admin" = [])),
)]
pub(super) async fn reassign(
    req: HttpRequest,
    state: web::Data<AppState>,
    w: AdminUpload,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let b: ReassignBody = body(&req, &state, payload, w.tenant()).await?;
    let w = w.ready().await?;
    let to = b.to.clone();
    let selection = b.selection()?;
    let st = state.clone();
    let v = blocking(move || {
        let svc = &st.svc;
        Ok(cmd::reassign(
            &svc.deprov,
            &svc.db,
            &w.caller,
            &selection,
            &to,
        )?)
    })
    .await?;
    Ok(ok(StatusCode::OK, v))
}

/// Whose the user-data line is: a user id, or a userName.
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct UserDataBody {
    #[serde(alias = "owner", alias = "userId")]
    user: Option<String>,
    #[serde(rename = "userName", alias = "ownerUserName")]
    user_name: Option<String>,
}

/// `{"user": "recorded"}`.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(super) struct Recorded {
    #[schema(value_type = String, example = "recorded")]
    user: &'static str,
}

#[utoipa::path(
    put, path = "/admin/v1/user-data/{category}/{id}", operation_id = "putUserData", tag = "ledger",
    summary = "Record whose a user-data line is",
    params(("category" = String, Path), ("id" = String, Path)),
    request_body = UserDataBody,
    responses(
        (status = 200, description = "Replaced", body = Recorded),
        (status = 201, description = "Created", body = Recorded),
    ),
    security(("ledger" = []), ("admin" = [])),
)]
pub(super) async fn put_user_data(
    req: HttpRequest,
    state: web::Data<AppState>,
    w: AdminUpload,
    path: web::Path<(String, String)>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let b: UserDataBody = body(&req, &state, payload, w.tenant()).await?;
    let w = w.ready().await?;
    let (category, id) = path.into_inner();
    let line = UserDataLine {
        category,
        id,
        user: b.user,
        user_name: b.user_name,
    };
    let st = state.clone();
    let created = blocking(move || {
        let svc = &st.svc;
        Ok(cmd::put_user_data(&svc.deprov, &svc.db, &w.caller, &line)?)
    })
    .await?;
    Ok(ok(created_or_ok(created), Recorded { user: "recorded" }))
}

#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct TransferBody {
    /// The receiving user's id.
    #[schema(min_length = 1)]
    to: String,
}

#[utoipa::path(
    post, path = "/admin/v1/users/{id}/transfer", operation_id = "transferUser", tag = "ledger",
    summary = "Move everything a user owns to another user",
    params(("id" = String, Path, description = "The user whose content moves")),
    request_body = TransferBody,
    responses((status = 200, description = "What moved", body = Transferred)),
    security(("admin" = [])),
)]
pub(super) async fn transfer(
    req: HttpRequest,
    state: web::Data<AppState>,
    w: AdminUpload,
    id: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let b: TransferBody = body(&req, &state, payload, w.tenant()).await?;
    let w = w.ready().await?;
    let st = state.clone();
    let id = id.into_inner();
    let v = blocking(move || {
        let svc = &st.svc;
        Ok(cmd::transfer(&svc.deprov, &svc.db, &w.caller, &id, &b.to)?)
    })
    .await?;
    Ok(ok(StatusCode::OK, v))
}

/// An item's history, oldest first.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(super) struct History {
    kind: String,
    id: String,
    history: Vec<HistoryEntry>,
}

/// An audit row about the item, or a disposal that moved it
/// (`actor: "disposal"`, `action: "disposal.<action>"`).
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(super) struct HistoryEntry {
    at: String,
    actor: String,
    action: String,
    #[serde(rename = "disposalId", skip_serializing_if = "Option::is_none")]
    disposal_id: Option<String>,
    /// Only for a disposal (null when it had no owner).
    #[serde(rename = "fromOwner", skip_serializing_if = "Option::is_none")]
    from_owner: Option<Option<String>>,
    /// Only for a disposal (null when it has no owner now).
    #[serde(rename = "toOwner", skip_serializing_if = "Option::is_none")]
    to_owner: Option<Option<String>>,
}

/// An item's history: its audit rows and the disposals that moved it, oldest first.
#[utoipa::path(
    get, path = "/admin/v1/content/{kind}/{id}/history", operation_id = "getItemHistory", tag = "ledger",
    summary = "An item's history",
    params(("kind" = String, Path), ("id" = String, Path)),
    responses((status = 200, description = "Its audit rows and disposals, oldest first", body = History)),
    security(("admin" = [])),
)]
pub(super) async fn history(
    state: web::Data<AppState>,
    w: AdminCaller,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (kind, id) = path.into_inner();
    let st = state.clone();
    let (k, i) = (kind.clone(), id.clone());
    let entries = blocking(move || {
        Ok(st
            .svc
            .db
            .read(|c| history::of_item(c, &w.caller.tenant_id, &k, &i))?)
    })
    .await?
    .ok_or_else(|| ScimError::not_found(format!("no history for {kind} {id}")))?;
    let history = entries.into_iter().map(entry).collect();
    Ok(ok(StatusCode::OK, History { kind, id, history }))
}

fn entry(e: Entry) -> HistoryEntry {
    match e {
        Entry::Audit { at, actor, action } => HistoryEntry {
            at,
            actor,
            action,
            disposal_id: None,
            from_owner: None,
            to_owner: None,
        },
        Entry::Moved {
            at,
            disposal_id,
            action,
            from_owner,
            to_owner,
        } => HistoryEntry {
            at,
            actor: "disposal".into(),
            action: format!("disposal.{action}"),
            disposal_id: Some(disposal_id),
            from_owner: Some(from_owner),
            to_owner: Some(to_owner),
        },
    }
}

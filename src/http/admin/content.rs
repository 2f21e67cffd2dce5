//! `/content…`, `/user-data/…`, `/users/{id}/transfer`: the content ledger.

use super::{body, created_or_ok, ok, query};
use crate::deprovision::admin::{ItemBody, ParentRef, UserDataLine};
use crate::deprovision::commands::content::{self as cmd, Selection};
use crate::http::auth::{AdminCaller, AdminUpload};
use crate::http::error::ApiError;
use crate::http::{AppState, blocking};
use crate::scim::error::ScimError;
use crate::store::ledger::ItemQuery;
use crate::store::reads::history::{self, Entry};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

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

pub(super) async fn list(
    req: HttpRequest,
    state: web::Data<AppState>,
    w: AdminCaller,
) -> Result<HttpResponse, ApiError> {
    let qp = query(&req)?;
    let page = qp.page();
    let q = ItemQuery {
        owner: qp.param("owner").map(str::to_string),
        kind: qp.param("kind").map(str::to_string),
        orphaned: qp
            .param("orphaned")
            .is_some_and(|v| v.eq_ignore_ascii_case("true")),
        offset: page.offset,
        limit: page.limit,
    };
    let st = state.clone();
    let v = blocking(move || Ok(cmd::list_items(&st.svc.db, &w.caller.tenant_id, &q)?)).await?;
    Ok(ok(StatusCode::OK, v))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ReassignBody {
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

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct UserDataBody {
    #[serde(alias = "owner", alias = "userId")]
    user: Option<String>,
    #[serde(rename = "userName", alias = "ownerUserName")]
    user_name: Option<String>,
}

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
    Ok(ok(created_or_ok(created), json!({"user": "recorded"})))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TransferBody {
    to: String,
}

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

/// An item's history: its audit rows and the disposals that moved it, oldest first.
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
    let history: Vec<Value> = entries.into_iter().map(entry_json).collect();
    Ok(ok(
        StatusCode::OK,
        json!({"kind": kind, "id": id, "history": history}),
    ))
}

fn entry_json(e: Entry) -> Value {
    match e {
        Entry::Audit { at, actor, action } => json!({"at": at, "actor": actor, "action": action}),
        Entry::Moved {
            at,
            disposal_id,
            action,
            from_owner,
            to_owner,
        } => json!({
            "at": at, "actor": "disposal", "action": format!("disposal.{action}"),
            "disposalId": disposal_id, "fromOwner": from_owner, "toOwner": to_owner,
        }),
    }
}

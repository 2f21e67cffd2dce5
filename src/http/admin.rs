//! `/admin/v1` (admin scope; content and user-data writes also take the `ledger`
//! scope) and `/gate/v1` (gate scope). Handlers parse, call the domain on a
//! blocking thread, and answer JSON; errors use the SCIM error schema.

use super::auth::{AdminCaller, AdminUpload, GateUpload, LedgerCaller, LedgerUpload};
use super::body::read_json;
use super::error::ApiError;
use super::ops::{method_not_allowed, not_found};
use super::{AppState, blocking};
use crate::deprovision::admin::{self as dadmin, AdminError, ItemBody, ParentRef, Who};
use crate::deprovision::gate::{self, GateRequest};
use crate::deprovision::service::{DeprovError, Outcome};
use crate::provisioning::Caller;
use crate::scim::error::ScimError;
use crate::store::StoreError;
use crate::store::ledger::{self, ItemQuery};
use crate::store::schema::{audit_log, disposal_items, disposals, tombstone_hashes, tombstones};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use diesel::prelude::*;
use serde_json::{Value, json};

impl From<AdminError> for ApiError {
    fn from(e: AdminError) -> Self {
        match e {
            AdminError::Scim(s) => ApiError::Scim(s),
            AdminError::Store(s) => ApiError::Store(s),
        }
    }
}

impl From<DeprovError> for ApiError {
    fn from(e: DeprovError) -> Self {
        crate::provisioning::ServiceError::from(e).into()
    }
}

/// A NUL (`%00`) in a path or query can never name anything, and PostgreSQL
/// cannot even compare it: refused before any handler runs.
fn refuse_nul(req: &actix_web::dev::ServiceRequest) -> Option<ApiError> {
    let raw = req.uri().to_string().to_ascii_lowercase();
    raw.contains("%00").then(|| {
        ApiError::Scim(ScimError::invalid_value(
            "NUL characters (%00) are not allowed in paths or query strings",
        ))
    })
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    use actix_web::dev::Service;
    cfg.service(
        web::scope("/admin/v1")
            .wrap_fn(|req, srv| {
                let call = match refuse_nul(&req) {
                    Some(e) => Err(e),
                    None => Ok(srv.call(req)),
                };
                async move {
                    match call {
                        Ok(fut) => fut.await,
                        Err(e) => Err(e.into()),
                    }
                }
            })
            .route("/content", web::get().to(list_content))
            .route("/content:reassign", web::post().to(reassign))
            .route(
                "/content:import",
                web::post().to(super::import::import_content),
            )
            .route(
                "/user-data:import",
                web::post().to(super::import::import_user_data),
            )
            .service(
                web::resource("/content/{kind}/{id}")
                    .route(web::put().to(put_content))
                    .route(web::get().to(get_content))
                    .route(web::delete().to(delete_content))
                    .default_service(web::to(method_not_allowed)),
            )
            .route("/content/{kind}/{id}/history", web::get().to(history))
            .route("/user-data/{category}/{id}", web::put().to(put_user_data))
            .route("/users/{id}/transfer", web::post().to(transfer))
            .route("/users/{id}/disposal-plan", web::get().to(disposal_plan))
            .route("/users/{id}/dispose", web::post().to(dispose))
            .service(
                web::resource("/users/{id}/sso-subjects")
                    .route(web::put().to(put_sso))
                    .route(web::delete().to(delete_sso))
                    .default_service(web::to(method_not_allowed)),
            )
            .route("/disposals", web::get().to(list_disposals))
            .route("/disposals/{id}/release", web::post().to(release))
            .route("/brake/reset", web::post().to(reset_brake))
            .service(
                web::resource("/users/{id}/legal-hold")
                    .route(web::put().to(legal_hold))
                    .route(web::delete().to(legal_hold))
                    .default_service(web::to(method_not_allowed)),
            )
            .route("/webhooks", web::get().to(webhooks))
            .route("/webhooks:resume", web::post().to(resume_webhooks))
            .route("/events", web::get().to(events))
            .route("/disposals/{id}", web::get().to(get_disposal))
            .route("/tombstones", web::get().to(list_tombstones))
            .route("/tombstones:lift", web::post().to(lift_tombstones))
            .route("/tombstones:release", web::post().to(release_identifiers))
            .route("/policy", web::get().to(policy))
            .route("/audit", web::get().to(audit))
            .default_service(web::to(not_found)),
    )
    .service(
        web::scope("/gate/v1")
            .service(
                web::resource("/check")
                    .route(web::post().to(gate_check))
                    .default_service(web::to(method_not_allowed)),
            )
            .default_service(web::to(not_found)),
    );
}

fn who(c: &Caller) -> Who<'_> {
    Who {
        tenant_id: &c.tenant_id,
        tenant_name: &c.tenant_name,
        actor: &c.actor,
    }
}

fn ok(status: StatusCode, v: Value) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("application/json")
        .body(v.to_string())
}

/// `startIndex`/`count` (1-based; count ≤ 1000) and the other query parameters.
/// Query pairs, startIndex, count.
type Paged = (Vec<(String, String)>, i64, i64);
/// A receipt line: kind, id, action, from, to, chain link.
type ReceiptLine = (
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
);
/// An audit row: id, at, actor, action, subject type, subject id, detail.
type AuditRow = (
    String,
    String,
    String,
    String,
    String,
    String,
    Option<String>,
);

fn query(req: &HttpRequest) -> Result<Paged, ApiError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(req.query_string())
        .map_err(|e| ScimError::invalid_syntax(format!("query string is not valid: {e}")))?;
    let int = |name: &str, default: i64| -> Result<i64, ApiError> {
        match pairs.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)) {
            Some((_, v)) => v.trim().parse::<i64>().map_err(|_| {
                ScimError::invalid_value(format!("'{name}' must be an integer")).into()
            }),
            None => Ok(default),
        }
    };
    let start = int("startIndex", 1)?.max(1);
    let count = int("count", 100)?.clamp(0, 1000);
    Ok((pairs, start, count))
}

fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn parse<T: serde::de::DeserializeOwned>(v: Value) -> Result<T, ApiError> {
    serde_json::from_value(v)
        .map_err(|e| ScimError::invalid_value(format!("invalid request body: {e}")).into())
}

async fn put_content(
    req: HttpRequest,
    state: web::Data<AppState>,
    w: LedgerUpload,
    path: web::Path<(String, String)>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body: ItemBody = parse(read_json(&req, payload, state.settings.max_body_bytes).await?)?;
    let w = w.ready().await?;
    let (kind, id) = path.into_inner();
    let st = state.clone();
    let (created, v) = blocking(move || {
        let svc = &st.svc;
        Ok(svc
            .db
            .write(|c| dadmin::put_item(&svc.deprov, c, &who(&w.caller), &kind, &id, &body))?)
    })
    .await?;
    Ok(ok(
        if created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        },
        v,
    ))
}

async fn get_content(
    state: web::Data<AppState>,
    w: LedgerCaller,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (kind, id) = path.into_inner();
    let st = state.clone();
    let v = blocking(move || {
        Ok(st.svc.db.read(|c| -> Result<Value, AdminError> {
            let row = ledger::find_item(c, &w.caller.tenant_id, &kind, &id)?
                .ok_or_else(|| ScimError::not_found(format!("no {kind} item with id {id}")))?;
            Ok(dadmin::item_json(c, &row)?)
        })?)
    })
    .await?;
    Ok(ok(StatusCode::OK, v))
}

async fn delete_content(
    state: web::Data<AppState>,
    w: LedgerCaller,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (kind, id) = path.into_inner();
    let st = state.clone();
    blocking(move || {
        Ok(st.svc.db.write(|c| -> Result<(), AdminError> {
            dadmin::check_deletable(&kind, &id)?;
            if !ledger::delete_item(c, &w.caller.tenant_id, &kind, &id)? {
                return Err(ScimError::not_found(format!("no {kind} item with id {id}")).into());
            }
            let now = st.svc.deprov.now();
            Ok(crate::deprovision::disposal::audit(
                c,
                &w.caller.tenant_id,
                &now,
                &w.caller.actor,
                "content.deleted",
                &kind,
                &id,
                None,
            )?)
        })?)
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn list_content(
    req: HttpRequest,
    state: web::Data<AppState>,
    w: AdminCaller,
) -> Result<HttpResponse, ApiError> {
    let (pairs, start, count) = query(&req)?;
    let q = ItemQuery {
        owner: param(&pairs, "owner").map(str::to_string),
        kind: param(&pairs, "kind").map(str::to_string),
        orphaned: param(&pairs, "orphaned").is_some_and(|v| v.eq_ignore_ascii_case("true")),
        offset: start - 1,
        limit: count,
    };
    let st = state.clone();
    let v = blocking(move || Ok(dadmin::list_items(&st.svc.db, &w.caller.tenant_id, &q)?)).await?;
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

async fn reassign(
    req: HttpRequest,
    state: web::Data<AppState>,
    w: AdminUpload,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body: ReassignBody = parse(read_json(&req, payload, state.settings.max_body_bytes).await?)?;
    let w = w.ready().await?;
    let st = state.clone();
    let v = blocking(move || {
        let items = match (&body.items, &body.owner, body.orphaned) {
            (Some(items), None, false) => items.clone(),
            (None, owner, orphaned) if owner.is_some() != orphaned => {
                // Resolve the selection to named items, then move exactly those.
                let q = ItemQuery { owner: owner.clone(), kind: body.kind.clone(), orphaned, offset: 0, limit: i64::MAX };
                let (_, rows) = st.svc.db.read(|c| ledger::list_items(c, &w.caller.tenant_id, &q))?;
                rows.into_iter().map(|r| ParentRef { kind: r.kind, id: r.item_id }).collect()
            }
            _ => {
                return Err(ScimError::invalid_value("name either \"items\", or \"owner\" or \"orphaned\": true (optionally with \"kind\")").into());
            }
        };
        Ok(dadmin::reassign(&st.svc.deprov, &st.svc.db, &who(&w.caller), &items, &body.to)?)
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

async fn put_user_data(
    req: HttpRequest,
    state: web::Data<AppState>,
    w: LedgerUpload,
    path: web::Path<(String, String)>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body: UserDataBody = parse(read_json(&req, payload, state.settings.max_body_bytes).await?)?;
    let w = w.ready().await?;
    let (category, id) = path.into_inner();
    let st = state.clone();
    let created = blocking(move || {
        let svc = &st.svc;
        let line = dadmin::UserDataLine {
            category,
            id,
            user: body.user,
            user_name: body.user_name,
        };
        Ok(svc
            .db
            .write(|c| dadmin::put_user_data_line(&svc.deprov, c, &who(&w.caller), &line))?)
    })
    .await?;
    Ok(ok(
        if created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        },
        json!({"user": "recorded"}),
    ))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TransferBody {
    to: String,
}

async fn transfer(
    req: HttpRequest,
    state: web::Data<AppState>,
    w: AdminUpload,
    id: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body: TransferBody = parse(read_json(&req, payload, state.settings.max_body_bytes).await?)?;
    let w = w.ready().await?;
    let st = state.clone();
    let id = id.into_inner();
    let v = blocking(move || {
        Ok(dadmin::transfer(
            &st.svc.deprov,
            &st.svc.db,
            &who(&w.caller),
            &id,
            &body.to,
        )?)
    })
    .await?;
    Ok(ok(StatusCode::OK, v))
}

async fn disposal_plan(
    req: HttpRequest,
    state: web::Data<AppState>,
    w: AdminCaller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (_, start, count) = query(&req)?;
    let st = state.clone();
    let id = id.into_inner();
    let plan = blocking(move || {
        Ok(st
            .svc
            .deprov
            .preview(&st.svc.db, &w.caller.requester(), &id)?)
    })
    .await?;
    let mut v = serde_json::to_value(&plan).unwrap_or_default();
    let skip = usize::try_from(start - 1).unwrap_or(0);
    let take = usize::try_from(count).unwrap_or(0);
    let page: Vec<&crate::deprovision::disposal::PlanItem> =
        plan.items.iter().skip(skip).take(take).collect();
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

async fn dispose(
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
    let receipt = blocking(move || {
        let svc = &st.svc;
        let r = svc.db.write_long(|c| {
            svc.deprov
                .dispose_in(c, &w.caller.requester(), &id, "admin", expected.as_deref())
        })?;
        svc.db.checkpoint_soon();
        Ok(r)
    })
    .await?;
    Ok(match receipt {
        Outcome::Disposed(r) => ok(StatusCode::OK, serde_json::to_value(&r).unwrap_or_default()),
        Outcome::Held {
            disposal_id,
            reason,
        } => ok(
            StatusCode::ACCEPTED,
            json!({"state": "held", "disposalId": disposal_id, "reason": reason}),
        ),
    })
}

async fn release(
    state: web::Data<AppState>,
    w: AdminCaller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let st = state.clone();
    let id = id.into_inner();
    let r = blocking(move || {
        Ok(st
            .svc
            .deprov
            .release(&st.svc.db, &w.caller.requester(), &id)?)
    })
    .await?;
    Ok(ok(
        StatusCode::OK,
        serde_json::to_value(&r).unwrap_or_default(),
    ))
}

async fn reset_brake(state: web::Data<AppState>, w: AdminCaller) -> Result<HttpResponse, ApiError> {
    let st = state.clone();
    blocking(move || {
        Ok(st
            .svc
            .deprov
            .reset_brake(&st.svc.db, &w.caller.requester())?)
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn legal_hold(
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
            .set_legal_hold(&st.svc.db, &w.caller.requester(), &id, on)?)
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn events(
    req: HttpRequest,
    state: web::Data<AppState>,
    w: AdminCaller,
) -> Result<HttpResponse, ApiError> {
    let (pairs, _, count) = query(&req)?;
    let after = match param(&pairs, "after") {
        Some(a) => a
            .trim()
            .parse::<i64>()
            .map_err(|_| ScimError::invalid_value("'after' must be an event seq (an integer)"))?,
        None => 0,
    };
    let st = state.clone();
    let v = blocking(move || {
        Ok(st.svc.db.read(|c| {
            crate::events::feed(
                c,
                &w.caller.tenant_id,
                &w.caller.tenant_name,
                after,
                count.max(1),
            )
        })?)
    })
    .await?;
    let next = v.last().and_then(|e| e["seq"].as_i64()).unwrap_or(after);
    Ok(ok(StatusCode::OK, json!({"events": v, "next": next})))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SsoBody {
    issuer: String,
    subject: String,
}

async fn put_sso(
    req: HttpRequest,
    state: web::Data<AppState>,
    w: AdminUpload,
    id: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body: SsoBody = parse(read_json(&req, payload, state.settings.max_body_bytes).await?)?;
    let w = w.ready().await?;
    let st = state.clone();
    let id = id.into_inner();
    blocking(move || {
        Ok(st.svc.db.write(|c| -> Result<(), AdminError> {
            if body.issuer.trim().is_empty() || body.subject.trim().is_empty() {
                return Err(
                    ScimError::invalid_value("'issuer' and 'subject' must be non-empty").into(),
                );
            }
            // Under the user's lock: a disposal cannot commit in between and leave
            // a subject in the clear on a stub.
            crate::store::db::lock_row(c, "users", &w.caller.tenant_id, &id)?;
            if crate::store::users::find(c, &w.caller.tenant_id, &id)?.is_none() {
                return Err(ScimError::not_found(format!("no user with id {id}")).into());
            }
            let now = st.svc.deprov.now();
            let issuer = body.issuer.trim().trim_end_matches('/');
            if !ledger::add_sso(c, &w.caller.tenant_id, &id, issuer, &body.subject, &now)? {
                return Err(ScimError::uniqueness(
                    "this SSO subject is registered to another user",
                )
                .into());
            }
            Ok(crate::deprovision::disposal::audit(
                c,
                &w.caller.tenant_id,
                &now,
                &w.caller.actor,
                "sso.registered",
                "user",
                &id,
                None,
            )?)
        })?)
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn delete_sso(
    req: HttpRequest,
    state: web::Data<AppState>,
    w: AdminUpload,
    id: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body: SsoBody = parse(read_json(&req, payload, state.settings.max_body_bytes).await?)?;
    let w = w.ready().await?;
    let st = state.clone();
    let id = id.into_inner();
    blocking(move || {
        Ok(st.svc.db.write(|c| -> Result<(), AdminError> {
            if !ledger::remove_sso(
                c,
                &w.caller.tenant_id,
                &id,
                body.issuer.trim().trim_end_matches('/'),
                &body.subject,
            )? {
                return Err(ScimError::not_found("no such SSO subject for this user").into());
            }
            Ok(())
        })?)
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

type DisposalRow = (
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    String,
    Option<String>,
);

fn disposal_json(r: DisposalRow) -> Value {
    let (id, user_id, state, cause, due_at, plan_hash, counts, created_at, completed_at) = r;
    json!({
        "id": id, "userId": user_id, "state": state, "cause": cause, "dueAt": due_at, "planHash": plan_hash,
        "counts": counts.and_then(|c| serde_json::from_str::<Value>(&c).ok()), "createdAt": created_at, "completedAt": completed_at,
    })
}

async fn list_disposals(
    req: HttpRequest,
    state: web::Data<AppState>,
    w: AdminCaller,
) -> Result<HttpResponse, ApiError> {
    let (pairs, start, count) = query(&req)?;
    let wanted = param(&pairs, "state").map(str::to_string);
    if let Some(w) = &wanted
        && !["scheduled", "held", "running", "done", "cancelled"].contains(&w.as_str())
    {
        return Err(ScimError::invalid_value(format!(
            "unknown state '{w}' (scheduled, held, done or cancelled)"
        ))
        .into());
    }
    let st = state.clone();
    let v = blocking(move || {
        Ok(st.svc.db.read(|c| -> Result<Value, AdminError> {
            let mut q = disposals::table
                .filter(disposals::tenant_id.eq(w.caller.tenant_id.clone()))
                .into_boxed();
            if let Some(s) = &wanted {
                q = q.filter(disposals::state.eq(s.clone()));
            }
            let rows: Vec<DisposalRow> = q
                .select((
                    disposals::id,
                    disposals::user_id,
                    disposals::state,
                    disposals::cause,
                    disposals::due_at,
                    disposals::plan_hash,
                    disposals::counts,
                    disposals::created_at,
                    disposals::completed_at,
                ))
                .order((disposals::created_at.desc(), disposals::id))
                .offset(start - 1)
                .limit(count)
                .load(c)?;
            Ok(json!({"Resources": rows.into_iter().map(disposal_json).collect::<Vec<_>>()}))
        })?)
    })
    .await?;
    Ok(ok(StatusCode::OK, v))
}

async fn get_disposal(
    req: HttpRequest,
    state: web::Data<AppState>,
    w: AdminCaller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (_, start, count) = query(&req)?;
    let st = state.clone();
    let id = id.into_inner();
    let v = blocking(move || {
        Ok(st.svc.db.read(|c| -> Result<Value, AdminError> {
            let row: DisposalRow = disposals::table
                .filter(disposals::tenant_id.eq(&w.caller.tenant_id))
                .filter(disposals::id.eq(&id))
                .select((disposals::id, disposals::user_id, disposals::state, disposals::cause, disposals::due_at, disposals::plan_hash, disposals::counts, disposals::created_at, disposals::completed_at))
                .first(c)
                .optional()?
                .ok_or_else(|| ScimError::not_found(format!("no disposal with id {id}")))?;
            let total: i64 = disposal_items::table.filter(disposal_items::disposal_id.eq(&id)).count().get_result(c)?;
            let items: Vec<ReceiptLine> = disposal_items::table
                .filter(disposal_items::disposal_id.eq(&id))
                .select((disposal_items::kind, disposal_items::item_id, disposal_items::action, disposal_items::from_owner, disposal_items::to_owner, disposal_items::target_link))
                .order((disposal_items::kind, disposal_items::item_id))
                .offset(start - 1)
                .limit(count)
                .load(c)?;
            let mut v = disposal_json(row);
            if let Some(o) = v.as_object_mut() {
                o.insert("totalItems".into(), json!(total));
                o.insert("startIndex".into(), json!(start));
                o.insert(
                    "items".into(),
                    items
                        .into_iter()
                        .map(|(kind, item, action, from, to, link)| json!({"kind": kind, "id": item, "action": action, "fromOwner": from, "toOwner": to, "targetLink": link}))
                        .collect(),
                );
            }
            Ok(v)
        })?)
    })
    .await?;
    Ok(ok(StatusCode::OK, v))
}

async fn list_tombstones(
    req: HttpRequest,
    state: web::Data<AppState>,
    w: AdminCaller,
) -> Result<HttpResponse, ApiError> {
    let (_, start, count) = query(&req)?;
    let st = state.clone();
    let v = blocking(move || {
        Ok(st.svc.db.read(|c| -> Result<Value, AdminError> {
            let rows: Vec<(String, Option<String>, String, Option<String>)> = tombstones::table
                .filter(tombstones::tenant_id.eq(&w.caller.tenant_id))
                .select((tombstones::id, tombstones::disposal_id, tombstones::created_at, tombstones::lifted_at))
                .order((tombstones::created_at.desc(), tombstones::id))
                .offset(start - 1)
                .limit(count)
                .load(c)?;
            let mut out = Vec::new();
            for (id, disposal, created, lifted) in rows {
                // Identifier types only: hashes are never shown.
                let mut types: Vec<String> = tombstone_hashes::table.filter(tombstone_hashes::tombstone_id.eq(&id)).select(tombstone_hashes::id_type).load(c)?;
                types.sort();
                types.dedup();
                out.push(json!({"id": id, "disposalId": disposal, "createdAt": created, "liftedAt": lifted, "identifierTypes": types}));
            }
            Ok(json!({"Resources": out}))
        })?)
    })
    .await?;
    Ok(ok(StatusCode::OK, v))
}

/// What an admin does to the live tombstones holding the identifiers named in
/// the body: `lift` forgets each whole tombstone; `release` frees only the named
/// identifiers (a recycled name or address now belongs to a different person),
/// so the rest of each tombstone — the leaver's externalId, SSO subjects, other
/// emails — keeps denying the leaver.
#[derive(Clone, Copy)]
enum TombstoneAction {
    Lift,
    Release,
}

async fn lift_tombstones(
    req: HttpRequest,
    state: web::Data<AppState>,
    w: AdminUpload,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let n = on_tombstones(req, state, w, payload, TombstoneAction::Lift).await?;
    Ok(ok(StatusCode::OK, json!({"lifted": n})))
}

async fn release_identifiers(
    req: HttpRequest,
    state: web::Data<AppState>,
    w: AdminUpload,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let n = on_tombstones(req, state, w, payload, TombstoneAction::Release).await?;
    Ok(ok(StatusCode::OK, json!({"released": n})))
}

async fn on_tombstones(
    req: HttpRequest,
    state: web::Data<AppState>,
    w: AdminUpload,
    payload: web::Payload,
    action: TombstoneAction,
) -> Result<usize, ApiError> {
    let body: GateRequest = parse(read_json(&req, payload, state.settings.max_body_bytes).await?)?;
    let w = w.ready().await?;
    let ids = body.identifiers();
    if ids.is_empty() {
        return Err(ScimError::invalid_value(
            "name at least one identifier: userName, email, externalId or sso",
        )
        .into());
    }
    let st = state.clone();
    let n = blocking(move || {
        let svc = &st.svc;
        Ok(svc.db.write(|c| -> Result<usize, AdminError> {
            use crate::deprovision::tombstones;
            let tenant = &w.caller.tenant_id;
            let found = tombstones::matching(c, &svc.deprov.keys, tenant, &ids)?;
            let now = svc.deprov.now();
            Ok(match action {
                TombstoneAction::Lift => {
                    let mut t: Vec<String> = found.into_iter().map(|m| m.tombstone_id).collect();
                    t.sort();
                    t.dedup();
                    tombstones::lift(c, tenant, &t, &w.caller.actor, &now, "admin")?
                }
                TombstoneAction::Release => {
                    tombstones::release_hashes(c, tenant, &found, &w.caller.actor, &now)?
                }
            })
        })?)
    })
    .await?;
    if n == 0 {
        return Err(ScimError::not_found("no live tombstone holds those identifiers").into());
    }
    Ok(n)
}

async fn policy(state: web::Data<AppState>, w: AdminCaller) -> Result<HttpResponse, ApiError> {
    let p = state.svc.deprov.policy(&w.caller.tenant_name);
    let mut v = serde_json::to_value(&p).unwrap_or_default();
    if let Some(o) = v.as_object_mut() {
        o.insert("tenant".into(), json!(w.caller.tenant_name));
        o.insert("digest".into(), json!(p.digest()));
    }
    Ok(ok(StatusCode::OK, v))
}

async fn audit(
    req: HttpRequest,
    state: web::Data<AppState>,
    w: AdminCaller,
) -> Result<HttpResponse, ApiError> {
    let (_, start, count) = query(&req)?;
    let st = state.clone();
    let v = blocking(move || {
        Ok(st.svc.db.read(|c| -> Result<Value, AdminError> {
            let rows: Vec<AuditRow> = audit_log::table
                .filter(audit_log::tenant_id.eq(&w.caller.tenant_id))
                .select((audit_log::id, audit_log::at, audit_log::actor, audit_log::action, audit_log::subject_type, audit_log::subject_id, audit_log::detail))
                .order((audit_log::at, audit_log::id))
                .offset(start - 1)
                .limit(count)
                .load(c)?;
            Ok(json!({"Resources": rows.into_iter().map(|(id, at, actor, action, st, sid, detail)| json!({
                "id": id, "at": at, "actor": actor, "action": action, "subjectType": st, "subjectId": sid,
                "detail": detail.and_then(|d| serde_json::from_str::<Value>(&d).ok()),
            })).collect::<Vec<_>>()}))
        })?)
    })
    .await?;
    Ok(ok(StatusCode::OK, v))
}

async fn gate_check(
    req: HttpRequest,
    state: web::Data<AppState>,
    w: GateUpload,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body: GateRequest = parse(read_json(&req, payload, state.settings.max_body_bytes).await?)?;
    let w = w.ready().await?;
    if body.email.len() > 20 {
        return Err(ScimError::invalid_value("at most 20 emails per check").into());
    }
    if body
        .sso
        .as_ref()
        .is_some_and(|s| s.issuer.trim().is_empty() || s.subject.is_empty())
    {
        return Err(ScimError::invalid_value("'sso' needs a non-empty issuer and subject").into());
    }
    if body.identifiers().is_empty() {
        return Err(ScimError::invalid_value(
            "name at least one identifier: userName, email, externalId or sso",
        )
        .into());
    }
    // A plain check on SQLite is one indexed statement on a local file: answered
    // here when a connection is idle (never waiting for one), without the two
    // thread hand-offs of the blocking pool.
    if !body.register
        && let Some(db) = state.svc.db.idle_sqlite()
    {
        let policy = state.svc.deprov.policy(&w.caller.tenant_name);
        match db.read(|c| {
            gate::check(
                c,
                &state.svc.deprov.keys,
                &policy,
                &w.caller.tenant_id,
                &body,
            )
        }) {
            Err(StoreError::WouldWait) => {}
            answer => {
                return Ok(ok(
                    StatusCode::OK,
                    serde_json::to_value(&answer?).unwrap_or_default(),
                ));
            }
        }
    }
    let st = state.clone();
    let answer = blocking(move || {
        let svc = &st.svc;
        let policy = svc.deprov.policy(&w.caller.tenant_name);
        if !body.register {
            return Ok(svc.db.read(|c| {
                gate::check(c, &svc.deprov.keys, &policy, &w.caller.tenant_id, &body)
            })?);
        }
        // `register`: decide and link in one transaction, under the user's lock, so
        // a disposal committing in between cannot leave a subject on a stub.
        let now = st.svc.deprov.now();
        let answer = svc.db.write(|c| -> Result<gate::GateAnswer, AdminError> {
            let first = gate::check(c, &svc.deprov.keys, &policy, &w.caller.tenant_id, &body)?;
            let (Some(uid), Some(sso), "allow") =
                (first.user_id.clone(), body.sso.clone(), first.decision)
            else {
                return Ok(first);
            };
            crate::store::db::lock_row(c, "users", &w.caller.tenant_id, &uid)?;
            let answer = gate::check(c, &svc.deprov.keys, &policy, &w.caller.tenant_id, &body)?;
            let still_allowed =
                answer.decision == "allow" && answer.user_id.as_deref() == Some(uid.as_str());
            let issuer = sso.issuer.trim().trim_end_matches('/');
            if still_allowed
                && ledger::add_sso(c, &w.caller.tenant_id, &uid, issuer, &sso.subject, &now)?
            {
                crate::deprovision::disposal::audit(
                    c,
                    &w.caller.tenant_id,
                    &now,
                    &w.caller.actor,
                    "sso.registered",
                    "user",
                    &uid,
                    None,
                )?;
            }
            Ok(answer)
        })?;
        Ok(answer)
    })
    .await?;
    Ok(ok(
        StatusCode::OK,
        serde_json::to_value(&answer).unwrap_or_default(),
    ))
}

/// A receipt line seen from the item: disposal, completed, action, from, to.
type Move = (
    String,
    Option<String>,
    String,
    Option<String>,
    Option<String>,
);

/// An item's history: its audit rows and the disposals that moved it, oldest first.
async fn history(
    state: web::Data<AppState>,
    w: AdminCaller,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (kind, id) = path.into_inner();
    let st = state.clone();
    let v = blocking(move || {
        Ok(st.svc.db.read(|c| -> Result<Value, AdminError> {
            let mut out: Vec<(String, Value)> = Vec::new();
            let rows: Vec<(String, String, String)> = audit_log::table
                .filter(audit_log::tenant_id.eq(&w.caller.tenant_id))
                .filter(audit_log::subject_type.eq(&kind))
                .filter(audit_log::subject_id.eq(&id))
                .select((audit_log::at, audit_log::actor, audit_log::action))
                .load(c)?;
            for (at, actor, action) in rows {
                out.push((at.clone(), json!({"at": at, "actor": actor, "action": action})));
            }
            let moves: Vec<Move> = disposal_items::table
                .inner_join(disposals::table)
                .filter(disposals::tenant_id.eq(&w.caller.tenant_id))
                .filter(disposal_items::kind.eq(&kind))
                .filter(disposal_items::item_id.eq(&id))
                .select((disposals::id, disposals::completed_at, disposal_items::action, disposal_items::from_owner, disposal_items::to_owner))
                .load(c)?;
            for (disposal, at, action, from, to) in moves {
                let at = at.unwrap_or_default();
                out.push((at.clone(), json!({"at": at, "actor": "disposal", "action": format!("disposal.{action}"), "disposalId": disposal, "fromOwner": from, "toOwner": to})));
            }
            if out.is_empty() && ledger::find_item(c, &w.caller.tenant_id, &kind, &id)?.is_none() {
                return Err(ScimError::not_found(format!("no history for {kind} {id}")).into());
            }
            out.sort_by(|a, b| a.0.cmp(&b.0));
            Ok(json!({"kind": kind, "id": id, "history": out.into_iter().map(|(_, v)| v).collect::<Vec<_>>()}))
        })?)
    })
    .await?;
    Ok(ok(StatusCode::OK, v))
}

/// Delivery state per webhook endpoint of the tenant.
async fn webhooks(state: web::Data<AppState>, w: AdminCaller) -> Result<HttpResponse, ApiError> {
    use crate::store::schema::webhook_cursors as wc;
    let st = state.clone();
    let v = blocking(move || {
        Ok(st.svc.db.read(|c| -> Result<Value, AdminError> {
            let rows: Vec<(String, i64, i32, String, bool)> = wc::table
                .filter(wc::tenant_id.eq(&w.caller.tenant_id))
                .select((wc::endpoint, wc::last_seq, wc::attempts, wc::next_attempt_at, wc::paused))
                .order(wc::endpoint)
                .load(c)?;
            Ok(json!({"Resources": rows.into_iter().map(|(endpoint, last, attempts, next, paused)| json!({
                "endpoint": endpoint, "lastDeliveredSeq": last, "failedAttempts": attempts, "nextAttemptAt": next, "paused": paused,
            })).collect::<Vec<_>>()}))
        })?)
    })
    .await?;
    Ok(ok(StatusCode::OK, v))
}

/// Un-pauses every paused endpoint of the tenant; delivery resumes where it stopped.
async fn resume_webhooks(
    state: web::Data<AppState>,
    w: AdminCaller,
) -> Result<HttpResponse, ApiError> {
    use crate::store::schema::webhook_cursors as wc;
    let st = state.clone();
    let n = blocking(move || {
        let now = st.svc.deprov.now();
        Ok(st.svc.db.write(|c| -> Result<usize, AdminError> {
            let n = diesel::update(
                wc::table
                    .filter(wc::tenant_id.eq(&w.caller.tenant_id))
                    .filter(wc::paused.eq(true)),
            )
            .set((
                wc::paused.eq(false),
                wc::attempts.eq(0),
                wc::next_attempt_at.eq(&now),
            ))
            .execute(c)?;
            crate::deprovision::disposal::audit(
                c,
                &w.caller.tenant_id,
                &now,
                &w.caller.actor,
                "webhooks.resumed",
                "tenant",
                &w.caller.tenant_id,
                None,
            )?;
            Ok(n)
        })?)
    })
    .await?;
    Ok(ok(StatusCode::OK, json!({"resumed": n})))
}

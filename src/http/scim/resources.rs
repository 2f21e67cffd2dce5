//! Generic handlers for the resource endpoints: parse, authenticate, call the
//! provisioning service on a blocking thread, answer in SCIM JSON.

use crate::config::Settings;
use crate::domain::Actor;
use crate::http::auth::{ScimCaller, ScimUpload};
use crate::http::body::{parse_with, read_bytes, read_json};
use crate::http::error::{ApiError, SCIM_JSON};
use crate::http::ops::method_not_allowed;
use crate::http::{AppState, blocking};
use crate::provisioning::{self, PatchOutcome, Rendered, ServiceError, Services};
use crate::scim::filter::{CompareOp, Filter};
use crate::scim::list::{self, ListParams};
use crate::scim::patch::{self, Operation};
use crate::scim::resource::Projection;
use crate::store::StoreError;
use actix_web::http::StatusCode;
use actix_web::http::header::{ETAG, IF_MATCH, IF_NONE_MATCH, LOCATION};
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::Value;

/// The operations a SCIM resource type offers.
pub trait Resource: 'static {
    fn create(
        svc: &Services,
        c: &Actor,
        body: &Value,
        p: &Projection,
        base: &str,
    ) -> Result<Rendered, ServiceError>;
    fn get(
        svc: &Services,
        c: &Actor,
        id: &str,
        p: &Projection,
        base: &str,
    ) -> Result<Rendered, ServiceError>;
    fn replace(
        svc: &Services,
        c: &Actor,
        id: &str,
        body: &Value,
        if_match: Option<&str>,
        p: &Projection,
        base: &str,
    ) -> Result<Rendered, ServiceError>;
    fn patch(
        svc: &Services,
        c: &Actor,
        id: &str,
        ops: &[Operation],
        if_match: Option<&str>,
        p: &Projection,
        base: &str,
    ) -> Result<PatchOutcome, ServiceError>;
    fn delete(
        svc: &Services,
        c: &Actor,
        id: &str,
        if_match: Option<&str>,
        base: &str,
    ) -> Result<(), ServiceError>;
    /// `delete` without a blocking-pool thread, where the type offers it
    /// (a user's small disposal on SQLite): `Some(false)` when it cannot
    /// (nothing written; `delete` follows).
    fn delete_queued(
        _svc: &Services,
        _c: &Actor,
        _id: &str,
        _if_match: Option<&str>,
        _base: &str,
    ) -> Option<QueuedDelete> {
        None
    }
    fn list(
        svc: &Services,
        c: &Actor,
        params: &ListParams,
        base: &str,
    ) -> Result<Value, ServiceError>;
    /// The body limit for a PUT (a group PUT carries its whole member list).
    fn put_limit(s: &Settings) -> usize {
        s.max_body_bytes
    }
    /// A point lookup's read (`run_list`'s fast path): `None` when this type
    /// offers none (a group carries its members: no bound).
    fn lookup(
        _svc: &Services,
        _c: &Actor,
        _params: &ListParams,
    ) -> Option<Result<provisioning::users::UserPage, ServiceError>> {
        None
    }
}

/// A DELETE on its way through the write queue: `true` once done.
pub type QueuedDelete =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<bool, ServiceError>>>>;

pub struct Users;
pub struct Groups;

impl Resource for Users {
    fn lookup(
        svc: &Services,
        c: &Actor,
        params: &ListParams,
    ) -> Option<Result<provisioning::users::UserPage, ServiceError>> {
        Some(
            provisioning::users::list_plan(svc, c, params)
                .and_then(|plan| provisioning::users::fetch_list(svc, c, params, plan)),
        )
    }

    fn create(
        svc: &Services,
        c: &Actor,
        body: &Value,
        p: &Projection,
        base: &str,
    ) -> Result<Rendered, ServiceError> {
        provisioning::users::create(svc, c, body, p, base)
    }
    fn get(
        svc: &Services,
        c: &Actor,
        id: &str,
        p: &Projection,
        base: &str,
    ) -> Result<Rendered, ServiceError> {
        provisioning::users::get(svc, c, id, p, base)
    }
    fn replace(
        svc: &Services,
        c: &Actor,
        id: &str,
        body: &Value,
        m: Option<&str>,
        p: &Projection,
        base: &str,
    ) -> Result<Rendered, ServiceError> {
        provisioning::users::replace(svc, c, id, body, m, p, base)
    }
    fn patch(
        svc: &Services,
        c: &Actor,
        id: &str,
        ops: &[Operation],
        m: Option<&str>,
        p: &Projection,
        base: &str,
    ) -> Result<PatchOutcome, ServiceError> {
        provisioning::users::patch(svc, c, id, ops, m, p, base).map(PatchOutcome::Resource)
    }
    fn delete(
        svc: &Services,
        c: &Actor,
        id: &str,
        m: Option<&str>,
        base: &str,
    ) -> Result<(), ServiceError> {
        provisioning::users::delete(svc, c, id, m, base)
    }
    fn delete_queued(
        svc: &Services,
        c: &Actor,
        id: &str,
        m: Option<&str>,
        base: &str,
    ) -> Option<QueuedDelete> {
        provisioning::users::delete_queued(svc, c, id, m, base).map(|f| Box::pin(f) as QueuedDelete)
    }
    fn list(
        svc: &Services,
        c: &Actor,
        params: &ListParams,
        base: &str,
    ) -> Result<Value, ServiceError> {
        provisioning::users::list(svc, c, params, base)
    }
}

impl Resource for Groups {
    fn create(
        svc: &Services,
        c: &Actor,
        body: &Value,
        p: &Projection,
        base: &str,
    ) -> Result<Rendered, ServiceError> {
        provisioning::groups::create(svc, c, body, p, base)
    }
    fn get(
        svc: &Services,
        c: &Actor,
        id: &str,
        p: &Projection,
        base: &str,
    ) -> Result<Rendered, ServiceError> {
        provisioning::groups::get(svc, c, id, p, base)
    }
    fn replace(
        svc: &Services,
        c: &Actor,
        id: &str,
        body: &Value,
        m: Option<&str>,
        p: &Projection,
        base: &str,
    ) -> Result<Rendered, ServiceError> {
        provisioning::groups::replace(svc, c, id, body, m, p, base)
    }
    fn patch(
        svc: &Services,
        c: &Actor,
        id: &str,
        ops: &[Operation],
        m: Option<&str>,
        p: &Projection,
        base: &str,
    ) -> Result<PatchOutcome, ServiceError> {
        provisioning::groups::patch(svc, c, id, ops, m, p, base)
    }
    fn delete(
        svc: &Services,
        c: &Actor,
        id: &str,
        m: Option<&str>,
        base: &str,
    ) -> Result<(), ServiceError> {
        provisioning::groups::delete(svc, c, id, m, base)
    }
    fn list(
        svc: &Services,
        c: &Actor,
        params: &ListParams,
        base: &str,
    ) -> Result<Value, ServiceError> {
        provisioning::groups::list(svc, c, params, base)
    }
    fn put_limit(s: &Settings) -> usize {
        s.max_group_body_bytes
    }
}

pub fn routes<R: Resource>(cfg: &mut web::ServiceConfig, base: &str) {
    cfg.service(
        web::resource(base.to_string())
            .route(web::get().to(list::<R>))
            .route(web::post().to(create::<R>))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource(format!("{base}/.search"))
            .route(web::post().to(search::<R>))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource(format!("{base}/{{id}}"))
            .route(web::get().to(get::<R>))
            .route(web::put().to(replace::<R>))
            .route(web::patch().to(patch::<R>))
            .route(web::delete().to(delete::<R>))
            .default_service(web::to(method_not_allowed)),
    );
}

fn header(req: &HttpRequest, name: actix_web::http::header::HeaderName) -> Option<String> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

fn respond(status: StatusCode, r: Rendered) -> HttpResponse {
    let mut b = HttpResponse::build(status);
    b.content_type(SCIM_JSON)
        .insert_header((ETAG, r.etag.clone()));
    if status == StatusCode::CREATED {
        b.insert_header((LOCATION, r.location.clone()));
    }
    b.body(r.to_json_text())
}

fn json(v: Value) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(SCIM_JSON)
        .body(v.to_string())
}

async fn create<R: Resource>(
    req: HttpRequest,
    state: web::Data<AppState>,
    upload: ScimUpload,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = read_json(
        &req,
        payload,
        state.settings.max_body_bytes,
        upload.tenant(),
    )
    .await?;
    let who = upload.ready().await?;
    let projection = list::projection_from_query(req.query_string())?;
    let st = state.clone();
    let base = state.scim_base_for(&req);
    let caller = who.caller.clone();
    let r = blocking(move || Ok(R::create(&st.svc, &caller, &body, &projection, &base)?)).await?;
    Ok(respond(StatusCode::CREATED, r))
}

async fn get<R: Resource>(
    req: HttpRequest,
    state: web::Data<AppState>,
    who: ScimCaller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let projection = list::projection_from_query(req.query_string())?;
    let st = state.clone();
    let base = state.scim_base_for(&req);
    let caller = who.caller.clone();
    let id = checked_id(id.into_inner())?;
    let r = blocking(move || Ok(R::get(&st.svc, &caller, &id, &projection, &base)?)).await?;
    if let Some(inm) = header(&req, IF_NONE_MATCH)
        && provisioning::check_if_match(Some(&inm), &r.etag).is_ok()
    {
        return Ok(HttpResponse::NotModified()
            .insert_header((ETAG, r.etag))
            .finish());
    }
    Ok(respond(StatusCode::OK, r))
}

async fn replace<R: Resource>(
    req: HttpRequest,
    state: web::Data<AppState>,
    upload: ScimUpload,
    id: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = read_json(
        &req,
        payload,
        R::put_limit(&state.settings),
        upload.tenant(),
    )
    .await?;
    let who = upload.ready().await?;
    let projection = list::projection_from_query(req.query_string())?;
    let if_match = header(&req, IF_MATCH);
    let st = state.clone();
    let base = state.scim_base_for(&req);
    let caller = who.caller.clone();
    let id = checked_id(id.into_inner())?;
    let r = blocking(move || {
        Ok(R::replace(
            &st.svc,
            &caller,
            &id,
            &body,
            if_match.as_deref(),
            &projection,
            &base,
        )?)
    })
    .await?;
    Ok(respond(StatusCode::OK, r))
}

async fn patch<R: Resource>(
    req: HttpRequest,
    state: web::Data<AppState>,
    upload: ScimUpload,
    id: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = read_json(
        &req,
        payload,
        R::put_limit(&state.settings),
        upload.tenant(),
    )
    .await?;
    let who = upload.ready().await?;
    let ops = patch::parse_request(&body)?;
    let projection = list::projection_from_query(req.query_string())?;
    let if_match = header(&req, IF_MATCH);
    let st = state.clone();
    let base = state.scim_base_for(&req);
    let caller = who.caller.clone();
    let id = checked_id(id.into_inner())?;
    let r = blocking(move || {
        Ok(R::patch(
            &st.svc,
            &caller,
            &id,
            &ops,
            if_match.as_deref(),
            &projection,
            &base,
        )?)
    })
    .await?;
    Ok(match r {
        PatchOutcome::Resource(r) => respond(StatusCode::OK, r),
        PatchOutcome::NoContent => HttpResponse::NoContent().finish(),
    })
}

async fn delete<R: Resource>(
    req: HttpRequest,
    state: web::Data<AppState>,
    who: ScimCaller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let if_match = header(&req, IF_MATCH);
    let st = state.clone();
    let base = state.scim_base_for(&req);
    let caller = who.caller.clone();
    let id = checked_id(id.into_inner())?;
    if let Some(queued) = R::delete_queued(&st.svc, &caller, &id, if_match.as_deref(), &base)
        && queued.await?
    {
        return Ok(HttpResponse::NoContent().finish());
    }
    blocking(move || {
        Ok(R::delete(
            &st.svc,
            &caller,
            &id,
            if_match.as_deref(),
            &base,
        )?)
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn list<R: Resource>(
    req: HttpRequest,
    state: web::Data<AppState>,
    who: ScimCaller,
) -> Result<HttpResponse, ApiError> {
    let params = list::from_query(req.query_string())?;
    run_list::<R>(&req, state, who, params).await
}

async fn search<R: Resource>(
    req: HttpRequest,
    state: web::Data<AppState>,
    upload: ScimUpload,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = read_bytes(&req, payload, state.settings.max_body_bytes).await?;
    let params = parse_with(&req, upload.tenant(), body, search_request).await?;
    let who = upload.ready().await?;
    run_list::<R>(&req, state, who, params).await
}

async fn run_list<R: Resource>(
    req: &HttpRequest,
    state: web::Data<AppState>,
    who: ScimCaller,
    params: ListParams,
) -> Result<HttpResponse, ApiError> {
    let base = state.scim_base_for(req);
    let caller = who.caller.clone();
    // An IdP's lookup of a user by a unique identifier on SQLite: an indexed
    // read of at most one row (one stored document, whose size the body
    // limit caps), done here when a connection is idle (never waiting for
    // one), which saves the two thread hand-offs of the blocking pool. It is
    // rendered here only when small; a larger document (an unknown extension
    // can fill the body limit) is rendered on the blocking pool. A lookup by
    // email may match up to `count` users: it takes the blocking pool.
    if params.is_point_lookup()
        && names_one_user(&params)
        && let Some(db) = state.svc.db.idle_sqlite()
    {
        let svc = Services {
            db,
            deprov: state.svc.deprov.clone(),
            limits: state.svc.limits,
        };
        match R::lookup(&svc, &caller, &params) {
            None | Some(Err(ServiceError::Store(StoreError::WouldWait))) => {}
            Some(Err(e)) => return Err(e.into()),
            Some(Ok(page)) if page.stored_bytes() <= INLINE_RENDER_BYTES => {
                return Ok(json(page.render(&params, &base)?));
            }
            Some(Ok(page)) => return render_big(&state, &caller, page, params, base).await,
        }
    }
    let st = state.clone();
    let c = caller.clone();
    let listed = blocking(move || match R::lookup(&st.svc, &c, &params) {
        None => Ok(Listed::Done(R::list(&st.svc, &c, &params, &base)?)),
        Some(page) => {
            let page = page?;
            if page.stored_bytes() <= RENDER_ALONE_BYTES {
                Ok(Listed::Done(page.render(&params, &base)?))
            } else {
                Ok(Listed::Big(Box::new((page, params, base))))
            }
        }
    })
    .await?;
    match listed {
        Listed::Done(v) => Ok(json(v)),
        Listed::Big(big) => {
            let (page, params, base) = *big;
            render_big(&state, &caller, page, params, base).await
        }
    }
}

/// A list read, rendered or left for `render_big`.
enum Listed {
    Done(Value),
    Big(Box<(provisioning::users::UserPage, ListParams, String)>),
}

/// Renders a page of large documents on the blocking pool in one of the
/// tenant's CPU slots (`AppState::cpu`: half the cores per tenant),
/// so one tenant's big answers cannot take every core from the others.
async fn render_big(
    state: &AppState,
    caller: &Actor,
    page: provisioning::users::UserPage,
    params: ListParams,
    base: String,
) -> Result<HttpResponse, ApiError> {
    let _slot = crate::http::cpu_slot(state, &caller.tenant_id).await?;
    let v = blocking(move || Ok(page.render(&params, &base)?)).await?;
    Ok(json(v))
}

/// Stored document bytes a list renders in the same hand-off as its read;
/// a larger page waits for a render slot (`render_big`).
const RENDER_ALONE_BYTES: usize = 64 * 1024;

/// Stored document bytes a point lookup may render on the HTTP worker.
const INLINE_RENDER_BYTES: usize = 16 * 1024;

/// The filter names one user: `userName`, `externalId` or `id` eq, each unique
/// within a tenant (`ListParams::is_point_lookup` checked the rest).
/// A SearchRequest body, parsed and capped as it is read.
fn search_request(body: &[u8]) -> Result<ListParams, ApiError> {
    Ok(crate::scim::search_request::from_bytes(body)?)
}

fn names_one_user(params: &ListParams) -> bool {
    matches!(&params.filter, Some(Filter::Compare(p, CompareOp::Eq, _))
        if p.sub.is_none()
            && ["userName", "externalId", "id"].iter().any(|n| p.name.eq_ignore_ascii_case(n)))
}

/// `POST /.search` at the root: every resource type.
pub async fn search_all(
    req: HttpRequest,
    state: web::Data<AppState>,
    upload: ScimUpload,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = read_bytes(&req, payload, state.settings.max_body_bytes).await?;
    let params = parse_with(&req, upload.tenant(), body, search_request).await?;
    let who = upload.ready().await?;
    let st = state.clone();
    let base = state.scim_base_for(&req);
    let caller = who.caller.clone();
    let v = blocking(move || {
        Ok(provisioning::search::search_all(
            &st.svc, &caller, &params, &base,
        )?)
    })
    .await?;
    Ok(json(v))
}

/// Ids are UUIDs; one with a NUL cannot exist (and PostgreSQL cannot compare it).
fn checked_id(id: String) -> Result<String, ApiError> {
    if id.contains('\0') {
        return Err(ApiError::Scim(crate::scim::error::ScimError::not_found(
            "no resource with that id",
        )));
    }
    Ok(id)
}

//! `/admin/v1` (who may call each route: `access`) and `/gate/v1` (gate
//! scope), one module per resource. Handlers parse,
//! make one domain or store call on a blocking thread, and answer JSON; errors
//! use the SCIM error schema.

pub mod access;
mod audit;
mod content;
mod disposals;
mod gate;
pub mod openapi;
mod replicas;
mod sso;
mod tombstones;
mod webhooks;

use super::AppState;
use super::body::read_json;
use super::error::ApiError;
use super::ops::{method_not_allowed, not_found};
use crate::scim::error::ScimError;
use crate::store::reads::Page;
use actix_web::http::{Method, StatusCode};
use actix_web::{FromRequest, Handler, HttpRequest, HttpResponse, Resource, Responder, Scope, web};

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

/// Every route of `/admin/v1` (relative), in registration order. The one
/// table: it builds the actix scope (`configure`) and the route list that the
/// OpenAPI test holds the document to (`routes`). A new route is a line here,
/// `#[utoipa::path]` on its handler and its name in `openapi.rs`'s `paths(...)`;
/// `tests/api/openapi.rs` fails until the three agree.
fn admin_table<R: Routes>(r: &mut R) {
    use actix_web::http::Method as M;
    r.at(M::GET, "/openapi.json", openapi::serve);
    r.at(M::GET, "/content", content::list);
    r.at(M::POST, "/content:reassign", content::reassign);
    r.at(M::POST, "/content:import", super::import::import_content);
    r.at(
        M::POST,
        "/user-data:import",
        super::import::import_user_data,
    );
    r.at(M::PUT, "/content/{kind}/{id}", content::put);
    r.at(M::GET, "/content/{kind}/{id}", content::get);
    r.at(M::DELETE, "/content/{kind}/{id}", content::delete);
    r.at(M::GET, "/content/{kind}/{id}/history", content::history);
    r.at(M::PUT, "/user-data/{category}/{id}", content::put_user_data);
    r.at(M::POST, "/users/{id}/transfer", content::transfer);
    r.at(M::GET, "/users/{id}/disposal-plan", disposals::plan);
    r.at(M::POST, "/users/{id}/dispose", disposals::dispose);
    r.at(M::PUT, "/users/{id}/sso-subjects", sso::put);
    r.at(M::DELETE, "/users/{id}/sso-subjects", sso::delete);
    r.at(M::GET, "/disposals", disposals::list);
    r.at(M::POST, "/disposals/{id}/release", disposals::release);
    r.at(M::POST, "/brake/reset", disposals::reset_brake);
    r.at(M::PUT, "/users/{id}/legal-hold", disposals::set_legal_hold);
    r.at(
        M::DELETE,
        "/users/{id}/legal-hold",
        disposals::lift_legal_hold,
    );
    r.at(M::GET, "/webhooks", webhooks::state);
    r.at(M::POST, "/webhooks:resume", webhooks::resume);
    r.at(M::POST, "/webhooks:skip", webhooks::skip);
    r.at(M::GET, "/events", webhooks::events);
    r.at(M::GET, "/disposals/{id}", disposals::get);
    r.at(M::GET, "/tombstones", tombstones::list);
    r.at(M::POST, "/tombstones:lift", tombstones::lift);
    r.at(M::POST, "/tombstones:release", tombstones::release);
    r.at(M::GET, "/policy", disposals::policy);
    r.at(M::GET, "/audit", audit::list);
    r.at(M::GET, "/replicas", replicas::list);
}

/// Every route of `/gate/v1` (relative).
fn gate_table<R: Routes>(r: &mut R) {
    r.at(actix_web::http::Method::POST, "/check", gate::check);
}

/// Where a route table is registered.
trait Routes {
    fn at<F, Args>(&mut self, method: Method, path: &'static str, handler: F)
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static;
}

/// Into actix: one resource per path, its methods' routes, and a SCIM 405
/// naming them (`Allow`, RFC 9110 §15.5.6) for any other method.
#[derive(Default)]
struct Actix {
    resources: Vec<(&'static str, Vec<Method>, Option<Resource>)>,
}

impl Routes for Actix {
    fn at<F, Args>(&mut self, method: Method, path: &'static str, handler: F)
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        let route = web::method(method.clone()).to(handler);
        match self.resources.iter_mut().find(|(p, _, _)| *p == path) {
            Some((_, methods, slot)) => {
                methods.push(method);
                *slot = slot.take().map(|r| r.route(route));
            }
            None => {
                self.resources
                    .push((path, vec![method], Some(web::resource(path).route(route))))
            }
        }
    }
}

impl Actix {
    fn into_scope(self, scope: Scope) -> Scope {
        self.resources
            .into_iter()
            .filter_map(|(_, methods, r)| Some((methods, r?)))
            .fold(scope, |scope, (methods, r)| {
                let allow: Vec<&str> = methods.iter().map(Method::as_str).collect();
                let allow = allow.join(", ");
                scope.service(r.default_service(web::to(move |req: HttpRequest| {
                    refuse_method(req, allow.clone())
                })))
            })
            .default_service(web::to(not_found))
    }
}

/// 405 with the resource's methods in `Allow`.
async fn refuse_method(req: HttpRequest, allow: String) -> HttpResponse {
    use actix_web::ResponseError;
    let mut resp = match method_not_allowed(req).await {
        Ok(r) => r,
        Err(e) => e.error_response(),
    };
    if let Ok(v) = actix_web::http::header::HeaderValue::from_str(&allow) {
        resp.headers_mut().insert(actix_web::http::header::ALLOW, v);
    }
    resp
}

/// Into a list of (method, full path template).
struct Listed {
    prefix: &'static str,
    routes: Vec<(Method, String)>,
}

impl Routes for Listed {
    fn at<F, Args>(&mut self, method: Method, path: &'static str, _: F)
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.routes.push((method, format!("{}{path}", self.prefix)));
    }
}

/// Every registered `/admin/v1` and `/gate/v1` route: (method, path template
/// as in OpenAPI, e.g. `/admin/v1/content/{kind}/{id}`).
pub fn routes() -> Vec<(Method, String)> {
    let mut admin = Listed {
        prefix: ADMIN_PREFIX,
        routes: vec![],
    };
    admin_table(&mut admin);
    let mut gate = Listed {
        prefix: GATE_PREFIX,
        routes: vec![],
    };
    gate_table(&mut gate);
    admin.routes.extend(gate.routes);
    admin.routes
}

const ADMIN_PREFIX: &str = "/admin/v1";
const GATE_PREFIX: &str = "/gate/v1";

pub fn configure(cfg: &mut web::ServiceConfig) {
    use actix_web::dev::Service;
    let mut admin = Actix::default();
    admin_table(&mut admin);
    let mut gate = Actix::default();
    gate_table(&mut gate);
    cfg.service(
        admin
            .into_scope(web::scope(ADMIN_PREFIX))
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
            }),
    )
    .service(gate.into_scope(web::scope(GATE_PREFIX)));
}

/// A JSON answer (`application/json`) of any serialisable body.
fn ok<T: serde::Serialize>(status: StatusCode, v: T) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("application/json")
        .body(serde_json::to_string(&v).unwrap_or_default())
}

/// 201 for a created resource, 200 for a replaced one.
fn created_or_ok(created: bool) -> StatusCode {
    if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    }
}

/// `startIndex` and `count`, as `query` reads them (OpenAPI parameters).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code, non_snake_case)] // a parameter list for the document only
struct Paging {
    /// 1-based index of the first entry (default 1; below 1 counts as 1).
    startIndex: Option<i64>,
    /// Entries per page (default 100; clamped to 0..=1000).
    count: Option<i64>,
}

/// The query parameters and their page: `startIndex` (1-based) and `count`
/// (≤ 1000, default 100).
struct Query {
    pairs: Vec<(String, String)>,
    /// `startIndex`, at least 1.
    start: i64,
    count: i64,
}

impl Query {
    fn page(&self) -> Page {
        Page {
            offset: self.start - 1,
            limit: self.count,
        }
    }

    fn param(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

fn query(req: &HttpRequest) -> Result<Query, ApiError> {
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
    Ok(Query {
        pairs,
        start,
        count,
    })
}

/// The JSON body (within `max_body_bytes`) as a `T`.
async fn body<T: serde::de::DeserializeOwned>(
    req: &HttpRequest,
    state: &AppState,
    payload: web::Payload,
    tenant: &str,
) -> Result<T, ApiError> {
    let v = read_json(req, payload, state.settings.max_body_bytes, tenant).await?;
    serde_json::from_value(v)
        .map_err(|e| ScimError::invalid_value(format!("invalid request body: {e}")).into())
}

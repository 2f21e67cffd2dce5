//! `/ServiceProviderConfig`, `/ResourceTypes`, `/Schemas`: read-only (405 for writes).

use crate::http::AppState;
use crate::http::error::{ApiError, SCIM_JSON};
use crate::http::ops::method_not_allowed;
use crate::scim::discovery;
use crate::scim::error::ScimError;
use actix_web::{HttpResponse, web};
use serde_json::Value;

/// A discovery handler: the app state, the SCIM base and the optional `{id}` path segment.
type Handler = fn(&AppState, &str, Option<web::Path<String>>) -> Result<HttpResponse, ApiError>;

fn read_only(path: &str, handler: Handler) -> actix_web::Resource {
    web::resource(path.to_string())
        .route(web::get().to(
            move |req: actix_web::HttpRequest,
                  s: web::Data<AppState>,
                  p: Option<web::Path<String>>| async move {
                handler(&s, &s.scim_base_for(&req), p)
            },
        ))
        .default_service(web::to(method_not_allowed))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(read_only("/ServiceProviderConfig", spc))
        .service(read_only("/ResourceTypes", resource_types))
        .service(read_only("/ResourceTypes/{id}", resource_types))
        .service(read_only("/Schemas", schemas))
        .service(read_only("/Schemas/{id}", schemas));
}

fn ok(v: Value) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok()
        .content_type(SCIM_JSON)
        .body(v.to_string()))
}

fn spc(s: &AppState, base: &str, _: Option<web::Path<String>>) -> Result<HttpResponse, ApiError> {
    ok(discovery::service_provider_config(
        base,
        s.settings.bulk_limits(),
    ))
}

fn resource_types(
    _: &AppState,
    base: &str,
    id: Option<web::Path<String>>,
) -> Result<HttpResponse, ApiError> {
    match id {
        None => ok(discovery::resource_types(base)),
        Some(id) => discovery::resource_type(base, &id)
            .ok_or_else(|| ScimError::not_found(format!("no resource type '{id}'")).into())
            .and_then(ok),
    }
}

fn schemas(
    _: &AppState,
    base: &str,
    id: Option<web::Path<String>>,
) -> Result<HttpResponse, ApiError> {
    match id {
        None => ok(discovery::schemas(base)),
        Some(id) => discovery::schema(base, &id)
            .ok_or_else(|| ScimError::not_found(format!("no schema '{id}'")).into())
            .and_then(ok),
    }
}

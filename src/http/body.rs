//! Request bodies: JSON media types only, a byte limit per route (413 beyond it),
//! and precise errors for malformed JSON.

use super::AppState;
use super::error::ApiError;
use crate::scim::error::ScimError;
use actix_web::HttpRequest;
use actix_web::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use actix_web::web;
use futures_util::StreamExt;
use serde_json::Value;

fn too_large(limit: usize) -> ApiError {
    ApiError::Scim(ScimError::new(
        413,
        None,
        format!("the request body exceeds the limit of {limit} bytes for this endpoint"),
    ))
}

/// Accepts `application/scim+json`, `application/json`, any `+json` type, or none.
fn check_media_type(req: &HttpRequest) -> Result<(), ApiError> {
    let Some(ct) = req.headers().get(CONTENT_TYPE) else {
        return Ok(());
    };
    let ct = ct.to_str().unwrap_or_default().to_ascii_lowercase();
    let essence = ct.split(';').next().unwrap_or_default().trim();
    if essence.is_empty() || essence == "application/json" || essence.ends_with("+json") {
        Ok(())
    } else {
        Err(ApiError::Scim(ScimError::new(
            415,
            None,
            format!(
                "unsupported Content-Type '{essence}'; send application/scim+json or application/json"
            ),
        )))
    }
}

/// The body's bytes: a JSON media type (415 otherwise) and at most `limit`
/// bytes (413 beyond, refused from `Content-Length` before reading).
pub async fn read_bytes(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<web::BytesMut, ApiError> {
    check_media_type(req)?;
    if let Some(len) = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        && len > limit
    {
        return Err(too_large(limit));
    }
    let mut buf = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::Scim(ScimError::invalid_syntax(format!(
                "cannot read the request body: {e}"
            )))
        })?;
        if buf.len() + chunk.len() > limit {
            return Err(too_large(limit));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf)
}

/// The body as JSON, read and parsed for `tenant` (see `parse_with`).
pub async fn read_json(
    req: &HttpRequest,
    payload: web::Payload,
    limit: usize,
    tenant: &str,
) -> Result<Value, ApiError> {
    let buf = read_bytes(req, payload, limit).await?;
    parse_with(req, tenant, buf, parse).await
}

/// Runs `parse` over a body. A small one is parsed here, on the HTTP worker
/// (microseconds); a larger one on the blocking pool — it takes milliseconds,
/// and the worker serves every other request on its connections meanwhile —
/// in one of the tenant's CPU slots (`AppState::cpu`), so one tenant sending
/// megabyte bodies on many connections cannot take every core from the
/// others' answers.
pub async fn parse_with<T: Send + 'static>(
    req: &HttpRequest,
    tenant: &str,
    buf: web::BytesMut,
    parse: fn(&[u8]) -> Result<T, ApiError>,
) -> Result<T, ApiError> {
    if buf.len() <= INLINE_PARSE_BYTES {
        return parse(&buf);
    }
    let state = req
        .app_data::<web::Data<AppState>>()
        .ok_or(ApiError::Blocking)?;
    let _slot = super::cpu_slot(state, tenant).await?;
    super::blocking(move || parse(&buf)).await
}

/// Bodies up to this size are parsed on the HTTP worker.
const INLINE_PARSE_BYTES: usize = 16 * 1024;

fn parse(buf: &[u8]) -> Result<Value, ApiError> {
    if buf.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::Scim(ScimError::invalid_syntax(
            "the request body is empty; a JSON object is required",
        )));
    }
    let v: Value = serde_json::from_slice(buf).map_err(|e| {
        ApiError::Scim(ScimError::invalid_syntax(format!(
            "the request body is not valid JSON: {e}"
        )))
    })?;
    if has_nul(&v) {
        return Err(ApiError::Scim(ScimError::invalid_value(
            "the request body contains a NUL character (\\u0000), which no attribute may hold",
        )));
    }
    Ok(v)
}

fn has_nul(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains('\0'),
        Value::Array(a) => a.iter().any(has_nul),
        Value::Object(o) => o.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        _ => false,
    }
}

//! `POST /Bulk` (RFC 7644 §3.7): read the body within `maxPayloadSize`, parse
//! the envelope, run the operations on a blocking thread, answer a BulkResponse.
//! Parsing and planning live in `scim::bulk`, execution in `provisioning::bulk`.

use crate::http::auth::ScimUpload;
use crate::http::body::read_json;
use crate::http::error::{ApiError, SCIM_JSON};
use crate::http::{AppState, blocking};
use crate::provisioning;
use crate::scim::bulk;
use crate::scim::error::ScimError;
use actix_web::{HttpRequest, HttpResponse, web};

pub async fn bulk(
    req: HttpRequest,
    state: web::Data<AppState>,
    upload: ScimUpload,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let limits = state.settings.bulk_limits();
    let body = read_json(&req, payload, limits.max_payload_size, upload.tenant())
        .await
        .map_err(|e| match e {
            ApiError::Scim(e) if e.status == 413 => ApiError::Scim(ScimError::new(
                413,
                None,
                format!(
                    "the size of the bulk request exceeds maxPayloadSize ({} bytes)",
                    limits.max_payload_size
                ),
            )),
            other => other,
        })?;
    let who = upload.ready().await?;
    let request = bulk::parse_request(&body, limits.max_operations)?;
    let st = state.clone();
    let base = state.scim_base_for(&req);
    let caller = who.caller.clone();
    let (request, outcomes) = blocking(move || {
        let outcomes = provisioning::bulk::run(&st.svc, &caller, &request, &base);
        Ok((request, outcomes))
    })
    .await?;
    let results: Vec<Option<bulk::OpResult>> = outcomes
        .into_iter()
        .map(|o| o.map(|o| o.into_result(|e| ApiError::from(e).scim_error())))
        .collect();
    Ok(HttpResponse::Ok()
        .content_type(SCIM_JSON)
        .body(bulk::response(&request.operations, &results).to_string()))
}

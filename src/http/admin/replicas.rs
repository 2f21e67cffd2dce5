//! `/replicas`: the replica registry — every replica seen within the last 10
//! minutes, which are live, and the warnings (policy digest or version
//! mismatch). Deployment-wide operational state, like `/metrics`: no tenant
//! data (ids, `host:pid` labels, versions, policy digests).

use super::ok;
use crate::background::replicas::ReplicaRegistry;
use crate::http::auth::AdminCaller;
use crate::http::error::ApiError;
use crate::http::{AppState, blocking};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};

#[utoipa::path(
    get, path = "/admin/v1/replicas", operation_id = "listReplicas", tag = "replicas",
    summary = "The replicas serving this database, and whether they agree",
    description = "Each `serve` process keeps a row fresh every 5 s; one not refreshed for 20 s is \
        listed with `live: false`, and dropped after 10 minutes. `policyDigestMismatch`: a live \
        replica enforces a policy file other than this one's (reload it everywhere with SIGHUP); \
        `versionMismatch`: live replicas run different versions or schemas (a rolling upgrade). \
        Read from the database at each call.",
    responses((status = 200, description = "The registry as this replica sees it", body = ReplicaRegistry)),
    security(("admin" = [])),
)]
pub(super) async fn list(
    state: web::Data<AppState>,
    _w: AdminCaller,
) -> Result<HttpResponse, ApiError> {
    let st = state.clone();
    let summary = blocking(move || Ok(st.replica.read(&st.db)?)).await?;
    Ok(ok(StatusCode::OK, summary))
}

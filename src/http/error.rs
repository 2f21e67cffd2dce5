//! The one place errors become HTTP responses, always in the SCIM error schema.

use crate::auth::AuthError;
use crate::provisioning::ServiceError;
use crate::scim::error::ScimError;
use crate::store::StoreError;
use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_TYPE, HeaderValue, RETRY_AFTER, WWW_AUTHENTICATE};
use actix_web::{HttpResponse, ResponseError};

pub const SCIM_JSON: &str = "application/scim+json";

#[derive(thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Scim(#[from] ScimError),
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("too many requests in flight for this tenant")]
    Overloaded { retry_after: u32 },
    #[error("blocking task failed")]
    Blocking,
}

/// Request middleware logs errors with `Debug`. SCIM details can echo request
/// values (an unquoted filter token, a rejected attribute value), so only the
/// status and `scimType` are shown; internal errors are logged where they map.
impl std::fmt::Debug for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApiError::Scim(e) => write!(
                f,
                "ScimError(status={}, scimType={:?})",
                e.status,
                e.scim_type.map(|t| t.as_str())
            ),
            ApiError::Auth(AuthError::Store(_)) | ApiError::Store(_) => write!(f, "StoreError"),
            ApiError::Auth(e) => write!(f, "AuthError({e})"),
            ApiError::Overloaded { retry_after } => {
                write!(f, "Overloaded(retry_after={retry_after})")
            }
            ApiError::Blocking => write!(f, "Blocking"),
        }
    }
}

/// A domain refusal keeps its status and `scimType`; deprovisioning's get theirs here.
impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Scim(s) => ApiError::Scim(s),
            ServiceError::Store(s) => ApiError::Store(s),
            ServiceError::NoUser(id) => {
                ApiError::Scim(ScimError::not_found(format!("no user with id {id}")))
            }
            ServiceError::NoDisposal(id) => {
                ApiError::Scim(ScimError::not_found(format!("no disposal with id {id}")))
            }
            ServiceError::PlanChanged(h) => {
                ApiError::Scim(ScimError::precondition_failed(format!(
                    "the disposal plan has changed since it was previewed; the current plan hash is {h}"
                )))
            }
            ServiceError::Conflict(d) => ApiError::Scim(ScimError::new(409, None, d)),
        }
    }
}

impl From<actix_web::error::BlockingError> for ApiError {
    fn from(_: actix_web::error::BlockingError) -> Self {
        ApiError::Blocking
    }
}

impl ApiError {
    /// The SCIM error body this maps to (a bulk operation's `response`).
    pub fn scim_error(&self) -> ScimError {
        self.scim().0
    }

    /// The seconds a client should wait before retrying, when the error says.
    pub fn retry_after(&self) -> Option<u32> {
        self.scim().1
    }

    /// The SCIM error this maps to, plus an optional Retry-After.
    fn scim(&self) -> (ScimError, Option<u32>) {
        match self {
            ApiError::Scim(e) => (e.clone(), None),
            ApiError::Auth(AuthError::Missing) => (
                ScimError::new(
                    401,
                    None,
                    "authentication required: send 'Authorization: Bearer <token>'",
                ),
                None,
            ),
            ApiError::Auth(AuthError::Invalid) => (
                ScimError::new(401, None, "the token is invalid or has been revoked"),
                None,
            ),
            ApiError::Auth(e @ AuthError::WrongScope { .. }) => {
                (ScimError::new(403, None, e.to_string()), None)
            }
            ApiError::Auth(AuthError::Busy) => (
                ScimError::new(
                    429,
                    None,
                    "too many authentication attempts in progress; retry shortly",
                ),
                Some(1),
            ),
            ApiError::Auth(AuthError::TooManyFailures { retry_after }) => (
                ScimError::new(
                    429,
                    None,
                    "too many failed authentication attempts for this token or address; retry after the indicated delay",
                ),
                Some(*retry_after),
            ),
            ApiError::Auth(AuthError::Store(s)) | ApiError::Store(s) => match s {
                StoreError::NotFound => (ScimError::not_found("resource not found"), None),
                StoreError::Unique(_) => (
                    ScimError::uniqueness(
                        "a concurrent request already created a resource with the same unique attribute",
                    ),
                    None,
                ),
                StoreError::Busy | StoreError::Pool(_) | StoreError::WouldWait => (
                    ScimError::new(503, None, "the database is busy; retry shortly"),
                    Some(2),
                ),
                StoreError::DeadlineAfter(done) => (
                    ScimError::new(
                        503,
                        None,
                        format!(
                            "the request did not finish within its deadline, after {done}; retry it to finish"
                        ),
                    ),
                    Some(2),
                ),
                StoreError::Unavailable(what) => (
                    ScimError::new(
                        503,
                        None,
                        format!(
                            "the database is unavailable ({what}); nothing was written; retry shortly"
                        ),
                    ),
                    Some(2),
                ),
                StoreError::CommitUnknown => (
                    ScimError::new(
                        503,
                        None,
                        "the connection to the database was lost while this write was committing: it may or may not have been stored; read the resource before retrying",
                    ),
                    Some(2),
                ),
                StoreError::ReadOnly => (
                    ScimError::new(
                        503,
                        None,
                        "the database is read-only (a failover or maintenance is in progress): writes are refused and nothing was written; reads still work; retry later",
                    ),
                    Some(5),
                ),
                StoreError::Deadline(what) => (
                    ScimError::new(
                        503,
                        None,
                        format!(
                            "the request did not finish within its deadline ({what}); nothing was written; retry shortly"
                        ),
                    ),
                    Some(2),
                ),
                other => {
                    tracing::error!(error = %other, "internal error");
                    (ScimError::new(500, None, "internal server error"), None)
                }
            },
            ApiError::Overloaded { retry_after } => (
                ScimError::new(
                    429,
                    None,
                    "too many requests in flight for this tenant; retry after the indicated delay",
                ),
                Some(*retry_after),
            ),
            ApiError::Blocking => {
                tracing::error!("blocking task was cancelled or panicked");
                (ScimError::new(500, None, "internal server error"), None)
            }
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.scim().0.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        let (e, retry_after) = self.scim();
        let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut resp = HttpResponse::build(status);
        resp.insert_header((CONTENT_TYPE, HeaderValue::from_static(SCIM_JSON)));
        if status == StatusCode::UNAUTHORIZED {
            resp.insert_header((
                WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"custodian\""),
            ));
        }
        if let Some(s) = retry_after {
            // Okta needs an integer number of seconds (else it waits 5 minutes).
            resp.insert_header((RETRY_AFTER, s.to_string()));
        }
        resp.body(e.to_json().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::body::MessageBody;

    fn body_of(e: ApiError) -> (u16, serde_json::Value, Option<String>, Option<String>) {
        let r = e.error_response();
        let status = r.status().as_u16();
        let retry = r
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let www = r
            .headers()
            .get(WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let bytes = r.into_body().try_into_bytes().unwrap_or_default();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or_default(),
            retry,
            www,
        )
    }

    #[test]
    fn debug_never_shows_details() {
        let e = ApiError::Scim(ScimError::invalid_value(
            "'active' must be a boolean, got \"jane@example.edu\"",
        ));
        let d = format!("{e:?}");
        assert!(!d.contains("jane") && d.contains("400"), "{d}");
    }

    /// A deprovisioning refusal reaches HTTP with its own status and detail,
    /// never as a 500.
    #[test]
    fn service_refusals_keep_their_status() {
        let cases = [
            (ServiceError::NoUser("u1".into()), 404, "no user with id u1"),
            (
                ServiceError::NoDisposal("d1".into()),
                404,
                "no disposal with id d1",
            ),
            (
                ServiceError::PlanChanged("h2".into()),
                412,
                "the current plan hash is h2",
            ),
            (ServiceError::Conflict("held".into()), 409, "held"),
        ];
        for (e, status, detail) in cases {
            let (s, b, _, _) = body_of(ApiError::from(e));
            assert_eq!(s, status);
            assert!(
                b["detail"].as_str().is_some_and(|d| d.contains(detail)),
                "{b}"
            );
        }
        let (s, b, _, _) = body_of(ApiError::from(ServiceError::Scim(ScimError::uniqueness(
            "taken",
        ))));
        assert_eq!((s, b["scimType"].as_str()), (409, Some("uniqueness")));
    }

    #[test]
    fn mapping() {
        let (s, b, _, www) = body_of(ApiError::Auth(AuthError::Invalid));
        assert_eq!((s, b["status"].as_str()), (401, Some("401")));
        assert!(www.is_some_and(|w| w.starts_with("Bearer")));
        let (s, b, retry, _) = body_of(ApiError::Overloaded { retry_after: 3 });
        assert_eq!((s, retry.as_deref()), (429, Some("3")));
        assert!(b["detail"].as_str().is_some_and(|d| !d.is_empty()));
        let (s, b, _, _) = body_of(ApiError::Store(StoreError::Corrupt("secret detail".into())));
        assert_eq!(s, 500);
        assert!(!b.to_string().contains("secret detail"));
        let (s, b, _, _) = body_of(ApiError::Store(StoreError::Unique(
            "users_user_name_key".into(),
        )));
        assert_eq!((s, b["scimType"].as_str()), (409, Some("uniqueness")));
        let (s, b, retry, _) = body_of(ApiError::Store(StoreError::Deadline("waited too long")));
        assert_eq!((s, retry.as_deref()), (503, Some("2")));
        assert!(
            b["detail"]
                .as_str()
                .is_some_and(|d| d.contains("nothing was written"))
        );
        // A deadline after a committed step does not claim nothing was written.
        let (s, b, retry, _) = body_of(ApiError::Store(StoreError::DeadlineAfter(
            "the previous holder of the userName was disposed",
        )));
        assert_eq!((s, retry.as_deref()), (503, Some("2")));
        let d = b["detail"].as_str().unwrap_or_default();
        assert!(
            d.contains("was disposed") && !d.contains("nothing was written"),
            "{d}"
        );
        // Database faults are 503 with Retry-After, never a 500.
        for (e, words) in [
            (
                StoreError::Unavailable("the connection to the database was lost"),
                "nothing was written",
            ),
            (StoreError::CommitUnknown, "may or may not have been stored"),
            (StoreError::ReadOnly, "read-only"),
        ] {
            let (s, b, retry, _) = body_of(ApiError::Store(e));
            assert_eq!(s, 503);
            assert!(retry.is_some_and(|r| r.parse::<u32>().is_ok_and(|n| n > 0)));
            let d = b["detail"].as_str().unwrap_or_default();
            assert!(d.contains(words), "{d}");
        }
        let (s, b, _, _) = body_of(ApiError::Auth(AuthError::WrongScope {
            have: crate::auth::Scope::Gate,
            allowed: vec![crate::auth::Scope::Scim],
        }));
        assert_eq!(s, 403);
        assert_eq!(
            b["detail"],
            "this token's scope is 'gate'; this endpoint needs 'scim'"
        );
        let (_, b, _, _) = body_of(ApiError::Auth(AuthError::WrongScope {
            have: crate::auth::Scope::Auditor,
            allowed: vec![crate::auth::Scope::Ledger, crate::auth::Scope::Admin],
        }));
        assert_eq!(
            b["detail"],
            "auditor tokens are read-only: this request changes data and needs 'ledger' or 'admin'"
        );
    }
}

//! The protocol layer's error: everything a SCIM request can get wrong, with the
//! RFC 7644 §3.12 status and `scimType`. Mapped to HTTP once, in `http::error`.

use serde_json::Value;

pub const ERROR_URN: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScimType {
    InvalidFilter,
    TooMany,
    Uniqueness,
    Mutability,
    InvalidSyntax,
    InvalidPath,
    NoTarget,
    InvalidValue,
    InvalidVers,
    /// RFC 9865: a cursor that is malformed or belongs to another query.
    InvalidCursor,
    /// RFC 9865: a page size above the maximum.
    InvalidCount,
}

impl ScimType {
    pub fn as_str(self) -> &'static str {
        match self {
            ScimType::InvalidFilter => "invalidFilter",
            ScimType::TooMany => "tooMany",
            ScimType::Uniqueness => "uniqueness",
            ScimType::Mutability => "mutability",
            ScimType::InvalidSyntax => "invalidSyntax",
            ScimType::InvalidPath => "invalidPath",
            ScimType::NoTarget => "noTarget",
            ScimType::InvalidValue => "invalidValue",
            ScimType::InvalidVers => "invalidVers",
            ScimType::InvalidCursor => "invalidCursor",
            ScimType::InvalidCount => "invalidCount",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {detail}")]
pub struct ScimError {
    pub status: u16,
    pub scim_type: Option<ScimType>,
    pub detail: String,
}

impl ScimError {
    pub fn new(status: u16, scim_type: Option<ScimType>, detail: impl Into<String>) -> Self {
        ScimError {
            status,
            scim_type,
            detail: detail.into(),
        }
    }
    pub fn bad_request(scim_type: ScimType, detail: impl Into<String>) -> Self {
        Self::new(400, Some(scim_type), detail)
    }
    pub fn invalid_value(detail: impl Into<String>) -> Self {
        Self::bad_request(ScimType::InvalidValue, detail)
    }
    pub fn invalid_filter(detail: impl Into<String>) -> Self {
        Self::bad_request(ScimType::InvalidFilter, detail)
    }
    pub fn invalid_path(detail: impl Into<String>) -> Self {
        Self::bad_request(ScimType::InvalidPath, detail)
    }
    pub fn invalid_syntax(detail: impl Into<String>) -> Self {
        Self::bad_request(ScimType::InvalidSyntax, detail)
    }
    pub fn no_target(detail: impl Into<String>) -> Self {
        Self::bad_request(ScimType::NoTarget, detail)
    }
    pub fn mutability(detail: impl Into<String>) -> Self {
        Self::bad_request(ScimType::Mutability, detail)
    }
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(404, None, detail)
    }
    pub fn uniqueness(detail: impl Into<String>) -> Self {
        Self::new(409, Some(ScimType::Uniqueness), detail)
    }
    pub fn precondition_failed(detail: impl Into<String>) -> Self {
        Self::new(412, None, detail)
    }
    pub fn not_implemented(detail: impl Into<String>) -> Self {
        Self::new(501, None, detail)
    }

    /// The RFC 7644 §3.12 error body; `status` is a string, as the RFC's examples
    /// and Okta's spec test expect.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self.body()).unwrap_or(Value::Null)
    }

    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            schemas: [ERROR_URN],
            status: self.status.to_string(),
            detail: self.detail.clone(),
            scim_type: self.scim_type.map(ScimType::as_str),
        }
    }
}

/// Every error answer of every API (RFC 7644 §3.12).
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[schema(as = ScimError)]
pub struct ErrorBody {
    #[schema(value_type = Vec<String>, example = json!(["urn:ietf:params:scim:api:messages:2.0:Error"]))]
    pub schemas: [&'static str; 1],
    /// The HTTP status, as a string.
    #[schema(example = "404")]
    pub status: String,
    /// What was wrong, for a person.
    pub detail: String,
    /// RFC 7644 §3.12 `scimType` (400 and 409 errors), e.g. `invalidValue`.
    #[serde(rename = "scimType", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub scim_type: Option<&'static str>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_body_has_string_status_and_scim_type() {
        let e = ScimError::invalid_filter("bad");
        let j = e.to_json();
        assert_eq!(j["status"], "400");
        assert_eq!(j["scimType"], "invalidFilter");
        assert_eq!(j["detail"], "bad");
        assert_eq!(j["schemas"][0], ERROR_URN);
        let nf = ScimError::not_found("x").to_json();
        assert!(nf.get("scimType").is_none());
    }
}

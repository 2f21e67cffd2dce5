//! The provisioning service: every SCIM write path (POST, PUT, PATCH, DELETE) goes
//! through here, so the user-state rules of DESIGN.md live in one place. It knows
//! nothing of HTTP; handlers call it from a blocking thread.

pub mod bulk;
pub mod groups;
pub mod listing;
pub mod search;
pub mod users;

use crate::scim::error::ScimError;
use crate::store::StoreError;

pub use crate::service_error::ServiceError;

/// What the provisioning service works with: the database, deprovisioning and
/// the limits every stored document is normalised under.
#[derive(Clone)]
pub struct Services {
    pub db: crate::store::Db,
    pub deprov: std::sync::Arc<crate::deprovision::service::Deprov>,
    pub limits: crate::scim::resource::Limits,
}

/// A rendered resource and what the HTTP layer needs to answer with it.
#[derive(Debug)]
pub struct Rendered {
    pub body: serde_json::Value,
    /// A group's `members` as JSON array text, rendered row by row rather than
    /// as a tree of values (a group may have 100,000 members); spliced into
    /// `body` when the response is written.
    pub members_json: Option<String>,
    pub etag: String,
    pub location: String,
    /// Set when a POST restored an existing (suspended) user in place.
    pub restored: bool,
}

impl Rendered {
    /// The response body text.
    pub fn to_json_text(&self) -> String {
        let text = self.body.to_string();
        match (&self.members_json, text.strip_suffix('}')) {
            (Some(m), Some(head)) if head.len() > 1 => format!("{head},\"members\":{m}}}"),
            (Some(m), Some(_)) => format!("{{\"members\":{m}}}"),
            _ => text,
        }
    }
}

/// What a PATCH answers with.
#[derive(Debug)]
pub enum PatchOutcome {
    Resource(Rendered),
    /// The resource is too large to echo (a group above the echo limit): 204.
    NoContent,
}

/// `If-Match` on writes: `*` or one of the listed ETags must match.
pub fn check_if_match(if_match: Option<&str>, etag: &str) -> Result<(), ScimError> {
    let Some(h) = if_match.map(str::trim).filter(|h| !h.is_empty()) else {
        return Ok(());
    };
    if h == "*" {
        return Ok(());
    }
    let strip = |t: &str| {
        t.trim()
            .trim_start_matches("W/")
            .trim_matches('"')
            .to_string()
    };
    let want = strip(etag);
    if h.split(',').any(|t| strip(t) == want) {
        Ok(())
    } else {
        Err(ScimError::precondition_failed(format!(
            "If-Match {h} does not match the current version {etag}"
        )))
    }
}

pub(crate) fn corrupt(e: serde_json::Error) -> StoreError {
    StoreError::Corrupt(format!("stored document is not valid JSON: {e}"))
}

#[cfg(test)]
mod tests {
    use super::check_if_match;

    #[test]
    fn if_match() {
        assert!(check_if_match(None, "W/\"3\"").is_ok());
        assert!(check_if_match(Some("*"), "W/\"3\"").is_ok());
        assert!(check_if_match(Some("W/\"3\""), "W/\"3\"").is_ok());
        assert!(check_if_match(Some("\"2\", W/\"3\""), "W/\"3\"").is_ok());
        assert!(check_if_match(Some("W/\"2\""), "W/\"3\"").is_err_and(|e| e.status == 412));
    }
}

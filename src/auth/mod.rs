//! API tokens: issue, verify (argon2id, cached, rate-limited), parse the Authorization header.

pub mod header;
pub mod limits;
pub mod revocation;
pub mod token;
pub mod verifier;

pub use token::{MissingTenant, Scope, create_token, issue_token};
pub use verifier::{AuthError, AuthLimits, Principal, Verifier};

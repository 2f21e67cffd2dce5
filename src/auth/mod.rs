//! API tokens: issue, verify (argon2id, cached, rate-limited), parse the Authorization header.

pub mod header;
pub mod limits;
pub mod revocation;
pub mod token;
pub mod verifier;

pub use token::{Scope, create_token};
pub use verifier::{AuthError, AuthLimits, Principal, Verifier};

//! API tokens: issue, verify (argon2id, cached), parse the Authorization header.

pub mod header;
pub mod token;
pub mod verifier;

pub use token::{Scope, create_token};
pub use verifier::{AuthError, Principal, Verifier};

//! The SCIM protocol: pure functions over JSON, no I/O.

pub mod bulk;
pub mod discovery;
pub mod error;
pub mod filter;
pub mod fold;
pub mod list;
pub mod patch;
pub mod resource;
pub mod schema;

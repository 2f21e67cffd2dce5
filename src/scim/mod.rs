//! The SCIM protocol: pure functions over JSON, no I/O.

pub mod bulk;
pub mod cursor;
pub mod discovery;
pub mod error;
pub mod filter;
pub mod filter_eval;
pub mod fold;
pub mod list;
pub mod patch;
pub mod resolve;
pub mod resource;
pub mod schema;
pub mod search_doc;
pub mod search_request;

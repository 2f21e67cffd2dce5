//! Storage: diesel over SQLite or PostgreSQL. Every function takes the tenant id
//! and scopes its queries by it.

pub mod db;
pub mod error;
pub mod filter_sql;
pub mod groups;
pub mod ledger;
pub mod schema;
pub mod sql;
pub mod time;
pub mod tokens;
pub mod users;
pub mod writer;

pub use db::{AnyConnection, Backend, Db};
pub use error::StoreError;

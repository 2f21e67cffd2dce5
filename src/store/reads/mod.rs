//! Read models of the admin surface: typed rows for one resource each, every
//! query scoped by the tenant and bounded by a page.

pub mod audit;
pub mod console;
pub mod disposals;
pub mod history;
pub mod receipt;
pub mod tombstones;
pub mod webhooks;

/// A window of rows: `offset` skipped (0-based), at most `limit` returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub offset: i64,
    pub limit: i64,
}

//! The admin surface's commands that take several store steps: each runs as
//! one transaction (or one read), so a handler makes one call.

pub mod content;
pub mod disposals;
pub mod gate;
pub mod sso;
pub mod tombstones;
pub mod webhooks;

//! Deprovisioning: the policy, the disposal planner and executor, tombstones.
//! Knows nothing of HTTP.

pub mod admin;
pub mod commands;
pub mod disposal;
pub mod evidence;
pub mod gate;
pub mod journal;
pub mod policy;
pub mod service;
pub mod setup;
pub mod tombstone;
pub mod tombstones;
pub mod webhooks;

//! Deprovisioning: the policy, the disposal planner and executor, tombstones.
//! Knows nothing of HTTP.

pub mod policy;

//! Custodian: a SCIM 2.0 service provider with safe, policy-driven deprovisioning.

pub mod scim;
pub mod store;
pub mod auth;
pub mod config;
pub mod provisioning;
pub mod http;
pub mod cli;

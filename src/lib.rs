//! Custodian: a SCIM 2.0 service provider with safe, policy-driven deprovisioning.

pub mod auth;
pub mod background;
pub mod backup;
pub mod cli;
pub mod clock;
pub mod config;
pub mod deprovision;
pub mod domain;
pub mod events;
pub mod fuzzing;
pub mod http;
pub mod journal;
pub mod metrics;
pub mod provisioning;
pub mod scim;
pub mod service_error;
pub mod store;

//! The domain services' one error (provisioning and deprovision): a protocol
//! refusal, a deprovisioning refusal, or the store's error. Mapped to HTTP once,
//! in `http::error`.

use crate::scim::error::ScimError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The request is wrong in SCIM's terms (status and `scimType` set).
    #[error(transparent)]
    Scim(#[from] ScimError),
    #[error("no user with id {0}")]
    NoUser(String),
    #[error("no disposal with id {0}")]
    NoDisposal(String),
    /// A confirm named a plan hash that is no longer the current plan's.
    #[error("the plan has changed since it was previewed (now {0})")]
    PlanChanged(String),
    /// The resource's state refuses the operation.
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl crate::store::error::HoldsStoreError for ServiceError {
    fn store_error(&self) -> Option<&StoreError> {
        match self {
            ServiceError::Store(e) => Some(e),
            _ => None,
        }
    }
}

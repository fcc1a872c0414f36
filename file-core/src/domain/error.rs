//! The domain's error type: what went wrong in terms a caller can act on. The gRPC layer maps
//! each variant to one status code (`grpc/status.rs`).

use crate::domain::{objects::ObjectError, store::StoreError};

/// An operation of the domain failed.
#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    /// The input broke a rule; `field` names the offending field as the API spells it
    /// (`files[2].size`). The client sees `InvalidArgument` with a field violation.
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    /// A file does not exist, is being deleted or belongs to another user; the three are
    /// indistinguishable. The client sees `NotFound`.
    #[error("not found")]
    NotFound,
    /// The database failed; the cause is logged, never shown.
    #[error("internal error")]
    Store(#[from] StoreError),
    /// Object storage failed where the operation cannot go on without it; the cause is logged,
    /// never shown.
    #[error("internal error")]
    Objects(#[from] ObjectError),
}

impl DomainError {
    /// An [`DomainError::Invalid`] for `field`.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Shorthand for domain results.
pub type DomainResult<T> = Result<T, DomainError>;

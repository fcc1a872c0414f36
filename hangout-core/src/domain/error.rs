//! The domain's error type: what went wrong in terms a caller can act on. The gRPC layer maps
//! each variant to one status code (`grpc/status.rs`).

use crate::domain::store::StoreError;

/// An operation of the domain failed.
#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    /// The input broke a rule; `field` names the offending field as the API spells it.
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    /// The entity does not exist or belongs to another user; the two are indistinguishable.
    #[error("not found")]
    NotFound,
    /// The caller is a member but their role does not allow this.
    #[error("{0}")]
    Forbidden(&'static str),
    /// A bound would be passed (members of a hangout, open invitations); the message says which.
    #[error("{0}")]
    LimitReached(String),
    /// The caller did this too often; try again after `retry_after_seconds`.
    #[error("too many requests; try again later")]
    RateLimited { retry_after_seconds: u64 },
    /// A uniqueness rule would be broken (email taken, activity or file name in use).
    #[error("{0}")]
    AlreadyExists(String),
    /// Credentials or a refresh token were not accepted, or the caller is unknown.
    #[error("{0}")]
    Unauthenticated(&'static str),
    /// The store failed; the cause is logged, never shown.
    #[error("internal error")]
    Store(#[from] StoreError),
    /// Too much work is waiting (the password hashing queue is full); try again shortly.
    #[error("too busy; try again shortly")]
    Overloaded,
    /// Hashing a password failed; the cause is logged, never shown.
    #[error("internal error: password hashing failed: {0}")]
    Hashing(String),
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

/// Maps the store's `NotFound` (a missing or invisible row) to the domain's; any other store
/// error stays internal.
pub(crate) fn not_found(error: StoreError) -> DomainError {
    match error {
        StoreError::NotFound => DomainError::NotFound,
        other => other.into(),
    }
}

/// Shorthand for domain results.
pub type DomainResult<T> = Result<T, DomainError>;

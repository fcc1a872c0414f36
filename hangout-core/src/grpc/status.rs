//! The one mapping from domain errors to gRPC status codes.

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt as _};

use crate::domain::error::DomainError;

impl From<DomainError> for Status {
    fn from(error: DomainError) -> Self {
        match error {
            DomainError::Invalid { field, message } => {
                let text = format!("{field}: {message}");
                Status::with_error_details(
                    Code::InvalidArgument,
                    text,
                    ErrorDetails::with_bad_request_violation(field, message),
                )
            }
            DomainError::NotFound => Status::not_found("not found"),
            DomainError::AlreadyExists(message) => Status::already_exists(message),
            DomainError::Forbidden(message) => Status::permission_denied(message),
            DomainError::LimitReached(message) => Status::failed_precondition(message),
            DomainError::RateLimited {
                retry_after_seconds,
            } => {
                let mut details = ErrorDetails::new();
                details.set_retry_info(Some(std::time::Duration::from_secs(retry_after_seconds)));
                Status::with_error_details(
                    Code::ResourceExhausted,
                    "too many requests; try again later",
                    details,
                )
            }
            DomainError::Unauthenticated(message) => Status::unauthenticated(message),
            DomainError::Overloaded => Status::resource_exhausted("too busy; try again shortly"),
            DomainError::Store(crate::domain::store::StoreError::Unavailable(_)) => {
                tracing::warn!(
                    error = %telemetry::ErrorChain(&error),
                    "database unavailable"
                );
                Status::unavailable("the database is unavailable; try again shortly")
            }
            DomainError::Store(_) | DomainError::Hashing(_) => {
                tracing::error!(error = %telemetry::ErrorChain(&error), "request failed");
                Status::internal("internal error")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::store::StoreError;

    #[test]
    fn invalid_input_names_the_field() {
        let status = Status::from(DomainError::invalid("files[2].size", "too big"));
        assert_eq!(status.code(), Code::InvalidArgument);
        let details = status.get_error_details();
        let violations = &details
            .bad_request()
            .expect("bad request details")
            .field_violations;
        assert_eq!(violations[0].field, "files[2].size");
    }

    #[test]
    fn an_unreachable_database_is_unavailable_without_its_cause() {
        let status = Status::from(DomainError::Store(StoreError::Unavailable(
            "connect to db.internal:3306 refused".into(),
        )));
        assert_eq!(status.code(), Code::Unavailable);
        assert!(!status.message().contains("db.internal"));
    }

    #[test]
    fn internal_errors_hide_their_cause() {
        let status = Status::from(DomainError::Store(StoreError::Backend(
            "password=hunter2 at db.internal".into(),
        )));
        assert_eq!(status.code(), Code::Internal);
        assert_eq!(status.message(), "internal error");
    }
}

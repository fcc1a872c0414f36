//! The one mapping from domain errors to gRPC status codes.

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt as _};

use crate::domain::{error::DomainError, objects::ObjectError};

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
            DomainError::Store(crate::domain::store::StoreError::Unavailable(_)) => {
                tracing::warn!(
                    error = %telemetry::ErrorChain(&error),
                    "database unavailable"
                );
                Status::unavailable("the database is unavailable; try again shortly")
            }
            DomainError::Objects(ObjectError {
                unreachable: true, ..
            }) => {
                tracing::warn!(
                    error = %telemetry::ErrorChain(&error),
                    "object storage unavailable"
                );
                Status::unavailable("object storage is unavailable; try again shortly")
            }
            DomainError::Store(_) | DomainError::Objects(_) => {
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
        let status = Status::from(DomainError::Objects(ObjectError {
            operation: "delete",
            unreachable: false,
            source: "secret-key=abc".into(),
        }));
        assert_eq!(status.code(), Code::Internal);
        assert_eq!(status.message(), "internal error");
        let status = Status::from(DomainError::Objects(ObjectError {
            operation: "head object",
            unreachable: true,
            source: "connection refused to s3.internal".into(),
        }));
        assert_eq!(status.code(), Code::Unavailable);
        assert!(!status.message().contains("s3.internal"), "{status:?}");
    }
}

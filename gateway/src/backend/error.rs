//! The one mapping from `tonic::Status` to [`BackendError`]. Internal causes are logged here,
//! with the request id, and never carried further.

use tonic::{Code, Status};
use tonic_types::StatusExt as _;

use crate::backend::CallContext;

/// What went wrong in a backend call, in terms the GraphQL layer can map to a client-facing
/// code. The `Display` texts are safe to show to clients.
#[derive(Clone, Debug, thiserror::Error)]
pub enum BackendError {
    /// The caller's identity was missing or refused, or sign-in credentials were wrong.
    #[error("{0}")]
    Unauthenticated(String),
    #[error("forbidden")]
    PermissionDenied,
    #[error("not found")]
    NotFound,
    /// Invalid input; `field` names the offending input field when the service named it.
    #[error("{message}")]
    InvalidInput {
        field: Option<String>,
        message: String,
    },
    #[error("{0}")]
    Conflict(String),
    /// The service is busy, or the caller did this too often; `retry_after` in seconds when
    /// the service said (its `RetryInfo`).
    #[error("too many requests")]
    ResourceExhausted { retry_after: Option<u64> },
    #[error("{service} is unavailable")]
    Unavailable { service: &'static str },
    /// Anything else; the cause has been logged.
    #[error("internal error")]
    Internal,
}

impl BackendError {
    /// Maps a failed call's status. `service` and `rpc` only go to the log.
    pub(crate) fn from_status(
        service: &'static str,
        rpc: &'static str,
        call: &CallContext,
        status: Status,
    ) -> Self {
        match status.code() {
            Code::Unauthenticated => Self::Unauthenticated(status.message().to_owned()),
            Code::PermissionDenied => Self::PermissionDenied,
            Code::NotFound => Self::NotFound,
            Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => {
                let details = status.get_error_details();
                let violation = details
                    .bad_request()
                    .and_then(|bad_request| bad_request.field_violations.first());
                Self::InvalidInput {
                    field: violation.map(|violation| violation.field.clone()),
                    message: violation.map_or_else(
                        || status.message().to_owned(),
                        |violation| format!("{}: {}", violation.field, violation.description),
                    ),
                }
            }
            Code::AlreadyExists => Self::Conflict(status.message().to_owned()),
            Code::ResourceExhausted => Self::ResourceExhausted {
                retry_after: status
                    .get_error_details()
                    .retry_info()
                    .and_then(|info| info.retry_delay)
                    .map(|delay| delay.as_secs().max(1)),
            },
            // `Cancelled`: the stream was cut (the service stopped mid-call). A status with a
            // `source` is one tonic made itself from a transport failure (a reset connection,
            // a broken stream: `Unknown` or `Internal` with the hyper or h2 error inside); a
            // status the service sent never has one. Either way the service cannot answer now.
            code if matches!(
                code,
                Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled
            ) || std::error::Error::source(&status).is_some() =>
            {
                tracing::warn!(
                    service,
                    rpc,
                    request_id = %call.request_id,
                    code = ?code,
                    message = status.message(),
                    "backend unavailable"
                );
                Self::Unavailable { service }
            }
            _ => {
                tracing::error!(
                    service,
                    rpc,
                    request_id = %call.request_id,
                    code = ?status.code(),
                    message = status.message(),
                    "backend call failed"
                );
                Self::Internal
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use tonic_types::ErrorDetails;

    use super::*;

    fn call() -> CallContext {
        CallContext::new(None, "test".to_owned())
    }

    #[test]
    fn field_violations_name_the_field() {
        let status = Status::with_error_details(
            Code::InvalidArgument,
            "files[2].size: too big",
            ErrorDetails::with_bad_request_violation("files[2].size", "too big"),
        );
        match BackendError::from_status("hangout-core", "CreateMemories", &call(), status) {
            BackendError::InvalidInput { field, message } => {
                assert_eq!(field.as_deref(), Some("files[2].size"));
                assert_eq!(message, "files[2].size: too big");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn unknown_failures_hide_their_cause() {
        let status = Status::data_loss("disk /dev/sda1 on fire");
        let error = BackendError::from_status("file-core", "GetFiles", &call(), status);
        assert_eq!(error.to_string(), "internal error");
    }

    #[test]
    fn transport_failures_are_unavailable_and_sent_statuses_keep_their_code() {
        let cut = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset");
        let status = Status::from_error(Box::new(cut));
        assert_eq!(status.code(), Code::Unknown);
        let error = BackendError::from_status("file-core", "GetFiles", &call(), status);
        assert!(
            matches!(error, BackendError::Unavailable { .. }),
            "{error:?}"
        );
        // The same code, sent by the service: a bug of ours, not an outage.
        let sent = Status::unknown("something odd");
        let error = BackendError::from_status("file-core", "GetFiles", &call(), sent);
        assert!(matches!(error, BackendError::Internal), "{error:?}");
    }

    #[test]
    fn deadlines_and_outages_are_unavailable() {
        for status in [
            Status::unavailable("x"),
            Status::deadline_exceeded("x"),
            Status::cancelled("x"),
        ] {
            let error = BackendError::from_status("file-core", "GetFiles", &call(), status);
            assert!(matches!(error, BackendError::Unavailable { .. }));
        }
    }
}

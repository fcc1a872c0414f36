//! Client-facing errors: the closed set of `extensions.code` values and the one mapping from
//! backend failures to them.
//!
//! Invariant: every error a resolver returns goes through [`ApiError`], which deliberately has
//! no `Display`, so async-graphql's blanket `From<impl Display>` cannot turn some other error
//! into a code-less GraphQL error by accident. [`code_response_errors`] (run on every response
//! by the HTTP handler) still stamps any error that arrives without a code (from validation or
//! input coercion) so no error leaves without one.

use async_graphql::{ErrorExtensionValues, Pos, ServerError};

use crate::backend::BackendError;

/// The contract's closed set of error codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    Unauthenticated,
    Forbidden,
    NotFound,
    BadUserInput,
    Conflict,
    TooManyRequests,
    CostEstimatedTooExpensive,
    ServiceUnavailable,
    InternalServerError,
    GraphqlParseFailed,
    GraphqlValidationFailed,
}

impl Code {
    /// Every code, once.
    pub const ALL: [Self; 11] = [
        Self::Unauthenticated,
        Self::Forbidden,
        Self::NotFound,
        Self::BadUserInput,
        Self::Conflict,
        Self::TooManyRequests,
        Self::CostEstimatedTooExpensive,
        Self::ServiceUnavailable,
        Self::InternalServerError,
        Self::GraphqlParseFailed,
        Self::GraphqlValidationFailed,
    ];

    /// The code whose `extensions.code` is `text`.
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|code| code.as_str() == text)
    }

    /// The value of `extensions.code`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unauthenticated => "UNAUTHENTICATED",
            Self::Forbidden => "FORBIDDEN",
            Self::NotFound => "NOT_FOUND",
            Self::BadUserInput => "BAD_USER_INPUT",
            Self::Conflict => "CONFLICT",
            Self::TooManyRequests => "TOO_MANY_REQUESTS",
            Self::CostEstimatedTooExpensive => "COST_ESTIMATED_TOO_EXPENSIVE",
            Self::ServiceUnavailable => "SERVICE_UNAVAILABLE",
            Self::InternalServerError => "INTERNAL_SERVER_ERROR",
            Self::GraphqlParseFailed => "GRAPHQL_PARSE_FAILED",
            Self::GraphqlValidationFailed => "GRAPHQL_VALIDATION_FAILED",
        }
    }
}

/// An error as a client sees it: a code, a safe message and, for BAD_USER_INPUT, the field.
#[derive(Clone, Debug)]
pub struct ApiError {
    code: Code,
    message: String,
    field: Option<String>,
    /// Seconds to wait, for TOO_MANY_REQUESTS (`extensions.retryAfter`).
    retry_after: Option<u64>,
}

/// What resolvers return.
pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    #[must_use]
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            field: None,
            retry_after: None,
        }
    }

    /// TOO_MANY_REQUESTS, to retry after `seconds` (at least 1).
    #[must_use]
    pub fn too_many_requests(message: impl Into<String>, seconds: u64) -> Self {
        Self {
            retry_after: Some(seconds.max(1)),
            ..Self::new(Code::TooManyRequests, message)
        }
    }

    /// BAD_USER_INPUT naming `field` (e.g. `files[2].size`).
    #[must_use]
    pub fn bad_input(field: impl Into<String>, message: impl Into<String>) -> Self {
        let field = field.into();
        Self {
            code: Code::BadUserInput,
            message: format!("{field}: {}", message.into()),
            field: Some(field),
            retry_after: None,
        }
    }

    #[must_use]
    pub fn unauthenticated() -> Self {
        Self::new(
            Code::Unauthenticated,
            "a valid access token is required (Authorization: Bearer …)",
        )
    }

    #[must_use]
    pub fn not_found() -> Self {
        Self::new(Code::NotFound, "not found")
    }

    /// INTERNAL_SERVER_ERROR with the generic message; log the cause before calling this.
    #[must_use]
    pub fn internal() -> Self {
        Self::new(Code::InternalServerError, "internal error")
    }

    #[must_use]
    pub fn code(&self) -> Code {
        self.code
    }
}

impl From<BackendError> for ApiError {
    fn from(error: BackendError) -> Self {
        match error {
            BackendError::Unauthenticated(message) => Self::new(Code::Unauthenticated, message),
            BackendError::PermissionDenied => Self::new(Code::Forbidden, "forbidden"),
            BackendError::NotFound => Self::not_found(),
            BackendError::InvalidInput {
                field: Some(field),
                message,
            } => Self {
                field: Some(field),
                ..Self::new(Code::BadUserInput, message)
            },
            BackendError::InvalidInput {
                field: None,
                message,
            } => Self::new(Code::BadUserInput, message),
            BackendError::Conflict(message) => Self::new(Code::Conflict, message),
            BackendError::ResourceExhausted { retry_after: None } => {
                Self::too_many_requests("the service is busy; try again shortly", 1)
            }
            BackendError::ResourceExhausted {
                retry_after: Some(seconds),
            } => Self::too_many_requests("too many requests; try again later", seconds),
            BackendError::Unavailable { .. } => Self::new(
                Code::ServiceUnavailable,
                "a backend service is unavailable; try again shortly",
            ),
            BackendError::Internal => Self::internal(),
        }
    }
}

impl From<ApiError> for async_graphql::Error {
    fn from(error: ApiError) -> Self {
        let mut extensions = ErrorExtensionValues::default();
        extensions.set("code", error.code.as_str());
        if let Some(field) = error.field {
            extensions.set("field", field);
        }
        if let Some(seconds) = error.retry_after {
            extensions.set("retryAfter", seconds);
        }
        Self {
            message: error.message,
            source: None,
            extensions: Some(extensions),
        }
    }
}

/// Marks an input coercion error BAD_USER_INPUT, naming the field async-graphql quotes first
/// (`Invalid value for argument "input.date", …` names `date`).
fn mark_bad_input(error: &mut ServerError) {
    let field = error
        .message
        .split('"')
        .nth(1)
        .map(|quoted| quoted.strip_prefix("input.").unwrap_or(quoted).to_owned());
    let extensions = error.extensions.get_or_insert_with(Default::default);
    extensions.set("code", Code::BadUserInput.as_str());
    if let Some(field) = field {
        extensions.set("field", field);
    }
}

/// A request-level error (no path) with `code`.
#[must_use]
pub fn coded_error(message: impl Into<String>, code: Code) -> ServerError {
    coded_error_at(message, code, None)
}

/// A request-level error with `code`, at `pos` of the document when it points somewhere.
#[must_use]
pub fn coded_error_at(message: impl Into<String>, code: Code, pos: Option<Pos>) -> ServerError {
    let mut error = ServerError::new(message, pos);
    stamp(std::slice::from_mut(&mut error), code);
    error
}

/// Gives `code` to every error of `errors` that has none yet.
pub fn stamp(errors: &mut [ServerError], code: Code) {
    for error in errors {
        let extensions = error.extensions.get_or_insert_with(Default::default);
        if extensions.get("code").is_none() {
            extensions.set("code", code.as_str());
        }
    }
}

/// Gives every error of a response a code: input that fails to coerce is BAD_USER_INPUT; an
/// error without a `path` is a request error, raised before execution by validation
/// (GRAPHQL_VALIDATION_FAILED); anything else without a code is internal (its text is logged,
/// not sent). Parse failures never get here: the handler parses first (`protocol`).
///
/// This runs after execution rather than in an async-graphql extension: with any extension
/// installed, every field's resolver runs through the chain of extensions, a boxed future and
/// a registry lookup per field, and a page of 20 hangouts resolves about a thousand fields.
pub fn code_response_errors(response: &mut async_graphql::Response) {
    for error in &mut response.errors {
        let has_code = error
            .extensions
            .as_ref()
            .is_some_and(|extensions| extensions.get("code").is_some());
        if has_code {
            continue;
        }
        // Input values that fail to coerce (a malformed DateTime, an out-of-range Int) are
        // reported by async-graphql with this wording, in validation or in execution; they
        // are the client's fault.
        let code = if error.message.starts_with("Invalid value for argument")
            || error.message.starts_with("Failed to parse")
        {
            mark_bad_input(error);
            Code::BadUserInput
        } else if error.path.is_empty() {
            Code::GraphqlValidationFailed
        } else {
            tracing::error!(message = %error.message, "resolver error without a code");
            error.message = "internal error".to_owned();
            Code::InternalServerError
        };
        stamp(std::slice::from_mut(error), code);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn extension(error: &async_graphql::Error, name: &str) -> Option<String> {
        let value = error.extensions.as_ref()?.get(name)?;
        match value {
            async_graphql::Value::String(text) => Some(text.clone()),
            _ => None,
        }
    }

    #[test]
    fn backend_failures_map_to_the_contract_codes() {
        let cases = [
            (
                BackendError::Unauthenticated("no".to_owned()),
                "UNAUTHENTICATED",
            ),
            (BackendError::PermissionDenied, "FORBIDDEN"),
            (BackendError::NotFound, "NOT_FOUND"),
            (
                BackendError::InvalidInput {
                    field: None,
                    message: "bad".to_owned(),
                },
                "BAD_USER_INPUT",
            ),
            (BackendError::Conflict("taken".to_owned()), "CONFLICT"),
            (
                BackendError::ResourceExhausted { retry_after: None },
                "TOO_MANY_REQUESTS",
            ),
            (
                BackendError::Unavailable {
                    service: "file-core",
                },
                "SERVICE_UNAVAILABLE",
            ),
            (BackendError::Internal, "INTERNAL_SERVER_ERROR"),
        ];
        for (backend, code) in cases {
            let error = async_graphql::Error::from(ApiError::from(backend));
            assert_eq!(extension(&error, "code").as_deref(), Some(code));
        }
    }

    #[test]
    fn bad_input_carries_the_field_and_internal_errors_say_nothing() {
        let error = async_graphql::Error::from(ApiError::from(BackendError::InvalidInput {
            field: Some("files[2].size".to_owned()),
            message: "files[2].size: too big".to_owned(),
        }));
        assert_eq!(extension(&error, "field").as_deref(), Some("files[2].size"));
        let internal = async_graphql::Error::from(ApiError::from(BackendError::Internal));
        assert_eq!(internal.message, "internal error");
        assert_eq!(extension(&internal, "field"), None);
    }

    #[test]
    fn code_less_errors_are_coded_by_where_they_arose() {
        let mut in_execution = ServerError::new("boom: a secret cause", None);
        in_execution.path = vec![async_graphql::PathSegment::Field("me".to_owned())];
        let mut response = async_graphql::Response::from_errors(vec![
            ServerError::new("Unknown field \"nope\" on type \"Query\".", None),
            ServerError::new(
                "Invalid value for argument \"input.date\", expected type \"DateTime\"",
                None,
            ),
            in_execution,
        ]);
        code_response_errors(&mut response);
        let coded: Vec<(Option<String>, Option<String>, &str)> = response
            .errors
            .iter()
            .map(|error| {
                let text = |name: &str| match error.extensions.as_ref()?.get(name)? {
                    async_graphql::Value::String(text) => Some(text.clone()),
                    _ => None,
                };
                (text("code"), text("field"), error.message.as_str())
            })
            .collect();
        assert_eq!(coded[0].0.as_deref(), Some("GRAPHQL_VALIDATION_FAILED"));
        assert_eq!(coded[1].0.as_deref(), Some("BAD_USER_INPUT"));
        assert_eq!(coded[1].1.as_deref(), Some("date"));
        assert_eq!(coded[2].0.as_deref(), Some("INTERNAL_SERVER_ERROR"));
        assert_eq!(
            coded[2].2, "internal error",
            "the cause is logged, not sent"
        );
    }

    struct Inputs;

    #[async_graphql::Object]
    impl Inputs {
        async fn int(&self, n: i32) -> i32 {
            n
        }
        async fn text(&self, list: Vec<String>) -> usize {
            list.len()
        }
    }

    /// `code_response_errors` tells bad input by async-graphql's wording; these errors are
    /// async-graphql's own, so a change of wording in an upgrade fails here, not in production.
    #[tokio::test]
    async fn async_graphql_input_errors_are_coded_bad_user_input() {
        let schema = async_graphql::Schema::new(
            Inputs,
            async_graphql::EmptyMutation,
            async_graphql::EmptySubscription,
        );
        let cases = [
            ("{ int(n: 99999999999) }", serde_json::json!({})),
            ("{ int(n: \"seven\") }", serde_json::json!({})),
            (
                "query($n: Int!) { int(n: $n) }",
                serde_json::json!({ "n": 99_999_999_999_i64 }),
            ),
            (
                "query($l: [String!]!) { text(list: $l) }",
                serde_json::json!({ "l": [1, 2] }),
            ),
        ];
        for (query, variables) in cases {
            let request = async_graphql::Request::new(query)
                .variables(async_graphql::Variables::from_json(variables));
            let mut response = schema.execute(request).await;
            assert!(!response.errors.is_empty(), "{query}");
            code_response_errors(&mut response);
            for error in &response.errors {
                assert_eq!(
                    extension_of(error, "code").as_deref(),
                    Some("BAD_USER_INPUT"),
                    "{query}: {}",
                    error.message
                );
            }
        }
    }

    fn extension_of(error: &ServerError, name: &str) -> Option<String> {
        match error.extensions.as_ref()?.get(name)? {
            async_graphql::Value::String(text) => Some(text.clone()),
            _ => None,
        }
    }
}

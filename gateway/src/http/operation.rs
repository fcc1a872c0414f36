//! One GraphQL operation of a request, in two steps: [`prepare`] resolves a persisted query,
//! parses (or takes the cached parse), applies the document limits and the cost limit, all
//! before anything runs, so that the caller can charge the rate limits for what it will run;
//! [`execute`] runs it (or answers its refusal), stamps the error codes and records it.

use async_graphql::parser::types::{DocumentOperations, OperationType};
use tracing::Instrument as _;

use crate::{
    graphql::{self, Caller, FileUrls, Invocation, cost::CostError, error::Code},
    http::{AppState, documents, error_response, protocol},
};

/// An operation checked and ready to run, or refused.
pub(super) struct Prepared {
    request: async_graphql::Request,
    started: std::time::Instant,
    operation: Option<String>,
    checked: Result<Checked, Box<async_graphql::Response>>,
}

/// What the checks found of an operation that may run.
struct Checked {
    kind: Option<OperationType>,
    root: protocol::RootFields,
    /// Its estimated cost (0 when no operation is selected: validation refuses it).
    cost: u64,
    /// The renditions its `imageUrl` fields ask for.
    file_urls: FileUrls,
}

impl Prepared {
    /// Whether it is a mutation (which may not run through `GET`).
    pub(super) fn is_mutation(&self) -> bool {
        matches!(
            &self.checked,
            Ok(Checked {
                kind: Some(kind),
                ..
            }) if *kind != OperationType::Query
        )
    }

    /// Whether it is a subscription that may run.
    pub(super) fn is_subscription(&self) -> bool {
        matches!(
            &self.checked,
            Ok(Checked {
                kind: Some(OperationType::Subscription),
                ..
            })
        )
    }

    /// The checked request, to run as a stream, with the renditions it asks for; the refusal
    /// of one that may not run.
    pub(super) fn into_request(
        self,
    ) -> Result<(async_graphql::Request, FileUrls), Box<async_graphql::Response>> {
        self.checked
            .map(|checked| (self.request, checked.file_urls))
    }

    /// Its estimated cost; nothing for a refused operation.
    pub(super) fn cost(&self) -> u64 {
        self.checked.as_ref().map_or(0, |checked| checked.cost)
    }

    /// What it will run at the root; nothing for a refused operation.
    pub(super) fn root_fields(&self) -> protocol::RootFields {
        match &self.checked {
            Ok(checked) => checked.root,
            Err(_) => protocol::RootFields::default(),
        }
    }
}

/// Every check that comes before execution.
pub(super) fn prepare(state: &AppState, mut request: async_graphql::Request) -> Prepared {
    let started = std::time::Instant::now();
    let operation = request.operation_name.clone();
    let checked = match state.persisted.resolve(&mut request) {
        Err(error) => Err(Box::new(error_response(
            error.message(),
            Code::BadUserInput,
        ))),
        Ok(()) => {
            let cached = state.documents.fill(&mut request);
            let checked = protocol::check_document(&mut request, state.limits);
            let cached = match cached {
                Some(cached) => Some(cached),
                None if checked.is_ok() => state.documents.remember(&mut request),
                None => None,
            };
            checked
                .and_then(|kind| {
                    check_cost(state, &mut request, cached.as_deref()).map(|cost| (kind, cost))
                })
                .map(|(kind, (cost, file_urls))| {
                    let name = request.operation_name.clone();
                    let root = match request.parsed_query() {
                        Ok(document) => protocol::root_fields(document, name.as_deref()),
                        Err(_) => protocol::RootFields::default(),
                    };
                    Checked {
                        kind,
                        root,
                        cost,
                        file_urls,
                    }
                })
        }
    };
    Prepared {
        request,
        started,
        operation,
        checked,
    }
}

/// Runs a prepared operation, or answers its refusal.
pub(super) async fn execute(
    state: &AppState,
    request_id: &str,
    caller: &Caller,
    prepared: Prepared,
) -> async_graphql::Response {
    let Prepared {
        mut request,
        started,
        mut operation,
        checked,
    } = prepared;
    let (response, kind, calls) = match checked {
        Err(refusal) => (*refusal, None, 0),
        Ok(Checked {
            kind, file_urls, ..
        }) => {
            let kind = kind.map(operation_type);
            if operation.is_none() {
                operation = single_operation_name(&mut request);
            }
            // Named as OpenTelemetry's GraphQL conventions say; the document and the variables
            // stay out of it (literals in a document can hold secrets too).
            let span = tracing::info_span!(
                "graphql",
                otel.name = %format_args!(
                    "{} {}",
                    kind.unwrap_or("operation"),
                    operation.as_deref().unwrap_or("anonymous")
                ),
                graphql.operation.name = operation.as_deref().unwrap_or_default(),
                graphql.operation.type = kind.unwrap_or("unknown"),
            );
            let invocation = Invocation {
                caller: caller.clone(),
                request_id: request_id.to_owned(),
                file_urls,
            };
            let executed = graphql::execute(&state.schema, &state.backends, request, invocation)
                .instrument(span)
                .await;
            (executed.response, kind, executed.backend_calls)
        }
    };
    let outcome = match response.errors.first() {
        None => "ok",
        Some(error) => crate::metrics::outcome_of(error_code(error)),
    };
    let elapsed = started.elapsed();
    state
        .backends
        .metrics()
        .operation(&crate::metrics::OperationRecord {
            name: operation.as_deref(),
            kind,
            outcome,
            elapsed,
            backend_calls: calls,
        });
    // Operation names and counts only: variables and tokens are never logged.
    if state.request_log.should_log(response.errors.len()) {
        tracing::info!(
            operation = operation.as_deref().unwrap_or_default(),
            signed_in = matches!(caller, Caller::User(_)),
            errors = response.errors.len(),
            backend_calls = calls,
            elapsed_ms = elapsed.as_millis(),
            "graphql request"
        );
    }
    response
}

/// The operation's estimated cost; refuses it when over the limit, before anything runs.
/// The estimate comes from the document's cache entry when it was computed before and no
/// variable sizes a list.
fn check_cost(
    state: &AppState,
    request: &mut async_graphql::Request,
    cached: Option<&documents::CachedDocument>,
) -> Result<(u64, FileUrls), Box<async_graphql::Response>> {
    let model = &state.cost;
    if let Some((cost, file_urls)) = cached.and_then(documents::CachedDocument::cost) {
        return if cost > model.limit() {
            Err(too_expensive(cost, model.limit()))
        } else {
            Ok((cost, file_urls))
        };
    }
    let operation_name = request.operation_name.clone();
    let variables = request.variables.clone();
    let Ok(document) = request.parsed_query() else {
        return Ok((0, FileUrls::default()));
    };
    let remember = |cost: u64, uses_variables: bool, file_urls: FileUrls| {
        if !uses_variables && let Some(cached) = cached {
            cached.remember_cost(cost, file_urls);
        }
    };
    match model.estimate(document, operation_name.as_deref(), &variables) {
        Ok(Some(estimate)) => {
            remember(estimate.cost, estimate.uses_variables, estimate.file_urls);
            Ok((estimate.cost, estimate.file_urls))
        }
        Ok(None) => Ok((0, FileUrls::default())),
        Err(CostError::TooExpensive {
            estimated,
            limit,
            uses_variables,
        }) => {
            remember(estimated, uses_variables, FileUrls::default());
            Err(too_expensive(estimated, limit))
        }
        Err(CostError::CircularIntrospection) => Err(Box::new(error_response(
            &format!(
                "introspection lists may nest at most {} deep",
                crate::graphql::cost::MAX_INTROSPECTION_LISTS
            ),
            Code::GraphqlValidationFailed,
        ))),
        Err(CostError::TooLarge) => Err(Box::new(error_response(
            "the document spreads its fragments too many times to be analysed",
            Code::GraphqlValidationFailed,
        ))),
    }
}

/// COST_ESTIMATED_TOO_EXPENSIVE with `extensions.cost` = `{ estimated, limit }`.
fn too_expensive(estimated: u64, limit: u64) -> Box<async_graphql::Response> {
    let mut error = crate::graphql::error::coded_error(
        format!(
            "the operation's estimated cost {estimated} is over the limit of {limit}: ask for \
             smaller pages (`first`) or fewer nested lists"
        ),
        Code::CostEstimatedTooExpensive,
    );
    let mut cost = async_graphql::indexmap::IndexMap::new();
    cost.insert(
        async_graphql::Name::new("estimated"),
        async_graphql::Value::from(estimated),
    );
    cost.insert(
        async_graphql::Name::new("limit"),
        async_graphql::Value::from(limit),
    );
    error
        .extensions
        .get_or_insert_with(Default::default)
        .set("cost", async_graphql::Value::Object(cost));
    Box::new(async_graphql::Response::from_errors(vec![error]))
}

/// The name of the document's only operation, when it has a name (clients need not send
/// `operationName` then).
fn single_operation_name(request: &mut async_graphql::Request) -> Option<String> {
    match &request.parsed_query().ok()?.operations {
        DocumentOperations::Multiple(operations) if operations.len() == 1 => {
            operations.keys().next().map(ToString::to_string)
        }
        DocumentOperations::Single(_) | DocumentOperations::Multiple(_) => None,
    }
}

fn operation_type(kind: OperationType) -> &'static str {
    match kind {
        OperationType::Query => "query",
        OperationType::Mutation => "mutation",
        OperationType::Subscription => "subscription",
    }
}

/// The `extensions.code` of an error, when it has one.
fn error_code(error: &async_graphql::ServerError) -> Option<&str> {
    match error.extensions.as_ref()?.get("code")? {
        async_graphql::Value::String(code) => Some(code),
        async_graphql::Value::Enum(code) => Some(code.as_str()),
        _ => None,
    }
}

//! The HTTP edge: the axum router with the GraphQL endpoint, GraphiQL, `/healthz`, `/readyz`
//! and `/.well-known/jwks.json`.
//!
//! Invariants: every request has a request id (the client's `x-request-id` when it is sane,
//! a fresh UUID otherwise), echoed in the response and sent to the backends; bearer tokens are
//! verified here and never logged; each GraphQL request gets its own
//! [`RequestContext`](crate::graphql::RequestContext).

mod documents;
mod graphiql;
mod persisted;
mod protocol;
mod rate_limit;
mod settings;

pub use persisted::ManifestError;
pub use settings::EdgeSettings;

use std::{net::SocketAddr, path::PathBuf, sync::Arc};

use async_graphql::{
    BatchRequest, BatchResponse,
    parser::types::{DocumentOperations, OperationType},
};
use axum::{
    Extension, Json, Router,
    body::Bytes,
    extract::{ConnectInfo, DefaultBodyLimit, RawQuery, Request, State, rejection::BytesRejection},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::get,
};
use tracing::Instrument as _;

use crate::{
    auth::Tokens,
    backend::{Backends, CallContext},
    graphql::{AppSchema, Caller, RequestContext, error::Code},
};

/// What the handlers share.
pub struct AppState {
    pub schema: AppSchema,
    pub backends: Backends,
    pub tokens: Arc<Tokens>,
    pub graphiql_assets: PathBuf,
    limits: protocol::Limits,
    persisted: persisted::PersistedOperations,
    documents: documents::Documents,
    cost: crate::graphql::cost::CostModel,
    rate_limits: rate_limit::RateLimits,
    max_body_bytes: usize,
    requests: std::sync::atomic::AtomicU64,
}

impl AppState {
    /// # Errors
    /// When the trusted-documents manifest cannot be loaded.
    pub fn new(
        schema: AppSchema,
        backends: Backends,
        tokens: Arc<Tokens>,
        graphiql_assets: PathBuf,
        settings: &EdgeSettings,
    ) -> Result<Self, ManifestError> {
        let persisted = match &settings.trusted_documents {
            Some(path) => persisted::PersistedOperations::trusted_from_file(path)?,
            None => persisted::PersistedOperations::automatic(),
        };
        Ok(Self {
            schema,
            backends,
            tokens,
            graphiql_assets,
            limits: protocol::Limits {
                max_batch: settings.max_batch,
                max_aliases: settings.max_aliases,
                max_root_fields: settings.max_root_fields,
            },
            persisted,
            documents: documents::Documents::default(),
            cost: crate::graphql::cost::CostModel::from_sdl(
                &crate::graphql::sdl(),
                settings.max_cost,
            ),
            rate_limits: rate_limit::RateLimits::new(
                settings.rate_limit_per_address.0,
                settings.rate_limit_per_user.0,
                settings.trusted_proxies.clone(),
            ),
            max_body_bytes: settings.max_body_bytes,
            requests: std::sync::atomic::AtomicU64::new(0),
        })
    }
}

/// The request id of the current request.
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

/// The router with every route of the gateway.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/graphql", get(graphql_get).post(graphql_post))
        .route("/graphiql", get(graphiql::page))
        .route("/graphiql/assets/{*path}", get(graphiql::asset))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/.well-known/jwks.json", get(jwks))
        .layer(DefaultBodyLimit::max(state.max_body_bytes))
        .layer(middleware::from_fn_with_state(
            Arc::clone(&state),
            request_id,
        ))
        .with_state(state)
}

/// A client-supplied request id is kept when it is short printable ASCII.
fn sane_request_id(value: &HeaderValue) -> Option<String> {
    let text = value.to_str().ok()?;
    let sane = !text.is_empty()
        && text.len() <= 128
        && text
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"-_.:".contains(&byte));
    sane.then(|| text.to_owned())
}

/// Gives the request its id and its root span (a child of the caller's `traceparent`, if any),
/// and counts it once, by route, method and status.
async fn request_id(
    State(state): State<Arc<AppState>>,
    mut request: Request,
    next: Next,
) -> Response {
    let id = request
        .headers()
        .get(proto::metadata::REQUEST_ID)
        .and_then(sane_request_id)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    request.extensions_mut().insert(RequestId(id.clone()));
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let route = crate::metrics::route_of(&path);
    let span = tracing::info_span!(
        "http",
        otel.name = %format_args!("{method} {route}"),
        otel.kind = "server",
        http.request.method = %method,
        http.route = route,
        http.response.status_code = tracing::field::Empty,
        request_id = %id,
        trace_id = tracing::field::Empty,
    );
    telemetry::propagation::set_parent_from(&span, request.headers());
    let mut response = next.run(request).instrument(span.clone()).await;
    let status = response.status().as_u16();
    span.record("http.response.status_code", status);
    state
        .backends
        .metrics()
        .http_request(&path, &method, status);
    if let Ok(value) = HeaderValue::from_str(&id) {
        response
            .headers_mut()
            .insert(proto::metadata::REQUEST_ID, value);
    }
    response
}

/// Who the bearer token says is calling. Refused tokens are logged with the reason, never
/// with the token.
fn caller(headers: &HeaderMap, tokens: &Tokens) -> Caller {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Caller::Anonymous;
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|text| text.strip_prefix("Bearer "))
        .map(str::trim);
    match token.map(|token| tokens.verify(token)) {
        Some(Ok(user_id)) => Caller::User(user_id),
        Some(Err(error)) => {
            tracing::info!(reason = %error, "access token refused");
            Caller::Refused
        }
        None => {
            tracing::info!("authorization header is not a bearer token");
            Caller::Refused
        }
    }
}

/// `GET /graphql`: GraphiQL for a browser navigating there, otherwise a query from the URL.
async fn graphql_get(
    State(state): State<Arc<AppState>>,
    Extension(RequestId(request_id)): Extension<RequestId>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    if query.is_none() && protocol::wants_html(&headers) {
        return graphiql::page().await;
    }
    let Some(media) = protocol::negotiate(&headers) else {
        return not_acceptable();
    };
    let request = match protocol::read_get(&headers, query.as_deref()) {
        Ok(request) => request,
        Err(refusal) => return refusal.into_response(media),
    };
    let peer = peer.map(|Extension(ConnectInfo(peer))| peer);
    let batch = BatchRequest::Single(request);
    run(&state, request_id, peer, &headers, media, batch, true).await
}

/// `POST /graphql`: one operation or a batch, as JSON.
async fn graphql_post(
    State(state): State<Arc<AppState>>,
    Extension(RequestId(request_id)): Extension<RequestId>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let Some(media) = protocol::negotiate(&headers) else {
        return not_acceptable();
    };
    let body = match body {
        Ok(body) => body,
        Err(rejection) => {
            return protocol::Refusal::body(rejection.status(), state.max_body_bytes)
                .into_response(media);
        }
    };
    let batch = match protocol::read_post(&headers, &body, state.limits) {
        Ok(batch) => batch,
        Err(refusal) => return refusal.into_response(media),
    };
    let peer = peer.map(|Extension(ConnectInfo(peer))| peer);
    run(&state, request_id, peer, &headers, media, batch, false).await
}

fn not_acceptable() -> Response {
    (
        StatusCode::NOT_ACCEPTABLE,
        "send Accept: application/graphql-response+json or application/json",
    )
        .into_response()
}

/// A GraphQL error response holding one error with `code`.
fn error_response(message: &str, code: Code) -> async_graphql::Response {
    let mut error = async_graphql::ServerError::new(message, None);
    let mut extensions = async_graphql::ErrorExtensionValues::default();
    extensions.set("code", code.as_str());
    error.extensions = Some(extensions);
    async_graphql::Response::from_errors(vec![error])
}

/// A rate-limit refusal: 429 with `Retry-After` and a TOO_MANY_REQUESTS error.
fn too_many_requests(media: protocol::MediaType, limited: rate_limit::Limited) -> Response {
    let mut response = protocol::respond(
        media,
        BatchResponse::Single(error_response(
            "too many requests; retry later",
            Code::TooManyRequests,
        )),
    );
    *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    if let Ok(value) = HeaderValue::from_str(&limited.retry_after_seconds().to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

/// Rate limits, persisted operations and document limits, then execution of each operation
/// with its own per-request context (and so its own dataloaders).
async fn run(
    state: &AppState,
    request_id: String,
    peer: Option<SocketAddr>,
    headers: &HeaderMap,
    media: protocol::MediaType,
    batch: BatchRequest,
    via_get: bool,
) -> Response {
    let seen = state
        .requests
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    if seen % 4096 == 4095 {
        state.rate_limits.forget_idle();
    }
    if let Some(address) = state.rate_limits.client_address(peer, headers)
        && let Err(limited) = state.rate_limits.check_address(address)
    {
        tracing::info!(%address, "rate limited (address)");
        state.backends.metrics().rate_limited("address");
        return too_many_requests(media, limited);
    }
    let caller = caller(headers, &state.tokens);
    if let Caller::User(user) = &caller
        && let Err(limited) = state.rate_limits.check_user(&user.to_string())
    {
        tracing::info!(user_id = %user, "rate limited (user)");
        state.backends.metrics().rate_limited("user");
        return too_many_requests(media, limited);
    }
    let response = match batch {
        BatchRequest::Single(request) => {
            match execute(state, &request_id, &caller, request, via_get).await {
                Executed::Done(response) => BatchResponse::Single(*response),
                Executed::MutationViaGet => return protocol::mutation_via_get(media),
            }
        }
        BatchRequest::Batch(requests) => {
            let mut responses = Vec::with_capacity(requests.len());
            for request in requests {
                match execute(state, &request_id, &caller, request, via_get).await {
                    Executed::Done(response) => responses.push(*response),
                    Executed::MutationViaGet => return protocol::mutation_via_get(media),
                }
            }
            BatchResponse::Batch(responses)
        }
    };
    protocol::respond(media, response)
}

enum Executed {
    Done(Box<async_graphql::Response>),
    MutationViaGet,
}

async fn execute(
    state: &AppState,
    request_id: &str,
    caller: &Caller,
    mut request: async_graphql::Request,
    via_get: bool,
) -> Executed {
    let started = std::time::Instant::now();
    let mut operation = request.operation_name.clone();
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
            checked.and_then(|kind| {
                check_cost(&state.cost, &mut request, cached.as_deref()).map(|()| kind)
            })
        }
    };
    let (response, kind, calls) = match checked {
        Err(refusal) => (*refusal, None, 0),
        Ok(Some(kind)) if via_get && kind != OperationType::Query => {
            return Executed::MutationViaGet;
        }
        Ok(kind) => {
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
            let context =
                RequestContext::new(&state.backends, caller.clone(), request_id.to_owned());
            let calls = context.call.clone();
            let tasks = context.tasks.clone();
            let mut response = tasks
                .drive(state.schema.execute(request.data(context)))
                .instrument(span)
                .await;
            crate::graphql::error::code_response_errors(&mut response);
            (response, kind, calls.calls_made())
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
    tracing::info!(
        operation = operation.as_deref().unwrap_or_default(),
        signed_in = matches!(caller, Caller::User(_)),
        errors = response.errors.len(),
        backend_calls = calls,
        elapsed_ms = elapsed.as_millis(),
        "graphql request"
    );
    Executed::Done(Box::new(response))
}

/// Refuses the operation when its estimated cost is over the limit, before anything runs.
/// The estimate comes from the document's cache entry when it was computed before and no
/// variable sizes a list.
fn check_cost(
    model: &crate::graphql::cost::CostModel,
    request: &mut async_graphql::Request,
    cached: Option<&documents::CachedDocument>,
) -> Result<(), Box<async_graphql::Response>> {
    use crate::graphql::cost::CostError;
    if let Some(cost) = cached.and_then(documents::CachedDocument::cost) {
        return if cost > model.limit() {
            Err(too_expensive(cost, model.limit()))
        } else {
            Ok(())
        };
    }
    let operation_name = request.operation_name.clone();
    let variables = request.variables.clone();
    let Ok(document) = request.parsed_query() else {
        return Ok(());
    };
    let remember = |cost: u64, uses_variables: bool| {
        if !uses_variables && let Some(cached) = cached {
            cached.remember_cost(cost);
        }
    };
    match model.estimate(document, operation_name.as_deref(), &variables) {
        Ok(Some(estimate)) => {
            remember(estimate.cost, estimate.uses_variables);
            Ok(())
        }
        Ok(None) => Ok(()),
        Err(CostError::TooExpensive {
            estimated,
            limit,
            uses_variables,
        }) => {
            remember(estimated, uses_variables);
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
    let mut error = async_graphql::ServerError::new(
        format!(
            "the operation's estimated cost {estimated} is over the limit of {limit}: ask for \
             smaller pages (`first`) or fewer nested lists"
        ),
        None,
    );
    let mut extensions = async_graphql::ErrorExtensionValues::default();
    extensions.set("code", Code::CostEstimatedTooExpensive.as_str());
    let mut cost = async_graphql::indexmap::IndexMap::new();
    cost.insert(
        async_graphql::Name::new("estimated"),
        async_graphql::Value::from(estimated),
    );
    cost.insert(
        async_graphql::Name::new("limit"),
        async_graphql::Value::from(limit),
    );
    extensions.set("cost", async_graphql::Value::Object(cost));
    error.extensions = Some(extensions);
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

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(
    State(state): State<Arc<AppState>>,
    Extension(RequestId(request_id)): Extension<RequestId>,
) -> Response {
    let call = CallContext::new(None, request_id);
    match state.backends.check_ready(&call).await {
        Ok(()) => (StatusCode::OK, "ready").into_response(),
        Err(error) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {error}"),
        )
            .into_response(),
    }
}

async fn jwks(State(state): State<Arc<AppState>>) -> Response {
    (
        [(header::CACHE_CONTROL, "public, max-age=300")],
        Json(state.tokens.jwks().clone()),
    )
        .into_response()
}

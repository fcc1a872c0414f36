//! The HTTP edge: the axum router with the GraphQL endpoint, GraphiQL, `/healthz`, `/readyz`
//! and `/.well-known/jwks.json`.
//!
//! Invariants: every request has a request id (the client's `x-request-id` when it is sane,
//! a fresh UUID otherwise), echoed in the response and sent to the backends; bearer tokens are
//! verified here and never logged; each GraphQL request gets its own
//! [`RequestContext`](crate::graphql::RequestContext).

mod cors;
mod documents;
mod graphiql;
mod live;
mod operation;
mod persisted;
mod protocol;
mod rate_limit;
mod request_log;
mod server;

pub use cors::layer as cors_layer;
pub use live::Live;
pub use persisted::ManifestError;
pub use server::{ServerLimits, serve};

use std::{net::SocketAddr, path::PathBuf, sync::Arc};

use crate::config::EdgeSettings;

use async_graphql::{BatchRequest, BatchResponse};
use axum::{
    Extension, Json, Router,
    body::Bytes,
    extract::{ConnectInfo, DefaultBodyLimit, Request, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::get,
};
use tracing::Instrument as _;

use crate::{
    auth::Tokens,
    backend::{Backends, CallContext},
    graphql::{AppSchema, Caller, error::Code},
};

/// What the handlers share.
pub struct AppState {
    pub schema: AppSchema,
    pub backends: Backends,
    pub tokens: Arc<Tokens>,
    /// The GraphiQL packages; `None` when GraphiQL is off.
    pub graphiql_assets: Option<PathBuf>,
    limits: protocol::Limits,
    persisted: persisted::PersistedOperations,
    documents: documents::Documents,
    cost: crate::graphql::cost::CostModel,
    rate_limits: rate_limit::RateLimits,
    max_body_bytes: usize,
    max_response_bytes: usize,
    body_read_timeout: std::time::Duration,
    request_timeout: std::time::Duration,
    /// How long a rate-limit refusal waits before it is sent.
    refusal_delay: std::time::Duration,
    /// Permits for GraphQL requests being read or executed (`GATEWAY_MAX_IN_FLIGHT`).
    in_flight: tokio::sync::Semaphore,
    requests: std::sync::atomic::AtomicU64,
    /// Which requests get their INFO line (`GATEWAY_REQUEST_LOG`).
    request_log: request_log::RequestLogger,
    /// Subscriptions: the event hub and the sockets' counts.
    live: live::Live,
    ws: WsLimits,
}

/// The bounds of WebSocket connections (see `live`).
#[derive(Clone, Copy, Debug)]
struct WsLimits {
    init_timeout: std::time::Duration,
    ping_interval: std::time::Duration,
    max_message_bytes: usize,
    max_subscriptions_per_socket: usize,
    max_subscriptions_per_user: usize,
    max_sockets_per_user: usize,
    max_sockets_per_address: usize,
}

impl AppState {
    /// # Errors
    /// When the trusted-documents manifest cannot be loaded.
    pub fn new(
        schema: AppSchema,
        backends: Backends,
        tokens: Arc<Tokens>,
        graphiql_assets: Option<PathBuf>,
        settings: &EdgeSettings,
        shared: Option<Arc<crate::shared_limits::SharedLimits>>,
        live: Live,
    ) -> Result<Self, ManifestError> {
        let persisted = match &settings.trusted_documents {
            Some(path) => persisted::PersistedOperations::trusted_from_file(path)?,
            None => persisted::PersistedOperations::automatic(),
        };
        // From the schema that executes, so the model cannot describe another one.
        let cost = crate::graphql::cost::CostModel::from_sdl(&schema.sdl(), settings.max_cost);
        Ok(Self {
            schema,
            backends,
            tokens,
            graphiql_assets,
            limits: protocol::Limits {
                max_batch: settings.max_batch,
                max_aliases: settings.max_aliases,
                max_root_fields: settings.max_root_fields,
                max_document_bytes: settings.max_document_bytes,
            },
            persisted,
            documents: documents::Documents::default(),
            cost,
            rate_limits: rate_limit::RateLimits::new(
                rate_limit::Rates {
                    per_address: settings.rate_limit_per_address.0,
                    per_user: settings.rate_limit_per_user.0,
                    cost_per_address: settings.cost_limit_per_address.0,
                    cost_per_user: settings.cost_limit_per_user.0,
                    auth_per_address: settings.rate_limit_auth_per_address.0,
                },
                settings.trusted_proxies.clone(),
                shared,
            ),
            max_body_bytes: settings.max_body_bytes,
            max_response_bytes: settings.max_response_bytes,
            body_read_timeout: settings.body_read_timeout,
            request_timeout: settings.request_timeout,
            in_flight: tokio::sync::Semaphore::new(settings.max_in_flight),
            refusal_delay: settings.rate_limit_delay,
            requests: std::sync::atomic::AtomicU64::new(0),
            request_log: request_log::RequestLogger::new(settings.request_log),
            live,
            ws: WsLimits {
                init_timeout: settings.ws_init_timeout,
                ping_interval: settings.ws_ping_interval,
                max_message_bytes: settings.ws_max_message_bytes,
                max_subscriptions_per_socket: settings.ws_max_subscriptions_per_socket,
                max_subscriptions_per_user: settings.ws_max_subscriptions_per_user,
                max_sockets_per_user: settings.ws_max_sockets_per_user,
                max_sockets_per_address: settings.ws_max_sockets_per_address,
            },
        })
    }
}

/// The request id of the current request.
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

/// The router with every route of the gateway.
pub fn router(state: Arc<AppState>, cors: tower_http::cors::CorsLayer) -> Router {
    let mut router = Router::new().route("/graphql", get(graphql_get).post(graphql_post));
    if state.graphiql_assets.is_some() {
        router = router
            .route("/graphiql", get(graphiql::page))
            .route("/graphiql/assets/{*path}", get(graphiql::asset));
    }
    router
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/.well-known/jwks.json", get(jwks))
        .layer(DefaultBodyLimit::max(state.max_body_bytes))
        .layer(cors)
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

/// `GET /graphql`: a WebSocket for subscriptions (`live`), GraphiQL for a browser navigating
/// there, otherwise a query from the URL.
async fn graphql_get(
    State(state): State<Arc<AppState>>,
    Extension(request_id): Extension<RequestId>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    request: Request,
) -> Response {
    let peer = peer.map(|Extension(ConnectInfo(peer))| peer);
    let (mut parts, _) = request.into_parts();
    let upgrading = parts
        .headers
        .get(header::UPGRADE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.eq_ignore_ascii_case("websocket"));
    if upgrading {
        use axum::extract::FromRequestParts as _;
        return match axum::extract::ws::WebSocketUpgrade::from_request_parts(&mut parts, &()).await
        {
            Ok(upgrade) => live::upgrade(state, upgrade, request_id, peer, &parts.headers),
            Err(rejection) => rejection.into_response(),
        };
    }
    let query = parts.uri.query().map(str::to_owned);
    graphql_get_query(&state, request_id.0, peer, &parts.headers, query).await
}

/// A `GET /graphql` that is not a WebSocket.
async fn graphql_get_query(
    state: &Arc<AppState>,
    request_id: String,
    peer: Option<SocketAddr>,
    headers: &HeaderMap,
    query: Option<String>,
) -> Response {
    let state = Arc::clone(state);
    let headers = headers.clone();
    if query.is_none() && state.graphiql_assets.is_some() && protocol::wants_html(&headers) {
        return graphiql::page().await;
    }
    let Some(media) = protocol::negotiate(&headers) else {
        return not_acceptable();
    };
    let Ok(permit) = state.in_flight.try_acquire() else {
        return overloaded(&state, media);
    };
    let request = match protocol::read_get(&headers, query.as_deref()) {
        Ok(request) => request,
        Err(refusal) => return refusal.into_response(media),
    };
    let batch = BatchRequest::Single(request);
    let request = Incoming {
        request_id,
        peer,
        headers: &headers,
        media,
        via_get: true,
    };
    run(&state, request, batch, permit).await
}

/// `POST /graphql`: one operation or a batch, as JSON.
async fn graphql_post(
    State(state): State<Arc<AppState>>,
    Extension(RequestId(request_id)): Extension<RequestId>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    let Some(media) = protocol::negotiate(&headers) else {
        return not_acceptable();
    };
    // Admitted before the body is read: reading holds up to a body's worth of memory.
    let Ok(permit) = state.in_flight.try_acquire() else {
        return overloaded(&state, media);
    };
    let body = match read_body(&state, body).await {
        Ok(body) => body,
        Err(status) => {
            return protocol::Refusal::body(status, state.max_body_bytes).into_response(media);
        }
    };
    let batch = match protocol::read_post(&headers, &body, state.limits) {
        Ok(batch) => batch,
        Err(refusal) => return refusal.into_response(media),
    };
    let peer = peer.map(|Extension(ConnectInfo(peer))| peer);
    let request = Incoming {
        request_id,
        peer,
        headers: &headers,
        media,
        via_get: false,
    };
    run(&state, request, batch, permit).await
}

/// Reads the whole body, within `GATEWAY_MAX_BODY_BYTES` and `GATEWAY_BODY_READ_TIMEOUT`.
///
/// # Errors
/// 413 for a body over the limit, 408 for one that took too long, 400 for a broken one.
async fn read_body(state: &AppState, body: axum::body::Body) -> Result<Bytes, StatusCode> {
    use http_body_util::BodyExt as _;
    let limited = http_body_util::Limited::new(body, state.max_body_bytes);
    match tokio::time::timeout(state.body_read_timeout, limited.collect()).await {
        Err(_) => Err(StatusCode::REQUEST_TIMEOUT),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(error)) if error.is::<http_body_util::LengthLimitError>() => {
            Err(StatusCode::PAYLOAD_TOO_LARGE)
        }
        Ok(Err(_)) => Err(StatusCode::BAD_REQUEST),
    }
}

/// Load shedding: more GraphQL requests are in flight than allowed, so this one is refused
/// at once (503, `Retry-After`) instead of queueing behind them.
fn overloaded(state: &AppState, media: protocol::MediaType) -> Response {
    state.backends.metrics().rate_limited("in_flight");
    refusal_to_retry(
        media,
        StatusCode::SERVICE_UNAVAILABLE,
        Code::ServiceUnavailable,
        "the server is at capacity; retry shortly",
        1,
    )
}

fn not_acceptable() -> Response {
    (
        StatusCode::NOT_ACCEPTABLE,
        "send Accept: application/graphql-response+json or application/json",
    )
        .into_response()
}

/// A GraphQL error response holding one error with `code`.
pub(super) fn error_response(message: &str, code: Code) -> async_graphql::Response {
    async_graphql::Response::from_errors(vec![crate::graphql::error::coded_error(message, code)])
}

/// A rate-limit refusal as a GraphQL response: TOO_MANY_REQUESTS with `retryAfter`.
fn rate_limited_response(limited: rate_limit::Limited) -> async_graphql::Response {
    let mut refusal = error_response("too many requests; retry later", Code::TooManyRequests);
    if let Some(extensions) = refusal.errors[0].extensions.as_mut() {
        extensions.set("retryAfter", limited.retry_after_seconds());
    }
    refusal
}

/// A rate-limit refusal: 429 with `Retry-After` and a TOO_MANY_REQUESTS error.
fn too_many_requests(media: protocol::MediaType, limited: rate_limit::Limited) -> Response {
    refusal_to_retry(
        media,
        StatusCode::TOO_MANY_REQUESTS,
        Code::TooManyRequests,
        "too many requests; retry later",
        limited.retry_after_seconds(),
    )
}

/// A refusal with `status`, one error with `code` and `extensions.retryAfter`, and the same
/// wait in `Retry-After`.
fn refusal_to_retry(
    media: protocol::MediaType,
    status: StatusCode,
    code: Code,
    message: &str,
    retry_after_seconds: u64,
) -> Response {
    let mut refusal = error_response(message, code);
    if let Some(extensions) = refusal.errors[0].extensions.as_mut() {
        extensions.set("retryAfter", retry_after_seconds);
    }
    let mut response = protocol::respond(media, BatchResponse::Single(refusal), usize::MAX);
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_seconds));
    response
}

/// A GraphQL request as the handlers read it.
struct Incoming<'a> {
    request_id: String,
    peer: Option<SocketAddr>,
    headers: &'a HeaderMap,
    media: protocol::MediaType,
    via_get: bool,
}

/// A rate-limit refusal, answered after a pause (at most `GATEWAY_RATE_LIMIT_DELAY`, never
/// longer than the wait it announces), holding the connection but not an in-flight slot.
/// A client over its limit then gets at most one refusal per connection per pause, so a
/// flood from one address costs the gateway what its connections allow, not what its
/// sender can send: refusing 6,000 requests a second took a quarter of a core (BENCHMARKS.md,
/// `abuse`). Honest clients do not meet it: they are under their limits.
async fn refuse_slowly(
    state: &AppState,
    media: protocol::MediaType,
    limited: rate_limit::Limited,
    permit: tokio::sync::SemaphorePermit<'_>,
) -> Response {
    drop(permit);
    let pause = state.refusal_delay.min(limited.retry_after);
    if !pause.is_zero() {
        tokio::time::sleep(pause).await;
    }
    too_many_requests(media, limited)
}

/// Rate limits, persisted operations and document limits, then execution of each operation
/// with its own per-request context (and so its own dataloaders).
///
/// The rate limits charge what the request does: one token before anything is read (so a
/// flood of unparsable requests is limited too), then, once the documents are parsed and
/// checked, one more per further root field of every operation, and each sign-in, sign-up
/// and refresh to the stricter authentication budget. Over any limit, nothing runs.
async fn run(
    state: &AppState,
    incoming: Incoming<'_>,
    batch: BatchRequest,
    permit: tokio::sync::SemaphorePermit<'_>,
) -> Response {
    let Incoming {
        request_id,
        peer,
        headers,
        media,
        via_get,
    } = incoming;
    let seen = state
        .requests
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    if seen % 4096 == 4095 {
        state.rate_limits.forget_idle();
    }
    let address = state.rate_limits.client_address(peer, headers);
    let caller = caller(headers, &state.tokens);
    let user = match &caller {
        Caller::User(user) => Some(user.to_string()),
        Caller::Anonymous | Caller::Refused => None,
    };
    let first = Charge {
        fields: 1,
        ..Charge::default()
    };
    if let Err(limited) = charge(state, address, user.as_deref(), first).await {
        return refuse_slowly(state, media, limited, permit).await;
    }
    let single = matches!(batch, BatchRequest::Single(_));
    let requests = match batch {
        BatchRequest::Single(request) => vec![request],
        BatchRequest::Batch(requests) => requests,
    };
    let prepared: Vec<operation::Prepared> = requests
        .into_iter()
        .map(|request| operation::prepare(state, request))
        .collect();
    if via_get && prepared.iter().any(operation::Prepared::is_mutation) {
        return protocol::mutation_via_get(media);
    }
    let all = prepared.iter().fold(Charge::default(), |sum, one| {
        let root = one.root_fields();
        Charge {
            fields: sum.fields.saturating_add(root.total),
            auth: sum.auth.saturating_add(root.auth),
            cost: sum
                .cost
                .saturating_add(u32::try_from(one.cost()).unwrap_or(u32::MAX)),
        }
    });
    let rest = Charge {
        // The first field was charged before the documents were read.
        fields: all.fields.saturating_sub(first.fields),
        ..all
    };
    if let Err(limited) = charge(state, address, user.as_deref(), rest).await {
        return refuse_slowly(state, media, limited, permit).await;
    }
    let executed = tokio::time::timeout(state.request_timeout, async {
        let mut responses = Vec::with_capacity(prepared.len());
        for one in prepared {
            responses.push(operation::execute(state, &request_id, &caller, one).await);
        }
        responses
    })
    .await;
    let Ok(mut responses) = executed else {
        tracing::warn!(timeout = ?state.request_timeout, "request cancelled at its deadline");
        let refusal = error_response(
            &format!(
                "the request did not finish within {} and was cancelled",
                humantime::format_duration(state.request_timeout)
            ),
            Code::ServiceUnavailable,
        );
        let mut response = protocol::respond(media, BatchResponse::Single(refusal), usize::MAX);
        *response.status_mut() = StatusCode::GATEWAY_TIMEOUT;
        return response;
    };
    let response = match (single, responses.pop()) {
        (true, Some(response)) => BatchResponse::Single(response),
        (_, last) => {
            responses.extend(last);
            BatchResponse::Batch(responses)
        }
    };
    protocol::respond(media, response, state.max_response_bytes)
}

/// What one charge to the rate limits takes.
#[derive(Clone, Copy, Debug, Default)]
struct Charge {
    /// Root fields, from the address's and the user's budgets of requests.
    fields: u32,
    /// Sign-ins, sign-ups and refreshes, from the address's budget of them.
    auth: u32,
    /// Estimated cost, from the address's and the user's budgets of cost.
    cost: u32,
}

/// Charges the request's address and user; the limit it is over, if any.
async fn charge(
    state: &AppState,
    address: Option<std::net::IpAddr>,
    user: Option<&str>,
    charge: Charge,
) -> Result<(), rate_limit::Limited> {
    let limits = &state.rate_limits;
    let metrics = state.backends.metrics();
    if let Some(address) = address {
        if let Err(limited) = limits.check_address(address, charge.fields).await {
            tracing::info!(%address, "rate limited (address)");
            metrics.rate_limited("address");
            return Err(limited);
        }
        if let Err(limited) = limits.check_auth(address, charge.auth).await {
            tracing::info!(%address, "rate limited (sign-in, sign-up and refresh)");
            metrics.rate_limited("auth");
            return Err(limited);
        }
        if let Err(limited) = limits.check_address_cost(address, charge.cost).await {
            tracing::info!(%address, "rate limited (cost, address)");
            metrics.rate_limited("cost");
            return Err(limited);
        }
    }
    if let Some(user) = user {
        if let Err(limited) = limits.check_user(user, charge.fields).await {
            tracing::info!(user_id = %user, "rate limited (user)");
            metrics.rate_limited("user");
            return Err(limited);
        }
        if let Err(limited) = limits.check_user_cost(user, charge.cost).await {
            tracing::info!(user_id = %user, "rate limited (cost, user)");
            metrics.rate_limited("cost");
            return Err(limited);
        }
    }
    Ok(())
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
        // Subscribers would miss events while the hub is not watching them.
        Ok(()) if !state.live.hub.is_connected() => (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: not yet receiving hangout-core's events",
        )
            .into_response(),
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

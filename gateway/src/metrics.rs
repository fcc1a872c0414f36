//! The gateway's Prometheus metrics, in the App's own registry: HTTP requests by route, GraphQL
//! operations by name, type and outcome with their latency and backend fan-out, backend gRPC
//! calls, dataloader batch sizes, rate-limit rejections, and how WebSockets close.
//!
//! Labels are bounded: routes are the router's own patterns, methods a closed list, outcomes
//! the contract's error codes, and operation names only those of operations that passed
//! validation, at most [`MAX_OPERATION_NAMES`] of them (later ones count as `other`).

use std::{
    collections::HashSet,
    sync::{Mutex, PoisonError},
    time::Duration,
};

use prometheus_client::encoding::EncodeLabelSet;
use telemetry::{
    grpc::{RpcMetrics, Side},
    metrics::{Counter, Family, LatencyFamily, Registry, count_family, latency_family},
};

/// How many distinct operation names get their own label.
pub const MAX_OPERATION_NAMES: usize = 200;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    route: &'static str,
    method: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    operation: String,
    r#type: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    operation: String,
    r#type: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LoaderLabels {
    loader: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ScopeLabels {
    scope: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CloseLabels {
    /// The close code sent, or `none` for a socket dropped without a close frame (the
    /// client went away, stopped answering pings, or stopped reading).
    code: &'static str,
}

/// Every close code the socket loop sends (`http/live.rs`), as labels.
const CLOSE_CODES: [(u16, &str); 7] = [
    (1001, "1001"),
    (4400, "4400"),
    (4401, "4401"),
    (4403, "4403"),
    (4408, "4408"),
    (4409, "4409"),
    (4429, "4429"),
];

/// Everything the gateway measures.
#[derive(Debug)]
pub struct GatewayMetrics {
    pub rpc: RpcMetrics,
    http: Family<HttpLabels, Counter>,
    operations: Family<OutcomeLabels, Counter>,
    operation_seconds: LatencyFamily<OperationLabels>,
    backend_calls: LatencyFamily<OperationLabels>,
    batch_size: LatencyFamily<LoaderLabels>,
    rate_limited: Family<ScopeLabels, Counter>,
    /// Limit decisions taken by this instance alone because Redis was unreachable.
    pub shared_limit_fallbacks: Counter,
    /// Subscriptions the event hub cut off because their queue was full.
    pub subscribers_cut_off: Counter,
    socket_closes: Family<CloseLabels, Counter>,
    names: Mutex<HashSet<String>>,
}

/// One finished GraphQL operation.
#[derive(Debug)]
pub struct OperationRecord<'a> {
    /// The operation name as sent (bounded here).
    pub name: Option<&'a str>,
    /// `query` or `mutation`; `None` when the document was refused before that was known.
    pub kind: Option<&'static str>,
    /// `ok`, or the first error's `extensions.code`.
    pub outcome: &'static str,
    pub elapsed: Duration,
    pub backend_calls: u64,
}

/// The outcome label of an error code: itself when it is one of the contract's
/// ([`Code`](crate::graphql::error::Code)), `OTHER` otherwise.
#[must_use]
pub fn outcome_of(code: Option<&str>) -> &'static str {
    code.and_then(crate::graphql::error::Code::parse)
        .map_or("OTHER", crate::graphql::error::Code::as_str)
}

/// The route label of a request path: the router's pattern, or `unmatched`.
#[must_use]
pub fn route_of(path: &str) -> &'static str {
    match path {
        "/graphql" => "/graphql",
        "/graphiql" => "/graphiql",
        "/healthz" => "/healthz",
        "/readyz" => "/readyz",
        "/.well-known/jwks.json" => "/.well-known/jwks.json",
        _ if path.starts_with("/graphiql/assets/") => "/graphiql/assets/{*path}",
        _ => "unmatched",
    }
}

fn method_of(method: &axum::http::Method) -> &'static str {
    match *method {
        axum::http::Method::GET => "GET",
        axum::http::Method::POST => "POST",
        axum::http::Method::HEAD => "HEAD",
        axum::http::Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

impl GatewayMetrics {
    /// Registers every metric in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            rpc: RpcMetrics::register(registry, Side::Client),
            http: Family::default(),
            operations: Family::default(),
            operation_seconds: latency_family(),
            backend_calls: count_family(),
            batch_size: count_family(),
            rate_limited: Family::default(),
            shared_limit_fallbacks: Counter::default(),
            subscribers_cut_off: Counter::default(),
            socket_closes: Family::default(),
            names: Mutex::default(),
        };
        registry.register(
            "gateway_http_requests",
            "HTTP requests by route, method and status",
            metrics.http.clone(),
        );
        registry.register(
            "gateway_graphql_operations",
            "GraphQL operations by name, type and outcome (ok or the first error code)",
            metrics.operations.clone(),
        );
        registry.register(
            "gateway_graphql_operation_duration_seconds",
            "GraphQL operation latency in seconds, from parsing to the response",
            metrics.operation_seconds.clone(),
        );
        registry.register(
            "gateway_backend_calls_per_operation",
            "Backend gRPC calls one GraphQL operation made",
            metrics.backend_calls.clone(),
        );
        registry.register(
            "gateway_dataloader_batch_size",
            "Keys per dataloader batch, by loader",
            metrics.batch_size.clone(),
        );
        // Known label sets start at zero, so that rates and dashboards work from the start.
        for scope in ["address", "user", "auth", "cost", "in_flight"] {
            metrics
                .rate_limited
                .get_or_create(&ScopeLabels { scope })
                .inc_by(0);
        }
        registry.register(
            "gateway_shared_limit_fallbacks",
            "Rate-limit decisions taken by this instance alone because Redis (GATEWAY_REDIS_URL) was unreachable",
            metrics.shared_limit_fallbacks.clone(),
        );
        registry.register(
            "gateway_rate_limited",
            "Requests refused by a rate limit, by scope (address, user, auth: sign-in, sign-up and refresh per address; cost: estimated cost per address or user; in_flight: shed at the cap of requests in flight)",
            metrics.rate_limited.clone(),
        );
        registry.register(
            "gateway_subscribers_cut_off",
            "Subscriptions ended because the client did not take their events in time (the socket then closes with 4429)",
            metrics.subscribers_cut_off.clone(),
        );
        registry.register(
            "gateway_socket_closes",
            "WebSockets closed, by the close code sent (none: dropped without a close frame)",
            metrics.socket_closes.clone(),
        );
        metrics
    }

    /// Records a WebSocket's end: the close code sent, if any.
    pub fn socket_closed(&self, code: Option<u16>) {
        let code = code.map_or("none", |code| {
            CLOSE_CODES
                .iter()
                .find(|(known, _)| *known == code)
                .map_or("other", |(_, label)| *label)
        });
        self.socket_closes
            .get_or_create(&CloseLabels { code })
            .inc();
    }

    /// Records one HTTP request.
    pub fn http_request(&self, path: &str, method: &axum::http::Method, status: u16) {
        self.http
            .get_or_create(&HttpLabels {
                route: route_of(path),
                method: method_of(method),
                status,
            })
            .inc();
    }

    /// Records one GraphQL operation.
    pub fn operation(&self, record: &OperationRecord<'_>) {
        let operation = self.operation_label(record);
        let kind = record.kind.unwrap_or("unknown");
        self.operations
            .get_or_create(&OutcomeLabels {
                operation: operation.clone(),
                r#type: kind,
                outcome: record.outcome,
            })
            .inc();
        let labels = OperationLabels {
            operation,
            r#type: kind,
        };
        self.operation_seconds
            .get_or_create(&labels)
            .observe(record.elapsed.as_secs_f64());
        #[allow(clippy::cast_precision_loss)] // call counts are small
        self.backend_calls
            .get_or_create(&labels)
            .observe(record.backend_calls as f64);
    }

    /// The label of an operation's name: `anonymous`, the name when the operation was valid and
    /// the name is among the first [`MAX_OPERATION_NAMES`], else `other`.
    fn operation_label(&self, record: &OperationRecord<'_>) -> String {
        let Some(name) = record.name.filter(|name| !name.is_empty()) else {
            return "anonymous".to_owned();
        };
        use crate::graphql::error::Code;
        let valid = record.kind.is_some()
            && !matches!(
                Code::parse(record.outcome),
                Some(Code::GraphqlParseFailed | Code::GraphqlValidationFailed)
            );
        if !valid || name.len() > 64 {
            return "other".to_owned();
        }
        let mut names = self.names.lock().unwrap_or_else(PoisonError::into_inner);
        if names.contains(name) {
            return name.to_owned();
        }
        if names.len() < MAX_OPERATION_NAMES {
            names.insert(name.to_owned());
            return name.to_owned();
        }
        "other".to_owned()
    }

    /// Records the size of one dataloader batch.
    pub fn batch_loaded(&self, loader: &'static str, keys: usize) {
        #[allow(clippy::cast_precision_loss)] // batch sizes are small
        self.batch_size
            .get_or_create(&LoaderLabels { loader })
            .observe(keys as f64);
    }

    /// Records a rate-limit refusal.
    pub fn rate_limited(&self, scope: &'static str) {
        self.rate_limited
            .get_or_create(&ScopeLabels { scope })
            .inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(name: &str) -> OperationRecord<'_> {
        OperationRecord {
            name: Some(name),
            kind: Some("query"),
            outcome: "ok",
            elapsed: Duration::ZERO,
            backend_calls: 0,
        }
    }

    #[test]
    fn operation_names_are_bounded() {
        let metrics = GatewayMetrics::register(&mut Registry::default());
        for index in 0..MAX_OPERATION_NAMES {
            let name = format!("Op{index}");
            assert_eq!(metrics.operation_label(&record(&name)), name);
        }
        assert_eq!(metrics.operation_label(&record("OneTooMany")), "other");
        assert_eq!(metrics.operation_label(&record("Op7")), "Op7");
    }

    #[test]
    fn invalid_operations_do_not_claim_a_name() {
        let metrics = GatewayMetrics::register(&mut Registry::default());
        let mut refused = record("Garbage");
        refused.outcome = "GRAPHQL_VALIDATION_FAILED";
        assert_eq!(metrics.operation_label(&refused), "other");
        refused.kind = None;
        refused.outcome = "ok";
        assert_eq!(metrics.operation_label(&refused), "other");
        assert_eq!(
            metrics.operation_label(&OperationRecord {
                name: None,
                ..record("")
            }),
            "anonymous"
        );
    }

    #[test]
    fn routes_and_codes_are_closed_sets() {
        assert_eq!(
            route_of("/graphiql/assets/app.js"),
            "/graphiql/assets/{*path}"
        );
        assert_eq!(route_of("/users/42"), "unmatched");
        assert_eq!(outcome_of(Some("NOT_FOUND")), "NOT_FOUND");
        assert_eq!(outcome_of(Some("made-up")), "OTHER");
    }
}

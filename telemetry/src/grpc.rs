//! gRPC request metrics and the server-side span: one tower layer in front of a tonic server
//! opens the span of each incoming call (child of the caller's `traceparent`), and counts the
//! call once, when its response body ends (or is dropped), with the final `grpc-status`.
//! [`RpcMetrics`] is shared with the gateway's clients, which record the same figures.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
    time::{Duration, Instant},
};

use http_body::{Body, Frame, SizeHint};
use prometheus_client::{encoding::EncodeLabelSet, metrics::counter::Counter, registry::Registry};
use tracing::Instrument as _;

use crate::metrics::{Family, LatencyFamily, latency_family};

/// Labels of a finished call.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    grpc_service: String,
    grpc_method: String,
    grpc_code: &'static str,
}

/// Labels of a call's latency.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabels {
    grpc_service: String,
    grpc_method: String,
}

/// Which end of the call the figures describe.
#[derive(Clone, Copy, Debug)]
pub enum Side {
    Server,
    Client,
}

/// Calls by service, method and status code, and their latency.
#[derive(Clone, Debug)]
pub struct RpcMetrics {
    handled: Family<CallLabels, Counter>,
    seconds: LatencyFamily<MethodLabels>,
}

impl RpcMetrics {
    /// Registers `grpc_{server,client}_handled_total` and `grpc_{server,client}_handling_seconds`.
    pub fn register(registry: &mut Registry, side: Side) -> Self {
        let metrics = Self {
            handled: Family::default(),
            seconds: latency_family(),
        };
        let (handled, seconds) = match side {
            Side::Server => ("grpc_server_handled", "grpc_server_handling_seconds"),
            Side::Client => ("grpc_client_handled", "grpc_client_handling_seconds"),
        };
        registry.register(
            handled,
            "Completed gRPC calls by service, method and status code",
            metrics.handled.clone(),
        );
        registry.register(
            seconds,
            "gRPC call latency in seconds, until the last byte of the response",
            metrics.seconds.clone(),
        );
        metrics
    }

    /// Records one finished call.
    pub fn observe(&self, service: &str, method: &str, code: tonic::Code, elapsed: Duration) {
        self.handled
            .get_or_create(&CallLabels {
                grpc_service: service.to_owned(),
                grpc_method: method.to_owned(),
                grpc_code: code_name(code),
            })
            .inc();
        self.seconds
            .get_or_create(&MethodLabels {
                grpc_service: service.to_owned(),
                grpc_method: method.to_owned(),
            })
            .observe(elapsed.as_secs_f64());
    }
}

/// The canonical name of a status code, as gRPC documents it.
#[must_use]
pub fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code;
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// The tower layer for a tonic server: `Server::builder().layer(ServerLayer::new(..))`.
#[derive(Clone, Debug)]
pub struct ServerLayer {
    metrics: RpcMetrics,
    services: &'static [&'static str],
}

impl ServerLayer {
    /// Observes calls into `metrics`. Only `services` (fully qualified names) are labelled by
    /// name; calls to anything else, and to unknown methods, are labelled `unknown`, so a
    /// client cannot grow the label set.
    #[must_use]
    pub fn new(metrics: RpcMetrics, services: &'static [&'static str]) -> Self {
        Self { metrics, services }
    }
}

impl<S> tower_layer::Layer<S> for ServerLayer {
    type Service = ServerService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ServerService {
            inner,
            layer: self.clone(),
        }
    }
}

/// See [`ServerLayer`].
#[derive(Clone, Debug)]
pub struct ServerService<S> {
    inner: S,
    layer: ServerLayer,
}

const UNKNOWN: &str = "unknown";

/// `/pkg.Service/Method` split into a known service and its method, or `unknown`.
fn service_and_method(path: &str, services: &[&'static str]) -> (&'static str, String) {
    let mut parts = path.trim_start_matches('/').splitn(2, '/');
    let (service, method) = (parts.next().unwrap_or_default(), parts.next());
    match (services.iter().find(|known| **known == service), method) {
        (Some(known), Some(method))
            if !method.is_empty()
                && method.len() <= 64
                && method.bytes().all(|byte| byte.is_ascii_alphanumeric()) =>
        {
            (known, method.to_owned())
        }
        _ => (UNKNOWN, UNKNOWN.to_owned()),
    }
}

fn status_of(headers: &http::HeaderMap) -> Option<tonic::Code> {
    headers
        .get("grpc-status")
        .and_then(|value| value.to_str().ok())
        .and_then(|text| text.parse::<i32>().ok())
        .map(tonic::Code::from_i32)
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, ReqBody, ResBody> tower_service::Service<http::Request<ReqBody>> for ServerService<S>
where
    S: tower_service::Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<ObservedBody<ResBody>>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(context)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let (service, method) = service_and_method(request.uri().path(), self.layer.services);
        let request_id = request
            .headers()
            .get(proto_request_id())
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default();
        let span = tracing::info_span!(
            "grpc.server",
            otel.name = %format_args!("{service}/{method}"),
            otel.kind = "server",
            rpc.system = "grpc",
            rpc.service = service,
            rpc.method = %method,
            rpc.grpc.status_code = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
            request_id,
            trace_id = tracing::field::Empty,
        );
        crate::propagation::set_parent_from(&span, request.headers());
        let started = Instant::now();
        let future = {
            let _entered = span.enter();
            self.inner.call(request)
        };
        let metrics = self.layer.metrics.clone();
        Box::pin(
            async move {
                let response = future.await?;
                let (parts, body) = response.into_parts();
                let observation = Observation {
                    metrics,
                    service,
                    method,
                    started,
                    code: status_of(&parts.headers),
                    span: tracing::Span::current(),
                };
                Ok(http::Response::from_parts(
                    parts,
                    ObservedBody {
                        inner: body,
                        observation: Some(observation),
                    },
                ))
            }
            .instrument(span),
        )
    }
}

/// The metadata key of the request id (kept here to avoid a dependency on `proto`).
fn proto_request_id() -> &'static str {
    "x-request-id"
}

struct Observation {
    metrics: RpcMetrics,
    service: &'static str,
    method: String,
    started: Instant,
    code: Option<tonic::Code>,
    span: tracing::Span,
}

impl Observation {
    /// Records the call with its final code: from the headers (trailers-only errors), else
    /// the trailers, else `default` (body failed or was dropped unfinished).
    fn finish(self, default: tonic::Code) {
        let code = self.code.unwrap_or(default);
        let method = if code == tonic::Code::Unimplemented {
            UNKNOWN
        } else {
            &self.method
        };
        let service = if code == tonic::Code::Unimplemented {
            UNKNOWN
        } else {
            self.service
        };
        let elapsed = self.started.elapsed();
        self.metrics.observe(service, method, code, elapsed);
        self.span.record("rpc.grpc.status_code", code as i32);
        let _entered = self.span.enter();
        let elapsed_ms = elapsed.as_secs_f64() * 1000.0;
        if is_server_fault(code) {
            self.span.record("otel.status_code", "ERROR");
            tracing::warn!(code = code_name(code), elapsed_ms, "rpc failed");
        } else {
            tracing::debug!(code = code_name(code), elapsed_ms, "rpc finished");
        }
    }
}

/// Codes that mean the service failed rather than the caller.
fn is_server_fault(code: tonic::Code) -> bool {
    use tonic::Code;
    matches!(
        code,
        Code::Unknown
            | Code::DeadlineExceeded
            | Code::Unimplemented
            | Code::Internal
            | Code::Unavailable
            | Code::DataLoss
    )
}

pin_project_lite::pin_project! {
    /// A response body that records its call when it ends or is dropped.
    pub struct ObservedBody<B> {
        #[pin]
        inner: B,
        observation: Option<Observation>,
    }

    impl<B> PinnedDrop for ObservedBody<B> {
        fn drop(this: Pin<&mut Self>) {
            if let Some(observation) = this.project().observation.take() {
                // The client went away before the end of the response.
                observation.finish(tonic::Code::Cancelled);
            }
        }
    }
}

impl<B: Body> Body for ObservedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let polled = this.inner.poll_frame(context);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(trailers) = frame.trailers_ref()
                    && let Some(observation) = this.observation.as_mut()
                    && observation.code.is_none()
                {
                    observation.code = status_of(trailers);
                }
            }
            Poll::Ready(Some(Err(_))) => {
                if let Some(observation) = this.observation.take() {
                    observation.finish(tonic::Code::Internal);
                }
            }
            Poll::Ready(None) => {
                if let Some(observation) = this.observation.take() {
                    observation.finish(tonic::Code::Unknown);
                }
            }
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERVICES: &[&str] = &["hangout.v1.UserService"];

    #[test]
    fn known_methods_keep_their_names() {
        assert_eq!(
            service_and_method("/hangout.v1.UserService/GetUsers", SERVICES),
            ("hangout.v1.UserService", "GetUsers".to_owned())
        );
    }

    #[test]
    fn anything_else_is_unknown() {
        for path in [
            "/evil.Service/GetUsers",
            "/hangout.v1.UserService/",
            "/hangout.v1.UserService/Get/Users",
            "/hangout.v1.UserService/Get%20Users",
            "/",
            "",
        ] {
            assert_eq!(
                service_and_method(path, SERVICES),
                ("unknown", "unknown".to_owned()),
                "{path}"
            );
        }
    }
}

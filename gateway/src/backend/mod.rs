//! Typed gRPC clients of hangout-core and file-core over mutual TLS.
//!
//! Invariants: every call carries the caller's user id (when there is one), the request id and
//! a deadline, set in one place ([`Client::request`]); every failure becomes a
//! [`BackendError`] in one place ([`error`]), which logs internal causes with the request id.
//! Channels connect lazily and reconnect by themselves, so the gateway starts while a backend
//! is down and recovers when it returns.

/// Defines one typed method per RPC: the call goes through [`Client::call`], which adds the
/// caller, request id, deadline and trace context, opens the span, records the metrics and maps
/// the status through [`BackendError::from_status`].
macro_rules! rpc {
    ($(#[$doc:meta])* $name:ident, $field:ident, $rpc:literal, $request:ty => $response:ty) => {
        $(#[$doc])*
        ///
        /// # Errors
        /// The call's failure, mapped to a [`BackendError`].
        pub async fn $name(
            &self,
            call: &$crate::backend::CallContext,
            message: $request,
        ) -> Result<$response, $crate::backend::BackendError> {
            let mut client = self.$field.clone();
            self.client
                .call(call, $rpc, message, |request| async move {
                    client.$name(request).await
                })
                .await
        }
    };
}

pub mod error;
pub mod file;
pub mod hangout;

use std::{
    collections::BTreeMap,
    future::Future,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};
use tracing::Instrument as _;

pub use error::BackendError;

use crate::{config::Config, metrics::GatewayMetrics};

/// On whose behalf, and as part of which request, a backend call runs.
#[derive(Clone, Debug)]
pub struct CallContext {
    /// The verified user id, absent for sign-up, sign-in and token refresh.
    pub user_id: Option<String>,
    /// Follows one user action across processes.
    pub request_id: String,
    /// Calls made so far with this context (shared by its clones).
    calls: Arc<AtomicU64>,
}

impl CallContext {
    #[must_use]
    pub fn new(user_id: Option<String>, request_id: String) -> Self {
        Self {
            user_id,
            request_id,
            calls: Arc::default(),
        }
    }

    /// Backend calls made with this context and its clones.
    #[must_use]
    pub fn calls_made(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }
}

/// Counts backend calls, in total and per RPC; tests use it to prove that resolving has no
/// N+1.
#[derive(Clone, Debug, Default)]
pub struct CallCounter(Arc<Mutex<BTreeMap<&'static str, u64>>>);

impl CallCounter {
    /// Calls issued so far.
    #[must_use]
    pub fn get(&self) -> u64 {
        self.by_rpc().values().sum()
    }

    /// Calls issued so far, per RPC.
    #[must_use]
    pub fn by_rpc(&self) -> BTreeMap<&'static str, u64> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn increment(&self, rpc: &'static str) {
        *self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(rpc)
            .or_default() += 1;
    }
}

/// Why the clients could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("cannot load TLS material")]
    Tls(#[from] proto::tls::TlsError),
    #[error("invalid backend endpoint {url}")]
    Endpoint {
        url: String,
        #[source]
        source: tonic::transport::Error,
    },
}

/// What every typed client shares: its channel, deadline, the call counter and the metrics.
#[derive(Clone, Debug)]
pub(crate) struct Client {
    /// The backend's name (`hangout-core`, `file-core`).
    service: &'static str,
    /// The protobuf package of its services (`hangout.v1`).
    package: &'static str,
    channel: Channel,
    deadline: Duration,
    counter: CallCounter,
    metrics: Arc<GatewayMetrics>,
}

impl Client {
    /// Wraps `message` with the caller identity, the request id, the deadline and the trace
    /// context of `span`, and counts the call.
    fn request<T>(
        &self,
        call: &CallContext,
        rpc: &'static str,
        message: T,
        span: &tracing::Span,
    ) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        proto::metadata::set_caller(
            request.metadata_mut(),
            call.user_id.as_deref(),
            Some(&call.request_id),
        );
        telemetry::propagation::inject(span, request.metadata_mut());
        request.set_timeout(self.deadline);
        self.counter.increment(rpc);
        call.calls.fetch_add(1, Ordering::Relaxed);
        request
    }

    /// Makes one call (`rpc` is `Service/Method`) through `send`, inside a client span, and
    /// records its outcome and latency.
    async fn call<Req, Res, Fut>(
        &self,
        call: &CallContext,
        rpc: &'static str,
        message: Req,
        send: impl FnOnce(tonic::Request<Req>) -> Fut,
    ) -> Result<Res, BackendError>
    where
        Fut: Future<Output = Result<tonic::Response<Res>, tonic::Status>>,
    {
        let (service, method) = rpc.split_once('/').unwrap_or((rpc, ""));
        let service = if service == "Health" {
            "grpc.health.v1.Health".to_owned()
        } else {
            format!("{}.{service}", self.package)
        };
        let span = tracing::info_span!(
            "grpc.client",
            otel.name = %format_args!("{service}/{method}"),
            otel.kind = "client",
            rpc.system = "grpc",
            rpc.service = %service,
            rpc.method = method,
            rpc.grpc.status_code = tracing::field::Empty,
            peer.service = self.service,
            request_id = %call.request_id,
        );
        let request = self.request(call, rpc, message, &span);
        let started = Instant::now();
        let result = send(request).instrument(span.clone()).await;
        let code = result
            .as_ref()
            .map_or_else(tonic::Status::code, |_| tonic::Code::Ok);
        self.metrics
            .rpc
            .observe(&service, method, code, started.elapsed());
        span.record("rpc.grpc.status_code", code as i32);
        result
            .map(tonic::Response::into_inner)
            .map_err(|status| BackendError::from_status(self.service, rpc, call, status))
    }

    /// Asks the standard gRPC health service whether the whole server is serving.
    async fn check_health(&self, call: &CallContext) -> Result<(), BackendError> {
        let mut client = tonic_health::pb::health_client::HealthClient::new(self.channel.clone());
        let request = HealthCheckRequest {
            service: String::new(),
        };
        let response = self
            .call(call, "Health/Check", request, |request| async move {
                client.check(request).await
            })
            .await?;
        if response.status == ServingStatus::Serving as i32 {
            Ok(())
        } else {
            Err(BackendError::Unavailable {
                service: self.service,
            })
        }
    }
}

/// Both services' clients. Cheap to clone: one pointer, since every request's loader holds a
/// copy (the clients themselves, nine tonic clients with their channels, take about a
/// kilobyte, which each idle subscription kept before).
#[derive(Clone, Debug)]
pub struct Backends(Arc<Clients>);

/// What [`Backends`] shares.
#[derive(Debug)]
pub struct Clients {
    pub hangout: hangout::HangoutCore,
    pub file: file::FileCore,
    counter: CallCounter,
    metrics: Arc<GatewayMetrics>,
}

impl std::ops::Deref for Backends {
    type Target = Clients;

    fn deref(&self) -> &Clients {
        &self.0
    }
}

impl Backends {
    /// Builds lazily connecting mTLS channels to both services.
    ///
    /// # Errors
    /// When the TLS files are unusable or a URL is malformed.
    pub fn new(config: &Config, metrics: Arc<GatewayMetrics>) -> Result<Self, SetupError> {
        let counter = CallCounter::default();
        let client = |service: &'static str, package: &'static str, url: &str, tls_name: &str| {
            let tls = proto::tls::client_config(&config.tls_files(), tls_name)?;
            let endpoint_error = |source| SetupError::Endpoint {
                url: url.to_owned(),
                source,
            };
            let channel = Endpoint::from_shared(url.to_owned())
                .map_err(endpoint_error)?
                .tls_config(tls)
                .map_err(endpoint_error)?
                .connect_timeout(config.backend_connect_timeout)
                .timeout(config.backend_timeout)
                .connect_lazy();
            Ok::<_, SetupError>(Client {
                service,
                package,
                channel,
                deadline: config.backend_timeout,
                counter: counter.clone(),
                metrics: Arc::clone(&metrics),
            })
        };
        let hangout = hangout::HangoutCore::new(client(
            "hangout-core",
            "hangout.v1",
            &config.hangout_core_url,
            &config.hangout_core_tls_name,
        )?);
        let file = file::FileCore::new(client(
            "file-core",
            "file.v1",
            &config.file_core_url,
            &config.file_core_tls_name,
        )?);
        Ok(Self(Arc::new(Clients {
            hangout,
            file,
            counter,
            metrics,
        })))
    }

    /// The gateway's metrics.
    #[must_use]
    pub fn metrics(&self) -> &GatewayMetrics {
        &self.metrics
    }

    /// The counter of calls issued through these clients.
    #[must_use]
    pub fn counter(&self) -> CallCounter {
        self.counter.clone()
    }

    /// Whether both services answer their gRPC health check with SERVING.
    ///
    /// # Errors
    /// The first service that does not.
    pub async fn check_ready(&self, call: &CallContext) -> Result<(), BackendError> {
        let (hangout, file) = tokio::join!(
            self.hangout.client.check_health(call),
            self.file.client.check_health(call)
        );
        hangout.and(file)
    }
}

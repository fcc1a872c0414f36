//! Typed gRPC clients of hangout-core and file-core over mutual TLS.
//!
//! Invariants: every call carries the caller's user id (when there is one), the request id and
//! a deadline, set in one place ([`Client::request`]); every failure becomes a
//! [`BackendError`] in one place ([`error`]), which logs internal causes with the request id.
//! Channels connect lazily and reconnect by themselves, so the gateway starts while a backend
//! is down and recovers when it returns.

/// Defines one typed method per RPC: build the request through [`Client::request`], call, map
/// the status through [`BackendError::from_status`], inside a span naming the RPC.
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
            use tracing::Instrument as _;
            let mut client = self.$field.clone();
            let request = self.client.request(call, $rpc, message);
            async move {
                client
                    .$name(request)
                    .await
                    .map(tonic::Response::into_inner)
                    .map_err(|status| {
                        $crate::backend::BackendError::from_status(
                            self.client.service,
                            $rpc,
                            call,
                            status,
                        )
                    })
            }
            .instrument(tracing::debug_span!("backend", rpc = $rpc, request_id = %call.request_id))
            .await
        }
    };
}

pub mod error;
pub mod file;
pub mod hangout;

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};

pub use error::BackendError;

use crate::config::Config;

/// On whose behalf, and as part of which request, a backend call runs.
#[derive(Clone, Debug)]
pub struct CallContext {
    /// The verified user id, absent for sign-up, sign-in and token refresh.
    pub user_id: Option<String>,
    /// Follows one user action across processes.
    pub request_id: String,
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

/// What every typed client shares: its channel, deadline and the call counter.
#[derive(Clone, Debug)]
pub(crate) struct Client {
    service: &'static str,
    channel: Channel,
    deadline: Duration,
    counter: CallCounter,
}

impl Client {
    /// Wraps `message` with the caller identity, the request id and the deadline, and counts
    /// the call.
    fn request<T>(&self, call: &CallContext, rpc: &'static str, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        proto::metadata::set_caller(
            request.metadata_mut(),
            call.user_id.as_deref(),
            Some(&call.request_id),
        );
        request.set_timeout(self.deadline);
        self.counter.increment(rpc);
        request
    }

    /// Asks the standard gRPC health service whether the whole server is serving.
    async fn check_health(&self, call: &CallContext) -> Result<(), BackendError> {
        let mut client = tonic_health::pb::health_client::HealthClient::new(self.channel.clone());
        let request = self.request(
            call,
            "Health/Check",
            HealthCheckRequest {
                service: String::new(),
            },
        );
        let response = client.check(request).await.map_err(|status| {
            BackendError::from_status(self.service, "Health/Check", call, status)
        })?;
        if response.into_inner().status == ServingStatus::Serving as i32 {
            Ok(())
        } else {
            Err(BackendError::Unavailable {
                service: self.service,
            })
        }
    }
}

/// Both services' clients. Cheap to clone: channels are shared.
#[derive(Clone, Debug)]
pub struct Backends {
    pub hangout: hangout::HangoutCore,
    pub file: file::FileCore,
    counter: CallCounter,
}

impl Backends {
    /// Builds lazily connecting mTLS channels to both services.
    ///
    /// # Errors
    /// When the TLS files are unusable or a URL is malformed.
    pub fn new(config: &Config) -> Result<Self, SetupError> {
        let counter = CallCounter::default();
        let client = |service: &'static str, url: &str, tls_name: &str| {
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
                channel,
                deadline: config.backend_timeout,
                counter: counter.clone(),
            })
        };
        let hangout = hangout::HangoutCore::new(client(
            "hangout-core",
            &config.hangout_core_url,
            &config.hangout_core_tls_name,
        )?);
        let file = file::FileCore::new(client(
            "file-core",
            &config.file_core_url,
            &config.file_core_tls_name,
        )?);
        Ok(Self {
            hangout,
            file,
            counter,
        })
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

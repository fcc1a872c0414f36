//! Start-up and serving: [`App::build`] validates, loads keys, sets up the backend clients and
//! binds; [`App::run_until`] serves until a shutdown signal, then lets in-flight requests
//! finish.

use std::{future::Future, net::SocketAddr, sync::Arc};

use crate::events::EventHub;

use telemetry::metrics::{MetricsServer, Registry};
use tokio::net::TcpListener;

use crate::{
    auth::{KeyError, Tokens},
    backend::{self, Backends, CallCounter},
    config::{Config, ConfigError},
    graphql,
    http::{self, AppState},
    metrics::GatewayMetrics,
    shared_limits::SharedLimits,
};

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("invalid configuration")]
    Config(#[from] ConfigError),
    #[error("cannot load the token signing keys")]
    Keys(#[from] KeyError),
    #[error("cannot set up the backend clients")]
    Backend(#[from] backend::SetupError),
    #[error("cannot load the trusted documents")]
    TrustedDocuments(#[from] http::ManifestError),
    #[error("invalid GATEWAY_REDIS_URL")]
    Redis(#[from] crate::shared_limits::InvalidUrl),
    #[error("cannot serve metrics")]
    Metrics(#[from] telemetry::metrics::BindError),
    #[error(transparent)]
    Bind(#[from] service_kit::listen::BindError),
}

/// Why serving stopped with an error.
#[derive(Debug, thiserror::Error)]
#[error("HTTP server failed")]
pub struct ServeError(#[from] std::io::Error);

/// A built, bound, not yet serving gateway.
pub struct App {
    listener: TcpListener,
    local_addr: SocketAddr,
    router: axum::Router,
    counter: CallCounter,
    registry: Arc<Registry>,
    metrics_server: MetricsServer,
    limits: http::ServerLimits,
    /// The event hub and what feeds it.
    hub: EventHub,
    hangout: crate::backend::hangout::HangoutCore,
    /// The broker's URL and exchange, when events come through one.
    broker: Option<(String, String)>,
    stopping: tokio::sync::watch::Sender<bool>,
}

impl App {
    /// Validates the configuration, loads the signing keys, builds lazily connecting backend
    /// clients and binds the listener (port 0 picks a free port; see [`App::local_addr`]).
    /// The backends need not be up yet: `/readyz` says when they are.
    ///
    /// # Errors
    /// Any [`StartupError`].
    pub async fn build(config: Config) -> Result<Self, StartupError> {
        config.validate()?;
        let tokens = Arc::new(Tokens::from_config(&config)?);
        let mut registry = Registry::default();
        let metrics = Arc::new(GatewayMetrics::register(&mut registry));
        let shared = match &config.redis_url {
            Some(url) => Some(SharedLimits::new(
                url.expose(),
                metrics.shared_limit_fallbacks.clone(),
            )?),
            None => None,
        };
        let hub = EventHub::counting_cut_offs(metrics.subscribers_cut_off.clone());
        let backends = Backends::new(&config, metrics)?;
        let counter = backends.counter();
        let (stopping, stopped) = tokio::sync::watch::channel(false);
        let hangout = backends.hangout.clone();
        let schema = graphql::build(
            backends.clone(),
            Arc::clone(&tokens),
            graphql::SchemaOptions {
                introspection: config.introspection(),
                max_directives: config.edge.max_directives,
                sign_in_max_failures: config.edge.sign_in_max_failures,
                sign_in_failure_window: config.edge.sign_in_failure_window,
            },
            shared.clone(),
            hub.clone(),
        );
        let state = Arc::new(AppState::new(
            schema,
            backends,
            tokens,
            config.graphiql().then(|| config.graphiql_assets.clone()),
            &config.edge,
            shared,
            http::Live::new(hub.clone(), stopped),
        )?);
        let (listener, local_addr) = service_kit::listen::bind(config.listen_addr).await?;
        let metrics_server = MetricsServer::bind(config.metrics_addr).await?;
        Ok(Self {
            listener,
            local_addr,
            router: http::router(
                state,
                http::cors_layer(&config.edge.cors_origins, config.dev_mode),
            ),
            counter,
            registry: Arc::new(registry),
            metrics_server,
            limits: http::ServerLimits {
                max_connections: config.edge.max_connections,
                header_read_timeout: config.edge.header_read_timeout,
                drain: config.edge.shutdown_drain,
            },
            hub,
            hangout,
            broker: config
                .broker_url
                .as_ref()
                .map(|url| (url.expose().to_owned(), config.broker_exchange.clone())),
            stopping,
        })
    }

    /// The bound address.
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The bound address of the metrics endpoint.
    #[must_use]
    pub fn metrics_addr(&self) -> SocketAddr {
        self.metrics_server.local_addr()
    }

    /// Counts the backend calls this gateway makes (for tests and diagnostics).
    #[must_use]
    pub fn backend_calls(&self) -> CallCounter {
        self.counter.clone()
    }

    /// Serves until `shutdown` completes, then stops accepting and lets in-flight requests
    /// finish, for at most `GATEWAY_SHUTDOWN_DRAIN`.
    ///
    /// # Errors
    /// When the server fails.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        let metrics_server = tokio::spawn(
            self.metrics_server
                .serve(Arc::clone(&self.registry), std::future::pending()),
        );
        let hub = match self.broker {
            Some((url, exchange)) => {
                let queue = format!("gateway.{}", uuid::Uuid::now_v7());
                tokio::spawn(self.hub.clone().run_broker(
                    url,
                    exchange,
                    queue,
                    self.stopping.subscribe(),
                ))
            }
            None => tokio::spawn(
                self.hub
                    .clone()
                    .run(self.hangout, self.stopping.subscribe()),
            ),
        };
        let stopping = self.stopping;
        let shutdown = async move {
            shutdown.await;
            // Sockets close with 1001 and the hub stops, while requests drain.
            let _ = stopping.send(true);
        };
        let served = http::serve(self.listener, self.router, self.limits, shutdown).await;
        let _ = hub.await;
        metrics_server.abort();
        served?;
        tracing::info!("stopped");
        Ok(())
    }
}

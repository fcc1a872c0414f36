//! Start-up and serving: [`App::build`] connects, migrates and binds; [`App::run_until`] serves
//! until a shutdown signal, then drains.

use std::{future::Future, net::SocketAddr, sync::Arc};

use proto::hangout::v1::{
    activity_service_server::ActivityServiceServer, auth_service_server::AuthServiceServer,
    event_service_server::EventServiceServer, file_report_service_server::FileReportServiceServer,
    hangout_service_server::HangoutServiceServer,
    membership_service_server::MembershipServiceServer, memory_service_server::MemoryServiceServer,
    user_service_server::UserServiceServer,
};
use proto::tls::RequireClient;
use telemetry::metrics::{MetricsServer, Registry};
use tokio::net::TcpListener;
use tonic::transport::Server;

use crate::{
    config::{Config, ConfigError},
    domain::{Service, Settings, error::DomainError, invitation::CodeKey},
    grpc::{
        ActivityGrpc, AuthGrpc, EventGrpc, FileReportGrpc, HangoutGrpc, MembershipGrpc, MemoryGrpc,
        SharedService, UserGrpc,
    },
    metrics::Metrics,
    store::{OpenError, SqlStore},
};

/// The gRPC services, as the health service reports them (`""` is the whole server).
const SERVICES: [&str; 9] = [
    "",
    "hangout.v1.FileReportService",
    "hangout.v1.AuthService",
    "hangout.v1.MembershipService",
    "hangout.v1.EventService",
    "hangout.v1.UserService",
    "hangout.v1.HangoutService",
    "hangout.v1.ActivityService",
    "hangout.v1.MemoryService",
];

/// The services whose calls are labelled by name in the metrics.
const MEASURED_SERVICES: &[&str] = &[
    "hangout.v1.AuthService",
    "hangout.v1.UserService",
    "hangout.v1.HangoutService",
    "hangout.v1.ActivityService",
    "hangout.v1.MemoryService",
    "hangout.v1.FileReportService",
    "grpc.health.v1.Health",
];

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("invalid configuration")]
    Config(#[from] ConfigError),
    #[error("cannot load TLS material")]
    Tls(#[from] proto::tls::TlsError),
    #[error("cannot open the database")]
    Store(#[from] OpenError),
    #[error("cannot prepare the domain")]
    Domain(#[from] DomainError),
    #[error("cannot serve metrics")]
    Metrics(#[from] telemetry::metrics::BindError),
    /// A secret file could not be read; named by its variable, never by its content.
    #[error("cannot read the file named by {variable}")]
    Secret {
        variable: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Bind(#[from] service_kit::listen::BindError),
}

/// Why serving stopped with an error.
#[derive(Debug, thiserror::Error)]
#[error("gRPC server failed")]
pub struct ServeError(#[from] tonic::transport::Error);

/// A built, bound, not yet serving hangout-core.
pub struct App {
    listener: TcpListener,
    local_addr: SocketAddr,
    tls: Arc<rustls::ServerConfig>,
    /// Who may call the gateway's services, and who `FileReportService`.
    gateway_clients: RequireClient,
    file_core_clients: RequireClient,
    store: SqlStore,
    service: SharedService,
    config: Config,
    metrics: Metrics,
    registry: Arc<Registry>,
    metrics_server: MetricsServer,
}

impl App {
    /// Validates the configuration, loads TLS material, opens and migrates the database, and
    /// binds the listener (port 0 picks a free port; see [`App::local_addr`]).
    ///
    /// # Errors
    /// Any [`StartupError`].
    pub async fn build(config: Config) -> Result<Self, StartupError> {
        config.validate()?;
        // The handshake admits every kind of client; each service then serves its own kind.
        let (gateway, file_core) = (config.gateway_clients(), config.file_core_clients());
        let tls = proto::tls::server_config(
            &config.tls_files(),
            &[&gateway[..], &file_core[..]].concat(),
        )?;
        let gateway_clients = RequireClient::new(&gateway)?;
        let file_core_clients = RequireClient::new(&file_core)?;
        let store = SqlStore::open(
            config.database_url.expose(),
            config.database_max_connections,
        )
        .await?;
        tracing::info!(backend = ?store.backend(), "database migrated");
        let mut registry = Registry::default();
        let metrics = Metrics::register(&mut registry, &store);
        let settings = Settings {
            refresh_token_ttl: config.refresh_token_ttl,
            upload_window: config.upload_window,
            pending_grace: config.pending_grace,
            event_retention: config.event_retention,
            hashing_queue: config.hashing_queue,
            // The service's TLS private key is the one secret every deployment already keeps;
            // the codes' key is derived from it for that purpose alone.
            code_key: CodeKey::derive(&std::fs::read(&config.tls_key).map_err(|source| {
                StartupError::Secret {
                    variable: "HANGOUT_CORE_TLS_KEY",
                    source,
                }
            })?),
        };
        let service = Arc::new(Service::new(store.clone(), settings)?);
        let (listener, local_addr) = service_kit::listen::bind(config.listen_addr).await?;
        let metrics_server = MetricsServer::bind(config.metrics_addr).await?;
        Ok(Self {
            listener,
            local_addr,
            tls,
            gateway_clients,
            file_core_clients,
            store,
            service,
            config,
            metrics,
            registry: Arc::new(registry),
            metrics_server,
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

    /// Serves until `shutdown` completes, then reports NOT_SERVING, stops accepting, lets
    /// in-flight calls finish and closes the database.
    ///
    /// # Errors
    /// When the server fails.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), ServeError> {
        let (health, health_service) = telemetry::health::Health::start(&SERVICES).await;
        // While the probe finds the database down, calls fail fast and health says NOT_SERVING.
        let database = self.store.database().clone();
        let probe = tokio::spawn(async move { database.probe_forever().await });
        let availability = self.store.database().availability();
        let sweeper = tokio::spawn(sweep_forever(
            Arc::clone(&self.service),
            self.metrics.clone(),
            self.config.sweep_interval,
        ));
        let metrics_server = tokio::spawn(
            self.metrics_server
                .serve(Arc::clone(&self.registry), std::future::pending()),
        );
        let (stopping, stopped) = tokio::sync::watch::channel(false);
        let relay = self.config.broker_url.as_ref().map(|url| {
            tokio::spawn(crate::broker::relay_forever(
                Arc::clone(&self.service),
                url.expose().to_owned(),
                self.config.broker_exchange.clone(),
                stopped.clone(),
            ))
        });
        let draining = async {
            // Health follows the database until shutdown, then stays NOT_SERVING.
            tokio::select! {
                () = shutdown => {}
                () = health.follow(availability) => {}
            }
            tracing::info!("shutting down: draining in-flight calls");
            // Event streams never end by themselves: they end now, so the drain can finish.
            let _ = stopping.send(true);
            health.stopping().await;
        };
        let service = &self.service;
        let gateway = &self.gateway_clients;
        let result = Server::builder()
            .layer(telemetry::grpc::ServerLayer::new(
                self.metrics.rpc.clone(),
                MEASURED_SERVICES,
            ))
            .add_service(health_service)
            .add_service(AuthServiceServer::with_interceptor(
                AuthGrpc::new(Arc::clone(service)),
                gateway.clone(),
            ))
            .add_service(UserServiceServer::with_interceptor(
                UserGrpc::new(Arc::clone(service)),
                gateway.clone(),
            ))
            .add_service(MembershipServiceServer::with_interceptor(
                MembershipGrpc::new(Arc::clone(service)),
                gateway.clone(),
            ))
            .add_service(HangoutServiceServer::with_interceptor(
                HangoutGrpc::new(Arc::clone(service)),
                gateway.clone(),
            ))
            .add_service(ActivityServiceServer::with_interceptor(
                ActivityGrpc::new(Arc::clone(service)),
                gateway.clone(),
            ))
            .add_service(MemoryServiceServer::with_interceptor(
                MemoryGrpc::new(Arc::clone(service)),
                gateway.clone(),
            ))
            .add_service(EventServiceServer::with_interceptor(
                EventGrpc::new(Arc::clone(service), stopped),
                gateway.clone(),
            ))
            .add_service(FileReportServiceServer::with_interceptor(
                FileReportGrpc::new(Arc::clone(service)),
                self.file_core_clients.clone(),
            ))
            .serve_with_incoming_shutdown(proto::tls::incoming(self.listener, self.tls), draining)
            .await;
        sweeper.abort();
        probe.abort();
        if let Some(relay) = relay {
            let _ = relay.await;
        }
        metrics_server.abort();
        self.store.close().await;
        tracing::info!("stopped");
        Ok(result?)
    }
}

/// Removes expired PENDING memories every `interval`; failures are logged and retried.
async fn sweep_forever(service: SharedService, metrics: Metrics, interval: std::time::Duration) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        match service.sweep_expired_memories().await {
            Ok(0) => {}
            Ok(removed) => {
                metrics.swept(removed);
                tracing::info!(removed, "swept unconfirmed memories");
            }
            Err(error) => {
                tracing::error!(
                    error = %telemetry::ErrorChain(&error),
                    "sweeping memories failed"
                );
            }
        }
        match service.prune_events().await {
            Ok(0) => {}
            Ok(pruned) => tracing::info!(pruned, "pruned events past their retention"),
            Err(error) => {
                tracing::error!(
                    error = %telemetry::ErrorChain(&error),
                    "pruning events failed"
                );
            }
        }
    }
}

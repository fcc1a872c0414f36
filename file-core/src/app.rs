//! Start-up and serving: [`App::build`] starts the embedded S3 server when configured, prepares
//! the bucket, connects and migrates the database and binds; [`App::run_until`] serves until a
//! shutdown signal, then drains.

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use proto::file::v1::file_service_server::FileServiceServer;
use telemetry::metrics::{MetricsServer, Registry};
use tokio::net::TcpListener;
use tonic::transport::Server;
use tonic_health::ServingStatus;

use crate::{
    config::{Config, ConfigError, S3Mode},
    domain::Service,
    embedded_s3::{EmbeddedS3, EmbeddedS3Error},
    grpc::{FileGrpc, SharedService},
    metrics::Metrics,
    s3::{BucketError, S3Objects},
    store::{OpenError, SqlStore},
};

/// The gRPC service names reported by the health service.
const SERVICES: [&str; 2] = ["", "file.v1.FileService"];

/// The services whose calls are labelled by name in the metrics.
const MEASURED_SERVICES: &[&str] = &["file.v1.FileService", "grpc.health.v1.Health"];

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("invalid configuration")]
    Config(#[from] ConfigError),
    #[error("cannot load TLS material")]
    Tls(#[from] proto::tls::TlsError),
    #[error("cannot start the embedded S3 server")]
    EmbeddedS3(#[from] EmbeddedS3Error),
    #[error("cannot prepare object storage")]
    Bucket(#[from] BucketError),
    #[error("cannot open the database")]
    Store(#[from] OpenError),
    #[error("cannot serve metrics")]
    Metrics(#[from] telemetry::metrics::BindError),
    #[error("cannot bind {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// Why serving stopped with an error.
#[derive(Debug, thiserror::Error)]
#[error("gRPC server failed")]
pub struct ServeError(#[from] tonic::transport::Error);

/// A built, bound, not yet serving file-core.
pub struct App {
    listener: TcpListener,
    local_addr: SocketAddr,
    tls: Arc<rustls::ServerConfig>,
    store: SqlStore,
    service: SharedService,
    embedded_s3: Option<EmbeddedS3>,
    sweep_interval: Duration,
    metrics: Metrics,
    registry: Arc<Registry>,
    metrics_server: MetricsServer,
}

impl App {
    /// Validates the configuration, loads TLS material, starts the embedded S3 server (in
    /// embedded mode), creates the bucket when missing (embedded mode, or when asked), opens and
    /// migrates the database, and binds the listener (port 0 picks a free port; see
    /// [`App::local_addr`]).
    ///
    /// # Errors
    /// Any [`StartupError`].
    pub async fn build(config: Config) -> Result<Self, StartupError> {
        config.validate()?;
        let tls = proto::tls::server_config(&config.tls_files(), &config.allowed_clients)?;
        let embedded_s3 = match config.s3_mode {
            S3Mode::Embedded => {
                let server = EmbeddedS3::start(
                    &config.s3_embedded_dir,
                    config.s3_embedded_addr,
                    &config.embedded_credentials(),
                )
                .await?;
                tracing::info!(endpoint = %server.endpoint(), "embedded S3 server started");
                Some(server)
            }
            S3Mode::External => None,
        };
        let s3_settings = config.s3_settings(embedded_s3.as_ref().map(EmbeddedS3::endpoint));
        let mut registry = Registry::default();
        let metrics = Metrics::register(&mut registry);
        let objects = S3Objects::new(&s3_settings, metrics.s3.clone());
        if embedded_s3.is_some() || config.s3_create_bucket {
            objects.ensure_bucket(&s3_settings.region).await?;
        }
        let store = SqlStore::open(&config.database_url, config.database_max_connections).await?;
        tracing::info!(backend = ?store.backend(), "database migrated");
        Metrics::watch_pools(&mut registry, &store);
        let service = Arc::new(Service::new(
            store.clone(),
            objects,
            config.domain_settings(),
        ));
        let listener = TcpListener::bind(config.listen_addr)
            .await
            .map_err(|source| StartupError::Bind {
                addr: config.listen_addr,
                source,
            })?;
        let local_addr = listener.local_addr().map_err(|source| StartupError::Bind {
            addr: config.listen_addr,
            source,
        })?;
        let metrics_server = MetricsServer::bind(config.metrics_addr).await?;
        Ok(Self {
            listener,
            local_addr,
            tls,
            store,
            service,
            embedded_s3,
            sweep_interval: config.sweep_interval,
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

    /// The embedded S3 server's endpoint, in embedded mode.
    #[must_use]
    pub fn embedded_s3_endpoint(&self) -> Option<String> {
        self.embedded_s3.as_ref().map(EmbeddedS3::endpoint)
    }

    /// Serves until `shutdown` completes, then reports NOT_SERVING, stops accepting, lets
    /// in-flight calls finish, stops the sweeper and the embedded S3 server and closes the
    /// database.
    ///
    /// # Errors
    /// When the server fails.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), ServeError> {
        let (reporter, health) = tonic_health::server::health_reporter();
        for name in SERVICES {
            reporter
                .set_service_status(name, ServingStatus::Serving)
                .await;
        }
        let sweeper = tokio::spawn(sweep_forever(
            Arc::clone(&self.service),
            self.metrics.clone(),
            self.sweep_interval,
        ));
        let metrics_server = tokio::spawn(
            self.metrics_server
                .serve(Arc::clone(&self.registry), std::future::pending()),
        );
        let draining = async {
            shutdown.await;
            tracing::info!("shutting down: draining in-flight calls");
            for name in SERVICES {
                reporter
                    .set_service_status(name, ServingStatus::NotServing)
                    .await;
            }
        };
        let result = Server::builder()
            .layer(telemetry::grpc::ServerLayer::new(
                self.metrics.rpc.clone(),
                MEASURED_SERVICES,
            ))
            .add_service(health)
            .add_service(FileServiceServer::new(FileGrpc::new(
                Arc::clone(&self.service),
                self.metrics.uploads.clone(),
            )))
            .serve_with_incoming_shutdown(proto::tls::incoming(self.listener, self.tls), draining)
            .await;
        sweeper.abort();
        metrics_server.abort();
        if let Some(server) = self.embedded_s3 {
            server.shutdown().await;
        }
        self.store.close().await;
        tracing::info!("stopped");
        Ok(result?)
    }
}

/// Every `interval`: claims expired PENDING files and removes claimed files with their objects.
/// Failures are logged and retried at the next tick.
async fn sweep_forever(service: SharedService, metrics: Metrics, interval: Duration) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        match service.sweep().await {
            Ok(report) if report == Default::default() => {}
            Ok(report) => {
                metrics.swept(report);
                tracing::info!(
                    expired = report.expired,
                    removed = report.removed,
                    failed = report.failed,
                    "swept files"
                );
            }
            Err(error) => {
                tracing::error!(
                    error = &error as &dyn std::error::Error,
                    "sweeping files failed"
                );
            }
        }
    }
}

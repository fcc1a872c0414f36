//! Start-up and serving: [`App::build`] starts the embedded S3 server when configured, prepares
//! the bucket, connects and migrates the database and binds; [`App::run_until`] serves (and
//! sweeps, and processes photos) until a shutdown signal, then drains. In the worker role
//! nothing is served: the process only runs photo workers.

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use proto::file::v1::file_service_server::FileServiceServer;
use telemetry::metrics::{MetricsServer, Registry};
use tokio::net::TcpListener;
use tonic::transport::Server;

use crate::{
    config::{Config, ConfigError, Role, S3Mode},
    domain::Service,
    embedded_s3::{EmbeddedS3, EmbeddedS3Error},
    grpc::{FileGrpc, SharedService},
    hangout_core::{Cleanup, ClientError, HangoutCore},
    metrics::Metrics,
    render::ImageRenderer,
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
    #[error("cannot set up the client of hangout-core")]
    HangoutCore(#[from] ClientError),
    #[error("cannot start the embedded S3 server")]
    EmbeddedS3(#[from] EmbeddedS3Error),
    #[error("cannot prepare object storage")]
    Bucket(#[from] BucketError),
    #[error("cannot open the database")]
    Store(#[from] OpenError),
    #[error("cannot serve metrics")]
    Metrics(#[from] telemetry::metrics::BindError),
    #[error(transparent)]
    Bind(#[from] service_kit::listen::BindError),
}

/// Why serving stopped with an error.
#[derive(Debug, thiserror::Error)]
#[error("gRPC server failed")]
pub struct ServeError(#[from] tonic::transport::Error);

/// The bound gRPC side of the service role.
struct Grpc {
    listener: TcpListener,
    local_addr: SocketAddr,
    tls: Arc<rustls::ServerConfig>,
}

/// A built, bound, not yet serving file-core.
pub struct App {
    /// `None` in the worker role.
    grpc: Option<Grpc>,
    store: SqlStore,
    renderer: ImageRenderer,
    processing_workers: u32,
    processing_poll: Duration,
    /// RabbitMQ's URL and job queue, when jobs are delivered through it.
    broker: Option<(String, String)>,
    service: SharedService,
    /// hangout-core, told when processing ends; in the service role (worker processes record
    /// reports, the service relays them).
    hangout_core: Option<HangoutCore>,
    cleanup: Cleanup,
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
        let serving = config.role == Role::Service;
        let tls = if serving {
            Some(proto::tls::server_config(
                &config.tls_files(),
                &config.allowed_clients,
            )?)
        } else {
            None
        };
        let hangout_core = if serving {
            Some(HangoutCore::new(
                &config.hangout_core_url,
                &config.hangout_core_tls_name,
                &config.tls_files(),
            )?)
        } else {
            None
        };
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
        let cors_origins = config.s3_cors_origins();
        if embedded_s3.is_none() && !cors_origins.is_empty() {
            objects.apply_cors(&cors_origins).await?;
        }
        let store = SqlStore::open(
            config.database_url.expose(),
            config.database_max_connections,
        )
        .await?;
        tracing::info!(backend = ?store.backend(), "database migrated");
        Metrics::watch_pools(&mut registry, &store);
        let service = Arc::new(Service::new(
            store.clone(),
            objects,
            config.domain_settings(),
        ));
        let grpc = match tls {
            Some(tls) => {
                let (listener, local_addr) = service_kit::listen::bind(config.listen_addr).await?;
                Some(Grpc {
                    listener,
                    local_addr,
                    tls,
                })
            }
            None => None,
        };
        let metrics_server = MetricsServer::bind(config.metrics_addr).await?;
        Ok(Self {
            grpc,
            store,
            renderer: ImageRenderer::new(config.render_limits()),
            processing_workers: config.processing_workers,
            processing_poll: config.processing_poll,
            broker: config
                .broker()
                .map(|url| (url.to_owned(), config.broker_queue.clone())),
            service,
            hangout_core,
            cleanup: Cleanup {
                poll: config.deletion_poll,
                reconcile_every: config.reconcile_interval,
                settle: config.reconcile_settle,
            },
            embedded_s3,
            sweep_interval: config.sweep_interval,
            metrics,
            registry: Arc::new(registry),
            metrics_server,
        })
    }

    /// The bound gRPC address; `None` in the worker role.
    #[must_use]
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.grpc.as_ref().map(|grpc| grpc.local_addr)
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
        let metrics_server = tokio::spawn(
            self.metrics_server
                .serve(Arc::clone(&self.registry), std::future::pending()),
        );
        let (stop_broker, stopping) = tokio::sync::watch::channel(false);
        let mut workers = tokio::task::JoinSet::new();
        for _ in 0..self.processing_workers {
            match &self.broker {
                Some((url, queue)) => workers.spawn(crate::broker::consume_forever(
                    Arc::clone(&self.service),
                    self.renderer,
                    self.metrics.clone(),
                    url.clone(),
                    queue.clone(),
                    stopping.clone(),
                )),
                None => workers.spawn(process_forever(
                    Arc::clone(&self.service),
                    self.renderer,
                    self.metrics.clone(),
                    self.processing_poll,
                )),
            };
        }
        if let (Some((url, queue)), Some(_)) = (&self.broker, &self.grpc) {
            workers.spawn(crate::broker::publish_forever(
                Arc::clone(&self.service),
                url.clone(),
                queue.clone(),
                stopping.clone(),
            ));
        }
        let Some(grpc) = self.grpc else {
            tracing::info!(workers = self.processing_workers, "processing photos");
            shutdown.await;
            tracing::info!("shutting down: stopping the workers");
            // A job cut here keeps its lease until it runs out, then it is done again.
            let _ = stop_broker.send(true);
            workers.shutdown().await;
            metrics_server.abort();
            self.store.close().await;
            tracing::info!("stopped");
            return Ok(());
        };
        if let Some(hangout_core) = self.hangout_core {
            workers.spawn(crate::hangout_core::clean_up_forever(
                Arc::clone(&self.service),
                hangout_core.clone(),
                self.metrics.clone(),
                self.cleanup,
                stopping.clone(),
            ));
            workers.spawn(crate::hangout_core::report_forever(
                Arc::clone(&self.service),
                hangout_core,
                self.metrics.clone(),
                self.processing_poll,
                stopping.clone(),
            ));
        }
        let (health, health_service) = telemetry::health::Health::start(&SERVICES).await;
        // While the probe finds the database down, calls fail fast and health says NOT_SERVING.
        let database = self.store.database().clone();
        let probe = tokio::spawn(async move { database.probe_forever().await });
        let availability = self.store.database().availability();
        let sweeper = tokio::spawn(sweep_forever(
            Arc::clone(&self.service),
            self.metrics.clone(),
            self.sweep_interval,
        ));
        let draining = async {
            // Health follows the database until shutdown, then stays NOT_SERVING.
            tokio::select! {
                () = shutdown => {}
                () = health.follow(availability) => {}
            }
            tracing::info!("shutting down: draining in-flight calls");
            health.stopping().await;
        };
        let result = Server::builder()
            .layer(telemetry::grpc::ServerLayer::new(
                self.metrics.rpc.clone(),
                MEASURED_SERVICES,
            ))
            .add_service(health_service)
            .add_service(FileServiceServer::new(FileGrpc::new(
                Arc::clone(&self.service),
                self.metrics.uploads.clone(),
            )))
            .serve_with_incoming_shutdown(proto::tls::incoming(grpc.listener, grpc.tls), draining)
            .await;
        sweeper.abort();
        probe.abort();
        let _ = stop_broker.send(true);
        workers.shutdown().await;
        metrics_server.abort();
        if let Some(server) = self.embedded_s3 {
            server.shutdown().await;
        }
        self.store.close().await;
        tracing::info!("stopped");
        Ok(result?)
    }
}

/// Processes jobs one after another while there are any; then waits for this process to queue
/// one, or `poll` (for jobs queued by other processes). Failures are logged; the job's lease
/// runs out and it is done again.
async fn process_forever(
    service: SharedService,
    renderer: ImageRenderer,
    metrics: Metrics,
    poll: Duration,
) {
    loop {
        match service.process_next(&renderer).await {
            Ok(Some((file, report))) => {
                metrics.processed(report);
                tracing::info!(%file, outcome = report.as_str(), "processed a photo");
                continue;
            }
            Ok(None) => {}
            Err(error) => {
                tracing::error!(
                    error = %telemetry::ErrorChain(&error),
                    "processing photos failed"
                );
            }
        }
        let _ = tokio::time::timeout(poll, service.jobs_queued()).await;
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
                    error = %telemetry::ErrorChain(&error),
                    "sweeping files failed"
                );
            }
        }
    }
}

//! Configuration from environment variables (or the matching flags), validated at start-up.
//! `hangout-core --help` lists every variable with its default.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

pub use service_kit::config::ConfigError;
use service_kit::config::{self as checks, SecretUrl};

/// Everything hangout-core needs to start.
/// `Debug` shows no secret: the URLs are [`SecretUrl`]s.
#[derive(Clone, Debug, clap::Parser)]
#[command(
    name = "hangout-core",
    version,
    about = "gRPC service for users, sessions, hangouts, activities and memory records"
)]
pub struct Config {
    /// Address to serve gRPC (mutual TLS) on.
    #[arg(
        long,
        env = "HANGOUT_CORE_LISTEN_ADDR",
        default_value = "127.0.0.1:50051"
    )]
    pub listen_addr: SocketAddr,

    /// `sqlite:<path>` (embedded) or `mysql://user:password@host/database`.
    #[arg(
        long,
        env = "HANGOUT_CORE_DATABASE_URL",
        default_value = "sqlite:data/hangout-core.db",
        hide_env_values = true
    )]
    pub database_url: SecretUrl,

    /// Most database connections in the pool.
    #[arg(
        long,
        env = "HANGOUT_CORE_DATABASE_MAX_CONNECTIONS",
        default_value_t = 10
    )]
    pub database_max_connections: u32,

    /// PEM of the internal CA that signs every client.
    #[arg(long, env = "HANGOUT_CORE_TLS_CA", default_value = ".certs/ca.pem")]
    pub tls_ca: PathBuf,

    /// PEM certificate chain of this server.
    #[arg(
        long,
        env = "HANGOUT_CORE_TLS_CERT",
        default_value = ".certs/hangout-core.pem"
    )]
    pub tls_cert: PathBuf,

    /// PEM private key of this server.
    #[arg(
        long,
        env = "HANGOUT_CORE_TLS_KEY",
        default_value = ".certs/hangout-core.key"
    )]
    pub tls_key: PathBuf,

    /// Comma-separated names a client certificate must carry (as a DNS SAN) to be served the
    /// gateway's services (every service but `FileReportService`).
    #[arg(
        long,
        env = "HANGOUT_CORE_ALLOWED_CLIENTS",
        default_value = "gateway",
        value_delimiter = ','
    )]
    pub allowed_clients: Vec<String>,

    /// Comma-separated names of file-core's client certificates: served `FileReportService`
    /// (file-core's reports of processed photos) and nothing else; empty for none.
    #[arg(
        long,
        env = "HANGOUT_CORE_FILE_CORE_CLIENTS",
        default_value = "file-core",
        value_delimiter = ','
    )]
    pub file_core_clients: Vec<String>,

    /// How long a refresh token stays valid (e.g. `30days`).
    #[arg(long, env = "HANGOUT_CORE_REFRESH_TOKEN_TTL", default_value = "30days", value_parser = humantime::parse_duration)]
    pub refresh_token_ttl: Duration,

    /// How long a client has to upload a memory's bytes (e.g. `15m`).
    #[arg(long, env = "HANGOUT_CORE_UPLOAD_WINDOW", default_value = "15m", value_parser = humantime::parse_duration)]
    pub upload_window: Duration,

    /// How long after its upload window an unconfirmed memory is removed.
    #[arg(long, env = "HANGOUT_CORE_PENDING_GRACE", default_value = "1h", value_parser = humantime::parse_duration)]
    pub pending_grace: Duration,

    /// Password hashes (sign-up, sign-in) that may wait for a hashing thread; beyond it they
    /// are refused at once (RESOURCE_EXHAUSTED, TOO_MANY_REQUESTS at the gateway) instead of
    /// queueing behind a flood. Each hash takes tens of milliseconds of one core.
    #[arg(long, env = "HANGOUT_CORE_HASHING_QUEUE", default_value_t = 64)]
    pub hashing_queue: usize,

    /// How long live-update events are kept after they happened, so a gateway or relay that
    /// was away (a restart, a broker outage) resumes without losing any.
    #[arg(long, env = "HANGOUT_CORE_EVENT_RETENTION", default_value = "24h", value_parser = humantime::parse_duration)]
    pub event_retention: Duration,

    /// RabbitMQ to relay live-update events to (`amqp://user:password@host:5672/vhost`), so
    /// any number of gateways get them from the broker; unset, gateways read them from
    /// `EventService.WatchEvents` alone (the embedded default).
    #[arg(long, env = "HANGOUT_CORE_BROKER_URL")]
    pub broker_url: Option<SecretUrl>,

    /// The broker's exchange for the events (a durable fanout exchange).
    #[arg(long, env = "HANGOUT_CORE_BROKER_EXCHANGE", default_value = proto::broker::DEFAULT_EXCHANGE)]
    pub broker_exchange: String,

    /// How often unconfirmed memories are swept (and events past their retention pruned).
    #[arg(long, env = "HANGOUT_CORE_SWEEP_INTERVAL", default_value = "5m", value_parser = humantime::parse_duration)]
    pub sweep_interval: Duration,

    /// `text` or `json`. Levels come from `RUST_LOG` (default `info`). Traces are exported
    /// over OTLP/HTTP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set.
    #[arg(long, env = "HANGOUT_CORE_LOG_FORMAT", default_value = "text")]
    pub log_format: telemetry::LogFormat,

    /// Address of the internal Prometheus endpoint (`GET /metrics`); keep it off the public
    /// network.
    #[arg(
        long,
        env = "HANGOUT_CORE_METRICS_ADDR",
        default_value = "127.0.0.1:9181"
    )]
    pub metrics_addr: SocketAddr,

    /// Threads serving requests; one per CPU when unset. Services that share a machine do
    /// better with their share of its CPUs than with one thread per CPU each: idle threads
    /// that steal each other's work cost wake-ups on every request (BENCHMARKS.md, item 25).
    #[arg(long, env = "HANGOUT_CORE_WORKER_THREADS")]
    pub worker_threads: Option<std::num::NonZeroUsize>,
}

impl Config {
    /// Checks what parsing cannot: URL scheme, files present, sane durations.
    ///
    /// # Errors
    /// The first problem found, naming its variable.
    pub fn validate(&self) -> Result<(), ConfigError> {
        sql_pools::check_settings(
            ("HANGOUT_CORE_DATABASE_URL", self.database_url.expose()),
            (
                "HANGOUT_CORE_DATABASE_MAX_CONNECTIONS",
                self.database_max_connections,
            ),
        )?;
        checks::require_tls_files([
            ("HANGOUT_CORE_TLS_CA", self.tls_ca.as_path()),
            ("HANGOUT_CORE_TLS_CERT", self.tls_cert.as_path()),
            ("HANGOUT_CORE_TLS_KEY", self.tls_key.as_path()),
        ])?;
        if self
            .allowed_clients
            .iter()
            .all(|name| name.trim().is_empty())
        {
            return Err(ConfigError::new(
                "HANGOUT_CORE_ALLOWED_CLIENTS",
                "must name at least one client",
            ));
        }
        let file_core = self.file_core_clients();
        if let Some(name) = self
            .gateway_clients()
            .into_iter()
            .find(|name| file_core.contains(name))
        {
            return Err(ConfigError::new(
                "HANGOUT_CORE_FILE_CORE_CLIENTS",
                format!(
                    "{name} is also in HANGOUT_CORE_ALLOWED_CLIENTS; a client is one or the other"
                ),
            ));
        }
        checks::require_amqp(
            "HANGOUT_CORE_BROKER_URL",
            self.broker_url.as_ref().map(SecretUrl::expose),
        )?;
        checks::require_nonzero_durations([
            ("HANGOUT_CORE_REFRESH_TOKEN_TTL", self.refresh_token_ttl),
            ("HANGOUT_CORE_SWEEP_INTERVAL", self.sweep_interval),
            ("HANGOUT_CORE_EVENT_RETENTION", self.event_retention),
        ])?;
        Ok(())
    }

    /// The mTLS files.
    #[must_use]
    pub fn tls_files(&self) -> proto::tls::TlsFiles {
        proto::tls::TlsFiles {
            ca: self.tls_ca.clone(),
            cert: self.tls_cert.clone(),
            key: self.tls_key.clone(),
        }
    }

    /// The client names of the gateway's services, blanks left out.
    #[must_use]
    pub fn gateway_clients(&self) -> Vec<String> {
        names(&self.allowed_clients)
    }

    /// The client names of `FileReportService`, blanks left out.
    #[must_use]
    pub fn file_core_clients(&self) -> Vec<String> {
        names(&self.file_core_clients)
    }
}

fn names(list: &[String]) -> Vec<String> {
    list.iter()
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    #[test]
    fn database_passwords_are_redacted() {
        let config = Config::parse_from([
            "hangout-core",
            "--database-url",
            "mysql://app:s3cret@db/hangout",
        ]);
        assert!(!format!("{config:?}").contains("s3cret"));
    }

    #[test]
    fn defaults_parse_and_unknown_schemes_are_refused() {
        let mut config = Config::parse_from(["hangout-core"]);
        assert_eq!(config.allowed_clients, vec!["gateway".to_owned()]);
        config.database_url = "postgres://x".into();
        let problem = config.validate().expect_err("postgres is not supported");
        assert_eq!(problem.variable, "HANGOUT_CORE_DATABASE_URL");
    }

    #[test]
    fn a_client_name_is_of_one_kind_only() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::parse_from(["hangout-core"]);
        for (path, name) in [
            (&mut config.tls_ca, "ca.pem"),
            (&mut config.tls_cert, "cert.pem"),
            (&mut config.tls_key, "key.pem"),
        ] {
            *path = dir.path().join(name);
            std::fs::write(&*path, "").unwrap();
        }
        assert_eq!(config.file_core_clients(), vec!["file-core".to_owned()]);
        assert!(config.validate().is_ok());
        config.file_core_clients = vec![" gateway ".to_owned()];
        let problem = config.validate().expect_err("gateway is both kinds");
        assert_eq!(problem.variable, "HANGOUT_CORE_FILE_CORE_CLIENTS");
        config.file_core_clients = vec![String::new()];
        assert!(config.validate().is_ok());
        assert!(config.file_core_clients().is_empty());
    }
}

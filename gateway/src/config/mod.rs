//! Configuration from environment variables (or the matching flags), validated at start-up.
//! `gateway --help` lists every variable with its default.

use std::{fmt, net::SocketAddr, path::PathBuf, time::Duration};

mod edge;

pub use edge::{EdgeSettings, Rate, RateLimit, RequestLog, validate_cors_origins};
pub use service_kit::config::ConfigError;
use service_kit::config::{self as checks, SecretUrl};

/// Everything the gateway needs to start.
#[derive(Clone, clap::Parser)]
#[command(
    name = "gateway",
    version,
    about = "The public GraphQL API over hangout-core and file-core"
)]
pub struct Config {
    /// Address to serve HTTP (GraphQL, GraphiQL, health, JWKS) on.
    #[arg(long, env = "GATEWAY_LISTEN_ADDR", default_value = "127.0.0.1:8080")]
    pub listen_addr: SocketAddr,

    /// Development mode: an ephemeral signing key is generated when none is configured.
    #[arg(long, env = "GATEWAY_DEV_MODE")]
    pub dev_mode: bool,

    /// gRPC endpoint of hangout-core (mutual TLS).
    #[arg(
        long,
        env = "GATEWAY_HANGOUT_CORE_URL",
        default_value = "https://127.0.0.1:50051"
    )]
    pub hangout_core_url: String,

    /// Name hangout-core's server certificate must carry.
    #[arg(
        long,
        env = "GATEWAY_HANGOUT_CORE_TLS_NAME",
        default_value = "hangout-core"
    )]
    pub hangout_core_tls_name: String,

    /// gRPC endpoint of file-core (mutual TLS).
    #[arg(
        long,
        env = "GATEWAY_FILE_CORE_URL",
        default_value = "https://127.0.0.1:50052"
    )]
    pub file_core_url: String,

    /// Name file-core's server certificate must carry.
    #[arg(long, env = "GATEWAY_FILE_CORE_TLS_NAME", default_value = "file-core")]
    pub file_core_tls_name: String,

    /// PEM of the internal CA that signs both services.
    #[arg(long, env = "GATEWAY_TLS_CA", default_value = ".certs/ca.pem")]
    pub tls_ca: PathBuf,

    /// PEM client certificate of the gateway.
    #[arg(long, env = "GATEWAY_TLS_CERT", default_value = ".certs/gateway.pem")]
    pub tls_cert: PathBuf,

    /// PEM private key of the gateway's client certificate.
    #[arg(long, env = "GATEWAY_TLS_KEY", default_value = ".certs/gateway.key")]
    pub tls_key: PathBuf,

    /// Deadline of every backend call (e.g. `10s`).
    #[arg(long, env = "GATEWAY_BACKEND_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub backend_timeout: Duration,

    /// How long connecting to a backend may take (e.g. `3s`).
    #[arg(long, env = "GATEWAY_BACKEND_CONNECT_TIMEOUT", default_value = "3s", value_parser = humantime::parse_duration)]
    pub backend_connect_timeout: Duration,

    /// PEM (PKCS#8) Ed25519 private key that signs access tokens. Required outside dev mode.
    #[arg(long, env = "GATEWAY_JWT_SIGNING_KEY")]
    pub jwt_signing_key: Option<PathBuf>,

    /// Comma-separated PEM Ed25519 public keys still accepted for verification (retired
    /// signing keys during a rotation).
    #[arg(long, env = "GATEWAY_JWT_VERIFICATION_KEYS", value_delimiter = ',')]
    pub jwt_verification_keys: Vec<PathBuf>,

    /// `iss` of issued tokens, required on presented ones.
    #[arg(long, env = "GATEWAY_JWT_ISSUER", default_value = "hangout-planner")]
    pub jwt_issuer: String,

    /// `aud` of issued tokens, required on presented ones.
    #[arg(
        long,
        env = "GATEWAY_JWT_AUDIENCE",
        default_value = "hangout-planner-api"
    )]
    pub jwt_audience: String,

    /// How long an access token lives (e.g. `15m`).
    #[arg(long, env = "GATEWAY_ACCESS_TOKEN_TTL", default_value = "15m", value_parser = humantime::parse_duration)]
    pub access_token_ttl: Duration,

    /// Folder holding the installed GraphiQL npm packages (`node_modules` of `gateway/graphiql`).
    #[arg(
        long,
        env = "GATEWAY_GRAPHIQL_ASSETS",
        default_value = "gateway/graphiql/node_modules"
    )]
    pub graphiql_assets: PathBuf,

    /// `text` or `json`. Levels come from `RUST_LOG` (default `info`). Traces are exported
    /// over OTLP/HTTP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set.
    #[arg(long, env = "GATEWAY_LOG_FORMAT", default_value = "text")]
    pub log_format: telemetry::LogFormat,

    /// Address of the internal Prometheus endpoint (`GET /metrics`); keep it off the public
    /// network.
    #[arg(long, env = "GATEWAY_METRICS_ADDR", default_value = "127.0.0.1:9180")]
    pub metrics_addr: SocketAddr,

    /// Threads serving requests; one per CPU when unset. Services that share a machine do
    /// better with their share of its CPUs than with one thread per CPU each: idle threads
    /// that steal each other's work cost wake-ups on every request (BENCHMARKS.md, item 25).
    #[arg(long, env = "GATEWAY_WORKER_THREADS")]
    pub worker_threads: Option<std::num::NonZeroUsize>,

    /// Redis for rate-limit state shared by every gateway instance (`redis://host:6379`).
    /// Unset: each instance limits on its own. When Redis is unreachable, the instance falls
    /// back to its own limits (logged once, counted in `gateway_shared_limit_fallbacks`).
    #[arg(long, env = "GATEWAY_REDIS_URL")]
    pub redis_url: Option<SecretUrl>,

    /// RabbitMQ to receive live-update events from (`amqp://user:password@host:5672/vhost`,
    /// the broker hangout-core relays to with `HANGOUT_CORE_BROKER_URL`); each instance
    /// consumes its own durable queue. Unset: events come straight from hangout-core's
    /// `EventService` (the embedded default).
    #[arg(long, env = "GATEWAY_BROKER_URL")]
    pub broker_url: Option<SecretUrl>,

    /// The broker's exchange for the events.
    #[arg(long, env = "GATEWAY_BROKER_EXCHANGE", default_value = proto::broker::DEFAULT_EXCHANGE)]
    pub broker_exchange: String,

    #[command(flatten)]
    pub edge: EdgeSettings,
}

/// Why a key variable does not name a key file, without its value: it may be the key itself
/// (PEM text pasted instead of a path), and a start-up error is printed and logged.
fn not_a_key_file(path: &std::path::Path) -> String {
    let text = path.to_string_lossy();
    if text.contains("-----BEGIN") || text.contains('\n') {
        "holds PEM text, not a path: write the key to a file and give its path (the value is not \
         shown, since it is a secret)"
            .to_owned()
    } else {
        "is not the path of a readable file (the value is not shown, since it names a secret)"
            .to_owned()
    }
}

impl Config {
    /// Checks what parsing cannot: URL schemes, files present, sane durations, a signing key
    /// outside dev mode.
    ///
    /// # Errors
    /// The first problem found, naming its variable.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (variable, url) in [
            ("GATEWAY_HANGOUT_CORE_URL", &self.hangout_core_url),
            ("GATEWAY_FILE_CORE_URL", &self.file_core_url),
        ] {
            if !url.starts_with("https://") {
                return Err(ConfigError::new(
                    variable,
                    "must be an https:// URL (mutual TLS)",
                ));
            }
        }
        checks::require_tls_files([
            ("GATEWAY_TLS_CA", self.tls_ca.as_path()),
            ("GATEWAY_TLS_CERT", self.tls_cert.as_path()),
            ("GATEWAY_TLS_KEY", self.tls_key.as_path()),
        ])?;
        checks::require_amqp(
            "GATEWAY_BROKER_URL",
            self.broker_url.as_ref().map(SecretUrl::expose),
        )?;
        checks::require_nonzero_durations([
            ("GATEWAY_BACKEND_TIMEOUT", self.backend_timeout),
            (
                "GATEWAY_BACKEND_CONNECT_TIMEOUT",
                self.backend_connect_timeout,
            ),
            ("GATEWAY_ACCESS_TOKEN_TTL", self.access_token_ttl),
            ("GATEWAY_HEADER_READ_TIMEOUT", self.edge.header_read_timeout),
            ("GATEWAY_BODY_READ_TIMEOUT", self.edge.body_read_timeout),
            ("GATEWAY_REQUEST_TIMEOUT", self.edge.request_timeout),
        ])?;
        match &self.jwt_signing_key {
            None if !self.dev_mode => {
                return Err(ConfigError::new(
                    "GATEWAY_JWT_SIGNING_KEY",
                    "is required outside dev mode (GATEWAY_DEV_MODE=true generates an ephemeral key)",
                ));
            }
            Some(path) if !path.is_file() => {
                return Err(ConfigError::new(
                    "GATEWAY_JWT_SIGNING_KEY",
                    not_a_key_file(path),
                ));
            }
            _ => {}
        }
        if let Some(path) = self
            .jwt_verification_keys
            .iter()
            .find(|path| !path.is_file())
        {
            return Err(ConfigError::new(
                "GATEWAY_JWT_VERIFICATION_KEYS",
                not_a_key_file(path),
            ));
        }
        for (variable, value) in [
            ("GATEWAY_JWT_ISSUER", &self.jwt_issuer),
            ("GATEWAY_JWT_AUDIENCE", &self.jwt_audience),
        ] {
            if value.trim().is_empty() {
                return Err(ConfigError::new(variable, "must not be empty"));
            }
        }
        checks::require_nonzero_counts([
            ("GATEWAY_MAX_BODY_BYTES", self.edge.max_body_bytes),
            ("GATEWAY_MAX_DOCUMENT_BYTES", self.edge.max_document_bytes),
            ("GATEWAY_MAX_CONNECTIONS", self.edge.max_connections),
            ("GATEWAY_MAX_IN_FLIGHT", self.edge.max_in_flight),
            ("GATEWAY_MAX_RESPONSE_BYTES", self.edge.max_response_bytes),
            ("GATEWAY_MAX_ROOT_FIELDS", self.edge.max_root_fields),
            ("GATEWAY_MAX_DIRECTIVES", self.edge.max_directives),
        ])?;
        validate_cors_origins(&self.edge.cors_origins)
            .map_err(|message| ConfigError::new("GATEWAY_CORS_ORIGINS", message))?;
        if let Some(path) = &self.edge.trusted_documents
            && !path.is_file()
        {
            return Err(ConfigError::new(
                "GATEWAY_TRUSTED_DOCUMENTS",
                format!("{} is not a file", path.display()),
            ));
        }
        Ok(())
    }

    /// Whether introspection and field suggestions are on: as configured, else in dev mode.
    #[must_use]
    pub fn introspection(&self) -> bool {
        self.edge.introspection.unwrap_or(self.dev_mode)
    }

    /// Whether GraphiQL is served: as configured, else in dev mode.
    #[must_use]
    pub fn graphiql(&self) -> bool {
        self.edge.graphiql.unwrap_or(self.dev_mode)
    }

    /// The gateway's mTLS client files.
    #[must_use]
    pub fn tls_files(&self) -> proto::tls::TlsFiles {
        proto::tls::TlsFiles {
            ca: self.tls_ca.clone(),
            cert: self.tls_cert.clone(),
            key: self.tls_key.clone(),
        }
    }
}

/// Only paths and public settings are printed, URLs without their passwords, and not even the
/// signing key's path: the variable may hold the key's PEM text by mistake.
impl fmt::Debug for Config {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Config")
            .field("listen_addr", &self.listen_addr)
            .field("dev_mode", &self.dev_mode)
            .field("hangout_core_url", &self.hangout_core_url)
            .field("hangout_core_tls_name", &self.hangout_core_tls_name)
            .field("file_core_url", &self.file_core_url)
            .field("file_core_tls_name", &self.file_core_tls_name)
            .field("tls_ca", &self.tls_ca)
            .field("tls_cert", &self.tls_cert)
            .field("tls_key", &self.tls_key)
            .field("backend_timeout", &self.backend_timeout)
            .field("backend_connect_timeout", &self.backend_connect_timeout)
            .field(
                "jwt_signing_key",
                &self.jwt_signing_key.as_ref().map(|_| "<configured>"),
            )
            .field("jwt_verification_keys", &self.jwt_verification_keys)
            .field("jwt_issuer", &self.jwt_issuer)
            .field("jwt_audience", &self.jwt_audience)
            .field("access_token_ttl", &self.access_token_ttl)
            .field("graphiql_assets", &self.graphiql_assets)
            .field("log_format", &self.log_format)
            .field("metrics_addr", &self.metrics_addr)
            .field("worker_threads", &self.worker_threads)
            .field("redis_url", &self.redis_url)
            .field("broker_url", &self.broker_url)
            .field("broker_exchange", &self.broker_exchange)
            .field("edge", &self.edge)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    #[test]
    fn worker_threads_default_to_the_runtimes_choice_and_are_never_zero() {
        assert_eq!(Config::parse_from(["gateway"]).worker_threads, None);
        let config = Config::parse_from(["gateway", "--worker-threads", "1"]);
        assert_eq!(
            config.worker_threads.map(std::num::NonZeroUsize::get),
            Some(1)
        );
        assert!(Config::try_parse_from(["gateway", "--worker-threads", "0"]).is_err());
    }

    #[test]
    fn a_signing_key_is_required_outside_dev_mode() {
        let mut config = Config::parse_from(["gateway", "--tls-ca", "Cargo.toml"]);
        config.tls_cert = "Cargo.toml".into();
        config.tls_key = "Cargo.toml".into();
        let problem = config.validate().expect_err("no key outside dev mode");
        assert_eq!(problem.variable, "GATEWAY_JWT_SIGNING_KEY");
        config.dev_mode = true;
        config.validate().expect("dev mode generates a key");
    }

    #[test]
    fn debug_output_hides_the_signing_key_path() {
        let config = Config::parse_from(["gateway", "--jwt-signing-key", "/secret/place.pem"]);
        assert!(!format!("{config:?}").contains("/secret/place.pem"));
    }

    #[test]
    fn help_lists_every_variable() {
        use clap::CommandFactory as _;
        let help = Config::command().render_long_help().to_string();
        for variable in [
            "GATEWAY_LISTEN_ADDR",
            "GATEWAY_DEV_MODE",
            "GATEWAY_JWT_SIGNING_KEY",
            "GATEWAY_JWT_VERIFICATION_KEYS",
            "GATEWAY_ACCESS_TOKEN_TTL",
        ] {
            assert!(help.contains(variable), "{variable} missing from --help");
        }
    }

    /// Points the TLS files at a file that exists, so validation gets past them.
    fn with_files(config: &mut Config) {
        config.tls_ca = "Cargo.toml".into();
        config.tls_cert = "Cargo.toml".into();
        config.tls_key = "Cargo.toml".into();
    }

    #[test]
    fn a_key_given_as_pem_text_is_refused_without_printing_it() {
        let pem = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIDonotleakthis\n-----END PRIVATE KEY-----";
        for args in [
            ["gateway".to_owned(), format!("--jwt-signing-key={pem}")],
            [
                "gateway".to_owned(),
                format!("--jwt-verification-keys={pem}"),
            ],
        ] {
            let mut config = Config::parse_from(args);
            config.dev_mode = true;
            with_files(&mut config);
            let problem = config.validate().expect_err("PEM text is no path");
            let shown = format!("{problem} {problem:?}");
            assert!(!shown.contains("donotleakthis"), "{shown}");
            assert!(shown.contains("PEM text"), "{shown}");
        }
        let mut config = Config::parse_from(["gateway", "--jwt-signing-key", "/run/secrets/gone"]);
        with_files(&mut config);
        let problem = config.validate().expect_err("missing file");
        assert!(
            !problem.to_string().contains("/run/secrets/gone"),
            "{problem}"
        );
    }

    #[test]
    fn trusted_proxies_are_addresses_or_cidr_ranges() {
        let config = Config::parse_from([
            "gateway",
            "--trusted-proxies",
            "127.0.0.1,172.28.0.0/16,::1",
        ]);
        assert_eq!(config.edge.trusted_proxies.len(), 3);
        assert!(
            config.edge.trusted_proxies[1]
                .contains(&"172.28.3.4".parse::<std::net::IpAddr>().expect("IP"))
        );
        assert!(Config::try_parse_from(["gateway", "--trusted-proxies", "nginx"]).is_err());
    }

    #[test]
    fn plain_http_backends_are_refused() {
        let mut config = Config::parse_from(["gateway", "--dev-mode"]);
        config.file_core_url = "http://127.0.0.1:1".to_owned();
        let problem = config.validate().expect_err("plain http");
        assert_eq!(problem.variable, "GATEWAY_FILE_CORE_URL");
    }
}

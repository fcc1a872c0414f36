//! Configuration from environment variables (or the matching flags), validated at start-up.
//! `file-core --help` lists every variable with its default.
//!
//! The defaults run with nothing installed: SQLite under `data/`, and the embedded S3 server on
//! `data/s3`. Production sets `FILE_CORE_S3_MODE=external` and points `FILE_CORE_S3_ENDPOINT`
//! (or nothing, for AWS) at a real S3.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

pub use service_kit::config::ConfigError;
use service_kit::config::{self as checks, Secret, SecretUrl};

use crate::{
    domain::{Settings, download::MAX_PRESIGN_TTL, processing::RenderLimits},
    embedded_s3::EmbeddedCredentials,
    s3::{Encryption, S3Settings},
};

/// `FILE_CORE_S3_SERVER_SIDE_ENCRYPTION`, spelled as S3 spells it.
fn parse_encryption(name: &str) -> Result<Encryption, String> {
    Encryption::from_name(name.trim()).ok_or_else(|| {
        format!(
            "unknown server-side encryption {name:?}: one of {}",
            Encryption::NAMES.join(", ")
        )
    })
}

/// Where the bucket lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum S3Mode {
    /// Start the embedded S3 server in-process on `FILE_CORE_S3_EMBEDDED_DIR`.
    Embedded,
    /// Use the S3 at `FILE_CORE_S3_ENDPOINT` (AWS when empty).
    External,
}

/// What this process does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    /// Serve gRPC, sweep, and process photos with `FILE_CORE_PROCESSING_WORKERS` workers.
    Service,
    /// Only process photos (scaled separately from the service); needs external S3.
    Worker,
}

/// Everything file-core needs to start.
/// `Debug` shows no secret: the URLs and the S3 key are [`SecretUrl`]s and [`Secret`]s.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "file-core",
    version,
    about = "gRPC service for the photo file lifecycle on S3 (presigned uploads and downloads)"
)]
pub struct Config {
    /// `service` (gRPC, sweeper and photo workers) or `worker` (photo processing only, for
    /// scaling it apart from the service; needs `FILE_CORE_S3_MODE=external`).
    #[arg(long, env = "FILE_CORE_ROLE", default_value = "service")]
    pub role: Role,

    /// Address to serve gRPC (mutual TLS) on.
    #[arg(long, env = "FILE_CORE_LISTEN_ADDR", default_value = "127.0.0.1:50052")]
    pub listen_addr: SocketAddr,

    /// `sqlite:<path>` (embedded) or `mysql://user:password@host/database`.
    #[arg(
        long,
        env = "FILE_CORE_DATABASE_URL",
        default_value = "sqlite:data/file-core.db",
        hide_env_values = true
    )]
    pub database_url: SecretUrl,

    /// Most database connections in the pool.
    #[arg(long, env = "FILE_CORE_DATABASE_MAX_CONNECTIONS", default_value_t = 10)]
    pub database_max_connections: u32,

    /// PEM of the internal CA that signs every client.
    #[arg(long, env = "FILE_CORE_TLS_CA", default_value = ".certs/ca.pem")]
    pub tls_ca: PathBuf,

    /// PEM certificate chain of this server; also its client certificate towards hangout-core,
    /// so it needs both the serverAuth and the clientAuth extended key usage.
    #[arg(
        long,
        env = "FILE_CORE_TLS_CERT",
        default_value = ".certs/file-core.pem"
    )]
    pub tls_cert: PathBuf,

    /// PEM private key of this server.
    #[arg(
        long,
        env = "FILE_CORE_TLS_KEY",
        default_value = ".certs/file-core.key"
    )]
    pub tls_key: PathBuf,

    /// Comma-separated names a client certificate must carry (as a DNS SAN) to be served.
    #[arg(
        long,
        env = "FILE_CORE_ALLOWED_CLIENTS",
        default_value = "gateway",
        value_delimiter = ','
    )]
    pub allowed_clients: Vec<String>,

    /// gRPC endpoint of hangout-core (mutual TLS, with this service's own certificate), which
    /// file-core tells when a photo's processing ended so the memory's subscribers hear of it.
    #[arg(
        long,
        env = "FILE_CORE_HANGOUT_CORE_URL",
        default_value = "https://127.0.0.1:50051"
    )]
    pub hangout_core_url: String,

    /// Name hangout-core's server certificate must carry.
    #[arg(
        long,
        env = "FILE_CORE_HANGOUT_CORE_TLS_NAME",
        default_value = "hangout-core"
    )]
    pub hangout_core_tls_name: String,

    /// `embedded` (an S3 server on a local folder, started in-process) or `external`.
    #[arg(long, env = "FILE_CORE_S3_MODE", default_value = "embedded")]
    pub s3_mode: S3Mode,

    /// Data folder of the embedded S3 server.
    #[arg(long, env = "FILE_CORE_S3_EMBEDDED_DIR", default_value = "data/s3")]
    pub s3_embedded_dir: PathBuf,

    /// Address the embedded S3 server listens on (plain HTTP; keep it on loopback).
    #[arg(
        long,
        env = "FILE_CORE_S3_EMBEDDED_ADDR",
        default_value = "127.0.0.1:9000"
    )]
    pub s3_embedded_addr: SocketAddr,

    /// S3 endpoint this service calls, in external mode; empty for AWS's endpoint of the region.
    #[arg(long, env = "FILE_CORE_S3_ENDPOINT")]
    pub s3_endpoint: Option<String>,

    /// Endpoint put into presigned URLs, when clients reach S3 by another address than this
    /// service does; empty for the same endpoint.
    #[arg(long, env = "FILE_CORE_S3_PUBLIC_ENDPOINT")]
    pub s3_public_endpoint: Option<String>,

    /// S3 region (also part of every signature).
    #[arg(long, env = "FILE_CORE_S3_REGION", default_value = "us-east-1")]
    pub s3_region: String,

    /// Bucket holding every file object.
    #[arg(long, env = "FILE_CORE_S3_BUCKET", default_value = "hangout-files")]
    pub s3_bucket: String,

    /// Path-style URLs (`endpoint/bucket/key`), needed by most S3-compatible servers.
    #[arg(
        long,
        env = "FILE_CORE_S3_FORCE_PATH_STYLE",
        default_value_t = true,
        action = clap::ArgAction::Set
    )]
    pub s3_force_path_style: bool,

    /// Server-side encryption asked for every object: `none` (the bucket's default; what a
    /// MinIO without a key-management service accepts), `AES256` (SSE-S3) or `aws:kms`.
    /// Presigned uploads sign it, so browsers must send the header they are given.
    #[arg(
        long,
        env = "FILE_CORE_S3_SERVER_SIDE_ENCRYPTION",
        default_value = "none",
        value_parser = parse_encryption
    )]
    pub s3_server_side_encryption: Encryption,

    /// Create the bucket at start when missing, in external mode (embedded mode always does).
    #[arg(
        long,
        env = "FILE_CORE_S3_CREATE_BUCKET",
        default_value_t = false,
        action = clap::ArgAction::Set
    )]
    pub s3_create_bucket: bool,

    /// Comma-separated origins whose pages may upload and download from the bucket
    /// (`https://app.example.com`), written as the bucket's CORS rules at start, in external
    /// mode. Empty leaves the bucket's CORS as it is (MinIO has no bucket CORS and allows any
    /// origin; the embedded server does too: presigned URLs are the credential).
    #[arg(long, env = "FILE_CORE_S3_CORS_ORIGINS", value_delimiter = ',')]
    pub s3_cors_origins: Vec<String>,

    /// S3 access key id (in embedded mode, the one key the embedded server accepts).
    #[arg(
        long,
        env = "FILE_CORE_S3_ACCESS_KEY_ID",
        default_value = "file-core-dev"
    )]
    pub s3_access_key_id: String,

    /// S3 secret access key.
    #[arg(
        long,
        env = "FILE_CORE_S3_SECRET_ACCESS_KEY",
        default_value = "file-core-dev-secret",
        hide_env_values = true,
        hide_default_value = true
    )]
    pub s3_secret_access_key: Secret,

    /// How long a presigned upload stays valid: the upload window (e.g. `15m`).
    #[arg(long, env = "FILE_CORE_UPLOAD_URL_TTL", default_value = "15m", value_parser = humantime::parse_duration)]
    pub upload_url_ttl: Duration,

    /// How long a presigned download stays valid at least (e.g. `15m`); URLs are reused for a
    /// quarter of it and valid that much longer, so clients can cache photos by URL.
    #[arg(long, env = "FILE_CORE_DOWNLOAD_URL_TTL", default_value = "15m", value_parser = humantime::parse_duration)]
    pub download_url_ttl: Duration,

    /// How long after its upload window an unconfirmed file (and its object) is removed.
    #[arg(long, env = "FILE_CORE_PENDING_GRACE", default_value = "1h", value_parser = humantime::parse_duration)]
    pub pending_grace: Duration,

    /// How often the sweeper removes expired uploads and retries failed deletions.
    #[arg(long, env = "FILE_CORE_SWEEP_INTERVAL", default_value = "1m", value_parser = humantime::parse_duration)]
    pub sweep_interval: Duration,

    /// Files one sweep removes, at most.
    #[arg(long, env = "FILE_CORE_SWEEP_BATCH", default_value_t = 500)]
    pub sweep_batch: u32,

    /// Photos this process renders at once (each takes one CPU while it runs); 0 leaves
    /// processing to worker processes (`FILE_CORE_ROLE=worker`).
    #[arg(long, env = "FILE_CORE_PROCESSING_WORKERS", default_value_t = 1)]
    pub processing_workers: u32,

    /// Pixels (width x height) of an image processing decodes, at most, checked from its
    /// header before anything is decoded; larger ones end FAILED.
    #[arg(
        long,
        env = "FILE_CORE_PROCESSING_MAX_PIXELS",
        default_value_t = 40_000_000
    )]
    pub processing_max_pixels: u64,

    /// Memory one image's decoder may allocate, in MiB, at most.
    #[arg(long, env = "FILE_CORE_PROCESSING_DECODER_MIB", default_value_t = 256)]
    pub processing_decoder_mib: u64,

    /// How long a worker's claim on a job lasts: a worker that dies mid-job leaves the job to
    /// be done again after it.
    #[arg(long, env = "FILE_CORE_PROCESSING_LEASE", default_value = "2m", value_parser = humantime::parse_duration)]
    pub processing_lease: Duration,

    /// The wait before retrying a job whose attempt failed for another reason than the image
    /// (object storage or the database unreachable); doubled after each failure, up to 5
    /// minutes; after 5 attempts the job is dead-lettered and the photo FAILED.
    #[arg(long, env = "FILE_CORE_PROCESSING_RETRY_DELAY", default_value = "2s", value_parser = humantime::parse_duration)]
    pub processing_retry_delay: Duration,

    /// RabbitMQ (`amqp://user:password@host:5672/vhost`) to deliver processing jobs to the
    /// workers; unset, workers find jobs by polling the database. The jobs themselves stay in
    /// the database either way.
    #[arg(long, env = "FILE_CORE_BROKER_URL", hide_env_values = true)]
    pub broker_url: Option<SecretUrl>,

    /// The broker's queue of processing jobs (durable).
    #[arg(long, env = "FILE_CORE_BROKER_QUEUE", default_value = crate::broker::DEFAULT_QUEUE)]
    pub broker_queue: String,

    /// How often an idle worker looks for jobs queued by other processes (jobs this process
    /// queues wake it at once).
    #[arg(long, env = "FILE_CORE_PROCESSING_POLL", default_value = "1s", value_parser = humantime::parse_duration)]
    pub processing_poll: Duration,

    /// How often the deletions hangout-core owes (files of memories deleted while a call to
    /// file-core failed, or swept) are asked for and carried out.
    #[arg(long, env = "FILE_CORE_DELETION_POLL", default_value = "5s", value_parser = humantime::parse_duration)]
    pub deletion_poll: Duration,

    /// How often UPLOADED files are checked against the memories that hold them, and the
    /// bucket's objects against the file records (each pass lists everything once).
    #[arg(long, env = "FILE_CORE_RECONCILE_INTERVAL", default_value = "1h", value_parser = humantime::parse_duration)]
    pub reconcile_interval: Duration,

    /// How old a file or object must be before the reconciliation may delete it.
    #[arg(long, env = "FILE_CORE_RECONCILE_SETTLE", default_value = "1h", value_parser = humantime::parse_duration)]
    pub reconcile_settle: Duration,

    /// `text` or `json`. Levels come from `RUST_LOG` (default `info`). Traces are exported
    /// over OTLP/HTTP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set.
    #[arg(long, env = "FILE_CORE_LOG_FORMAT", default_value = "text")]
    pub log_format: telemetry::LogFormat,

    /// Address of the internal Prometheus endpoint (`GET /metrics`); keep it off the public
    /// network.
    #[arg(long, env = "FILE_CORE_METRICS_ADDR", default_value = "127.0.0.1:9182")]
    pub metrics_addr: SocketAddr,

    /// Threads serving requests; one per CPU when unset. Services that share a machine do
    /// better with their share of its CPUs than with one thread per CPU each: idle threads
    /// that steal each other's work cost wake-ups on every request (BENCHMARKS.md, item 25).
    #[arg(long, env = "FILE_CORE_WORKER_THREADS")]
    pub worker_threads: Option<std::num::NonZeroUsize>,
}

/// `None` for an absent or blank optional value.
fn non_blank(value: Option<&String>) -> Option<String> {
    value
        .map(|text| text.trim().to_owned())
        .filter(|text| !text.is_empty())
}

fn check_endpoint(variable: &'static str, value: Option<&String>) -> Result<(), ConfigError> {
    match non_blank(value) {
        Some(url) if !(url.starts_with("http://") || url.starts_with("https://")) => Err(
            ConfigError::new(variable, "must start with http:// or https://"),
        ),
        _ => Ok(()),
    }
}

/// An origin as browsers send it: `http(s)://host[:port]`, nothing after; S3 allows one `*`
/// in the host (`https://*.example.com`).
fn valid_origin(origin: &str) -> bool {
    let Some(authority) = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
    else {
        return false;
    };
    !authority.is_empty()
        && authority.matches('*').count() <= 1
        && authority.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'*' | b'[' | b']')
        })
}

/// S3's bucket naming rules, in short: 3 to 63 lower-case letters, digits, dots and hyphens,
/// starting and ending with a letter or digit.
fn valid_bucket(name: &str) -> bool {
    let bytes = name.as_bytes();
    (3..=63).contains(&bytes.len())
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'.' || *b == b'-')
        && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
}

impl Config {
    /// Checks what parsing cannot: URL schemes, files present, names, sane durations.
    ///
    /// # Errors
    /// The first problem found, naming its variable.
    pub fn validate(&self) -> Result<(), ConfigError> {
        sql_pools::check_settings(
            ("FILE_CORE_DATABASE_URL", self.database_url.expose()),
            (
                "FILE_CORE_DATABASE_MAX_CONNECTIONS",
                self.database_max_connections,
            ),
        )?;
        // A worker serves nothing, so it needs no TLS material.
        if self.role == Role::Service {
            checks::require_tls_files([
                ("FILE_CORE_TLS_CA", self.tls_ca.as_path()),
                ("FILE_CORE_TLS_CERT", self.tls_cert.as_path()),
                ("FILE_CORE_TLS_KEY", self.tls_key.as_path()),
            ])?;
        }
        if self
            .allowed_clients
            .iter()
            .all(|name| name.trim().is_empty())
        {
            return Err(ConfigError::new(
                "FILE_CORE_ALLOWED_CLIENTS",
                "must name at least one client",
            ));
        }
        if !self.hangout_core_url.starts_with("https://") {
            return Err(ConfigError::new(
                "FILE_CORE_HANGOUT_CORE_URL",
                "must start with https:// (hangout-core is reached with mutual TLS)",
            ));
        }
        if self.hangout_core_tls_name.trim().is_empty() {
            return Err(ConfigError::new(
                "FILE_CORE_HANGOUT_CORE_TLS_NAME",
                "must not be empty",
            ));
        }
        check_endpoint("FILE_CORE_S3_ENDPOINT", self.s3_endpoint.as_ref())?;
        check_endpoint(
            "FILE_CORE_S3_PUBLIC_ENDPOINT",
            self.s3_public_endpoint.as_ref(),
        )?;
        if self.s3_mode == S3Mode::Embedded && non_blank(self.s3_endpoint.as_ref()).is_some() {
            return Err(ConfigError::new(
                "FILE_CORE_S3_ENDPOINT",
                "is set but FILE_CORE_S3_MODE is embedded; set FILE_CORE_S3_MODE=external to use it",
            ));
        }
        if self.s3_region.trim().is_empty() {
            return Err(ConfigError::new("FILE_CORE_S3_REGION", "must not be empty"));
        }
        if !valid_bucket(&self.s3_bucket) {
            return Err(ConfigError::new(
                "FILE_CORE_S3_BUCKET",
                "must be 3 to 63 lower-case letters, digits, dots or hyphens",
            ));
        }
        if let Some(origin) = self
            .s3_cors_origins()
            .iter()
            .find(|origin| !valid_origin(origin))
        {
            return Err(ConfigError::new(
                "FILE_CORE_S3_CORS_ORIGINS",
                format!(
                    "{origin:?} is not an origin such as https://app.example.com (scheme, host and port only)"
                ),
            ));
        }
        if self.s3_access_key_id.trim().is_empty() {
            return Err(ConfigError::new(
                "FILE_CORE_S3_ACCESS_KEY_ID",
                "must not be empty",
            ));
        }
        if self.s3_secret_access_key.expose().is_empty() {
            return Err(ConfigError::new(
                "FILE_CORE_S3_SECRET_ACCESS_KEY",
                "must not be empty",
            ));
        }
        for (variable, duration) in [
            ("FILE_CORE_UPLOAD_URL_TTL", self.upload_url_ttl),
            ("FILE_CORE_DOWNLOAD_URL_TTL", self.download_url_ttl),
        ] {
            if duration < Duration::from_secs(1) || duration > MAX_PRESIGN_TTL {
                return Err(ConfigError::new(variable, "must be between 1s and 7days"));
            }
        }
        checks::require_nonzero_durations([("FILE_CORE_SWEEP_INTERVAL", self.sweep_interval)])?;
        if self.sweep_batch == 0 {
            return Err(ConfigError::new(
                "FILE_CORE_SWEEP_BATCH",
                "must be at least 1",
            ));
        }
        self.validate_processing()
    }

    fn validate_processing(&self) -> Result<(), ConfigError> {
        if self.role == Role::Worker {
            if self.s3_mode == S3Mode::Embedded {
                return Err(ConfigError::new(
                    "FILE_CORE_ROLE",
                    "is worker, which needs FILE_CORE_S3_MODE=external (the embedded S3 server \
                     lives in the service process)",
                ));
            }
            if self.processing_workers == 0 {
                return Err(ConfigError::new(
                    "FILE_CORE_PROCESSING_WORKERS",
                    "must be at least 1 in a worker process",
                ));
            }
        }
        if self.processing_workers > 64 {
            return Err(ConfigError::new(
                "FILE_CORE_PROCESSING_WORKERS",
                "must be at most 64",
            ));
        }
        if !(1_000_000..=200_000_000).contains(&self.processing_max_pixels) {
            return Err(ConfigError::new(
                "FILE_CORE_PROCESSING_MAX_PIXELS",
                "must be between 1000000 and 200000000",
            ));
        }
        if !(16..=4096).contains(&self.processing_decoder_mib) {
            return Err(ConfigError::new(
                "FILE_CORE_PROCESSING_DECODER_MIB",
                "must be between 16 and 4096",
            ));
        }
        if self.processing_lease < Duration::from_secs(1) {
            return Err(ConfigError::new(
                "FILE_CORE_PROCESSING_LEASE",
                "must be at least 1s",
            ));
        }
        checks::require_amqp("FILE_CORE_BROKER_URL", self.broker())?;
        if self.broker_queue.trim().is_empty() {
            return Err(ConfigError::new(
                "FILE_CORE_BROKER_QUEUE",
                "must not be empty",
            ));
        }
        checks::require_nonzero_durations([
            ("FILE_CORE_PROCESSING_POLL", self.processing_poll),
            ("FILE_CORE_DELETION_POLL", self.deletion_poll),
            ("FILE_CORE_RECONCILE_INTERVAL", self.reconcile_interval),
        ])?;
        Ok(())
    }

    /// The broker's URL, when one is set (an empty value, as `.env.example` has, is none).
    #[must_use]
    pub fn broker(&self) -> Option<&str> {
        self.broker_url
            .as_ref()
            .map(|url| url.expose().trim())
            .filter(|url| !url.is_empty())
    }

    /// The renderer's budget.
    #[must_use]
    pub fn render_limits(&self) -> RenderLimits {
        RenderLimits {
            max_pixels: self.processing_max_pixels,
            max_decoder_bytes: self.processing_decoder_mib * 1024 * 1024,
        }
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

    /// The domain's tunables.
    #[must_use]
    pub fn domain_settings(&self) -> Settings {
        Settings {
            upload_url_ttl: self.upload_url_ttl,
            download_url_ttl: self.download_url_ttl,
            pending_grace: self.pending_grace,
            sweep_batch: self.sweep_batch,
            job_lease: self.processing_lease,
            job_retry_delay: self.processing_retry_delay,
        }
    }

    /// How to reach the bucket; `endpoint` overrides the configured one (the embedded server's).
    #[must_use]
    pub fn s3_settings(&self, endpoint: Option<String>) -> S3Settings {
        S3Settings {
            endpoint: endpoint.or_else(|| non_blank(self.s3_endpoint.as_ref())),
            public_endpoint: non_blank(self.s3_public_endpoint.as_ref()),
            region: self.s3_region.trim().to_owned(),
            bucket: self.s3_bucket.clone(),
            force_path_style: self.s3_force_path_style,
            access_key_id: self.s3_access_key_id.trim().to_owned(),
            secret_access_key: self.s3_secret_access_key.expose().to_owned(),
            encryption: self.s3_server_side_encryption,
        }
    }

    /// The origins of `FILE_CORE_S3_CORS_ORIGINS`, trimmed, blanks left out.
    #[must_use]
    pub fn s3_cors_origins(&self) -> Vec<String> {
        self.s3_cors_origins
            .iter()
            .map(|origin| origin.trim().to_owned())
            .filter(|origin| !origin.is_empty())
            .collect()
    }

    /// The key the embedded server accepts.
    #[must_use]
    pub fn embedded_credentials(&self) -> EmbeddedCredentials {
        EmbeddedCredentials {
            access_key_id: self.s3_access_key_id.trim().to_owned(),
            secret_access_key: self.s3_secret_access_key.expose().to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    #[test]
    fn secrets_are_redacted() {
        let config = Config::parse_from([
            "file-core",
            "--database-url",
            "mysql://app:s3cret@db/file",
            "--s3-secret-access-key",
            "very-secret-key",
            "--broker-url",
            "amqp://file:rabbit-secret@rabbit:5672/%2f",
        ]);
        let printed = format!("{config:?}");
        assert!(!printed.contains("s3cret"), "{printed}");
        assert!(!printed.contains("very-secret-key"), "{printed}");
        assert!(!printed.contains("rabbit-secret"), "{printed}");
    }

    #[test]
    fn server_side_encryption_is_named_as_s3_names_it() {
        let parse = |name: &str| {
            Config::try_parse_from(["file-core", "--s3-server-side-encryption", name])
                .map(|config| config.s3_server_side_encryption)
        };
        assert_eq!(
            Config::parse_from(["file-core"]).s3_server_side_encryption,
            Encryption::None
        );
        assert_eq!(parse("none").ok(), Some(Encryption::None));
        assert_eq!(parse("AES256").ok(), Some(Encryption::Aes256));
        assert_eq!(parse("aws:kms").ok(), Some(Encryption::AwsKms));
        let refused = parse("aes256")
            .expect_err("S3 spells it AES256")
            .to_string();
        assert!(refused.contains("none, AES256, aws:kms"), "{refused}");
    }

    #[test]
    fn an_empty_broker_url_is_none_and_a_worker_needs_external_s3() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = valid_config(dir.path());
        config.broker_url = Some("  ".into());
        assert_eq!(config.broker(), None);
        assert!(config.validate().is_ok());
        config.role = Role::Worker;
        config.s3_mode = S3Mode::External;
        // A worker serves nothing: no TLS material needed.
        config.tls_ca = "/nonexistent/ca.pem".into();
        assert!(config.validate().is_ok());
    }

    #[test]
    fn bucket_cors_origins_are_exact_origins() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = valid_config(dir.path());
        assert!(config.s3_cors_origins().is_empty(), "none by default");
        config.s3_cors_origins = vec![
            " https://app.example.com".to_owned(),
            String::new(),
            "http://localhost:5173".to_owned(),
            "https://*.example.com".to_owned(),
        ];
        assert!(config.validate().is_ok());
        assert_eq!(config.s3_cors_origins().len(), 3);
        for refused in [
            "https://app.example.com/",
            "app.example.com",
            "https://",
            "*",
        ] {
            config.s3_cors_origins = vec![refused.to_owned()];
            let error = config.validate().expect_err(refused).to_string();
            assert!(error.contains("FILE_CORE_S3_CORS_ORIGINS"), "{error}");
        }
    }

    /// A default configuration whose TLS files exist (validate only checks they are files).
    fn valid_config(dir: &std::path::Path) -> Config {
        let mut config = Config::parse_from(["file-core"]);
        for (name, path) in [
            ("ca.pem", &mut config.tls_ca),
            ("cert.pem", &mut config.tls_cert),
            ("key.pem", &mut config.tls_key),
        ] {
            let file = dir.join(name);
            std::fs::write(&file, "x").expect("temp dir is writable");
            *path = file;
        }
        config
    }

    #[test]
    fn defaults_parse_and_bad_values_name_their_variable() {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = valid_config(dir.path());
        assert_eq!(config.s3_mode, S3Mode::Embedded);
        assert_eq!(config.upload_url_ttl, Duration::from_secs(15 * 60));
        assert!(config.s3_force_path_style);
        assert!(config.validate().is_ok());
        type Change = fn(&mut Config);
        let cases: [(Change, &str); 13] = [
            (|c| c.role = Role::Worker, "FILE_CORE_ROLE"),
            (
                |c| c.hangout_core_url = "http://127.0.0.1:50051".to_owned(),
                "FILE_CORE_HANGOUT_CORE_URL",
            ),
            (
                |c| c.processing_max_pixels = 1_000,
                "FILE_CORE_PROCESSING_MAX_PIXELS",
            ),
            (
                |c| c.processing_decoder_mib = 0,
                "FILE_CORE_PROCESSING_DECODER_MIB",
            ),
            (
                |c| c.processing_lease = Duration::ZERO,
                "FILE_CORE_PROCESSING_LEASE",
            ),
            (
                |c| c.broker_url = Some("amqps://rabbit:5671".into()),
                "FILE_CORE_BROKER_URL",
            ),
            (
                |c| c.database_url = "postgres://x".into(),
                "FILE_CORE_DATABASE_URL",
            ),
            (
                |c| c.s3_bucket = "Bad_Bucket".to_owned(),
                "FILE_CORE_S3_BUCKET",
            ),
            (
                |c| {
                    c.s3_mode = S3Mode::External;
                    c.s3_endpoint = Some("ftp://x".to_owned());
                },
                "FILE_CORE_S3_ENDPOINT",
            ),
            (
                |c| c.s3_endpoint = Some("http://s3:9000".to_owned()),
                "FILE_CORE_S3_ENDPOINT",
            ),
            (
                |c| c.upload_url_ttl = Duration::from_secs(8 * 24 * 3600),
                "FILE_CORE_UPLOAD_URL_TTL",
            ),
            (
                |c| c.download_url_ttl = Duration::ZERO,
                "FILE_CORE_DOWNLOAD_URL_TTL",
            ),
            (
                |c| c.tls_ca = "/nonexistent/ca.pem".into(),
                "FILE_CORE_TLS_CA",
            ),
        ];
        for (change, variable) in cases {
            let mut config = valid_config(dir.path());
            change(&mut config);
            let problem = config.validate().expect_err("the change is invalid");
            assert_eq!(problem.variable, variable);
        }
    }

    #[test]
    fn bucket_names() {
        assert!(valid_bucket("hangout-files"));
        assert!(valid_bucket("a.b-c1"));
        assert!(!valid_bucket("ab"));
        assert!(!valid_bucket("-ab"));
        assert!(!valid_bucket("UPPER"));
    }
}

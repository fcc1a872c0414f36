//! The global subscriber of a binary: levels from `RUST_LOG`, text or JSON lines, and the
//! OpenTelemetry layer exporting spans over OTLP/HTTP when `OTEL_EXPORTER_OTLP_ENDPOINT` (or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set. Libraries never install a subscriber: tests
//! start several services in one process.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::{Resource, propagation::TraceContextPropagator, trace::SdkTracerProvider};
use tracing_subscriber::{EnvFilter, layer::SubscriberExt as _, util::SubscriberInitExt as _};

/// Targets held at `warn` whatever `RUST_LOG` says: the embedded S3 server (s3s) records
/// whole requests, presigned URL signatures included, in its info-level spans.
const CAPPED_TARGETS: &[&str] = &["s3s=warn", "s3s_fs=warn"];

/// Log line format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, with the fields of the enclosing spans at the top level:
    /// `request_id` always, `trace_id` when tracing.
    Json,
}

/// Logging or tracing could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("cannot build the OTLP span exporter")]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
    #[error("a global subscriber is already installed")]
    Subscriber(#[from] tracing_subscriber::util::TryInitError),
}

/// The installed subscriber; dropping it flushes the spans not yet exported.
#[must_use = "dropping it stops exporting traces"]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

/// Whether an OTLP endpoint is configured, by the standard OpenTelemetry variables.
fn tracing_configured() -> bool {
    let set = |name| std::env::var(name).is_ok_and(|value| !value.trim().is_empty());
    let disabled = std::env::var("OTEL_SDK_DISABLED").is_ok_and(|value| value == "true");
    !disabled && (set("OTEL_EXPORTER_OTLP_ENDPOINT") || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
}

impl Telemetry {
    /// Installs the global subscriber for `service` (its default `service.name`; the
    /// `OTEL_SERVICE_NAME` variable wins).
    ///
    /// # Errors
    /// When the exporter cannot be built or a subscriber is already installed.
    pub fn init(service: &'static str, format: LogFormat) -> Result<Self, InitError> {
        let provider = if tracing_configured() {
            Some(tracer_provider(service)?)
        } else {
            None
        };
        let otel = provider.as_ref().map(|provider| {
            tracing_opentelemetry::layer()
                .with_tracer(provider.tracer(service))
                .with_threads(false)
        });
        let mut filter =
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
        for directive in CAPPED_TARGETS {
            if let Ok(directive) = directive.parse() {
                filter = filter.add_directive(directive);
            }
        }
        let (text, json) = match format {
            LogFormat::Text => (
                Some(tracing_subscriber::fmt::layer().with_target(false)),
                None,
            ),
            LogFormat::Json => (
                None,
                Some(
                    json_subscriber::fmt::layer()
                        .with_current_span(false)
                        .with_span_list(false)
                        .flatten_event(true)
                        .flatten_span_list_on_top_level(true)
                        .with_target(true),
                ),
            ),
        };
        tracing_subscriber::registry()
            .with(filter)
            .with(otel)
            .with(text)
            .with(json)
            .try_init()?;
        if provider.is_some() {
            opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        }
        Ok(Self { provider })
    }

    /// Whether spans are exported.
    #[must_use]
    pub fn tracing(&self) -> bool {
        self.provider.is_some()
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(error) = provider.shutdown()
        {
            tracing::warn!(%error, "flushing spans failed");
        }
    }
}

fn tracer_provider(service: &'static str) -> Result<SdkTracerProvider, InitError> {
    // The exporter reads the endpoint, headers and timeout from the standard variables.
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .build()?;
    let mut resource = Resource::builder();
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name(service);
    }
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build())
}

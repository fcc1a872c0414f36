//! Observability shared by the gateway and both services: log and trace set-up for the
//! binaries ([`Telemetry`]), W3C trace context across gRPC ([`propagation`]), the per-RPC span
//! and metrics of a tonic server ([`grpc`]), and the Prometheus registry and its internal
//! `/metrics` endpoint ([`metrics`]).
//!
//! Invariants: tracing costs nothing beyond `tracing` spans unless an OTLP endpoint is
//! configured; metric labels come from closed sets (RPC names of our own services, status
//! codes, outcome enums), never from ids, emails, paths or other client input.

pub mod grpc;
pub mod health;
mod logs;
pub mod metrics;
pub mod propagation;

pub use logs::{InitError, LogFormat, Telemetry};

/// An error with its causes, `outer: cause: root cause`, as a log field
/// (`error = %ErrorChain(&error)`). The JSON log format writes a field's `Display` only, and a
/// layered error's outer message ("internal error") says nothing of what failed; the text
/// format lists the causes itself, so both say the same. Causes carry no secrets: errors are
/// built from operations, codes and redacted URLs.
pub struct ErrorChain<'a>(pub &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            write!(formatter, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::ErrorChain;

    #[derive(Debug, thiserror::Error)]
    #[error("internal error")]
    struct Outer(#[source] Inner);

    #[derive(Debug, thiserror::Error)]
    #[error("database unavailable")]
    struct Inner(#[source] std::io::Error);

    #[test]
    fn the_chain_names_every_cause() {
        let error = Outer(Inner(std::io::Error::other("connection refused")));
        assert_eq!(
            ErrorChain(&error).to_string(),
            "internal error: database unavailable: connection refused"
        );
    }
}

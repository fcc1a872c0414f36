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

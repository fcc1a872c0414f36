//! gateway: the public GraphQL API of Hangout Planner. It authenticates users with JWTs and
//! resolves everything by calling hangout-core and file-core over gRPC with mutual TLS.
//!
//! # Layout
//! - [`http`]: the axum router: GraphQL endpoint, GraphiQL, health routes, JWKS, request ids and
//!   bearer-token extraction.
//! - [`graphql`]: the code-first schema, the gateway's own GraphQL types, per-request
//!   dataloaders and the one mapping from backend errors to `extensions.code`.
//! - [`backend`]: typed tonic clients of both services, each call carrying the caller's
//!   identity, the request id and a deadline.
//! - [`auth`]: access tokens: EdDSA signing, verification with rotation, the JWKS document.
//! - [`metrics`]: the Prometheus metrics served on the internal metrics port.
//! - [`shared_limits`]: rate-limit state in Redis, shared by every instance, when configured.
//! - [`app`]: `App::build(config)` binds; `run_until(shutdown)` serves.
//! - [`config`]: environment configuration, validated at start-up.

pub mod app;
pub mod auth;
pub mod backend;
pub mod config;
pub mod events;
pub mod graphql;
pub mod http;
pub mod metrics;
pub mod shared_limits;

pub use app::App;
pub use config::Config;

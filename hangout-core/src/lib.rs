//! hangout-core: the gRPC service that owns users, sessions, hangouts, activities and memory
//! records, and the `hangout` database.
//!
//! # Layout
//! - [`grpc`]: transport. tonic services; prost ↔ domain conversion; status mapping.
//! - [`domain`]: rules and types, and the storage port they need. No tonic, prost or sqlx.
//! - [`store`]: SQL adapters (MySQL and SQLite) implementing the port.
//! - [`app`]: `App::build(config)` binds; `run_until(shutdown)` serves.
//! - [`config`]: environment configuration, validated at start-up.

pub mod app;
pub mod broker;
pub mod config;
pub mod domain;
pub mod grpc;
pub mod metrics;
pub mod store;

pub use app::App;
pub use config::Config;

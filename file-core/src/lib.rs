//! file-core: the gRPC service that owns the `file` database and every object in the bucket.
//! File bytes never pass through it: clients upload and download with presigned URLs straight
//! to S3, and file-core checks what arrived before marking a file UPLOADED.
//!
//! # Layout
//! - [`grpc`]: transport. The tonic `FileService`; prost ↔ domain conversion; status mapping.
//! - [`domain`]: rules and types, and the ports they need (storage, object storage, the
//!   renderer, hangout-core's reports).
//!   No tonic, prost, sqlx or aws-sdk.
//! - [`store`]: SQL adapter (MySQL and SQLite) implementing the storage port.
//! - [`s3`]: aws-sdk-s3 adapter implementing the object-storage port, presigning included.
//! - [`render`]: the `image` crate adapter implementing the renderer port (photo renditions
//!   without metadata).
//! - [`embedded_s3`]: an S3-protocol server on a local folder, for running with nothing
//!   installed and for tests.
//! - [`broker`]: delivery of processing jobs through RabbitMQ, when configured.
//! - [`hangout_core`]: the gRPC client of hangout-core implementing the reports port (photo
//!   processing ended), and its relay.
//! - [`app`]: `App::build(config)` binds; `run_until(shutdown)` serves and sweeps.
//! - [`config`]: environment configuration, validated at start-up.

pub mod app;
pub mod broker;
pub mod config;
pub mod domain;
pub mod embedded_s3;
pub mod grpc;
pub mod hangout_core;
pub mod metrics;
pub mod render;
pub mod s3;
pub mod store;

pub use app::App;
pub use config::Config;

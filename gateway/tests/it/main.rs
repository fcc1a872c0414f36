//! The gateway's one integration test binary: hangout-core, file-core and the gateway run
//! in-process with real mutual TLS, and tests drive GraphQL over real HTTP.

#![allow(clippy::unwrap_used, reason = "test helpers may unwrap")]

mod abuse;
mod auth;
mod hangouts;
mod helpers;
mod limits;
mod memories;
mod metrics;
mod page;
mod resilience;
mod rotation;
mod schema;
mod security;
mod shared_limits;
mod sharing;

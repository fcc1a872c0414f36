//! The gateway's one integration test binary: hangout-core, file-core and the gateway run
//! in-process with real mutual TLS, and tests drive GraphQL over real HTTP.

#![allow(clippy::unwrap_used, reason = "test helpers may unwrap")]

/// Runs each listed `async fn(TestSystem)` with hangout-core on SQLite and on MariaDB, as
/// `<name>::sqlite` and `<name>::mysql`; `name with ["--flag", "value"]` starts the gateway
/// with those arguments.
macro_rules! on_both_backends {
    ($($test:tt)*) => {
        test_support::on_both_backends!(
            fixture = crate::helpers::TestSystem::spawn_on_with;
            $($test)*
        );
    };
}

mod abuse;
mod auth;
mod cleanup;
mod hangouts;
mod helpers;
mod limits;
mod live;
mod memories;
mod metrics;
mod page;
mod photos;
mod resilience;
mod rotation;
mod schema;
mod security;
mod shared_limits;
mod sharing;

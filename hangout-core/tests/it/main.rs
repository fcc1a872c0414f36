//! Integration tests: the real hangout-core over real mTLS, on SQLite always and on MariaDB
//! when `TEST_MYSQL_URL` is set (each test in its own fresh database).
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod helpers;

/// Runs each listed `async fn(TestApp)` on both backends, as `<name>::sqlite` and
/// `<name>::mysql`. The MySQL variant returns at once when `TEST_MYSQL_URL` is unset;
/// `.ci/run` always sets it, so CI never skips it.
macro_rules! on_both_backends {
    ($($test:ident),* $(,)?) => {
        test_support::on_both_backends!(fixture = crate::helpers::TestApp::fixture; $($test),*);
    };
}

mod activities;
mod events;
mod file_deletions;
mod hangouts;
mod memories;
mod sharing;
mod transport;
mod users;

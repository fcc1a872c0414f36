//! Integration tests: the real hangout-core over real mTLS, on SQLite always and on MariaDB
//! when `TEST_MYSQL_URL` is set (each test in its own fresh database).
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod helpers;

/// Runs each listed `async fn(TestApp)` on both backends, as `<name>::sqlite` and
/// `<name>::mysql`. The MySQL variant returns at once when `TEST_MYSQL_URL` is unset;
/// `.ci/run` always sets it, so CI never skips it.
macro_rules! on_both_backends {
    ($($test:ident),* $(,)?) => {
        $(
            mod $test {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    let app = crate::helpers::TestApp::spawn(crate::helpers::Db::Sqlite)
                        .await
                        .expect("SQLite always runs");
                    crate::helpers::within(super::$test(app)).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn mysql() {
                    let Some(app) =
                        crate::helpers::TestApp::spawn(crate::helpers::Db::Mysql).await
                    else {
                        return;
                    };
                    crate::helpers::within(super::$test(app)).await;
                }
            }
        )*
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

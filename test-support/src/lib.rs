//! What the crates' tests share, so that each crate's tests read as steps over one harness.
//! Dev-only: no service depends on it.
//!
//! - [`Db`], [`MariaDbDatabase`] and [`TestDatabase`]: a fresh database per test, on SQLite or
//!   MariaDB, that no test leaves behind; [`on_both_backends!`] runs a test on each.
//! - [`eventually`] and [`within`]: waiting by polling, and a deadline on every test.
//! - [`init_logs`], [`redis_url`], [`amqp_url`], [`rabbitmq`]: logs and the shared servers.
//! - [`CuttableLink`]: a TCP path to a real server that a test can cut and restore.
//! - [`MotoServer`]: moto's S3 server, the second S3 implementation.

mod cut;
mod db;
mod moto;
mod services;
mod wait;

pub use cut::CuttableLink;
pub use db::{Db, MariaDbDatabase, TestDatabase, backend, mysql_admin_url};
pub use moto::MotoServer;
pub use services::{amqp_url, init_logs, rabbitmq, redis_url};
pub use wait::{TEST_DEADLINE, eventually, within};

/// Runs each listed test on SQLite, as `<name>::sqlite`, and on MariaDB, as `<name>::mysql`
/// (which returns at once when `TEST_MYSQL_URL` is unset), each within [`TEST_DEADLINE`].
///
/// `on_both_backends!(a, b)` calls `async fn a(db: Db)`. With a fixture,
/// `on_both_backends!(fixture = path::to::start; a, b with ["--flag", "value"])` calls
/// `start(db, &["--flag", "value"])` (`&[]` without `with`), an `async fn` returning
/// `Option<T>` (`None` only when the backend is not configured), and then `async fn b(T)`.
#[macro_export]
macro_rules! on_both_backends {
    (fixture = $fixture:path; $($test:ident $(with [$($arg:expr),* $(,)?])?),* $(,)?) => {
        $(
            mod $test {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    let fixture = $fixture($crate::Db::Sqlite, &[$($($arg),*)?])
                        .await
                        .expect("SQLite always runs");
                    $crate::within($crate::TEST_DEADLINE, super::$test(fixture)).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn mysql() {
                    let Some(fixture) = $fixture($crate::Db::Mysql, &[$($($arg),*)?]).await
                    else {
                        return;
                    };
                    $crate::within($crate::TEST_DEADLINE, super::$test(fixture)).await;
                }
            }
        )*
    };
    ($($test:ident),* $(,)?) => {
        $crate::on_both_backends!(fixture = $crate::backend; $($test),*);
    };
}

//! The shared servers tests use besides the database: Redis and RabbitMQ, and the test logs.

use std::{sync::Once, time::Duration};

/// Shows the services' logs when `TEST_LOG` is set, filtered by `RUST_LOG` or `default_filter`.
pub fn init_logs(default_filter: &str) {
    static LOGS: Once = Once::new();
    LOGS.call_once(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| default_filter.to_owned());
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
                .with_test_writer()
                .try_init();
        }
    });
}

/// The Redis the tests use: `TEST_REDIS_URL` (CI sets it, so a Redis that is down fails the
/// run), else one on 127.0.0.1:6379 when it answers; `None` (the test is skipped, with a
/// message) when neither.
pub async fn redis_url() -> Option<String> {
    service_url(
        "Redis",
        "TEST_REDIS_URL",
        "127.0.0.1:6379",
        "redis://127.0.0.1:6379",
    )
    .await
}

/// The RabbitMQ the tests use, as [`redis_url`]: `TEST_AMQP_URL`, else the default one on
/// 127.0.0.1:5672.
pub async fn amqp_url() -> Option<String> {
    service_url(
        "RabbitMQ",
        "TEST_AMQP_URL",
        "127.0.0.1:5672",
        "amqp://guest:guest@127.0.0.1:5672/%2f",
    )
    .await
}

/// `variable`'s URL, else `local` when `address` answers, else `None` with a message.
async fn service_url(name: &str, variable: &str, address: &str, local: &str) -> Option<String> {
    if let Ok(url) = std::env::var(variable) {
        return Some(url);
    }
    let reachable = tokio::time::timeout(
        Duration::from_secs(1),
        tokio::net::TcpStream::connect(address),
    )
    .await
    .is_ok_and(|connected| connected.is_ok());
    if reachable {
        Some(local.to_owned())
    } else {
        eprintln!("skipped: no {name} (set {variable} or run one on {address})");
        None
    }
}

/// Stops or starts the local RabbitMQ's application (`rabbitmqctl stop_app` / `start_app`),
/// keeping its durable queues and persistent messages.
///
/// # Panics
/// When `rabbitmqctl` cannot run or fails.
pub async fn rabbitmq(action: &'static str) {
    let status = tokio::task::spawn_blocking(move || {
        std::process::Command::new("rabbitmqctl")
            .arg(action)
            .status()
    })
    .await
    .expect("rabbitmqctl ran")
    .expect("rabbitmqctl runs");
    assert!(status.success(), "rabbitmqctl {action}");
}

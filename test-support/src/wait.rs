//! Waiting in tests: polled conditions and deadlines, never sleeps for a guessed time.

use std::{
    future::Future,
    time::{Duration, Instant},
};

/// Polls `condition` every 50 ms until it holds or `timeout` passes; returns whether it held.
pub async fn eventually<F, Fut>(timeout: Duration, mut condition: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if condition().await {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// How long one test of [`on_both_backends!`](crate::on_both_backends) may run.
pub const TEST_DEADLINE: Duration = Duration::from_secs(120);

/// Runs `future` with a deadline, so that a hang fails the test with a message instead of
/// blocking the run.
///
/// # Panics
/// When the deadline passes.
pub async fn within<T>(deadline: Duration, future: impl Future<Output = T>) -> T {
    match tokio::time::timeout(deadline, future).await {
        Ok(output) => output,
        Err(_) => panic!("the test did not finish within {deadline:?}"),
    }
}

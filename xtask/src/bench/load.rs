//! The load generator: virtual users issuing one operation after another (closed loop, fixed
//! concurrency), or requests started on a fixed schedule (open loop, fixed rate), with the
//! latency of every request kept for percentiles.
//!
//! An operation is any async function of the virtual user's index, so the same loop drives
//! GraphQL through the gateway and bare gRPC calls for the floor.

use std::{
    future::Future,
    sync::Arc,
    time::{Duration, Instant},
};

use tokio::{
    sync::{Semaphore, mpsc},
    task::JoinSet,
};

/// What one run measured.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub requests: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub elapsed: Duration,
    /// Microseconds, sorted.
    pub latencies: Vec<u64>,
}

impl Stats {
    pub fn per_second(&self) -> f64 {
        let seconds = self.elapsed.as_secs_f64();
        if seconds > 0.0 {
            #[allow(clippy::cast_precision_loss, reason = "counts stay far below 2^52")]
            let requests = self.requests as f64;
            requests / seconds
        } else {
            0.0
        }
    }

    /// The latency below which `fraction` of requests finished, in milliseconds.
    pub fn percentile_ms(&self, fraction: f64) -> f64 {
        #[allow(
            clippy::cast_precision_loss,
            reason = "microseconds stay far below 2^52"
        )]
        percentile(&self.latencies, fraction).map_or(0.0, |micros| micros as f64 / 1000.0)
    }

    fn merge(&mut self, other: Self) {
        self.requests += other.requests;
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        self.latencies.extend(other.latencies);
    }

    fn record(&mut self, latency: Duration, outcome: anyhow::Result<()>) {
        match outcome {
            Ok(()) => {
                self.requests += 1;
                let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
                self.latencies.push(micros);
            }
            Err(error) => {
                self.errors += 1;
                if self.first_error.is_none() {
                    self.first_error = Some(format!("{error:#}"));
                }
            }
        }
    }
}

/// The nearest-rank percentile of sorted `values`: the smallest value with at least `fraction`
/// of all values at or below it. `None` when there are no values.
pub fn percentile(sorted: &[u64], fraction: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    #[allow(
        clippy::cast_precision_loss,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "a rank between 1 and len"
    )]
    let rank = (fraction.clamp(0.0, 1.0) * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

/// `concurrency` virtual users each run `operation` back to back for `duration`; virtual user
/// `n` always passes `n`. Requests still running at the end are waited for and counted.
pub async fn closed_loop<F, Fut>(concurrency: usize, duration: Duration, operation: F) -> Stats
where
    F: Fn(usize) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let started = Instant::now();
    let deadline = started + duration;
    let mut users = JoinSet::new();
    for user in 0..concurrency {
        let operation = operation.clone();
        users.spawn(async move {
            let mut stats = Stats::default();
            while Instant::now() < deadline {
                let request_started = Instant::now();
                let outcome = operation(user).await;
                stats.record(request_started.elapsed(), outcome);
            }
            stats
        });
    }
    let mut total = Stats::default();
    while let Some(result) = users.join_next().await {
        if let Ok(stats) = result {
            total.merge(stats);
        }
    }
    total.elapsed = started.elapsed();
    total.latencies.sort_unstable();
    total
}

/// Starts `rate` requests per second for `duration`, on schedule whatever the answers do (at
/// most `max_in_flight` at once). Latency counts from the scheduled start, so a stall shows
/// in the percentiles instead of silently lowering the load (no coordinated omission).
///
/// # Errors
/// When the thread that starts the requests cannot be spawned.
pub async fn open_loop<F, Fut>(
    rate: f64,
    users: usize,
    max_in_flight: usize,
    duration: Duration,
    operation: F,
) -> anyhow::Result<Stats>
where
    F: Fn(usize) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let started = Instant::now();
    let interval = Duration::from_secs_f64(1.0 / rate.max(1.0));
    let permits = Arc::new(Semaphore::new(max_in_flight.max(1)));
    let (finished, mut results) = mpsc::unbounded_channel();
    let runtime = tokio::runtime::Handle::current();
    // Requests are started from a thread of their own, sleeping with the OS's precision (tens
    // of µs). tokio's timers tick in whole milliseconds: with `sleep_until` each request
    // started up to 1 ms after its scheduled time, the requests of one tick all at once, and
    // that wait counted in every latency (`me` through the bare floor: p50 1.42 ms for 26 µs
    // of backend CPU).
    let starter = std::thread::Builder::new()
        .name("open-loop".to_owned())
        .spawn(move || {
            for index in 0_u32.. {
                let scheduled = started + interval * index;
                if scheduled >= started + duration {
                    break;
                }
                std::thread::sleep(scheduled.saturating_duration_since(Instant::now()));
                let Ok(permit) = runtime.block_on(Arc::clone(&permits).acquire_owned()) else {
                    break;
                };
                let operation = operation.clone();
                let finished = finished.clone();
                let user = usize::try_from(index).unwrap_or_default() % users.max(1);
                runtime.spawn(async move {
                    let outcome = operation(user).await;
                    drop(permit);
                    // The receiver outlives every request: it reads until all senders are gone.
                    let _ = finished.send((scheduled.elapsed(), outcome));
                });
            }
        })?;
    let mut total = Stats::default();
    // Ends when the starter and every request it started have dropped their senders.
    while let Some((latency, outcome)) = results.recv().await {
        total.record(latency, outcome);
    }
    if starter.join().is_err() {
        anyhow::bail!("the open-loop starter thread panicked");
    }
    total.elapsed = started.elapsed();
    total.latencies.sort_unstable();
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn open_loop_starts_every_scheduled_request_once_round_the_users() {
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let record = Arc::clone(&seen);
        let stats = open_loop(2000.0, 3, 4, Duration::from_millis(50), move |user| {
            let record = Arc::clone(&record);
            async move {
                record.lock().unwrap().push(user);
                if user == 2 {
                    anyhow::bail!("user 2 fails");
                }
                Ok(())
            }
        })
        .await
        .unwrap();
        let mut seen = seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 100, "2000/s for 50 ms");
        assert_eq!(stats.requests + stats.errors, 100);
        assert_eq!(stats.errors, 33);
        assert_eq!(stats.latencies.len(), 67);
        assert_eq!(stats.first_error.as_deref(), Some("user 2 fails"));
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen, [0, 1, 2]);
    }

    #[test]
    fn nearest_rank_percentiles() {
        let values: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&values, 0.5), Some(50));
        assert_eq!(percentile(&values, 0.9), Some(90));
        assert_eq!(percentile(&values, 0.99), Some(99));
        assert_eq!(percentile(&values, 1.0), Some(100));
        assert_eq!(percentile(&values, 0.0), Some(1));
    }

    #[test]
    fn percentiles_of_few_values() {
        assert_eq!(percentile(&[], 0.5), None);
        assert_eq!(percentile(&[7], 0.99), Some(7));
        assert_eq!(percentile(&[1, 2, 3], 0.5), Some(2));
        assert_eq!(percentile(&[1, 2, 3], 0.67), Some(3));
    }

    #[test]
    fn errors_are_counted_apart_from_latencies() {
        let mut stats = Stats::default();
        stats.record(Duration::from_millis(1), Ok(()));
        stats.record(Duration::ZERO, Err(anyhow::anyhow!("boom")));
        stats.record(Duration::ZERO, Err(anyhow::anyhow!("second")));
        assert_eq!((stats.requests, stats.errors), (1, 2));
        assert_eq!(stats.latencies.len(), 1);
        assert_eq!(stats.first_error.as_deref(), Some("boom"));
    }
}

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

use tokio::{sync::Semaphore, task::JoinSet};

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
/// When the clock (a Linux timerfd) cannot be made.
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
    let mut clock = Clock::new(started)?;
    let interval = Duration::from_secs_f64(1.0 / rate.max(1.0));
    let permits = Arc::new(Semaphore::new(max_in_flight.max(1)));
    let mut requests = JoinSet::new();
    let mut total = Stats::default();
    let mut index: u32 = 0;
    loop {
        let scheduled = started + interval * index;
        if scheduled >= started + duration {
            break;
        }
        clock.sleep_until(scheduled).await?;
        let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
            break;
        };
        let operation = operation.clone();
        let user = usize::try_from(index).unwrap_or_default() % users.max(1);
        requests.spawn(async move {
            let outcome = operation(user).await;
            drop(permit);
            (scheduled.elapsed(), outcome)
        });
        index += 1;
        // Collect finished requests as we go so the set stays small.
        while let Some(result) = requests.try_join_next() {
            if let Ok((latency, outcome)) = result {
                total.record(latency, outcome);
            }
        }
    }
    while let Some(result) = requests.join_next().await {
        if let Ok((latency, outcome)) = result {
            total.record(latency, outcome);
        }
    }
    total.elapsed = started.elapsed();
    total.latencies.sort_unstable();
    Ok(total)
}

/// Wakes the open loop at each scheduled start.
///
/// tokio's timers tick in whole milliseconds: with `tokio::time::sleep_until` each request
/// started up to 1 ms late, a tick's requests at once, and that wait counted in every latency
/// (`me` through the bare floor: p50 1.42 ms for 26 µs of backend CPU). On Linux a timerfd
/// wakes this same thread within microseconds, without a thread of its own that would have to
/// wake the runtime for every request.
struct Clock {
    #[cfg(target_os = "linux")]
    timer: tokio_timerfd::Delay,
}

impl Clock {
    #[cfg(target_os = "linux")]
    fn new(now: Instant) -> std::io::Result<Self> {
        Ok(Self {
            timer: tokio_timerfd::Delay::new(now)?,
        })
    }

    #[cfg(not(target_os = "linux"))]
    #[allow(clippy::unnecessary_wraps, reason = "the same signature as on Linux")]
    fn new(_now: Instant) -> std::io::Result<Self> {
        Ok(Self {})
    }

    #[cfg(target_os = "linux")]
    async fn sleep_until(&mut self, deadline: Instant) -> std::io::Result<()> {
        self.timer.reset(deadline);
        (&mut self.timer).await
    }

    #[cfg(not(target_os = "linux"))]
    #[allow(clippy::unused_async, reason = "the same signature as on Linux")]
    async fn sleep_until(&mut self, deadline: Instant) -> std::io::Result<()> {
        tokio::time::sleep_until(deadline.into()).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 100, "2000/s for 50 ms");
        assert_eq!(seen[..6], [0, 1, 2, 0, 1, 2]);
        assert_eq!((stats.requests, stats.errors), (67, 33));
        assert_eq!(stats.latencies.len(), 67);
        assert_eq!(stats.first_error.as_deref(), Some("user 2 fails"));
        assert!(
            stats.elapsed >= Duration::from_millis(49),
            "{:?}",
            stats.elapsed
        );
    }

    #[tokio::test]
    async fn open_loop_counts_the_wait_for_a_free_slot_in_the_latency() {
        // One slot, requests due every 1 ms that each take 5 ms: later requests wait for the
        // slot, and that wait must show (no coordinated omission).
        let stats = open_loop(1000.0, 1, 1, Duration::from_millis(10), |_| async {
            tokio::time::sleep(Duration::from_millis(5)).await;
            Ok(())
        })
        .await
        .unwrap();
        assert_eq!(stats.requests, 10);
        let slowest = Duration::from_micros(*stats.latencies.last().unwrap());
        assert!(slowest >= Duration::from_millis(40), "{slowest:?}");
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

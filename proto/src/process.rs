//! Process conventions every service binary shares.

/// Completes on SIGTERM (container stop) or Ctrl-C, whichever comes first.
pub async fn shutdown_signal() {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}

/// The service's async runtime: `worker_threads` threads, or tokio's default (one per CPU, or
/// `TOKIO_WORKER_THREADS`) when unset.
///
/// # Errors
/// When the runtime cannot start its threads or its I/O driver.
pub fn runtime(
    worker_threads: Option<std::num::NonZeroUsize>,
) -> std::io::Result<tokio::runtime::Runtime> {
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    runtime.enable_all();
    if let Some(threads) = worker_threads {
        runtime.worker_threads(threads.get());
    }
    runtime.build()
}

/// The wait between reconnection attempts of a long-running loop (an event stream, a broker
/// connection): 100 ms, doubled after each failed attempt up to 5 s, and back to 100 ms after a
/// run that ended well.
#[derive(Debug)]
pub struct Backoff {
    next: std::time::Duration,
}

impl Backoff {
    const FIRST: std::time::Duration = std::time::Duration::from_millis(100);
    const LONGEST: std::time::Duration = std::time::Duration::from_secs(5);

    /// After a run that ended well: the next wait is the shortest again.
    pub fn reset(&mut self) {
        self.next = Self::FIRST;
    }

    /// Waits before the next attempt, then doubles the wait; `false` at once when `stopping`
    /// turns true first (the loop should end).
    pub async fn wait(&mut self, stopping: &mut tokio::sync::watch::Receiver<bool>) -> bool {
        let wait = self.next;
        self.next = (self.next * 2).min(Self::LONGEST);
        tokio::select! {
            () = tokio::time::sleep(wait) => true,
            _ = stopping.wait_for(|stopping| *stopping) => false,
        }
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Self { next: Self::FIRST }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_its_ceiling_and_resets() {
        let mut backoff = Backoff::default();
        let mut waits = Vec::new();
        for _ in 0..8 {
            waits.push(backoff.next.as_millis());
            backoff.next = (backoff.next * 2).min(Backoff::LONGEST);
        }
        assert_eq!(waits, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
        backoff.reset();
        assert_eq!(backoff.next, Backoff::FIRST);
    }

    #[tokio::test]
    async fn stopping_ends_the_wait_at_once() {
        let (stop, mut stopping) = tokio::sync::watch::channel(false);
        let mut backoff = Backoff::default();
        assert!(backoff.wait(&mut stopping).await, "the first wait passes");
        assert_eq!(backoff.next.as_millis(), 200, "and doubles");
        backoff.next = Backoff::LONGEST;
        stop.send(true).unwrap();
        let started = std::time::Instant::now();
        assert!(!backoff.wait(&mut stopping).await);
        assert!(started.elapsed() < Backoff::LONGEST);
    }
}

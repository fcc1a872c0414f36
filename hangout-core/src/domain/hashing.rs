//! A small fixed pool of threads for password hashing.
//!
//! Each argon2id hash works in 19 MiB of memory. On tokio's blocking pool, concurrent sign-ins
//! would each run on whichever of up to 512 threads is free, and the allocator keeps freed
//! memory per thread: memory grew past a gigabyte under load. A fixed pool of one thread per
//! two cores bounds both the memory and the CPU an anonymous caller can make us spend. Requests
//! beyond it wait in a bounded queue; when that is full, they are refused at once
//! ([`DomainError::Overloaded`]) rather than waiting behind a flood.

use std::sync::{Arc, Mutex, PoisonError, mpsc};

use crate::domain::error::{DomainError, DomainResult};

type Job = Box<dyn FnOnce() + Send>;

/// The hashing threads; dropping the pool lets them finish their queue and exit.
pub struct HashingPool {
    jobs: Mutex<mpsc::SyncSender<Job>>,
}

impl HashingPool {
    /// Starts `threads` threads (at least one), with room for `queue` jobs waiting.
    ///
    /// # Errors
    /// `Hashing` when a thread cannot be started.
    pub fn new(threads: usize, queue: usize) -> DomainResult<Self> {
        let (sender, receiver) = mpsc::sync_channel::<Job>(queue);
        let receiver = Arc::new(Mutex::new(receiver));
        for index in 0..threads.max(1) {
            let receiver = Arc::clone(&receiver);
            std::thread::Builder::new()
                .name(format!("password-hash-{index}"))
                .spawn(move || {
                    loop {
                        let job = receiver
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .recv();
                        match job {
                            Ok(job) => job(),
                            Err(_) => break,
                        }
                    }
                })
                .map_err(|error| DomainError::Hashing(error.to_string()))?;
        }
        Ok(Self {
            jobs: Mutex::new(sender),
        })
    }

    /// Runs `work` on a hashing thread and blocks the calling thread until it is done: for
    /// start-up, so that only the pool's threads ever hold argon2 memory.
    ///
    /// # Errors
    /// `Hashing` when the pool is gone or the work panicked.
    pub fn run_blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> DomainResult<T> {
        let (done, result) = mpsc::sync_channel(1);
        // Start-up work waits for room rather than being refused.
        self.jobs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .send(Box::new(move || {
                let _ = done.send(work());
            }))
            .map_err(|_| DomainError::Hashing("the hashing pool stopped".to_owned()))?;
        result
            .recv()
            .map_err(|_| DomainError::Hashing("a hashing job failed".to_owned()))
    }

    /// Queues `job`, or refuses it at once when the queue is full.
    fn submit(&self, job: Job) -> DomainResult<()> {
        self.jobs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .try_send(job)
            .map_err(|error| match error {
                mpsc::TrySendError::Full(_) => DomainError::Overloaded,
                mpsc::TrySendError::Disconnected(_) => {
                    DomainError::Hashing("the hashing pool stopped".to_owned())
                }
            })
    }

    /// Runs `work` on a hashing thread and waits for its result.
    ///
    /// # Errors
    /// `Overloaded` when the queue is full; `Hashing` when the pool is gone or the work
    /// panicked.
    ///
    /// The job is queued when this is called, not when the future is first polled.
    pub fn run<T: Send + 'static, W: FnOnce() -> T + Send + 'static>(
        &self,
        work: W,
    ) -> impl Future<Output = DomainResult<T>> + use<T, W> {
        let (done, result) = tokio::sync::oneshot::channel();
        let submitted = self.submit(Box::new(move || {
            let _ = done.send(work());
        }));
        async move {
            submitted?;
            result
                .await
                .map_err(|_| DomainError::Hashing("a hashing job failed".to_owned()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_work_and_returns_its_result() {
        let pool = HashingPool::new(2, 4).expect("threads start");
        let results = futures_like_join(&pool).await;
        assert_eq!(results, vec![0, 2, 4, 6]);
    }

    #[test]
    fn blocking_work_runs_on_a_pool_thread() {
        let pool = HashingPool::new(1, 1).expect("threads start");
        let thread = pool
            .run_blocking(|| std::thread::current().name().map(str::to_owned))
            .expect("ran");
        assert_eq!(thread.as_deref(), Some("password-hash-0"));
    }

    #[tokio::test]
    async fn a_full_queue_refuses_at_once() {
        let pool = HashingPool::new(1, 1).expect("threads start");
        let (release, held) = std::sync::mpsc::channel::<()>();
        let (started, running) = tokio::sync::oneshot::channel();
        // One job runs (held until released), one waits in the queue: the next is refused.
        let busy = tokio::spawn(pool.run(move || {
            let _ = started.send(());
            let _ = held.recv();
        }));
        running.await.expect("the first job runs");
        let queued = pool.run(|| 1);
        let refused = pool.run(|| 2).await;
        assert!(
            matches!(refused, Err(DomainError::Overloaded)),
            "{refused:?}"
        );
        release.send(()).expect("release");
        assert_eq!(queued.await.expect("queued job runs"), 1);
        busy.await.expect("joined").expect("ran");
    }

    async fn futures_like_join(pool: &HashingPool) -> Vec<u32> {
        let mut results = Vec::new();
        for value in 0..4_u32 {
            results.push(pool.run(move || value * 2).await.expect("ran"));
        }
        results
    }
}

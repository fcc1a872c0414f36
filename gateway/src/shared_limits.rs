//! Limits shared by every gateway instance, kept in Redis (`GATEWAY_REDIS_URL`): N instances
//! behind nginx then enforce one budget per client address, user and email, instead of N.
//!
//! Each decision is one atomic Lua script on the server (Redis is the clock, so instances'
//! clocks need not agree):
//! - [`GCRA`]: the generic cell rate algorithm, the same one `governor` runs in process. A
//!   key's state is its theoretical arrival time; a request of cost `n` moves it `n` emission
//!   intervals later and passes while it stays within the burst of now.
//! - [`FAILURES`] / [`FAILURES_CHECK`]: a count per key that expires with its window, for the
//!   failed sign-ins of an email. Emails are stored as SHA-256 digests, never in the clear.
//!
//! When Redis cannot answer in time, the caller decides with its in-process limiter instead:
//! the first such fallback is logged (and the recovery), every one is counted in
//! `gateway_shared_limit_fallbacks`. After a failure, Redis is not asked again for
//! [`RETRY_AFTER_FAILURE`], so an outage does not add a timeout to every request.

use std::{
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use prometheus_client::metrics::counter::Counter;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use sha2::Digest as _;

/// How long a Redis round trip may take before the decision is made locally.
const TIMEOUT: Duration = Duration::from_millis(250);

/// How long after a failure Redis is left alone.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(1);

/// GCRA over microseconds. KEYS[1]: the key; ARGV: emission interval (µs per token), burst
/// (tokens), cost (tokens). Returns 0 when it passes (and records it), else the µs to wait.
const GCRA: &str = r"
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local next_tat = tat + cost * interval
local ahead = next_tat - now
local allowed = burst * interval
if ahead > allowed then
  return math.max(1, math.ceil(ahead - allowed))
end
redis.call('SET', KEYS[1], string.format('%.0f', next_tat), 'PX', math.ceil(ahead / 1000) + 1)
return 0
";

/// Counts one failure. KEYS[1]: the key; ARGV[1]: the window in ms. Returns the count.
const FAILURES: &str = r"
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return count
";

/// KEYS[1]: the key; ARGV[1]: the most failures allowed. Returns 0 when under it, else the
/// ms until the window ends.
const FAILURES_CHECK: &str = r"
local count = tonumber(redis.call('GET', KEYS[1]) or '0')
if count < tonumber(ARGV[1]) then return 0 end
local left = redis.call('PTTL', KEYS[1])
if left < 0 then return 0 end
return math.max(1, left)
";

/// The outcome of asking Redis: its answer, or that the caller must decide alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shared<T> {
    Decided(T),
    Unavailable,
}

/// The connection to Redis and the scripts.
pub struct SharedLimits {
    client: redis::Client,
    /// The connection once made (a `ConnectionManager` reconnects by itself after that).
    connection: Mutex<Option<ConnectionManager>>,
    /// Held by the one request that is connecting.
    connecting: tokio::sync::Mutex<()>,
    failed_at: Mutex<Option<Instant>>,
    degraded: AtomicBool,
    fallbacks: Counter,
    gcra: redis::Script,
    failures: redis::Script,
    failures_check: redis::Script,
}

impl std::fmt::Debug for SharedLimits {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("SharedLimits")
            .field("degraded", &self.degraded.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// Why a Redis URL cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("not a usable Redis URL (redis://[user:password@]host[:port][/db])")]
pub struct InvalidUrl;

impl SharedLimits {
    /// Limits in the Redis at `url`; connects on first use. `fallbacks` counts the decisions
    /// taken locally.
    ///
    /// # Errors
    /// [`InvalidUrl`]; the URL itself is never printed (it may hold a password).
    pub fn new(url: &str, fallbacks: Counter) -> Result<Arc<Self>, InvalidUrl> {
        let client = redis::Client::open(url).map_err(|_| InvalidUrl)?;
        Ok(Arc::new(Self {
            client,
            connection: Mutex::new(None),
            connecting: tokio::sync::Mutex::new(()),
            failed_at: Mutex::new(None),
            degraded: AtomicBool::new(false),
            fallbacks,
            gcra: redis::Script::new(GCRA),
            failures: redis::Script::new(FAILURES),
            failures_check: redis::Script::new(FAILURES_CHECK),
        }))
    }

    /// Charges `cost` tokens to `key` under a budget of `per_second` and `burst`: `Ok` when
    /// it passes, else how long to wait.
    pub async fn charge(
        &self,
        key: &str,
        per_second: u32,
        burst: u32,
        cost: u32,
    ) -> Shared<Result<(), Duration>> {
        let interval = (1_000_000 / u64::from(per_second.max(1))).max(1);
        let mut invocation = self.gcra.key(format!("hangout:limit:{key}"));
        invocation.arg(interval).arg(burst).arg(cost);
        match self.eval(&invocation).await {
            Shared::Decided(0) => Shared::Decided(Ok(())),
            Shared::Decided(wait) => Shared::Decided(Err(Duration::from_micros(wait))),
            Shared::Unavailable => Shared::Unavailable,
        }
    }

    /// Whether `email` may still try to sign in: `Ok`, or how long until its window ends.
    pub async fn failures_left(&self, email: &str, max: u32) -> Shared<Result<(), Duration>> {
        let mut invocation = self.failures_check.key(email_key(email));
        invocation.arg(max);
        match self.eval(&invocation).await {
            Shared::Decided(0) => Shared::Decided(Ok(())),
            Shared::Decided(wait) => Shared::Decided(Err(Duration::from_millis(wait))),
            Shared::Unavailable => Shared::Unavailable,
        }
    }

    /// Counts a failed sign-in for `email` in a window of `window`.
    pub async fn fail(&self, email: &str, window: Duration) -> Shared<()> {
        let mut invocation = self.failures.key(email_key(email));
        invocation.arg(u64::try_from(window.as_millis()).unwrap_or(u64::MAX).max(1));
        match self.eval(&invocation).await {
            Shared::Decided(_) => Shared::Decided(()),
            Shared::Unavailable => Shared::Unavailable,
        }
    }

    /// Runs a script within [`TIMEOUT`]; `Unavailable` (counted once) when Redis cannot answer.
    async fn eval(&self, invocation: &redis::ScriptInvocation<'_>) -> Shared<u64> {
        let Some(mut connection) = self.connection().await else {
            self.fallbacks.inc();
            return Shared::Unavailable;
        };
        match tokio::time::timeout(TIMEOUT, invocation.invoke_async::<u64>(&mut connection)).await {
            Ok(Ok(value)) => {
                if self.degraded.swap(false, Ordering::Relaxed) {
                    tracing::info!("Redis answers again: rate limits are shared again");
                }
                Shared::Decided(value)
            }
            Ok(Err(error)) => {
                self.failed(&error);
                self.fallbacks.inc();
                Shared::Unavailable
            }
            Err(_) => {
                self.failed(&"no answer in time");
                self.fallbacks.inc();
                Shared::Unavailable
            }
        }
    }

    /// The connection, connecting first when there is none; `None` right after a failure, or
    /// while another request is connecting (it decides locally rather than waiting).
    async fn connection(&self) -> Option<ConnectionManager> {
        let failed_at = *self
            .failed_at
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if failed_at.is_some_and(|at| at.elapsed() < RETRY_AFTER_FAILURE) {
            return None;
        }
        let made = || {
            self.connection
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone()
        };
        if let Some(connection) = made() {
            return Some(connection);
        }
        let _connecting = self.connecting.try_lock().ok()?;
        // Another request may have connected while this one waited for the slot.
        if let Some(connection) = made() {
            return Some(connection);
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(TIMEOUT))
            .set_response_timeout(Some(TIMEOUT))
            .set_number_of_retries(1);
        let connecting = self.client.get_connection_manager_with_config(config);
        match tokio::time::timeout(TIMEOUT * 2, connecting).await {
            Ok(Ok(connection)) => {
                *self
                    .connection
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = Some(connection.clone());
                Some(connection)
            }
            Ok(Err(error)) => {
                self.failed(&error);
                None
            }
            Err(_) => {
                self.failed(&"connecting timed out");
                None
            }
        }
    }

    /// Records a failure (and logs the first of a run of them).
    fn failed(&self, why: &dyn std::fmt::Display) {
        *self
            .failed_at
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
        if !self.degraded.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                error = %why,
                "Redis is unreachable: rate limits fall back to this instance's own until it answers"
            );
        }
    }
}

/// The Redis key of an email's failures: its digest, so no address is stored.
fn email_key(email: &str) -> String {
    let digest = sha2::Sha256::digest(email.trim().to_lowercase().as_bytes());
    let mut key = String::from("hangout:sign-in-failures:");
    for byte in digest {
        use std::fmt::Write as _;
        let _ = write!(key, "{byte:02x}");
    }
    key
}

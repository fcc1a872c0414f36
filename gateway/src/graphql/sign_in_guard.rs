//! Failed sign-ins per target email: after [`SignInGuard::max_failures`] failures for one
//! address within the window, further attempts for it are refused with TOO_MANY_REQUESTS until
//! the window ends, whoever sends them. The key is the email text as given (trimmed,
//! lower-cased), never whether an account has it, so the answer is the same for an unknown
//! address: the guard reveals nothing about which accounts exist.
//!
//! The per-address limits (`http::rate_limit`) bound how fast one client may try; this bounds
//! how often anyone may guess one account's password, however many addresses they use.
//! Entries are kept in a bounded cache, so a flood of made-up addresses costs fixed memory.
//! With `GATEWAY_REDIS_URL`, the counts live in Redis instead (shared by every instance);
//! the in-process ones count only while Redis is unreachable.

use std::{
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use crate::shared_limits::Shared;

/// Emails whose failures are tracked at most; the least recently used are forgotten first.
const TRACKED_EMAILS: usize = 100_000;

/// One email's failures in its current window.
#[derive(Clone, Copy, Debug)]
struct Window {
    started: Instant,
    failures: u32,
}

/// The failures of every tracked email.
pub struct SignInGuard {
    windows: quick_cache::sync::Cache<Box<str>, Arc<Mutex<Window>>>,
    max_failures: u32,
    window: Duration,
    shared: Option<Arc<crate::shared_limits::SharedLimits>>,
}

impl std::fmt::Debug for SignInGuard {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("SignInGuard")
            .field("tracked", &self.windows.len())
            .field("max_failures", &self.max_failures)
            .field("window", &self.window)
            .finish()
    }
}

/// The key of an email: what a user may type differently for the same account.
fn key(email: &str) -> Box<str> {
    email.trim().to_lowercase().into_boxed_str()
}

impl SignInGuard {
    /// At most `max_failures` failed sign-ins per email within `window`; `0` turns it off.
    #[must_use]
    pub fn new(
        max_failures: u32,
        window: Duration,
        shared: Option<Arc<crate::shared_limits::SharedLimits>>,
    ) -> Self {
        Self {
            windows: quick_cache::sync::Cache::new(TRACKED_EMAILS),
            max_failures,
            window,
            shared,
        }
    }

    /// Whether a sign-in for `email` may be tried now.
    ///
    /// # Errors
    /// How long until it may, when the email has used up its failures.
    pub async fn check(&self, email: &str) -> Result<(), Duration> {
        if self.max_failures == 0 {
            return Ok(());
        }
        if let Some(shared) = &self.shared
            && let Shared::Decided(decided) = shared.failures_left(email, self.max_failures).await
        {
            return decided;
        }
        self.check_at(email, Instant::now())
    }

    fn check_at(&self, email: &str, now: Instant) -> Result<(), Duration> {
        if self.max_failures == 0 {
            return Ok(());
        }
        let Some(window) = self.windows.get(&key(email)) else {
            return Ok(());
        };
        let window = *window.lock().unwrap_or_else(PoisonError::into_inner);
        let ends = window.started + self.window;
        if window.failures >= self.max_failures && now < ends {
            Err(ends - now)
        } else {
            Ok(())
        }
    }

    /// Counts a failed sign-in for `email`.
    pub async fn failed(&self, email: &str) {
        if self.max_failures == 0 {
            return;
        }
        if let Some(shared) = &self.shared
            && shared.fail(email, self.window).await == Shared::Decided(())
        {
            return;
        }
        self.failed_at(email, Instant::now());
    }

    fn failed_at(&self, email: &str, now: Instant) {
        if self.max_failures == 0 {
            return;
        }
        let entry = self
            .windows
            .get_or_insert_with(&key(email), || {
                Ok::<_, std::convert::Infallible>(Arc::new(Mutex::new(Window {
                    started: now,
                    failures: 0,
                })))
            })
            .unwrap_or_else(|never| match never {});
        let mut window = entry.lock().unwrap_or_else(PoisonError::into_inner);
        if now >= window.started + self.window {
            *window = Window {
                started: now,
                failures: 0,
            };
        }
        window.failures = window.failures.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_email_is_refused_after_its_failures_until_the_window_ends() {
        let guard = SignInGuard::new(3, Duration::from_secs(900), None);
        let start = Instant::now();
        for _ in 0..3 {
            assert!(guard.check_at("ada@example.com", start).is_ok());
            guard.failed_at("ada@example.com", start);
        }
        // However it is spelled.
        let wait = guard
            .check_at(" ADA@example.com", start + Duration::from_secs(100))
            .expect_err("used up");
        assert_eq!(wait, Duration::from_secs(800));
        assert!(guard.check_at("bob@example.com", start).is_ok());
        assert!(
            guard
                .check_at("ada@example.com", start + Duration::from_secs(900))
                .is_ok()
        );
        // A new window starts counting from zero.
        guard.failed_at("ada@example.com", start + Duration::from_secs(901));
        assert!(
            guard
                .check_at("ada@example.com", start + Duration::from_secs(902))
                .is_ok()
        );
    }

    #[tokio::test]
    async fn zero_turns_the_guard_off() {
        let guard = SignInGuard::new(0, Duration::from_secs(900), None);
        for _ in 0..100 {
            guard.failed("ada@example.com").await;
        }
        assert!(guard.check("ada@example.com").await.is_ok());
    }
}

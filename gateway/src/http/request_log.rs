//! Which GraphQL requests get their INFO line (`graphql request`): all by default; busy
//! deployments sample them, as access logs often are, or keep only the failed ones. A request
//! with errors is always logged, whatever the setting (its errors are what an operator looks
//! for); metrics count every request regardless.

use std::sync::atomic::{AtomicU64, Ordering};

pub use crate::config::RequestLog;

/// Decides, request by request, whether to write the line.
#[derive(Debug)]
pub struct RequestLogger {
    setting: RequestLog,
    /// Successful requests seen, for sampling.
    seen: AtomicU64,
}

impl RequestLogger {
    #[must_use]
    pub fn new(setting: RequestLog) -> Self {
        Self {
            setting,
            seen: AtomicU64::new(0),
        }
    }

    /// Whether the request that just ended, with `errors` errors, gets its line.
    pub fn should_log(&self, errors: usize) -> bool {
        match self.setting {
            RequestLog::All => true,
            RequestLog::Off => false,
            RequestLog::Errors => errors > 0,
            RequestLog::OneIn(n) => {
                errors > 0 || self.seen.fetch_add(1, Ordering::Relaxed).is_multiple_of(n)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_setting_takes_four_forms() {
        assert_eq!(RequestLog::parse("all"), Ok(RequestLog::All));
        assert_eq!(RequestLog::parse(" errors "), Ok(RequestLog::Errors));
        assert_eq!(RequestLog::parse("off"), Ok(RequestLog::Off));
        assert_eq!(RequestLog::parse("1/100"), Ok(RequestLog::OneIn(100)));
        assert_eq!(RequestLog::parse("1/1"), Ok(RequestLog::All));
        for refused in ["1/0", "2/3", "some", "", "1/x"] {
            assert!(RequestLog::parse(refused).is_err(), "{refused}");
        }
    }

    #[test]
    fn sampling_keeps_one_in_n_and_every_error() {
        let logger = RequestLogger::new(RequestLog::OneIn(10));
        let kept = (0..100).filter(|_| logger.should_log(0)).count();
        assert_eq!(kept, 10);
        assert!((0..5).all(|_| logger.should_log(1)), "errors always");
        let errors_only = RequestLogger::new(RequestLog::Errors);
        assert!(!errors_only.should_log(0));
        assert!(errors_only.should_log(2));
        let off = RequestLogger::new(RequestLog::Off);
        assert!(!off.should_log(3));
    }
}

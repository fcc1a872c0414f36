//! When download URLs are signed, and for how long.
//!
//! A URL signed at the moment of each read differs on every read, so a browser re-downloads
//! every photo of a page each time the page is fetched, and a GraphQL client cache sees every
//! memory change. Instead, a download is signed at the start of the current *signing window*
//! (a quarter of the configured lifetime) and made valid for that much longer: every read of a
//! file within one window gives the same URL, and every URL handed out is still valid for at
//! least the configured lifetime. Because the URL is then a pure function of the object key and
//! the window, the S3 adapter can also keep the URLs of the current window instead of signing
//! them again.

use std::time::Duration;

use crate::domain::time::Timestamp;

/// Longest validity SigV4 allows for a presigned URL.
pub const MAX_PRESIGN_TTL: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// The fraction of the lifetime one signing window spans.
const WINDOWS_PER_LIFETIME: u64 = 4;

/// When to sign a download and for how long it is valid from then.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DownloadSigning {
    /// The start of the current window, in whole seconds (SigV4's precision).
    pub signed_at: Timestamp,
    /// The configured lifetime plus the window's length.
    pub expires_in: Duration,
}

impl DownloadSigning {
    /// The signing of any download read at `now`, for URLs that must stay valid `lifetime` from
    /// `now` (whole seconds; at most [`MAX_PRESIGN_TTL`], as configuration enforces).
    #[must_use]
    pub fn at(now: Timestamp, lifetime: Duration) -> Self {
        let lifetime = Duration::from_secs(lifetime.as_secs()).min(MAX_PRESIGN_TTL);
        let window = (lifetime.as_secs() / WINDOWS_PER_LIFETIME)
            .min((MAX_PRESIGN_TTL - lifetime).as_secs())
            .max(1);
        let now_secs = now.as_millis().div_euclid(1000);
        let window_secs = i64::try_from(window).unwrap_or(i64::MAX);
        let start_secs = now_secs - now_secs.rem_euclid(window_secs);
        Self {
            signed_at: Timestamp::from_millis(start_secs.saturating_mul(1000)),
            // Signed less than one window before `now`, so more than `lifetime` remains (but
            // SigV4's ceiling cuts up to a second off a lifetime of exactly seven days).
            expires_in: (lifetime + Duration::from_secs(window)).min(MAX_PRESIGN_TTL),
        }
    }

    /// When URLs of this signing stop working.
    #[must_use]
    pub fn expires_at(self) -> Timestamp {
        self.signed_at.plus(self.expires_in)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    #[test]
    fn reads_within_a_window_share_one_signing() {
        let lifetime = 15 * MINUTE;
        // 225 s windows; 1_800_000 ms is 8 windows in.
        let first = DownloadSigning::at(Timestamp::from_millis(1_800_000), lifetime);
        let later = DownloadSigning::at(Timestamp::from_millis(1_800_000 + 224_999), lifetime);
        let next = DownloadSigning::at(Timestamp::from_millis(1_800_000 + 225_000), lifetime);
        assert_eq!(first, later);
        assert_ne!(first, next);
        assert_eq!(first.signed_at, Timestamp::from_millis(1_800_000));
        assert_eq!(next.signed_at, Timestamp::from_millis(2_025_000));
    }

    #[test]
    fn every_url_is_valid_for_at_least_the_lifetime_from_the_read() {
        for lifetime in [
            Duration::from_secs(1),
            Duration::from_secs(7),
            15 * MINUTE,
            Duration::from_secs(24 * 3600),
            MAX_PRESIGN_TTL - Duration::from_secs(100),
            MAX_PRESIGN_TTL,
        ] {
            for now in (0..2_000_000_i64).step_by(7_919) {
                let now = Timestamp::from_millis(now + 1_700_000_000_000);
                let signing = DownloadSigning::at(now, lifetime);
                assert!(signing.signed_at <= now, "{lifetime:?} {now:?}");
                let whole_second = Timestamp::from_millis(now.as_millis() / 1000 * 1000);
                let promised = now.plus(lifetime).min(whole_second.plus(MAX_PRESIGN_TTL));
                assert!(
                    signing.expires_at() >= promised,
                    "{lifetime:?} {now:?} {signing:?}"
                );
                assert!(signing.expires_in <= MAX_PRESIGN_TTL);
                assert_eq!(signing.signed_at.as_millis() % 1000, 0);
            }
        }
    }

    #[test]
    fn windows_are_a_quarter_of_the_lifetime() {
        let signing = DownloadSigning::at(Timestamp::from_millis(0), 15 * MINUTE);
        assert_eq!(signing.expires_in, 15 * MINUTE + Duration::from_secs(225));
    }
}

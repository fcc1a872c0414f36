//! Rate limits per client address and per signed-in user, kept in the gateway so they hold
//! however many nginx instances stand in front of it. Token buckets (GCRA, the `governor`
//! crate): each key may burst up to its burst size, then continues at its rate. A request
//! is charged for what it does: one token per root field of each of its operations (so a
//! batch, or aliases at the root, cost what they run). The fields that cost a password hash
//! or a token rotation (`signIn`, `signUp`, `refreshSession`) are also charged to a stricter
//! per-address budget of their own. A refused request gets TOO_MANY_REQUESTS, a
//! `Retry-After` and `extensions.retryAfter` telling when to come back.
//!
//! The client address is the TCP peer, or, when the peer is a trusted proxy (nginx), the
//! address it reports in `X-Real-IP` / the last hop of `X-Forwarded-For`.
//!
//! With `GATEWAY_REDIS_URL`, the buckets live in Redis ([`SharedLimits`]), so every instance
//! charges one budget; the in-process buckets then decide only while Redis is unreachable.

use std::{
    net::{IpAddr, SocketAddr},
    num::NonZeroU32,
    time::Duration,
};

use std::sync::Arc;

use axum::http::HeaderMap;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter, clock::Clock as _};

use crate::{
    config::Rate,
    shared_limits::{Shared, SharedLimits},
};

impl Rate {
    pub(crate) fn quota(self) -> Option<Quota> {
        let per_second = NonZeroU32::new(self.per_second)?;
        let burst = NonZeroU32::new(self.burst)?;
        Some(Quota::per_second(per_second).allow_burst(burst))
    }
}

/// What the limits are, by scope.
#[derive(Clone, Copy, Debug, Default)]
pub struct Rates {
    pub per_address: Option<Rate>,
    pub per_user: Option<Rate>,
    /// Estimated cost per address and per user (`graphql::cost`).
    pub cost_per_address: Option<Rate>,
    pub cost_per_user: Option<Rate>,
    pub auth_per_address: Option<Rate>,
}

/// The gateway's limiters.
pub struct RateLimits {
    per_address: Option<Bucket<IpAddr>>,
    per_user: Option<Bucket<String>>,
    cost_per_address: Option<Bucket<IpAddr>>,
    cost_per_user: Option<Bucket<String>>,
    auth_per_address: Option<Bucket<IpAddr>>,
    trusted_proxies: Vec<ipnet::IpNet>,
    shared: Option<Arc<SharedLimits>>,
}

/// One configured limit: its rate, and the in-process buckets.
struct Bucket<K: std::hash::Hash + Eq + Clone> {
    rate: Rate,
    local: DefaultKeyedRateLimiter<K>,
}

impl<K: std::hash::Hash + Eq + Clone> Bucket<K> {
    fn new(rate: Option<Rate>) -> Option<Self> {
        let rate = rate?;
        Some(Self {
            rate,
            local: RateLimiter::dashmap(rate.quota()?),
        })
    }
}

/// A request over its limit: when it may be retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limited {
    pub retry_after: Duration,
}

impl Limited {
    /// Whole seconds for `Retry-After`, at least 1.
    #[must_use]
    pub fn retry_after_seconds(self) -> u64 {
        self.retry_after.as_secs_f64().ceil().max(1.0) as u64
    }
}

impl RateLimits {
    #[must_use]
    pub fn new(
        rates: Rates,
        trusted_proxies: Vec<ipnet::IpNet>,
        shared: Option<Arc<SharedLimits>>,
    ) -> Self {
        Self {
            per_address: Bucket::new(rates.per_address),
            per_user: Bucket::new(rates.per_user),
            cost_per_address: Bucket::new(rates.cost_per_address),
            cost_per_user: Bucket::new(rates.cost_per_user),
            auth_per_address: Bucket::new(rates.auth_per_address),
            trusted_proxies,
            shared,
        }
    }

    /// The client's address: the peer, or what a trusted proxy says the client was.
    #[must_use]
    pub fn client_address(&self, peer: Option<SocketAddr>, headers: &HeaderMap) -> Option<IpAddr> {
        let peer = peer?.ip();
        // A proxy on IPv4 may show as an IPv4-mapped IPv6 peer on a dual-stack socket.
        let peer = peer.to_canonical();
        if !self
            .trusted_proxies
            .iter()
            .any(|network| network.contains(&peer))
        {
            return Some(peer);
        }
        let real_ip = headers
            .get("x-real-ip")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.trim().parse().ok());
        let forwarded = headers
            .get("x-forwarded-for")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.rsplit(',').next())
            .and_then(|value| value.trim().parse().ok());
        Some(real_ip.or(forwarded).unwrap_or(peer))
    }

    /// Charges `address` `cost` tokens.
    ///
    /// # Errors
    /// [`Limited`] when the address has not that many left (nothing is charged then).
    pub async fn check_address(&self, address: IpAddr, cost: u32) -> Result<(), Limited> {
        self.check(self.per_address.as_ref(), "address", &address, cost)
            .await
    }

    /// Charges `user` `cost` tokens.
    ///
    /// # Errors
    /// [`Limited`] when the user has not that many left.
    pub async fn check_user(&self, user: &str, cost: u32) -> Result<(), Limited> {
        self.check(self.per_user.as_ref(), "user", &user.to_owned(), cost)
            .await
    }

    /// Charges `address` `cost` units of its budget of estimated cost.
    ///
    /// # Errors
    /// [`Limited`] when the address has not that much left.
    pub async fn check_address_cost(&self, address: IpAddr, cost: u32) -> Result<(), Limited> {
        self.check(
            self.cost_per_address.as_ref(),
            "address-cost",
            &address,
            cost,
        )
        .await
    }

    /// Charges `user` `cost` units of their budget of estimated cost.
    ///
    /// # Errors
    /// [`Limited`] when the user has not that much left.
    pub async fn check_user_cost(&self, user: &str, cost: u32) -> Result<(), Limited> {
        self.check(
            self.cost_per_user.as_ref(),
            "user-cost",
            &user.to_owned(),
            cost,
        )
        .await
    }

    /// Charges `address` `fields` tokens of its budget for sign-in, sign-up and refresh.
    ///
    /// # Errors
    /// [`Limited`] when the address has not that many left.
    pub async fn check_auth(&self, address: IpAddr, fields: u32) -> Result<(), Limited> {
        self.check(self.auth_per_address.as_ref(), "auth", &address, fields)
            .await
    }

    /// Charges `key` in Redis when it is configured and answers, else in process.
    async fn check<K>(
        &self,
        bucket: Option<&Bucket<K>>,
        scope: &str,
        key: &K,
        cost: u32,
    ) -> Result<(), Limited>
    where
        K: std::hash::Hash + Eq + Clone + std::fmt::Display,
    {
        let Some(bucket) = bucket else {
            return Ok(());
        };
        if cost == 0 {
            return Ok(());
        }
        if let Some(shared) = &self.shared {
            let key = format!("{scope}:{key}");
            match shared
                .charge(&key, bucket.rate.per_second, bucket.rate.burst, cost)
                .await
            {
                Shared::Decided(Ok(())) => return Ok(()),
                Shared::Decided(Err(retry_after)) => return Err(Limited { retry_after }),
                Shared::Unavailable => {}
            }
        }
        check(&bucket.local, key, cost)
    }

    /// Forgets keys that are back at full burst, bounding memory; call now and then.
    pub fn forget_idle(&self) {
        if let Some(bucket) = &self.per_address {
            bucket.local.retain_recent();
        }
        if let Some(bucket) = &self.auth_per_address {
            bucket.local.retain_recent();
        }
        if let Some(bucket) = &self.cost_per_address {
            bucket.local.retain_recent();
        }
        if let Some(bucket) = &self.cost_per_user {
            bucket.local.retain_recent();
        }
        if let Some(bucket) = &self.per_user {
            bucket.local.retain_recent();
        }
    }
}

/// Charges `cost` tokens to `key` in process.
fn check<K>(limiter: &DefaultKeyedRateLimiter<K>, key: &K, cost: u32) -> Result<(), Limited>
where
    K: std::hash::Hash + Eq + Clone,
{
    let Some(cost) = NonZeroU32::new(cost) else {
        return Ok(());
    };
    match limiter.check_key_n(key, cost) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(not_until)) => Err(Limited {
            retry_after: not_until.wait_time_from(governor::clock::DefaultClock::default().now()),
        }),
        // More than the whole burst: it can never pass at once; a minute is an honest wait
        // for a client that should split its request.
        Err(_) => Err(Limited {
            retry_after: Duration::from_secs(60),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse() {
        assert_eq!(
            Rate::parse("20/s").ok(),
            Some(Some(Rate {
                per_second: 20,
                burst: 40
            }))
        );
        assert_eq!(
            Rate::parse("5/s,7").ok(),
            Some(Some(Rate {
                per_second: 5,
                burst: 7
            }))
        );
        assert_eq!(Rate::parse("0").ok(), Some(None));
        assert!(Rate::parse("fast").is_err());
    }

    #[tokio::test]
    async fn a_key_gets_its_burst_then_is_limited_while_others_are_not() {
        let limits = RateLimits::new(
            Rates {
                per_user: Some(Rate {
                    per_second: 1,
                    burst: 3,
                }),
                ..Rates::default()
            },
            Vec::new(),
            None,
        );
        for _ in 0..3 {
            assert!(limits.check_user("ada", 1).await.is_ok());
        }
        let limited = limits
            .check_user("ada", 1)
            .await
            .expect_err("over the burst");
        assert!(limited.retry_after_seconds() >= 1);
        assert!(limits.check_user("bob", 1).await.is_ok());
        // No limit configured for addresses.
        assert!(
            limits
                .check_address(IpAddr::from([127, 0, 0, 1]), 1)
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn a_request_is_charged_for_every_field_it_runs() {
        let rate = Rate {
            per_second: 1,
            burst: 10,
        };
        let limits = RateLimits::new(
            Rates {
                per_address: Some(rate),
                auth_per_address: Some(rate),
                ..Rates::default()
            },
            Vec::new(),
            None,
        );
        let address = IpAddr::from([192, 0, 2, 1]);
        assert!(limits.check_address(address, 6).await.is_ok());
        assert!(
            limits.check_address(address, 6).await.is_err(),
            "4 tokens left"
        );
        assert!(limits.check_address(address, 4).await.is_ok());
        // More than the burst never passes.
        assert!(limits.check_auth(address, 11).await.is_err());
        assert!(limits.check_auth(address, 10).await.is_ok());
        // Nothing to charge is always fine.
        assert!(limits.check_auth(address, 0).await.is_ok());
    }

    #[test]
    fn only_trusted_proxies_may_name_the_client() {
        let proxy = IpAddr::from([10, 0, 0, 2]);
        let network: ipnet::IpNet = "10.0.0.0/24".parse().expect("CIDR");
        let limits = RateLimits::new(Rates::default(), vec![network], None);
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            "203.0.113.9, 198.51.100.7".parse().expect("header"),
        );
        let through_proxy = limits.client_address(Some(SocketAddr::new(proxy, 1234)), &headers);
        assert_eq!(through_proxy, Some(IpAddr::from([198, 51, 100, 7])));
        let direct = limits.client_address(Some(SocketAddr::from(([192, 0, 2, 1], 9))), &headers);
        assert_eq!(direct, Some(IpAddr::from([192, 0, 2, 1])));
    }
}

//! Rate limits and the source address they key on.
//!
//! The webhook route checks, in order: the sender's address (a token bucket per IP, per /64
//! for IPv6), then after signature verification the repository (a bucket per normalized
//! repository key). A request refused here costs a map lookup and a counter: no body parse
//! for the IP limit, no database write for either. Queue backpressure comes from core
//! ([`IngestOutcome::Overloaded`](compliance_core::ingest::IngestOutcome::Overloaded)).
//!
//! Buckets live in governor's keyed limiters. A maintenance task drops buckets that are full
//! again ([`retain_recent`](governor::RateLimiter::retain_recent)); if an address flood still
//! leaves more keys than [`RateLimits::max_tracked_keys`], the limiter is replaced by an empty
//! one, so memory stays bounded.

use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use axum::http::HeaderMap;
use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use ipnet::IpNet;
use tokio_util::sync::CancellationToken;

/// Rate-limit settings. `None` turns a limit off.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RateLimits {
    /// Webhook requests per source address (IPv6 grouped by /64).
    pub per_ip: Option<Quota>,
    /// Webhook requests with a valid signature per repository.
    pub per_repository: Option<Quota>,
    /// Login attempts per source address.
    pub login_per_ip: Option<Quota>,
    /// Keys kept per limiter before it is reset.
    pub max_tracked_keys: usize,
    /// How often idle buckets are dropped.
    pub cleanup_every: Duration,
}

const fn nonzero(n: u32) -> NonZeroU32 {
    match NonZeroU32::new(n) {
        Some(n) => n,
        None => NonZeroU32::MIN,
    }
}

impl Default for RateLimits {
    /// 20 requests a second per address (bursts of 100), 30 a minute per repository (bursts
    /// of 10), 10 logins a minute per address.
    fn default() -> Self {
        Self {
            per_ip: Some(Quota::per_second(nonzero(20)).allow_burst(nonzero(100))),
            per_repository: Some(Quota::per_minute(nonzero(30)).allow_burst(nonzero(10))),
            login_per_ip: Some(Quota::per_minute(nonzero(10))),
            max_tracked_keys: 100_000,
            cleanup_every: Duration::from_secs(60),
        }
    }
}

impl RateLimits {
    /// Every limit off.
    #[must_use]
    pub fn disabled() -> Self {
        Self {
            per_ip: None,
            per_repository: None,
            login_per_ip: None,
            ..Self::default()
        }
    }
}

/// A keyed limiter that can be reset wholesale when it tracks too many keys.
pub(crate) struct Keyed<K: Hash + Eq + Clone> {
    quota: Quota,
    limiter: RwLock<Arc<DefaultKeyedRateLimiter<K>>>,
    clock: DefaultClock,
}

impl<K: Hash + Eq + Clone> Keyed<K> {
    fn new(quota: Quota) -> Self {
        Self {
            quota,
            limiter: RwLock::new(Arc::new(RateLimiter::keyed(quota))),
            clock: DefaultClock::default(),
        }
    }

    fn current(&self) -> Arc<DefaultKeyedRateLimiter<K>> {
        Arc::clone(&self.limiter.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Takes one token for `key`; on refusal, how long until one is available.
    pub(crate) fn check(&self, key: &K) -> Result<(), Duration> {
        self.current()
            .check_key(key)
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }

    /// Drops full buckets; resets the limiter if it still holds more than `max_keys`.
    pub(crate) fn maintain(&self, max_keys: usize) -> usize {
        let limiter = self.current();
        limiter.retain_recent();
        limiter.shrink_to_fit();
        let len = limiter.len();
        if len > max_keys {
            tracing::warn!(
                keys = len,
                max_keys,
                "rate limiter tracks too many keys; resetting"
            );
            *self.limiter.write().unwrap_or_else(PoisonError::into_inner) =
                Arc::new(RateLimiter::keyed(self.quota));
            return 0;
        }
        len
    }
}

/// The limiters one router uses.
pub(crate) struct Limiters {
    pub(crate) ip: Option<Keyed<IpAddr>>,
    pub(crate) repository: Option<Keyed<String>>,
    pub(crate) login: Option<Keyed<IpAddr>>,
    max_keys: usize,
    cleanup_every: Duration,
    warned_no_address: AtomicBool,
}

impl Limiters {
    pub(crate) fn new(limits: &RateLimits) -> Self {
        Self {
            ip: limits.per_ip.map(Keyed::new),
            repository: limits.per_repository.map(Keyed::new),
            login: limits.login_per_ip.map(Keyed::new),
            max_keys: limits.max_tracked_keys,
            cleanup_every: limits.cleanup_every,
            warned_no_address: AtomicBool::new(false),
        }
    }

    /// Checks the per-address limit.
    ///
    /// Without a known address (the router was served without `ConnectInfo`), the limit is
    /// skipped rather than putting every sender in one bucket; a warning says so once.
    pub(crate) fn check_ip(&self, ip: Option<IpAddr>) -> Result<(), Duration> {
        match (&self.ip, ip) {
            (Some(limiter), Some(ip)) => limiter.check(&ip_key(ip)),
            (Some(_), None) => {
                self.warn_no_address();
                Ok(())
            }
            (None, _) => Ok(()),
        }
    }

    fn warn_no_address(&self) {
        if !self.warned_no_address.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                "no peer address on requests: serve the router with \
                 into_make_service_with_connect_info::<SocketAddr>() for per-address limits"
            );
        }
    }

    /// Checks the per-repository limit.
    pub(crate) fn check_repository(&self, key: &str) -> Result<(), Duration> {
        match &self.repository {
            Some(limiter) => limiter.check(&key.to_owned()),
            None => Ok(()),
        }
    }

    /// Checks the login limit (skipped without a known address, as for [`check_ip`]).
    ///
    /// [`check_ip`]: Self::check_ip
    pub(crate) fn check_login(&self, ip: Option<IpAddr>) -> Result<(), Duration> {
        match (&self.login, ip) {
            (Some(limiter), Some(ip)) => limiter.check(&ip_key(ip)),
            (Some(_), None) => {
                self.warn_no_address();
                Ok(())
            }
            (None, _) => Ok(()),
        }
    }

    /// Runs the cleanup every `cleanup_every` until `shutdown`.
    pub(crate) async fn maintain(self: Arc<Self>, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(self.cleanup_every.max(Duration::from_millis(10)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            if let Some(l) = &self.ip {
                l.maintain(self.max_keys);
            }
            if let Some(l) = &self.repository {
                l.maintain(self.max_keys);
            }
            if let Some(l) = &self.login {
                l.maintain(self.max_keys);
            }
        }
    }
}

/// The bucket key of an address: IPv4 as is, IPv6 by its /64 (one subscriber's usual
/// allocation), IPv4-mapped IPv6 as IPv4.
fn ip_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(Ipv6Addr::from(prefix))
            }
        },
    }
}

/// The client address of a request: the peer, or, when the peer is a trusted proxy, the
/// rightmost `X-Forwarded-For` entry that is not itself a trusted proxy.
#[must_use]
pub fn source_ip(
    peer: Option<SocketAddr>,
    headers: &HeaderMap,
    trusted: &[IpNet],
) -> Option<IpAddr> {
    let peer = peer?.ip();
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return Some(peer);
    }
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        let Ok(ip) = hop.parse::<IpAddr>() else {
            // A hop we cannot read was written by someone we do not trust: stop at the last
            // address a trusted proxy vouched for.
            return Some(client);
        };
        client = ip;
        if !is_trusted(&ip) {
            return Some(ip);
        }
    }
    Some(client)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn xff(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_str(value).unwrap());
        h
    }

    fn peer(ip: &str) -> Option<SocketAddr> {
        Some(SocketAddr::new(ip.parse().unwrap(), 40000))
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn forwarded_for_is_ignored_from_untrusted_peers() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        assert_eq!(
            source_ip(peer("203.0.113.9"), &xff("1.2.3.4"), &trusted),
            ip("203.0.113.9")
        );
        assert_eq!(
            source_ip(peer("203.0.113.9"), &xff("1.2.3.4"), &[]),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn the_rightmost_untrusted_hop_is_the_client() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        // The client may forge the leftmost entries; the proxies append what they saw.
        assert_eq!(
            source_ip(
                peer("10.0.0.2"),
                &xff("6.6.6.6, 198.51.100.7, 10.0.0.1"),
                &trusted
            ),
            ip("198.51.100.7")
        );
        assert_eq!(
            source_ip(peer("10.0.0.2"), &HeaderMap::new(), &trusted),
            ip("10.0.0.2")
        );
        assert_eq!(
            source_ip(peer("10.0.0.2"), &xff("10.0.0.5"), &trusted),
            ip("10.0.0.5")
        );
        assert_eq!(
            source_ip(peer("10.0.0.2"), &xff("garbage, 10.0.0.7"), &trusted),
            ip("10.0.0.7")
        );
        assert_eq!(source_ip(None, &xff("1.2.3.4"), &trusted), None);
    }

    #[test]
    fn ipv6_addresses_share_a_bucket_per_64() {
        let key = |s: &str| ip_key(s.parse().unwrap());
        assert_eq!(key("2001:db8:1:2:aaaa::1"), key("2001:db8:1:2:bbbb::2"));
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(key("::ffff:192.0.2.1"), key("192.0.2.1"));
    }

    #[test]
    fn a_bucket_refuses_past_its_burst_with_a_wait() {
        let limits = Limiters::new(&RateLimits {
            per_ip: Some(Quota::per_minute(nonzero(1))),
            ..RateLimits::disabled()
        });
        assert!(limits.check_ip(ip("192.0.2.1")).is_ok());
        let wait = limits.check_ip(ip("192.0.2.1")).unwrap_err();
        assert!(wait > Duration::from_secs(50) && wait <= Duration::from_secs(60));
        assert!(limits.check_ip(ip("192.0.2.2")).is_ok());
        assert!(limits.check_repository("github.com/a/b").is_ok());
        // Without an address there is no bucket to charge.
        assert!(limits.check_ip(None).is_ok());
        assert!(limits.check_ip(None).is_ok());
    }

    #[test]
    fn maintenance_bounds_the_number_of_keys() {
        let keyed: Keyed<IpAddr> = Keyed::new(Quota::per_hour(nonzero(1)));
        for n in 0..50u8 {
            keyed.check(&IpAddr::from([192, 0, 2, n])).unwrap();
        }
        assert_eq!(keyed.maintain(100), 50);
        assert_eq!(keyed.maintain(10), 0);
        assert!(keyed.check(&IpAddr::from([192, 0, 2, 1])).is_ok());
    }
}

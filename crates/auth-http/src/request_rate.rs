//! How many requests one client may send per second (`MAX_REQUESTS_PER_CLIENT`).
//!
//! A client that pipelines requests and never reads the answers makes the server answer until
//! the answers fill the connection's buffers. The server's send buffer is bounded
//! (`SEND_BUFFER_SIZE`), but the client's receive buffer is the client's to choose (up to
//! `net.core.rmem_max`, 4 MiB on many hosts): some ten thousand answers a connection, so a few
//! such connections from a few addresses keep every worker busy answering nobody. No real
//! client sends that many requests a second. So each client (an IPv4 address, or an IPv6
//! prefix of `IPV6_PREFIX_LEN` bits) has a budget of requests per second, with a burst of
//! twice that; a request past it is answered 429 with `Retry-After` and `Connection: close`,
//! which also drops whatever else that connection had pipelined, so a flood costs the server
//! one short answer per connection it opens (and `MAX_CONNECTIONS_PER_CLIENT` bounds those).
//!
//! Trusted proxies (`TRUSTED_PROXIES`) are not bounded: every client behind a load balancer
//! arrives from its address, and the proxy is where a per-client bound belongs then. The
//! budget is per instance, checked before the app (no Redis round trip).

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::error::{ErrorBody, ErrorCode, ErrorDetail};

/// Default of `MAX_REQUESTS_PER_CLIENT`.
pub const DEFAULT_MAX_REQUESTS_PER_CLIENT: u32 = 500;

/// Every this many checks the state of clients whose budget is full again is dropped.
const PRUNE_EVERY: u64 = 10_000;

/// Requests per client and second; see the [module documentation](self).
#[derive(Clone)]
pub struct ClientRequestRate {
    limiter: Arc<DefaultKeyedRateLimiter<IpAddr>>,
    ipv6_prefix_len: u8,
    trusted_proxies: Arc<[IpAddr]>,
    checks: Arc<AtomicU64>,
}

impl std::fmt::Debug for ClientRequestRate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientRequestRate")
            .field("ipv6_prefix_len", &self.ipv6_prefix_len)
            .finish_non_exhaustive()
    }
}

impl ClientRequestRate {
    /// `per_second` requests a second per client, bursts of twice that; IPv6 clients by
    /// their `ipv6_prefix_len`-bit prefix; `trusted_proxies` are not bounded.
    pub fn new(per_second: NonZeroU32, ipv6_prefix_len: u8, trusted_proxies: &[IpAddr]) -> Self {
        let burst = per_second.saturating_mul(NonZeroU32::MIN.saturating_add(1));
        Self {
            limiter: Arc::new(RateLimiter::keyed(
                Quota::per_second(per_second).allow_burst(burst),
            )),
            ipv6_prefix_len,
            trusted_proxies: trusted_proxies.into(),
            checks: Arc::default(),
        }
    }

    /// Spends one request of `peer`'s budget: `Err(wait)` when it is spent, with the time
    /// until the next request would be let through. A request without a peer address (not
    /// over TCP) is let through.
    pub fn check(&self, peer: Option<IpAddr>) -> Result<(), Duration> {
        let Some(peer) = peer.map(crate::connections::canonical) else {
            return Ok(());
        };
        if self.trusted_proxies.contains(&peer) {
            return Ok(());
        }
        if self.checks.fetch_add(1, Ordering::Relaxed) % PRUNE_EVERY == PRUNE_EVERY - 1 {
            self.limiter.retain_recent();
        }
        let client = auth_core::budget_ip(peer, self.ipv6_prefix_len);
        self.limiter
            .check_key(&client)
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }
}

/// The answer to a request past its client's budget: 429 with the API's error body and
/// `Retry-After`, and the connection closed (with whatever else it had pipelined).
pub fn too_many_requests(wait: Duration) -> HttpResponse {
    let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
    let mut res = HttpResponse::build(StatusCode::TOO_MANY_REQUESTS)
        .insert_header((header::RETRY_AFTER, HeaderValue::from(secs)))
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .insert_header((header::CONNECTION, HeaderValue::from_static("close")))
        // Outside the app, so the app's security headers are added here.
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .insert_header(("Referrer-Policy", "no-referrer"))
        .insert_header(("X-Frame-Options", "DENY"))
        .insert_header(("Content-Security-Policy", "frame-ancestors 'none'"))
        .json(ErrorBody {
            error: ErrorDetail {
                code: ErrorCode::TooManyRequests,
                message: format!("Too many requests from this client; retry in {secs} s."),
                fields: None,
            },
        });
    res.head_mut()
        .set_connection_type(actix_web::http::ConnectionType::Close);
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_gets_a_burst_of_twice_its_rate_then_waits_and_others_are_apart() {
        let rate = ClientRequestRate::new(NonZeroU32::new(5).unwrap(), 64, &[]);
        let one = Some("192.0.2.1".parse().unwrap());
        for _ in 0..10 {
            assert_eq!(rate.check(one), Ok(()));
        }
        let wait = rate.check(one).unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_millis(200),
            "{wait:?}"
        );
        assert_eq!(rate.check(Some("192.0.2.2".parse().unwrap())), Ok(()));
        assert_eq!(rate.check(None), Ok(()));
    }

    #[test]
    fn an_ipv6_prefix_is_one_client_and_trusted_proxies_are_not_bounded() {
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let rate = ClientRequestRate::new(NonZeroU32::new(1).unwrap(), 64, &[proxy]);
        assert_eq!(rate.check(Some("2001:db8::1".parse().unwrap())), Ok(()));
        assert_eq!(rate.check(Some("2001:db8::2".parse().unwrap())), Ok(()));
        assert!(rate.check(Some("2001:db8::3".parse().unwrap())).is_err());
        for _ in 0..100 {
            assert_eq!(rate.check(Some(proxy)), Ok(()));
        }
    }

    #[test]
    fn the_refusal_is_a_429_that_closes_the_connection() {
        let res = too_many_requests(Duration::from_millis(300));
        assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(res.headers().get(header::RETRY_AFTER).unwrap(), "1");
        assert_eq!(res.headers().get(header::CONNECTION).unwrap(), "close");
    }
}

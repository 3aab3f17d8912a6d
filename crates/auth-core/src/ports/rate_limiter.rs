use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use super::BoxError;
use crate::domain::email::EmailAddress;
use crate::domain::session::SessionId;
use crate::domain::user::UserId;

/// Errors of [`RateLimiter`].
#[derive(Debug, thiserror::Error)]
pub enum RateLimiterError {
    /// The limiter's store cannot be reached or did not answer in time.
    #[error("the rate limiter is unavailable")]
    Unavailable(#[source] BoxError),
    /// The store answered with an error that is not an outage.
    #[error("the rate limiter failed")]
    Other(#[source] BoxError),
}

/// A budget: at most `limit` requests in any window of `period`, refilled smoothly.
///
/// The algorithm is the Generic Cell Rate Algorithm (GCRA, the leaky bucket as a meter of
/// ITU-T I.371 / ATM Forum TM 4.0): each key keeps one "theoretical arrival time" (TAT). A
/// request at `now` is allowed when `max(TAT, now) + T - now <= period`, where the emission
/// interval is `T = period / limit`; it then sets `TAT = max(TAT, now) + T`. A fresh key
/// therefore allows a burst of `limit` requests at once, then one more every `T`. A refused
/// request changes nothing and is told to retry after `max(TAT, now) + T - period - now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Quota {
    /// Requests allowed in a burst (at least 1).
    pub limit: u32,
    /// Time in which a spent budget refills completely (at least 1 ms).
    pub period: Duration,
}

impl Quota {
    /// `limit` requests per `period`; `None` for a zero limit or a period under 1 ms.
    pub fn new(limit: u32, period: Duration) -> Option<Self> {
        (limit > 0 && period >= Duration::from_millis(1)).then_some(Self { limit, period })
    }

    /// The GCRA emission interval `period / limit`: the time one spent request takes to
    /// come back.
    pub fn emission_interval(&self) -> Duration {
        self.period / self.limit.max(1)
    }
}

impl fmt::Display for Quota {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}ms", self.limit, self.period.as_millis())
    }
}

/// Whom a budget belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RateSubject {
    /// A client IP address.
    Ip(IpAddr),
    /// A target e-mail address (whether or not it has an account).
    Email(EmailAddress),
    /// One client IP acting on one e-mail address.
    EmailIp(EmailAddress, IpAddr),
    /// An account (for checks made inside a session, e.g. re-authentication).
    User(UserId),
    /// One session.
    Session(SessionId),
    /// One known device (the id of a valid device credential) of one e-mail address.
    Device(EmailAddress, uuid::Uuid),
}

impl RateSubject {
    /// A stable text form. Adapters that persist keys MUST NOT store it in clear (it holds an
    /// e-mail address); they hash it.
    pub fn canonical(&self) -> String {
        match self {
            Self::Ip(ip) => format!("ip|{ip}"),
            Self::Email(e) => format!("email|{}", e.as_str()),
            Self::EmailIp(e, ip) => format!("email-ip|{}|{ip}", e.as_str()),
            Self::User(id) => format!("user|{id}"),
            Self::Session(id) => format!("session|{}", id.as_uuid()),
            Self::Device(e, id) => format!("device|{}|{}", e.as_str(), id.simple()),
        }
    }
}

/// The key of one budget: a bucket name (e.g. `login:ip`) and a subject. The same key with a
/// different [`Quota`] is a different budget.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RateKey {
    /// The bucket: lower-case ASCII letters, digits, `-`, `_` and `:` only.
    pub bucket: &'static str,
    /// Whom the budget belongs to.
    pub subject: RateSubject,
}

/// Answer of [`RateLimiter::acquire`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateDecision {
    /// Go ahead; one unit of the budget was spent.
    Allowed,
    /// The budget is spent; nothing was recorded.
    Limited {
        /// Time until one more request would be allowed (more than zero).
        retry_after: Duration,
    },
}

/// Request budgets shared by every instance of the service (GCRA, see [`Quota`]).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait::async_trait]
pub trait RateLimiter: Send + Sync + 'static {
    /// Spends one unit of the budget `(key, quota)` if one is left and returns
    /// [`RateDecision::Allowed`]; otherwise records nothing and returns
    /// [`RateDecision::Limited`] with the time until one unit is back. Atomic: of any number
    /// of concurrent callers on a fresh key, exactly `quota.limit` MUST be allowed, on every
    /// instance sharing the store. An entry MUST NOT outlive the time its budget needs to
    /// refill completely.
    async fn acquire(&self, key: &RateKey, quota: Quota) -> Result<RateDecision, RateLimiterError>;

    /// Refills the budget `(key, quota)` completely (forgets every spent unit).
    async fn reset(&self, key: &RateKey, quota: Quota) -> Result<(), RateLimiterError>;
}

/// A [`RateLimiter`] that allows everything: for an embedder who deliberately wants no request
/// budgets (e.g. because a gateway in front enforces them). Say so by passing it; the service
/// has no "forgot to configure limits" mode.
#[derive(Debug, Clone, Copy, Default)]
pub struct Unlimited;

#[async_trait::async_trait]
impl RateLimiter for Unlimited {
    async fn acquire(&self, _: &RateKey, _: Quota) -> Result<RateDecision, RateLimiterError> {
        Ok(RateDecision::Allowed)
    }

    async fn reset(&self, _: &RateKey, _: Quota) -> Result<(), RateLimiterError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_rejects_zero_and_computes_the_interval() {
        assert!(Quota::new(0, Duration::from_secs(1)).is_none());
        assert!(Quota::new(1, Duration::ZERO).is_none());
        let q = Quota::new(4, Duration::from_secs(2)).unwrap();
        assert_eq!(q.emission_interval(), Duration::from_millis(500));
        assert_eq!(q.to_string(), "4/2000ms");
    }

    #[test]
    fn subjects_have_distinct_canonical_forms() {
        let e = EmailAddress::parse("a@example.com").unwrap();
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let e2 = e.clone();
        let forms = [
            RateSubject::Ip(ip).canonical(),
            RateSubject::Email(e.clone()).canonical(),
            RateSubject::EmailIp(e.clone(), ip).canonical(),
            RateSubject::User(UserId::from_uuid(uuid::Uuid::from_u128(1))).canonical(),
            RateSubject::Session(SessionId::from_uuid(uuid::Uuid::from_u128(1))).canonical(),
            RateSubject::Device(e2, uuid::Uuid::from_u128(1)).canonical(),
        ];
        assert_eq!(
            forms.len(),
            forms.iter().collect::<std::collections::HashSet<_>>().len()
        );
    }
}

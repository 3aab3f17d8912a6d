//! Contract suite of [`RateLimiter`]: the GCRA budget its documentation states.
//!
//! ```no_run
//! # async fn demo(a: std::sync::Arc<dyn auth_core::RateLimiter>, b: std::sync::Arc<dyn auth_core::RateLimiter>) {
//! auth_testkit::contracts::rate_limiter::run(a.clone()).await;
//! // Two handles on one shared store (two instances of the service) share every budget:
//! auth_testkit::contracts::rate_limiter::shared_by_instances(a, b).await;
//! # }
//! ```
//!
//! Every check uses fresh random subjects, so a store shared with other data works too. The
//! parallel checks spawn tokio tasks (call from a multi-threaded tokio runtime); the refill
//! checks take about a second of real time.

use std::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;
use std::time::Duration;

use auth_core::{EmailAddress, Quota, RateDecision, RateKey, RateLimiter, RateSubject};
use tokio::task::JoinSet;
use uuid::Uuid;

/// Concurrent callers in the race checks.
const RACERS: u32 = 40;
const HOUR: Duration = Duration::from_secs(3600);

/// Runs every check against `limiter`; panics at the first broken rule.
pub async fn run(limiter: Arc<dyn RateLimiter>) {
    a_burst_of_limit_is_allowed_then_refused(limiter.as_ref()).await;
    spent_units_come_back_one_per_interval(limiter.as_ref()).await;
    budgets_are_isolated(limiter.as_ref()).await;
    reset_refills_the_budget(limiter.as_ref()).await;
    parallel_requests_never_exceed_the_budget(&limiter).await;
}

/// Two handles on one store (e.g. two `RedisStore`s on one Redis and prefix) share one budget,
/// also when they are hit in parallel: a client cannot multiply its budget by switching
/// instances.
pub async fn shared_by_instances(a: Arc<dyn RateLimiter>, b: Arc<dyn RateLimiter>) {
    let quota = Quota::new(10, HOUR).unwrap();
    let key = key("shared", email_subject());
    let mut set = JoinSet::new();
    for n in 0..RACERS {
        let limiter = if n % 2 == 0 { a.clone() } else { b.clone() };
        let key = key.clone();
        set.spawn(async move { limiter.acquire(&key, quota).await.unwrap() });
    }
    let allowed = count_allowed(set).await;
    assert_eq!(allowed, 10, "two instances share one budget of 10");
    assert!(matches!(
        a.acquire(&key, quota).await.unwrap(),
        RateDecision::Limited { .. }
    ));
    b.reset(&key, quota).await.unwrap();
    assert_eq!(
        a.acquire(&key, quota).await.unwrap(),
        RateDecision::Allowed,
        "a reset through one instance is seen by the other"
    );
}

async fn a_burst_of_limit_is_allowed_then_refused(limiter: &dyn RateLimiter) {
    let quota = Quota::new(5, HOUR).unwrap();
    let key = key("burst", email_subject());
    for n in 1..=5 {
        assert_eq!(
            limiter.acquire(&key, quota).await.unwrap(),
            RateDecision::Allowed,
            "request {n} of a burst of 5"
        );
    }
    for _ in 0..3 {
        match limiter.acquire(&key, quota).await.unwrap() {
            RateDecision::Limited { retry_after } => {
                // One unit comes back every period / limit = 12 minutes.
                let interval = quota.emission_interval();
                assert!(retry_after > Duration::ZERO, "{retry_after:?}");
                assert!(
                    retry_after <= interval && retry_after > interval - Duration::from_secs(5),
                    "retry after about one emission interval, got {retry_after:?}"
                );
            }
            RateDecision::Allowed => panic!("the sixth request of a budget of 5 was allowed"),
        }
    }
}

async fn spent_units_come_back_one_per_interval(limiter: &dyn RateLimiter) {
    let quota = Quota::new(2, Duration::from_millis(800)).unwrap();
    let key = key("refill", ip_subject());
    assert_eq!(
        limiter.acquire(&key, quota).await.unwrap(),
        RateDecision::Allowed
    );
    assert_eq!(
        limiter.acquire(&key, quota).await.unwrap(),
        RateDecision::Allowed
    );
    let RateDecision::Limited { retry_after } = limiter.acquire(&key, quota).await.unwrap() else {
        panic!("a budget of 2 allowed a third request at once");
    };
    assert!(retry_after <= Duration::from_millis(400), "{retry_after:?}");
    // The state here is time itself: one unit needs `retry_after` to come back.
    tokio::time::sleep(retry_after + Duration::from_millis(30)).await;
    assert_eq!(
        limiter.acquire(&key, quota).await.unwrap(),
        RateDecision::Allowed,
        "one unit is back after the announced wait"
    );
    assert!(
        matches!(
            limiter.acquire(&key, quota).await.unwrap(),
            RateDecision::Limited { .. }
        ),
        "and only one"
    );
    tokio::time::sleep(quota.period + Duration::from_millis(50)).await;
    for _ in 0..2 {
        assert_eq!(
            limiter.acquire(&key, quota).await.unwrap(),
            RateDecision::Allowed,
            "after a whole period the budget is full again"
        );
    }
}

async fn budgets_are_isolated(limiter: &dyn RateLimiter) {
    let quota = Quota::new(1, HOUR).unwrap();
    let email = email_subject();
    let spent = key("isolated", email.clone());
    assert_eq!(
        limiter.acquire(&spent, quota).await.unwrap(),
        RateDecision::Allowed
    );
    assert!(matches!(
        limiter.acquire(&spent, quota).await.unwrap(),
        RateDecision::Limited { .. }
    ));
    let RateSubject::Email(address) = email.clone() else {
        unreachable!()
    };
    let ip = random_ip();
    for other in [
        key("isolated-other", email.clone()),
        key("isolated", email_subject()),
        key("isolated", RateSubject::Ip(ip)),
        key("isolated", RateSubject::EmailIp(address, ip)),
    ] {
        assert_eq!(
            limiter.acquire(&other, quota).await.unwrap(),
            RateDecision::Allowed,
            "{other:?} has its own budget"
        );
    }
    assert_eq!(
        limiter
            .acquire(&spent, Quota::new(2, HOUR).unwrap())
            .await
            .unwrap(),
        RateDecision::Allowed,
        "another quota on the same key is another budget"
    );
}

async fn reset_refills_the_budget(limiter: &dyn RateLimiter) {
    let quota = Quota::new(2, HOUR).unwrap();
    let key = key("reset", email_subject());
    limiter.reset(&key, quota).await.unwrap(); // resetting a full budget is fine
    for _ in 0..2 {
        assert_eq!(
            limiter.acquire(&key, quota).await.unwrap(),
            RateDecision::Allowed
        );
    }
    assert!(matches!(
        limiter.acquire(&key, quota).await.unwrap(),
        RateDecision::Limited { .. }
    ));
    limiter.reset(&key, quota).await.unwrap();
    for _ in 0..2 {
        assert_eq!(
            limiter.acquire(&key, quota).await.unwrap(),
            RateDecision::Allowed,
            "a reset budget is full"
        );
    }
}

async fn parallel_requests_never_exceed_the_budget(limiter: &Arc<dyn RateLimiter>) {
    let quota = Quota::new(7, HOUR).unwrap();
    let key = key("parallel", ip_subject());
    let mut set = JoinSet::new();
    for _ in 0..RACERS {
        let limiter = limiter.clone();
        let key = key.clone();
        set.spawn(async move { limiter.acquire(&key, quota).await.unwrap() });
    }
    assert_eq!(
        count_allowed(set).await,
        7,
        "exactly the budget, never more"
    );
}

// --- helpers ---

async fn count_allowed(mut set: JoinSet<RateDecision>) -> u32 {
    let mut allowed = 0;
    while let Some(decision) = set.join_next().await {
        if decision.unwrap() == RateDecision::Allowed {
            allowed += 1;
        }
    }
    allowed
}

fn key(bucket: &'static str, subject: RateSubject) -> RateKey {
    RateKey { bucket, subject }
}

fn email_subject() -> RateSubject {
    RateSubject::Email(
        EmailAddress::parse(&format!("rl-{}@example.com", Uuid::new_v4().simple())).unwrap(),
    )
}

fn random_ip() -> IpAddr {
    IpAddr::V6(Ipv6Addr::from(Uuid::new_v4().as_u128()))
}

fn ip_subject() -> RateSubject {
    RateSubject::Ip(random_ip())
}

//! [`RateLimiter`] on Redis: GCRA in one Lua script, so every instance sharing the Redis
//! shares each budget and no interleaving of concurrent requests can overspend it.

use std::time::Duration;

use auth_core::{Quota, RateDecision, RateKey, RateLimiter, RateLimiterError};

use crate::pool::{Failure, Request, Retry};
use crate::RedisStore;

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1)
}

#[async_trait::async_trait]
impl RateLimiter for RedisStore {
    async fn acquire(&self, key: &RateKey, quota: Quota) -> Result<RateDecision, RateLimiterError> {
        let mut call = self.inner.scripts.rate_acquire.prepare_invoke();
        call.key(self.inner.keys.rate(key, quota))
            .arg(micros(quota.emission_interval()))
            .arg(micros(quota.period));
        // Never retried: a spent unit must not be spent twice.
        let wait_us: i64 = self
            .inner
            .exec
            .run(Request::Script(&call), Retry::Never)
            .await?;
        Ok(match u64::try_from(wait_us) {
            Err(_) => RateDecision::Allowed,
            Ok(us) => RateDecision::Limited {
                retry_after: Duration::from_micros(us.max(1)),
            },
        })
    }

    async fn reset(&self, key: &RateKey, quota: Quota) -> Result<(), RateLimiterError> {
        let mut cmd = redis::cmd("DEL");
        cmd.arg(self.inner.keys.rate(key, quota));
        self.inner
            .exec
            .run::<()>(Request::Cmd(&cmd), Retry::Idempotent)
            .await?;
        Ok(())
    }
}

impl From<Failure> for RateLimiterError {
    fn from(f: Failure) -> Self {
        match f {
            Failure::Unavailable(e) => Self::Unavailable(e),
            Failure::Other(e) => Self::Other(e),
        }
    }
}

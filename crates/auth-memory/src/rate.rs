//! [`RateLimiter`] in memory: the same GCRA as the Redis script, under the store's one lock.

use std::time::{Duration, Instant};

use auth_core::{Quota, RateDecision, RateKey, RateLimiter, RateLimiterError};

use crate::MemoryStore;

fn entry_key(key: &RateKey, quota: Quota) -> String {
    format!(
        "{}:{}/{}:{}",
        key.bucket,
        quota.limit,
        quota.period.as_millis(),
        key.subject.canonical()
    )
}

#[async_trait::async_trait]
impl RateLimiter for MemoryStore {
    async fn acquire(&self, key: &RateKey, quota: Quota) -> Result<RateDecision, RateLimiterError> {
        let now = Instant::now();
        let interval = quota.emission_interval().max(Duration::from_micros(1));
        let entry = entry_key(key, quota);
        let mut state = self.lock();
        let tat = state.live_rate(&entry, now).unwrap_or(now).max(now);
        let new_tat = tat + interval;
        let used = new_tat.saturating_duration_since(now);
        if used > quota.period {
            return Ok(RateDecision::Limited {
                retry_after: (used - quota.period).max(Duration::from_micros(1)),
            });
        }
        state.set_rate(entry, new_tat);
        Ok(RateDecision::Allowed)
    }

    async fn reset(&self, key: &RateKey, quota: Quota) -> Result<(), RateLimiterError> {
        self.lock().remove_rate(&entry_key(key, quota));
        Ok(())
    }
}

//! [`OtpStore`] in memory.

use std::time::{Duration, Instant};

use auth_core::{
    EmailAddress, OtpAttempt, OtpMac, OtpPurpose, OtpStore, OtpStoreError, SendSlot, StoredOtp,
};

use crate::state::State;
use crate::MemoryStore;

/// The port promises a cooldown answer of at least this much.
const MIN_RETRY_AFTER: Duration = Duration::from_secs(1);

#[async_trait::async_trait]
impl OtpStore for MemoryStore {
    async fn put(
        &self,
        purpose: OtpPurpose,
        email: &EmailAddress,
        otp: StoredOtp,
        keep: usize,
        retain_for: Duration,
    ) -> Result<(), OtpStoreError> {
        let now = Instant::now();
        let mut state = self.lock();
        state.put_code(
            (purpose, email.clone()),
            otp,
            keep,
            State::deadline_after(now, retain_for),
            now,
        );
        Ok(())
    }

    async fn record_attempt(
        &self,
        purpose: OtpPurpose,
        email: &EmailAddress,
    ) -> Result<Option<OtpAttempt>, OtpStoreError> {
        let now = Instant::now();
        let mut state = self.lock();
        let key = (purpose, email.clone());
        Ok(state.live_code(&key, now).map(|entry| {
            entry.attempts = entry.attempts.saturating_add(1);
            OtpAttempt {
                codes: entry.codes.clone(),
                attempts: entry.attempts,
            }
        }))
    }

    async fn consume(
        &self,
        purpose: OtpPurpose,
        email: &EmailAddress,
        mac: &OtpMac,
    ) -> Result<bool, OtpStoreError> {
        let now = Instant::now();
        let mut state = self.lock();
        let key = (purpose, email.clone());
        let Some(entry) = state.live_code(&key, now) else {
            return Ok(false);
        };
        let before = entry.codes.len();
        entry.codes.retain(|otp| !otp.mac.ct_eq(mac));
        let consumed = entry.codes.len() < before;
        if entry.codes.is_empty() {
            state.remove_code(&key);
        }
        Ok(consumed)
    }

    async fn discard(
        &self,
        purpose: OtpPurpose,
        email: &EmailAddress,
    ) -> Result<(), OtpStoreError> {
        self.lock().remove_code(&(purpose, email.clone()));
        Ok(())
    }

    async fn claim_send_slot(
        &self,
        purpose: OtpPurpose,
        email: &EmailAddress,
        cooldown: Duration,
    ) -> Result<SendSlot, OtpStoreError> {
        let now = Instant::now();
        let mut state = self.lock();
        let key = (purpose, email.clone());
        if let Some(until) = state.live_cooldown(&key, now) {
            return Ok(SendSlot::Cooldown {
                retry_after: until.saturating_duration_since(now).max(MIN_RETRY_AFTER),
            });
        }
        // As in Redis, a zero cooldown still lasts one millisecond.
        let cooldown = cooldown.max(Duration::from_millis(1));
        state.start_cooldown(key, State::deadline_after(now, cooldown));
        Ok(SendSlot::Granted)
    }
}

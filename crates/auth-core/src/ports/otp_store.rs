use std::time::Duration;

use super::BoxError;
use crate::domain::email::EmailAddress;
use crate::domain::otp::{OtpAttempt, OtpMac, OtpPurpose, StoredOtp};

/// Errors of [`OtpStore`].
#[derive(Debug, thiserror::Error)]
pub enum OtpStoreError {
    /// The store cannot be reached or did not answer in time.
    #[error("the one-time code store is unavailable")]
    Unavailable(#[source] BoxError),
    /// The store answered with an error that is not an outage.
    #[error("the one-time code store failed")]
    Other(#[source] BoxError),
}

/// Whether a mail may be sent to an address now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendSlot {
    /// Go ahead; the cooldown starts now.
    Granted,
    /// A mail went out recently; try again after this long.
    Cooldown {
        /// Time left in the cooldown (at least one second).
        retry_after: Duration,
    },
}

/// Short-lived one-time codes, the last few per (purpose, address), sharing one attempt
/// counter, plus the per-address cooldown between mails.
///
/// Implementations keep only the [`OtpMac`] of a code, never the code.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait::async_trait]
pub trait OtpStore: Send + Sync + 'static {
    /// Adds a code for (purpose, address), keeping at most `keep`: the first code of the set and
    /// the `keep - 1` newest (so a flood of new codes, e.g. signups by someone else, cannot push
    /// out the code of the signup that created the account), and resets the shared attempt
    /// counter. The entry is dropped by the store after
    /// `retain_for`.
    async fn put(
        &self,
        purpose: OtpPurpose,
        email: &EmailAddress,
        otp: StoredOtp,
        keep: usize,
        retain_for: Duration,
    ) -> Result<(), OtpStoreError>;

    /// Atomically counts one attempt against the codes and returns them (oldest first) with
    /// the new count; `Ok(None)` when there is none. Concurrent calls MUST each see a distinct
    /// count.
    async fn record_attempt(
        &self,
        purpose: OtpPurpose,
        email: &EmailAddress,
    ) -> Result<Option<OtpAttempt>, OtpStoreError>;

    /// Deletes the code with this MAC, if it is still there, leaving the others. Of any number
    /// of concurrent callers with the same MAC, exactly one MUST get `Ok(true)`.
    async fn consume(
        &self,
        purpose: OtpPurpose,
        email: &EmailAddress,
        mac: &OtpMac,
    ) -> Result<bool, OtpStoreError>;

    /// Deletes every code of (purpose, address), if any.
    async fn discard(&self, purpose: OtpPurpose, email: &EmailAddress)
        -> Result<(), OtpStoreError>;

    /// Claims the right to send a mail of this purpose to this address, atomically starting a
    /// `cooldown`; returns [`SendSlot::Cooldown`] with the time left while one is running.
    async fn claim_send_slot(
        &self,
        purpose: OtpPurpose,
        email: &EmailAddress,
        cooldown: Duration,
    ) -> Result<SendSlot, OtpStoreError>;
}

use chrono::{DateTime, Utc};

use super::BoxError;
use crate::domain::mfa::{ClientBinding, RecoveryCodeHash};
use crate::domain::session::TokenHash;
use crate::domain::user::UserId;

/// Errors of [`TotpStore`].
#[derive(Debug, thiserror::Error)]
pub enum TotpStoreError {
    /// The store cannot be reached or did not answer in time.
    #[error("the second-factor store is unavailable")]
    Unavailable(#[source] BoxError),
    /// The store answered with an error that is not an outage.
    #[error("the second-factor store failed")]
    Other(#[source] BoxError),
}

/// A user's TOTP secret as stored: sealed (the service seals and opens it; the store never
/// sees it in the clear), whether it is turned on, and the last time step a code was
/// accepted for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredTotp {
    /// The secret, sealed by the service under a key of its own.
    pub sealed_secret: Vec<u8>,
    /// When the owner confirmed it with a code; `None` while enrolment is pending.
    pub enabled_at: Option<DateTime<Utc>>,
    /// The last time step a code was accepted for; a code of this step or an earlier one is a
    /// replay.
    pub last_step: Option<u64>,
    /// Unused recovery codes left.
    pub recovery_codes_left: u32,
}

/// A password login waiting for its second factor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MfaChallenge {
    /// SHA-256 of the [`MfaToken`](crate::domain::mfa::MfaToken).
    pub token_hash: TokenHash,
    /// Whose password was right.
    pub user_id: UserId,
    /// The client the token was issued to.
    pub client: ClientBinding,
    /// The revocation epoch of the address read before the password was checked: a
    /// revocation in between makes the second step fail.
    pub epoch: u64,
    /// When the token stops working.
    pub expires_at: DateTime<Utc>,
}

/// Durable storage of second factors: TOTP secrets, their last accepted step, recovery
/// codes (hashes only), and the short-lived second-step challenges of logins.
///
/// Everything of a user goes when the user is deleted. Each method that decides a race is
/// one atomic statement (a compare-and-set or a delete that reports what it deleted), so of
/// two parallel requests with one code or one token at most one wins.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait::async_trait]
pub trait TotpStore: Send + Sync + 'static {
    /// The user's TOTP secret (pending or on); `Ok(None)` when there is none.
    async fn get(&self, user: UserId) -> Result<Option<StoredTotp>, TotpStoreError>;

    /// Stores a new pending secret, replacing a pending one. MUST return `Ok(false)` and
    /// change nothing when the user's TOTP is on.
    async fn put_pending(
        &self,
        user: UserId,
        sealed_secret: &[u8],
        at: DateTime<Utc>,
    ) -> Result<bool, TotpStoreError>;

    /// Turns a pending secret on, records `step` as its last accepted step and replaces the
    /// user's recovery codes with `codes`. MUST return `Ok(false)` and change nothing when
    /// there is no pending secret (none, or already on), atomically.
    async fn enable(
        &self,
        user: UserId,
        step: u64,
        codes: &[RecoveryCodeHash],
        at: DateTime<Utc>,
    ) -> Result<bool, TotpStoreError>;

    /// Records `step` as the last accepted step of an enabled secret if it is later than the
    /// one recorded (compare-and-set). MUST return `Ok(false)` when it is not (a replay, or a
    /// parallel request with the same code won) or TOTP is off.
    async fn accept_step(&self, user: UserId, step: u64) -> Result<bool, TotpStoreError>;

    /// Deletes one unused recovery code of an enabled secret; `Ok(Some(left))` with the
    /// number left when it was there, `Ok(None)` when not (never issued, used already, or
    /// used by a parallel request). Atomic.
    async fn use_recovery_code(
        &self,
        user: UserId,
        code: &RecoveryCodeHash,
    ) -> Result<Option<u32>, TotpStoreError>;

    /// Replaces every recovery code of an enabled secret with `codes`. MUST return
    /// `Ok(false)` when TOTP is off.
    async fn replace_recovery_codes(
        &self,
        user: UserId,
        codes: &[RecoveryCodeHash],
    ) -> Result<bool, TotpStoreError>;

    /// Deletes the user's secret (pending or on), recovery codes and challenges; `Ok(false)`
    /// when there was no secret.
    async fn disable(&self, user: UserId) -> Result<bool, TotpStoreError>;

    /// Stores a challenge. Expired challenges of the same user may be purged on the way.
    async fn put_challenge(&self, challenge: &MfaChallenge) -> Result<(), TotpStoreError>;

    /// The challenge with this token hash, if stored (expired or not: the service checks).
    async fn get_challenge(
        &self,
        token_hash: &TokenHash,
    ) -> Result<Option<MfaChallenge>, TotpStoreError>;

    /// Deletes the challenge; `Ok(true)` only for the one caller that deleted it (atomic), so
    /// a token opens at most one session.
    async fn take_challenge(&self, token_hash: &TokenHash) -> Result<bool, TotpStoreError>;
}

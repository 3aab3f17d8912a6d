use chrono::{DateTime, Utc};

use super::BoxError;
use crate::domain::passkey::{PasskeyId, PasskeyName};
use crate::domain::session::TokenHash;
use crate::domain::user::UserId;

/// Errors of [`PasskeyStore`].
#[derive(Debug, thiserror::Error)]
pub enum PasskeyStoreError {
    /// The credential id is registered already (to this account or another one).
    #[error("this credential is registered already")]
    Duplicate,
    /// The store cannot be reached or did not answer in time.
    #[error("the passkey store is unavailable")]
    Unavailable(#[source] BoxError),
    /// The store answered with an error that is not an outage.
    #[error("the passkey store failed")]
    Other(#[source] BoxError),
}

/// A registered passkey as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPasskey {
    /// Its id in this service.
    pub id: PasskeyId,
    /// Whose it is.
    pub user_id: UserId,
    /// The authenticator's credential id (unique across every account).
    pub credential_id: Vec<u8>,
    /// The verifier's serialised credential: public key, algorithm, flags and counter (see
    /// [`PasskeyVerifier`]). Public data, but only the verifier reads it.
    pub credential: Vec<u8>,
    /// The signature counter last accepted (0 when the authenticator keeps none).
    pub sign_count: u32,
    /// The name its owner gave it.
    pub name: PasskeyName,
    /// When it was registered.
    pub created_at: DateTime<Utc>,
    /// When it last signed somebody in.
    pub last_used_at: Option<DateTime<Utc>>,
}

/// Durable storage of passkeys, several per account. Everything of a user goes when the user
/// is deleted.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait::async_trait]
pub trait PasskeyStore: Send + Sync + 'static {
    /// Stores a new passkey. MUST return [`PasskeyStoreError::Duplicate`] and store nothing
    /// when its credential id is stored already, for any account (one atomic statement: of two
    /// parallel registrations of one credential, one fails).
    async fn insert(&self, passkey: &StoredPasskey) -> Result<(), PasskeyStoreError>;

    /// The user's passkeys, oldest first.
    async fn list(&self, user: UserId) -> Result<Vec<StoredPasskey>, PasskeyStoreError>;

    /// The passkey with this credential id, whoever owns it.
    async fn find_by_credential_id(
        &self,
        credential_id: &[u8],
    ) -> Result<Option<StoredPasskey>, PasskeyStoreError>;

    /// Renames the passkey `id` of `user`. MUST return `Ok(false)` and change nothing when
    /// `user` has no passkey `id` (none, or another account's).
    async fn rename(
        &self,
        user: UserId,
        id: PasskeyId,
        name: &PasskeyName,
    ) -> Result<bool, PasskeyStoreError>;

    /// Deletes the passkey `id` of `user`. MUST return `Ok(false)` and delete nothing when
    /// `user` has no passkey `id` (none, or another account's).
    async fn delete(&self, user: UserId, id: PasskeyId) -> Result<bool, PasskeyStoreError>;

    /// Records a sign-in with the passkey `id`: its new counter, its updated credential and
    /// the time. A compare-and-set on the counter: MUST return `Ok(false)` and change nothing
    /// unless the stored counter is still `expected_count` (a parallel sign-in won) and the
    /// passkey exists.
    async fn record_use(
        &self,
        id: PasskeyId,
        expected_count: u32,
        new_count: u32,
        credential: &[u8],
        at: DateTime<Utc>,
    ) -> Result<bool, PasskeyStoreError>;
}

/// Errors of [`PasskeyChallengeStore`].
#[derive(Debug, thiserror::Error)]
pub enum PasskeyChallengeStoreError {
    /// The store cannot be reached or did not answer in time.
    #[error("the passkey challenge store is unavailable")]
    Unavailable(#[source] BoxError),
    /// The store answered with an error that is not an outage.
    #[error("the passkey challenge store failed")]
    Other(#[source] BoxError),
}

/// Short-lived storage of WebAuthn ceremonies in flight, shared by every instance (Redis, or
/// memory for one process). The service hands over each ceremony sealed (its challenge, the
/// account and session it is bound to), under the SHA-256 of its handle; the store never
/// reads it.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait::async_trait]
pub trait PasskeyChallengeStore: Send + Sync + 'static {
    /// Stores `sealed` under `key` until `expires_at` (after which it MUST be gone or
    /// ignored).
    async fn put(
        &self,
        key: &TokenHash,
        sealed: &[u8],
        expires_at: DateTime<Utc>,
    ) -> Result<(), PasskeyChallengeStoreError>;

    /// Removes and returns the value under `key`; `Ok(None)` when there is none (never
    /// stored, taken already, expired). Atomic: of parallel takes of one key, exactly one gets
    /// the value.
    async fn take(&self, key: &TokenHash) -> Result<Option<Vec<u8>>, PasskeyChallengeStoreError>;
}

/// Why the verifier refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum PasskeyVerifierError {
    /// The client's answer does not verify (wrong challenge, origin or relying party, bad
    /// signature, user not verified, a counter that went back, malformed data).
    #[error("the passkey answer was refused: {0}")]
    Rejected(String),
    /// Anything else (a state or credential that does not parse, a configuration error).
    #[error("the passkey verifier failed")]
    Other(#[source] BoxError),
}

/// A new credential whose registration verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredCredential {
    /// The authenticator's credential id.
    pub credential_id: Vec<u8>,
    /// The verifier's serialised credential, to store.
    pub credential: Vec<u8>,
    /// The signature counter the authenticator started at.
    pub sign_count: u32,
}

/// An assertion that verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedAssertion {
    /// The counter the authenticator signed (0 when it keeps none).
    pub sign_count: u32,
    /// The credential with its updated counter and flags, to store.
    pub credential: Vec<u8>,
}

/// A ceremony's start: options for the client's `navigator.credentials` call, and the state
/// the server keeps until the client answers.
#[derive(Debug, Clone, PartialEq)]
pub struct CeremonyStart {
    /// The `publicKey` options, as JSON (binary fields base64url).
    pub options: serde_json::Value,
    /// The verifier's state (the challenge among it); kept server-side, sealed.
    pub state: Vec<u8>,
}

/// The WebAuthn relying party: builds the options of each ceremony and verifies the client's
/// answers (challenge, origin, relying-party id, flags, signature, counter). Pure
/// computation, no I/O; the relying-party id and origin are the adapter's configuration.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait PasskeyVerifier: Send + Sync + 'static {
    /// Options to register a new discoverable credential (user verification required) for
    /// `user`, shown to the owner as `name`; `exclude` are the credential ids the account has.
    fn start_registration(
        &self,
        user: UserId,
        name: &str,
        exclude: &[Vec<u8>],
    ) -> Result<CeremonyStart, PasskeyVerifierError>;

    /// Verifies the answer to a registration started with `state`.
    fn finish_registration(
        &self,
        response: &serde_json::Value,
        state: &[u8],
    ) -> Result<RegisteredCredential, PasskeyVerifierError>;

    /// Options to sign in with any discoverable credential (user verification required).
    fn start_discoverable(&self) -> Result<CeremonyStart, PasskeyVerifierError>;

    /// Options to sign in with one of `credentials` (stored forms), as a second factor.
    fn start_authentication(
        &self,
        credentials: &[Vec<u8>],
    ) -> Result<CeremonyStart, PasskeyVerifierError>;

    /// The user handle (when the authenticator sent one; a discoverable credential always
    /// does) and the credential id an assertion claims, before it is verified. `Rejected`
    /// when the answer is malformed or the handle is not a user id.
    fn identify(
        &self,
        response: &serde_json::Value,
    ) -> Result<(Option<UserId>, Vec<u8>), PasskeyVerifierError>;

    /// Verifies an assertion for a ceremony started with `state` against the stored
    /// `credential` (which the answer must be made with).
    fn finish_authentication(
        &self,
        response: &serde_json::Value,
        state: &[u8],
        credential: &[u8],
    ) -> Result<VerifiedAssertion, PasskeyVerifierError>;
}

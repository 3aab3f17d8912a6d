//! Ports: what the domain needs from the outside world.
//!
//! Every port is an object-safe `async_trait` (`Send + Sync + 'static`), so the service holds
//! them as `Arc<dyn Port>` and an application can pick adapters at run time. Each port has its
//! own error enum with an `Unavailable` variant for outages; the doc comment of every method says
//! which error an implementation MUST return in which case. With the `mocks` feature, a mockall
//! mock of each port is exported (`MockUserRepository`, `MockSessionStore`, ...).

mod breached;
mod clock;
mod hasher;
mod mailer;
mod otp_store;
mod outbox;
mod passkeys;
mod random;
mod rate_limiter;
mod security_events;
mod session_store;
mod totp_store;
mod user_repository;
mod webhooks;

pub use breached::{BreachCheckError, BreachedPasswords, PasswordSha1};
pub use clock::{Clock, SystemClock};
pub use hasher::{HasherError, PasswordCheck, PasswordHasher};
pub use mailer::{MailMessage, Mailer, MailerError};
pub use otp_store::{OtpStore, OtpStoreError, SendSlot};
pub use outbox::{
    ClaimedMail, MailState, OutboxEntry, OutboxError, OutboxStats, OutboxStore, QueuedMail,
    SuppressionReason,
};
pub use passkeys::{
    CeremonyStart, PasskeyChallengeStore, PasskeyChallengeStoreError, PasskeyStore,
    PasskeyStoreError, PasskeyVerifier, PasskeyVerifierError, RegisteredCredential, StoredPasskey,
    VerifiedAssertion,
};
pub use random::{OsRandom, RandomSource};
pub use rate_limiter::{
    Quota, RateDecision, RateKey, RateLimiter, RateLimiterError, RateSubject, Unlimited,
};
pub use security_events::{
    EventCursor, LoginFailure, SecurityEvent, SecurityEventKind, SecurityEvents,
    SecurityEventsError, TruncatedIp,
};
pub use session_store::{
    DeviceKey, DeviceSighting, SessionCursor, SessionPage, SessionStore, SessionStoreError,
    MAX_SESSIONS_PAGE,
};
pub use totp_store::{MfaChallenge, StoredTotp, TotpStore, TotpStoreError};
pub use user_repository::{UserRepoError, UserRepository};
pub use webhooks::{
    ClaimedDelivery, DeliveryEntry, DeliveryState, WebhookEndpoint, WebhookEvent, WebhookHeaders,
    WebhookSender, WebhookStats, WebhookStore, WebhookStoreError,
};

#[cfg(any(test, feature = "mocks"))]
#[cfg_attr(docsrs, doc(cfg(feature = "mocks")))]
pub use breached::MockBreachedPasswords;
#[cfg(any(test, feature = "mocks"))]
#[cfg_attr(docsrs, doc(cfg(feature = "mocks")))]
pub use clock::MockClock;
#[cfg(any(test, feature = "mocks"))]
#[cfg_attr(docsrs, doc(cfg(feature = "mocks")))]
pub use hasher::MockPasswordHasher;
#[cfg(any(test, feature = "mocks"))]
#[cfg_attr(docsrs, doc(cfg(feature = "mocks")))]
pub use mailer::MockMailer;
#[cfg(any(test, feature = "mocks"))]
#[cfg_attr(docsrs, doc(cfg(feature = "mocks")))]
pub use otp_store::MockOtpStore;
#[cfg(any(test, feature = "mocks"))]
#[cfg_attr(docsrs, doc(cfg(feature = "mocks")))]
pub use outbox::MockOutboxStore;
#[cfg(any(test, feature = "mocks"))]
#[cfg_attr(docsrs, doc(cfg(feature = "mocks")))]
pub use passkeys::{MockPasskeyChallengeStore, MockPasskeyStore, MockPasskeyVerifier};
#[cfg(any(test, feature = "mocks"))]
#[cfg_attr(docsrs, doc(cfg(feature = "mocks")))]
pub use random::MockRandomSource;
#[cfg(any(test, feature = "mocks"))]
#[cfg_attr(docsrs, doc(cfg(feature = "mocks")))]
pub use rate_limiter::MockRateLimiter;
#[cfg(any(test, feature = "mocks"))]
#[cfg_attr(docsrs, doc(cfg(feature = "mocks")))]
pub use security_events::MockSecurityEvents;
#[cfg(any(test, feature = "mocks"))]
#[cfg_attr(docsrs, doc(cfg(feature = "mocks")))]
pub use session_store::MockSessionStore;
#[cfg(any(test, feature = "mocks"))]
#[cfg_attr(docsrs, doc(cfg(feature = "mocks")))]
pub use totp_store::MockTotpStore;
#[cfg(any(test, feature = "mocks"))]
#[cfg_attr(docsrs, doc(cfg(feature = "mocks")))]
pub use user_repository::MockUserRepository;
#[cfg(any(test, feature = "mocks"))]
#[cfg_attr(docsrs, doc(cfg(feature = "mocks")))]
pub use webhooks::{MockWebhookSender, MockWebhookStore};

/// A boxed error from an adapter, kept as the `source` of a port error.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

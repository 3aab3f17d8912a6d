//! [`AuthService`]: the whole account and session lifecycle, written against the ports.
//!
//! One file per use case: [`account`](self) (signup, verify, resend, delete), sessions (login,
//! authenticate, logout, list, revoke), password (change, forgot, reset), and the one-time
//! codes they share (claim, issue, match, consume). The abuse policy the service applies to
//! itself (request budgets, re-authentication budgets, hashing fairness) is in `guard.rs`.

mod access;
mod account;
mod admin;
mod changes;
mod codes;
mod email;
mod errors;
mod events;
mod fairness;
mod guard;
mod mfa;
mod passkeys;
mod password;
mod sessions;
#[cfg(test)]
mod tests;
mod webhooks;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tracing::warn;

pub use access::{AccessGrant, MAX_ACCESS_TOKEN_TTL};
pub use admin::{AccountPage, AdminAccount, MAX_ACCOUNTS_PAGE};
pub use errors::*;
pub use events::{EventPage, SecurityEventConfig, MAX_EVENTS_PAGE};
pub use guard::HasherSaturated;
pub use mfa::{TotpEnrolment, TotpStatus};
pub use passkeys::{
    PasskeyCeremony, PasskeyInfo, Passkeys, MAX_CEREMONY_TTL, MAX_PASSKEYS_PER_ACCOUNT,
};
pub use webhooks::{CreatedWebhook, DeliveryPage, Webhooks, MAX_DELIVERIES_PAGE};

use crate::domain::device::DeviceCredential;
use crate::domain::email::EmailAddress;
use crate::domain::otp::{OtpPurpose, OtpSecret};
use crate::domain::password::{Password, PasswordPolicy};
use crate::domain::session::{Session, SessionId, SessionToken};
use crate::domain::user::{User, UserId};
use crate::outbox::MailQueue;
use crate::ports::{
    BreachedPasswords, Clock, MailMessage, Mailer, OtpStore, PasswordHasher, PasswordSha1,
    RandomSource, RateLimiter, SessionStore, TotpStore, UserRepository,
};
use crate::seal::Sealer;
use crate::throttle::{Throttle, ThrottleConfig};

use fairness::HashingSlots;

/// Tunable rules of the service. `Default` gives the documented defaults.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// How long a one-time code is valid (default 10 minutes).
    pub otp_ttl: Duration,
    /// Wrong attempts allowed per code before it is dead (default 5).
    pub otp_max_attempts: u32,
    /// Minimum time between two code mails to one address, per purpose (default 60 s).
    pub mail_cooldown: Duration,
    /// Absolute session lifetime (default 24 h): a session ends this long after login,
    /// however much it is used.
    pub session_ttl: Duration,
    /// Inactivity timeout (default 30 min; `None`: none): a session not used for this long
    /// ends. Uses are recorded at most once per [`AuthConfig::activity_granularity`], so a
    /// session ends between `timeout - granularity` and `timeout` after its last use.
    pub session_idle_timeout: Option<Duration>,
    /// Rules for new passwords.
    pub password_policy: PasswordPolicy,
    /// When on (the default), signup answers the same for new, pending and verified
    /// addresses: like a new signup, with a notice mailed to the owner of a verified account
    /// instead of [`SignupError::EmailTaken`], never a pending account's data, and mail
    /// cooldowns (signup, resend-otp) enforced silently instead of with `TooManyRequests`.
    pub enumeration_protection: bool,
    /// How long a device credential stays valid (default 180 days); each login from the
    /// device renews it.
    pub device_ttl: Duration,
    /// The request budgets the service spends on [`AuthPorts::limiter`] (see
    /// [`crate::throttle`]).
    pub throttle: ThrottleConfig,
    /// The issuer name authenticator apps show next to the account (default `SecureAuth`;
    /// no colon).
    pub totp_issuer: String,
    /// How long the token of a login waiting for its second factor works (default 5
    /// minutes).
    pub mfa_token_ttl: Duration,
    /// How long an administrator's password, given again inside a session, opens that
    /// session's administrative privilege window (default 10 minutes).
    pub admin_reauth_window: Duration,
    /// Whether a session may be used from another client than the one that opened it
    /// (default [`SessionBinding::Off`](crate::SessionBinding::Off)).
    pub session_binding: crate::domain::session::SessionBinding,
    /// Whether a login from a device never seen for the account mails its owner (default
    /// on). The devices seen are kept per account, at most [`KNOWN_DEVICES`] of them, as
    /// hashes.
    pub new_device_mail: bool,
}

/// How many devices an account's list of seen devices keeps (the least recently seen go
/// first).
pub const KNOWN_DEVICES: usize = 20;

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            otp_ttl: Duration::from_secs(10 * 60),
            otp_max_attempts: 5,
            mail_cooldown: Duration::from_secs(60),
            session_ttl: Duration::from_secs(24 * 60 * 60),
            session_idle_timeout: Some(Duration::from_secs(30 * 60)),
            password_policy: PasswordPolicy::default(),
            enumeration_protection: true,
            device_ttl: Duration::from_secs(180 * 24 * 60 * 60),
            throttle: ThrottleConfig::default(),
            totp_issuer: "SecureAuth".to_owned(),
            mfa_token_ttl: Duration::from_secs(5 * 60),
            admin_reauth_window: Duration::from_secs(10 * 60),
            session_binding: crate::domain::session::SessionBinding::Off,
            new_device_mail: true,
        }
    }
}

impl AuthConfig {
    /// How stale a session's recorded last use may get before a use is written to the store:
    /// an eighth of the idle timeout, at most one minute. Keeps session validation to one
    /// store read for nearly every request.
    pub fn activity_granularity(&self) -> Option<Duration> {
        self.session_idle_timeout
            .map(|idle| (idle / 8).min(Duration::from_secs(60)))
    }

    /// The store TTL of a session at `now`: until the idle timeout runs out, but never past
    /// the absolute lifetime.
    fn session_store_ttl(&self, expires_at: DateTime<Utc>, now: DateTime<Utc>) -> Duration {
        let left = (expires_at - now).to_std().unwrap_or(Duration::ZERO);
        self.session_idle_timeout
            .map_or(left, |idle| idle.min(left))
    }
}

/// The adapters the service runs on: nine ports.
#[derive(Clone)]
pub struct AuthPorts {
    /// Durable accounts.
    pub users: Arc<dyn UserRepository>,
    /// Server-side sessions.
    pub sessions: Arc<dyn SessionStore>,
    /// One-time codes and mail cooldowns.
    pub otps: Arc<dyn OtpStore>,
    /// Outgoing mail.
    pub mailer: Arc<dyn Mailer>,
    /// Password hashing.
    pub hasher: Arc<dyn PasswordHasher>,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// Randomness.
    pub random: Arc<dyn RandomSource>,
    /// Request budgets, shared by every instance of the service. Pass
    /// [`Unlimited`](crate::Unlimited) to run without any (say, behind a gateway that enforces
    /// its own).
    pub limiter: Arc<dyn RateLimiter>,
    /// Second factors: TOTP secrets (sealed), recovery codes (hashed), second-step tokens.
    pub totp: Arc<dyn TotpStore>,
}

impl std::fmt::Debug for AuthPorts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthPorts").finish_non_exhaustive()
    }
}

/// A successful login.
#[derive(Debug)]
pub struct LoginOutcome {
    /// The account.
    pub user: User,
    /// The new session's bearer token: hand it to the client, then drop it.
    pub token: SessionToken,
    /// The new session.
    pub session: Session,
    /// A fresh credential for the device that logged in (see [`crate::domain::device`]):
    /// hand it to the client (an HttpOnly cookie, or a field the client keeps and sends with
    /// its next login), then drop it.
    pub device: DeviceCredential,
}

/// Outcome of a readiness check of the stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Readiness {
    /// The user store answered.
    pub users: bool,
    /// The session store answered.
    pub sessions: bool,
    /// The password hasher could take another call (load, not health: a saturated hasher
    /// still serves sessions).
    pub hasher_has_capacity: bool,
}

/// The authentication service.
///
/// Every operation applies the service's own abuse policy: pass the client's [`ClientInfo`]
/// (IP address as your transport sees it, user agent) and the service spends the request
/// budgets of [`AuthConfig::throttle`] on [`AuthPorts::limiter`], bounds how many password
/// hashes one client or account may have in flight, and answers `TooManyRequests` with a
/// `retry_after` when a budget is spent. There is no way to skip it by forgetting a call;
/// to run without budgets, pass [`Unlimited`](crate::Unlimited) as the limiter.
///
/// [`ClientInfo`]: crate::ClientInfo
///
/// # Rules worth knowing
/// - **Pre-account hijacking.** Every verification code carries the password of the signup it
///   was mailed for, and verifying with it sets exactly that password; the first and the nine
///   newest codes of an address stay valid (each once, one shared attempt budget). Whoever
///   signs up first or later with someone else's address, the owner's code gives the owner's
///   password; after more than one signup a resend mails no code bound to the stored password.
///   Unverified accounts cannot log in.
/// - **Enumeration.** `login` answers the same for an unknown address and a wrong password and
///   costs one full hash in both cases. `forgot_password` and `resend_otp` return the same value
///   whatever the address; their mail cooldown is claimed before the address is looked up.
/// - **Revocation wins races.** Logout everywhere, password change and reset, and account
///   deletion raise the address's revocation epoch before they sweep the sessions; a login
///   reads the epoch before it reads the password hash and again after it stored its session,
///   and deletes that session when the epoch moved. No session made with a password checked
///   before a revocation outlives it.
/// - **Disabled accounts stay out.** Disabling an account (an administrator's act) marks it
///   first and then ends its sessions like a logout everywhere; every way in (password, login
///   code, second step) refuses a disabled account with `AccountDisabled` once its credentials
///   were right, and a login in flight loses to the revocation.
/// - **Re-authentication has a budget.** Checking the password inside a session (change
///   password, delete account) spends per-account and per-client budgets; a session that
///   keeps giving wrong passwords is ended and the owner is told by mail.
///
/// # Example
/// `crates/auth-examples/examples/lifecycle.rs` runs the whole lifecycle against the in-process
/// adapters (`auth_memory::InProcessKit`); with only
/// the mocks of the `mocks` feature, building the service looks like this:
/// ```
/// use std::sync::Arc;
/// use auth_core::*;
/// let ports = AuthPorts {
///     users: Arc::new(MockUserRepository::new()),
///     sessions: Arc::new(MockSessionStore::new()),
///     otps: Arc::new(MockOtpStore::new()),
///     mailer: Arc::new(MockMailer::new()),
///     hasher: Arc::new(MockPasswordHasher::new()),
///     clock: Arc::new(SystemClock),
///     random: Arc::new(OsRandom),
///     limiter: Arc::new(Unlimited),
///     totp: Arc::new(MockTotpStore::new()),
/// };
/// let secret = OtpSecret::new(vec![42u8; 32].into_boxed_slice().into()).unwrap();
/// let service = AuthService::new(ports, AuthConfig::default(), secret);
/// assert_eq!(service.config().otp_max_attempts, 5);
/// ```
pub struct AuthService {
    ports: AuthPorts,
    config: AuthConfig,
    otp_secret: OtpSecret,
    throttle: Throttle,
    hashing: HashingSlots,
    totp_seal: Sealer,
    /// The outbox whose rows the user repository writes with the changes they belong to.
    outbox: Option<Arc<MailQueue>>,
    /// The list new passwords must not be on.
    breached: Option<Arc<dyn BreachedPasswords>>,
    /// Where each account's security history is recorded.
    events: Option<events::EventLog>,
    /// Passkeys, when turned on.
    passkeys: Option<passkeys::PasskeyRuntime>,
    /// Webhook endpoints, when turned on.
    webhooks: Option<webhooks::Webhooks>,
}

impl std::fmt::Debug for AuthService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthService")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Time from `then` to `now`; zero if `then` is later (a clock step back).
fn since(then: DateTime<Utc>, now: DateTime<Utc>) -> Duration {
    (now - then).to_std().unwrap_or(Duration::ZERO)
}

pub(crate) fn add(at: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    chrono::TimeDelta::from_std(d)
        .ok()
        .and_then(|d| at.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

impl AuthService {
    /// Builds the service.
    pub fn new(ports: AuthPorts, config: AuthConfig, otp_secret: OtpSecret) -> Self {
        let throttle = Throttle::new(ports.limiter.clone(), config.throttle.clone());
        let hashing = HashingSlots::new(config.throttle.hashes_in_flight_per_client);
        let mut key = otp_secret.derive_key(mfa::TOTP_SEAL_LABEL);
        let totp_seal = Sealer::derive(&key, mfa::TOTP_SEAL_LABEL);
        key.fill(0);
        Self {
            totp_seal,
            ports,
            config,
            otp_secret,
            throttle,
            hashing,
            outbox: None,
            breached: None,
            events: None,
            passkeys: None,
            webhooks: None,
        }
    }

    /// Refuses new passwords (signup, change, reset) that are on `list` (ASVS 6.2.12): the
    /// operation answers `PasswordBreached` before anything is hashed or stored, whatever the
    /// address. When the list cannot be asked the password is accepted and a warning logged
    /// (fail-open: a breach list outage must not stop signups and resets).
    #[must_use]
    pub fn with_breached_passwords(mut self, list: Arc<dyn BreachedPasswords>) -> Self {
        self.breached = Some(list);
        self
    }

    /// Whether `password` is on the breached-password list; `false` without a list or when
    /// it cannot be asked.
    async fn is_breached(&self, password: &Password) -> bool {
        let Some(list) = &self.breached else {
            return false;
        };
        match list.is_breached(&PasswordSha1::of(password)).await {
            Ok(listed) => listed,
            Err(e) => {
                warn!(error = %e, "breached-password check skipped: the password was accepted");
                false
            }
        }
    }

    /// Writes the mail that belongs to a change (a new account's code, a repeated signup's
    /// code, the password-changed and account-deleted notices) into the outbox in the change's
    /// own transaction, through the repository's `*_with_mail` methods (see
    /// [`UserRepository`]): no account without its code mail, no notice of a change that
    /// rolled back. `queue` is the outbox in the user repository's own database (usually the
    /// same [`MailQueue`] given as [`AuthPorts::mailer`], which carries every other mail).
    ///
    /// Without it, such a mail is handed to the mailer once its change is made.
    #[must_use]
    pub fn with_outbox(mut self, queue: Arc<MailQueue>) -> Self {
        self.outbox = Some(queue);
        self
    }

    /// The configuration in force.
    pub fn config(&self) -> &AuthConfig {
        &self.config
    }

    /// The policy new passwords must satisfy (for parsing at the boundary).
    pub fn password_policy(&self) -> &PasswordPolicy {
        &self.config.password_policy
    }

    /// Whether the durable and session stores answer, and whether the hasher has capacity.
    pub async fn readiness(&self) -> Readiness {
        let (users, sessions) = futures::join!(self.ports.users.ping(), self.ports.sessions.ping());
        Readiness {
            users: users.is_ok(),
            sessions: sessions.is_ok(),
            hasher_has_capacity: !self.ports.hasher.is_saturated(),
        }
    }

    /// Ends every session of the user (raising the address's revocation epoch first, so that
    /// a login in flight cannot slip a session past the sweep), except `keep`, and discards
    /// the address's login, reset and change-of-address codes: a code mailed before the
    /// revocation must neither open a session, set a password nor move the account after it.
    async fn revoke_all(
        &self,
        user_id: UserId,
        email: &EmailAddress,
        keep: Option<SessionId>,
    ) -> Result<u64, Failure> {
        self.ports.sessions.bump_revocation_epoch(email).await?;
        for purpose in [
            OtpPurpose::Login,
            OtpPurpose::ResetPassword,
            OtpPurpose::ChangeEmail,
        ] {
            self.ports.otps.discard(purpose, email).await?;
        }
        Ok(self
            .ports
            .sessions
            .delete_all_for_user(user_id, keep)
            .await?)
    }

    /// Hands a notice to the mailer in `language` (an `Accept-Language` value); a failure is
    /// logged, not returned: the change it tells of has happened.
    async fn send_best_effort(
        &self,
        to: &EmailAddress,
        message: &MailMessage,
        language: Option<&str>,
    ) {
        if let Err(e) = self
            .ports
            .mailer
            .send_localized(to, message, language)
            .await
        {
            warn!(error = %e, "notice not delivered");
        }
    }

    /// An answer shaped like a new account, for an address that has one. Its times have the
    /// microsecond precision of a stored account's, so nothing in it tells the two apart.
    fn decoy_user(&self, email: EmailAddress, now: DateTime<Utc>) -> User {
        let now = chrono::SubsecRound::trunc_subsecs(now, 6);
        User {
            id: UserId::from_uuid(self.ports.random.uuid()),
            email,
            verified_at: None,
            created_at: now,
            updated_at: now,
        }
    }
}

/// First eight hex digits of a session id: enough to correlate logs, useless to an attacker.
fn short_id(id: SessionId) -> String {
    id.as_uuid().simple().to_string()[..8].to_owned()
}

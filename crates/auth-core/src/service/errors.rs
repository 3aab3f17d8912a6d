//! One error enum per service operation, in domain words. Outages of any port surface as
//! [`Failure::Unavailable`], everything unexpected as [`Failure::Internal`].

use std::fmt;
use std::time::Duration;

use crate::domain::mfa::MfaToken;
use crate::ports::{
    BoxError, HasherError, MailerError, OtpStoreError, RateLimiterError, SessionStoreError,
    TotpStoreError, UserRepoError,
};
use crate::LoginOutcome;

/// The port a [`Failure`] came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dependency {
    /// [`crate::UserRepository`].
    UserStore,
    /// [`crate::SessionStore`].
    SessionStore,
    /// [`crate::OtpStore`].
    OtpStore,
    /// [`crate::Mailer`].
    Mailer,
    /// [`crate::PasswordHasher`].
    Hasher,
    /// [`crate::RateLimiter`].
    RateLimiter,
    /// [`crate::TotpStore`].
    TotpStore,
    /// [`crate::SecurityEvents`].
    SecurityEvents,
    /// [`crate::PasskeyStore`].
    PasskeyStore,
    /// [`crate::PasskeyChallengeStore`].
    PasskeyChallenges,
    /// [`crate::PasskeyVerifier`].
    PasskeyVerifier,
    /// [`crate::WebhookStore`].
    Webhooks,
}

impl fmt::Display for Dependency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::UserStore => "user store",
            Self::SessionStore => "session store",
            Self::OtpStore => "one-time code store",
            Self::Mailer => "mail service",
            Self::Hasher => "password hasher",
            Self::RateLimiter => "rate limiter",
            Self::TotpStore => "second-factor store",
            Self::SecurityEvents => "security event store",
            Self::PasskeyStore => "passkey store",
            Self::PasskeyChallenges => "passkey challenge store",
            Self::PasskeyVerifier => "passkey verifier",
            Self::Webhooks => "webhook store",
        })
    }
}

/// A port failed: either an outage (retry later) or something unexpected.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// The dependency is down or overloaded; the operation changed nothing it could not undo
    /// and can be retried.
    #[error("the {0} is unavailable")]
    Unavailable(Dependency, #[source] BoxError),
    /// The dependency answered with an unexpected error.
    #[error("the {0} failed")]
    Internal(Dependency, #[source] BoxError),
}

impl Failure {
    /// The port that failed.
    pub fn dependency(&self) -> Dependency {
        match self {
            Self::Unavailable(d, _) | Self::Internal(d, _) => *d,
        }
    }

    /// Whether this is an outage (as opposed to an unexpected error).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Unavailable(..))
    }
}

impl From<UserRepoError> for Failure {
    fn from(e: UserRepoError) -> Self {
        match e {
            UserRepoError::Unavailable(s) => Self::Unavailable(Dependency::UserStore, s),
            UserRepoError::Other(s) => Self::Internal(Dependency::UserStore, s),
            other @ (UserRepoError::Duplicate | UserRepoError::NotFound) => {
                Self::Internal(Dependency::UserStore, Box::new(other))
            }
        }
    }
}

impl From<SessionStoreError> for Failure {
    fn from(e: SessionStoreError) -> Self {
        match e {
            SessionStoreError::Unavailable(s) => Self::Unavailable(Dependency::SessionStore, s),
            SessionStoreError::Other(s) => Self::Internal(Dependency::SessionStore, s),
        }
    }
}

impl From<OtpStoreError> for Failure {
    fn from(e: OtpStoreError) -> Self {
        match e {
            OtpStoreError::Unavailable(s) => Self::Unavailable(Dependency::OtpStore, s),
            OtpStoreError::Other(s) => Self::Internal(Dependency::OtpStore, s),
        }
    }
}

impl From<MailerError> for Failure {
    fn from(e: MailerError) -> Self {
        match e {
            MailerError::Unavailable(s) => Self::Unavailable(Dependency::Mailer, s),
            MailerError::Rejected(s) => Self::Internal(Dependency::Mailer, s),
        }
    }
}

impl From<crate::ports::OutboxError> for Failure {
    fn from(e: crate::ports::OutboxError) -> Self {
        match e {
            crate::ports::OutboxError::Unavailable(s) => Self::Unavailable(Dependency::Mailer, s),
            crate::ports::OutboxError::Other(s) => Self::Internal(Dependency::Mailer, s),
        }
    }
}

impl From<HasherError> for Failure {
    fn from(e: HasherError) -> Self {
        match e {
            HasherError::Unavailable(s) => Self::Unavailable(Dependency::Hasher, s),
            HasherError::Other(s) => Self::Internal(Dependency::Hasher, s),
        }
    }
}

impl From<RateLimiterError> for Failure {
    fn from(e: RateLimiterError) -> Self {
        match e {
            RateLimiterError::Unavailable(s) => Self::Unavailable(Dependency::RateLimiter, s),
            RateLimiterError::Other(s) => Self::Internal(Dependency::RateLimiter, s),
        }
    }
}

impl From<TotpStoreError> for Failure {
    fn from(e: TotpStoreError) -> Self {
        match e {
            TotpStoreError::Unavailable(s) => Self::Unavailable(Dependency::TotpStore, s),
            TotpStoreError::Other(s) => Self::Internal(Dependency::TotpStore, s),
        }
    }
}

impl From<crate::ports::PasskeyStoreError> for Failure {
    fn from(e: crate::ports::PasskeyStoreError) -> Self {
        use crate::ports::PasskeyStoreError as E;
        match e {
            E::Unavailable(s) => Self::Unavailable(Dependency::PasskeyStore, s),
            E::Other(s) => Self::Internal(Dependency::PasskeyStore, s),
            other @ E::Duplicate => Self::Internal(Dependency::PasskeyStore, Box::new(other)),
        }
    }
}

impl From<crate::ports::WebhookStoreError> for Failure {
    fn from(e: crate::ports::WebhookStoreError) -> Self {
        use crate::ports::WebhookStoreError as E;
        match e {
            E::Unavailable(s) => Self::Unavailable(Dependency::Webhooks, s),
            E::Other(s) => Self::Internal(Dependency::Webhooks, s),
        }
    }
}

impl From<crate::ports::PasskeyChallengeStoreError> for Failure {
    fn from(e: crate::ports::PasskeyChallengeStoreError) -> Self {
        use crate::ports::PasskeyChallengeStoreError as E;
        match e {
            E::Unavailable(s) => Self::Unavailable(Dependency::PasskeyChallenges, s),
            E::Other(s) => Self::Internal(Dependency::PasskeyChallenges, s),
        }
    }
}

/// A login whose password (or login code) was right, waiting for its second factor: hand
/// the token to the client, which finishes with
/// [`AuthService::login_second_factor`](crate::AuthService::login_second_factor).
#[derive(Debug, Clone)]
pub struct PendingLogin {
    /// Single use, bound to the client, worth nothing else.
    pub token: MfaToken,
    /// When it stops working.
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

macro_rules! from_port_errors {
    ($t:ty; $($src:ty),*) => {$(
        impl From<$src> for $t {
            fn from(e: $src) -> Self {
                Self::Failure(Failure::from(e))
            }
        }
    )*};
}

macro_rules! from_failure {
    ($($t:ty),* $(,)?) => {$(
        impl From<Failure> for $t {
            fn from(e: Failure) -> Self {
                Self::Failure(e)
            }
        }
        from_port_errors!($t; UserRepoError, SessionStoreError, OtpStoreError, MailerError, HasherError, TotpStoreError, crate::ports::PasskeyStoreError, crate::ports::PasskeyChallengeStoreError, crate::ports::WebhookStoreError);
    )*};
}

/// Errors of [`crate::AuthService::signup`].
#[derive(Debug, thiserror::Error)]
pub enum SignupError {
    /// The address belongs to a verified account.
    #[error("an account with this email address already exists")]
    EmailTaken,
    /// The password is on the breached-password list (see
    /// [`BreachedPasswords`](crate::BreachedPasswords)); whatever the address.
    #[error("the password appears in a data breach")]
    PasswordBreached,
    /// A code was mailed to this address moments ago, or a request budget or this client's
    /// share of the hasher is spent.
    #[error("too many requests; try again later")]
    TooManyRequests {
        /// Time until the client may try again.
        retry_after: Duration,
    },
    /// A port failed.
    #[error(transparent)]
    Failure(Failure),
}

/// Why a one-time code was refused ([`crate::AuthService::verify_otp`],
/// [`crate::AuthService::login_with_code`]; [`ResetPasswordError`] has the same variants).
#[derive(Debug, thiserror::Error)]
pub enum OtpCheckError {
    /// Wrong code, no code, or unknown address: deliberately indistinguishable.
    #[error("the code is invalid")]
    InvalidOtp,
    /// Not a failure: the login code was right and the account has a second factor; finish
    /// with [`AuthService::login_second_factor`](crate::AuthService::login_second_factor)
    /// (only from [`crate::AuthService::login_with_code`]).
    #[error("the code is right; a second factor is required")]
    SecondFactorRequired(PendingLogin),
    /// The code was right-shaped for a live entry but its lifetime is over.
    #[error("the code has expired; request a new one")]
    OtpExpired,
    /// Too many wrong attempts: the code is dead.
    #[error("too many wrong attempts; request a new code")]
    TooManyAttempts,
    /// The credentials were right but an administrator disabled the account.
    #[error("this account is disabled")]
    AccountDisabled,
    /// A request budget or this client's share of the hasher is spent (the same answer
    /// whether or not the address has an account).
    #[error("too many requests; try again later")]
    TooManyRequests {
        /// Time until the client may try again.
        retry_after: Duration,
    },
    /// A port failed.
    #[error(transparent)]
    Failure(Failure),
}

/// Errors of [`crate::AuthService::verify_otp`].
pub type VerifyOtpError = OtpCheckError;

/// Errors of [`crate::AuthService::reset_password`]: those of a code check, and a new
/// password on the breached-password list.
#[derive(Debug, thiserror::Error)]
pub enum ResetPasswordError {
    /// Wrong code, no code, or unknown address: deliberately indistinguishable.
    #[error("the code is invalid")]
    InvalidOtp,
    /// The code's lifetime is over.
    #[error("the code has expired; request a new one")]
    OtpExpired,
    /// Too many wrong attempts: the code is dead.
    #[error("too many wrong attempts; request a new code")]
    TooManyAttempts,
    /// A request budget or this client's share of the hasher is spent.
    #[error("too many requests; try again later")]
    TooManyRequests {
        /// Time until the client may try again.
        retry_after: Duration,
    },
    /// The new password is on the breached-password list (checked before the code, which
    /// stays usable with another password).
    #[error("the password appears in a data breach")]
    PasswordBreached,
    /// A port failed.
    #[error(transparent)]
    Failure(Failure),
}

impl From<OtpCheckError> for ResetPasswordError {
    fn from(e: OtpCheckError) -> Self {
        match e {
            // A reset code's check never asks for a second factor (only a login code's does).
            OtpCheckError::InvalidOtp
            | OtpCheckError::SecondFactorRequired(_)
            | OtpCheckError::AccountDisabled => Self::InvalidOtp,
            OtpCheckError::OtpExpired => Self::OtpExpired,
            OtpCheckError::TooManyAttempts => Self::TooManyAttempts,
            OtpCheckError::TooManyRequests { retry_after } => Self::TooManyRequests { retry_after },
            OtpCheckError::Failure(f) => Self::Failure(f),
        }
    }
}

/// Errors of [`AuthService::login_with_code`](super::AuthService::login_with_code): those of
/// any code check.
pub type LoginWithCodeError = OtpCheckError;

/// Errors of [`AuthService::request_login_code`](super::AuthService::request_login_code): the
/// same as asking for a reset code.
pub type RequestLoginCodeError = ForgotPasswordError;

/// Errors of [`crate::AuthService::resend_otp`].
#[derive(Debug, thiserror::Error)]
pub enum ResendOtpError {
    /// Inside the per-address cooldown (applies to every address, known or not), or a
    /// request budget is spent.
    #[error("too many requests; try again later")]
    TooManyRequests {
        /// Time until the client may try again.
        retry_after: Duration,
    },
    /// A port failed.
    #[error(transparent)]
    Failure(Failure),
}

/// Errors of [`crate::AuthService::forgot_password`].
#[derive(Debug, thiserror::Error)]
pub enum ForgotPasswordError {
    /// A request budget or this client's share of the hasher is spent (the same answer
    /// whether or not the address has an account).
    #[error("too many requests; try again later")]
    TooManyRequests {
        /// Time until the client may try again.
        retry_after: Duration,
    },
    /// A port failed.
    #[error(transparent)]
    Failure(Failure),
}

/// Errors of [`crate::AuthService::login`].
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// Unknown address or wrong password: deliberately indistinguishable. With enumeration
    /// protection on (the default), also the right password of an account whose address is
    /// not verified yet.
    #[error("invalid email or password")]
    InvalidCredentials,
    /// Not a failure: the password is right and the account has a second factor, so no
    /// session yet; finish with
    /// [`AuthService::login_second_factor`](crate::AuthService::login_second_factor).
    #[error("the password is right; a second factor is required")]
    SecondFactorRequired(PendingLogin),
    /// Right password, but the address is not verified yet (only with enumeration protection
    /// off).
    #[error("the email address is not verified")]
    EmailNotVerified,
    /// The credentials were right but an administrator disabled the account.
    #[error("this account is disabled")]
    AccountDisabled,
    /// A request budget or this client's share of the hasher is spent (the same answer
    /// whether or not the address has an account).
    #[error("too many requests; try again later")]
    TooManyRequests {
        /// Time until the client may try again.
        retry_after: Duration,
    },
    /// A port failed.
    #[error(transparent)]
    Failure(Failure),
}

/// Errors of [`crate::AuthService::authenticate`].
#[derive(Debug, thiserror::Error)]
pub enum AuthenticateError {
    /// Unknown, expired or revoked token.
    #[error("not authenticated")]
    Unauthenticated,
    /// A port failed.
    #[error(transparent)]
    Failure(Failure),
}

/// Errors of the session-management operations (logout, list, revoke).
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The session to revoke is not one of the caller's live sessions.
    #[error("no such session")]
    NotFound,
    /// A port failed.
    #[error(transparent)]
    Failure(Failure),
}

/// Errors of [`crate::AuthService::change_password`].
#[derive(Debug, thiserror::Error)]
pub enum ChangePasswordError {
    /// The current password is wrong; nothing changed.
    #[error("the current password is wrong")]
    InvalidCredentials,
    /// The user has a second factor and none was given.
    #[error("a code from your authenticator app or a recovery code is required")]
    SecondFactorRequired,
    /// The second factor is wrong or was used before; nothing changed.
    #[error("the code is wrong or was used before")]
    InvalidSecondFactor,
    /// The account no longer exists.
    #[error("not authenticated")]
    Unauthenticated,
    /// The new password is on the breached-password list.
    #[error("the password appears in a data breach")]
    PasswordBreached,
    /// A request budget or this client's share of the hasher is spent (the same answer
    /// whether or not the address has an account).
    #[error("too many requests; try again later")]
    TooManyRequests {
        /// Time until the client may try again.
        retry_after: Duration,
    },
    /// A port failed.
    #[error(transparent)]
    Failure(Failure),
}

/// Errors of [`crate::AuthService::request_email_change`].
#[derive(Debug, thiserror::Error)]
pub enum ChangeEmailError {
    /// The current password is wrong; nothing changed.
    #[error("the current password is wrong")]
    InvalidCredentials,
    /// The user has a second factor and none was given.
    #[error("a code from your authenticator app or a recovery code is required")]
    SecondFactorRequired,
    /// The second factor is wrong or was used before; nothing changed.
    #[error("the code is wrong or was used before")]
    InvalidSecondFactor,
    /// The new address is the account's address already.
    #[error("this is the account's address already")]
    SameAddress,
    /// The session is gone (ended, or its account deleted or disabled).
    #[error("not authenticated")]
    Unauthenticated,
    /// A request budget or this client's share of the hasher is spent.
    #[error("too many requests; try again later")]
    TooManyRequests {
        /// Time until the client may try again.
        retry_after: Duration,
    },
    /// A port failed.
    #[error(transparent)]
    Failure(Failure),
}

/// Errors of [`crate::AuthService::confirm_email_change`].
#[derive(Debug, thiserror::Error)]
pub enum ConfirmEmailChangeError {
    /// Wrong code, no code, a code for another address, a code outdated by a change of
    /// password, or an address taken meanwhile: deliberately indistinguishable.
    #[error("the code is invalid")]
    InvalidOtp,
    /// The code's lifetime is over.
    #[error("the code has expired; request a new one")]
    OtpExpired,
    /// Too many wrong attempts: the code is dead.
    #[error("too many wrong attempts; request a new code")]
    TooManyAttempts,
    /// The session is gone (ended, or its account deleted or disabled).
    #[error("not authenticated")]
    Unauthenticated,
    /// A request budget is spent.
    #[error("too many requests; try again later")]
    TooManyRequests {
        /// Time until the client may try again.
        retry_after: Duration,
    },
    /// A port failed.
    #[error(transparent)]
    Failure(Failure),
}

/// Errors of the administrative operations (`AuthService::admin_*`).
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The session is unknown, expired or revoked, or its account is gone.
    #[error("not authenticated")]
    Unauthenticated,
    /// The session's account is not an administrator (or is disabled).
    #[error("this needs an administrator")]
    Forbidden,
    /// The session's privilege window is closed: the administrator must give the password
    /// again (`AuthService::admin_reauthenticate`).
    #[error("give your password again to continue")]
    ReauthenticationRequired,
    /// The password given to open the privilege window is wrong.
    #[error("the password is wrong")]
    InvalidCredentials,
    /// The administrator has TOTP on and gave no second factor to open the privilege window.
    #[error("a second factor is required")]
    SecondFactorRequired,
    /// The second factor given to open the privilege window is wrong or was used before.
    #[error("the second factor is wrong")]
    InvalidSecondFactor,
    /// No such account, or no such session of it.
    #[error("no such user or session")]
    NotFound,
    /// An administrator cannot disable, delete or demote their own account (which could
    /// leave the service without one).
    #[error("an administrator cannot do this to their own account")]
    OwnAccount,
    /// The account's address is verified already: nothing to resend.
    #[error("the address is already verified")]
    AlreadyVerified,
    /// The address has an account already (creating an administrator).
    #[error("an account with this address exists")]
    EmailTaken,
    /// The password is on the breached-password list (creating an administrator).
    #[error("this password is known from data breaches")]
    PasswordBreached,
    /// A webhook endpoint was refused: `field` (`url` or `events`) is wrong; nothing changed.
    #[error("invalid webhook {field}: {message}")]
    InvalidWebhook {
        /// The field.
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// A request budget or this client's share of the hasher is spent.
    #[error("too many requests; try again later")]
    TooManyRequests {
        /// Time until the client may try again.
        retry_after: Duration,
    },
    /// A port failed.
    #[error(transparent)]
    Failure(Failure),
}

/// Errors of [`crate::AuthService::delete_account`].
#[derive(Debug, thiserror::Error)]
pub enum DeleteAccountError {
    /// The password is wrong; nothing changed.
    #[error("the password is wrong")]
    InvalidCredentials,
    /// The user has a second factor and none was given.
    #[error("a code from your authenticator app or a recovery code is required")]
    SecondFactorRequired,
    /// The second factor is wrong or was used before; nothing changed.
    #[error("the code is wrong or was used before")]
    InvalidSecondFactor,
    /// The account no longer exists.
    #[error("not authenticated")]
    Unauthenticated,
    /// A request budget or this client's share of the hasher is spent (the same answer
    /// whether or not the address has an account).
    #[error("too many requests; try again later")]
    TooManyRequests {
        /// Time until the client may try again.
        retry_after: Duration,
    },
    /// A port failed. The sessions may be revoked already; the account is deleted only when
    /// this is not returned.
    #[error(transparent)]
    Failure(Failure),
}

/// Errors of the second-factor management operations (enrol, confirm, regenerate recovery
/// codes, turn off).
#[derive(Debug, thiserror::Error)]
pub enum MfaError {
    /// The password is wrong; nothing changed.
    #[error("the password is wrong")]
    InvalidCredentials,
    /// The code is wrong, was used before, or a recovery code is used up; nothing changed.
    #[error("the code is wrong or was used before")]
    InvalidCode,
    /// TOTP is on already (turn it off first to enrol a new app).
    #[error("two-factor authentication is already on")]
    AlreadyEnabled,
    /// No enrolment to confirm.
    #[error("no two-factor enrolment is waiting for confirmation")]
    NotPending,
    /// TOTP is off.
    #[error("two-factor authentication is off")]
    NotEnabled,
    /// The account no longer exists, or the session was ended for too many wrong answers.
    #[error("not authenticated")]
    Unauthenticated,
    /// A re-authentication budget or this client's share of the hasher is spent.
    #[error("too many requests; try again later")]
    TooManyRequests {
        /// Time until the client may try again.
        retry_after: Duration,
    },
    /// A port failed.
    #[error(transparent)]
    Failure(Failure),
}

/// Errors of [`AuthService::login_second_factor`](crate::AuthService::login_second_factor).
#[derive(Debug, thiserror::Error)]
pub enum SecondStepError {
    /// The token is unknown, used, expired, from another client, or a revocation ran since
    /// the password was checked: log in again.
    #[error("the login has expired or is not valid; log in again")]
    InvalidToken,
    /// The code is wrong or was used before (the token stays valid until it expires).
    #[error("the code is wrong or was used before")]
    InvalidCode,
    /// The credentials were right but an administrator disabled the account.
    #[error("this account is disabled")]
    AccountDisabled,
    /// The re-authentication budget of the account or the client is spent.
    #[error("too many requests; try again later")]
    TooManyRequests {
        /// Time until the client may try again.
        retry_after: Duration,
    },
    /// A port failed.
    #[error(transparent)]
    Failure(Failure),
}

/// Errors of the passkey operations inside a session: registration, listing, renaming,
/// deleting.
#[derive(Debug, thiserror::Error)]
pub enum PasskeyError {
    /// The service runs without passkeys.
    #[error("passkeys are not available")]
    NotConfigured,
    /// The password is wrong; nothing changed.
    #[error("the password is wrong")]
    InvalidCredentials,
    /// The user has TOTP on and no second factor was given.
    #[error("a code from your authenticator app or a recovery code is required")]
    SecondFactorRequired,
    /// The second factor is wrong or was used before.
    #[error("the code is wrong or was used before")]
    InvalidSecondFactor,
    /// The ceremony is unknown, used, expired, or was started by another session or client:
    /// start again.
    #[error("the passkey ceremony has expired or is not valid; start again")]
    InvalidCeremony,
    /// The authenticator's answer did not verify; nothing changed.
    #[error("the passkey answer was refused")]
    Rejected,
    /// This credential is registered already (to this account or another).
    #[error("this passkey is registered already")]
    AlreadyRegistered,
    /// The account has as many passkeys as it may have.
    #[error("this account has the most passkeys it may have; remove one first")]
    TooManyPasskeys,
    /// No such passkey of this account.
    #[error("no such passkey")]
    NotFound,
    /// The account no longer exists, or the session was ended for too many wrong answers.
    #[error("not authenticated")]
    Unauthenticated,
    /// A re-authentication budget or this client's share of the hasher is spent.
    #[error("too many requests; try again later")]
    TooManyRequests {
        /// Time until the client may try again.
        retry_after: Duration,
    },
    /// A port failed.
    #[error(transparent)]
    Failure(Failure),
}

/// Errors of signing in with a passkey, without a password or as the second step.
#[derive(Debug, thiserror::Error)]
pub enum PasskeyLoginError {
    /// The service runs without passkeys.
    #[error("passkeys are not available")]
    NotConfigured,
    /// The ceremony is unknown, used, expired, from another client or for another kind of
    /// sign-in: start again.
    #[error("the passkey ceremony has expired or is not valid; start again")]
    InvalidCeremony,
    /// The answer did not verify, its credential is unknown or not the account's, its counter
    /// went back, or a revocation ran meanwhile: deliberately indistinguishable.
    #[error("the passkey was not accepted")]
    InvalidCredentials,
    /// The answer is not shaped as a passkey's: its `type` is not `public-key`, or its `id`
    /// and `rawId` differ. Refused before anything is looked up (it tells nothing about any
    /// account).
    #[error("the passkey's answer is malformed")]
    Malformed,
    /// Second step only: the token of the password step is unknown, used, expired, from
    /// another client, or a revocation ran since the password was checked.
    #[error("the login has expired or is not valid; log in again")]
    InvalidToken,
    /// Second step only: the account has no passkey.
    #[error("this account has no passkey")]
    NoPasskey,
    /// The credentials were right but an administrator disabled the account.
    #[error("this account is disabled")]
    AccountDisabled,
    /// A request budget is spent.
    #[error("too many requests; try again later")]
    TooManyRequests {
        /// Time until the client may try again.
        retry_after: Duration,
    },
    /// A port failed.
    #[error(transparent)]
    Failure(Failure),
}

/// A finished second login step.
#[derive(Debug)]
pub struct SecondStepOutcome {
    /// The session, as from a one-step login.
    pub login: LoginOutcome,
    /// When a recovery code was used: how many are left.
    pub recovery_codes_left: Option<u32>,
}

/// What every operation error can say about retrying.
macro_rules! retry_vocabulary {
    ($($t:ty),* $(,)?) => {$(
        impl $t {
            /// When the same request may succeed later: the time to wait, for a spent budget.
            pub fn retry_after(&self) -> Option<Duration> {
                #[allow(unreachable_patterns)]
                match self {
                    Self::TooManyRequests { retry_after } => Some(*retry_after),
                    _ => None,
                }
            }

            /// Whether a dependency is down or overloaded (retry later; nothing changed that
            /// could not be undone).
            pub fn is_unavailable(&self) -> bool {
                #[allow(unreachable_patterns)]
                match self {
                    Self::Failure(f) => f.is_unavailable(),
                    _ => false,
                }
            }
        }

        impl From<super::guard::Stop> for $t {
            fn from(s: super::guard::Stop) -> Self {
                match s {
                    super::guard::Stop::Retry(retry_after) => Self::TooManyRequests { retry_after },
                    super::guard::Stop::Failure(f) => Self::Failure(f),
                }
            }
        }
    )*};
}

retry_vocabulary!(
    SignupError,
    OtpCheckError,
    ResetPasswordError,
    ResendOtpError,
    ForgotPasswordError,
    LoginError,
    ChangePasswordError,
    ChangeEmailError,
    ConfirmEmailChangeError,
    DeleteAccountError,
    MfaError,
    SecondStepError,
    AdminError,
    PasskeyError,
    PasskeyLoginError,
);

/// `is_unavailable()` for the errors that have no budget to spend.
macro_rules! unavailable_vocabulary {
    ($($t:ty),* $(,)?) => {$(
        impl $t {
            /// Never: nothing about this operation is budgeted. Here so that every operation
            /// error answers the same two questions.
            pub fn retry_after(&self) -> Option<Duration> {
                None
            }

            /// Whether a dependency is down or overloaded.
            pub fn is_unavailable(&self) -> bool {
                matches!(self, Self::Failure(f) if f.is_unavailable())
            }
        }
    )*};
}

unavailable_vocabulary!(AuthenticateError, SessionError);

from_failure!(
    DeleteAccountError,
    SignupError,
    OtpCheckError,
    ResetPasswordError,
    ResendOtpError,
    ForgotPasswordError,
    LoginError,
    AuthenticateError,
    SessionError,
    ChangePasswordError,
    ChangeEmailError,
    ConfirmEmailChangeError,
    MfaError,
    SecondStepError,
    AdminError,
    PasskeyError,
    PasskeyLoginError,
);

use std::time::Duration;

use super::BoxError;
use crate::domain::email::EmailAddress;
use crate::domain::otp::OtpCode;

/// Errors of [`Mailer`].
#[derive(Debug, thiserror::Error)]
pub enum MailerError {
    /// The mail server cannot be reached, refused us temporarily, or timed out.
    #[error("the mail service is unavailable")]
    Unavailable(#[source] BoxError),
    /// The mail server permanently refused the message (e.g. the recipient).
    #[error("the mail service refused the message")]
    Rejected(#[source] BoxError),
}

/// What to tell the person. The adapter renders it (subject, text and HTML).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailMessage {
    /// The code that verifies the address after signup.
    VerifyEmail {
        /// The code.
        code: OtpCode,
        /// How long it stays valid.
        valid_for: Duration,
    },
    /// A verification code for an address that already has a pending signup (a repeated
    /// signup, or a resend): the mail says when it was asked for, that a code from an earlier
    /// mail still works with the password chosen then, and what to do if it was not them.
    VerifyEmailAgain {
        /// The code.
        code: OtpCode,
        /// How long it stays valid.
        valid_for: Duration,
        /// When it was asked for.
        requested_at: chrono::DateTime<chrono::Utc>,
    },
    /// The code that allows a password reset.
    ResetPassword {
        /// The code.
        code: OtpCode,
        /// How long it stays valid.
        valid_for: Duration,
    },
    /// A code that logs in without the password (asked for on the login page).
    LoginCode {
        /// The code.
        code: OtpCode,
        /// How long it stays valid.
        valid_for: Duration,
    },
    /// Notice that the password of the account was changed or reset.
    PasswordChanged,
    /// Notice that someone tried to sign up with an address that already has an account
    /// (sent instead of an error when enumeration protection is on).
    SignupAttempted,
    /// Notice that the account was deleted (by its owner, with the password).
    AccountDeleted,
    /// Notice that a session of the account was ended because it gave a wrong password too
    /// often (someone may hold a stolen session); the owner should change the password.
    SessionEndedAfterWrongPasswords,
}

/// Sends transactional mail.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait::async_trait]
pub trait Mailer: Send + Sync + 'static {
    /// Sends one message to one address.
    ///
    /// MUST return [`MailerError::Unavailable`] when the server is down or times out, and
    /// [`MailerError::Rejected`] when it permanently refuses the message.
    async fn send(&self, to: &EmailAddress, message: &MailMessage) -> Result<(), MailerError>;
}

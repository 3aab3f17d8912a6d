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
///
/// It serializes (for the sealed outbox) as an object tagged by its [`kind`](Self::kind).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
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
    /// Notice that the password of the account was changed or reset. A change (the owner
    /// knew the password) lists the account's passkeys, so that the owner can spot one that is
    /// not theirs; a reset (the recovery path) removed every passkey and names them.
    PasswordChanged {
        /// The names of the account's passkeys, which stay (a change).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        passkeys: Vec<String>,
        /// The names of the passkeys the reset removed.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        removed_passkeys: Vec<String>,
    },
    /// Notice that someone tried to sign up with an address that already has an account
    /// (sent instead of an error when enumeration protection is on).
    SignupAttempted,
    /// Notice that the account was deleted (by its owner, with the password).
    AccountDeleted,
    /// Notice that a session of the account was ended because it gave a wrong password too
    /// often (someone may hold a stolen session); the owner should change the password.
    SessionEndedAfterWrongPasswords,
    /// Notice that two-factor authentication (TOTP) was turned on.
    TotpEnabled,
    /// Notice that two-factor authentication (TOTP) was turned off (every other session
    /// was ended).
    TotpDisabled,
    /// Notice that a recovery code was used (to log in or to confirm a change).
    RecoveryCodeUsed {
        /// Unused recovery codes left.
        left: u32,
    },
    /// Notice that an administrator disabled the account (every device was signed out).
    AccountDisabled,
    /// Notice that an administrator enabled the account again.
    AccountEnabled,
    /// Notice that an administrator deleted the account.
    AccountDeletedByAdmin,
    /// Notice that the account was made an administrator.
    AdminRoleGranted,
    /// Notice that the account is no longer an administrator.
    AdminRoleRevoked,
    /// Notice that an administrator turned the account's two-factor authentication off
    /// (every session was ended).
    TotpResetByAdmin,
    /// The code that moves an account to a new address, mailed to the new address.
    EmailChangeCode {
        /// The code.
        code: OtpCode,
        /// How long it stays valid.
        valid_for: Duration,
    },
    /// Notice to the current address that a move of the account to another address was asked
    /// for (with the password); nothing changes until the code mailed there is entered.
    EmailChangeRequested,
    /// Notice to an address that has an account already: someone asked to move another
    /// account to it (sent instead of a code, so that the answer does not tell the address is
    /// taken).
    EmailChangeAddressTaken,
    /// Notice to the former address that the account moved to another address (every other
    /// session was ended).
    EmailChanged,
    /// Notice that the account was signed in to from a device never seen for it.
    NewDeviceLogin,
    /// Notice that a passkey was added to the account.
    PasskeyAdded,
    /// Notice that a passkey was removed from the account.
    PasskeyRemoved,
}

impl MailMessage {
    /// The password-changed notice of an account without passkeys.
    pub fn password_changed() -> Self {
        Self::PasswordChanged {
            passkeys: Vec::new(),
            removed_passkeys: Vec::new(),
        }
    }

    /// A stable short name for the kind of message, safe to log (never the code).
    pub fn kind(&self) -> &'static str {
        match self {
            MailMessage::VerifyEmail { .. } => "verify_email",
            MailMessage::VerifyEmailAgain { .. } => "verify_email_again",
            MailMessage::ResetPassword { .. } => "reset_password",
            MailMessage::LoginCode { .. } => "login_code",
            MailMessage::PasswordChanged { .. } => "password_changed",
            MailMessage::SignupAttempted => "signup_attempted",
            MailMessage::AccountDeleted => "account_deleted",
            MailMessage::SessionEndedAfterWrongPasswords => "session_ended_after_wrong_passwords",
            MailMessage::TotpEnabled => "totp_enabled",
            MailMessage::TotpDisabled => "totp_disabled",
            MailMessage::RecoveryCodeUsed { .. } => "recovery_code_used",
            MailMessage::AccountDisabled => "account_disabled",
            MailMessage::AccountEnabled => "account_enabled",
            MailMessage::AccountDeletedByAdmin => "account_deleted_by_admin",
            MailMessage::AdminRoleGranted => "admin_role_granted",
            MailMessage::AdminRoleRevoked => "admin_role_revoked",
            MailMessage::TotpResetByAdmin => "totp_reset_by_admin",
            MailMessage::EmailChangeCode { .. } => "email_change_code",
            MailMessage::EmailChangeRequested => "email_change_requested",
            MailMessage::EmailChangeAddressTaken => "email_change_address_taken",
            MailMessage::EmailChanged => "email_changed",
            MailMessage::NewDeviceLogin => "new_device_login",
            MailMessage::PasskeyAdded => "passkey_added",
            MailMessage::PasskeyRemoved => "passkey_removed",
        }
    }

    /// How long the code it carries stays valid; `None` for a notice without a code.
    pub fn code_valid_for(&self) -> Option<Duration> {
        match self {
            MailMessage::VerifyEmail { valid_for, .. }
            | MailMessage::VerifyEmailAgain { valid_for, .. }
            | MailMessage::ResetPassword { valid_for, .. }
            | MailMessage::LoginCode { valid_for, .. }
            | MailMessage::EmailChangeCode { valid_for, .. } => Some(*valid_for),
            MailMessage::PasswordChanged { .. }
            | MailMessage::SignupAttempted
            | MailMessage::AccountDeleted
            | MailMessage::SessionEndedAfterWrongPasswords
            | MailMessage::TotpEnabled
            | MailMessage::TotpDisabled
            | MailMessage::RecoveryCodeUsed { .. }
            | MailMessage::AccountDisabled
            | MailMessage::AccountEnabled
            | MailMessage::AccountDeletedByAdmin
            | MailMessage::AdminRoleGranted
            | MailMessage::AdminRoleRevoked
            | MailMessage::TotpResetByAdmin
            | MailMessage::EmailChangeRequested
            | MailMessage::EmailChangeAddressTaken
            | MailMessage::EmailChanged
            | MailMessage::NewDeviceLogin
            | MailMessage::PasskeyAdded
            | MailMessage::PasskeyRemoved => None,
        }
    }
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

    /// Sends one message in the language the recipient prefers, given as an HTTP
    /// `Accept-Language` value (say `de-CH, de;q=0.9, en;q=0.5`), where the mailer has a
    /// translation; in its default language otherwise. The default implementation ignores
    /// the preference and calls [`send`](Mailer::send).
    ///
    /// Errors as for [`send`](Mailer::send).
    async fn send_localized<'a>(
        &self,
        to: &EmailAddress,
        message: &MailMessage,
        language: Option<&'a str>,
    ) -> Result<(), MailerError> {
        let _ = language;
        self.send(to, message).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use futures::executor::block_on;

    use super::*;

    /// A mailer with no translations: it implements `send` only.
    #[derive(Default)]
    struct Untranslated(Mutex<Vec<(EmailAddress, MailMessage)>>);

    #[async_trait::async_trait]
    impl Mailer for Untranslated {
        async fn send(&self, to: &EmailAddress, message: &MailMessage) -> Result<(), MailerError> {
            self.0.lock().unwrap().push((to.clone(), message.clone()));
            Ok(())
        }
    }

    /// Localized mail (every code and notice the service sends) still goes out through a
    /// mailer that has no translations, in its one language: it is never dropped.
    #[test]
    fn a_mailer_without_translations_still_sends_localized_mail() {
        let mailer = Untranslated::default();
        let to = EmailAddress::parse("ada@example.com").unwrap();

        block_on(mailer.send_localized(&to, &MailMessage::SignupAttempted, Some("de-CH"))).unwrap();

        assert_eq!(
            *mailer.0.lock().unwrap(),
            vec![(to, MailMessage::SignupAttempted)]
        );
    }
}

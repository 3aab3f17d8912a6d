//! [`CaptureMailer`]: a [`Mailer`] that keeps what it is asked to send.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use auth_core::{EmailAddress, MailMessage, Mailer, MailerError, OtpCode, OtpPurpose};

/// One message a [`CaptureMailer`] was asked to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentMail {
    /// The recipient.
    pub to: EmailAddress,
    /// What the service asked to tell them.
    pub message: MailMessage,
}

/// A [`Mailer`] that sends nothing and keeps every message, in order, so a test (or a demo
/// that prints codes) can read them back: [`last_code`](Self::last_code) is the code the
/// person at an address would type.
///
/// Cheap to clone; clones share the same messages, so keep one clone and hand another to the
/// service. Never fails. Needs no async runtime. Messages stay until [`clear`](Self::clear)
/// (this is test support: do not use it where people really sign up).
///
/// ```
/// use std::time::Duration;
/// use auth_core::{EmailAddress, MailMessage, Mailer, OtpCode};
/// use auth_memory::CaptureMailer;
///
/// let mailer = CaptureMailer::new();
/// let ada = EmailAddress::parse("ada@example.com")?;
/// let code = OtpCode::parse("042917")?;
/// let message = MailMessage::VerifyEmail { code: code.clone(), valid_for: Duration::from_secs(600) };
/// futures::executor::block_on(mailer.send(&ada, &message))?;
///
/// assert_eq!(mailer.last_code(&ada), Some(code));
/// assert_eq!(mailer.count_to(&ada), 1);
/// # Ok::<_, Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Default)]
pub struct CaptureMailer {
    sent: Arc<Mutex<Vec<SentMail>>>,
}

impl CaptureMailer {
    /// A mailer that has sent nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every message so far, oldest first.
    pub fn sent(&self) -> Vec<SentMail> {
        self.lock().clone()
    }

    /// Every message to `to` so far, oldest first.
    pub fn sent_to(&self, to: &EmailAddress) -> Vec<MailMessage> {
        self.lock()
            .iter()
            .filter(|mail| &mail.to == to)
            .map(|mail| mail.message.clone())
            .collect()
    }

    /// How many messages went to `to`.
    pub fn count_to(&self, to: &EmailAddress) -> usize {
        self.lock().iter().filter(|mail| &mail.to == to).count()
    }

    /// The latest message to `to`, if any.
    pub fn last_to(&self, to: &EmailAddress) -> Option<MailMessage> {
        self.lock()
            .iter()
            .rev()
            .find(|mail| &mail.to == to)
            .map(|mail| mail.message.clone())
    }

    /// The code in the latest message to `to` that carries one (verification, verification
    /// sent again, or reset), whatever came after it.
    pub fn last_code(&self, to: &EmailAddress) -> Option<OtpCode> {
        self.find_code(to, |_| true)
    }

    /// The code in the latest message to `to` for `purpose`.
    pub fn last_code_for(&self, to: &EmailAddress, purpose: OtpPurpose) -> Option<OtpCode> {
        self.find_code(to, |p| p == purpose)
    }

    /// Forgets every message.
    pub fn clear(&self) {
        self.lock().clear();
    }

    fn find_code(&self, to: &EmailAddress, wanted: impl Fn(OtpPurpose) -> bool) -> Option<OtpCode> {
        self.lock()
            .iter()
            .rev()
            .filter(|mail| &mail.to == to)
            .find_map(|mail| match &mail.message {
                MailMessage::VerifyEmail { code, .. }
                | MailMessage::VerifyEmailAgain { code, .. }
                    if wanted(OtpPurpose::VerifyEmail) =>
                {
                    Some(code.clone())
                }
                MailMessage::ResetPassword { code, .. } if wanted(OtpPurpose::ResetPassword) => {
                    Some(code.clone())
                }
                MailMessage::EmailChangeCode { code, .. } if wanted(OtpPurpose::ChangeEmail) => {
                    Some(code.clone())
                }
                _ => None,
            })
    }

    fn lock(&self) -> MutexGuard<'_, Vec<SentMail>> {
        // Pushing is the only write: a poisoned lock still holds a valid list.
        self.sent.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for CaptureMailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A count only: messages hold addresses and codes.
        f.debug_struct("CaptureMailer")
            .field("sent", &self.lock().len())
            .finish()
    }
}

#[async_trait::async_trait]
impl Mailer for CaptureMailer {
    async fn send(&self, to: &EmailAddress, message: &MailMessage) -> Result<(), MailerError> {
        self.lock().push(SentMail {
            to: to.clone(),
            message: message.clone(),
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn send(mailer: &CaptureMailer, to: &EmailAddress, message: MailMessage) {
        futures::executor::block_on(mailer.send(to, &message)).unwrap();
    }

    #[test]
    fn a_code_sent_again_is_the_last_verification_code() {
        let mailer = CaptureMailer::new();
        let ada = EmailAddress::parse("ada@example.com").unwrap();
        let first = OtpCode::parse("111111").unwrap();
        let again = OtpCode::parse("222222").unwrap();
        let valid_for = Duration::from_secs(600);
        send(
            &mailer,
            &ada,
            MailMessage::VerifyEmail {
                code: first,
                valid_for,
            },
        );
        // A resend or a repeated signup mails `VerifyEmailAgain`.
        send(
            &mailer,
            &ada,
            MailMessage::VerifyEmailAgain {
                code: again.clone(),
                valid_for,
                requested_at: chrono::Utc::now(),
            },
        );
        send(&mailer, &ada, MailMessage::password_changed());

        assert_eq!(mailer.last_code(&ada), Some(again.clone()));
        assert_eq!(
            mailer.last_code_for(&ada, OtpPurpose::VerifyEmail),
            Some(again)
        );
        assert_eq!(mailer.last_code_for(&ada, OtpPurpose::ResetPassword), None);
    }
}

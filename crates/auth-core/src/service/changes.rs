//! The writes a mail belongs to. With the outbox attached ([`AuthService::with_outbox`]) the
//! mail is sealed first and the repository stores it in the change's own transaction, so
//! there is no account without its code mail and no notice of a change that rolled back;
//! without it (a plain [`Mailer`](crate::ports::Mailer)) the mail is sent once the change is
//! made.

use chrono::{DateTime, Utc};
use tracing::warn;

use super::AuthService;
use crate::domain::email::EmailAddress;
use crate::domain::password::PasswordHash;
use crate::domain::user::{NewUser, Role, User, UserId};
use crate::ports::{MailMessage, MailerError, QueuedMail, UserRepoError};

/// A mail that goes out with a change: who it is for, what it says and in which language.
#[derive(Debug)]
pub(super) struct Companion<'a> {
    pub(super) to: &'a EmailAddress,
    pub(super) message: MailMessage,
    pub(super) language: Option<&'a str>,
}

impl<'a> Companion<'a> {
    /// `message` to the account's owner, in the account's language.
    pub(super) fn to_owner(
        creds: &'a crate::domain::user::UserCredentials,
        message: MailMessage,
    ) -> Self {
        Self {
            to: &creds.user.email,
            message,
            language: creds.language.as_deref(),
        }
    }
}

/// A [`Companion`] once its change is made: sealed into the outbox with the change, or still
/// to be sent.
#[derive(Debug)]
pub(super) enum Written<'a> {
    Queued(QueuedMail),
    ToSend(Companion<'a>),
}

impl AuthService {
    fn seal_for_outbox(&self, mail: &Companion<'_>) -> Option<QueuedMail> {
        self.outbox
            .as_ref()
            .map(|queue| queue.prepare(mail.to, &mail.message, mail.language))
    }

    /// Creates the account, with its mail.
    pub(super) async fn create_user<'a>(
        &self,
        new_user: &NewUser,
        mail: Companion<'a>,
    ) -> Result<(User, Written<'a>), UserRepoError> {
        let users = &self.ports.users;
        Ok(match self.seal_for_outbox(&mail) {
            Some(queued) => (
                users.create_with_mail(new_user, &queued).await?,
                Written::Queued(queued),
            ),
            None => (users.create(new_user).await?, Written::ToSend(mail)),
        })
    }

    /// Replaces the password of a pending account, with its mail.
    pub(super) async fn replace_unverified_password<'a>(
        &self,
        id: UserId,
        hash: &PasswordHash,
        at: DateTime<Utc>,
        mail: Companion<'a>,
    ) -> Result<Written<'a>, UserRepoError> {
        let users = &self.ports.users;
        Ok(match self.seal_for_outbox(&mail) {
            Some(queued) => {
                users
                    .replace_unverified_password_with_mail(id, hash, at, &queued)
                    .await?;
                Written::Queued(queued)
            }
            None => {
                users.replace_unverified_password(id, hash, at).await?;
                Written::ToSend(mail)
            }
        })
    }

    /// Sets a new password hash, with its mail.
    pub(super) async fn set_password_hash<'a>(
        &self,
        id: UserId,
        email: &EmailAddress,
        hash: &PasswordHash,
        at: DateTime<Utc>,
        mail: Companion<'a>,
    ) -> Result<Written<'a>, UserRepoError> {
        let users = &self.ports.users;
        Ok(match self.seal_for_outbox(&mail) {
            Some(queued) => {
                users
                    .set_password_hash_with_mail(id, email, hash, at, &queued)
                    .await?;
                Written::Queued(queued)
            }
            None => {
                users.set_password_hash(id, email, hash, at).await?;
                Written::ToSend(mail)
            }
        })
    }

    /// Deletes the account, with its mail; `None` when there was no account (and no mail).
    pub(super) async fn delete_user<'a>(
        &self,
        id: UserId,
        mail: Companion<'a>,
    ) -> Result<Option<Written<'a>>, UserRepoError> {
        let users = &self.ports.users;
        Ok(match self.seal_for_outbox(&mail) {
            Some(queued) => users
                .delete_with_mail(id, &queued)
                .await?
                .then_some(Written::Queued(queued)),
            None => users.delete(id).await?.then_some(Written::ToSend(mail)),
        })
    }

    /// Sets the account's role, with its mail.
    pub(super) async fn set_role<'a>(
        &self,
        id: UserId,
        role: Role,
        mail: Companion<'a>,
    ) -> Result<Written<'a>, UserRepoError> {
        let users = &self.ports.users;
        Ok(match self.seal_for_outbox(&mail) {
            Some(queued) => {
                users.set_role_with_mail(id, role, &queued).await?;
                Written::Queued(queued)
            }
            None => {
                users.set_role(id, role).await?;
                Written::ToSend(mail)
            }
        })
    }

    /// Disables (`Some`) or enables (`None`) the account, with its mail.
    pub(super) async fn set_disabled<'a>(
        &self,
        id: UserId,
        disabled_at: Option<DateTime<Utc>>,
        mail: Companion<'a>,
    ) -> Result<Written<'a>, UserRepoError> {
        let users = &self.ports.users;
        Ok(match self.seal_for_outbox(&mail) {
            Some(queued) => {
                users
                    .set_disabled_with_mail(id, disabled_at, &queued)
                    .await?;
                Written::Queued(queued)
            }
            None => {
                users.set_disabled(id, disabled_at).await?;
                Written::ToSend(mail)
            }
        })
    }

    /// After the change: tells the outbox of the mail stored with it, or sends the mail now.
    pub(super) async fn deliver(&self, written: Written<'_>) -> Result<(), MailerError> {
        match written {
            Written::Queued(queued) => {
                if let Some(queue) = &self.outbox {
                    queue.announce(&queued);
                }
                Ok(())
            }
            Written::ToSend(mail) => {
                self.ports
                    .mailer
                    .send_localized(mail.to, &mail.message, mail.language)
                    .await
            }
        }
    }

    /// [`deliver`](Self::deliver) for a notice: a failure is logged, not returned, since the
    /// change it tells of has happened.
    pub(super) async fn deliver_notice(&self, written: Written<'_>) {
        if let Err(e) = self.deliver(written).await {
            warn!(error = %e, "notice not delivered");
        }
    }
}

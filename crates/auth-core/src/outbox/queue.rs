//! [`MailQueue`]: the [`Mailer`] that writes to the outbox.

use std::sync::Arc;
use std::time::Duration;

use super::seal::{Letter, MailSeal};
use crate::domain::email::EmailAddress;
use crate::ports::{
    Clock, MailMessage, Mailer, MailerError, OutboxError, OutboxStore, QueuedMail, RandomSource,
};

/// Called after a message was queued (say, to wake the local courier at once).
pub type EnqueueHook = Arc<dyn Fn() + Send + Sync>;

/// The [`Mailer`] to give the service: every message is sealed and stored in the outbox, to be
/// sent by a [`Courier`](super::Courier). A store outage is [`MailerError::Unavailable`];
/// nothing here ever waits on a mail server.
pub struct MailQueue {
    store: Arc<dyn OutboxStore>,
    seal: MailSeal,
    clock: Arc<dyn Clock>,
    random: Arc<dyn RandomSource>,
    /// How long a notice (a message without a code) stays worth sending.
    max_age: Duration,
    on_enqueue: Option<EnqueueHook>,
}

impl MailQueue {
    /// A queue into `store`; notices older than `max_age` are dropped undelivered (code
    /// mails live as long as their code).
    pub fn new(
        store: Arc<dyn OutboxStore>,
        seal: MailSeal,
        clock: Arc<dyn Clock>,
        random: Arc<dyn RandomSource>,
        max_age: Duration,
    ) -> Self {
        Self {
            store,
            seal,
            clock,
            random,
            max_age,
            on_enqueue: None,
        }
    }

    /// Calls `hook` after each message is queued.
    pub fn on_enqueue(mut self, hook: EnqueueHook) -> Self {
        self.on_enqueue = Some(hook);
        self
    }

    /// The message as the store keeps it: sealed, with its id, lifetime and supersede key.
    /// [`enqueue`](Self::enqueue) stores it here; a repository whose database holds the outbox
    /// stores it with the change it belongs to (see
    /// [`UserRepository`](crate::ports::UserRepository)), and then the queue is told with
    /// [`announce`](Self::announce).
    pub fn prepare(
        &self,
        to: &EmailAddress,
        message: &MailMessage,
        language: Option<&str>,
    ) -> QueuedMail {
        let id = self.random.uuid();
        let created_at = self.clock.now();
        let lifetime = message.code_valid_for().unwrap_or(self.max_age);
        let letter = Letter {
            message: message.clone(),
            language: language.map(str::to_owned),
        };
        QueuedMail {
            id,
            to: to.clone(),
            kind: message.kind().to_owned(),
            supersedes: supersede_key(message).map(str::to_owned),
            sealed: self.seal.seal(id, to, &letter),
            created_at,
            expires_at: crate::service::add(created_at, lifetime),
        }
    }
}

impl MailQueue {
    /// Stores a [prepared](Self::prepare) message in the outbox, then
    /// [announces](Self::announce) it.
    pub async fn enqueue(&self, mail: &QueuedMail) -> Result<(), MailerError> {
        self.store.enqueue(mail).await.map_err(|e| match e {
            OutboxError::Unavailable(e) | OutboxError::Other(e) => MailerError::Unavailable(e),
        })?;
        self.announce(mail);
        Ok(())
    }

    /// Tells the queue that `mail` was stored (by [`enqueue`](Self::enqueue), or by a
    /// repository with the change it belongs to): logs it and calls the
    /// [`on_enqueue`](Self::on_enqueue) hook.
    pub fn announce(&self, mail: &QueuedMail) {
        tracing::info!(mail_id = %mail.id, kind = %mail.kind, "mail queued");
        if let Some(hook) = &self.on_enqueue {
            hook();
        }
    }
}

/// Which unsent messages a new one replaces: a newer reset or login code makes the older
/// one's mail pointless. Verification codes never replace each other, since each completes the
/// signup (and password) it was asked for; dropping the first one's mail would leave only a
/// later signup's code in the owner's inbox.
fn supersede_key(message: &MailMessage) -> Option<&'static str> {
    match message {
        MailMessage::ResetPassword { .. } => Some("reset_password"),
        MailMessage::LoginCode { .. } => Some("login_code"),
        MailMessage::VerifyEmail { .. }
        | MailMessage::VerifyEmailAgain { .. }
        | MailMessage::PasswordChanged { .. }
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
        | MailMessage::EmailChangeCode { .. }
        | MailMessage::EmailChangeRequested
        | MailMessage::EmailChangeAddressTaken
        | MailMessage::EmailChanged
        | MailMessage::NewDeviceLogin
        | MailMessage::PasskeyAdded
        | MailMessage::PasskeyRemoved => None,
    }
}

#[async_trait::async_trait]
impl Mailer for MailQueue {
    async fn send(&self, to: &EmailAddress, message: &MailMessage) -> Result<(), MailerError> {
        self.send_localized(to, message, None).await
    }

    async fn send_localized<'a>(
        &self,
        to: &EmailAddress,
        message: &MailMessage,
        language: Option<&'a str>,
    ) -> Result<(), MailerError> {
        self.enqueue(&self.prepare(to, message, language)).await
    }
}

impl std::fmt::Debug for MailQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailQueue")
            .field("max_age", &self.max_age)
            .finish_non_exhaustive()
    }
}

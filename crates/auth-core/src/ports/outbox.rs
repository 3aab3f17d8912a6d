use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::BoxError;
use crate::domain::email::EmailAddress;

/// Errors of [`OutboxStore`].
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    /// The store cannot be reached or did not answer in time.
    #[error("the mail outbox is unavailable")]
    Unavailable(#[source] BoxError),
    /// The store answered with an error that is not an outage.
    #[error("the mail outbox failed")]
    Other(#[source] BoxError),
}

/// A message handed to the outbox: who it goes to and its sealed content (see
/// [`MailSeal`](crate::outbox::MailSeal)); the store never sees a code in the clear.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedMail {
    /// The message's id (also the `Message-ID` seed of the adapter, and the sealing context).
    pub id: Uuid,
    /// The recipient.
    pub to: EmailAddress,
    /// What kind of message it is (`verify_email`, `password_changed`, ...), for operators.
    pub kind: String,
    /// Messages with the same recipient and key replace each other while unsent: enqueuing
    /// one MUST delete every pending, unclaimed message with the same recipient and key.
    /// `None`: never replaced.
    pub supersedes: Option<String>,
    /// The sealed message (nonce and ciphertext).
    pub sealed: Vec<u8>,
    /// When it was queued.
    pub created_at: DateTime<Utc>,
    /// After this it is useless (a code past its lifetime) or too old to send: the courier
    /// drops it instead of sending it late.
    pub expires_at: DateTime<Utc>,
}

/// A message a courier claimed for delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedMail {
    /// The message.
    pub mail: QueuedMail,
    /// Delivery attempts made before this claim.
    pub attempts: u32,
    /// The claim: every later call about this message names it, so a courier whose lease ran
    /// out (and whose message another courier took over) changes nothing.
    pub lease: Uuid,
}

/// The state of a stored message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MailState {
    /// Waiting for (another) delivery attempt.
    Pending,
    /// Given up: permanently refused, to a suppressed address, or out of attempts. Kept
    /// (sealed) for an operator to retry or purge.
    Dead,
}

impl MailState {
    /// `pending` or `dead`.
    pub fn as_str(self) -> &'static str {
        match self {
            MailState::Pending => "pending",
            MailState::Dead => "dead",
        }
    }
}

/// A stored message as an operator sees it: never its content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    /// The message's id.
    pub id: Uuid,
    /// The recipient.
    pub to: EmailAddress,
    /// What kind of message it is.
    pub kind: String,
    /// Pending or dead.
    pub state: MailState,
    /// Delivery attempts made.
    pub attempts: u32,
    /// When it was queued.
    pub created_at: DateTime<Utc>,
    /// When the next attempt is due (pending messages).
    pub next_attempt_at: DateTime<Utc>,
    /// When it stops being worth sending.
    pub expires_at: DateTime<Utc>,
    /// Why the last attempt failed, or why it is dead.
    pub last_error: Option<String>,
}

/// How much is waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OutboxStats {
    /// Messages waiting for delivery.
    pub pending: u64,
    /// When the oldest of them was queued.
    pub oldest_pending: Option<DateTime<Utc>>,
    /// Messages given up on.
    pub dead: u64,
    /// Addresses currently suppressed.
    pub suppressed: u64,
}

/// Why an address gets no mail for a while.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SuppressionReason {
    /// The mail server permanently refused a message to it (a `5xx` reply).
    Rejected,
    /// A bounce reported after delivery (say, by the mail provider's webhook).
    Bounce,
    /// The recipient marked a message as spam.
    Complaint,
    /// An operator suppressed it.
    Operator,
}

impl SuppressionReason {
    /// `rejected`, `bounce`, `complaint` or `operator`.
    pub fn as_str(self) -> &'static str {
        match self {
            SuppressionReason::Rejected => "rejected",
            SuppressionReason::Bounce => "bounce",
            SuppressionReason::Complaint => "complaint",
            SuppressionReason::Operator => "operator",
        }
    }

    /// The reason named by [`as_str`](Self::as_str).
    pub fn parse(name: &str) -> Option<Self> {
        [
            Self::Rejected,
            Self::Bounce,
            Self::Complaint,
            Self::Operator,
        ]
        .into_iter()
        .find(|r| r.as_str() == name)
    }
}

/// A durable queue of outgoing mail, in the user database: the transactional outbox.
///
/// Requests [`enqueue`](Self::enqueue) and answer; couriers (one per instance) claim due
/// messages under a lease, send them and report back. Every method about a claimed message
/// names its lease and MUST change nothing when the lease is no longer the message's current
/// one (it ran out and another courier claimed the message), so one message is sent once in
/// normal operation, whatever the number of instances.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait::async_trait]
pub trait OutboxStore: Send + Sync + 'static {
    /// Stores a pending message, due at once; first deletes the pending, unclaimed messages it
    /// supersedes (see [`QueuedMail::supersedes`]), in the same transaction.
    async fn enqueue(&self, mail: &QueuedMail) -> Result<(), OutboxError>;

    /// Claims up to `limit` pending messages that are due at `now` and not under another
    /// live lease, oldest first, leasing each until `now + lease`. Concurrent claims MUST NOT
    /// return the same message (say, `FOR UPDATE SKIP LOCKED`).
    async fn claim(
        &self,
        now: DateTime<Utc>,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<ClaimedMail>, OutboxError>;

    /// The message was delivered (or dropped as expired): delete it, content and all.
    /// `Ok(false)` when `lease` is no longer the message's.
    async fn remove(&self, id: Uuid, lease: Uuid) -> Result<bool, OutboxError>;

    /// The attempt failed but may work later: count it, note `error`, release the lease and
    /// make the message due at `at`. `Ok(false)` when `lease` is no longer the message's.
    async fn retry_at(
        &self,
        id: Uuid,
        lease: Uuid,
        at: DateTime<Utc>,
        error: &str,
    ) -> Result<bool, OutboxError>;

    /// Give up on the message: mark it dead with `error` (its sealed content stays until it
    /// expires or is purged). `Ok(false)` when `lease` is no longer the message's.
    async fn bury(&self, id: Uuid, lease: Uuid, error: &str) -> Result<bool, OutboxError>;

    /// No mail to `to` until `until` (a later suppression of the address extends it).
    async fn suppress(
        &self,
        to: &EmailAddress,
        until: DateTime<Utc>,
        reason: SuppressionReason,
    ) -> Result<(), OutboxError>;

    /// Until when mail to `to` is suppressed at `now`, with why; `None` when it is not.
    async fn suppression(
        &self,
        to: &EmailAddress,
        now: DateTime<Utc>,
    ) -> Result<Option<(DateTime<Utc>, SuppressionReason)>, OutboxError>;

    /// Counts for monitoring, at `now` (expired suppressions are not counted).
    async fn stats(&self, now: DateTime<Utc>) -> Result<OutboxStats, OutboxError>;

    /// Up to `limit` messages in `state`, oldest first, without their content.
    async fn list(&self, state: MailState, limit: usize) -> Result<Vec<OutboxEntry>, OutboxError>;

    /// Makes dead messages pending again, due at `now`, with their attempts reset: the one
    /// with `id`, or all of them. How many it revived.
    async fn revive(&self, id: Option<Uuid>, now: DateTime<Utc>) -> Result<u64, OutboxError>;

    /// Deletes dead messages, content and all: the one with `id`, or all of them. How many it
    /// deleted.
    async fn purge(&self, id: Option<Uuid>) -> Result<u64, OutboxError>;

    /// Deletes every message, pending or dead, whose `expires_at` is before `now`, and the
    /// suppressions that ended before `now`. How many messages it deleted.
    async fn sweep(&self, now: DateTime<Utc>) -> Result<u64, OutboxError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The names a mail state is stored, listed and filtered under (`pending`, `dead`): an
    /// operator's `state=dead` must keep finding the dead messages.
    #[test]
    fn mail_states_keep_their_stored_names() {
        assert_eq!(MailState::Pending.as_str(), "pending");
        assert_eq!(MailState::Dead.as_str(), "dead");
    }

    /// A stored suppression reads back as the reason it was stored with, and nothing else
    /// passes for one: a suppression must not come back as another reason, or as none.
    #[test]
    fn suppression_reasons_read_back_as_stored_and_nothing_else_parses() {
        for reason in [
            SuppressionReason::Rejected,
            SuppressionReason::Bounce,
            SuppressionReason::Complaint,
            SuppressionReason::Operator,
        ] {
            assert_eq!(SuppressionReason::parse(reason.as_str()), Some(reason));
        }
        assert_eq!(SuppressionReason::parse("spam"), None);
        assert_eq!(SuppressionReason::parse(""), None);
    }
}

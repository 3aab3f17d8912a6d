//! [`MemoryOutbox`]: the [`OutboxStore`] port in process memory.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use auth_core::{
    ClaimedMail, DateTime, EmailAddress, MailState, OutboxEntry, OutboxError, OutboxStats,
    OutboxStore, QueuedMail, SuppressionReason, Utc,
};
use uuid::Uuid;

/// A mail outbox in the memory of this process: for tests and for embedders whose
/// [`InProcessKit`](crate::InProcessKit) keeps everything in memory. Messages are lost on
/// restart; one lock guards the whole state, so every operation is atomic (concurrent claims
/// never share a message). No operation fails.
#[derive(Clone, Default)]
pub struct MemoryOutbox {
    state: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    /// In queueing order.
    messages: Vec<Stored>,
    /// By lower-cased address.
    suppressions: HashMap<String, (DateTime<Utc>, SuppressionReason)>,
}

struct Stored {
    mail: QueuedMail,
    state: MailState,
    attempts: u32,
    next_attempt_at: DateTime<Utc>,
    lease: Option<(Uuid, DateTime<Utc>)>,
    last_error: Option<String>,
}

impl Stored {
    fn entry(&self) -> OutboxEntry {
        OutboxEntry {
            id: self.mail.id,
            to: self.mail.to.clone(),
            kind: self.mail.kind.clone(),
            state: self.state,
            attempts: self.attempts,
            created_at: self.mail.created_at,
            next_attempt_at: self.next_attempt_at,
            expires_at: self.mail.expires_at,
            last_error: self.last_error.clone(),
        }
    }
}

fn address_key(to: &EmailAddress) -> String {
    to.as_str().to_lowercase()
}

fn later(at: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    chrono::TimeDelta::from_std(d)
        .ok()
        .and_then(|d| at.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

impl MemoryOutbox {
    /// An empty outbox.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the state half-updated in a way later
        // calls depend on, so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Applies `change` to the message `id` when `lease` is its current lease.
    fn with_lease(&self, id: Uuid, lease: Uuid, change: impl FnOnce(&mut State, usize)) -> bool {
        let mut state = self.lock();
        let found = state
            .messages
            .iter()
            .position(|m| m.mail.id == id && m.lease.is_some_and(|(l, _)| l == lease));
        match found {
            Some(index) => {
                change(&mut state, index);
                true
            }
            None => false,
        }
    }
}

#[auth_core::async_trait]
impl OutboxStore for MemoryOutbox {
    async fn enqueue(&self, mail: &QueuedMail) -> Result<(), OutboxError> {
        let mut state = self.lock();
        if let Some(key) = &mail.supersedes {
            let to = address_key(&mail.to);
            state.messages.retain(|m| {
                !(m.state == MailState::Pending
                    && m.lease.is_none_or(|(_, until)| until <= mail.created_at)
                    && m.mail.supersedes.as_ref() == Some(key)
                    && address_key(&m.mail.to) == to)
            });
        }
        state.messages.push(Stored {
            mail: mail.clone(),
            state: MailState::Pending,
            attempts: 0,
            next_attempt_at: mail.created_at,
            lease: None,
            last_error: None,
        });
        Ok(())
    }

    async fn claim(
        &self,
        now: DateTime<Utc>,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<ClaimedMail>, OutboxError> {
        let mut state = self.lock();
        let mut due: Vec<usize> = (0..state.messages.len())
            .filter(|&i| {
                let m = &state.messages[i];
                m.state == MailState::Pending
                    && m.next_attempt_at <= now
                    && m.lease.is_none_or(|(_, until)| until <= now)
            })
            .collect();
        due.sort_by_key(|&i| {
            (
                state.messages[i].next_attempt_at,
                state.messages[i].mail.created_at,
            )
        });
        due.truncate(limit);
        let until = later(now, lease);
        Ok(due
            .into_iter()
            .map(|i| {
                let m = &mut state.messages[i];
                let id = Uuid::new_v4();
                m.lease = Some((id, until));
                ClaimedMail {
                    mail: m.mail.clone(),
                    attempts: m.attempts,
                    lease: id,
                }
            })
            .collect())
    }

    async fn remove(&self, id: Uuid, lease: Uuid) -> Result<bool, OutboxError> {
        Ok(self.with_lease(id, lease, |state, i| {
            state.messages.remove(i);
        }))
    }

    async fn retry_at(
        &self,
        id: Uuid,
        lease: Uuid,
        at: DateTime<Utc>,
        error: &str,
    ) -> Result<bool, OutboxError> {
        Ok(self.with_lease(id, lease, |state, i| {
            let m = &mut state.messages[i];
            m.attempts = m.attempts.saturating_add(1);
            m.next_attempt_at = at;
            m.lease = None;
            m.last_error = Some(error.to_owned());
        }))
    }

    async fn bury(&self, id: Uuid, lease: Uuid, error: &str) -> Result<bool, OutboxError> {
        Ok(self.with_lease(id, lease, |state, i| {
            let m = &mut state.messages[i];
            m.attempts = m.attempts.saturating_add(1);
            m.state = MailState::Dead;
            m.lease = None;
            m.last_error = Some(error.to_owned());
        }))
    }

    async fn suppress(
        &self,
        to: &EmailAddress,
        until: DateTime<Utc>,
        reason: SuppressionReason,
    ) -> Result<(), OutboxError> {
        let mut state = self.lock();
        let entry = state
            .suppressions
            .entry(address_key(to))
            .or_insert((until, reason));
        if until > entry.0 {
            *entry = (until, reason);
        }
        Ok(())
    }

    async fn suppression(
        &self,
        to: &EmailAddress,
        now: DateTime<Utc>,
    ) -> Result<Option<(DateTime<Utc>, SuppressionReason)>, OutboxError> {
        Ok(self
            .lock()
            .suppressions
            .get(&address_key(to))
            .copied()
            .filter(|(until, _)| *until > now))
    }

    async fn stats(&self, now: DateTime<Utc>) -> Result<OutboxStats, OutboxError> {
        let state = self.lock();
        let pending = state
            .messages
            .iter()
            .filter(|m| m.state == MailState::Pending);
        Ok(OutboxStats {
            pending: pending.clone().count() as u64,
            oldest_pending: pending.map(|m| m.mail.created_at).min(),
            dead: state
                .messages
                .iter()
                .filter(|m| m.state == MailState::Dead)
                .count() as u64,
            suppressed: state
                .suppressions
                .values()
                .filter(|(until, _)| *until > now)
                .count() as u64,
        })
    }

    async fn list(&self, state: MailState, limit: usize) -> Result<Vec<OutboxEntry>, OutboxError> {
        let guard = self.lock();
        let mut entries: Vec<OutboxEntry> = guard
            .messages
            .iter()
            .filter(|m| m.state == state)
            .map(Stored::entry)
            .collect();
        entries.sort_by_key(|e| e.created_at);
        entries.truncate(limit);
        Ok(entries)
    }

    async fn revive(&self, id: Option<Uuid>, now: DateTime<Utc>) -> Result<u64, OutboxError> {
        let mut state = self.lock();
        let mut revived = 0;
        for m in state
            .messages
            .iter_mut()
            .filter(|m| m.state == MailState::Dead && id.is_none_or(|id| m.mail.id == id))
        {
            m.state = MailState::Pending;
            m.attempts = 0;
            m.next_attempt_at = now;
            m.lease = None;
            revived += 1;
        }
        Ok(revived)
    }

    async fn purge(&self, id: Option<Uuid>) -> Result<u64, OutboxError> {
        let mut state = self.lock();
        let before = state.messages.len();
        state
            .messages
            .retain(|m| !(m.state == MailState::Dead && id.is_none_or(|id| m.mail.id == id)));
        Ok((before - state.messages.len()) as u64)
    }

    async fn sweep(&self, now: DateTime<Utc>) -> Result<u64, OutboxError> {
        let mut state = self.lock();
        let before = state.messages.len();
        state.messages.retain(|m| m.mail.expires_at >= now);
        state.suppressions.retain(|_, (until, _)| *until > now);
        Ok((before - state.messages.len()) as u64)
    }
}

impl std::fmt::Debug for MemoryOutbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.lock();
        f.debug_struct("MemoryOutbox")
            .field("messages", &state.messages.len())
            .field("suppressions", &state.suppressions.len())
            .finish()
    }
}

//! [`Courier`]: delivers what the outbox holds.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tracing::{info, warn};

use super::seal::MailSeal;
use crate::ports::{
    ClaimedMail, Clock, Mailer, MailerError, OutboxError, OutboxStore, SuppressionReason,
};
use crate::service::add;

/// How a [`Courier`] delivers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CourierPolicy {
    /// How long a claim lasts: a courier that crashed mid-delivery has its messages taken
    /// over by another after this. Longer than a send can take.
    pub lease: Duration,
    /// Messages claimed (and sent concurrently) per round.
    pub batch: usize,
    /// Attempts before a message that keeps failing transiently is given up on.
    pub max_attempts: u32,
    /// The wait after the first failed attempt; it doubles with each further one ...
    pub backoff_base: Duration,
    /// ... up to this (a returning mail server is used within about this long).
    pub backoff_cap: Duration,
    /// How long an address that was permanently refused gets no mail.
    pub suppress_for: Duration,
}

impl Default for CourierPolicy {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(60),
            batch: 16,
            max_attempts: 200,
            backoff_base: Duration::from_secs(1),
            backoff_cap: Duration::from_secs(20),
            suppress_for: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

impl CourierPolicy {
    /// The wait after the `attempts`-th failed attempt (1 for the first), before jitter:
    /// `backoff_base · 2^(attempts-1)`, at most `backoff_cap`.
    pub fn backoff(&self, attempts: u32) -> Duration {
        let doublings = attempts.saturating_sub(1).min(31);
        self.backoff_base
            .saturating_mul(1u32 << doublings)
            .min(self.backoff_cap)
    }

    /// [`backoff`](Self::backoff) with jitter: `unit` in `[0, 1)` picks a wait between half
    /// of it and all of it, so couriers that failed together do not retry together.
    pub fn jittered_backoff(&self, attempts: u32, unit: f64) -> Duration {
        let full = self.backoff(attempts);
        let unit = if unit.is_finite() {
            unit.clamp(0.0, 1.0)
        } else {
            0.0
        };
        full / 2 + (full / 2).mul_f64(unit)
    }
}

/// What one [`Courier::deliver_due`] round did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DeliveryReport {
    /// Messages claimed.
    pub claimed: usize,
    /// Delivered.
    pub sent: usize,
    /// Failed transiently; due again later.
    pub deferred: usize,
    /// Given up on: refused for good, out of attempts, or unreadable.
    pub dead: usize,
    /// Not sent: the address is suppressed.
    pub suppressed: usize,
    /// Dropped unsent: past their lifetime.
    pub expired: usize,
    /// Claims another courier had taken over by the time this one reported back.
    pub lost_leases: usize,
}

/// What became of one claimed message.
enum Outcome {
    Sent,
    Deferred,
    Dead,
    Suppressed,
    Expired,
}

/// Delivers the outbox's due messages through a real [`Mailer`]. Run one per instance (see
/// the [module docs](super)); any number of them share one outbox safely.
pub struct Courier {
    store: Arc<dyn OutboxStore>,
    mailer: Arc<dyn Mailer>,
    seal: MailSeal,
    clock: Arc<dyn Clock>,
    policy: CourierPolicy,
    jitter: Box<dyn Fn() -> f64 + Send + Sync>,
}

impl Courier {
    /// A courier sending `store`'s messages through `mailer`, opening them with `seal` (the
    /// same key as the [`MailQueue`](super::MailQueue) that sealed them).
    pub fn new(
        store: Arc<dyn OutboxStore>,
        mailer: Arc<dyn Mailer>,
        seal: MailSeal,
        clock: Arc<dyn Clock>,
        policy: CourierPolicy,
    ) -> Self {
        Self {
            store,
            mailer,
            seal,
            clock,
            policy,
            jitter: Box::new(rand::random::<f64>),
        }
    }

    /// Uses `jitter` (values in `[0, 1)`) instead of random jitter (for tests).
    pub fn with_jitter(mut self, jitter: impl Fn() -> f64 + Send + Sync + 'static) -> Self {
        self.jitter = Box::new(jitter);
        self
    }

    /// The policy in force.
    pub fn policy(&self) -> &CourierPolicy {
        &self.policy
    }

    /// One round: claims up to `batch` due messages and sends them concurrently. A round that
    /// claimed nothing also deletes expired messages and suppressions. Call again at once
    /// while rounds claim something; otherwise wait a little (or for a new message).
    pub async fn deliver_due(&self) -> Result<DeliveryReport, OutboxError> {
        let now = self.clock.now();
        let claimed = self
            .store
            .claim(now, self.policy.lease, self.policy.batch)
            .await?;
        let mut report = DeliveryReport {
            claimed: claimed.len(),
            ..DeliveryReport::default()
        };
        if claimed.is_empty() {
            // Only a sweep that deleted something is worth a log line (idle rounds are many).
            if let Some(swept) = std::num::NonZeroU64::new(self.store.sweep(now).await?) {
                info!(swept, "expired mail deleted from the outbox");
            }
            return Ok(report);
        }
        let outcomes =
            futures::future::join_all(claimed.iter().map(|c| self.deliver(c, now))).await;
        for outcome in outcomes {
            match outcome {
                Ok(Some(Outcome::Sent)) => report.sent += 1,
                Ok(Some(Outcome::Deferred)) => report.deferred += 1,
                Ok(Some(Outcome::Dead)) => report.dead += 1,
                Ok(Some(Outcome::Suppressed)) => report.suppressed += 1,
                Ok(Some(Outcome::Expired)) => report.expired += 1,
                Ok(None) => report.lost_leases += 1,
                Err(e) => return Err(e),
            }
        }
        Ok(report)
    }

    /// Sends one claimed message and records what happened; `None` when the lease was lost.
    async fn deliver(
        &self,
        claimed: &ClaimedMail,
        now: DateTime<Utc>,
    ) -> Result<Option<Outcome>, OutboxError> {
        let mail = &claimed.mail;
        let (id, lease) = (mail.id, claimed.lease);
        if now >= mail.expires_at {
            info!(mail_id = %id, kind = %mail.kind, "mail expired unsent: dropped");
            return Ok(self
                .store
                .remove(id, lease)
                .await?
                .then_some(Outcome::Expired));
        }
        if let Some((until, reason)) = self.store.suppression(&mail.to, now).await? {
            let why = format!("address suppressed until {until} ({})", reason.as_str());
            info!(mail_id = %id, kind = %mail.kind, "mail to a suppressed address: not sent");
            return Ok(self
                .store
                .bury(id, lease, &why)
                .await?
                .then_some(Outcome::Suppressed));
        }
        let letter = match self.seal.open(id, &mail.to, &mail.sealed) {
            Ok(letter) => letter,
            Err(e) => {
                warn!(mail_id = %id, error = %e, "outbox message cannot be opened");
                return Ok(self
                    .store
                    .bury(id, lease, &e.to_string())
                    .await?
                    .then_some(Outcome::Dead));
            }
        };
        let sent = self
            .mailer
            .send_localized(&mail.to, &letter.message, letter.language.as_deref())
            .await;
        let attempts = claimed.attempts.saturating_add(1);
        match sent {
            Ok(()) => {
                info!(mail_id = %id, kind = %mail.kind, attempts, "mail delivered");
                Ok(self.store.remove(id, lease).await?.then_some(Outcome::Sent))
            }
            Err(MailerError::Rejected(e)) => {
                let why = format!("refused for good: {}", error_chain(&*e));
                warn!(mail_id = %id, kind = %mail.kind, error = %why, "mail refused");
                let until = add(now, self.policy.suppress_for);
                self.store
                    .suppress(&mail.to, until, SuppressionReason::Rejected)
                    .await?;
                Ok(self
                    .store
                    .bury(id, lease, &why)
                    .await?
                    .then_some(Outcome::Dead))
            }
            Err(MailerError::Unavailable(e)) if attempts >= self.policy.max_attempts => {
                let why = format!("gave up after {attempts} attempts: {}", error_chain(&*e));
                warn!(mail_id = %id, kind = %mail.kind, error = %why, "mail given up");
                Ok(self
                    .store
                    .bury(id, lease, &why)
                    .await?
                    .then_some(Outcome::Dead))
            }
            Err(MailerError::Unavailable(e)) => {
                let wait = self.policy.jittered_backoff(attempts, (self.jitter)());
                let why = error_chain(&*e);
                info!(
                    mail_id = %id, kind = %mail.kind, attempts, retry_in_ms = wait.as_millis() as u64,
                    error = %why, "mail deferred"
                );
                Ok(self
                    .store
                    .retry_at(id, lease, add(now, wait), &why)
                    .await?
                    .then_some(Outcome::Deferred))
            }
        }
    }
}

/// An error with its sources, on one line.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

impl std::fmt::Debug for Courier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Courier")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

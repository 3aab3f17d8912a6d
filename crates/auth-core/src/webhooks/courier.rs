//! [`WebhookCourier`]: posts what the webhook queue holds.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tracing::{info, warn};

use super::{sign, verdict, Verdict, WebhookSeal};
use crate::outbox::CourierPolicy;
use crate::ports::{
    ClaimedDelivery, Clock, WebhookHeaders, WebhookSender, WebhookStore, WebhookStoreError,
};
use crate::service::add;

/// The longest error text kept in the delivery log.
const MAX_ERROR_CHARS: usize = 300;

/// What one [`WebhookCourier::deliver_due`] round did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WebhookReport {
    /// Deliveries claimed.
    pub claimed: usize,
    /// Answered 2xx.
    pub delivered: usize,
    /// Failed transiently; due again later.
    pub retried: usize,
    /// Given up on: refused, out of attempts, too old, or its secret does not open.
    pub dead: usize,
    /// Claims another courier had taken over by the time this one reported back.
    pub lost_leases: usize,
}

enum Outcome {
    Delivered,
    Retried,
    Dead,
}

/// Delivers the webhook queue's due deliveries through a [`WebhookSender`], with the mail
/// courier's policy: `lease`, `batch`, `max_attempts`, `backoff_base` and `backoff_cap` of
/// [`CourierPolicy`] (its `suppress_for` is not used). Run one per instance; any number share
/// one queue safely.
pub struct WebhookCourier {
    store: Arc<dyn WebhookStore>,
    sender: Arc<dyn WebhookSender>,
    seal: WebhookSeal,
    clock: Arc<dyn Clock>,
    policy: CourierPolicy,
    jitter: Box<dyn Fn() -> f64 + Send + Sync>,
}

impl WebhookCourier {
    /// A courier posting `store`'s deliveries with `sender`, opening the endpoints' secrets
    /// with `seal`.
    pub fn new(
        store: Arc<dyn WebhookStore>,
        sender: Arc<dyn WebhookSender>,
        seal: WebhookSeal,
        clock: Arc<dyn Clock>,
        policy: CourierPolicy,
    ) -> Self {
        Self {
            store,
            sender,
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

    /// One round: claims up to `batch` due deliveries and posts them concurrently. Call again
    /// at once while rounds claim something; otherwise wait a little (or for a new delivery).
    pub async fn deliver_due(&self) -> Result<WebhookReport, WebhookStoreError> {
        let now = self.clock.now();
        let claimed = self
            .store
            .claim(now, self.policy.lease, self.policy.batch)
            .await?;
        let mut report = WebhookReport {
            claimed: claimed.len(),
            ..WebhookReport::default()
        };
        let outcomes = futures::future::join_all(claimed.iter().map(|c| self.deliver(c))).await;
        for outcome in outcomes {
            match outcome? {
                Some(Outcome::Delivered) => report.delivered += 1,
                Some(Outcome::Retried) => report.retried += 1,
                Some(Outcome::Dead) => report.dead += 1,
                None => report.lost_leases += 1,
            }
        }
        Ok(report)
    }

    async fn bury(
        &self,
        d: &ClaimedDelivery,
        attempted: bool,
        status: Option<u16>,
        why: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Outcome>, WebhookStoreError> {
        warn!(delivery_id = %d.id, endpoint_id = %d.endpoint_id, kind = %d.kind, error = %why, "webhook given up");
        Ok(self
            .store
            .bury(d.id, d.lease, attempted, status, &bounded(why), now)
            .await?
            .then_some(Outcome::Dead))
    }

    /// Posts one claimed delivery and records what happened; `None` when the lease was lost.
    async fn deliver(&self, d: &ClaimedDelivery) -> Result<Option<Outcome>, WebhookStoreError> {
        let now = self.clock.now();
        if now >= d.expires_at {
            return self
                .bury(d, false, None, "too old: given up before this attempt", now)
                .await;
        }
        let Some(secret) = self.seal.open(d.endpoint_id, &d.sealed_secret) else {
            return self
                .bury(
                    d,
                    false,
                    None,
                    "the endpoint's secret cannot be opened",
                    now,
                )
                .await;
        };
        let id = d.id.to_string();
        let timestamp = now.timestamp();
        let headers = WebhookHeaders {
            signature: sign(&secret, &id, timestamp, &d.payload),
            id,
            timestamp: timestamp.to_string(),
        };
        let answer = self.sender.post(&d.url, &headers, &d.payload).await;
        let attempts = d.attempts.saturating_add(1);
        let (status, why) = match answer {
            Ok(status) => match verdict(status) {
                Verdict::Delivered => {
                    info!(delivery_id = %d.id, kind = %d.kind, attempts, status, "webhook delivered");
                    let done = self.clock.now();
                    return Ok(self
                        .store
                        .delivered(d.id, d.lease, status, done)
                        .await?
                        .then_some(Outcome::Delivered));
                }
                Verdict::Dead => {
                    let why = format!("refused with status {status}");
                    return self
                        .bury(d, true, Some(status), &why, self.clock.now())
                        .await;
                }
                Verdict::Retry => (Some(status), format!("answered with status {status}")),
            },
            Err(e) => (None, error_chain(&*e)),
        };
        if attempts >= self.policy.max_attempts {
            let why = format!("gave up after {attempts} attempts: {why}");
            return self.bury(d, true, status, &why, self.clock.now()).await;
        }
        let wait = self.policy.jittered_backoff(attempts, (self.jitter)());
        info!(
            delivery_id = %d.id, kind = %d.kind, attempts, retry_in_ms = wait.as_millis() as u64,
            error = %why, "webhook deferred"
        );
        Ok(self
            .store
            .retry_at(d.id, d.lease, add(now, wait), status, &bounded(&why))
            .await?
            .then_some(Outcome::Retried))
    }
}

fn bounded(text: &str) -> String {
    text.chars().take(MAX_ERROR_CHARS).collect()
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

impl std::fmt::Debug for WebhookCourier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookCourier")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

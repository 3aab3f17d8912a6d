use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{BoxError, EventCursor};

/// Errors of [`WebhookStore`].
#[derive(Debug, thiserror::Error)]
pub enum WebhookStoreError {
    /// The store cannot be reached or did not answer in time.
    #[error("the webhook store is unavailable")]
    Unavailable(#[source] BoxError),
    /// The store answered with an error that is not an outage (or a stored row is unreadable).
    #[error("the webhook store failed")]
    Other(#[source] BoxError),
}

/// A registered receiver of security events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEndpoint {
    /// The endpoint's id (also what its sealed secret is bound to).
    pub id: Uuid,
    /// Where deliveries are posted (`http` or `https`, checked when it was registered).
    pub url: String,
    /// The event kinds it receives ([`SecurityEventKind::as_str`](super::SecurityEventKind::as_str)
    /// names), without repeats.
    pub kinds: Vec<String>,
    /// Its signing secret, sealed (see [`WebhookSeal`](crate::webhooks::WebhookSeal)).
    pub sealed_secret: Vec<u8>,
    /// When it was registered.
    pub created_at: DateTime<Utc>,
}

/// One event to deliver: the store makes one delivery of it per endpoint that wants its kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEvent {
    /// The security event's id.
    pub event_id: Uuid,
    /// Its kind's name.
    pub kind: String,
    /// The JSON body every delivery of it sends (never a secret).
    pub payload: String,
}

/// A delivery a courier claimed: what to send, where, and under which lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedDelivery {
    /// The delivery's id: the `webhook-id` header, the same on every attempt.
    pub id: Uuid,
    /// The endpoint it goes to.
    pub endpoint_id: Uuid,
    /// The endpoint's URL.
    pub url: String,
    /// The endpoint's sealed secret.
    pub sealed_secret: Vec<u8>,
    /// The event kind.
    pub kind: String,
    /// The JSON body.
    pub payload: String,
    /// Attempts made before this claim.
    pub attempts: u32,
    /// When it was queued.
    pub created_at: DateTime<Utc>,
    /// After this it is given up on instead of sent.
    pub expires_at: DateTime<Utc>,
    /// The claim: every later call about this delivery names it and changes nothing once
    /// another courier holds the delivery.
    pub lease: Uuid,
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryState {
    /// Waiting for (another) attempt.
    Pending,
    /// The receiver answered 2xx.
    Delivered,
    /// Given up on: refused for good, out of attempts, or too old.
    Dead,
}

impl DeliveryState {
    /// `pending`, `delivered` or `dead`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Dead => "dead",
        }
    }

    /// The state named by [`as_str`](Self::as_str).
    pub fn parse(name: &str) -> Option<Self> {
        [Self::Pending, Self::Delivered, Self::Dead]
            .into_iter()
            .find(|s| s.as_str() == name)
    }
}

/// One delivery as the delivery log shows it: never the endpoint's secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryEntry {
    /// The delivery's id (the `webhook-id` header).
    pub id: Uuid,
    /// The endpoint.
    pub endpoint_id: Uuid,
    /// The security event's id.
    pub event_id: Uuid,
    /// The event kind.
    pub kind: String,
    /// Where it stands.
    pub state: DeliveryState,
    /// Attempts made.
    pub attempts: u32,
    /// The HTTP status of the last answer, if the last attempt got one.
    pub last_status: Option<u16>,
    /// Why the last attempt failed (or why it is dead).
    pub last_error: Option<String>,
    /// When it was queued.
    pub created_at: DateTime<Utc>,
    /// When the next attempt is due (pending deliveries).
    pub next_attempt_at: DateTime<Utc>,
    /// When it was delivered or given up on.
    pub finished_at: Option<DateTime<Utc>>,
}

/// How the webhook queue stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WebhookStats {
    /// Deliveries waiting.
    pub pending: u64,
    /// When the oldest of them was queued.
    pub oldest_pending: Option<DateTime<Utc>>,
    /// Deliveries given up on (kept until the retention period ends).
    pub dead: u64,
}

/// Registered webhook endpoints and their durable delivery queue, in the user database.
///
/// The queue has the mail outbox's semantics (see [`OutboxStore`](super::OutboxStore)):
/// couriers on any number of instances claim due deliveries under a lease, and every method
/// about a claimed delivery names its lease and MUST change nothing when the lease is no
/// longer the delivery's (it ran out and another courier claimed it).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait::async_trait]
pub trait WebhookStore: Send + Sync + 'static {
    /// Registers `endpoint`.
    async fn add_endpoint(&self, endpoint: &WebhookEndpoint) -> Result<(), WebhookStoreError>;

    /// Every endpoint, oldest first.
    async fn endpoints(&self) -> Result<Vec<WebhookEndpoint>, WebhookStoreError>;

    /// Deletes the endpoint and every delivery of it. `Ok(false)` when there is none.
    async fn remove_endpoint(&self, id: Uuid) -> Result<bool, WebhookStoreError>;

    /// Queues one pending delivery of `event`, due at `now` and given up on at `expires_at`,
    /// for each endpoint whose kinds include `event.kind`, in one transaction (an endpoint
    /// removed meanwhile gets none). Returns how many it queued.
    async fn enqueue(
        &self,
        event: &WebhookEvent,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<u64, WebhookStoreError>;

    /// Claims up to `limit` pending deliveries due at `now` and not under another live lease,
    /// oldest due first, leasing each until `now + lease`. Concurrent claims MUST NOT return
    /// the same delivery (say, `FOR UPDATE SKIP LOCKED`).
    async fn claim(
        &self,
        now: DateTime<Utc>,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<ClaimedDelivery>, WebhookStoreError>;

    /// The attempt at `now` was answered 2xx with `status`: count it and mark the delivery
    /// delivered (its body is kept for the log until [`prune`](Self::prune)). `Ok(false)` when
    /// `lease` is no longer the delivery's.
    async fn delivered(
        &self,
        id: Uuid,
        lease: Uuid,
        status: u16,
        now: DateTime<Utc>,
    ) -> Result<bool, WebhookStoreError>;

    /// The attempt failed but may work later: count it, note `status` and `error`, release
    /// the lease and make the delivery due at `at`. `Ok(false)` when `lease` is no longer the
    /// delivery's.
    async fn retry_at(
        &self,
        id: Uuid,
        lease: Uuid,
        at: DateTime<Utc>,
        status: Option<u16>,
        error: &str,
    ) -> Result<bool, WebhookStoreError>;

    /// Gives up on the delivery at `now`: count the attempt (when `attempted`), note `status`
    /// and `error`, mark it dead. `Ok(false)` when `lease` is no longer the delivery's.
    async fn bury(
        &self,
        id: Uuid,
        lease: Uuid,
        attempted: bool,
        status: Option<u16>,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, WebhookStoreError>;

    /// Up to `limit` deliveries of endpoint `endpoint`, newest first (by `created_at`, then
    /// `id`, both descending), after `after` when given.
    async fn deliveries(
        &self,
        endpoint: Uuid,
        after: Option<EventCursor>,
        limit: usize,
    ) -> Result<Vec<DeliveryEntry>, WebhookStoreError>;

    /// Counts for monitoring.
    async fn stats(&self) -> Result<WebhookStats, WebhookStoreError>;

    /// Deletes the delivered and dead deliveries that finished before `before`; how many.
    async fn prune(&self, before: DateTime<Utc>) -> Result<u64, WebhookStoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_states_read_back_as_stored() {
        for s in [
            DeliveryState::Pending,
            DeliveryState::Delivered,
            DeliveryState::Dead,
        ] {
            assert_eq!(DeliveryState::parse(s.as_str()), Some(s));
        }
        assert_eq!(DeliveryState::parse("sent"), None);
    }
}

/// The headers of one delivery attempt (Standard Webhooks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookHeaders {
    /// `webhook-id`: the delivery's id, the same on every attempt (the receiver's
    /// idempotency key).
    pub id: String,
    /// `webhook-timestamp`: this attempt's time, in seconds since the epoch.
    pub timestamp: String,
    /// `webhook-signature`: `v1,` and the base64 HMAC-SHA256 of `{id}.{timestamp}.{body}`.
    pub signature: String,
}

/// Posts webhook deliveries (an HTTP client).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait::async_trait]
pub trait WebhookSender: Send + Sync + 'static {
    /// Posts `body` (JSON) to `url` with `headers`, and returns the status of the answer. An
    /// `Err` is an attempt that got no answer (refused, timed out, broken): it is retried.
    /// MUST NOT follow redirects, and MUST bound the time it takes.
    async fn post(&self, url: &str, headers: &WebhookHeaders, body: &str) -> Result<u16, BoxError>;
}

//! [`MemoryWebhooks`]: the [`WebhookStore`] port in process memory.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use auth_core::{
    ClaimedDelivery, DateTime, DeliveryEntry, DeliveryState, EventCursor, Utc, WebhookEndpoint,
    WebhookEvent, WebhookStats, WebhookStore, WebhookStoreError,
};
use uuid::Uuid;

/// Webhook endpoints and their delivery queue in the memory of this process: lost on
/// restart, one instance only. One lock guards everything, so every operation is atomic
/// (concurrent claims never share a delivery). No operation fails. Clones share the state.
#[derive(Clone, Default)]
pub struct MemoryWebhooks {
    state: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    endpoints: Vec<WebhookEndpoint>,
    /// In queueing order.
    deliveries: Vec<Stored>,
}

struct Stored {
    entry: DeliveryEntry,
    payload: String,
    expires_at: DateTime<Utc>,
    lease: Option<(Uuid, DateTime<Utc>)>,
}

impl MemoryWebhooks {
    /// No endpoint, nothing queued.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Each operation leaves the state valid before it can panic.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl std::fmt::Debug for MemoryWebhooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.lock();
        f.debug_struct("MemoryWebhooks")
            .field("endpoints", &state.endpoints.len())
            .field("deliveries", &state.deliveries.len())
            .finish()
    }
}

fn later(at: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    chrono::TimeDelta::from_std(d)
        .ok()
        .and_then(|d| at.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

impl State {
    /// The delivery `id` while `lease` is its current lease.
    fn leased(&mut self, id: Uuid, lease: Uuid) -> Option<&mut Stored> {
        self.deliveries.iter_mut().find(|d| {
            d.entry.id == id
                && d.entry.state == DeliveryState::Pending
                && d.lease.is_some_and(|(l, _)| l == lease)
        })
    }
}

#[auth_core::async_trait]
impl WebhookStore for MemoryWebhooks {
    async fn add_endpoint(&self, endpoint: &WebhookEndpoint) -> Result<(), WebhookStoreError> {
        let mut state = self.lock();
        if state.endpoints.iter().any(|e| e.id == endpoint.id) {
            return Err(WebhookStoreError::Other("the endpoint id is taken".into()));
        }
        state.endpoints.push(endpoint.clone());
        Ok(())
    }

    async fn endpoints(&self) -> Result<Vec<WebhookEndpoint>, WebhookStoreError> {
        let mut all = self.lock().endpoints.clone();
        all.sort_by_key(|e| (e.created_at, e.id));
        Ok(all)
    }

    async fn remove_endpoint(&self, id: Uuid) -> Result<bool, WebhookStoreError> {
        let mut state = self.lock();
        let before = state.endpoints.len();
        state.endpoints.retain(|e| e.id != id);
        state.deliveries.retain(|d| d.entry.endpoint_id != id);
        Ok(state.endpoints.len() < before)
    }

    async fn enqueue(
        &self,
        event: &WebhookEvent,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<u64, WebhookStoreError> {
        let mut state = self.lock();
        let targets: Vec<Uuid> = state
            .endpoints
            .iter()
            .filter(|e| e.kinds.contains(&event.kind))
            .map(|e| e.id)
            .collect();
        for endpoint_id in &targets {
            state.deliveries.push(Stored {
                entry: DeliveryEntry {
                    id: Uuid::new_v4(),
                    endpoint_id: *endpoint_id,
                    event_id: event.event_id,
                    kind: event.kind.clone(),
                    state: DeliveryState::Pending,
                    attempts: 0,
                    last_status: None,
                    last_error: None,
                    created_at: now,
                    next_attempt_at: now,
                    finished_at: None,
                },
                payload: event.payload.clone(),
                expires_at,
                lease: None,
            });
        }
        Ok(targets.len() as u64)
    }

    async fn claim(
        &self,
        now: DateTime<Utc>,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<ClaimedDelivery>, WebhookStoreError> {
        let mut guard = self.lock();
        let state = &mut *guard;
        let mut due: Vec<usize> = state
            .deliveries
            .iter()
            .enumerate()
            .filter(|(_, d)| {
                d.entry.state == DeliveryState::Pending
                    && d.entry.next_attempt_at <= now
                    && d.lease.is_none_or(|(_, until)| until <= now)
            })
            .map(|(i, _)| i)
            .collect();
        due.sort_by_key(|&i| {
            let e = &state.deliveries[i].entry;
            (e.next_attempt_at, e.created_at)
        });
        due.truncate(limit);
        let until = later(now, lease);
        let mut claimed = Vec::with_capacity(due.len());
        for i in due {
            let d = &mut state.deliveries[i];
            let Some(endpoint) = state.endpoints.iter().find(|e| e.id == d.entry.endpoint_id)
            else {
                continue;
            };
            let id = Uuid::new_v4();
            d.lease = Some((id, until));
            claimed.push(ClaimedDelivery {
                id: d.entry.id,
                endpoint_id: endpoint.id,
                url: endpoint.url.clone(),
                sealed_secret: endpoint.sealed_secret.clone(),
                kind: d.entry.kind.clone(),
                payload: d.payload.clone(),
                attempts: d.entry.attempts,
                created_at: d.entry.created_at,
                expires_at: d.expires_at,
                lease: id,
            });
        }
        Ok(claimed)
    }

    async fn delivered(
        &self,
        id: Uuid,
        lease: Uuid,
        status: u16,
        now: DateTime<Utc>,
    ) -> Result<bool, WebhookStoreError> {
        let mut state = self.lock();
        let Some(d) = state.leased(id, lease) else {
            return Ok(false);
        };
        d.entry.state = DeliveryState::Delivered;
        d.entry.attempts = d.entry.attempts.saturating_add(1);
        d.entry.last_status = Some(status);
        d.entry.last_error = None;
        d.entry.finished_at = Some(now);
        d.lease = None;
        Ok(true)
    }

    async fn retry_at(
        &self,
        id: Uuid,
        lease: Uuid,
        at: DateTime<Utc>,
        status: Option<u16>,
        error: &str,
    ) -> Result<bool, WebhookStoreError> {
        let mut state = self.lock();
        let Some(d) = state.leased(id, lease) else {
            return Ok(false);
        };
        d.entry.attempts = d.entry.attempts.saturating_add(1);
        d.entry.last_status = status;
        d.entry.last_error = Some(error.to_owned());
        d.entry.next_attempt_at = at;
        d.lease = None;
        Ok(true)
    }

    async fn bury(
        &self,
        id: Uuid,
        lease: Uuid,
        attempted: bool,
        status: Option<u16>,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, WebhookStoreError> {
        let mut state = self.lock();
        let Some(d) = state.leased(id, lease) else {
            return Ok(false);
        };
        d.entry.state = DeliveryState::Dead;
        d.entry.attempts = d.entry.attempts.saturating_add(u32::from(attempted));
        d.entry.last_status = status;
        d.entry.last_error = Some(error.to_owned());
        d.entry.finished_at = Some(now);
        d.lease = None;
        Ok(true)
    }

    async fn deliveries(
        &self,
        endpoint: Uuid,
        after: Option<EventCursor>,
        limit: usize,
    ) -> Result<Vec<DeliveryEntry>, WebhookStoreError> {
        let state = self.lock();
        let mut page: Vec<DeliveryEntry> = state
            .deliveries
            .iter()
            .map(|d| &d.entry)
            .filter(|e| e.endpoint_id == endpoint)
            .filter(|e| {
                after.is_none_or(|c| e.created_at < c.at || (e.created_at == c.at && e.id < c.id))
            })
            .cloned()
            .collect();
        page.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
        page.truncate(limit);
        Ok(page)
    }

    async fn stats(&self) -> Result<WebhookStats, WebhookStoreError> {
        let state = self.lock();
        let pending = state
            .deliveries
            .iter()
            .filter(|d| d.entry.state == DeliveryState::Pending);
        Ok(WebhookStats {
            pending: pending.clone().count() as u64,
            oldest_pending: pending.map(|d| d.entry.created_at).min(),
            dead: state
                .deliveries
                .iter()
                .filter(|d| d.entry.state == DeliveryState::Dead)
                .count() as u64,
        })
    }

    async fn prune(&self, before: DateTime<Utc>) -> Result<u64, WebhookStoreError> {
        let mut state = self.lock();
        let start = state.deliveries.len();
        state
            .deliveries
            .retain(|d| d.entry.finished_at.is_none_or(|at| at >= before));
        Ok((start - state.deliveries.len()) as u64)
    }
}

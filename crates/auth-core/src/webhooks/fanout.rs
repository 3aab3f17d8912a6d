//! [`WebhookFanout`]: queues the webhook deliveries of each event written.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::domain::user::UserId;
use crate::outbox::EnqueueHook;
use crate::ports::{
    Clock, EventCursor, SecurityEvent, SecurityEvents, SecurityEventsError, WebhookEvent,
    WebhookStore,
};
use crate::service::add;

/// A [`SecurityEvents`] in front of the event store: [`record`](SecurityEvents::record)
/// writes the event, then queues its deliveries (one per endpoint that wants its kind). An
/// event the store did not take queues nothing, so no receiver hears of an event the history
/// does not hold. Queueing is best effort like the event itself: a failure is logged and the
/// event stays recorded.
pub struct WebhookFanout {
    events: Arc<dyn SecurityEvents>,
    store: Arc<dyn WebhookStore>,
    clock: Arc<dyn Clock>,
    max_age: Duration,
    on_enqueue: Option<EnqueueHook>,
}

impl WebhookFanout {
    /// Writes events to `events` and queues deliveries in `store`, each given up on when
    /// still undelivered `max_age` after the event.
    pub fn new(
        events: Arc<dyn SecurityEvents>,
        store: Arc<dyn WebhookStore>,
        clock: Arc<dyn Clock>,
        max_age: Duration,
    ) -> Self {
        Self {
            events,
            store,
            clock,
            max_age,
            on_enqueue: None,
        }
    }

    /// Calls `hook` after deliveries were queued (to wake the local courier).
    pub fn on_enqueue(mut self, hook: EnqueueHook) -> Self {
        self.on_enqueue = Some(hook);
        self
    }
}

impl std::fmt::Debug for WebhookFanout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookFanout")
            .field("max_age", &self.max_age)
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl SecurityEvents for WebhookFanout {
    async fn record(&self, event: &SecurityEvent) -> Result<(), SecurityEventsError> {
        self.events.record(event).await?;
        let now = self.clock.now();
        let queued = WebhookEvent {
            event_id: event.id,
            kind: event.kind.as_str().to_owned(),
            payload: super::payload(event),
        };
        match self
            .store
            .enqueue(&queued, now, add(now, self.max_age))
            .await
        {
            Ok(0) => {}
            Ok(n) => {
                tracing::debug!(event_id = %event.id, deliveries = n, "webhook deliveries queued");
                if let Some(hook) = &self.on_enqueue {
                    hook();
                }
            }
            Err(e) => tracing::warn!(
                error = %e,
                event_id = %event.id,
                event = event.kind.as_str(),
                "webhook deliveries not queued"
            ),
        }
        Ok(())
    }

    async fn list(
        &self,
        user: UserId,
        after: Option<EventCursor>,
        limit: usize,
    ) -> Result<Vec<SecurityEvent>, SecurityEventsError> {
        self.events.list(user, after, limit).await
    }

    async fn prune(&self, before: DateTime<Utc>) -> Result<u64, SecurityEventsError> {
        self.events.prune(before).await
    }
}

//! Webhook endpoints, as administrators manage them: register (the secret is shown once),
//! list, remove, and read an endpoint's delivery log. Every operation needs an administrator
//! with an open privilege window, like every other administrative one.

use std::sync::Arc;

use tracing::{info, instrument};
use uuid::Uuid;

use super::{AdminError, AuthService, Dependency, Failure};
use crate::domain::session::Session;
use crate::ports::{DeliveryEntry, EventCursor, WebhookEndpoint, WebhookStore};
use crate::webhooks::{EventKinds, WebhookSeal, WebhookSecret, WebhookUrl};

/// Largest page of [`AuthService::admin_webhook_deliveries`].
pub const MAX_DELIVERIES_PAGE: usize = 100;

/// Where webhook endpoints are kept, and the rules for registering one.
#[derive(Clone)]
pub struct Webhooks {
    /// Endpoints and their delivery queue.
    pub store: Arc<dyn WebhookStore>,
    /// Seals the endpoints' secrets.
    pub seal: WebhookSeal,
    /// Whether plain `http` URLs are accepted (otherwise only `https`).
    pub allow_http: bool,
    /// Most endpoints at once.
    pub max_endpoints: usize,
}

impl std::fmt::Debug for Webhooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhooks")
            .field("allow_http", &self.allow_http)
            .field("max_endpoints", &self.max_endpoints)
            .finish_non_exhaustive()
    }
}

/// A newly registered endpoint, with its secret: the only time the secret is shown.
#[derive(Debug)]
pub struct CreatedWebhook {
    /// The endpoint.
    pub endpoint: WebhookEndpoint,
    /// Its signing secret.
    pub secret: WebhookSecret,
}

/// One page of an endpoint's delivery log.
#[derive(Debug, Clone)]
pub struct DeliveryPage {
    /// The deliveries, newest first.
    pub deliveries: Vec<DeliveryEntry>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<EventCursor>,
}

fn off() -> AdminError {
    AdminError::Failure(Failure::Unavailable(
        Dependency::Webhooks,
        "webhooks are not configured".into(),
    ))
}

impl AuthService {
    /// Turns on webhook endpoints (the administration API's part; deliveries are queued by a
    /// [`WebhookFanout`](crate::webhooks::WebhookFanout) in front of the event store).
    #[must_use]
    pub fn with_webhooks(mut self, webhooks: Webhooks) -> Self {
        self.webhooks = Some(webhooks);
        self
    }

    fn webhooks(&self) -> Result<&Webhooks, AdminError> {
        self.webhooks.as_ref().ok_or_else(off)
    }

    /// Registers an endpoint for `events` at `url` (see [`WebhookUrl`] and [`EventKinds`]),
    /// with a fresh secret, sealed at rest. [`AdminError::InvalidWebhook`] for a bad URL or
    /// kind, or when the number of endpoints is at its maximum; nothing is stored then.
    #[instrument(skip_all, fields(user_id = %session.user.id))]
    pub async fn admin_create_webhook(
        &self,
        session: &Session,
        url: &str,
        events: &[String],
    ) -> Result<CreatedWebhook, AdminError> {
        self.privileged(session).await?;
        let hooks = self.webhooks()?;
        let url =
            WebhookUrl::parse(url, hooks.allow_http).map_err(|e| AdminError::InvalidWebhook {
                field: "url",
                message: e.to_string(),
            })?;
        let kinds = EventKinds::parse(events).map_err(|e| AdminError::InvalidWebhook {
            field: "events",
            message: e.to_string(),
        })?;
        if hooks.store.endpoints().await?.len() >= hooks.max_endpoints {
            return Err(AdminError::InvalidWebhook {
                field: "url",
                message: format!("at most {} endpoints", hooks.max_endpoints),
            });
        }
        let id = self.ports.random.uuid();
        let secret = WebhookSecret::generate(&*self.ports.random);
        let endpoint = WebhookEndpoint {
            id,
            url: url.as_str().to_owned(),
            kinds: kinds.names().to_vec(),
            sealed_secret: hooks.seal.seal(id, &secret),
            created_at: self.ports.clock.now(),
        };
        hooks.store.add_endpoint(&endpoint).await?;
        info!(
            security_event = "webhook_created",
            webhook_id = %id,
            events = ?endpoint.kinds,
            "webhook endpoint registered"
        );
        Ok(CreatedWebhook { endpoint, secret })
    }

    /// Every endpoint, oldest first (sealed secrets included: the caller shows none).
    pub async fn admin_list_webhooks(
        &self,
        session: &Session,
    ) -> Result<Vec<WebhookEndpoint>, AdminError> {
        self.privileged(session).await?;
        Ok(self.webhooks()?.store.endpoints().await?)
    }

    /// Removes the endpoint and its deliveries (pending ones are not sent);
    /// [`AdminError::NotFound`] when there is none.
    #[instrument(skip_all, fields(user_id = %session.user.id, webhook_id = %id))]
    pub async fn admin_delete_webhook(
        &self,
        session: &Session,
        id: Uuid,
    ) -> Result<(), AdminError> {
        self.privileged(session).await?;
        if !self.webhooks()?.store.remove_endpoint(id).await? {
            return Err(AdminError::NotFound);
        }
        info!(
            security_event = "webhook_deleted",
            "webhook endpoint removed"
        );
        Ok(())
    }

    /// A page of the endpoint's delivery log, newest first; [`AdminError::NotFound`] for an
    /// unknown endpoint.
    pub async fn admin_webhook_deliveries(
        &self,
        session: &Session,
        id: Uuid,
        after: Option<EventCursor>,
        limit: usize,
    ) -> Result<DeliveryPage, AdminError> {
        self.privileged(session).await?;
        let hooks = self.webhooks()?;
        if !hooks.store.endpoints().await?.iter().any(|e| e.id == id) {
            return Err(AdminError::NotFound);
        }
        let limit = limit.clamp(1, MAX_DELIVERIES_PAGE);
        let mut deliveries = hooks.store.deliveries(id, after, limit + 1).await?;
        deliveries.retain(|d| {
            d.endpoint_id == id
                && after
                    .is_none_or(|c| d.created_at < c.at || (d.created_at == c.at && d.id < c.id))
        });
        deliveries.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
        let more = deliveries.len() > limit;
        deliveries.truncate(limit);
        let next = match (more, deliveries.last()) {
            (true, Some(last)) => Some(EventCursor {
                at: last.created_at,
                id: last.id,
            }),
            _ => None,
        };
        Ok(DeliveryPage { deliveries, next })
    }
}

//! Webhooks: the administration API of the endpoints (`/admin/webhooks...`), the HTTP sender,
//! and this instance's courier, which posts the queued deliveries (see `auth_core::webhooks`)
//! and prunes the delivery log.

use std::sync::Arc;
use std::time::Duration;

use actix_web::{web, HttpResponse};
use auth_core::outbox::CourierPolicy;
use auth_core::webhooks::{WebhookCourier, WebhookSeal};
use auth_core::{
    BoxError, Clock, DeliveryEntry, EventCursor, SystemClock, WebhookEndpoint, WebhookHeaders,
    WebhookSender, WebhookStore,
};
use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use tokio::sync::{watch, Notify};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::{ApiError, ErrorBody};
use crate::extract::AdminSession;
use crate::mail::CourierTask;
use crate::settings::WebhookSettings;
use crate::state::AppState;

type Wrapped<T> = std::result::Result<web::Json<T>, actix_web::Error>;
type Answer = std::result::Result<HttpResponse, actix_web::Error>;

/// Default page of the delivery log.
const DEFAULT_DELIVERIES_PAGE: usize = 50;

/// How often the courier deletes the deliveries past their retention.
const PRUNE_INTERVAL: Duration = Duration::from_secs(60 * 60);

/// The [`WebhookSender`] over HTTP: reqwest with rustls, no redirects followed, no proxy from
/// the environment, a bounded time per attempt; the answer's body is never read (only its
/// status counts).
#[derive(Debug, Clone)]
pub struct HttpWebhookSender {
    client: reqwest::Client,
}

impl HttpWebhookSender {
    /// A sender whose attempts take at most `timeout` (the connection at most half of it).
    pub fn new(timeout: Duration) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(timeout / 2)
            .timeout(timeout)
            .pool_max_idle_per_host(2)
            .user_agent(concat!("SecureAuth-Webhooks/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { client })
    }
}

#[async_trait::async_trait]
impl WebhookSender for HttpWebhookSender {
    async fn post(&self, url: &str, headers: &WebhookHeaders, body: &str) -> Result<u16, BoxError> {
        let answer = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("webhook-id", &headers.id)
            .header("webhook-timestamp", &headers.timestamp)
            .header("webhook-signature", &headers.signature)
            .body(body.to_owned())
            .send()
            .await
            // The URL stays out of the error (it is the operator's, but may carry a token).
            .map_err(|e| -> BoxError { e.without_url().into() })?;
        // Dropped unread: the connection is closed rather than the body drained.
        Ok(answer.status().as_u16())
    }
}

/// This instance's webhook queue: the store, the courier, and what wakes it.
#[derive(Clone)]
pub struct WebhookRuntime {
    store: Arc<dyn WebhookStore>,
    courier: Arc<WebhookCourier>,
    wake: Arc<Notify>,
    poll_interval: Duration,
    retention: Duration,
}

impl std::fmt::Debug for WebhookRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookRuntime")
            .field("courier", &self.courier)
            .finish_non_exhaustive()
    }
}

impl WebhookRuntime {
    /// The queue in `store`, posted with `sender`, secrets opened with `seal`.
    pub fn new(
        store: Arc<dyn WebhookStore>,
        sender: Arc<dyn WebhookSender>,
        seal: WebhookSeal,
        settings: &WebhookSettings,
    ) -> Self {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        // The mail courier's policy and backoff, with the webhook settings.
        let policy = CourierPolicy {
            max_attempts: settings.max_attempts.max(1),
            backoff_base: Duration::from_secs(1).min(settings.backoff_cap),
            backoff_cap: settings.backoff_cap,
            // Longer than an attempt can take.
            lease: (settings.timeout * 4).max(Duration::from_secs(30)),
            ..CourierPolicy::default()
        };
        let courier = WebhookCourier::new(Arc::clone(&store), sender, seal, clock, policy);
        Self {
            store,
            courier: Arc::new(courier),
            wake: Arc::new(Notify::new()),
            poll_interval: settings.poll_interval,
            retention: settings.retention(),
        }
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn WebhookStore> {
        &self.store
    }

    /// Wakes the courier (deliveries were queued here).
    pub fn waker(&self) -> auth_core::outbox::EnqueueHook {
        let wake = Arc::clone(&self.wake);
        Arc::new(move || wake.notify_one())
    }

    /// Starts the courier: it posts while there are due deliveries, then waits for one
    /// queued here or the poll interval; about hourly it deletes the finished deliveries past
    /// their retention. Mail has a courier of its own: a slow receiver delays no mail.
    pub fn spawn_courier(&self, metrics: Option<crate::metrics::Metrics>) -> CourierTask {
        let (stop, mut stopped) = watch::channel(false);
        let this = self.clone();
        let handle = tokio::spawn(async move {
            let mut next_prune = tokio::time::Instant::now();
            loop {
                if tokio::time::Instant::now() >= next_prune {
                    next_prune += PRUNE_INTERVAL;
                    this.prune_once().await;
                }
                let busy = match this.courier.deliver_due().await {
                    Ok(report) => {
                        if let Some(metrics) = &metrics {
                            metrics.record_webhooks(&report);
                        }
                        report.claimed > 0 && report.retried < report.claimed
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "webhook courier: the queue is unavailable");
                        false
                    }
                };
                if *stopped.borrow() {
                    break;
                }
                if busy {
                    continue;
                }
                tokio::select! {
                    () = this.wake.notified() => {}
                    () = tokio::time::sleep(this.poll_interval) => {}
                    _ = stopped.changed() => break,
                }
            }
        });
        CourierTask::new(stop, handle)
    }

    async fn prune_once(&self) {
        let before = chrono::TimeDelta::from_std(self.retention)
            .ok()
            .and_then(|r| SystemClock.now().checked_sub_signed(r))
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        match self.store.prune(before).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                deleted = n,
                "webhook deliveries past their retention deleted"
            ),
            Err(e) => {
                tracing::warn!(error = %e, "webhook deliveries not pruned; next try in an hour")
            }
        }
    }
}

/// `POST /admin/webhooks`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhookRequest {
    /// Where deliveries are posted: `https://` (or `http://` where `WEBHOOK_ALLOW_HTTP` is
    /// on), at most 2048 characters, no credentials, no fragment.
    #[schema(example = "https://hooks.example.com/secureauth")]
    pub url: String,
    /// The event kinds to receive (the `kind`s of `GET /me/events`), at least one.
    #[schema(example = json!(["login_failed", "lockout", "password_changed"]))]
    pub events: Vec<String>,
}

/// A webhook endpoint (never its secret).
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookDto {
    /// Id.
    pub id: Uuid,
    /// Where deliveries are posted.
    pub url: String,
    /// The event kinds it receives.
    pub events: Vec<String>,
    /// When it was registered.
    pub created_at: DateTime<Utc>,
}

impl From<&WebhookEndpoint> for WebhookDto {
    fn from(e: &WebhookEndpoint) -> Self {
        Self {
            id: e.id,
            url: e.url.clone(),
            events: e.kinds.clone(),
            created_at: e.created_at,
        }
    }
}

/// `POST /admin/webhooks` success: the endpoint and its secret, shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedWebhookResponse {
    /// The endpoint.
    pub webhook: WebhookDto,
    /// The signing secret (`whsec_` and base64; the HMAC key is the decoded bytes). Shown only
    /// here: store it with the receiver.
    #[schema(example = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")]
    pub secret: String,
}

/// `GET /admin/webhooks` success.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhooksResponse {
    /// The endpoints, oldest first.
    pub webhooks: Vec<WebhookDto>,
}

/// One delivery of the log.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryDto {
    /// The delivery's id: the `webhook-id` header, the same on every attempt.
    pub id: Uuid,
    /// The security event's id.
    pub event_id: Uuid,
    /// The event kind.
    #[schema(example = "login_failed")]
    pub kind: String,
    /// `pending`, `delivered` or `dead`.
    #[schema(example = "delivered")]
    pub state: &'static str,
    /// Attempts made.
    pub attempts: u32,
    /// The HTTP status of the last answer, if the last attempt got one.
    pub last_status: Option<u16>,
    /// Why the last attempt failed, or why it is dead.
    pub last_error: Option<String>,
    /// When it was queued.
    pub created_at: DateTime<Utc>,
    /// When the next attempt is due (pending deliveries).
    pub next_attempt_at: DateTime<Utc>,
    /// When it was delivered or given up on.
    pub finished_at: Option<DateTime<Utc>>,
}

impl From<&DeliveryEntry> for DeliveryDto {
    fn from(d: &DeliveryEntry) -> Self {
        Self {
            id: d.id,
            event_id: d.event_id,
            kind: d.kind.clone(),
            state: d.state.as_str(),
            attempts: d.attempts,
            last_status: d.last_status,
            last_error: d.last_error.clone(),
            created_at: d.created_at,
            next_attempt_at: d.next_attempt_at,
            finished_at: d.finished_at,
        }
    }
}

/// `GET /admin/webhooks/{id}/deliveries` success.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveriesResponse {
    /// The deliveries, newest first.
    pub deliveries: Vec<DeliveryDto>,
    /// Pass as `cursor` for the next page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub next_cursor: Option<String>,
}

/// Query of `GET /admin/webhooks/{id}/deliveries`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveriesQuery {
    /// Deliveries per page, 1 to 100 (default 50).
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl DeliveriesQuery {
    /// The cursor and page size; 400 for a malformed cursor or a limit out of range.
    pub fn try_into_domain(self) -> Result<(Option<EventCursor>, usize), ApiError> {
        let max = auth_core::MAX_DELIVERIES_PAGE;
        let limit = match self.limit {
            None => DEFAULT_DELIVERIES_PAGE,
            Some(n) if (1..=max as u32).contains(&n) => n as usize,
            Some(_) => {
                return Err(ApiError::InvalidRequest(format!(
                    "limit must be between 1 and {max}"
                )))
            }
        };
        let cursor = match self.cursor {
            None => None,
            Some(raw) => Some(
                EventCursor::parse(&raw)
                    .ok_or_else(|| ApiError::InvalidRequest("malformed cursor".into()))?,
            ),
        };
        Ok((cursor, limit))
    }
}

fn webhook_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::try_parse(raw).map_err(|_| ApiError::NotFound)
}

fn no_store(mut b: actix_web::HttpResponseBuilder) -> actix_web::HttpResponseBuilder {
    b.insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"));
    b
}

/// Register a webhook endpoint for some event kinds. The answer holds its signing secret,
/// the only time it is shown.
#[utoipa::path(post, path = "/admin/webhooks", request_body = CreateWebhookRequest, tag = "admin",
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 201, body = CreatedWebhookResponse, description = "Registered; the secret is shown this once"),
        (status = 400, body = ErrorBody, description = "`invalid_request`: malformed JSON or a missing field"),
        (status = 401, body = ErrorBody, description = "`unauthenticated`"),
        (status = 403, body = ErrorBody, description = "`forbidden`, `reauthentication_required`, or `cross_site_request`"),
        (status = 413, body = ErrorBody, description = "`payload_too_large`"),
        (status = 415, body = ErrorBody, description = "`unsupported_media_type`"),
        (status = 422, body = ErrorBody, description = "`invalid_webhook`: a bad URL or event kind, or too many endpoints"),
    ))]
pub async fn create_webhook(
    state: web::Data<AppState>,
    admin: AdminSession,
    body: Wrapped<CreateWebhookRequest>,
) -> Answer {
    let body = body?.into_inner();
    let created = state
        .service
        .admin_create_webhook(&admin.0, &body.url, &body.events)
        .await
        .map_err(ApiError::from)?;
    Ok(
        no_store(HttpResponse::Created()).json(CreatedWebhookResponse {
            webhook: WebhookDto::from(&created.endpoint),
            secret: created.secret.encode().expose_secret().to_owned(),
        }),
    )
}

/// The webhook endpoints, oldest first (without their secrets).
#[utoipa::path(get, path = "/admin/webhooks", tag = "admin",
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, body = WebhooksResponse, description = "The endpoints"),
        (status = 401, body = ErrorBody, description = "`unauthenticated`"),
        (status = 403, body = ErrorBody, description = "`forbidden` or `reauthentication_required`"),
    ))]
pub async fn list_webhooks(state: web::Data<AppState>, admin: AdminSession) -> Answer {
    let all = state
        .service
        .admin_list_webhooks(&admin.0)
        .await
        .map_err(ApiError::from)?;
    Ok(no_store(HttpResponse::Ok()).json(WebhooksResponse {
        webhooks: all.iter().map(WebhookDto::from).collect(),
    }))
}

/// Remove a webhook endpoint with its delivery log; its pending deliveries are not sent.
#[utoipa::path(delete, path = "/admin/webhooks/{id}", tag = "admin",
    params(("id" = uuid::Uuid, Path, description = "The endpoint's id")),
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, body = ErrorBody, description = "`unauthenticated`"),
        (status = 403, body = ErrorBody, description = "`forbidden`, `reauthentication_required`, or `cross_site_request`"),
        (status = 404, body = ErrorBody, description = "`not_found`: no such endpoint"),
    ))]
pub async fn delete_webhook(
    state: web::Data<AppState>,
    admin: AdminSession,
    path: web::Path<String>,
) -> Answer {
    let id = webhook_id(&path)?;
    state
        .service
        .admin_delete_webhook(&admin.0, id)
        .await
        .map_err(ApiError::from)?;
    Ok(HttpResponse::NoContent().finish())
}

/// An endpoint's delivery log, newest first, a page at a time: each delivery's state,
/// attempts and last answer. Delivered and dead deliveries are kept
/// `WEBHOOK_RETENTION_DAYS` days.
#[utoipa::path(get, path = "/admin/webhooks/{id}/deliveries", tag = "admin",
    params(("id" = uuid::Uuid, Path, description = "The endpoint's id"), DeliveriesQuery),
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, body = DeliveriesResponse, description = "A page of the delivery log"),
        (status = 400, body = ErrorBody, description = "`invalid_request`: a malformed `limit` or `cursor`"),
        (status = 401, body = ErrorBody, description = "`unauthenticated`"),
        (status = 403, body = ErrorBody, description = "`forbidden` or `reauthentication_required`"),
        (status = 404, body = ErrorBody, description = "`not_found`: no such endpoint"),
    ))]
pub async fn webhook_deliveries(
    state: web::Data<AppState>,
    admin: AdminSession,
    path: web::Path<String>,
    // Wrapped so that a malformed query string gets the JSON 400 of every other bad input.
    query: std::result::Result<web::Query<DeliveriesQuery>, actix_web::Error>,
) -> Answer {
    let id = webhook_id(&path)?;
    let query = query.map_err(|e| ApiError::InvalidRequest(e.to_string()))?;
    let (after, limit) = query.into_inner().try_into_domain()?;
    let page = state
        .service
        .admin_webhook_deliveries(&admin.0, id, after, limit)
        .await
        .map_err(ApiError::from)?;
    Ok(no_store(HttpResponse::Ok()).json(DeliveriesResponse {
        deliveries: page.deliveries.iter().map(DeliveryDto::from).collect(),
        next_cursor: page.next.map(|c| c.encode()),
    }))
}

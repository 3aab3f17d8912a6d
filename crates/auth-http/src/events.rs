//! The security history: `GET /me/events` (the session user's events, newest first, a page at
//! a time), the hourly pruning of events past `SECURITY_EVENT_RETENTION_DAYS`, and
//! [`QueuedSecurityEvents`], which keeps the write of an event out of the request's time.

use std::sync::{Arc, Weak};
use std::time::Duration;

use actix_web::{web, HttpResponse};
use auth_core::{
    AuthService, EventCursor, SecurityEvent, SecurityEvents, SecurityEventsError, UserId,
    MAX_EVENTS_PAGE,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{ApiError, ErrorBody};
use crate::extract::AuthenticatedSession;
use crate::state::AppState;

/// Default page size of `GET /me/events`.
pub const DEFAULT_EVENTS_PAGE: usize = 20;

/// How often a server deletes the events past their retention.
pub const PRUNE_INTERVAL: Duration = Duration::from_secs(60 * 60);

/// Query of `GET /me/events`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Events per page, 1 to 100 (default 20).
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl EventsQuery {
    /// The cursor and page size; 400 for a malformed cursor or a limit out of range.
    pub fn try_into_domain(self) -> Result<(Option<EventCursor>, usize), ApiError> {
        let limit = match self.limit {
            None => DEFAULT_EVENTS_PAGE,
            Some(n) if (1..=MAX_EVENTS_PAGE as u32).contains(&n) => n as usize,
            Some(_) => {
                return Err(ApiError::InvalidRequest(format!(
                    "limit must be between 1 and {MAX_EVENTS_PAGE}"
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

/// One entry of the security history.
#[derive(Debug, Serialize, ToSchema)]
pub struct SecurityEventDto {
    /// The event's id.
    #[schema(value_type = String, format = Uuid)]
    pub id: uuid::Uuid,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// What happened: `signup`, `verified`, `login_succeeded`, `login_failed`,
    /// `reauth_failed` (a wrong password or code inside a session), `reauth_throttled` (one
    /// refused by its budget before it was checked), `lockout`,
    /// `logout`, `logout_all`, `session_ended`, `password_changed`, `reset_requested`,
    /// `reset_completed`, `reset_failed` (a wrong reset code), `two_factor_enabled`, `two_factor_disabled`, `recovery_code_used`,
    /// `account_deleted`; what an administrator did: `account_disabled_by_admin`,
    /// `account_enabled_by_admin`, `role_changed_by_admin`, `account_deleted_by_admin`,
    /// `sessions_ended_by_admin`, `two_factor_reset_by_admin`; a change of address:
    /// `email_change_requested`, `email_changed`; and `passkey_added`, `passkey_removed`.
    #[schema(example = "login_failed")]
    pub kind: &'static str,
    /// `login_failed` only: `bad_credentials`, `unverified`, `throttled`,
    /// `second_factor_failed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, example = "bad_credentials")]
    pub reason: Option<&'static str>,
    /// The client's network: its address with the host bits cleared
    /// (`SECURITY_EVENT_IP_PREFIX_V4`, `SECURITY_EVENT_IP_PREFIX_V6`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, example = "203.0.113.0/24")]
    pub ip: Option<String>,
    /// The client's `User-Agent` (at most 256 characters).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub user_agent: Option<String>,
    /// The id of the request that caused it (as in the access log).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub request_id: Option<String>,
}

impl From<&SecurityEvent> for SecurityEventDto {
    fn from(e: &SecurityEvent) -> Self {
        Self {
            id: e.id,
            at: e.at,
            kind: e.kind.as_str(),
            reason: e.kind.reason().map(|r| r.as_str()),
            ip: e.ip.map(|ip| ip.to_string()),
            user_agent: e.user_agent.clone(),
            request_id: e.request_id.clone(),
        }
    }
}

/// `GET /me/events`.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventsResponse {
    /// The events, newest first.
    pub events: Vec<SecurityEventDto>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub next_cursor: Option<String>,
}

/// The account's recent security activity, newest first, a page at a time (`limit`, default
/// 20, at most 100; `cursor` from the previous page's `next_cursor`). Only the session user's
/// events; kept `SECURITY_EVENT_RETENTION_DAYS` days.
#[utoipa::path(get, path = "/me/events", tag = "account", security(("bearer" = []), ("cookie" = [])),
    params(EventsQuery),
    responses(
        (status = 200, body = EventsResponse, description = "A page of the account's security events"),
        (status = 400, body = ErrorBody, description = "`invalid_request`: a malformed `limit` or `cursor`"),
    ))]
pub async fn me_events(
    state: web::Data<AppState>,
    auth: AuthenticatedSession,
    // Wrapped so that a malformed query string gets the JSON 400 of every other bad input.
    query: Result<web::Query<EventsQuery>, actix_web::Error>,
) -> Result<HttpResponse, ApiError> {
    let query = query.map_err(|e| ApiError::InvalidRequest(e.to_string()))?;
    let (after, limit) = query.into_inner().try_into_domain()?;
    let page = state
        .service
        .security_events(auth.session.user.id, after, limit)
        .await
        .map_err(ApiError::from_failure)?;
    Ok(HttpResponse::Ok()
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .json(EventsResponse {
            events: page.events.iter().map(SecurityEventDto::from).collect(),
            next_cursor: page.next.map(|c| c.encode()),
        }))
}

/// Deletes the events past `retention` now and then every [`PRUNE_INTERVAL`], for as long as
/// the service lives. Every instance does it; deleting what another already deleted is
/// harmless.
pub fn spawn_pruner(
    service: Weak<AuthService>,
    retention: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(PRUNE_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(service) = service.upgrade() else {
                return;
            };
            prune_once(&service, retention).await;
        }
    })
}

async fn prune_once(service: &Arc<AuthService>, retention: Duration) {
    match service.prune_security_events(retention).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(deleted = n, "security events past their retention deleted"),
        Err(e) => tracing::warn!(error = %e, "security events not pruned; next try in an hour"),
    }
}

/// Events waiting for the writer; past this, new events are dropped (with a warning).
pub const EVENT_QUEUE: usize = 4096;

/// How long a reader waits for the events queued before it to be written.
const FLUSH_WAIT: Duration = Duration::from_secs(2);

enum Queued {
    Record(Box<SecurityEvent>),
    Flush(tokio::sync::oneshot::Sender<()>),
}

/// A [`SecurityEvents`] that hands each event to a writer task instead of writing it inside
/// the request, so that recording one takes the same (negligible) time as recording none.
/// Without it a failed login on an existing address would wait for a database write that a
/// failed login on an unknown address does not, and the answer time would tell the two apart.
///
/// `record` queues (up to [`EVENT_QUEUE`] events; when full it answers `Unavailable`, and the
/// service logs a warning and goes on); one task writes the queue in order. `list` first waits
/// (up to two seconds) until everything queued before it is written, so an account's history
/// always shows what the account just did. A stopping server [drains](EventDrain::drain) the
/// queue (within a budget) before it exits, so the events of its last requests are written
/// (and their webhooks queued); only what the budget or a store outage leaves is lost.
pub struct QueuedSecurityEvents {
    store: Arc<dyn SecurityEvents>,
    queue: tokio::sync::mpsc::Sender<Queued>,
}

impl std::fmt::Debug for QueuedSecurityEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueuedSecurityEvents")
            .field("free", &self.queue.capacity())
            .finish_non_exhaustive()
    }
}

impl QueuedSecurityEvents {
    /// Starts the writer task (on the current tokio runtime) in front of `store`. The task
    /// ends when this value is dropped.
    pub fn spawn(store: Arc<dyn SecurityEvents>) -> Self {
        let (queue, mut rx) = tokio::sync::mpsc::channel(EVENT_QUEUE);
        let writer = Arc::clone(&store);
        tokio::spawn(async move {
            while let Some(item) = rx.recv().await {
                match item {
                    Queued::Record(event) => {
                        if let Err(e) = writer.record(&event).await {
                            tracing::warn!(
                                error = %e,
                                user_id = %event.user_id,
                                event = event.kind.as_str(),
                                "security event not recorded"
                            );
                        }
                    }
                    Queued::Flush(done) => {
                        let _ = done.send(());
                    }
                }
            }
        });
        Self { store, queue }
    }

    /// Waits until the events queued so far are written (or [`FLUSH_WAIT`] passed).
    async fn flush(&self) {
        self.drain_handle().drain(FLUSH_WAIT).await;
    }

    /// A handle that waits for the queue to be written (for the server's shutdown).
    pub fn drain_handle(&self) -> EventDrain {
        EventDrain {
            queue: self.queue.clone(),
        }
    }
}

/// Waits for a [`QueuedSecurityEvents`]' writer to write what was queued.
#[derive(Clone)]
pub struct EventDrain {
    queue: tokio::sync::mpsc::Sender<Queued>,
}

impl std::fmt::Debug for EventDrain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventDrain")
            .field("queued", &(EVENT_QUEUE - self.queue.capacity()))
            .finish()
    }
}

impl EventDrain {
    /// Waits until every event queued before this call is written (the writer takes the
    /// queue in order), at most `budget`; whether it got there.
    pub async fn drain(&self, budget: Duration) -> bool {
        let (done, written) = tokio::sync::oneshot::channel();
        let wait =
            async { self.queue.send(Queued::Flush(done)).await.is_ok() && written.await.is_ok() };
        tokio::time::timeout(budget, wait).await.unwrap_or(false)
    }
}

#[async_trait::async_trait]
impl SecurityEvents for QueuedSecurityEvents {
    async fn record(&self, event: &SecurityEvent) -> Result<(), SecurityEventsError> {
        self.queue
            .try_send(Queued::Record(Box::new(event.clone())))
            .map_err(|e| {
                let why = match e {
                    tokio::sync::mpsc::error::TrySendError::Full(_) => "the event queue is full",
                    tokio::sync::mpsc::error::TrySendError::Closed(_) => "the event writer stopped",
                };
                SecurityEventsError::Unavailable(why.into())
            })
    }

    async fn list(
        &self,
        user: UserId,
        after: Option<EventCursor>,
        limit: usize,
    ) -> Result<Vec<SecurityEvent>, SecurityEventsError> {
        self.flush().await;
        self.store.list(user, after, limit).await
    }

    async fn prune(&self, before: DateTime<Utc>) -> Result<u64, SecurityEventsError> {
        self.store.prune(before).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use auth_core::SecurityEventKind;

    fn event(user: UserId, n: i64) -> SecurityEvent {
        SecurityEvent {
            id: uuid::Uuid::new_v4(),
            user_id: user,
            at: DateTime::<Utc>::from_timestamp(1_800_000_000 + n, 0).unwrap(),
            kind: SecurityEventKind::LoginSucceeded,
            ip: None,
            user_agent: None,
            request_id: None,
        }
    }

    #[tokio::test]
    async fn queued_events_are_written_in_order_and_read_back_at_once() {
        let store = Arc::new(auth_memory::MemorySecurityEvents::new());
        let queued = QueuedSecurityEvents::spawn(store.clone());
        let user = UserId::from_uuid(uuid::Uuid::new_v4());
        let written: Vec<SecurityEvent> = (0..50).map(|n| event(user, n)).collect();
        for e in &written {
            queued.record(e).await.unwrap();
        }
        let mut listed = queued.list(user, None, 100).await.unwrap();
        listed.reverse();
        assert_eq!(listed, written);
        assert_eq!(store.len(), 50);
    }

    /// A store that takes a while for each event.
    struct Slow(auth_memory::MemorySecurityEvents);

    #[async_trait::async_trait]
    impl SecurityEvents for Slow {
        async fn record(&self, e: &SecurityEvent) -> Result<(), SecurityEventsError> {
            tokio::time::sleep(Duration::from_millis(2)).await;
            self.0.record(e).await
        }
        async fn list(
            &self,
            user: UserId,
            after: Option<EventCursor>,
            limit: usize,
        ) -> Result<Vec<SecurityEvent>, SecurityEventsError> {
            self.0.list(user, after, limit).await
        }
        async fn prune(&self, before: DateTime<Utc>) -> Result<u64, SecurityEventsError> {
            self.0.prune(before).await
        }
    }

    /// Runs a server-like runtime that queues `n` events and stops, draining the queue first
    /// when `drain`; how many events were written.
    fn queue_then_stop(n: i64, drain: bool) -> usize {
        let store = auth_memory::MemorySecurityEvents::new();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let slow = Arc::new(Slow(store.clone()));
        runtime.block_on(async move {
            let queued = QueuedSecurityEvents::spawn(slow);
            let user = UserId::from_uuid(uuid::Uuid::new_v4());
            for i in 0..n {
                queued.record(&event(user, i)).await.unwrap();
            }
            if drain {
                assert!(queued.drain_handle().drain(Duration::from_secs(10)).await);
            }
        });
        // The runtime ends like the process's: its tasks, the writer too, are dropped.
        drop(runtime);
        store.len()
    }

    /// The events of a server's last requests must not be lost when it stops: its webhooks
    /// would be lost with them. Without the drain, a stopping runtime drops the queue.
    #[test]
    fn events_queued_before_a_shutdown_are_written_by_the_drain() {
        assert_eq!(queue_then_stop(200, true), 200);
        assert!(queue_then_stop(200, false) < 200);
    }

    #[tokio::test]
    async fn a_drain_gives_up_at_its_budget() {
        struct Stuck;
        #[async_trait::async_trait]
        impl SecurityEvents for Stuck {
            async fn record(&self, _: &SecurityEvent) -> Result<(), SecurityEventsError> {
                futures::future::pending().await
            }
            async fn list(
                &self,
                _: UserId,
                _: Option<EventCursor>,
                _: usize,
            ) -> Result<Vec<SecurityEvent>, SecurityEventsError> {
                Ok(vec![])
            }
            async fn prune(&self, _: DateTime<Utc>) -> Result<u64, SecurityEventsError> {
                Ok(0)
            }
        }
        let queued = QueuedSecurityEvents::spawn(Arc::new(Stuck));
        let user = UserId::from_uuid(uuid::Uuid::new_v4());
        queued.record(&event(user, 0)).await.unwrap();
        let start = tokio::time::Instant::now();
        assert!(
            !queued
                .drain_handle()
                .drain(Duration::from_millis(100))
                .await
        );
        assert!(start.elapsed() < Duration::from_secs(2));
    }

    #[tokio::test]
    async fn a_full_queue_refuses_instead_of_waiting() {
        struct Stuck;
        #[async_trait::async_trait]
        impl SecurityEvents for Stuck {
            async fn record(&self, _: &SecurityEvent) -> Result<(), SecurityEventsError> {
                futures::future::pending().await
            }
            async fn list(
                &self,
                _: UserId,
                _: Option<EventCursor>,
                _: usize,
            ) -> Result<Vec<SecurityEvent>, SecurityEventsError> {
                Ok(vec![])
            }
            async fn prune(&self, _: DateTime<Utc>) -> Result<u64, SecurityEventsError> {
                Ok(0)
            }
        }
        let queued = QueuedSecurityEvents::spawn(Arc::new(Stuck));
        let user = UserId::from_uuid(uuid::Uuid::new_v4());
        let mut refused = 0;
        for n in 0..(EVENT_QUEUE as i64 + 10) {
            if queued.record(&event(user, n)).await.is_err() {
                refused += 1;
            }
        }
        assert!((9..=10).contains(&refused), "{refused}");
    }
}

//! The security history: `GET /me/events` (the session user's events, newest first, a page at
//! a time) and the hourly pruning of events past `SECURITY_EVENT_RETENTION_DAYS`.

use std::sync::{Arc, Weak};
use std::time::Duration;

use actix_web::{web, HttpResponse};
use auth_core::{AuthService, EventCursor, SecurityEvent, MAX_EVENTS_PAGE};
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
    /// What happened: `signup`, `verified`, `login_succeeded`, `login_failed`, `lockout`,
    /// `logout`, `logout_all`, `session_ended`, `password_changed`, `reset_requested`,
    /// `reset_completed`, `two_factor_enabled`, `two_factor_disabled`, `recovery_code_used`,
    /// `account_deleted`.
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
pub fn spawn_pruner(service: Weak<AuthService>, retention: Duration) -> tokio::task::JoinHandle<()> {
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

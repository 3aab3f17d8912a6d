//! The security history: what the service records about each account, and how it is read.
//!
//! Recording is best effort: an event store that is down never turns an action that happened
//! into an error. The event is dropped and a warning logged (with the event's kind and user
//! id, never a secret); the action's own result stands. No event is written in the
//! transaction of the change it tells of, so all events follow one rule.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use tracing::warn;

use super::{AuthService, Dependency, Failure};
use crate::domain::email::EmailAddress;
use crate::domain::session::ClientInfo;
use crate::domain::user::UserId;
use crate::ports::{
    EventCursor, LoginFailure, SecurityEvent, SecurityEventKind, SecurityEvents,
    SecurityEventsError, TruncatedIp,
};

/// Largest page of [`AuthService::security_events`].
pub const MAX_EVENTS_PAGE: usize = 100;

/// How events are recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecurityEventConfig {
    /// Leading bits of an IPv4 client address kept (default 24; 0 keeps none, 32 all).
    pub ipv4_prefix: u8,
    /// Leading bits of an IPv6 client address kept (default 48; 0 keeps none, 128 all).
    pub ipv6_prefix: u8,
}

impl Default for SecurityEventConfig {
    fn default() -> Self {
        Self {
            ipv4_prefix: 24,
            ipv6_prefix: 48,
        }
    }
}

/// One page of an account's security history.
#[derive(Debug, Clone)]
pub struct EventPage {
    /// The events, newest first.
    pub events: Vec<SecurityEvent>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<EventCursor>,
}

/// The event store and how to record into it.
#[derive(Clone)]
pub(super) struct EventLog {
    store: Arc<dyn SecurityEvents>,
    config: SecurityEventConfig,
}

impl From<SecurityEventsError> for Failure {
    fn from(e: SecurityEventsError) -> Self {
        match e {
            SecurityEventsError::Unavailable(s) => Self::Unavailable(Dependency::SecurityEvents, s),
            SecurityEventsError::Other(s) => Self::Internal(Dependency::SecurityEvents, s),
        }
    }
}

impl AuthService {
    /// Records each account's security history in `store` (ASVS V16): signup, verification,
    /// logins (and failed logins of existing accounts, with a reason), lockouts, logouts,
    /// password changes and resets, second-factor changes, recovery-code use and deletion.
    /// Each event carries the time, the user id, the client's network (its address cut to
    /// the prefixes of `config`), user agent and request id; never a password, code, token or
    /// hash. A failed login for an address without an account records nothing.
    ///
    /// Recording never fails an action: when the store cannot take an event, a warning is
    /// logged and the action's result stands. Without it, nothing is recorded and
    /// [`AuthService::security_events`] returns empty pages.
    #[must_use]
    pub fn with_security_events(
        mut self,
        store: Arc<dyn SecurityEvents>,
        config: SecurityEventConfig,
    ) -> Self {
        self.events = Some(EventLog { store, config });
        self
    }

    /// Whether security events are recorded.
    pub fn records_security_events(&self) -> bool {
        self.events.is_some()
    }

    /// Records `kind` for `user`, as done by `client` (best effort: see the module docs).
    pub(super) async fn record_event(
        &self,
        user: UserId,
        kind: SecurityEventKind,
        client: &ClientInfo,
    ) {
        let Some(log) = &self.events else {
            return;
        };
        let event = SecurityEvent {
            id: self.ports.random.uuid(),
            user_id: user,
            at: self.ports.clock.now().trunc_subsecs(6),
            kind,
            ip: client
                .ip
                .map(|ip| TruncatedIp::new(ip, log.config.ipv4_prefix, log.config.ipv6_prefix)),
            user_agent: client.user_agent.as_ref().map(|ua| {
                ua.chars()
                    .filter(|c| !c.is_control())
                    .take(ClientInfo::MAX_USER_AGENT)
                    .collect()
            }),
            request_id: client.request_id.clone(),
        };
        if let Err(e) = log.store.record(&event).await {
            warn!(
                error = %e,
                user_id = %user,
                event = kind.as_str(),
                "security event not recorded"
            );
        }
    }

    /// A failed login on `email` (a budget refused it, or a login code was wrong): recorded
    /// for the account of `email`, if it has one (one lookup, for every address alike, made
    /// only when events are recorded).
    pub(super) async fn record_failed_login(
        &self,
        email: &EmailAddress,
        reason: LoginFailure,
        client: &ClientInfo,
    ) {
        self.record_for_address(email, SecurityEventKind::LoginFailed(reason), client)
            .await;
    }

    /// Records `kind` on the account with the address `email`, if there is one. The address
    /// is looked up whether or not an account has it (the same work either way); the event
    /// is written off the request's path.
    pub(super) async fn record_for_address(
        &self,
        email: &EmailAddress,
        kind: SecurityEventKind,
        client: &ClientInfo,
    ) {
        if self.events.is_none() {
            return;
        }
        match self.ports.users.find_by_email(email).await {
            Ok(Some(creds)) => self.record_event(creds.user.id, kind, client).await,
            Ok(None) => {}
            Err(e) => warn!(error = %e, event = kind.as_str(), "event not recorded"),
        }
    }

    /// One page of `user`'s security history, newest first: at most `limit` (1 to
    /// [`MAX_EVENTS_PAGE`]) after `after`, and the cursor of the next page when there is one.
    /// Empty without an event store. Takes any user id, so that an operator's tools can read
    /// any account's history; an HTTP endpoint for users must pass the session's user.
    pub async fn security_events(
        &self,
        user: UserId,
        after: Option<EventCursor>,
        limit: usize,
    ) -> Result<EventPage, Failure> {
        let Some(log) = &self.events else {
            return Ok(EventPage {
                events: Vec::new(),
                next: None,
            });
        };
        let limit = limit.clamp(1, MAX_EVENTS_PAGE);
        let mut events = log.store.list(user, after, limit + 1).await?;
        // Only this user's, in order, after the cursor, whatever the store returned.
        events.retain(|e| e.user_id == user && after.is_none_or(|c| c.precedes(e)));
        events.sort_by(|a, b| b.at.cmp(&a.at).then(b.id.cmp(&a.id)));
        let more = events.len() > limit;
        events.truncate(limit);
        let next = match (more, events.last()) {
            (true, Some(last)) => Some(EventCursor::after(last)),
            _ => None,
        };
        Ok(EventPage { events, next })
    }

    /// Deletes the events older than `retention` (of every account); returns how many. Zero
    /// without an event store.
    pub async fn prune_security_events(&self, retention: Duration) -> Result<u64, Failure> {
        let Some(log) = &self.events else {
            return Ok(0);
        };
        let before = chrono::TimeDelta::from_std(retention)
            .ok()
            .and_then(|r| self.ports.clock.now().checked_sub_signed(r))
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        Ok(log.store.prune(before).await?)
    }
}

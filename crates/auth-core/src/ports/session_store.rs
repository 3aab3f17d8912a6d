use std::time::Duration;

use super::BoxError;
use crate::domain::email::EmailAddress;
use crate::domain::session::{Session, SessionId, TokenHash};
use crate::domain::user::UserId;

/// Largest `limit` a [`SessionStore::list_for_user`] call is given.
pub const MAX_SESSIONS_PAGE: usize = 100;

/// One page of a user's sessions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionPage {
    /// The sessions, newest first.
    pub sessions: Vec<Session>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<SessionCursor>,
}

/// Where a listing of a user's sessions continues: after the entry with this position and
/// session id. The position is the store's own (a later login has a higher one; the Redis
/// adapter uses its clock in microseconds, the memory adapter a counter), so a cursor is only
/// meaningful to the store that made it. The order is position descending (newest first), then
/// session id descending. Opaque to clients: [`SessionCursor::encode`] and
/// [`SessionCursor::parse`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionCursor {
    position: i64,
    id: SessionId,
}

impl SessionCursor {
    /// The cursor after the entry with this position and id.
    pub fn new(position: i64, id: SessionId) -> Self {
        Self { position, id }
    }

    /// The store's position of the last entry of the previous page.
    pub fn position(&self) -> i64 {
        self.position
    }

    /// The session id of the last entry of the previous page.
    pub fn id(&self) -> SessionId {
        self.id
    }

    /// The text form: the position, a dot, the session id (32 hex digits).
    pub fn encode(&self) -> String {
        format!("{}.{}", self.position, self.id.as_uuid().simple())
    }

    /// Parses [`SessionCursor::encode`]'s form; `None` for anything else.
    pub fn parse(raw: &str) -> Option<Self> {
        let (position, id) = raw.split_once('.')?;
        if position.is_empty()
            || position.len() > 19
            || !position.bytes().all(|b| b.is_ascii_digit())
        {
            return None;
        }
        Some(Self {
            position: position.parse().ok()?,
            id: SessionId::parse(id)?,
        })
    }
}

/// Errors of [`SessionStore`].
#[derive(Debug, thiserror::Error)]
pub enum SessionStoreError {
    /// The store cannot be reached or did not answer in time.
    #[error("the session store is unavailable")]
    Unavailable(#[source] BoxError),
    /// The store answered with an error that is not an outage (e.g. a corrupt record).
    #[error("the session store failed")]
    Other(#[source] BoxError),
}

/// A keyed hash that names a device of an account (see `AuthService`'s new-device notice):
/// the store never sees what it was made from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DeviceKey(pub [u8; 32]);

impl DeviceKey {
    /// Lower-case hex, for storage keys.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

/// What [`SessionStore::remember_device`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceSighting {
    /// The device was among the account's devices.
    Known,
    /// The device is new, and the account had others.
    New,
    /// The device is the first the account has (nothing to compare with).
    First,
}

/// Server-side sessions, keyed by the SHA-256 of their token.
///
/// A store never sees a raw token. Entries expire on their own after the `ttl` given at insert
/// (or at the last [`touch`](SessionStore::touch)), and disappear from the per-user index when
/// they do.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait::async_trait]
pub trait SessionStore: Send + Sync + 'static {
    /// Stores a new session that expires after `ttl`, and indexes it under its user (newer
    /// than every session indexed before). An adapter configured with a cap on sessions per
    /// user ends the user's oldest sessions beyond it, a bounded number per call.
    async fn insert(&self, session: &Session, ttl: Duration) -> Result<(), SessionStoreError>;

    /// The live session with this token hash, `Ok(None)` for an unknown, expired or revoked one.
    /// This is the hot path: one round trip to the store.
    async fn get(&self, token_hash: &TokenHash) -> Result<Option<Session>, SessionStoreError>;

    /// Records a use: stores `session` (same token hash, a later `last_seen_at`) over the live
    /// session and gives it `ttl` more to live, counted from now (the service never passes
    /// more than what is left of the absolute lifetime). MUST NOT bring back a session that was
    /// revoked or has expired: `Ok(false)` then, and nothing is stored. Not on the hot path:
    /// the service calls it at most once per session every minute or so.
    async fn touch(&self, session: &Session, ttl: Duration) -> Result<bool, SessionStoreError>;

    /// One page of the user's live sessions, newest first (by the store's position, see
    /// [`SessionCursor`]): at most `limit` (1 to [`MAX_SESSIONS_PAGE`]; the store clamps it)
    /// after `after` (`None`: from the newest). `next` is `None` exactly when nothing follows
    /// the page; a page MAY hold fewer than `limit` sessions (even none) when the store skipped
    /// and dropped dead index entries, and then `next` says where to go on. A session that
    /// stays live while the pages are read is listed exactly once; one inserted meanwhile may
    /// be missed (it is newer than the pages already read). The cost of a page MUST be bounded
    /// by `limit`, not by the number of the user's sessions: this is on the request path.
    async fn list_for_user(
        &self,
        user_id: UserId,
        after: Option<SessionCursor>,
        limit: usize,
    ) -> Result<SessionPage, SessionStoreError>;

    /// Revokes the session with this token hash. `Ok(false)` when there was none.
    async fn delete(&self, token_hash: &TokenHash) -> Result<bool, SessionStoreError>;

    /// Revokes the session with this public id if, and only if, it belongs to `user_id`.
    /// MUST return `Ok(false)` (and change nothing) for an unknown id or another user's session.
    async fn delete_by_id(
        &self,
        user_id: UserId,
        session_id: SessionId,
    ) -> Result<bool, SessionStoreError>;

    /// Revokes every session of the user except `keep`, and returns how many were revoked.
    /// The work is O(sessions of the user); an adapter on a shared single-threaded server
    /// (Redis) MUST do it in bounded steps so that other users' requests are not held up.
    async fn delete_all_for_user(
        &self,
        user_id: UserId,
        keep: Option<SessionId>,
    ) -> Result<u64, SessionStoreError>;

    /// The revocation epoch of the account with this address: a counter that
    /// [`SessionStore::bump_revocation_epoch`] raises. `Ok(0)` when it was never raised (or
    /// its entry expired). Read by login before the password is checked and again after the
    /// new session is stored: a changed epoch means a revocation ran in between, and the new
    /// session is deleted again (see `AuthService::login`).
    async fn revocation_epoch(&self, email: &EmailAddress) -> Result<u64, SessionStoreError>;

    /// Raises the revocation epoch of the address by one, atomically; the service calls it
    /// before every sweep of a user's sessions (logout everywhere, password change or reset,
    /// account deletion). The entry MUST live at least as long as a session may (the store
    /// may let it expire after that).
    async fn bump_revocation_epoch(&self, email: &EmailAddress) -> Result<(), SessionStoreError>;

    /// Opens the administrative privilege window of the session with this public id until
    /// `until` (replacing an earlier one); the entry MAY be dropped after `ttl`. Granted
    /// after the session's owner gave the password again (see `AuthService::admin_reauthenticate`).
    async fn open_privilege_window(
        &self,
        session_id: SessionId,
        until: chrono::DateTime<chrono::Utc>,
        ttl: Duration,
    ) -> Result<(), SessionStoreError>;

    /// When the privilege window of the session with this public id closes; `Ok(None)` when
    /// none was opened (or its entry was dropped). The service compares it with its clock.
    async fn privilege_window(
        &self,
        session_id: SessionId,
    ) -> Result<Option<chrono::DateTime<chrono::Utc>>, SessionStoreError>;

    /// Records that the account `user_id` was used from the device `device` at `seen_at`,
    /// keeping at most `keep` devices per account (those seen least recently go first) for
    /// `ttl` after the last sighting. Says whether the device was known, new, or the first
    /// the account has. Concurrent calls for one new device MUST NOT both answer `New`.
    async fn remember_device(
        &self,
        user_id: UserId,
        device: &DeviceKey,
        seen_at: chrono::DateTime<chrono::Utc>,
        keep: usize,
        ttl: Duration,
    ) -> Result<DeviceSighting, SessionStoreError>;

    /// Checks that the store answers. MUST return [`SessionStoreError::Unavailable`] when not.
    async fn ping(&self) -> Result<(), SessionStoreError>;
}

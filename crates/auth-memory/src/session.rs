//! [`SessionStore`] in memory.

use std::time::{Duration, Instant};

use auth_core::{
    EmailAddress, Session, SessionCursor, SessionId, SessionPage, SessionStore, SessionStoreError,
    TokenHash, UserId, MAX_SESSIONS_PAGE,
};

use crate::state::State;
use crate::MemoryStore;

#[async_trait::async_trait]
impl SessionStore for MemoryStore {
    async fn insert(&self, session: &Session, ttl: Duration) -> Result<(), SessionStoreError> {
        let now = Instant::now();
        let cap = self.max_sessions_per_user();
        let mut state = self.lock();
        if cap > 0 {
            // At most `cap` live sessions to look at: the cap bounds this scan too. Oldest
            // first, as in the Redis adapter.
            let live: Vec<_> = state
                .live_hashes_of(session.user.id, now)
                .into_iter()
                .filter(|hash| *hash != session.token_hash.0)
                .collect();
            if live.len() >= cap {
                for hash in live.iter().take(live.len() + 1 - cap) {
                    state.remove_session(hash);
                }
            }
        }
        state.insert_session(session.clone(), State::deadline_after(now, ttl));
        Ok(())
    }

    async fn get(&self, token_hash: &TokenHash) -> Result<Option<Session>, SessionStoreError> {
        let now = Instant::now();
        let mut state = self.lock();
        Ok(state.live_session(&token_hash.0, now).cloned())
    }

    async fn touch(&self, session: &Session, ttl: Duration) -> Result<bool, SessionStoreError> {
        let now = Instant::now();
        let mut state = self.lock();
        let live = state.live_session(&session.token_hash.0, now).is_some();
        if live {
            state.insert_session(session.clone(), State::deadline_after(now, ttl));
        }
        Ok(live)
    }

    async fn list_for_user(
        &self,
        user_id: UserId,
        after: Option<SessionCursor>,
        limit: usize,
    ) -> Result<SessionPage, SessionStoreError> {
        let limit = limit.clamp(1, MAX_SESSIONS_PAGE);
        let now = Instant::now();
        let mut state = self.lock();
        // One entry past the page says whether another page follows.
        let window: Vec<((i64, SessionId), [u8; 32])> = match state.by_user.get(&user_id) {
            None => Vec::new(),
            Some(index) => {
                let newest_first = match after {
                    Some(c) => index.range(..(c.position(), c.id())),
                    None => index.range(..),
                };
                newest_first
                    .rev()
                    .take(limit + 1)
                    .map(|(k, h)| (*k, *h))
                    .collect()
            }
        };
        let next = window
            .get(limit)
            .and(window.get(limit - 1))
            .map(|((position, id), _)| SessionCursor::new(*position, *id));
        let sessions = window
            .iter()
            .take(limit)
            .filter_map(|(_, hash)| state.live_session(hash, now).cloned())
            .collect();
        Ok(SessionPage { sessions, next })
    }

    async fn open_privilege_window(
        &self,
        session_id: SessionId,
        until: chrono::DateTime<chrono::Utc>,
        ttl: Duration,
    ) -> Result<(), SessionStoreError> {
        let now = Instant::now();
        let mut state = self.lock();
        // Windows are few (administrators' re-authentications): dropping the dead ones here
        // keeps the map bounded without a sweeper.
        state.privileges.retain(|_, (_, drop_at)| *drop_at > now);
        let drop_at = now.checked_add(ttl).unwrap_or(now);
        state.privileges.insert(session_id, (until, drop_at));
        Ok(())
    }

    async fn privilege_window(
        &self,
        session_id: SessionId,
    ) -> Result<Option<chrono::DateTime<chrono::Utc>>, SessionStoreError> {
        let now = Instant::now();
        Ok(self
            .lock()
            .privileges
            .get(&session_id)
            .filter(|(_, drop_at)| *drop_at > now)
            .map(|(until, _)| *until))
    }

    async fn remember_device(
        &self,
        user_id: UserId,
        device: &auth_core::DeviceKey,
        seen_at: chrono::DateTime<chrono::Utc>,
        keep: usize,
        ttl: Duration,
    ) -> Result<auth_core::DeviceSighting, SessionStoreError> {
        use auth_core::DeviceSighting;
        let now = Instant::now();
        let mut state = self.lock();
        let entry = state
            .devices
            .entry(user_id)
            .or_insert_with(|| (Vec::new(), now));
        if entry.1 <= now {
            entry.0.clear();
        }
        entry.1 = State::deadline_after(now, ttl);
        let list = &mut entry.0;
        let sighting = match list.iter_mut().find(|(key, _)| key == device) {
            Some(known) => {
                known.1 = known.1.max(seen_at);
                DeviceSighting::Known
            }
            None => {
                let first = list.is_empty();
                list.push((*device, seen_at));
                if first {
                    DeviceSighting::First
                } else {
                    DeviceSighting::New
                }
            }
        };
        if list.len() > keep {
            list.sort_by_key(|(_, at)| std::cmp::Reverse(*at));
            list.truncate(keep);
        }
        Ok(sighting)
    }

    async fn revocation_epoch(&self, email: &EmailAddress) -> Result<u64, SessionStoreError> {
        Ok(self.lock().epochs.get(email).copied().unwrap_or(0))
    }

    async fn bump_revocation_epoch(&self, email: &EmailAddress) -> Result<(), SessionStoreError> {
        let mut state = self.lock();
        let epoch = state.epochs.entry(email.clone()).or_insert(0);
        *epoch = epoch.wrapping_add(1);
        Ok(())
    }

    async fn delete(&self, token_hash: &TokenHash) -> Result<bool, SessionStoreError> {
        let now = Instant::now();
        let mut state = self.lock();
        // An expired session is not "revoked": it was already gone.
        let live = state.live_session(&token_hash.0, now).is_some();
        if live {
            state.remove_session(&token_hash.0);
        }
        Ok(live)
    }

    async fn delete_by_id(
        &self,
        user_id: UserId,
        session_id: SessionId,
    ) -> Result<bool, SessionStoreError> {
        let now = Instant::now();
        let mut state = self.lock();
        // Looked up in this user's index only, so another user's session is never found.
        let target = state.by_user.get(&user_id).and_then(|index| {
            index
                .iter()
                .find(|((_, id), _)| *id == session_id)
                .map(|(_, hash)| *hash)
        });
        let Some(hash) = target else {
            return Ok(false);
        };
        let theirs = state
            .live_session(&hash, now)
            .is_some_and(|s| s.id == session_id && s.user.id == user_id);
        Ok(theirs && state.remove_session(&hash).is_some())
    }

    async fn delete_all_for_user(
        &self,
        user_id: UserId,
        keep: Option<SessionId>,
    ) -> Result<u64, SessionStoreError> {
        let now = Instant::now();
        let mut state = self.lock();
        let mut revoked = 0u64;
        for hash in state.live_hashes_of(user_id, now) {
            let kept = state
                .sessions
                .get(&hash)
                .is_some_and(|e| Some(e.session.id) == keep);
            if !kept && state.remove_session(&hash).is_some() {
                revoked += 1;
            }
        }
        Ok(revoked)
    }

    async fn ping(&self) -> Result<(), SessionStoreError> {
        Ok(())
    }
}

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use auth_core::{
    DateTime, PasskeyChallengeStore, PasskeyChallengeStoreError, PasskeyId, PasskeyName,
    PasskeyStore, PasskeyStoreError, StoredPasskey, TokenHash, UserId, Utc,
};

/// In-process [`PasskeyStore`]: passkeys in this process's memory (one instance only, lost on
/// restart). Every operation takes one lock, so the unique credential id and the counter's
/// compare-and-set hold under parallel calls.
#[derive(Clone, Default)]
pub struct MemoryPasskeyStore(Arc<Mutex<Vec<StoredPasskey>>>);

impl MemoryPasskeyStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Deletes every passkey of `user`: the account is gone.
    pub(crate) fn forget(&self, user: UserId) {
        self.with(|rows| rows.retain(|p| p.user_id != user));
    }

    fn with<T>(&self, f: impl FnOnce(&mut Vec<StoredPasskey>) -> T) -> T {
        f(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl std::fmt::Debug for MemoryPasskeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryPasskeyStore").finish_non_exhaustive()
    }
}

#[auth_core::async_trait]
impl PasskeyStore for MemoryPasskeyStore {
    async fn insert(&self, passkey: &StoredPasskey) -> Result<(), PasskeyStoreError> {
        self.with(|rows| {
            if rows
                .iter()
                .any(|p| p.credential_id == passkey.credential_id || p.id == passkey.id)
            {
                return Err(PasskeyStoreError::Duplicate);
            }
            rows.push(passkey.clone());
            Ok(())
        })
    }

    async fn list(&self, user: UserId) -> Result<Vec<StoredPasskey>, PasskeyStoreError> {
        let mut list: Vec<StoredPasskey> =
            self.with(|rows| rows.iter().filter(|p| p.user_id == user).cloned().collect());
        list.sort_by_key(|p| (p.created_at, p.id.as_uuid()));
        Ok(list)
    }

    async fn find_by_credential_id(
        &self,
        credential_id: &[u8],
    ) -> Result<Option<StoredPasskey>, PasskeyStoreError> {
        Ok(self.with(|rows| {
            rows.iter()
                .find(|p| p.credential_id == credential_id)
                .cloned()
        }))
    }

    async fn rename(
        &self,
        user: UserId,
        id: PasskeyId,
        name: &PasskeyName,
    ) -> Result<bool, PasskeyStoreError> {
        Ok(self.with(
            |rows| match rows.iter_mut().find(|p| p.id == id && p.user_id == user) {
                Some(p) => {
                    p.name = name.clone();
                    true
                }
                None => false,
            },
        ))
    }

    async fn delete(&self, user: UserId, id: PasskeyId) -> Result<bool, PasskeyStoreError> {
        Ok(self.with(|rows| {
            let before = rows.len();
            rows.retain(|p| !(p.id == id && p.user_id == user));
            rows.len() < before
        }))
    }

    async fn record_use(
        &self,
        id: PasskeyId,
        expected_count: u32,
        new_count: u32,
        credential: &[u8],
        at: DateTime<Utc>,
    ) -> Result<bool, PasskeyStoreError> {
        Ok(self.with(|rows| {
            match rows
                .iter_mut()
                .find(|p| p.id == id && p.sign_count == expected_count)
            {
                Some(p) => {
                    p.sign_count = new_count;
                    p.credential = credential.to_vec();
                    p.last_used_at = Some(at);
                    true
                }
                None => false,
            }
        }))
    }
}

/// In-process [`PasskeyChallengeStore`] (one instance only): ceremonies in flight, each until
/// its deadline; expired ones are dropped whenever a new one is stored.
#[derive(Clone, Default)]
pub struct MemoryPasskeyChallenges(Arc<Mutex<Ceremonies>>);

/// Sealed ceremonies by key hash, with their deadlines.
type Ceremonies = HashMap<[u8; 32], (Vec<u8>, DateTime<Utc>)>;

impl MemoryPasskeyChallenges {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl std::fmt::Debug for MemoryPasskeyChallenges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryPasskeyChallenges")
            .finish_non_exhaustive()
    }
}

#[auth_core::async_trait]
impl PasskeyChallengeStore for MemoryPasskeyChallenges {
    async fn put(
        &self,
        key: &TokenHash,
        sealed: &[u8],
        expires_at: DateTime<Utc>,
    ) -> Result<(), PasskeyChallengeStoreError> {
        let now = Utc::now();
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        map.retain(|_, (_, deadline)| *deadline > now);
        map.insert(key.0, (sealed.to_vec(), expires_at));
        Ok(())
    }

    async fn take(&self, key: &TokenHash) -> Result<Option<Vec<u8>>, PasskeyChallengeStoreError> {
        let taken = self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&key.0);
        Ok(taken
            .filter(|(_, deadline)| *deadline > Utc::now())
            .map(|(sealed, _)| sealed))
    }
}

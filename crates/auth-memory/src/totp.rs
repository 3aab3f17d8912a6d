use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use auth_core::{
    DateTime, MfaChallenge, RecoveryCodeHash, StoredTotp, TokenHash, TotpStore, TotpStoreError,
    UserId, Utc,
};

#[derive(Default)]
struct Row {
    sealed_secret: Vec<u8>,
    enabled_at: Option<DateTime<Utc>>,
    last_step: Option<u64>,
    codes: Vec<RecoveryCodeHash>,
}

#[derive(Default)]
struct State {
    rows: HashMap<UserId, Row>,
    challenges: HashMap<[u8; 32], MfaChallenge>,
}

/// In-process [`TotpStore`]: second factors in this process's memory (one instance only,
/// lost on restart). Every operation takes one lock, so each compare-and-set is atomic.
#[derive(Clone, Default)]
pub struct MemoryTotpStore(Arc<Mutex<State>>);

impl MemoryTotpStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Deletes everything of `user`: the account is gone.
    pub(crate) fn forget(&self, user: UserId) {
        self.with(|s| {
            s.rows.remove(&user);
            s.challenges.retain(|_, c| c.user_id != user);
        });
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl std::fmt::Debug for MemoryTotpStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryTotpStore").finish_non_exhaustive()
    }
}

#[auth_core::async_trait]
impl TotpStore for MemoryTotpStore {
    async fn get(&self, user: UserId) -> Result<Option<StoredTotp>, TotpStoreError> {
        Ok(self.with(|s| {
            s.rows.get(&user).map(|r| StoredTotp {
                sealed_secret: r.sealed_secret.clone(),
                enabled_at: r.enabled_at,
                last_step: r.last_step,
                recovery_codes_left: u32::try_from(r.codes.len()).unwrap_or(u32::MAX),
            })
        }))
    }

    async fn put_pending(
        &self,
        user: UserId,
        sealed_secret: &[u8],
        _at: DateTime<Utc>,
    ) -> Result<bool, TotpStoreError> {
        Ok(self.with(|s| {
            if s.rows.get(&user).is_some_and(|r| r.enabled_at.is_some()) {
                return false;
            }
            s.rows.insert(
                user,
                Row {
                    sealed_secret: sealed_secret.to_vec(),
                    ..Row::default()
                },
            );
            true
        }))
    }

    async fn enable(
        &self,
        user: UserId,
        step: u64,
        codes: &[RecoveryCodeHash],
        at: DateTime<Utc>,
    ) -> Result<bool, TotpStoreError> {
        Ok(self.with(|s| match s.rows.get_mut(&user) {
            Some(r) if r.enabled_at.is_none() => {
                r.enabled_at = Some(at);
                r.last_step = Some(step);
                r.codes = codes.to_vec();
                true
            }
            _ => false,
        }))
    }

    async fn accept_step(&self, user: UserId, step: u64) -> Result<bool, TotpStoreError> {
        Ok(self.with(|s| match s.rows.get_mut(&user) {
            Some(r) if r.enabled_at.is_some() && r.last_step.is_none_or(|l| l < step) => {
                r.last_step = Some(step);
                true
            }
            _ => false,
        }))
    }

    async fn use_recovery_code(
        &self,
        user: UserId,
        code: &RecoveryCodeHash,
    ) -> Result<Option<u32>, TotpStoreError> {
        Ok(self.with(|s| {
            let r = s.rows.get_mut(&user).filter(|r| r.enabled_at.is_some())?;
            let i = r.codes.iter().position(|c| c == code)?;
            r.codes.swap_remove(i);
            Some(u32::try_from(r.codes.len()).unwrap_or(u32::MAX))
        }))
    }

    async fn replace_recovery_codes(
        &self,
        user: UserId,
        codes: &[RecoveryCodeHash],
    ) -> Result<bool, TotpStoreError> {
        Ok(self.with(|s| match s.rows.get_mut(&user) {
            Some(r) if r.enabled_at.is_some() => {
                r.codes = codes.to_vec();
                true
            }
            _ => false,
        }))
    }

    async fn disable(&self, user: UserId) -> Result<bool, TotpStoreError> {
        Ok(self.with(|s| {
            s.challenges.retain(|_, c| c.user_id != user);
            s.rows.remove(&user).is_some()
        }))
    }

    async fn put_challenge(&self, challenge: &MfaChallenge) -> Result<(), TotpStoreError> {
        self.with(|s| {
            let now = Utc::now();
            s.challenges.retain(|_, c| c.expires_at > now);
            s.challenges
                .insert(challenge.token_hash.0, challenge.clone());
        });
        Ok(())
    }

    async fn get_challenge(
        &self,
        token_hash: &TokenHash,
    ) -> Result<Option<MfaChallenge>, TotpStoreError> {
        Ok(self.with(|s| s.challenges.get(&token_hash.0).cloned()))
    }

    async fn take_challenge(&self, token_hash: &TokenHash) -> Result<bool, TotpStoreError> {
        Ok(self.with(|s| s.challenges.remove(&token_hash.0).is_some()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use auth_core::{ClientBinding, Utc};
    use futures::executor::block_on;

    fn user() -> UserId {
        UserId::from_uuid(uuid::Uuid::from_u128(7))
    }

    #[test]
    fn steps_codes_and_challenges_each_have_one_winner() {
        let store = MemoryTotpStore::new();
        let now = Utc::now();
        let codes = [RecoveryCodeHash([1; 32]), RecoveryCodeHash([2; 32])];
        assert!(block_on(store.put_pending(user(), b"sealed", now)).unwrap());
        assert!(
            !block_on(store.accept_step(user(), 5)).unwrap(),
            "off: no step"
        );
        assert!(block_on(store.enable(user(), 5, &codes, now)).unwrap());
        assert!(
            !block_on(store.enable(user(), 6, &codes, now)).unwrap(),
            "once"
        );
        assert!(
            !block_on(store.put_pending(user(), b"other", now)).unwrap(),
            "on: kept"
        );
        assert!(
            !block_on(store.accept_step(user(), 5)).unwrap(),
            "the confirming step"
        );
        assert!(block_on(store.accept_step(user(), 6)).unwrap());
        assert!(!block_on(store.accept_step(user(), 6)).unwrap(), "replay");
        assert_eq!(
            block_on(store.use_recovery_code(user(), &codes[0])).unwrap(),
            Some(1)
        );
        assert_eq!(
            block_on(store.use_recovery_code(user(), &codes[0])).unwrap(),
            None
        );
        let challenge = MfaChallenge {
            token_hash: TokenHash([9; 32]),
            user_id: user(),
            client: ClientBinding([3; 32]),
            epoch: 0,
            expires_at: now + chrono::TimeDelta::minutes(5),
        };
        block_on(store.put_challenge(&challenge)).unwrap();
        assert_eq!(
            block_on(store.get_challenge(&challenge.token_hash)).unwrap(),
            Some(challenge.clone())
        );
        assert!(block_on(store.take_challenge(&challenge.token_hash)).unwrap());
        assert!(!block_on(store.take_challenge(&challenge.token_hash)).unwrap());
        assert!(block_on(store.disable(user())).unwrap());
        assert_eq!(block_on(store.get(user())).unwrap(), None);
    }
}

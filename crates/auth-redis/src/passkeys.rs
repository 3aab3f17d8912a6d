//! [`PasskeyChallengeStore`] on Redis: one key per ceremony in flight, expiring with it; a
//! take is one `GETDEL`, so of parallel takes exactly one gets the ceremony, on any instance.

use auth_core::{DateTime, PasskeyChallengeStore, PasskeyChallengeStoreError, TokenHash, Utc};

use crate::pool::{Failure, Request, Retry};
use crate::RedisStore;

impl From<Failure> for PasskeyChallengeStoreError {
    fn from(f: Failure) -> Self {
        match f {
            Failure::Unavailable(e) => Self::Unavailable(e),
            Failure::Other(e) => Self::Other(e),
        }
    }
}

#[async_trait::async_trait]
impl PasskeyChallengeStore for RedisStore {
    async fn put(
        &self,
        key: &TokenHash,
        sealed: &[u8],
        expires_at: DateTime<Utc>,
    ) -> Result<(), PasskeyChallengeStoreError> {
        let ttl_ms = (expires_at - Utc::now()).num_milliseconds().max(1);
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.inner.keys.passkey_ceremony(key))
            .arg(sealed)
            .arg("PX")
            .arg(ttl_ms);
        // Setting the same value twice changes nothing.
        self.inner
            .exec
            .run::<()>(Request::Cmd(&cmd), Retry::Idempotent)
            .await?;
        Ok(())
    }

    async fn take(&self, key: &TokenHash) -> Result<Option<Vec<u8>>, PasskeyChallengeStoreError> {
        let mut cmd = redis::cmd("GETDEL");
        cmd.arg(self.inner.keys.passkey_ceremony(key));
        // Never retried: a second GETDEL after a lost answer would find nothing.
        Ok(self
            .inner
            .exec
            .run::<Option<Vec<u8>>>(Request::Cmd(&cmd), Retry::Never)
            .await?)
    }
}

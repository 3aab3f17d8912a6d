//! Starting while PostgreSQL is down: the server starts anyway, `/ready` answers 503 naming the
//! user store, and the migrations are applied in the background as soon as the database
//! answers. Until then [`SchemaGate`] answers every call of the user repository with
//! `Unavailable` (503), never with a query against a schema that is not there yet.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use auth_core::{
    AccountSummary, EmailAddress, NewUser, PasswordHash, QueuedMail, Role, User, UserCredentials,
    UserId, UserQuery, UserRepoError, UserRepository,
};
use chrono::{DateTime, Utc};

/// Longest wait between two attempts to apply the migrations.
pub const MAX_RETRY_INTERVAL: Duration = Duration::from_secs(5);

/// A user repository that refuses every call (`Unavailable`) until its schema is migrated.
#[derive(Debug, Clone)]
pub struct SchemaGate<R> {
    inner: R,
    migrated: Arc<AtomicBool>,
}

/// Why [`SchemaGate`] refused a call.
#[derive(Debug, thiserror::Error)]
#[error("the database migrations have not been applied yet (PostgreSQL was down at start-up)")]
pub struct SchemaPending;

impl<R: UserRepository> SchemaGate<R> {
    /// Wraps `inner`; calls pass once `migrated` is set.
    pub fn new(inner: R, migrated: Arc<AtomicBool>) -> Self {
        Self { inner, migrated }
    }

    fn check(&self) -> Result<&R, UserRepoError> {
        if self.migrated.load(Ordering::Acquire) {
            Ok(&self.inner)
        } else {
            Err(UserRepoError::Unavailable(Box::new(SchemaPending)))
        }
    }
}

#[async_trait::async_trait]
impl<R: UserRepository> UserRepository for SchemaGate<R> {
    async fn create(&self, new_user: &NewUser) -> Result<User, UserRepoError> {
        self.check()?.create(new_user).await
    }

    async fn find_by_email(
        &self,
        email: &EmailAddress,
    ) -> Result<Option<UserCredentials>, UserRepoError> {
        self.check()?.find_by_email(email).await
    }

    async fn find_by_id(&self, id: UserId) -> Result<Option<UserCredentials>, UserRepoError> {
        self.check()?.find_by_id(id).await
    }

    async fn replace_unverified_password(
        &self,
        id: UserId,
        password_hash: &PasswordHash,
        at: DateTime<Utc>,
    ) -> Result<(), UserRepoError> {
        self.check()?
            .replace_unverified_password(id, password_hash, at)
            .await
    }

    async fn mark_verified(&self, id: UserId, at: DateTime<Utc>) -> Result<User, UserRepoError> {
        self.check()?.mark_verified(id, at).await
    }

    async fn set_email(
        &self,
        id: UserId,
        from: &EmailAddress,
        to: &EmailAddress,
        password_hash: &PasswordHash,
        at: DateTime<Utc>,
    ) -> Result<User, UserRepoError> {
        self.check()?
            .set_email(id, from, to, password_hash, at)
            .await
    }

    async fn set_password_hash(
        &self,
        id: UserId,
        email: &EmailAddress,
        password_hash: &PasswordHash,
        at: DateTime<Utc>,
    ) -> Result<(), UserRepoError> {
        self.check()?
            .set_password_hash(id, email, password_hash, at)
            .await
    }

    async fn delete(&self, id: UserId) -> Result<bool, UserRepoError> {
        self.check()?.delete(id).await
    }

    async fn ping(&self) -> Result<(), UserRepoError> {
        self.check()?.ping().await
    }

    async fn create_with_mail(
        &self,
        new_user: &NewUser,
        mail: &QueuedMail,
    ) -> Result<User, UserRepoError> {
        self.check()?.create_with_mail(new_user, mail).await
    }

    async fn replace_unverified_password_with_mail(
        &self,
        id: UserId,
        password_hash: &PasswordHash,
        at: DateTime<Utc>,
        mail: &QueuedMail,
    ) -> Result<(), UserRepoError> {
        self.check()?
            .replace_unverified_password_with_mail(id, password_hash, at, mail)
            .await
    }

    async fn set_password_hash_with_mail(
        &self,
        id: UserId,
        email: &EmailAddress,
        password_hash: &PasswordHash,
        at: DateTime<Utc>,
        mail: &QueuedMail,
    ) -> Result<(), UserRepoError> {
        self.check()?
            .set_password_hash_with_mail(id, email, password_hash, at, mail)
            .await
    }

    async fn delete_with_mail(&self, id: UserId, mail: &QueuedMail) -> Result<bool, UserRepoError> {
        self.check()?.delete_with_mail(id, mail).await
    }

    async fn list(&self, query: &UserQuery) -> Result<Vec<AccountSummary>, UserRepoError> {
        self.check()?.list(query).await
    }

    async fn set_role(&self, id: UserId, role: Role) -> Result<(), UserRepoError> {
        self.check()?.set_role(id, role).await
    }

    async fn set_disabled(
        &self,
        id: UserId,
        disabled_at: Option<DateTime<Utc>>,
    ) -> Result<(), UserRepoError> {
        self.check()?.set_disabled(id, disabled_at).await
    }

    async fn set_role_with_mail(
        &self,
        id: UserId,
        role: Role,
        mail: &QueuedMail,
    ) -> Result<(), UserRepoError> {
        self.check()?.set_role_with_mail(id, role, mail).await
    }

    async fn set_disabled_with_mail(
        &self,
        id: UserId,
        disabled_at: Option<DateTime<Utc>>,
        mail: &QueuedMail,
    ) -> Result<(), UserRepoError> {
        self.check()?
            .set_disabled_with_mail(id, disabled_at, mail)
            .await
    }
}

/// Runs `attempt` until it succeeds, waiting 0.5 s, 1 s, 2 s... (at most
/// [`MAX_RETRY_INTERVAL`]) between attempts, then sets `done`.
pub async fn retry_until_done<F, Fut, E>(mut attempt: F, done: Arc<AtomicBool>)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    let mut wait = Duration::from_millis(500);
    let mut failures = 0u32;
    loop {
        match attempt().await {
            Ok(()) => {
                done.store(true, Ordering::Release);
                return;
            }
            Err(e) => {
                failures += 1;
                // One line at the first failure, then one per minute or so: not one per try.
                if failures == 1 || failures.is_multiple_of(12) {
                    tracing::warn!(error = %e, failures, "database still unavailable; retrying");
                }
            }
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(MAX_RETRY_INTERVAL);
    }
}

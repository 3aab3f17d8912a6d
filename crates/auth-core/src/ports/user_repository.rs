use chrono::{DateTime, Utc};

use super::{BoxError, QueuedMail};
use crate::domain::email::EmailAddress;
use crate::domain::password::PasswordHash;
use crate::domain::user::{
    AccountSummary, NewUser, Role, User, UserCredentials, UserId, UserQuery,
};

/// Errors of [`UserRepository`].
#[derive(Debug, thiserror::Error)]
pub enum UserRepoError {
    /// A user with this (case-insensitive) address already exists.
    #[error("a user with this email address already exists")]
    Duplicate,
    /// The user the operation names does not exist (or is not in the required state).
    #[error("no such user")]
    NotFound,
    /// The store cannot be reached or did not answer in time.
    #[error("the user store is unavailable")]
    Unavailable(#[source] BoxError),
    /// The store answered with an error that is not an outage.
    #[error("the user store failed")]
    Other(#[source] BoxError),
}

/// Durable storage of user accounts.
///
/// Addresses are unique. The uniqueness check MUST be done by the store itself (a unique index),
/// never by a read before the write, so that two concurrent signups of one address yield one
/// account and one [`UserRepoError::Duplicate`].
///
/// # Mail in the change's own transaction
/// A store that keeps the mail outbox ([`OutboxStore`](super::OutboxStore)) in the same
/// database implements the `*_with_mail` methods: each makes its change and queues `mail` in
/// one transaction, so there is no account without its code mail and no notice of a change
/// that rolled back. When the change does not happen (an error, `NotFound`, `Ok(false)`),
/// the mail is not queued either; when the mail cannot be queued, the change is undone and the
/// error returned. The service calls them only when it was given the outbox with
/// [`AuthService::with_outbox`](crate::AuthService::with_outbox); their default
/// implementations refuse with [`UserRepoError::Other`], so a repository that wraps another
/// (say, to gate or instrument it) must forward them too.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait::async_trait]
pub trait UserRepository: Send + Sync + 'static {
    /// Creates an account and returns it.
    ///
    /// MUST return [`UserRepoError::Duplicate`] when an account with this address exists,
    /// including when it is being created concurrently.
    async fn create(&self, new_user: &NewUser) -> Result<User, UserRepoError>;

    /// The account with this address, with its password hash; `Ok(None)` when there is none.
    async fn find_by_email(
        &self,
        email: &EmailAddress,
    ) -> Result<Option<UserCredentials>, UserRepoError>;

    /// The account with this id, with its password hash; `Ok(None)` when there is none.
    async fn find_by_id(&self, id: UserId) -> Result<Option<UserCredentials>, UserRepoError>;

    /// Replaces the password of an account that is still unverified (a repeated signup).
    ///
    /// MUST return [`UserRepoError::NotFound`] when no such account exists or it is already
    /// verified; the check and the write are one atomic statement.
    async fn replace_unverified_password(
        &self,
        id: UserId,
        password_hash: &PasswordHash,
        at: DateTime<Utc>,
    ) -> Result<(), UserRepoError>;

    /// Marks the address as verified (keeping the first verification time if it already was)
    /// and returns the account. MUST return [`UserRepoError::NotFound`] for an unknown id.
    async fn mark_verified(&self, id: UserId, at: DateTime<Utc>) -> Result<User, UserRepoError>;

    /// Sets a new password hash, as a compare-and-set on the address: only while the account
    /// still has the address `email` (the one the caller read), so that a change of password
    /// and a change of address that race cannot both succeed ([`set_email`](Self::set_email)
    /// compares the password hash). MUST return [`UserRepoError::NotFound`] (and change
    /// nothing) for an unknown id or an account that has another address now.
    async fn set_password_hash(
        &self,
        id: UserId,
        email: &EmailAddress,
        password_hash: &PasswordHash,
        at: DateTime<Utc>,
    ) -> Result<(), UserRepoError>;

    /// Deletes the account for good; `Ok(false)` when there is none. Afterwards its address is
    /// free: a new signup with it creates a new account.
    async fn delete(&self, id: UserId) -> Result<bool, UserRepoError>;

    /// Checks that the store answers. MUST return [`UserRepoError::Unavailable`] when it does not.
    async fn ping(&self) -> Result<(), UserRepoError>;

    /// The accounts that match `query`'s filters, with addresses after `query.after`, in
    /// ascending (case-insensitive) address order, at most `query.limit` of them. An address
    /// prefix matches literally (`%`, `_` and `\` are ordinary characters) and ignores case.
    async fn list(&self, query: &UserQuery) -> Result<Vec<AccountSummary>, UserRepoError>;

    /// Sets the account's role. MUST return [`UserRepoError::NotFound`] for an unknown id.
    /// Leaves `updated_at` alone: it tracks the credentials (see `AuthService::resend_otp`).
    async fn set_role(&self, id: UserId, role: Role) -> Result<(), UserRepoError>;

    /// Disables the account (`disabled_at` is `Some`; an earlier time is kept when it was
    /// disabled already) or enables it (`None`). MUST return [`UserRepoError::NotFound`] for
    /// an unknown id. Leaves `updated_at` alone, like [`set_role`](Self::set_role).
    async fn set_disabled(
        &self,
        id: UserId,
        disabled_at: Option<DateTime<Utc>>,
    ) -> Result<(), UserRepoError>;

    /// Moves the account to the address `to`, setting `updated_at` to `at`, and returns it,
    /// as one compare-and-set: only while the account exists, is enabled, still has the
    /// address `from` and the password hash `password_hash` (a change of password, a reset
    /// or a disabling after the move was asked for makes it fail). The verification time is
    /// kept (the new address was proven with a code).
    ///
    /// A pending (unverified) account at `to` (case-insensitively) is deleted in the same
    /// transaction, and only when the move is made: whoever confirms the move holds the code
    /// mailed to `to`, so a signup there that nobody verified must not block it.
    ///
    /// MUST return [`UserRepoError::NotFound`] when any of these does not hold (nothing
    /// changes), and [`UserRepoError::Duplicate`] when another, verified account has the
    /// address `to` (case-insensitively), by the store's unique index, also when it is being
    /// taken concurrently (nothing changes, the pending account included).
    async fn set_email(
        &self,
        id: UserId,
        from: &EmailAddress,
        to: &EmailAddress,
        password_hash: &PasswordHash,
        at: DateTime<Utc>,
    ) -> Result<User, UserRepoError>;

    /// [`create`](Self::create) and queue `mail` in one transaction (see the trait's docs).
    async fn create_with_mail(
        &self,
        new_user: &NewUser,
        mail: &QueuedMail,
    ) -> Result<User, UserRepoError> {
        let _ = (new_user, mail);
        Err(no_outbox())
    }

    /// [`replace_unverified_password`](Self::replace_unverified_password) and queue `mail` in
    /// one transaction (see the trait's docs).
    async fn replace_unverified_password_with_mail(
        &self,
        id: UserId,
        password_hash: &PasswordHash,
        at: DateTime<Utc>,
        mail: &QueuedMail,
    ) -> Result<(), UserRepoError> {
        let _ = (id, password_hash, at, mail);
        Err(no_outbox())
    }

    /// [`set_password_hash`](Self::set_password_hash) and queue `mail` in one transaction (see
    /// the trait's docs).
    async fn set_password_hash_with_mail(
        &self,
        id: UserId,
        email: &EmailAddress,
        password_hash: &PasswordHash,
        at: DateTime<Utc>,
        mail: &QueuedMail,
    ) -> Result<(), UserRepoError> {
        let _ = (id, email, password_hash, at, mail);
        Err(no_outbox())
    }

    /// [`delete`](Self::delete) and queue `mail` in one transaction (see the trait's docs):
    /// `Ok(false)`, and nothing queued, when there is no such account.
    async fn delete_with_mail(&self, id: UserId, mail: &QueuedMail) -> Result<bool, UserRepoError> {
        let _ = (id, mail);
        Err(no_outbox())
    }

    /// [`set_role`](Self::set_role) and queue `mail` in one transaction (see the trait's docs).
    async fn set_role_with_mail(
        &self,
        id: UserId,
        role: Role,
        mail: &QueuedMail,
    ) -> Result<(), UserRepoError> {
        let _ = (id, role, mail);
        Err(no_outbox())
    }

    /// [`set_disabled`](Self::set_disabled) and queue `mail` in one transaction (see the
    /// trait's docs).
    async fn set_disabled_with_mail(
        &self,
        id: UserId,
        disabled_at: Option<DateTime<Utc>>,
        mail: &QueuedMail,
    ) -> Result<(), UserRepoError> {
        let _ = (id, disabled_at, mail);
        Err(no_outbox())
    }
}

fn no_outbox() -> UserRepoError {
    UserRepoError::Other(
        "this user repository keeps no mail outbox: give the service a plain mailer, or a \
         repository whose database holds the outbox"
            .into(),
    )
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;

    /// A repository that keeps no outbox: it implements only the required methods.
    struct WithoutOutbox;

    #[async_trait::async_trait]
    impl UserRepository for WithoutOutbox {
        async fn create(&self, _: &NewUser) -> Result<User, UserRepoError> {
            unreachable!("the mail methods must not fall back to the plain ones")
        }
        async fn find_by_email(
            &self,
            _: &EmailAddress,
        ) -> Result<Option<UserCredentials>, UserRepoError> {
            unreachable!()
        }
        async fn find_by_id(&self, _: UserId) -> Result<Option<UserCredentials>, UserRepoError> {
            unreachable!()
        }
        async fn replace_unverified_password(
            &self,
            _: UserId,
            _: &PasswordHash,
            _: DateTime<Utc>,
        ) -> Result<(), UserRepoError> {
            unreachable!()
        }
        async fn mark_verified(&self, _: UserId, _: DateTime<Utc>) -> Result<User, UserRepoError> {
            unreachable!()
        }
        async fn set_password_hash(
            &self,
            _: UserId,
            _: &EmailAddress,
            _: &PasswordHash,
            _: DateTime<Utc>,
        ) -> Result<(), UserRepoError> {
            unreachable!()
        }
        async fn delete(&self, _: UserId) -> Result<bool, UserRepoError> {
            unreachable!()
        }
        async fn ping(&self) -> Result<(), UserRepoError> {
            unreachable!()
        }
        async fn list(&self, _: &UserQuery) -> Result<Vec<AccountSummary>, UserRepoError> {
            unreachable!()
        }
        async fn set_role(&self, _: UserId, _: Role) -> Result<(), UserRepoError> {
            unreachable!()
        }
        async fn set_disabled(
            &self,
            _: UserId,
            _: Option<DateTime<Utc>>,
        ) -> Result<(), UserRepoError> {
            unreachable!()
        }
        async fn set_email(
            &self,
            _: UserId,
            _: &EmailAddress,
            _: &EmailAddress,
            _: &PasswordHash,
            _: DateTime<Utc>,
        ) -> Result<User, UserRepoError> {
            unreachable!()
        }
    }

    fn refused_for_want_of_an_outbox<T: std::fmt::Debug>(result: Result<T, UserRepoError>) {
        match result {
            Err(UserRepoError::Other(e)) => {
                assert!(e.to_string().contains("keeps no mail outbox"), "{e}")
            }
            other => panic!("a change with mail went through without an outbox: {other:?}"),
        }
    }

    #[test]
    fn a_repository_without_an_outbox_refuses_every_change_that_carries_mail() {
        let repo = WithoutOutbox;
        let id = UserId::from_uuid(Uuid::nil());
        let now = Utc::now();
        let mail = QueuedMail {
            id: Uuid::nil(),
            to: EmailAddress::parse("owner@example.com").unwrap(),
            kind: "password_changed".into(),
            supersedes: None,
            sealed: vec![1, 2, 3],
            created_at: now,
            expires_at: now,
        };
        let hash = PasswordHash::new("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA");
        let new_user = NewUser {
            id,
            email: mail.to.clone(),
            password_hash: hash.clone(),
            created_at: now,
            language: None,
        };
        futures::executor::block_on(async {
            refused_for_want_of_an_outbox(repo.create_with_mail(&new_user, &mail).await);
            refused_for_want_of_an_outbox(
                repo.replace_unverified_password_with_mail(id, &hash, now, &mail)
                    .await,
            );
            refused_for_want_of_an_outbox(
                repo.set_password_hash_with_mail(id, &mail.to, &hash, now, &mail)
                    .await,
            );
            refused_for_want_of_an_outbox(repo.delete_with_mail(id, &mail).await);
            refused_for_want_of_an_outbox(repo.set_role_with_mail(id, Role::Admin, &mail).await);
            refused_for_want_of_an_outbox(repo.set_disabled_with_mail(id, Some(now), &mail).await);
        });
    }
}

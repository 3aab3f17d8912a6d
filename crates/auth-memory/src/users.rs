//! [`UserRepository`] in memory.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use auth_core::{
    AccountStatus, AccountSummary, EmailAddress, NewUser, PasswordHash, Role, User,
    UserCredentials, UserId, UserQuery, UserRepoError, UserRepository,
};
use chrono::{DateTime, Utc};

/// In-process [`UserRepository`]: accounts live in this process's memory and are **lost on
/// restart**.
///
/// Meant for tests, demos and embedders that keep accounts elsewhere; a server that must
/// remember its users uses `auth-sqlite` or `auth-postgres`. Addresses are unique: the check
/// and the insert happen under one lock, so concurrent creates of one address yield one
/// account and [`UserRepoError::Duplicate`] for every other one. No operation blocks on
/// anything but that lock and none needs an async runtime, so any executor drives it.
///
/// Cheap to clone; clones share the same accounts.
///
/// ```
/// use auth_core::{EmailAddress, NewUser, PasswordHash, UserId, UserRepository};
/// use auth_memory::MemoryUserRepository;
///
/// let users = MemoryUserRepository::new();
/// let new_user = NewUser {
///     id: UserId::from_uuid(uuid::Uuid::new_v4()),
///     email: EmailAddress::parse("ada@example.com")?,
///     password_hash: PasswordHash::new("$argon2id$..."),
///     created_at: chrono::Utc::now(),
///     language: Some("en".into()),
/// };
/// futures::executor::block_on(async {
///     users.create(&new_user).await?;
///     let found = users.find_by_email(&EmailAddress::parse("ADA@example.com")?).await?;
///     assert_eq!(found.map(|c| c.user.id), Some(new_user.id));
///     Ok::<_, Box<dyn std::error::Error>>(())
/// })?;
/// assert_eq!(users.len(), 1);
/// # Ok::<_, Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Default)]
pub struct MemoryUserRepository {
    accounts: Arc<Mutex<Accounts>>,
    /// Second factors that go with a deleted account.
    totp: Option<crate::MemoryTotpStore>,
    /// Passkeys that go with a deleted account.
    passkeys: Option<crate::MemoryPasskeyStore>,
}

#[derive(Default)]
struct Accounts {
    by_id: HashMap<UserId, UserCredentials>,
    /// The unique index: normalised address to account id.
    by_email: HashMap<EmailAddress, UserId>,
}

impl MemoryUserRepository {
    /// An empty repository.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty repository whose account deletions also delete the account's second factors
    /// (secret, recovery codes, second-step challenges) in `totp`, as the database stores'
    /// foreign keys do.
    pub fn with_totp(totp: &crate::MemoryTotpStore) -> Self {
        Self {
            totp: Some(totp.clone()),
            ..Self::default()
        }
    }

    /// This repository, whose account deletions also delete the account's passkeys in
    /// `passkeys`, as the database stores' foreign keys do.
    #[must_use]
    pub fn also_forgetting_passkeys(mut self, passkeys: &crate::MemoryPasskeyStore) -> Self {
        self.passkeys = Some(passkeys.clone());
        self
    }

    /// How many accounts it holds.
    pub fn len(&self) -> usize {
        self.lock().by_id.len()
    }

    /// Whether it holds no account.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, Accounts> {
        // Every update is complete before the lock is released and nothing panics while
        // holding it, so a poisoned lock still guards consistent data.
        self.accounts.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for MemoryUserRepository {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A count only: accounts hold addresses and password hashes.
        f.debug_struct("MemoryUserRepository")
            .field("accounts", &self.len())
            .finish()
    }
}

#[async_trait::async_trait]
impl UserRepository for MemoryUserRepository {
    async fn create(&self, new_user: &NewUser) -> Result<User, UserRepoError> {
        let mut accounts = self.lock();
        if accounts.by_email.contains_key(&new_user.email)
            || accounts.by_id.contains_key(&new_user.id)
        {
            // A reused id is as impossible to store as a reused address (the SQL stores'
            // primary key refuses it too); both are refused before anything changes.
            return Err(UserRepoError::Duplicate);
        }
        let user = User {
            id: new_user.id,
            email: new_user.email.clone(),
            verified_at: None,
            created_at: new_user.created_at,
            updated_at: new_user.created_at,
        };
        accounts
            .by_email
            .insert(new_user.email.clone(), new_user.id);
        accounts.by_id.insert(
            new_user.id,
            UserCredentials {
                user: user.clone(),
                password_hash: new_user.password_hash.clone(),
                language: new_user.language.clone(),
                status: AccountStatus::default(),
            },
        );
        Ok(user)
    }

    async fn find_by_email(
        &self,
        email: &EmailAddress,
    ) -> Result<Option<UserCredentials>, UserRepoError> {
        let accounts = self.lock();
        Ok(accounts
            .by_email
            .get(email)
            .and_then(|id| accounts.by_id.get(id))
            .cloned())
    }

    async fn find_by_id(&self, id: UserId) -> Result<Option<UserCredentials>, UserRepoError> {
        Ok(self.lock().by_id.get(&id).cloned())
    }

    async fn replace_unverified_password(
        &self,
        id: UserId,
        password_hash: &PasswordHash,
        at: DateTime<Utc>,
    ) -> Result<(), UserRepoError> {
        let mut accounts = self.lock();
        match accounts.by_id.get_mut(&id) {
            Some(account) if !account.user.is_verified() => {
                account.password_hash = password_hash.clone();
                account.user.updated_at = at;
                Ok(())
            }
            _ => Err(UserRepoError::NotFound),
        }
    }

    async fn mark_verified(&self, id: UserId, at: DateTime<Utc>) -> Result<User, UserRepoError> {
        let mut accounts = self.lock();
        let account = accounts.by_id.get_mut(&id).ok_or(UserRepoError::NotFound)?;
        if account.user.verified_at.is_none() {
            account.user.verified_at = Some(at);
            account.user.updated_at = at;
        }
        Ok(account.user.clone())
    }

    async fn set_password_hash(
        &self,
        id: UserId,
        email: &EmailAddress,
        password_hash: &PasswordHash,
        at: DateTime<Utc>,
    ) -> Result<(), UserRepoError> {
        let mut accounts = self.lock();
        let account = accounts
            .by_id
            .get_mut(&id)
            .filter(|a| a.user.email == *email)
            .ok_or(UserRepoError::NotFound)?;
        account.password_hash = password_hash.clone();
        account.user.updated_at = at;
        Ok(())
    }

    async fn set_email(
        &self,
        id: UserId,
        from: &EmailAddress,
        to: &EmailAddress,
        password_hash: &PasswordHash,
        at: DateTime<Utc>,
    ) -> Result<User, UserRepoError> {
        let mut accounts = self.lock();
        match accounts.by_id.get(&id) {
            Some(account)
                if &account.user.email == from
                    && &account.password_hash == password_hash
                    && !account.status.is_disabled() => {}
            _ => return Err(UserRepoError::NotFound),
        }
        // A pending (unverified) signup at the new address does not block the move: whoever
        // confirms holds the code from that mailbox. It goes in the same step.
        let mut pending = None;
        if let Some(&owner) = accounts.by_email.get(to) {
            if owner != id {
                let verified = accounts
                    .by_id
                    .get(&owner)
                    .is_none_or(|other| other.user.is_verified());
                if verified {
                    return Err(UserRepoError::Duplicate);
                }
                accounts.by_id.remove(&owner);
                pending = Some(owner);
            }
        }
        accounts.by_email.remove(from);
        accounts.by_email.insert(to.clone(), id);
        let account = accounts.by_id.get_mut(&id).ok_or(UserRepoError::NotFound)?;
        account.user.email = to.clone();
        account.user.updated_at = at;
        let moved = account.user.clone();
        drop(accounts);
        if let Some(owner) = pending {
            if let Some(totp) = &self.totp {
                totp.forget(owner);
            }
            if let Some(passkeys) = &self.passkeys {
                passkeys.forget(owner);
            }
        }
        Ok(moved)
    }

    async fn delete(&self, id: UserId) -> Result<bool, UserRepoError> {
        {
            let mut accounts = self.lock();
            let Some(account) = accounts.by_id.remove(&id) else {
                return Ok(false);
            };
            accounts.by_email.remove(&account.user.email);
        }
        if let Some(totp) = &self.totp {
            totp.forget(id);
        }
        if let Some(passkeys) = &self.passkeys {
            passkeys.forget(id);
        }
        Ok(true)
    }

    async fn ping(&self) -> Result<(), UserRepoError> {
        Ok(())
    }

    async fn list(&self, query: &UserQuery) -> Result<Vec<AccountSummary>, UserRepoError> {
        let accounts = self.lock();
        let mut found: Vec<AccountSummary> = accounts
            .by_id
            .values()
            .filter(|c| {
                query
                    .after
                    .as_ref()
                    .is_none_or(|after| c.user.email.as_str() > after.as_str())
            })
            .map(|c| AccountSummary {
                user: c.user.clone(),
                status: c.status.clone(),
            })
            .filter(|a| query.matches(a))
            .collect();
        found.sort_by(|a, b| a.user.email.as_str().cmp(b.user.email.as_str()));
        found.truncate(query.limit);
        Ok(found)
    }

    async fn set_role(&self, id: UserId, role: Role) -> Result<(), UserRepoError> {
        let mut accounts = self.lock();
        let account = accounts.by_id.get_mut(&id).ok_or(UserRepoError::NotFound)?;
        account.status.role = role;
        Ok(())
    }

    async fn set_disabled(
        &self,
        id: UserId,
        disabled_at: Option<DateTime<Utc>>,
    ) -> Result<(), UserRepoError> {
        let mut accounts = self.lock();
        let account = accounts.by_id.get_mut(&id).ok_or(UserRepoError::NotFound)?;
        account.status.disabled_at = match disabled_at {
            Some(when) => Some(account.status.disabled_at.unwrap_or(when)),
            None => None,
        };
        Ok(())
    }
}

use secrecy::SecretString;

use super::BoxError;
use crate::domain::password::PasswordHash;

/// Errors of [`PasswordHasher`].
#[derive(Debug, thiserror::Error)]
pub enum HasherError {
    /// Too many hashes are queued; try again shortly.
    #[error("the password hasher is overloaded")]
    Unavailable(#[source] BoxError),
    /// The stored hash cannot be parsed, or hashing failed.
    #[error("password hashing failed")]
    Other(#[source] BoxError),
}

/// Outcome of checking a password against a stored hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordCheck {
    /// Wrong password.
    Mismatch,
    /// Right password; the hash uses the current parameters.
    Match,
    /// Right password, but the hash uses older parameters and should be replaced.
    MatchNeedsRehash,
}

impl PasswordCheck {
    /// Whether the password was right.
    pub fn is_match(self) -> bool {
        !matches!(self, Self::Mismatch)
    }
}

/// Slow, salted password hashing (Argon2id in the reference adapter).
///
/// An implementation starts like this (`async_trait` and `SecretString` are re-exported by
/// this crate, so no extra dependency is needed):
/// ```
/// use auth_core::{async_trait, HasherError, PasswordCheck, PasswordHash, PasswordHasher};
/// use auth_core::SecretString;
///
/// struct MyHasher;
///
/// #[async_trait]
/// impl PasswordHasher for MyHasher {
///     async fn hash(&self, _password: &SecretString) -> Result<PasswordHash, HasherError> {
///         Err(HasherError::Other("not wired yet".into()))
///     }
///
///     async fn verify(
///         &self,
///         _password: &SecretString,
///         _hash: &PasswordHash,
///     ) -> Result<PasswordCheck, HasherError> {
///         Err(HasherError::Other("not wired yet".into()))
///     }
/// }
/// ```
///
/// Both methods cost the same (one full hash with the current parameters), which the service
/// relies on to make "unknown email" and "wrong password" take equally long.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait::async_trait]
pub trait PasswordHasher: Send + Sync + 'static {
    /// Hashes a password with a fresh random salt and the current parameters.
    /// MUST return [`HasherError::Unavailable`] when it cannot take more work right now.
    async fn hash(&self, password: &SecretString) -> Result<PasswordHash, HasherError>;

    /// Checks a password against a stored hash in constant time.
    /// MUST return [`HasherError::Other`] for a hash it cannot parse.
    async fn verify(
        &self,
        password: &SecretString,
        hash: &PasswordHash,
    ) -> Result<PasswordCheck, HasherError>;

    /// Whether a call made now would be refused with [`HasherError::Unavailable`] because
    /// every worker is busy and the queue is full. The service asks before any other I/O, so
    /// that an overloaded hasher costs a request nothing. Adapters without a bound answer
    /// `false` (the default).
    fn is_saturated(&self) -> bool {
        false
    }

    /// How many calls the hasher takes at once (running plus queued), if it has a bound.
    ///
    /// The service admits at most this many hashing requests at a time, counted from their
    /// admission (before the account lookup) to their answer. A flood is then refused before
    /// it reaches the stores, and the requests let in are never refused by a queue that
    /// others filled while they were looking up the account. Adapters without a bound answer
    /// `None` (the default).
    fn capacity(&self) -> Option<usize> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Unbounded;

    #[async_trait::async_trait]
    impl PasswordHasher for Unbounded {
        async fn hash(&self, _: &SecretString) -> Result<PasswordHash, HasherError> {
            Err(HasherError::Other("unused".into()))
        }

        async fn verify(
            &self,
            _: &SecretString,
            _: &PasswordHash,
        ) -> Result<PasswordCheck, HasherError> {
            Err(HasherError::Other("unused".into()))
        }
    }

    #[test]
    fn a_hasher_without_a_bound_is_never_saturated() {
        assert!(!Unbounded.is_saturated());
        assert_eq!(Unbounded.capacity(), None);
    }
}

use std::fmt;

use sha1::{Digest, Sha1};

use super::BoxError;
use crate::domain::password::Password;

/// The SHA-1 of a candidate password: how the breached-password lists key their entries (the
/// "Pwned Passwords" range API and its downloadable files). Only ever compared with those
/// lists; a [`BreachedPasswords`] adapter sends at most its first five hex digits anywhere.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordSha1([u8; 20]);

impl PasswordSha1 {
    /// The digest of `password`.
    pub fn of(password: &Password) -> Self {
        use secrecy::ExposeSecret;
        Self(Sha1::digest(password.secret().expose_secret().as_bytes()).into())
    }

    /// The digest of raw bytes (for adapters' tests and offline lists).
    pub fn of_bytes(bytes: &[u8]) -> Self {
        Self(Sha1::digest(bytes).into())
    }

    /// The 20 bytes.
    pub fn as_bytes(&self) -> &[u8; 20] {
        &self.0
    }

    /// The 40 uppercase hex digits.
    pub fn to_hex(&self) -> String {
        hex::encode_upper(self.0)
    }

    /// The first five hex digits: the range a k-anonymity service is asked for (one of about a
    /// million, each shared by hundreds of listed hashes).
    pub fn range_prefix(&self) -> String {
        self.to_hex()[..5].to_owned()
    }

    /// The other 35 hex digits: what the answer for the range is searched for.
    pub fn range_suffix(&self) -> String {
        self.to_hex()[5..].to_owned()
    }
}

impl fmt::Debug for PasswordSha1 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A digest of a password is as good as the password for a listed one: never printed.
        f.write_str("PasswordSha1(..)")
    }
}

/// Errors of [`BreachedPasswords`].
#[derive(Debug, thiserror::Error)]
pub enum BreachCheckError {
    /// The list cannot be asked (a range service down or slow, an unreadable answer).
    #[error("the breached-password list is unavailable")]
    Unavailable(#[source] BoxError),
}

/// A list of passwords known from data breaches (ASVS 6.2.12): a new password that is on it
/// is refused. Optional; the service asks it only when given one with
/// [`AuthService::with_breached_passwords`](crate::AuthService::with_breached_passwords), and
/// accepts the password when the list cannot be asked (fail-open, with a log line).
///
/// ```
/// use auth_core::{async_trait, BreachCheckError, BreachedPasswords, PasswordSha1};
///
/// struct Never;
///
/// #[async_trait]
/// impl BreachedPasswords for Never {
///     async fn is_breached(&self, _: &PasswordSha1) -> Result<bool, BreachCheckError> {
///         Ok(false)
///     }
/// }
/// ```
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait::async_trait]
pub trait BreachedPasswords: Send + Sync + 'static {
    /// Whether the password with this digest is on the list. MUST return
    /// [`BreachCheckError::Unavailable`] when the list cannot be asked, and SHOULD answer
    /// within a bounded time.
    async fn is_breached(&self, password: &PasswordSha1) -> Result<bool, BreachCheckError>;
}

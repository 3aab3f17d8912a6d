//! Users: [`UserId`], [`User`] and what the repository keeps about credentials.

use std::fmt;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::email::EmailAddress;
use super::password::PasswordHash;

/// The id of a user account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(Uuid);

impl UserId {
    /// Wraps a UUID.
    pub fn from_uuid(id: Uuid) -> Self {
        Self(id)
    }

    /// The UUID.
    pub fn as_uuid(&self) -> Uuid {
        self.0
    }

    /// Parses the hyphenated UUID form.
    pub fn parse(raw: &str) -> Option<Self> {
        Uuid::parse_str(raw).ok().map(Self)
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A user account, without its credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Id.
    pub id: UserId,
    /// Normalised address.
    pub email: EmailAddress,
    /// When the address was proven, `None` until then.
    pub verified_at: Option<DateTime<Utc>>,
    /// Signup time.
    pub created_at: DateTime<Utc>,
    /// Last change to the row.
    pub updated_at: DateTime<Utc>,
}

impl User {
    /// Whether the address has been proven.
    pub fn is_verified(&self) -> bool {
        self.verified_at.is_some()
    }
}

/// A user with the hash of their password, as the repository returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserCredentials {
    /// The account.
    pub user: User,
    /// The current password hash.
    pub password_hash: PasswordHash,
    /// The languages the account's mail is written in, as the signup request's
    /// `Accept-Language` said (see [`ClientInfo::language`](crate::ClientInfo::language)).
    pub language: Option<String>,
}

/// What is needed to create an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    /// Id chosen by the service.
    pub id: UserId,
    /// Normalised address.
    pub email: EmailAddress,
    /// Hash of the chosen password.
    pub password_hash: PasswordHash,
    /// Creation time (also the first `updated_at`).
    pub created_at: DateTime<Utc>,
    /// The languages the account's mail is to be written in (the signup request's
    /// `Accept-Language`, bounded as [`ClientInfo::language`](crate::ClientInfo::language)).
    pub language: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_ids_keep_their_uuid() {
        let u = uuid::Uuid::from_u128(0x1234);
        assert_eq!(UserId::from_uuid(u).as_uuid(), u);
        assert_eq!(
            UserId::parse(&u.hyphenated().to_string()),
            Some(UserId::from_uuid(u))
        );
    }
}

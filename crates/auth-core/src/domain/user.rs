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
    /// Role and whether the account is disabled.
    pub status: AccountStatus,
}

/// What an account may do. Every account is a `User`; an `Admin` may also administer the
/// other accounts (see `AuthService::authorize_admin`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Role {
    /// An ordinary account (the role of every new account).
    #[default]
    User,
    /// An administrator.
    Admin,
}

impl Role {
    /// The stored and wire name: `user` or `admin`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Admin => "admin",
        }
    }

    /// Parses [`Role::as_str`]'s names; `None` for anything else.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "user" => Some(Role::User),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The administrative state of an account: its role and whether it is disabled.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AccountStatus {
    /// The account's role.
    pub role: Role,
    /// When an administrator disabled the account; `None` while it is enabled. A disabled
    /// account has no sessions and cannot log in.
    pub disabled_at: Option<DateTime<Utc>>,
}

impl AccountStatus {
    /// Whether the account is an administrator.
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// Whether the account is disabled.
    pub fn is_disabled(&self) -> bool {
        self.disabled_at.is_some()
    }
}

/// An account as an administrator sees it: the user and their status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountSummary {
    /// The account.
    pub user: User,
    /// Role and disabled state.
    pub status: AccountStatus,
}

/// The state an account listing can be narrowed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountState {
    /// Not verified yet, and not disabled.
    Unverified,
    /// Verified and not disabled.
    Active,
    /// Disabled (verified or not).
    Disabled,
}

impl AccountState {
    /// The wire name: `unverified`, `active` or `disabled`.
    pub fn as_str(&self) -> &'static str {
        match self {
            AccountState::Unverified => "unverified",
            AccountState::Active => "active",
            AccountState::Disabled => "disabled",
        }
    }

    /// Parses [`AccountState::as_str`]'s names.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "unverified" => Some(AccountState::Unverified),
            "active" => Some(AccountState::Active),
            "disabled" => Some(AccountState::Disabled),
            _ => None,
        }
    }

    /// The state of an account.
    pub fn of(user: &User, status: &AccountStatus) -> Self {
        if status.is_disabled() {
            AccountState::Disabled
        } else if user.is_verified() {
            AccountState::Active
        } else {
            AccountState::Unverified
        }
    }
}

/// A search of the accounts, in address order (case-insensitive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserQuery {
    /// Only addresses that start with this (lower-case) text; `%`, `_` and `\` in it are
    /// literal characters.
    pub email_prefix: Option<String>,
    /// Only accounts in this state.
    pub state: Option<AccountState>,
    /// Only accounts with this role.
    pub role: Option<Role>,
    /// Only addresses after this one (the last address of the previous page).
    pub after: Option<EmailAddress>,
    /// At most this many accounts.
    pub limit: usize,
}

impl UserQuery {
    /// Whether `account` satisfies the query's filters (not `after`, not `limit`): the rule
    /// the stores implement in their own query language.
    pub fn matches(&self, account: &AccountSummary) -> bool {
        self.email_prefix
            .as_deref()
            .is_none_or(|p| account.user.email.as_str().starts_with(p))
            && self
                .state
                .is_none_or(|s| AccountState::of(&account.user, &account.status) == s)
            && self.role.is_none_or(|r| account.status.role == r)
    }
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

    #[test]
    fn a_query_matches_on_every_filter_it_names_and_only_on_those() {
        let at = chrono::DateTime::<Utc>::from_timestamp(1_765_000_000, 0).unwrap();
        let account = |email: &str, verified: bool, role: Role, disabled: bool| AccountSummary {
            user: User {
                id: UserId::from_uuid(uuid::Uuid::from_u128(7)),
                email: EmailAddress::parse(email).unwrap(),
                verified_at: verified.then_some(at),
                created_at: at,
                updated_at: at,
            },
            status: AccountStatus {
                role,
                disabled_at: disabled.then_some(at),
            },
        };
        let ada = account("ada@example.com", true, Role::Admin, false);
        let bob = account("bob@example.com", false, Role::User, false);
        let eve = account("eve@example.com", true, Role::User, true);
        let query = |prefix: Option<&str>, state, role| UserQuery {
            email_prefix: prefix.map(str::to_owned),
            state,
            role,
            after: None,
            limit: 10,
        };
        let all = query(None, None, None);
        assert!(all.matches(&ada) && all.matches(&bob) && all.matches(&eve));
        let by_prefix = query(Some("ad"), None, None);
        assert!(by_prefix.matches(&ada) && !by_prefix.matches(&bob));
        let by_state = query(None, Some(AccountState::Active), None);
        assert!(by_state.matches(&ada) && !by_state.matches(&bob) && !by_state.matches(&eve));
        let disabled = query(None, Some(AccountState::Disabled), None);
        assert!(disabled.matches(&eve) && !disabled.matches(&ada));
        let admins = query(None, None, Some(Role::Admin));
        assert!(admins.matches(&ada) && !admins.matches(&bob));
        // Every filter must hold: one that fails is enough to leave the account out.
        assert!(!query(Some("ad"), Some(AccountState::Unverified), None).matches(&ada));
        assert!(!query(Some("ad"), None, Some(Role::User)).matches(&ada));
        assert!(!query(Some("bo"), Some(AccountState::Active), None).matches(&ada));
        assert!(!query(None, Some(AccountState::Active), Some(Role::User)).matches(&ada));
        assert!(query(Some("ad"), Some(AccountState::Active), Some(Role::Admin)).matches(&ada));
    }

    #[test]
    fn roles_and_states_round_trip_their_names() {
        for r in [Role::User, Role::Admin] {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        for s in [
            AccountState::Unverified,
            AccountState::Active,
            AccountState::Disabled,
        ] {
            assert_eq!(AccountState::parse(s.as_str()), Some(s));
        }
        assert_eq!(Role::parse("Admin"), None);
        assert_eq!(AccountState::parse(""), None);
    }
}

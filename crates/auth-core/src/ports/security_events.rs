use std::fmt;
use std::net::IpAddr;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::BoxError;
use crate::domain::user::UserId;

/// Errors of [`SecurityEvents`].
#[derive(Debug, thiserror::Error)]
pub enum SecurityEventsError {
    /// The store cannot be reached or did not answer in time.
    #[error("the security event store is unavailable")]
    Unavailable(#[source] BoxError),
    /// The store answered with an error that is not an outage (or a stored row is unreadable).
    #[error("the security event store failed")]
    Other(#[source] BoxError),
}

/// Why a login failed, as the account's owner is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LoginFailure {
    /// A wrong password (or login code).
    BadCredentials,
    /// The right password for an address that is not verified yet.
    Unverified,
    /// Refused before the password was checked: a request budget is spent.
    Throttled,
    /// The password was right; the second factor was not.
    SecondFactorFailed,
}

impl LoginFailure {
    const ALL: [Self; 4] = [
        Self::BadCredentials,
        Self::Unverified,
        Self::Throttled,
        Self::SecondFactorFailed,
    ];

    /// `bad_credentials`, `unverified`, `throttled` or `second_factor_failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadCredentials => "bad_credentials",
            Self::Unverified => "unverified",
            Self::Throttled => "throttled",
            Self::SecondFactorFailed => "second_factor_failed",
        }
    }

    /// The reason named by [`as_str`](Self::as_str).
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == name)
    }
}

/// What happened to an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SecurityEventKind {
    /// The account was created (a signup for a new address).
    Signup,
    /// The address was verified with the mailed code.
    Verified,
    /// A session was opened (password, login code or second factor).
    LoginSucceeded,
    /// A login for this account failed.
    LoginFailed(LoginFailure),
    /// A password or code given again inside a session, to confirm a sensitive change, was
    /// wrong (or refused by the re-authentication budget): what a stolen session guessing the
    /// password leaves behind.
    ReauthFailed,
    /// A password reset was tried with a wrong code (or one past its lifetime or attempts):
    /// somebody who asked for the account's reset is guessing, or the owner mistyped.
    ResetFailed,
    /// A password or code given again inside a session was refused by the re-authentication
    /// or second-factor budget before it was checked (it may have been right): counted like a
    /// wrong one against the session's hard limit, but not recorded as a wrong guess.
    ReauthThrottled,
    /// A session was ended because it spent its budget of wrong passwords or codes.
    Lockout,
    /// The user logged out.
    Logout,
    /// The user logged out everywhere.
    LogoutAll,
    /// The user ended one of their sessions (say, from another device).
    SessionEnded,
    /// The password was changed inside a session.
    PasswordChanged,
    /// A password reset code was asked for (and mailed).
    ResetRequested,
    /// The password was reset with a mailed code.
    ResetCompleted,
    /// Two-factor authentication was turned on.
    TwoFactorEnabled,
    /// Two-factor authentication was turned off.
    TwoFactorDisabled,
    /// A recovery code was used.
    RecoveryCodeUsed,
    /// The account was deleted.
    AccountDeleted,
    /// An administrator disabled the account (every session ended).
    AccountDisabledByAdmin,
    /// An administrator enabled the account again.
    AccountEnabledByAdmin,
    /// An administrator changed the account's role.
    RoleChangedByAdmin,
    /// An administrator deleted the account.
    AccountDeletedByAdmin,
    /// An administrator ended one or every session of the account.
    SessionsEndedByAdmin,
    /// An administrator turned the account's two-factor authentication off.
    TwoFactorResetByAdmin,
    /// A move of the account to another address was asked for (with the password).
    EmailChangeRequested,
    /// The account moved to another address (with the code mailed there).
    EmailChanged,
    /// A passkey was added.
    PasskeyAdded,
    /// A passkey was removed.
    PasskeyRemoved,
}

impl SecurityEventKind {
    const SIMPLE: [Self; 27] = [
        Self::Signup,
        Self::Verified,
        Self::LoginSucceeded,
        Self::ReauthFailed,
        Self::ReauthThrottled,
        Self::Lockout,
        Self::Logout,
        Self::LogoutAll,
        Self::SessionEnded,
        Self::PasswordChanged,
        Self::ResetRequested,
        Self::ResetCompleted,
        Self::ResetFailed,
        Self::TwoFactorEnabled,
        Self::TwoFactorDisabled,
        Self::RecoveryCodeUsed,
        Self::AccountDeleted,
        Self::AccountDisabledByAdmin,
        Self::AccountEnabledByAdmin,
        Self::RoleChangedByAdmin,
        Self::AccountDeletedByAdmin,
        Self::SessionsEndedByAdmin,
        Self::TwoFactorResetByAdmin,
        Self::EmailChangeRequested,
        Self::EmailChanged,
        Self::PasskeyAdded,
        Self::PasskeyRemoved,
    ];

    /// The stored and published name: `signup`, `verified`, `login_succeeded`,
    /// `login_failed`, `reauth_failed`, `reauth_throttled`, `lockout`, `logout`, `logout_all`, `session_ended`, `password_changed`,
    /// `reset_requested`, `reset_completed`, `reset_failed`, `two_factor_enabled`, `two_factor_disabled`,
    /// `recovery_code_used`, `account_deleted`, and for what an administrator did:
    /// `account_disabled_by_admin`, `account_enabled_by_admin`, `role_changed_by_admin`,
    /// `account_deleted_by_admin`, `sessions_ended_by_admin`, `two_factor_reset_by_admin`;
    /// for a change of address: `email_change_requested`, `email_changed`; and
    /// `passkey_added`, `passkey_removed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Signup => "signup",
            Self::Verified => "verified",
            Self::LoginSucceeded => "login_succeeded",
            Self::LoginFailed(_) => "login_failed",
            Self::ReauthFailed => "reauth_failed",
            Self::ReauthThrottled => "reauth_throttled",
            Self::Lockout => "lockout",
            Self::Logout => "logout",
            Self::LogoutAll => "logout_all",
            Self::SessionEnded => "session_ended",
            Self::PasswordChanged => "password_changed",
            Self::ResetRequested => "reset_requested",
            Self::ResetCompleted => "reset_completed",
            Self::ResetFailed => "reset_failed",
            Self::TwoFactorEnabled => "two_factor_enabled",
            Self::TwoFactorDisabled => "two_factor_disabled",
            Self::RecoveryCodeUsed => "recovery_code_used",
            Self::AccountDeleted => "account_deleted",
            Self::AccountDisabledByAdmin => "account_disabled_by_admin",
            Self::AccountEnabledByAdmin => "account_enabled_by_admin",
            Self::RoleChangedByAdmin => "role_changed_by_admin",
            Self::AccountDeletedByAdmin => "account_deleted_by_admin",
            Self::SessionsEndedByAdmin => "sessions_ended_by_admin",
            Self::TwoFactorResetByAdmin => "two_factor_reset_by_admin",
            Self::EmailChangeRequested => "email_change_requested",
            Self::EmailChanged => "email_changed",
            Self::PasskeyAdded => "passkey_added",
            Self::PasskeyRemoved => "passkey_removed",
        }
    }

    /// Every kind's name (each once; `login_failed` stands for every reason), in a fixed
    /// order: what a webhook endpoint may ask for.
    pub fn names() -> impl Iterator<Item = &'static str> {
        Self::SIMPLE
            .into_iter()
            .map(Self::as_str)
            .chain(std::iter::once("login_failed"))
    }

    /// The reason of a failed login.
    pub fn reason(self) -> Option<LoginFailure> {
        match self {
            Self::LoginFailed(r) => Some(r),
            _ => None,
        }
    }

    /// The kind named by [`as_str`](Self::as_str) and [`reason`](Self::reason) (a reason
    /// only with `login_failed`, which needs one).
    pub fn parse(name: &str, reason: Option<&str>) -> Option<Self> {
        if name == "login_failed" {
            return Some(Self::LoginFailed(LoginFailure::parse(reason?)?));
        }
        if reason.is_some() {
            return None;
        }
        Self::SIMPLE.into_iter().find(|k| k.as_str() == name)
    }
}

/// A client address with its host bits cleared: a network, never a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TruncatedIp {
    network: IpAddr,
    prefix: u8,
}

impl TruncatedIp {
    /// `ip` cut to its first `v4_prefix` (IPv4, at most 32) or `v6_prefix` (IPv6, at most
    /// 128) bits. An IPv4-mapped IPv6 address counts as IPv4.
    pub fn new(ip: IpAddr, v4_prefix: u8, v6_prefix: u8) -> Self {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match ip {
            IpAddr::V4(v4) => {
                let prefix = v4_prefix.min(32);
                let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
                Self {
                    network: IpAddr::V4((u32::from(v4) & mask).into()),
                    prefix,
                }
            }
            IpAddr::V6(v6) => {
                let prefix = v6_prefix.min(128);
                let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
                Self {
                    network: IpAddr::V6((u128::from(v6) & mask).into()),
                    prefix,
                }
            }
        }
    }

    /// The network address.
    pub fn network(&self) -> IpAddr {
        self.network
    }

    /// How many leading bits were kept.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// Parses the `address/prefix` form of [`Display`](fmt::Display); `None` for anything
    /// else, including an address with host bits set.
    pub fn parse(raw: &str) -> Option<Self> {
        let (addr, prefix) = raw.split_once('/')?;
        let addr: IpAddr = addr.parse().ok()?;
        let prefix: u8 = prefix.parse().ok()?;
        let parsed = Self::new(addr, prefix, prefix);
        (parsed.network == addr && parsed.prefix == prefix).then_some(parsed)
    }
}

impl fmt::Display for TruncatedIp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// One entry of an account's security history. It never holds a secret: no password, code,
/// token or hash; the address of the client is truncated to a network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityEvent {
    /// The event's id.
    pub id: Uuid,
    /// The account it is about.
    pub user_id: UserId,
    /// When it happened (whole microseconds).
    pub at: DateTime<Utc>,
    /// What happened.
    pub kind: SecurityEventKind,
    /// Where the client was, as a network.
    pub ip: Option<TruncatedIp>,
    /// The client's `User-Agent`, bounded (see
    /// [`ClientInfo::MAX_USER_AGENT`](crate::ClientInfo::MAX_USER_AGENT)).
    pub user_agent: Option<String>,
    /// The id of the request that caused it, when the edge gave one.
    pub request_id: Option<String>,
}

/// Where a page of events continues: after the event with this time and id, in the listing
/// order (newest first, then by id, descending). Opaque to clients:
/// [`EventCursor::encode`] and [`EventCursor::parse`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventCursor {
    /// The time of the last event of the previous page.
    pub at: DateTime<Utc>,
    /// Its id.
    pub id: Uuid,
}

impl EventCursor {
    /// The cursor after `event`.
    pub fn after(event: &SecurityEvent) -> Self {
        Self {
            at: event.at,
            id: event.id,
        }
    }

    /// Whether `event` comes after this cursor in the listing order.
    pub fn precedes(&self, event: &SecurityEvent) -> bool {
        event.at < self.at || (event.at == self.at && event.id < self.id)
    }

    /// The text form: the time in microseconds, a dot, the id.
    pub fn encode(&self) -> String {
        format!("{}.{}", self.at.timestamp_micros(), self.id.simple())
    }

    /// Parses [`EventCursor::encode`]'s form; `None` for anything else.
    pub fn parse(raw: &str) -> Option<Self> {
        let (micros, id) = raw.split_once('.')?;
        if id.len() != 32 {
            return None;
        }
        Some(Self {
            at: DateTime::<Utc>::from_timestamp_micros(micros.parse().ok()?)?,
            id: Uuid::try_parse(id).ok()?,
        })
    }
}

/// An append-only record of what happened to each account (ASVS V16): the history its owner
/// sees, and an operator may read for any account.
///
/// Events are never changed; they are only added and, past the retention period, deleted.
/// They are not tied to the account's row: an account's deletion is itself an event, kept
/// until it ages out.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait::async_trait]
pub trait SecurityEvents: Send + Sync + 'static {
    /// Appends `event`. Its `at` and `id` MUST come back exactly from
    /// [`list`](Self::list). Returns `Unavailable` when the store cannot be reached.
    async fn record(&self, event: &SecurityEvent) -> Result<(), SecurityEventsError>;

    /// Up to `limit` events of `user`, newest first (by `at`, then by `id`, both descending),
    /// starting after `after` when given. MUST return only `user`'s events; an unknown user
    /// has none (`Ok` and empty). A stored row it cannot read is `Other`.
    async fn list(
        &self,
        user: UserId,
        after: Option<EventCursor>,
        limit: usize,
    ) -> Result<Vec<SecurityEvent>, SecurityEventsError>;

    /// Deletes every event (of any user) that happened before `before`; returns how many.
    async fn prune(&self, before: DateTime<Utc>) -> Result<u64, SecurityEventsError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_clears_the_host_bits() {
        let v4 = TruncatedIp::new("203.0.113.77".parse().unwrap(), 24, 48);
        assert_eq!(v4.to_string(), "203.0.113.0/24");
        let v6 = TruncatedIp::new("2001:db8:1:2:3:4:5:6".parse().unwrap(), 24, 48);
        assert_eq!(v6.to_string(), "2001:db8:1::/48");
        let mapped = TruncatedIp::new("::ffff:198.51.100.9".parse().unwrap(), 16, 48);
        assert_eq!(mapped.to_string(), "198.51.0.0/16");
        let none = TruncatedIp::new("198.51.100.9".parse().unwrap(), 0, 0);
        assert_eq!(none.to_string(), "0.0.0.0/0");
        assert_eq!((v4.prefix(), v6.prefix(), mapped.prefix()), (24, 48, 16));
        assert_eq!(v4.network(), "203.0.113.0".parse::<IpAddr>().unwrap());
        assert_eq!(TruncatedIp::parse("203.0.113.0/24"), Some(v4));
        assert_eq!(TruncatedIp::parse("203.0.113.1/24"), None);
        assert_eq!(TruncatedIp::parse("203.0.113.0"), None);
    }

    #[test]
    fn kinds_round_trip_through_their_names() {
        for kind in SecurityEventKind::SIMPLE {
            assert_eq!(SecurityEventKind::parse(kind.as_str(), None), Some(kind));
            assert_eq!(
                SecurityEventKind::parse(kind.as_str(), Some("throttled")),
                None
            );
        }
        for reason in LoginFailure::ALL {
            let kind = SecurityEventKind::LoginFailed(reason);
            assert_eq!(
                SecurityEventKind::parse(kind.as_str(), Some(reason.as_str())),
                Some(kind)
            );
        }
        for reason in LoginFailure::ALL {
            assert_eq!(
                SecurityEventKind::LoginFailed(reason).reason(),
                Some(reason)
            );
        }
        assert_eq!(SecurityEventKind::Lockout.reason(), None);
        assert_eq!(SecurityEventKind::parse("login_failed", None), None);
        assert_eq!(SecurityEventKind::parse("nope", None), None);
    }

    #[test]
    fn a_cursor_precedes_older_events_and_same_time_events_of_lower_id_only() {
        let at = DateTime::<Utc>::from_timestamp_micros(1_765_000_000_000_000).unwrap();
        let cursor = EventCursor {
            at,
            id: Uuid::from_u128(50),
        };
        let event = |micros: i64, id: u128| SecurityEvent {
            id: Uuid::from_u128(id),
            user_id: crate::UserId::from_uuid(Uuid::from_u128(1)),
            at: at + chrono::Duration::microseconds(micros),
            kind: SecurityEventKind::Logout,
            ip: None,
            user_agent: None,
            request_id: None,
        };
        assert!(cursor.precedes(&event(-1, 99)), "older, whatever the id");
        assert!(cursor.precedes(&event(0, 49)), "same time, lower id");
        assert!(!cursor.precedes(&event(0, 50)), "the cursor's own event");
        assert!(!cursor.precedes(&event(0, 51)), "same time, higher id");
        assert!(!cursor.precedes(&event(1, 1)), "newer, whatever the id");
        assert_eq!(EventCursor::after(&event(0, 50)), cursor);
    }

    #[test]
    fn cursors_round_trip_and_refuse_garbage() {
        let c = EventCursor {
            at: DateTime::<Utc>::from_timestamp_micros(1_765_000_000_123_456).unwrap(),
            id: Uuid::from_u128(42),
        };
        assert_eq!(EventCursor::parse(&c.encode()), Some(c));
        for bad in [
            "",
            ".",
            "x.y",
            "12",
            "12.zz",
            "12.00000000000000000000000000000042-",
        ] {
            assert_eq!(EventCursor::parse(bad), None, "{bad}");
        }
    }
}

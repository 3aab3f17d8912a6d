//! Service tokens: the rules of a short-lived access grant for a live session.
//!
//! The session stays the source of truth. An access grant is what a signed access token (a
//! JWT, signed outside the core) says about it: whose it is, which session it stands for,
//! and when it ends. It never outlives its session, and it is only handed out for a session
//! that [`AuthService::authenticate`] has just accepted, so a revoked session mints nothing.
//! Once minted it is not revocable: it stays valid for at most its TTL after the session ends.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use uuid::Uuid;

use super::AuthService;
use crate::domain::session::{Session, SessionId};
use crate::domain::user::UserId;

/// The longest access-token lifetime the service hands out (one hour): past a logout a token
/// stays valid for its remaining lifetime, so this bounds how long a revocation takes to reach
/// the services that trust the tokens.
pub const MAX_ACCESS_TOKEN_TTL: Duration = Duration::from_secs(60 * 60);

/// What one access token says: the claims its signer writes (`sub`, `sid`, `iat`, `exp`, `jti`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessGrant {
    /// The account (`sub`).
    pub user: UserId,
    /// The session the token stands for (`sid`).
    pub session: SessionId,
    /// When it was minted (`iat`), whole seconds.
    pub issued_at: DateTime<Utc>,
    /// When it ends (`exp`), whole seconds: `issued_at + ttl`, never past the session's end.
    pub expires_at: DateTime<Utc>,
    /// A fresh random id (`jti`).
    pub id: Uuid,
}

impl AccessGrant {
    /// The grant for `session` at `now`, valid for `ttl` (at most [`MAX_ACCESS_TOKEN_TTL`]) but
    /// never past the session's absolute end. `None` when the session has less than a second
    /// left (or none).
    pub fn for_session(
        session: &Session,
        now: DateTime<Utc>,
        ttl: Duration,
        id: Uuid,
    ) -> Option<Self> {
        // JWT times are whole seconds: round `now` down and the session's end down too, so
        // the token never claims a second the session does not have.
        let issued_at = DateTime::from_timestamp(now.timestamp(), 0)?;
        let session_end = DateTime::from_timestamp(session.expires_at.timestamp(), 0)?;
        let ttl = TimeDelta::from_std(ttl.min(MAX_ACCESS_TOKEN_TTL)).ok()?;
        let expires_at = (issued_at + ttl).min(session_end);
        (expires_at - issued_at >= TimeDelta::seconds(1)).then_some(Self {
            user: session.user.id,
            session: session.id,
            issued_at,
            expires_at,
            id,
        })
    }

    /// Seconds from `issued_at` to `expires_at` (`expires_in` of the answer).
    pub fn lifetime_secs(&self) -> u64 {
        (self.expires_at - self.issued_at)
            .num_seconds()
            .max(0)
            .unsigned_abs()
    }
}

impl AuthService {
    /// The access grant for `session`, which the caller has just had accepted by
    /// [`AuthService::authenticate`]: valid for `ttl` from now on this service's clock, capped
    /// at the session's end and at [`MAX_ACCESS_TOKEN_TTL`], with a fresh random id. `None`
    /// when the session is (all but) over.
    pub fn grant_access(&self, session: &Session, ttl: Duration) -> Option<AccessGrant> {
        AccessGrant::for_session(
            session,
            self.ports.clock.now(),
            ttl,
            self.ports.random.uuid(),
        )
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::domain::email::EmailAddress;
    use crate::domain::session::{ClientInfo, SessionToken};
    use crate::domain::user::User;

    fn session(now: DateTime<Utc>, left: TimeDelta) -> Session {
        let user = User {
            id: UserId::from_uuid(Uuid::from_u128(7)),
            email: EmailAddress::parse("a@example.com").unwrap(),
            verified_at: Some(now),
            created_at: now,
            updated_at: now,
        };
        Session {
            passkey: None,
            id: SessionId::from_uuid(Uuid::from_u128(9)),
            token_hash: SessionToken::from_bytes([1; 32]).hash(),
            user,
            created_at: now,
            expires_at: now + left,
            last_seen_at: now,
            client: ClientInfo::default(),
        }
    }

    fn at(secs: i64, nanos: u32) -> DateTime<Utc> {
        DateTime::from_timestamp(secs, nanos).unwrap()
    }

    #[test]
    fn a_grant_names_the_session_and_lasts_its_ttl() {
        let now = at(1_700_000_000, 500_000_000);
        let s = session(now, TimeDelta::hours(24));
        let g = AccessGrant::for_session(&s, now, Duration::from_secs(300), Uuid::from_u128(1))
            .unwrap();
        assert_eq!(g.user, s.user.id);
        assert_eq!(g.session, s.id);
        assert_eq!(g.issued_at, at(1_700_000_000, 0));
        assert_eq!(g.expires_at, at(1_700_000_300, 0));
        assert_eq!(g.lifetime_secs(), 300);
    }

    #[test]
    fn a_grant_never_outlives_its_session() {
        let now = at(1_700_000_000, 0);
        let s = session(now, TimeDelta::milliseconds(90_700));
        let g = AccessGrant::for_session(&s, now, Duration::from_secs(300), Uuid::nil()).unwrap();
        assert_eq!(g.expires_at, at(1_700_000_090, 0));
        assert!(g.expires_at <= s.expires_at);
    }

    #[test]
    fn a_grant_is_at_most_an_hour() {
        let now = at(1_700_000_000, 0);
        let s = session(now, TimeDelta::hours(24));
        let g =
            AccessGrant::for_session(&s, now, Duration::from_secs(86_400), Uuid::nil()).unwrap();
        assert_eq!(g.lifetime_secs(), MAX_ACCESS_TOKEN_TTL.as_secs());
    }

    #[test]
    fn a_session_about_to_end_mints_nothing() {
        let now = at(1_700_000_000, 900_000_000);
        for left in [
            TimeDelta::zero(),
            TimeDelta::milliseconds(50),
            TimeDelta::seconds(-5),
        ] {
            let s = session(now, left);
            assert!(
                AccessGrant::for_session(&s, now, Duration::from_secs(300), Uuid::nil()).is_none(),
                "{left}"
            );
        }
    }
}

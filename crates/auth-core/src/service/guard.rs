//! The abuse policy the service applies to itself before doing any work: a saturated hasher
//! refuses at once, one client and one account get a fair share of the hasher, request
//! budgets are spent on the rate limiter, and password checks inside a session have a budget
//! of their own with a hard limit that ends the session.

use std::time::Duration;

use tracing::warn;

use super::fairness::{Holder, Permit, Refusal};
use super::{AuthService, Dependency, Failure};
use crate::domain::email::EmailAddress;
use crate::domain::password::PasswordAttempt;
use crate::domain::session::{ClientInfo, Session};
use crate::domain::user::UserCredentials;
use crate::ports::MailMessage;
use crate::throttle::{budget_ip, Action};

/// How long a client over its share of the hasher is asked to wait.
pub(super) const HASHING_SHARE_RETRY: Duration = Duration::from_secs(1);

/// Why an operation stops before doing its work.
#[derive(Debug)]
pub(super) enum Stop {
    /// A budget or share is spent: retry after this long.
    Retry(Duration),
    /// A port failed (or the hasher is saturated).
    Failure(Failure),
}

impl From<Failure> for Stop {
    fn from(f: Failure) -> Self {
        Self::Failure(f)
    }
}

impl From<crate::ports::RateLimiterError> for Stop {
    fn from(e: crate::ports::RateLimiterError) -> Self {
        Self::Failure(e.into())
    }
}

/// Why a password check inside a session said no.
#[derive(Debug)]
pub(super) enum Reauth {
    /// The account no longer exists.
    Gone,
    /// The password is not the account's.
    WrongPassword,
    /// The session went past its hard limit of wrong passwords and was ended.
    SessionEnded,
    /// A budget is spent, or a port failed.
    Stop(Stop),
}

impl From<Stop> for Reauth {
    fn from(s: Stop) -> Self {
        Self::Stop(s)
    }
}

impl From<Failure> for Reauth {
    fn from(f: Failure) -> Self {
        Self::Stop(Stop::Failure(f))
    }
}

/// Every hashing worker is busy and the queue is full.
#[derive(Debug, thiserror::Error)]
#[error("every hashing worker is busy and the queue is full")]
pub struct HasherSaturated;

impl AuthService {
    /// One hashing slot for this client (and `account`, for password checks: login and
    /// re-authentication, the targets of guessing), after checking (without any I/O) that the
    /// hasher could take the call at all and that the requests already admitted leave room in
    /// its capacity. Signup and reset hold only the client's slot: their
    /// per-address budgets already bound them, and the owner's reset must not wait for a
    /// stranger's login attempts on the same address.
    pub(super) fn hashing_slot(
        &self,
        client: &ClientInfo,
        account: Option<Holder>,
    ) -> Result<Permit, Stop> {
        let saturated = || {
            Stop::Failure(Failure::Unavailable(
                Dependency::Hasher,
                Box::new(HasherSaturated),
            ))
        };
        if self.ports.hasher.is_saturated() {
            return Err(saturated());
        }
        let mut holders: Vec<Holder> = account.into_iter().collect();
        if let Some(ip) = client.ip {
            holders.push(Holder::Ip(budget_ip(
                ip,
                self.throttle.config().ipv6_prefix_len,
            )));
        }
        self.hashing
            .try_acquire(holders, self.ports.hasher.capacity())
            .map_err(|refusal| match refusal {
                Refusal::Capacity => saturated(),
                Refusal::Share => {
                    warn!(
                        security_event = "hashing_share_exceeded",
                        client_ip = client.ip.map(|ip| ip.to_string()),
                        "request refused: this client or account already has its share of the hasher"
                    );
                    Stop::Retry(HASHING_SHARE_RETRY)
                }
            })
    }

    /// Admission of an unauthenticated action on `email`: a hashing slot when the action
    /// hashes, then the action's request budgets.
    pub(super) async fn admit(
        &self,
        action: Action,
        client: &ClientInfo,
        email: &EmailAddress,
        hashes: bool,
    ) -> Result<Option<Permit>, Stop> {
        let permit = if hashes {
            Some(self.hashing_slot(client, None)?)
        } else {
            None
        };
        self.throttle
            .check(action, client, email)
            .await?
            .map_err(Stop::Retry)?;
        Ok(permit)
    }

    /// The session user's account, if `password` is theirs: asked again before sensitive
    /// changes, under the re-authentication budgets (see [`crate::throttle`]). A correct
    /// password refills nothing; a wrong one, or a refusal, counts against the session's hard
    /// limit, past which the session is ended and the owner mailed.
    pub(super) async fn reauthenticate(
        &self,
        session: &Session,
        password: &PasswordAttempt,
        client: &ClientInfo,
    ) -> Result<UserCredentials, Reauth> {
        let _slot = self.hashing_slot(client, Some(Holder::User(session.user.id)))?;
        if let Err(retry_after) = self.throttle.reauth(session.user.id, client).await? {
            // The account was not read: a notice from here is in the default language.
            return Err(self
                .reauth_failed(session, client, None, true)
                .await?
                .unwrap_or(Reauth::Stop(Stop::Retry(retry_after))));
        }
        let Some(creds) = self
            .ports
            .users
            .find_by_id(session.user.id)
            .await
            .map_err(Failure::from)?
        else {
            return Err(Reauth::Gone);
        };
        let check = self
            .ports
            .hasher
            .verify(password.secret(), &creds.password_hash)
            .await
            .map_err(Failure::from)?;
        if check.is_match() {
            return Ok(creds);
        }
        Err(self
            .reauth_failed(session, client, creds.language.as_deref(), false)
            .await?
            .unwrap_or(Reauth::WrongPassword))
    }

    /// Counts a failed check against the session's hard limit; past it, ends the session,
    /// mails the owner and answers [`Reauth::SessionEnded`]. The history records a wrong
    /// answer as `reauth_failed` and one a budget refused unchecked (`throttled`) as
    /// `reauth_throttled`.
    pub(super) async fn reauth_failed(
        &self,
        session: &Session,
        client: &ClientInfo,
        language: Option<&str>,
        throttled: bool,
    ) -> Result<Option<Reauth>, Failure> {
        let kind = if throttled {
            crate::ports::SecurityEventKind::ReauthThrottled
        } else {
            crate::ports::SecurityEventKind::ReauthFailed
        };
        self.record_event(session.user.id, kind, client).await;
        if self.throttle.reauth_failed(session.id, client).await? {
            return Ok(None);
        }
        self.ports.sessions.delete(&session.token_hash).await?;
        warn!(
            security_event = "session_ended_after_wrong_passwords",
            user_id = %session.user.id,
            session = %super::short_id(session.id),
            client_ip = client.ip.map(|ip| ip.to_string()),
            "session ended: too many wrong passwords inside it"
        );
        self.record_event(
            session.user.id,
            crate::ports::SecurityEventKind::Lockout,
            client,
        )
        .await;
        self.send_best_effort(
            &session.user.email,
            &MailMessage::SessionEndedAfterWrongPasswords,
            language,
        )
        .await;
        Ok(Some(Reauth::SessionEnded))
    }
}

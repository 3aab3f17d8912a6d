//! Administration: roles, the privilege window, and what an administrator may do to other
//! accounts (list, inspect, end sessions, resend the verification code, disable, enable,
//! change the role, delete; ASVS 7.4.2, 7.4.5).
//!
//! Every operation checks, here in the core, that the acting session belongs to an enabled
//! administrator (read fresh from the user store, so a demotion takes effect at once) and that
//! the session's privilege window is open: the administrator gave the password again inside
//! this session within [`AuthConfig::admin_reauth_window`](super::AuthConfig::admin_reauth_window).

use chrono::{DateTime, Utc};
use tracing::{info, instrument, warn};

use super::changes::Companion;
use super::events::EventPage;
use super::guard::Reauth;
use super::mfa::StepUp;
use super::{add, short_id, AdminError, AuthService, ResendOtpError};
use crate::domain::email::EmailAddress;
use crate::domain::mfa::SecondFactor;
use crate::domain::password::{Password, PasswordAttempt};
use crate::domain::session::{ClientInfo, Session, SessionId};
use crate::domain::user::{AccountSummary, NewUser, Role, UserCredentials, UserId, UserQuery};
use crate::ports::{EventCursor, MailMessage, SecurityEventKind, UserRepoError, MAX_SESSIONS_PAGE};

/// Largest page of [`AuthService::admin_list_users`].
pub const MAX_ACCOUNTS_PAGE: usize = 100;

/// One page of accounts.
#[derive(Debug, Clone)]
pub struct AccountPage {
    /// The accounts, in address order.
    pub accounts: Vec<AccountSummary>,
    /// The address the next page starts after; `None` on the last page.
    pub next: Option<EmailAddress>,
}

/// One account as an administrator inspects it: the account and its live sessions.
#[derive(Debug, Clone)]
pub struct AdminAccount {
    /// The account.
    pub account: AccountSummary,
    /// Its newest live sessions, newest first: at most [`MAX_SESSIONS_PAGE`] (the whole set
    /// unless `MAX_SESSIONS_PER_USER` is raised past it).
    pub sessions: Vec<Session>,
    /// Whether the account holds more sessions than `sessions` shows.
    pub more_sessions: bool,
    /// Whether it has two-factor authentication (TOTP) on.
    pub two_factor: bool,
}

fn summary(creds: UserCredentials) -> AccountSummary {
    AccountSummary {
        user: creds.user,
        status: creds.status,
    }
}

impl AuthService {
    /// The session's account, if it is an enabled administrator: read from the user store,
    /// not from the session, so a role change or a disabling counts at once.
    /// [`AdminError::Unauthenticated`] when the account is gone, [`AdminError::Forbidden`]
    /// when it is not an administrator (or is disabled).
    pub async fn authorize_admin(&self, session: &Session) -> Result<UserCredentials, AdminError> {
        let Some(creds) = self.ports.users.find_by_id(session.user.id).await? else {
            return Err(AdminError::Unauthenticated);
        };
        if !creds.status.is_admin() || creds.status.is_disabled() {
            warn!(
                security_event = "admin_access_refused",
                user_id = %session.user.id,
                "administrative request refused: the account is not an administrator"
            );
            return Err(AdminError::Forbidden);
        }
        Ok(creds)
    }

    /// [`AuthService::authorize_admin`], and the session's privilege window must be open
    /// ([`AdminError::ReauthenticationRequired`] otherwise).
    pub(super) async fn privileged(
        &self,
        session: &Session,
    ) -> Result<UserCredentials, AdminError> {
        let creds = self.authorize_admin(session).await?;
        let now = self.ports.clock.now();
        match self.ports.sessions.privilege_window(session.id).await? {
            Some(until) if now < until => Ok(creds),
            _ => Err(AdminError::ReauthenticationRequired),
        }
    }

    /// The target account of an administrative change, which must not be the actor's own.
    async fn target(&self, actor: &Session, id: UserId) -> Result<UserCredentials, AdminError> {
        if id == actor.user.id {
            return Err(AdminError::OwnAccount);
        }
        self.ports
            .users
            .find_by_id(id)
            .await?
            .ok_or(AdminError::NotFound)
    }

    /// Opens the session's privilege window for
    /// [`AuthConfig::admin_reauth_window`](super::AuthConfig::admin_reauth_window): the
    /// administrator gives the password again, under the re-authentication budgets (a
    /// session that keeps giving wrong passwords is ended, as for any re-authentication),
    /// and, with TOTP on, a current second factor (the step-up of every sensitive change: a
    /// wrong one counts against the same budget). Returns when the window closes.
    #[instrument(skip_all, fields(user_id = %session.user.id))]
    pub async fn admin_reauthenticate(
        &self,
        session: &Session,
        password: &PasswordAttempt,
        factor: Option<&SecondFactor>,
        client: &ClientInfo,
    ) -> Result<DateTime<Utc>, AdminError> {
        self.authorize_admin(session).await?;
        let creds = match self.reauthenticate(session, password, client).await {
            Ok(creds) => creds,
            Err(Reauth::Gone | Reauth::SessionEnded) => return Err(AdminError::Unauthenticated),
            Err(Reauth::WrongPassword) => {
                info!("privilege window refused: wrong password");
                return Err(AdminError::InvalidCredentials);
            }
            Err(Reauth::Stop(stop)) => return Err(stop.into()),
        };
        match self.step_up(session, &creds, factor, client).await {
            Ok(()) => {}
            Err(StepUp::Required) => {
                info!("privilege window refused: no second factor");
                return Err(AdminError::SecondFactorRequired);
            }
            Err(StepUp::Wrong) => {
                info!("privilege window refused: wrong second factor");
                return Err(AdminError::InvalidSecondFactor);
            }
            Err(StepUp::SessionEnded) => return Err(AdminError::Unauthenticated),
            Err(StepUp::Failure(f)) => return Err(f.into()),
        }
        let now = self.ports.clock.now();
        let until = add(now, self.config.admin_reauth_window);
        self.ports
            .sessions
            .open_privilege_window(session.id, until, self.config.admin_reauth_window)
            .await?;
        info!(
            security_event = "admin_privilege_window_opened",
            session = %short_id(session.id),
            "administrative privilege window opened"
        );
        Ok(until)
    }

    /// A page of accounts matching `query` (its `limit` is clamped to 1 to
    /// [`MAX_ACCOUNTS_PAGE`]; its address prefix is lower-cased).
    pub async fn admin_list_users(
        &self,
        actor: &Session,
        query: UserQuery,
    ) -> Result<AccountPage, AdminError> {
        self.privileged(actor).await?;
        let limit = query.limit.clamp(1, MAX_ACCOUNTS_PAGE);
        let query = UserQuery {
            email_prefix: query.email_prefix.map(|p| p.to_lowercase()),
            limit: limit + 1,
            ..query
        };
        let mut accounts = self.ports.users.list(&query).await?;
        let next = if accounts.len() > limit {
            accounts.truncate(limit);
            accounts.last().map(|a| a.user.email.clone())
        } else {
            None
        };
        Ok(AccountPage { accounts, next })
    }

    /// One account, its live sessions and whether it has two-factor authentication on.
    pub async fn admin_get_user(
        &self,
        actor: &Session,
        id: UserId,
    ) -> Result<AdminAccount, AdminError> {
        self.privileged(actor).await?;
        let creds = self
            .ports
            .users
            .find_by_id(id)
            .await?
            .ok_or(AdminError::NotFound)?;
        let page = self
            .list_sessions_page(id, None, MAX_SESSIONS_PAGE)
            .await
            .map_err(|e| match e {
                super::SessionError::NotFound => AdminError::NotFound,
                super::SessionError::Failure(f) => AdminError::Failure(f),
            })?;
        let two_factor = self.totp_enabled(id).await?;
        Ok(AdminAccount {
            account: summary(creds),
            sessions: page.sessions,
            more_sessions: page.next.is_some(),
            two_factor,
        })
    }

    /// Ends one session of the account (ASVS 7.4.5).
    #[instrument(skip_all, fields(user_id = %id))]
    pub async fn admin_revoke_session(
        &self,
        actor: &Session,
        id: UserId,
        session_id: SessionId,
        client: &ClientInfo,
    ) -> Result<(), AdminError> {
        self.privileged(actor).await?;
        if !self.ports.sessions.delete_by_id(id, session_id).await? {
            return Err(AdminError::NotFound);
        }
        self.record_admin_event(id, SecurityEventKind::SessionsEndedByAdmin, client)
            .await;
        info!(
            security_event = "admin_session_revoked",
            admin_id = %actor.user.id,
            session = %short_id(session_id),
            "an administrator ended a session"
        );
        Ok(())
    }

    /// Ends every session of the account (ASVS 7.4.5), winning races with logins in flight
    /// like a logout everywhere. Returns how many there were.
    #[instrument(skip_all, fields(user_id = %id))]
    pub async fn admin_revoke_all(
        &self,
        actor: &Session,
        id: UserId,
        client: &ClientInfo,
    ) -> Result<u64, AdminError> {
        self.privileged(actor).await?;
        let creds = self
            .ports
            .users
            .find_by_id(id)
            .await?
            .ok_or(AdminError::NotFound)?;
        let n = self.revoke_all(id, &creds.user.email, None).await?;
        info!(
            security_event = "admin_sessions_revoked",
            admin_id = %actor.user.id,
            revoked = n,
            "an administrator ended every session of an account"
        );
        self.record_admin_event(id, SecurityEventKind::SessionsEndedByAdmin, client)
            .await;
        Ok(n)
    }

    /// Mails the account a new verification code, as [`AuthService::resend_otp`] would
    /// (spending the budgets of the administrator's `client` and of the address).
    /// [`AdminError::AlreadyVerified`] for a verified account.
    pub async fn admin_resend_verification(
        &self,
        actor: &Session,
        id: UserId,
        client: &ClientInfo,
    ) -> Result<(), AdminError> {
        self.privileged(actor).await?;
        let creds = self
            .ports
            .users
            .find_by_id(id)
            .await?
            .ok_or(AdminError::NotFound)?;
        if creds.user.is_verified() {
            return Err(AdminError::AlreadyVerified);
        }
        // The administrator knows the account exists: inside the cooldown the answer says so
        // (nothing is mailed then), rather than claiming a code is on its way.
        self.resend_verification(&creds.user.email, client, false)
            .await
            .map_err(|e| match e {
                ResendOtpError::TooManyRequests { retry_after } => {
                    AdminError::TooManyRequests { retry_after }
                }
                ResendOtpError::Failure(f) => AdminError::Failure(f),
            })
    }

    /// Disables the account: it is marked first, then every session is ended (raising the
    /// revocation epoch, so a login in flight leaves no session), and the owner is mailed.
    /// Logins are refused with `AccountDisabled` from then on. Disabling a disabled account
    /// ends its sessions again and mails nothing.
    #[instrument(skip_all, fields(user_id = %id))]
    pub async fn admin_disable_user(
        &self,
        actor: &Session,
        id: UserId,
        client: &ClientInfo,
    ) -> Result<(), AdminError> {
        self.privileged(actor).await?;
        let creds = self.target(actor, id).await?;
        let now = self.ports.clock.now();
        let written = if creds.status.is_disabled() {
            None
        } else {
            let mail = Companion::to_owner(&creds, MailMessage::AccountDisabled);
            Some(self.set_disabled(id, Some(now), mail).await?)
        };
        // After the mark: a login that read the account before it had read the epoch before
        // this raises it.
        let n = self.revoke_all(id, &creds.user.email, None).await?;
        info!(
            security_event = "account_disabled",
            admin_id = %actor.user.id,
            revoked = n,
            "an administrator disabled an account; every session ended"
        );
        if let Some(written) = written {
            self.record_admin_event(id, SecurityEventKind::AccountDisabledByAdmin, client)
                .await;
            self.deliver_notice(written).await;
        }
        Ok(())
    }

    /// Enables a disabled account (its owner may log in again) and mails the owner; nothing
    /// happens to an enabled one.
    #[instrument(skip_all, fields(user_id = %id))]
    pub async fn admin_enable_user(
        &self,
        actor: &Session,
        id: UserId,
        client: &ClientInfo,
    ) -> Result<(), AdminError> {
        self.privileged(actor).await?;
        let creds = self.target(actor, id).await?;
        if !creds.status.is_disabled() {
            return Ok(());
        }
        let mail = Companion::to_owner(&creds, MailMessage::AccountEnabled);
        let written = self.set_disabled(id, None, mail).await?;
        info!(
            security_event = "account_enabled",
            admin_id = %actor.user.id,
            "an administrator enabled an account"
        );
        self.record_admin_event(id, SecurityEventKind::AccountEnabledByAdmin, client)
            .await;
        self.deliver_notice(written).await;
        Ok(())
    }

    /// Sets the account's role and mails the owner when it changed. Demoting or promoting
    /// one's own account is [`AdminError::OwnAccount`].
    #[instrument(skip_all, fields(user_id = %id, role = %role))]
    pub async fn admin_set_role(
        &self,
        actor: &Session,
        id: UserId,
        role: Role,
        client: &ClientInfo,
    ) -> Result<(), AdminError> {
        self.privileged(actor).await?;
        let creds = self.target(actor, id).await?;
        if creds.status.role == role {
            return Ok(());
        }
        let mail = Companion::to_owner(
            &creds,
            match role {
                Role::Admin => MailMessage::AdminRoleGranted,
                Role::User => MailMessage::AdminRoleRevoked,
            },
        );
        let written = self.set_role(id, role, mail).await?;
        if role != Role::Admin {
            // A window opened as an administrator must not outlive the role: were the account
            // made an administrator again, its old sessions would start inside one.
            // Page by page: each read is bounded, whatever the number of sessions.
            let now = self.ports.clock.now();
            let mut after = None;
            loop {
                let page = self
                    .ports
                    .sessions
                    .list_for_user(id, after, MAX_SESSIONS_PAGE)
                    .await?;
                for session in &page.sessions {
                    self.ports
                        .sessions
                        .open_privilege_window(session.id, now, self.config.admin_reauth_window)
                        .await?;
                }
                match page.next {
                    Some(next) => after = Some(next),
                    None => break,
                }
            }
        }
        info!(
            security_event = "role_changed",
            admin_id = %actor.user.id,
            "an administrator changed an account's role"
        );
        self.record_admin_event(id, SecurityEventKind::RoleChangedByAdmin, client)
            .await;
        self.deliver_notice(written).await;
        Ok(())
    }

    /// Deletes the account for good (ASVS 7.4.2): every session is ended before and after
    /// the deletion (so a racing login leaves none) and the owner is mailed.
    #[instrument(skip_all, fields(user_id = %id))]
    pub async fn admin_delete_user(
        &self,
        actor: &Session,
        id: UserId,
        client: &ClientInfo,
    ) -> Result<(), AdminError> {
        self.privileged(actor).await?;
        let creds = self.target(actor, id).await?;
        self.revoke_all(id, &creds.user.email, None).await?;
        let mail = Companion::to_owner(&creds, MailMessage::AccountDeletedByAdmin);
        let deleted = self.delete_user(id, mail).await?;
        self.revoke_all(id, &creds.user.email, None).await?;
        let Some(notice) = deleted else {
            return Err(AdminError::NotFound);
        };
        info!(
            security_event = "account_deleted_by_admin",
            admin_id = %actor.user.id,
            "an administrator deleted an account; every session ended"
        );
        self.record_admin_event(id, SecurityEventKind::AccountDeletedByAdmin, client)
            .await;
        self.deliver_notice(notice).await;
        Ok(())
    }

    /// Turns the account's two-factor authentication off (its owner lost the authenticator
    /// and the recovery codes): the TOTP secret and recovery codes are deleted, every session
    /// of the account ends (as when the owner turns it off), the owner is mailed and the reset
    /// is recorded in the account's history. [`AdminError::NotFound`] when there is no such
    /// account or it has no second factor; [`AdminError::OwnAccount`] for the administrator's
    /// own (which needs the owner's step-up, `DELETE /me/mfa/totp`).
    #[instrument(skip_all, fields(user_id = %id))]
    pub async fn admin_reset_mfa(
        &self,
        actor: &Session,
        id: UserId,
        client: &ClientInfo,
    ) -> Result<(), AdminError> {
        self.privileged(actor).await?;
        let creds = self.target(actor, id).await?;
        if !self.totp_enabled(id).await? || !self.ports.totp.disable(id).await? {
            return Err(AdminError::NotFound);
        }
        let n = self.revoke_all(id, &creds.user.email, None).await?;
        warn!(
            security_event = "totp_reset_by_admin",
            admin_id = %actor.user.id,
            revoked = n,
            "an administrator turned an account's two-factor authentication off; every session ended"
        );
        self.record_admin_event(id, SecurityEventKind::TwoFactorResetByAdmin, client)
            .await;
        self.send_best_effort(
            &creds.user.email,
            &MailMessage::TotpResetByAdmin,
            creds.language.as_deref(),
        )
        .await;
        Ok(())
    }

    /// One page of the account's security history, as
    /// [`AuthService::security_events`] gives it to its owner. An id without an account (a
    /// deleted one, say) has the events kept of it, if any.
    pub async fn admin_security_events(
        &self,
        actor: &Session,
        id: UserId,
        after: Option<EventCursor>,
        limit: usize,
    ) -> Result<EventPage, AdminError> {
        self.privileged(actor).await?;
        Ok(self.security_events(id, after, limit).await?)
    }

    /// Records what an administrator did to account `id`: with the request's id (to find the
    /// administrator in the logs), without the administrator's network or user agent, which
    /// are not the owner's to see.
    async fn record_admin_event(&self, id: UserId, kind: SecurityEventKind, client: &ClientInfo) {
        let seen = ClientInfo {
            request_id: client.request_id.clone(),
            ..ClientInfo::default()
        };
        self.record_event(id, kind, &seen).await;
    }

    /// Makes `email`'s account an administrator (the `admin promote` command: no session, no
    /// window, no mail). [`AdminError::NotFound`] when there is no such account.
    pub async fn promote_to_admin(&self, email: &EmailAddress) -> Result<UserId, AdminError> {
        let creds = self
            .ports
            .users
            .find_by_email(email)
            .await?
            .ok_or(AdminError::NotFound)?;
        self.ports
            .users
            .set_role(creds.user.id, Role::Admin)
            .await
            .map_err(|e| match e {
                UserRepoError::NotFound => AdminError::NotFound,
                e => e.into(),
            })?;
        info!(
            security_event = "role_changed",
            user_id = %creds.user.id,
            "account made an administrator from the command line"
        );
        Ok(creds.user.id)
    }

    /// Creates a verified administrator account (the `admin create` command: no session, no
    /// mail). [`AdminError::EmailTaken`] when the address has an account,
    /// [`AdminError::PasswordBreached`] when the password is on the breached-password list.
    pub async fn create_admin(
        &self,
        email: &EmailAddress,
        password: &Password,
    ) -> Result<UserId, AdminError> {
        if self.is_breached(password).await {
            return Err(AdminError::PasswordBreached);
        }
        let password_hash = self.ports.hasher.hash(password.secret()).await?;
        let now = self.ports.clock.now();
        let new_user = NewUser {
            id: UserId::from_uuid(self.ports.random.uuid()),
            email: email.clone(),
            password_hash,
            created_at: now,
            language: None,
        };
        let user = match self.ports.users.create(&new_user).await {
            Ok(user) => user,
            Err(UserRepoError::Duplicate) => return Err(AdminError::EmailTaken),
            Err(e) => return Err(e.into()),
        };
        self.ports.users.mark_verified(user.id, now).await?;
        self.ports.users.set_role(user.id, Role::Admin).await?;
        info!(
            security_event = "role_changed",
            user_id = %user.id,
            "administrator account created from the command line"
        );
        Ok(user.id)
    }

    /// Imports an account with a password hash made elsewhere (the `users import` command:
    /// no session, no mail). The hash is stored as given: any format the
    /// [`PasswordHasher`](crate::PasswordHasher) verifies, which on the account's next
    /// successful login answers `MatchNeedsRehash` unless it is current, so the login stores
    /// a current hash. `verified_at` is the verification state as given. Created at
    /// `created_at`, or now. [`AdminError::EmailTaken`] when the address has an account.
    pub async fn import_user(
        &self,
        email: &EmailAddress,
        password_hash: crate::domain::password::PasswordHash,
        verified_at: Option<chrono::DateTime<chrono::Utc>>,
        created_at: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<UserId, AdminError> {
        let now = self.ports.clock.now();
        let new_user = NewUser {
            id: UserId::from_uuid(self.ports.random.uuid()),
            email: email.clone(),
            password_hash,
            created_at: created_at.unwrap_or(now),
            language: None,
        };
        let user = match self.ports.users.create(&new_user).await {
            Ok(user) => user,
            Err(UserRepoError::Duplicate) => return Err(AdminError::EmailTaken),
            Err(e) => return Err(e.into()),
        };
        if let Some(at) = verified_at {
            self.ports.users.mark_verified(user.id, at).await?;
        }
        info!(user_id = %user.id, "account imported from the command line");
        Ok(user.id)
    }
}

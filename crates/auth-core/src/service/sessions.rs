//! Sessions: login, authentication of a token, logout (one, all), listing and revoking.

use chrono::{DateTime, Utc};
use tracing::{info, instrument, warn, Span};

use super::fairness::Holder;
use super::guard::Stop;
use super::{add, short_id, since, AuthService, AuthenticateError, LoginError, LoginOutcome};
use super::{Failure, LoginWithCodeError, OtpCheckError, RequestLoginCodeError, SessionError};
use crate::domain::device::{DeviceCredential, DeviceId};
use crate::domain::email::EmailAddress;
use crate::domain::otp::{OtpCode, OtpPurpose};
use crate::domain::passkey::PasskeyId;
use crate::domain::password::PasswordAttempt;
use crate::domain::session::{ClientInfo, Session, SessionId, SessionToken};
use crate::domain::user::{User, UserId};
use crate::ports::{
    LoginFailure, PasswordCheck, SecurityEventKind, SessionCursor, SessionPage, MAX_SESSIONS_PAGE,
};
use crate::throttle::Action;

/// Why a checked login did not get its session.
pub(super) enum Opened {
    /// A revocation ran while the credentials were checked.
    LostToRevocation,
    /// A port failed.
    Failure(Failure),
}

impl From<Failure> for Opened {
    fn from(f: Failure) -> Self {
        Self::Failure(f)
    }
}

impl From<crate::ports::SessionStoreError> for Opened {
    fn from(e: crate::ports::SessionStoreError) -> Self {
        Self::Failure(e.into())
    }
}

impl AuthService {
    /// Checks a password and opens a session.
    ///
    /// Spends the `login` budgets of `client` and the address before the password is checked
    /// (the `(address, IP)` soft lock starts over after a correct password), and holds one of
    /// the client's and the address's hashing slots while it hashes.
    ///
    /// Revocation wins: the address's revocation epoch is read before the password hash and
    /// again once the session is stored; if a revocation (password change or reset, logout
    /// everywhere, account deletion) ran in between, the new session is deleted and the login
    /// fails with [`LoginError::InvalidCredentials`].
    #[instrument(skip_all, fields(user_id = tracing::field::Empty))]
    pub async fn login(
        &self,
        email: &EmailAddress,
        password: &PasswordAttempt,
        client: ClientInfo,
    ) -> Result<LoginOutcome, LoginError> {
        self.login_with_device(email, password, client, None).await
    }

    /// [`AuthService::login`] from a client that may hold a device credential (see
    /// [`crate::domain::device`]).
    ///
    /// A credential the service issued for this address, within
    /// [`AuthConfig::device_ttl`](super::AuthConfig::device_ttl), makes this a login from a
    /// known device: it spends only that device's `login:device` budget (refilled by a correct
    /// password) and holds the device's hashing slot instead of the address's, so that nobody
    /// without the device can lock it out, however many guesses they make on the address. Any
    /// other credential (forged, expired, for another address) is ignored: the login is
    /// anonymous and spends the `login` budgets. A successful login returns a fresh credential
    /// for the device (a new device when none was recognised).
    #[instrument(skip_all, fields(user_id = tracing::field::Empty, known_device))]
    pub async fn login_with_device(
        &self,
        email: &EmailAddress,
        password: &PasswordAttempt,
        client: ClientInfo,
        device: Option<&DeviceCredential>,
    ) -> Result<LoginOutcome, LoginError> {
        let device = device.and_then(|d| self.known_device(d, email));
        Span::current().record("known_device", device.is_some());
        let holder = match device {
            Some(id) => Holder::Device(id),
            None => Holder::Email(email.clone()),
        };
        let _slot = self.hashing_slot(&client, Some(holder))?;
        let admitted = match device {
            Some(id) => self
                .throttle
                .check_device_login(&client, email, id)
                .await
                .map_err(Stop::from)
                .and_then(|r| r.map_err(Stop::Retry)),
            None => self
                .admit(Action::Login, &client, email, false)
                .await
                .map(drop),
        };
        if let Err(Stop::Retry(_)) = admitted {
            self.record_failed_login(email, LoginFailure::Throttled, &client)
                .await;
        }
        admitted?;
        let epoch = self.ports.sessions.revocation_epoch(email).await?;
        let Some(creds) = self.ports.users.find_by_email(email).await? else {
            // Same cost as checking a real password, so timing does not tell.
            self.ports.hasher.hash(password.secret()).await?;
            info!("login failed");
            return Err(LoginError::InvalidCredentials);
        };
        Span::current().record("user_id", tracing::field::display(creds.user.id));
        let check = self
            .ports
            .hasher
            .verify(password.secret(), &creds.password_hash)
            .await?;
        if !check.is_match() {
            info!("login failed: wrong password");
            self.record_event(
                creds.user.id,
                SecurityEventKind::LoginFailed(LoginFailure::BadCredentials),
                &client,
            )
            .await;
            return Err(LoginError::InvalidCredentials);
        }
        if !creds.user.is_verified() {
            self.record_event(
                creds.user.id,
                SecurityEventKind::LoginFailed(LoginFailure::Unverified),
                &client,
            )
            .await;
        }
        if !creds.user.is_verified() && self.config.enumeration_protection {
            // Anyone can sign up any address with a password of their own, so "not verified"
            // for that password would tell that the address had no verified account (whose
            // password the stranger would not know: 401). Answered and counted like a wrong
            // password; the message says the address may not be verified yet.
            info!("login refused: the address is not verified");
            return Err(LoginError::InvalidCredentials);
        }
        // The right password: this client's soft lock on the address (or this device's
        // budget) starts over.
        match device {
            Some(id) => self.throttle.device_login_succeeded(email, id).await?,
            None => self.throttle.login_succeeded(&client, email).await?,
        }
        if !creds.user.is_verified() {
            return Err(LoginError::EmailNotVerified);
        }
        if creds.status.is_disabled() {
            info!(
                security_event = "login_refused_disabled",
                "login refused: the account is disabled"
            );
            return Err(LoginError::AccountDisabled);
        }
        let now = self.ports.clock.now();
        if check == PasswordCheck::MatchNeedsRehash {
            self.rehash(creds.user.id, &creds.user.email, password, now)
                .await;
        }
        if let Some(pending) = self.second_step_for(&creds.user, &client, epoch).await? {
            return Err(LoginError::SecondFactorRequired(pending));
        }
        let user_id = creds.user.id;
        match self
            .open_session(creds.user, client, epoch, device, None)
            .await
        {
            Ok(outcome) => Ok(outcome),
            Err(Opened::LostToRevocation) => Err(self.lost_login(user_id).await),
            Err(Opened::Failure(f)) => Err(LoginError::Failure(f)),
        }
    }

    /// The answer of a right-password login whose session lost to a revocation: what is true
    /// now. When an administrator disabled the account meanwhile, `AccountDisabled` (the
    /// password was right, as for a login that read the mark); otherwise `InvalidCredentials`
    /// (the password was changed or reset meanwhile).
    async fn lost_login(&self, user: UserId) -> LoginError {
        match self.ports.users.find_by_id(user).await {
            Ok(Some(now)) if now.status.is_disabled() => {
                info!(
                    security_event = "login_refused_disabled",
                    "login refused: the account was disabled while the password was checked"
                );
                LoginError::AccountDisabled
            }
            Ok(_) => LoginError::InvalidCredentials,
            Err(e) => LoginError::Failure(e.into()),
        }
    }

    /// The device behind `credential`, if the service issued it for `email` within the
    /// device lifetime.
    pub(super) fn known_device(
        &self,
        credential: &DeviceCredential,
        email: &EmailAddress,
    ) -> Option<DeviceId> {
        let now = self.ports.clock.now();
        let not_before = chrono::TimeDelta::from_std(self.config.device_ttl)
            .ok()
            .and_then(|ttl| now.checked_sub_signed(ttl))
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        self.otp_secret
            .verify_device(credential, email, not_before, now)
    }

    /// Stores a new session for `user`, unless the address's revocation epoch moved since
    /// `epoch` was read (then the session is deleted again), and issues a device credential.
    pub(super) async fn open_session(
        &self,
        user: User,
        client: ClientInfo,
        epoch: u64,
        device: Option<DeviceId>,
        passkey: Option<PasskeyId>,
    ) -> Result<LoginOutcome, Opened> {
        let now = self.ports.clock.now();
        let email = user.email.clone();
        let token = self.ports.random.session_token();
        let session = Session {
            passkey,
            id: SessionId::from_uuid(self.ports.random.uuid()),
            token_hash: token.hash(),
            user: user.clone(),
            created_at: now,
            expires_at: add(now, self.config.session_ttl),
            last_seen_at: now,
            // A session keeps where it was opened from, not the language of that request.
            client: ClientInfo {
                language: None,
                request_id: None,
                ..client.clone()
            },
        };
        let ttl = self.config.session_store_ttl(session.expires_at, now);
        self.ports.sessions.insert(&session, ttl).await?;
        if self.ports.sessions.revocation_epoch(&email).await? != epoch {
            self.ports.sessions.delete(&session.token_hash).await?;
            info!(
                security_event = "login_lost_to_revocation",
                "login failed: the sessions were revoked while the password was checked"
            );
            return Err(Opened::LostToRevocation);
        }
        if let Some(passkey) = passkey {
            if !self.passkey_still_registered(user.id, passkey).await? {
                self.ports.sessions.delete(&session.token_hash).await?;
                info!(
                    security_event = "login_lost_to_revocation",
                    "passkey sign-in failed: the passkey was removed while it was checked"
                );
                return Err(Opened::LostToRevocation);
            }
        }
        if self.config.new_device_mail {
            self.notice_new_device(&user, &client, device.is_some(), now)
                .await;
        }
        let device_id = device.unwrap_or_else(|| DeviceId::from_uuid(self.ports.random.uuid()));
        let device = self.otp_secret.sign_device(&email, device_id, now);
        info!(session = %short_id(session.id), "login succeeded");
        self.record_event(user.id, SecurityEventKind::LoginSucceeded, &client)
            .await;
        Ok(LoginOutcome {
            user,
            token,
            session,
            device,
        })
    }

    /// Records the device of a login among the account's devices and mails the owner when it
    /// was never seen for the account (unless the login carried a device credential the
    /// service issued for the address, or it is the account's first device). A device is its
    /// user agent with every number zeroed (so a browser update is the same device), keyed
    /// with the server secret and the account: the store keeps only that hash, at most
    /// [`KNOWN_DEVICES`](super::KNOWN_DEVICES) per account. A store failure is logged: the
    /// login goes on.
    async fn notice_new_device(
        &self,
        user: &User,
        client: &ClientInfo,
        credential: bool,
        now: DateTime<Utc>,
    ) {
        let key = self.device_key(user.id, client.user_agent.as_deref());
        let sighting = self
            .ports
            .sessions
            .remember_device(
                user.id,
                &key,
                now,
                super::KNOWN_DEVICES,
                self.config.device_ttl,
            )
            .await;
        match sighting {
            Ok(crate::ports::DeviceSighting::New) if !credential => {
                info!(
                    security_event = "new_device_login",
                    "login from a new device"
                );
                self.send_best_effort(
                    &user.email,
                    &crate::ports::MailMessage::NewDeviceLogin,
                    client.language.as_deref(),
                )
                .await;
            }
            Ok(_) => {}
            Err(e) => warn!(error = %e, "the device of a login was not recorded"),
        }
    }

    /// The key of the device `user_agent` of the account `user`.
    fn device_key(&self, user: UserId, user_agent: Option<&str>) -> crate::ports::DeviceKey {
        use hmac::Mac as _;
        let shape: String = user_agent
            .unwrap_or_default()
            .chars()
            .map(|c| if c.is_ascii_digit() { '0' } else { c })
            .collect();
        let mut mac = self.otp_secret.hmac();
        mac.update(b"device-key\0");
        mac.update(user.as_uuid().as_bytes());
        mac.update(shape.as_bytes());
        crate::ports::DeviceKey(mac.finalize().into_bytes().into())
    }

    /// Mails a login code to `email` if it has a verified account: a way in that nobody can
    /// block by guessing the password. Returns `Ok(())` whatever the address; inside the mail
    /// cooldown nothing is sent (the last codes stay valid). Spends the `login-code` and mail
    /// budgets of `client` and the address. The code is checked by
    /// [`AuthService::login_with_code`], where the attempts of the client that asked for it are
    /// counted apart from everybody else's.
    #[instrument(skip_all)]
    pub async fn request_login_code(
        &self,
        email: &EmailAddress,
        client: &ClientInfo,
    ) -> Result<(), RequestLoginCodeError> {
        self.admit(Action::LoginCode, client, email, false).await?;
        self.mail_guarded_code(OtpPurpose::Login, email, client)
            .await?;
        Ok(())
    }

    /// Opens a session with a mailed login code (see [`AuthService::request_login_code`]).
    /// Spends the `login-code-verify` budget of `client`; the code's attempts are counted per
    /// requesting client. Revocation wins as for a password login; a fresh device credential
    /// is returned (for `device`, when it is a known device of the address).
    ///
    /// A failed try on an address that has an account is recorded in its history
    /// (`login_failed`: `throttled` when a budget refused it, `bad_credentials` otherwise); the
    /// address is looked up for every failed try, with or without an account, so neither the
    /// answer nor the time tells them apart.
    #[instrument(skip_all, fields(user_id = tracing::field::Empty))]
    pub async fn login_with_code(
        &self,
        email: &EmailAddress,
        code: &OtpCode,
        client: ClientInfo,
        device: Option<&DeviceCredential>,
    ) -> Result<LoginOutcome, LoginWithCodeError> {
        let seen = client.clone();
        let result = self.open_with_code(email, code, client, device).await;
        let reason = match &result {
            Err(OtpCheckError::TooManyRequests { .. }) => Some(LoginFailure::Throttled),
            Err(
                OtpCheckError::InvalidOtp
                | OtpCheckError::OtpExpired
                | OtpCheckError::TooManyAttempts,
            ) => Some(LoginFailure::BadCredentials),
            _ => None,
        };
        if let Some(reason) = reason {
            self.record_failed_login(email, reason, &seen).await;
        }
        result
    }

    async fn open_with_code(
        &self,
        email: &EmailAddress,
        code: &OtpCode,
        client: ClientInfo,
        device: Option<&DeviceCredential>,
    ) -> Result<LoginOutcome, LoginWithCodeError> {
        self.admit(Action::LoginCodeVerify, &client, email, false)
            .await?;
        let epoch = self.ports.sessions.revocation_epoch(email).await?;
        self.check_code(OtpPurpose::Login, email, code, &client)
            .await?;
        let Some(creds) = self.ports.users.find_by_email(email).await? else {
            return Err(OtpCheckError::InvalidOtp);
        };
        Span::current().record("user_id", tracing::field::display(creds.user.id));
        if !creds.user.is_verified() {
            return Err(OtpCheckError::InvalidOtp);
        }
        if creds.status.is_disabled() {
            info!(
                security_event = "login_refused_disabled",
                "login refused: the account is disabled"
            );
            return Err(OtpCheckError::AccountDisabled);
        }
        if let Some(pending) = self.second_step_for(&creds.user, &client, epoch).await? {
            return Err(OtpCheckError::SecondFactorRequired(pending));
        }
        let device = device.and_then(|d| self.known_device(d, email));
        self.open_session(creds.user, client, epoch, device, None)
            .await
            .map_err(|e| match e {
                Opened::LostToRevocation => OtpCheckError::InvalidOtp,
                Opened::Failure(f) => OtpCheckError::Failure(f),
            })
    }

    /// The user and session behind a token; [`AuthenticateError::Unauthenticated`] for an
    /// unknown, revoked, expired (absolute lifetime) or idle (inactivity timeout) one. One
    /// session-store lookup; plus one write to record the use when the recorded last use is
    /// older than [`AuthConfig::activity_granularity`](crate::AuthConfig::activity_granularity).
    pub async fn authenticate(&self, token: &SessionToken) -> Result<Session, AuthenticateError> {
        self.authenticate_inner(token, None).await
    }

    /// [`AuthService::authenticate`] for a request from `client`: with a
    /// [`SessionBinding`](crate::SessionBinding) on ([`AuthConfig::session_binding`](super::AuthConfig::session_binding)),
    /// a session used from a client that does not match the one that opened it is ended
    /// (and the security history records it) and the answer is `Unauthenticated`.
    pub async fn authenticate_from(
        &self,
        token: &SessionToken,
        client: &ClientInfo,
    ) -> Result<Session, AuthenticateError> {
        self.authenticate_inner(token, Some(client)).await
    }

    async fn authenticate_inner(
        &self,
        token: &SessionToken,
        client: Option<&ClientInfo>,
    ) -> Result<Session, AuthenticateError> {
        let token_hash = token.hash();
        let Some(session) = self.ports.sessions.get(&token_hash).await? else {
            return Err(AuthenticateError::Unauthenticated);
        };
        let now = self.ports.clock.now();
        if now >= session.expires_at || self.is_idle(&session, now) {
            // The store's TTL normally got there first; clean up if it did not.
            let _ = self.ports.sessions.delete(&token_hash).await;
            return Err(AuthenticateError::Unauthenticated);
        }
        if let Some(client) = client {
            if !self.config.session_binding.allows(&session.client, client) {
                self.ports.sessions.delete(&token_hash).await?;
                warn!(
                    security_event = "session_binding_mismatch",
                    user_id = %session.user.id,
                    session = %short_id(session.id),
                    client_ip = client.ip.map(|ip| ip.to_string()),
                    "session ended: used from another client than the one that opened it"
                );
                self.record_event(session.user.id, SecurityEventKind::SessionEnded, client)
                    .await;
                return Err(AuthenticateError::Unauthenticated);
            }
        }
        let Some(granularity) = self.config.activity_granularity() else {
            return Ok(session);
        };
        if since(session.last_seen_at, now) < granularity {
            return Ok(session);
        }
        let mut seen = session;
        let recorded = seen.last_seen_at;
        seen.last_seen_at = now;
        let ttl = self.config.session_store_ttl(seen.expires_at, now);
        match self.ports.sessions.touch(&seen, ttl).await {
            Ok(true) => Ok(seen),
            // Revoked between the read and now.
            Ok(false) => Err(AuthenticateError::Unauthenticated),
            Err(e) => {
                // The session was valid when read; failing the request would turn a store
                // hiccup into an outage. The use is recorded on a later request instead.
                tracing::warn!(error = %e, "could not record session activity");
                seen.last_seen_at = recorded;
                Ok(seen)
            }
        }
    }

    /// Whether the session went unused for the idle timeout or longer.
    fn is_idle(&self, session: &Session, now: DateTime<Utc>) -> bool {
        self.config
            .session_idle_timeout
            .is_some_and(|idle| since(session.last_seen_at, now) >= idle)
    }

    /// Revokes the session behind this token, at once. Revoking an unknown token is not an error.
    /// The security history, when recorded, names the client the session was opened from:
    /// [`AuthService::logout_with_client`] names the one that logs out.
    #[instrument(skip_all)]
    pub async fn logout(&self, token: &SessionToken) -> Result<(), SessionError> {
        self.logout_with_client(token, None).await
    }

    /// [`AuthService::logout`], recording `client` (when given) in the security history.
    /// With events recorded, the session is read before it is deleted (to learn its user).
    #[instrument(skip_all)]
    pub async fn logout_with_client(
        &self,
        token: &SessionToken,
        client: Option<&ClientInfo>,
    ) -> Result<(), SessionError> {
        let hash = token.hash();
        let session = if self.records_security_events() {
            self.ports.sessions.get(&hash).await?
        } else {
            None
        };
        let deleted = self.ports.sessions.delete(&hash).await?;
        if let (true, Some(session)) = (deleted, session) {
            let client = client.unwrap_or(&session.client);
            self.record_event(session.user.id, SecurityEventKind::Logout, client)
                .await;
        }
        Ok(())
    }

    /// Revokes every session of the session's user (this one included), at once; returns how
    /// many there were. A login in flight with a password checked before this call started
    /// leaves no session behind (see the revocation rule on [`AuthService`]).
    #[instrument(skip_all, fields(user_id = %session.user.id))]
    pub async fn logout_all(&self, session: &Session) -> Result<u64, SessionError> {
        self.logout_all_with_client(session, &session.client).await
    }

    /// [`AuthService::logout_all`], recording `client` in the security history.
    #[instrument(skip_all, fields(user_id = %session.user.id))]
    pub async fn logout_all_with_client(
        &self,
        session: &Session,
        client: &ClientInfo,
    ) -> Result<u64, SessionError> {
        let n = self
            .revoke_all(session.user.id, &session.user.email, None)
            .await?;
        info!(revoked = n, "all sessions revoked");
        self.record_event(session.user.id, SecurityEventKind::LogoutAll, client)
            .await;
        Ok(n)
    }

    /// One page of the user's live sessions, newest first: at most `limit` (1 to
    /// [`MAX_SESSIONS_PAGE`]) after `after`, and the cursor of the next page when there is one.
    /// A page costs one read of at most `limit` index entries, whatever the number of the
    /// user's sessions; it may hold fewer than `limit` (sessions that ended or went idle are
    /// left out) and still have a next page.
    pub async fn list_sessions_page(
        &self,
        user_id: UserId,
        after: Option<SessionCursor>,
        limit: usize,
    ) -> Result<SessionPage, SessionError> {
        let limit = limit.clamp(1, MAX_SESSIONS_PAGE);
        let now = self.ports.clock.now();
        let mut page = self
            .ports
            .sessions
            .list_for_user(user_id, after, limit)
            .await?;
        page.sessions
            .retain(|s| s.user.id == user_id && s.expires_at > now && !self.is_idle(s, now));
        Ok(page)
    }

    /// Revokes one of the user's sessions by its public id; [`SessionError::NotFound`] when it
    /// is not one of theirs.
    #[instrument(skip_all, fields(user_id = %user_id))]
    pub async fn revoke_session(
        &self,
        user_id: UserId,
        session_id: SessionId,
    ) -> Result<(), SessionError> {
        self.revoke_session_with_client(user_id, session_id, &ClientInfo::default())
            .await
    }

    /// [`AuthService::revoke_session`], recording `client` (the one that ended the session)
    /// in the security history.
    #[instrument(skip_all, fields(user_id = %user_id))]
    pub async fn revoke_session_with_client(
        &self,
        user_id: UserId,
        session_id: SessionId,
        client: &ClientInfo,
    ) -> Result<(), SessionError> {
        if self
            .ports
            .sessions
            .delete_by_id(user_id, session_id)
            .await?
        {
            info!(session = %short_id(session_id), "session revoked");
            self.record_event(user_id, SecurityEventKind::SessionEnded, client)
                .await;
            Ok(())
        } else {
            Err(SessionError::NotFound)
        }
    }

    async fn rehash(
        &self,
        user_id: UserId,
        email: &EmailAddress,
        password: &PasswordAttempt,
        now: DateTime<Utc>,
    ) {
        let result = async {
            let hash = self.ports.hasher.hash(password.secret()).await?;
            self.ports
                .users
                .set_password_hash(user_id, email, &hash, now)
                .await?;
            Ok::<_, Failure>(())
        }
        .await;
        match result {
            Ok(()) => info!("password re-hashed with current parameters"),
            Err(e) => warn!(error = %e, "password re-hash failed; will retry at next login"),
        }
    }
}

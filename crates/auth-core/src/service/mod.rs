//! [`AuthService`]: the whole account and session lifecycle, written against the ports.

mod errors;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tracing::{info, instrument, warn, Span};

pub use errors::*;

use crate::domain::email::EmailAddress;
use crate::domain::otp::{OtpCode, OtpMac, OtpPurpose, OtpSecret, StoredOtp};
use crate::domain::password::{Password, PasswordAttempt, PasswordPolicy};
use crate::domain::session::{ClientInfo, Session, SessionId, SessionToken};
use crate::domain::user::{NewUser, User, UserCredentials, UserId};
use crate::ports::{
    Clock, MailMessage, Mailer, OtpStore, PasswordCheck, PasswordHasher, RandomSource, SendSlot,
    SessionStore, UserRepoError, UserRepository,
};

/// Tunable rules of the service. `Default` gives the documented defaults.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// How long a one-time code is valid (default 10 minutes).
    pub otp_ttl: Duration,
    /// Wrong attempts allowed per code before it is dead (default 5).
    pub otp_max_attempts: u32,
    /// Minimum time between two code mails to one address, per purpose (default 60 s).
    pub mail_cooldown: Duration,
    /// Absolute session lifetime (default 24 h): a session ends this long after login,
    /// however much it is used.
    pub session_ttl: Duration,
    /// Inactivity timeout (default 30 min; `None`: none): a session not used for this long
    /// ends. Uses are recorded at most once per [`AuthConfig::activity_granularity`], so a
    /// session ends between `timeout - granularity` and `timeout` after its last use.
    pub session_idle_timeout: Option<Duration>,
    /// Rules for new passwords.
    pub password_policy: PasswordPolicy,
    /// When on, signup for an address that has a verified account answers like a new signup
    /// and mails the owner a notice, instead of returning [`SignupError::EmailTaken`].
    pub enumeration_protection: bool,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            otp_ttl: Duration::from_secs(10 * 60),
            otp_max_attempts: 5,
            mail_cooldown: Duration::from_secs(60),
            session_ttl: Duration::from_secs(24 * 60 * 60),
            session_idle_timeout: Some(Duration::from_secs(30 * 60)),
            password_policy: PasswordPolicy::default(),
            enumeration_protection: false,
        }
    }
}

impl AuthConfig {
    /// How stale a session's recorded last use may get before a use is written to the store:
    /// an eighth of the idle timeout, at most one minute. Keeps session validation to one
    /// store read for nearly every request.
    pub fn activity_granularity(&self) -> Option<Duration> {
        self.session_idle_timeout
            .map(|idle| (idle / 8).min(Duration::from_secs(60)))
    }

    /// The store TTL of a session at `now`: until the idle timeout runs out, but never past
    /// the absolute lifetime.
    fn session_store_ttl(&self, expires_at: DateTime<Utc>, now: DateTime<Utc>) -> Duration {
        let left = (expires_at - now).to_std().unwrap_or(Duration::ZERO);
        self.session_idle_timeout
            .map_or(left, |idle| idle.min(left))
    }
}

/// How long an expired code is still kept, so that using it says "expired" rather than
/// "invalid". The store drops it after `otp_ttl + EXPIRED_CODE_GRACE`.
const EXPIRED_CODE_GRACE: Duration = Duration::from_secs(15 * 60);

/// The adapters the service runs on.
#[derive(Clone)]
pub struct AuthPorts {
    /// Durable accounts.
    pub users: Arc<dyn UserRepository>,
    /// Server-side sessions.
    pub sessions: Arc<dyn SessionStore>,
    /// One-time codes and mail cooldowns.
    pub otps: Arc<dyn OtpStore>,
    /// Outgoing mail.
    pub mailer: Arc<dyn Mailer>,
    /// Password hashing.
    pub hasher: Arc<dyn PasswordHasher>,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// Randomness.
    pub random: Arc<dyn RandomSource>,
}

impl std::fmt::Debug for AuthPorts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthPorts").finish_non_exhaustive()
    }
}

/// A successful login.
#[derive(Debug)]
pub struct LoginOutcome {
    /// The account.
    pub user: User,
    /// The new session's bearer token: hand it to the client, then drop it.
    pub token: SessionToken,
    /// The new session.
    pub session: Session,
}

/// Outcome of a readiness check of the stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Readiness {
    /// The user store answered.
    pub users: bool,
    /// The session store answered.
    pub sessions: bool,
}

/// The authentication service.
///
/// # Rules worth knowing
/// - **Pre-account hijacking.** A repeated signup for an address that is still unverified
///   replaces the pending password and the pending code; every earlier code dies. Only the code
///   mailed for the latest signup verifies the account, so the account always ends up with the
///   password chosen in the signup whose mail the owner acted on: a stranger who signed up first
///   with someone else's address loses their password as soon as the owner signs up.
///   Unverified accounts cannot log in, so the stranger never holds a session either.
/// - **Enumeration.** `login` answers the same for an unknown address and a wrong password and
///   costs one full hash in both cases. `forgot_password` and `resend_otp` return the same value
///   whatever the address; their mail cooldown is claimed before the address is looked up.
///
/// # Example: building the service from your own adapters
/// ```
/// use std::sync::Arc;
/// use auth_core::*;
/// // Any implementations of the ports will do; here, the mocks from the `mocks` feature.
/// let ports = AuthPorts {
///     users: Arc::new(MockUserRepository::new()),
///     sessions: Arc::new(MockSessionStore::new()),
///     otps: Arc::new(MockOtpStore::new()),
///     mailer: Arc::new(MockMailer::new()),
///     hasher: Arc::new(MockPasswordHasher::new()),
///     clock: Arc::new(SystemClock),
///     random: Arc::new(OsRandom),
/// };
/// let secret = OtpSecret::new(vec![42u8; 32].into_boxed_slice().into()).unwrap();
/// let service = AuthService::new(ports, AuthConfig::default(), secret);
/// assert_eq!(service.config().otp_max_attempts, 5);
/// ```
pub struct AuthService {
    ports: AuthPorts,
    config: AuthConfig,
    otp_secret: OtpSecret,
}

impl std::fmt::Debug for AuthService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthService")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Why [`AuthService::reauthenticate`] said no.
enum Reauth {
    /// The account no longer exists.
    Gone,
    /// The password is not the account's.
    WrongPassword,
}

/// Time from `then` to `now`; zero if `then` is later (a clock step back).
fn since(then: DateTime<Utc>, now: DateTime<Utc>) -> Duration {
    (now - then).to_std().unwrap_or(Duration::ZERO)
}

fn add(at: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    chrono::TimeDelta::from_std(d)
        .ok()
        .and_then(|d| at.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

impl AuthService {
    /// Builds the service.
    pub fn new(ports: AuthPorts, config: AuthConfig, otp_secret: OtpSecret) -> Self {
        Self {
            ports,
            config,
            otp_secret,
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &AuthConfig {
        &self.config
    }

    /// The policy new passwords must satisfy (for parsing at the boundary).
    pub fn password_policy(&self) -> &PasswordPolicy {
        &self.config.password_policy
    }

    /// Creates an unverified account and mails a verification code.
    ///
    /// For an address with an unverified account, the pending password and code are replaced
    /// (see the pre-account-hijacking rule above) and a new code is mailed, subject to the
    /// mail cooldown. For a verified account: [`SignupError::EmailTaken`], or with enumeration
    /// protection on, a notice to the owner and a response shaped like a new signup.
    #[instrument(skip_all, fields(user_id = tracing::field::Empty))]
    pub async fn signup(
        &self,
        email: EmailAddress,
        password: Password,
    ) -> Result<User, SignupError> {
        let now = self.ports.clock.now();
        match self.ports.users.find_by_email(&email).await? {
            Some(existing) if existing.user.is_verified() => {
                if !self.config.enumeration_protection {
                    return Err(SignupError::EmailTaken);
                }
                // Same work as a real signup (one hash), then a notice instead of a code.
                self.ports.hasher.hash(password.secret()).await?;
                if let SendSlot::Granted = self
                    .ports
                    .otps
                    .claim_send_slot(OtpPurpose::VerifyEmail, &email, self.config.mail_cooldown)
                    .await?
                {
                    self.send_best_effort(&email, &MailMessage::SignupAttempted)
                        .await;
                }
                Ok(self.decoy_user(email, now))
            }
            Some(existing) => {
                Span::current().record("user_id", tracing::field::display(existing.user.id));
                // A signup racing the one that created the account moments ago: answer as a
                // repeat inside that signup's mail cooldown would, so a race has one winner.
                let since_creation = (now - existing.user.created_at)
                    .to_std()
                    .unwrap_or(Duration::ZERO);
                if since_creation < self.config.mail_cooldown {
                    return Err(SignupError::TooManyRequests {
                        retry_after: (self.config.mail_cooldown - since_creation)
                            .max(Duration::from_secs(1)),
                    });
                }
                self.claim_slot(OtpPurpose::VerifyEmail, &email)
                    .await?
                    .map_err(|retry_after| SignupError::TooManyRequests { retry_after })?;
                let hash = self.ports.hasher.hash(password.secret()).await?;
                match self
                    .ports
                    .users
                    .replace_unverified_password(existing.user.id, &hash, now)
                    .await
                {
                    Ok(()) => {}
                    // Verified in the meantime.
                    Err(UserRepoError::NotFound) => return Err(SignupError::EmailTaken),
                    Err(e) => return Err(e.into()),
                }
                self.issue_code(OtpPurpose::VerifyEmail, &email, now)
                    .await?;
                info!("repeated signup for an unverified account: password and code replaced");
                Ok(User {
                    updated_at: now,
                    ..existing.user
                })
            }
            None => {
                let hash = self.ports.hasher.hash(password.secret()).await?;
                let new_user = NewUser {
                    id: UserId::from_uuid(self.ports.random.uuid()),
                    email: email.clone(),
                    password_hash: hash,
                    created_at: now,
                };
                let user = match self.ports.users.create(&new_user).await {
                    Ok(user) => user,
                    Err(UserRepoError::Duplicate) => return Err(SignupError::EmailTaken),
                    Err(e) => return Err(e.into()),
                };
                Span::current().record("user_id", tracing::field::display(user.id));
                // A brand-new account: the code goes out even inside a cooldown left over
                // from, e.g., a resend for this address before it existed.
                let _ = self
                    .ports
                    .otps
                    .claim_send_slot(OtpPurpose::VerifyEmail, &email, self.config.mail_cooldown)
                    .await?;
                self.issue_code(OtpPurpose::VerifyEmail, &email, now)
                    .await?;
                info!("account created");
                Ok(user)
            }
        }
    }

    /// Proves ownership of the address with the code from the signup mail.
    ///
    /// Idempotent for an account that is already verified once the code checks out.
    #[instrument(skip_all, fields(user_id = tracing::field::Empty))]
    pub async fn verify_otp(
        &self,
        email: &EmailAddress,
        code: &OtpCode,
    ) -> Result<User, VerifyOtpError> {
        self.check_code(OtpPurpose::VerifyEmail, email, code)
            .await?;
        let Some(creds) = self.ports.users.find_by_email(email).await? else {
            return Err(OtpCheckError::InvalidOtp);
        };
        Span::current().record("user_id", tracing::field::display(creds.user.id));
        if creds.user.is_verified() {
            return Ok(creds.user);
        }
        let user = match self
            .ports
            .users
            .mark_verified(creds.user.id, self.ports.clock.now())
            .await
        {
            Ok(user) => user,
            Err(UserRepoError::NotFound) => return Err(OtpCheckError::InvalidOtp),
            Err(e) => return Err(e.into()),
        };
        info!("email verified");
        Ok(user)
    }

    /// Mails a new verification code to an unverified account.
    ///
    /// The cooldown is claimed for every address before it is looked up, so the answer is the
    /// same for unknown, unverified and verified addresses.
    #[instrument(skip_all)]
    pub async fn resend_otp(&self, email: &EmailAddress) -> Result<(), ResendOtpError> {
        self.claim_slot(OtpPurpose::VerifyEmail, email)
            .await?
            .map_err(|retry_after| ResendOtpError::TooManyRequests { retry_after })?;
        if let Some(creds) = self.ports.users.find_by_email(email).await? {
            if !creds.user.is_verified() {
                let now = self.ports.clock.now();
                // A mail outage must not answer differently for existing accounts.
                if let Err(e) = self.issue_code(OtpPurpose::VerifyEmail, email, now).await {
                    warn!(error = %e, "verification code not delivered");
                }
            }
        }
        Ok(())
    }

    /// Checks a password and opens a session.
    #[instrument(skip_all, fields(user_id = tracing::field::Empty))]
    pub async fn login(
        &self,
        email: &EmailAddress,
        password: &PasswordAttempt,
        client: ClientInfo,
    ) -> Result<LoginOutcome, LoginError> {
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
            return Err(LoginError::InvalidCredentials);
        }
        if !creds.user.is_verified() {
            return Err(LoginError::EmailNotVerified);
        }
        let now = self.ports.clock.now();
        if check == PasswordCheck::MatchNeedsRehash {
            self.rehash(creds.user.id, password, now).await;
        }
        let token = self.ports.random.session_token();
        let session = Session {
            id: SessionId::from_uuid(self.ports.random.uuid()),
            token_hash: token.hash(),
            user: creds.user.clone(),
            created_at: now,
            expires_at: add(now, self.config.session_ttl),
            last_seen_at: now,
            client,
        };
        let ttl = self.config.session_store_ttl(session.expires_at, now);
        self.ports.sessions.insert(&session, ttl).await?;
        info!(session = %short_id(session.id), "login succeeded");
        Ok(LoginOutcome {
            user: creds.user,
            token,
            session,
        })
    }

    /// The user and session behind a token; [`AuthenticateError::Unauthenticated`] for an
    /// unknown, revoked, expired (absolute lifetime) or idle (inactivity timeout) one. One
    /// session-store lookup; plus one write to record the use when the recorded last use is
    /// older than [`AuthConfig::activity_granularity`].
    pub async fn authenticate(&self, token: &SessionToken) -> Result<Session, AuthenticateError> {
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
    #[instrument(skip_all)]
    pub async fn logout(&self, token: &SessionToken) -> Result<(), SessionError> {
        self.ports.sessions.delete(&token.hash()).await?;
        Ok(())
    }

    /// Revokes every session of the user, at once; returns how many there were.
    #[instrument(skip_all, fields(user_id = %user_id))]
    pub async fn logout_all(&self, user_id: UserId) -> Result<u64, SessionError> {
        let n = self
            .ports
            .sessions
            .delete_all_for_user(user_id, None)
            .await?;
        info!(revoked = n, "all sessions revoked");
        Ok(n)
    }

    /// The user's live sessions, newest first.
    pub async fn list_sessions(&self, user_id: UserId) -> Result<Vec<Session>, SessionError> {
        let now = self.ports.clock.now();
        let mut sessions = self.ports.sessions.list_for_user(user_id).await?;
        sessions.retain(|s| s.user.id == user_id && s.expires_at > now && !self.is_idle(s, now));
        sessions.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(a.id.cmp(&b.id)));
        Ok(sessions)
    }

    /// Revokes one of the user's sessions by its public id; [`SessionError::NotFound`] when it
    /// is not one of theirs.
    #[instrument(skip_all, fields(user_id = %user_id))]
    pub async fn revoke_session(
        &self,
        user_id: UserId,
        session_id: SessionId,
    ) -> Result<(), SessionError> {
        if self
            .ports
            .sessions
            .delete_by_id(user_id, session_id)
            .await?
        {
            info!(session = %short_id(session_id), "session revoked");
            Ok(())
        } else {
            Err(SessionError::NotFound)
        }
    }

    /// The session user's account, if `password` is theirs (asked again before sensitive
    /// changes).
    async fn reauthenticate(
        &self,
        session: &Session,
        password: &PasswordAttempt,
    ) -> Result<Result<UserCredentials, Reauth>, Failure> {
        let Some(creds) = self.ports.users.find_by_id(session.user.id).await? else {
            return Ok(Err(Reauth::Gone));
        };
        let check = self
            .ports
            .hasher
            .verify(password.secret(), &creds.password_hash)
            .await?;
        Ok(if check.is_match() {
            Ok(creds)
        } else {
            Err(Reauth::WrongPassword)
        })
    }

    /// Changes the password of the session's user. The current password is required; every
    /// other session of the user is revoked, the current one stays; a notice is mailed.
    #[instrument(skip_all, fields(user_id = %session.user.id))]
    pub async fn change_password(
        &self,
        session: &Session,
        current: &PasswordAttempt,
        new_password: Password,
    ) -> Result<(), ChangePasswordError> {
        let creds = match self.reauthenticate(session, current).await? {
            Ok(creds) => creds,
            Err(Reauth::Gone) => return Err(ChangePasswordError::Unauthenticated),
            Err(Reauth::WrongPassword) => {
                info!("password change refused: wrong current password");
                return Err(ChangePasswordError::InvalidCredentials);
            }
        };
        let hash = self.ports.hasher.hash(new_password.secret()).await?;
        let now = self.ports.clock.now();
        match self
            .ports
            .users
            .set_password_hash(creds.user.id, &hash, now)
            .await
        {
            Ok(()) => {}
            Err(UserRepoError::NotFound) => return Err(ChangePasswordError::Unauthenticated),
            Err(e) => return Err(e.into()),
        }
        let revoked = self
            .ports
            .sessions
            .delete_all_for_user(creds.user.id, Some(session.id))
            .await?;
        info!(revoked, "password changed; other sessions revoked");
        self.send_best_effort(&creds.user.email, &MailMessage::PasswordChanged)
            .await;
        Ok(())
    }

    /// Deletes the account of the session's user, who must give the password again (ASVS
    /// 7.4.2, 7.5.3): every session is revoked, the account is removed for good (its address is
    /// free for a new signup) and a notice is mailed.
    ///
    /// Sessions go first: should the deletion then fail, the user is logged out everywhere
    /// but keeps the account. They are revoked once more afterwards, so that a login racing
    /// the deletion leaves no session behind.
    #[instrument(skip_all, fields(user_id = %session.user.id))]
    pub async fn delete_account(
        &self,
        session: &Session,
        password: &PasswordAttempt,
    ) -> Result<(), DeleteAccountError> {
        let creds = match self.reauthenticate(session, password).await? {
            Ok(creds) => creds,
            Err(Reauth::Gone) => return Err(DeleteAccountError::Unauthenticated),
            Err(Reauth::WrongPassword) => {
                info!("account deletion refused: wrong password");
                return Err(DeleteAccountError::InvalidCredentials);
            }
        };
        let id = creds.user.id;
        self.ports.sessions.delete_all_for_user(id, None).await?;
        let deleted = self.ports.users.delete(id).await?;
        self.ports.sessions.delete_all_for_user(id, None).await?;
        if !deleted {
            // Deleted meanwhile by a parallel request, which sends the notice.
            return Err(DeleteAccountError::Unauthenticated);
        }
        info!("account deleted; every session revoked");
        self.send_best_effort(&creds.user.email, &MailMessage::AccountDeleted)
            .await;
        Ok(())
    }

    /// Starts a password reset. Returns `Ok(())` whatever the address; a reset code is mailed
    /// only to an existing, verified account, at most once per cooldown.
    #[instrument(skip_all)]
    pub async fn forgot_password(&self, email: &EmailAddress) -> Result<(), ForgotPasswordError> {
        if self
            .claim_slot(OtpPurpose::ResetPassword, email)
            .await?
            .is_err()
        {
            return Ok(());
        }
        if let Some(creds) = self.ports.users.find_by_email(email).await? {
            if creds.user.is_verified() {
                let now = self.ports.clock.now();
                if let Err(e) = self.issue_code(OtpPurpose::ResetPassword, email, now).await {
                    // Answering differently would tell that the account exists.
                    warn!(error = %e, "reset code not delivered");
                } else {
                    info!(user_id = %creds.user.id, "reset code sent");
                }
            }
        }
        Ok(())
    }

    /// Completes a password reset: checks the code, sets the new password, revokes every
    /// session of the user and mails a notice.
    #[instrument(skip_all, fields(user_id = tracing::field::Empty))]
    pub async fn reset_password(
        &self,
        email: &EmailAddress,
        code: &OtpCode,
        new_password: Password,
    ) -> Result<User, ResetPasswordError> {
        // The code is used up only once the new hash exists: an overloaded hasher leaves it
        // valid for another try. It is used up before the hash is stored, so that of two
        // parallel resets with the right code exactly one sets a password.
        let purpose = OtpPurpose::ResetPassword;
        let candidate = self.match_code(purpose, email, code).await?;
        let Some(creds) = self.ports.users.find_by_email(email).await? else {
            return Err(OtpCheckError::InvalidOtp);
        };
        Span::current().record("user_id", tracing::field::display(creds.user.id));
        let hash = self.ports.hasher.hash(new_password.secret()).await?;
        self.consume_code(purpose, email, &candidate).await?;
        let now = self.ports.clock.now();
        match self
            .ports
            .users
            .set_password_hash(creds.user.id, &hash, now)
            .await
        {
            Ok(()) => {}
            Err(UserRepoError::NotFound) => return Err(OtpCheckError::InvalidOtp),
            Err(e) => return Err(e.into()),
        }
        let revoked = self
            .ports
            .sessions
            .delete_all_for_user(creds.user.id, None)
            .await?;
        info!(revoked, "password reset; all sessions revoked");
        self.send_best_effort(&creds.user.email, &MailMessage::PasswordChanged)
            .await;
        Ok(User {
            updated_at: now,
            ..creds.user
        })
    }

    /// Whether the durable and session stores answer.
    pub async fn readiness(&self) -> Readiness {
        let (users, sessions) = futures::join!(self.ports.users.ping(), self.ports.sessions.ping());
        Readiness {
            users: users.is_ok(),
            sessions: sessions.is_ok(),
        }
    }

    // --- helpers ---

    /// `Ok(Ok(()))` when a mail may go out now, `Ok(Err(retry_after))` inside the cooldown.
    async fn claim_slot(
        &self,
        purpose: OtpPurpose,
        email: &EmailAddress,
    ) -> Result<Result<(), Duration>, Failure> {
        match self
            .ports
            .otps
            .claim_send_slot(purpose, email, self.config.mail_cooldown)
            .await?
        {
            SendSlot::Granted => Ok(Ok(())),
            SendSlot::Cooldown { retry_after } => Ok(Err(retry_after.max(Duration::from_secs(1)))),
        }
    }

    /// Generates a code, stores its MAC (replacing any earlier code) and mails it.
    async fn issue_code(
        &self,
        purpose: OtpPurpose,
        email: &EmailAddress,
        now: DateTime<Utc>,
    ) -> Result<(), Failure> {
        let code = self.ports.random.otp_code();
        let stored = StoredOtp {
            mac: self.otp_secret.mac(purpose, email, &code),
            expires_at: add(now, self.config.otp_ttl),
        };
        self.ports
            .otps
            .put(
                purpose,
                email,
                stored,
                self.config.otp_ttl + EXPIRED_CODE_GRACE,
            )
            .await?;
        let valid_for = self.config.otp_ttl;
        let message = match purpose {
            OtpPurpose::VerifyEmail => MailMessage::VerifyEmail { code, valid_for },
            OtpPurpose::ResetPassword => MailMessage::ResetPassword { code, valid_for },
        };
        self.ports.mailer.send(email, &message).await?;
        Ok(())
    }

    /// Counts an attempt, then checks expiry and the MAC (in constant time), then consumes the
    /// code so that exactly one of several concurrent right answers wins.
    async fn check_code(
        &self,
        purpose: OtpPurpose,
        email: &EmailAddress,
        code: &OtpCode,
    ) -> Result<(), OtpCheckError> {
        let candidate = self.match_code(purpose, email, code).await?;
        self.consume_code(purpose, email, &candidate).await
    }

    /// Counts an attempt and compares the code (in constant time) without using it up; the
    /// code's MAC, to consume it with, when it is right, live and not exhausted.
    async fn match_code(
        &self,
        purpose: OtpPurpose,
        email: &EmailAddress,
        code: &OtpCode,
    ) -> Result<OtpMac, OtpCheckError> {
        let Some(attempt) = self.ports.otps.record_attempt(purpose, email).await? else {
            return Err(OtpCheckError::InvalidOtp);
        };
        if attempt.attempts > self.config.otp_max_attempts {
            // The code stays (dead: every later attempt counts higher) until its retention
            // ends. Deleting it here would also kill it under a concurrent attempt that is
            // within the limit and about to consume it with the right answer.
            warn!(
                purpose = purpose.as_str(),
                "code attempt refused: attempts exhausted"
            );
            return Err(OtpCheckError::TooManyAttempts);
        }
        if self.ports.clock.now() >= attempt.otp.expires_at {
            return Err(OtpCheckError::OtpExpired);
        }
        let candidate = self.otp_secret.mac(purpose, email, code);
        if !attempt.otp.mac.ct_eq(&candidate) {
            info!(
                purpose = purpose.as_str(),
                attempts = attempt.attempts,
                "wrong code"
            );
            return Err(OtpCheckError::InvalidOtp);
        }
        Ok(candidate)
    }

    /// Uses the code up, atomically: of two requests with the right code, one gets `Ok`.
    async fn consume_code(
        &self,
        purpose: OtpPurpose,
        email: &EmailAddress,
        candidate: &OtpMac,
    ) -> Result<(), OtpCheckError> {
        if !self.ports.otps.consume(purpose, email, candidate).await? {
            // Someone else used it a moment ago.
            return Err(OtpCheckError::InvalidOtp);
        }
        Ok(())
    }

    async fn rehash(&self, user_id: UserId, password: &PasswordAttempt, now: DateTime<Utc>) {
        let result = async {
            let hash = self.ports.hasher.hash(password.secret()).await?;
            self.ports
                .users
                .set_password_hash(user_id, &hash, now)
                .await?;
            Ok::<_, Failure>(())
        }
        .await;
        match result {
            Ok(()) => info!("password re-hashed with current parameters"),
            Err(e) => warn!(error = %e, "password re-hash failed; will retry at next login"),
        }
    }

    async fn send_best_effort(&self, to: &EmailAddress, message: &MailMessage) {
        if let Err(e) = self.ports.mailer.send(to, message).await {
            warn!(error = %e, "notice not delivered");
        }
    }

    fn decoy_user(&self, email: EmailAddress, now: DateTime<Utc>) -> User {
        User {
            id: UserId::from_uuid(self.ports.random.uuid()),
            email,
            verified_at: None,
            created_at: now,
            updated_at: now,
        }
    }
}

/// First eight hex digits of a session id: enough to correlate logs, useless to an attacker.
fn short_id(id: SessionId) -> String {
    id.as_uuid().simple().to_string()[..8].to_owned()
}

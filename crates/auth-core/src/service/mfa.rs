//! Two-factor authentication: TOTP enrolment and confirmation, recovery codes, the second
//! login step, turning it off, and the step-up that sensitive changes ask for.
//!
//! The secret is sealed at rest (XChaCha20-Poly1305, key derived from the service secret,
//! bound to the user id); recovery codes and second-step tokens are stored only hashed. A
//! TOTP code is accepted once: the store records the last accepted step with a
//! compare-and-set, so a replay, or a parallel request with the same code, is refused. Every
//! code checked spends the second-factor budgets first (the re-authentication quotas, per
//! account and per client; a right code refills the account's, so only wrong codes add up).

use chrono::{DateTime, Utc};
use tracing::{info, instrument, warn, Span};

use super::guard::{Reauth, Stop};
use super::sessions::Opened;
use super::{add, AuthService, Failure};
use super::{MfaError, PendingLogin, SecondStepError, SecondStepOutcome};
use crate::domain::device::DeviceCredential;
use crate::domain::mfa::{
    MfaToken, RecoveryCode, RecoveryCodeHash, SecondFactor, RECOVERY_CODE_CHARS,
    RECOVERY_CODE_COUNT,
};
use crate::domain::otp::OtpCode;
use crate::domain::password::PasswordAttempt;
use crate::domain::session::{ClientInfo, Session};
use crate::domain::totp::{Totp, TotpSecret, TOTP_SECRET_BYTES};
use crate::domain::user::{User, UserCredentials, UserId};
use crate::ports::{LoginFailure, MailMessage, MfaChallenge, SecurityEventKind, StoredTotp};

/// Label of the key that seals TOTP secrets (unrelated to every other derived key).
pub(super) const TOTP_SEAL_LABEL: &[u8] = b"secureauth totp secret v1";

/// A TOTP secret waiting to be confirmed: show [`Totp::otpauth_uri`] (as a QR code) to the
/// owner, once.
#[derive(Debug)]
pub struct TotpEnrolment {
    /// The generator, for the `otpauth://` URI and the base32 secret.
    pub totp: Totp,
}

/// What the owner may see of their second factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TotpStatus {
    /// TOTP is on.
    pub enabled: bool,
    /// Unused recovery codes.
    pub recovery_codes_left: u32,
}

/// Why a second factor was refused.
#[derive(Debug)]
pub(super) enum Refused {
    /// Wrong code, a replayed one, a used recovery code, or TOTP is off.
    Wrong,
    /// A port failed.
    Failure(Failure),
}

impl<E: Into<Failure>> From<E> for Refused {
    fn from(e: E) -> Self {
        Self::Failure(e.into())
    }
}

/// Why a step-up (the second factor asked again inside a session) said no.
#[derive(Debug)]
pub(super) enum StepUp {
    /// The user has TOTP on and no second factor was given.
    Required,
    /// A wrong or replayed second factor.
    Wrong,
    /// The session went past its hard limit of wrong answers and was ended.
    SessionEnded,
    /// A port failed.
    Failure(Failure),
}

impl From<Reauth> for MfaError {
    fn from(r: Reauth) -> Self {
        match r {
            Reauth::Gone | Reauth::SessionEnded => MfaError::Unauthenticated,
            Reauth::WrongPassword => MfaError::InvalidCredentials,
            Reauth::Stop(stop) => stop.into(),
        }
    }
}

impl From<StepUp> for MfaError {
    fn from(s: StepUp) -> Self {
        match s {
            StepUp::Required | StepUp::Wrong => MfaError::InvalidCode,
            StepUp::SessionEnded => MfaError::Unauthenticated,
            StepUp::Failure(f) => MfaError::Failure(f),
        }
    }
}

impl AuthService {
    /// Whether the user has TOTP turned on.
    pub async fn totp_enabled(&self, user: UserId) -> Result<bool, Failure> {
        Ok(self
            .ports
            .totp
            .get(user)
            .await?
            .is_some_and(|t| t.enabled_at.is_some()))
    }

    /// Whether the user has TOTP on, and how many recovery codes are left (0 when off).
    pub async fn totp_status(&self, user: UserId) -> Result<TotpStatus, Failure> {
        Ok(match self.ports.totp.get(user).await? {
            Some(t) if t.enabled_at.is_some() => TotpStatus {
                enabled: true,
                recovery_codes_left: t.recovery_codes_left,
            },
            _ => TotpStatus {
                enabled: false,
                recovery_codes_left: 0,
            },
        })
    }

    /// Starts TOTP enrolment: checks the password (re-authentication budgets), makes a new
    /// 160-bit secret and stores it sealed, pending until [`AuthService::confirm_totp`].
    /// [`MfaError::AlreadyEnabled`] when TOTP is on.
    #[instrument(skip_all, fields(user_id = %session.user.id))]
    pub async fn begin_totp_enrolment(
        &self,
        session: &Session,
        password: &PasswordAttempt,
        client: &ClientInfo,
    ) -> Result<TotpEnrolment, MfaError> {
        let creds = self.reauthenticate(session, password, client).await?;
        if self.totp_enabled(creds.user.id).await? {
            return Err(MfaError::AlreadyEnabled);
        }
        let mut bytes = vec![0u8; TOTP_SECRET_BYTES];
        self.ports.random.fill_bytes(&mut bytes);
        let secret = TotpSecret::from_bytes(bytes).map_err(internal)?;
        let sealed = self
            .totp_seal
            .seal(secret.expose(), creds.user.id.as_uuid().as_bytes());
        let now = self.ports.clock.now();
        if !self
            .ports
            .totp
            .put_pending(creds.user.id, &sealed, now)
            .await?
        {
            return Err(MfaError::AlreadyEnabled);
        }
        let totp = self.totp_of(&creds.user, &secret)?;
        info!(
            security_event = "totp_enrolment_started",
            "TOTP enrolment started"
        );
        Ok(TotpEnrolment { totp })
    }

    /// Turns a pending TOTP secret on with a current code from the app, and returns the
    /// recovery codes (shown once; only their hashes are stored). The code's step counts as
    /// used. Spends the second-factor budgets; a wrong code counts against the session's
    /// hard limit. A notice is mailed.
    #[instrument(skip_all, fields(user_id = %session.user.id))]
    pub async fn confirm_totp(
        &self,
        session: &Session,
        code: &OtpCode,
        client: &ClientInfo,
    ) -> Result<Vec<RecoveryCode>, MfaError> {
        let user = &session.user;
        if let Err(stop) = self.spend_second_factor(user.id, client).await {
            // A refused try inside a session counts like a wrong one (and is recorded as
            // refused): a stolen session cannot probe past the budget unseen.
            if let Stop::Retry(_) = stop {
                if self
                    .reauth_failed(session, client, None, true)
                    .await?
                    .is_some()
                {
                    return Err(MfaError::Unauthenticated);
                }
            }
            return Err(stop.into());
        }
        let stored = self.ports.totp.get(user.id).await?;
        let stored = match stored {
            None => return Err(MfaError::NotPending),
            Some(s) if s.enabled_at.is_some() => return Err(MfaError::AlreadyEnabled),
            Some(s) => s,
        };
        let totp = self.open_totp(user, &stored)?;
        let now = self.ports.clock.now();
        let Some(step) = totp.accepted_step(code, now) else {
            return Err(self.wrong_in_session(session, client).await?);
        };
        let (codes, hashes) = self.new_recovery_codes(user.id);
        if !self.ports.totp.enable(user.id, step, &hashes, now).await? {
            return Err(MfaError::AlreadyEnabled);
        }
        self.throttle.second_factor_succeeded(user.id).await?;
        // Sessions opened with the password alone (say, by someone who had it) do not outlive
        // the second factor (ASVS 7.4.3); this one, which just proved it, stays.
        let revoked = self
            .revoke_all(user.id, &user.email, Some(session.id))
            .await?;
        info!(
            security_event = "totp_enabled",
            revoked, "TOTP turned on; other sessions ended"
        );
        self.record_event(user.id, SecurityEventKind::TwoFactorEnabled, client)
            .await;
        let language = self.language_of(user.id).await;
        self.send_best_effort(&user.email, &MailMessage::TotpEnabled, language.as_deref())
            .await;
        Ok(codes)
    }

    /// New recovery codes in place of the old ones (all of them stop working). Needs the
    /// password and a current second factor.
    #[instrument(skip_all, fields(user_id = %session.user.id))]
    pub async fn regenerate_recovery_codes(
        &self,
        session: &Session,
        password: &PasswordAttempt,
        factor: &SecondFactor,
        client: &ClientInfo,
    ) -> Result<Vec<RecoveryCode>, MfaError> {
        let creds = self.reauthenticate(session, password, client).await?;
        if !self.totp_enabled(creds.user.id).await? {
            return Err(MfaError::NotEnabled);
        }
        self.step_up(session, &creds, Some(factor), client).await?;
        let (codes, hashes) = self.new_recovery_codes(creds.user.id);
        if !self
            .ports
            .totp
            .replace_recovery_codes(creds.user.id, &hashes)
            .await?
        {
            return Err(MfaError::NotEnabled);
        }
        info!(
            security_event = "recovery_codes_regenerated",
            "recovery codes replaced"
        );
        Ok(codes)
    }

    /// Turns TOTP off: needs the password and a current second factor. Every other session
    /// of the user ends (raising the revocation epoch first, as every revocation does); a
    /// notice is mailed.
    #[instrument(skip_all, fields(user_id = %session.user.id))]
    pub async fn disable_totp(
        &self,
        session: &Session,
        password: &PasswordAttempt,
        factor: &SecondFactor,
        client: &ClientInfo,
    ) -> Result<(), MfaError> {
        let creds = self.reauthenticate(session, password, client).await?;
        if !self.totp_enabled(creds.user.id).await? {
            return Err(MfaError::NotEnabled);
        }
        self.step_up(session, &creds, Some(factor), client).await?;
        if !self.ports.totp.disable(creds.user.id).await? {
            return Err(MfaError::NotEnabled);
        }
        let revoked = self
            .revoke_all(creds.user.id, &creds.user.email, Some(session.id))
            .await?;
        info!(
            security_event = "totp_disabled",
            revoked, "TOTP turned off; other sessions revoked"
        );
        self.record_event(creds.user.id, SecurityEventKind::TwoFactorDisabled, client)
            .await;
        self.send_best_effort(
            &creds.user.email,
            &MailMessage::TotpDisabled,
            creds.language.as_deref(),
        )
        .await;
        Ok(())
    }

    /// The second step of a login: the token from the first step and a TOTP or recovery code.
    ///
    /// The token works once, until it expires, and only from the client it was issued to
    /// (user agent and IP); anything else is [`SecondStepError::InvalidToken`]. A wrong code
    /// keeps the token (within its lifetime) but spends the second-factor budgets (the
    /// re-authentication quotas), which every code checked here spends before the check; a
    /// right code refills the account's. A used recovery code is gone; the
    /// owner is mailed how many are left. Revocation wins as for a password login: a
    /// revocation after the password was checked makes this fail.
    #[instrument(skip_all, fields(user_id = tracing::field::Empty))]
    pub async fn login_second_factor(
        &self,
        token: &MfaToken,
        factor: &SecondFactor,
        client: ClientInfo,
        device: Option<&DeviceCredential>,
    ) -> Result<SecondStepOutcome, SecondStepError> {
        let token_hash = token.hash();
        let Some(challenge) = self.ports.totp.get_challenge(&token_hash).await? else {
            return Err(SecondStepError::InvalidToken);
        };
        let now = self.ports.clock.now();
        let binding = self
            .otp_secret
            .client_binding(&client, self.throttle.config().ipv6_prefix_len);
        if now >= challenge.expires_at || challenge.client != binding {
            warn!(
                security_event = "mfa_token_refused",
                expired = now >= challenge.expires_at,
                "second login step refused: the token is expired or from another client"
            );
            return Err(SecondStepError::InvalidToken);
        }
        Span::current().record("user_id", tracing::field::display(challenge.user_id));
        self.spend_second_factor(challenge.user_id, &client).await?;
        let Some(creds) = self.ports.users.find_by_id(challenge.user_id).await? else {
            return Err(SecondStepError::InvalidToken);
        };
        if creds.status.is_disabled() {
            info!(
                security_event = "login_refused_disabled",
                "second login step refused: the account is disabled"
            );
            return Err(SecondStepError::AccountDisabled);
        }
        // A revocation since the password was checked (a password change or reset, logout
        // everywhere, a disable): the session would be refused anyway, so the factor must not
        // be spent on it (a recovery code would be gone for nothing).
        if self
            .ports
            .sessions
            .revocation_epoch(&creds.user.email)
            .await?
            != challenge.epoch
        {
            info!(
                security_event = "mfa_token_refused",
                "second login step refused: the sessions were revoked after the password step"
            );
            return Err(SecondStepError::InvalidToken);
        }
        let left = match self.check_second_factor(&creds.user, factor, now).await {
            Ok(left) => left,
            Err(Refused::Wrong) => {
                info!(
                    security_event = "second_factor_failed",
                    "second login step: wrong code"
                );
                self.record_event(
                    creds.user.id,
                    SecurityEventKind::LoginFailed(LoginFailure::SecondFactorFailed),
                    &client,
                )
                .await;
                return Err(SecondStepError::InvalidCode);
            }
            Err(Refused::Failure(f)) => return Err(f.into()),
        };
        self.throttle.second_factor_succeeded(creds.user.id).await?;
        if !self.ports.totp.take_challenge(&token_hash).await? {
            return Err(SecondStepError::InvalidToken);
        }
        let email = creds.user.email.clone();
        let device = device.and_then(|d| self.known_device(d, &email));
        if left.is_some() {
            self.record_event(creds.user.id, SecurityEventKind::RecoveryCodeUsed, &client)
                .await;
        }
        let login = self
            .open_session(creds.user, client, challenge.epoch, device, None)
            .await
            .map_err(|e| match e {
                Opened::LostToRevocation => SecondStepError::InvalidToken,
                Opened::Failure(f) => SecondStepError::Failure(f),
            })?;
        if let Some(left) = left {
            warn!(
                security_event = "recovery_code_used",
                left, "login with a recovery code"
            );
            self.send_best_effort(
                &email,
                &MailMessage::RecoveryCodeUsed { left },
                creds.language.as_deref(),
            )
            .await;
        }
        Ok(SecondStepOutcome {
            login,
            recovery_codes_left: left,
        })
    }

    /// For a login whose password (or login code) was right: when the user has TOTP on, a
    /// second-step challenge bound to `client` instead of a session.
    pub(super) async fn second_step_for(
        &self,
        user: &User,
        client: &ClientInfo,
        epoch: u64,
    ) -> Result<Option<PendingLogin>, Failure> {
        if !self.totp_enabled(user.id).await? {
            return Ok(None);
        }
        let token = MfaToken::new(self.ports.random.session_token());
        let now = self.ports.clock.now();
        let expires_at = add(now, self.config.mfa_token_ttl);
        let challenge = MfaChallenge {
            token_hash: token.hash(),
            user_id: user.id,
            client: self
                .otp_secret
                .client_binding(client, self.throttle.config().ipv6_prefix_len),
            epoch,
            expires_at,
        };
        self.ports.totp.put_challenge(&challenge).await?;
        info!("password right; second factor required");
        Ok(Some(PendingLogin { token, expires_at }))
    }

    /// The step-up of a sensitive change whose password was right: when the user has TOTP
    /// on, `factor` must be a current one. The re-authentication budget was spent for the
    /// password; a wrong factor counts against the session's hard limit.
    pub(super) async fn step_up(
        &self,
        session: &Session,
        creds: &UserCredentials,
        factor: Option<&SecondFactor>,
        client: &ClientInfo,
    ) -> Result<(), StepUp> {
        if !self
            .totp_enabled(creds.user.id)
            .await
            .map_err(StepUp::Failure)?
        {
            return Ok(());
        }
        let Some(factor) = factor else {
            return Err(StepUp::Required);
        };
        let now = self.ports.clock.now();
        match self.check_second_factor(&creds.user, factor, now).await {
            Ok(Some(left)) => {
                self.record_event(creds.user.id, SecurityEventKind::RecoveryCodeUsed, client)
                    .await;
                self.send_best_effort(
                    &creds.user.email,
                    &MailMessage::RecoveryCodeUsed { left },
                    creds.language.as_deref(),
                )
                .await;
                Ok(())
            }
            Ok(None) => Ok(()),
            Err(Refused::Failure(f)) => Err(StepUp::Failure(f)),
            Err(Refused::Wrong) => {
                info!(
                    security_event = "step_up_failed",
                    "wrong second factor inside a session"
                );
                match self
                    .reauth_failed(session, client, creds.language.as_deref(), false)
                    .await
                {
                    Ok(None) => Err(StepUp::Wrong),
                    Ok(Some(_)) => Err(StepUp::SessionEnded),
                    Err(f) => Err(StepUp::Failure(f)),
                }
            }
        }
    }

    /// Checks a TOTP code (once per step, ±1 step of drift) or uses up a recovery code;
    /// `Ok(Some(left))` when a recovery code was used.
    pub(super) async fn check_second_factor(
        &self,
        user: &User,
        factor: &SecondFactor,
        now: DateTime<Utc>,
    ) -> Result<Option<u32>, Refused> {
        let Some(stored) = self.ports.totp.get(user.id).await? else {
            return Err(Refused::Wrong);
        };
        if stored.enabled_at.is_none() {
            return Err(Refused::Wrong);
        }
        match factor {
            SecondFactor::Totp(code) => {
                let totp = self.open_totp(user, &stored).map_err(|e| match e {
                    MfaError::Failure(f) => Refused::Failure(f),
                    _ => Refused::Wrong,
                })?;
                let Some(step) = totp.accepted_step(code, now) else {
                    return Err(Refused::Wrong);
                };
                if stored.last_step.is_some_and(|last| step <= last)
                    || !self.ports.totp.accept_step(user.id, step).await?
                {
                    warn!(
                        security_event = "totp_replay_refused",
                        "a TOTP code was used again"
                    );
                    return Err(Refused::Wrong);
                }
                Ok(None)
            }
            SecondFactor::Recovery(code) => {
                let hash = self.otp_secret.recovery_code_hash(user.id, code);
                match self.ports.totp.use_recovery_code(user.id, &hash).await? {
                    Some(left) => Ok(Some(left)),
                    None => Err(Refused::Wrong),
                }
            }
        }
    }

    /// A code or token checked inside a session was wrong: counts it against the session's
    /// hard limit (ending the session past it).
    async fn wrong_in_session(
        &self,
        session: &Session,
        client: &ClientInfo,
    ) -> Result<MfaError, Failure> {
        Ok(
            match self.reauth_failed(session, client, None, false).await? {
                None => MfaError::InvalidCode,
                Some(_) => MfaError::Unauthenticated,
            },
        )
    }

    /// Spends the second-factor budgets of the user and the client (see
    /// [`crate::throttle`]), before a code is checked.
    async fn spend_second_factor(&self, user: UserId, client: &ClientInfo) -> Result<(), Stop> {
        self.throttle
            .second_factor(user, client)
            .await?
            .map_err(Stop::Retry)
    }

    fn totp_of(&self, user: &User, secret: &TotpSecret) -> Result<Totp, MfaError> {
        Totp::new(secret, &user.email, &self.config.totp_issuer).map_err(internal)
    }

    /// Unseals the stored secret (bound to the user id) into its generator.
    pub(super) fn open_totp(&self, user: &User, stored: &StoredTotp) -> Result<Totp, MfaError> {
        let plain = self
            .totp_seal
            .open(&stored.sealed_secret, user.id.as_uuid().as_bytes())
            .ok_or_else(|| internal(SealBroken))?;
        let secret = TotpSecret::from_bytes(plain).map_err(internal)?;
        self.totp_of(user, &secret)
    }

    fn new_recovery_codes(&self, user: UserId) -> (Vec<RecoveryCode>, Vec<RecoveryCodeHash>) {
        (0..RECOVERY_CODE_COUNT)
            .map(|_| {
                let mut bytes = [0u8; RECOVERY_CODE_CHARS];
                self.ports.random.fill_bytes(&mut bytes);
                let code = RecoveryCode::from_random(&bytes);
                let hash = self.otp_secret.recovery_code_hash(user, &code);
                (code, hash)
            })
            .unzip()
    }

    /// The user's mail language, if the account says (best effort).
    async fn language_of(&self, user: UserId) -> Option<String> {
        match self.ports.users.find_by_id(user).await {
            Ok(Some(creds)) => creds.language,
            _ => None,
        }
    }
}

/// A stored TOTP secret that does not open under the service's key (another `AUTH_SECRET`,
/// or an altered row).
#[derive(Debug, thiserror::Error)]
#[error("a stored TOTP secret does not open under this AUTH_SECRET")]
struct SealBroken;

fn internal<E: std::error::Error + Send + Sync + 'static>(e: E) -> MfaError {
    MfaError::Failure(Failure::Internal(super::Dependency::TotpStore, Box::new(e)))
}

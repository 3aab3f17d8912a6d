//! Passkeys (WebAuthn): registration from inside a session, listing, renaming and deleting,
//! sign-in without a password (discoverable credentials, user verification required), and a
//! passkey as the second login step instead of a TOTP code.
//!
//! Each ceremony is stored server-side (the [`PasskeyChallengeStore`]) under the SHA-256 of a
//! random handle, sealed under a key of its own with that hash as associated data, and holds
//! what it is bound to: its kind, the account and session (registration), the password step's
//! token (second factor), the client (user agent and IP, as a second-step token is) and its
//! expiry. It is taken (deleted) before anything is verified, so it works once, whatever the
//! outcome. The verifier checks challenge, origin, relying party, flags and signature; the
//! service checks the signature counter against the stored one and records it with a
//! compare-and-set, so of two parallel sign-ins with one counter value at most one wins.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tracing::{info, instrument, warn, Span};
use uuid::Uuid;

use super::guard::{Reauth, Stop};
use super::mfa::StepUp;
use super::sessions::Opened;
use super::{add, AuthService, Dependency, Failure, LoginOutcome, PasskeyError, PasskeyLoginError};
use crate::domain::device::DeviceCredential;
use crate::domain::mfa::{MfaToken, SecondFactor};
use crate::domain::passkey::{
    outer_credential_id, CeremonyId, PasskeyId, PasskeyName, MAX_CREDENTIAL_ID_BYTES,
    MIN_CREDENTIAL_ID_BYTES,
};
use crate::domain::password::PasswordAttempt;
use crate::domain::session::{ClientInfo, Session, TokenHash};
use crate::domain::user::{UserCredentials, UserId};
use crate::ports::{
    LoginFailure, MailMessage, PasskeyChallengeStore, PasskeyStore, PasskeyStoreError,
    PasskeyVerifier, PasskeyVerifierError, SecurityEventKind, StoredPasskey,
};
use crate::seal::Sealer;

/// Label of the key that seals ceremonies in flight (unrelated to every other derived key).
const CEREMONY_SEAL_LABEL: &[u8] = b"secureauth passkey ceremony v1";

/// Most passkeys one account may have.
pub const MAX_PASSKEYS_PER_ACCOUNT: usize = 20;

/// Longest lifetime of a ceremony.
pub const MAX_CEREMONY_TTL: Duration = Duration::from_secs(10 * 60);

/// The ports and rules of passkeys, handed to [`AuthService::with_passkeys`].
#[derive(Clone)]
pub struct Passkeys {
    /// Registered passkeys (durable: PostgreSQL, SQLite, memory).
    pub store: Arc<dyn PasskeyStore>,
    /// Ceremonies in flight (Redis, memory).
    pub challenges: Arc<dyn PasskeyChallengeStore>,
    /// The relying party: options and verification.
    pub verifier: Arc<dyn PasskeyVerifier>,
    /// How long a ceremony may take from its options to its answer (default 5 minutes, at
    /// most [`MAX_CEREMONY_TTL`]).
    pub ceremony_ttl: Duration,
}

impl std::fmt::Debug for Passkeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Passkeys")
            .field("ceremony_ttl", &self.ceremony_ttl)
            .finish_non_exhaustive()
    }
}

/// The passkeys of a service, with the key that seals its ceremonies.
pub(super) struct PasskeyRuntime {
    ports: Passkeys,
    seal: Sealer,
}

/// A ceremony started: hand both to the client, which answers with the id and the
/// authenticator's response.
#[derive(Debug)]
pub struct PasskeyCeremony {
    /// The handle the answer must carry (single use).
    pub id: CeremonyId,
    /// The `publicKey` options for `navigator.credentials.create()` or `.get()`.
    pub options: serde_json::Value,
    /// When the ceremony stops working.
    pub expires_at: DateTime<Utc>,
}

/// What an owner sees of a passkey.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeyInfo {
    /// Its id in this service.
    pub id: PasskeyId,
    /// The name the owner gave it.
    pub name: PasskeyName,
    /// When it was registered.
    pub created_at: DateTime<Utc>,
    /// When it last signed the owner in.
    pub last_used_at: Option<DateTime<Utc>>,
}

impl From<StoredPasskey> for PasskeyInfo {
    fn from(p: StoredPasskey) -> Self {
        Self {
            id: p.id,
            name: p.name,
            created_at: p.created_at,
            last_used_at: p.last_used_at,
        }
    }
}

/// What a ceremony is for, and what it is bound to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
enum Kind {
    /// Registration inside this session of this account.
    Register { user: Uuid, session: Uuid },
    /// Sign-in without a password, for whoever the credential belongs to.
    SignIn,
    /// The second step of the login whose token hashes to `mfa` (hex), for this account.
    SecondFactor { user: Uuid, mfa: String },
}

/// A ceremony as sealed into the challenge store.
#[derive(Debug, Serialize, Deserialize)]
struct Ceremony {
    kind: Kind,
    /// HMAC of the client's user agent and IP (hex).
    client: String,
    /// The verifier's state.
    state: Vec<u8>,
    /// Expiry, microseconds since the epoch.
    expires_at: i64,
}

impl From<Reauth> for PasskeyError {
    fn from(r: Reauth) -> Self {
        match r {
            Reauth::Gone | Reauth::SessionEnded => Self::Unauthenticated,
            Reauth::WrongPassword => Self::InvalidCredentials,
            Reauth::Stop(stop) => stop.into(),
        }
    }
}

impl From<StepUp> for PasskeyError {
    fn from(s: StepUp) -> Self {
        match s {
            StepUp::Required => Self::SecondFactorRequired,
            StepUp::Wrong => Self::InvalidSecondFactor,
            StepUp::SessionEnded => Self::Unauthenticated,
            StepUp::Failure(f) => Self::Failure(f),
        }
    }
}

fn verifier_failure(e: PasskeyVerifierError) -> Failure {
    Failure::Internal(Dependency::PasskeyVerifier, Box::new(e))
}

impl AuthService {
    /// Turns passkeys on (registration, sign-in without a password, passkey as the second
    /// step). Without it, every passkey operation answers `NotConfigured`.
    #[must_use]
    pub fn with_passkeys(mut self, mut passkeys: Passkeys) -> Self {
        passkeys.ceremony_ttl = passkeys.ceremony_ttl.min(MAX_CEREMONY_TTL);
        let mut key = self.otp_secret.derive_key(CEREMONY_SEAL_LABEL);
        let seal = Sealer::derive(&key, CEREMONY_SEAL_LABEL);
        key.fill(0);
        self.passkeys = Some(PasskeyRuntime {
            ports: passkeys,
            seal,
        });
        self
    }

    /// Whether passkeys are on.
    pub fn passkeys_enabled(&self) -> bool {
        self.passkeys.is_some()
    }

    fn passkey_runtime(&self) -> Option<&PasskeyRuntime> {
        self.passkeys.as_ref()
    }

    /// Starts registering a passkey: needs the password given again (the re-authentication
    /// budgets) and, with TOTP on, a current second factor. The ceremony is bound to this
    /// session and client.
    #[instrument(skip_all, fields(user_id = %session.user.id))]
    pub async fn begin_passkey_registration(
        &self,
        session: &Session,
        password: &PasswordAttempt,
        factor: Option<&SecondFactor>,
        client: &ClientInfo,
    ) -> Result<PasskeyCeremony, PasskeyError> {
        let px = self.passkey_runtime().ok_or(PasskeyError::NotConfigured)?;
        let creds = self.reauthenticate(session, password, client).await?;
        self.step_up(session, &creds, factor, client).await?;
        let existing = px.ports.store.list(creds.user.id).await?;
        if existing.len() >= MAX_PASSKEYS_PER_ACCOUNT {
            return Err(PasskeyError::TooManyPasskeys);
        }
        let exclude: Vec<Vec<u8>> = existing.into_iter().map(|p| p.credential_id).collect();
        let start = px
            .ports
            .verifier
            .start_registration(creds.user.id, creds.user.email.as_str(), &exclude)
            .map_err(verifier_failure)?;
        let kind = Kind::Register {
            user: creds.user.id.as_uuid(),
            session: session.id.as_uuid(),
        };
        let (id, expires_at) = self.put_ceremony(px, kind, client, start.state).await?;
        info!(
            security_event = "passkey_registration_started",
            "passkey registration started"
        );
        Ok(PasskeyCeremony {
            id,
            options: start.options,
            expires_at,
        })
    }

    /// Finishes a registration started in this session by this client: verifies the
    /// authenticator's answer and stores the passkey under `name`. A credential registered
    /// already (to any account) is [`PasskeyError::AlreadyRegistered`]. The owner is mailed.
    #[instrument(skip_all, fields(user_id = %session.user.id))]
    pub async fn finish_passkey_registration(
        &self,
        session: &Session,
        ceremony: &CeremonyId,
        name: &PasskeyName,
        response: &serde_json::Value,
        client: &ClientInfo,
    ) -> Result<PasskeyInfo, PasskeyError> {
        let px = self.passkey_runtime().ok_or(PasskeyError::NotConfigured)?;
        let Some(taken) = self.take_ceremony(px, ceremony, client).await? else {
            return Err(PasskeyError::InvalidCeremony);
        };
        let bound = Kind::Register {
            user: session.user.id.as_uuid(),
            session: session.id.as_uuid(),
        };
        if taken.kind != bound {
            warn!(
                security_event = "passkey_ceremony_refused",
                "a registration answer came with another session's or kind's ceremony"
            );
            return Err(PasskeyError::InvalidCeremony);
        }
        let outer = match outer_credential_id(response) {
            Ok(id) => id,
            Err(why) => {
                info!(security_event = "passkey_registration_refused", %why, "passkey registration refused");
                return Err(PasskeyError::Rejected);
            }
        };
        let registered = match px
            .ports
            .verifier
            .finish_registration(response, &taken.state)
        {
            Ok(r) => r,
            Err(PasskeyVerifierError::Rejected(why)) => {
                info!(security_event = "passkey_registration_refused", %why, "passkey registration refused");
                return Err(PasskeyError::Rejected);
            }
            Err(e) => return Err(PasskeyError::Failure(verifier_failure(e))),
        };
        // The id stored is the one in the signed authenticator data: it must be an
        // authenticator's (16 to 1023 bytes) and the one the outer fields name.
        let id_len = registered.credential_id.len();
        if !(MIN_CREDENTIAL_ID_BYTES..=MAX_CREDENTIAL_ID_BYTES).contains(&id_len)
            || registered.credential_id != outer
        {
            info!(
                security_event = "passkey_registration_refused",
                id_len,
                "passkey registration refused: a credential id out of bounds or not the outer id"
            );
            return Err(PasskeyError::Rejected);
        }
        let now = self.ports.clock.now();
        let passkey = StoredPasskey {
            id: PasskeyId::from_uuid(self.ports.random.uuid()),
            user_id: session.user.id,
            credential_id: registered.credential_id,
            credential: registered.credential,
            sign_count: registered.sign_count,
            name: name.clone(),
            created_at: now,
            last_used_at: None,
        };
        match px.ports.store.insert(&passkey).await {
            Ok(()) => {}
            Err(PasskeyStoreError::Duplicate) => {
                warn!(
                    security_event = "passkey_already_registered",
                    "a credential registered already was offered again"
                );
                return Err(PasskeyError::AlreadyRegistered);
            }
            Err(e) => return Err(e.into()),
        }
        // A password reset (or any revocation) that swept this session while the answer was
        // checked must not leave a passkey behind: the reset removes the account's passkeys
        // after its sweep too, and a registration that finds its session gone takes its
        // passkey back.
        if self
            .ports
            .sessions
            .get(&session.token_hash)
            .await?
            .is_none()
        {
            px.ports.store.delete(session.user.id, passkey.id).await?;
            info!(
                security_event = "passkey_registration_refused",
                "passkey registration refused: the session ended while it was checked"
            );
            return Err(PasskeyError::Unauthenticated);
        }
        info!(security_event = "passkey_added", passkey = %passkey.id, "passkey added");
        self.record_event(session.user.id, SecurityEventKind::PasskeyAdded, client)
            .await;
        let language = self.language_of_user(session.user.id).await;
        self.send_best_effort(
            &session.user.email,
            &MailMessage::PasskeyAdded,
            language.as_deref(),
        )
        .await;
        Ok(passkey.into())
    }

    /// The session user's passkeys, oldest first.
    pub async fn list_passkeys(&self, session: &Session) -> Result<Vec<PasskeyInfo>, PasskeyError> {
        let px = self.passkey_runtime().ok_or(PasskeyError::NotConfigured)?;
        Ok(px
            .ports
            .store
            .list(session.user.id)
            .await?
            .into_iter()
            .map(PasskeyInfo::from)
            .collect())
    }

    /// Renames one of the session user's passkeys; [`PasskeyError::NotFound`] for any other
    /// id (another account's among them).
    pub async fn rename_passkey(
        &self,
        session: &Session,
        id: PasskeyId,
        name: &PasskeyName,
    ) -> Result<(), PasskeyError> {
        let px = self.passkey_runtime().ok_or(PasskeyError::NotConfigured)?;
        if px.ports.store.rename(session.user.id, id, name).await? {
            Ok(())
        } else {
            Err(PasskeyError::NotFound)
        }
    }

    /// Deletes one of the session user's passkeys: needs the password given again and, with
    /// TOTP on, a current second factor; [`PasskeyError::NotFound`] for any other id (another
    /// account's among them). The owner is mailed.
    #[instrument(skip_all, fields(user_id = %session.user.id))]
    pub async fn delete_passkey(
        &self,
        session: &Session,
        id: PasskeyId,
        password: &PasswordAttempt,
        factor: Option<&SecondFactor>,
        client: &ClientInfo,
    ) -> Result<(), PasskeyError> {
        let px = self.passkey_runtime().ok_or(PasskeyError::NotConfigured)?;
        let creds = self.reauthenticate(session, password, client).await?;
        self.step_up(session, &creds, factor, client).await?;
        if !px.ports.store.delete(creds.user.id, id).await? {
            return Err(PasskeyError::NotFound);
        }
        let ended = self.end_passkey_sessions(creds.user.id, id).await?;
        info!(security_event = "passkey_removed", passkey = %id, ended, "passkey removed; the sessions it opened ended");
        self.record_event(creds.user.id, SecurityEventKind::PasskeyRemoved, client)
            .await;
        self.send_best_effort(
            &creds.user.email,
            &MailMessage::PasskeyRemoved,
            creds.language.as_deref(),
        )
        .await;
        Ok(())
    }

    /// Starts a sign-in without a password: options for any discoverable credential, with
    /// user verification required. Says nothing about any account. Spends the client's
    /// passkey budget.
    #[instrument(skip_all)]
    pub async fn begin_passkey_sign_in(
        &self,
        client: &ClientInfo,
    ) -> Result<PasskeyCeremony, PasskeyLoginError> {
        let px = self
            .passkey_runtime()
            .ok_or(PasskeyLoginError::NotConfigured)?;
        self.spend_passkey_budget(client).await?;
        let start = px
            .ports
            .verifier
            .start_discoverable()
            .map_err(verifier_failure)?;
        let (id, expires_at) = self
            .put_ceremony(px, Kind::SignIn, client, start.state)
            .await?;
        Ok(PasskeyCeremony {
            id,
            options: start.options,
            expires_at,
        })
    }

    /// Finishes a sign-in without a password and opens a session, as a password login does
    /// (device credential, security history). The ceremony works once, from the client it
    /// was given to. Revocation wins: the address's revocation epoch is read before the
    /// account state and the credential that decide, and a revocation in between deletes the
    /// new session.
    #[instrument(skip_all, fields(user_id = tracing::field::Empty))]
    pub async fn finish_passkey_sign_in(
        &self,
        ceremony: &CeremonyId,
        response: &serde_json::Value,
        client: ClientInfo,
        device: Option<&DeviceCredential>,
    ) -> Result<LoginOutcome, PasskeyLoginError> {
        let px = self
            .passkey_runtime()
            .ok_or(PasskeyLoginError::NotConfigured)?;
        self.spend_passkey_budget(&client).await?;
        let Some(taken) = self.take_ceremony(px, ceremony, &client).await? else {
            return Err(PasskeyLoginError::InvalidCeremony);
        };
        if taken.kind != Kind::SignIn {
            return Err(PasskeyLoginError::InvalidCeremony);
        }
        if outer_credential_id(response).is_err() {
            return Err(PasskeyLoginError::Malformed);
        }
        let Ok((Some(user_id), credential_id)) = px.ports.verifier.identify(response) else {
            return Err(PasskeyLoginError::InvalidCredentials);
        };
        let Some(named) = self.ports.users.find_by_id(user_id).await? else {
            return Err(PasskeyLoginError::InvalidCredentials);
        };
        Span::current().record("user_id", tracing::field::display(named.user.id));
        let epoch = self
            .ports
            .sessions
            .revocation_epoch(&named.user.email)
            .await?;
        // The account as it is after the epoch was read, as every login reads it: a disable
        // (or any revocation) that marked the account before this read is seen here, and one
        // after it raises the epoch this login checks once its session is stored.
        let Some(creds) = self.ports.users.find_by_id(user_id).await? else {
            return Err(PasskeyLoginError::InvalidCredentials);
        };
        if creds.user.email != named.user.email {
            return Err(PasskeyLoginError::InvalidCredentials);
        }
        let Some(used) = self
            .check_assertion(px, &creds, &credential_id, response, &taken.state, &client)
            .await?
        else {
            self.record_event(
                creds.user.id,
                SecurityEventKind::LoginFailed(LoginFailure::BadCredentials),
                &client,
            )
            .await;
            return Err(PasskeyLoginError::InvalidCredentials);
        };
        if !creds.user.is_verified() {
            return Err(PasskeyLoginError::InvalidCredentials);
        }
        if creds.status.is_disabled() {
            info!(
                security_event = "login_refused_disabled",
                "passkey sign-in refused: the account is disabled"
            );
            return Err(PasskeyLoginError::AccountDisabled);
        }
        let device = device.and_then(|d| self.known_device(d, &creds.user.email));
        self.open_session(creds.user, client, epoch, device, Some(used))
            .await
            .map_err(|e| match e {
                Opened::LostToRevocation => PasskeyLoginError::InvalidCredentials,
                Opened::Failure(f) => PasskeyLoginError::Failure(f),
            })
    }

    /// Starts a passkey as the second login step, for the login whose password step gave
    /// `token`: options listing the account's passkeys. The token stays valid. Spends the
    /// client's passkey budget (each start stores a ceremony).
    #[instrument(skip_all)]
    pub async fn begin_passkey_second_factor(
        &self,
        token: &MfaToken,
        client: &ClientInfo,
    ) -> Result<PasskeyCeremony, PasskeyLoginError> {
        let px = self
            .passkey_runtime()
            .ok_or(PasskeyLoginError::NotConfigured)?;
        self.spend_passkey_budget(client).await?;
        let user = self.pending_login_user(token, client).await?;
        let passkeys = px.ports.store.list(user).await?;
        if passkeys.is_empty() {
            return Err(PasskeyLoginError::NoPasskey);
        }
        let credentials: Vec<Vec<u8>> = passkeys.into_iter().map(|p| p.credential).collect();
        let start = px
            .ports
            .verifier
            .start_authentication(&credentials)
            .map_err(verifier_failure)?;
        let kind = Kind::SecondFactor {
            user: user.as_uuid(),
            mfa: token.hash().to_hex(),
        };
        let (id, expires_at) = self.put_ceremony(px, kind, client, start.state).await?;
        Ok(PasskeyCeremony {
            id,
            options: start.options,
            expires_at,
        })
    }

    /// Finishes the second login step with a passkey: like
    /// [`AuthService::login_second_factor`] with a code (budgets, disabled accounts,
    /// revocation since the password step), and the ceremony must be the one started for this
    /// token.
    #[instrument(skip_all, fields(user_id = tracing::field::Empty))]
    pub async fn finish_passkey_second_factor(
        &self,
        token: &MfaToken,
        ceremony: &CeremonyId,
        response: &serde_json::Value,
        client: ClientInfo,
        device: Option<&DeviceCredential>,
    ) -> Result<LoginOutcome, PasskeyLoginError> {
        let px = self
            .passkey_runtime()
            .ok_or(PasskeyLoginError::NotConfigured)?;
        let token_hash = token.hash();
        let Some(taken) = self.take_ceremony(px, ceremony, &client).await? else {
            return Err(PasskeyLoginError::InvalidCeremony);
        };
        let Some(challenge) = self.ports.totp.get_challenge(&token_hash).await? else {
            return Err(PasskeyLoginError::InvalidToken);
        };
        let bound = Kind::SecondFactor {
            user: challenge.user_id.as_uuid(),
            mfa: token_hash.to_hex(),
        };
        if taken.kind != bound {
            return Err(PasskeyLoginError::InvalidCeremony);
        }
        if outer_credential_id(response).is_err() {
            return Err(PasskeyLoginError::Malformed);
        }
        let user = self.pending_login_user(token, &client).await?;
        Span::current().record("user_id", tracing::field::display(user));
        self.throttle
            .second_factor(user, &client)
            .await?
            .map_err(|retry_after| PasskeyLoginError::TooManyRequests { retry_after })?;
        let Some(creds) = self.ports.users.find_by_id(user).await? else {
            return Err(PasskeyLoginError::InvalidToken);
        };
        if creds.status.is_disabled() {
            return Err(PasskeyLoginError::AccountDisabled);
        }
        if self
            .ports
            .sessions
            .revocation_epoch(&creds.user.email)
            .await?
            != challenge.epoch
        {
            info!(
                security_event = "mfa_token_refused",
                "passkey second step refused: the sessions were revoked after the password step"
            );
            return Err(PasskeyLoginError::InvalidToken);
        }
        let Ok((_, credential_id)) = px.ports.verifier.identify(response) else {
            return Err(PasskeyLoginError::InvalidCredentials);
        };
        let Some(used) = self
            .check_assertion(px, &creds, &credential_id, response, &taken.state, &client)
            .await?
        else {
            self.record_event(
                creds.user.id,
                SecurityEventKind::LoginFailed(LoginFailure::SecondFactorFailed),
                &client,
            )
            .await;
            return Err(PasskeyLoginError::InvalidCredentials);
        };
        self.throttle.second_factor_succeeded(user).await?;
        if !self.ports.totp.take_challenge(&token_hash).await? {
            return Err(PasskeyLoginError::InvalidToken);
        }
        let device = device.and_then(|d| self.known_device(d, &creds.user.email));
        self.open_session(creds.user, client, challenge.epoch, device, Some(used))
            .await
            .map_err(|e| match e {
                Opened::LostToRevocation => PasskeyLoginError::InvalidToken,
                Opened::Failure(f) => PasskeyLoginError::Failure(f),
            })
    }

    /// The account of a password step waiting for its second factor, if `token` is live and
    /// from this client.
    async fn pending_login_user(
        &self,
        token: &MfaToken,
        client: &ClientInfo,
    ) -> Result<UserId, PasskeyLoginError> {
        let Some(challenge) = self.ports.totp.get_challenge(&token.hash()).await? else {
            return Err(PasskeyLoginError::InvalidToken);
        };
        let binding = self
            .otp_secret
            .client_binding(client, self.throttle.config().ipv6_prefix_len);
        if self.ports.clock.now() >= challenge.expires_at || challenge.client != binding {
            return Err(PasskeyLoginError::InvalidToken);
        }
        Ok(challenge.user_id)
    }

    /// Verifies an assertion made with `credential_id`, which must be one of `creds`'
    /// passkeys, checks its counter and records the use: the passkey used, `Ok(None)` when it
    /// does not verify.
    async fn check_assertion(
        &self,
        px: &PasskeyRuntime,
        creds: &UserCredentials,
        credential_id: &[u8],
        response: &serde_json::Value,
        state: &[u8],
        client: &ClientInfo,
    ) -> Result<Option<PasskeyId>, Failure> {
        let Some(passkey) = px.ports.store.find_by_credential_id(credential_id).await? else {
            info!("passkey sign-in: unknown credential");
            return Ok(None);
        };
        if passkey.user_id != creds.user.id {
            warn!(
                security_event = "passkey_user_mismatch",
                "an assertion named another account than its credential's"
            );
            return Ok(None);
        }
        let verified = match px.ports.verifier.finish_authentication(
            response,
            state,
            &passkey.credential,
        ) {
            Ok(v) => v,
            Err(PasskeyVerifierError::Rejected(why)) => {
                info!(security_event = "passkey_assertion_refused", %why, "passkey assertion refused");
                return Ok(None);
            }
            Err(e) => return Err(verifier_failure(e)),
        };
        // A counter that did not move forward means a cloned authenticator or a replay; an
        // authenticator without a counter always signs 0.
        let counter_ok = verified.sign_count > passkey.sign_count
            || (verified.sign_count == 0 && passkey.sign_count == 0);
        if !counter_ok {
            warn!(
                security_event = "passkey_counter_refused",
                client_ip = client.ip.map(|ip| ip.to_string()),
                "passkey assertion refused: its signature counter did not move forward"
            );
            return Ok(None);
        }
        let now = self.ports.clock.now();
        if !px
            .ports
            .store
            .record_use(
                passkey.id,
                passkey.sign_count,
                verified.sign_count,
                &verified.credential,
                now,
            )
            .await?
        {
            warn!(
                security_event = "passkey_counter_refused",
                "passkey assertion refused: a parallel sign-in used the counter"
            );
            return Ok(None);
        }
        Ok(Some(passkey.id))
    }

    /// Whether the passkey `id` of `user` is still registered (`true` without passkeys: there
    /// is nothing to check). A sign-in asks after storing its session, so that a deletion that
    /// ran meanwhile either saw the session in its sweep or is seen here.
    pub(super) async fn passkey_still_registered(
        &self,
        user: UserId,
        id: PasskeyId,
    ) -> Result<bool, Failure> {
        let Some(px) = self.passkey_runtime() else {
            return Ok(true);
        };
        Ok(px.ports.store.list(user).await?.iter().any(|p| p.id == id))
    }

    /// Ends every session of `user` that the passkey `id` opened; how many. A page at a
    /// time: a user has at most the store's cap of sessions.
    pub(super) async fn end_passkey_sessions(
        &self,
        user: UserId,
        id: PasskeyId,
    ) -> Result<u64, Failure> {
        let mut ended = 0;
        let mut after = None;
        loop {
            let page = self
                .ports
                .sessions
                .list_for_user(user, after, crate::ports::MAX_SESSIONS_PAGE)
                .await?;
            for session in page.sessions.iter().filter(|s| s.passkey == Some(id)) {
                if self.ports.sessions.delete(&session.token_hash).await? {
                    ended += 1;
                }
            }
            match page.next {
                Some(next) => after = Some(next),
                None => return Ok(ended),
            }
        }
    }

    /// Removes every passkey of `user` and ends the sessions they opened (the recovery path:
    /// a password reset), each recorded as `passkey_removed`; the names of those removed,
    /// oldest first. Nothing without passkeys.
    pub(super) async fn remove_all_passkeys(
        &self,
        user: UserId,
        client: &ClientInfo,
    ) -> Result<Vec<String>, Failure> {
        let Some(px) = self.passkey_runtime() else {
            return Ok(Vec::new());
        };
        let mut removed = Vec::new();
        for passkey in px.ports.store.list(user).await? {
            if !px.ports.store.delete(user, passkey.id).await? {
                continue;
            }
            let ended = self.end_passkey_sessions(user, passkey.id).await?;
            info!(
                security_event = "passkey_removed",
                passkey = %passkey.id,
                ended,
                "passkey removed by a password reset"
            );
            self.record_event(user, SecurityEventKind::PasskeyRemoved, client)
                .await;
            removed.push(passkey.name.as_str().to_owned());
        }
        Ok(removed)
    }

    /// The names of `user`'s passkeys, oldest first (none without passkeys).
    pub(super) async fn passkey_names(&self, user: UserId) -> Result<Vec<String>, Failure> {
        let Some(px) = self.passkey_runtime() else {
            return Ok(Vec::new());
        };
        Ok(px
            .ports
            .store
            .list(user)
            .await?
            .into_iter()
            .map(|p| p.name.as_str().to_owned())
            .collect())
    }

    /// Seals and stores a new ceremony; its handle and expiry.
    async fn put_ceremony(
        &self,
        px: &PasskeyRuntime,
        kind: Kind,
        client: &ClientInfo,
        state: Vec<u8>,
    ) -> Result<(CeremonyId, DateTime<Utc>), Failure> {
        let id = CeremonyId::new(self.ports.random.session_token());
        let key = id.hash();
        let expires_at = add(self.ports.clock.now(), px.ports.ceremony_ttl);
        let binding = self
            .otp_secret
            .client_binding(client, self.throttle.config().ipv6_prefix_len);
        let ceremony = Ceremony {
            kind,
            client: hex::encode(binding.0),
            state,
            expires_at: expires_at.timestamp_micros(),
        };
        let plain = serde_json::to_vec(&ceremony)
            .map_err(|e| Failure::Internal(Dependency::PasskeyChallenges, Box::new(e)))?;
        let sealed = px.seal.seal(&plain, &key.0);
        px.ports.challenges.put(&key, &sealed, expires_at).await?;
        Ok((id, expires_at))
    }

    /// Takes (deletes) a ceremony: `Ok(None)` when it is unknown, used, expired, does not open
    /// or belongs to another client.
    async fn take_ceremony(
        &self,
        px: &PasskeyRuntime,
        id: &CeremonyId,
        client: &ClientInfo,
    ) -> Result<Option<Ceremony>, Failure> {
        let key: TokenHash = id.hash();
        let Some(sealed) = px.ports.challenges.take(&key).await? else {
            return Ok(None);
        };
        let Some(ceremony) = px
            .seal
            .open(&sealed, &key.0)
            .and_then(|plain| serde_json::from_slice::<Ceremony>(&plain).ok())
        else {
            warn!(
                security_event = "passkey_ceremony_refused",
                "a stored ceremony does not open"
            );
            return Ok(None);
        };
        let now = self.ports.clock.now().timestamp_micros();
        let binding = self
            .otp_secret
            .client_binding(client, self.throttle.config().ipv6_prefix_len);
        let same_client = hex::decode(&ceremony.client)
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .is_some_and(|b| crate::domain::mfa::ClientBinding(b) == binding);
        if now >= ceremony.expires_at || !same_client {
            warn!(
                security_event = "passkey_ceremony_refused",
                expired = now >= ceremony.expires_at,
                "passkey ceremony refused: expired or from another client"
            );
            return Ok(None);
        }
        Ok(Some(ceremony))
    }

    async fn spend_passkey_budget(&self, client: &ClientInfo) -> Result<(), Stop> {
        self.throttle.passkey(client).await?.map_err(Stop::Retry)
    }

    /// The user's mail language, if the account says (best effort).
    async fn language_of_user(&self, user: UserId) -> Option<String> {
        match self.ports.users.find_by_id(user).await {
            Ok(Some(creds)) => creds.language,
            _ => None,
        }
    }
}

//! # auth-webauthn
//!
//! The [`PasskeyVerifier`] port on `webauthn-rs` (kanidm's relying-party library): it builds
//! the options of each WebAuthn ceremony and verifies the browser's answers, checking the
//! challenge, the origin (only the configured one), the relying-party id hash, the user
//! presence and verification flags (verification required), the signature and the counter.
//!
//! Registration asks for a discoverable credential (resident key required) with user
//! verification, no attestation (a passkey provider's attestation would tell nothing we act
//! on). A ceremony's state is serialised for the service, which keeps it sealed server-side.

use auth_core::{
    CeremonyStart, PasskeyVerifier, PasskeyVerifierError, RegisteredCredential, UserId,
    VerifiedAssertion,
};
use serde_json::Value;
use webauthn_rs::prelude::{
    CredentialID, DiscoverableAuthentication, DiscoverableKey, Passkey, PasskeyAuthentication,
    PasskeyRegistration, PublicKeyCredential, RegisterPublicKeyCredential, Url, Webauthn,
    WebauthnBuilder,
};
use webauthn_rs_proto::ResidentKeyRequirement;

/// Why the relying party cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum WebauthnSettingsError {
    /// The origin is not an absolute URL.
    #[error("WEBAUTHN_ORIGIN is not a URL")]
    Origin,
    /// The relying-party id is not the origin's host or a registrable suffix of it.
    #[error("WEBAUTHN_RP_ID must be the host of WEBAUTHN_ORIGIN or a parent domain of it")]
    Mismatch,
}

/// The relying party of one origin.
pub struct WebauthnVerifier {
    webauthn: Webauthn,
}

impl std::fmt::Debug for WebauthnVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebauthnVerifier").finish_non_exhaustive()
    }
}

/// The state of an authentication ceremony, as kept between its two requests.
#[derive(serde::Serialize, serde::Deserialize)]
enum AuthState {
    Discoverable(DiscoverableAuthentication),
    Credentials(PasskeyAuthentication),
}

fn rejected(e: impl std::fmt::Display) -> PasskeyVerifierError {
    PasskeyVerifierError::Rejected(e.to_string())
}

fn other(e: impl std::error::Error + Send + Sync + 'static) -> PasskeyVerifierError {
    PasskeyVerifierError::Other(Box::new(e))
}

/// The counter a stored passkey holds (its serialised form carries it; the library keeps the
/// field to itself).
fn counter_of(passkey: &Passkey) -> Result<u32, PasskeyVerifierError> {
    let value = serde_json::to_value(passkey).map_err(other)?;
    value
        .pointer("/cred/counter")
        .and_then(Value::as_u64)
        .and_then(|c| u32::try_from(c).ok())
        .ok_or_else(|| PasskeyVerifierError::Rejected("the credential has no counter".into()))
}

impl WebauthnVerifier {
    /// The relying party `rp_id` (a domain) answering `origin` only (scheme, host and port,
    /// as the browser sends it), named `rp_name` in the authenticator's prompt.
    pub fn new(rp_id: &str, origin: &str, rp_name: &str) -> Result<Self, WebauthnSettingsError> {
        let origin = Url::parse(origin).map_err(|_| WebauthnSettingsError::Origin)?;
        let webauthn = WebauthnBuilder::new(rp_id, &origin)
            .map_err(|_| WebauthnSettingsError::Mismatch)?
            .rp_name(rp_name)
            .build()
            .map_err(|_| WebauthnSettingsError::Mismatch)?;
        Ok(Self { webauthn })
    }

    fn passkey(stored: &[u8]) -> Result<Passkey, PasskeyVerifierError> {
        serde_json::from_slice(stored).map_err(other)
    }
}

impl PasskeyVerifier for WebauthnVerifier {
    fn start_registration(
        &self,
        user: UserId,
        name: &str,
        exclude: &[Vec<u8>],
    ) -> Result<CeremonyStart, PasskeyVerifierError> {
        let exclude: Vec<CredentialID> = exclude.iter().cloned().map(CredentialID::from).collect();
        let (mut ccr, state) = self
            .webauthn
            .start_passkey_registration(user.as_uuid(), name, name, Some(exclude))
            .map_err(other)?;
        // Sign-in without a typed address needs the credential kept on the authenticator.
        if let Some(selection) = ccr.public_key.authenticator_selection.as_mut() {
            selection.resident_key = Some(ResidentKeyRequirement::Required);
            selection.require_resident_key = true;
        }
        Ok(CeremonyStart {
            options: serde_json::to_value(&ccr.public_key).map_err(other)?,
            state: serde_json::to_vec(&state).map_err(other)?,
        })
    }

    fn finish_registration(
        &self,
        response: &Value,
        state: &[u8],
    ) -> Result<RegisteredCredential, PasskeyVerifierError> {
        let answer: RegisterPublicKeyCredential =
            serde_json::from_value(response.clone()).map_err(rejected)?;
        let state: PasskeyRegistration = serde_json::from_slice(state).map_err(other)?;
        let passkey = self
            .webauthn
            .finish_passkey_registration(&answer, &state)
            .map_err(rejected)?;
        Ok(RegisteredCredential {
            credential_id: passkey.cred_id().to_vec(),
            sign_count: counter_of(&passkey)?,
            credential: serde_json::to_vec(&passkey).map_err(other)?,
        })
    }

    fn start_discoverable(&self) -> Result<CeremonyStart, PasskeyVerifierError> {
        let (rcr, state) = self
            .webauthn
            .start_discoverable_authentication()
            .map_err(other)?;
        Ok(CeremonyStart {
            // The options only; the web page asks with a button, not by autofill mediation.
            options: serde_json::to_value(&rcr.public_key).map_err(other)?,
            state: serde_json::to_vec(&AuthState::Discoverable(state)).map_err(other)?,
        })
    }

    fn start_authentication(
        &self,
        credentials: &[Vec<u8>],
    ) -> Result<CeremonyStart, PasskeyVerifierError> {
        let passkeys = credentials
            .iter()
            .map(|c| Self::passkey(c))
            .collect::<Result<Vec<_>, _>>()?;
        let (rcr, state) = self
            .webauthn
            .start_passkey_authentication(&passkeys)
            .map_err(other)?;
        Ok(CeremonyStart {
            options: serde_json::to_value(&rcr.public_key).map_err(other)?,
            state: serde_json::to_vec(&AuthState::Credentials(state)).map_err(other)?,
        })
    }

    fn identify(
        &self,
        response: &Value,
    ) -> Result<(Option<UserId>, Vec<u8>), PasskeyVerifierError> {
        let answer: PublicKeyCredential =
            serde_json::from_value(response.clone()).map_err(rejected)?;
        let user = match answer.get_user_unique_id() {
            None => None,
            Some(handle) => Some(
                uuid::Uuid::from_slice(handle)
                    .map(UserId::from_uuid)
                    .map_err(rejected)?,
            ),
        };
        Ok((user, answer.get_credential_id().to_vec()))
    }

    fn finish_authentication(
        &self,
        response: &Value,
        state: &[u8],
        credential: &[u8],
    ) -> Result<VerifiedAssertion, PasskeyVerifierError> {
        let answer: PublicKeyCredential =
            serde_json::from_value(response.clone()).map_err(rejected)?;
        let mut passkey = Self::passkey(credential)?;
        let state: AuthState = serde_json::from_slice(state).map_err(other)?;
        let result = match state {
            AuthState::Discoverable(state) => self.webauthn.finish_discoverable_authentication(
                &answer,
                state,
                &[DiscoverableKey::from(&passkey)],
            ),
            AuthState::Credentials(state) => {
                self.webauthn.finish_passkey_authentication(&answer, &state)
            }
        }
        .map_err(rejected)?;
        if !result.user_verified() {
            return Err(rejected("the user was not verified"));
        }
        if passkey.update_credential(&result).is_none() {
            return Err(rejected("the assertion is for another credential"));
        }
        Ok(VerifiedAssertion {
            sign_count: result.counter(),
            credential: serde_json::to_vec(&passkey).map_err(other)?,
        })
    }
}

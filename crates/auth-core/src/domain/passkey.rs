//! Passkeys (WebAuthn credentials): the id a credential has in this service
//! ([`PasskeyId`]), the name its owner gives it ([`PasskeyName`]), and the handle of a
//! ceremony in flight ([`CeremonyId`]).

use std::fmt;

use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use uuid::Uuid;

use super::session::{SessionToken, TokenHash};

/// Longest passkey name, in characters.
pub const MAX_PASSKEY_NAME_CHARS: usize = 64;

/// Longest credential id accepted, in bytes (WebAuthn allows 1023).
pub const MAX_CREDENTIAL_ID_BYTES: usize = 1023;

/// Shortest credential id accepted at registration, in bytes: WebAuthn asks authenticators
/// for at least 16 bytes of entropy in an id, so a shorter one is not an authenticator's.
pub const MIN_CREDENTIAL_ID_BYTES: usize = 16;

/// Why the outer fields of a `PublicKeyCredential` (`type`, `id`, `rawId`) are refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CredentialShapeError {
    /// `type` is missing or not `public-key`.
    #[error("the credential's type is not public-key")]
    NotPublicKey,
    /// `id` or `rawId` is missing or not base64url, or they name different credentials.
    #[error("the credential's id and rawId do not match")]
    IdMismatch,
}

/// The credential id a `PublicKeyCredential` (as JSON, binary fields base64url) names in its
/// outer fields: `type` must be `public-key`, and `id` and `rawId` must decode to the same
/// bytes. (The authenticator data carries the id too; the caller compares the two.)
pub fn outer_credential_id(
    credential: &serde_json::Value,
) -> Result<Vec<u8>, CredentialShapeError> {
    if credential.get("type").and_then(serde_json::Value::as_str) != Some("public-key") {
        return Err(CredentialShapeError::NotPublicKey);
    }
    let decode = |field: &str| {
        let raw = credential.get(field)?.as_str()?.trim_end_matches('=');
        URL_SAFE_NO_PAD
            .decode(raw)
            .or_else(|_| STANDARD_NO_PAD.decode(raw))
            .ok()
    };
    match (decode("id"), decode("rawId")) {
        (Some(id), Some(raw_id)) if id == raw_id => Ok(id),
        _ => Err(CredentialShapeError::IdMismatch),
    }
}

/// The id of a stored passkey in this service (not the authenticator's credential id, which
/// never appears in a URL).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PasskeyId(Uuid);

impl PasskeyId {
    /// Wraps a UUID.
    pub fn from_uuid(id: Uuid) -> Self {
        Self(id)
    }

    /// Parses the text form (any UUID form); `None` for anything else.
    pub fn parse(raw: &str) -> Option<Self> {
        Uuid::try_parse(raw).ok().map(Self)
    }

    /// The UUID.
    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl fmt::Display for PasskeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Why a string is not a passkey name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasskeyNameError {
    /// Empty once trimmed.
    #[error("the passkey name must not be empty")]
    Empty,
    /// Longer than [`MAX_PASSKEY_NAME_CHARS`].
    #[error("the passkey name must be at most 64 characters")]
    TooLong,
    /// Holds a control character.
    #[error("the passkey name must not contain control characters")]
    ControlCharacter,
}

/// The name an owner gives a passkey ("laptop", "phone"): 1 to 64 characters, trimmed, no
/// control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeyName(String);

impl PasskeyName {
    /// Parses a name as typed.
    pub fn parse(raw: &str) -> Result<Self, PasskeyNameError> {
        let name = raw.trim();
        if name.is_empty() {
            return Err(PasskeyNameError::Empty);
        }
        if name.chars().any(char::is_control) {
            return Err(PasskeyNameError::ControlCharacter);
        }
        if name.chars().count() > MAX_PASSKEY_NAME_CHARS {
            return Err(PasskeyNameError::TooLong);
        }
        Ok(Self(name.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PasskeyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The handle of a WebAuthn ceremony in flight (registration or sign-in): 256 random bits,
/// base64url, handed to the client with the ceremony's options and sent back with its
/// answer. Only its SHA-256 is stored; it works once.
#[derive(Clone)]
pub struct CeremonyId(SessionToken);

impl CeremonyId {
    pub(crate) fn new(token: SessionToken) -> Self {
        Self(token)
    }

    /// Parses the form a client sends back; `None` for anything else.
    pub fn parse(raw: &str) -> Option<Self> {
        SessionToken::parse(raw).map(Self)
    }

    /// The form handed to the client.
    pub fn expose(&self) -> String {
        self.0.expose()
    }

    /// SHA-256 of the handle: the only form that is stored.
    pub fn hash(&self) -> TokenHash {
        self.0.hash()
    }
}

impl fmt::Debug for CeremonyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CeremonyId([REDACTED])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_trimmed_bounded_and_free_of_control_characters() {
        assert_eq!(
            PasskeyName::parse("  laptop ").map(|n| n.0),
            Ok("laptop".into())
        );
        assert_eq!(PasskeyName::parse("   "), Err(PasskeyNameError::Empty));
        assert_eq!(
            PasskeyName::parse("a\u{0}b"),
            Err(PasskeyNameError::ControlCharacter)
        );
        assert!(PasskeyName::parse(&"é".repeat(64)).is_ok());
        assert_eq!(
            PasskeyName::parse(&"é".repeat(65)),
            Err(PasskeyNameError::TooLong)
        );
    }
}

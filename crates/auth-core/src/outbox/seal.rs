//! [`MailSeal`]: the outbox keeps messages sealed (XChaCha20-Poly1305), so a copy of the user
//! database reveals no code.

use secrecy::{ExposeSecret, SecretBox};
use uuid::Uuid;

use crate::seal::Sealer;

use crate::domain::email::EmailAddress;
use crate::ports::MailMessage;

/// Domain separation: the outbox key is useless for anything else derived from the secret.
const KEY_INFO: &[u8] = b"secureauth mail outbox v1";

/// Why a sealed message cannot be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// The key is shorter than [`MailSeal::MIN_SECRET_LEN`].
    #[error("the outbox secret must be at least {min} bytes long (got {len})")]
    SecretTooShort {
        /// [`MailSeal::MIN_SECRET_LEN`].
        min: usize,
        /// The length given.
        len: usize,
    },
    /// The message was sealed under another key, for another message or recipient, or was
    /// altered.
    #[error("the message cannot be opened (another key, another message, or altered)")]
    Unreadable,
}

/// What the outbox keeps of a message: the message and the recipient's language preference.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Letter {
    /// The message.
    pub message: MailMessage,
    /// The recipient's `Accept-Language` preference, if known.
    #[serde(default)]
    pub language: Option<String>,
}

/// Seals and opens outbox messages with a key derived (HKDF-SHA256) from the service secret.
///
/// Each message gets a random 192-bit nonce; the message id and the recipient are
/// authenticated with it, so a sealed body moved to another row does not open.
#[derive(Clone)]
pub struct MailSeal(Sealer);

impl MailSeal {
    /// Minimum secret length in bytes.
    pub const MIN_SECRET_LEN: usize = 32;

    /// The seal whose key is derived from `secret` (say, the bytes of `AUTH_SECRET`).
    pub fn derive(secret: &SecretBox<[u8]>) -> Result<Self, SealError> {
        let secret = secret.expose_secret();
        if secret.len() < Self::MIN_SECRET_LEN {
            return Err(SealError::SecretTooShort {
                min: Self::MIN_SECRET_LEN,
                len: secret.len(),
            });
        }
        Ok(Self(Sealer::derive(secret, KEY_INFO)))
    }

    /// The letter for message `id` to `to`, sealed.
    pub fn seal(&self, id: Uuid, to: &EmailAddress, letter: &Letter) -> Vec<u8> {
        // Serializing plain data into a Vec cannot fail.
        let plain = serde_json::to_vec(letter).unwrap_or_default();
        self.0.seal(&plain, &associated_data(id, to))
    }

    /// Opens what [`seal`](Self::seal) made for message `id` to `to`.
    pub fn open(&self, id: Uuid, to: &EmailAddress, sealed: &[u8]) -> Result<Letter, SealError> {
        let plain = self
            .0
            .open(sealed, &associated_data(id, to))
            .ok_or(SealError::Unreadable)?;
        serde_json::from_slice(&plain).map_err(|_| SealError::Unreadable)
    }
}

fn associated_data(id: Uuid, to: &EmailAddress) -> Vec<u8> {
    let mut aad = Vec::with_capacity(16 + to.as_str().len());
    aad.extend_from_slice(id.as_bytes());
    aad.extend_from_slice(to.as_str().as_bytes());
    aad
}

impl std::fmt::Debug for MailSeal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MailSeal([REDACTED])")
    }
}

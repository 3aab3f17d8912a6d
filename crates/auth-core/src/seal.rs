//! [`Sealer`]: authenticated encryption (XChaCha20-Poly1305) under a key derived with
//! HKDF-SHA256 from the service secret and a purpose label. The mail outbox
//! ([`crate::outbox::MailSeal`]) and the TOTP secrets at rest use it, each under its own label,
//! so one key is useless for the other.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use rand::rngs::OsRng;
use rand::RngCore;
use sha2::Sha256;

const NONCE_LEN: usize = 24;

/// Seals and opens byte strings. Each seal gets a random 192-bit nonce (stored in front of the
/// ciphertext); the associated data the caller passes (say, the row's id) is authenticated,
/// so a sealed value moved to another row does not open.
#[derive(Clone)]
pub struct Sealer(XChaCha20Poly1305);

impl Sealer {
    /// The sealer whose key is HKDF-SHA256(`ikm`, `info`).
    pub fn derive(ikm: &[u8], info: &[u8]) -> Self {
        let mut key = [0u8; 32];
        // HKDF refuses only outputs longer than 255 hashes; 32 bytes is one.
        let _ = Hkdf::<Sha256>::new(None, ikm).expand(info, &mut key);
        let cipher = XChaCha20Poly1305::new((&key).into());
        key.fill(0);
        Self(cipher)
    }

    /// `plain`, sealed and bound to `aad`: nonce followed by ciphertext and tag.
    pub fn seal(&self, plain: &[u8], aad: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        OsRng.fill_bytes(&mut nonce);
        // Encryption fails only for plaintexts beyond 256 GiB.
        let sealed = self
            .0
            .encrypt(XNonce::from_slice(&nonce), Payload { msg: plain, aad })
            .unwrap_or_default();
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    /// Opens what [`seal`](Self::seal) made with the same `aad`; `None` when it was sealed
    /// under another key or other associated data, or altered.
    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> Option<Vec<u8>> {
        let (nonce, body) = sealed.split_at_checked(NONCE_LEN)?;
        self.0
            .decrypt(XNonce::from_slice(nonce), Payload { msg: body, aad })
            .ok()
    }
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer([REDACTED])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_value_opens_only_with_its_key_label_and_associated_data() {
        let a = Sealer::derive(&[1; 32], b"one");
        let same = Sealer::derive(&[1; 32], b"one");
        let other_label = Sealer::derive(&[1; 32], b"two");
        let sealed = a.seal(b"secret", b"row 1");
        assert_eq!(
            same.open(&sealed, b"row 1").as_deref(),
            Some(&b"secret"[..])
        );
        assert_eq!(other_label.open(&sealed, b"row 1"), None);
        assert_eq!(a.open(&sealed, b"row 2"), None);
        let mut altered = sealed.clone();
        *altered.last_mut().unwrap() ^= 1;
        assert_eq!(a.open(&altered, b"row 1"), None);
        assert_eq!(a.open(&sealed[..10], b"row 1"), None);
        assert_ne!(
            a.seal(b"secret", b"row 1"),
            sealed,
            "a fresh nonce each time"
        );
    }
}

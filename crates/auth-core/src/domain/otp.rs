//! One-time codes: [`OtpCode`], what they are for ([`OtpPurpose`]) and how they are stored
//! ([`OtpMac`], [`StoredOtp`]).

use std::fmt;
use std::net::IpAddr;

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretBox};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::email::EmailAddress;
use super::password::PasswordHash;

/// Why a string is not a one-time code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OtpError {
    /// Not exactly six ASCII digits.
    #[error("the code must be exactly 6 digits")]
    Malformed,
}

/// A six-digit one-time code. Its `Debug` output never shows the digits.
#[derive(Clone, PartialEq, Eq)]
pub struct OtpCode(String);

impl OtpCode {
    /// Exactly six ASCII digits; surrounding whitespace is tolerated (people paste codes).
    pub fn parse(raw: &str) -> Result<Self, OtpError> {
        let s = raw.trim();
        if s.len() == 6 && s.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(s.to_owned()))
        } else {
            Err(OtpError::Malformed)
        }
    }

    /// A code from a number below one million (zero-padded).
    pub fn from_number(n: u32) -> Result<Self, OtpError> {
        if n < 1_000_000 {
            Ok(Self(format!("{n:06}")))
        } else {
            Err(OtpError::Malformed)
        }
    }

    /// A code from a uniform sample in `0..1_000_000` (values above are reduced, which callers
    /// avoid by sampling in range).
    pub(crate) fn from_sample(n: u32) -> Self {
        Self(format!("{:06}", n % 1_000_000))
    }

    /// The digits, for the mail that carries them. Handle with care.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// Serialized as its six digits: only for the sealed mail outbox, never for logs.
impl serde::Serialize for OtpCode {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for OtpCode {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

impl fmt::Debug for OtpCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OtpCode(******)")
    }
}

/// What a code is for. A code is bound to its purpose: a reset code never verifies an e-mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OtpPurpose {
    /// Proving ownership of the address after signup.
    VerifyEmail,
    /// Proving ownership of the address before a password reset.
    ResetPassword,
    /// Logging in without the password (a login code mailed on request).
    Login,
    /// Proving ownership of a new address before the account moves to it. Stored under the
    /// account's current address; the code's MAC also binds the new address and the
    /// password hash of the request (see [`OtpSecret::mac_bound`]).
    ChangeEmail,
}

impl OtpPurpose {
    /// A stable short name, usable in storage keys.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::VerifyEmail => "verify",
            Self::ResetPassword => "reset",
            Self::Login => "login",
            Self::ChangeEmail => "email-change",
        }
    }
}

/// The server secret that keys the HMAC of every code. At least 32 bytes.
///
/// Why a key cannot be an [`OtpSecret`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OtpSecretError {
    /// Fewer bytes than [`OtpSecret::MIN_LEN`].
    #[error("the code secret must be at least {min} bytes long (got {len})")]
    TooShort {
        /// [`OtpSecret::MIN_LEN`].
        min: usize,
        /// The length given.
        len: usize,
    },
}

/// Holds the keyed HMAC state (the key schedule is computed once), never the raw key.
#[derive(Clone)]
pub struct OtpSecret(Hmac<Sha256>);

impl OtpSecret {
    /// Minimum key length in bytes.
    pub const MIN_LEN: usize = 32;

    /// [`OtpSecretError::TooShort`] when shorter than [`Self::MIN_LEN`].
    pub fn new(key: SecretBox<[u8]>) -> Result<Self, OtpSecretError> {
        let key = key.expose_secret();
        if key.len() < Self::MIN_LEN {
            return Err(OtpSecretError::TooShort {
                min: Self::MIN_LEN,
                len: key.len(),
            });
        }
        <Hmac<Sha256> as Mac>::new_from_slice(key)
            .map(Self)
            .map_err(|_| OtpSecretError::TooShort {
                min: Self::MIN_LEN,
                len: key.len(),
            })
    }

    /// A fresh HMAC state under the key.
    pub(crate) fn hmac(&self) -> Hmac<Sha256> {
        self.0.clone()
    }

    /// HMAC-SHA256 over purpose, address and code, so a stored MAC is useless for another
    /// purpose or another address, and a dump of the store does not reveal codes.
    pub fn mac(&self, purpose: OtpPurpose, email: &EmailAddress, code: &OtpCode) -> OtpMac {
        let mut mac = self.0.clone();
        mac.update(purpose.as_str().as_bytes());
        mac.update(&[0]);
        mac.update(email.as_str().as_bytes());
        mac.update(&[0]);
        mac.update(code.expose().as_bytes());
        OtpMac(mac.finalize().into_bytes().into())
    }

    /// [`OtpSecret::mac`] that also binds the code to `context` (each part length-prefixed):
    /// a code for one change is useless for another change of the same account.
    pub fn mac_bound(
        &self,
        purpose: OtpPurpose,
        email: &EmailAddress,
        context: &[&[u8]],
        code: &OtpCode,
    ) -> OtpMac {
        let mut mac = self.0.clone();
        mac.update(purpose.as_str().as_bytes());
        mac.update(&[0]);
        mac.update(email.as_str().as_bytes());
        mac.update(&[0]);
        for part in context {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac.update(code.expose().as_bytes());
        OtpMac(mac.finalize().into_bytes().into())
    }
}

impl fmt::Debug for OtpSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OtpSecret([REDACTED])")
    }
}

/// The keyed hash of a code: what the store keeps instead of the code.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct OtpMac(pub [u8; 32]);

impl OtpMac {
    /// Constant-time equality.
    pub fn ct_eq(&self, other: &OtpMac) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl fmt::Debug for OtpMac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OtpMac(..)")
    }
}

/// A code as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredOtp {
    /// HMAC of the code (see [`OtpSecret::mac`]).
    pub mac: OtpMac,
    /// When the code stops being valid.
    pub expires_at: DateTime<Utc>,
    /// For a verification code: the password hash chosen in the signup that asked for this
    /// code, which verifying with it sets. So a code verifies exactly the signup it was mailed
    /// for, whatever later signups for the same address chose.
    pub pending_password: Option<PasswordHash>,
    /// For a reset or login code: the client that asked for it (its IP; IPv6: the prefix its
    /// budgets are keyed on). That client's attempts on the codes are counted apart from
    /// everybody else's, so strangers' guesses cannot use up the owner's.
    pub requested_by: Option<IpAddr>,
}

/// The live codes of one (purpose, address) after one attempt was counted against them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtpAttempt {
    /// The stored codes, oldest first (at most as many as `put` was told to keep).
    pub codes: Vec<StoredOtp>,
    /// Attempts counted so far against all of them, this one included (1 for the first).
    pub attempts: u32,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parse_accepts_six_digits_only() {
        assert_eq!(OtpCode::parse("012345").unwrap().expose(), "012345");
        assert_eq!(OtpCode::parse(" 123456\n").unwrap().expose(), "123456");
        for bad in [
            "",
            "12345",
            "1234567",
            "12345a",
            "１２３４５６",
            "12 345",
            "-12345",
        ] {
            assert_eq!(OtpCode::parse(bad), Err(OtpError::Malformed), "{bad:?}");
        }
    }

    #[test]
    fn debug_hides_digits() {
        assert!(!format!("{:?}", OtpCode::parse("987654").unwrap()).contains("987654"));
    }

    #[test]
    fn mac_binds_purpose_email_and_code() {
        let key = OtpSecret::new(vec![7u8; 32].into_boxed_slice().into()).unwrap();
        let a = EmailAddress::parse("a@example.com").unwrap();
        let b = EmailAddress::parse("b@example.com").unwrap();
        let c = OtpCode::parse("123456").unwrap();
        let base = key.mac(OtpPurpose::VerifyEmail, &a, &c);
        assert!(base.ct_eq(&key.mac(OtpPurpose::VerifyEmail, &a, &c)));
        assert!(!base.ct_eq(&key.mac(OtpPurpose::ResetPassword, &a, &c)));
        assert!(!base.ct_eq(&key.mac(OtpPurpose::VerifyEmail, &b, &c)));
        let other = OtpCode::parse("123457").unwrap();
        assert!(!base.ct_eq(&key.mac(OtpPurpose::VerifyEmail, &a, &other)));
        let key2 = OtpSecret::new(vec![8u8; 32].into_boxed_slice().into()).unwrap();
        assert!(!base.ct_eq(&key2.mac(OtpPurpose::VerifyEmail, &a, &c)));
    }

    #[test]
    fn from_number_takes_exactly_the_numbers_below_a_million() {
        assert_eq!(OtpCode::from_number(0).unwrap().expose(), "000000");
        assert_eq!(OtpCode::from_number(999_999).unwrap().expose(), "999999");
        assert_eq!(OtpCode::from_number(1_000_000), Err(OtpError::Malformed));
        assert_eq!(OtpCode::from_number(u32::MAX), Err(OtpError::Malformed));
        assert_eq!(OtpCode::from_sample(1_000_042).expose(), "000042");
    }

    #[test]
    fn short_secret_refused() {
        assert_eq!(
            OtpSecret::new(vec![1u8; 31].into_boxed_slice().into()).err(),
            Some(OtpSecretError::TooShort { min: 32, len: 31 })
        );
    }

    proptest! {
        #[test]
        fn every_number_below_a_million_round_trips(n in 0u32..1_000_000) {
            let code = OtpCode::from_number(n).unwrap();
            prop_assert_eq!(code.expose().len(), 6);
            prop_assert_eq!(OtpCode::parse(code.expose()).unwrap(), code);
        }

        #[test]
        fn non_six_digit_strings_rejected(s in "\\PC*") {
            let t = s.trim();
            let valid = t.len() == 6 && t.bytes().all(|b| b.is_ascii_digit());
            prop_assert_eq!(OtpCode::parse(&s).is_ok(), valid);
        }
    }
}

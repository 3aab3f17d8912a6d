//! The second login step: [`SecondFactor`] (a TOTP code or a [`RecoveryCode`]), the
//! [`MfaToken`] that carries a login from the password step to the second step, and the
//! stored forms of both ([`RecoveryCodeHash`], [`ClientBinding`]).

use std::fmt;

use hmac::Mac;
use subtle::ConstantTimeEq;

use super::otp::{OtpCode, OtpSecret};
use super::session::{ClientInfo, SessionToken, TokenHash};
use super::user::UserId;
use crate::throttle::budget_ip;

/// Recovery codes handed out at a time.
pub const RECOVERY_CODE_COUNT: usize = 10;
/// Characters of a recovery code (without the dash): 10 × 5 bits = 50 bits.
pub const RECOVERY_CODE_CHARS: usize = 10;
/// Crockford's base32 alphabet, lower case: no `i`, `l`, `o`, `u`.
const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// Why a string is not a second factor.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecondFactorError {
    /// Neither six digits nor a recovery code.
    #[error(
        "the code must be 6 digits from your authenticator app or a recovery code (xxxxx-xxxxx)"
    )]
    Malformed,
}

/// A single-use recovery code: ten characters of Crockford base32, shown as `xxxxx-xxxxx`.
/// `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct RecoveryCode(String);

impl RecoveryCode {
    /// Parses what a person types: case, dashes and spaces do not matter, and `i`/`l` read as
    /// `1`, `o` as `0` (Crockford).
    pub fn parse(raw: &str) -> Result<Self, SecondFactorError> {
        let mut out = String::with_capacity(RECOVERY_CODE_CHARS);
        for c in raw.chars() {
            let c = match c.to_ascii_lowercase() {
                '-' | ' ' => continue,
                'i' | 'l' => '1',
                'o' => '0',
                c => c,
            };
            if !c.is_ascii() || !ALPHABET.contains(&(c as u8)) || out.len() == RECOVERY_CODE_CHARS {
                return Err(SecondFactorError::Malformed);
            }
            out.push(c);
        }
        if out.len() == RECOVERY_CODE_CHARS {
            Ok(Self(out))
        } else {
            Err(SecondFactorError::Malformed)
        }
    }

    /// A code from random bytes (five bits of each).
    pub(crate) fn from_random(bytes: &[u8; RECOVERY_CODE_CHARS]) -> Self {
        Self(
            bytes
                .iter()
                .map(|b| char::from(ALPHABET[usize::from(b & 31)]))
                .collect(),
        )
    }

    /// The code as shown once to its owner (`xxxxx-xxxxx`). Handle with care.
    pub fn expose(&self) -> String {
        format!("{}-{}", &self.0[..5], &self.0[5..])
    }
}

impl fmt::Debug for RecoveryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RecoveryCode(*****-*****)")
    }
}

/// HMAC-SHA256 (under the service secret) of a recovery code and its user: the only form
/// stored. A dump of the store gives no code, and a hash is useless for another account.
#[derive(Clone, Copy, Eq)]
pub struct RecoveryCodeHash(pub [u8; 32]);

impl PartialEq for RecoveryCodeHash {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl fmt::Debug for RecoveryCodeHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RecoveryCodeHash({}..)", &hex::encode(self.0)[..8])
    }
}

/// What a person gives at the second step: a code from the app or a recovery code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecondFactor {
    /// Six digits from the authenticator app.
    Totp(OtpCode),
    /// One of the recovery codes.
    Recovery(RecoveryCode),
}

impl SecondFactor {
    /// Six digits are a TOTP code; ten base32 characters (dash optional) a recovery code.
    pub fn parse(raw: &str) -> Result<Self, SecondFactorError> {
        if let Ok(code) = OtpCode::parse(raw) {
            return Ok(Self::Totp(code));
        }
        RecoveryCode::parse(raw.trim()).map(Self::Recovery)
    }
}

/// The token that carries a login from a correct password to the second step: 256 random
/// bits, base64url. Worth nothing but [`crate::AuthService::login_second_factor`], once, by
/// the client it was issued to, within a few minutes. Only its SHA-256 is stored.
#[derive(Clone)]
pub struct MfaToken(SessionToken);

impl MfaToken {
    pub(crate) fn new(token: SessionToken) -> Self {
        Self(token)
    }

    /// Parses the form a client sends back; `None` for anything else.
    pub fn parse(raw: &str) -> Option<Self> {
        SessionToken::parse(raw).map(Self)
    }

    /// The form handed to the client. Handle with care.
    pub fn expose(&self) -> String {
        self.0.expose()
    }

    /// SHA-256 of the token: the only form that is stored.
    pub fn hash(&self) -> TokenHash {
        self.0.hash()
    }
}

impl fmt::Debug for MfaToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MfaToken([REDACTED])")
    }
}

/// HMAC of a client's user agent and IP address (IPv6: its prefix), stored with an
/// [`MfaToken`]: the token works only from the client it was issued to.
#[derive(Clone, Copy, Eq)]
pub struct ClientBinding(pub [u8; 32]);

impl PartialEq for ClientBinding {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl fmt::Debug for ClientBinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientBinding(..)")
    }
}

impl OtpSecret {
    /// The stored form of `code` for `user`.
    pub fn recovery_code_hash(&self, user: UserId, code: &RecoveryCode) -> RecoveryCodeHash {
        let mut mac = self.hmac();
        mac.update(b"recovery-code");
        mac.update(&[0]);
        mac.update(user.as_uuid().as_bytes());
        mac.update(&[0]);
        mac.update(code.0.as_bytes());
        RecoveryCodeHash(mac.finalize().into_bytes().into())
    }

    /// The binding of a second-step token to `client` (user agent and IP, IPv6 by
    /// `ipv6_prefix_len`).
    pub fn client_binding(&self, client: &ClientInfo, ipv6_prefix_len: u8) -> ClientBinding {
        let mut mac = self.hmac();
        mac.update(b"mfa-client");
        mac.update(&[0]);
        mac.update(client.user_agent.as_deref().unwrap_or("").as_bytes());
        mac.update(&[0]);
        if let Some(ip) = client.ip {
            mac.update(budget_ip(ip, ipv6_prefix_len).to_string().as_bytes());
        }
        ClientBinding(mac.finalize().into_bytes().into())
    }

    /// A 32-byte key for `label`, derived from the service secret (input to HKDF for the
    /// sealers: each label gets an unrelated key).
    pub(crate) fn derive_key(&self, label: &[u8]) -> [u8; 32] {
        let mut mac = self.hmac();
        mac.update(b"derive-key");
        mac.update(&[0]);
        mac.update(label);
        mac.finalize().into_bytes().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn recovery_codes_parse_as_people_type_them() {
        let code = RecoveryCode::from_random(&[0, 1, 2, 3, 4, 27, 28, 29, 30, 31]);
        assert_eq!(code.expose(), "01234-vwxyz");
        for typed in [
            "01234-vwxyz",
            "01234vwxyz",
            " OI234 VWXYZ ",
            "o1234-vwxyz",
            "0l234-VWXYZ",
        ] {
            assert_eq!(RecoveryCode::parse(typed).unwrap(), code, "{typed}");
        }
        for bad in [
            "",
            "01234-vwxy",
            "01234-vwxyz0",
            "01234-vwxyu",
            "01234-vwxy!",
            "ü1234-vwxyz",
        ] {
            assert_eq!(
                RecoveryCode::parse(bad),
                Err(SecondFactorError::Malformed),
                "{bad}"
            );
        }
        assert_eq!(format!("{code:?}"), "RecoveryCode(*****-*****)");
    }

    #[test]
    fn six_digits_are_a_totp_code_and_the_rest_a_recovery_code() {
        assert!(matches!(
            SecondFactor::parse(" 123456 "),
            Ok(SecondFactor::Totp(_))
        ));
        assert!(matches!(
            SecondFactor::parse("abcde-fghjk"),
            Ok(SecondFactor::Recovery(_))
        ));
        assert_eq!(
            SecondFactor::parse("12345"),
            Err(SecondFactorError::Malformed)
        );
        assert_eq!(
            SecondFactor::parse("1234567"),
            Err(SecondFactorError::Malformed)
        );
    }

    #[test]
    fn a_recovery_hash_is_bound_to_key_user_and_code() {
        let key = |n: u8| OtpSecret::new(vec![n; 32].into_boxed_slice().into()).unwrap();
        let user = |n: u128| UserId::from_uuid(uuid::Uuid::from_u128(n));
        let code = RecoveryCode::parse("abcde-fghjk").unwrap();
        let other = RecoveryCode::parse("abcde-fghjm").unwrap();
        let h = key(1).recovery_code_hash(user(1), &code);
        assert_eq!(h, key(1).recovery_code_hash(user(1), &code));
        assert_ne!(h, key(2).recovery_code_hash(user(1), &code));
        assert_ne!(h, key(1).recovery_code_hash(user(2), &code));
        assert_ne!(h, key(1).recovery_code_hash(user(1), &other));
    }

    #[test]
    fn a_client_binding_changes_with_the_user_agent_and_the_address() {
        let key = OtpSecret::new(vec![1; 32].into_boxed_slice().into()).unwrap();
        let c = |ip: &str, ua: &str| ClientInfo::new(Some(ip.parse().unwrap()), Some(ua));
        let b = key.client_binding(&c("192.0.2.1", "app"), 64);
        assert_eq!(b, key.client_binding(&c("192.0.2.1", "app"), 64));
        assert_ne!(b, key.client_binding(&c("192.0.2.2", "app"), 64));
        assert_ne!(b, key.client_binding(&c("192.0.2.1", "other"), 64));
        // One IPv6 /64 is one client.
        assert_eq!(
            key.client_binding(&c("2001:db8::1", "app"), 64),
            key.client_binding(&c("2001:db8::2", "app"), 64)
        );
    }

    proptest! {
        #[test]
        fn every_random_recovery_code_round_trips(bytes in any::<[u8; RECOVERY_CODE_CHARS]>()) {
            let code = RecoveryCode::from_random(&bytes);
            prop_assert_eq!(RecoveryCode::parse(&code.expose()).unwrap(), code);
        }

        #[test]
        fn second_factor_parse_never_panics(s in any::<String>()) {
            let _ = SecondFactor::parse(&s);
        }
    }
}

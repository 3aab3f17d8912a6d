//! Time-based one-time passwords (RFC 6238): the shared secret ([`TotpSecret`]) and the
//! [`Totp`] rules the service checks codes with.
//!
//! The algorithm is `totp-rs`'s; this module fixes the parameters every authenticator app
//! understands (HMAC-SHA1, six digits, 30-second steps) and the service's drift rule: a code
//! of the current step or of one step before or after is accepted. Which step a code matched
//! is returned, so the caller can refuse a step it has accepted before (replay).

use std::fmt;

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretBox};

use super::email::EmailAddress;
use super::otp::OtpCode;

/// Seconds per time step.
pub const TOTP_STEP_SECS: u64 = 30;
/// Steps of drift accepted on either side of the current one.
pub const TOTP_SKEW_STEPS: u16 = 1;
/// Length of a new secret in bytes (160 bits, as RFC 4226 recommends).
pub const TOTP_SECRET_BYTES: usize = 20;
/// The shortest secret accepted (128 bits, RFC 4226's minimum).
pub const TOTP_MIN_SECRET_BYTES: usize = 16;

/// Why a [`Totp`] cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TotpError {
    /// The secret is shorter than [`TOTP_MIN_SECRET_BYTES`].
    #[error("a TOTP secret must be at least {TOTP_MIN_SECRET_BYTES} bytes long")]
    SecretTooShort,
    /// The issuer contains a colon, which the `otpauth://` label cannot carry.
    #[error("the TOTP issuer must not contain a colon")]
    BadIssuer,
}

/// The secret an authenticator app and the service share. `Debug` never shows it.
pub struct TotpSecret(SecretBox<[u8]>);

impl TotpSecret {
    /// Wraps raw secret bytes (from a CSPRNG, or unsealed from the store).
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, TotpError> {
        if bytes.len() < TOTP_MIN_SECRET_BYTES {
            return Err(TotpError::SecretTooShort);
        }
        Ok(Self(SecretBox::new(bytes.into_boxed_slice())))
    }

    /// The raw bytes, for sealing. Handle with care.
    pub fn expose(&self) -> &[u8] {
        self.0.expose_secret()
    }
}

impl fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpSecret([REDACTED])")
    }
}

/// A user's TOTP generator and checker: SHA-1, six digits, 30-second steps, ±1 step of drift.
pub struct Totp(totp_rs::Totp);

impl Totp {
    /// The TOTP of `secret` for `account`, shown in apps as "`issuer` (`account`)".
    pub fn new(
        secret: &TotpSecret,
        account: &EmailAddress,
        issuer: &str,
    ) -> Result<Self, TotpError> {
        if issuer.contains(':') {
            return Err(TotpError::BadIssuer);
        }
        totp_rs::Builder::new()
            .with_algorithm(totp_rs::Algorithm::SHA1)
            .with_digits(6)
            .with_skew(TOTP_SKEW_STEPS)
            .with_step_duration(TOTP_STEP_SECS)
            .with_secret(secret.expose().to_vec().into_boxed_slice())
            .with_account_name(account.as_str())
            .with_issuer(Some(issuer))
            .build()
            .map(Self)
            .map_err(|_| TotpError::SecretTooShort)
    }

    /// The `otpauth://totp/...` URI an authenticator app reads (from a QR code). It carries
    /// the secret: show it to its owner once, never log it.
    pub fn otpauth_uri(&self) -> String {
        self.0.to_url().unwrap_or_default()
    }

    /// The secret in base32, for typing into an app by hand. Handle with care.
    pub fn secret_base32(&self) -> String {
        self.0.secret().to_base32()
    }

    /// The time step `at` falls in.
    pub fn step_at(at: DateTime<Utc>) -> u64 {
        unix_secs(at) / TOTP_STEP_SECS
    }

    /// The step `code` belongs to, if it is the code of the step of `at` or of one step
    /// before or after it (compared in constant time); `None` otherwise. The caller refuses a
    /// step it accepted before.
    pub fn accepted_step(&self, code: &OtpCode, at: DateTime<Utc>) -> Option<u64> {
        self.0.check(code.expose(), unix_secs(at))
    }

    /// The code of the step `at` falls in (what an app shows at that time).
    pub fn code_at(&self, at: DateTime<Utc>) -> OtpCode {
        let token = self.0.generate(unix_secs(at)).to_string();
        OtpCode::parse(&token).unwrap_or_else(|_| OtpCode::from_sample(0))
    }
}

impl fmt::Debug for Totp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Totp([REDACTED])")
    }
}

fn unix_secs(at: DateTime<Utc>) -> u64 {
    u64::try_from(at.timestamp()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(secs, 0).unwrap()
    }

    fn ada() -> EmailAddress {
        EmailAddress::parse("ada@example.com").unwrap()
    }

    /// RFC 6238 appendix B, SHA-1 with the 20-byte ASCII key "12345678901234567890": the
    /// service's six digits are the last six of the RFC's eight.
    #[test]
    fn rfc_6238_test_vectors_sha1() {
        let secret = TotpSecret::from_bytes(b"12345678901234567890".to_vec()).unwrap();
        let totp = Totp::new(&secret, &ada(), "SecureAuth").unwrap();
        for (time, rfc) in [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ] {
            let code = totp.code_at(at(time));
            assert_eq!(code.expose(), &rfc[2..], "T = {time}");
            assert_eq!(
                totp.accepted_step(&code, at(time)),
                Some(u64::try_from(time).unwrap() / 30)
            );
        }
    }

    /// The same table for SHA-256 and SHA-512 with eight digits, against the algorithm crate
    /// directly (the service uses SHA-1, which every app supports).
    #[test]
    fn rfc_6238_test_vectors_sha256_and_sha512() {
        let cases = [
            (59, "46119246", "90693936"),
            (1_111_111_109, "68084774", "25091201"),
            (1_111_111_111, "67062674", "99943326"),
            (1_234_567_890, "91819424", "93441116"),
            (2_000_000_000, "90698825", "38618901"),
            (20_000_000_000, "77737706", "47863826"),
        ];
        let build = |alg, key: &[u8]| {
            totp_rs::Builder::new()
                .with_algorithm(alg)
                .with_digits(8)
                .with_secret(key.to_vec().into_boxed_slice())
                .build()
                .unwrap()
        };
        let sha256 = build(
            totp_rs::Algorithm::SHA256,
            b"12345678901234567890123456789012",
        );
        let sha512 = build(
            totp_rs::Algorithm::SHA512,
            b"1234567890123456789012345678901234567890123456789012345678901234",
        );
        for (time, want256, want512) in cases {
            assert_eq!(sha256.generate(time).to_string(), want256, "T = {time}");
            assert_eq!(sha512.generate(time).to_string(), want512, "T = {time}");
        }
    }

    #[test]
    fn a_code_is_accepted_one_step_either_side_and_no_further() {
        let secret = TotpSecret::from_bytes(vec![9; 20]).unwrap();
        let totp = Totp::new(&secret, &ada(), "SecureAuth").unwrap();
        let now = at(1_900_000_015); // inside step 63_333_333
        let step = Totp::step_at(now);
        let code_of = |s: u64| totp.code_at(at(i64::try_from(s * 30).unwrap()));
        assert_eq!(totp.accepted_step(&code_of(step), now), Some(step));
        assert_eq!(totp.accepted_step(&code_of(step - 1), now), Some(step - 1));
        assert_eq!(totp.accepted_step(&code_of(step + 1), now), Some(step + 1));
        assert_eq!(totp.accepted_step(&code_of(step - 2), now), None);
        assert_eq!(totp.accepted_step(&code_of(step + 2), now), None);
        // The window edges: the last second of a step and the first of the next.
        let last = at(i64::try_from(step * 30 + 29).unwrap());
        assert_eq!(totp.accepted_step(&code_of(step - 1), last), Some(step - 1));
        let next = at(i64::try_from(step * 30 + 30).unwrap());
        assert_eq!(totp.accepted_step(&code_of(step - 1), next), None);
    }

    #[test]
    fn the_uri_names_issuer_and_account_and_debug_hides_the_secret() {
        let secret = TotpSecret::from_bytes(vec![1; 20]).unwrap();
        let totp = Totp::new(&secret, &ada(), "SecureAuth").unwrap();
        let uri = totp.otpauth_uri();
        assert!(
            uri.starts_with("otpauth://totp/SecureAuth:ada%40example.com?"),
            "{uri}"
        );
        assert!(uri.contains(&format!("secret={}", totp.secret_base32())));
        assert!(uri.contains("issuer=SecureAuth"));
        assert_eq!(
            format!("{totp:?} {secret:?}"),
            "Totp([REDACTED]) TotpSecret([REDACTED])"
        );
        assert_eq!(
            TotpSecret::from_bytes(vec![1; 15]).unwrap_err(),
            TotpError::SecretTooShort
        );
        assert_eq!(
            Totp::new(&secret, &ada(), "a:b").unwrap_err(),
            TotpError::BadIssuer
        );
    }
}

//! [`Password`] (a new password that satisfies the policy), [`PasswordAttempt`] (whatever a
//! person typed at login) and [`PasswordHash`] (a PHC string).

use std::collections::HashSet;
use std::fmt;
use std::sync::LazyLock;

use secrecy::{ExposeSecret, SecretString};

use super::email::EmailAddress;

/// Upper bound on password length in Unicode code points. Anything longer is refused before
/// any hashing happens, so a megabyte "password" costs microseconds, not an Argon2 run.
pub const MAX_PASSWORD_CHARS: usize = 128;
/// Default (and lowest allowed) minimum length in code points.
pub const DEFAULT_MIN_PASSWORD_CHARS: usize = 8;

static COMMON_PASSWORDS_RAW: &str = include_str!("../../data/common-passwords.txt");
static CONTEXT_WORDS_RAW: &str = include_str!("../../data/context-words.txt");

static COMMON_PASSWORDS: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    COMMON_PASSWORDS_RAW
        .lines()
        .filter(|l| !l.is_empty())
        .collect()
});
static CONTEXT_WORDS: LazyLock<HashSet<String>> = LazyLock::new(|| {
    CONTEXT_WORDS_RAW
        .lines()
        .map(letters_only)
        .filter(|w| !w.is_empty())
        .collect()
});

/// Number of entries in the bundled common-password list.
pub fn common_password_count() -> usize {
    COMMON_PASSWORDS.len()
}

fn letters_only(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_alphabetic())
        .flat_map(char::to_lowercase)
        .collect()
}

/// Why a new password is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    /// Nothing was typed.
    #[error("the password must not be empty")]
    Empty,
    /// Fewer code points than the policy minimum.
    #[error("the password must be at least {min} characters long")]
    TooShort {
        /// The policy minimum.
        min: usize,
    },
    /// More than [`MAX_PASSWORD_CHARS`] code points.
    #[error("the password must be at most {max} characters long")]
    TooLong {
        /// [`MAX_PASSWORD_CHARS`].
        max: usize,
    },
    /// Contains a control character (newline, NUL, escape, ...).
    #[error("the password contains a control character")]
    ControlCharacter,
    /// In the bundled list of common passwords (case-insensitive).
    #[error("the password is too common")]
    Common,
    /// Equal to the e-mail address or its local part (case-insensitive).
    #[error("the password must not be your email address")]
    SameAsEmail,
    /// Nothing but the product's own name (or another banned context word) plus digits/symbols.
    #[error("the password must not be just the name of this service or the word \"password\" with digits or symbols")]
    ContextWord,
}

/// The password rules. No composition rules (no "one upper-case letter"), no rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordPolicy {
    min_chars: usize,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        Self {
            min_chars: DEFAULT_MIN_PASSWORD_CHARS,
        }
    }
}

impl PasswordPolicy {
    /// A policy with the given minimum length, clamped to
    /// [`DEFAULT_MIN_PASSWORD_CHARS`]..=[`MAX_PASSWORD_CHARS`].
    pub fn with_min_chars(min_chars: usize) -> Self {
        Self {
            min_chars: min_chars.clamp(DEFAULT_MIN_PASSWORD_CHARS, MAX_PASSWORD_CHARS),
        }
    }

    /// The minimum length in code points.
    pub fn min_chars(&self) -> usize {
        self.min_chars
    }

    /// Checks a new password for the account `email`.
    ///
    /// The length is checked first, by counting code points with an early exit, so oversized
    /// input is refused in microseconds. The password is never trimmed, truncated or case-folded.
    ///
    /// ```
    /// use auth_core::{EmailAddress, PasswordPolicy, PasswordError};
    /// let email = EmailAddress::parse("ada@example.com").unwrap();
    /// let policy = PasswordPolicy::default();
    /// assert!(policy.parse("correct horse battery staple".into(), &email).is_ok());
    /// assert_eq!(policy.parse("password123".into(), &email).unwrap_err(), PasswordError::Common);
    /// ```
    pub fn parse(
        &self,
        raw: SecretString,
        email: &EmailAddress,
    ) -> Result<Password, PasswordError> {
        let s = raw.expose_secret();
        let mut chars = 0usize;
        for c in s.chars() {
            chars += 1;
            if chars > MAX_PASSWORD_CHARS {
                return Err(PasswordError::TooLong {
                    max: MAX_PASSWORD_CHARS,
                });
            }
            if c.is_control() {
                return Err(PasswordError::ControlCharacter);
            }
        }
        if chars < self.min_chars {
            return Err(PasswordError::TooShort {
                min: self.min_chars,
            });
        }
        let lower = s.to_lowercase();
        if COMMON_PASSWORDS.contains(lower.as_str()) {
            return Err(PasswordError::Common);
        }
        if lower == email.as_str() || lower == email.local_part() {
            return Err(PasswordError::SameAsEmail);
        }
        if CONTEXT_WORDS.contains(&letters_only(s)) {
            return Err(PasswordError::ContextWord);
        }
        Ok(Password(raw))
    }
}

/// A new password that satisfied a [`PasswordPolicy`]. Never `Debug`-printed in clear.
#[derive(Clone)]
pub struct Password(SecretString);

impl Password {
    /// The secret, for the hasher.
    pub fn secret(&self) -> &SecretString {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password([REDACTED])")
    }
}

/// A password typed at login or as the "current password": not checked against the policy
/// (the policy may have changed since it was set), only bounded in length so that hashing
/// cost is bounded.
#[derive(Clone)]
pub struct PasswordAttempt(SecretString);

impl PasswordAttempt {
    /// [`PasswordError::Empty`] or [`PasswordError::TooLong`] (more than
    /// [`MAX_PASSWORD_CHARS`] code points): such input can never match a stored password.
    pub fn parse(raw: SecretString) -> Result<Self, PasswordError> {
        let s = raw.expose_secret();
        if s.is_empty() {
            return Err(PasswordError::Empty);
        }
        if s.chars().nth(MAX_PASSWORD_CHARS).is_some() {
            return Err(PasswordError::TooLong {
                max: MAX_PASSWORD_CHARS,
            });
        }
        Ok(Self(raw))
    }

    /// The secret, for the hasher.
    pub fn secret(&self) -> &SecretString {
        &self.0
    }
}

impl fmt::Debug for PasswordAttempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordAttempt([REDACTED])")
    }
}

/// A password hash in PHC string format (`$argon2id$v=19$m=19456,t=2,p=1$...`).
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash(String);

impl PasswordHash {
    /// Wraps a PHC string produced by a [`crate::PasswordHasher`] or read from storage.
    pub fn new(phc: impl Into<String>) -> Self {
        Self(phc.into())
    }

    /// The PHC string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The hash is not the password, but it is still offline-crackable material.
        f.write_str("PasswordHash([REDACTED])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::time::{Duration, Instant};

    fn email() -> EmailAddress {
        EmailAddress::parse("Ada.Lovelace@example.com").unwrap()
    }

    fn parse(s: &str) -> Result<Password, PasswordError> {
        PasswordPolicy::default().parse(SecretString::from(s), &email())
    }

    #[test]
    fn bundled_list_is_large_enough() {
        assert!(
            common_password_count() >= 10_000,
            "{}",
            common_password_count()
        );
    }

    #[test]
    fn length_bounds_in_code_points() {
        assert_eq!(
            parse("Zq9#xT2").unwrap_err(),
            PasswordError::TooShort { min: 8 }
        );
        assert!(parse("Zq9#xT2!").is_ok());
        // 8 emoji are 8 code points (32 bytes): accepted.
        assert!(parse("🦀🦀🔑🔑🌍🌍🚀🚀").is_ok());
        let max: String = "é".repeat(MAX_PASSWORD_CHARS);
        assert!(parse(&max).is_ok());
        let over = format!("{max}x");
        assert_eq!(
            parse(&over).unwrap_err(),
            PasswordError::TooLong { max: 128 }
        );
    }

    #[test]
    fn configurable_minimum() {
        let policy = PasswordPolicy::with_min_chars(15);
        let e = email();
        assert_eq!(
            policy.parse("fourteen chars".into(), &e).unwrap_err(),
            PasswordError::TooShort { min: 15 }
        );
        assert!(policy.parse("fifteen chars!!".into(), &e).is_ok());
        assert_eq!(PasswordPolicy::with_min_chars(3).min_chars(), 8);
    }

    #[test]
    fn one_megabyte_is_refused_fast() {
        let huge = "a".repeat(1 << 20);
        let start = Instant::now();
        assert!(matches!(parse(&huge), Err(PasswordError::TooLong { .. })));
        assert_eq!(
            PasswordAttempt::parse(huge.into()).err(),
            Some(PasswordError::TooLong {
                max: MAX_PASSWORD_CHARS
            })
        );
        assert_eq!(
            PasswordAttempt::parse(String::new().into()).err(),
            Some(PasswordError::Empty)
        );
        // Generous bound: the check stops after 129 code points.
        assert!(start.elapsed() < Duration::from_millis(50));
    }

    #[test]
    fn spaces_and_unicode_are_kept_as_typed() {
        let p = parse("  correct horse  ").unwrap();
        assert_eq!(p.secret().expose_secret(), "  correct horse  ");
    }

    #[test]
    fn common_passwords_rejected_case_insensitively() {
        assert_eq!(parse("password123").unwrap_err(), PasswordError::Common);
        assert_eq!(parse("QwErTyUiOp").unwrap_err(), PasswordError::Common);
        assert_eq!(parse("iloveyou").unwrap_err(), PasswordError::Common);
    }

    #[test]
    fn email_and_local_part_rejected() {
        assert_eq!(
            parse("ADA.LOVELACE@example.com").unwrap_err(),
            PasswordError::SameAsEmail
        );
        assert_eq!(
            parse("ada.lovelace").unwrap_err(),
            PasswordError::SameAsEmail
        );
    }

    #[test]
    fn product_name_rejected() {
        assert_eq!(
            parse("SecureAuth2026!").unwrap_err(),
            PasswordError::ContextWord
        );
        assert_eq!(
            parse("secure-auth-99").unwrap_err(),
            PasswordError::ContextWord
        );
    }

    #[test]
    fn control_characters_rejected() {
        assert_eq!(
            parse("abcdefgh\n").unwrap_err(),
            PasswordError::ControlCharacter
        );
    }

    #[test]
    fn debug_never_prints_the_secret() {
        let p = parse("very secret words").unwrap();
        assert!(!format!("{p:?}").contains("secret words"));
        let a = PasswordAttempt::parse("hunter2hunter2".into()).unwrap();
        assert!(!format!("{a:?}").contains("hunter2"));
    }

    proptest! {
        #[test]
        fn any_long_enough_random_password_is_accepted(s in "[a-zA-Z0-9 !-~]{8,128}") {
            // Random strings are vanishingly unlikely to be common or context words.
            prop_assume!(!COMMON_PASSWORDS.contains(s.to_lowercase().as_str()));
            prop_assume!(!CONTEXT_WORDS.contains(&letters_only(&s)));
            prop_assume!(s.to_lowercase() != "ada.lovelace");
            let p = parse(&s).unwrap();
            prop_assert_eq!(p.secret().expose_secret(), s.as_str());
        }

        #[test]
        fn too_short_always_rejected(s in "\\PC{0,7}") {
            prop_assert!(parse(&s).is_err());
        }

        #[test]
        fn too_long_always_rejected(s in "\\PC{129,300}") {
            prop_assert_eq!(parse(&s).unwrap_err(), PasswordError::TooLong { max: 128 });
        }

        #[test]
        fn never_panics(s in any::<String>()) {
            let _ = parse(&s);
            let _ = PasswordAttempt::parse(s.into());
        }
    }
}

//! [`EmailAddress`]: a validated, normalised e-mail address.

use std::fmt;
use std::str::FromStr;

/// Longest address accepted, in bytes (RFC 5321 path limit minus the angle brackets).
pub const MAX_EMAIL_LEN: usize = 254;

/// Why a string is not an acceptable e-mail address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    /// Nothing left after trimming.
    #[error("the email address is empty")]
    Empty,
    /// Longer than [`MAX_EMAIL_LEN`] bytes after trimming.
    #[error("the email address is longer than {MAX_EMAIL_LEN} characters")]
    TooLong,
    /// Contains a control character (CR, LF, NUL, ...) anywhere.
    #[error("the email address contains a control character")]
    ControlCharacter,
    /// Not an RFC 5322 `addr-spec`.
    #[error("the email address is not valid")]
    Invalid,
}

/// An e-mail address that passed validation.
///
/// Surrounding whitespace is trimmed, the address is checked by the `email_address` crate
/// (RFC 5322 `addr-spec`, no display name), limited to [`MAX_EMAIL_LEN`] bytes and stored
/// lower-cased, so two addresses that differ only in case are equal. Control characters
/// (CR/LF included) are refused, so a value of this type is always safe to put in a mail header.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EmailAddress(String);

impl EmailAddress {
    /// Parses and normalises an address.
    ///
    /// ```
    /// use auth_core::EmailAddress;
    /// let email = EmailAddress::parse("  Ada@Example.COM ").unwrap();
    /// assert_eq!(email.as_str(), "ada@example.com");
    /// assert!(EmailAddress::parse("ada@example.com\r\nBcc: x@y.z").is_err());
    /// ```
    pub fn parse(raw: &str) -> Result<Self, EmailError> {
        if raw.chars().any(char::is_control) {
            return Err(EmailError::ControlCharacter);
        }
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(EmailError::Empty);
        }
        let normalised = trimmed.to_lowercase();
        if trimmed.len() > MAX_EMAIL_LEN || normalised.len() > MAX_EMAIL_LEN {
            return Err(EmailError::TooLong);
        }
        let options = email_address::Options::default().without_display_text();
        email_address::EmailAddress::parse_with_options(&normalised, options)
            .map_err(|_| EmailError::Invalid)?;
        Ok(Self(normalised))
    }

    /// The normalised (lower-cased) address.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part before the last `@`.
    pub fn local_part(&self) -> &str {
        self.0
            .rsplit_once('@')
            .map_or(self.0.as_str(), |(local, _)| local)
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("EmailAddress").field(&self.0).finish()
    }
}

impl FromStr for EmailAddress {
    type Err = EmailError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl AsRef<str> for EmailAddress {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn normalises_case_and_whitespace() {
        let a = EmailAddress::parse(" Ada@Example.com").unwrap();
        let b = EmailAddress::parse("ada@EXAMPLE.COM  ").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.as_str(), "ada@example.com");
        assert_eq!(a.local_part(), "ada");
    }

    #[test]
    fn rejects_bad_input() {
        assert_eq!(EmailAddress::parse("   "), Err(EmailError::Empty));
        assert_eq!(EmailAddress::parse("no-at-sign"), Err(EmailError::Invalid));
        assert_eq!(EmailAddress::parse("a@b@c"), Err(EmailError::Invalid));
        assert_eq!(
            EmailAddress::parse("Ada <ada@example.com>"),
            Err(EmailError::Invalid)
        );
        assert_eq!(
            EmailAddress::parse("ada@example.com\r\nBcc: evil@example.com"),
            Err(EmailError::ControlCharacter)
        );
        assert_eq!(
            EmailAddress::parse("ada\0@example.com"),
            Err(EmailError::ControlCharacter)
        );
    }

    #[test]
    fn length_limit_is_254() {
        let domain = format!(
            "{}.{}.{}.com",
            "a".repeat(63),
            "b".repeat(63),
            "c".repeat(63)
        );
        let at_limit = format!(
            "{}@{}",
            "x".repeat(MAX_EMAIL_LEN - 1 - domain.len()),
            domain
        );
        assert_eq!(at_limit.len(), MAX_EMAIL_LEN);
        assert!(EmailAddress::parse(&at_limit).is_ok());
        let over = format!("x{at_limit}");
        assert_eq!(EmailAddress::parse(&over), Err(EmailError::TooLong));
    }

    proptest! {
        #[test]
        fn valid_addresses_parse_and_lowercase(
            local in "[a-zA-Z0-9][a-zA-Z0-9._+-]{0,30}[a-zA-Z0-9]",
            domain in "[a-zA-Z][a-zA-Z0-9-]{0,20}[a-zA-Z0-9]",
            tld in "[a-zA-Z]{2,6}",
        ) {
            prop_assume!(!local.contains(".."));
            let raw = format!("{local}@{domain}.{tld}");
            let parsed = EmailAddress::parse(&raw).unwrap();
            prop_assert_eq!(parsed.as_str(), raw.to_lowercase());
        }

        #[test]
        fn control_characters_never_parse(
            prefix in "[a-z]{1,10}",
            ctrl in prop::char::range('\u{0}', '\u{1f}'),
            suffix in "[a-z]{1,10}",
        ) {
            let raw = format!("{prefix}{ctrl}{suffix}@example.com");
            prop_assert!(EmailAddress::parse(&raw).is_err());
        }

        #[test]
        fn parse_never_panics_and_output_is_bounded(raw in any::<String>()) {
            if let Ok(email) = EmailAddress::parse(&raw) {
                prop_assert!(email.as_str().len() <= MAX_EMAIL_LEN);
                prop_assert!(!email.as_str().chars().any(char::is_control));
                prop_assert_eq!(email.as_str(), email.as_str().to_lowercase());
            }
        }
    }
}

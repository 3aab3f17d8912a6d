//! [`EmailAddress`]: a validated, normalised e-mail address.

use std::fmt;
use std::str::FromStr;

/// Longest address accepted, in bytes (RFC 5321 path limit minus the angle brackets), counted
/// on the stored (ASCII) form.
pub const MAX_EMAIL_LEN: usize = 254;

/// Longest local part (before the `@`) accepted, in bytes (RFC 5321 §4.5.3.1.1).
pub const MAX_LOCAL_PART_LEN: usize = 64;

/// Why a string is not an acceptable e-mail address.
///
/// Only addresses that every mail relay can deliver are accepted (see [`EmailAddress`]); the
/// variants below name the legal-but-undeliverable forms so that a person can fix the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EmailError {
    /// Nothing left after trimming.
    #[error("the email address is empty")]
    Empty,
    /// Longer than [`MAX_EMAIL_LEN`] bytes (in its stored, ASCII form).
    #[error("the email address is longer than {MAX_EMAIL_LEN} characters")]
    TooLong,
    /// The part before the `@` is longer than [`MAX_LOCAL_PART_LEN`] bytes.
    #[error("the part before @ is longer than {MAX_LOCAL_PART_LEN} characters")]
    LocalPartTooLong,
    /// Contains a control character (CR, LF, NUL, ...) anywhere.
    #[error("the email address contains a control character")]
    ControlCharacter,
    /// A quoted local part (`"john doe"@example.com`): legal in RFC 5322, refused by mail
    /// libraries and many relays.
    #[error("quoted email addresses (\"...\"@) are not accepted")]
    QuotedLocalPart,
    /// An IP address instead of a domain name (`user@[192.0.2.1]`, `user@192.0.2.1`).
    #[error("email addresses at an IP address are not accepted; use a domain name")]
    DomainLiteral,
    /// An RFC 5322 comment (`user(comment)@example.com`).
    #[error("comments in parentheses are not accepted in an email address")]
    Comment,
    /// Non-ASCII characters before the `@` (RFC 6531): only deliverable through relays that
    /// support SMTPUTF8, and without a canonical form.
    #[error("the part before @ may only contain ASCII letters, digits and !#$%&'*+/=?^_`{{|}}~.-")]
    NonAsciiLocalPart,
    /// The part after the `@` is not a valid internet domain name (IDNA 2008 / UTS 46, at least
    /// two labels, letters, digits and hyphens only once converted to ASCII).
    #[error("the domain after @ is not a valid internet domain name")]
    InvalidDomain,
    /// Not a plain `local@domain` address.
    #[error("the email address is not valid")]
    Invalid,
}

/// An e-mail address that passed validation: one that can be delivered.
///
/// Accepted: `local@domain` where, after trimming surrounding whitespace,
/// - `local` is an RFC 5321 dot-atom of ASCII characters (letters, digits and
///   `` !#$%&'*+/=?^_`{|}~- ``, dots between them), at most [`MAX_LOCAL_PART_LEN`] bytes;
/// - `domain` is an internet host name of at least two labels; Unicode labels are allowed and
///   converted with IDNA (UTS 46, STD3 rules, DNS lengths checked) to their ASCII (punycode)
///   form.
///
/// Refused, each with its own [`EmailError`]: quoted local parts, comments, IP literals and
/// bare IP addresses, non-ASCII local parts, display names (`Ada <ada@example.com>`), control
/// characters. Every accepted address is also accepted by lettre, the mailer (a property test
/// in `auth-smtp` checks it).
///
/// **Stored form**: the local part lower-cased, `@`, the domain in its ASCII form (lower-case,
/// punycode `xn--` labels). So `Ada@Bücher.Example` and `ada@xn--bcher-kva.example` are the
/// same value, the same account, and the form every mailer can send to. The form is at most
/// [`MAX_EMAIL_LEN`] bytes, pure ASCII, and safe to put in a mail header.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EmailAddress(String);

/// `atext` of RFC 5322, ASCII only.
fn is_atext(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~-".contains(c)
}

/// A host-name label of lower-case letters, digits and inner hyphens (RFC 952/1123 "LDH", in
/// the lower-case form the address is stored in).
fn is_ldh_label(l: &str) -> bool {
    !l.is_empty()
        && !l.starts_with('-')
        && !l.ends_with('-')
        && l.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// The ASCII (punycode, lower-case) form of an internet domain name.
fn ascii_domain(domain: &str) -> Result<String, EmailError> {
    // Brackets (`[192.0.2.1]`) are refused by `EmailAddress::parse` before this is called.
    if domain.parse::<std::net::IpAddr>().is_ok() {
        return Err(EmailError::DomainLiteral);
    }
    let ascii = idna::uts46::Uts46::new()
        .to_ascii(
            domain.as_bytes(),
            idna::uts46::AsciiDenyList::STD3,
            idna::uts46::Hyphens::CheckFirstLast,
            idna::uts46::DnsLength::Verify,
        )
        .map_err(|_| EmailError::InvalidDomain)?;
    let labels: Vec<&str> = ascii.split('.').collect();
    let tld = labels.last().copied().unwrap_or_default();
    if labels.len() < 2 {
        return Err(EmailError::InvalidDomain);
    }
    // No top-level domain is numeric (RFC 3696 §2); `1.2.3.4` after mapping is an IP address.
    if tld.bytes().all(|b| b.is_ascii_digit()) {
        return Err(EmailError::DomainLiteral);
    }
    // Defence in depth: what reaches the mailer is LDH only, whatever the IDNA library does.
    let ldh = labels.iter().all(|l| is_ldh_label(l));
    if !ldh {
        return Err(EmailError::InvalidDomain);
    }
    Ok(ascii.into_owned())
}

/// The lower-cased local part, if it is an ASCII dot-atom.
fn ascii_local_part(local: &str) -> Result<String, EmailError> {
    if local.is_empty() {
        return Err(EmailError::Invalid);
    }
    if !local.is_ascii() {
        return Err(EmailError::NonAsciiLocalPart);
    }
    if local.len() > MAX_LOCAL_PART_LEN {
        return Err(EmailError::LocalPartTooLong);
    }
    if !local
        .split('.')
        .all(|atom| !atom.is_empty() && atom.chars().all(is_atext))
    {
        return Err(EmailError::Invalid);
    }
    Ok(local.to_ascii_lowercase())
}

impl EmailAddress {
    /// Parses and normalises an address.
    ///
    /// ```
    /// use auth_core::{EmailAddress, EmailError};
    /// let email = EmailAddress::parse("  Ada@Example.COM ").unwrap();
    /// assert_eq!(email.as_str(), "ada@example.com");
    /// assert!(EmailAddress::parse("ada@example.com\r\nBcc: x@y.z").is_err());
    /// // Unicode domains are stored in their ASCII (punycode) form.
    /// let idn = EmailAddress::parse("ada@Bücher.example").unwrap();
    /// assert_eq!(idn.as_str(), "ada@xn--bcher-kva.example");
    /// assert_eq!(idn, EmailAddress::parse("ada@xn--bcher-kva.example").unwrap());
    /// // Legal in RFC 5322, but not deliverable everywhere: refused.
    /// assert_eq!(
    ///     EmailAddress::parse("\"ada lovelace\"@example.com"),
    ///     Err(EmailError::QuotedLocalPart)
    /// );
    /// assert_eq!(EmailAddress::parse("ada@[192.0.2.1]"), Err(EmailError::DomainLiteral));
    /// ```
    pub fn parse(raw: &str) -> Result<Self, EmailError> {
        if raw.chars().any(char::is_control) {
            return Err(EmailError::ControlCharacter);
        }
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(EmailError::Empty);
        }
        // A cheap bound before any work: no Unicode form of an acceptable address is longer.
        if trimmed.len() > 4 * MAX_EMAIL_LEN {
            return Err(EmailError::TooLong);
        }
        if trimmed.contains(['<', '>']) {
            return Err(EmailError::Invalid);
        }
        if trimmed.contains('"') {
            return Err(EmailError::QuotedLocalPart);
        }
        if trimmed.contains(['(', ')']) {
            return Err(EmailError::Comment);
        }
        let (local, domain) = trimmed.rsplit_once('@').ok_or(EmailError::Invalid)?;
        if local.contains('@') || domain.is_empty() {
            return Err(EmailError::Invalid);
        }
        if domain.contains(['[', ']']) {
            return Err(EmailError::DomainLiteral);
        }
        let local = ascii_local_part(local)?;
        let domain = ascii_domain(domain)?;
        let normalised = format!("{local}@{domain}");
        if normalised.len() > MAX_EMAIL_LEN {
            return Err(EmailError::TooLong);
        }
        Ok(Self(normalised))
    }

    /// The normalised address: lower-case local part, ASCII (punycode) lower-case domain.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part before the `@`.
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
    fn refuses_legal_but_undeliverable_forms_with_their_own_error() {
        for (raw, expected) in [
            ("\"quoted local\"@example.com", EmailError::QuotedLocalPart),
            ("\"a@b\"@example.com", EmailError::QuotedLocalPart),
            ("\"\"@example.com", EmailError::QuotedLocalPart),
            ("user@[127.0.0.1]", EmailError::DomainLiteral),
            ("user@[IPv6:::1]", EmailError::DomainLiteral),
            ("user@127.0.0.1", EmailError::DomainLiteral),
            ("user@::1", EmailError::DomainLiteral),
            ("user(comment)@example.com", EmailError::Comment),
            ("user@example.com(comment)", EmailError::Comment),
            ("(c)user@example.com", EmailError::Comment),
            ("üser@example.com", EmailError::NonAsciiLocalPart),
            ("用户@例子.广告", EmailError::NonAsciiLocalPart),
        ] {
            assert_eq!(EmailAddress::parse(raw), Err(expected), "{raw:?}");
        }
    }

    #[test]
    fn refuses_malformed_local_parts_and_domains() {
        for raw in [
            ".user@example.com",
            "user.@example.com",
            "us..er@example.com",
            "us er@example.com",
            "us\\er@example.com",
            "us,er@example.com",
            "us;er@example.com",
            "@example.com",
            "user@",
            "<ada@example.com>",
        ] {
            assert_eq!(
                EmailAddress::parse(raw),
                Err(EmailError::Invalid),
                "{raw:?}"
            );
        }
        for raw in [
            "user@-example.com",
            "user@example-.com",
            "user@example..com",
            "user@.example.com",
            "user@example.com.",
            "user@exa_mple.com",
            "user@exa mple.com",
            "user@exa!mple.com",
            "user@xn--.example",
            "user@xn--a.example",
            "user@localhost",
            "user@example",
            "user@a.b\u{200d}c.example",
        ] {
            assert_eq!(
                EmailAddress::parse(raw),
                Err(EmailError::InvalidDomain),
                "{raw:?}"
            );
        }
        let long_local = format!("{}@example.com", "x".repeat(MAX_LOCAL_PART_LEN + 1));
        assert_eq!(
            EmailAddress::parse(&long_local),
            Err(EmailError::LocalPartTooLong)
        );
        let ok_local = format!("{}@example.com", "x".repeat(MAX_LOCAL_PART_LEN));
        assert!(EmailAddress::parse(&ok_local).is_ok());
        let long_label = format!("user@{}.com", "a".repeat(64));
        assert_eq!(
            EmailAddress::parse(&long_label),
            Err(EmailError::InvalidDomain)
        );
    }

    #[test]
    fn accepts_every_ascii_atext_character() {
        let raw = "a!#$%&'*+/=?^_`{|}~-z.o'brien@example.com";
        assert_eq!(EmailAddress::parse(raw).unwrap().as_str(), raw);
    }

    #[test]
    fn idn_domains_are_stored_in_ascii_form() {
        for (unicode, ascii) in [
            ("ada@bücher.example", "ada@xn--bcher-kva.example"),
            ("Ada@BÜCHER.Example", "ada@xn--bcher-kva.example"),
            ("ada@XN--BCHER-KVA.EXAMPLE", "ada@xn--bcher-kva.example"),
            ("ada@münchen.de", "ada@xn--mnchen-3ya.de"),
            ("ada@straße.de", "ada@xn--strae-oqa.de"),
            ("ada@例え.テスト", "ada@xn--r8jz45g.xn--zckzah"),
            // Full-width letters and the ideographic full stop map to their ASCII forms.
            ("ada@ｅｘａｍｐｌｅ。com", "ada@example.com"),
        ] {
            let parsed = EmailAddress::parse(unicode).unwrap();
            assert_eq!(parsed.as_str(), ascii, "{unicode:?}");
            assert_eq!(parsed, EmailAddress::parse(ascii).unwrap());
        }
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
            // `xx--` labels are reserved (IDNA: `xn--` is punycode, which these are not).
            prop_assume!(domain.get(2..4) != Some("--"));
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
                prop_assert!(email.as_str().is_ascii());
                prop_assert!(!email.as_str().chars().any(char::is_control));
                prop_assert_eq!(email.as_str(), email.as_str().to_lowercase());
            }
        }

        /// The stored form is a fixed point: parsing it again gives the same address.
        #[test]
        fn stored_form_parses_to_itself(
            local in "[a-zA-Z0-9!#$%&'*+/=?^_`{|}~.-]{1,20}",
            labels in prop::collection::vec("[a-zA-Z0-9äöüßéÉÜç-]{1,12}", 2..4),
        ) {
            let raw = format!("{local}@{}", labels.join("."));
            if let Ok(email) = EmailAddress::parse(&raw) {
                let again = EmailAddress::parse(email.as_str());
                prop_assert_eq!(again.as_ref(), Ok(&email));
            }
        }

        /// A Unicode domain and its punycode form (encoded here with RFC 3492 directly, not
        /// through UTS 46) are one address, whatever the case of either.
        #[test]
        fn unicode_and_punycode_forms_parse_equal(
            local in "[a-z0-9][a-z0-9._-]{0,10}[a-z0-9]",
            labels in prop::collection::vec("[a-zäöüéèçñåø]{1,12}", 1..3),
            tld in "[a-z]{2,6}",
            upper in any::<bool>(),
        ) {
            prop_assume!(!local.contains(".."));
            let unicode = format!("{local}@{}.{tld}", labels.join("."));
            let punycode_labels: Vec<String> = labels
                .iter()
                .map(|l| {
                    if l.is_ascii() {
                        l.clone()
                    } else {
                        format!("xn--{}", idna::punycode::encode_str(l).unwrap_or_default())
                    }
                })
                .collect();
            let punycode = format!("{local}@{}.{tld}", punycode_labels.join("."));
            let input = if upper { unicode.to_uppercase() } else { unicode.clone() };
            let a = EmailAddress::parse(&input).unwrap();
            let b = EmailAddress::parse(&punycode).unwrap();
            prop_assert_eq!(a.as_str(), punycode.as_str());
            prop_assert_eq!(a, b);
        }
    }

    #[test]
    fn ldh_labels_are_letters_digits_and_inner_hyphens() {
        for ok in ["a", "xn--bcher-kva", "a-b", "0", "a9"] {
            assert!(is_ldh_label(ok), "{ok}");
        }
        for bad in ["", "-a", "a-", "a_b", "a.b", "ä", "a b", "A9"] {
            assert!(!is_ldh_label(bad), "{bad:?}");
        }
    }

    #[test]
    fn half_a_bracket_is_still_a_domain_literal() {
        for raw in ["user@[127.0.0.1", "user@127.0.0.1]"] {
            assert_eq!(
                EmailAddress::parse(raw),
                Err(EmailError::DomainLiteral),
                "{raw}"
            );
        }
    }

    #[test]
    fn the_cheap_length_bound_is_four_times_the_limit() {
        // Far too long: refused as a whole before any parsing (not for its local part).
        let huge = format!("{}@example.com", "x".repeat(2000));
        assert_eq!(EmailAddress::parse(&huge), Err(EmailError::TooLong));
        // Longer than the limit in bytes, but its ASCII form fits: fullwidth letters map to
        // ASCII under UTS 46.
        let wide = "\u{FF41}".repeat(43);
        let raw = format!("user@{wide}.{wide}.com");
        assert!(raw.len() > 4 + MAX_EMAIL_LEN);
        let a = "a".repeat(43);
        assert_eq!(
            EmailAddress::parse(&raw).unwrap().as_str(),
            format!("user@{a}.{a}.com")
        );
    }

    /// The cheap bound refuses only what is longer than four times the limit: an input of
    /// exactly that length is still parsed, so its real problem is the one named.
    #[test]
    fn the_cheap_length_bound_lets_exactly_four_times_the_limit_through_to_parsing() {
        let domain = "@example.com";
        let at_bound = format!("{}{domain}", "x".repeat(4 * MAX_EMAIL_LEN - domain.len()));
        assert_eq!(at_bound.len(), 4 * MAX_EMAIL_LEN);
        assert_eq!(
            EmailAddress::parse(&at_bound),
            Err(EmailError::LocalPartTooLong)
        );
        let over = format!("x{at_bound}");
        assert_eq!(EmailAddress::parse(&over), Err(EmailError::TooLong));
    }

    #[test]
    fn as_ref_is_the_stored_form() {
        let e = EmailAddress::parse("Ada@Example.COM").unwrap();
        let s: &str = e.as_ref();
        assert_eq!(s, "ada@example.com");
    }
}

//! Turning a [`RenderedMail`] into a lettre [`Message`].

use auth_core::{EmailAddress, MailerError};
use lettre::message::header::{Header, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::{Address, Message};

use crate::render::RenderedMail;

/// `Auto-Submitted: auto-generated` (RFC 3834): tells vacation responders and mailing lists
/// not to answer.
#[derive(Debug, Clone, Copy)]
struct AutoSubmitted;

impl Header for AutoSubmitted {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("Auto-Submitted")
    }

    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self)
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), "auto-generated".to_owned())
    }
}

/// `Content-Language` (RFC 3282): the language the mail is written in. Holds a tag checked
/// when the templates were loaded (letters, digits and `-`), so it is a valid header value.
#[derive(Debug, Clone)]
struct ContentLanguage(String);

impl Header for ContentLanguage {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("Content-Language")
    }

    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self(s.trim().to_owned()))
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), self.0.clone())
    }
}

/// Parses a validated address into lettre's type. An address `EmailAddress` accepts but lettre
/// does not can never be delivered, hence `Rejected`.
pub(crate) fn recipient(to: &EmailAddress) -> Result<Address, MailerError> {
    to.as_str()
        .parse::<Address>()
        .map_err(|e| MailerError::Rejected(Box::new(e)))
}

/// The complete message: From, To, Subject, Date, Message-ID, `Auto-Submitted`,
/// `Content-Language` and a `multipart/alternative` body with the plain-text and HTML
/// renderings.
pub(crate) fn build(
    from: &Mailbox,
    to: &EmailAddress,
    rendered: RenderedMail,
) -> Result<Message, MailerError> {
    Message::builder()
        .from(from.clone())
        .to(Mailbox::new(None, recipient(to)?))
        .subject(rendered.subject)
        // In the sender's domain: the local host name says nothing useful to the recipient.
        .message_id(Some(format!(
            "<{}@{}>",
            uuid::Uuid::new_v4().simple(),
            from.email.domain()
        )))
        .header(AutoSubmitted)
        .header(ContentLanguage(rendered.language))
        .multipart(MultiPart::alternative_plain_html(
            rendered.text,
            rendered.html,
        ))
        // Only fails on a missing From/To, which are always set: a bug, not an outage.
        .map_err(|e| MailerError::Rejected(Box::new(e)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Renderer;
    use auth_core::{MailMessage, OtpCode};
    use std::time::Duration;

    #[test]
    fn builds_a_multipart_alternative_message() {
        let from: Mailbox = "SecureAuth <no-reply@example.com>".parse().unwrap();
        let to = EmailAddress::parse("ada@example.com").unwrap();
        let message = MailMessage::VerifyEmail {
            code: OtpCode::parse("123456").unwrap(),
            valid_for: Duration::from_secs(600),
        };
        let rendered = Renderer::builtin().render(&message, None);
        let raw = String::from_utf8(build(&from, &to, rendered).unwrap().formatted()).unwrap();
        assert!(
            raw.contains("From: SecureAuth <no-reply@example.com>\r\n"),
            "{raw}"
        );
        assert!(raw.contains("To: ada@example.com\r\n"), "{raw}");
        assert!(raw.contains("Subject: 123456 is your SecureAuth verification code\r\n"));
        assert!(raw.contains("Auto-Submitted: auto-generated\r\n"));
        assert!(raw.contains("Content-Language: en\r\n"), "{raw}");
        assert!(raw.contains("Content-Type: multipart/alternative"));
        assert!(raw.contains("Content-Type: text/plain; charset=utf-8"));
        assert!(raw.contains("Content-Type: text/html; charset=utf-8"));
        assert!(raw.contains("Message-ID: <"), "{raw}");
        assert!(raw.contains("@example.com>\r\n"), "{raw}");
        assert!(raw.contains("Date: "));
    }
}

//! What each [`MailMessage`] says: subject, plain text and HTML, as a pure function.

use std::fmt;
use std::time::Duration;

use auth_core::MailMessage;

/// The product name used in every message.
pub const PRODUCT_NAME: &str = "SecureAuth";

/// A rendered message: what the person reads. Its `Debug` output hides the content, which may
/// hold a one-time code.
#[derive(Clone, PartialEq, Eq)]
pub struct RenderedMail {
    /// The subject line. For a code mail it starts with the code.
    pub subject: String,
    /// The `text/plain` part. For a code mail its first line starts with the code.
    pub text: String,
    /// The `text/html` part (a complete document, every interpolated value escaped).
    pub html: String,
}

impl fmt::Debug for RenderedMail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RenderedMail").finish_non_exhaustive()
    }
}

/// A stable short name for a message kind, safe to log (never the code).
pub fn message_kind(message: &MailMessage) -> &'static str {
    match message {
        MailMessage::VerifyEmail { .. } => "verify_email",
        MailMessage::VerifyEmailAgain { .. } => "verify_email_again",
        MailMessage::ResetPassword { .. } => "reset_password",
        MailMessage::LoginCode { .. } => "login_code",
        MailMessage::PasswordChanged => "password_changed",
        MailMessage::SignupAttempted => "signup_attempted",
        MailMessage::AccountDeleted => "account_deleted",
        MailMessage::SessionEndedAfterWrongPasswords => "session_ended_after_wrong_passwords",
    }
}

/// What a message says, before it is turned into text and HTML.
struct Content {
    subject: String,
    /// Shown first, in large type in the HTML part.
    code: Option<String>,
    /// First line of the text part.
    lead: String,
    paragraphs: Vec<String>,
}

/// Renders a message. Pure: the same input always gives the same output.
///
/// Code mails carry the code in the subject and as the first line of both parts, so it can be
/// read from a notification without opening the mail, say how long the code is valid and what
/// to do if the person did not ask for it.
pub fn render(message: &MailMessage) -> RenderedMail {
    let content = content(message);
    RenderedMail {
        text: text(&content),
        html: html(&content),
        subject: content.subject,
    }
}

fn content(message: &MailMessage) -> Content {
    match message {
        MailMessage::VerifyEmail { code, valid_for } => {
            let code = code.expose();
            Content {
                subject: format!("{code} is your {PRODUCT_NAME} verification code"),
                lead: format!("{code} is your {PRODUCT_NAME} verification code."),
                code: Some(code.to_owned()),
                paragraphs: vec![
                    format!(
                        "Enter this code to confirm your email address. It is valid for {}.",
                        describe_duration(*valid_for)
                    ),
                    format!(
                        "Did not sign up for {PRODUCT_NAME}? Someone may have typed your address \
                         by mistake. You can ignore this email: without the code, nobody can \
                         confirm an account with your address."
                    ),
                    format!("Never share this code. {PRODUCT_NAME} will never ask you for it."),
                ],
            }
        }
        MailMessage::VerifyEmailAgain {
            code,
            valid_for,
            requested_at,
        } => {
            let code = code.expose();
            let when = requested_at.format("%Y-%m-%d %H:%M UTC");
            Content {
                subject: format!("{code} is your {PRODUCT_NAME} verification code"),
                lead: format!("{code} is your {PRODUCT_NAME} verification code."),
                code: Some(code.to_owned()),
                paragraphs: vec![
                    format!(
                        "Someone asked again, at {when}, to create a {PRODUCT_NAME} account with \
                         this address. This code confirms that request, with the password given \
                         in it. It is valid for {}.",
                        describe_duration(*valid_for)
                    ),
                    "If you signed up earlier and that request was not you, do not use this \
                     code: the code from your first email still works, and keeps the password \
                     you chose then."
                        .to_owned(),
                    format!("Never share this code. {PRODUCT_NAME} will never ask you for it."),
                ],
            }
        }
        MailMessage::ResetPassword { code, valid_for } => {
            let code = code.expose();
            Content {
                subject: format!("{code} is your {PRODUCT_NAME} password reset code"),
                lead: format!("{code} is your {PRODUCT_NAME} password reset code."),
                code: Some(code.to_owned()),
                paragraphs: vec![
                    format!(
                        "Enter this code to choose a new password. It is valid for {}.",
                        describe_duration(*valid_for)
                    ),
                    "Did not ask to reset your password? You can ignore this email: your \
                     password stays as it is, and nobody can change it without this code. If \
                     these emails keep coming, someone may be trying to get into your account."
                        .to_owned(),
                    format!("Never share this code. {PRODUCT_NAME} will never ask you for it."),
                ],
            }
        }
        MailMessage::LoginCode { code, valid_for } => {
            let code = code.expose();
            Content {
                subject: format!("{code} is your {PRODUCT_NAME} login code"),
                lead: format!("{code} is your {PRODUCT_NAME} login code."),
                code: Some(code.to_owned()),
                paragraphs: vec![
                    format!(
                        "Enter this code on the sign-in page to log in without your password. \
                         It works once and is valid for {}.",
                        describe_duration(*valid_for)
                    ),
                    "Did not ask for it? You can ignore this email: nobody can use the code \
                     without reading this mailbox. If these emails keep coming, someone may be \
                     trying to get into your account."
                        .to_owned(),
                    format!("Never share this code. {PRODUCT_NAME} will never ask you for it."),
                ],
            }
        }
        MailMessage::PasswordChanged => Content {
            subject: format!("Your {PRODUCT_NAME} password was changed"),
            lead: format!("The password of your {PRODUCT_NAME} account was just changed."),
            code: None,
            paragraphs: vec![
                "If you did this, there is nothing else to do.".to_owned(),
                "If you did not, someone else may know your password or be able to read this \
                 mailbox. Reset your password right away with \"Forgot password\" on the sign-in \
                 page, and check the security of your email account."
                    .to_owned(),
            ],
        },
        MailMessage::SignupAttempted => Content {
            subject: format!("Someone tried to sign up to {PRODUCT_NAME} with your email address"),
            lead: format!(
                "Someone tried to create a new {PRODUCT_NAME} account with this email address, \
                 but it already has an account."
            ),
            code: None,
            paragraphs: vec![
                "If it was you, sign in instead. If you forgot your password, use \"Forgot \
                 password\" on the sign-in page to choose a new one."
                    .to_owned(),
                "If it was not you, you can ignore this email: nothing was created, and your \
                 account has not changed."
                    .to_owned(),
            ],
        },
        MailMessage::AccountDeleted => Content {
            subject: format!("Your {PRODUCT_NAME} account was deleted"),
            lead: format!(
                "Your {PRODUCT_NAME} account and everything it held were just deleted, and \
                 every device was signed out."
            ),
            code: None,
            paragraphs: vec![
                "If you did this, there is nothing else to do. You can sign up again with this \
                 address at any time."
                    .to_owned(),
                "If you did not, someone knew your password and was signed in to your account. \
                 Check the security of your email account and of the other places where you \
                 used that password."
                    .to_owned(),
            ],
        },
        MailMessage::SessionEndedAfterWrongPasswords => Content {
            subject: format!("A {PRODUCT_NAME} session was ended to protect your account"),
            lead: format!(
                "One of your {PRODUCT_NAME} sessions gave a wrong password too many times, so \
                 we signed it out."
            ),
            code: None,
            paragraphs: vec![
                "If you were trying to change your password or delete your account and kept \
                 mistyping it, sign in again; nothing else changed."
                    .to_owned(),
                "If it was not you, someone may be using a session of yours from another \
                 device. Change your password now (this signs out every device), then check \
                 the security of your email account."
                    .to_owned(),
            ],
        },
    }
}

const FOOTER: &str = "This message was sent automatically by SecureAuth.";

fn text(content: &Content) -> String {
    let mut out = String::new();
    out.push_str(&content.lead);
    for paragraph in &content.paragraphs {
        out.push_str("\n\n");
        out.push_str(paragraph);
    }
    out.push_str("\n\n-- \n");
    out.push_str(FOOTER);
    out.push('\n');
    out
}

fn html(content: &Content) -> String {
    let mut body = String::new();
    match &content.code {
        Some(code) => {
            body.push_str(&format!(
                "<p style=\"margin:0 0 16px;font-family:ui-monospace,Menlo,Consolas,monospace;\
                 font-size:32px;font-weight:700;letter-spacing:6px;\">{}</p>\n",
                escape_html(code)
            ));
            body.push_str(&paragraph(&content.lead));
        }
        None => body.push_str(&paragraph(&content.lead)),
    }
    for p in &content.paragraphs {
        body.push_str(&paragraph(p));
    }
    format!(
        "<!DOCTYPE html>\n\
         <html lang=\"en\">\n\
         <head>\n\
         <meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title}</title>\n\
         </head>\n\
         <body style=\"margin:0;padding:24px;background:#f6f7f9;color:#1f2328;\
         font-family:-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;\
         font-size:16px;line-height:1.5;\">\n\
         <div style=\"max-width:520px;margin:0 auto;padding:24px;background:#ffffff;\
         border-radius:8px;\">\n\
         {body}\
         </div>\n\
         <p style=\"max-width:520px;margin:16px auto 0;color:#656d76;font-size:13px;\">{footer}</p>\n\
         </body>\n\
         </html>\n",
        title = escape_html(&content.subject),
        footer = escape_html(FOOTER),
    )
}

fn paragraph(text: &str) -> String {
    format!("<p style=\"margin:0 0 16px;\">{}</p>\n", escape_html(text))
}

/// Escapes the five characters that matter in HTML text and attribute values.
pub fn escape_html(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// "90 seconds", "15 minutes", "1 hour", "1 hour and 30 minutes". Rounds down to whole
/// minutes past one minute, so the mail never promises more time than the code has.
pub fn describe_duration(d: Duration) -> String {
    let secs = d.as_secs();
    if secs < 60 {
        return plural(secs, "second");
    }
    let minutes = secs / 60;
    let (hours, minutes) = (minutes / 60, minutes % 60);
    match (hours, minutes) {
        (0, m) => plural(m, "minute"),
        (h, 0) => plural(h, "hour"),
        (h, m) => format!("{} and {}", plural(h, "hour"), plural(m, "minute")),
    }
}

fn plural(n: u64, unit: &str) -> String {
    if n == 1 {
        format!("1 {unit}")
    } else {
        format!("{n} {unit}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use auth_core::OtpCode;

    fn code() -> OtpCode {
        OtpCode::parse("042917").unwrap()
    }

    fn all_messages() -> Vec<MailMessage> {
        vec![
            MailMessage::VerifyEmail {
                code: code(),
                valid_for: Duration::from_secs(15 * 60),
            },
            MailMessage::ResetPassword {
                code: code(),
                valid_for: Duration::from_secs(10 * 60),
            },
            MailMessage::LoginCode {
                code: code(),
                valid_for: Duration::from_secs(10 * 60),
            },
            MailMessage::VerifyEmailAgain {
                code: code(),
                valid_for: Duration::from_secs(10 * 60),
                requested_at: auth_core::DateTime::from_timestamp(1_900_000_000, 0).unwrap(),
            },
            MailMessage::PasswordChanged,
            MailMessage::SignupAttempted,
            MailMessage::AccountDeleted,
            MailMessage::SessionEndedAfterWrongPasswords,
        ]
    }

    #[test]
    fn verification_code_mail() {
        let mail = render(&MailMessage::VerifyEmail {
            code: code(),
            valid_for: Duration::from_secs(15 * 60),
        });
        assert_eq!(mail.subject, "042917 is your SecureAuth verification code");
        assert_eq!(
            mail.text.lines().next().unwrap(),
            "042917 is your SecureAuth verification code."
        );
        assert!(mail.text.contains("valid for 15 minutes"), "{}", mail.text);
        assert!(mail.text.contains("Did not sign up"), "{}", mail.text);
        assert!(mail.text.contains("ignore this email"), "{}", mail.text);
        assert!(mail.html.contains(">042917</p>"), "{}", mail.html);
        assert!(mail.html.contains("valid for 15 minutes"));
        // The code is the first thing in the HTML body.
        let body = mail.html.split("<body").nth(1).unwrap();
        let first_text = body.split('>').nth(3).unwrap();
        assert!(first_text.starts_with("042917<"), "{first_text}");
    }

    #[test]
    fn reset_code_mail() {
        let mail = render(&MailMessage::ResetPassword {
            code: code(),
            valid_for: Duration::from_secs(3600),
        });
        assert_eq!(
            mail.subject,
            "042917 is your SecureAuth password reset code"
        );
        assert!(mail
            .text
            .starts_with("042917 is your SecureAuth password reset code.\n"));
        assert!(mail.text.contains("valid for 1 hour."), "{}", mail.text);
        assert!(mail.text.contains("Did not ask to reset your password?"));
        assert!(mail.text.contains("your password stays as it is"));
        assert!(mail.html.contains(">042917</p>"));
    }

    #[test]
    fn notices_carry_no_code_and_say_what_to_do() {
        let changed = render(&MailMessage::PasswordChanged);
        assert_eq!(changed.subject, "Your SecureAuth password was changed");
        assert!(changed.text.contains("If you did not"));
        assert!(changed.text.contains("Forgot password"));

        let attempted = render(&MailMessage::SignupAttempted);
        assert_eq!(
            attempted.subject,
            "Someone tried to sign up to SecureAuth with your email address"
        );
        assert!(attempted.text.contains("sign in instead"));
        assert!(attempted
            .text
            .contains("If it was not you, you can ignore this email"));
        for mail in [changed, attempted] {
            assert!(
                !mail.text.chars().any(|c| c.is_ascii_digit()),
                "{}",
                mail.text
            );
        }
    }

    #[test]
    fn every_message_has_all_parts_and_a_well_formed_html_document() {
        for message in all_messages() {
            let mail = render(&message);
            assert!(!mail.subject.is_empty());
            assert!(!mail.subject.contains(['\r', '\n']));
            assert!(mail
                .text
                .ends_with("This message was sent automatically by SecureAuth.\n"));
            assert!(mail.html.starts_with("<!DOCTYPE html>"));
            assert!(mail.html.trim_end().ends_with("</html>"));
            assert_eq!(
                mail.html.matches("<p").count(),
                mail.html.matches("</p>").count()
            );
            // Every quote in text content was escaped: the only raw quotes are attributes.
            assert!(!mail.html.contains("\"Forgot"), "{}", mail.html);
            assert_eq!(render(&message), mail, "render is deterministic");
        }
    }

    #[test]
    fn debug_hides_the_content() {
        let mail = render(&all_messages()[0]);
        assert!(!format!("{mail:?}").contains("042917"));
    }

    #[test]
    fn escaping() {
        assert_eq!(
            escape_html(r#"<script>alert("x" & 'y')</script>"#),
            "&lt;script&gt;alert(&quot;x&quot; &amp; &#39;y&#39;)&lt;/script&gt;"
        );
        assert_eq!(escape_html("123456"), "123456");
    }

    #[test]
    fn durations_read_naturally_and_never_round_up() {
        let cases = [
            (0, "0 seconds"),
            (1, "1 second"),
            (59, "59 seconds"),
            (60, "1 minute"),
            (119, "1 minute"),
            (15 * 60, "15 minutes"),
            (15 * 60 + 59, "15 minutes"),
            (3600, "1 hour"),
            (5400, "1 hour and 30 minutes"),
            (7260, "2 hours and 1 minute"),
            (48 * 3600, "48 hours"),
        ];
        for (secs, expected) in cases {
            assert_eq!(
                describe_duration(Duration::from_secs(secs)),
                expected,
                "{secs}"
            );
        }
    }

    #[test]
    fn kinds_are_distinct() {
        let kinds: std::collections::HashSet<_> = all_messages().iter().map(message_kind).collect();
        assert_eq!(kinds.len(), all_messages().len());
    }
}

//! SMTP [`Mailer`](auth_core::Mailer) adapter for SecureAuth (lettre).
//!
//! - [`SmtpMailer`]: sends over SMTP (implicit TLS, STARTTLS, or plain for a local development
//!   server) with lettre's pooled async transport, optional `AUTH` credentials and a bound on
//!   every send. Configured with [`SmtpSettings`].
//! - [`FileMailer`]: for development, writes each message as an `.eml` file into a folder.
//! - [`render()`]: what each [`MailMessage`](auth_core::MailMessage) says (subject, plain text,
//!   HTML), as a pure function.
//!
//! Every message is `multipart/alternative` with a plain-text and an HTML part. A code mail
//! shows the code in the subject and as its first line, says how long the code is valid and
//! what to do if the person did not ask for it.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use auth_core::{EmailAddress, MailMessage, Mailer, OtpCode};
//! use auth_smtp::{SmtpMailer, SmtpSettings, TlsMode};
//! use secrecy::SecretString;
//!
//! let mailer = SmtpMailer::new(SmtpSettings {
//!     username: Some("mailer".into()),
//!     password: Some(SecretString::from("from-the-environment")),
//!     ..SmtpSettings::new("smtp.example.com", TlsMode::StartTls, "SecureAuth <no-reply@example.com>")
//! })?;
//! let to = EmailAddress::parse("ada@example.com")?;
//! let code = OtpCode::parse("123456")?;
//! mailer
//!     .send(&to, &MailMessage::VerifyEmail { code, valid_for: Duration::from_secs(900) })
//!     .await?;
//! # Ok(()) }
//! ```

mod file;
mod message;
pub mod render;
mod smtp;

pub use file::{FileMailer, DEFAULT_FILE_SENDER};
pub use render::{render, RenderedMail};
pub use smtp::{SendTimeout, SmtpConfigError, SmtpMailer, SmtpSettings, TlsMode};

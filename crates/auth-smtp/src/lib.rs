//! SMTP [`Mailer`](auth_core::Mailer) adapter for SecureAuth (lettre).
//!
//! - [`SmtpMailer`]: sends over SMTP (implicit TLS, STARTTLS, or plain for a local development
//!   server) with lettre's pooled async transport, optional `AUTH` credentials and a bound on
//!   every send. Configured with [`SmtpSettings`].
//! - [`FileMailer`]: for development, writes each message as an `.eml` file into a folder.
//! - [`Renderer`]: what each [`MailMessage`](auth_core::MailMessage) says (subject, plain
//!   text, HTML), rendered from [templates](#mail-templates) in the recipient's language.
//!   Both mailers hold one: the built-in templates unless given another with
//!   `with_renderer`.
//!
//! Every message is `multipart/alternative` with a plain-text and an HTML part, and carries
//! `Content-Language`. A code mail shows the code in the subject and as its first line, says
//! how long the code is valid and what to do if the person did not ask for it.
//! [`Mailer::send`](auth_core::Mailer::send) writes English;
//! [`Mailer::send_localized`](auth_core::Mailer::send_localized) picks the language from an
//! HTTP `Accept-Language` value (see [`Renderer::language_for`]).
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

//!
//! # Mail templates
//!
//! The texts are [MiniJinja](https://docs.rs/minijinja) templates (Jinja syntax), built into
//! the binary from `crates/auth-smtp/templates/<lang>/`: English (`en`, complete) and German
//! (`de`). Each language folder holds
//!
//! | file | what | values |
//! |---|---|---|
//! | `<kind>.subject` | the subject (line breaks become spaces) | `lang`, `product`, `kind`, `code`, `valid_for`, `requested_at` |
//! | `<kind>.txt` | the `text/plain` part; the footer follows after `-- ` | the same |
//! | `<kind>.html` | the `text/html` part, usually `{% extends "layout.html" %}` filling `{% block content %}` | the same, and `subject`, `footer` |
//! | `layout.html` | the HTML document every message shares (German uses the English one) | as `<kind>.html` |
//! | `footer.txt` | the signature of both parts (empty: none) | as `<kind>.subject` |
//! | `duration.txt` | how `valid_for` is written ("1 hour and 30 minutes") | `lang`, `hours`, `minutes`, `seconds` (rounded down; `seconds` is 0 from one minute on) |
//!
//! where `<kind>` is [`MailMessage::kind`](auth_core::MailMessage::kind) (`verify_email`,
//! `verify_email_again`, `reset_password`, `login_code`, `password_changed`,
//! `signup_attempted`, `account_deleted`, `session_ended_after_wrong_passwords`). `code`
//! (the one-time code), `valid_for` (written by `duration.txt`) and `requested_at`
//! (`2030-03-17 17:46 UTC`, only for `verify_email_again`) are `none` where a message has
//! none; `product` is [`PRODUCT_NAME`](render::PRODUCT_NAME); `lang` the language picked.
//! Values are HTML-escaped in `.html` files and inserted as they are elsewhere. A name
//! without a folder in `extends` or `include` means the file of the same language.
//!
//! [`Renderer::with_overrides`] lays an operator's folder (`MAIL_TEMPLATES_DIR` of the
//! server) over the built-in files: `dir/<lang>/<file>` replaces that file, and a folder for
//! another language (`dir/fr/`) adds the language, taking the files it lacks from English.
//! Loading renders every message in every language once, so a typo (a syntax error, an
//! unknown variable, a misspelt file name) fails there with an error naming the file.
//!
//! ```no_run
//! # fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use auth_smtp::{FileMailer, Renderer};
//!
//! let renderer = Renderer::with_overrides("/etc/secureauth/mail".as_ref())?;
//! let mailer = FileMailer::new("data/mail")?.with_renderer(renderer);
//! # Ok(()) }
//! ```

mod file;
mod language;
mod message;
pub mod render;
mod smtp;
mod templates;

pub use file::{FileMailer, DEFAULT_FILE_SENDER};
pub use render::{RenderedMail, Renderer};
pub use smtp::{SendTimeout, SmtpConfigError, SmtpMailer, SmtpSettings, TlsMode};
pub use templates::TemplateError;

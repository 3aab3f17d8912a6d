//! What each [`MailMessage`] says: subject, plain text and HTML, rendered from templates in
//! the language the recipient prefers. See the [crate documentation](crate#mail-templates)
//! for the files and the values they get.

use std::fmt;
use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use auth_core::{DateTime, MailMessage, OtpCode, Utc};
use minijinja::{context, Value};

use crate::language::{negotiate, ENGLISH};
use crate::templates::{Compiled, Sources, TemplateError};

/// The product name used in every message (the `product` value of the templates).
pub const PRODUCT_NAME: &str = "SecureAuth";

/// A rendered message: what the person reads. Its `Debug` output hides the content, which may
/// hold a one-time code.
#[derive(Clone, PartialEq, Eq)]
pub struct RenderedMail {
    /// The subject line, on one line. For a built-in code mail it starts with the code.
    pub subject: String,
    /// The `text/plain` part, ending in a newline. For a built-in code mail its first line
    /// starts with the code.
    pub text: String,
    /// The `text/html` part (a complete document, every interpolated value escaped).
    pub html: String,
    /// The language it is written in, a lower-case tag (`en`, `de`), for `Content-Language`.
    pub language: String,
}

impl fmt::Debug for RenderedMail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RenderedMail")
            .field("language", &self.language)
            .finish_non_exhaustive()
    }
}

/// Renders mail from templates: the built-in ones (English and German), optionally with an
/// operator's overrides and extra languages laid over them.
///
/// Loading renders every message kind in every language once, so a template that does not
/// parse, names an unknown variable or filter, or fails otherwise stops the start-up with a
/// [`TemplateError`] naming the file, instead of failing a mail later. Cheap to clone.
#[derive(Clone)]
pub struct Renderer {
    compiled: std::sync::Arc<Compiled>,
}

impl fmt::Debug for Renderer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Renderer")
            .field("languages", &self.compiled.languages)
            .finish_non_exhaustive()
    }
}

impl Renderer {
    /// The built-in templates: English and German.
    pub fn builtin() -> Renderer {
        builtin().clone()
    }

    /// The built-in templates with the files of `dir` laid over them: `dir/<lang>/<file>`
    /// replaces the built-in file of the same name, and a folder for a language without
    /// built-in templates adds that language (a file it lacks is taken from English).
    /// File names are those of the built-in templates (`layout.html`, `footer.txt`,
    /// `duration.txt`, `<kind>.subject`, `<kind>.txt`, `<kind>.html`); names starting with
    /// `.` are skipped.
    ///
    /// Fails with a [`TemplateError`] naming the file or folder when one cannot be read, is
    /// not a template name, does not parse, or fails to render a sample of a message.
    pub fn with_overrides(dir: &Path) -> Result<Renderer, TemplateError> {
        Self::load(Some(dir))
    }

    /// The languages there are templates for, lower-case, English first.
    pub fn languages(&self) -> &[String] {
        &self.compiled.languages
    }

    /// The language [`render`](Self::render) uses for an `Accept-Language` value: the
    /// best-weighted listed language there are templates for, matched exactly or by its
    /// primary subtag (`de-CH` takes `de`); English when none matches, for `*`, when the
    /// value is missing, and when it does not parse.
    pub fn language_for(&self, accept_language: Option<&str>) -> &str {
        negotiate(accept_language, &self.compiled.languages)
    }

    /// Renders `message` in the language picked from `language`, an HTTP `Accept-Language`
    /// value (`de-CH, de;q=0.9, en;q=0.5`; see [`language_for`](Self::language_for)).
    ///
    /// Never fails: templates are checked when loaded; should one still fail on a message
    /// (say a condition on a value the check did not try), the error is logged and the
    /// message is rendered with the built-in English templates.
    pub fn render(&self, message: &MailMessage, language: Option<&str>) -> RenderedMail {
        let lang = self.language_for(language);
        self.try_render(message, lang).unwrap_or_else(|error| {
            // The kind and line only: a message's detail could quote a value, such as the code.
            tracing::error!(
                kind = message.kind(),
                language = lang,
                template = %self.compiled.origin_of(error.name()),
                line = error.line(),
                error = %error.kind(),
                "a mail template failed: sending the built-in English text"
            );
            fallback(message)
        })
    }

    fn load(overrides: Option<&Path>) -> Result<Renderer, TemplateError> {
        let mut sources = Sources::builtin();
        if let Some(dir) = overrides {
            sources.add_overrides(dir)?;
        }
        let renderer = Renderer {
            compiled: std::sync::Arc::new(sources.environment()?),
        };
        renderer.check()?;
        Ok(renderer)
    }

    /// Renders a sample of every message kind in every language, with validities that take
    /// every branch of the built-in `duration.txt`.
    fn check(&self) -> Result<(), TemplateError> {
        for lang in &self.compiled.languages {
            for message in samples() {
                self.try_render(&message, lang)
                    .map_err(|source| TemplateError::Render {
                        template: self.compiled.origin_of(source.name()),
                        kind: message.kind(),
                        language: lang.clone(),
                        source,
                    })?;
            }
        }
        Ok(())
    }

    fn try_render(
        &self,
        message: &MailMessage,
        lang: &str,
    ) -> Result<RenderedMail, minijinja::Error> {
        let render = |file: &str, ctx: &Value| {
            self.compiled
                .env
                .get_template(&format!("{lang}/{file}"))?
                .render(ctx)
        };
        let kind = message.kind();
        let (code, valid_for, requested_at) = match message {
            MailMessage::VerifyEmail { code, valid_for }
            | MailMessage::ResetPassword { code, valid_for }
            | MailMessage::LoginCode { code, valid_for }
            | MailMessage::EmailChangeCode { code, valid_for } => {
                (Some(code), Some(*valid_for), None)
            }
            MailMessage::VerifyEmailAgain {
                code,
                valid_for,
                requested_at,
            } => (
                Some(code),
                Some(*valid_for),
                Some(requested_at.format("%Y-%m-%d %H:%M UTC").to_string()),
            ),
            MailMessage::PasswordChanged { .. }
            | MailMessage::SignupAttempted
            | MailMessage::AccountDeleted
            | MailMessage::SessionEndedAfterWrongPasswords
            | MailMessage::TotpEnabled
            | MailMessage::TotpDisabled
            | MailMessage::RecoveryCodeUsed { .. }
            | MailMessage::AccountDisabled
            | MailMessage::AccountEnabled
            | MailMessage::AccountDeletedByAdmin
            | MailMessage::AdminRoleGranted
            | MailMessage::AdminRoleRevoked
            | MailMessage::TotpResetByAdmin
            | MailMessage::EmailChangeRequested
            | MailMessage::EmailChangeAddressTaken
            | MailMessage::EmailChanged
            | MailMessage::NewDeviceLogin
            | MailMessage::PasskeyAdded
            | MailMessage::PasskeyRemoved => (None, None, None),
        };
        let left = match message {
            MailMessage::RecoveryCodeUsed { left } => Some(*left),
            _ => None,
        };
        let (passkeys, removed_passkeys) = match message {
            MailMessage::PasswordChanged {
                passkeys,
                removed_passkeys,
            } => (passkeys.clone(), removed_passkeys.clone()),
            _ => (Vec::new(), Vec::new()),
        };
        let valid_for = match valid_for {
            Some(d) => {
                let (hours, minutes, seconds) = duration_parts(d);
                let ctx = context! { lang, hours, minutes, seconds };
                Some(one_line(&render("duration.txt", &ctx)?))
            }
            None => None,
        };
        let ctx = context! {
            lang,
            product => PRODUCT_NAME,
            kind,
            code => code.map(OtpCode::expose),
            valid_for,
            requested_at,
            left,
            passkeys,
            removed_passkeys,
        };
        let subject = one_line(&render(&format!("{kind}.subject"), &ctx)?);
        let footer = render("footer.txt", &ctx)?.trim().to_owned();
        let mut text = render(&format!("{kind}.txt"), &ctx)?.trim().to_owned();
        text.push('\n');
        if !footer.is_empty() {
            // The usual signature separator, "-- " on its own line.
            text.push_str("\n-- \n");
            text.push_str(&footer);
            text.push('\n');
        }
        let html_ctx = context! { subject => &subject, footer => &footer, ..ctx };
        let mut html = render(&format!("{kind}.html"), &html_ctx)?;
        if !html.ends_with('\n') {
            html.push('\n');
        }
        Ok(RenderedMail {
            subject,
            text,
            html,
            language: lang.to_owned(),
        })
    }
}

/// The built-in renderer, loaded once.
fn builtin() -> &'static Renderer {
    static BUILTIN: OnceLock<Renderer> = OnceLock::new();
    BUILTIN.get_or_init(|| {
        Renderer::load(None).unwrap_or_else(|error| {
            // A bug the tests catch; mail still goes out, see `last_resort`.
            tracing::error!(
                error = %crate::smtp::DisplayChain(&error),
                "the built-in mail templates do not load"
            );
            Renderer {
                compiled: std::sync::Arc::new(Compiled {
                    env: minijinja::Environment::new(),
                    languages: vec![ENGLISH.to_owned()],
                    origins: Default::default(),
                }),
            }
        })
    })
}

/// The built-in English rendering, or, should even that fail (a bug), a bare message that
/// still carries the code.
fn fallback(message: &MailMessage) -> RenderedMail {
    builtin()
        .try_render(message, ENGLISH)
        .unwrap_or_else(|error| {
            tracing::error!(
                kind = message.kind(),
                template = ?error.name(),
                error = %error.kind(),
                "a built-in mail template failed"
            );
            last_resort(message)
        })
}

fn last_resort(message: &MailMessage) -> RenderedMail {
    let code = match message {
        MailMessage::VerifyEmail { code, .. }
        | MailMessage::VerifyEmailAgain { code, .. }
        | MailMessage::ResetPassword { code, .. }
        | MailMessage::LoginCode { code, .. } => Some(code.expose()),
        _ => None,
    };
    let subject = match code {
        Some(code) => format!("{code} is your {PRODUCT_NAME} code"),
        None => format!("A notice about your {PRODUCT_NAME} account"),
    };
    let line = match (code, message.code_valid_for()) {
        (Some(code), Some(valid_for)) => format!(
            "{code} is your {PRODUCT_NAME} code ({}). It is valid for {} seconds.",
            message.kind(),
            valid_for.as_secs()
        ),
        _ => format!(
            "Something happened on your {PRODUCT_NAME} account ({}).",
            message.kind()
        ),
    };
    RenderedMail {
        html: format!(
            "<!DOCTYPE html>\n<html lang=\"en\">\n<body>\n<p>{}</p>\n</body>\n</html>\n",
            html_escape(&line)
        ),
        text: format!("{line}\n"),
        subject,
        language: ENGLISH.to_owned(),
    }
}

fn html_escape(raw: &str) -> String {
    minijinja::HtmlEscape(raw).to_string()
}

/// Hours, minutes and seconds of a validity, rounded down to whole minutes from one minute
/// on, so a mail never promises more time than the code has.
fn duration_parts(d: Duration) -> (u64, u64, u64) {
    let secs = d.as_secs();
    if secs < 60 {
        return (0, 0, secs);
    }
    let minutes = secs / 60;
    (minutes / 60, minutes % 60, 0)
}

/// Runs of whitespace, line breaks included, become one space; none at either end.
fn one_line(raw: &str) -> String {
    raw.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// One message of each kind, and a code mail for each branch of the durations.
fn samples() -> Vec<MailMessage> {
    let mut samples = vec![
        MailMessage::password_changed(),
        MailMessage::PasswordChanged {
            passkeys: vec!["laptop".to_owned(), "<b>phone</b>".to_owned()],
            removed_passkeys: Vec::new(),
        },
        MailMessage::PasswordChanged {
            passkeys: Vec::new(),
            removed_passkeys: vec!["security key".to_owned()],
        },
        MailMessage::SignupAttempted,
        MailMessage::AccountDeleted,
        MailMessage::SessionEndedAfterWrongPasswords,
        MailMessage::TotpEnabled,
        MailMessage::TotpDisabled,
        MailMessage::RecoveryCodeUsed { left: 9 },
        MailMessage::AccountDisabled,
        MailMessage::AccountEnabled,
        MailMessage::AccountDeletedByAdmin,
        MailMessage::AdminRoleGranted,
        MailMessage::AdminRoleRevoked,
        MailMessage::TotpResetByAdmin,
        MailMessage::EmailChangeRequested,
        MailMessage::EmailChangeAddressTaken,
        MailMessage::EmailChanged,
        MailMessage::NewDeviceLogin,
        MailMessage::PasskeyAdded,
        MailMessage::PasskeyRemoved,
    ];
    let Ok(code) = OtpCode::parse("123456") else {
        return samples;
    };
    let ten_minutes = Duration::from_secs(600);
    samples.extend([
        MailMessage::VerifyEmailAgain {
            code: code.clone(),
            valid_for: ten_minutes,
            requested_at: DateTime::<Utc>::UNIX_EPOCH,
        },
        MailMessage::ResetPassword {
            code: code.clone(),
            valid_for: ten_minutes,
        },
        MailMessage::LoginCode {
            code: code.clone(),
            valid_for: ten_minutes,
        },
        MailMessage::EmailChangeCode {
            code: code.clone(),
            valid_for: ten_minutes,
        },
    ]);
    for secs in [0, 1, 30, 60, 120, 3600, 3660, 7200, 7320] {
        samples.push(MailMessage::VerifyEmail {
            code: code.clone(),
            valid_for: Duration::from_secs(secs),
        });
    }
    samples
}

#[cfg(test)]
mod tests;

//! The template files: the built-in ones, embedded in the binary, an operator's folder of
//! overrides, and the MiniJinja environment made of them.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

use minijinja::syntax::SyntaxConfig;
use minijinja::{AutoEscape, Environment, UndefinedBehavior};

use crate::language::{is_language_tag, ENGLISH};

/// Files every message shares: the HTML layout, the signature under the text part, and how a
/// code's validity is written.
pub(crate) const SHARED_FILES: [&str; 3] = ["layout.html", "footer.txt", "duration.txt"];

/// One file of each of these per message kind ([`auth_core::MailMessage::kind`]).
pub(crate) const PARTS: [&str; 3] = ["subject", "txt", "html"];

/// Every message kind, as [`auth_core::MailMessage::kind`] names it.
pub(crate) const KINDS: [&str; 24] = [
    "verify_email",
    "verify_email_again",
    "reset_password",
    "login_code",
    "password_changed",
    "signup_attempted",
    "account_deleted",
    "session_ended_after_wrong_passwords",
    "totp_enabled",
    "totp_disabled",
    "recovery_code_used",
    "account_disabled",
    "account_enabled",
    "account_deleted_by_admin",
    "admin_role_granted",
    "admin_role_revoked",
    "totp_reset_by_admin",
    "email_change_code",
    "email_change_requested",
    "email_change_address_taken",
    "email_changed",
    "new_device_login",
    "passkey_added",
    "passkey_removed",
];

/// Every template file name, the same in each language folder.
pub(crate) fn file_names() -> impl Iterator<Item = String> {
    SHARED_FILES.iter().map(|f| (*f).to_owned()).chain(
        KINDS
            .iter()
            .flat_map(|kind| PARTS.iter().map(move |part| format!("{kind}.{part}"))),
    )
}

macro_rules! embed {
    ($($path:literal),* $(,)?) => {
        &[$(($path, include_str!(concat!("../templates/", $path)))),*]
    };
}

/// The built-in templates, `(<lang>/<file>, source)`. English is complete; German has
/// everything but the layout, which it shares with English.
pub(crate) static BUILTIN: &[(&str, &str)] = embed![
    "en/layout.html",
    "en/footer.txt",
    "en/duration.txt",
    "en/verify_email.subject",
    "en/verify_email.txt",
    "en/verify_email.html",
    "en/verify_email_again.subject",
    "en/verify_email_again.txt",
    "en/verify_email_again.html",
    "en/reset_password.subject",
    "en/reset_password.txt",
    "en/reset_password.html",
    "en/login_code.subject",
    "en/login_code.txt",
    "en/login_code.html",
    "en/password_changed.subject",
    "en/password_changed.txt",
    "en/password_changed.html",
    "en/signup_attempted.subject",
    "en/signup_attempted.txt",
    "en/signup_attempted.html",
    "en/account_deleted.subject",
    "en/account_deleted.txt",
    "en/account_deleted.html",
    "en/session_ended_after_wrong_passwords.subject",
    "en/session_ended_after_wrong_passwords.txt",
    "en/session_ended_after_wrong_passwords.html",
    "en/totp_enabled.subject",
    "en/totp_enabled.txt",
    "en/totp_enabled.html",
    "en/totp_disabled.subject",
    "en/totp_disabled.txt",
    "en/totp_disabled.html",
    "en/recovery_code_used.subject",
    "en/recovery_code_used.txt",
    "en/recovery_code_used.html",
    "en/account_disabled.subject",
    "en/account_disabled.txt",
    "en/account_disabled.html",
    "en/account_enabled.subject",
    "en/account_enabled.txt",
    "en/account_enabled.html",
    "en/account_deleted_by_admin.subject",
    "en/account_deleted_by_admin.txt",
    "en/account_deleted_by_admin.html",
    "en/admin_role_granted.subject",
    "en/admin_role_granted.txt",
    "en/admin_role_granted.html",
    "en/admin_role_revoked.subject",
    "en/admin_role_revoked.txt",
    "en/admin_role_revoked.html",
    "en/totp_reset_by_admin.subject",
    "en/totp_reset_by_admin.txt",
    "en/totp_reset_by_admin.html",
    "en/email_change_code.subject",
    "en/email_change_code.txt",
    "en/email_change_code.html",
    "en/email_change_requested.subject",
    "en/email_change_requested.txt",
    "en/email_change_requested.html",
    "en/email_change_address_taken.subject",
    "en/email_change_address_taken.txt",
    "en/email_change_address_taken.html",
    "en/email_changed.subject",
    "en/email_changed.txt",
    "en/email_changed.html",
    "en/new_device_login.subject",
    "en/new_device_login.txt",
    "en/new_device_login.html",
    "en/passkey_added.subject",
    "en/passkey_added.txt",
    "en/passkey_added.html",
    "en/passkey_removed.subject",
    "en/passkey_removed.txt",
    "en/passkey_removed.html",
    "de/footer.txt",
    "de/duration.txt",
    "de/verify_email.subject",
    "de/verify_email.txt",
    "de/verify_email.html",
    "de/verify_email_again.subject",
    "de/verify_email_again.txt",
    "de/verify_email_again.html",
    "de/reset_password.subject",
    "de/reset_password.txt",
    "de/reset_password.html",
    "de/login_code.subject",
    "de/login_code.txt",
    "de/login_code.html",
    "de/password_changed.subject",
    "de/password_changed.txt",
    "de/password_changed.html",
    "de/signup_attempted.subject",
    "de/signup_attempted.txt",
    "de/signup_attempted.html",
    "de/account_deleted.subject",
    "de/account_deleted.txt",
    "de/account_deleted.html",
    "de/session_ended_after_wrong_passwords.subject",
    "de/session_ended_after_wrong_passwords.txt",
    "de/session_ended_after_wrong_passwords.html",
    "de/totp_enabled.subject",
    "de/totp_enabled.txt",
    "de/totp_enabled.html",
    "de/totp_disabled.subject",
    "de/totp_disabled.txt",
    "de/totp_disabled.html",
    "de/recovery_code_used.subject",
    "de/recovery_code_used.txt",
    "de/recovery_code_used.html",
    "de/account_disabled.subject",
    "de/account_disabled.txt",
    "de/account_disabled.html",
    "de/account_enabled.subject",
    "de/account_enabled.txt",
    "de/account_enabled.html",
    "de/account_deleted_by_admin.subject",
    "de/account_deleted_by_admin.txt",
    "de/account_deleted_by_admin.html",
    "de/admin_role_granted.subject",
    "de/admin_role_granted.txt",
    "de/admin_role_granted.html",
    "de/admin_role_revoked.subject",
    "de/admin_role_revoked.txt",
    "de/admin_role_revoked.html",
    "de/totp_reset_by_admin.subject",
    "de/totp_reset_by_admin.txt",
    "de/totp_reset_by_admin.html",
    "de/email_change_code.subject",
    "de/email_change_code.txt",
    "de/email_change_code.html",
    "de/email_change_requested.subject",
    "de/email_change_requested.txt",
    "de/email_change_requested.html",
    "de/email_change_address_taken.subject",
    "de/email_change_address_taken.txt",
    "de/email_change_address_taken.html",
    "de/email_changed.subject",
    "de/email_changed.txt",
    "de/email_changed.html",
    "de/new_device_login.subject",
    "de/new_device_login.txt",
    "de/new_device_login.html",
    "de/passkey_added.subject",
    "de/passkey_added.txt",
    "de/passkey_added.html",
    "de/passkey_removed.subject",
    "de/passkey_removed.txt",
    "de/passkey_removed.html",
];

/// Why the mail templates could not be loaded. Each names the file (or folder) at fault.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// A folder or file could not be read (missing, no permission, not UTF-8).
    #[error("cannot read {}", path.display())]
    Read {
        /// The folder or file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Something in the templates folder is not a folder named after a language.
    #[error(
        "{} is not a language folder: put templates in <dir>/<language>/<file>, the folder \
         named after a language tag (en, de, pt-br)",
        path.display()
    )]
    NotALanguageFolder {
        /// The file or folder.
        path: PathBuf,
    },
    /// A file in a language folder is not named after a template (likely a typo).
    #[error("{} is not a mail template; the names are {expected}", path.display())]
    UnknownFile {
        /// The file.
        path: PathBuf,
        /// The template names, comma-separated.
        expected: String,
    },
    /// A template does not parse.
    #[error("mail template {template} has a syntax error")]
    Syntax {
        /// The file (or `built-in <lang>/<file>`).
        template: String,
        /// The parser's message, with the line.
        #[source]
        source: minijinja::Error,
    },
    /// A template parses, but rendering a sample message with it fails (say an unknown
    /// variable or filter).
    #[error("mail template {template} fails to render the {kind} mail in {language}")]
    Render {
        /// The file (or `built-in <lang>/<file>`) where it failed.
        template: String,
        /// The message kind tried.
        kind: &'static str,
        /// The language tried.
        language: String,
        /// What went wrong, with the line.
        #[source]
        source: minijinja::Error,
    },
}

/// Where a template comes from, for error messages.
#[derive(Debug, Clone)]
pub(crate) enum Origin {
    BuiltIn(&'static str),
    File(PathBuf),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BuiltIn(name) => write!(f, "built-in {name}"),
            Self::File(path) => write!(f, "{}", path.display()),
        }
    }
}

#[derive(Debug)]
struct Source {
    text: Cow<'static, str>,
    origin: Origin,
}

/// Each language's own templates: language, then file name.
#[derive(Debug, Default)]
pub(crate) struct Sources(BTreeMap<String, BTreeMap<String, Source>>);

impl Sources {
    pub(crate) fn builtin() -> Self {
        let mut sources = Self::default();
        for (name, text) in BUILTIN {
            if let Some((lang, file)) = name.split_once('/') {
                sources.insert(lang, file, Cow::Borrowed(*text), Origin::BuiltIn(name));
            }
        }
        sources
    }

    fn insert(&mut self, lang: &str, file: &str, text: Cow<'static, str>, origin: Origin) {
        self.0
            .entry(lang.to_owned())
            .or_default()
            .insert(file.to_owned(), Source { text, origin });
    }

    /// Lays `dir/<lang>/<file>` over what is there. Hidden entries (a leading `.`, as editors
    /// and file managers leave) are skipped; anything else that is not a template is an error.
    pub(crate) fn add_overrides(&mut self, dir: &Path) -> Result<(), TemplateError> {
        for (name, path) in visible_entries(dir)? {
            let is_dir = std::fs::metadata(&path)
                .map_err(|source| read_error(&path, source))?
                .is_dir();
            let lang = match name.to_str() {
                Some(lang) if is_dir && is_language_tag(lang) => lang.to_ascii_lowercase(),
                _ => return Err(TemplateError::NotALanguageFolder { path }),
            };
            for (file, path) in visible_entries(&path)? {
                let Some(file) = file.to_str().filter(|f| file_names().any(|n| n == *f)) else {
                    return Err(TemplateError::UnknownFile {
                        path,
                        expected: file_names().collect::<Vec<_>>().join(", "),
                    });
                };
                let text =
                    std::fs::read_to_string(&path).map_err(|source| read_error(&path, source))?;
                // Mail bodies use LF here; lettre writes CRLF on the wire.
                let text = text.replace("\r\n", "\n");
                self.insert(&lang, file, Cow::Owned(text), Origin::File(path));
            }
        }
        Ok(())
    }

    /// Every language, English first.
    pub(crate) fn languages(&self) -> Vec<String> {
        let mut languages: Vec<String> = self.0.keys().cloned().collect();
        languages.sort_by_key(|l| (l != ENGLISH, l.clone()));
        languages
    }

    /// The environment holding `<lang>/<file>` for every language and file: the language's
    /// own template, or else the English one. Fails on the first template that does not
    /// parse (English first).
    pub(crate) fn environment(&self) -> Result<Compiled, TemplateError> {
        let mut env = new_environment();
        let mut origins = HashMap::new();
        let english = self.0.get(ENGLISH);
        for lang in self.languages() {
            let own = self.0.get(&lang);
            for file in file_names() {
                let Some(source) = own
                    .and_then(|own| own.get(&file))
                    .or_else(|| english.and_then(|en| en.get(&file)))
                else {
                    continue;
                };
                let name = format!("{lang}/{file}");
                env.add_template_owned(name.clone(), source.text.clone())
                    .map_err(|e| TemplateError::Syntax {
                        template: source.origin.to_string(),
                        source: e,
                    })?;
                origins.insert(name, source.origin.clone());
            }
        }
        Ok(Compiled {
            env,
            languages: self.languages(),
            origins,
        })
    }
}

/// The templates, ready to render.
#[derive(Debug)]
pub(crate) struct Compiled {
    pub(crate) env: Environment<'static>,
    /// Lower-case language tags, English first.
    pub(crate) languages: Vec<String>,
    /// Where each template of `env` comes from.
    pub(crate) origins: HashMap<String, Origin>,
}

impl Compiled {
    /// Where the template named `name` in the environment comes from.
    pub(crate) fn origin_of(&self, name: Option<&str>) -> String {
        match name.and_then(|n| self.origins.get(n)) {
            Some(origin) => origin.to_string(),
            None => name.unwrap_or("a mail template").to_owned(),
        }
    }
}

fn new_environment() -> Environment<'static> {
    let mut env = Environment::new();
    // Block tags on lines of their own leave no blank lines behind.
    env.set_syntax(
        SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()
            .unwrap_or_default(),
    );
    // A misspelt variable is an error (found by the sample render at load), not an empty
    // string in a mail.
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_auto_escape_callback(|name| {
        if name.ends_with(".html") {
            AutoEscape::Html
        } else {
            AutoEscape::None
        }
    });
    // `{% extends "layout.html" %}` in `de/x.html` means `de/layout.html`.
    env.set_path_join_callback(|name, parent| match parent.split_once('/') {
        Some((lang, _)) if !name.contains('/') => Cow::Owned(format!("{lang}/{name}")),
        _ => Cow::Borrowed(name),
    });
    env
}

fn read_error(path: &Path, source: std::io::Error) -> TemplateError {
    TemplateError::Read {
        path: path.to_owned(),
        source,
    }
}

/// The entries of `dir` not starting with `.`, sorted by name (so errors are reproducible).
fn visible_entries(dir: &Path) -> Result<Vec<(std::ffi::OsString, PathBuf)>, TemplateError> {
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|source| read_error(dir, source))? {
        let entry = entry.map_err(|source| read_error(dir, source))?;
        let name = entry.file_name();
        if !name.as_encoded_bytes().starts_with(b".") {
            entries.push((name, entry.path()));
        }
    }
    entries.sort();
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn english_is_complete_and_german_lacks_only_the_shared_layout() {
        let sources = Sources::builtin();
        assert_eq!(sources.languages(), ["en", "de"]);
        let files = |lang: &str| -> Vec<String> { sources.0[lang].keys().cloned().collect() };
        let mut all: Vec<String> = file_names().collect();
        all.sort();
        assert_eq!(files("en"), all);
        all.retain(|f| f != "layout.html");
        assert_eq!(files("de"), all);
    }

    #[test]
    fn kinds_are_the_domain_kinds() {
        use auth_core::{MailMessage, OtpCode};
        let code = OtpCode::parse("123456").unwrap();
        let d = std::time::Duration::from_secs(60);
        let kinds = [
            MailMessage::VerifyEmail {
                code: code.clone(),
                valid_for: d,
            },
            MailMessage::VerifyEmailAgain {
                code: code.clone(),
                valid_for: d,
                requested_at: auth_core::DateTime::from_timestamp(0, 0).unwrap(),
            },
            MailMessage::ResetPassword {
                code: code.clone(),
                valid_for: d,
            },
            MailMessage::LoginCode { code, valid_for: d },
            MailMessage::password_changed(),
            MailMessage::SignupAttempted,
            MailMessage::AccountDeleted,
            MailMessage::SessionEndedAfterWrongPasswords,
            MailMessage::TotpEnabled,
            MailMessage::TotpDisabled,
            MailMessage::RecoveryCodeUsed { left: 3 },
            MailMessage::AccountDisabled,
            MailMessage::AccountEnabled,
            MailMessage::AccountDeletedByAdmin,
            MailMessage::AdminRoleGranted,
            MailMessage::AdminRoleRevoked,
            MailMessage::TotpResetByAdmin,
            MailMessage::EmailChangeCode {
                code: OtpCode::parse("123456").unwrap(),
                valid_for: d,
            },
            MailMessage::EmailChangeRequested,
            MailMessage::EmailChangeAddressTaken,
            MailMessage::EmailChanged,
            MailMessage::NewDeviceLogin,
            MailMessage::PasskeyAdded,
            MailMessage::PasskeyRemoved,
        ]
        .map(|m| m.kind());
        assert_eq!(kinds, KINDS);
    }
}

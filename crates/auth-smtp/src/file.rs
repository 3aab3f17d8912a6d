//! [`FileMailer`]: a development mailer that writes `.eml` files instead of sending.

use std::fmt;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use auth_core::{EmailAddress, MailMessage, Mailer, MailerError};
use lettre::message::Mailbox;

use crate::message::build;
use crate::render::Renderer;
use crate::smtp::{parse_from, SmtpConfigError};

/// Sender used by [`FileMailer::new`] until [`FileMailer::with_from`] sets another.
pub const DEFAULT_FILE_SENDER: &str = "SecureAuth <no-reply@localhost>";

/// Writes each message as `<uuid>.eml` into a folder, for development: open the file in a
/// mail client, or read the code from it. Logs one `info` line per message with the file path
/// (never its content). Every failure is [`MailerError::Unavailable`].
///
/// The messages hold one-time codes: each file is created readable by the server's user only
/// (0600), and folders it creates are 0700 (an existing folder keeps its permissions).
pub struct FileMailer {
    dir: PathBuf,
    from: Mailbox,
    renderer: Renderer,
}

impl fmt::Debug for FileMailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileMailer")
            .field("dir", &self.dir)
            .field("from", &self.from.to_string())
            .field("renderer", &self.renderer)
            .finish_non_exhaustive()
    }
}

impl FileMailer {
    /// A mailer writing into `dir`, which is created (with its parents) if missing, with the
    /// built-in templates ([`Renderer::builtin`]).
    pub fn new(dir: impl Into<PathBuf>) -> std::io::Result<Self> {
        let dir = dir.into();
        create_private_dir(&dir)?;
        // Never fails: a constant, covered by a test.
        let from = parse_from(DEFAULT_FILE_SENDER).map_err(std::io::Error::other)?;
        Ok(Self {
            dir,
            from,
            renderer: Renderer::builtin(),
        })
    }

    /// Renders mail with `renderer` (e.g. [`Renderer::with_overrides`]).
    pub fn with_renderer(mut self, renderer: Renderer) -> Self {
        self.renderer = renderer;
        self
    }

    /// Uses `from` (a mailbox, e.g. `SecureAuth <no-reply@example.com>`) as the sender.
    pub fn with_from(mut self, from: &str) -> Result<Self, SmtpConfigError> {
        self.from = parse_from(from)?;
        Ok(self)
    }

    /// The folder the files go to.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

#[async_trait]
impl Mailer for FileMailer {
    /// [`send_localized`](Mailer::send_localized) without a language preference: English.
    async fn send(&self, to: &EmailAddress, message: &MailMessage) -> Result<(), MailerError> {
        self.send_localized(to, message, None).await
    }

    async fn send_localized<'a>(
        &self,
        to: &EmailAddress,
        message: &MailMessage,
        language: Option<&'a str>,
    ) -> Result<(), MailerError> {
        let rendered = self.renderer.render(message, language);
        let language = rendered.language.clone();
        let email = build(&self.from, to, rendered)?;
        let path = self.dir.join(format!("{}.eml", uuid::Uuid::new_v4()));
        let (dir, file, bytes) = (self.dir.clone(), path.clone(), email.formatted());
        // The folder may have been removed since start-up (e.g. `rm -rf` of a temp dir).
        tokio::task::spawn_blocking(move || {
            create_private_dir(&dir)?;
            write_private_file(&file, &bytes)
        })
        .await
        .map_err(|e| MailerError::Unavailable(Box::new(e)))?
        .map_err(|e| MailerError::Unavailable(Box::new(e)))?;
        tracing::info!(
            kind = message.kind(),
            language,
            path = %path.display(),
            "mail written to file"
        );
        Ok(())
    }
}

/// Creates `dir` and its missing parents, 0700 on Unix.
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Writes a new file (its name is a fresh UUID), 0600 on Unix from its creation on. The bytes
/// go to a hidden `.tmp` file next to it first, which is then renamed: whoever lists the folder
/// (a person reading codes, a test) sees a message whole or not at all, never half written.
fn write_private_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let partial = path.with_file_name(format!(".{name}.tmp"));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&partial)?;
    let written = file.write_all(bytes);
    drop(file);
    match written.and_then(|()| std::fs::rename(&partial, path)) {
        Ok(()) => Ok(()),
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_file_appears_whole_and_leaves_no_partial_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.eml");
        write_private_file(&path, b"Subject: x\r\n\r\nbody").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"Subject: x\r\n\r\nbody");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, ["m.eml"]);
    }

    #[test]
    fn default_sender_is_valid() {
        assert!(parse_from(DEFAULT_FILE_SENDER).is_ok());
    }
}

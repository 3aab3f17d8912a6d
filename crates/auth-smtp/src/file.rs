//! [`FileMailer`]: a development mailer that writes `.eml` files instead of sending.

use std::fmt;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use auth_core::{EmailAddress, MailMessage, Mailer, MailerError};
use lettre::message::Mailbox;
use lettre::{AsyncFileTransport, AsyncTransport, Tokio1Executor};

use crate::message::build;
use crate::render::message_kind;
use crate::smtp::{parse_from, SmtpConfigError};

/// Sender used by [`FileMailer::new`] until [`FileMailer::with_from`] sets another.
pub const DEFAULT_FILE_SENDER: &str = "SecureAuth <no-reply@localhost>";

/// Writes each message as `<uuid>.eml` into a folder, for development: open the file in a
/// mail client, or read the code from it. Logs one `info` line per message with the file path
/// (never its content). Every failure is [`MailerError::Unavailable`].
pub struct FileMailer {
    dir: PathBuf,
    from: Mailbox,
    transport: AsyncFileTransport<Tokio1Executor>,
}

impl fmt::Debug for FileMailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileMailer")
            .field("dir", &self.dir)
            .field("from", &self.from.to_string())
            .finish_non_exhaustive()
    }
}

impl FileMailer {
    /// A mailer writing into `dir`, which is created (with its parents) if missing.
    pub fn new(dir: impl Into<PathBuf>) -> std::io::Result<Self> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir)?;
        // Never fails: a constant, covered by a test.
        let from = parse_from(DEFAULT_FILE_SENDER).map_err(std::io::Error::other)?;
        Ok(Self {
            transport: AsyncFileTransport::new(&dir),
            dir,
            from,
        })
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
    async fn send(&self, to: &EmailAddress, message: &MailMessage) -> Result<(), MailerError> {
        let email = build(&self.from, to, message)?;
        // The folder may have been removed since start-up (e.g. `rm -rf` of a temp dir).
        tokio::fs::create_dir_all(&self.dir)
            .await
            .map_err(|e| MailerError::Unavailable(Box::new(e)))?;
        let id = self
            .transport
            .send(email)
            .await
            .map_err(|e| MailerError::Unavailable(Box::new(e)))?;
        let path = self.dir.join(format!("{id}.eml"));
        tracing::info!(
            kind = message_kind(message),
            path = %path.display(),
            "mail written to file"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_sender_is_valid() {
        assert!(parse_from(DEFAULT_FILE_SENDER).is_ok());
    }
}

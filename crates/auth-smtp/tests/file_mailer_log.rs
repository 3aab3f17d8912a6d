#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `FileMailer` logs where it wrote a message, never the code.
//!
//! Alone in its own test binary: `tracing` caches per-callsite interest process-wide, so a
//! thread-local subscriber only reliably sees events when no other test thread hits the same
//! callsite at the same time.

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use auth_core::{EmailAddress, MailMessage, Mailer, OtpCode};
use auth_smtp::{FileMailer, Renderer};
use auth_testkit::smtp::ReceivedMail;

fn eml_files(dir: &std::path::Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect()
}

/// Collects everything a `tracing` subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

#[tokio::test]
async fn writes_a_readable_eml_into_a_created_folder_and_logs_only_the_path() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("not/yet/there");
    let mailer = FileMailer::new(&dir)
        .unwrap()
        .with_from("SecureAuth Dev <dev@example.com>")
        .unwrap();
    assert!(dir.is_dir());

    let logs = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer({
            let logs = logs.clone();
            move || logs.clone()
        })
        .with_ansi(false)
        .with_max_level(tracing::Level::TRACE)
        .finish();
    // Current-thread test runtime: the whole send runs on this thread.
    let _guard = tracing::subscriber::set_default(subscriber);

    let message = MailMessage::ResetPassword {
        code: OtpCode::parse("246810").unwrap(),
        valid_for: Duration::from_secs(600),
    };
    mailer
        .send(&EmailAddress::parse("ada@example.com").unwrap(), &message)
        .await
        .unwrap();

    let files = eml_files(&dir);
    assert_eq!(files.len(), 1, "{files:?}");
    let mail = ReceivedMail {
        from: String::new(),
        to: "ada@example.com".to_owned(),
        raw: std::fs::read_to_string(&files[0]).unwrap(),
    };
    assert_eq!(
        mail.subject(),
        Renderer::builtin().render(&message, None).subject
    );
    assert_eq!(mail.code(), "246810");
    assert_eq!(mail.from_header().as_deref(), Some("dev@example.com"));
    assert_eq!(mail.to_header(), vec!["ada@example.com".to_owned()]);
    assert_eq!(mail.content_type(), "multipart/alternative");
    assert!(mail
        .text_part()
        .unwrap()
        .starts_with("246810 is your SecureAuth password reset code."));
    assert!(mail.html_part().unwrap().contains("246810"));

    let logs = logs.text();
    let path = files[0].display().to_string();
    let line = logs
        .lines()
        .find(|l| l.contains("INFO") && l.contains(&path))
        .unwrap_or_else(|| panic!("no info line with {path} in:\n{logs}"));
    assert!(line.contains("reset_password"), "{line}");
    assert!(
        !logs.contains("246810"),
        "the code leaked into the logs:\n{logs}"
    );
}

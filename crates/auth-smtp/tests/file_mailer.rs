#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `FileMailer` writes readable `.eml` files and logs where, never what.

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use auth_core::{EmailAddress, MailMessage, Mailer, MailerError, OtpCode};
use auth_smtp::{render, FileMailer, SmtpConfigError};
use auth_testkit::smtp::ReceivedMail;

fn eml_files(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    files.sort();
    files
}

fn read_mail(path: &std::path::Path, to: &str) -> ReceivedMail {
    ReceivedMail {
        from: String::new(),
        to: to.to_owned(),
        raw: std::fs::read_to_string(path).unwrap(),
    }
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
    let mail = read_mail(&files[0], "ada@example.com");
    assert_eq!(mail.subject(), render(&message).subject);
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

#[tokio::test]
async fn every_message_gets_its_own_file_and_the_folder_is_recreated() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("mail");
    let mailer = FileMailer::new(&dir).unwrap();
    let to = EmailAddress::parse("bob@example.com").unwrap();
    mailer
        .send(&to, &MailMessage::PasswordChanged)
        .await
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    mailer
        .send(&to, &MailMessage::SignupAttempted)
        .await
        .unwrap();
    mailer
        .send(&to, &MailMessage::PasswordChanged)
        .await
        .unwrap();
    let files = eml_files(&dir);
    assert_eq!(files.len(), 2);
    let mail = read_mail(&files[0], "bob@example.com");
    assert_eq!(mail.from_header().as_deref(), Some("no-reply@localhost"));
}

#[tokio::test]
async fn an_unwritable_folder_is_unavailable() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("mail");
    let mailer = FileMailer::new(&dir).unwrap();
    // Replace the folder by a file: it can be neither created nor written into.
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::write(&dir, b"not a folder").unwrap();
    let err = mailer
        .send(
            &EmailAddress::parse("ada@example.com").unwrap(),
            &MailMessage::PasswordChanged,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, MailerError::Unavailable(_)), "{err:?}");
}

#[test]
fn a_bad_sender_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let err = FileMailer::new(tmp.path())
        .unwrap()
        .with_from("nope")
        .unwrap_err();
    assert!(
        matches!(err, SmtpConfigError::InvalidFrom { .. }),
        "{err:?}"
    );
}

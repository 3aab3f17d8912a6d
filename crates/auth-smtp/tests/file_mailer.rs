#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `FileMailer` writes readable `.eml` files (its log line is checked in `file_mailer_log.rs`).

use std::path::PathBuf;

use auth_core::{EmailAddress, MailMessage, Mailer, MailerError};
use auth_smtp::{FileMailer, Renderer, SmtpConfigError};
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

#[tokio::test]
async fn every_message_gets_its_own_file_and_the_folder_is_recreated() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("mail");
    let mailer = FileMailer::new(&dir).unwrap();
    let to = EmailAddress::parse("bob@example.com").unwrap();
    mailer
        .send(&to, &MailMessage::password_changed())
        .await
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    mailer
        .send(&to, &MailMessage::SignupAttempted)
        .await
        .unwrap();
    mailer
        .send(&to, &MailMessage::password_changed())
        .await
        .unwrap();
    let files = eml_files(&dir);
    assert_eq!(files.len(), 2);
    let mail = read_mail(&files[0], "bob@example.com");
    assert_eq!(mail.from_header().as_deref(), Some("no-reply@localhost"));
}

#[tokio::test]
async fn send_localized_writes_the_preferred_language() {
    let tmp = tempfile::tempdir().unwrap();
    let templates = tmp.path().join("templates");
    std::fs::create_dir_all(templates.join("en")).unwrap();
    std::fs::write(
        templates.join("en/password_changed.subject"),
        "Password changed at {{ product }}",
    )
    .unwrap();
    let dir = tmp.path().join("mail");
    let mailer = FileMailer::new(&dir)
        .unwrap()
        .with_renderer(Renderer::with_overrides(&templates).unwrap());
    let to = EmailAddress::parse("bob@example.com").unwrap();

    mailer
        .send_localized(
            &to,
            &MailMessage::password_changed(),
            Some("de;q=0.8, en;q=0.9"),
        )
        .await
        .unwrap();
    let files = eml_files(&dir);
    assert_eq!(files.len(), 1);
    let english = read_mail(&files[0], "bob@example.com");
    assert_eq!(english.subject(), "Password changed at SecureAuth");
    assert_eq!(english.header("Content-Language").as_deref(), Some("en"));
    std::fs::remove_file(&files[0]).unwrap();

    mailer
        .send_localized(&to, &MailMessage::password_changed(), Some("de-AT"))
        .await
        .unwrap();
    let german = read_mail(&eml_files(&dir)[0], "bob@example.com");
    assert_eq!(
        german.subject(),
        "Ihr Passwort für SecureAuth wurde geändert"
    );
    assert_eq!(german.header("Content-Language").as_deref(), Some("de"));
    assert!(german
        .text_part()
        .unwrap()
        .starts_with("Das Passwort Ihres Kontos bei SecureAuth wurde soeben geändert."));
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
            &MailMessage::password_changed(),
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

/// The files hold one-time codes: created 0600, in folders created 0700.
#[cfg(unix)]
#[tokio::test]
async fn mail_files_and_their_new_folders_are_private() {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("new").join("mail");
    let mailer = FileMailer::new(&dir).unwrap();
    assert_eq!(mode(&tmp.path().join("new")), 0o700);
    assert_eq!(mode(&dir), 0o700);
    let to = EmailAddress::parse("bob@example.com").unwrap();
    mailer
        .send(&to, &MailMessage::password_changed())
        .await
        .unwrap();
    // Recreated after removal: private again.
    std::fs::remove_dir_all(&dir).unwrap();
    mailer
        .send(&to, &MailMessage::SignupAttempted)
        .await
        .unwrap();
    assert_eq!(mode(&dir), 0o700);
    let files = eml_files(&dir);
    assert_eq!(files.len(), 1);
    for file in files {
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
}

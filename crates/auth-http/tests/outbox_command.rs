//! `auth-http outbox list|retry|purge` against a real (SQLite) outbox.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use auth_core::{EmailAddress, MailState, OutboxStore, QueuedMail};
use auth_sqlite::{SqliteSettings, SqliteUserRepository};
use chrono::{SubsecRound, Utc};

fn outbox_command(db: &Path, args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_auth-http"))
        .arg("outbox")
        .args(args)
        .env_clear()
        .env("DATABASE_URL", format!("sqlite://{}", db.display()))
        .env("LOG_FORMAT", "json")
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "outbox {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_outbox_command_lists_retries_and_purges_dead_mail() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("auth.db");
    let repo = SqliteUserRepository::open(&SqliteSettings::file(&db))
        .await
        .unwrap();
    let outbox = repo.outbox();
    let now = Utc::now().trunc_subsecs(6);
    let mut ids = Vec::new();
    for n in 0..2 {
        let mail = QueuedMail {
            id: uuid::Uuid::new_v4(),
            to: EmailAddress::parse(&format!("gone{n}@example.com")).unwrap(),
            kind: "password_changed".into(),
            supersedes: None,
            sealed: vec![1, 2, 3],
            created_at: now,
            expires_at: now + chrono::TimeDelta::hours(1),
        };
        outbox.enqueue(&mail).await.unwrap();
        ids.push(mail.id);
    }
    for claimed in outbox
        .claim(now, Duration::from_secs(60), 10)
        .await
        .unwrap()
    {
        outbox
            .bury(claimed.mail.id, claimed.lease, "550 no such user")
            .await
            .unwrap();
    }

    let listed = outbox_command(&db, &["list"]);
    assert!(listed.starts_with("pending: 0"), "{listed}");
    assert!(listed.contains("dead: 2"), "{listed}");
    assert!(
        listed.contains(&ids[0].to_string()) && listed.contains("550 no such user"),
        "{listed}"
    );
    assert!(listed.contains("gone1@example.com"), "{listed}");

    let retried = outbox_command(&db, &["retry", &ids[0].to_string()]);
    assert_eq!(retried.trim(), "1 message(s) due again");
    let pending = outbox_command(&db, &["list", "--pending"]);
    assert!(pending.starts_with("pending: 1"), "{pending}");
    assert!(pending.contains(&ids[0].to_string()), "{pending}");

    let purged = outbox_command(&db, &["purge"]);
    assert_eq!(purged.trim(), "1 message(s) deleted");
    assert!(outbox.list(MailState::Dead, 10).await.unwrap().is_empty());
    assert_eq!(outbox.list(MailState::Pending, 10).await.unwrap().len(), 1);
}

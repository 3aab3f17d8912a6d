//! `auth-http admin create|promote EMAIL` against a real (SQLite) user database: the first
//! administrator is made from the command line, the password read from standard input.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use auth_core::{EmailAddress, Role, UserRepository};
use auth_sqlite::{SqliteSettings, SqliteUserRepository};

fn admin_command(dir: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_auth-http"))
        .arg("admin")
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env(
            "DATABASE_URL",
            format!("sqlite://{}", dir.join("auth.db").display()),
        )
        .env("MAIL_DIR", dir.join("mail"))
        .env("ARGON2_MEMORY_KIB", "1024")
        .env("ARGON2_ITERATIONS", "1")
        .env("LOG_FORMAT", "json")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

async fn repo(dir: &Path) -> SqliteUserRepository {
    SqliteUserRepository::open(&SqliteSettings::file(dir.join("auth.db")))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_create_makes_a_verified_administrator_with_the_password_from_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let out = admin_command(
        dir.path(),
        &["create", "Root@Example.com"],
        "a long and private passphrase\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("root@example.com"), "{stdout}");
    assert!(!stdout.contains("passphrase"), "{stdout}");

    let email = EmailAddress::parse("root@example.com").unwrap();
    let stored = repo(dir.path()).await.find_by_email(&email).await.unwrap();
    let stored = stored.expect("the account exists");
    assert!(stored.user.is_verified());
    assert_eq!(stored.status.role, Role::Admin);
    assert!(!stored.status.is_disabled());

    // The address is taken now; a weak password is refused before anything is written.
    let again = admin_command(
        dir.path(),
        &["create", "root@example.com"],
        "another passphrase\n",
    );
    assert!(!again.status.success());
    let weak = admin_command(dir.path(), &["create", "weak@example.com"], "short\n");
    assert!(!weak.status.success());
    let email = EmailAddress::parse("weak@example.com").unwrap();
    assert!(repo(dir.path())
        .await
        .find_by_email(&email)
        .await
        .unwrap()
        .is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_promote_makes_an_existing_account_an_administrator() {
    let dir = tempfile::tempdir().unwrap();
    let made = admin_command(
        dir.path(),
        &["create", "first@example.com"],
        "a long and private passphrase\n",
    );
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let repo = repo(dir.path()).await;
    let first = EmailAddress::parse("first@example.com").unwrap();
    let id = repo.find_by_email(&first).await.unwrap().unwrap().user.id;
    repo.set_role(id, Role::User).await.unwrap();

    let out = admin_command(dir.path(), &["promote", "FIRST@example.com"], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stored = repo.find_by_email(&first).await.unwrap().unwrap();
    assert_eq!(stored.status.role, Role::Admin);

    let missing = admin_command(dir.path(), &["promote", "nobody@example.com"], "");
    assert!(!missing.status.success());
}

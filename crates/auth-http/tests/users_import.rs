//! `auth-http users import FILE` with hashes made by other implementations at test time
//! (Python's `bcrypt` package, Python's `hashlib` scrypt and PBKDF2), against a real user
//! database (SQLite, and a fresh PostgreSQL database): each imported account logs in with its
//! old password through the running server, and that login replaces the hash with a current
//! Argon2id one.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use auth_core::{EmailAddress, UserRepository};
use auth_postgres::testing::TestDatabase;
use auth_sqlite::{SqliteSettings, SqliteUserRepository};
use secrecy::ExposeSecret as _;

const PASSWORD: &str = "an imported passphrase";

/// The hashes of `PASSWORD` another system would hand over, made here by Python: bcrypt (the
/// `bcrypt` package), scrypt and PBKDF2-SHA256/512 (hashlib) written in PHC form.
fn foreign_hashes() -> Vec<(&'static str, String)> {
    const SCRIPT: &str = r#"
import base64, hashlib, os, sys
import bcrypt
pw = sys.argv[1].encode()
b64 = lambda b: base64.b64encode(b).decode().rstrip("=")
salt = os.urandom(16)
print(bcrypt.hashpw(pw, bcrypt.gensalt(rounds=4)).decode())
print("$scrypt$ln=10,r=8,p=1$%s$%s" % (b64(salt), b64(hashlib.scrypt(pw, salt=salt, n=1024, r=8, p=1, dklen=32))))
print("$pbkdf2-sha256$i=1000,l=32$%s$%s" % (b64(salt), b64(hashlib.pbkdf2_hmac("sha256", pw, salt, 1000, 32))))
print("$pbkdf2-sha512$i=1000,l=64$%s$%s" % (b64(salt), b64(hashlib.pbkdf2_hmac("sha512", pw, salt, 1000, 64))))
"#;
    let mut tried = Vec::new();
    for python in ["python3", "/usr/bin/python3"] {
        match Command::new(python).args(["-c", SCRIPT, PASSWORD]).output() {
            Ok(out) if out.status.success() => {
                let lines: Vec<String> = String::from_utf8(out.stdout)
                    .unwrap()
                    .lines()
                    .map(str::to_owned)
                    .collect();
                assert_eq!(lines.len(), 4, "{lines:?}");
                return ["bcrypt", "scrypt", "pbkdf2-sha256", "pbkdf2-sha512"]
                    .into_iter()
                    .zip(lines)
                    .collect();
            }
            Ok(out) => tried.push(format!(
                "{python}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )),
            Err(e) => tried.push(format!("{python}: {e}")),
        }
    }
    panic!(
        "this test needs Python 3 with the bcrypt package (Debian: apt-get install \
         python3-bcrypt; or pip install bcrypt), which `cargo xtask test` installs: {tried:?}"
    );
}

/// `auth-http ARGS` on the database `url`.
fn auth_http(dir: &Path, url: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_auth-http"));
    cmd.args(args)
        .current_dir(dir)
        .env_clear()
        .env("DATABASE_URL", url)
        .env("MAIL_DIR", dir.join("mail"))
        .env(
            "AUTH_SECRET",
            "an-import-test-secret-of-enough-bytes-0123456789",
        )
        .env("ARGON2_MEMORY_KIB", "1024")
        .env("ARGON2_ITERATIONS", "1")
        .env("LOG_FORMAT", "json")
        .env("RUST_LOG", "warn");
    cmd
}

fn import(dir: &Path, url: &str, lines: &[String]) -> Output {
    let file = dir.join("users.jsonl");
    std::fs::write(&file, lines.join("\n")).unwrap();
    auth_http(dir, url, &["users", "import", file.to_str().unwrap()])
        .output()
        .unwrap()
}

/// A running `auth-http serve`, stopped when dropped.
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `auth-http serve` on a free port; returns it and its base URL.
async fn serve(dir: &Path, database: &str) -> (Server, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = Server(
        auth_http(dir, database, &["serve"])
            .env("BIND_ADDR", format!("127.0.0.1:{port}"))
            .env("COOKIE_SECURE", "false")
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if reqwest::get(format!("{url}/health"))
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return (server, url);
        }
        assert!(Instant::now() < deadline, "the server did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn login(url: &str, email: &str, password: &str) -> u16 {
    reqwest::Client::new()
        .post(format!("{url}/login"))
        .json(&serde_json::json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imported_accounts_log_in_with_their_old_passwords_and_get_a_current_hash() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("auth.db").display());
    // The import creates the database file; it is opened only after.
    imports_and_logs_in(dir.path(), url, |dir| {
        let file = dir.join("auth.db");
        Box::pin(async move {
            let users = SqliteUserRepository::open(&SqliteSettings::file(file))
                .await
                .unwrap();
            Box::new(users) as Box<dyn UserRepository>
        })
    })
    .await;
}

/// The same against PostgreSQL (a fresh, migrated database, dropped afterwards).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imported_accounts_log_in_with_their_old_passwords_on_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDatabase::new().await;
    let url = db.url().expose_secret().to_owned();
    let users = db.repository();
    imports_and_logs_in(dir.path(), url, move |_| {
        Box::pin(async move { Box::new(users) as Box<dyn UserRepository> })
    })
    .await;
    db.cleanup().await.unwrap();
}

type Opened = std::pin::Pin<Box<dyn std::future::Future<Output = Box<dyn UserRepository>>>>;

/// Imports accounts with foreign hashes into the database `database` (which `open` opens,
/// once the import made it), then logs each in through a server on it.
async fn imports_and_logs_in(dir: &Path, database: String, open: impl FnOnce(&Path) -> Opened) {
    let hashes = foreign_hashes();
    let mut lines: Vec<String> = hashes
        .iter()
        .map(|(kind, hash)| {
            serde_json::json!({
                "email": format!("{kind}@Example.com"),
                "password_hash": hash,
                "verified": true,
                "created_at": "2020-01-02T03:04:05Z",
            })
            .to_string()
        })
        .collect();
    lines.push(
        serde_json::json!({"email": "pending@example.com", "password_hash": hashes[0].1})
            .to_string(),
    );
    lines.push(
        serde_json::json!({"email": "md5@example.com", "password_hash": "5f4dcc3b5aa765d61d8327deb882cf99", "verified": true})
            .to_string(),
    );
    lines.push("not json at all".to_owned());

    let out = import(dir, &database, &lines);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "two bad lines: exit 1");
    assert!(
        stdout.contains("5 imported, 2 skipped"),
        "{stdout}\n{stderr}"
    );
    assert!(
        stderr.contains("line 6:") && stderr.contains("line 7:"),
        "{stderr}"
    );
    for (_, hash) in &hashes {
        assert!(!stderr.contains(hash.as_str()) && !stdout.contains(hash.as_str()));
    }
    assert!(
        !stderr.contains("5f4dcc3b"),
        "a refused hash is not printed: {stderr}"
    );

    let users = open(dir).await;
    for (kind, hash) in &hashes {
        let email = EmailAddress::parse(&format!("{kind}@example.com")).unwrap();
        let stored = users.find_by_email(&email).await.unwrap().unwrap();
        assert_eq!(
            stored.password_hash.as_str(),
            hash,
            "{kind}: stored as given"
        );
        assert!(stored.user.is_verified(), "{kind}: verified as given");
    }
    let pending = EmailAddress::parse("pending@example.com").unwrap();
    assert!(!users
        .find_by_email(&pending)
        .await
        .unwrap()
        .unwrap()
        .user
        .is_verified());

    // Importing again: every address is taken now, nothing changes.
    let again = import(dir, &database, &lines[..1]);
    assert!(!again.status.success());

    let (server, url) = serve(dir, &database).await;
    for (kind, hash) in &hashes {
        let email = format!("{kind}@example.com");
        assert_eq!(login(&url, &email, "not the password").await, 401, "{kind}");
        let still = users
            .find_by_email(&EmailAddress::parse(&email).unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            still.password_hash.as_str(),
            hash,
            "{kind}: a wrong password rehashes nothing"
        );
        assert_eq!(login(&url, &email, PASSWORD).await, 200, "{kind}");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let now = users
                .find_by_email(&EmailAddress::parse(&email).unwrap())
                .await
                .unwrap()
                .unwrap();
            if now
                .password_hash
                .as_str()
                .starts_with("$argon2id$v=19$m=1024,t=1,")
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{kind}: not rehashed: {}",
                now.password_hash.as_str()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(
            login(&url, &email, PASSWORD).await,
            200,
            "{kind}: the new hash works"
        );
    }
    // An unverified import cannot log in until it verifies its address.
    assert_ne!(login(&url, "pending@example.com", PASSWORD).await, 200);
    drop(server);
}

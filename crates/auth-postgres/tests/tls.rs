//! TLS to PostgreSQL, against the local server: `sslmode=require` connects only over TLS and
//! verifies the certificate chain and the host name; without it connections are plain.
//!
//! The local server must have `ssl = on` (Debian's default, with its `ssl-cert-snakeoil`
//! certificate for `localhost`); the test reads which certificate it serves and trusts exactly
//! that one.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::str::FromStr;

use auth_core::{UserRepoError, UserRepository};
use auth_postgres::testing::TestDatabase;
use auth_postgres::{PgUserRepository, PostgresError, PostgresSettings};
use diesel::sql_types::Bool;
use diesel_async::RunQueryDsl;
use secrecy::{ExposeSecret, SecretString};

#[derive(diesel::QueryableByName)]
struct Encrypted {
    #[diesel(sql_type = Bool)]
    ssl: bool,
}

/// Whether the repository's connections are encrypted, as the server sees it.
async fn encrypted(repo: &PgUserRepository) -> bool {
    let mut conn = repo.pool().get().await.expect("a pooled connection");
    let rows: Vec<Encrypted> =
        diesel::sql_query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            .load(&mut conn)
            .await
            .expect("pg_stat_ssl");
    rows.into_iter().next().expect("a pg_stat_ssl row").ssl
}

/// `SHOW name` on the test database.
async fn show(repo: &PgUserRepository, name: &str) -> String {
    #[derive(diesel::QueryableByName)]
    struct Setting {
        #[diesel(sql_type = diesel::sql_types::Text)]
        setting: String,
    }
    let mut conn = repo.pool().get().await.expect("a pooled connection");
    let rows: Vec<Setting> = diesel::sql_query(format!(
        "SELECT setting FROM pg_settings WHERE name = '{name}'"
    ))
    .load(&mut conn)
    .await
    .expect("pg_settings");
    rows.into_iter().next().expect("a setting").setting
}

/// The test database's URL in libpq `key=value` form, with `host` and `sslmode` replaced.
fn url_with(db: &TestDatabase, host: &str, sslmode: &str) -> SecretString {
    let config = tokio_postgres::Config::from_str(db.url().expose_secret()).expect("test URL");
    let loopback = config.get_hosts().iter().all(|h| match h {
        tokio_postgres::config::Host::Tcp(name) => name == "127.0.0.1" || name == "localhost",
        tokio_postgres::config::Host::Unix(_) => false,
    });
    assert!(
        loopback,
        "the TLS tests need the local PostgreSQL on 127.0.0.1 (DATABASE_URL points elsewhere)"
    );
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let user = config.get_user().expect("a user in the test URL");
    let dbname = config.get_dbname().expect("a database in the test URL");
    SecretString::from(format!(
        "host={host} port={port} user={user} dbname={dbname} sslmode={sslmode}"
    ))
}

/// The certificate the local server presents, after checking that it has TLS at all.
async fn server_certificate(db: &TestDatabase) -> PathBuf {
    let repo = db.repository();
    assert_eq!(
        show(&repo, "ssl").await,
        "on",
        "the local PostgreSQL must have ssl = on for the TLS tests (Debian's default)"
    );
    PathBuf::from(show(&repo, "ssl_cert_file").await)
}

fn settings(url: SecretString, ca_file: Option<PathBuf>) -> PostgresSettings {
    PostgresSettings {
        ca_file,
        ..PostgresSettings::new(url)
    }
}

#[tokio::test]
async fn require_with_the_servers_ca_is_encrypted_and_plain_is_the_default() {
    let db = TestDatabase::new().await;
    let cert = server_certificate(&db).await;

    let tls =
        PgUserRepository::connect(&settings(url_with(&db, "localhost", "require"), Some(cert)))
            .unwrap();
    tls.ping().await.expect("a verified TLS connection");
    assert!(encrypted(&tls).await, "sslmode=require must encrypt");

    assert!(
        !encrypted(&db.repository()).await,
        "without sslmode the connection is plain"
    );
    let prefer =
        PgUserRepository::connect(&settings(url_with(&db, "localhost", "prefer"), None)).unwrap();
    assert!(
        !encrypted(&prefer).await,
        "prefer does not try an unverified TLS connection"
    );
    db.cleanup().await.unwrap();
}

#[tokio::test]
async fn require_refuses_an_untrusted_certificate_or_another_host_name() {
    let db = TestDatabase::new().await;
    let cert = server_certificate(&db).await;

    // The public web roots do not include the server's self-signed certificate.
    let untrusted =
        PgUserRepository::connect(&settings(url_with(&db, "localhost", "require"), None)).unwrap();
    let err = untrusted.ping().await.unwrap_err();
    assert!(matches!(err, UserRepoError::Unavailable(_)), "{err:?}");
    assert!(
        format!("{err:?}").contains("certificate"),
        "the cause names the certificate: {err:?}"
    );

    // The certificate is for `localhost`, not for the address 127.0.0.1.
    let wrong_name =
        PgUserRepository::connect(&settings(url_with(&db, "127.0.0.1", "require"), Some(cert)))
            .unwrap();
    let err = wrong_name.ping().await.unwrap_err();
    assert!(matches!(err, UserRepoError::Unavailable(_)), "{err:?}");
    db.cleanup().await.unwrap();
}

/// The error of building a pool (the pool itself has no `Debug`).
fn pool_error(settings: PostgresSettings) -> PostgresError {
    match settings.pool() {
        Ok(_) => panic!("the pool was built"),
        Err(e) => e,
    }
}

#[test]
fn unusable_tls_settings_are_refused_up_front() {
    let plain_url = SecretString::from("postgres://app@127.0.0.1:5432/auth");
    let err = pool_error(settings(plain_url, Some(PathBuf::from("/etc/hostname"))));
    assert!(
        matches!(err, PostgresError::InvalidSettings(_)),
        "a CA file without sslmode=require: {err:?}"
    );

    let tls_url = SecretString::from("postgres://app@localhost:5432/auth?sslmode=require");
    let err = pool_error(settings(
        tls_url.clone(),
        Some(PathBuf::from("/nonexistent/ca.pem")),
    ));
    assert!(matches!(err, PostgresError::Tls(_)), "{err:?}");
    let not_pem = std::env::current_exe().unwrap();
    let err = pool_error(settings(tls_url, Some(not_pem)));
    assert!(matches!(err, PostgresError::Tls(_)), "{err:?}");
}

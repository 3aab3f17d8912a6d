#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `TestDatabase`: created fresh, dropped afterwards (by `cleanup` or `Drop`), and loud when
//! PostgreSQL is missing.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use auth_core::UserRepository;
use auth_postgres::testing::{admin_url_from_env, TestDatabase, TestDatabaseError};
use diesel::sql_types::BigInt;
use diesel::QueryableByName;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use secrecy::{ExposeSecret, SecretString};

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

async fn database_exists(name: &str) -> bool {
    let mut admin = AsyncPgConnection::establish(admin_url_from_env().expose_secret())
        .await
        .unwrap();
    diesel::sql_query("SELECT count(*) AS n FROM pg_database WHERE datname = $1")
        .bind::<diesel::sql_types::Text, _>(name)
        .get_result::<Count>(&mut admin)
        .await
        .unwrap()
        .n
        == 1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleanup_drops_the_database() {
    let db = TestDatabase::create().await.unwrap();
    let name = db.name().to_owned();
    assert!(name.starts_with("secureauth_test_"));
    assert!(database_exists(&name).await);
    db.repository().ping().await.unwrap();

    db.cleanup().await.unwrap();
    assert!(!database_exists(&name).await);
}

#[tokio::test]
async fn drop_drops_the_database_even_with_sessions_still_open() {
    let db = TestDatabase::new().await;
    let name = db.name().to_owned();
    let repo = db.repository();
    repo.ping().await.unwrap();
    // A session the test forgot to close: `WITH (FORCE)` must end it.
    let leaked = AsyncPgConnection::establish(db.url().expose_secret())
        .await
        .unwrap();

    drop(db);
    assert!(!database_exists(&name).await);
    drop(leaked);
}

#[tokio::test]
async fn each_test_database_is_distinct_and_migrated() {
    let a = TestDatabase::new().await;
    let b = TestDatabase::new().await;
    assert_ne!(a.name(), b.name());
    assert_ne!(a.url().expose_secret(), b.url().expose_secret());
    let found = a
        .repository()
        .find_by_email(&auth_core::EmailAddress::parse("nobody@example.com").unwrap())
        .await
        .unwrap();
    assert!(found.is_none());
    a.cleanup().await.unwrap();
    b.cleanup().await.unwrap();
}

#[tokio::test]
async fn unreachable_server_fails_fast_with_a_message_naming_database_url() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let url = SecretString::from(format!("postgres://postgres:sekrit@127.0.0.1:{port}/test"));
    let start = Instant::now();
    let error = TestDatabase::create_with(&url, true).await.unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(5));
    assert!(
        matches!(error, TestDatabaseError::Unreachable { .. }),
        "{error:?}"
    );
    let report = error.report();
    assert!(report.contains("DATABASE_URL"), "{report}");
    assert!(report.contains(&format!("127.0.0.1:{port}")), "{report}");
    assert!(!report.contains("sekrit"), "{report}");
    assert!(!format!("{error:?}").contains("sekrit"));
}

#[tokio::test]
async fn malformed_url_is_reported_as_such() {
    let url = SecretString::from("postgres://postgres@127.0.0.1:notaport/test");
    let error = TestDatabase::create_with(&url, true).await.unwrap_err();
    assert!(
        matches!(error, TestDatabaseError::InvalidUrl { .. }),
        "{error:?}"
    );
    assert!(error.report().contains("DATABASE_URL"));
}

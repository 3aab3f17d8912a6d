#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! What PostgreSQL itself guarantees, beyond the port contract: the database, not the
//! application, enforces case-insensitive uniqueness, and errors are told apart correctly.

use auth_core::{EmailAddress, NewUser, PasswordHash, UserId, UserRepoError, UserRepository};
use auth_postgres::testing::TestDatabase;
use chrono::{DateTime, Utc};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use secrecy::ExposeSecret;

fn now_micros() -> DateTime<Utc> {
    DateTime::from_timestamp_micros(Utc::now().timestamp_micros()).unwrap()
}

fn new_user(email: &str) -> NewUser {
    NewUser {
        id: UserId::from_uuid(uuid::Uuid::new_v4()),
        email: EmailAddress::parse(email).unwrap(),
        password_hash: PasswordHash::new("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA"),
        created_at: now_micros(),
        language: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_unique_index_ignores_case_even_for_rows_written_around_the_domain() {
    let db = TestDatabase::new().await;
    let repo = db.repository();
    let mut conn = AsyncPgConnection::establish(db.url().expose_secret())
        .await
        .unwrap();
    // A mixed-case row, as a manual fix or an import might write it.
    diesel::sql_query(
        "INSERT INTO users (id, email, password_hash, created_at, updated_at) \
         VALUES (gen_random_uuid(), 'Grace.Hopper@Example.COM', 'h', now(), now())",
    )
    .execute(&mut conn)
    .await
    .unwrap();

    let outcome = repo.create(&new_user("grace.hopper@example.com")).await;
    assert!(
        matches!(outcome, Err(UserRepoError::Duplicate)),
        "{outcome:?}"
    );
    let raw = diesel::sql_query(
        "INSERT INTO users (id, email, password_hash, created_at, updated_at) \
         VALUES (gen_random_uuid(), 'GRACE.HOPPER@example.com', 'h', now(), now())",
    )
    .execute(&mut conn)
    .await;
    assert!(raw.is_err(), "the database accepted a second casing");

    // The lookup uses the same expression as the index, and normalises what it reads.
    let found = repo
        .find_by_email(&EmailAddress::parse("grace.hopper@example.com").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.user.email.as_str(), "grace.hopper@example.com");
    drop(conn);
    db.cleanup().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reused_id_is_not_reported_as_a_taken_address() {
    let db = TestDatabase::new().await;
    let repo = db.repository();
    let first = new_user("ada@example.com");
    repo.create(&first).await.unwrap();
    let same_id = NewUser {
        email: EmailAddress::parse("someone.else@example.com").unwrap(),
        ..first
    };
    let outcome = repo.create(&same_id).await;
    assert!(
        matches!(outcome, Err(UserRepoError::Other(_))),
        "{outcome:?}"
    );
    db.cleanup().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timestamps_keep_microseconds_and_come_back_in_utc() {
    let db = TestDatabase::new().await;
    let repo = db.repository();
    let mut user = new_user("micro@example.com");
    user.created_at = DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap();
    let created = repo.create(&user).await.unwrap();
    assert_eq!(created.created_at, user.created_at);
    let found = repo.find_by_id(user.id).await.unwrap().unwrap();
    assert_eq!(found.user.created_at.timestamp_subsec_micros(), 123_456);
    db.cleanup().await.unwrap();
}

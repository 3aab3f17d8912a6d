//! The shared `UserRepository` contract, against a fresh database file and in memory.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use auth_sqlite::{SqliteSettings, SqliteUserRepository};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_repository_meets_the_user_repository_contract() {
    let dir = tempfile::tempdir().unwrap();
    let settings = SqliteSettings::file(dir.path().join("nested/dir/auth.db"));
    let repo = Arc::new(SqliteUserRepository::open(&settings).await.unwrap());
    auth_testkit::contracts::user_repository::run(repo.clone()).await;
    // Twice on the same database: the suite must not depend on an empty store.
    auth_testkit::contracts::user_repository::run(repo).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_repository_meets_the_user_repository_contract() {
    let settings = SqliteSettings::from_url("sqlite::memory:").unwrap();
    let repo = Arc::new(SqliteUserRepository::open(&settings).await.unwrap());
    auth_testkit::contracts::user_repository::run(repo).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_repository_writes_each_change_and_its_mail_in_one_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let settings = SqliteSettings::file(dir.path().join("auth.db"));
    let repo = SqliteUserRepository::open(&settings).await.unwrap();
    let outbox = Arc::new(repo.outbox());
    auth_testkit::contracts::mail_with_changes::run(Arc::new(repo.clone()), outbox.clone()).await;
    // Twice on the same database: the suite sweeps what it queued.
    auth_testkit::contracts::mail_with_changes::run(Arc::new(repo), outbox).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_totp_store_meets_the_totp_store_contract() {
    let dir = tempfile::tempdir().unwrap();
    let settings = SqliteSettings::file(dir.path().join("auth.db"));
    let repo = SqliteUserRepository::open(&settings).await.unwrap();
    let (store, users) = (Arc::new(repo.totp()), Arc::new(repo));
    auth_testkit::contracts::totp_store::run(store.clone(), users.clone()).await;
    // Twice on the same database: the suite must not depend on an empty store.
    auth_testkit::contracts::totp_store::run(store.clone(), users.clone()).await;
    auth_testkit::contracts::totp_store::deleting_the_account_deletes_its_factors(
        store.as_ref(),
        users.as_ref(),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_security_events_meet_the_security_events_contract() {
    let dir = tempfile::tempdir().unwrap();
    let settings = SqliteSettings::file(dir.path().join("auth.db"));
    let store = SqliteUserRepository::open(&settings)
        .await
        .unwrap()
        .security_events();
    auth_testkit::contracts::security_events::run(&store).await;
    // Twice on the same database: the suite must not depend on an empty store.
    auth_testkit::contracts::security_events::run(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_passkey_store_meets_the_passkey_store_contract() {
    let dir = tempfile::tempdir().unwrap();
    let settings = SqliteSettings::file(dir.path().join("auth.db"));
    let repo = SqliteUserRepository::open(&settings).await.unwrap();
    let (store, users) = (Arc::new(repo.passkeys()), Arc::new(repo));
    auth_testkit::contracts::passkeys::run_store(store.clone(), users.clone()).await;
    // Twice on the same database: the suite must not depend on an empty store.
    auth_testkit::contracts::passkeys::run_store(store.clone(), users.clone()).await;
    auth_testkit::contracts::passkeys::deleting_the_account_deletes_its_passkeys(
        store.as_ref(),
        users.as_ref(),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_webhooks_meet_the_webhook_store_contract() {
    let dir = tempfile::tempdir().unwrap();
    let settings = SqliteSettings::file(dir.path().join("auth.db"));
    let store = Arc::new(
        SqliteUserRepository::open(&settings)
            .await
            .unwrap()
            .webhooks(),
    );
    auth_testkit::contracts::webhooks::run(store.clone()).await;
    // Twice on the same database: the suite leaves the store empty.
    auth_testkit::contracts::webhooks::run(store).await;
}

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The shared `UserRepository` contract, against a fresh PostgreSQL database.

use std::sync::Arc;

use auth_postgres::testing::TestDatabase;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_repository_meets_the_user_repository_contract() {
    let db = TestDatabase::new().await;
    auth_testkit::contracts::user_repository::run(Arc::new(db.repository())).await;
    // Twice on the same database: the suite must not depend on an empty store.
    auth_testkit::contracts::user_repository::run(Arc::new(db.repository())).await;
    db.cleanup().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_outbox_meets_the_outbox_contract() {
    let db = TestDatabase::new().await;
    auth_testkit::contracts::outbox::run(Arc::new(db.repository().outbox())).await;
    // Twice on the same database: the suite leaves the outbox empty.
    auth_testkit::contracts::outbox::run(Arc::new(db.repository().outbox())).await;
    db.cleanup().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_repository_writes_each_change_and_its_mail_in_one_transaction() {
    let db = TestDatabase::new().await;
    let repo = db.repository();
    let outbox = Arc::new(repo.outbox());
    auth_testkit::contracts::mail_with_changes::run(Arc::new(repo.clone()), outbox.clone()).await;
    // Twice on the same database: the suite sweeps what it queued.
    auth_testkit::contracts::mail_with_changes::run(Arc::new(repo), outbox).await;
    db.cleanup().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_totp_store_meets_the_totp_store_contract() {
    let db = TestDatabase::new().await;
    let repo = db.repository();
    let (store, users) = (Arc::new(repo.totp()), Arc::new(repo));
    auth_testkit::contracts::totp_store::run(store.clone(), users.clone()).await;
    // Twice on the same database: the suite must not depend on an empty store.
    auth_testkit::contracts::totp_store::run(store.clone(), users.clone()).await;
    auth_testkit::contracts::totp_store::deleting_the_account_deletes_its_factors(
        store.as_ref(),
        users.as_ref(),
    )
    .await;
    db.cleanup().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_security_events_meet_the_security_events_contract() {
    let db = TestDatabase::new().await;
    let store = db.repository().security_events();
    auth_testkit::contracts::security_events::run(&store).await;
    // Twice on the same database: the suite must not depend on an empty store.
    auth_testkit::contracts::security_events::run(&store).await;
    db.cleanup().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_passkey_store_meets_the_passkey_store_contract() {
    let db = TestDatabase::new().await;
    let repo = db.repository();
    let (store, users) = (Arc::new(repo.passkeys()), Arc::new(repo));
    auth_testkit::contracts::passkeys::run_store(store.clone(), users.clone()).await;
    // Twice on the same database: the suite must not depend on an empty store.
    auth_testkit::contracts::passkeys::run_store(store.clone(), users.clone()).await;
    auth_testkit::contracts::passkeys::deleting_the_account_deletes_its_passkeys(
        store.as_ref(),
        users.as_ref(),
    )
    .await;
    db.cleanup().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_webhooks_meet_the_webhook_store_contract() {
    let db = TestDatabase::new().await;
    auth_testkit::contracts::webhooks::run(Arc::new(db.repository().webhooks())).await;
    // Twice on the same database: the suite leaves the store empty.
    auth_testkit::contracts::webhooks::run(Arc::new(db.repository().webhooks())).await;
    db.cleanup().await.unwrap();
}

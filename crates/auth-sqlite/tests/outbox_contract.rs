//! The shared `OutboxStore` contract, against a fresh database file and in memory.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use auth_sqlite::{SqliteSettings, SqliteUserRepository};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_outbox_meets_the_outbox_contract() {
    let dir = tempfile::tempdir().unwrap();
    let settings = SqliteSettings::file(dir.path().join("nested/dir/auth.db"));
    let repo = SqliteUserRepository::open(&settings).await.unwrap();
    let outbox = Arc::new(repo.outbox());
    auth_testkit::contracts::outbox::run(outbox.clone()).await;
    // Twice on the same database: the suite must not depend on a fresh store.
    auth_testkit::contracts::outbox::run(outbox).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_outbox_meets_the_outbox_contract() {
    let settings = SqliteSettings::from_url("sqlite::memory:").unwrap();
    let repo = SqliteUserRepository::open(&settings).await.unwrap();
    auth_testkit::contracts::outbox::run(Arc::new(repo.outbox())).await;
}

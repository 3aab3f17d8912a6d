//! The shared port contract suites, against the Redis at `REDIS_URL`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use common::TestPrefix;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_store_contract() {
    let prefix = TestPrefix::new();
    let store = prefix.store().await;
    auth_testkit::contracts::session_store::run(Arc::new(store)).await;
    assert!(
        prefix.keys().await.is_empty(),
        "the suite revokes or expires everything it creates, index entries included"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otp_store_contract() {
    let prefix = TestPrefix::new();
    let store = prefix.store().await;
    auth_testkit::contracts::otp_store::run(Arc::new(store)).await;
}

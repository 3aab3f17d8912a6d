//! The shared port contract suites, against the Redis at `REDIS_URL`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use common::TestPrefix;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_cap_contract() {
    for cap in [2, 5] {
        let prefix = TestPrefix::new();
        let mut settings = prefix.settings();
        settings.max_sessions_per_user = cap;
        let store = settings.store().unwrap();
        auth_testkit::contracts::session_store::run_capped(Arc::new(store), cap).await;
        assert!(
            prefix.keys().await.is_empty(),
            "nothing is left behind, index entries included: {:?}",
            prefix.keys().await
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_store_contract() {
    let prefix = TestPrefix::new();
    let store = prefix.store().await;
    auth_testkit::contracts::session_store::run(Arc::new(store)).await;
    let (epochs, rest): (Vec<String>, Vec<String>) = prefix
        .keys()
        .await
        .into_iter()
        .partition(|k| k.contains(":revocation-epoch:") || k.contains(":devices:"));
    assert!(
        rest.is_empty(),
        "the suite revokes or expires everything it creates, index entries included: {rest:?}"
    );
    // Revocation epochs and the devices seen outlive the sessions on purpose, but not for
    // ever.
    let mut raw = prefix.raw().await;
    assert!(!epochs.is_empty());
    for key in epochs {
        let ttl: i64 = redis::AsyncCommands::pttl(&mut raw, &key).await.unwrap();
        assert!(ttl > 0, "{key} has no expiry");
        let _: () = redis::AsyncCommands::del(&mut raw, &key).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otp_store_contract() {
    let prefix = TestPrefix::new();
    let store = prefix.store().await;
    auth_testkit::contracts::otp_store::run(Arc::new(store)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limiter_contract() {
    let prefix = TestPrefix::new();
    auth_testkit::contracts::rate_limiter::run(Arc::new(prefix.store().await)).await;
    // Two stores with their own pools on one Redis and prefix: two instances of the service.
    auth_testkit::contracts::rate_limiter::shared_by_instances(
        Arc::new(prefix.store().await),
        Arc::new(prefix.store().await),
    )
    .await;
    let keys = prefix.keys().await;
    assert!(!keys.is_empty());
    for key in keys {
        assert!(key.contains(":rate:"), "{key}");
        assert!(
            !key.contains("example.com"),
            "no address in a key name: {key}"
        );
        let ttl: i64 = redis::cmd("PTTL")
            .arg(&key)
            .query_async(&mut prefix.raw().await)
            .await
            .unwrap();
        assert!(ttl > 0, "every budget key expires: {key}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passkey_challenge_store_contract() {
    let prefix = TestPrefix::new();
    let store = prefix.store().await;
    auth_testkit::contracts::passkeys::run_challenges(Arc::new(store)).await;
    assert!(
        prefix.keys().await.is_empty(),
        "every ceremony is taken or expired: {:?}",
        prefix.keys().await
    );
}

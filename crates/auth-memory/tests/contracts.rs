//! The shared port contract suites, and expiry without reads.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use auth_core::{
    ClientInfo, EmailAddress, OtpMac, OtpPurpose, OtpStore, Session, SessionId, SessionStore,
    SessionToken, StoredOtp, User, UserId,
};
use auth_memory::{MemorySettings, MemoryStore, MemoryTotpStore, MemoryUserRepository};
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_cap_contract() {
    for cap in [2, 5] {
        let store = MemoryStore::with_settings(&MemorySettings {
            max_sessions_per_user: cap,
            ..MemorySettings::default()
        })
        .unwrap();
        auth_testkit::contracts::session_store::run_capped(Arc::new(store.clone()), cap).await;
        assert_eq!(store.stats().sessions, 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_store_contract() {
    let store = MemoryStore::new().unwrap();
    auth_testkit::contracts::session_store::run(Arc::new(store.clone())).await;
    eventually("the sweeper to empty the store", || async {
        store.stats().total() == 0
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otp_store_contract() {
    let store = MemoryStore::new().unwrap();
    auth_testkit::contracts::otp_store::run(Arc::new(store)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn totp_store_contract() {
    let totp = MemoryTotpStore::new();
    let users = Arc::new(MemoryUserRepository::with_totp(&totp));
    let store = Arc::new(totp);
    auth_testkit::contracts::totp_store::run(store.clone(), users.clone()).await;
    // Twice on the same store: the suite must not depend on an empty store.
    auth_testkit::contracts::totp_store::run(store.clone(), users.clone()).await;
    auth_testkit::contracts::totp_store::deleting_the_account_deletes_its_factors(
        store.as_ref(),
        users.as_ref(),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_entries_are_freed_without_any_read() {
    let store = MemoryStore::with_settings(&MemorySettings {
        sweep_interval: Duration::from_millis(50),
        ..MemorySettings::default()
    })
    .unwrap();
    let ttl = Duration::from_millis(300);
    let user = user();
    for _ in 0..3 {
        store.insert(&session_for(&user), ttl).await.unwrap();
    }
    let email = EmailAddress::parse("freed@example.com").unwrap();
    let otp = StoredOtp {
        mac: OtpMac([7; 32]),
        expires_at: chrono::Utc::now(),
        pending_password: None,
        requested_by: None,
    };
    store
        .put(OtpPurpose::VerifyEmail, &email, otp, 3, ttl)
        .await
        .unwrap();
    store
        .claim_send_slot(OtpPurpose::VerifyEmail, &email, ttl)
        .await
        .unwrap();
    let stats = store.stats();
    assert_eq!(
        (
            stats.sessions,
            stats.indexed_users,
            stats.codes,
            stats.cooldowns
        ),
        (3, 1, 1, 1)
    );

    // Only `stats()` from here on: no get, list, record_attempt or claim touches the entries.
    eventually("every expired entry to be swept", || async {
        store.stats().total() == 0
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_entries_survive_the_sweeper() {
    let store = MemoryStore::with_settings(&MemorySettings {
        sweep_interval: Duration::from_millis(10),
        ..MemorySettings::default()
    })
    .unwrap();
    let s = session_for(&user());
    store.insert(&s, Duration::from_secs(600)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(store.stats().sessions, 1);
    assert_eq!(store.get(&s.token_hash).await.unwrap(), Some(s));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_repository_contract() {
    let repo = Arc::new(MemoryUserRepository::new());
    auth_testkit::contracts::user_repository::run(repo.clone()).await;
    // Twice on the same repository: the suite must not depend on an empty store.
    auth_testkit::contracts::user_repository::run(repo).await;
}

#[tokio::test]
async fn clones_share_data_and_debug_shows_no_address() {
    let a = MemoryStore::new().unwrap();
    let b = a.clone();
    let s = session_for(&user());
    a.insert(&s, Duration::from_secs(60)).await.unwrap();
    assert!(b.get(&s.token_hash).await.unwrap().is_some());
    let debug = format!("{b:?}");
    assert!(!debug.contains("example.com"), "{debug}");
}

// --- helpers ---

async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if check().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn user() -> User {
    let now = chrono::Utc::now();
    let id = Uuid::new_v4();
    User {
        id: UserId::from_uuid(id),
        email: EmailAddress::parse(&format!("m.{}@example.com", id.simple())).unwrap(),
        verified_at: Some(now),
        created_at: now,
        updated_at: now,
    }
}

fn session_for(user: &User) -> Session {
    let now = chrono::Utc::now();
    let mut bytes = [0u8; 32];
    bytes[..16].copy_from_slice(Uuid::new_v4().as_bytes());
    Session {
        passkey: None,
        id: SessionId::from_uuid(Uuid::new_v4()),
        token_hash: SessionToken::from_bytes(bytes).hash(),
        user: user.clone(),
        created_at: now,
        expires_at: now + chrono::Duration::hours(1),
        last_seen_at: now,
        client: ClientInfo::default(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limiter_contract() {
    let store = MemoryStore::new().unwrap();
    auth_testkit::contracts::rate_limiter::run(Arc::new(store.clone())).await;
    auth_testkit::contracts::rate_limiter::shared_by_instances(
        Arc::new(store.clone()),
        Arc::new(store),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbox_contract() {
    let outbox = Arc::new(auth_memory::MemoryOutbox::new());
    auth_testkit::contracts::outbox::run(outbox.clone()).await;
    // Twice on the same outbox: the suite leaves it empty.
    auth_testkit::contracts::outbox::run(outbox).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_events_contract() {
    let store = auth_memory::MemorySecurityEvents::new();
    auth_testkit::contracts::security_events::run(&store).await;
    // Twice on the same store: the suite must not depend on an empty store.
    auth_testkit::contracts::security_events::run(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passkey_store_contract() {
    let passkeys = auth_memory::MemoryPasskeyStore::new();
    let users = Arc::new(MemoryUserRepository::new().also_forgetting_passkeys(&passkeys));
    let store = Arc::new(passkeys);
    auth_testkit::contracts::passkeys::run_store(store.clone(), users.clone()).await;
    auth_testkit::contracts::passkeys::deleting_the_account_deletes_its_passkeys(
        store.as_ref(),
        users.as_ref(),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passkey_challenge_store_contract() {
    let store = Arc::new(auth_memory::MemoryPasskeyChallenges::new());
    auth_testkit::contracts::passkeys::run_challenges(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_store_contract() {
    let store = Arc::new(auth_memory::MemoryWebhooks::new());
    auth_testkit::contracts::webhooks::run(store.clone()).await;
    // Twice on the same store: the suite leaves it empty.
    auth_testkit::contracts::webhooks::run(store).await;
}

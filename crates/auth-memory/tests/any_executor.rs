//! Every in-process port works without a Tokio runtime: built on a plain thread and driven by
//! `futures::executor::block_on`. (No test here is a `#[tokio::test]`, and nothing enters a
//! runtime, so a hidden `tokio::spawn` or Tokio timer would panic.)

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use auth_argon2::{Argon2Hasher, Argon2Settings};
use auth_core::{
    AuthConfig, AuthService, ClientInfo, EmailAddress, OtpSecret, PasswordAttempt, PasswordPolicy,
    Quota, RateDecision, RateKey, RateLimiter, RateSubject, Session, SessionId, SessionStore,
    SessionToken, User, UserId,
};
use auth_memory::{CaptureMailer, InProcessKit, MemorySettings, MemoryStore};
use futures::executor::block_on;
use secrecy::SecretString;
use uuid::Uuid;

fn assert_no_runtime() {
    assert!(
        tokio::runtime::Handle::try_current().is_err(),
        "this test must run outside any Tokio runtime"
    );
}

#[test]
fn memory_store_is_built_and_used_outside_a_runtime() {
    assert_no_runtime();
    let store = MemoryStore::new().unwrap();
    let session = session_for(&user());
    block_on(store.insert(&session, Duration::from_secs(60))).unwrap();
    assert_eq!(
        block_on(store.get(&session.token_hash)).unwrap(),
        Some(session)
    );
}

#[test]
fn the_sweeper_frees_expired_entries_without_a_runtime() {
    assert_no_runtime();
    let store = MemoryStore::with_settings(&MemorySettings {
        sweep_interval: Duration::from_millis(20),
        ..MemorySettings::default()
    })
    .unwrap();
    block_on(store.insert(&session_for(&user()), Duration::from_millis(100))).unwrap();
    assert_eq!(store.stats().sessions, 1);
    // Only `stats()` from here on: nothing reads the entry, so only the sweeper can free it.
    let deadline = Instant::now() + Duration::from_secs(10);
    while store.stats().total() != 0 {
        assert!(Instant::now() < deadline, "the sweeper never ran");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn rate_limiter_works_outside_a_runtime() {
    assert_no_runtime();
    let store = MemoryStore::new().unwrap();
    let key = RateKey {
        bucket: "any-executor",
        subject: RateSubject::Email(EmailAddress::parse("limited@example.com").unwrap()),
    };
    let quota = Quota {
        limit: 2,
        period: Duration::from_secs(60),
    };
    let decisions: Vec<RateDecision> = (0..3)
        .map(|_| block_on(store.acquire(&key, quota)).unwrap())
        .collect();
    assert!(matches!(decisions[0], RateDecision::Allowed));
    assert!(matches!(decisions[1], RateDecision::Allowed));
    assert!(matches!(decisions[2], RateDecision::Limited { .. }));
}

/// The whole kit, with the real Argon2id hasher: signup, the code from the capture mailer,
/// verification, login and authentication, on `block_on` alone.
#[test]
fn the_kit_runs_a_full_account_flow_on_block_on() {
    assert_no_runtime();
    let mail = CaptureMailer::new();
    // Cheap Argon2 parameters: this test is about executors, not strength.
    let hasher = Argon2Hasher::new(Argon2Settings {
        memory_kib: 64,
        iterations: 1,
        ..Argon2Settings::with_concurrency(1)
    })
    .unwrap();
    let kit = InProcessKit::with_hasher(Arc::new(mail.clone()), Arc::new(hasher)).unwrap();
    let service = AuthService::new(
        kit.auth_ports(),
        AuthConfig::default(),
        OtpSecret::new(vec![9u8; 32].into_boxed_slice().into()).unwrap(),
    );
    let client = ClientInfo::default();

    let email = EmailAddress::parse("ada@example.com").unwrap();
    let secret = "correct horse battery staple";
    let password = PasswordPolicy::default()
        .parse(SecretString::from(secret), &email)
        .unwrap();
    block_on(service.signup(email.clone(), password, &client)).unwrap();
    assert_eq!(kit.users().len(), 1);

    let code = mail
        .last_code(&email)
        .expect("a verification code was mailed");
    let verified = block_on(service.verify_otp(&email, &code, &client)).unwrap();
    assert!(verified.is_verified());

    let attempt = PasswordAttempt::parse(SecretString::from(secret)).unwrap();
    let login = block_on(service.login(&email, &attempt, client)).unwrap();
    let session = block_on(service.authenticate(&login.token)).unwrap();
    assert_eq!(session.user.id, verified.id);
    assert_eq!(kit.store().stats().sessions, 1);
}

#[test]
fn the_default_kit_hashes_with_argon2_on_block_on() {
    assert_no_runtime();
    let (kit, _mail) = InProcessKit::capturing().unwrap();
    let hasher = kit.ports().hasher;
    let password = SecretString::from("correct horse battery staple");
    let hash = block_on(hasher.hash(&password)).unwrap();
    assert!(hash.as_str().starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
    assert_eq!(
        block_on(hasher.verify(&password, &hash)).unwrap(),
        auth_core::PasswordCheck::Match
    );
}

// --- helpers ---

fn user() -> User {
    let now = chrono::Utc::now();
    let id = Uuid::new_v4();
    User {
        id: UserId::from_uuid(id),
        email: EmailAddress::parse(&format!("x.{}@example.com", id.simple())).unwrap(),
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

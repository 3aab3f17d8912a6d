//! Contract suites of [`PasskeyStore`] and [`PasskeyChallengeStore`]: every rule their
//! documentation states.
//!
//! Store-agnostic, no empty store needed: every check makes its own accounts through `users`,
//! credential ids and keys, so the suites run on a shared database and twice in a row.
//! Timestamps are whole microseconds. The race checks spawn tokio tasks (call them from a
//! multi-threaded runtime). Each check panics with a message naming the port.

use std::sync::Arc;

use auth_core::{
    EmailAddress, NewUser, PasskeyChallengeStore, PasskeyId, PasskeyName, PasskeyStore,
    PasskeyStoreError, PasswordHash, StoredPasskey, TokenHash, UserId, UserRepository,
};
use chrono::{DateTime, Duration, Utc};
use rand::RngCore;
use tokio::task::JoinSet;
use uuid::Uuid;

/// Concurrent callers in the race checks.
pub const RACERS: usize = 16;

/// Runs every check of [`PasskeyStore`].
pub async fn run_store(store: Arc<dyn PasskeyStore>, users: Arc<dyn UserRepository>) {
    let (s, u) = (store.as_ref(), users.as_ref());
    a_passkey_round_trips_and_lists_oldest_first(s, u).await;
    a_credential_is_registered_to_one_account_only(s, u).await;
    exactly_one_parallel_insert_of_a_credential_wins(&store, u).await;
    rename_and_delete_touch_only_the_owners_passkey(s, u).await;
    record_use_is_a_compare_and_set_on_the_counter(s, u).await;
    exactly_one_parallel_use_of_a_counter_wins(&store, u).await;
}

/// Runs every check of [`PasskeyChallengeStore`].
pub async fn run_challenges(store: Arc<dyn PasskeyChallengeStore>) {
    a_ceremony_is_taken_once(store.as_ref()).await;
    an_expired_ceremony_is_gone(store.as_ref()).await;
    exactly_one_parallel_take_wins(&store).await;
}

/// A stored passkey comes back exactly, by user and by credential id.
pub async fn a_passkey_round_trips_and_lists_oldest_first(
    store: &dyn PasskeyStore,
    users: &dyn UserRepository,
) {
    let user = account(users).await;
    let first = passkey(user, now() - Duration::seconds(10));
    let second = passkey(user, now());
    store.insert(&second).await.unwrap();
    store.insert(&first).await.unwrap();
    let listed = store.list(user).await.unwrap();
    assert_eq!(
        listed,
        vec![first.clone(), second.clone()],
        "PasskeyStore contract: list gives the user's passkeys, oldest first, exactly as stored"
    );
    assert_eq!(
        store
            .find_by_credential_id(&first.credential_id)
            .await
            .unwrap(),
        Some(first),
        "PasskeyStore contract: find_by_credential_id finds the passkey"
    );
    assert_eq!(
        store.find_by_credential_id(&bytes(40)).await.unwrap(),
        None,
        "PasskeyStore contract: an unknown credential id is None"
    );
    let other = account(users).await;
    assert!(
        store.list(other).await.unwrap().is_empty(),
        "PasskeyStore contract: another user's list is empty"
    );
}

/// A credential id stored for one account cannot be stored again, for it or any other.
pub async fn a_credential_is_registered_to_one_account_only(
    store: &dyn PasskeyStore,
    users: &dyn UserRepository,
) {
    let (alice, mallory) = (account(users).await, account(users).await);
    let original = passkey(alice, now());
    store.insert(&original).await.unwrap();
    for owner in [alice, mallory] {
        let mut copy = passkey(owner, now());
        copy.credential_id = original.credential_id.clone();
        assert!(
            matches!(store.insert(&copy).await, Err(PasskeyStoreError::Duplicate)),
            "PasskeyStore contract: a credential id stored already is Duplicate"
        );
    }
    assert!(store.list(mallory).await.unwrap().is_empty());
    assert_eq!(store.list(alice).await.unwrap(), vec![original]);
}

/// Of parallel inserts of one credential id for different accounts, exactly one succeeds.
pub async fn exactly_one_parallel_insert_of_a_credential_wins(
    store: &Arc<dyn PasskeyStore>,
    users: &dyn UserRepository,
) {
    let credential_id = bytes(32);
    let mut racers = JoinSet::new();
    for _ in 0..RACERS {
        let mut p = passkey(account(users).await, now());
        p.credential_id = credential_id.clone();
        let store = Arc::clone(store);
        racers.spawn(async move { store.insert(&p).await.is_ok() });
    }
    let wins = racers.join_all().await.into_iter().filter(|w| *w).count();
    assert_eq!(
        wins, 1,
        "PasskeyStore contract: exactly one parallel insert of a credential id wins"
    );
}

/// Rename and delete need the owner: another account's id is `false` and changes nothing.
pub async fn rename_and_delete_touch_only_the_owners_passkey(
    store: &dyn PasskeyStore,
    users: &dyn UserRepository,
) {
    let (alice, mallory) = (account(users).await, account(users).await);
    let p = passkey(alice, now());
    store.insert(&p).await.unwrap();
    let evil = PasskeyName::parse("mine now").unwrap();
    assert!(
        !store.rename(mallory, p.id, &evil).await.unwrap(),
        "PasskeyStore contract: renaming another account's passkey is false"
    );
    assert!(
        !store.delete(mallory, p.id).await.unwrap(),
        "PasskeyStore contract: deleting another account's passkey is false"
    );
    assert_eq!(store.list(alice).await.unwrap(), vec![p.clone()]);
    let name = PasskeyName::parse("work laptop").unwrap();
    assert!(store.rename(alice, p.id, &name).await.unwrap());
    assert_eq!(store.list(alice).await.unwrap()[0].name, name);
    assert!(store.delete(alice, p.id).await.unwrap());
    assert!(
        !store.delete(alice, p.id).await.unwrap(),
        "PasskeyStore contract: deleting twice is false the second time"
    );
    assert!(store.list(alice).await.unwrap().is_empty());
    assert!(!store
        .rename(alice, PasskeyId::from_uuid(Uuid::new_v4()), &name)
        .await
        .unwrap());
}

/// `record_use` writes counter, credential and time only when the counter is the expected one.
pub async fn record_use_is_a_compare_and_set_on_the_counter(
    store: &dyn PasskeyStore,
    users: &dyn UserRepository,
) {
    let user = account(users).await;
    let mut p = passkey(user, now());
    p.sign_count = 3;
    store.insert(&p).await.unwrap();
    let at = now();
    assert!(
        !store.record_use(p.id, 2, 9, b"changed", at).await.unwrap(),
        "PasskeyStore contract: record_use with a stale counter is false"
    );
    assert_eq!(store.list(user).await.unwrap(), vec![p.clone()]);
    assert!(store.record_use(p.id, 3, 4, b"updated", at).await.unwrap());
    let stored = store
        .find_by_credential_id(&p.credential_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.sign_count, 4);
    assert_eq!(stored.credential, b"updated".to_vec());
    assert_eq!(stored.last_used_at, Some(at));
    assert!(
        !store
            .record_use(PasskeyId::from_uuid(Uuid::new_v4()), 0, 1, b"x", at)
            .await
            .unwrap(),
        "PasskeyStore contract: record_use of an unknown passkey is false"
    );
}

/// Of parallel uses expecting the same counter, exactly one is recorded.
pub async fn exactly_one_parallel_use_of_a_counter_wins(
    store: &Arc<dyn PasskeyStore>,
    users: &dyn UserRepository,
) {
    let p = passkey(account(users).await, now());
    store.insert(&p).await.unwrap();
    let mut racers = JoinSet::new();
    for i in 0..RACERS {
        let store = Arc::clone(store);
        let id = p.id;
        racers.spawn(async move {
            store
                .record_use(id, 0, u32::try_from(i).unwrap() + 1, b"c", now())
                .await
                .unwrap()
        });
    }
    let wins = racers.join_all().await.into_iter().filter(|w| *w).count();
    assert_eq!(
        wins, 1,
        "PasskeyStore contract: exactly one parallel use of a counter value wins"
    );
}

/// A user's passkeys go with the account (stores whose rows have a foreign key).
pub async fn deleting_the_account_deletes_its_passkeys(
    store: &dyn PasskeyStore,
    users: &dyn UserRepository,
) {
    let user = account(users).await;
    let p = passkey(user, now());
    store.insert(&p).await.unwrap();
    assert!(users.delete(user).await.unwrap());
    assert!(
        store
            .find_by_credential_id(&p.credential_id)
            .await
            .unwrap()
            .is_none(),
        "PasskeyStore contract: an account's passkeys are deleted with it"
    );
}

/// A stored ceremony is taken once, exactly as stored.
pub async fn a_ceremony_is_taken_once(store: &dyn PasskeyChallengeStore) {
    let key = TokenHash(key_bytes());
    let value = bytes(300);
    store
        .put(&key, &value, now() + Duration::minutes(5))
        .await
        .unwrap();
    assert_eq!(
        store.take(&key).await.unwrap(),
        Some(value),
        "PasskeyChallengeStore contract: take returns what was put"
    );
    assert_eq!(
        store.take(&key).await.unwrap(),
        None,
        "PasskeyChallengeStore contract: a ceremony is taken once"
    );
    assert_eq!(store.take(&TokenHash(key_bytes())).await.unwrap(), None);
}

/// A ceremony past its deadline is not returned.
pub async fn an_expired_ceremony_is_gone(store: &dyn PasskeyChallengeStore) {
    let key = TokenHash(key_bytes());
    store
        .put(&key, b"late", Utc::now() + Duration::milliseconds(1100))
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(2200)).await;
    assert_eq!(
        store.take(&key).await.unwrap(),
        None,
        "PasskeyChallengeStore contract: an expired ceremony is gone"
    );
}

/// Of parallel takes of one ceremony, exactly one gets it.
pub async fn exactly_one_parallel_take_wins(store: &Arc<dyn PasskeyChallengeStore>) {
    let key = TokenHash(key_bytes());
    store
        .put(&key, b"once", now() + Duration::minutes(5))
        .await
        .unwrap();
    let mut racers = JoinSet::new();
    for _ in 0..RACERS {
        let store = Arc::clone(store);
        let key = TokenHash(key.0);
        racers.spawn(async move { store.take(&key).await.unwrap().is_some() });
    }
    let wins = racers.join_all().await.into_iter().filter(|w| *w).count();
    assert_eq!(
        wins, 1,
        "PasskeyChallengeStore contract: exactly one parallel take wins"
    );
}

fn now() -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp_micros(Utc::now().timestamp_micros()).unwrap()
}

fn bytes(n: usize) -> Vec<u8> {
    let mut b = vec![0u8; n];
    rand::thread_rng().fill_bytes(&mut b);
    b
}

fn key_bytes() -> [u8; 32] {
    let mut b = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut b);
    b
}

fn passkey(user: UserId, created_at: DateTime<Utc>) -> StoredPasskey {
    StoredPasskey {
        id: PasskeyId::from_uuid(Uuid::new_v4()),
        user_id: user,
        credential_id: bytes(32),
        credential: bytes(200),
        sign_count: 0,
        name: PasskeyName::parse("phone").unwrap(),
        created_at,
        last_used_at: None,
    }
}

async fn account(users: &dyn UserRepository) -> UserId {
    let id = UserId::from_uuid(Uuid::new_v4());
    let new_user = NewUser {
        id,
        email: EmailAddress::parse(&format!("passkey-{}@example.com", Uuid::new_v4().simple()))
            .unwrap(),
        password_hash: PasswordHash::new(
            "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$aGFzaGhhc2hoYXNo",
        ),
        created_at: now(),
        language: None,
    };
    if let Err(e) = users.create(&new_user).await {
        panic!("PasskeyStore contract: could not create an account to test with: {e:?}");
    }
    id
}

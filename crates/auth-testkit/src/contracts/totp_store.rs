//! Contract suite of [`TotpStore`]: every rule its documentation states.
//!
//! ```no_run
//! # async fn demo(
//! #     store: std::sync::Arc<dyn auth_core::TotpStore>,
//! #     users: std::sync::Arc<dyn auth_core::UserRepository>,
//! # ) {
//! auth_testkit::contracts::totp_store::run(store.clone(), users.clone()).await;
//! // Stores whose rows go with their account (a foreign key) also:
//! auth_testkit::contracts::totp_store::deleting_the_account_deletes_its_factors(
//!     store.as_ref(),
//!     users.as_ref(),
//! )
//! .await;
//! # }
//! ```
//!
//! The suite is store-agnostic and needs no empty store: every check creates its own fresh
//! accounts through `users` (a store may tie its rows to accounts), tokens and code hashes,
//! so it runs on a shared database, and twice in a row. Timestamps are whole microseconds
//! (what PostgreSQL keeps) and must come back exactly. The race checks spawn tokio tasks
//! (call `run` from a multi-threaded tokio runtime). Each check panics with a message
//! starting with `TotpStore contract:`.

use std::sync::Arc;

use auth_core::{
    ClientBinding, EmailAddress, MfaChallenge, NewUser, PasswordHash, RecoveryCodeHash, StoredTotp,
    TokenHash, TotpStore, UserId, UserRepository,
};
use chrono::{DateTime, Duration, Utc};
use rand::RngCore;
use tokio::task::JoinSet;
use uuid::Uuid;

/// Concurrent callers in the race checks.
pub const RACERS: usize = 16;

/// Runs every check that holds for any store, one after the other.
pub async fn run(store: Arc<dyn TotpStore>, users: Arc<dyn UserRepository>) {
    let (s, u) = (store.as_ref(), users.as_ref());
    nothing_stored_means_none(s, u).await;
    a_pending_secret_round_trips_and_is_replaced(s, u).await;
    nothing_works_while_pending(s, u).await;
    enable_turns_on_once_with_its_step_and_codes(s, u).await;
    an_enabled_secret_is_not_replaced(s, u).await;
    accept_step_is_a_compare_and_set(s, u).await;
    exactly_one_parallel_accept_of_a_step_wins(&store, u).await;
    recovery_codes_are_single_use(s, u).await;
    exactly_one_parallel_use_of_a_recovery_code_wins(&store, u).await;
    replace_recovery_codes_drops_the_old_ones(s, u).await;
    parallel_replaces_leave_one_set_of_codes(&store, u).await;
    empty_code_lists_are_kept_as_empty(s, u).await;
    disable_removes_secret_codes_and_challenges(s, u).await;
    a_challenge_round_trips_expired_or_not(s, u).await;
    exactly_one_parallel_take_of_a_challenge_wins(&store, u).await;
    users_are_isolated(s, u).await;
}

/// No secret: `get` is `None`, and every change that needs one refuses.
pub async fn nothing_stored_means_none(store: &dyn TotpStore, users: &dyn UserRepository) {
    let user = account(users).await;
    assert_eq!(
        store.get(user).await.unwrap(),
        None,
        "TotpStore contract: get of a user without TOTP must be None"
    );
    assert!(
        !store.enable(user, 1, &codes(2), now()).await.unwrap(),
        "TotpStore contract: enable without a pending secret must return false"
    );
    assert!(
        !store.accept_step(user, 1).await.unwrap(),
        "TotpStore contract: accept_step without a secret must return false"
    );
    assert_eq!(
        store.use_recovery_code(user, &code()).await.unwrap(),
        None,
        "TotpStore contract: use_recovery_code without a secret must return None"
    );
    assert!(
        !store.replace_recovery_codes(user, &codes(2)).await.unwrap(),
        "TotpStore contract: replace_recovery_codes without a secret must return false"
    );
    assert!(
        !store.disable(user).await.unwrap(),
        "TotpStore contract: disable without a secret must return false"
    );
    assert_eq!(
        store.get(user).await.unwrap(),
        None,
        "TotpStore contract: the refused calls must not have stored anything"
    );
}

/// `put_pending` stores the sealed secret byte for byte, pending, and a second one replaces
/// the first.
pub async fn a_pending_secret_round_trips_and_is_replaced(
    store: &dyn TotpStore,
    users: &dyn UserRepository,
) {
    let user = account(users).await;
    let first = sealed();
    assert!(
        store.put_pending(user, &first, now()).await.unwrap(),
        "TotpStore contract: put_pending for a user without TOTP must return true"
    );
    assert_eq!(
        store.get(user).await.unwrap(),
        Some(pending(&first)),
        "TotpStore contract: a pending secret must come back exactly, not enabled, no step, \
         no codes"
    );
    let second = sealed();
    assert!(
        store.put_pending(user, &second, now()).await.unwrap(),
        "TotpStore contract: put_pending must replace a pending secret"
    );
    assert_eq!(
        store.get(user).await.unwrap(),
        Some(pending(&second)),
        "TotpStore contract: the newer pending secret must replace the older one"
    );
    store.disable(user).await.unwrap();
}

/// A pending secret accepts no step and no recovery code, and no codes are replaced.
pub async fn nothing_works_while_pending(store: &dyn TotpStore, users: &dyn UserRepository) {
    let user = account(users).await;
    let secret = sealed();
    store.put_pending(user, &secret, now()).await.unwrap();
    assert!(
        !store.accept_step(user, 7).await.unwrap(),
        "TotpStore contract: accept_step must return false while TOTP is pending"
    );
    assert!(
        !store.replace_recovery_codes(user, &codes(3)).await.unwrap(),
        "TotpStore contract: replace_recovery_codes must return false while TOTP is pending"
    );
    assert_eq!(
        store.use_recovery_code(user, &code()).await.unwrap(),
        None,
        "TotpStore contract: use_recovery_code must return None while TOTP is pending"
    );
    assert_eq!(
        store.get(user).await.unwrap(),
        Some(pending(&secret)),
        "TotpStore contract: refused calls on a pending secret must change nothing"
    );
    store.disable(user).await.unwrap();
}

/// `enable` turns a pending secret on with its time, step and codes, exactly once.
pub async fn enable_turns_on_once_with_its_step_and_codes(
    store: &dyn TotpStore,
    users: &dyn UserRepository,
) {
    let user = account(users).await;
    let (secret, at, first_codes) = (sealed(), now(), codes(10));
    store.put_pending(user, &secret, at).await.unwrap();
    assert!(
        store.enable(user, 1_000, &first_codes, at).await.unwrap(),
        "TotpStore contract: enable of a pending secret must return true"
    );
    let on = StoredTotp {
        sealed_secret: secret.clone(),
        enabled_at: Some(at),
        last_step: Some(1_000),
        recovery_codes_left: 10,
    };
    assert_eq!(
        store.get(user).await.unwrap(),
        Some(on.clone()),
        "TotpStore contract: after enable the secret must be on since `at`, with `step` as \
         its last step and the given codes"
    );
    assert!(
        !store.enable(user, 2_000, &codes(4), now()).await.unwrap(),
        "TotpStore contract: enable of an enabled secret must return false"
    );
    assert_eq!(
        store.get(user).await.unwrap(),
        Some(on),
        "TotpStore contract: a refused enable must change nothing"
    );
    assert_eq!(
        store
            .use_recovery_code(user, &first_codes[0])
            .await
            .unwrap(),
        Some(9),
        "TotpStore contract: the codes given to enable must work"
    );
    store.disable(user).await.unwrap();
}

/// `put_pending` refuses to replace an enabled secret and changes nothing.
pub async fn an_enabled_secret_is_not_replaced(store: &dyn TotpStore, users: &dyn UserRepository) {
    let user = account(users).await;
    let before = enabled(store, user, 50, 3).await;
    assert!(
        !store.put_pending(user, &sealed(), now()).await.unwrap(),
        "TotpStore contract: put_pending must return false when TOTP is on"
    );
    assert_eq!(
        store.get(user).await.unwrap(),
        Some(before),
        "TotpStore contract: a refused put_pending must keep the enabled secret"
    );
    store.disable(user).await.unwrap();
}

/// Only a later step is accepted: the confirming step, an equal one and an earlier one are
/// replays.
pub async fn accept_step_is_a_compare_and_set(store: &dyn TotpStore, users: &dyn UserRepository) {
    let user = account(users).await;
    enabled(store, user, 100, 1).await;
    for (step, why) in [(100, "the step enable recorded"), (99, "an earlier step")] {
        assert!(
            !store.accept_step(user, step).await.unwrap(),
            "TotpStore contract: accept_step of {why} must return false (replay)"
        );
    }
    assert!(
        store.accept_step(user, 101).await.unwrap(),
        "TotpStore contract: accept_step of a later step must return true"
    );
    assert!(
        !store.accept_step(user, 101).await.unwrap(),
        "TotpStore contract: accepting the same step twice must fail the second time"
    );
    assert!(
        store.accept_step(user, 105).await.unwrap(),
        "TotpStore contract: a step more than one later must be accepted"
    );
    assert!(
        !store.accept_step(user, 103).await.unwrap(),
        "TotpStore contract: a step between older accepted ones and the last must be refused"
    );
    assert_eq!(
        store.get(user).await.unwrap().and_then(|t| t.last_step),
        Some(105),
        "TotpStore contract: get must show the last accepted step"
    );
    store.disable(user).await.unwrap();
}

/// Of [`RACERS`] parallel `accept_step`s of one step, exactly one wins.
pub async fn exactly_one_parallel_accept_of_a_step_wins(
    store: &Arc<dyn TotpStore>,
    users: &dyn UserRepository,
) {
    let user = account(users).await;
    enabled(store.as_ref(), user, 10, 1).await;
    let mut racers = JoinSet::new();
    for _ in 0..RACERS {
        let store = Arc::clone(store);
        racers.spawn(async move { store.accept_step(user, 11).await.unwrap() });
    }
    let wins = racers.join_all().await.into_iter().filter(|&w| w).count();
    assert_eq!(
        wins, 1,
        "TotpStore contract: of {RACERS} parallel accept_step calls with one step exactly one \
         must win"
    );
    store.disable(user).await.unwrap();
}

/// A recovery code works once, counts down, and a code never issued does nothing.
pub async fn recovery_codes_are_single_use(store: &dyn TotpStore, users: &dyn UserRepository) {
    let user = account(users).await;
    let issued = codes(3);
    store.put_pending(user, &sealed(), now()).await.unwrap();
    store.enable(user, 1, &issued, now()).await.unwrap();
    assert_eq!(
        store.use_recovery_code(user, &code()).await.unwrap(),
        None,
        "TotpStore contract: a code never issued must return None"
    );
    for (i, c) in issued.iter().enumerate() {
        let left = u32::try_from(issued.len() - i - 1).unwrap();
        assert_eq!(
            store.use_recovery_code(user, c).await.unwrap(),
            Some(left),
            "TotpStore contract: using an unused code must return the number left"
        );
        assert_eq!(
            store.use_recovery_code(user, c).await.unwrap(),
            None,
            "TotpStore contract: a used code must not work again"
        );
        assert_eq!(
            store
                .get(user)
                .await
                .unwrap()
                .map(|t| t.recovery_codes_left),
            Some(left),
            "TotpStore contract: get must count the unused codes"
        );
    }
    store.disable(user).await.unwrap();
}

/// Of [`RACERS`] parallel uses of one recovery code, exactly one wins.
pub async fn exactly_one_parallel_use_of_a_recovery_code_wins(
    store: &Arc<dyn TotpStore>,
    users: &dyn UserRepository,
) {
    let user = account(users).await;
    let issued = codes(5);
    store.put_pending(user, &sealed(), now()).await.unwrap();
    store.enable(user, 1, &issued, now()).await.unwrap();
    let mut racers = JoinSet::new();
    for _ in 0..RACERS {
        let (store, c) = (Arc::clone(store), issued[2]);
        racers.spawn(async move { store.use_recovery_code(user, &c).await.unwrap() });
    }
    let wins: Vec<u32> = racers.join_all().await.into_iter().flatten().collect();
    assert_eq!(
        wins,
        vec![4],
        "TotpStore contract: of {RACERS} parallel uses of one recovery code exactly one must \
         win, with 4 left"
    );
    store.disable(user).await.unwrap();
}

/// `replace_recovery_codes` drops every old code, used or not, for the new ones.
pub async fn replace_recovery_codes_drops_the_old_ones(
    store: &dyn TotpStore,
    users: &dyn UserRepository,
) {
    let user = account(users).await;
    let old = codes(4);
    store.put_pending(user, &sealed(), now()).await.unwrap();
    store.enable(user, 1, &old, now()).await.unwrap();
    store.use_recovery_code(user, &old[0]).await.unwrap();
    let new = codes(6);
    assert!(
        store.replace_recovery_codes(user, &new).await.unwrap(),
        "TotpStore contract: replace_recovery_codes must return true when TOTP is on"
    );
    assert_eq!(
        store
            .get(user)
            .await
            .unwrap()
            .map(|t| t.recovery_codes_left),
        Some(6),
        "TotpStore contract: after a replace only the new codes count"
    );
    for c in &old {
        assert_eq!(
            store.use_recovery_code(user, c).await.unwrap(),
            None,
            "TotpStore contract: a replaced code must not work"
        );
    }
    assert_eq!(
        store.use_recovery_code(user, &new[5]).await.unwrap(),
        Some(5),
        "TotpStore contract: a new code must work"
    );
    store.disable(user).await.unwrap();
}

/// Of [`RACERS`] parallel `replace_recovery_codes`, one set is left whole: never a mix or
/// a union of two.
pub async fn parallel_replaces_leave_one_set_of_codes(
    store: &Arc<dyn TotpStore>,
    users: &dyn UserRepository,
) {
    let user = account(users).await;
    enabled(store.as_ref(), user, 1, 3).await;
    let sets: Vec<Vec<RecoveryCodeHash>> = (0..RACERS).map(|_| codes(3)).collect();
    let mut racers = JoinSet::new();
    for set in sets.clone() {
        let store = Arc::clone(store);
        racers.spawn(async move { store.replace_recovery_codes(user, &set).await.unwrap() });
    }
    let replaced = racers.join_all().await;
    assert!(
        replaced.iter().all(|&r| r),
        "TotpStore contract: every replace_recovery_codes of an enabled secret must return true"
    );
    assert_eq!(
        store
            .get(user)
            .await
            .unwrap()
            .map(|t| t.recovery_codes_left),
        Some(3),
        "TotpStore contract: after {RACERS} parallel replaces of 3 codes, 3 codes must be left"
    );
    let mut working = Vec::new();
    for (i, set) in sets.iter().enumerate() {
        if store
            .use_recovery_code(user, &set[0])
            .await
            .unwrap()
            .is_some()
        {
            working.push(i);
        }
    }
    assert_eq!(
        working.len(),
        1,
        "TotpStore contract: the codes of exactly one of the parallel replaces must work"
    );
    store.disable(user).await.unwrap();
}

/// `enable` and `replace_recovery_codes` with no codes still succeed: TOTP is on with none.
pub async fn empty_code_lists_are_kept_as_empty(store: &dyn TotpStore, users: &dyn UserRepository) {
    let user = account(users).await;
    store.put_pending(user, &sealed(), now()).await.unwrap();
    assert!(
        store.enable(user, 1, &[], now()).await.unwrap(),
        "TotpStore contract: enable with no recovery codes must return true"
    );
    let on = store.get(user).await.unwrap();
    assert!(
        on.as_ref().is_some_and(|t| t.enabled_at.is_some()),
        "TotpStore contract: enable with no recovery codes must turn TOTP on: {on:?}"
    );
    assert_eq!(on.map(|t| t.recovery_codes_left), Some(0));
    assert!(store.replace_recovery_codes(user, &codes(2)).await.unwrap());
    assert!(
        store.replace_recovery_codes(user, &[]).await.unwrap(),
        "TotpStore contract: replace_recovery_codes with no codes must return true when TOTP \
         is on"
    );
    assert_eq!(
        store
            .get(user)
            .await
            .unwrap()
            .map(|t| t.recovery_codes_left),
        Some(0),
        "TotpStore contract: replacing with no codes must leave none"
    );
    store.disable(user).await.unwrap();
}

/// `disable` deletes the secret (on or pending), its codes and the user's challenges; a new
/// enrolment starts from nothing.
pub async fn disable_removes_secret_codes_and_challenges(
    store: &dyn TotpStore,
    users: &dyn UserRepository,
) {
    let user = account(users).await;
    enabled(store, user, 500, 3).await;
    let issued = codes(2);
    store.replace_recovery_codes(user, &issued).await.unwrap();
    let live = challenge(user, now() + Duration::minutes(5));
    store.put_challenge(&live).await.unwrap();
    assert!(
        store.disable(user).await.unwrap(),
        "TotpStore contract: disable of an enabled secret must return true"
    );
    assert_eq!(
        store.get(user).await.unwrap(),
        None,
        "TotpStore contract: after disable get must be None"
    );
    assert_eq!(
        store.get_challenge(&live.token_hash).await.unwrap(),
        None,
        "TotpStore contract: disable must delete the user's challenges"
    );
    assert!(
        !store.disable(user).await.unwrap(),
        "TotpStore contract: a second disable must return false"
    );

    let secret = sealed();
    store.put_pending(user, &secret, now()).await.unwrap();
    assert_eq!(
        store.get(user).await.unwrap(),
        Some(pending(&secret)),
        "TotpStore contract: a new enrolment after disable must start with no step and no codes"
    );
    store.enable(user, 10, &[], now()).await.unwrap();
    assert_eq!(
        store.use_recovery_code(user, &issued[0]).await.unwrap(),
        None,
        "TotpStore contract: codes of a disabled secret must not come back"
    );
    assert!(
        store.accept_step(user, 11).await.unwrap(),
        "TotpStore contract: the last step of a disabled secret must not carry over"
    );
    assert!(
        store.disable(user).await.unwrap(),
        "TotpStore contract: disable of a pending or enabled secret must return true"
    );

    store.put_pending(user, &sealed(), now()).await.unwrap();
    assert!(
        store.disable(user).await.unwrap(),
        "TotpStore contract: disable of a pending secret must return true"
    );
    assert_eq!(store.get(user).await.unwrap(), None);
}

/// A challenge comes back exactly, expired or not (the service checks), until it is taken
/// once.
pub async fn a_challenge_round_trips_expired_or_not(
    store: &dyn TotpStore,
    users: &dyn UserRepository,
) {
    let user = account(users).await;
    for (expires_at, what) in [
        (now() + Duration::minutes(5), "a live challenge"),
        (now() - Duration::seconds(1), "an expired challenge"),
    ] {
        let stored = challenge(user, expires_at);
        store.put_challenge(&stored).await.unwrap();
        assert_eq!(
            store.get_challenge(&stored.token_hash).await.unwrap(),
            Some(stored.clone()),
            "TotpStore contract: get_challenge of {what} must return it exactly"
        );
        assert!(
            store.take_challenge(&stored.token_hash).await.unwrap(),
            "TotpStore contract: take_challenge of {what} must return true"
        );
        assert!(
            !store.take_challenge(&stored.token_hash).await.unwrap(),
            "TotpStore contract: a taken challenge must not be taken again"
        );
        assert_eq!(
            store.get_challenge(&stored.token_hash).await.unwrap(),
            None,
            "TotpStore contract: a taken challenge must be gone"
        );
    }
    let unknown = TokenHash(bytes());
    assert_eq!(store.get_challenge(&unknown).await.unwrap(), None);
    assert!(
        !store.take_challenge(&unknown).await.unwrap(),
        "TotpStore contract: take_challenge of an unknown token must return false"
    );
}

/// Of [`RACERS`] parallel takes of one challenge exactly one wins, so a token opens at most
/// one session.
pub async fn exactly_one_parallel_take_of_a_challenge_wins(
    store: &Arc<dyn TotpStore>,
    users: &dyn UserRepository,
) {
    let user = account(users).await;
    let stored = challenge(user, now() + Duration::minutes(5));
    store.put_challenge(&stored).await.unwrap();
    let mut racers = JoinSet::new();
    for _ in 0..RACERS {
        let (store, hash) = (Arc::clone(store), stored.token_hash);
        racers.spawn(async move { store.take_challenge(&hash).await.unwrap() });
    }
    let wins = racers.join_all().await.into_iter().filter(|&w| w).count();
    assert_eq!(
        wins, 1,
        "TotpStore contract: of {RACERS} parallel take_challenge calls exactly one must win"
    );
}

/// One user's secret, step, codes and challenges are untouched by calls for another.
pub async fn users_are_isolated(store: &dyn TotpStore, users: &dyn UserRepository) {
    let (alice, bob) = (account(users).await, account(users).await);
    let shared = codes(2);
    for user in [alice, bob] {
        store.put_pending(user, &sealed(), now()).await.unwrap();
        store.enable(user, 10, &shared, now()).await.unwrap();
    }
    let bobs_challenge = challenge(bob, now() + Duration::minutes(5));
    store.put_challenge(&bobs_challenge).await.unwrap();
    let bob_before = store.get(bob).await.unwrap();

    assert!(store.accept_step(alice, 11).await.unwrap());
    assert_eq!(
        store.use_recovery_code(alice, &shared[0]).await.unwrap(),
        Some(1)
    );
    store.put_challenge(&challenge(alice, now())).await.unwrap();
    assert!(store.disable(alice).await.unwrap());

    assert_eq!(
        store.get(bob).await.unwrap(),
        bob_before,
        "TotpStore contract: calls for one user must not change another's secret, step or codes"
    );
    assert_eq!(
        store.use_recovery_code(bob, &shared[0]).await.unwrap(),
        Some(1),
        "TotpStore contract: a code used by one user must still work for another who has it"
    );
    assert!(
        store.accept_step(bob, 11).await.unwrap(),
        "TotpStore contract: a step accepted for one user must still be accepted for another"
    );
    assert_eq!(
        store
            .get_challenge(&bobs_challenge.token_hash)
            .await
            .unwrap(),
        Some(bobs_challenge),
        "TotpStore contract: disabling one user must keep another's challenges"
    );
    store.disable(bob).await.unwrap();
}

/// Deleting the account deletes its secret, codes and challenges ("everything of a user goes
/// when the user is deleted"), for stores whose rows are tied to the accounts of `users`.
pub async fn deleting_the_account_deletes_its_factors(
    store: &dyn TotpStore,
    users: &dyn UserRepository,
) {
    let user = account(users).await;
    enabled(store, user, 1, 3).await;
    let stored = challenge(user, now() + Duration::minutes(5));
    store.put_challenge(&stored).await.unwrap();
    assert!(users.delete(user).await.unwrap());
    assert_eq!(
        store.get(user).await.unwrap(),
        None,
        "TotpStore contract: deleting the account must delete its TOTP secret and codes"
    );
    assert_eq!(
        store.get_challenge(&stored.token_hash).await.unwrap(),
        None,
        "TotpStore contract: deleting the account must delete its challenges"
    );
}

/// Enrols and enables `user` with a fresh secret, `step` and `n` fresh codes; the stored
/// state.
async fn enabled(store: &dyn TotpStore, user: UserId, step: u64, n: usize) -> StoredTotp {
    assert!(store.put_pending(user, &sealed(), now()).await.unwrap());
    assert!(store.enable(user, step, &codes(n), now()).await.unwrap());
    let state = store.get(user).await.unwrap();
    state.expect("TotpStore contract: an enabled secret must be there")
}

fn pending(secret: &[u8]) -> StoredTotp {
    StoredTotp {
        sealed_secret: secret.to_vec(),
        enabled_at: None,
        last_step: None,
        recovery_codes_left: 0,
    }
}

/// A fresh account (stores may tie their rows to accounts).
async fn account(users: &dyn UserRepository) -> UserId {
    let id = UserId::from_uuid(Uuid::new_v4());
    let new_user = NewUser {
        id,
        email: EmailAddress::parse(&format!("totp-{}@example.com", Uuid::new_v4().simple()))
            .unwrap(),
        password_hash: PasswordHash::new(
            "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$aGFzaGhhc2hoYXNo",
        ),
        created_at: now(),
        language: None,
    };
    if let Err(e) = users.create(&new_user).await {
        panic!("TotpStore contract: could not create an account to test with: {e:?}");
    }
    id
}

fn challenge(user: UserId, expires_at: DateTime<Utc>) -> MfaChallenge {
    MfaChallenge {
        token_hash: TokenHash(bytes()),
        user_id: user,
        client: ClientBinding(bytes()),
        epoch: u64::from(rand::thread_rng().next_u32()),
        expires_at,
    }
}

/// Whole microseconds: what every store keeps exactly.
fn now() -> DateTime<Utc> {
    DateTime::from_timestamp_micros(Utc::now().timestamp_micros()).unwrap()
}

fn bytes() -> [u8; 32] {
    let mut b = [0; 32];
    rand::thread_rng().fill_bytes(&mut b);
    b
}

/// A sealed secret as the service makes them: nonce and ciphertext, bytes no store may read.
fn sealed() -> Vec<u8> {
    let mut b = vec![0; 12 + 20 + 16];
    rand::thread_rng().fill_bytes(&mut b);
    b
}

fn code() -> RecoveryCodeHash {
    RecoveryCodeHash(bytes())
}

fn codes(n: usize) -> Vec<RecoveryCodeHash> {
    (0..n).map(|_| code()).collect()
}

//! Contract suite for [`UserRepository`]: every rule its documentation states, checked against
//! a real implementation.
//!
//! ```no_run
//! # async fn demo(repository: std::sync::Arc<dyn auth_core::UserRepository>) {
//! auth_testkit::contracts::user_repository::run(repository).await;
//! # }
//! ```
//!
//! The suite is store-agnostic and needs no empty store: every check uses its own freshly
//! generated addresses and ids, so it also runs against a shared database, and twice in a row.
//! Timestamps are whole microseconds (what PostgreSQL keeps) and must come back exactly.
//! Each check panics with a message starting with `UserRepository contract:`.

use std::sync::Arc;

use auth_core::{
    AccountState, AccountStatus, EmailAddress, NewUser, PasswordHash, Role, User, UserCredentials,
    UserId, UserQuery, UserRepoError, UserRepository,
};
use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

/// How many creates of one address race in [`concurrent_creates_yield_one_account`].
pub const CONCURRENT_CREATES: usize = 16;

/// Runs every check, one after the other.
pub async fn run(repo: Arc<dyn UserRepository>) {
    ping_answers(repo.as_ref()).await;
    create_then_find_round_trips(repo.as_ref()).await;
    unknown_users_are_not_found(repo.as_ref()).await;
    second_create_of_an_address_is_duplicate(repo.as_ref()).await;
    concurrent_creates_yield_one_account(Arc::clone(&repo)).await;
    updates_of_unknown_ids_are_not_found(repo.as_ref()).await;
    replace_unverified_password_only_before_verification(repo.as_ref()).await;
    mark_verified_keeps_the_first_time(repo.as_ref()).await;
    set_password_hash_works_in_any_state(repo.as_ref()).await;
    changes_touch_only_their_own_account(repo.as_ref()).await;
    delete_removes_only_that_account_and_frees_the_address(repo.as_ref()).await;
    role_and_disabled_state_are_kept(repo.as_ref()).await;
    list_filters_orders_and_pages(repo.as_ref()).await;
    set_email_moves_the_account_only_as_a_compare_and_set(repo.as_ref()).await;
    set_email_over_a_pending_signup_removes_it_in_the_same_step(repo.as_ref()).await;
    concurrent_moves_to_one_address_yield_one_owner(Arc::clone(&repo)).await;
}

/// A pending (unverified) signup at the new address does not block `set_email`: the move
/// deletes it in the same step (the address in any letter case), and a refused move (a stale
/// password hash) leaves it alone.
pub async fn set_email_over_a_pending_signup_removes_it_in_the_same_step(
    repo: &dyn UserRepository,
) {
    let t0 = now_micros();
    let mover = new_user("mover", t0);
    create_ok(repo, &mover).await;
    let t1 = t0 + Duration::seconds(1);
    mark_verified_ok(repo, mover.id, t1).await;
    let pending = new_user("pending", t0);
    create_ok(repo, &pending).await;
    let to = EmailAddress::parse(&pending.email.as_str().to_uppercase()).unwrap();
    let t2 = t1 + Duration::seconds(1);

    let refused = repo
        .set_email(mover.id, &mover.email, &to, &hash("stale"), t2)
        .await;
    assert!(
        matches!(refused, Err(UserRepoError::NotFound)),
        "UserRepository contract: set_email with a stale hash must be NotFound, got {refused:?}"
    );
    assert_eq!(
        find_by_id_ok(repo, pending.id).await.user.email,
        pending.email,
        "UserRepository contract: a refused set_email must leave the pending signup alone"
    );

    let moved = repo
        .set_email(mover.id, &mover.email, &to, &mover.password_hash, t2)
        .await;
    assert!(
        moved.as_ref().is_ok_and(|u| u.id == mover.id),
        "UserRepository contract: set_email over a pending signup must move the account, got          {moved:?}"
    );
    assert_eq!(
        find_by_email_ok(repo, &pending.email).await.user.id,
        mover.id,
        "UserRepository contract: the address must find the moved account"
    );
    let gone = repo.find_by_id(pending.id).await;
    assert!(
        matches!(gone, Ok(None)),
        "UserRepository contract: the pending signup must be gone after the move, got {gone:?}"
    );
}

/// `set_email` moves a verified account to a new address (found by it, in any case, and no
/// longer by the old one, which is free again), keeps the verification time and sets
/// `updated_at`; it answers `NotFound` and changes nothing when the account's address or
/// password hash is not the one given, when the account is disabled or unknown; and
/// `Duplicate` when the new address belongs to another account (in any letter case).
pub async fn set_email_moves_the_account_only_as_a_compare_and_set(repo: &dyn UserRepository) {
    let t0 = now_micros();
    let mover = new_user("mover", t0);
    create_ok(repo, &mover).await;
    let t1 = t0 + Duration::seconds(1);
    mark_verified_ok(repo, mover.id, t1).await;
    let other = new_user("occupant", t0);
    create_ok(repo, &other).await;
    mark_verified_ok(repo, other.id, t1).await;
    let to = unique_email("moved");
    let t2 = t1 + Duration::seconds(1);

    for (label, from, hash_given) in [
        ("another address", &other.email, &mover.password_hash),
        ("another password hash", &mover.email, &hash("stale")),
    ] {
        let refused = repo.set_email(mover.id, from, &to, hash_given, t2).await;
        assert!(
            matches!(refused, Err(UserRepoError::NotFound)),
            "UserRepository contract: set_email with {label} must be NotFound, got {refused:?}"
        );
    }
    let unknown = repo
        .set_email(unique_id(), &mover.email, &to, &mover.password_hash, t2)
        .await;
    assert!(
        matches!(unknown, Err(UserRepoError::NotFound)),
        "UserRepository contract: set_email of an unknown id must be NotFound, got {unknown:?}"
    );
    let taken = EmailAddress::parse(&other.email.as_str().to_uppercase()).unwrap();
    let duplicate = repo
        .set_email(mover.id, &mover.email, &taken, &mover.password_hash, t2)
        .await;
    assert!(
        matches!(duplicate, Err(UserRepoError::Duplicate)),
        "UserRepository contract: set_email to another account's address must be Duplicate, \
         got {duplicate:?}"
    );
    assert_eq!(
        find_by_id_ok(repo, mover.id).await.user.email,
        mover.email,
        "UserRepository contract: a refused set_email must change nothing"
    );

    let moved = repo
        .set_email(mover.id, &mover.email, &to, &mover.password_hash, t2)
        .await;
    let expected = User {
        id: mover.id,
        email: to.clone(),
        verified_at: Some(t1),
        created_at: t0,
        updated_at: t2,
    };
    assert_eq!(
        moved.as_ref().ok(),
        Some(&expected),
        "UserRepository contract: set_email must return the moved account: {moved:?}"
    );
    let shouted = EmailAddress::parse(&to.as_str().to_uppercase()).unwrap();
    assert_eq!(
        find_by_email_ok(repo, &shouted).await.user,
        expected,
        "UserRepository contract: the moved account must be found by its new address"
    );
    let by_old = repo.find_by_email(&mover.email).await;
    assert!(
        matches!(by_old, Ok(None)),
        "UserRepository contract: the old address must find nothing after set_email, got \
         {by_old:?}"
    );
    let newcomer = NewUser {
        id: unique_id(),
        email: mover.email.clone(),
        ..new_user("newcomer", t2)
    };
    create_ok(repo, &newcomer).await;

    repo.set_disabled(other.id, Some(t2)).await.unwrap();
    let disabled = repo
        .set_email(
            other.id,
            &other.email,
            &unique_email("away"),
            &other.password_hash,
            t2,
        )
        .await;
    assert!(
        matches!(disabled, Err(UserRepoError::NotFound)),
        "UserRepository contract: set_email of a disabled account must be NotFound, got \
         {disabled:?}"
    );
}

/// Two verified accounts moving to one address at once: exactly one gets it, the other gets
/// `Duplicate` (never another error) and keeps its address.
pub async fn concurrent_moves_to_one_address_yield_one_owner(repo: Arc<dyn UserRepository>) {
    let t0 = now_micros();
    let to = unique_email("contested");
    let mut racers = Vec::new();
    for label in ["racer-a", "racer-b", "racer-c", "racer-d"] {
        let u = new_user(label, t0);
        create_ok(repo.as_ref(), &u).await;
        // Only verified accounts move (a change of address needs a session); a pending one
        // at the address would give way.
        mark_verified_ok(repo.as_ref(), u.id, t0).await;
        racers.push(u);
    }
    let barrier = Arc::new(tokio::sync::Barrier::new(racers.len()));
    let mut tasks = tokio::task::JoinSet::new();
    for u in racers.clone() {
        let (repo, barrier, to) = (Arc::clone(&repo), Arc::clone(&barrier), to.clone());
        tasks.spawn(async move {
            barrier.wait().await;
            let at = t0 + Duration::seconds(1);
            (
                u.id,
                repo.set_email(u.id, &u.email, &to, &u.password_hash, at)
                    .await,
            )
        });
    }
    let mut winners = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let (id, outcome) = joined.expect("a racing set_email panicked");
        match outcome {
            Ok(_) => winners.push(id),
            Err(UserRepoError::Duplicate) => {}
            Err(e) => {
                panic!("UserRepository contract: a losing set_email must be Duplicate, got {e:?}")
            }
        }
    }
    assert_eq!(
        winners.len(),
        1,
        "UserRepository contract: exactly one of the accounts moving to one address must win"
    );
    assert_eq!(
        find_by_email_ok(repo.as_ref(), &to).await.user.id,
        winners[0],
        "UserRepository contract: the address must belong to the winner"
    );
    for u in racers.iter().filter(|u| u.id != winners[0]) {
        assert_eq!(
            find_by_id_ok(repo.as_ref(), u.id).await.user.email,
            u.email,
            "UserRepository contract: a loser must keep its address"
        );
    }
}

/// A new account is an enabled `user`; `set_role` and `set_disabled` change only the status
/// (not `updated_at`), disabling twice keeps the first time, enabling clears it, and both
/// answer `NotFound` for an unknown id.
pub async fn role_and_disabled_state_are_kept(repo: &dyn UserRepository) {
    let t0 = now_micros();
    let new_user = new_user("status", t0);
    create_ok(repo, &new_user).await;
    let fresh = find_by_id_ok(repo, new_user.id).await;
    assert_eq!(
        fresh.status,
        AccountStatus::default(),
        "UserRepository contract: a new account must be an enabled user"
    );

    repo.set_role(new_user.id, Role::Admin)
        .await
        .expect("UserRepository contract: set_role of an account failed");
    let t1 = t0 + Duration::seconds(5);
    repo.set_disabled(new_user.id, Some(t1))
        .await
        .expect("UserRepository contract: set_disabled of an account failed");
    repo.set_disabled(new_user.id, Some(t1 + Duration::seconds(5)))
        .await
        .expect("UserRepository contract: set_disabled of a disabled account failed");
    let stored = find_by_email_ok(repo, &new_user.email).await;
    assert_eq!(
        stored.status,
        AccountStatus {
            role: Role::Admin,
            disabled_at: Some(t1),
        },
        "UserRepository contract: set_role and set_disabled must be kept, and disabling \
         again must keep the first time"
    );
    assert_eq!(
        stored.user, fresh.user,
        "UserRepository contract: set_role and set_disabled must not change the user's fields"
    );

    repo.set_disabled(new_user.id, None)
        .await
        .expect("UserRepository contract: enabling an account failed");
    repo.set_role(new_user.id, Role::User)
        .await
        .expect("UserRepository contract: set_role of an account failed");
    assert_eq!(
        find_by_id_ok(repo, new_user.id).await.status,
        AccountStatus::default(),
        "UserRepository contract: enabling and demoting must restore the default status"
    );

    let unknown = unique_id();
    assert!(
        matches!(
            repo.set_role(unknown, Role::Admin).await,
            Err(UserRepoError::NotFound)
        ),
        "UserRepository contract: set_role of an unknown id must be NotFound"
    );
    assert!(
        matches!(
            repo.set_disabled(unknown, Some(t0)).await,
            Err(UserRepoError::NotFound)
        ),
        "UserRepository contract: set_disabled of an unknown id must be NotFound"
    );
}

/// `list` keeps address order, pages with `after` and `limit`, filters by prefix (literally:
/// `%` and `_` are no wildcards), role and state.
pub async fn list_filters_orders_and_pages(repo: &dyn UserRepository) {
    let t0 = now_micros();
    let tag = Uuid::new_v4().simple().to_string();
    let prefix = format!("list-{tag}-");
    let mut made = Vec::new();
    for label in ["c", "a", "b"] {
        let mut nu = new_user("list", t0);
        nu.email = EmailAddress::parse(&format!("{prefix}{label}@example.com")).unwrap();
        create_ok(repo, &nu).await;
        made.push(nu);
    }
    let (c, a, b) = (&made[0], &made[1], &made[2]);
    mark_verified_ok(repo, a.id, t0).await;
    repo.set_role(a.id, Role::Admin).await.unwrap();
    repo.set_disabled(b.id, Some(t0)).await.unwrap();

    let query = |limit: usize| UserQuery {
        email_prefix: Some(prefix.clone()),
        state: None,
        role: None,
        after: None,
        limit,
    };
    let emails = |found: Vec<auth_core::AccountSummary>| {
        found.into_iter().map(|s| s.user.email).collect::<Vec<_>>()
    };
    let all = repo.list(&query(10)).await.unwrap();
    assert_eq!(
        emails(all),
        vec![a.email.clone(), b.email.clone(), c.email.clone()],
        "UserRepository contract: list must return the matching accounts in address order"
    );
    let first = repo.list(&query(2)).await.unwrap();
    assert_eq!(emails(first), vec![a.email.clone(), b.email.clone()]);
    let rest = repo
        .list(&UserQuery {
            after: Some(b.email.clone()),
            ..query(2)
        })
        .await
        .unwrap();
    assert_eq!(
        emails(rest),
        vec![c.email.clone()],
        "UserRepository contract: list must continue after `after`"
    );
    let admins = repo
        .list(&UserQuery {
            role: Some(Role::Admin),
            ..query(10)
        })
        .await
        .unwrap();
    assert_eq!(emails(admins), vec![a.email.clone()]);
    for (state, expected) in [
        (AccountState::Active, &a.email),
        (AccountState::Disabled, &b.email),
        (AccountState::Unverified, &c.email),
    ] {
        let found = repo
            .list(&UserQuery {
                state: Some(state),
                ..query(10)
            })
            .await
            .unwrap();
        assert_eq!(
            emails(found),
            vec![expected.clone()],
            "UserRepository contract: list must filter by state {state:?}"
        );
    }
    for wildcard in [format!("list-{tag}%"), format!("list_{tag}-")] {
        let found = repo
            .list(&UserQuery {
                email_prefix: Some(wildcard.clone()),
                ..query(10)
            })
            .await
            .unwrap();
        assert!(
            found.is_empty(),
            "UserRepository contract: the prefix {wildcard:?} must match literally"
        );
    }
}

/// `ping` succeeds on a working store.
pub async fn ping_answers(repo: &dyn UserRepository) {
    if let Err(e) = repo.ping().await {
        panic!("UserRepository contract: ping on a working store failed: {e:?}");
    }
}

/// `create` returns the account as given; both finders return it with its hash, every field
/// intact.
pub async fn create_then_find_round_trips(repo: &dyn UserRepository) {
    let new_user = new_user("round-trip", now_micros());
    let created = create_ok(repo, &new_user).await;
    let expected = User {
        id: new_user.id,
        email: new_user.email.clone(),
        verified_at: None,
        created_at: new_user.created_at,
        updated_at: new_user.created_at,
    };
    assert_eq!(
        created, expected,
        "UserRepository contract: create must return the account as given, unverified, with \
         updated_at = created_at"
    );
    let expected = UserCredentials {
        user: expected,
        password_hash: new_user.password_hash.clone(),
        language: Some(LANGUAGE.to_owned()),
        status: AccountStatus::default(),
    };

    let by_email = repo.find_by_email(&new_user.email).await;
    assert_eq!(
        by_email.as_ref().ok().and_then(Option::as_ref),
        Some(&expected),
        "UserRepository contract: find_by_email must return the created account: {by_email:?}"
    );
    // The address as a person might type it parses to the same value and finds the account.
    let shouted = EmailAddress::parse(&new_user.email.as_str().to_uppercase()).unwrap();
    let by_shouted = repo.find_by_email(&shouted).await;
    assert_eq!(
        by_shouted.as_ref().ok().and_then(Option::as_ref),
        Some(&expected),
        "UserRepository contract: find_by_email must ignore case: {by_shouted:?}"
    );
    let by_id = repo.find_by_id(new_user.id).await;
    assert_eq!(
        by_id.as_ref().ok().and_then(Option::as_ref),
        Some(&expected),
        "UserRepository contract: find_by_id must return the created account: {by_id:?}"
    );
}

/// Finders answer `Ok(None)` for an address or id nobody has.
pub async fn unknown_users_are_not_found(repo: &dyn UserRepository) {
    let by_email = repo.find_by_email(&unique_email("nobody")).await;
    assert!(
        matches!(by_email, Ok(None)),
        "UserRepository contract: find_by_email of an unknown address must be Ok(None), got \
         {by_email:?}"
    );
    let by_id = repo.find_by_id(unique_id()).await;
    assert!(
        matches!(by_id, Ok(None)),
        "UserRepository contract: find_by_id of an unknown id must be Ok(None), got {by_id:?}"
    );
}

/// A second account for a taken address, in any letter case, is `Duplicate`, and the first
/// account is left as it was.
pub async fn second_create_of_an_address_is_duplicate(repo: &dyn UserRepository) {
    let first = new_user("duplicate", now_micros());
    create_ok(repo, &first).await;

    let same = NewUser {
        id: unique_id(),
        password_hash: hash("other"),
        ..first.clone()
    };
    let again = repo.create(&same).await;
    assert!(
        matches!(again, Err(UserRepoError::Duplicate)),
        "UserRepository contract: a second create of an address must be Duplicate, got \
         {again:?}"
    );

    let other_case = NewUser {
        id: unique_id(),
        email: EmailAddress::parse(&first.email.as_str().to_uppercase()).unwrap(),
        password_hash: hash("third"),
        created_at: first.created_at + Duration::seconds(1),
        language: None,
    };
    let again = repo.create(&other_case).await;
    assert!(
        matches!(again, Err(UserRepoError::Duplicate)),
        "UserRepository contract: an address differing only in case must be Duplicate, got \
         {again:?}"
    );

    let stored = find_by_id_ok(repo, first.id).await;
    assert_eq!(
        (stored.user.email, stored.password_hash),
        (first.email.clone(), first.password_hash.clone()),
        "UserRepository contract: a refused duplicate must not change the first account"
    );
    for loser in [same.id, other_case.id] {
        let found = repo.find_by_id(loser).await;
        assert!(
            matches!(found, Ok(None)),
            "UserRepository contract: a refused duplicate must not leave an account, got \
             {found:?}"
        );
    }
}

/// [`CONCURRENT_CREATES`] simultaneous creates of one address: exactly one succeeds, every
/// other one is `Duplicate` (never another error), and the one account is the winner's.
pub async fn concurrent_creates_yield_one_account(repo: Arc<dyn UserRepository>) {
    let email = unique_email("race");
    let created_at = now_micros();
    let barrier = Arc::new(tokio::sync::Barrier::new(CONCURRENT_CREATES));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..CONCURRENT_CREATES {
        let repo = Arc::clone(&repo);
        let barrier = Arc::clone(&barrier);
        let new_user = NewUser {
            id: unique_id(),
            email: email.clone(),
            password_hash: hash(&format!("racer-{i}")),
            created_at,
            language: None,
        };
        tasks.spawn(async move {
            barrier.wait().await;
            let outcome = repo.create(&new_user).await;
            (new_user, outcome)
        });
    }

    let mut winners = Vec::new();
    let mut others = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let (new_user, outcome) = joined.unwrap();
        match outcome {
            Ok(user) => winners.push((new_user, user)),
            Err(UserRepoError::Duplicate) => {}
            Err(e) => others.push(e),
        }
    }
    assert!(
        others.is_empty(),
        "UserRepository contract: a concurrent create of a taken address must be Duplicate, \
         got {others:?}"
    );
    assert_eq!(
        winners.len(),
        1,
        "UserRepository contract: {CONCURRENT_CREATES} concurrent creates of one address must \
         make exactly one account"
    );
    let (winner, _) = &winners[0];
    let stored = find_by_email_ok(repo.as_ref(), &email).await;
    assert_eq!(
        (stored.user.id, &stored.password_hash),
        (winner.id, &winner.password_hash),
        "UserRepository contract: the account must be the one whose create succeeded"
    );
}

/// Every update of an id nobody has is `NotFound`.
pub async fn updates_of_unknown_ids_are_not_found(repo: &dyn UserRepository) {
    let at = now_micros();
    let id = unique_id();
    let verified = repo.mark_verified(id, at).await;
    assert!(
        matches!(verified, Err(UserRepoError::NotFound)),
        "UserRepository contract: mark_verified of an unknown id must be NotFound, got \
         {verified:?}"
    );
    let set = repo
        .set_password_hash(id, &unique_email("nobody"), &hash("x"), at)
        .await;
    assert!(
        matches!(set, Err(UserRepoError::NotFound)),
        "UserRepository contract: set_password_hash of an unknown id must be NotFound, got \
         {set:?}"
    );
    let replaced = repo.replace_unverified_password(id, &hash("x"), at).await;
    assert!(
        matches!(replaced, Err(UserRepoError::NotFound)),
        "UserRepository contract: replace_unverified_password of an unknown id must be \
         NotFound, got {replaced:?}"
    );
    let found = repo.find_by_id(id).await;
    assert!(
        matches!(found, Ok(None)),
        "UserRepository contract: updates of an unknown id must not create it, got {found:?}"
    );
}

/// `replace_unverified_password` replaces the hash and moves `updated_at` while the account is
/// unverified, and is `NotFound` (changing nothing) once it is verified.
pub async fn replace_unverified_password_only_before_verification(repo: &dyn UserRepository) {
    let t0 = now_micros();
    let new_user = new_user("replace", t0);
    create_ok(repo, &new_user).await;

    let t1 = t0 + Duration::seconds(10);
    let second = hash("second-signup");
    let replaced = repo
        .replace_unverified_password(new_user.id, &second, t1)
        .await;
    assert!(
        replaced.is_ok(),
        "UserRepository contract: replace_unverified_password of an unverified account must \
         succeed, got {replaced:?}"
    );
    let stored = find_by_id_ok(repo, new_user.id).await;
    assert_eq!(
        stored,
        UserCredentials {
            user: User {
                id: new_user.id,
                email: new_user.email.clone(),
                verified_at: None,
                created_at: t0,
                updated_at: t1,
            },
            password_hash: second.clone(),
            language: Some(LANGUAGE.to_owned()),
            status: AccountStatus::default(),
        },
        "UserRepository contract: replace_unverified_password must set the hash and \
         updated_at, and nothing else"
    );

    let t2 = t1 + Duration::seconds(10);
    mark_verified_ok(repo, new_user.id, t2).await;
    let t3 = t2 + Duration::seconds(10);
    let refused = repo
        .replace_unverified_password(new_user.id, &hash("late"), t3)
        .await;
    assert!(
        matches!(refused, Err(UserRepoError::NotFound)),
        "UserRepository contract: replace_unverified_password of a verified account must be \
         NotFound, got {refused:?}"
    );
    let stored = find_by_id_ok(repo, new_user.id).await;
    assert_eq!(
        (&stored.password_hash, stored.user.updated_at),
        (&second, t2),
        "UserRepository contract: a refused replace_unverified_password must change nothing"
    );
}

/// `mark_verified` sets `verified_at` and `updated_at` to the given time and returns the
/// account; a second call keeps the first verification time.
pub async fn mark_verified_keeps_the_first_time(repo: &dyn UserRepository) {
    let t0 = now_micros();
    let new_user = new_user("verify", t0);
    create_ok(repo, &new_user).await;

    let t1 = t0 + Duration::seconds(30);
    let verified = mark_verified_ok(repo, new_user.id, t1).await;
    let expected = User {
        id: new_user.id,
        email: new_user.email.clone(),
        verified_at: Some(t1),
        created_at: t0,
        updated_at: t1,
    };
    assert_eq!(
        verified, expected,
        "UserRepository contract: mark_verified must set verified_at and updated_at and \
         return the account"
    );
    assert!(verified.is_verified());
    assert_eq!(
        find_by_id_ok(repo, new_user.id).await.user,
        expected,
        "UserRepository contract: mark_verified must be stored as returned"
    );

    let t2 = t1 + Duration::seconds(30);
    let again = mark_verified_ok(repo, new_user.id, t2).await;
    assert_eq!(
        again.verified_at,
        Some(t1),
        "UserRepository contract: a second mark_verified must keep the first verification time"
    );
    let stored = find_by_id_ok(repo, new_user.id).await.user;
    assert_eq!(
        stored, again,
        "UserRepository contract: mark_verified must return the stored account"
    );
    assert_eq!(stored.verified_at, Some(t1));
}

/// `set_password_hash` replaces the hash and moves `updated_at`, verified or not, only while
/// the account has the address given.
pub async fn set_password_hash_works_in_any_state(repo: &dyn UserRepository) {
    let t0 = now_micros();
    let new_user = new_user("set-hash", t0);
    create_ok(repo, &new_user).await;

    let t1 = t0 + Duration::seconds(5);
    let unverified_hash = hash("while-unverified");
    let set = repo
        .set_password_hash(new_user.id, &new_user.email, &unverified_hash, t1)
        .await;
    assert!(
        set.is_ok(),
        "UserRepository contract: set_password_hash of an unverified account must succeed, \
         got {set:?}"
    );
    let stored = find_by_id_ok(repo, new_user.id).await;
    assert_eq!(
        (
            &stored.password_hash,
            stored.user.updated_at,
            stored.user.verified_at
        ),
        (&unverified_hash, t1, None),
        "UserRepository contract: set_password_hash must set the hash and updated_at"
    );

    let t2 = t1 + Duration::seconds(5);
    mark_verified_ok(repo, new_user.id, t2).await;
    let t3 = t2 + Duration::seconds(5);
    let reset_hash = hash("after-reset");
    // A compare-and-set on the address: an account that has another address now (it moved
    // while the password was being changed) is not found, and nothing changes.
    let moved_away = repo
        .set_password_hash(new_user.id, &unique_email("elsewhere"), &reset_hash, t3)
        .await;
    assert!(
        matches!(moved_away, Err(UserRepoError::NotFound)),
        "UserRepository contract: set_password_hash with another address than the account's \
         must be NotFound, got {moved_away:?}"
    );
    assert_eq!(
        find_by_id_ok(repo, new_user.id).await.password_hash,
        unverified_hash,
        "UserRepository contract: a refused set_password_hash must change nothing"
    );
    let set = repo
        .set_password_hash(new_user.id, &new_user.email, &reset_hash, t3)
        .await;
    assert!(
        set.is_ok(),
        "UserRepository contract: set_password_hash of a verified account must succeed, got \
         {set:?}"
    );
    let stored = find_by_id_ok(repo, new_user.id).await;
    assert_eq!(
        stored,
        UserCredentials {
            user: User {
                id: new_user.id,
                email: new_user.email.clone(),
                verified_at: Some(t2),
                created_at: t0,
                updated_at: t3,
            },
            password_hash: reset_hash,
            language: Some(LANGUAGE.to_owned()),
            status: AccountStatus::default(),
        },
        "UserRepository contract: set_password_hash must change the hash and updated_at only"
    );
}

/// An update of one account leaves every other account as it was.
pub async fn changes_touch_only_their_own_account(repo: &dyn UserRepository) {
    let t0 = now_micros();
    let target = new_user("target", t0);
    let bystander = new_user("bystander", t0);
    create_ok(repo, &target).await;
    create_ok(repo, &bystander).await;
    let before = find_by_id_ok(repo, bystander.id).await;

    let t1 = t0 + Duration::seconds(1);
    repo.replace_unverified_password(target.id, &hash("a"), t1)
        .await
        .unwrap();
    repo.set_password_hash(target.id, &target.email, &hash("b"), t1)
        .await
        .unwrap();
    mark_verified_ok(repo, target.id, t1).await;

    assert_eq!(
        find_by_id_ok(repo, bystander.id).await,
        before,
        "UserRepository contract: updating one account must not change another"
    );
}

/// Now, truncated to whole microseconds: the precision every store must keep.
/// `delete` removes the account (by id and by address), says whether there was one, leaves
/// other accounts alone, and frees the address for a new account.
pub async fn delete_removes_only_that_account_and_frees_the_address(repo: &dyn UserRepository) {
    let t0 = now_micros();
    let doomed = new_user("delete-me", t0);
    let bystander = new_user("delete-bystander", t0);
    create_ok(repo, &doomed).await;
    create_ok(repo, &bystander).await;

    let deleted = repo.delete(doomed.id).await;
    assert!(
        matches!(deleted, Ok(true)),
        "UserRepository contract: delete of an existing account must return Ok(true), got \
         {deleted:?}"
    );
    let by_id = repo.find_by_id(doomed.id).await;
    assert!(
        matches!(by_id, Ok(None)),
        "UserRepository contract: a deleted account must not be found by id, got {by_id:?}"
    );
    let by_email = repo.find_by_email(&doomed.email).await;
    assert!(
        matches!(by_email, Ok(None)),
        "UserRepository contract: a deleted account must not be found by address, got \
         {by_email:?}"
    );
    let again = repo.delete(doomed.id).await;
    assert!(
        matches!(again, Ok(false)),
        "UserRepository contract: deleting twice (or an unknown id) must return Ok(false), got \
         {again:?}"
    );
    assert!(
        matches!(repo.delete(unique_id()).await, Ok(false)),
        "UserRepository contract: delete of an unknown id must return Ok(false)"
    );
    assert_eq!(
        find_by_id_ok(repo, bystander.id).await.user.email,
        bystander.email,
        "UserRepository contract: delete must leave other accounts alone"
    );

    let reborn = NewUser {
        id: unique_id(),
        email: doomed.email.clone(),
        ..new_user("delete-me-again", t0)
    };
    create_ok(repo, &reborn).await;
    assert_eq!(
        find_by_id_ok(repo, reborn.id).await.user.email,
        doomed.email,
        "UserRepository contract: the address of a deleted account must be free for a new one"
    );
}

fn now_micros() -> DateTime<Utc> {
    DateTime::from_timestamp_micros(Utc::now().timestamp_micros()).unwrap()
}

fn unique_id() -> UserId {
    UserId::from_uuid(Uuid::new_v4())
}

/// A fresh address, typed in mixed case to exercise normalisation.
fn unique_email(label: &str) -> EmailAddress {
    EmailAddress::parse(&format!(
        "Contract-{label}-{}@Example.COM",
        Uuid::new_v4().simple()
    ))
    .unwrap()
}

/// A distinct hash on every call, shaped like a PHC string (no store may interpret it).
fn hash(label: &str) -> PasswordHash {
    PasswordHash::new(format!(
        "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ${label}-{}",
        Uuid::new_v4().simple()
    ))
}

fn new_user(label: &str, created_at: DateTime<Utc>) -> NewUser {
    NewUser {
        id: unique_id(),
        email: unique_email(label),
        password_hash: hash(label),
        created_at,
        language: Some(LANGUAGE.to_owned()),
    }
}

/// The language preference of the accounts [`new_user`] makes: the store keeps it as given.
const LANGUAGE: &str = "de-CH, de;q=0.9, en;q=0.5";

async fn create_ok(repo: &dyn UserRepository, new_user: &NewUser) -> User {
    match repo.create(new_user).await {
        Ok(user) => user,
        Err(e) => panic!("UserRepository contract: create of a fresh address failed: {e:?}"),
    }
}

async fn find_by_id_ok(repo: &dyn UserRepository, id: UserId) -> UserCredentials {
    match repo.find_by_id(id).await {
        Ok(Some(found)) => found,
        other => panic!("UserRepository contract: find_by_id of {id} gave {other:?}"),
    }
}

async fn find_by_email_ok(repo: &dyn UserRepository, email: &EmailAddress) -> UserCredentials {
    match repo.find_by_email(email).await {
        Ok(Some(found)) => found,
        other => panic!("UserRepository contract: find_by_email gave {other:?}"),
    }
}

async fn mark_verified_ok(repo: &dyn UserRepository, id: UserId, at: DateTime<Utc>) -> User {
    match repo.mark_verified(id, at).await {
        Ok(user) => user,
        Err(e) => panic!("UserRepository contract: mark_verified of {id} failed: {e:?}"),
    }
}

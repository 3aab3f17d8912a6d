//! Contract suite of [`SessionStore`]: every rule its documentation states.
//!
//! ```no_run
//! # async fn demo(store: std::sync::Arc<dyn auth_core::SessionStore>) {
//! auth_testkit::contracts::session_store::run(store).await;
//! # }
//! ```
//!
//! The store should be empty, but the suite only uses fresh random ids, so a store shared
//! with other data works too. It takes a few seconds: expiry is tested with real TTLs of
//! about one second, polled with a deadline.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use auth_core::{
    ClientInfo, EmailAddress, Session, SessionId, SessionPage, SessionStore, SessionToken, User,
    UserId,
};
use chrono::{DateTime, SubsecRound, Utc};
use rand::RngCore;
use uuid::Uuid;

/// TTL of sessions that must outlive the suite.
const LONG_TTL: Duration = Duration::from_secs(600);
/// TTL of sessions whose expiry is tested.
const SHORT_TTL: Duration = Duration::from_secs(1);
/// How long an expired session may linger before the store must have dropped it.
const EXPIRY_DEADLINE: Duration = Duration::from_secs(10);
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// Runs every check against `store`; panics at the first broken rule.
pub async fn run(store: Arc<dyn SessionStore>) {
    let s = store.as_ref();
    ping_answers(s).await;
    insert_then_get_round_trips_every_field(s).await;
    unknown_hash_is_none(s).await;
    delete_revokes(s).await;
    list_for_user_lists_only_that_users_sessions(s).await;
    pages_come_newest_first_and_hold_each_session_once(s).await;
    delete_by_id_revokes_only_the_owners_session(s).await;
    delete_all_for_user_with_and_without_keep(s).await;
    sessions_expire_after_their_ttl(s).await;
    touch_records_a_use_and_never_revives(s).await;
    revocation_epochs_start_at_zero_and_rise_per_address(s).await;
    concurrent_bumps_are_all_counted(store.clone()).await;
    devices_are_remembered_per_account_and_bounded(s).await;
    concurrent_sightings_of_a_new_device_are_new_once(store.clone()).await;
}

fn device(n: u8) -> auth_core::DeviceKey {
    let mut key = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut key);
    key[0] = n;
    auth_core::DeviceKey(key)
}

/// The first device of an account is `First`, another one `New`, a device seen before
/// `Known` (per account); past `keep` devices the least recently seen is forgotten.
async fn devices_are_remembered_per_account_and_bounded(store: &dyn SessionStore) {
    use auth_core::DeviceSighting::{First, Known, New};
    let (a, b) = (user(true).id, user(true).id);
    let t0 = Utc::now().trunc_subsecs(6);
    let at = |s: i64| t0 + chrono::TimeDelta::seconds(s);
    let (laptop, phone, tablet) = (device(1), device(2), device(3));
    let seen = |u, d, t| store.remember_device(u, d, t, 2, LONG_TTL);
    assert_eq!(seen(a, &laptop, at(0)).await.unwrap(), First);
    assert_eq!(seen(a, &laptop, at(1)).await.unwrap(), Known);
    assert_eq!(seen(b, &laptop, at(1)).await.unwrap(), First, "per account");
    assert_eq!(seen(a, &phone, at(2)).await.unwrap(), New);
    assert_eq!(seen(a, &phone, at(3)).await.unwrap(), Known);
    // Two kept: the laptop (seen at 1) goes when the tablet comes.
    assert_eq!(seen(a, &tablet, at(4)).await.unwrap(), New);
    assert_eq!(seen(a, &phone, at(5)).await.unwrap(), Known);
    assert_eq!(
        seen(a, &laptop, at(6)).await.unwrap(),
        New,
        "forgotten past keep"
    );
}

/// Parallel first sightings of one device on an account that has another: exactly one `New`.
async fn concurrent_sightings_of_a_new_device_are_new_once(store: Arc<dyn SessionStore>) {
    use auth_core::DeviceSighting;
    let owner = user(true).id;
    let now = Utc::now().trunc_subsecs(6);
    store
        .remember_device(owner, &device(1), now, 20, LONG_TTL)
        .await
        .unwrap();
    let newcomer = device(2);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let store = store.clone();
        tasks.spawn(async move {
            store
                .remember_device(owner, &newcomer, now, 20, LONG_TTL)
                .await
                .unwrap()
        });
    }
    let mut new = 0;
    while let Some(sighting) = tasks.join_next().await {
        if sighting.unwrap() == DeviceSighting::New {
            new += 1;
        }
    }
    assert_eq!(new, 1, "one new device, told once");
}

async fn revocation_epochs_start_at_zero_and_rise_per_address(store: &dyn SessionStore) {
    let a = user(true).email;
    let b = user(true).email;
    assert_eq!(
        store.revocation_epoch(&a).await.unwrap(),
        0,
        "never raised: 0"
    );
    store.bump_revocation_epoch(&a).await.unwrap();
    let one = store.revocation_epoch(&a).await.unwrap();
    store.bump_revocation_epoch(&a).await.unwrap();
    let two = store.revocation_epoch(&a).await.unwrap();
    assert!(
        one > 0 && two > one,
        "each bump raises the epoch: {one}, {two}"
    );
    assert_eq!(
        store.revocation_epoch(&b).await.unwrap(),
        0,
        "another address's epoch is untouched"
    );
}

async fn concurrent_bumps_are_all_counted(store: Arc<dyn SessionStore>) {
    let email = user(true).email;
    let before = store.revocation_epoch(&email).await.unwrap();
    let bumps: Vec<_> = (0..20)
        .map(|_| {
            let store = store.clone();
            let email = email.clone();
            tokio::spawn(async move { store.bump_revocation_epoch(&email).await.unwrap() })
        })
        .collect();
    for bump in bumps {
        bump.await.unwrap();
    }
    assert_eq!(
        store.revocation_epoch(&email).await.unwrap(),
        before + 20,
        "bumps are atomic: none is lost"
    );
}

/// Checks the cap on sessions per user of a store configured with `cap` (the adapters'
/// `max_sessions_per_user`, at least 2): a user never has more than `cap` live sessions; one
/// more ends the oldest;
/// other users are untouched; revoking one makes room again; and a session is still found and
/// revoked by id among them.
pub async fn run_capped(store: Arc<dyn SessionStore>, cap: usize) {
    assert!(cap >= 2, "the check needs a cap of at least 2");
    let s = store.as_ref();
    let owner = user(true);
    let other = user(true);
    let bystander = session_for(&other, None, None);
    s.insert(&bystander, LONG_TTL).await.unwrap();

    // Later sessions live a second longer each, so "nearest its end" is "oldest" whatever
    // the resolution of the store's clock.
    let ttl = |i: usize| LONG_TTL + Duration::from_secs(u64::try_from(i).unwrap());
    let mut sessions = Vec::new();
    for i in 0..cap + 3 {
        let session = session_for(&owner, None, None);
        s.insert(&session, ttl(i)).await.unwrap();
        sessions.push(session);
        let listed = all(s, owner.id).await;
        assert_eq!(
            listed.len(),
            (i + 1).min(cap),
            "never more than {cap} sessions per user (after {} logins)",
            i + 1
        );
    }
    let (ended, live) = sessions.split_at(3);
    for gone in ended {
        assert_eq!(
            s.get(&gone.token_hash).await.unwrap(),
            None,
            "the oldest sessions were ended to make room"
        );
        assert!(
            !s.delete_by_id(owner.id, gone.id).await.unwrap(),
            "an ended session is not found by id"
        );
    }
    assert_eq!(
        ids(&all(s, owner.id).await),
        ids(live),
        "the newest {cap} remain"
    );
    assert!(
        s.get(&bystander.token_hash).await.unwrap().is_some(),
        "another user's sessions are untouched"
    );

    // Revoking one by id makes room: the next login ends nobody.
    assert!(s.delete_by_id(owner.id, live[1].id).await.unwrap());
    let extra = session_for(&owner, None, None);
    s.insert(&extra, ttl(cap + 10)).await.unwrap();
    assert!(
        s.get(&live[0].token_hash).await.unwrap().is_some(),
        "below the cap nothing is ended"
    );
    assert_eq!(all(s, owner.id).await.len(), cap);

    assert_eq!(
        s.delete_all_for_user(owner.id, None).await.unwrap(),
        u64::try_from(cap).unwrap()
    );
    assert_eq!(s.delete_all_for_user(other.id, None).await.unwrap(), 1);
}

async fn ping_answers(store: &dyn SessionStore) {
    store.ping().await.expect("ping on a healthy store");
}

async fn insert_then_get_round_trips_every_field(store: &dyn SessionStore) {
    let full = session_for(
        &user(true),
        Some("203.0.113.7"),
        Some("Mozilla/5.0 (X11) ☃ \"q\""),
    );
    store.insert(&full, LONG_TTL).await.unwrap();
    let got = store.get(&full.token_hash).await.unwrap();
    assert_eq!(
        got.as_ref(),
        Some(&full),
        "get returns exactly what insert stored"
    );

    // Optional fields left empty, and an IPv6 client.
    let mut sparse = session_for(&user(false), None, None);
    sparse.client.ip = Some("2001:db8::42".parse().unwrap());
    store.insert(&sparse, LONG_TTL).await.unwrap();
    assert_eq!(
        store.get(&sparse.token_hash).await.unwrap().as_ref(),
        Some(&sparse),
        "a session without verified_at / user agent round-trips"
    );
    let mut bare = session_for(&user(false), None, None);
    bare.client = ClientInfo::default();
    store.insert(&bare, LONG_TTL).await.unwrap();
    assert_eq!(
        store.get(&bare.token_hash).await.unwrap(),
        Some(bare.clone())
    );

    for s in [&full, &sparse, &bare] {
        store.delete(&s.token_hash).await.unwrap();
    }
}

async fn unknown_hash_is_none(store: &dyn SessionStore) {
    let never_stored = token().hash();
    assert_eq!(store.get(&never_stored).await.unwrap(), None);
}

async fn delete_revokes(store: &dyn SessionStore) {
    let u = user(true);
    let s = session_for(&u, None, None);
    let other = session_for(&u, None, None);
    store.insert(&s, LONG_TTL).await.unwrap();
    store.insert(&other, LONG_TTL).await.unwrap();

    assert!(
        store.delete(&s.token_hash).await.unwrap(),
        "delete of a live session"
    );
    assert_eq!(
        store.get(&s.token_hash).await.unwrap(),
        None,
        "revoked at once"
    );
    assert!(
        !store.delete(&s.token_hash).await.unwrap(),
        "a second delete finds nothing"
    );
    assert!(
        !store.delete(&token().hash()).await.unwrap(),
        "delete of an unknown hash finds nothing"
    );
    assert_eq!(
        ids(&all(store, u.id).await),
        ids_of([&other]),
        "a revoked session leaves the user's list; the other stays"
    );
    assert_eq!(
        store.delete_all_for_user(u.id, None).await.unwrap(),
        1,
        "the revoked session is not counted again"
    );
}

async fn list_for_user_lists_only_that_users_sessions(store: &dyn SessionStore) {
    let (a, b) = (user(true), user(true));
    let a1 = session_for(&a, Some("198.51.100.1"), Some("a1"));
    let a2 = session_for(&a, None, Some("a2"));
    let b1 = session_for(&b, None, Some("b1"));
    for s in [&a1, &a2, &b1] {
        store.insert(s, LONG_TTL).await.unwrap();
    }

    let mut listed = all(store, a.id).await;
    listed.sort_by_key(|s| s.id);
    let mut expected = vec![a1.clone(), a2.clone()];
    expected.sort_by_key(|s| s.id);
    assert_eq!(
        listed, expected,
        "every field of each of the user's sessions"
    );
    assert_eq!(all(store, b.id).await, vec![b1.clone()], "only b's session");
    assert!(
        all(store, user(true).id).await.is_empty(),
        "a user without sessions has an empty list"
    );

    store.delete_all_for_user(a.id, None).await.unwrap();
    store.delete_all_for_user(b.id, None).await.unwrap();
}

async fn delete_by_id_revokes_only_the_owners_session(store: &dyn SessionStore) {
    let (owner, stranger) = (user(true), user(true));
    let target = session_for(&owner, None, None);
    let sibling = session_for(&owner, None, None);
    let strangers = session_for(&stranger, None, None);
    for s in [&target, &sibling, &strangers] {
        store.insert(s, LONG_TTL).await.unwrap();
    }

    assert!(
        !store.delete_by_id(stranger.id, target.id).await.unwrap(),
        "another user's session id: Ok(false)"
    );
    assert_eq!(
        store.get(&target.token_hash).await.unwrap().as_ref(),
        Some(&target),
        "and nothing changed"
    );
    assert_eq!(
        ids(&all(store, owner.id).await),
        ids_of([&target, &sibling])
    );
    assert_eq!(ids(&all(store, stranger.id).await), ids_of([&strangers]));
    assert!(
        !store
            .delete_by_id(owner.id, SessionId::from_uuid(Uuid::new_v4()))
            .await
            .unwrap(),
        "an unknown session id: Ok(false)"
    );

    assert!(store.delete_by_id(owner.id, target.id).await.unwrap());
    assert_eq!(store.get(&target.token_hash).await.unwrap(), None);
    assert_eq!(
        ids(&all(store, owner.id).await),
        ids_of([&sibling]),
        "only the target went"
    );
    assert!(
        !store.delete_by_id(owner.id, target.id).await.unwrap(),
        "already revoked: Ok(false)"
    );
    assert!(store.get(&sibling.token_hash).await.unwrap().is_some());
    assert!(store.get(&strangers.token_hash).await.unwrap().is_some());

    store.delete_all_for_user(owner.id, None).await.unwrap();
    store.delete_all_for_user(stranger.id, None).await.unwrap();
}

async fn delete_all_for_user_with_and_without_keep(store: &dyn SessionStore) {
    let (u, bystander) = (user(true), user(true));
    let sessions: Vec<Session> = (0..4).map(|_| session_for(&u, None, None)).collect();
    let theirs = session_for(&bystander, None, None);
    for s in sessions.iter().chain([&theirs]) {
        store.insert(s, LONG_TTL).await.unwrap();
    }
    let kept = &sessions[1];

    assert_eq!(
        store
            .delete_all_for_user(u.id, Some(kept.id))
            .await
            .unwrap(),
        3,
        "every session but the kept one is revoked and counted"
    );
    for s in &sessions {
        let live = store.get(&s.token_hash).await.unwrap().is_some();
        assert_eq!(live, s.id == kept.id, "only the kept session is left");
    }
    assert_eq!(ids(&all(store, u.id).await), ids_of([kept]));
    assert_eq!(
        store.get(&theirs.token_hash).await.unwrap().as_ref(),
        Some(&theirs),
        "other users keep their sessions"
    );

    assert_eq!(
        store
            .delete_all_for_user(u.id, Some(theirs.id))
            .await
            .unwrap(),
        1,
        "keeping another user's session id keeps nothing of this user's"
    );
    assert!(store.get(&theirs.token_hash).await.unwrap().is_some());

    let more = session_for(&u, None, None);
    store.insert(&more, LONG_TTL).await.unwrap();
    assert_eq!(store.delete_all_for_user(u.id, None).await.unwrap(), 1);
    assert_eq!(store.get(&more.token_hash).await.unwrap(), None);
    assert!(all(store, u.id).await.is_empty());
    assert_eq!(
        store.delete_all_for_user(u.id, None).await.unwrap(),
        0,
        "nothing left to revoke"
    );
    assert_eq!(
        store
            .delete_all_for_user(user(true).id, None)
            .await
            .unwrap(),
        0,
        "a user who never had a session"
    );

    store.delete_all_for_user(bystander.id, None).await.unwrap();
}

async fn sessions_expire_after_their_ttl(store: &dyn SessionStore) {
    let u = user(true);
    let short = session_for(&u, None, Some("short"));
    let long = session_for(&u, None, Some("long"));
    store.insert(&short, SHORT_TTL).await.unwrap();
    store.insert(&long, LONG_TTL).await.unwrap();
    assert!(
        store.get(&short.token_hash).await.unwrap().is_some(),
        "live before its TTL"
    );

    eventually("a session to expire after its ttl", || async {
        store.get(&short.token_hash).await.unwrap().is_none()
    })
    .await;
    eventually("an expired session to leave the user's list", || async {
        ids(&all(store, u.id).await) == ids_of([&long])
    })
    .await;
    assert!(
        store.get(&long.token_hash).await.unwrap().is_some(),
        "a longer TTL is unaffected"
    );
    assert!(
        !store.delete(&short.token_hash).await.unwrap(),
        "an expired session cannot be revoked again"
    );
    assert!(!store.delete_by_id(u.id, short.id).await.unwrap());
    assert_eq!(
        store.delete_all_for_user(u.id, None).await.unwrap(),
        1,
        "expired sessions are not counted as revoked"
    );

    // Expiry also empties the index of a user whose only session expires unlisted.
    let lone_user = user(true);
    let lone = session_for(&lone_user, None, None);
    store.insert(&lone, SHORT_TTL).await.unwrap();
    eventually("a lone session to expire", || async {
        store.get(&lone.token_hash).await.unwrap().is_none()
    })
    .await;
    assert_eq!(
        store.delete_all_for_user(lone_user.id, None).await.unwrap(),
        0
    );
    assert!(all(store, lone_user.id).await.is_empty());
}

async fn pages_come_newest_first_and_hold_each_session_once(store: &dyn SessionStore) {
    let u = user(true);
    let mut sessions = Vec::new();
    for i in 0..7 {
        let session = session_for(&u, None, Some(&format!("page {i}")));
        store.insert(&session, LONG_TTL).await.unwrap();
        sessions.push(session);
    }
    let newest_first: Vec<SessionId> = sessions.iter().rev().map(|s| s.id).collect();

    let first = store.list_for_user(u.id, None, 3).await.unwrap();
    assert_eq!(
        first.sessions.iter().map(|s| s.id).collect::<Vec<_>>(),
        newest_first[..3],
        "the first page holds the newest sessions, newest first"
    );
    assert_eq!(
        first.sessions[0], sessions[6],
        "every field of a listed session"
    );
    let after_first = first.next.expect("more pages follow");

    // Between two pages, the session the cursor names ends and another is used: the next
    // page still starts right after the cursor and repeats nothing.
    assert!(store.delete(&sessions[4].token_hash).await.unwrap());
    let used = Session {
        passkey: None,
        last_seen_at: sessions[1].last_seen_at + chrono::Duration::seconds(90),
        ..sessions[1].clone()
    };
    assert!(store.touch(&used, LONG_TTL).await.unwrap());
    let cursor = auth_core::SessionCursor::parse(&after_first.encode()).expect("text form");
    let second = store.list_for_user(u.id, Some(cursor), 3).await.unwrap();
    assert_eq!(
        second.sessions.iter().map(|s| s.id).collect::<Vec<_>>(),
        newest_first[3..6],
        "the page after a cursor whose session ended"
    );
    assert_eq!(second.sessions[2], used, "a used session keeps its place");
    let third = store.list_for_user(u.id, second.next, 3).await.unwrap();
    assert_eq!(
        third.sessions.iter().map(|s| s.id).collect::<Vec<_>>(),
        newest_first[6..],
    );
    assert_eq!(third.next, None, "the last page has no next cursor");

    // An exact fit: the last page says so without an empty page after it.
    let whole = store.list_for_user(u.id, None, 6).await.unwrap();
    assert_eq!(whole.sessions.len(), 6);
    assert_eq!(whole.next, None);
    // The limit is clamped to 1..=MAX_SESSIONS_PAGE.
    let one = store.list_for_user(u.id, None, 0).await.unwrap();
    assert_eq!(one.sessions.len(), 1);
    assert!(one.next.is_some());
    let big = store.list_for_user(u.id, None, usize::MAX).await.unwrap();
    assert_eq!((big.sessions.len(), big.next), (6, None));

    // A cursor of another user, or one past the end, lists nothing of this user twice.
    let stranger = user(true);
    assert_eq!(
        store
            .list_for_user(stranger.id, Some(cursor), 3)
            .await
            .unwrap(),
        SessionPage::default()
    );
    let past = store
        .list_for_user(
            u.id,
            Some(auth_core::SessionCursor::new(0, sessions[0].id)),
            3,
        )
        .await
        .unwrap();
    assert_eq!(
        past,
        SessionPage::default(),
        "nothing is older than position 0"
    );

    assert_eq!(store.delete_all_for_user(u.id, None).await.unwrap(), 6);
}

// --- helpers ---

/// Every live session of the user, read two at a time; checks that no session comes twice.
async fn all(store: &dyn SessionStore, user_id: UserId) -> Vec<Session> {
    let mut out: Vec<Session> = Vec::new();
    let mut after = None;
    for _ in 0..1000 {
        let page = store.list_for_user(user_id, after, 2).await.unwrap();
        assert!(page.sessions.len() <= 2, "a page holds at most its limit");
        for s in page.sessions {
            assert!(out.iter().all(|o| o.id != s.id), "a session is listed once");
            out.push(s);
        }
        match page.next {
            Some(next) => after = Some(next),
            None => return out,
        }
    }
    panic!("paging through the sessions of one user does not end");
}

/// Polls `check` until it holds, failing after [`EXPIRY_DEADLINE`].
async fn touch_records_a_use_and_never_revives(store: &dyn SessionStore) {
    let u = user(true);
    let s = session_for(&u, None, Some("touched"));
    store.insert(&s, LONG_TTL).await.unwrap();
    let later = Session {
        passkey: None,
        last_seen_at: s.last_seen_at + chrono::Duration::seconds(90),
        ..s.clone()
    };
    assert!(
        store.touch(&later, LONG_TTL).await.unwrap(),
        "touch on a live session says so"
    );
    assert_eq!(
        store.get(&s.token_hash).await.unwrap(),
        Some(later.clone()),
        "the recorded use is read back, everything else unchanged"
    );
    assert_eq!(
        ids(&all(store, u.id).await),
        ids_of([&s]),
        "a touched session is listed once"
    );

    // The TTL of a touch counts from the touch.
    assert!(store.touch(&later, SHORT_TTL).await.unwrap());
    eventually("a touched session to expire after its new ttl", || async {
        store.get(&s.token_hash).await.unwrap().is_none()
    })
    .await;
    assert!(
        !store.touch(&later, LONG_TTL).await.unwrap(),
        "touch must not revive an expired session"
    );
    assert_eq!(store.get(&s.token_hash).await.unwrap(), None);
    eventually("an expired touched session to leave the list", || async {
        all(store, u.id).await.is_empty()
    })
    .await;

    // A session kept alive by touches outlives its insert TTL, and every revocation still
    // finds it (the per-user index must follow the touch).
    let kept = session_for(&u, None, Some("kept alive"));
    store.insert(&kept, SHORT_TTL).await.unwrap();
    assert!(store.touch(&kept, LONG_TTL).await.unwrap());
    tokio::time::sleep(SHORT_TTL + Duration::from_millis(500)).await;
    assert!(
        store.get(&kept.token_hash).await.unwrap().is_some(),
        "a touch extends the life past the insert TTL"
    );
    assert_eq!(
        ids(&all(store, u.id).await),
        ids_of([&kept]),
        "a touched session stays listed past its insert TTL"
    );
    assert_eq!(
        store.delete_all_for_user(u.id, None).await.unwrap(),
        1,
        "logout-all finds a touched session past its insert TTL"
    );
    assert_eq!(store.get(&kept.token_hash).await.unwrap(), None);

    let revoked = session_for(&u, None, Some("revoked"));
    store.insert(&revoked, LONG_TTL).await.unwrap();
    assert!(store.delete(&revoked.token_hash).await.unwrap());
    assert!(
        !store.touch(&revoked, LONG_TTL).await.unwrap(),
        "touch must not revive a revoked session"
    );
    assert_eq!(store.get(&revoked.token_hash).await.unwrap(), None);

    let unknown = session_for(&u, None, None);
    assert!(
        !store.touch(&unknown, LONG_TTL).await.unwrap(),
        "touch must not create a session"
    );
    assert_eq!(store.get(&unknown.token_hash).await.unwrap(), None);
    assert!(all(store, u.id).await.is_empty());
}

async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + EXPIRY_DEADLINE;
    loop {
        if check().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {EXPIRY_DEADLINE:?} waiting for {what}"
        );
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

fn token() -> SessionToken {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    SessionToken::from_bytes(bytes)
}

/// Now, with sub-millisecond digits a store must not lose (microseconds: the finest that
/// common databases keep).
fn precise_now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(0) + chrono::Duration::microseconds(123_456)
}

fn user(verified: bool) -> User {
    let id = Uuid::new_v4();
    let created = precise_now() - chrono::Duration::days(3);
    User {
        id: UserId::from_uuid(id),
        email: EmailAddress::parse(&format!("Contract.{}@Example.com", id.simple())).unwrap(),
        verified_at: verified.then(|| created + chrono::Duration::minutes(5)),
        created_at: created,
        updated_at: created + chrono::Duration::hours(1),
    }
}

fn session_for(user: &User, ip: Option<&str>, user_agent: Option<&str>) -> Session {
    let now = precise_now();
    Session {
        passkey: None,
        id: SessionId::from_uuid(Uuid::new_v4()),
        token_hash: token().hash(),
        user: user.clone(),
        created_at: now,
        expires_at: now + chrono::Duration::hours(24),
        last_seen_at: now,
        client: ClientInfo::new(ip.map(|ip| ip.parse().unwrap()), user_agent),
    }
}

fn ids(sessions: &[Session]) -> BTreeSet<SessionId> {
    sessions.iter().map(|s| s.id).collect()
}

fn ids_of<'a>(sessions: impl IntoIterator<Item = &'a Session>) -> BTreeSet<SessionId> {
    sessions.into_iter().map(|s| s.id).collect()
}

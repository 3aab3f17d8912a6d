//! Contract suite of [`SecurityEvents`]: every rule its documentation states.
//!
//! ```no_run
//! # async fn demo(store: std::sync::Arc<dyn auth_core::SecurityEvents>) {
//! auth_testkit::contracts::security_events::run(store.as_ref()).await;
//! # }
//! ```
//!
//! The suite needs no empty store: every check uses fresh random user ids, and the retention
//! check works on events dated in the year 2000 only, so it runs on a shared database, and
//! twice in a row. Timestamps are whole microseconds (what PostgreSQL keeps) and must come
//! back exactly. Each check panics with a message starting with `SecurityEvents contract:`.

use auth_core::{
    EventCursor, LoginFailure, SecurityEvent, SecurityEventKind, SecurityEvents, TruncatedIp,
    UserId,
};
use chrono::{DateTime, Duration, TimeZone, Utc};
use uuid::Uuid;

/// Runs every check, one after the other.
pub async fn run(store: &dyn SecurityEvents) {
    an_unknown_user_has_no_events(store).await;
    an_event_round_trips_exactly(store).await;
    events_come_newest_first_then_by_id(store).await;
    pages_return_every_event_once(store).await;
    users_are_isolated(store).await;
    prune_deletes_only_what_is_older(store).await;
}

fn fresh_user() -> UserId {
    UserId::from_uuid(Uuid::new_v4())
}

/// Now, in whole microseconds.
fn now() -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp_micros(Utc::now().timestamp_micros()).unwrap_or_else(Utc::now)
}

fn event(user: UserId, at: DateTime<Utc>, kind: SecurityEventKind) -> SecurityEvent {
    SecurityEvent {
        id: Uuid::new_v4(),
        user_id: user,
        at,
        kind,
        ip: None,
        user_agent: None,
        request_id: None,
    }
}

async fn list_all(store: &dyn SecurityEvents, user: UserId) -> Vec<SecurityEvent> {
    store
        .list(user, None, 1000)
        .await
        .unwrap_or_else(|e| panic!("SecurityEvents contract: list failed: {e}"))
}

async fn record(store: &dyn SecurityEvents, e: &SecurityEvent) {
    store
        .record(e)
        .await
        .unwrap_or_else(|err| panic!("SecurityEvents contract: record failed: {err}"));
}

/// A user without events: `Ok` and empty.
pub async fn an_unknown_user_has_no_events(store: &dyn SecurityEvents) {
    assert!(
        list_all(store, fresh_user()).await.is_empty(),
        "SecurityEvents contract: an unknown user must have no events"
    );
}

/// Every field comes back exactly, for every kind and reason, with and without the optional
/// fields.
pub async fn an_event_round_trips_exactly(store: &dyn SecurityEvents) {
    let user = fresh_user();
    let start = now() - Duration::seconds(100);
    let kinds = [
        SecurityEventKind::Signup,
        SecurityEventKind::Verified,
        SecurityEventKind::LoginSucceeded,
        SecurityEventKind::LoginFailed(LoginFailure::BadCredentials),
        SecurityEventKind::LoginFailed(LoginFailure::Unverified),
        SecurityEventKind::LoginFailed(LoginFailure::Throttled),
        SecurityEventKind::LoginFailed(LoginFailure::SecondFactorFailed),
        SecurityEventKind::ReauthFailed,
        SecurityEventKind::Lockout,
        SecurityEventKind::Logout,
        SecurityEventKind::LogoutAll,
        SecurityEventKind::SessionEnded,
        SecurityEventKind::PasswordChanged,
        SecurityEventKind::ResetRequested,
        SecurityEventKind::ResetCompleted,
        SecurityEventKind::TwoFactorEnabled,
        SecurityEventKind::TwoFactorDisabled,
        SecurityEventKind::RecoveryCodeUsed,
        SecurityEventKind::AccountDeleted,
        SecurityEventKind::AccountDisabledByAdmin,
        SecurityEventKind::AccountEnabledByAdmin,
        SecurityEventKind::RoleChangedByAdmin,
        SecurityEventKind::AccountDeletedByAdmin,
        SecurityEventKind::SessionsEndedByAdmin,
        SecurityEventKind::TwoFactorResetByAdmin,
    ];
    let mut written = Vec::new();
    for (i, kind) in kinds.into_iter().enumerate() {
        let mut e = event(user, start + Duration::microseconds(i as i64 * 1_001), kind);
        if i % 2 == 0 {
            e.ip = Some(if i % 4 == 0 {
                TruncatedIp::new(
                    "203.0.113.77".parse().unwrap_or([0, 0, 0, 0].into()),
                    24,
                    48,
                )
            } else {
                TruncatedIp::new(
                    "2001:db8:1:2::9".parse().unwrap_or([0u16; 8].into()),
                    24,
                    48,
                )
            });
            e.user_agent = Some(format!("Agent/{i} (é ü \u{1F600})"));
            e.request_id = Some(format!("req-{i}"));
        }
        record(store, &e).await;
        written.push(e);
    }
    written.reverse();
    assert_eq!(
        list_all(store, user).await,
        written,
        "SecurityEvents contract: events must come back exactly, newest first"
    );
}

/// Newest first; events at the same time by id, descending.
pub async fn events_come_newest_first_then_by_id(store: &dyn SecurityEvents) {
    let user = fresh_user();
    let at = now();
    let older = event(user, at - Duration::seconds(5), SecurityEventKind::Signup);
    let low = SecurityEvent {
        id: Uuid::from_u128(Uuid::new_v4().as_u128() & !(1u128 << 127)),
        ..event(user, at, SecurityEventKind::Logout)
    };
    let high = SecurityEvent {
        id: Uuid::from_u128(low.id.as_u128() | (1u128 << 127)),
        ..event(user, at, SecurityEventKind::LoginSucceeded)
    };
    let newer = event(
        user,
        at + Duration::seconds(5),
        SecurityEventKind::LogoutAll,
    );
    for e in [&low, &newer, &older, &high] {
        record(store, e).await;
    }
    assert_eq!(
        list_all(store, user).await,
        vec![newer, high, low, older],
        "SecurityEvents contract: order is time descending, then id descending"
    );
}

/// Walking the pages with cursors returns every event exactly once, in order; `limit` is
/// respected.
pub async fn pages_return_every_event_once(store: &dyn SecurityEvents) {
    let user = fresh_user();
    let at = now();
    let mut written = Vec::new();
    for i in 0..11 {
        // Pairs at the same time, so that pages cut between ties.
        let e = event(
            user,
            at - Duration::seconds(i / 2),
            SecurityEventKind::LoginSucceeded,
        );
        record(store, &e).await;
        written.push(e);
    }
    let all = list_all(store, user).await;
    assert_eq!(
        all.len(),
        written.len(),
        "SecurityEvents contract: all events listed"
    );
    let mut seen = Vec::new();
    let mut after: Option<EventCursor> = None;
    for _ in 0..20 {
        let page = store
            .list(user, after, 3)
            .await
            .unwrap_or_else(|e| panic!("SecurityEvents contract: list failed: {e}"));
        assert!(
            page.len() <= 3,
            "SecurityEvents contract: a page must hold at most `limit` events"
        );
        let Some(last) = page.last() else { break };
        after = Some(EventCursor::after(last));
        seen.extend(page);
    }
    assert_eq!(
        seen, all,
        "SecurityEvents contract: pages must return every event once, in order"
    );
}

/// One user's events are never listed for another.
pub async fn users_are_isolated(store: &dyn SecurityEvents) {
    let (ada, bob) = (fresh_user(), fresh_user());
    let at = now();
    let mine = event(ada, at, SecurityEventKind::PasswordChanged);
    let theirs = event(bob, at, SecurityEventKind::AccountDeleted);
    record(store, &mine).await;
    record(store, &theirs).await;
    assert_eq!(
        list_all(store, ada).await,
        vec![mine.clone()],
        "SecurityEvents contract: a user must see only their events"
    );
    let cursor = Some(EventCursor {
        at: at + Duration::seconds(1),
        id: Uuid::max(),
    });
    assert_eq!(
        store.list(bob, cursor, 10).await.ok(),
        Some(vec![theirs]),
        "SecurityEvents contract: a cursor must not reach another user's events"
    );
}

/// `prune` deletes the events before its time (of every user), and nothing at or after it.
pub async fn prune_deletes_only_what_is_older(store: &dyn SecurityEvents) {
    let (ada, bob) = (fresh_user(), fresh_user());
    let cut = Utc
        .with_ymd_and_hms(2000, 6, 1, 0, 0, 0)
        .single()
        .unwrap_or(DateTime::<Utc>::MIN_UTC);
    let old_a = event(ada, cut - Duration::days(30), SecurityEventKind::Signup);
    let old_b = event(
        bob,
        cut - Duration::microseconds(1),
        SecurityEventKind::Signup,
    );
    let kept_at_cut = event(ada, cut, SecurityEventKind::Verified);
    let recent = event(ada, now(), SecurityEventKind::LoginSucceeded);
    for e in [&old_a, &old_b, &kept_at_cut, &recent] {
        record(store, e).await;
    }
    let pruned = store
        .prune(cut)
        .await
        .unwrap_or_else(|e| panic!("SecurityEvents contract: prune failed: {e}"));
    assert_eq!(
        pruned, 2,
        "SecurityEvents contract: prune must delete exactly the older events"
    );
    assert_eq!(
        list_all(store, ada).await,
        vec![recent, kept_at_cut.clone()],
        "SecurityEvents contract: prune must keep events at or after its time"
    );
    assert!(list_all(store, bob).await.is_empty());
    // The suite leaves no year-2000 event behind, so it can run again on the same store.
    assert_eq!(
        store.prune(cut + Duration::microseconds(1)).await.ok(),
        Some(1)
    );
}

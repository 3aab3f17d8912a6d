//! Contract suite of [`WebhookStore`]: every rule its documentation states.
//!
//! ```no_run
//! # async fn demo(store: std::sync::Arc<dyn auth_core::WebhookStore>) {
//! auth_testkit::contracts::webhooks::run(store).await;
//! # }
//! ```
//!
//! Takes a store without endpoints or deliveries and leaves it so (it removes the endpoints
//! it registered, which removes their deliveries). Times are passed explicitly and are whole
//! microseconds (what PostgreSQL keeps); the concurrency check spawns tokio tasks (call `run`
//! from a tokio runtime). Each check panics with a message starting with
//! `WebhookStore contract:`.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use auth_core::{
    ClaimedDelivery, DeliveryState, EventCursor, WebhookEndpoint, WebhookEvent, WebhookStore,
};
use chrono::{DateTime, SubsecRound, TimeDelta, Utc};
use tokio::task::JoinSet;
use uuid::Uuid;

const LEASE: Duration = Duration::from_secs(60);

/// Runs every check against `store`; panics at the first broken rule.
pub async fn run(store: Arc<dyn WebhookStore>) {
    let s = store.as_ref();
    endpoints_round_trip_and_removal_takes_their_deliveries(s).await;
    an_event_is_queued_once_per_endpoint_that_wants_it(s).await;
    a_claim_leases_and_a_lost_lease_changes_nothing(s).await;
    outcomes_show_in_the_delivery_log(s).await;
    the_log_pages_newest_first(s).await;
    prune_deletes_only_finished_deliveries_before_the_time(s).await;
    concurrent_claims_never_share_a_delivery(store).await;
}

fn t0() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

fn secs(n: i64) -> TimeDelta {
    TimeDelta::seconds(n)
}

fn endpoint(kinds: &[&str], at: DateTime<Utc>) -> WebhookEndpoint {
    let id = Uuid::new_v4();
    WebhookEndpoint {
        id,
        url: format!("https://hooks.example.com/{}", id.simple()),
        kinds: kinds.iter().map(|k| (*k).to_owned()).collect(),
        sealed_secret: id.as_bytes().repeat(3),
        created_at: at,
    }
}

fn event(kind: &str) -> WebhookEvent {
    let event_id = Uuid::new_v4();
    WebhookEvent {
        event_id,
        kind: kind.to_owned(),
        payload: format!(r#"{{"type":"{kind}","data":{{"event_id":"{event_id}"}}}}"#),
    }
}

async fn add(s: &dyn WebhookStore, e: &WebhookEndpoint) {
    s.add_endpoint(e)
        .await
        .unwrap_or_else(|err| panic!("WebhookStore contract: add_endpoint failed: {err}"));
}

async fn enqueue(s: &dyn WebhookStore, e: &WebhookEvent, now: DateTime<Utc>) -> u64 {
    s.enqueue(e, now, now + secs(3600))
        .await
        .unwrap_or_else(|err| panic!("WebhookStore contract: enqueue failed: {err}"))
}

async fn claim(s: &dyn WebhookStore, now: DateTime<Utc>, limit: usize) -> Vec<ClaimedDelivery> {
    s.claim(now, LEASE, limit)
        .await
        .unwrap_or_else(|err| panic!("WebhookStore contract: claim failed: {err}"))
}

async fn log(s: &dyn WebhookStore, endpoint: Uuid) -> Vec<auth_core::DeliveryEntry> {
    s.deliveries(endpoint, None, 1000)
        .await
        .unwrap_or_else(|err| panic!("WebhookStore contract: deliveries failed: {err}"))
}

async fn remove(s: &dyn WebhookStore, id: Uuid) -> bool {
    s.remove_endpoint(id)
        .await
        .unwrap_or_else(|err| panic!("WebhookStore contract: remove_endpoint failed: {err}"))
}

/// Endpoints come back exactly, oldest first; removing one removes its deliveries, and
/// removing it again is `Ok(false)`.
pub async fn endpoints_round_trip_and_removal_takes_their_deliveries(s: &dyn WebhookStore) {
    let now = t0();
    let older = endpoint(&["lockout", "login_failed"], now - secs(10));
    let newer = endpoint(&["signup"], now);
    add(s, &newer).await;
    add(s, &older).await;
    let all = s
        .endpoints()
        .await
        .unwrap_or_else(|e| panic!("WebhookStore contract: {e}"));
    assert_eq!(
        all,
        vec![older.clone(), newer.clone()],
        "WebhookStore contract: endpoints must come back exactly, oldest first"
    );
    assert_eq!(enqueue(s, &event("lockout"), now).await, 1);
    assert!(
        remove(s, older.id).await,
        "WebhookStore contract: removal of an endpoint"
    );
    assert!(
        log(s, older.id).await.is_empty(),
        "WebhookStore contract: removing an endpoint must remove its deliveries"
    );
    assert!(
        claim(s, now + secs(1), 10).await.is_empty(),
        "WebhookStore contract: a removed endpoint's delivery must not be claimed"
    );
    assert!(
        !remove(s, older.id).await,
        "WebhookStore contract: removing an unknown endpoint is Ok(false)"
    );
    assert!(remove(s, newer.id).await);
    assert!(s.endpoints().await.is_ok_and(|e| e.is_empty()));
}

/// One delivery per endpoint whose kinds include the event's; none for the others.
pub async fn an_event_is_queued_once_per_endpoint_that_wants_it(s: &dyn WebhookStore) {
    let now = t0();
    let a = endpoint(&["lockout"], now);
    let b = endpoint(&["signup", "lockout"], now);
    let c = endpoint(&["signup"], now);
    for e in [&a, &b, &c] {
        add(s, e).await;
    }
    let lockout = event("lockout");
    assert_eq!(
        enqueue(s, &lockout, now).await,
        2,
        "WebhookStore contract: one delivery per endpoint that wants the kind"
    );
    assert_eq!(enqueue(s, &event("logout"), now).await, 0);
    for (e, n) in [(&a, 1), (&b, 1), (&c, 0)] {
        let entries = log(s, e.id).await;
        assert_eq!(
            entries.len(),
            n,
            "WebhookStore contract: deliveries of an endpoint"
        );
        for entry in entries {
            assert_eq!(
                (
                    entry.event_id,
                    entry.kind.as_str(),
                    entry.state,
                    entry.attempts
                ),
                (lockout.event_id, "lockout", DeliveryState::Pending, 0),
                "WebhookStore contract: a new delivery is pending, unattempted"
            );
            assert_eq!((entry.created_at, entry.next_attempt_at), (now, now));
            assert_eq!((entry.last_status, entry.finished_at), (None, None));
        }
    }
    let a_log = log(s, a.id).await;
    let b_log = log(s, b.id).await;
    assert_ne!(
        a_log[0].id, b_log[0].id,
        "WebhookStore contract: each endpoint's delivery has its own id"
    );
    for e in [&a, &b, &c] {
        remove(s, e.id).await;
    }
}

/// A claim returns what to send (URL, sealed secret, body) under a lease; the claimed
/// delivery is not claimed again while the lease lives, is after it lapses, and the old
/// lease then changes nothing.
pub async fn a_claim_leases_and_a_lost_lease_changes_nothing(s: &dyn WebhookStore) {
    let now = t0();
    let e = endpoint(&["lockout"], now);
    add(s, &e).await;
    let ev = event("lockout");
    enqueue(s, &ev, now).await;
    assert!(
        claim(s, now - secs(1), 10).await.is_empty(),
        "WebhookStore contract: a delivery is not due before its time"
    );
    let first = claim(s, now, 10).await;
    assert_eq!(
        first.len(),
        1,
        "WebhookStore contract: a due delivery is claimed"
    );
    let d = &first[0];
    assert_eq!(
        (
            &d.url,
            &d.sealed_secret,
            &d.payload,
            d.endpoint_id,
            d.attempts
        ),
        (&e.url, &e.sealed_secret, &ev.payload, e.id, 0),
        "WebhookStore contract: a claim returns the endpoint's URL and secret and the body"
    );
    assert_eq!((d.kind.as_str(), d.created_at), ("lockout", now));
    assert_eq!(d.expires_at, now + secs(3600));
    assert!(
        claim(s, now + secs(1), 10).await.is_empty(),
        "WebhookStore contract: a leased delivery is not claimed again"
    );
    let later = now + secs(61);
    let second = claim(s, later, 10).await;
    assert_eq!(
        second.len(),
        1,
        "WebhookStore contract: a lapsed lease lets another courier claim"
    );
    assert_ne!(second[0].lease, d.lease);
    let stale = [
        s.delivered(d.id, d.lease, 200, later).await,
        s.retry_at(d.id, d.lease, later, Some(500), "x").await,
        s.bury(d.id, d.lease, true, None, "x", later).await,
    ];
    for outcome in stale {
        assert!(
            matches!(outcome, Ok(false)),
            "WebhookStore contract: a lost lease must change nothing"
        );
    }
    assert_eq!(log(s, e.id).await[0].attempts, 0);
    remove(s, e.id).await;
}

/// Retry, delivery and burial show in the log: attempts, status, error, state, times.
pub async fn outcomes_show_in_the_delivery_log(s: &dyn WebhookStore) {
    let now = t0();
    let e = endpoint(&["lockout"], now);
    add(s, &e).await;
    enqueue(s, &event("lockout"), now).await;
    enqueue(s, &event("lockout"), now).await;
    let claimed = claim(s, now, 10).await;
    assert_eq!(claimed.len(), 2);
    let (a, b) = (&claimed[0], &claimed[1]);
    let retry = now + secs(5);
    assert!(matches!(
        s.retry_at(a.id, a.lease, retry, Some(503), "answered 503")
            .await,
        Ok(true)
    ));
    assert!(matches!(
        s.bury(b.id, b.lease, false, None, "too old", now).await,
        Ok(true)
    ));
    let entry = |id: Uuid, entries: &[auth_core::DeliveryEntry]| {
        entries
            .iter()
            .find(|d| d.id == id)
            .cloned()
            .unwrap_or_else(|| panic!("WebhookStore contract: a delivery left the log"))
    };
    let entries = log(s, e.id).await;
    let ea = entry(a.id, &entries);
    assert_eq!(
        (
            ea.state,
            ea.attempts,
            ea.last_status,
            ea.last_error.as_deref()
        ),
        (DeliveryState::Pending, 1, Some(503), Some("answered 503")),
        "WebhookStore contract: a retry counts the attempt and notes why"
    );
    assert_eq!(ea.next_attempt_at, retry);
    let eb = entry(b.id, &entries);
    assert_eq!(
        (eb.state, eb.attempts, eb.finished_at),
        (DeliveryState::Dead, 0, Some(now)),
        "WebhookStore contract: a burial without an attempt counts none"
    );
    assert!(
        claim(s, retry - secs(1), 10).await.is_empty(),
        "WebhookStore contract: a retried delivery waits for its time; a dead one never comes back"
    );
    let again = claim(s, retry, 10).await;
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempts, 1);
    let done = retry + secs(1);
    assert!(matches!(
        s.delivered(a.id, again[0].lease, 204, done).await,
        Ok(true)
    ));
    let ea = entry(a.id, &log(s, e.id).await);
    assert_eq!(
        (ea.state, ea.attempts, ea.last_status, ea.finished_at),
        (DeliveryState::Delivered, 2, Some(204), Some(done)),
        "WebhookStore contract: a delivery counts its attempt and keeps its status"
    );
    let stats = s
        .stats()
        .await
        .unwrap_or_else(|e| panic!("WebhookStore contract: {e}"));
    assert_eq!(
        (stats.pending, stats.dead, stats.oldest_pending),
        (0, 1, None),
        "WebhookStore contract: stats count pending and dead deliveries"
    );
    remove(s, e.id).await;
}

/// Pages of the log come newest first, each delivery once.
pub async fn the_log_pages_newest_first(s: &dyn WebhookStore) {
    let now = t0();
    let e = endpoint(&["lockout"], now);
    add(s, &e).await;
    for n in 0..7 {
        // Two at each time, so the id breaks ties.
        enqueue(s, &event("lockout"), now + secs(n / 2)).await;
    }
    let all = log(s, e.id).await;
    assert_eq!(all.len(), 7);
    let mut seen = Vec::new();
    let mut after: Option<EventCursor> = None;
    loop {
        let page = s
            .deliveries(e.id, after, 3)
            .await
            .unwrap_or_else(|err| panic!("WebhookStore contract: {err}"));
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 3);
        after = page.last().map(|d| EventCursor {
            at: d.created_at,
            id: d.id,
        });
        seen.extend(page);
    }
    assert_eq!(
        seen, all,
        "WebhookStore contract: pages must give every delivery once, in the log's order"
    );
    for pair in all.windows(2) {
        assert!(
            (pair[0].created_at, pair[0].id) > (pair[1].created_at, pair[1].id),
            "WebhookStore contract: the log is newest first, then by id descending"
        );
    }
    let stats = s
        .stats()
        .await
        .unwrap_or_else(|e| panic!("WebhookStore contract: {e}"));
    assert_eq!((stats.pending, stats.oldest_pending), (7, Some(now)));
    remove(s, e.id).await;
}

/// Prune deletes delivered and dead deliveries that finished before the time, and never a
/// pending one.
pub async fn prune_deletes_only_finished_deliveries_before_the_time(s: &dyn WebhookStore) {
    let now = t0();
    let e = endpoint(&["lockout"], now);
    add(s, &e).await;
    for _ in 0..4 {
        enqueue(s, &event("lockout"), now).await;
    }
    let claimed = claim(s, now, 3).await;
    assert_eq!(claimed.len(), 3);
    let _ = s.delivered(claimed[0].id, claimed[0].lease, 200, now).await;
    let _ = s
        .bury(
            claimed[1].id,
            claimed[1].lease,
            true,
            Some(410),
            "gone",
            now,
        )
        .await;
    let _ = s
        .delivered(claimed[2].id, claimed[2].lease, 200, now + secs(10))
        .await;
    let pruned = s
        .prune(now + secs(5))
        .await
        .unwrap_or_else(|err| panic!("WebhookStore contract: prune failed: {err}"));
    assert_eq!(
        pruned, 2,
        "WebhookStore contract: prune deletes what finished before"
    );
    let left: HashSet<Uuid> = log(s, e.id).await.iter().map(|d| d.id).collect();
    assert!(left.contains(&claimed[2].id));
    assert_eq!(
        left.len(),
        2,
        "WebhookStore contract: a pending delivery is never pruned"
    );
    remove(s, e.id).await;
}

/// Couriers claiming at once never get the same delivery, and together get all of them.
pub async fn concurrent_claims_never_share_a_delivery(store: Arc<dyn WebhookStore>) {
    const DELIVERIES: usize = 40;
    const COURIERS: usize = 5;
    let now = t0();
    let e = endpoint(&["lockout"], now);
    add(store.as_ref(), &e).await;
    for _ in 0..DELIVERIES {
        enqueue(store.as_ref(), &event("lockout"), now).await;
    }
    let mut set = JoinSet::new();
    for _ in 0..COURIERS {
        let store = Arc::clone(&store);
        set.spawn(async move {
            let mut mine = Vec::new();
            loop {
                let got = store.claim(now, LEASE, 3).await;
                match got {
                    Ok(got) if got.is_empty() => return mine,
                    Ok(got) => mine.extend(got.into_iter().map(|d| d.id)),
                    Err(_) => tokio::task::yield_now().await,
                }
            }
        });
    }
    let mut all = Vec::new();
    while let Some(mine) = set.join_next().await {
        all.extend(mine.unwrap_or_default());
    }
    let unique: HashSet<Uuid> = all.iter().copied().collect();
    assert_eq!(
        (all.len(), unique.len()),
        (DELIVERIES, DELIVERIES),
        "WebhookStore contract: concurrent claims must share nothing and miss nothing"
    );
    remove(store.as_ref(), e.id).await;
}

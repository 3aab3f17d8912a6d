//! Contract suite of [`OutboxStore`]: every rule its documentation states.
//!
//! ```no_run
//! # async fn demo(store: std::sync::Arc<dyn auth_core::OutboxStore>) {
//! auth_testkit::contracts::outbox::run(store).await;
//! # }
//! ```
//!
//! Takes an empty outbox and leaves it empty. Times are passed explicitly (the store never
//! reads a clock), so nothing here waits; the concurrency check spawns tokio tasks (call `run`
//! from a tokio runtime).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use auth_core::{ClaimedMail, EmailAddress, MailState, OutboxStore, QueuedMail, SuppressionReason};
use chrono::{DateTime, SubsecRound, TimeDelta, Utc};
use rand::RngCore;
use tokio::task::JoinSet;
use uuid::Uuid;

const LEASE: Duration = Duration::from_secs(60);
/// Messages in the concurrency check, and the couriers racing for them.
const MESSAGES: usize = 60;
const COURIERS: usize = 6;

/// Runs every check against `store`; panics at the first broken rule.
pub async fn run(store: Arc<dyn OutboxStore>) {
    let s = store.as_ref();
    a_queued_message_round_trips_and_is_claimed_once(s).await;
    an_expired_lease_is_taken_over_and_the_old_one_changes_nothing(s).await;
    retry_counts_the_attempt_and_waits(s).await;
    buried_messages_are_listed_revived_and_purged(s).await;
    a_newer_message_supersedes_unsent_ones_with_its_key(s).await;
    suppression_has_an_end_and_a_later_one_extends_it(s).await;
    stats_count_what_waits(s).await;
    sweep_deletes_what_expired(s).await;
    concurrent_claims_never_share_a_message(&store).await;
}

fn email() -> EmailAddress {
    let mut bytes = [0u8; 6];
    rand::thread_rng().fill_bytes(&mut bytes);
    let local: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    EmailAddress::parse(&format!("outbox-{local}@example.com")).expect("valid address")
}

/// Now, at the microsecond precision stores keep.
fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

fn secs(n: i64) -> TimeDelta {
    TimeDelta::seconds(n)
}

fn mail(to: &EmailAddress, at: DateTime<Utc>, supersedes: Option<&str>) -> QueuedMail {
    let mut sealed = vec![0u8; 48];
    rand::thread_rng().fill_bytes(&mut sealed);
    QueuedMail {
        id: Uuid::new_v4(),
        to: to.clone(),
        kind: "reset_password".to_owned(),
        supersedes: supersedes.map(str::to_owned),
        sealed,
        created_at: at,
        expires_at: at + secs(900),
    }
}

async fn claim_all(store: &dyn OutboxStore, at: DateTime<Utc>) -> Vec<ClaimedMail> {
    store.claim(at, LEASE, 1000).await.expect("claim")
}

/// Leaves the store empty.
async fn clear(store: &dyn OutboxStore) {
    let far = now() + secs(10 * 365 * 24 * 3600);
    store.purge(None).await.expect("purge");
    store.sweep(far).await.expect("sweep");
    for claimed in store.claim(far, LEASE, 10_000).await.expect("claim") {
        store
            .remove(claimed.mail.id, claimed.lease)
            .await
            .expect("remove");
    }
    let stats = store.stats(far).await.expect("stats");
    assert_eq!((stats.pending, stats.dead), (0, 0), "the outbox is empty");
}

async fn a_queued_message_round_trips_and_is_claimed_once(store: &dyn OutboxStore) {
    let t = now();
    let queued = mail(&email(), t, None);
    store.enqueue(&queued).await.expect("enqueue");
    assert!(
        claim_all(store, t - secs(1)).await.is_empty(),
        "not due before its creation"
    );
    let claimed = claim_all(store, t).await;
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].mail, queued, "every field round-trips");
    assert_eq!(claimed[0].attempts, 0);
    assert!(
        claim_all(store, t + secs(1)).await.is_empty(),
        "a leased message is not claimed again"
    );
    assert!(store
        .remove(queued.id, claimed[0].lease)
        .await
        .expect("remove"));
    assert!(
        claim_all(store, t + secs(3600)).await.is_empty(),
        "a removed message is gone"
    );
    assert!(
        !store
            .remove(queued.id, claimed[0].lease)
            .await
            .expect("remove"),
        "removing twice reports nothing removed"
    );
    clear(store).await;
}

async fn an_expired_lease_is_taken_over_and_the_old_one_changes_nothing(store: &dyn OutboxStore) {
    let t = now();
    let queued = mail(&email(), t, None);
    store.enqueue(&queued).await.expect("enqueue");
    let first = claim_all(store, t).await.remove(0);
    let lease = TimeDelta::from_std(LEASE).expect("lease");
    assert!(
        claim_all(store, t + lease - secs(1)).await.is_empty(),
        "still leased"
    );
    let second = claim_all(store, t + lease + secs(1)).await;
    assert_eq!(second.len(), 1, "taken over after the lease");
    assert_ne!(second[0].lease, first.lease, "under a new lease");
    let old = first.lease;
    assert!(!store.remove(queued.id, old).await.expect("remove"));
    assert!(!store
        .retry_at(queued.id, old, t, "late")
        .await
        .expect("retry"));
    assert!(!store.bury(queued.id, old, "late").await.expect("bury"));
    assert!(
        store
            .list(MailState::Dead, 10)
            .await
            .expect("list")
            .is_empty(),
        "the stale courier buried nothing"
    );
    assert!(store
        .remove(queued.id, second[0].lease)
        .await
        .expect("remove"));
    clear(store).await;
}

async fn retry_counts_the_attempt_and_waits(store: &dyn OutboxStore) {
    let t = now();
    let queued = mail(&email(), t, None);
    store.enqueue(&queued).await.expect("enqueue");
    let claimed = claim_all(store, t).await.remove(0);
    assert!(store
        .retry_at(queued.id, claimed.lease, t + secs(30), "451 busy")
        .await
        .expect("retry"));
    assert!(
        claim_all(store, t + secs(29)).await.is_empty(),
        "not due before the retry time, although the lease was released"
    );
    let pending = store.list(MailState::Pending, 10).await.expect("list");
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].attempts, 1);
    assert_eq!(pending[0].next_attempt_at, t + secs(30));
    assert_eq!(pending[0].last_error.as_deref(), Some("451 busy"));
    let again = claim_all(store, t + secs(30)).await;
    assert_eq!(again.len(), 1, "due at the retry time");
    assert_eq!(again[0].attempts, 1, "the failed attempt was counted");
    clear(store).await;
}

async fn buried_messages_are_listed_revived_and_purged(store: &dyn OutboxStore) {
    let t = now();
    let (a, b) = (mail(&email(), t, None), mail(&email(), t + secs(1), None));
    store.enqueue(&a).await.expect("enqueue");
    store.enqueue(&b).await.expect("enqueue");
    for claimed in claim_all(store, t + secs(1)).await {
        assert!(store
            .bury(claimed.mail.id, claimed.lease, "550 no such user")
            .await
            .expect("bury"));
    }
    assert!(
        claim_all(store, t + secs(3600)).await.is_empty(),
        "a dead message is never claimed"
    );
    let dead = store.list(MailState::Dead, 10).await.expect("list");
    assert_eq!(
        dead.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![a.id, b.id],
        "oldest first"
    );
    assert_eq!(dead[0].state, MailState::Dead);
    assert_eq!(dead[0].last_error.as_deref(), Some("550 no such user"));
    assert_eq!(dead[0].to, a.to);
    assert_eq!(dead[0].kind, a.kind);
    assert_eq!(
        store.list(MailState::Dead, 1).await.expect("list").len(),
        1,
        "the limit holds"
    );
    assert_eq!(
        store.revive(Some(a.id), t + secs(5)).await.expect("revive"),
        1
    );
    let revived = claim_all(store, t + secs(5)).await;
    assert_eq!(revived.len(), 1, "only the one named");
    assert_eq!(revived[0].mail.id, a.id);
    assert_eq!(revived[0].attempts, 0, "attempts start again");
    assert_eq!(
        store.purge(Some(a.id)).await.expect("purge"),
        0,
        "a pending one is not purged"
    );
    assert_eq!(store.purge(None).await.expect("purge"), 1, "every dead one");
    assert!(store
        .list(MailState::Dead, 10)
        .await
        .expect("list")
        .is_empty());
    clear(store).await;
}

async fn a_newer_message_supersedes_unsent_ones_with_its_key(store: &dyn OutboxStore) {
    let t = now();
    let (to, other) = (email(), email());
    let leased = mail(&to, t, Some("reset_password"));
    store.enqueue(&leased).await.expect("enqueue");
    let in_flight = claim_all(store, t).await.remove(0);
    let old = mail(&to, t + secs(1), Some("reset_password"));
    let unkeyed = mail(&to, t + secs(1), None);
    let other_key = mail(&to, t + secs(1), Some("login_code"));
    let other_to = mail(&other, t + secs(1), Some("reset_password"));
    for m in [&old, &unkeyed, &other_key, &other_to] {
        store.enqueue(m).await.expect("enqueue");
    }
    let newest = mail(&to, t + secs(2), Some("reset_password"));
    store.enqueue(&newest).await.expect("enqueue");
    let mut left: Vec<Uuid> = claim_all(store, t + secs(2))
        .await
        .iter()
        .map(|c| c.mail.id)
        .collect();
    left.sort();
    let mut expected = vec![unkeyed.id, other_key.id, other_to.id, newest.id];
    expected.sort();
    assert_eq!(
        left, expected,
        "only the unsent message with the same key and recipient went"
    );
    assert!(
        store
            .remove(leased.id, in_flight.lease)
            .await
            .expect("remove"),
        "a message being sent is not superseded"
    );
    clear(store).await;

    // A claim whose lease ran out (its courier crashed) no longer protects the message.
    let lapsed = mail(&to, t, Some("login_code"));
    store.enqueue(&lapsed).await.expect("enqueue");
    assert_eq!(claim_all(store, t).await.len(), 1);
    let lease = TimeDelta::from_std(LEASE).expect("lease");
    let after = mail(&to, t + lease + secs(1), Some("login_code"));
    store.enqueue(&after).await.expect("enqueue");
    let left: Vec<Uuid> = claim_all(store, t + lease + secs(1))
        .await
        .iter()
        .map(|c| c.mail.id)
        .collect();
    assert_eq!(left, vec![after.id], "the lapsed claim was superseded");
    clear(store).await;
}

async fn suppression_has_an_end_and_a_later_one_extends_it(store: &dyn OutboxStore) {
    let t = now();
    let to = email();
    assert_eq!(store.suppression(&to, t).await.expect("suppression"), None);
    store
        .suppress(&to, t + secs(60), SuppressionReason::Rejected)
        .await
        .expect("suppress");
    assert_eq!(
        store.suppression(&to, t).await.expect("suppression"),
        Some((t + secs(60), SuppressionReason::Rejected))
    );
    let upper = EmailAddress::parse(&to.as_str().to_uppercase()).expect("address");
    assert!(
        store
            .suppression(&upper, t)
            .await
            .expect("suppression")
            .is_some(),
        "addresses compare case-insensitively"
    );
    assert_eq!(
        store
            .suppression(&to, t + secs(60))
            .await
            .expect("suppression"),
        None,
        "over at its end"
    );
    store
        .suppress(&to, t + secs(120), SuppressionReason::Complaint)
        .await
        .expect("suppress");
    store
        .suppress(&to, t + secs(90), SuppressionReason::Bounce)
        .await
        .expect("suppress");
    assert_eq!(
        store
            .suppression(&to, t + secs(100))
            .await
            .expect("suppression"),
        Some((t + secs(120), SuppressionReason::Complaint)),
        "a shorter suppression does not cut a longer one short"
    );
    assert_eq!(
        store.suppression(&email(), t).await.expect("suppression"),
        None,
        "other addresses are not suppressed"
    );
    store.sweep(t + secs(121)).await.expect("sweep");
    assert_eq!(store.stats(t).await.expect("stats").suppressed, 0, "swept");
    clear(store).await;
}

async fn stats_count_what_waits(store: &dyn OutboxStore) {
    let t = now();
    let empty = store.stats(t).await.expect("stats");
    assert_eq!(empty, auth_core::OutboxStats::default());
    let (a, b, c) = (
        mail(&email(), t, None),
        mail(&email(), t + secs(1), None),
        mail(&email(), t + secs(2), None),
    );
    for m in [&a, &b, &c] {
        store.enqueue(m).await.expect("enqueue");
    }
    let claimed = store.claim(t, LEASE, 1).await.expect("claim").remove(0);
    assert_eq!(claimed.mail.id, a.id, "oldest first");
    store.bury(a.id, claimed.lease, "550").await.expect("bury");
    store
        .suppress(&a.to, t + secs(60), SuppressionReason::Rejected)
        .await
        .expect("suppress");
    let stats = store.stats(t + secs(2)).await.expect("stats");
    assert_eq!(stats.pending, 2);
    assert_eq!(stats.oldest_pending, Some(b.created_at));
    assert_eq!(stats.dead, 1);
    assert_eq!(stats.suppressed, 1);
    assert_eq!(
        store.stats(t + secs(61)).await.expect("stats").suppressed,
        0,
        "an ended suppression is not counted"
    );
    store.sweep(t + secs(61)).await.expect("sweep");
    clear(store).await;
}

async fn sweep_deletes_what_expired(store: &dyn OutboxStore) {
    let t = now();
    let mut short = mail(&email(), t, None);
    short.expires_at = t + secs(10);
    let long = mail(&email(), t, None);
    let mut dead = mail(&email(), t, None);
    dead.expires_at = t + secs(10);
    for m in [&short, &long, &dead] {
        store.enqueue(m).await.expect("enqueue");
    }
    for claimed in claim_all(store, t).await {
        let id = claimed.mail.id;
        if id == dead.id {
            store.bury(id, claimed.lease, "550").await.expect("bury");
        } else {
            store
                .retry_at(id, claimed.lease, t, "busy")
                .await
                .expect("retry");
        }
    }
    assert_eq!(
        store.sweep(t + secs(10)).await.expect("sweep"),
        0,
        "not yet"
    );
    assert_eq!(
        store.sweep(t + secs(11)).await.expect("sweep"),
        2,
        "pending and dead"
    );
    let left: Vec<Uuid> = claim_all(store, t + secs(11))
        .await
        .iter()
        .map(|c| c.mail.id)
        .collect();
    assert_eq!(left, vec![long.id]);
    clear(store).await;
}

async fn concurrent_claims_never_share_a_message(store: &Arc<dyn OutboxStore>) {
    let t = now();
    let mut ids = HashSet::new();
    for i in 0..MESSAGES {
        let m = mail(&email(), t + TimeDelta::milliseconds(i as i64), None);
        ids.insert(m.id);
        store.enqueue(&m).await.expect("enqueue");
    }
    let mut couriers = JoinSet::new();
    for _ in 0..COURIERS {
        let store = Arc::clone(store);
        couriers.spawn(async move {
            let mut mine = Vec::new();
            loop {
                let batch = store.claim(t + secs(1), LEASE, 4).await.expect("claim");
                if batch.is_empty() {
                    return mine;
                }
                for claimed in batch {
                    assert!(store
                        .remove(claimed.mail.id, claimed.lease)
                        .await
                        .expect("remove"));
                    mine.push(claimed.mail.id);
                }
            }
        });
    }
    let mut seen = Vec::new();
    while let Some(done) = couriers.join_next().await {
        seen.extend(done.expect("courier task"));
    }
    assert_eq!(seen.len(), MESSAGES, "each message claimed exactly once");
    assert_eq!(seen.into_iter().collect::<HashSet<_>>(), ids);
    clear(store.as_ref()).await;
}

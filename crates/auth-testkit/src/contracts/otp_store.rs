//! Contract suite of [`OtpStore`]: every rule its documentation states.
//!
//! ```no_run
//! # async fn demo(store: std::sync::Arc<dyn auth_core::OtpStore>) {
//! auth_testkit::contracts::otp_store::run(store).await;
//! # }
//! ```
//!
//! Every check uses a fresh random address, so a store shared with other data works too.
//! The concurrency checks spawn tokio tasks (call `run` from a tokio runtime); the expiry and
//! cooldown checks take a few seconds of real time, polled with a deadline.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use auth_core::{EmailAddress, OtpMac, OtpPurpose, OtpStore, PasswordHash, SendSlot, StoredOtp};
use chrono::{SubsecRound, Utc};
use rand::RngCore;
use tokio::task::JoinSet;
use uuid::Uuid;

/// `retain_for` of codes that must outlive the suite.
const RETAIN: Duration = Duration::from_secs(600);
/// `keep` of every put: how many codes of one (purpose, address) stay live.
const KEEP: usize = 3;
/// Concurrent callers in the race checks.
const RACERS: u32 = 20;
/// Cooldown in the send-slot check: two seconds, so that an answer rounded up to whole
/// seconds still fits under it, and the promised minimum of one second too.
const COOLDOWN: Duration = Duration::from_secs(2);
/// How long past its time a code or cooldown may linger before the store must drop it.
const DEADLINE: Duration = Duration::from_secs(10);
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// Runs every check against `store`; panics at the first broken rule.
pub async fn run(store: Arc<dyn OtpStore>) {
    no_code_means_no_attempt(store.as_ref()).await;
    put_then_record_attempt_counts(store.as_ref()).await;
    put_keeps_the_newest_codes_and_resets_attempts(store.as_ref()).await;
    a_pending_password_round_trips(store.as_ref()).await;
    consume_needs_the_stored_mac(store.as_ref()).await;
    exactly_one_parallel_consume_wins(&store).await;
    parallel_attempts_get_distinct_counts(&store).await;
    discard_deletes(store.as_ref()).await;
    purposes_and_addresses_are_isolated(store.as_ref()).await;
    codes_are_dropped_after_retain_for(store.as_ref()).await;
    send_slot_cooldown(store.as_ref()).await;
}

async fn no_code_means_no_attempt(store: &dyn OtpStore) {
    let email = email();
    for purpose in [OtpPurpose::VerifyEmail, OtpPurpose::ResetPassword] {
        assert_eq!(store.record_attempt(purpose, &email).await.unwrap(), None);
        assert!(!store.consume(purpose, &email, &mac()).await.unwrap());
        store.discard(purpose, &email).await.unwrap();
    }
}

async fn put_then_record_attempt_counts(store: &dyn OtpStore) {
    let (purpose, email, otp) = (OtpPurpose::VerifyEmail, email(), stored());
    store
        .put(purpose, &email, otp.clone(), KEEP, RETAIN)
        .await
        .unwrap();
    for n in 1..=3 {
        let attempt = store.record_attempt(purpose, &email).await.unwrap();
        let attempt = attempt.expect("the stored code is there");
        assert_eq!(attempt.attempts, n, "the count includes this attempt");
        assert_eq!(
            attempt.codes,
            vec![otp.clone()],
            "the stored MAC, expiry and pending password come back exactly"
        );
    }
    store.discard(purpose, &email).await.unwrap();
}

async fn put_keeps_the_newest_codes_and_resets_attempts(store: &dyn OtpStore) {
    let (purpose, email) = (OtpPurpose::ResetPassword, email());
    let codes: Vec<StoredOtp> = (0..4).map(|_| stored()).collect();
    store
        .put(purpose, &email, codes[0].clone(), KEEP, RETAIN)
        .await
        .unwrap();
    store.record_attempt(purpose, &email).await.unwrap();
    store.record_attempt(purpose, &email).await.unwrap();

    store
        .put(purpose, &email, codes[1].clone(), KEEP, RETAIN)
        .await
        .unwrap();
    let attempt = store
        .record_attempt(purpose, &email)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        attempt.attempts, 1,
        "a new code starts the shared counter over"
    );
    assert_eq!(
        attempt.codes,
        codes[..2].to_vec(),
        "both codes are live, oldest first"
    );
    for code in &codes[2..] {
        store
            .put(purpose, &email, code.clone(), KEEP, RETAIN)
            .await
            .unwrap();
    }
    let attempt = store
        .record_attempt(purpose, &email)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        attempt.codes,
        vec![codes[0].clone(), codes[2].clone(), codes[3].clone()],
        "the first and the {} newest are kept",
        KEEP - 1
    );
    assert!(
        !store.consume(purpose, &email, &codes[1].mac).await.unwrap(),
        "the oldest code after the first is gone"
    );
    assert!(
        store.consume(purpose, &email, &codes[2].mac).await.unwrap(),
        "a middle code can be used"
    );
    let left = store
        .record_attempt(purpose, &email)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        left.codes,
        vec![codes[0].clone(), codes[3].clone()],
        "consuming one code leaves the others"
    );
    assert_eq!(
        left.attempts, 2,
        "consuming does not reset the shared counter"
    );
    store.discard(purpose, &email).await.unwrap();
    assert_eq!(
        store.record_attempt(purpose, &email).await.unwrap(),
        None,
        "discard deletes every code"
    );
}

async fn a_pending_password_round_trips(store: &dyn OtpStore) {
    let (purpose, email) = (OtpPurpose::VerifyEmail, email());
    let with = StoredOtp {
        pending_password: Some(PasswordHash::new(
            "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$aGFzaGhhc2hoYXNo",
        )),
        requested_by: Some("203.0.113.9".parse().unwrap()),
        ..stored()
    };
    store
        .put(purpose, &email, with.clone(), KEEP, RETAIN)
        .await
        .unwrap();
    store
        .put(purpose, &email, stored(), KEEP, RETAIN)
        .await
        .unwrap();
    let attempt = store
        .record_attempt(purpose, &email)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        attempt.codes[0], with,
        "the pending password comes back exactly"
    );
    assert_eq!(attempt.codes[1].pending_password, None);
    store.discard(purpose, &email).await.unwrap();
}

async fn consume_needs_the_stored_mac(store: &dyn OtpStore) {
    let (purpose, email, otp) = (OtpPurpose::VerifyEmail, email(), stored());
    store
        .put(purpose, &email, otp.clone(), KEEP, RETAIN)
        .await
        .unwrap();

    assert!(
        !store.consume(purpose, &email, &mac()).await.unwrap(),
        "a wrong MAC consumes nothing"
    );
    let attempt = store.record_attempt(purpose, &email).await.unwrap();
    assert_eq!(
        attempt.map(|a| a.codes),
        Some(vec![otp.clone()]),
        "the code is still there after a wrong MAC"
    );

    assert!(store.consume(purpose, &email, &otp.mac).await.unwrap());
    assert_eq!(
        store.record_attempt(purpose, &email).await.unwrap(),
        None,
        "a consumed code is gone"
    );
    assert!(
        !store.consume(purpose, &email, &otp.mac).await.unwrap(),
        "a code is consumed once"
    );
}

async fn exactly_one_parallel_consume_wins(store: &Arc<dyn OtpStore>) {
    let (purpose, email, otp) = (OtpPurpose::ResetPassword, email(), stored());
    store
        .put(purpose, &email, otp.clone(), KEEP, RETAIN)
        .await
        .unwrap();

    let mut tasks = JoinSet::new();
    for _ in 0..RACERS {
        let (store, email) = (Arc::clone(store), email.clone());
        let mac = otp.mac;
        tasks.spawn(async move { store.consume(purpose, &email, &mac).await.unwrap() });
    }
    let wins = tasks
        .join_all()
        .await
        .into_iter()
        .filter(|won| *won)
        .count();
    assert_eq!(
        wins, 1,
        "exactly one of {RACERS} concurrent consumes succeeds"
    );
    assert_eq!(store.record_attempt(purpose, &email).await.unwrap(), None);
}

async fn parallel_attempts_get_distinct_counts(store: &Arc<dyn OtpStore>) {
    let (purpose, email, otp) = (OtpPurpose::VerifyEmail, email(), stored());
    store
        .put(purpose, &email, otp.clone(), KEEP, RETAIN)
        .await
        .unwrap();

    let mut tasks = JoinSet::new();
    for _ in 0..RACERS {
        let (store, email) = (Arc::clone(store), email.clone());
        tasks.spawn(async move {
            let attempt = store.record_attempt(purpose, &email).await.unwrap();
            attempt.expect("the code is there").attempts
        });
    }
    let mut counts = tasks.join_all().await;
    counts.sort_unstable();
    assert_eq!(
        counts,
        (1..=RACERS).collect::<Vec<_>>(),
        "concurrent attempts each see a distinct count"
    );
    let next = store
        .record_attempt(purpose, &email)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(next.attempts, RACERS + 1);
    store.discard(purpose, &email).await.unwrap();
}

async fn discard_deletes(store: &dyn OtpStore) {
    let (purpose, email) = (OtpPurpose::ResetPassword, email());
    store
        .put(purpose, &email, stored(), KEEP, RETAIN)
        .await
        .unwrap();
    store.discard(purpose, &email).await.unwrap();
    assert_eq!(store.record_attempt(purpose, &email).await.unwrap(), None);
    store
        .discard(purpose, &email)
        .await
        .expect("discarding nothing is not an error");
}

async fn purposes_and_addresses_are_isolated(store: &dyn OtpStore) {
    let (email, neighbour) = (email(), email());
    let verify = stored();
    store
        .put(
            OtpPurpose::VerifyEmail,
            &email,
            verify.clone(),
            KEEP,
            RETAIN,
        )
        .await
        .unwrap();

    assert_eq!(
        store
            .record_attempt(OtpPurpose::ResetPassword, &email)
            .await
            .unwrap(),
        None,
        "a verification code is not a reset code"
    );
    assert!(!store
        .consume(OtpPurpose::ResetPassword, &email, &verify.mac)
        .await
        .unwrap());
    store
        .discard(OtpPurpose::ResetPassword, &email)
        .await
        .unwrap();
    assert_eq!(
        store
            .record_attempt(OtpPurpose::VerifyEmail, &neighbour)
            .await
            .unwrap(),
        None,
        "codes are per address"
    );

    let reset = stored();
    store
        .put(
            OtpPurpose::ResetPassword,
            &email,
            reset.clone(),
            KEEP,
            RETAIN,
        )
        .await
        .unwrap();
    let v = store
        .record_attempt(OtpPurpose::VerifyEmail, &email)
        .await
        .unwrap()
        .expect("putting a reset code leaves the verification code alone");
    assert_eq!((v.codes, v.attempts), (vec![verify.clone()], 1));
    let r = store
        .record_attempt(OtpPurpose::ResetPassword, &email)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((r.codes, r.attempts), (vec![reset], 1), "separate counters");

    assert!(store
        .consume(OtpPurpose::VerifyEmail, &email, &verify.mac)
        .await
        .unwrap());
    assert!(
        store
            .record_attempt(OtpPurpose::ResetPassword, &email)
            .await
            .unwrap()
            .is_some(),
        "consuming one purpose leaves the other"
    );
    store
        .discard(OtpPurpose::ResetPassword, &email)
        .await
        .unwrap();
}

async fn codes_are_dropped_after_retain_for(store: &dyn OtpStore) {
    let (purpose, email) = (OtpPurpose::VerifyEmail, email());
    store
        .put(purpose, &email, stored(), KEEP, Duration::from_secs(1))
        .await
        .unwrap();
    assert!(store
        .record_attempt(purpose, &email)
        .await
        .unwrap()
        .is_some());
    eventually("a code to be dropped after retain_for", || async {
        store
            .record_attempt(purpose, &email)
            .await
            .unwrap()
            .is_none()
    })
    .await;
}

async fn send_slot_cooldown(store: &dyn OtpStore) {
    let (purpose, email) = (OtpPurpose::VerifyEmail, email());
    assert_eq!(
        store
            .claim_send_slot(purpose, &email, COOLDOWN)
            .await
            .unwrap(),
        SendSlot::Granted,
        "the first mail may go"
    );
    match store
        .claim_send_slot(purpose, &email, COOLDOWN)
        .await
        .unwrap()
    {
        SendSlot::Cooldown { retry_after } => {
            assert!(
                retry_after <= COOLDOWN,
                "retry_after {retry_after:?} exceeds the cooldown {COOLDOWN:?}"
            );
            assert!(
                retry_after >= Duration::from_secs(1),
                "retry_after {retry_after:?} is below the promised minimum of 1 s"
            );
        }
        SendSlot::Granted => panic!("a second mail inside the cooldown was allowed"),
    }

    assert_eq!(
        store
            .claim_send_slot(OtpPurpose::ResetPassword, &email, COOLDOWN)
            .await
            .unwrap(),
        SendSlot::Granted,
        "the cooldown is per purpose"
    );
    assert_eq!(
        store
            .claim_send_slot(purpose, &self::email(), COOLDOWN)
            .await
            .unwrap(),
        SendSlot::Granted,
        "the cooldown is per address"
    );

    eventually(
        "the send slot to be granted again after the cooldown",
        || async {
            store
                .claim_send_slot(purpose, &email, COOLDOWN)
                .await
                .unwrap()
                == SendSlot::Granted
        },
    )
    .await;
    assert!(
        matches!(
            store
                .claim_send_slot(purpose, &email, COOLDOWN)
                .await
                .unwrap(),
            SendSlot::Cooldown { .. }
        ),
        "granting again started a new cooldown"
    );
}

// --- helpers ---

/// Polls `check` until it holds, failing after [`DEADLINE`].
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        if check().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {DEADLINE:?} waiting for {what}"
        );
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

fn email() -> EmailAddress {
    EmailAddress::parse(&format!("otp.{}@example.com", Uuid::new_v4().simple())).unwrap()
}

fn mac() -> OtpMac {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    OtpMac(bytes)
}

/// A code with sub-millisecond digits in its expiry, which a store must keep (to the
/// microsecond).
fn stored() -> StoredOtp {
    StoredOtp {
        mac: mac(),
        expires_at: Utc::now().trunc_subsecs(6) + chrono::Duration::minutes(10),
        pending_password: None,
        requested_by: None,
    }
}

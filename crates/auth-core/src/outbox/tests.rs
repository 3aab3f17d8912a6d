#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use futures::executor::block_on;
use secrecy::SecretBox;
use uuid::Uuid;

use super::*;
use crate::domain::email::EmailAddress;
use crate::domain::otp::OtpCode;
use crate::ports::{
    ClaimedMail, MailMessage, Mailer, MailerError, MockMailer, MockOutboxStore, MockRandomSource,
    OutboxError, QueuedMail, SuppressionReason,
};
use crate::service::add;
use crate::testing::ManualClock;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 6, 12, 0, 0).unwrap()
}

fn seal() -> MailSeal {
    MailSeal::derive(&SecretBox::new(vec![7u8; 32].into_boxed_slice())).unwrap()
}

fn ada() -> EmailAddress {
    EmailAddress::parse("ada@example.com").unwrap()
}

fn code_mail() -> MailMessage {
    MailMessage::ResetPassword {
        code: OtpCode::parse("493817").unwrap(),
        valid_for: Duration::from_secs(600),
    }
}

fn letter(message: MailMessage) -> Letter {
    Letter {
        message,
        language: Some("de-CH, de;q=0.9".to_owned()),
    }
}

// ---- sealing ----

#[test]
fn a_sealed_letter_opens_for_its_message_and_recipient_only() {
    let (id, to) = (Uuid::from_u128(1), ada());
    let sealed = seal().seal(id, &to, &letter(code_mail()));
    assert_eq!(seal().open(id, &to, &sealed).unwrap(), letter(code_mail()));
    let other = EmailAddress::parse("eve@example.com").unwrap();
    assert_eq!(
        seal().open(Uuid::from_u128(2), &to, &sealed),
        Err(SealError::Unreadable),
        "moved to another message"
    );
    assert_eq!(seal().open(id, &other, &sealed), Err(SealError::Unreadable));
    let other_key = MailSeal::derive(&SecretBox::new(vec![8u8; 32].into_boxed_slice())).unwrap();
    assert_eq!(other_key.open(id, &to, &sealed), Err(SealError::Unreadable));
    let mut altered = sealed.clone();
    let last = altered.len() - 1;
    altered[last] ^= 1;
    assert_eq!(seal().open(id, &to, &altered), Err(SealError::Unreadable));
    assert_eq!(
        seal().open(id, &to, &sealed[..23]),
        Err(SealError::Unreadable)
    );
    assert_eq!(
        seal().open(id, &to, &sealed[..24]),
        Err(SealError::Unreadable)
    );
}

#[test]
fn a_sealed_letter_hides_the_code_and_never_repeats() {
    let (id, to) = (Uuid::from_u128(1), ada());
    let a = seal().seal(id, &to, &letter(code_mail()));
    let b = seal().seal(id, &to, &letter(code_mail()));
    assert_ne!(a, b, "a fresh nonce each time");
    assert!(
        !a.windows(6).any(|w| w == b"493817"),
        "no code in the clear"
    );
    assert!(!String::from_utf8_lossy(&a).contains("reset_password"));
}

#[test]
fn the_seal_needs_a_32_byte_secret() {
    let short = MailSeal::derive(&SecretBox::new(vec![1u8; 31].into_boxed_slice()));
    assert_eq!(
        short.err(),
        Some(SealError::SecretTooShort { min: 32, len: 31 })
    );
    assert!(MailSeal::derive(&SecretBox::new(vec![1u8; 32].into_boxed_slice())).is_ok());
}

// ---- the queue ----

fn queue(store: MockOutboxStore, hook: Option<EnqueueHook>) -> MailQueue {
    let mut random = MockRandomSource::new();
    random.expect_uuid().returning(|| Uuid::from_u128(42));
    let q = MailQueue::new(
        Arc::new(store),
        seal(),
        Arc::new(ManualClock::new(t0())),
        Arc::new(random),
        Duration::from_secs(3600),
    );
    match hook {
        Some(h) => q.on_enqueue(h),
        None => q,
    }
}

#[test]
fn a_code_mail_lives_as_long_as_its_code_and_a_notice_for_max_age() {
    let q = queue(MockOutboxStore::new(), None);
    let code = q.prepare(&ada(), &code_mail(), Some("de"));
    assert_eq!(code.id, Uuid::from_u128(42));
    assert_eq!(code.kind, "reset_password");
    assert_eq!(code.created_at, t0());
    assert_eq!(code.expires_at, add(t0(), Duration::from_secs(600)));
    assert_eq!(
        seal().open(code.id, &ada(), &code.sealed).unwrap(),
        Letter {
            message: code_mail(),
            language: Some("de".to_owned())
        }
    );
    let notice = q.prepare(&ada(), &MailMessage::password_changed(), None);
    assert_eq!(notice.expires_at, add(t0(), Duration::from_secs(3600)));
    assert_eq!(notice.kind, "password_changed");
}

#[test]
fn only_reset_and_login_codes_supersede_unsent_ones() {
    let q = queue(MockOutboxStore::new(), None);
    let code = |n| OtpCode::from_number(n).unwrap();
    let valid_for = Duration::from_secs(60);
    let cases = [
        (
            MailMessage::ResetPassword {
                code: code(1),
                valid_for,
            },
            Some("reset_password"),
        ),
        (
            MailMessage::LoginCode {
                code: code(2),
                valid_for,
            },
            Some("login_code"),
        ),
        (
            MailMessage::VerifyEmail {
                code: code(3),
                valid_for,
            },
            None,
        ),
        (
            MailMessage::VerifyEmailAgain {
                code: code(4),
                valid_for,
                requested_at: t0(),
            },
            None,
        ),
        (MailMessage::password_changed(), None),
        (MailMessage::SignupAttempted, None),
        (MailMessage::AccountDeleted, None),
        (MailMessage::SessionEndedAfterWrongPasswords, None),
    ];
    for (message, key) in cases {
        let mail = q.prepare(&ada(), &message, None);
        assert_eq!(mail.supersedes.as_deref(), key, "{}", message.kind());
    }
}

#[test]
fn sending_queues_and_wakes_the_courier() {
    let stored = Arc::new(Mutex::new(Vec::new()));
    let mut store = MockOutboxStore::new();
    let keep = Arc::clone(&stored);
    store.expect_enqueue().times(1).returning(move |m| {
        keep.lock().unwrap().push(m.clone());
        Ok(())
    });
    let woken = Arc::new(AtomicUsize::new(0));
    let w = Arc::clone(&woken);
    let q = queue(
        store,
        Some(Arc::new(move || {
            w.fetch_add(1, Ordering::SeqCst);
        })),
    );
    block_on(q.send(&ada(), &code_mail())).unwrap();
    assert_eq!(woken.load(Ordering::SeqCst), 1);
    let stored = stored.lock().unwrap();
    assert_eq!(stored.len(), 1);
    let opened = seal()
        .open(stored[0].id, &ada(), &stored[0].sealed)
        .unwrap();
    assert_eq!(opened.message, code_mail());
    assert_eq!(opened.language, None, "send has no language preference");
}

#[test]
fn an_outbox_outage_is_a_mail_outage_and_wakes_nobody() {
    for error in [
        OutboxError::Unavailable("down".into()),
        OutboxError::Other("broken".into()),
    ] {
        let mut store = MockOutboxStore::new();
        let error = Mutex::new(Some(error));
        store
            .expect_enqueue()
            .returning(move |_| Err(error.lock().unwrap().take().unwrap()));
        let woken = Arc::new(AtomicUsize::new(0));
        let w = Arc::clone(&woken);
        let q = queue(
            store,
            Some(Arc::new(move || {
                w.fetch_add(1, Ordering::SeqCst);
            })),
        );
        let result = block_on(q.send_localized(&ada(), &code_mail(), Some("en")));
        assert!(matches!(result, Err(MailerError::Unavailable(_))));
        assert_eq!(woken.load(Ordering::SeqCst), 0);
    }
}

// ---- backoff ----

#[test]
fn backoff_doubles_from_the_base_up_to_the_cap() {
    let policy = CourierPolicy {
        backoff_base: Duration::from_secs(1),
        backoff_cap: Duration::from_secs(20),
        ..CourierPolicy::default()
    };
    let waits: Vec<u64> = (0..=7).map(|n| policy.backoff(n).as_secs()).collect();
    assert_eq!(waits, vec![1, 1, 2, 4, 8, 16, 20, 20]);
    assert_eq!(
        policy.backoff(u32::MAX),
        Duration::from_secs(20),
        "no overflow"
    );
}

#[test]
fn jitter_picks_between_half_and_all_of_the_wait() {
    let policy = CourierPolicy {
        backoff_base: Duration::from_secs(8),
        backoff_cap: Duration::from_secs(20),
        ..CourierPolicy::default()
    };
    assert_eq!(policy.jittered_backoff(1, 0.0), Duration::from_secs(4));
    assert_eq!(policy.jittered_backoff(1, 0.5), Duration::from_secs(6));
    assert_eq!(policy.jittered_backoff(1, 1.0), Duration::from_secs(8));
    assert_eq!(
        policy.jittered_backoff(1, 7.0),
        Duration::from_secs(8),
        "clamped"
    );
    assert_eq!(
        policy.jittered_backoff(1, -1.0),
        Duration::from_secs(4),
        "clamped"
    );
    assert_eq!(policy.jittered_backoff(1, f64::NAN), Duration::from_secs(4));
    assert_eq!(policy.jittered_backoff(2, 1.0), Duration::from_secs(16));
}

#[test]
fn the_default_policy_retries_a_returning_server_within_half_a_minute() {
    let policy = CourierPolicy::default();
    assert!(policy.backoff(1000) <= Duration::from_secs(30));
    assert!(policy.lease > Duration::from_secs(30), "longer than a send");
    assert!(policy.max_attempts > 1);
}

// ---- the courier ----

fn claimed(message: &MailMessage, attempts: u32, expires_at: DateTime<Utc>) -> ClaimedMail {
    let id = Uuid::from_u128(7);
    ClaimedMail {
        mail: QueuedMail {
            id,
            to: ada(),
            kind: message.kind().to_owned(),
            supersedes: None,
            sealed: seal().seal(
                id,
                &ada(),
                &Letter {
                    message: message.clone(),
                    language: Some("de".to_owned()),
                },
            ),
            created_at: t0(),
            expires_at,
        },
        attempts,
        lease: Uuid::from_u128(99),
    }
}

fn later() -> DateTime<Utc> {
    add(t0(), Duration::from_secs(600))
}

/// A store that hands out `batch` once, then nothing, and has no suppressions.
fn store_with(batch: Vec<ClaimedMail>) -> MockOutboxStore {
    let mut store = MockOutboxStore::new();
    let batch = Mutex::new(Some(batch));
    store
        .expect_claim()
        .returning(move |_, _, _| Ok(batch.lock().unwrap().take().unwrap_or_default()));
    store.expect_suppression().returning(|_, _| Ok(None));
    store
}

fn courier(store: MockOutboxStore, mailer: MockMailer) -> Courier {
    Courier::new(
        Arc::new(store),
        Arc::new(mailer),
        seal(),
        Arc::new(ManualClock::new(t0())),
        CourierPolicy {
            max_attempts: 3,
            ..CourierPolicy::default()
        },
    )
    .with_jitter(|| 1.0)
}

fn no_mail() -> MockMailer {
    let mut mailer = MockMailer::new();
    mailer.expect_send().never();
    mailer.expect_send_localized().never();
    mailer
}

/// The policy a courier reports is the one it delivers by (not a default), so a caller that
/// paces its rounds by it paces them as configured.
#[test]
fn a_courier_reports_the_policy_it_was_given() {
    let courier = courier(MockOutboxStore::new(), no_mail());
    assert_eq!(
        *courier.policy(),
        CourierPolicy {
            max_attempts: 3,
            ..CourierPolicy::default()
        }
    );
}

#[test]
fn an_idle_round_sweeps_what_expired() {
    let mut store = MockOutboxStore::new();
    store
        .expect_claim()
        .withf(|now, lease, limit| {
            *now == t0() && *lease == Duration::from_secs(60) && *limit == 16
        })
        .returning(|_, _, _| Ok(vec![]));
    store
        .expect_sweep()
        .withf(|now| *now == t0())
        .times(1)
        .returning(|_| Ok(3));
    let report = block_on(courier(store, no_mail()).deliver_due()).unwrap();
    assert_eq!(report, DeliveryReport::default());
}

#[test]
fn a_delivered_message_is_removed_and_sent_in_its_language() {
    let mut store = store_with(vec![claimed(&code_mail(), 0, later())]);
    store
        .expect_remove()
        .withf(|id, lease| *id == Uuid::from_u128(7) && *lease == Uuid::from_u128(99))
        .times(1)
        .returning(|_, _| Ok(true));
    let mut mailer = MockMailer::new();
    mailer
        .expect_send_localized()
        .withf(|to, m, lang| *to == ada() && *m == code_mail() && *lang == Some("de"))
        .times(1)
        .returning(|_, _, _| Ok(()));
    let report = block_on(courier(store, mailer).deliver_due()).unwrap();
    assert_eq!(
        report,
        DeliveryReport {
            claimed: 1,
            sent: 1,
            ..DeliveryReport::default()
        }
    );
}

#[test]
fn a_code_mail_past_its_code_is_dropped_not_sent_late() {
    for expires_at in [t0(), add(t0(), Duration::from_secs(0))] {
        let mut store = store_with(vec![claimed(&code_mail(), 0, expires_at)]);
        store.expect_remove().times(1).returning(|_, _| Ok(true));
        let report = block_on(courier(store, no_mail()).deliver_due()).unwrap();
        assert_eq!((report.expired, report.sent), (1, 0));
    }
    // One microsecond before its end, it still goes.
    let almost = t0() + chrono::TimeDelta::microseconds(1);
    let mut store = store_with(vec![claimed(&code_mail(), 0, almost)]);
    store.expect_remove().times(1).returning(|_, _| Ok(true));
    let mut mailer = MockMailer::new();
    mailer
        .expect_send_localized()
        .times(1)
        .returning(|_, _, _| Ok(()));
    let report = block_on(courier(store, mailer).deliver_due()).unwrap();
    assert_eq!((report.expired, report.sent), (0, 1));
}

#[test]
fn mail_to_a_suppressed_address_is_buried_unsent() {
    let mut store = MockOutboxStore::new();
    let batch = Mutex::new(Some(vec![claimed(&code_mail(), 0, later())]));
    store
        .expect_claim()
        .returning(move |_, _, _| Ok(batch.lock().unwrap().take().unwrap_or_default()));
    store
        .expect_suppression()
        .withf(|to, now| *to == ada() && *now == t0())
        .returning(|_, _| Ok(Some((later(), SuppressionReason::Complaint))));
    store
        .expect_bury()
        .withf(|_, _, why| why.contains("suppressed") && why.contains("complaint"))
        .times(1)
        .returning(|_, _, _| Ok(true));
    let report = block_on(courier(store, no_mail()).deliver_due()).unwrap();
    assert_eq!((report.suppressed, report.sent, report.dead), (1, 0, 0));
}

#[test]
fn a_message_that_cannot_be_opened_is_buried() {
    let mut broken = claimed(&code_mail(), 0, later());
    broken.mail.sealed[30] ^= 1;
    let mut store = store_with(vec![broken]);
    store
        .expect_bury()
        .withf(|_, _, why| why.contains("cannot be opened"))
        .times(1)
        .returning(|_, _, _| Ok(true));
    let report = block_on(courier(store, no_mail()).deliver_due()).unwrap();
    assert_eq!(report.dead, 1);
}

#[test]
fn a_permanent_refusal_buries_the_message_and_suppresses_the_address() {
    let mut store = store_with(vec![claimed(&MailMessage::password_changed(), 0, later())]);
    let suppress_until = add(t0(), CourierPolicy::default().suppress_for);
    store
        .expect_suppress()
        .withf(move |to, until, reason| {
            *to == ada() && *until == suppress_until && *reason == SuppressionReason::Rejected
        })
        .times(1)
        .returning(|_, _, _| Ok(()));
    store
        .expect_bury()
        .withf(|_, _, why| why.contains("550 no such mailbox"))
        .times(1)
        .returning(|_, _, _| Ok(true));
    store.expect_retry_at().never();
    let mut mailer = MockMailer::new();
    mailer
        .expect_send_localized()
        .times(1)
        .returning(|_, _, _| Err(MailerError::Rejected("550 no such mailbox".into())));
    let report = block_on(courier(store, mailer).deliver_due()).unwrap();
    assert_eq!((report.dead, report.deferred), (1, 0));
}

#[test]
fn a_transient_failure_is_retried_after_the_backoff() {
    // The second failure (one attempt before): 2 s with full jitter.
    let mut store = store_with(vec![claimed(&code_mail(), 1, later())]);
    store
        .expect_retry_at()
        .withf(|_, _, at, why| *at == add(t0(), Duration::from_secs(2)) && why == "451 busy")
        .times(1)
        .returning(|_, _, _, _| Ok(true));
    store.expect_bury().never();
    let mut mailer = MockMailer::new();
    mailer
        .expect_send_localized()
        .returning(|_, _, _| Err(MailerError::Unavailable("451 busy".into())));
    let report = block_on(courier(store, mailer).deliver_due()).unwrap();
    assert_eq!((report.deferred, report.dead), (1, 0));
}

#[test]
fn the_last_allowed_attempt_gives_up() {
    // max_attempts is 3: two failed before, this is the third.
    let mut store = store_with(vec![claimed(&code_mail(), 2, later())]);
    store
        .expect_bury()
        .withf(|_, _, why| why.starts_with("gave up after 3 attempts"))
        .times(1)
        .returning(|_, _, _| Ok(true));
    store.expect_retry_at().never();
    let mut mailer = MockMailer::new();
    mailer
        .expect_send_localized()
        .returning(|_, _, _| Err(MailerError::Unavailable("timeout".into())));
    let report = block_on(courier(store, mailer).deliver_due()).unwrap();
    assert_eq!((report.deferred, report.dead), (0, 1));
}

#[test]
fn a_lost_lease_is_counted_not_reported_as_sent() {
    let mut store = store_with(vec![claimed(&code_mail(), 0, later())]);
    store.expect_remove().returning(|_, _| Ok(false));
    let mut mailer = MockMailer::new();
    mailer.expect_send_localized().returning(|_, _, _| Ok(()));
    let report = block_on(courier(store, mailer).deliver_due()).unwrap();
    assert_eq!((report.lost_leases, report.sent), (1, 0));
}

#[test]
fn an_outbox_outage_ends_the_round_with_an_error() {
    let mut store = MockOutboxStore::new();
    store
        .expect_claim()
        .returning(|_, _, _| Err(OutboxError::Unavailable("down".into())));
    assert!(block_on(courier(store, no_mail()).deliver_due()).is_err());
}

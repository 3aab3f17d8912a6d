#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use chrono::{DateTime, TimeZone, Utc};
use futures::executor::block_on;
use uuid::Uuid;

use super::*;
use crate::domain::user::UserId;
use crate::outbox::CourierPolicy;
use crate::ports::{
    ClaimedDelivery, LoginFailure, MockWebhookSender, MockWebhookStore, TruncatedIp, WebhookHeaders,
};
use crate::testing::ManualClock;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 6, 12, 0, 0).unwrap()
}

/// The Standard Webhooks specification's published example: the same secret, id, time and
/// body must give the same signature, or no standard verifier accepts ours.
#[test]
fn signatures_match_the_standard_webhooks_example() {
    let secret = WebhookSecret::from_bytes(B64.decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap());
    let signature = sign(
        &secret,
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        1614265330,
        r#"{"test": 2432232314}"#,
    );
    assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    // Any change to what is signed changes the signature: a replayed body under a new
    // timestamp, or another id, does not verify.
    assert_ne!(
        sign(
            &secret,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265331,
            r#"{"test": 2432232314}"#
        ),
        signature
    );
    assert_ne!(
        sign(&secret, "msg_other", 1614265330, r#"{"test": 2432232314}"#),
        signature
    );
}

#[test]
fn secrets_are_shown_in_the_standard_form_and_never_debugged() {
    let secret = WebhookSecret::from_bytes(vec![0xAB; 32]);
    let text = secret.encode();
    let text = text.expose_secret();
    assert!(text.starts_with("whsec_"));
    assert_eq!(B64.decode(&text[6..]).unwrap(), vec![0xAB; 32]);
    assert_eq!(format!("{secret:?}"), "WebhookSecret([REDACTED])");
}

#[test]
fn a_sealed_secret_opens_only_for_its_endpoint() {
    let seal = WebhookSeal::derive(&[9; 32]);
    let secret = WebhookSecret::from_bytes(vec![1; 32]);
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    let sealed = seal.seal(a, &secret);
    assert_eq!(seal.open(a, &sealed).unwrap().expose(), secret.expose());
    assert!(seal.open(b, &sealed).is_none());
    assert!(WebhookSeal::derive(&[8; 32]).open(a, &sealed).is_none());
    assert!(!sealed.windows(32).any(|w| w == secret.expose()));
}

#[test]
fn urls_are_http_or_https_without_credentials() {
    assert!(WebhookUrl::parse("https://hooks.example.com/in", false).is_ok());
    assert_eq!(
        WebhookUrl::parse("http://hooks.example.com/in", false),
        Err(WebhookUrlError::HttpsRequired)
    );
    assert!(WebhookUrl::parse("http://127.0.0.1:8080/in", true).is_ok());
    for (raw, error) in [
        ("ftp://example.com/", WebhookUrlError::Scheme),
        ("file:///etc/passwd", WebhookUrlError::Scheme),
        ("javascript:alert(1)", WebhookUrlError::Scheme),
        ("not a url", WebhookUrlError::Malformed),
        ("/relative", WebhookUrlError::Malformed),
        ("https://user:pw@example.com/", WebhookUrlError::Credentials),
        ("https://example.com/#x", WebhookUrlError::Fragment),
    ] {
        assert_eq!(WebhookUrl::parse(raw, true), Err(error), "{raw}");
    }
    let long = format!("https://example.com/{}", "a".repeat(MAX_WEBHOOK_URL_LEN));
    assert_eq!(
        WebhookUrl::parse(&long, true),
        Err(WebhookUrlError::TooLong)
    );
}

#[test]
fn event_kinds_are_known_names_without_repeats() {
    let kinds = EventKinds::parse(&["login_failed", "lockout", "login_failed"]).unwrap();
    assert_eq!(kinds.names(), ["login_failed", "lockout"]);
    assert_eq!(EventKinds::parse::<&str>(&[]), Err(EventKindsError::Empty));
    assert_eq!(
        EventKinds::parse(&["lockout", "LOCKOUT"]),
        Err(EventKindsError::Unknown("LOCKOUT".into()))
    );
    assert_eq!(SecurityEventKind::names().count(), 28);
}

#[test]
fn the_body_holds_the_event_and_nothing_else() {
    let user = UserId::from_uuid(Uuid::new_v4());
    let event = SecurityEvent {
        id: Uuid::new_v4(),
        user_id: user,
        at: t0(),
        kind: SecurityEventKind::LoginFailed(LoginFailure::BadCredentials),
        ip: Some(TruncatedIp::new("203.0.113.77".parse().unwrap(), 24, 48)),
        user_agent: Some("curl/8".into()),
        request_id: Some("req-1".into()),
    };
    let text = payload(&event);
    assert!(
        text.starts_with(r#"{"type":"login_failed","timestamp":"#),
        "{text}"
    );
    let body: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        body,
        serde_json::json!({
            "type": "login_failed",
            "timestamp": "2026-12-06T12:00:00.000000Z",
            "data": {
                "event_id": event.id.to_string(),
                "user_id": user.as_uuid().to_string(),
                "kind": "login_failed",
                "reason": "bad_credentials",
                "at": "2026-12-06T12:00:00.000000Z",
                "ip": "203.0.113.0/24",
                "request_id": "req-1",
            }
        })
    );
}

#[test]
fn statuses_map_to_delivered_retry_or_dead() {
    for s in [200, 201, 204, 299] {
        assert_eq!(verdict(s), Verdict::Delivered, "{s}");
    }
    for s in [408, 429, 500, 502, 503, 599] {
        assert_eq!(verdict(s), Verdict::Retry, "{s}");
    }
    for s in [100, 301, 302, 307, 400, 401, 403, 404, 410, 413, 600] {
        assert_eq!(verdict(s), Verdict::Dead, "{s}");
    }
}

fn claimed(seal: &WebhookSeal, secret: &WebhookSecret, attempts: u32) -> ClaimedDelivery {
    let endpoint_id = Uuid::new_v4();
    ClaimedDelivery {
        id: Uuid::new_v4(),
        endpoint_id,
        url: "https://hooks.example.com/in".into(),
        sealed_secret: seal.seal(endpoint_id, secret),
        kind: "lockout".into(),
        payload: r#"{"type":"lockout"}"#.into(),
        attempts,
        created_at: t0(),
        expires_at: t0() + chrono::TimeDelta::hours(1),
        lease: Uuid::new_v4(),
    }
}

fn policy() -> CourierPolicy {
    CourierPolicy {
        max_attempts: 3,
        backoff_base: Duration::from_secs(2),
        backoff_cap: Duration::from_secs(60),
        ..CourierPolicy::default()
    }
}

/// What a round reported, what the store was told, and the headers of each attempt.
type Round = (
    WebhookReport,
    Arc<Mutex<Vec<String>>>,
    Arc<Mutex<Vec<WebhookHeaders>>>,
);

/// Runs one round over `delivery` with a sender answering `answer`.
fn round(delivery: ClaimedDelivery, seal: WebhookSeal, answer: Result<u16, &'static str>) -> Round {
    let told = Arc::new(Mutex::new(Vec::new()));
    let sent = Arc::new(Mutex::new(Vec::new()));
    let mut store = MockWebhookStore::new();
    let d = delivery.clone();
    store
        .expect_claim()
        .returning(move |_, _, _| Ok(vec![d.clone()]));
    let t = told.clone();
    store.expect_delivered().returning(move |_, _, status, _| {
        t.lock().unwrap().push(format!("delivered {status}"));
        Ok(true)
    });
    let t = told.clone();
    store
        .expect_retry_at()
        .returning(move |_, _, at, status, _| {
            t.lock().unwrap().push(format!(
                "retry {:?} +{}s",
                status,
                (at - t0()).num_seconds()
            ));
            Ok(true)
        });
    let t = told.clone();
    store
        .expect_bury()
        .returning(move |_, _, attempted, status, why, _| {
            t.lock()
                .unwrap()
                .push(format!("bury {attempted} {status:?} {why}"));
            Ok(true)
        });
    let mut sender = MockWebhookSender::new();
    let s = sent.clone();
    sender.expect_post().returning(move |_, headers, _| {
        s.lock().unwrap().push(headers.clone());
        answer.map_err(Into::into)
    });
    let courier = WebhookCourier::new(
        Arc::new(store),
        Arc::new(sender),
        seal,
        Arc::new(ManualClock::new(t0())),
        policy(),
    )
    .with_jitter(|| 0.999_999);
    (block_on(courier.deliver_due()).unwrap(), told, sent)
}

#[test]
fn a_2xx_answer_is_delivered_with_a_signature_over_the_attempt() {
    let seal = WebhookSeal::derive(&[3; 32]);
    let secret = WebhookSecret::from_bytes(vec![5; 32]);
    let d = claimed(&seal, &secret, 0);
    let (report, told, sent) = round(d.clone(), seal, Ok(204));
    assert_eq!(report.delivered, 1);
    assert_eq!(told.lock().unwrap().as_slice(), ["delivered 204"]);
    let headers = sent.lock().unwrap()[0].clone();
    assert_eq!(headers.id, d.id.to_string());
    assert_eq!(headers.timestamp, t0().timestamp().to_string());
    assert_eq!(
        headers.signature,
        sign(&secret, &headers.id, t0().timestamp(), &d.payload)
    );
}

#[test]
fn a_5xx_or_no_answer_is_retried_with_backoff_then_given_up() {
    let seal = WebhookSeal::derive(&[3; 32]);
    let secret = WebhookSecret::from_bytes(vec![5; 32]);
    let (report, told, _) = round(claimed(&seal, &secret, 0), seal.clone(), Ok(500));
    assert_eq!(report.retried, 1);
    // First failure: the base wait (2 s), jitter at its top.
    assert_eq!(told.lock().unwrap().as_slice(), ["retry Some(500) +1s"]);
    let (_, told, _) = round(claimed(&seal, &secret, 1), seal.clone(), Err("refused"));
    assert_eq!(told.lock().unwrap().as_slice(), ["retry None +3s"]);
    let (report, told, _) = round(claimed(&seal, &secret, 2), seal, Ok(503));
    assert_eq!(report.dead, 1);
    assert_eq!(
        told.lock().unwrap().as_slice(),
        ["bury true Some(503) gave up after 3 attempts: answered with status 503"]
    );
}

#[test]
fn a_refusal_or_a_redirect_is_dead_at_once() {
    let seal = WebhookSeal::derive(&[3; 32]);
    let secret = WebhookSecret::from_bytes(vec![5; 32]);
    for status in [400, 404, 302] {
        let (report, told, _) = round(claimed(&seal, &secret, 0), seal.clone(), Ok(status));
        assert_eq!(report.dead, 1);
        assert_eq!(
            told.lock().unwrap().as_slice(),
            [format!(
                "bury true Some({status}) refused with status {status}"
            )]
        );
    }
}

#[test]
fn a_delivery_past_its_age_or_with_a_foreign_secret_is_not_sent() {
    let seal = WebhookSeal::derive(&[3; 32]);
    let secret = WebhookSecret::from_bytes(vec![5; 32]);
    let mut old = claimed(&seal, &secret, 0);
    old.expires_at = t0();
    let (report, _, sent) = round(old, seal.clone(), Ok(200));
    assert_eq!((report.dead, sent.lock().unwrap().len()), (1, 0));
    let foreign = claimed(&WebhookSeal::derive(&[4; 32]), &secret, 0);
    let (report, _, sent) = round(foreign, seal, Ok(200));
    assert_eq!((report.dead, sent.lock().unwrap().len()), (1, 0));
}

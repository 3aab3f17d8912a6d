//! Unit tests of [`AuthService`]: one or more tests per rule, against mockall mocks of the ports,
//! a [`ManualClock`] and predictable randomness.
//!
//! Every test sets expectations only on the port calls its rule needs. A call that no
//! expectation matches panics inside the mock, so "nothing else happens" is checked for free;
//! `never()` is still spelled out where the absence of a call *is* the rule.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use futures::executor::block_on;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::*;
use crate::domain::otp::{OtpAttempt, OtpMac};
use crate::domain::password::PasswordHash;
use crate::domain::session::TokenHash;
use crate::domain::user::UserCredentials;
use crate::ports::{
    BoxError, HasherError, MailerError, MockMailer, MockOtpStore, MockPasswordHasher,
    MockSessionStore, MockUserRepository, OsRandom, OtpStoreError, SessionStoreError,
};
use crate::testing::ManualClock;

// --- fixture ---------------------------------------------------------------------------------

const OTP_KEY: [u8; 32] = [42; 32];
const PASSWORD: &str = "correct horse battery staple";
const NEW_PASSWORD: &str = "a brand new passphrase";
const OLD_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$old";
const NEW_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$new";
/// The first code [`StepRandom`] draws; the leading zero is on purpose.
const FIRST_CODE: &str = "042917";
/// The second code [`StepRandom`] draws.
const SECOND_CODE: &str = "731560";
const WRONG_CODE: &str = "999999";
const TEN_MINUTES: Duration = Duration::from_secs(10 * 60);
const ONE_DAY: Duration = Duration::from_secs(24 * 60 * 60);

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 1, 1, 12, 0, 0).unwrap()
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// `t0 + d`.
fn at(d: Duration) -> DateTime<Utc> {
    t0() + TimeDelta::from_std(d).unwrap()
}

/// `t0 - d`.
fn before(d: Duration) -> DateTime<Utc> {
    t0() - TimeDelta::from_std(d).unwrap()
}

fn email() -> EmailAddress {
    EmailAddress::parse("ada@example.com").unwrap()
}

fn password(raw: &str) -> Password {
    PasswordPolicy::default()
        .parse(SecretString::from(raw), &email())
        .unwrap()
}

fn attempt(raw: &str) -> PasswordAttempt {
    PasswordAttempt::parse(SecretString::from(raw)).unwrap()
}

fn code(raw: &str) -> OtpCode {
    OtpCode::parse(raw).unwrap()
}

fn otp_secret() -> OtpSecret {
    OtpSecret::new(OTP_KEY.to_vec().into_boxed_slice().into()).unwrap()
}

/// What the store must hold for `raw`: its HMAC under the server secret.
fn mac(purpose: OtpPurpose, raw: &str) -> OtpMac {
    otp_secret().mac(purpose, &email(), &code(raw))
}

fn ada_id() -> UserId {
    UserId::from_uuid(Uuid::from_u128(0xADA))
}

fn user(verified: bool) -> User {
    User {
        id: ada_id(),
        email: email(),
        verified_at: verified.then(|| before(ONE_DAY)),
        created_at: before(2 * ONE_DAY),
        updated_at: before(2 * ONE_DAY),
    }
}

fn creds(verified: bool) -> UserCredentials {
    UserCredentials {
        user: user(verified),
        password_hash: PasswordHash::new(OLD_HASH),
    }
}

fn session(n: u128, owner: User, created_at: DateTime<Utc>, expires_at: DateTime<Utc>) -> Session {
    Session {
        id: SessionId::from_uuid(Uuid::from_u128(n)),
        token_hash: SessionToken::from_bytes([n as u8; 32]).hash(),
        user: owner,
        created_at,
        expires_at,
        last_seen_at: created_at,
        client: ClientInfo::default(),
    }
}

fn client() -> ClientInfo {
    ClientInfo::new(
        Some(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7))),
        Some("Mozilla/5.0 (X11; Linux x86_64)"),
    )
}

fn outage() -> BoxError {
    "connection refused".into()
}

/// SHA-256 of the token's raw bytes, computed independently of [`SessionToken::hash`].
fn sha256_of(token: &SessionToken) -> [u8; 32] {
    let raw = URL_SAFE_NO_PAD.decode(token.expose()).unwrap();
    Sha256::digest(&raw).into()
}

fn assert_unavailable(failure: &Failure, dependency: Dependency) {
    assert!(
        failure.is_unavailable() && failure.dependency() == dependency,
        "expected Unavailable({dependency:?}), got {failure:?}"
    );
}

/// Predictable randomness: codes [`FIRST_CODE`], [`SECOND_CODE`], then the second again;
/// the n-th token is `[n; 32]` and the n-th UUID is `n` (both from 1).
#[derive(Default)]
struct StepRandom {
    codes: AtomicUsize,
    tokens: AtomicU8,
    uuids: AtomicU8,
}

/// The n-th UUID [`StepRandom`] draws (from 1).
fn nth_uuid(n: u8) -> Uuid {
    Uuid::from_u128(u128::from(n))
}

impl RandomSource for StepRandom {
    fn otp_code(&self) -> OtpCode {
        let n = self.codes.fetch_add(1, Ordering::SeqCst);
        code(if n == 0 { FIRST_CODE } else { SECOND_CODE })
    }

    fn session_token(&self) -> SessionToken {
        SessionToken::from_bytes([self.tokens.fetch_add(1, Ordering::SeqCst) + 1; 32])
    }

    fn uuid(&self) -> Uuid {
        nth_uuid(self.uuids.fetch_add(1, Ordering::SeqCst) + 1)
    }
}

type Outbox = Arc<Mutex<Vec<(EmailAddress, MailMessage)>>>;
type PutLog = Arc<Mutex<Vec<(OtpPurpose, StoredOtp, Duration)>>>;
/// Codes of the in-memory OTP store, one per purpose (the tests use one address).
type OtpState = Arc<Mutex<HashMap<OtpPurpose, (StoredOtp, u32)>>>;
type SessionState = Arc<Mutex<HashMap<[u8; 32], Session>>>;

/// The service's ports, ready for expectations. Arrange on the fields (or with the helpers
/// below), then call [`Harness::service`].
struct Harness {
    users: MockUserRepository,
    sessions: MockSessionStore,
    otps: MockOtpStore,
    mailer: MockMailer,
    hasher: MockPasswordHasher,
    clock: Arc<ManualClock>,
    random: Arc<dyn RandomSource>,
    config: AuthConfig,
}

impl Harness {
    fn new() -> Self {
        Self {
            users: MockUserRepository::new(),
            sessions: MockSessionStore::new(),
            otps: MockOtpStore::new(),
            mailer: MockMailer::new(),
            hasher: MockPasswordHasher::new(),
            clock: Arc::new(ManualClock::new(t0())),
            random: Arc::new(StepRandom::default()),
            config: AuthConfig::default(),
        }
    }

    fn service(self) -> AuthService {
        let ports = AuthPorts {
            users: Arc::new(self.users),
            sessions: Arc::new(self.sessions),
            otps: Arc::new(self.otps),
            mailer: Arc::new(self.mailer),
            hasher: Arc::new(self.hasher),
            clock: self.clock,
            random: self.random,
        };
        AuthService::new(ports, self.config, otp_secret())
    }

    /// `find_by_email(ada)` answers `found`, as often as asked.
    fn user_lookup(&mut self, found: Option<UserCredentials>) {
        self.users
            .expect_find_by_email()
            .withf(|e| *e == email())
            .returning(move |_| Ok(found.clone()));
    }

    /// `claim_send_slot(purpose, ada, configured cooldown)` answers `slot`, exactly once.
    fn send_slot(&mut self, purpose: OtpPurpose, slot: SendSlot) {
        let cooldown = self.config.mail_cooldown;
        self.otps
            .expect_claim_send_slot()
            .withf(move |p, e, c| *p == purpose && *e == email() && *c == cooldown)
            .times(1)
            .returning(move |_, _, _| Ok(slot));
    }

    /// `hash(password)` is called exactly once and gives `hash`.
    fn hashes(&mut self, password: &'static str, hash: &'static str) {
        self.hasher
            .expect_hash()
            .withf(move |p| p.expose_secret() == password)
            .times(1)
            .returning(move |_| Ok(PasswordHash::new(hash)));
    }

    /// `verify(password, OLD_HASH)` is called exactly once and answers `check`.
    fn verifies(&mut self, password: &'static str, check: PasswordCheck) {
        self.hasher
            .expect_verify()
            .withf(move |p, h| p.expose_secret() == password && h.as_str() == OLD_HASH)
            .times(1)
            .returning(move |_, _| Ok(check));
    }

    /// The live code for `purpose`: `record_attempt` answers it once, with `attempts` counted.
    fn live_code(
        &mut self,
        purpose: OtpPurpose,
        mac: OtpMac,
        expires_at: DateTime<Utc>,
        attempts: u32,
    ) {
        self.otps
            .expect_record_attempt()
            .withf(move |p, e| *p == purpose && *e == email())
            .times(1)
            .returning(move |_, _| {
                Ok(Some(OtpAttempt {
                    otp: StoredOtp { mac, expires_at },
                    attempts,
                }))
            });
    }

    /// Every mail is accepted and kept.
    fn outbox(&mut self) -> Outbox {
        let outbox = Outbox::default();
        let sent = outbox.clone();
        self.mailer.expect_send().returning(move |to, message| {
            sent.lock().unwrap().push((to.clone(), message.clone()));
            Ok(())
        });
        outbox
    }

    /// Every `put` is accepted and kept.
    fn put_log(&mut self) -> PutLog {
        let log = PutLog::default();
        let puts = log.clone();
        self.otps
            .expect_put()
            .withf(|_, e, _, _| *e == email())
            .returning(move |purpose, _, otp, retain| {
                puts.lock().unwrap().push((purpose, otp, retain));
                Ok(())
            });
        log
    }

    /// Nothing is mailed, no code is stored.
    fn nothing_sent_nor_stored(&mut self) {
        self.mailer.expect_send().never();
        self.otps.expect_put().never();
    }

    /// Makes the OTP-store mock behave like a store (one code per purpose with an attempt
    /// counter, consume-if-same-MAC, send slots always granted), so that a test can run a flow:
    /// a code is mailed, then typed in.
    fn otp_store_in_memory(&mut self) -> OtpState {
        let state = OtpState::default();
        self.otps
            .expect_claim_send_slot()
            .returning(|_, _, _| Ok(SendSlot::Granted));
        let s = state.clone();
        self.otps.expect_put().returning(move |purpose, _, otp, _| {
            s.lock().unwrap().insert(purpose, (otp, 0));
            Ok(())
        });
        let s = state.clone();
        self.otps
            .expect_record_attempt()
            .returning(move |purpose, _| {
                Ok(s.lock().unwrap().get_mut(&purpose).map(|(otp, n)| {
                    *n += 1;
                    OtpAttempt {
                        otp: *otp,
                        attempts: *n,
                    }
                }))
            });
        let s = state.clone();
        self.otps
            .expect_consume()
            .returning(move |purpose, _, mac| {
                let mut codes = s.lock().unwrap();
                let same = codes.get(&purpose).is_some_and(|(otp, _)| otp.mac == *mac);
                if same {
                    codes.remove(&purpose);
                }
                Ok(same)
            });
        let s = state.clone();
        self.otps.expect_discard().returning(move |purpose, _| {
            s.lock().unwrap().remove(&purpose);
            Ok(())
        });
        state
    }

    /// Makes the session-store mock behave like a store keyed by token hash.
    fn session_store_in_memory(&mut self) -> SessionState {
        let state = SessionState::default();
        let s = state.clone();
        self.sessions.expect_insert().returning(move |session, _| {
            s.lock()
                .unwrap()
                .insert(session.token_hash.0, session.clone());
            Ok(())
        });
        let s = state.clone();
        self.sessions
            .expect_get()
            .returning(move |hash| Ok(s.lock().unwrap().get(&hash.0).cloned()));
        let s = state.clone();
        self.sessions
            .expect_delete()
            .returning(move |hash| Ok(s.lock().unwrap().remove(&hash.0).is_some()));
        state
    }

    /// `mark_verified(ada, now)` succeeds, as often as asked.
    fn marks_verified(&mut self) {
        self.users
            .expect_mark_verified()
            .withf(|id, _| *id == ada_id())
            .returning(|_, at| {
                Ok(User {
                    verified_at: Some(at),
                    updated_at: at,
                    ..user(false)
                })
            });
    }
}

/// The code of the last code mail in the outbox.
fn last_mailed_code(outbox: &Outbox) -> OtpCode {
    let mails = outbox.lock().unwrap();
    match mails.last() {
        Some((
            _,
            MailMessage::VerifyEmail { code, .. } | MailMessage::ResetPassword { code, .. },
        )) => code.clone(),
        other => panic!("no code mail in the outbox: {other:?}"),
    }
}

// --- signup ----------------------------------------------------------------------------------

#[test]
fn signup_creates_an_unverified_account_and_mails_a_verification_code_stored_as_hmac() {
    let mut h = Harness::new();
    h.user_lookup(None);
    h.hashes(PASSWORD, NEW_HASH);
    h.users
        .expect_create()
        .withf(|new| {
            new.id == UserId::from_uuid(nth_uuid(1))
                && new.email == email()
                && new.password_hash == PasswordHash::new(NEW_HASH)
                && new.created_at == t0()
        })
        .times(1)
        .returning(|new| {
            Ok(User {
                id: new.id,
                email: new.email.clone(),
                verified_at: None,
                created_at: new.created_at,
                updated_at: new.created_at,
            })
        });
    h.send_slot(OtpPurpose::VerifyEmail, SendSlot::Granted);
    let puts = h.put_log();
    let outbox = h.outbox();

    let user = block_on(h.service().signup(email(), password(PASSWORD))).unwrap();

    assert!(!user.is_verified());
    assert_eq!(user.email, email());
    let puts = puts.lock().unwrap();
    assert_eq!(puts.len(), 1, "{puts:?}");
    let (purpose, stored, retain_for) = puts[0];
    assert_eq!(purpose, OtpPurpose::VerifyEmail);
    // Only the HMAC under the server secret is stored (`StoredOtp` has no room for the code).
    assert_eq!(stored.mac, mac(OtpPurpose::VerifyEmail, FIRST_CODE));
    assert_eq!(stored.expires_at, at(TEN_MINUTES));
    assert!(retain_for >= TEN_MINUTES, "{retain_for:?}");
    assert_eq!(
        *outbox.lock().unwrap(),
        vec![(
            email(),
            MailMessage::VerifyEmail {
                code: code(FIRST_CODE),
                valid_for: TEN_MINUTES
            }
        )]
    );
}

#[test]
fn signup_for_a_verified_address_is_email_taken_and_changes_nothing() {
    let mut h = Harness::new();
    h.user_lookup(Some(creds(true)));
    h.users.expect_create().never();
    h.users.expect_replace_unverified_password().never();
    h.nothing_sent_nor_stored();

    let result = block_on(h.service().signup(email(), password(PASSWORD)));

    assert!(matches!(result, Err(SignupError::EmailTaken)), "{result:?}");
}

#[test]
fn signup_again_while_unverified_replaces_the_pending_password_and_code() {
    let mut h = Harness::new();
    h.user_lookup(Some(creds(false)));
    h.send_slot(OtpPurpose::VerifyEmail, SendSlot::Granted);
    h.hashes(PASSWORD, NEW_HASH);
    h.users
        .expect_replace_unverified_password()
        .withf(|id, hash, when| *id == ada_id() && hash.as_str() == NEW_HASH && *when == t0())
        .times(1)
        .returning(|_, _, _| Ok(()));
    h.users.expect_create().never();
    let puts = h.put_log();
    let outbox = h.outbox();

    let user = block_on(h.service().signup(email(), password(PASSWORD))).unwrap();

    assert_eq!(user.id, ada_id());
    assert!(!user.is_verified());
    let puts = puts.lock().unwrap();
    assert_eq!(puts.len(), 1, "the new code replaces the old one: {puts:?}");
    assert_eq!(puts[0].0, OtpPurpose::VerifyEmail);
    assert_eq!(puts[0].1.mac, mac(OtpPurpose::VerifyEmail, FIRST_CODE));
    assert_eq!(last_mailed_code(&outbox), code(FIRST_CODE));
}

/// The pre-account-hijacking rule end to end: a stranger signs up first with Ada's address,
/// then Ada does. The stranger's code dies, Ada's works, and the pending password is Ada's.
#[test]
fn signup_by_the_owner_after_a_stranger_kills_the_strangers_code() {
    let mut h = Harness::new();
    let otps = h.otp_store_in_memory();
    let outbox = h.outbox();
    // First signup: no account yet. Second: the stranger's unverified account.
    let mut lookups = vec![Some(creds(false)), None];
    h.users
        .expect_find_by_email()
        .returning(move |_| Ok(lookups.pop().unwrap_or_else(|| Some(creds(false)))));
    h.hasher
        .expect_hash()
        .withf(|p| p.expose_secret() == "stranger's password")
        .times(1)
        .returning(|_| Ok(PasswordHash::new(OLD_HASH)));
    h.hasher
        .expect_hash()
        .withf(|p| p.expose_secret() == PASSWORD)
        .times(1)
        .returning(|_| Ok(PasswordHash::new(NEW_HASH)));
    h.users
        .expect_create()
        .times(1)
        .returning(|_| Ok(user(false)));
    h.users
        .expect_replace_unverified_password()
        .withf(|id, hash, _| *id == ada_id() && hash.as_str() == NEW_HASH)
        .times(1)
        .returning(|_, _, _| Ok(()));
    h.marks_verified();
    let clock = h.clock.clone();
    let svc = h.service();

    block_on(svc.signup(email(), password("stranger's password"))).unwrap();
    let strangers_code = last_mailed_code(&outbox);
    clock.advance(secs(61));
    block_on(svc.signup(email(), password(PASSWORD))).unwrap();
    let owners_code = last_mailed_code(&outbox);

    assert_ne!(strangers_code, owners_code);
    let stale = block_on(svc.verify_otp(&email(), &strangers_code));
    assert!(matches!(stale, Err(OtpCheckError::InvalidOtp)), "{stale:?}");
    assert!(block_on(svc.verify_otp(&email(), &owners_code))
        .unwrap()
        .is_verified());
    assert!(otps.lock().unwrap().is_empty());
}

/// A brand-new account gets its code even inside a cooldown left over from, e.g., a resend for
/// the address before the account existed: otherwise the first mail would never come.
#[test]
fn signup_of_a_new_account_mails_the_code_even_inside_a_cooldown() {
    let mut h = Harness::new();
    h.user_lookup(None);
    h.hashes(PASSWORD, NEW_HASH);
    h.users
        .expect_create()
        .times(1)
        .returning(|_| Ok(user(false)));
    h.send_slot(
        OtpPurpose::VerifyEmail,
        SendSlot::Cooldown {
            retry_after: secs(42),
        },
    );
    let puts = h.put_log();
    let outbox = h.outbox();

    let result = block_on(h.service().signup(email(), password(PASSWORD)));

    assert!(result.is_ok(), "{result:?}");
    assert_eq!(puts.lock().unwrap().len(), 1);
    assert_eq!(last_mailed_code(&outbox), code(FIRST_CODE));
}

#[test]
fn signup_losing_a_concurrent_signup_race_is_email_taken() {
    let mut h = Harness::new();
    h.user_lookup(None);
    h.hashes(PASSWORD, NEW_HASH);
    h.users
        .expect_create()
        .times(1)
        .returning(|_| Err(UserRepoError::Duplicate));
    h.nothing_sent_nor_stored();

    let result = block_on(h.service().signup(email(), password(PASSWORD)));

    assert!(matches!(result, Err(SignupError::EmailTaken)), "{result:?}");
}

#[test]
fn signup_for_an_address_verified_in_the_meantime_is_email_taken() {
    let mut h = Harness::new();
    h.user_lookup(Some(creds(false)));
    h.send_slot(OtpPurpose::VerifyEmail, SendSlot::Granted);
    h.hashes(PASSWORD, NEW_HASH);
    h.users
        .expect_replace_unverified_password()
        .times(1)
        .returning(|_, _, _| Err(UserRepoError::NotFound));
    h.nothing_sent_nor_stored();

    let result = block_on(h.service().signup(email(), password(PASSWORD)));

    assert!(matches!(result, Err(SignupError::EmailTaken)), "{result:?}");
}

#[test]
fn signup_racing_the_one_that_created_the_account_is_too_many_requests() {
    let mut h = Harness::new();
    let mut fresh = creds(false);
    fresh.user.created_at = before(secs(20));
    h.users
        .expect_find_by_email()
        .returning(move |_| Ok(Some(fresh.clone())));
    h.otps.expect_claim_send_slot().never();
    h.hasher.expect_hash().never();
    h.users.expect_replace_unverified_password().never();
    h.nothing_sent_nor_stored();

    let result = block_on(h.service().signup(email(), password(PASSWORD)));

    match result {
        Err(SignupError::TooManyRequests { retry_after }) => assert_eq!(retry_after, secs(40)),
        other => panic!("expected TooManyRequests, got {other:?}"),
    }
}

#[test]
fn signup_again_inside_the_mail_cooldown_is_too_many_requests_and_changes_nothing() {
    let mut h = Harness::new();
    h.user_lookup(Some(creds(false)));
    h.send_slot(
        OtpPurpose::VerifyEmail,
        SendSlot::Cooldown {
            retry_after: secs(42),
        },
    );
    h.hasher.expect_hash().never();
    h.users.expect_replace_unverified_password().never();
    h.nothing_sent_nor_stored();

    let result = block_on(h.service().signup(email(), password(PASSWORD)));

    match result {
        Err(SignupError::TooManyRequests { retry_after }) => assert_eq!(retry_after, secs(42)),
        other => panic!("expected TooManyRequests, got {other:?}"),
    }
}

#[test]
fn signup_for_a_verified_address_with_enumeration_protection_mails_a_notice_and_answers_ok() {
    let mut h = Harness::new();
    h.config.enumeration_protection = true;
    h.user_lookup(Some(creds(true)));
    // Same cost as a real signup.
    h.hashes(PASSWORD, NEW_HASH);
    h.send_slot(OtpPurpose::VerifyEmail, SendSlot::Granted);
    h.mailer
        .expect_send()
        .withf(|to, message| *to == email() && *message == MailMessage::SignupAttempted)
        .times(1)
        .returning(|_, _| Ok(()));
    h.otps.expect_put().never();
    h.users.expect_create().never();
    h.users.expect_replace_unverified_password().never();

    let user = block_on(h.service().signup(email(), password(PASSWORD))).unwrap();

    // Shaped like a new signup, and not the real account.
    assert_eq!(user.email, email());
    assert!(!user.is_verified());
    assert_ne!(user.id, ada_id());
}

#[test]
fn signup_with_enumeration_protection_inside_the_cooldown_mails_nothing_and_answers_ok() {
    let mut h = Harness::new();
    h.config.enumeration_protection = true;
    h.user_lookup(Some(creds(true)));
    h.hashes(PASSWORD, NEW_HASH);
    h.send_slot(
        OtpPurpose::VerifyEmail,
        SendSlot::Cooldown {
            retry_after: secs(42),
        },
    );
    h.nothing_sent_nor_stored();

    let result = block_on(h.service().signup(email(), password(PASSWORD)));

    assert!(result.is_ok(), "{result:?}");
}

// --- verify_otp ------------------------------------------------------------------------------

#[test]
fn verify_otp_with_the_right_code_consumes_it_by_its_mac_and_marks_the_email_verified() {
    let mut h = Harness::new();
    let expected = mac(OtpPurpose::VerifyEmail, FIRST_CODE);
    h.live_code(OtpPurpose::VerifyEmail, expected, at(TEN_MINUTES), 1);
    h.otps
        .expect_consume()
        .withf(move |p, e, m| *p == OtpPurpose::VerifyEmail && *e == email() && *m == expected)
        .times(1)
        .returning(|_, _, _| Ok(true));
    h.user_lookup(Some(creds(false)));
    h.users
        .expect_mark_verified()
        .withf(|id, when| *id == ada_id() && *when == t0())
        .times(1)
        .returning(|_, when| {
            Ok(User {
                verified_at: Some(when),
                ..user(false)
            })
        });

    let user = block_on(h.service().verify_otp(&email(), &code(FIRST_CODE))).unwrap();

    assert_eq!(user.verified_at, Some(t0()));
}

/// Issues a verification code at t0 through `resend_otp` (real MAC, real expiry), with an
/// in-memory OTP store; returns the harness-built service, the clock and the mailed code.
fn code_issued_at_t0(mut h: Harness) -> (AuthService, Arc<ManualClock>, OtpCode) {
    h.otp_store_in_memory();
    let outbox = h.outbox();
    h.user_lookup(Some(creds(false)));
    h.marks_verified();
    let clock = h.clock.clone();
    let svc = h.service();
    block_on(svc.resend_otp(&email())).unwrap();
    let code = last_mailed_code(&outbox);
    (svc, clock, code)
}

#[test]
fn verify_otp_accepts_a_code_one_second_before_the_end_of_its_ten_minutes() {
    let (svc, clock, code) = code_issued_at_t0(Harness::new());

    clock.set(at(TEN_MINUTES - secs(1)));
    let result = block_on(svc.verify_otp(&email(), &code));

    assert!(result.unwrap().is_verified());
}

#[test]
fn verify_otp_refuses_a_code_at_and_after_the_end_of_its_ten_minutes() {
    let (svc, clock, code) = code_issued_at_t0(Harness::new());

    clock.set(at(TEN_MINUTES));
    let at_end = block_on(svc.verify_otp(&email(), &code));
    clock.set(at(TEN_MINUTES + secs(1)));
    let after_end = block_on(svc.verify_otp(&email(), &code));

    assert!(
        matches!(at_end, Err(OtpCheckError::OtpExpired)),
        "{at_end:?}"
    );
    assert!(
        matches!(after_end, Err(OtpCheckError::OtpExpired)),
        "{after_end:?}"
    );
}

#[test]
fn verify_otp_code_lifetime_is_configurable() {
    let mut h = Harness::new();
    h.config.otp_ttl = secs(120);
    let (svc, clock, code) = code_issued_at_t0(h);

    clock.set(at(secs(120)));
    let at_end = block_on(svc.verify_otp(&email(), &code));
    clock.set(at(secs(119)));
    let just_before = block_on(svc.verify_otp(&email(), &code));

    assert!(
        matches!(at_end, Err(OtpCheckError::OtpExpired)),
        "{at_end:?}"
    );
    assert!(just_before.unwrap().is_verified());
}

#[test]
fn verify_otp_code_works_only_once() {
    let (svc, _clock, code) = code_issued_at_t0(Harness::new());

    let first = block_on(svc.verify_otp(&email(), &code));
    let second = block_on(svc.verify_otp(&email(), &code));

    assert!(first.is_ok(), "{first:?}");
    assert!(
        matches!(second, Err(OtpCheckError::InvalidOtp)),
        "{second:?}"
    );
}

#[test]
fn verify_otp_losing_the_consume_race_is_invalid_otp() {
    let mut h = Harness::new();
    h.live_code(
        OtpPurpose::VerifyEmail,
        mac(OtpPurpose::VerifyEmail, FIRST_CODE),
        at(TEN_MINUTES),
        1,
    );
    h.otps
        .expect_consume()
        .times(1)
        .returning(|_, _, _| Ok(false));
    h.users.expect_mark_verified().never();

    let result = block_on(h.service().verify_otp(&email(), &code(FIRST_CODE)));

    assert!(
        matches!(result, Err(OtpCheckError::InvalidOtp)),
        "{result:?}"
    );
}

#[test]
fn verify_otp_with_a_wrong_code_is_invalid_otp_and_nothing_is_consumed() {
    let mut h = Harness::new();
    h.live_code(
        OtpPurpose::VerifyEmail,
        mac(OtpPurpose::VerifyEmail, FIRST_CODE),
        at(TEN_MINUTES),
        1,
    );
    h.otps.expect_consume().never();
    h.otps.expect_discard().never();
    h.users.expect_mark_verified().never();

    let result = block_on(h.service().verify_otp(&email(), &code(WRONG_CODE)));

    assert!(
        matches!(result, Err(OtpCheckError::InvalidOtp)),
        "{result:?}"
    );
}

#[test]
fn verify_otp_after_five_wrong_codes_refuses_even_the_right_one() {
    let (svc, _clock, right) = code_issued_at_t0(Harness::new());

    for n in 1..=5 {
        let wrong = block_on(svc.verify_otp(&email(), &code(WRONG_CODE)));
        assert!(
            matches!(wrong, Err(OtpCheckError::InvalidOtp)),
            "attempt {n}: {wrong:?}"
        );
    }
    let sixth = block_on(svc.verify_otp(&email(), &right));

    assert!(
        matches!(sixth, Err(OtpCheckError::TooManyAttempts)),
        "{sixth:?}"
    );
}

#[test]
fn verify_otp_fifth_attempt_with_the_right_code_still_succeeds() {
    let mut h = Harness::new();
    h.live_code(
        OtpPurpose::VerifyEmail,
        mac(OtpPurpose::VerifyEmail, FIRST_CODE),
        at(TEN_MINUTES),
        5,
    );
    h.otps
        .expect_consume()
        .times(1)
        .returning(|_, _, _| Ok(true));
    h.user_lookup(Some(creds(false)));
    h.marks_verified();

    let result = block_on(h.service().verify_otp(&email(), &code(FIRST_CODE)));

    assert!(result.unwrap().is_verified());
}

#[test]
fn verify_otp_sixth_attempt_is_refused_and_leaves_the_code_to_concurrent_attempts() {
    let mut h = Harness::new();
    h.live_code(
        OtpPurpose::VerifyEmail,
        mac(OtpPurpose::VerifyEmail, FIRST_CODE),
        at(TEN_MINUTES),
        6,
    );
    // An attempt within the limit may be about to consume it with the right answer.
    h.otps.expect_discard().never();
    h.otps.expect_consume().never();
    h.users.expect_mark_verified().never();

    let result = block_on(h.service().verify_otp(&email(), &code(FIRST_CODE)));

    assert!(
        matches!(result, Err(OtpCheckError::TooManyAttempts)),
        "{result:?}"
    );
}

#[test]
fn verify_otp_attempt_limit_is_configurable() {
    let mut h = Harness::new();
    h.config.otp_max_attempts = 3;
    h.live_code(
        OtpPurpose::VerifyEmail,
        mac(OtpPurpose::VerifyEmail, FIRST_CODE),
        at(TEN_MINUTES),
        4,
    );
    h.otps.expect_discard().never();
    h.otps.expect_consume().never();

    let result = block_on(h.service().verify_otp(&email(), &code(FIRST_CODE)));

    assert!(
        matches!(result, Err(OtpCheckError::TooManyAttempts)),
        "{result:?}"
    );
}

#[test]
fn verify_otp_for_an_unknown_address_is_invalid_otp() {
    let mut h = Harness::new();
    h.otps
        .expect_record_attempt()
        .withf(|p, e| *p == OtpPurpose::VerifyEmail && *e == email())
        .times(1)
        .returning(|_, _| Ok(None));
    h.users.expect_find_by_email().never();
    h.users.expect_mark_verified().never();

    let result = block_on(h.service().verify_otp(&email(), &code(FIRST_CODE)));

    assert!(
        matches!(result, Err(OtpCheckError::InvalidOtp)),
        "{result:?}"
    );
}

#[test]
fn verify_otp_for_a_code_whose_account_is_gone_is_invalid_otp() {
    let mut h = Harness::new();
    h.live_code(
        OtpPurpose::VerifyEmail,
        mac(OtpPurpose::VerifyEmail, FIRST_CODE),
        at(TEN_MINUTES),
        1,
    );
    h.otps
        .expect_consume()
        .times(1)
        .returning(|_, _, _| Ok(true));
    h.user_lookup(None);
    h.users.expect_mark_verified().never();

    let result = block_on(h.service().verify_otp(&email(), &code(FIRST_CODE)));

    assert!(
        matches!(result, Err(OtpCheckError::InvalidOtp)),
        "{result:?}"
    );
}

/// Purpose binding through the MAC: even a store that handed back the reset entry for the
/// verify-email slot would not let a reset code verify an address.
#[test]
fn verify_otp_refuses_a_code_whose_mac_was_made_for_password_reset() {
    let mut h = Harness::new();
    h.live_code(
        OtpPurpose::VerifyEmail,
        mac(OtpPurpose::ResetPassword, FIRST_CODE),
        at(TEN_MINUTES),
        1,
    );
    h.otps.expect_consume().never();
    h.users.expect_mark_verified().never();

    let result = block_on(h.service().verify_otp(&email(), &code(FIRST_CODE)));

    assert!(
        matches!(result, Err(OtpCheckError::InvalidOtp)),
        "{result:?}"
    );
}

/// Purpose binding through the store key: a mailed reset code is looked up (and missed) in the
/// verify-email slot.
#[test]
fn a_reset_code_never_verifies_an_email() {
    let mut h = Harness::new();
    let otps = h.otp_store_in_memory();
    let outbox = h.outbox();
    h.user_lookup(Some(creds(true)));
    h.users.expect_mark_verified().never();
    let svc = h.service();
    block_on(svc.forgot_password(&email())).unwrap();
    let reset_code = last_mailed_code(&outbox);

    let result = block_on(svc.verify_otp(&email(), &reset_code));

    assert!(
        matches!(result, Err(OtpCheckError::InvalidOtp)),
        "{result:?}"
    );
    assert!(otps
        .lock()
        .unwrap()
        .contains_key(&OtpPurpose::ResetPassword));
}

#[test]
fn a_verification_code_never_resets_a_password() {
    let mut h = Harness::new();
    let otps = h.otp_store_in_memory();
    let outbox = h.outbox();
    h.user_lookup(Some(creds(false)));
    h.hasher.expect_hash().never();
    h.users.expect_set_password_hash().never();
    h.sessions.expect_delete_all_for_user().never();
    let svc = h.service();
    block_on(svc.resend_otp(&email())).unwrap();
    let verify_code = last_mailed_code(&outbox);

    let result = block_on(svc.reset_password(&email(), &verify_code, password(NEW_PASSWORD)));

    assert!(
        matches!(result, Err(OtpCheckError::InvalidOtp)),
        "{result:?}"
    );
    assert!(otps.lock().unwrap().contains_key(&OtpPurpose::VerifyEmail));
}

#[test]
fn reset_password_refuses_a_code_whose_mac_was_made_for_email_verification() {
    let mut h = Harness::new();
    h.live_code(
        OtpPurpose::ResetPassword,
        mac(OtpPurpose::VerifyEmail, FIRST_CODE),
        at(TEN_MINUTES),
        1,
    );
    h.otps.expect_consume().never();
    h.users.expect_set_password_hash().never();

    let result = block_on(h.service().reset_password(
        &email(),
        &code(FIRST_CODE),
        password(NEW_PASSWORD),
    ));

    assert!(
        matches!(result, Err(OtpCheckError::InvalidOtp)),
        "{result:?}"
    );
}

#[test]
fn the_same_code_is_stored_under_a_different_mac_per_purpose() {
    let stored_mac = |verified: bool, op: &dyn Fn(&AuthService)| {
        let mut h = Harness::new();
        h.otps
            .expect_claim_send_slot()
            .returning(|_, _, _| Ok(SendSlot::Granted));
        let puts = h.put_log();
        h.outbox();
        h.user_lookup(Some(creds(verified)));
        op(&h.service());
        let puts = puts.lock().unwrap();
        assert_eq!(puts.len(), 1, "{puts:?}");
        (puts[0].0, puts[0].1.mac)
    };

    // Both draw FIRST_CODE from a fresh StepRandom.
    let (verify_purpose, verify_mac) =
        stored_mac(false, &|svc| block_on(svc.resend_otp(&email())).unwrap());
    let (reset_purpose, reset_mac) = stored_mac(true, &|svc| {
        block_on(svc.forgot_password(&email())).unwrap()
    });

    assert_eq!(verify_purpose, OtpPurpose::VerifyEmail);
    assert_eq!(reset_purpose, OtpPurpose::ResetPassword);
    assert_eq!(verify_mac, mac(OtpPurpose::VerifyEmail, FIRST_CODE));
    assert_eq!(reset_mac, mac(OtpPurpose::ResetPassword, FIRST_CODE));
    assert_ne!(verify_mac, reset_mac);
}

// --- OsRandom --------------------------------------------------------------------------------

/// 20,000 codes from the OS CSPRNG: six ASCII digits each, every position uniform over 0-9
/// (chi-square, 9 degrees of freedom, false alarm about 1e-6 per position), leading zeros
/// included, and almost no repeats.
#[test]
fn os_random_otp_codes_are_uniform_six_digit_strings() {
    const SAMPLES: u32 = 20_000;
    // P(chi-square with 9 dof > 45) is about 9e-7.
    const CHI_SQUARE_LIMIT: f64 = 45.0;
    let mut counts = [[0u32; 10]; 6];
    let mut distinct = HashSet::new();
    for _ in 0..SAMPLES {
        let otp = OsRandom.otp_code();
        let digits = otp.expose();
        assert_eq!(digits.len(), 6, "{digits}");
        for (position, byte) in digits.bytes().enumerate() {
            assert!(byte.is_ascii_digit(), "{digits}");
            counts[position][usize::from(byte - b'0')] += 1;
        }
        distinct.insert(digits.to_owned());
    }

    let expected = f64::from(SAMPLES) / 10.0;
    for (position, per_digit) in counts.iter().enumerate() {
        let chi_square: f64 = per_digit
            .iter()
            .map(|&n| (f64::from(n) - expected).powi(2) / expected)
            .sum();
        assert!(
            chi_square < CHI_SQUARE_LIMIT,
            "position {position} is not uniform: {per_digit:?} (chi-square {chi_square:.1})"
        );
    }
    assert!(
        counts[0][0] > 1_500,
        "too few leading zeros: {}",
        counts[0][0]
    );
    // About 200 repeats are expected among 20,000 draws from a million.
    assert!(
        distinct.len() > 19_500,
        "only {} distinct codes",
        distinct.len()
    );
}

// --- resend_otp ------------------------------------------------------------------------------

#[test]
fn resend_otp_mails_a_new_code_to_an_unverified_account_with_a_60_second_cooldown() {
    let mut h = Harness::new();
    h.otps
        .expect_claim_send_slot()
        .withf(|p, e, cooldown| {
            *p == OtpPurpose::VerifyEmail && *e == email() && *cooldown == secs(60)
        })
        .times(1)
        .returning(|_, _, _| Ok(SendSlot::Granted));
    h.user_lookup(Some(creds(false)));
    let puts = h.put_log();
    let outbox = h.outbox();

    block_on(h.service().resend_otp(&email())).unwrap();

    let puts = puts.lock().unwrap();
    assert_eq!(puts.len(), 1);
    assert_eq!(puts[0].0, OtpPurpose::VerifyEmail);
    assert_eq!(puts[0].1.mac, mac(OtpPurpose::VerifyEmail, FIRST_CODE));
    assert_eq!(puts[0].1.expires_at, at(TEN_MINUTES));
    assert_eq!(
        *outbox.lock().unwrap(),
        vec![(
            email(),
            MailMessage::VerifyEmail {
                code: code(FIRST_CODE),
                valid_for: TEN_MINUTES
            }
        )]
    );
}

#[test]
fn resend_otp_inside_the_cooldown_is_too_many_requests_for_known_and_unknown_addresses_alike() {
    for account in [None, Some(creds(false)), Some(creds(true))] {
        let mut h = Harness::new();
        // The lookup may or may not happen; the answer must not depend on it.
        h.user_lookup(account.clone());
        h.send_slot(
            OtpPurpose::VerifyEmail,
            SendSlot::Cooldown {
                retry_after: secs(42),
            },
        );
        h.nothing_sent_nor_stored();

        let result = block_on(h.service().resend_otp(&email()));

        match result {
            Err(ResendOtpError::TooManyRequests { retry_after }) => {
                assert_eq!(retry_after, secs(42), "{account:?}");
            }
            other => panic!("{account:?}: expected TooManyRequests, got {other:?}"),
        }
    }
}

#[test]
fn resend_otp_mails_nothing_for_unknown_or_verified_addresses_and_answers_ok() {
    for account in [None, Some(creds(true))] {
        let mut h = Harness::new();
        h.user_lookup(account.clone());
        h.send_slot(OtpPurpose::VerifyEmail, SendSlot::Granted);
        h.nothing_sent_nor_stored();

        let result = block_on(h.service().resend_otp(&email()));

        assert!(result.is_ok(), "{account:?}: {result:?}");
    }
}

#[test]
fn resend_otp_retry_after_is_at_least_one_second() {
    let mut h = Harness::new();
    h.user_lookup(Some(creds(false)));
    h.send_slot(
        OtpPurpose::VerifyEmail,
        SendSlot::Cooldown {
            retry_after: Duration::ZERO,
        },
    );
    h.nothing_sent_nor_stored();

    let result = block_on(h.service().resend_otp(&email()));

    match result {
        Err(ResendOtpError::TooManyRequests { retry_after }) => assert_eq!(retry_after, secs(1)),
        other => panic!("expected TooManyRequests, got {other:?}"),
    }
}

#[test]
fn resend_otp_swallows_a_mail_outage() {
    let mut h = Harness::new();
    h.send_slot(OtpPurpose::VerifyEmail, SendSlot::Granted);
    h.user_lookup(Some(creds(false)));
    h.put_log();
    h.mailer
        .expect_send()
        .times(1)
        .returning(|_, _| Err(MailerError::Unavailable(outage())));

    let result = block_on(h.service().resend_otp(&email()));

    assert!(result.is_ok(), "{result:?}");
}

// --- login -----------------------------------------------------------------------------------

/// Expects exactly one session insert and keeps what was inserted.
fn capture_insert(h: &mut Harness) -> Arc<Mutex<Vec<(Session, Duration)>>> {
    let inserted = Arc::new(Mutex::new(Vec::new()));
    let log = inserted.clone();
    h.sessions
        .expect_insert()
        .times(1)
        .returning(move |session, ttl| {
            log.lock().unwrap().push((session.clone(), ttl));
            Ok(())
        });
    inserted
}

#[test]
fn login_opens_a_session_that_stores_only_the_sha256_of_the_token() {
    let mut h = Harness::new();
    h.user_lookup(Some(creds(true)));
    h.verifies(PASSWORD, PasswordCheck::Match);
    let inserted = capture_insert(&mut h);

    let outcome = block_on(h.service().login(&email(), &attempt(PASSWORD), client())).unwrap();

    let inserted = inserted.lock().unwrap();
    let (stored, ttl) = &inserted[0];
    assert_eq!(stored.token_hash, TokenHash(sha256_of(&outcome.token)));
    let raw_token = URL_SAFE_NO_PAD.decode(outcome.token.expose()).unwrap();
    assert_ne!(stored.token_hash.0.as_slice(), raw_token.as_slice());
    assert!(!format!("{stored:?}").contains(&outcome.token.expose()));
    assert_eq!(*stored, outcome.session);
    assert_eq!(stored.user, user(true));
    assert_eq!(outcome.user, user(true));
    // Absolute lifetime: 24 h by default; the store keeps it for the idle timeout (30 min by
    // default), which each recorded use renews.
    assert_eq!(*ttl, secs(30 * 60));
    assert_eq!(stored.created_at, t0());
    assert_eq!(stored.last_seen_at, t0());
    assert_eq!(stored.expires_at, at(ONE_DAY));
    assert_eq!(stored.client, client());
    assert_eq!(
        stored.client.ip,
        Some(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7)))
    );
    assert_eq!(
        stored.client.user_agent.as_deref(),
        Some("Mozilla/5.0 (X11; Linux x86_64)")
    );
}

#[test]
fn login_session_lifetime_is_configurable() {
    let mut h = Harness::new();
    h.config.session_ttl = secs(3600);
    // An idle timeout longer than the lifetime: the store TTL is the lifetime.
    h.config.session_idle_timeout = Some(secs(7200));
    h.user_lookup(Some(creds(true)));
    h.verifies(PASSWORD, PasswordCheck::Match);
    let inserted = capture_insert(&mut h);

    block_on(h.service().login(&email(), &attempt(PASSWORD), client())).unwrap();

    let inserted = inserted.lock().unwrap();
    assert_eq!(inserted[0].1, secs(3600));
    assert_eq!(inserted[0].0.expires_at, at(secs(3600)));
}

#[test]
fn login_with_the_right_password_on_an_unverified_account_is_email_not_verified() {
    let mut h = Harness::new();
    h.user_lookup(Some(creds(false)));
    h.verifies(PASSWORD, PasswordCheck::Match);
    h.sessions.expect_insert().never();

    let result = block_on(h.service().login(&email(), &attempt(PASSWORD), client()));

    assert!(
        matches!(result, Err(LoginError::EmailNotVerified)),
        "{result:?}"
    );
}

#[test]
fn login_with_a_wrong_password_on_an_unverified_account_does_not_reveal_the_state() {
    let mut h = Harness::new();
    h.user_lookup(Some(creds(false)));
    h.verifies("wrong password", PasswordCheck::Mismatch);
    h.sessions.expect_insert().never();

    let result = block_on(
        h.service()
            .login(&email(), &attempt("wrong password"), client()),
    );

    assert!(
        matches!(result, Err(LoginError::InvalidCredentials)),
        "{result:?}"
    );
}

#[test]
fn login_wrong_password_and_unknown_email_fail_the_same_way_at_the_same_cost() {
    let mut wrong = Harness::new();
    wrong.user_lookup(Some(creds(true)));
    wrong.verifies("wrong password", PasswordCheck::Mismatch);
    wrong.hasher.expect_hash().never();
    wrong.sessions.expect_insert().never();
    let mut unknown = Harness::new();
    unknown.user_lookup(None);
    // One full hash, like checking a real password.
    unknown.hashes("wrong password", NEW_HASH);
    unknown.hasher.expect_verify().never();
    unknown.sessions.expect_insert().never();

    let wrong = block_on(
        wrong
            .service()
            .login(&email(), &attempt("wrong password"), client()),
    );
    let unknown = block_on(
        unknown
            .service()
            .login(&email(), &attempt("wrong password"), client()),
    );

    assert!(
        matches!(wrong, Err(LoginError::InvalidCredentials)),
        "{wrong:?}"
    );
    assert!(
        matches!(unknown, Err(LoginError::InvalidCredentials)),
        "{unknown:?}"
    );
    assert_eq!(
        wrong.unwrap_err().to_string(),
        unknown.unwrap_err().to_string()
    );
}

#[test]
fn login_rehashes_the_password_when_the_hasher_asks_for_it() {
    let mut h = Harness::new();
    h.user_lookup(Some(creds(true)));
    h.verifies(PASSWORD, PasswordCheck::MatchNeedsRehash);
    h.hashes(PASSWORD, NEW_HASH);
    h.users
        .expect_set_password_hash()
        .withf(|id, hash, when| *id == ada_id() && hash.as_str() == NEW_HASH && *when == t0())
        .times(1)
        .returning(|_, _, _| Ok(()));
    capture_insert(&mut h);

    let result = block_on(h.service().login(&email(), &attempt(PASSWORD), client()));

    assert!(result.is_ok(), "{result:?}");
}

#[test]
fn login_with_current_hash_parameters_does_not_rehash() {
    let mut h = Harness::new();
    h.user_lookup(Some(creds(true)));
    h.verifies(PASSWORD, PasswordCheck::Match);
    h.hasher.expect_hash().never();
    h.users.expect_set_password_hash().never();
    capture_insert(&mut h);

    let result = block_on(h.service().login(&email(), &attempt(PASSWORD), client()));

    assert!(result.is_ok(), "{result:?}");
}

#[test]
fn login_succeeds_when_the_rehash_fails() {
    // Failing at the hash, then at the write.
    for hash_fails in [true, false] {
        let mut h = Harness::new();
        h.user_lookup(Some(creds(true)));
        h.verifies(PASSWORD, PasswordCheck::MatchNeedsRehash);
        h.hasher.expect_hash().times(1).returning(move |_| {
            if hash_fails {
                Err(HasherError::Unavailable(outage()))
            } else {
                Ok(PasswordHash::new(NEW_HASH))
            }
        });
        h.users
            .expect_set_password_hash()
            .times(usize::from(!hash_fails))
            .returning(|_, _, _| Err(UserRepoError::Unavailable(outage())));
        let inserted = capture_insert(&mut h);

        let result = block_on(h.service().login(&email(), &attempt(PASSWORD), client()));

        assert!(result.is_ok(), "hash fails: {hash_fails}: {result:?}");
        assert_eq!(inserted.lock().unwrap().len(), 1);
    }
}

#[test]
fn each_login_issues_a_new_different_token() {
    let mut h = Harness::new();
    // The production randomness: nothing predictable here.
    h.random = Arc::new(OsRandom);
    h.user_lookup(Some(creds(true)));
    h.hasher
        .expect_verify()
        .times(2)
        .returning(|_, _| Ok(PasswordCheck::Match));
    let stored = h.session_store_in_memory();
    let svc = h.service();

    let first = block_on(svc.login(&email(), &attempt(PASSWORD), client())).unwrap();
    let second = block_on(svc.login(&email(), &attempt(PASSWORD), client())).unwrap();

    assert_ne!(first.token.expose(), second.token.expose());
    assert_ne!(first.session.token_hash, second.session.token_hash);
    assert_ne!(first.session.id, second.session.id);
    assert_eq!(stored.lock().unwrap().len(), 2);
}

// --- authenticate / logout -------------------------------------------------------------------

#[test]
fn authenticate_returns_the_live_session_with_its_user() {
    let mut h = Harness::new();
    let token = SessionToken::from_bytes([7; 32]);
    let live = session(7, user(true), t0(), at(ONE_DAY));
    let expected_hash = TokenHash(sha256_of(&token));
    let returned = live.clone();
    h.sessions
        .expect_get()
        .withf(move |hash| *hash == expected_hash)
        .times(1)
        .returning(move |_| Ok(Some(returned.clone())));

    let found = block_on(h.service().authenticate(&token)).unwrap();

    assert_eq!(found, live);
    assert_eq!(found.user, user(true));
}

#[test]
fn authenticate_an_unknown_or_revoked_token_is_unauthenticated() {
    let mut h = Harness::new();
    h.sessions.expect_get().times(1).returning(|_| Ok(None));

    let result = block_on(h.service().authenticate(&SessionToken::from_bytes([7; 32])));

    assert!(
        matches!(result, Err(AuthenticateError::Unauthenticated)),
        "{result:?}"
    );
}

#[test]
fn authenticate_refuses_an_expired_session_even_if_the_store_still_returns_it() {
    let mut h = Harness::new();
    // The absolute lifetime alone (the idle timeout has its own tests).
    h.config.session_idle_timeout = None;
    let token = SessionToken::from_bytes([7; 32]);
    let stale = session(7, user(true), t0(), at(ONE_DAY));
    h.sessions
        .expect_get()
        .returning(move |_| Ok(Some(stale.clone())));
    // Cleaning up is allowed, not required.
    h.sessions.expect_delete().returning(|_| Ok(true));
    let clock = h.clock.clone();
    let svc = h.service();

    clock.set(at(ONE_DAY - secs(1)));
    let just_before = block_on(svc.authenticate(&token));
    clock.set(at(ONE_DAY));
    let at_end = block_on(svc.authenticate(&token));
    clock.set(at(ONE_DAY + secs(1)));
    let after_end = block_on(svc.authenticate(&token));

    assert!(just_before.is_ok(), "{just_before:?}");
    assert!(
        matches!(at_end, Err(AuthenticateError::Unauthenticated)),
        "{at_end:?}"
    );
    assert!(
        matches!(after_end, Err(AuthenticateError::Unauthenticated)),
        "{after_end:?}"
    );
}

#[test]
fn a_session_works_until_logout_and_not_after() {
    let mut h = Harness::new();
    h.user_lookup(Some(creds(true)));
    h.verifies(PASSWORD, PasswordCheck::Match);
    let stored = h.session_store_in_memory();
    let svc = h.service();

    let login = block_on(svc.login(&email(), &attempt(PASSWORD), client())).unwrap();
    let before_logout = block_on(svc.authenticate(&login.token));
    block_on(svc.logout(&login.token)).unwrap();
    let after_logout = block_on(svc.authenticate(&login.token));

    assert_eq!(before_logout.unwrap(), login.session);
    assert!(
        matches!(after_logout, Err(AuthenticateError::Unauthenticated)),
        "{after_logout:?}"
    );
    assert!(stored.lock().unwrap().is_empty());
}

#[test]
fn logout_deletes_the_session_by_the_hash_of_its_token() {
    let mut h = Harness::new();
    let token = SessionToken::from_bytes([9; 32]);
    let expected_hash = TokenHash(sha256_of(&token));
    h.sessions
        .expect_delete()
        .withf(move |hash| *hash == expected_hash)
        .times(1)
        .returning(|_| Ok(false));

    // An unknown token is not an error.
    let result = block_on(h.service().logout(&token));

    assert!(result.is_ok(), "{result:?}");
}

#[test]
fn logout_all_deletes_every_session_of_the_user() {
    let mut h = Harness::new();
    h.sessions
        .expect_delete_all_for_user()
        .withf(|id, keep| *id == ada_id() && keep.is_none())
        .times(1)
        .returning(|_, _| Ok(3));

    let revoked = block_on(h.service().logout_all(ada_id())).unwrap();

    assert_eq!(revoked, 3);
}

// --- list_sessions / revoke_session ----------------------------------------------------------

#[test]
fn list_sessions_returns_only_the_users_live_sessions_newest_first() {
    let mut h = Harness::new();
    h.config.session_idle_timeout = None;
    let now = at(secs(3600));
    h.clock.set(now);
    let other = User {
        id: UserId::from_uuid(Uuid::from_u128(0xB0B)),
        email: EmailAddress::parse("bob@example.com").unwrap(),
        ..user(true)
    };
    let oldest = session(1, user(true), before(secs(3 * 3600)), at(secs(21 * 3600)));
    let newest = session(2, user(true), at(secs(1800)), at(ONE_DAY + secs(1800)));
    let middle = session(3, user(true), before(secs(3600)), at(secs(23 * 3600)));
    let expired = session(4, user(true), before(secs(25 * 3600)), before(secs(3600)));
    let ends_now = session(5, user(true), before(secs(23 * 3600)), now);
    let not_theirs = session(6, other, at(secs(2700)), at(ONE_DAY + secs(2700)));
    let listed = vec![
        oldest.clone(),
        expired,
        newest.clone(),
        ends_now,
        not_theirs,
        middle.clone(),
    ];
    h.sessions
        .expect_list_for_user()
        .withf(|id| *id == ada_id())
        .times(1)
        .returning(move |_| Ok(listed.clone()));

    let sessions = block_on(h.service().list_sessions(ada_id())).unwrap();

    assert_eq!(sessions, vec![newest, middle, oldest]);
}

#[test]
fn revoke_session_of_someone_else_is_not_found() {
    let mut h = Harness::new();
    let theirs = SessionId::from_uuid(Uuid::from_u128(77));
    h.sessions
        .expect_delete_by_id()
        .withf(move |id, sid| *id == ada_id() && *sid == theirs)
        .times(1)
        .returning(|_, _| Ok(false));

    let result = block_on(h.service().revoke_session(ada_id(), theirs));

    assert!(matches!(result, Err(SessionError::NotFound)), "{result:?}");
}

#[test]
fn revoke_session_of_ones_own_session_succeeds() {
    let mut h = Harness::new();
    let mine = SessionId::from_uuid(Uuid::from_u128(78));
    h.sessions
        .expect_delete_by_id()
        .withf(move |id, sid| *id == ada_id() && *sid == mine)
        .times(1)
        .returning(|_, _| Ok(true));

    let result = block_on(h.service().revoke_session(ada_id(), mine));

    assert!(result.is_ok(), "{result:?}");
}

// --- idle timeout ----------------------------------------------------------------------------

/// A store that keeps one session and applies `touch` to it, as the real ones do.
fn stateful_session_store(h: &mut Harness, start: Session) -> Arc<Mutex<Option<Session>>> {
    let state = Arc::new(Mutex::new(Some(start)));
    let read = Arc::clone(&state);
    h.sessions
        .expect_get()
        .returning(move |_| Ok(read.lock().unwrap().clone()));
    let write = Arc::clone(&state);
    h.sessions.expect_touch().returning(move |seen, _| {
        let mut slot = write.lock().unwrap();
        let live = slot.is_some();
        if live {
            *slot = Some(seen.clone());
        }
        Ok(live)
    });
    let delete = Arc::clone(&state);
    h.sessions
        .expect_delete()
        .returning(move |_| Ok(delete.lock().unwrap().take().is_some()));
    state
}

#[test]
fn a_session_left_idle_for_the_timeout_is_refused_and_deleted() {
    let mut h = Harness::new();
    let token = SessionToken::from_bytes([7; 32]);
    let state = stateful_session_store(&mut h, session(7, user(true), t0(), at(ONE_DAY)));
    let clock = h.clock.clone();
    let svc = h.service();

    clock.set(at(secs(30 * 60)));
    let result = block_on(svc.authenticate(&token));

    assert!(
        matches!(result, Err(AuthenticateError::Unauthenticated)),
        "{result:?}"
    );
    assert_eq!(*state.lock().unwrap(), None, "the idle session is deleted");
}

#[test]
fn a_session_in_use_outlives_the_idle_timeout_until_its_absolute_end() {
    let mut h = Harness::new();
    let token = SessionToken::from_bytes([7; 32]);
    let state = stateful_session_store(&mut h, session(7, user(true), t0(), at(secs(3 * 3600))));
    let clock = h.clock.clone();
    let svc = h.service();

    // Used every 25 minutes for almost three hours: never 30 minutes idle.
    for n in 1..=6 {
        clock.set(at(secs(n * 25 * 60)));
        let found = block_on(svc.authenticate(&token)).unwrap();
        assert_eq!(found.last_seen_at, at(secs(n * 25 * 60)));
    }
    assert_eq!(
        state.lock().unwrap().as_ref().map(|s| s.last_seen_at),
        Some(at(secs(150 * 60)))
    );
    // Still in use, but past the absolute lifetime.
    clock.set(at(secs(3 * 3600)));
    assert!(matches!(
        block_on(svc.authenticate(&token)),
        Err(AuthenticateError::Unauthenticated)
    ));
}

#[test]
fn a_use_is_recorded_at_most_once_per_granularity_with_the_ttl_capped_by_the_lifetime() {
    let mut h = Harness::new();
    let token = SessionToken::from_bytes([7; 32]);
    // 10 minutes of lifetime left at the second use: the store TTL must not exceed them.
    let live = session(7, user(true), t0(), at(secs(70)));
    let returned = live.clone();
    h.sessions
        .expect_get()
        .times(2)
        .returning(move |_| Ok(Some(returned.clone())));
    h.sessions
        .expect_touch()
        .withf(|seen, ttl| seen.last_seen_at == at(secs(60)) && *ttl == secs(10))
        .times(1)
        .returning(|_, _| Ok(true));
    let clock = h.clock.clone();
    let svc = h.service();
    assert_eq!(default_granularity(), Some(secs(60)));

    clock.set(at(secs(59)));
    let quiet = block_on(svc.authenticate(&token)).unwrap();
    clock.set(at(secs(60)));
    let recorded = block_on(svc.authenticate(&token)).unwrap();

    assert_eq!(quiet, live, "no write within the granularity");
    assert_eq!(recorded.last_seen_at, at(secs(60)));
}

fn default_granularity() -> Option<Duration> {
    AuthConfig::default().activity_granularity()
}

#[test]
fn a_session_revoked_between_read_and_touch_is_refused() {
    let mut h = Harness::new();
    let live = session(7, user(true), t0(), at(ONE_DAY));
    h.sessions
        .expect_get()
        .returning(move |_| Ok(Some(live.clone())));
    h.sessions
        .expect_touch()
        .times(1)
        .returning(|_, _| Ok(false));
    h.clock.set(at(secs(5 * 60)));

    let result = block_on(h.service().authenticate(&SessionToken::from_bytes([7; 32])));

    assert!(
        matches!(result, Err(AuthenticateError::Unauthenticated)),
        "{result:?}"
    );
}

#[test]
fn a_failed_touch_does_not_fail_the_request() {
    let mut h = Harness::new();
    let live = session(7, user(true), t0(), at(ONE_DAY));
    let returned = live.clone();
    h.sessions
        .expect_get()
        .returning(move |_| Ok(Some(returned.clone())));
    h.sessions
        .expect_touch()
        .times(1)
        .returning(|_, _| Err(SessionStoreError::Unavailable("down".into())));
    h.clock.set(at(secs(5 * 60)));

    let found = block_on(h.service().authenticate(&SessionToken::from_bytes([7; 32]))).unwrap();

    assert_eq!(
        found, live,
        "the recorded last use is what the store still holds"
    );
}

#[test]
fn without_an_idle_timeout_sessions_live_to_their_end_and_nothing_is_written() {
    let mut h = Harness::new();
    h.config.session_idle_timeout = None;
    let live = session(7, user(true), t0(), at(ONE_DAY));
    h.sessions
        .expect_get()
        .returning(move |_| Ok(Some(live.clone())));
    h.sessions.expect_touch().times(0);
    h.clock.set(at(ONE_DAY - secs(1)));

    assert!(block_on(h.service().authenticate(&SessionToken::from_bytes([7; 32]))).is_ok());
}

#[test]
fn list_sessions_leaves_out_idle_sessions() {
    let mut h = Harness::new();
    let now = at(secs(3600));
    h.clock.set(now);
    let idle = session(1, user(true), t0(), at(ONE_DAY));
    let active = Session {
        last_seen_at: at(secs(3000)),
        ..session(2, user(true), t0(), at(ONE_DAY))
    };
    let listed = vec![idle, active.clone()];
    h.sessions
        .expect_list_for_user()
        .returning(move |_| Ok(listed.clone()));

    let sessions = block_on(h.service().list_sessions(ada_id())).unwrap();

    assert_eq!(sessions, vec![active]);
}

// --- change_password -------------------------------------------------------------------------

fn current_session() -> Session {
    session(50, user(true), before(secs(3600)), at(ONE_DAY))
}

/// `find_by_id(ada)` answers Ada's verified account.
fn account_by_id(h: &mut Harness) {
    h.users
        .expect_find_by_id()
        .withf(|id| *id == ada_id())
        .returning(|_| Ok(Some(creds(true))));
}

#[test]
fn change_password_sets_the_new_hash_revokes_the_other_sessions_and_mails_a_notice() {
    let mut h = Harness::new();
    account_by_id(&mut h);
    h.verifies(PASSWORD, PasswordCheck::Match);
    h.hashes(NEW_PASSWORD, NEW_HASH);
    h.users
        .expect_set_password_hash()
        .withf(|id, hash, when| *id == ada_id() && hash.as_str() == NEW_HASH && *when == t0())
        .times(1)
        .returning(|_, _, _| Ok(()));
    let keep = current_session().id;
    h.sessions
        .expect_delete_all_for_user()
        .withf(move |id, k| *id == ada_id() && *k == Some(keep))
        .times(1)
        .returning(|_, _| Ok(2));
    h.mailer
        .expect_send()
        .withf(|to, message| *to == email() && *message == MailMessage::PasswordChanged)
        .times(1)
        .returning(|_, _| Ok(()));

    let result = block_on(h.service().change_password(
        &current_session(),
        &attempt(PASSWORD),
        password(NEW_PASSWORD),
    ));

    assert!(result.is_ok(), "{result:?}");
}

#[test]
fn change_password_with_a_wrong_current_password_changes_nothing() {
    let mut h = Harness::new();
    account_by_id(&mut h);
    h.verifies("wrong password", PasswordCheck::Mismatch);
    h.hasher.expect_hash().never();
    h.users.expect_set_password_hash().never();
    h.sessions.expect_delete_all_for_user().never();
    h.mailer.expect_send().never();

    let result = block_on(h.service().change_password(
        &current_session(),
        &attempt("wrong password"),
        password(NEW_PASSWORD),
    ));

    assert!(
        matches!(result, Err(ChangePasswordError::InvalidCredentials)),
        "{result:?}"
    );
}

#[test]
fn change_password_succeeds_when_the_notice_cannot_be_mailed() {
    let mut h = Harness::new();
    account_by_id(&mut h);
    h.verifies(PASSWORD, PasswordCheck::Match);
    h.hashes(NEW_PASSWORD, NEW_HASH);
    h.users
        .expect_set_password_hash()
        .times(1)
        .returning(|_, _, _| Ok(()));
    h.sessions
        .expect_delete_all_for_user()
        .times(1)
        .returning(|_, _| Ok(0));
    h.mailer
        .expect_send()
        .times(1)
        .returning(|_, _| Err(MailerError::Unavailable(outage())));

    let result = block_on(h.service().change_password(
        &current_session(),
        &attempt(PASSWORD),
        password(NEW_PASSWORD),
    ));

    assert!(result.is_ok(), "{result:?}");
}

#[test]
fn change_password_for_a_deleted_account_is_unauthenticated() {
    let mut h = Harness::new();
    h.users.expect_find_by_id().times(1).returning(|_| Ok(None));
    h.users.expect_set_password_hash().never();
    h.sessions.expect_delete_all_for_user().never();
    h.mailer.expect_send().never();

    let result = block_on(h.service().change_password(
        &current_session(),
        &attempt(PASSWORD),
        password(NEW_PASSWORD),
    ));

    assert!(
        matches!(result, Err(ChangePasswordError::Unauthenticated)),
        "{result:?}"
    );
}

// --- forgot_password -------------------------------------------------------------------------

#[test]
fn forgot_password_mails_a_reset_code_to_a_verified_account() {
    let mut h = Harness::new();
    h.send_slot(OtpPurpose::ResetPassword, SendSlot::Granted);
    h.user_lookup(Some(creds(true)));
    let puts = h.put_log();
    let outbox = h.outbox();

    let result = block_on(h.service().forgot_password(&email()));

    assert!(result.is_ok(), "{result:?}");
    let puts = puts.lock().unwrap();
    assert_eq!(puts.len(), 1);
    assert_eq!(puts[0].0, OtpPurpose::ResetPassword);
    assert_eq!(puts[0].1.mac, mac(OtpPurpose::ResetPassword, FIRST_CODE));
    assert_eq!(puts[0].1.expires_at, at(TEN_MINUTES));
    assert_eq!(
        *outbox.lock().unwrap(),
        vec![(
            email(),
            MailMessage::ResetPassword {
                code: code(FIRST_CODE),
                valid_for: TEN_MINUTES
            }
        )]
    );
}

#[test]
fn forgot_password_for_unknown_or_unverified_addresses_sends_and_stores_nothing_and_answers_ok() {
    for account in [None, Some(creds(false))] {
        let mut h = Harness::new();
        // The cooldown is claimed for every address, so the work done does not tell either.
        h.send_slot(OtpPurpose::ResetPassword, SendSlot::Granted);
        h.user_lookup(account.clone());
        h.nothing_sent_nor_stored();

        let result = block_on(h.service().forgot_password(&email()));

        assert!(result.is_ok(), "{account:?}: {result:?}");
    }
}

#[test]
fn forgot_password_inside_the_cooldown_sends_nothing_and_answers_ok() {
    for account in [None, Some(creds(false)), Some(creds(true))] {
        let mut h = Harness::new();
        h.send_slot(
            OtpPurpose::ResetPassword,
            SendSlot::Cooldown {
                retry_after: secs(42),
            },
        );
        h.user_lookup(account.clone());
        h.nothing_sent_nor_stored();

        let result = block_on(h.service().forgot_password(&email()));

        assert!(result.is_ok(), "{account:?}: {result:?}");
    }
}

#[test]
fn forgot_password_swallows_a_mail_outage() {
    let mut h = Harness::new();
    h.send_slot(OtpPurpose::ResetPassword, SendSlot::Granted);
    h.user_lookup(Some(creds(true)));
    h.put_log();
    h.mailer
        .expect_send()
        .times(1)
        .returning(|_, _| Err(MailerError::Unavailable(outage())));

    let result = block_on(h.service().forgot_password(&email()));

    assert!(result.is_ok(), "{result:?}");
}

// --- reset_password --------------------------------------------------------------------------

#[test]
fn reset_password_sets_the_new_hash_revokes_every_session_and_mails_a_notice() {
    let mut h = Harness::new();
    let expected = mac(OtpPurpose::ResetPassword, FIRST_CODE);
    h.live_code(OtpPurpose::ResetPassword, expected, at(TEN_MINUTES), 1);
    h.otps
        .expect_consume()
        .withf(move |p, e, m| *p == OtpPurpose::ResetPassword && *e == email() && *m == expected)
        .times(1)
        .returning(|_, _, _| Ok(true));
    h.user_lookup(Some(creds(true)));
    h.hashes(NEW_PASSWORD, NEW_HASH);
    h.users
        .expect_set_password_hash()
        .withf(|id, hash, when| *id == ada_id() && hash.as_str() == NEW_HASH && *when == t0())
        .times(1)
        .returning(|_, _, _| Ok(()));
    h.sessions
        .expect_delete_all_for_user()
        .withf(|id, keep| *id == ada_id() && keep.is_none())
        .times(1)
        .returning(|_, _| Ok(4));
    h.mailer
        .expect_send()
        .withf(|to, message| *to == email() && *message == MailMessage::PasswordChanged)
        .times(1)
        .returning(|_, _| Ok(()));

    let user = block_on(h.service().reset_password(
        &email(),
        &code(FIRST_CODE),
        password(NEW_PASSWORD),
    ))
    .unwrap();

    assert_eq!(user.id, ada_id());
}

#[test]
fn reset_password_with_a_wrong_expired_or_exhausted_code_changes_nothing() {
    let right = mac(OtpPurpose::ResetPassword, FIRST_CODE);
    // (what is typed, when, attempts counted, expected error)
    let cases = [
        (WRONG_CODE, t0(), 1, "InvalidOtp"),
        (FIRST_CODE, at(TEN_MINUTES), 1, "OtpExpired"),
        (FIRST_CODE, t0(), 6, "TooManyAttempts"),
    ];
    for (typed, now, attempts, expected) in cases {
        let mut h = Harness::new();
        h.clock.set(now);
        h.live_code(OtpPurpose::ResetPassword, right, at(TEN_MINUTES), attempts);
        h.otps.expect_discard().returning(|_, _| Ok(()));
        h.otps.expect_consume().never();
        h.hasher.expect_hash().never();
        h.users.expect_set_password_hash().never();
        h.sessions.expect_delete_all_for_user().never();
        h.mailer.expect_send().never();

        let result = block_on(h.service().reset_password(
            &email(),
            &code(typed),
            password(NEW_PASSWORD),
        ));

        let got = match &result {
            Err(OtpCheckError::InvalidOtp) => "InvalidOtp",
            Err(OtpCheckError::OtpExpired) => "OtpExpired",
            Err(OtpCheckError::TooManyAttempts) => "TooManyAttempts",
            other => panic!("{expected}: got {other:?}"),
        };
        assert_eq!(got, expected);
    }
}

#[test]
fn reset_password_end_to_end_with_the_mailed_code() {
    let mut h = Harness::new();
    h.otp_store_in_memory();
    let outbox = h.outbox();
    h.user_lookup(Some(creds(true)));
    h.hashes(NEW_PASSWORD, NEW_HASH);
    h.users
        .expect_set_password_hash()
        .withf(|_, hash, _| hash.as_str() == NEW_HASH)
        .times(1)
        .returning(|_, _, _| Ok(()));
    h.sessions
        .expect_delete_all_for_user()
        .withf(|_, keep| keep.is_none())
        .times(1)
        .returning(|_, _| Ok(1));
    let clock = h.clock.clone();
    let svc = h.service();
    block_on(svc.forgot_password(&email())).unwrap();
    let reset_code = last_mailed_code(&outbox);

    clock.advance(TEN_MINUTES - secs(1));
    block_on(svc.reset_password(&email(), &reset_code, password(NEW_PASSWORD))).unwrap();
    let again = block_on(svc.reset_password(&email(), &reset_code, password(NEW_PASSWORD)));

    assert!(matches!(again, Err(OtpCheckError::InvalidOtp)), "{again:?}");
    assert_eq!(
        outbox.lock().unwrap().last().map(|(_, m)| m.clone()),
        Some(MailMessage::PasswordChanged)
    );
}

// --- outages ---------------------------------------------------------------------------------

#[test]
fn signup_surfaces_a_user_store_outage() {
    let mut h = Harness::new();
    h.users
        .expect_find_by_email()
        .returning(|_| Err(UserRepoError::Unavailable(outage())));

    match block_on(h.service().signup(email(), password(PASSWORD))) {
        Err(SignupError::Failure(f)) => assert_unavailable(&f, Dependency::UserStore),
        other => panic!("{other:?}"),
    }
}

#[test]
fn signup_surfaces_an_overloaded_hasher() {
    let mut h = Harness::new();
    h.user_lookup(None);
    h.hasher
        .expect_hash()
        .returning(|_| Err(HasherError::Unavailable(outage())));
    h.users.expect_create().never();

    match block_on(h.service().signup(email(), password(PASSWORD))) {
        Err(SignupError::Failure(f)) => assert_unavailable(&f, Dependency::Hasher),
        other => panic!("{other:?}"),
    }
}

#[test]
fn signup_surfaces_a_mail_outage() {
    let mut h = Harness::new();
    h.user_lookup(Some(creds(false)));
    h.send_slot(OtpPurpose::VerifyEmail, SendSlot::Granted);
    h.hashes(PASSWORD, NEW_HASH);
    h.users
        .expect_replace_unverified_password()
        .returning(|_, _, _| Ok(()));
    h.put_log();
    h.mailer
        .expect_send()
        .returning(|_, _| Err(MailerError::Unavailable(outage())));

    match block_on(h.service().signup(email(), password(PASSWORD))) {
        Err(SignupError::Failure(f)) => assert_unavailable(&f, Dependency::Mailer),
        other => panic!("{other:?}"),
    }
}

#[test]
fn verify_otp_surfaces_an_otp_store_outage() {
    let mut h = Harness::new();
    h.otps
        .expect_record_attempt()
        .returning(|_, _| Err(OtpStoreError::Unavailable(outage())));

    match block_on(h.service().verify_otp(&email(), &code(FIRST_CODE))) {
        Err(OtpCheckError::Failure(f)) => assert_unavailable(&f, Dependency::OtpStore),
        other => panic!("{other:?}"),
    }
}

#[test]
fn resend_and_forgot_surface_an_otp_store_outage() {
    let mut h = Harness::new();
    h.otps
        .expect_claim_send_slot()
        .returning(|_, _, _| Err(OtpStoreError::Unavailable(outage())));
    let svc = h.service();

    match block_on(svc.resend_otp(&email())) {
        Err(ResendOtpError::Failure(f)) => assert_unavailable(&f, Dependency::OtpStore),
        other => panic!("{other:?}"),
    }
    match block_on(svc.forgot_password(&email())) {
        Err(ForgotPasswordError::Failure(f)) => assert_unavailable(&f, Dependency::OtpStore),
        other => panic!("{other:?}"),
    }
}

#[test]
fn login_surfaces_a_session_store_outage() {
    let mut h = Harness::new();
    h.user_lookup(Some(creds(true)));
    h.verifies(PASSWORD, PasswordCheck::Match);
    h.sessions
        .expect_insert()
        .returning(|_, _| Err(SessionStoreError::Unavailable(outage())));

    match block_on(h.service().login(&email(), &attempt(PASSWORD), client())) {
        Err(LoginError::Failure(f)) => assert_unavailable(&f, Dependency::SessionStore),
        other => panic!("{other:?}"),
    }
}

#[test]
fn login_surfaces_an_overloaded_hasher() {
    let mut h = Harness::new();
    h.user_lookup(Some(creds(true)));
    h.hasher
        .expect_verify()
        .returning(|_, _| Err(HasherError::Unavailable(outage())));
    h.sessions.expect_insert().never();

    match block_on(h.service().login(&email(), &attempt(PASSWORD), client())) {
        Err(LoginError::Failure(f)) => assert_unavailable(&f, Dependency::Hasher),
        other => panic!("{other:?}"),
    }
}

#[test]
fn session_operations_surface_a_session_store_outage() {
    let mut h = Harness::new();
    h.sessions
        .expect_get()
        .returning(|_| Err(SessionStoreError::Unavailable(outage())));
    h.sessions
        .expect_delete()
        .returning(|_| Err(SessionStoreError::Unavailable(outage())));
    h.sessions
        .expect_delete_all_for_user()
        .returning(|_, _| Err(SessionStoreError::Unavailable(outage())));
    h.sessions
        .expect_list_for_user()
        .returning(|_| Err(SessionStoreError::Unavailable(outage())));
    let svc = h.service();
    let token = SessionToken::from_bytes([3; 32]);

    match block_on(svc.authenticate(&token)) {
        Err(AuthenticateError::Failure(f)) => assert_unavailable(&f, Dependency::SessionStore),
        other => panic!("authenticate: {other:?}"),
    }
    for (operation, result) in [
        ("logout", block_on(svc.logout(&token))),
        ("logout_all", block_on(svc.logout_all(ada_id())).map(|_| ())),
        (
            "list_sessions",
            block_on(svc.list_sessions(ada_id())).map(|_| ()),
        ),
    ] {
        match result {
            Err(SessionError::Failure(f)) => assert_unavailable(&f, Dependency::SessionStore),
            other => panic!("{operation}: {other:?}"),
        }
    }
}

#[test]
fn change_password_surfaces_a_user_store_outage_and_keeps_the_sessions() {
    let mut h = Harness::new();
    account_by_id(&mut h);
    h.verifies(PASSWORD, PasswordCheck::Match);
    h.hashes(NEW_PASSWORD, NEW_HASH);
    h.users
        .expect_set_password_hash()
        .returning(|_, _, _| Err(UserRepoError::Unavailable(outage())));
    h.sessions.expect_delete_all_for_user().never();
    h.mailer.expect_send().never();

    match block_on(h.service().change_password(
        &current_session(),
        &attempt(PASSWORD),
        password(NEW_PASSWORD),
    )) {
        Err(ChangePasswordError::Failure(f)) => assert_unavailable(&f, Dependency::UserStore),
        other => panic!("{other:?}"),
    }
}

#[test]
fn reset_password_surfaces_an_overloaded_hasher_and_changes_nothing() {
    let mut h = Harness::new();
    h.live_code(
        OtpPurpose::ResetPassword,
        mac(OtpPurpose::ResetPassword, FIRST_CODE),
        at(TEN_MINUTES),
        1,
    );
    // The code stays valid for another try once the hasher has room again.
    h.otps.expect_consume().never();
    h.user_lookup(Some(creds(true)));
    h.hasher
        .expect_hash()
        .returning(|_| Err(HasherError::Unavailable(outage())));
    h.users.expect_set_password_hash().never();
    h.sessions.expect_delete_all_for_user().never();
    h.mailer.expect_send().never();

    match block_on(
        h.service()
            .reset_password(&email(), &code(FIRST_CODE), password(NEW_PASSWORD)),
    ) {
        Err(OtpCheckError::Failure(f)) => assert_unavailable(&f, Dependency::Hasher),
        other => panic!("{other:?}"),
    }
}

// --- delete_account --------------------------------------------------------------------------

#[test]
fn delete_account_revokes_sessions_before_and_after_deleting_and_mails_a_notice() {
    let mut h = Harness::new();
    account_by_id(&mut h);
    h.verifies(PASSWORD, PasswordCheck::Match);
    let mut order = mockall::Sequence::new();
    h.sessions
        .expect_delete_all_for_user()
        .withf(|id, keep| *id == ada_id() && keep.is_none())
        .times(1)
        .in_sequence(&mut order)
        .returning(|_, _| Ok(2));
    h.users
        .expect_delete()
        .withf(|id| *id == ada_id())
        .times(1)
        .in_sequence(&mut order)
        .returning(|_| Ok(true));
    h.sessions
        .expect_delete_all_for_user()
        .withf(|id, keep| *id == ada_id() && keep.is_none())
        .times(1)
        .in_sequence(&mut order)
        .returning(|_, _| Ok(0));
    h.mailer
        .expect_send()
        .withf(|to, message| *to == email() && *message == MailMessage::AccountDeleted)
        .times(1)
        .returning(|_, _| Ok(()));

    let result = block_on(
        h.service()
            .delete_account(&current_session(), &attempt(PASSWORD)),
    );

    assert!(result.is_ok(), "{result:?}");
}

#[test]
fn delete_account_with_a_wrong_password_changes_nothing() {
    let mut h = Harness::new();
    account_by_id(&mut h);
    h.verifies("wrong password", PasswordCheck::Mismatch);
    h.users.expect_delete().never();
    h.sessions.expect_delete_all_for_user().never();
    h.mailer.expect_send().never();

    let result = block_on(
        h.service()
            .delete_account(&current_session(), &attempt("wrong password")),
    );

    assert!(
        matches!(result, Err(DeleteAccountError::InvalidCredentials)),
        "{result:?}"
    );
}

#[test]
fn delete_account_keeps_the_account_when_sessions_cannot_be_revoked() {
    let mut h = Harness::new();
    account_by_id(&mut h);
    h.verifies(PASSWORD, PasswordCheck::Match);
    h.sessions
        .expect_delete_all_for_user()
        .times(1)
        .returning(|_, _| Err(SessionStoreError::Unavailable("down".into())));
    h.users.expect_delete().never();
    h.mailer.expect_send().never();

    let result = block_on(
        h.service()
            .delete_account(&current_session(), &attempt(PASSWORD)),
    );

    assert!(
        matches!(
            result,
            Err(DeleteAccountError::Failure(Failure::Unavailable(
                Dependency::SessionStore,
                _
            )))
        ),
        "{result:?}"
    );
}

#[test]
fn delete_account_of_a_vanished_account_is_unauthenticated() {
    let mut h = Harness::new();
    h.users.expect_find_by_id().returning(|_| Ok(None));
    h.users.expect_delete().never();

    let result = block_on(
        h.service()
            .delete_account(&current_session(), &attempt(PASSWORD)),
    );

    assert!(
        matches!(result, Err(DeleteAccountError::Unauthenticated)),
        "{result:?}"
    );
}

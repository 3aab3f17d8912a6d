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
    MockSessionStore, MockTotpStore, MockUserRepository, OsRandom, OtpStoreError, RateLimiter,
    SessionStoreError, Unlimited,
};
use crate::testing::ManualClock;
#[allow(unused_imports)]
use crate::*;

mod account;
mod admin;
mod breached;
mod changes;
mod codes;
mod config;
mod email;
mod events;
mod guard;
mod lockout;
mod mfa;
mod outages;
mod passkeys;
mod password;
mod sessions;

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

/// The stored account's language preference.
const LANGUAGE: &str = "de-CH, de;q=0.9";

fn creds(verified: bool) -> UserCredentials {
    UserCredentials {
        user: user(verified),
        password_hash: PasswordHash::new(OLD_HASH),
        language: Some(LANGUAGE.to_owned()),
        status: crate::domain::user::AccountStatus::default(),
    }
}

fn session(n: u128, owner: User, created_at: DateTime<Utc>, expires_at: DateTime<Utc>) -> Session {
    Session {
        passkey: None,
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
/// Codes of the in-memory OTP store per purpose, with their shared attempt counter (the tests
/// use one address).
type OtpState = Arc<Mutex<HashMap<OtpPurpose, (Vec<StoredOtp>, u32)>>>;
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
    limiter: Arc<dyn RateLimiter>,
    /// Second factors; `None`: a mock on which every user has TOTP off.
    totp: Option<Arc<dyn TotpStore>>,
    config: AuthConfig,
    /// The security event store; `None`: none (nothing is recorded).
    events: Option<Arc<dyn SecurityEvents>>,
    /// Whether the test sets its own expectations on the revocation epoch; otherwise every
    /// epoch reads 0 and every bump succeeds.
    custom_epochs: bool,
    /// Whether the test sets its own expectation on `is_saturated`; otherwise the hasher
    /// always has capacity.
    custom_saturation: bool,
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
            limiter: Arc::new(Unlimited),
            totp: None,
            config: AuthConfig::default(),
            events: None,
            custom_epochs: false,
            custom_saturation: false,
        }
    }

    fn service(mut self) -> AuthService {
        if !self.custom_epochs {
            self.sessions.expect_revocation_epoch().returning(|_| Ok(0));
            self.sessions
                .expect_bump_revocation_epoch()
                .returning(|_| Ok(()));
        }
        self.otps
            .expect_discard()
            .withf(|purpose, _| {
                [
                    OtpPurpose::Login,
                    OtpPurpose::ResetPassword,
                    OtpPurpose::ChangeEmail,
                ]
                .contains(purpose)
            })
            .returning(|_, _| Ok(()));
        if !self.custom_saturation {
            self.hasher.expect_is_saturated().return_const(false);
        }
        // A fallback after the test's own expectations: every device is known.
        self.sessions
            .expect_remember_device()
            .returning(|_, _, _, _, _| Ok(crate::ports::DeviceSighting::Known));
        // A fallback after the test's own expectations: no total bound.
        self.hasher.expect_capacity().return_const(None::<usize>);
        let ports = AuthPorts {
            users: Arc::new(self.users),
            sessions: Arc::new(self.sessions),
            otps: Arc::new(self.otps),
            mailer: Arc::new(self.mailer),
            hasher: Arc::new(self.hasher),
            clock: self.clock,
            random: self.random,
            limiter: self.limiter,
            totp: self.totp.unwrap_or_else(|| {
                let mut off = MockTotpStore::new();
                off.expect_get().returning(|_| Ok(None));
                Arc::new(off)
            }),
        };
        let service = AuthService::new(ports, self.config, otp_secret());
        match self.events {
            Some(events) => service.with_security_events(events, SecurityEventConfig::default()),
            None => service,
        }
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
                    codes: vec![StoredOtp {
                        mac,
                        expires_at,
                        pending_password: None,
                        requested_by: None,
                    }],
                    attempts,
                }))
            });
    }

    /// Every mail is accepted and kept.
    fn outbox(&mut self) -> Outbox {
        let outbox = Outbox::default();
        let sent = outbox.clone();
        self.mailer
            .expect_send_localized()
            .returning(move |to, message, _| {
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
            .withf(|_, e, _, keep, _| *e == email() && *keep == 10)
            .returning(move |purpose, _, otp, _, retain| {
                puts.lock().unwrap().push((purpose, otp, retain));
                Ok(())
            });
        log
    }

    /// Nothing is mailed, no code is stored.
    fn nothing_sent_nor_stored(&mut self) {
        self.mailer.expect_send_localized().never();
        self.otps.expect_put().never();
    }

    /// Makes the OTP-store mock behave like a store (the first and the `keep - 1` newest codes per
    /// purpose, with a
    /// shared attempt counter, consume-by-MAC, send slots always granted), so that a test can
    /// run a flow: a code is mailed, then typed in.
    fn otp_store_in_memory(&mut self) -> OtpState {
        let state = OtpState::default();
        self.otps
            .expect_claim_send_slot()
            .returning(|_, _, _| Ok(SendSlot::Granted));
        let s = state.clone();
        self.otps
            .expect_put()
            .returning(move |purpose, _, otp, keep, _| {
                let mut codes = s.lock().unwrap();
                let (list, n) = codes.entry(purpose).or_default();
                list.push(otp);
                while list.len() > keep {
                    list.remove(if keep >= 2 { 1 } else { 0 });
                }
                *n = 0;
                Ok(())
            });
        let s = state.clone();
        self.otps
            .expect_record_attempt()
            .returning(move |purpose, _| {
                Ok(s.lock().unwrap().get_mut(&purpose).map(|(codes, n)| {
                    *n += 1;
                    OtpAttempt {
                        codes: codes.clone(),
                        attempts: *n,
                    }
                }))
            });
        let s = state.clone();
        self.otps
            .expect_consume()
            .returning(move |purpose, _, mac| {
                let mut codes = s.lock().unwrap();
                let Some((list, _)) = codes.get_mut(&purpose) else {
                    return Ok(false);
                };
                let before = list.len();
                list.retain(|otp| otp.mac != *mac);
                Ok(list.len() < before)
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
    /// The verification goes through: `mark_verified` of ada, then the code's password is set
    /// once more and her sessions are swept (see `verify_otp`).
    fn marks_verified(&mut self) {
        self.users
            .expect_set_password_hash()
            .withf(|id, _, _, _| *id == ada_id())
            .returning(|_, _, _, _| Ok(()));
        self.sessions
            .expect_delete_all_for_user()
            .returning(|_, _| Ok(0));
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
            MailMessage::VerifyEmail { code, .. }
            | MailMessage::VerifyEmailAgain { code, .. }
            | MailMessage::ResetPassword { code, .. },
        )) => code.clone(),
        other => panic!("no code mail in the outbox: {other:?}"),
    }
}

fn current_session() -> Session {
    session(50, user(true), before(secs(3600)), at(ONE_DAY))
}

fn account_by_id(h: &mut Harness) {
    h.users
        .expect_find_by_id()
        .withf(|id| *id == ada_id())
        .returning(|_| Ok(Some(creds(true))));
}

//! Two-factor authentication: TOTP enrolment, the second login step, replay, drift, recovery
//! codes, the second-step token's rules, turning it off and the step-up. The TOTP store is a
//! fake that behaves like the real ones (so the rules can be run as flows); every other port
//! is a mock.

use super::*;
use crate::domain::mfa::RecoveryCodeHash;
use crate::ports::{MfaChallenge, StoredTotp, TotpStoreError};
use std::sync::PoisonError;

#[derive(Default)]
struct Row {
    sealed_secret: Vec<u8>,
    enabled_at: Option<DateTime<Utc>>,
    last_step: Option<u64>,
    codes: Vec<RecoveryCodeHash>,
}

#[derive(Default)]
struct State {
    rows: HashMap<UserId, Row>,
    challenges: HashMap<[u8; 32], MfaChallenge>,
}

/// A [`TotpStore`] in a map, with the atomicity of a real one (one lock per operation).
#[derive(Clone, Default)]
pub(super) struct FakeTotpStore(Arc<Mutex<State>>);

impl FakeTotpStore {
    /// An empty store.
    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl std::fmt::Debug for FakeTotpStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeTotpStore").finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl TotpStore for FakeTotpStore {
    async fn get(&self, user: UserId) -> Result<Option<StoredTotp>, TotpStoreError> {
        Ok(self.with(|s| {
            s.rows.get(&user).map(|r| StoredTotp {
                sealed_secret: r.sealed_secret.clone(),
                enabled_at: r.enabled_at,
                last_step: r.last_step,
                recovery_codes_left: u32::try_from(r.codes.len()).unwrap_or(u32::MAX),
            })
        }))
    }

    async fn put_pending(
        &self,
        user: UserId,
        sealed_secret: &[u8],
        _at: DateTime<Utc>,
    ) -> Result<bool, TotpStoreError> {
        Ok(self.with(|s| {
            if s.rows.get(&user).is_some_and(|r| r.enabled_at.is_some()) {
                return false;
            }
            s.rows.insert(
                user,
                Row {
                    sealed_secret: sealed_secret.to_vec(),
                    ..Row::default()
                },
            );
            true
        }))
    }

    async fn enable(
        &self,
        user: UserId,
        step: u64,
        codes: &[RecoveryCodeHash],
        at: DateTime<Utc>,
    ) -> Result<bool, TotpStoreError> {
        Ok(self.with(|s| match s.rows.get_mut(&user) {
            Some(r) if r.enabled_at.is_none() => {
                r.enabled_at = Some(at);
                r.last_step = Some(step);
                r.codes = codes.to_vec();
                true
            }
            _ => false,
        }))
    }

    async fn accept_step(&self, user: UserId, step: u64) -> Result<bool, TotpStoreError> {
        Ok(self.with(|s| match s.rows.get_mut(&user) {
            Some(r) if r.enabled_at.is_some() && r.last_step.is_none_or(|l| l < step) => {
                r.last_step = Some(step);
                true
            }
            _ => false,
        }))
    }

    async fn use_recovery_code(
        &self,
        user: UserId,
        code: &RecoveryCodeHash,
    ) -> Result<Option<u32>, TotpStoreError> {
        Ok(self.with(|s| {
            let r = s.rows.get_mut(&user).filter(|r| r.enabled_at.is_some())?;
            let i = r.codes.iter().position(|c| c == code)?;
            r.codes.swap_remove(i);
            Some(u32::try_from(r.codes.len()).unwrap_or(u32::MAX))
        }))
    }

    async fn replace_recovery_codes(
        &self,
        user: UserId,
        codes: &[RecoveryCodeHash],
    ) -> Result<bool, TotpStoreError> {
        Ok(self.with(|s| match s.rows.get_mut(&user) {
            Some(r) if r.enabled_at.is_some() => {
                r.codes = codes.to_vec();
                true
            }
            _ => false,
        }))
    }

    async fn disable(&self, user: UserId) -> Result<bool, TotpStoreError> {
        Ok(self.with(|s| {
            s.challenges.retain(|_, c| c.user_id != user);
            s.rows.remove(&user).is_some()
        }))
    }

    async fn put_challenge(&self, challenge: &MfaChallenge) -> Result<(), TotpStoreError> {
        self.with(|s| {
            s.challenges
                .insert(challenge.token_hash.0, challenge.clone());
        });
        Ok(())
    }

    async fn get_challenge(
        &self,
        token_hash: &TokenHash,
    ) -> Result<Option<MfaChallenge>, TotpStoreError> {
        Ok(self.with(|s| s.challenges.get(&token_hash.0).cloned()))
    }

    async fn take_challenge(&self, token_hash: &TokenHash) -> Result<bool, TotpStoreError> {
        Ok(self.with(|s| s.challenges.remove(&token_hash.0).is_some()))
    }
}

// --- fixture ---------------------------------------------------------------------------------

/// A harness where Ada exists and logs in with [`PASSWORD`], sessions are kept, every mail is
/// recorded and second factors live in a [`FakeTotpStore`].
fn mfa_harness() -> (Harness, FakeTotpStore, Outbox, SessionState) {
    let mut h = Harness::new();
    h.user_lookup(Some(creds(true)));
    account_by_id(&mut h);
    h.hasher.expect_verify().returning(|p, _| {
        Ok(if p.expose_secret() == PASSWORD {
            PasswordCheck::Match
        } else {
            PasswordCheck::Mismatch
        })
    });
    let sessions = h.session_store_in_memory();
    h.sessions
        .expect_delete_all_for_user()
        .returning(|_, _| Ok(0));
    let outbox = h.outbox();
    let store = FakeTotpStore::default();
    h.totp = Some(Arc::new(store.clone()));
    (h, store, outbox, sessions)
}

/// The TOTP of Ada's stored secret (opened as the service would).
fn ada_totp(svc: &AuthService, store: &FakeTotpStore) -> Totp {
    let stored = block_on(store.get(ada_id())).unwrap().unwrap();
    svc.open_totp(&user(true), &stored).unwrap()
}

/// Enrols Ada at `t0` and confirms with the code of `t0`; returns the recovery codes.
fn enrol(svc: &AuthService, store: &FakeTotpStore) -> Vec<RecoveryCode> {
    block_on(svc.begin_totp_enrolment(&current_session(), &attempt(PASSWORD), &client())).unwrap();
    let code = ada_totp(svc, store).code_at(t0());
    block_on(svc.confirm_totp(&current_session(), &code, &client())).unwrap()
}

/// The first login step: the password is right, a second factor is required.
fn first_step(svc: &AuthService, from: ClientInfo) -> PendingLogin {
    match block_on(svc.login(&email(), &attempt(PASSWORD), from)) {
        Err(LoginError::SecondFactorRequired(pending)) => pending,
        other => panic!("expected a second step, got {other:?}"),
    }
}

fn totp_factor(code: OtpCode) -> SecondFactor {
    SecondFactor::Totp(code)
}

fn at_step_offset(base: DateTime<Utc>, steps: i64) -> DateTime<Utc> {
    base + TimeDelta::seconds(30 * steps)
}

// --- tests -----------------------------------------------------------------------------------

#[test]
fn enrolment_seals_the_secret_and_confirmation_turns_it_on_with_ten_recovery_codes() {
    let (h, store, outbox, _) = mfa_harness();
    let clock = h.clock.clone();
    let svc = h.service();

    let enrolment =
        block_on(svc.begin_totp_enrolment(&current_session(), &attempt(PASSWORD), &client()))
            .unwrap();
    let stored = block_on(store.get(ada_id())).unwrap().unwrap();
    assert!(stored.enabled_at.is_none(), "pending until confirmed");
    let base32 = enrolment.totp.secret_base32();
    assert!(enrolment.totp.otpauth_uri().contains(&base32));
    // Sealed: the raw secret is nowhere in the stored bytes.
    let raw = ada_totp(&svc, &store);
    assert_eq!(raw.secret_base32(), base32);
    assert!(!String::from_utf8_lossy(&stored.sealed_secret).contains(&base32));
    assert!(stored.sealed_secret.len() > 20);
    // Still off: a login needs no second factor yet.
    assert!(!block_on(svc.totp_enabled(ada_id())).unwrap());

    // A wrong code does not turn it on.
    let wrong = code(if raw.code_at(t0()).expose() == "000000" {
        "111111"
    } else {
        "000000"
    });
    let r = block_on(svc.confirm_totp(&current_session(), &wrong, &client()));
    assert!(matches!(r, Err(MfaError::InvalidCode)), "{r:?}");

    clock.advance(secs(5));
    let codes =
        block_on(svc.confirm_totp(&current_session(), &raw.code_at(t0()), &client())).unwrap();
    assert_eq!(codes.len(), RECOVERY_CODE_COUNT);
    let distinct: HashSet<String> = codes.iter().map(RecoveryCode::expose).collect();
    assert_eq!(distinct.len(), RECOVERY_CODE_COUNT);
    let stored = block_on(store.get(ada_id())).unwrap().unwrap();
    assert_eq!(stored.recovery_codes_left, 10);
    assert!(stored.enabled_at.is_some());
    assert!(outbox
        .lock()
        .unwrap()
        .iter()
        .any(|(_, m)| *m == MailMessage::TotpEnabled));

    // A second enrolment while on is refused.
    let again =
        block_on(svc.begin_totp_enrolment(&current_session(), &attempt(PASSWORD), &client()));
    assert!(matches!(again, Err(MfaError::AlreadyEnabled)), "{again:?}");
}

#[test]
fn with_totp_on_a_right_password_gives_no_session_until_the_second_step() {
    let (h, store, _, sessions) = mfa_harness();
    let clock = h.clock.clone();
    let svc = h.service();
    enrol(&svc, &store);
    let before_login = sessions.lock().unwrap().len();

    let pending = first_step(&svc, client());
    assert_eq!(
        sessions.lock().unwrap().len(),
        before_login,
        "no session after the password"
    );
    assert_eq!(pending.expires_at, t0() + TimeDelta::minutes(5));

    clock.advance(secs(30));
    let code = ada_totp(&svc, &store).code_at(clock.now());
    let done =
        block_on(svc.login_second_factor(&pending.token, &totp_factor(code), client(), None))
            .unwrap();
    assert_eq!(done.login.user.id, ada_id());
    assert_eq!(done.recovery_codes_left, None);
    assert!(sessions
        .lock()
        .unwrap()
        .contains_key(&done.login.token.hash().0));
}

#[test]
fn a_totp_code_is_accepted_once_and_an_older_step_is_a_replay() {
    let (h, store, _, _) = mfa_harness();
    let clock = h.clock.clone();
    let svc = h.service();
    enrol(&svc, &store);
    let totp = ada_totp(&svc, &store);

    // The confirmation code's step is used: the same code at login is a replay.
    let pending = first_step(&svc, client());
    let replay = block_on(svc.login_second_factor(
        &pending.token,
        &totp_factor(totp.code_at(t0())),
        client(),
        None,
    ));
    assert!(
        matches!(replay, Err(SecondStepError::InvalidCode)),
        "{replay:?}"
    );

    // The next step's code works once...
    clock.advance(secs(30));
    let next = totp.code_at(clock.now());
    block_on(svc.login_second_factor(&pending.token, &totp_factor(next.clone()), client(), None))
        .unwrap();
    let pending = first_step(&svc, client());
    let again =
        block_on(svc.login_second_factor(&pending.token, &totp_factor(next), client(), None));
    assert!(
        matches!(again, Err(SecondStepError::InvalidCode)),
        "{again:?}"
    );
    // ...and a code of an earlier step, still inside the drift window, is a replay too.
    clock.advance(secs(30));
    let older = totp.code_at(at_step_offset(clock.now(), -1));
    let r = block_on(svc.login_second_factor(&pending.token, &totp_factor(older), client(), None));
    assert!(matches!(r, Err(SecondStepError::InvalidCode)), "{r:?}");
}

#[test]
fn drift_of_one_step_either_way_is_accepted_and_two_steps_are_not() {
    let (h, store, _, _) = mfa_harness();
    let clock = h.clock.clone();
    let svc = h.service();
    enrol(&svc, &store);
    let totp = ada_totp(&svc, &store);
    clock.advance(secs(10 * 60));
    let now = clock.now();

    let pending = first_step(&svc, client());
    for too_far in [-2, 2] {
        let c = totp.code_at(at_step_offset(now, too_far));
        let r = block_on(svc.login_second_factor(&pending.token, &totp_factor(c), client(), None));
        assert!(
            matches!(r, Err(SecondStepError::InvalidCode)),
            "{too_far}: {r:?}"
        );
    }
    // One step behind (a slow phone) works...
    let behind = totp.code_at(at_step_offset(now, -1));
    block_on(svc.login_second_factor(&pending.token, &totp_factor(behind), client(), None))
        .unwrap();
    // ...and one step ahead (a fast phone), on the next login.
    let pending = first_step(&svc, client());
    let ahead = totp.code_at(at_step_offset(now, 1));
    block_on(svc.login_second_factor(&pending.token, &totp_factor(ahead), client(), None)).unwrap();
}

#[test]
fn recovery_codes_are_single_use_and_the_owner_is_told_how_many_are_left() {
    let (h, store, outbox, _) = mfa_harness();
    let svc = h.service();
    let codes = enrol(&svc, &store);

    let pending = first_step(&svc, client());
    let factor = SecondFactor::Recovery(codes[3].clone());
    let done = block_on(svc.login_second_factor(&pending.token, &factor, client(), None)).unwrap();
    assert_eq!(done.recovery_codes_left, Some(9));
    assert!(outbox
        .lock()
        .unwrap()
        .iter()
        .any(|(_, m)| *m == MailMessage::RecoveryCodeUsed { left: 9 }));

    let pending = first_step(&svc, client());
    let reused = block_on(svc.login_second_factor(&pending.token, &factor, client(), None));
    assert!(
        matches!(reused, Err(SecondStepError::InvalidCode)),
        "{reused:?}"
    );
    let other = SecondFactor::Recovery(codes[4].clone());
    let done = block_on(svc.login_second_factor(&pending.token, &other, client(), None)).unwrap();
    assert_eq!(done.recovery_codes_left, Some(8));
}

#[test]
fn a_second_step_token_is_single_use_expires_and_works_only_for_its_client() {
    let (h, store, _, _) = mfa_harness();
    let clock = h.clock.clone();
    let svc = h.service();
    let codes = enrol(&svc, &store);
    let recovery = |i: usize| SecondFactor::Recovery(codes[i].clone());

    // Another client (another address, or another user agent) gets nothing from the token.
    let pending = first_step(&svc, client());
    let thief = ClientInfo::new(
        Some(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 9))),
        Some("curl/8"),
    );
    let other_agent = ClientInfo::new(client().ip, Some("curl/8"));
    for other in [thief, other_agent] {
        let r = block_on(svc.login_second_factor(&pending.token, &recovery(0), other, None));
        assert!(matches!(r, Err(SecondStepError::InvalidToken)), "{r:?}");
    }
    // Used once, it is gone.
    block_on(svc.login_second_factor(&pending.token, &recovery(0), client(), None)).unwrap();
    let r = block_on(svc.login_second_factor(&pending.token, &recovery(1), client(), None));
    assert!(matches!(r, Err(SecondStepError::InvalidToken)), "{r:?}");

    // Five minutes after the password it has expired.
    let pending = first_step(&svc, client());
    clock.advance(secs(5 * 60));
    let r = block_on(svc.login_second_factor(&pending.token, &recovery(1), client(), None));
    assert!(matches!(r, Err(SecondStepError::InvalidToken)), "{r:?}");
    assert_eq!(
        block_on(store.get(ada_id()))
            .unwrap()
            .unwrap()
            .recovery_codes_left,
        9
    );
}

#[test]
fn a_login_code_needs_the_second_factor_too() {
    let (mut h, store, _, _) = mfa_harness();
    h.otp_store_in_memory();
    let svc = h.service();
    enrol(&svc, &store);
    block_on(svc.request_login_code(&email(), &client())).unwrap();
    let r = block_on(svc.login_with_code(&email(), &code(FIRST_CODE), client(), None));
    assert!(
        matches!(r, Err(OtpCheckError::SecondFactorRequired(_))),
        "{r:?}"
    );
}

#[test]
fn change_password_and_deletion_ask_for_the_second_factor() {
    let (mut h, store, _, _) = mfa_harness();
    h.hasher
        .expect_hash()
        .returning(|_| Ok(PasswordHash::new(NEW_HASH)));
    h.users
        .expect_set_password_hash()
        .returning(|_, _, _, _| Ok(()));
    let clock = h.clock.clone();
    let svc = h.service();
    let codes = enrol(&svc, &store);

    let change = |factor: Option<&SecondFactor>| {
        block_on(svc.change_password_with_factor(
            &current_session(),
            &attempt(PASSWORD),
            password(NEW_PASSWORD),
            factor,
            &client(),
        ))
    };
    let r = change(None);
    assert!(
        matches!(r, Err(ChangePasswordError::SecondFactorRequired)),
        "{r:?}"
    );
    let r = block_on(svc.delete_account(&current_session(), &attempt(PASSWORD), &client()));
    assert!(
        matches!(r, Err(DeleteAccountError::SecondFactorRequired)),
        "{r:?}"
    );
    // The confirmation's code is used already.
    let used = totp_factor(ada_totp(&svc, &store).code_at(t0()));
    let r = change(Some(&used));
    assert!(
        matches!(r, Err(ChangePasswordError::InvalidSecondFactor)),
        "{r:?}"
    );
    clock.advance(secs(30));
    let fresh = totp_factor(ada_totp(&svc, &store).code_at(clock.now()));
    change(Some(&fresh)).unwrap();
    change(Some(&SecondFactor::Recovery(codes[0].clone()))).unwrap();
}

#[test]
fn turning_totp_off_needs_password_and_code_ends_other_sessions_and_mails_the_owner() {
    let (mut h, store, outbox, _) = mfa_harness();
    let keep = current_session().id;
    h.sessions.checkpoint();
    let sessions = h.session_store_in_memory();
    h.sessions
        .expect_delete_all_for_user()
        .withf(move |id, k| *id == ada_id() && *k == Some(keep))
        // Once when it is turned on, once when it is turned off: both keep this session.
        .times(2)
        .returning(|_, _| Ok(3));
    let clock = h.clock.clone();
    let svc = h.service();
    let codes = enrol(&svc, &store);
    let _ = sessions;

    let r = block_on(svc.disable_totp(
        &current_session(),
        &attempt("wrong password"),
        &SecondFactor::Recovery(codes[0].clone()),
        &client(),
    ));
    assert!(matches!(r, Err(MfaError::InvalidCredentials)), "{r:?}");
    clock.advance(secs(30));
    let code = ada_totp(&svc, &store).code_at(clock.now());
    block_on(svc.disable_totp(
        &current_session(),
        &attempt(PASSWORD),
        &totp_factor(code),
        &client(),
    ))
    .unwrap();
    assert!(block_on(store.get(ada_id())).unwrap().is_none());
    assert!(outbox
        .lock()
        .unwrap()
        .iter()
        .any(|(_, m)| *m == MailMessage::TotpDisabled));
    // A password alone logs in again.
    block_on(svc.login(&email(), &attempt(PASSWORD), client())).unwrap();
}

/// A revocation between the two steps (password change, logout everywhere, a disable) makes
/// the second-step token worthless *before* the factor is checked: a recovery code given to
/// it is not used up for a session that would be refused anyway.
#[test]
fn a_revocation_between_the_steps_spends_no_recovery_code() {
    let (mut h, store, _, _) = mfa_harness();
    h.custom_epochs = true;
    let epoch = Arc::new(AtomicUsize::new(0));
    let e = epoch.clone();
    h.sessions
        .expect_revocation_epoch()
        .returning(move |_| Ok(e.load(Ordering::SeqCst) as u64));
    h.sessions
        .expect_bump_revocation_epoch()
        .returning(|_| Ok(()));
    let svc = h.service();
    let codes = enrol(&svc, &store);
    let pending = first_step(&svc, client());
    epoch.fetch_add(1, Ordering::SeqCst);

    let factor = SecondFactor::Recovery(codes[0].clone());
    let r = block_on(svc.login_second_factor(&pending.token, &factor, client(), None));

    assert!(matches!(r, Err(SecondStepError::InvalidToken)), "{r:?}");
    let left = block_on(store.get(ada_id())).unwrap().unwrap();
    assert_eq!(left.recovery_codes_left, 10, "the code was not spent");
    // The code still works on a fresh first step.
    let pending = first_step(&svc, client());
    block_on(svc.login_second_factor(&pending.token, &factor, client(), None)).unwrap();
}

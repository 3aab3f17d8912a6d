//! The change of address (`service/email.rs`): the request (password, second factor, same
//! address, disabled account, cooldown, a verified, pending or free new address) and the
//! confirmation (no code, a wrong, exhausted, expired or raced code, a move refused by the
//! store's compare-and-set or by a verified account there, the hard limit of a stolen session,
//! and the move itself).

use super::guard::CountingLimiter;
use super::*;

fn new_email() -> EmailAddress {
    EmailAddress::parse("ada@new.example").unwrap()
}

/// The stored MAC of a change code for `raw`, bound like the service binds it.
fn change_mac(raw: &str, hash: &str) -> OtpMac {
    otp_secret().mac_bound(
        OtpPurpose::ChangeEmail,
        &email(),
        &[
            new_email().as_str().as_bytes(),
            PasswordHash::new(hash).as_str().as_bytes(),
        ],
        &code(raw),
    )
}

fn creds_with(status: crate::domain::user::AccountStatus) -> UserCredentials {
    UserCredentials {
        status,
        ..creds(true)
    }
}

fn disabled() -> crate::domain::user::AccountStatus {
    crate::domain::user::AccountStatus {
        disabled_at: Some(before(secs(60))),
        ..Default::default()
    }
}

/// `find_by_id(ada)` answers `found`, as often as asked.
fn account(h: &mut Harness, found: Option<UserCredentials>) {
    h.users
        .expect_find_by_id()
        .withf(|id| *id == ada_id())
        .returning(move |_| Ok(found.clone()));
}

/// `find_by_email(new address)` answers `holder`, as often as asked.
fn holder_of_new_address(h: &mut Harness, holder: Option<UserCredentials>) {
    h.users
        .expect_find_by_email()
        .withf(|e| *e == new_email())
        .returning(move |_| Ok(holder.clone()));
}

fn request(svc: &AuthService) -> Result<(), ChangeEmailError> {
    block_on(svc.request_email_change(
        &current_session(),
        &attempt(PASSWORD),
        &new_email(),
        None,
        &client(),
    ))
}

/// A request that gets past the password: the mails sent, to whom.
fn requested_with_holder(holder: Option<UserCredentials>) -> Vec<(EmailAddress, MailMessage)> {
    let mut h = Harness::new();
    account(&mut h, Some(creds(true)));
    h.verifies(PASSWORD, PasswordCheck::Match);
    h.otps
        .expect_claim_send_slot()
        .withf(|p, e, _| *p == OtpPurpose::ChangeEmail && *e == email())
        .times(1)
        .returning(|_, _, _| Ok(SendSlot::Granted));
    holder_of_new_address(&mut h, holder);
    h.otps
        .expect_put()
        .withf(|p, e, otp, keep, _| {
            *p == OtpPurpose::ChangeEmail
                && *e == email()
                && *keep == 10
                && otp.mac == change_mac(FIRST_CODE, OLD_HASH)
                && otp.expires_at == at(TEN_MINUTES)
        })
        .times(1)
        .returning(|_, _, _, _, _| Ok(()));
    let outbox = h.outbox();
    let svc = h.service();
    assert!(request(&svc).is_ok());
    let sent = outbox.lock().unwrap().clone();
    sent
}

#[test]
fn a_free_new_address_gets_the_code_and_the_current_one_a_notice() {
    let sent = requested_with_holder(None);
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert_eq!(sent[0].0, new_email());
    assert!(
        matches!(&sent[0].1, MailMessage::EmailChangeCode { code: c, valid_for } if *c == code(FIRST_CODE) && *valid_for == TEN_MINUTES),
        "{sent:?}"
    );
    assert_eq!(sent[1], (email(), MailMessage::EmailChangeRequested));
}

#[test]
fn a_pending_signup_at_the_new_address_does_not_stop_the_code() {
    let pending = UserCredentials {
        user: User {
            email: new_email(),
            ..user(false)
        },
        ..creds(false)
    };
    let sent = requested_with_holder(Some(pending));
    assert!(
        matches!(&sent[0].1, MailMessage::EmailChangeCode { .. }),
        "{sent:?}"
    );
}

#[test]
fn a_verified_account_at_the_new_address_gets_a_notice_instead_of_the_code() {
    let occupant = UserCredentials {
        user: User {
            id: UserId::from_uuid(Uuid::from_u128(0xB0B)),
            email: new_email(),
            ..user(true)
        },
        ..creds(true)
    };
    let sent = requested_with_holder(Some(occupant));
    assert_eq!(
        sent,
        [
            (new_email(), MailMessage::EmailChangeAddressTaken),
            (email(), MailMessage::EmailChangeRequested)
        ]
    );
}

#[test]
fn a_wrong_password_moves_nothing_and_mails_nothing() {
    let mut h = Harness::new();
    account(&mut h, Some(creds(true)));
    h.verifies("not the password", PasswordCheck::Mismatch);
    h.nothing_sent_nor_stored();
    let svc = h.service();
    let r = block_on(svc.request_email_change(
        &current_session(),
        &attempt("not the password"),
        &new_email(),
        None,
        &client(),
    ));
    assert!(
        matches!(r, Err(ChangeEmailError::InvalidCredentials)),
        "{r:?}"
    );
}

#[test]
fn the_same_address_is_refused() {
    let mut h = Harness::new();
    account(&mut h, Some(creds(true)));
    h.verifies(PASSWORD, PasswordCheck::Match);
    h.nothing_sent_nor_stored();
    let svc = h.service();
    let r = block_on(svc.request_email_change(
        &current_session(),
        &attempt(PASSWORD),
        &email(),
        None,
        &client(),
    ));
    assert!(matches!(r, Err(ChangeEmailError::SameAddress)), "{r:?}");
}

#[test]
fn a_disabled_account_cannot_ask_to_move() {
    let mut h = Harness::new();
    account(&mut h, Some(creds_with(disabled())));
    h.verifies(PASSWORD, PasswordCheck::Match);
    h.nothing_sent_nor_stored();
    let svc = h.service();
    assert!(matches!(
        request(&svc),
        Err(ChangeEmailError::Unauthenticated)
    ));
}

#[test]
fn inside_the_cooldown_nothing_is_mailed_and_the_wait_is_told() {
    let mut h = Harness::new();
    account(&mut h, Some(creds(true)));
    h.verifies(PASSWORD, PasswordCheck::Match);
    h.otps
        .expect_claim_send_slot()
        .times(1)
        .returning(|_, _, _| {
            Ok(SendSlot::Cooldown {
                retry_after: secs(42),
            })
        });
    h.nothing_sent_nor_stored();
    let svc = h.service();
    let r = request(&svc);
    assert!(
        matches!(r, Err(ChangeEmailError::TooManyRequests { retry_after }) if retry_after == secs(42)),
        "{r:?}"
    );
}

#[test]
fn a_gone_account_cannot_ask_to_move() {
    let mut h = Harness::new();
    account(&mut h, None);
    h.nothing_sent_nor_stored();
    let svc = h.service();
    assert!(matches!(
        request(&svc),
        Err(ChangeEmailError::Unauthenticated)
    ));
}

// --- confirmation ----------------------------------------------------------------------------

fn confirm(svc: &AuthService, raw: &str) -> Result<User, ConfirmEmailChangeError> {
    block_on(svc.confirm_email_change(&current_session(), &new_email(), &code(raw), &client()))
}

/// The code `FIRST_CODE` for the new address is live until `expires_at`, with `attempts`.
fn live_change_code(h: &mut Harness, expires_at: DateTime<Utc>, attempts: u32) {
    h.live_code(
        OtpPurpose::ChangeEmail,
        change_mac(FIRST_CODE, OLD_HASH),
        expires_at,
        attempts,
    );
}

/// Nothing moves: no compare-and-set, no sweep, no mail.
fn nothing_moves(h: &mut Harness) {
    h.users.expect_set_email().never();
    h.otps.expect_consume().never();
    h.sessions.expect_delete_all_for_user().never();
    h.mailer.expect_send_localized().never();
}

/// The security history, recorded.
fn recorded_kinds(h: &mut Harness) -> Arc<Mutex<Vec<SecurityEventKind>>> {
    let kinds = Arc::new(Mutex::new(Vec::new()));
    let k = kinds.clone();
    let mut store = crate::ports::MockSecurityEvents::new();
    store.expect_record().returning(move |e| {
        k.lock().unwrap().push(e.kind);
        Ok(())
    });
    h.events = Some(Arc::new(store));
    kinds
}

#[test]
fn the_right_code_moves_the_account_ends_the_other_sessions_and_tells_the_former_address() {
    let mut h = Harness::new();
    account(&mut h, Some(creds(true)));
    live_change_code(&mut h, at(TEN_MINUTES), 1);
    h.otps
        .expect_consume()
        .withf(|p, e, mac| {
            *p == OtpPurpose::ChangeEmail
                && *e == email()
                && *mac == change_mac(FIRST_CODE, OLD_HASH)
        })
        .times(1)
        .returning(|_, _, _| Ok(true));
    let moved = User {
        email: new_email(),
        updated_at: t0(),
        ..user(true)
    };
    let m = moved.clone();
    h.users
        .expect_set_email()
        .withf(|id, from, to, hash, when| {
            *id == ada_id()
                && *from == email()
                && *to == new_email()
                && hash.as_str() == OLD_HASH
                && *when == t0()
        })
        .times(1)
        .returning(move |_, _, _, _, _| Ok(m.clone()));
    h.otps
        .expect_discard()
        .withf(|p, e| *p == OtpPurpose::VerifyEmail && *e == new_email())
        .times(1)
        .returning(|_, _| Ok(()));
    h.custom_epochs = true;
    h.sessions.expect_revocation_epoch().returning(|_| Ok(0));
    h.sessions
        .expect_bump_revocation_epoch()
        .withf(|e| *e == new_email() || *e == email())
        .times(2)
        .returning(|_| Ok(()));
    let keep = current_session().id;
    h.sessions
        .expect_delete_all_for_user()
        .withf(move |id, k| *id == ada_id() && *k == Some(keep))
        .times(1)
        .returning(|_, _| Ok(3));
    h.sessions
        .expect_touch()
        .withf(|s, _| s.user.email == new_email() && s.id == current_session().id)
        .times(1)
        .returning(|_, _| Ok(true));
    let outbox = h.outbox();
    let kinds = recorded_kinds(&mut h);
    let svc = h.service();
    assert_eq!(confirm(&svc, FIRST_CODE).unwrap(), moved);
    assert_eq!(
        *outbox.lock().unwrap(),
        [(email(), MailMessage::EmailChanged)]
    );
    assert_eq!(*kinds.lock().unwrap(), [SecurityEventKind::EmailChanged]);
}

#[test]
fn a_wrong_code_moves_nothing_and_counts_like_a_wrong_password() {
    let mut h = Harness::new();
    account(&mut h, Some(creds(true)));
    live_change_code(&mut h, at(TEN_MINUTES), 1);
    nothing_moves(&mut h);
    let kinds = recorded_kinds(&mut h);
    let svc = h.service();
    assert!(matches!(
        confirm(&svc, WRONG_CODE),
        Err(ConfirmEmailChangeError::InvalidOtp)
    ));
    assert_eq!(*kinds.lock().unwrap(), [SecurityEventKind::ReauthFailed]);
}

#[test]
fn without_a_code_a_guess_is_invalid_and_counted() {
    let mut h = Harness::new();
    account(&mut h, Some(creds(true)));
    h.otps
        .expect_record_attempt()
        .times(1)
        .returning(|_, _| Ok(None));
    nothing_moves(&mut h);
    let kinds = recorded_kinds(&mut h);
    let svc = h.service();
    assert!(matches!(
        confirm(&svc, FIRST_CODE),
        Err(ConfirmEmailChangeError::InvalidOtp)
    ));
    assert_eq!(*kinds.lock().unwrap(), [SecurityEventKind::ReauthFailed]);
}

#[test]
fn past_the_attempts_even_the_right_code_is_refused_and_counted_as_refused() {
    let max = AuthConfig::default().otp_max_attempts;
    for (attempts, ok) in [(max, true), (max + 1, false)] {
        let mut h = Harness::new();
        account(&mut h, Some(creds(true)));
        live_change_code(&mut h, at(TEN_MINUTES), attempts);
        if ok {
            // At the limit the code still works: it gets as far as the consume.
            h.otps
                .expect_consume()
                .times(1)
                .returning(|_, _, _| Ok(false));
            h.users.expect_set_email().never();
        } else {
            nothing_moves(&mut h);
        }
        let kinds = recorded_kinds(&mut h);
        let svc = h.service();
        let r = confirm(&svc, FIRST_CODE);
        if ok {
            assert!(
                matches!(r, Err(ConfirmEmailChangeError::InvalidOtp)),
                "{r:?}"
            );
            assert!(kinds.lock().unwrap().is_empty());
        } else {
            assert!(
                matches!(r, Err(ConfirmEmailChangeError::TooManyAttempts)),
                "{r:?}"
            );
            assert_eq!(*kinds.lock().unwrap(), [SecurityEventKind::ReauthThrottled]);
        }
    }
}

#[test]
fn an_expired_code_says_so_at_its_end_and_works_just_before() {
    for (expires_at, expired) in [(t0(), true), (at(secs(1)), false)] {
        let mut h = Harness::new();
        account(&mut h, Some(creds(true)));
        live_change_code(&mut h, expires_at, 1);
        if expired {
            nothing_moves(&mut h);
        } else {
            h.otps
                .expect_consume()
                .times(1)
                .returning(|_, _, _| Ok(false));
        }
        let svc = h.service();
        let r = confirm(&svc, FIRST_CODE);
        if expired {
            assert!(
                matches!(r, Err(ConfirmEmailChangeError::OtpExpired)),
                "{r:?}"
            );
        } else {
            assert!(
                matches!(r, Err(ConfirmEmailChangeError::InvalidOtp)),
                "{r:?}"
            );
        }
    }
}

#[test]
fn a_code_made_before_a_password_change_matches_nothing() {
    // The account's hash is the new one: the code's MAC was bound to the old.
    let mut h = Harness::new();
    account(
        &mut h,
        Some(UserCredentials {
            password_hash: PasswordHash::new(NEW_HASH),
            ..creds(true)
        }),
    );
    live_change_code(&mut h, at(TEN_MINUTES), 1);
    nothing_moves(&mut h);
    let _kinds = recorded_kinds(&mut h);
    let svc = h.service();
    assert!(matches!(
        confirm(&svc, FIRST_CODE),
        Err(ConfirmEmailChangeError::InvalidOtp)
    ));
}

/// Consumed, then the store's compare-and-set decides: `NotFound` (the password changed, the
/// account was disabled or moved since it was read) or `Duplicate` (a verified account has the
/// address now: its mailbox, where the code went, is told).
#[test]
fn a_move_refused_by_the_store_answers_invalid_otp() {
    for (refusal, notice) in [
        (UserRepoError::NotFound, false),
        (UserRepoError::Duplicate, true),
    ] {
        let mut h = Harness::new();
        account(&mut h, Some(creds(true)));
        live_change_code(&mut h, at(TEN_MINUTES), 1);
        h.otps
            .expect_consume()
            .times(1)
            .returning(|_, _, _| Ok(true));
        let err = std::sync::Mutex::new(Some(refusal));
        h.users
            .expect_set_email()
            .times(1)
            .returning(move |_, _, _, _, _| Err(err.lock().unwrap().take().unwrap()));
        h.sessions.expect_delete_all_for_user().never();
        let outbox = h.outbox();
        let svc = h.service();
        assert!(matches!(
            confirm(&svc, FIRST_CODE),
            Err(ConfirmEmailChangeError::InvalidOtp)
        ));
        let sent = outbox.lock().unwrap().clone();
        if notice {
            assert_eq!(sent, [(new_email(), MailMessage::EmailChangeAddressTaken)]);
        } else {
            assert!(sent.is_empty(), "{sent:?}");
        }
    }
}

#[test]
fn a_disabled_or_gone_account_confirms_nothing() {
    for found in [Some(creds_with(disabled())), None] {
        let mut h = Harness::new();
        account(&mut h, found);
        h.otps.expect_record_attempt().never();
        nothing_moves(&mut h);
        let svc = h.service();
        assert!(matches!(
            confirm(&svc, FIRST_CODE),
            Err(ConfirmEmailChangeError::Unauthenticated)
        ));
    }
}

/// A stolen session guessing change codes is ended at the hard limit (ten wrong answers a
/// day), with the lockout in the history and the owner mailed.
#[test]
fn a_stolen_session_guessing_change_codes_is_ended_at_the_hard_limit() {
    let mut h = Harness::new();
    h.limiter = Arc::new(CountingLimiter::default());
    account(&mut h, Some(creds(true)));
    h.otps.expect_record_attempt().returning(|_, _| Ok(None));
    h.users.expect_set_email().never();
    h.sessions
        .expect_delete()
        .withf(|hash| *hash == current_session().token_hash)
        .times(1)
        .returning(|_| Ok(true));
    let outbox = h.outbox();
    let kinds = recorded_kinds(&mut h);
    let svc = h.service();
    let mut ended = None;
    for i in 0..11 {
        if let Err(ConfirmEmailChangeError::Unauthenticated) = confirm(&svc, WRONG_CODE) {
            ended = Some(i);
            break;
        }
    }
    assert_eq!(ended, Some(10));
    let kinds = kinds.lock().unwrap().clone();
    assert_eq!(kinds.len(), 12, "{kinds:?}");
    assert_eq!(kinds.last(), Some(&SecurityEventKind::Lockout));
    assert_eq!(
        *outbox.lock().unwrap(),
        [(email(), MailMessage::SessionEndedAfterWrongPasswords)]
    );
}

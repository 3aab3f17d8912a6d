//! Tests of signup, verification, resend, deletion.

use super::*;

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

    let user = block_on(h.service().signup(email(), password(PASSWORD), &client())).unwrap();

    assert!(!user.is_verified());
    assert_eq!(user.email, email());
    let puts = puts.lock().unwrap();
    assert_eq!(puts.len(), 1, "{puts:?}");
    let (purpose, stored, retain_for) = puts[0].clone();
    assert_eq!(purpose, OtpPurpose::VerifyEmail);
    // Only the HMAC under the server secret is stored (`StoredOtp` has no room for the code).
    assert_eq!(stored.mac, mac(OtpPurpose::VerifyEmail, FIRST_CODE));
    assert_eq!(stored.expires_at, at(TEN_MINUTES));
    assert!(retain_for >= TEN_MINUTES, "{retain_for:?}");
    // Kept a quarter hour past its end, so that using it late says "expired".
    assert_eq!(retain_for, TEN_MINUTES + secs(15 * 60));
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
    // The rule of ENUMERATION_PROTECTION=false.
    h.config.enumeration_protection = false;
    h.user_lookup(Some(creds(true)));
    h.users.expect_create().never();
    h.users.expect_replace_unverified_password().never();
    h.nothing_sent_nor_stored();

    let result = block_on(h.service().signup(email(), password(PASSWORD), &client()));

    assert!(matches!(result, Err(SignupError::EmailTaken)), "{result:?}");
}

#[test]
fn signup_again_while_unverified_replaces_the_pending_password_and_code() {
    let mut h = Harness::new();
    // The rule of ENUMERATION_PROTECTION=false.
    h.config.enumeration_protection = false;
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

    let user = block_on(h.service().signup(email(), password(PASSWORD), &client())).unwrap();

    assert_eq!(user.id, ada_id());
    assert!(!user.is_verified());
    assert_eq!(
        user.updated_at,
        t0(),
        "the answer carries the replacement's time"
    );
    let puts = puts.lock().unwrap();
    assert_eq!(puts.len(), 1, "the new code replaces the old one: {puts:?}");
    assert_eq!(puts[0].0, OtpPurpose::VerifyEmail);
    assert_eq!(puts[0].1.mac, mac(OtpPurpose::VerifyEmail, FIRST_CODE));
    assert_eq!(last_mailed_code(&outbox), code(FIRST_CODE));
}

/// The pre-account-hijacking rule end to end: a stranger signs up first with Ada's address,
/// then Ada does. The stranger's code dies, Ada's works, and the pending password is Ada's.
/// Two signups for one address, 61 s apart: the first by `first`, the second by `second`.
/// Returns the service, each signup's code, the mails, and the log of password hashes written
/// to the pending account.
fn two_signups(
    first: &'static str,
    second: &'static str,
) -> (
    AuthService,
    OtpCode,
    OtpCode,
    Outbox,
    Arc<Mutex<Vec<String>>>,
) {
    let mut h = Harness::new();
    h.otp_store_in_memory();
    let outbox = h.outbox();
    // First signup: no account yet. Then the first signup's unverified account.
    let mut lookups = vec![Some(creds(false)), None];
    h.users
        .expect_find_by_email()
        .returning(move |_| Ok(lookups.pop().unwrap_or_else(|| Some(creds(false)))));
    h.hasher
        .expect_hash()
        .returning(|p| Ok(PasswordHash::new(format!("hash of {}", p.expose_secret()))));
    h.users
        .expect_create()
        .times(1)
        .returning(|_| Ok(user(false)));
    let written = Arc::new(Mutex::new(Vec::new()));
    let w = written.clone();
    h.users
        .expect_replace_unverified_password()
        .withf(|id, _, _| *id == ada_id())
        .returning(move |_, hash, _| {
            w.lock().unwrap().push(hash.as_str().to_owned());
            Ok(())
        });
    h.marks_verified();
    let clock = h.clock.clone();
    let svc = h.service();
    block_on(svc.signup(email(), password(first), &client())).unwrap();
    let first_code = last_mailed_code(&outbox);
    clock.advance(secs(61));
    block_on(svc.signup(email(), password(second), &client())).unwrap();
    let second_code = last_mailed_code(&outbox);
    assert_ne!(first_code, second_code);
    (svc, first_code, second_code, outbox, written)
}

/// The owner signs up; a minute later someone else signs up with the owner's address and a
/// password of their own. The owner's code still works, and sets the owner's password.
#[test]
fn a_later_signup_cannot_take_over_a_pending_account() {
    let (svc, owners_code, _strangers_code, outbox, written) =
        two_signups(PASSWORD, "stranger's password");

    let verified = block_on(svc.verify_otp(&email(), &owners_code, &client())).unwrap();

    assert!(verified.is_verified());
    assert_eq!(
        written.lock().unwrap().last().map(String::as_str),
        Some(format!("hash of {PASSWORD}").as_str()),
        "the account ends with the password of the signup whose code was used"
    );
    // The second mail says that this was a repeated request, and when.
    let mails = outbox.lock().unwrap();
    assert!(matches!(mails[0].1, MailMessage::VerifyEmail { .. }));
    assert!(
        matches!(mails[1].1, MailMessage::VerifyEmailAgain { requested_at, .. } if requested_at == at(secs(61))),
        "{:?}",
        mails[1].1
    );
}

/// The other order: someone signs up first with the owner's address, then the owner. The
/// owner's code sets the owner's password.
#[test]
fn signup_by_the_owner_after_a_stranger_verifies_with_the_owners_password() {
    let (svc, _strangers_code, owners_code, _outbox, written) =
        two_signups("stranger's password", PASSWORD);

    assert!(block_on(svc.verify_otp(&email(), &owners_code, &client()))
        .unwrap()
        .is_verified());

    assert_eq!(
        written.lock().unwrap().last().map(String::as_str),
        Some(format!("hash of {PASSWORD}").as_str())
    );
}

/// Each code is single-use; ten stay valid together (the first and the nine newest: later
/// codes never push out the first, and a stranger within the mail budget cannot push out the
/// owner's) and share one attempt budget.
#[test]
fn the_first_and_the_newest_codes_stay_valid_each_once() {
    let mut h = Harness::new();
    h.random = Arc::new(OsRandom);
    let otps = h.otp_store_in_memory();
    let outbox = h.outbox();
    h.user_lookup(Some(creds(false)));
    h.marks_verified();
    h.users
        .expect_replace_unverified_password()
        .returning(|_, _, _| Ok(()));
    let clock = h.clock.clone();
    let svc = h.service();
    let mut codes = Vec::new();
    for _ in 0..11 {
        block_on(svc.resend_otp(&email(), &client())).unwrap();
        codes.push(last_mailed_code(&outbox));
        clock.advance(secs(1));
    }
    assert_eq!(otps.lock().unwrap()[&OtpPurpose::VerifyEmail].0.len(), 10);
    // Of eleven, the second is gone; the newest works once; the first and third stay.
    let second = block_on(svc.verify_otp(&email(), &codes[1], &client()));
    assert!(
        matches!(second, Err(OtpCheckError::InvalidOtp)),
        "{second:?}"
    );
    assert!(block_on(svc.verify_otp(&email(), &codes[10], &client())).is_ok());
    assert_eq!(otps.lock().unwrap()[&OtpPurpose::VerifyEmail].0.len(), 9);
    let again = block_on(svc.verify_otp(&email(), &codes[10], &client()));
    assert!(matches!(again, Err(OtpCheckError::InvalidOtp)), "{again:?}");
    assert!(block_on(svc.verify_otp(&email(), &codes[0], &client())).is_ok());
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

    let result = block_on(h.service().signup(email(), password(PASSWORD), &client()));

    assert!(result.is_ok(), "{result:?}");
    assert_eq!(puts.lock().unwrap().len(), 1);
    assert_eq!(last_mailed_code(&outbox), code(FIRST_CODE));
}

#[test]
fn signup_losing_a_concurrent_signup_race_is_email_taken() {
    let mut h = Harness::new();
    // The rule of ENUMERATION_PROTECTION=false.
    h.config.enumeration_protection = false;
    h.user_lookup(None);
    h.hashes(PASSWORD, NEW_HASH);
    h.users
        .expect_create()
        .times(1)
        .returning(|_| Err(UserRepoError::Duplicate));
    // The code is stored before the account is written (so that a mail written with the
    // account always carries a working code); a write that fails mails it to nobody.
    h.mailer.expect_send_localized().never();
    let puts = h.put_log();

    let result = block_on(h.service().signup(email(), password(PASSWORD), &client()));

    assert!(matches!(result, Err(SignupError::EmailTaken)), "{result:?}");
    assert_eq!(puts.lock().unwrap().len(), 1);
}

#[test]
fn signup_for_an_address_verified_in_the_meantime_is_email_taken() {
    let mut h = Harness::new();
    // The rule of ENUMERATION_PROTECTION=false.
    h.config.enumeration_protection = false;
    h.user_lookup(Some(creds(false)));
    h.send_slot(OtpPurpose::VerifyEmail, SendSlot::Granted);
    h.hashes(PASSWORD, NEW_HASH);
    h.users
        .expect_replace_unverified_password()
        .times(1)
        .returning(|_, _, _| Err(UserRepoError::NotFound));
    // The code is stored before the account is written (so that a mail written with the
    // account always carries a working code); a write that fails mails it to nobody.
    h.mailer.expect_send_localized().never();
    let puts = h.put_log();

    let result = block_on(h.service().signup(email(), password(PASSWORD), &client()));

    assert!(matches!(result, Err(SignupError::EmailTaken)), "{result:?}");
    assert_eq!(puts.lock().unwrap().len(), 1);
}

/// The same race with enumeration protection (the default): an answer shaped like a new
/// signup, not 409.
#[test]
fn signup_for_an_address_verified_in_the_meantime_answers_like_a_new_one_by_default() {
    let mut h = Harness::new();
    h.user_lookup(Some(creds(false)));
    h.send_slot(OtpPurpose::VerifyEmail, SendSlot::Granted);
    h.hashes(PASSWORD, NEW_HASH);
    h.users
        .expect_replace_unverified_password()
        .times(1)
        .returning(|_, _, _| Err(UserRepoError::NotFound));
    // The code is stored before the account is written (so that a mail written with the
    // account always carries a working code); a write that fails mails it to nobody.
    h.mailer.expect_send_localized().never();
    let puts = h.put_log();

    let user = block_on(h.service().signup(email(), password(PASSWORD), &client())).unwrap();

    assert_ne!(user.id, ada_id(), "a decoy, not the account");
    assert!(!user.is_verified());
    assert_eq!(puts.lock().unwrap().len(), 1);
}

#[test]
fn signup_racing_the_one_that_created_the_account_is_too_many_requests() {
    let mut h = Harness::new();
    // The rule of ENUMERATION_PROTECTION=false.
    h.config.enumeration_protection = false;
    let mut fresh = creds(false);
    fresh.user.created_at = before(secs(20));
    h.users
        .expect_find_by_email()
        .returning(move |_| Ok(Some(fresh.clone())));
    h.otps.expect_claim_send_slot().never();
    h.hasher.expect_hash().never();
    h.users.expect_replace_unverified_password().never();
    h.nothing_sent_nor_stored();

    let result = block_on(h.service().signup(email(), password(PASSWORD), &client()));

    match result {
        Err(SignupError::TooManyRequests { retry_after }) => assert_eq!(retry_after, secs(40)),
        other => panic!("expected TooManyRequests, got {other:?}"),
    }
}

#[test]
fn signup_again_inside_the_mail_cooldown_is_too_many_requests_and_changes_nothing() {
    let mut h = Harness::new();
    // The rule of ENUMERATION_PROTECTION=false.
    h.config.enumeration_protection = false;
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

    let result = block_on(h.service().signup(email(), password(PASSWORD), &client()));

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
        .expect_send_localized()
        .withf(|to, message, _| *to == email() && *message == MailMessage::SignupAttempted)
        .times(1)
        .returning(|_, _, _| Ok(()));
    h.otps.expect_put().never();
    h.users.expect_create().never();
    h.users.expect_replace_unverified_password().never();

    let user = block_on(h.service().signup(email(), password(PASSWORD), &client())).unwrap();

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

    let result = block_on(h.service().signup(email(), password(PASSWORD), &client()));

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

    let user = block_on(
        h.service()
            .verify_otp(&email(), &code(FIRST_CODE), &client()),
    )
    .unwrap();

    assert_eq!(user.verified_at, Some(t0()));
}

/// Issues a verification code at t0 through `resend_otp` (real MAC, real expiry), with an
/// in-memory OTP store; returns the harness-built service, the clock and the mailed code.
fn code_issued_at_t0(mut h: Harness) -> (AuthService, Arc<ManualClock>, OtpCode) {
    h.otp_store_in_memory();
    let outbox = h.outbox();
    h.user_lookup(Some(creds(false)));
    h.marks_verified();
    h.users
        .expect_replace_unverified_password()
        .withf(|id, hash, _| *id == ada_id() && hash.as_str() == OLD_HASH)
        .returning(|_, _, _| Ok(()));
    let clock = h.clock.clone();
    let svc = h.service();
    block_on(svc.resend_otp(&email(), &client())).unwrap();
    let code = last_mailed_code(&outbox);
    (svc, clock, code)
}

#[test]
fn verify_otp_accepts_a_code_one_second_before_the_end_of_its_ten_minutes() {
    let (svc, clock, code) = code_issued_at_t0(Harness::new());

    clock.set(at(TEN_MINUTES - secs(1)));
    let result = block_on(svc.verify_otp(&email(), &code, &client()));

    assert!(result.unwrap().is_verified());
}

#[test]
fn verify_otp_refuses_a_code_at_and_after_the_end_of_its_ten_minutes() {
    let (svc, clock, code) = code_issued_at_t0(Harness::new());

    clock.set(at(TEN_MINUTES));
    let at_end = block_on(svc.verify_otp(&email(), &code, &client()));
    clock.set(at(TEN_MINUTES + secs(1)));
    let after_end = block_on(svc.verify_otp(&email(), &code, &client()));

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
    let at_end = block_on(svc.verify_otp(&email(), &code, &client()));
    clock.set(at(secs(119)));
    let just_before = block_on(svc.verify_otp(&email(), &code, &client()));

    assert!(
        matches!(at_end, Err(OtpCheckError::OtpExpired)),
        "{at_end:?}"
    );
    assert!(just_before.unwrap().is_verified());
}

#[test]
fn verify_otp_code_works_only_once() {
    let (svc, _clock, code) = code_issued_at_t0(Harness::new());

    let first = block_on(svc.verify_otp(&email(), &code, &client()));
    let second = block_on(svc.verify_otp(&email(), &code, &client()));

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

    let result = block_on(
        h.service()
            .verify_otp(&email(), &code(FIRST_CODE), &client()),
    );

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

    let result = block_on(
        h.service()
            .verify_otp(&email(), &code(WRONG_CODE), &client()),
    );

    assert!(
        matches!(result, Err(OtpCheckError::InvalidOtp)),
        "{result:?}"
    );
}

#[test]
fn verify_otp_after_five_wrong_codes_refuses_even_the_right_one() {
    let (svc, _clock, right) = code_issued_at_t0(Harness::new());

    for n in 1..=5 {
        let wrong = block_on(svc.verify_otp(&email(), &code(WRONG_CODE), &client()));
        assert!(
            matches!(wrong, Err(OtpCheckError::InvalidOtp)),
            "attempt {n}: {wrong:?}"
        );
    }
    let sixth = block_on(svc.verify_otp(&email(), &right, &client()));

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

    let result = block_on(
        h.service()
            .verify_otp(&email(), &code(FIRST_CODE), &client()),
    );

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

    let result = block_on(
        h.service()
            .verify_otp(&email(), &code(FIRST_CODE), &client()),
    );

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

    let result = block_on(
        h.service()
            .verify_otp(&email(), &code(FIRST_CODE), &client()),
    );

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

    let result = block_on(
        h.service()
            .verify_otp(&email(), &code(FIRST_CODE), &client()),
    );

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

    let result = block_on(
        h.service()
            .verify_otp(&email(), &code(FIRST_CODE), &client()),
    );

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

    let result = block_on(
        h.service()
            .verify_otp(&email(), &code(FIRST_CODE), &client()),
    );

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
    block_on(svc.forgot_password(&email(), &client())).unwrap();
    let reset_code = last_mailed_code(&outbox);

    let result = block_on(svc.verify_otp(&email(), &reset_code, &client()));

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
    block_on(svc.resend_otp(&email(), &client())).unwrap();
    let verify_code = last_mailed_code(&outbox);

    let result =
        block_on(svc.reset_password(&email(), &verify_code, password(NEW_PASSWORD), &client()));

    assert!(
        matches!(result, Err(ResetPasswordError::InvalidOtp)),
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
        &client(),
    ));

    assert!(
        matches!(result, Err(ResetPasswordError::InvalidOtp)),
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
    let (verify_purpose, verify_mac) = stored_mac(false, &|svc| {
        block_on(svc.resend_otp(&email(), &client())).unwrap()
    });
    let (reset_purpose, reset_mac) = stored_mac(true, &|svc| {
        block_on(svc.forgot_password(&email(), &client())).unwrap()
    });

    assert_eq!(verify_purpose, OtpPurpose::VerifyEmail);
    assert_eq!(reset_purpose, OtpPurpose::ResetPassword);
    assert_eq!(verify_mac, mac(OtpPurpose::VerifyEmail, FIRST_CODE));
    assert_eq!(reset_mac, mac(OtpPurpose::ResetPassword, FIRST_CODE));
    assert_ne!(verify_mac, reset_mac);
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

    block_on(h.service().resend_otp(&email(), &client())).unwrap();

    let puts = puts.lock().unwrap();
    assert_eq!(puts.len(), 1);
    assert_eq!(puts[0].0, OtpPurpose::VerifyEmail);
    assert_eq!(puts[0].1.mac, mac(OtpPurpose::VerifyEmail, FIRST_CODE));
    assert_eq!(puts[0].1.expires_at, at(TEN_MINUTES));
    assert_eq!(
        *outbox.lock().unwrap(),
        vec![(
            email(),
            MailMessage::VerifyEmailAgain {
                code: code(FIRST_CODE),
                valid_for: TEN_MINUTES,
                requested_at: t0(),
            }
        )]
    );
    // The code completes the pending signup with its current password.
    assert_eq!(
        puts[0].1.pending_password,
        Some(PasswordHash::new(OLD_HASH))
    );
}

#[test]
fn resend_otp_inside_the_cooldown_is_too_many_requests_for_known_and_unknown_addresses_alike() {
    for account in [None, Some(creds(false)), Some(creds(true))] {
        let mut h = Harness::new();
        // The rule of ENUMERATION_PROTECTION=false.
        h.config.enumeration_protection = false;
        // The lookup may or may not happen; the answer must not depend on it.
        h.user_lookup(account.clone());
        h.send_slot(
            OtpPurpose::VerifyEmail,
            SendSlot::Cooldown {
                retry_after: secs(42),
            },
        );
        h.nothing_sent_nor_stored();

        let result = block_on(h.service().resend_otp(&email(), &client()));

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

        let result = block_on(h.service().resend_otp(&email(), &client()));

        assert!(result.is_ok(), "{account:?}: {result:?}");
    }
}

#[test]
fn resend_otp_retry_after_is_at_least_one_second() {
    let mut h = Harness::new();
    // The rule of ENUMERATION_PROTECTION=false.
    h.config.enumeration_protection = false;
    h.user_lookup(Some(creds(false)));
    h.send_slot(
        OtpPurpose::VerifyEmail,
        SendSlot::Cooldown {
            retry_after: Duration::ZERO,
        },
    );
    h.nothing_sent_nor_stored();

    let result = block_on(h.service().resend_otp(&email(), &client()));

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
        .expect_send_localized()
        .times(1)
        .returning(|_, _, _| Err(MailerError::Unavailable(outage())));

    let result = block_on(h.service().resend_otp(&email(), &client()));

    assert!(result.is_ok(), "{result:?}");
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
        .expect_send_localized()
        .withf(|to, message, _| *to == email() && *message == MailMessage::AccountDeleted)
        .times(1)
        .returning(|_, _, _| Ok(()));

    let result = block_on(h.service().delete_account(
        &current_session(),
        &attempt(PASSWORD),
        &client(),
    ));

    assert!(result.is_ok(), "{result:?}");
}

#[test]
fn delete_account_with_a_wrong_password_changes_nothing() {
    let mut h = Harness::new();
    account_by_id(&mut h);
    h.verifies("wrong password", PasswordCheck::Mismatch);
    h.users.expect_delete().never();
    h.sessions.expect_delete_all_for_user().never();
    h.mailer.expect_send_localized().never();

    let result = block_on(h.service().delete_account(
        &current_session(),
        &attempt("wrong password"),
        &client(),
    ));

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
    h.mailer.expect_send_localized().never();

    let result = block_on(h.service().delete_account(
        &current_session(),
        &attempt(PASSWORD),
        &client(),
    ));

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

    let result = block_on(h.service().delete_account(
        &current_session(),
        &attempt(PASSWORD),
        &client(),
    ));

    assert!(
        matches!(result, Err(DeleteAccountError::Unauthenticated)),
        "{result:?}"
    );
}

#[test]
fn a_new_account_keeps_the_signup_requests_language_and_gets_its_code_in_it() {
    let mut h = Harness::new();
    h.user_lookup(None);
    h.hashes(PASSWORD, NEW_HASH);
    h.users
        .expect_create()
        .withf(|new| new.language.as_deref() == Some("de-CH, de;q=0.9"))
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
    let _puts = h.put_log();
    h.mailer
        .expect_send_localized()
        .withf(|_, message, language| {
            matches!(message, MailMessage::VerifyEmail { .. })
                && *language == Some("de-CH, de;q=0.9")
        })
        .times(1)
        .returning(|_, _, _| Ok(()));
    let german = client().with_language(Some("  de-CH, de;q=0.9\u{7}\n"));

    block_on(h.service().signup(email(), password(PASSWORD), &german)).unwrap();
}

/// After a second signup the stored password may be a stranger's, so a resend mails no code
/// bound to it. (Found by an outside test: the owner signed up, a stranger signed up again,
/// and the owner's resend mailed a code that set the stranger's password.)
#[test]
fn resend_after_several_signups_mails_no_code_bound_to_the_stored_password() {
    let mut h = Harness::new();
    h.send_slot(OtpPurpose::VerifyEmail, SendSlot::Granted);
    let mut repeated = creds(false);
    repeated.user.updated_at = repeated.user.created_at + chrono::TimeDelta::seconds(20);
    h.user_lookup(Some(repeated));
    h.nothing_sent_nor_stored();

    let result = block_on(h.service().resend_otp(&email(), &client()));

    assert!(result.is_ok(), "{result:?}");
}

/// Of two signups racing for a new address, the one that loses the insert still counts, as a
/// repeated signup: its password is stored with its own code and mailed. (Found by an outside
/// test: dropped silently, it left the owner only the other signup's code, and the owner's
/// resend then carried the other one's password.)
#[test]
fn with_protection_a_signup_losing_the_insert_race_still_mails_its_own_code() {
    let mut h = Harness::new();
    assert!(h.config.enumeration_protection);
    let lookups = std::sync::atomic::AtomicUsize::new(0);
    h.users
        .expect_find_by_email()
        .withf(|e| *e == email())
        .times(2)
        .returning(move |_| {
            // Nobody at first; the winner's pending account right after the insert failed.
            match lookups.fetch_add(1, std::sync::atomic::Ordering::SeqCst) {
                0 => Ok(None),
                _ => Ok(Some(creds(false))),
            }
        });
    h.hashes(PASSWORD, NEW_HASH);
    h.users
        .expect_create()
        .times(1)
        .returning(|_| Err(UserRepoError::Duplicate));
    h.users
        .expect_replace_unverified_password()
        .withf(|id, hash, _| *id == ada_id() && *hash == PasswordHash::new(NEW_HASH))
        .times(1)
        .returning(|_, _, _| Ok(()));
    let puts = h.put_log();
    let outbox = h.outbox();

    let user = block_on(h.service().signup(email(), password(PASSWORD), &client())).unwrap();

    assert_ne!(user.id, ada_id(), "a decoy");
    let puts = puts.lock().unwrap();
    // The first was stored before the insert that lost, and mailed to nobody.
    assert_eq!(puts.len(), 2);
    assert_eq!(
        puts[1].1.pending_password,
        Some(PasswordHash::new(NEW_HASH))
    );
    assert!(
        matches!(
            outbox.lock().unwrap()[..],
            [(_, MailMessage::VerifyEmailAgain { .. })]
        ),
        "{:?}",
        outbox.lock().unwrap()
    );
}

/// A signup that loses the insert race to an account verified in the meantime answers like a
/// new signup and changes nothing: the verified account's password is never touched and no
/// code is mailed (the one stored before the insert reaches nobody, and verifying an account
/// that is already verified sets no password).
#[test]
fn with_protection_a_signup_losing_the_insert_race_to_a_verified_account_never_touches_it() {
    let mut h = Harness::new();
    assert!(h.config.enumeration_protection);
    let lookups = std::sync::atomic::AtomicUsize::new(0);
    h.users
        .expect_find_by_email()
        .withf(|e| *e == email())
        .times(2)
        .returning(move |_| {
            // Nobody at first; a verified account right after the insert failed.
            match lookups.fetch_add(1, std::sync::atomic::Ordering::SeqCst) {
                0 => Ok(None),
                _ => Ok(Some(creds(true))),
            }
        });
    h.hashes(PASSWORD, NEW_HASH);
    h.users
        .expect_create()
        .times(1)
        .returning(|_| Err(UserRepoError::Duplicate));
    h.users.expect_replace_unverified_password().never();
    h.mailer.expect_send_localized().never();
    let puts = h.put_log();

    let user = block_on(h.service().signup(email(), password(PASSWORD), &client())).unwrap();

    assert_ne!(user.id, ada_id(), "a decoy");
    assert!(!user.is_verified());
    assert_eq!(
        puts.lock().unwrap().len(),
        1,
        "only the code stored before the insert"
    );
}

/// A repeated signup that read the clock in the microsecond the account was created (a racing
/// signup) is still stamped after the creation: a resend tells a repeated signup by
/// `updated_at` after `created_at`.
#[test]
fn a_repeated_signup_in_the_creation_microsecond_is_stamped_after_the_creation() {
    let mut h = Harness::new();
    let mut racing = creds(false);
    racing.user.created_at = t0();
    racing.user.updated_at = t0();
    h.users
        .expect_find_by_email()
        .returning(move |_| Ok(Some(racing.clone())));
    h.send_slot(OtpPurpose::VerifyEmail, SendSlot::Granted);
    h.hashes(PASSWORD, NEW_HASH);
    let just_after_creation = t0() + TimeDelta::microseconds(1);
    h.users
        .expect_replace_unverified_password()
        .withf(move |id, _, when| *id == ada_id() && *when == just_after_creation)
        .times(1)
        .returning(|_, _, _| Ok(()));
    let puts = h.put_log();
    let _outbox = h.outbox();

    block_on(h.service().signup(email(), password(PASSWORD), &client())).unwrap();

    assert_eq!(puts.lock().unwrap().len(), 1);
}

/// Verifying sets the code's password once more after marking the address verified, and
/// sweeps the sessions: a repeated signup that replaced the pending password between the two
/// writes leaves nothing behind. (Found by an outside test: a signup landing ~20 ms before the
/// owner's verification left the account verified with the stranger's password.)
#[test]
fn verification_sets_the_codes_password_after_marking_verified() {
    let mut h = Harness::new();
    let chosen = PasswordHash::new(NEW_HASH);
    let expected = mac(OtpPurpose::VerifyEmail, FIRST_CODE);
    let stored = chosen.clone();
    h.otps
        .expect_record_attempt()
        .times(1)
        .returning(move |_, _| {
            Ok(Some(OtpAttempt {
                codes: vec![StoredOtp {
                    mac: expected,
                    expires_at: at(TEN_MINUTES),
                    pending_password: Some(stored.clone()),
                    requested_by: None,
                }],
                attempts: 1,
            }))
        });
    h.otps
        .expect_consume()
        .times(1)
        .returning(|_, _, _| Ok(true));
    h.user_lookup(Some(creds(false)));
    let mut order = mockall::Sequence::new();
    h.users
        .expect_replace_unverified_password()
        .times(1)
        .in_sequence(&mut order)
        .returning(|_, _, _| Ok(()));
    h.users
        .expect_mark_verified()
        .times(1)
        .in_sequence(&mut order)
        .returning(|_, when| {
            Ok(User {
                verified_at: Some(when),
                ..user(false)
            })
        });
    let again = chosen.clone();
    h.users
        .expect_set_password_hash()
        .withf(move |id, _, hash, _| *id == ada_id() && *hash == again)
        .times(1)
        .in_sequence(&mut order)
        .returning(|_, _, _, _| Ok(()));
    h.sessions
        .expect_delete_all_for_user()
        .withf(|id, keep| *id == ada_id() && keep.is_none())
        .times(1)
        .returning(|_, _| Ok(0));

    let user = block_on(
        h.service()
            .verify_otp(&email(), &code(FIRST_CODE), &client()),
    )
    .unwrap();

    assert!(user.is_verified());
}

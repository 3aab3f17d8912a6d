//! Tests of change, forgot, reset.

use super::*;

// --- change_password -------------------------------------------------------------------------

/// `find_by_id(ada)` answers Ada's verified account.
#[test]
fn change_password_sets_the_new_hash_revokes_the_other_sessions_and_mails_a_notice() {
    let mut h = Harness::new();
    account_by_id(&mut h);
    h.verifies(PASSWORD, PasswordCheck::Match);
    h.hashes(NEW_PASSWORD, NEW_HASH);
    h.users
        .expect_set_password_hash()
        .withf(|id, _, hash, when| *id == ada_id() && hash.as_str() == NEW_HASH && *when == t0())
        .times(1)
        .returning(|_, _, _, _| Ok(()));
    let keep = current_session().id;
    h.sessions
        .expect_delete_all_for_user()
        .withf(move |id, k| *id == ada_id() && *k == Some(keep))
        .times(1)
        .returning(|_, _| Ok(2));
    h.mailer
        .expect_send_localized()
        .withf(|to, message, _| *to == email() && *message == MailMessage::password_changed())
        .times(1)
        .returning(|_, _, _| Ok(()));

    let result = block_on(h.service().change_password(
        &current_session(),
        &attempt(PASSWORD),
        password(NEW_PASSWORD),
        &client(),
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
    h.mailer.expect_send_localized().never();

    let result = block_on(h.service().change_password(
        &current_session(),
        &attempt("wrong password"),
        password(NEW_PASSWORD),
        &client(),
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
        .returning(|_, _, _, _| Ok(()));
    h.sessions
        .expect_delete_all_for_user()
        .times(1)
        .returning(|_, _| Ok(0));
    h.mailer
        .expect_send_localized()
        .times(1)
        .returning(|_, _, _| Err(MailerError::Unavailable(outage())));

    let result = block_on(h.service().change_password(
        &current_session(),
        &attempt(PASSWORD),
        password(NEW_PASSWORD),
        &client(),
    ));

    assert!(result.is_ok(), "{result:?}");
}

#[test]
fn change_password_for_a_deleted_account_is_unauthenticated() {
    let mut h = Harness::new();
    h.users.expect_find_by_id().times(1).returning(|_| Ok(None));
    h.users.expect_set_password_hash().never();
    h.sessions.expect_delete_all_for_user().never();
    h.mailer.expect_send_localized().never();

    let result = block_on(h.service().change_password(
        &current_session(),
        &attempt(PASSWORD),
        password(NEW_PASSWORD),
        &client(),
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

    let result = block_on(h.service().forgot_password(&email(), &client()));

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

        let result = block_on(h.service().forgot_password(&email(), &client()));

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

        let result = block_on(h.service().forgot_password(&email(), &client()));

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
        .expect_send_localized()
        .times(1)
        .returning(|_, _, _| Err(MailerError::Unavailable(outage())));

    let result = block_on(h.service().forgot_password(&email(), &client()));

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
        .withf(|id, _, hash, when| *id == ada_id() && hash.as_str() == NEW_HASH && *when == t0())
        .times(1)
        .returning(|_, _, _, _| Ok(()));
    h.sessions
        .expect_delete_all_for_user()
        .withf(|id, keep| *id == ada_id() && keep.is_none())
        .times(1)
        .returning(|_, _| Ok(4));
    h.mailer
        .expect_send_localized()
        .withf(|to, message, _| *to == email() && *message == MailMessage::password_changed())
        .times(1)
        .returning(|_, _, _| Ok(()));

    let user = block_on(h.service().reset_password(
        &email(),
        &code(FIRST_CODE),
        password(NEW_PASSWORD),
        &client(),
    ))
    .unwrap();

    assert_eq!(user.id, ada_id());
    assert_eq!(user.updated_at, t0(), "the answer shows the change");
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
        h.mailer.expect_send_localized().never();

        let result = block_on(h.service().reset_password(
            &email(),
            &code(typed),
            password(NEW_PASSWORD),
            &client(),
        ));

        let got = match &result {
            Err(ResetPasswordError::InvalidOtp) => "InvalidOtp",
            Err(ResetPasswordError::OtpExpired) => "OtpExpired",
            Err(ResetPasswordError::TooManyAttempts) => "TooManyAttempts",
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
        .withf(|_, _, hash, _| hash.as_str() == NEW_HASH)
        .times(1)
        .returning(|_, _, _, _| Ok(()));
    h.sessions
        .expect_delete_all_for_user()
        .withf(|_, keep| keep.is_none())
        .times(1)
        .returning(|_, _| Ok(1));
    let clock = h.clock.clone();
    let svc = h.service();
    block_on(svc.forgot_password(&email(), &client())).unwrap();
    let reset_code = last_mailed_code(&outbox);

    clock.advance(TEN_MINUTES - secs(1));
    block_on(svc.reset_password(&email(), &reset_code, password(NEW_PASSWORD), &client())).unwrap();
    let again =
        block_on(svc.reset_password(&email(), &reset_code, password(NEW_PASSWORD), &client()));

    assert!(
        matches!(again, Err(ResetPasswordError::InvalidOtp)),
        "{again:?}"
    );
    assert_eq!(
        outbox.lock().unwrap().last().map(|(_, m)| m.clone()),
        Some(MailMessage::password_changed())
    );
}

#[test]
fn mail_to_an_account_is_in_its_stored_language_not_the_requesters() {
    let mut h = Harness::new();
    h.send_slot(OtpPurpose::ResetPassword, SendSlot::Granted);
    h.user_lookup(Some(creds(true)));
    let _puts = h.put_log();
    h.mailer
        .expect_send_localized()
        .withf(|to, _, language| *to == email() && *language == Some(LANGUAGE))
        .times(1)
        .returning(|_, _, _| Ok(()));
    let stranger = client().with_language(Some("fr"));

    let result = block_on(h.service().forgot_password(&email(), &stranger));

    assert!(result.is_ok(), "{result:?}");
}

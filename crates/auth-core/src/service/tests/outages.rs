//! Tests of what each operation does when a port is down.

use super::*;

// --- outages ---------------------------------------------------------------------------------

#[test]
fn signup_surfaces_a_user_store_outage() {
    let mut h = Harness::new();
    h.users
        .expect_find_by_email()
        .returning(|_| Err(UserRepoError::Unavailable(outage())));

    match block_on(h.service().signup(email(), password(PASSWORD), &client())) {
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

    match block_on(h.service().signup(email(), password(PASSWORD), &client())) {
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
        .expect_send_localized()
        .returning(|_, _, _| Err(MailerError::Unavailable(outage())));

    match block_on(h.service().signup(email(), password(PASSWORD), &client())) {
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

    match block_on(
        h.service()
            .verify_otp(&email(), &code(FIRST_CODE), &client()),
    ) {
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

    match block_on(svc.resend_otp(&email(), &client())) {
        Err(ResendOtpError::Failure(f)) => assert_unavailable(&f, Dependency::OtpStore),
        other => panic!("{other:?}"),
    }
    match block_on(svc.forgot_password(&email(), &client())) {
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
        .returning(|_, _, _| Err(SessionStoreError::Unavailable(outage())));
    let svc = h.service();
    let token = SessionToken::from_bytes([3; 32]);

    match block_on(svc.authenticate(&token)) {
        Err(AuthenticateError::Failure(f)) => assert_unavailable(&f, Dependency::SessionStore),
        other => panic!("authenticate: {other:?}"),
    }
    for (operation, result) in [
        ("logout", block_on(svc.logout(&token))),
        (
            "logout_all",
            block_on(svc.logout_all(&current_session())).map(|_| ()),
        ),
        (
            "list_sessions",
            block_on(svc.list_sessions_page(ada_id(), None, 10)).map(|_| ()),
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
        .returning(|_, _, _, _| Err(UserRepoError::Unavailable(outage())));
    h.sessions.expect_delete_all_for_user().never();
    h.mailer.expect_send_localized().never();

    match block_on(h.service().change_password(
        &current_session(),
        &attempt(PASSWORD),
        password(NEW_PASSWORD),
        &client(),
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
    h.mailer.expect_send_localized().never();

    match block_on(h.service().reset_password(
        &email(),
        &code(FIRST_CODE),
        password(NEW_PASSWORD),
        &client(),
    )) {
        Err(ResetPasswordError::Failure(f)) => assert_unavailable(&f, Dependency::Hasher),
        other => panic!("{other:?}"),
    }
}

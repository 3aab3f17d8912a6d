//! Tests of the breached-password list ([`AuthService::with_breached_passwords`]): a new
//! password on it is refused before anything is hashed or stored; the list sees only the
//! password's SHA-1; an outage of the list lets the password through.

use super::*;
use crate::ports::{BreachCheckError, MockBreachedPasswords, PasswordSha1};

/// A list on which exactly `listed` is, checked exactly `times` times.
fn list_with(listed: &'static str, times: usize) -> Arc<MockBreachedPasswords> {
    let mut list = MockBreachedPasswords::new();
    list.expect_is_breached()
        .times(times)
        .returning(move |digest| Ok(*digest == PasswordSha1::of_bytes(listed.as_bytes())));
    Arc::new(list)
}

fn unavailable_list() -> Arc<MockBreachedPasswords> {
    let mut list = MockBreachedPasswords::new();
    list.expect_is_breached()
        .times(1)
        .returning(|_| Err(BreachCheckError::Unavailable("timed out".into())));
    Arc::new(list)
}

#[test]
fn the_digest_is_the_sha1_the_lists_are_keyed_by() {
    // The SHA-1 test vector of "password", as the Pwned Passwords range API splits it.
    let digest = PasswordSha1::of_bytes(b"password");
    assert_eq!(digest.to_hex(), "5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD8");
    assert_eq!(digest.range_prefix(), "5BAA6");
    assert_eq!(digest.range_suffix(), "1E4C9B93F3F0682250B6CF8331B7EE68FD8");
    assert_eq!(digest.as_bytes()[0], 0x5B);
    assert_eq!(
        PasswordSha1::of(&password(PASSWORD)),
        PasswordSha1::of_bytes(PASSWORD.as_bytes())
    );
    assert_eq!(format!("{digest:?}"), "PasswordSha1(..)", "never printed");
}

#[test]
fn signup_with_a_breached_password_is_refused_before_anything_is_stored() {
    let mut h = Harness::new();
    h.hasher.expect_hash().never();
    h.users.expect_find_by_email().never();
    h.users.expect_create().never();
    h.nothing_sent_nor_stored();

    let result = block_on(
        h.service()
            .with_breached_passwords(list_with(PASSWORD, 1))
            .signup(email(), password(PASSWORD), &client()),
    );

    assert!(
        matches!(result, Err(SignupError::PasswordBreached)),
        "{result:?}"
    );
}

#[test]
fn signup_with_a_password_not_on_the_list_goes_ahead() {
    let mut h = Harness::new();
    h.user_lookup(Some(creds(true)));
    h.hashes(PASSWORD, NEW_HASH);
    h.send_slot(OtpPurpose::VerifyEmail, SendSlot::Granted);
    let _outbox = h.outbox();

    let result = block_on(
        h.service()
            .with_breached_passwords(list_with("some other password", 1))
            .signup(email(), password(PASSWORD), &client()),
    );

    assert!(result.is_ok(), "{result:?}");
}

#[test]
fn an_unavailable_list_lets_the_password_through() {
    let mut h = Harness::new();
    h.user_lookup(Some(creds(true)));
    h.hashes(PASSWORD, NEW_HASH);
    h.send_slot(OtpPurpose::VerifyEmail, SendSlot::Granted);
    let _outbox = h.outbox();

    let result = block_on(
        h.service()
            .with_breached_passwords(unavailable_list())
            .signup(email(), password(PASSWORD), &client()),
    );

    assert!(result.is_ok(), "fail-open: {result:?}");
}

#[test]
fn a_password_change_to_a_breached_password_changes_nothing() {
    let mut h = Harness::new();
    account_by_id(&mut h);
    h.verifies(PASSWORD, PasswordCheck::Match);
    h.hasher.expect_hash().never();
    h.users.expect_set_password_hash().never();
    h.sessions.expect_delete_all_for_user().never();
    h.mailer.expect_send_localized().never();

    let result = block_on(
        h.service()
            .with_breached_passwords(list_with(NEW_PASSWORD, 1))
            .change_password(
                &current_session(),
                &attempt(PASSWORD),
                password(NEW_PASSWORD),
                &client(),
            ),
    );

    assert!(
        matches!(result, Err(ChangePasswordError::PasswordBreached)),
        "{result:?}"
    );
}

#[test]
fn a_reset_to_a_breached_password_leaves_the_code_untouched() {
    let mut h = Harness::new();
    h.otps.expect_record_attempt().never();
    h.otps.expect_consume().never();
    h.hasher.expect_hash().never();
    h.users.expect_set_password_hash().never();

    let result = block_on(
        h.service()
            .with_breached_passwords(list_with(NEW_PASSWORD, 1))
            .reset_password(
                &email(),
                &code(FIRST_CODE),
                password(NEW_PASSWORD),
                &client(),
            ),
    );

    assert!(
        matches!(result, Err(ResetPasswordError::PasswordBreached)),
        "{result:?}"
    );
}

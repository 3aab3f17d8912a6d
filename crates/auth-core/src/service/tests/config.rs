//! Tests of the configuration accessors, readiness and the small helpers of the service.

use super::*;

#[test]
fn the_activity_granularity_is_an_eighth_of_the_idle_timeout_at_most_a_minute() {
    let with_idle = |idle: Option<Duration>| AuthConfig {
        session_idle_timeout: idle,
        ..AuthConfig::default()
    };
    assert_eq!(
        with_idle(Some(secs(240))).activity_granularity(),
        Some(secs(30))
    );
    assert_eq!(
        with_idle(Some(secs(8))).activity_granularity(),
        Some(secs(1))
    );
    assert_eq!(
        with_idle(Some(secs(480))).activity_granularity(),
        Some(secs(60))
    );
    assert_eq!(
        with_idle(Some(secs(3600))).activity_granularity(),
        Some(secs(60))
    );
    assert_eq!(with_idle(None).activity_granularity(), None);
}

#[test]
fn the_service_exposes_the_configuration_it_was_built_with() {
    let mut h = Harness::new();
    h.config.otp_ttl = secs(123);
    h.config.password_policy = PasswordPolicy::with_min_chars(12);
    let svc = h.service();
    assert_eq!(svc.config().otp_ttl, secs(123));
    assert_eq!(svc.password_policy().min_chars(), 12);
    assert_eq!(svc.password_policy(), &PasswordPolicy::with_min_chars(12));
}

#[test]
fn readiness_reports_each_store_and_the_hashers_load() {
    for (users_up, sessions_up, saturated) in [
        (true, true, false),
        (false, true, true),
        (true, false, false),
        (false, false, true),
    ] {
        let mut h = Harness::new();
        h.custom_saturation = true;
        h.hasher.expect_is_saturated().return_const(saturated);
        h.users.expect_ping().returning(move || {
            if users_up {
                Ok(())
            } else {
                Err(UserRepoError::Unavailable(outage()))
            }
        });
        h.sessions.expect_ping().returning(move || {
            if sessions_up {
                Ok(())
            } else {
                Err(SessionStoreError::Unavailable(outage()))
            }
        });
        let r = block_on(h.service().readiness());
        assert_eq!(
            r,
            Readiness {
                users: users_up,
                sessions: sessions_up,
                hasher_has_capacity: !saturated,
            }
        );
    }
}

#[test]
fn short_ids_are_the_first_eight_hex_digits() {
    let id = SessionId::from_uuid(Uuid::from_u128(0xabcd_ef12_3456_7890_abcd_ef12_3456_7890));
    assert_eq!(super::super::short_id(id), "abcdef12");
}

#[test]
fn failures_say_whether_they_are_outages() {
    let down = Failure::Unavailable(Dependency::UserStore, outage());
    let broken = Failure::Internal(Dependency::Mailer, outage());
    assert!(down.is_unavailable());
    assert!(!broken.is_unavailable());
    assert_eq!(down.dependency(), Dependency::UserStore);
    assert_eq!(broken.dependency(), Dependency::Mailer);
    assert!(LoginError::Failure(down).is_unavailable());
    assert!(!LoginError::Failure(broken).is_unavailable());
    assert!(!LoginError::InvalidCredentials.is_unavailable());
    assert_eq!(LoginError::InvalidCredentials.retry_after(), None);
    assert!(
        SessionError::Failure(Failure::Unavailable(Dependency::SessionStore, outage()))
            .is_unavailable()
    );
    assert!(!SessionError::NotFound.is_unavailable());
    assert_eq!(SessionError::NotFound.retry_after(), None);
    assert!(!AuthenticateError::Unauthenticated.is_unavailable());
    let limited = ResendOtpError::TooManyRequests {
        retry_after: secs(9),
    };
    assert_eq!(limited.retry_after(), Some(secs(9)));
    assert!(!limited.is_unavailable());
}

/// A repeat exactly one cooldown after the account was created is no longer a race: it goes
/// on (and claims its own mail slot).
#[test]
fn signup_exactly_one_cooldown_after_the_first_is_not_a_race() {
    let mut h = Harness::new();
    h.config.enumeration_protection = false;
    h.hasher
        .expect_hash()
        .returning(|_| Ok(PasswordHash::new(NEW_HASH)));
    let mut older = creds(false);
    older.user.created_at = before(secs(60));
    h.users
        .expect_find_by_email()
        .returning(move |_| Ok(Some(older.clone())));
    h.send_slot(
        OtpPurpose::VerifyEmail,
        SendSlot::Cooldown {
            retry_after: secs(5),
        },
    );
    let result = block_on(h.service().signup(email(), password(PASSWORD), &client()));
    assert!(
        matches!(result, Err(SignupError::TooManyRequests { retry_after }) if retry_after == secs(5)),
        "the mail slot answered, not the race rule: {result:?}"
    );
}

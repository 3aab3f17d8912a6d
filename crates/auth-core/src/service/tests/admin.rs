//! Tests of the authorization rules of administration: role read fresh from the store, the
//! privilege window, no change to one's own account, and disabling (mark, then revoke).

use super::*;
use crate::domain::user::{AccountStatus, Role};

/// Bob, the administrator acting on Ada's account.
fn bob() -> User {
    User {
        id: UserId::from_uuid(Uuid::from_u128(0xB0B)),
        email: EmailAddress::parse("bob@example.com").unwrap(),
        verified_at: Some(before(ONE_DAY)),
        created_at: before(2 * ONE_DAY),
        updated_at: before(2 * ONE_DAY),
    }
}

fn bob_creds(role: Role, disabled: bool) -> UserCredentials {
    UserCredentials {
        user: bob(),
        password_hash: PasswordHash::new(OLD_HASH),
        language: None,
        status: AccountStatus {
            role,
            disabled_at: disabled.then(|| before(ONE_DAY)),
        },
    }
}

fn bobs_session() -> Session {
    session(7, bob(), t0(), at(ONE_DAY))
}

/// `find_by_id(bob)` answers `creds`; `find_by_id(ada)` answers Ada's verified account.
fn accounts(h: &mut Harness, creds: UserCredentials) {
    h.users
        .expect_find_by_id()
        .withf(|id| *id == bob().id)
        .returning(move |_| Ok(Some(creds.clone())));
    h.users
        .expect_find_by_id()
        .withf(|id| *id == ada_id())
        .returning(|_| Ok(Some(super::creds(true))));
}

/// The privilege window of Bob's session closes at `until`.
fn window(h: &mut Harness, until: Option<DateTime<Utc>>) {
    h.sessions
        .expect_privilege_window()
        .withf(|id| *id == bobs_session().id)
        .returning(move |_| Ok(until));
}

fn query() -> UserQuery {
    UserQuery {
        email_prefix: None,
        state: None,
        role: None,
        after: None,
        limit: 10,
    }
}

#[test]
fn an_ordinary_account_is_refused_every_administrative_operation() {
    let mut h = Harness::new();
    accounts(&mut h, bob_creds(Role::User, false));
    h.sessions.expect_privilege_window().never();
    h.users.expect_list().never();
    h.users.expect_set_disabled().never();
    let service = h.service();
    let s = bobs_session();

    assert!(matches!(
        block_on(service.authorize_admin(&s)),
        Err(AdminError::Forbidden)
    ));
    assert!(matches!(
        block_on(service.admin_list_users(&s, query())),
        Err(AdminError::Forbidden)
    ));
    assert!(matches!(
        block_on(service.admin_disable_user(&s, ada_id(), &client())),
        Err(AdminError::Forbidden)
    ));
    assert!(matches!(
        block_on(service.admin_reauthenticate(&s, &attempt(PASSWORD), None, &client())),
        Err(AdminError::Forbidden)
    ));
    // The TOTP store's `disable` is not expected: a call would fail the test.
    assert!(matches!(
        block_on(service.admin_reset_mfa(&s, ada_id(), &client())),
        Err(AdminError::Forbidden)
    ));
    assert!(matches!(
        block_on(service.admin_security_events(&s, ada_id(), None, 10)),
        Err(AdminError::Forbidden)
    ));
}

/// The role is read from the store, not the session: a disabled administrator, or one whose
/// account is gone, is refused even with an open window.
#[test]
fn a_disabled_or_deleted_administrator_is_refused() {
    let mut h = Harness::new();
    accounts(&mut h, bob_creds(Role::Admin, true));
    window(&mut h, Some(at(secs(60))));
    let service = h.service();
    assert!(matches!(
        block_on(service.admin_list_users(&bobs_session(), query())),
        Err(AdminError::Forbidden)
    ));

    let mut h = Harness::new();
    h.users.expect_find_by_id().returning(|_| Ok(None));
    let service = h.service();
    assert!(matches!(
        block_on(service.admin_list_users(&bobs_session(), query())),
        Err(AdminError::Unauthenticated)
    ));
}

#[test]
fn an_administrator_needs_an_open_privilege_window() {
    for (until, allowed) in [
        (None, false),
        (Some(before(secs(1))), false),
        // The window closes at `until`: not open at that instant.
        (Some(t0()), false),
        (Some(at(secs(1))), true),
    ] {
        let mut h = Harness::new();
        accounts(&mut h, bob_creds(Role::Admin, false));
        window(&mut h, until);
        h.users
            .expect_list()
            .times(usize::from(allowed))
            .returning(|_| Ok(Vec::new()));
        let result = block_on(h.service().admin_list_users(&bobs_session(), query()));
        if allowed {
            assert!(result.is_ok(), "{until:?}");
        } else {
            assert!(
                matches!(result, Err(AdminError::ReauthenticationRequired)),
                "{until:?}: {result:?}"
            );
        }
    }
}

#[test]
fn the_password_opens_the_window_of_this_session_for_the_configured_time() {
    let mut h = Harness::new();
    h.config.admin_reauth_window = secs(300);
    accounts(&mut h, bob_creds(Role::Admin, false));
    h.verifies(PASSWORD, PasswordCheck::Match);
    h.sessions
        .expect_open_privilege_window()
        .withf(|id, until, ttl| {
            *id == bobs_session().id && *until == at(secs(300)) && *ttl == secs(300)
        })
        .times(1)
        .returning(|_, _, _| Ok(()));

    let until = block_on(h.service().admin_reauthenticate(
        &bobs_session(),
        &attempt(PASSWORD),
        None,
        &client(),
    ))
    .unwrap();
    assert_eq!(until, at(secs(300)));
}

#[test]
fn a_wrong_password_opens_no_window() {
    let mut h = Harness::new();
    accounts(&mut h, bob_creds(Role::Admin, false));
    h.verifies("wrong password", PasswordCheck::Mismatch);
    h.sessions.expect_open_privilege_window().never();

    let result = block_on(h.service().admin_reauthenticate(
        &bobs_session(),
        &attempt("wrong password"),
        None,
        &client(),
    ));
    assert!(matches!(result, Err(AdminError::InvalidCredentials)));
}

#[test]
fn an_administrator_cannot_disable_delete_or_demote_their_own_account() {
    let mut h = Harness::new();
    accounts(&mut h, bob_creds(Role::Admin, false));
    window(&mut h, Some(at(secs(60))));
    h.users.expect_set_disabled().never();
    h.users.expect_set_role().never();
    h.users.expect_delete().never();
    h.sessions.expect_delete_all_for_user().never();
    let service = h.service();
    let s = bobs_session();
    for result in [
        block_on(service.admin_disable_user(&s, bob().id, &client())),
        block_on(service.admin_set_role(&s, bob().id, Role::User, &client())),
        block_on(service.admin_delete_user(&s, bob().id, &client())),
        block_on(service.admin_reset_mfa(&s, bob().id, &client())),
    ] {
        assert!(matches!(result, Err(AdminError::OwnAccount)), "{result:?}");
    }
}

/// The mark comes first: a login that read the account before it read the revocation epoch
/// before the bump, so either the login sees the mark or its session is swept.
#[test]
fn disabling_marks_the_account_then_ends_every_session_and_tells_the_owner() {
    let mut h = Harness::new();
    h.custom_epochs = true;
    accounts(&mut h, bob_creds(Role::Admin, false));
    window(&mut h, Some(at(secs(60))));
    let mut order = mockall::Sequence::new();
    h.users
        .expect_set_disabled()
        .withf(|id, when| *id == ada_id() && *when == Some(t0()))
        .times(1)
        .in_sequence(&mut order)
        .returning(|_, _| Ok(()));
    h.sessions
        .expect_bump_revocation_epoch()
        .withf(|e| *e == email())
        .times(1)
        .in_sequence(&mut order)
        .returning(|_| Ok(()));
    h.sessions
        .expect_delete_all_for_user()
        .withf(|id, keep| *id == ada_id() && keep.is_none())
        .times(1)
        .in_sequence(&mut order)
        .returning(|_, _| Ok(3));
    h.mailer
        .expect_send_localized()
        .withf(|to, m, _| *to == email() && *m == MailMessage::AccountDisabled)
        .times(1)
        .returning(|_, _, _| Ok(()));

    block_on(
        h.service()
            .admin_disable_user(&bobs_session(), ada_id(), &client()),
    )
    .unwrap();
}

#[test]
fn a_disabled_account_cannot_log_in_even_with_the_right_password() {
    let mut disabled = creds(true);
    disabled.status.disabled_at = Some(before(secs(60)));
    let mut h = Harness::new();
    h.user_lookup(Some(disabled.clone()));
    h.verifies(PASSWORD, PasswordCheck::Match);
    h.sessions.expect_insert().never();
    let result = block_on(h.service().login(&email(), &attempt(PASSWORD), client()));
    assert!(
        matches!(result, Err(LoginError::AccountDisabled)),
        "{result:?}"
    );

    // With a wrong password it says no more than for any account.
    let mut h = Harness::new();
    h.user_lookup(Some(disabled));
    h.verifies("wrong password", PasswordCheck::Mismatch);
    let result = block_on(
        h.service()
            .login(&email(), &attempt("wrong password"), client()),
    );
    assert!(matches!(result, Err(LoginError::InvalidCredentials)));
}

/// A demotion closes the privilege window of every session of the account: were it made an
/// administrator again, its old sessions would otherwise start inside the window they had.
#[test]
fn a_demotion_closes_the_privilege_windows_of_the_account() {
    let mut h = Harness::new();
    h.users
        .expect_find_by_id()
        .withf(|id| *id == bob().id)
        .returning(|_| Ok(Some(bob_creds(Role::Admin, false))));
    h.users
        .expect_find_by_id()
        .withf(|id| *id == ada_id())
        .returning(|_| {
            let mut ada = super::creds(true);
            ada.status.role = Role::Admin;
            Ok(Some(ada))
        });
    window(&mut h, Some(at(secs(60))));
    h.users
        .expect_set_role()
        .withf(|id, role| *id == ada_id() && *role == Role::User)
        .times(1)
        .returning(|_, _| Ok(()));
    let adas = [
        session(1, user(true), t0(), at(ONE_DAY)),
        session(2, user(true), t0(), at(ONE_DAY)),
    ];
    // Two pages: every page of the account's sessions is read.
    let next = SessionCursor::new(1, adas[0].id);
    let first = SessionPage {
        sessions: vec![adas[0].clone()],
        next: Some(next),
    };
    let second = SessionPage {
        sessions: vec![adas[1].clone()],
        next: None,
    };
    h.sessions
        .expect_list_for_user()
        .withf(|id, after, _| *id == ada_id() && after.is_none())
        .times(1)
        .returning(move |_, _, _| Ok(first.clone()));
    h.sessions
        .expect_list_for_user()
        .withf(move |id, after, _| *id == ada_id() && *after == Some(next))
        .times(1)
        .returning(move |_, _, _| Ok(second.clone()));
    let closed = Arc::new(Mutex::new(Vec::new()));
    let c = closed.clone();
    h.sessions
        .expect_open_privilege_window()
        .returning(move |id, until, _| {
            c.lock().unwrap().push((id, until));
            Ok(())
        });
    h.mailer.expect_send_localized().returning(|_, _, _| Ok(()));
    let service = h.service();

    block_on(service.admin_set_role(&bobs_session(), ada_id(), Role::User, &client())).unwrap();

    let closed = closed.lock().unwrap().clone();
    assert_eq!(
        closed,
        adas.iter().map(|s| (s.id, t0())).collect::<Vec<_>>(),
        "each of Ada's windows now ends at once"
    );
}

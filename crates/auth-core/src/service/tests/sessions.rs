//! Tests of login, authentication, logout, listing, revocation, idle timeout.

use super::*;

// --- login -----------------------------------------------------------------------------------

/// Expects exactly one session insert and keeps what was inserted.
pub(super) fn capture_insert(h: &mut Harness) -> Arc<Mutex<Vec<(Session, Duration)>>> {
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

/// A session keeps where it was opened from (IP, user agent), never the language of the login
/// request: the account's mail language is the account's, and a session listing shows only
/// what identifies the device.
#[test]
fn a_session_keeps_the_client_it_was_opened_from_but_not_the_requests_language() {
    let mut h = Harness::new();
    h.user_lookup(Some(creds(true)));
    h.verifies(PASSWORD, PasswordCheck::Match);
    let inserted = capture_insert(&mut h);
    let german = client().with_language(Some("de-CH, de;q=0.9"));
    assert!(german.language.is_some());

    let outcome = block_on(h.service().login(&email(), &attempt(PASSWORD), german)).unwrap();

    let inserted = inserted.lock().unwrap();
    assert_eq!(inserted[0].0.client.language, None);
    assert_eq!(inserted[0].0.client, client(), "IP and user agent are kept");
    assert_eq!(outcome.session.client.language, None);
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
    // The rule of ENUMERATION_PROTECTION=false.
    h.config.enumeration_protection = false;
    h.user_lookup(Some(creds(false)));
    h.verifies(PASSWORD, PasswordCheck::Match);
    h.sessions.expect_insert().never();

    let result = block_on(h.service().login(&email(), &attempt(PASSWORD), client()));

    assert!(
        matches!(result, Err(LoginError::EmailNotVerified)),
        "{result:?}"
    );
}

/// Anyone can sign up an address with a password of their own; "not verified" for that
/// password would tell that the address had no verified account (where the same stranger
/// gets 401). With enumeration protection (the default) it answers like a wrong password,
/// and is counted like one: the client's budget on the address does not start over.
#[test]
fn login_to_a_pending_account_does_not_tell_it_from_a_verified_one() {
    let mut h = Harness::new();
    assert!(h.config.enumeration_protection);
    let mut limiter = crate::ports::MockRateLimiter::new();
    limiter
        .expect_acquire()
        .returning(|_, _| Ok(crate::ports::RateDecision::Allowed));
    limiter.expect_reset().never();
    h.limiter = Arc::new(limiter);
    h.user_lookup(Some(creds(false)));
    h.verifies(PASSWORD, PasswordCheck::Match);
    h.sessions.expect_insert().never();

    let result = block_on(h.service().login(&email(), &attempt(PASSWORD), client()));

    assert!(
        matches!(result, Err(LoginError::InvalidCredentials)),
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
        .withf(|id, _, hash, when| *id == ada_id() && hash.as_str() == NEW_HASH && *when == t0())
        .times(1)
        .returning(|_, _, _, _| Ok(()));
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
            .returning(|_, _, _, _| Err(UserRepoError::Unavailable(outage())));
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

    let revoked = block_on(h.service().logout_all(&current_session())).unwrap();

    assert_eq!(revoked, 3);
}

// --- list_sessions / revoke_session ----------------------------------------------------------

#[test]
fn a_page_of_sessions_leaves_out_other_users_ended_and_idle_ones_in_store_order() {
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
    let next = SessionCursor::new(17, middle.id);
    let page = SessionPage {
        sessions: vec![
            newest.clone(),
            expired,
            middle.clone(),
            ends_now,
            not_theirs,
            oldest.clone(),
        ],
        next: Some(next),
    };
    h.sessions
        .expect_list_for_user()
        .withf(|id, after, limit| *id == ada_id() && after.is_none() && *limit == 50)
        .times(1)
        .returning(move |_, _, _| Ok(page.clone()));

    let got = block_on(h.service().list_sessions_page(ada_id(), None, 50)).unwrap();

    assert_eq!(got.sessions, vec![newest, middle, oldest]);
    assert_eq!(got.next, Some(next), "the store's cursor is passed on");
}

#[test]
fn a_page_asks_the_store_for_a_bounded_number_after_the_cursor() {
    let cursor = SessionCursor::new(
        1_700_000_000_000_000,
        SessionId::from_uuid(Uuid::from_u128(5)),
    );
    for (asked, given) in [
        (0, 1),
        (7, 7),
        (MAX_SESSIONS_PAGE + 1, MAX_SESSIONS_PAGE),
        (usize::MAX, MAX_SESSIONS_PAGE),
    ] {
        let mut h = Harness::new();
        h.sessions
            .expect_list_for_user()
            .withf(move |id, after, limit| {
                *id == ada_id() && *after == Some(cursor) && *limit == given
            })
            .times(1)
            .returning(|_, _, _| Ok(SessionPage::default()));
        let page = block_on(
            h.service()
                .list_sessions_page(ada_id(), Some(cursor), asked),
        )
        .unwrap();
        assert_eq!(page, SessionPage::default());
    }
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
fn a_page_of_sessions_leaves_out_idle_sessions() {
    let mut h = Harness::new();
    let now = at(secs(3600));
    h.clock.set(now);
    let idle = session(1, user(true), t0(), at(ONE_DAY));
    let active = Session {
        passkey: None,
        last_seen_at: at(secs(3000)),
        ..session(2, user(true), t0(), at(ONE_DAY))
    };
    let page = SessionPage {
        sessions: vec![idle, active.clone()],
        next: None,
    };
    h.sessions
        .expect_list_for_user()
        .returning(move |_, _, _| Ok(page.clone()));

    let got = block_on(h.service().list_sessions_page(ada_id(), None, 10)).unwrap();

    assert_eq!(got.sessions, vec![active]);
}

#[test]
fn session_cursors_parse_only_their_own_form() {
    let id = Uuid::from_u128(9).simple();
    for bad in [
        "".to_owned(),
        "abc".to_owned(),
        "12.".to_owned(),
        ".abc".to_owned(),
        "x.0123".to_owned(),
        "12.not-a-uuid".to_owned(),
        "1.2.3".to_owned(),
        format!("-5.{id}"),
        format!("+5.{id}"),
        format!(".{id}"),
        format!("99999999999999999999.{id}"),
    ] {
        assert_eq!(SessionCursor::parse(&bad), None, "{bad:?}");
    }
    let s = session(9, user(true), t0(), at(ONE_DAY));
    let page_cursor = SessionCursor::parse(&format!(
        "{}.{}",
        t0().timestamp_micros(),
        s.id.as_uuid().simple()
    ))
    .unwrap();
    assert_eq!(
        SessionCursor::parse(&page_cursor.encode()),
        Some(page_cursor)
    );
}

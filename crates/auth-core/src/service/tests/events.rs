//! Tests of the security history: which action records what, for whom, with which client
//! data; that recording never fails an action; that nothing is recorded for unknown
//! addresses; reading a page; pruning.

use super::*;
use crate::ports::{
    EventCursor, LoginFailure, MockSecurityEvents, SecurityEvent, SecurityEventKind,
    SecurityEventsError,
};

type Recorded = Arc<Mutex<Vec<SecurityEvent>>>;

/// A store that keeps every recorded event.
fn recording() -> (MockSecurityEvents, Recorded) {
    let recorded = Recorded::default();
    let log = recorded.clone();
    let mut store = MockSecurityEvents::new();
    store.expect_record().returning(move |e| {
        log.lock().unwrap().push(e.clone());
        Ok(())
    });
    (store, recorded)
}

fn kinds(recorded: &Recorded) -> Vec<SecurityEventKind> {
    recorded.lock().unwrap().iter().map(|e| e.kind).collect()
}

#[test]
fn a_login_records_login_succeeded_with_the_network_user_agent_and_request_id_only() {
    let mut h = Harness::new();
    h.user_lookup(Some(creds(true)));
    h.verifies(PASSWORD, PasswordCheck::Match);
    h.sessions.expect_insert().returning(|_, _| Ok(()));
    let (store, recorded) = recording();
    h.events = Some(Arc::new(store));
    let client = client().with_request_id(Some("req-42"));

    let outcome = block_on(h.service().login(&email(), &attempt(PASSWORD), client)).unwrap();

    let recorded = recorded.lock().unwrap();
    assert_eq!(recorded.len(), 1);
    let e = &recorded[0];
    assert_eq!(e.kind, SecurityEventKind::LoginSucceeded);
    assert_eq!(e.user_id, ada_id());
    assert_eq!(e.at, t0());
    assert_eq!(
        e.ip.map(|ip| ip.to_string()).as_deref(),
        Some("203.0.113.0/24")
    );
    assert_eq!(
        e.user_agent.as_deref(),
        Some("Mozilla/5.0 (X11; Linux x86_64)")
    );
    assert_eq!(e.request_id.as_deref(), Some("req-42"));
    let shown = format!("{e:?}");
    assert!(!shown.contains(PASSWORD) && !shown.contains(&outcome.token.expose()));
}

#[test]
fn a_wrong_password_records_bad_credentials_for_the_account() {
    let mut h = Harness::new();
    h.user_lookup(Some(creds(true)));
    h.verifies("wrong password", PasswordCheck::Mismatch);
    let (store, recorded) = recording();
    h.events = Some(Arc::new(store));

    let result = block_on(
        h.service()
            .login(&email(), &attempt("wrong password"), client()),
    );

    assert!(matches!(result, Err(LoginError::InvalidCredentials)));
    assert_eq!(
        kinds(&recorded),
        [SecurityEventKind::LoginFailed(LoginFailure::BadCredentials)]
    );
    assert_eq!(recorded.lock().unwrap()[0].user_id, ada_id());
}

#[test]
fn the_right_password_of_an_unverified_account_records_unverified() {
    let mut h = Harness::new();
    h.user_lookup(Some(creds(false)));
    h.verifies(PASSWORD, PasswordCheck::Match);
    let (store, recorded) = recording();
    h.events = Some(Arc::new(store));

    let result = block_on(h.service().login(&email(), &attempt(PASSWORD), client()));

    assert!(result.is_err());
    assert_eq!(
        kinds(&recorded),
        [SecurityEventKind::LoginFailed(LoginFailure::Unverified)]
    );
}

#[test]
fn a_failed_login_on_an_unknown_address_records_nothing() {
    let mut h = Harness::new();
    h.user_lookup(None);
    h.hashes("wrong password", NEW_HASH);
    let mut store = MockSecurityEvents::new();
    store.expect_record().never();
    h.events = Some(Arc::new(store));

    let result = block_on(
        h.service()
            .login(&email(), &attempt("wrong password"), client()),
    );

    assert!(matches!(result, Err(LoginError::InvalidCredentials)));
}

/// A limiter that refuses every request.
fn refusing_limiter() -> Arc<dyn RateLimiter> {
    let mut limiter = crate::ports::MockRateLimiter::new();
    limiter.expect_acquire().returning(|_, _| {
        Ok(crate::ports::RateDecision::Limited {
            retry_after: secs(30),
        })
    });
    Arc::new(limiter)
}

#[test]
fn a_throttled_login_records_throttled_for_an_existing_account_only() {
    for (found, expected) in [
        (
            Some(creds(true)),
            vec![SecurityEventKind::LoginFailed(LoginFailure::Throttled)],
        ),
        (None, vec![]),
    ] {
        let mut h = Harness::new();
        h.limiter = refusing_limiter();
        h.user_lookup(found);
        h.hasher.expect_verify().never();
        let (store, recorded) = recording();
        h.events = Some(Arc::new(store));

        let result = block_on(h.service().login(&email(), &attempt(PASSWORD), client()));

        assert!(
            matches!(result, Err(LoginError::TooManyRequests { .. })),
            "{result:?}"
        );
        assert_eq!(kinds(&recorded), expected);
    }
}

#[test]
fn without_an_event_store_a_throttled_login_reads_no_account() {
    let mut h = Harness::new();
    h.limiter = refusing_limiter();
    h.users.expect_find_by_email().never();

    let result = block_on(h.service().login(&email(), &attempt(PASSWORD), client()));

    assert!(matches!(result, Err(LoginError::TooManyRequests { .. })));
}

#[test]
fn an_event_store_outage_never_fails_the_action() {
    let mut h = Harness::new();
    h.user_lookup(Some(creds(true)));
    h.verifies(PASSWORD, PasswordCheck::Match);
    h.sessions.expect_insert().times(1).returning(|_, _| Ok(()));
    let mut store = MockSecurityEvents::new();
    store
        .expect_record()
        .times(1)
        .returning(|_| Err(SecurityEventsError::Unavailable(outage())));
    h.events = Some(Arc::new(store));

    let outcome = block_on(h.service().login(&email(), &attempt(PASSWORD), client()));

    assert!(outcome.is_ok(), "{outcome:?}");
}

#[test]
fn logout_records_logout_for_the_sessions_user_with_the_client_that_logged_out() {
    let mut h = Harness::new();
    let mine = current_session();
    let hash = mine.token_hash;
    let found = mine.clone();
    h.sessions
        .expect_get()
        .withf(move |h| *h == hash)
        .times(1)
        .returning(move |_| Ok(Some(found.clone())));
    h.sessions.expect_delete().times(1).returning(|_| Ok(true));
    let (store, recorded) = recording();
    h.events = Some(Arc::new(store));
    let token = SessionToken::from_bytes([50; 32]);
    assert_eq!(token.hash(), mine.token_hash, "the fixture's token");

    block_on(h.service().logout_with_client(&token, Some(&client()))).unwrap();

    let recorded = recorded.lock().unwrap();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].kind, SecurityEventKind::Logout);
    assert_eq!(recorded[0].user_id, mine.user.id);
    assert!(recorded[0].ip.is_some());
}

#[test]
fn logout_of_an_unknown_token_records_nothing_and_without_a_store_reads_no_session() {
    let mut h = Harness::new();
    h.sessions.expect_get().times(1).returning(|_| Ok(None));
    h.sessions.expect_delete().times(1).returning(|_| Ok(false));
    let mut store = MockSecurityEvents::new();
    store.expect_record().never();
    h.events = Some(Arc::new(store));
    let token = SessionToken::from_bytes([9; 32]);
    block_on(h.service().logout(&token)).unwrap();

    let mut h = Harness::new();
    h.sessions.expect_get().never();
    h.sessions.expect_delete().times(1).returning(|_| Ok(true));
    block_on(h.service().logout(&token)).unwrap();
}

#[test]
fn logout_all_and_ending_one_session_record_their_events() {
    let mut h = Harness::new();
    h.sessions
        .expect_delete_all_for_user()
        .returning(|_, _| Ok(2));
    h.sessions.expect_delete_by_id().returning(|_, _| Ok(true));
    let (store, recorded) = recording();
    h.events = Some(Arc::new(store));
    let svc = h.service();

    block_on(svc.logout_all_with_client(&current_session(), &client())).unwrap();
    block_on(svc.revoke_session_with_client(
        ada_id(),
        SessionId::from_uuid(Uuid::from_u128(7)),
        &client(),
    ))
    .unwrap();

    assert_eq!(
        kinds(&recorded),
        [
            SecurityEventKind::LogoutAll,
            SecurityEventKind::SessionEnded
        ]
    );
}

fn stored_event(n: u128, user: UserId, at: DateTime<Utc>) -> SecurityEvent {
    SecurityEvent {
        id: Uuid::from_u128(n),
        user_id: user,
        at,
        kind: SecurityEventKind::LoginSucceeded,
        ip: None,
        user_agent: None,
        request_id: None,
    }
}

#[test]
fn a_page_asks_for_one_more_event_and_returns_the_cursor_of_its_last() {
    let mut h = Harness::new();
    let mut store = MockSecurityEvents::new();
    store
        .expect_list()
        .withf(|user, after, limit| *user == ada_id() && after.is_none() && *limit == 3)
        .times(1)
        .returning(|user, _, _| {
            Ok(vec![
                stored_event(3, user, at(secs(3))),
                stored_event(2, user, at(secs(2))),
                stored_event(1, user, at(secs(1))),
            ])
        });
    h.events = Some(Arc::new(store));

    let page = block_on(h.service().security_events(ada_id(), None, 2)).unwrap();

    assert_eq!(page.events.len(), 2);
    assert_eq!(
        page.next,
        Some(EventCursor {
            at: at(secs(2)),
            id: Uuid::from_u128(2)
        })
    );
}

#[test]
fn a_page_never_shows_another_users_events_whatever_the_store_returns() {
    let mut h = Harness::new();
    let mut store = MockSecurityEvents::new();
    let stranger = UserId::from_uuid(Uuid::from_u128(0xB0B));
    store.expect_list().returning(move |user, _, _| {
        Ok(vec![
            stored_event(2, stranger, at(secs(2))),
            stored_event(1, user, at(secs(1))),
        ])
    });
    h.events = Some(Arc::new(store));

    let page = block_on(h.service().security_events(ada_id(), None, 10)).unwrap();

    assert_eq!(page.events.len(), 1);
    assert_eq!(page.events[0].user_id, ada_id());
    assert_eq!(page.next, None);
}

#[test]
fn page_sizes_are_bounded() {
    let mut h = Harness::new();
    let mut store = MockSecurityEvents::new();
    store
        .expect_list()
        .withf(|_, _, limit| *limit == MAX_EVENTS_PAGE + 1)
        .times(1)
        .returning(|_, _, _| Ok(vec![]));
    store
        .expect_list()
        .withf(|_, _, limit| *limit == 2)
        .times(1)
        .returning(|_, _, _| Ok(vec![]));
    h.events = Some(Arc::new(store));
    let svc = h.service();

    block_on(svc.security_events(ada_id(), None, 10_000)).unwrap();
    block_on(svc.security_events(ada_id(), None, 0)).unwrap();
}

#[test]
fn reading_the_history_during_an_outage_is_unavailable() {
    let mut h = Harness::new();
    let mut store = MockSecurityEvents::new();
    store
        .expect_list()
        .returning(|_, _, _| Err(SecurityEventsError::Unavailable(outage())));
    h.events = Some(Arc::new(store));

    let result = block_on(h.service().security_events(ada_id(), None, 10));

    assert_unavailable(&result.unwrap_err(), Dependency::SecurityEvents);
}

#[test]
fn without_an_event_store_pages_are_empty_and_nothing_is_pruned() {
    let svc = Harness::new().service();
    let page = block_on(svc.security_events(ada_id(), None, 10)).unwrap();
    assert!(page.events.is_empty() && page.next.is_none());
    assert_eq!(block_on(svc.prune_security_events(ONE_DAY)).unwrap(), 0);
}

#[test]
fn pruning_deletes_what_is_older_than_the_retention() {
    let mut h = Harness::new();
    let mut store = MockSecurityEvents::new();
    store
        .expect_prune()
        .withf(|before| *before == t0() - TimeDelta::days(365))
        .times(1)
        .returning(|_| Ok(4));
    h.events = Some(Arc::new(store));

    let n = block_on(h.service().prune_security_events(365 * ONE_DAY)).unwrap();

    assert_eq!(n, 4);
}

#[test]
fn a_stolen_session_guessing_the_password_leaves_each_guess_and_the_lockout_in_the_history() {
    let mut h = Harness::new();
    h.limiter = Arc::new(super::guard::CountingLimiter::default());
    account_by_id(&mut h);
    h.hasher
        .expect_verify()
        .returning(|_, _| Ok(PasswordCheck::Mismatch));
    let _outbox = h.outbox();
    h.sessions.expect_delete().returning(|_| Ok(true));
    let (store, recorded) = recording();
    h.events = Some(Arc::new(store));
    let svc = h.service();
    let stolen = current_session();

    let mut ended = 0;
    for i in 0..11 {
        let r = block_on(svc.change_password(
            &stolen,
            &attempt(&format!("guess number {i}")),
            password(NEW_PASSWORD),
            &client(),
        ));
        if matches!(r, Err(ChangePasswordError::Unauthenticated)) {
            ended += 1;
        }
    }

    // Every guess is in the owner's history; the eleventh is past the hard limit of ten and
    // ends the session: one lockout after it. The first five are checked and wrong; the
    // re-authentication budget (five a quarter of an hour) refuses the rest unchecked, and
    // those are recorded as refused, not as wrong guesses.
    assert_eq!(ended, 1);
    let mut expected = vec![SecurityEventKind::ReauthFailed; 5];
    expected.extend([SecurityEventKind::ReauthThrottled; 6]);
    expected.push(SecurityEventKind::Lockout);
    assert_eq!(kinds(&recorded), expected);
    assert!(recorded
        .lock()
        .unwrap()
        .iter()
        .all(|e| e.user_id == ada_id() && e.ip.is_some()));
}

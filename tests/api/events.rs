//! The security history (`GET /me/events`), black box on both profiles: what a lifecycle
//! records and in which order, whose events a session sees, pagination, that no secret reaches
//! the table, and that failed logins on unknown addresses record nothing and tell nothing.

use std::collections::HashSet;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{error_code, Profile, TestApp, PASSWORD};

both_profiles!(
    a_lifecycle_leaves_exactly_its_events_newest_first,
    one_user_cannot_see_another_users_events,
    pages_return_every_event_once,
    a_failed_login_on_an_unknown_address_records_nothing_and_answers_the_same,
    bad_event_queries_are_refused_with_400_and_anonymous_ones_with_401,
    a_stolen_session_guessing_the_password_shows_each_guess_in_the_owners_history,
);

const NEW_PASSWORD: &str = "another perfectly fine passphrase";
const RESET_PASSWORD: &str = "yet another fine passphrase";

/// Every event of the session's user, newest first, walking the pages.
async fn all_events(app: &TestApp, token: &str) -> Vec<Value> {
    let mut events = Vec::new();
    let mut path = "/me/events?limit=100".to_owned();
    loop {
        let res = app.get_auth(&path, token).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.headers()["cache-control"], "no-store");
        let page: Value = res.json().await.unwrap();
        events.extend(page["events"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => path = format!("/me/events?limit=100&cursor={c}"),
            None => return events,
        }
    }
}

/// The raw rows once there are at least `n` (events are written by a task of their own),
/// waiting up to 10 s.
async fn rows_at_least(app: &TestApp, n: usize) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let rows = app.security_event_rows().await;
        if rows.len() >= n || tokio::time::Instant::now() > deadline {
            return rows;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// `kind` or `kind:reason` of each event.
fn kinds(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| match e["reason"].as_str() {
            Some(r) => format!("{}:{r}", e["kind"].as_str().unwrap()),
            None => e["kind"].as_str().unwrap().to_owned(),
        })
        .collect()
}

fn session_token(body: &Value) -> String {
    body["session"]["token"].as_str().unwrap().to_owned()
}

fn now_step() -> u64 {
    u64::try_from(chrono::Utc::now().timestamp()).unwrap() / 30
}

/// Signup, verification, a wrong password, logins, ending a session from another one, a
/// password change, logout, a reset, two-factor on (with a failed and a recovery-code second
/// step) and off, logout everywhere, guessing until refused, deletion: `/me/events` lists
/// exactly these, newest first, with their reasons; the raw rows hold none of the passwords,
/// codes and tokens used, and the client address only as a /24.
async fn a_lifecycle_leaves_exactly_its_events_newest_first(profile: Profile) {
    let app = TestApp::spawn(profile).await;
    let email = app.email();
    let mut secrets: Vec<String> =
        vec![PASSWORD.into(), NEW_PASSWORD.into(), RESET_PASSWORD.into()];
    let mut expected: Vec<&str> = Vec::new();

    assert_eq!(
        app.signup(&email, PASSWORD).await.status(),
        StatusCode::CREATED
    );
    expected.push("signup");
    let code = app.nth_code(&email, 1).await;
    assert_eq!(app.verify(&email, &code).await.status(), StatusCode::OK);
    secrets.push(code);
    expected.push("verified");

    let res = app.login(&email, "not the password at all").await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    expected.push("login_failed:bad_credentials");

    let a = app.token(&email, PASSWORD).await;
    expected.push("login_succeeded");
    let b = app.token(&email, PASSWORD).await;
    expected.push("login_succeeded");
    secrets.extend([a.clone(), b.clone()]);
    let list: Value = app.get_auth("/sessions", &b).await.json().await.unwrap();
    let b_id = list["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["current"] == true)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = app.delete_auth(&format!("/sessions/{b_id}"), &a).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    expected.push("session_ended");

    let res = app
        .post_auth(
            "/change-password",
            &a,
            Some(&json!({"current_password": PASSWORD, "new_password": NEW_PASSWORD})),
        )
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    expected.push("password_changed");
    let res = app.post_auth("/logout", &a, None).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    expected.push("logout");

    // The verification code and the password-changed notice, then the reset code.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while app.mail.count_to(&email) < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no password-changed notice"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let before = app.mail.count_to(&email);
    let res = app.post("/forgot-password", &json!({"email": email})).await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    expected.push("reset_requested");
    let reset_code = app.nth_code(&email, before + 1).await;
    let res = app
        .post(
            "/reset-password",
            &json!({"email": email, "otp": reset_code, "new_password": RESET_PASSWORD}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    secrets.push(reset_code);
    expected.push("reset_completed");

    let c = app.token(&email, RESET_PASSWORD).await;
    expected.push("login_succeeded");
    secrets.push(c.clone());
    let res = app
        .post_auth(
            "/me/mfa/totp",
            &c,
            Some(&json!({ "password": RESET_PASSWORD })),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let enrolment: Value = res.json().await.unwrap();
    let totp = totp_rs::Totp::from_url(enrolment["otpauth_uri"].as_str().unwrap()).unwrap();
    secrets.push(enrolment["secret"].as_str().unwrap_or_default().to_owned());
    let step = now_step();
    let confirm = totp.generate(step * 30).to_string();
    let res = app
        .post_auth(
            "/me/mfa/totp/confirm",
            &c,
            Some(&json!({ "code": confirm })),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    expected.push("two_factor_enabled");
    let body: Value = res.json().await.unwrap();
    let recovery: Vec<String> = body["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    secrets.extend(recovery.iter().cloned());

    let first: Value = app
        .login(&email, RESET_PASSWORD)
        .await
        .json()
        .await
        .unwrap();
    let mfa_token = first["mfa_token"].as_str().unwrap().to_owned();
    secrets.push(mfa_token.clone());
    let wrong = if confirm == "000000" {
        "000001"
    } else {
        "000000"
    };
    let res = app
        .post(
            "/login/mfa",
            &json!({ "mfa_token": mfa_token, "code": wrong }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    expected.push("login_failed:second_factor_failed");
    let res = app
        .post(
            "/login/mfa",
            &json!({ "mfa_token": mfa_token, "code": recovery[0] }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    expected.push("recovery_code_used");
    expected.push("login_succeeded");
    let d = session_token(&res.json().await.unwrap());
    secrets.push(d.clone());

    let off = totp.generate((step + 1) * 30).to_string();
    let res = app
        .client_delete_json(
            "/me/mfa/totp",
            &d,
            &json!({ "password": RESET_PASSWORD, "code": off }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    secrets.extend([confirm, off]);
    expected.push("two_factor_disabled");
    let res = app.post_auth("/logout-all", &d, None).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    expected.push("logout_all");

    let e = app.token(&email, RESET_PASSWORD).await;
    expected.push("login_succeeded");
    secrets.push(e.clone());
    // Guessing until a budget refuses.
    let mut refused = false;
    for _ in 0..40 {
        let res = app.login(&email, "a wrong guess of a password").await;
        match res.status() {
            StatusCode::UNAUTHORIZED => expected.push("login_failed:bad_credentials"),
            StatusCode::TOO_MANY_REQUESTS => {
                expected.push("login_failed:throttled");
                refused = true;
                break;
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert!(refused, "no budget ever refused the guesses");

    let events = all_events(&app, &e).await;
    let mut newest_first: Vec<String> = expected.iter().map(|s| (*s).to_owned()).collect();
    newest_first.reverse();
    assert_eq!(kinds(&events), newest_first);
    let ids: HashSet<&str> = events.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), events.len(), "every event once");
    for event in &events {
        assert_eq!(event["ip"], "127.0.0.0/24", "{event}");
        assert!(
            !event["request_id"].as_str().unwrap_or_default().is_empty(),
            "{event}"
        );
    }

    let res = app
        .client_delete_json("/me", &e, &json!({ "password": RESET_PASSWORD }))
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);

    // Events are written by a task of their own: the deletion's shows up shortly.
    let rows = rows_at_least(&app, expected.len() + 1).await;
    assert_eq!(rows.len(), expected.len() + 1, "{rows:#?}");
    assert_eq!(
        rows.iter()
            .filter(|r| r.contains("\"account_deleted\""))
            .count(),
        1,
        "the deletion stays in the history: {rows:#?}"
    );
    let raw = rows.join("\n");
    for secret in secrets.iter().filter(|s| s.len() >= 6) {
        assert!(
            !raw.contains(secret.as_str()),
            "a secret reached the security_events table: {secret:?}"
        );
    }
    assert!(!raw.contains("$argon2"), "no hash in the rows");
    assert!(!raw.contains("127.0.0.1"), "only the /24 is kept: {raw}");
    app.cleanup().await;
}

/// Each session sees its own user's events only; the other user's event ids never show up.
async fn one_user_cannot_see_another_users_events(profile: Profile) {
    let app = TestApp::spawn(profile).await;
    let ada = app.verified_user().await;
    let bob = app.verified_user().await;
    let _ = app.login(&ada, "wrong password for ada").await;
    let ada_token = app.token(&ada, PASSWORD).await;
    let bob_token = app.token(&bob, PASSWORD).await;
    let ada_events = all_events(&app, &ada_token).await;
    let bob_events = all_events(&app, &bob_token).await;
    assert_eq!(
        kinds(&ada_events),
        [
            "login_succeeded",
            "login_failed:bad_credentials",
            "verified",
            "signup"
        ]
    );
    assert_eq!(
        kinds(&bob_events),
        ["login_succeeded", "verified", "signup"]
    );
    let ada_ids: HashSet<&str> = ada_events
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert!(bob_events
        .iter()
        .all(|e| !ada_ids.contains(e["id"].as_str().unwrap())));
    // A cursor made from Ada's newest event does not reach into Ada's history from Bob's
    // session.
    let res = app.get_auth("/me/events?limit=1", &ada_token).await;
    let page: Value = res.json().await.unwrap();
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    let res = app
        .get_auth(&format!("/me/events?cursor={cursor}"), &bob_token)
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let page: Value = res.json().await.unwrap();
    assert!(page["events"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| !ada_ids.contains(e["id"].as_str().unwrap())));
    app.cleanup().await;
}

/// Pages of 3 walk the whole history: every event once, in the order of one big page, and
/// the last page has no `next_cursor`.
async fn pages_return_every_event_once(profile: Profile) {
    let app = TestApp::spawn(profile).await;
    let email = app.verified_user().await;
    let mut token = String::new();
    for _ in 0..8 {
        token = app.token(&email, PASSWORD).await;
    }
    let all = all_events(&app, &token).await;
    assert_eq!(all.len(), 10, "{all:#?}");
    let mut walked = Vec::new();
    let mut path = "/me/events?limit=3".to_owned();
    let mut pages = 0;
    loop {
        let page: Value = app.get_auth(&path, &token).await.json().await.unwrap();
        pages += 1;
        let events = page["events"].as_array().unwrap();
        assert!(events.len() <= 3);
        walked.extend(events.iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => path = format!("/me/events?limit=3&cursor={c}"),
            None => break,
        }
        assert!(pages < 10, "the pages never end");
    }
    assert_eq!(pages, 4);
    assert_eq!(walked, all);
    // Without `limit`: the default page (20) holds everything here.
    let page: Value = app
        .get_auth("/me/events", &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["events"].as_array().unwrap().len(), 10);
    assert!(page.get("next_cursor").is_none());
    app.cleanup().await;
}

/// A wrong password on an unknown address writes no row, and its answer is the one a wrong
/// password on an existing account gets: the history cannot be used to enumerate accounts.
async fn a_failed_login_on_an_unknown_address_records_nothing_and_answers_the_same(
    profile: Profile,
) {
    let app = TestApp::spawn(profile).await;
    let email = app.verified_user().await;
    let rows = rows_at_least(&app, 2).await.len(); // signup, verified
    assert_eq!(rows, 2);
    let unknown = app.login(&app.email(), "some wrong password").await;
    let (unknown_status, unknown_body) = (unknown.status(), unknown.text().await.unwrap());
    let known = app.login(&email, "some wrong password").await;
    let (known_status, known_body) = (known.status(), known.text().await.unwrap());
    // One writer, in order: had the unknown address's attempt left a row, it would be there
    // before the known one's.
    let after = rows_at_least(&app, rows + 1).await;
    assert_eq!(after.len(), rows + 1, "{after:#?}");
    assert!(after.iter().any(|r| r.contains("bad_credentials")));
    assert_eq!(unknown_status, StatusCode::UNAUTHORIZED);
    assert_eq!((unknown_status, unknown_body), (known_status, known_body));
    app.cleanup().await;
}

/// A `limit` out of range or a cursor that is not one: 400 `invalid_request`; no session: 401.
async fn bad_event_queries_are_refused_with_400_and_anonymous_ones_with_401(profile: Profile) {
    let app = TestApp::spawn(profile).await;
    let email = app.verified_user().await;
    let token = app.token(&email, PASSWORD).await;
    for query in [
        "limit=0",
        "limit=101",
        "limit=-1",
        "limit=ten",
        "cursor=nope",
        "cursor=1.2",
        "cursor=",
    ] {
        let res = app.get_auth(&format!("/me/events?{query}"), &token).await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(error_code(res).await, "invalid_request", "{query}");
    }
    let res = app.client.get(app.url("/me/events")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    app.cleanup().await;
}

/// A stolen session that guesses the password to change it leaves one `reauth_failed` per
/// guess in the owner's history (newest first), so the owner sees the attempt before the
/// session is ended; the right password then changes it and says so.
async fn a_stolen_session_guessing_the_password_shows_each_guess_in_the_owners_history(
    profile: Profile,
) {
    let app = TestApp::spawn(profile).await;
    let ada = app.verified_user().await;
    let stolen = app.token(&ada, PASSWORD).await;
    for guess in [
        "guess one is wrong",
        "guess two is wrong",
        "guess three is wrong",
    ] {
        let res = app
            .post_auth(
                "/change-password",
                &stolen,
                Some(&json!({"current_password": guess, "new_password": NEW_PASSWORD})),
            )
            .await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{guess}");
    }
    let owner = app.token(&ada, PASSWORD).await;
    rows_at_least(&app, 7).await;
    let events = all_events(&app, &owner).await;
    assert_eq!(
        kinds(&events),
        [
            "login_succeeded",
            "reauth_failed",
            "reauth_failed",
            "reauth_failed",
            "login_succeeded",
            "verified",
            "signup"
        ]
    );
    assert!(events[1]["ip"].is_string(), "{}", events[1]);
    let rows = app.security_event_rows().await.join("\n");
    assert!(!rows.contains("guess one is wrong"), "no guess is stored");
    app.cleanup().await;
}

//! What a stolen session or a stranger leaves in the owner's security history, black box on
//! both profiles: wrong change-of-address codes and refused TOTP enrolment tries count like
//! wrong passwords (history and the session's hard limit); a password refused by its budget is
//! recorded as refused, not as a wrong guess; failed login-code tries are recorded on the
//! account, with the same answer for an address without one.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{error_code, Profile, TestApp, PASSWORD};

both_profiles!(
    wrong_reset_codes_are_recorded_on_the_account_and_answer_the_same_without_one,
    a_stolen_session_guessing_change_codes_is_recorded_and_ended,
    a_stolen_session_hammering_totp_enrolment_is_recorded_and_ended,
    a_right_password_refused_by_the_budget_is_recorded_as_throttled,
    failed_login_codes_are_recorded_on_the_account_and_answer_the_same_without_one,
);

/// The kinds (`kind` or `kind:reason`) of the session's history, newest first, once it holds
/// `wanted` (events are written by a task of their own), waiting up to 10 s.
async fn kinds_once(app: &TestApp, token: &str, wanted: &str) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let res = app.get_auth("/me/events?limit=100", token).await;
        assert_eq!(res.status(), StatusCode::OK);
        let page: Value = res.json().await.unwrap();
        let kinds: Vec<String> = page["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| match e["reason"].as_str() {
                Some(r) => format!("{}:{r}", e["kind"].as_str().unwrap()),
                None => e["kind"].as_str().unwrap().to_owned(),
            })
            .collect();
        if kinds.iter().any(|k| k == wanted) || tokio::time::Instant::now() > deadline {
            return kinds;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn count(kinds: &[String], kind: &str) -> usize {
    kinds.iter().filter(|k| *k == kind).count()
}

/// A stolen session that guesses the code of a change of address leaves each guess in the
/// owner's history and is ended at the session's hard limit, as one guessing the password is.
/// Before, wrong codes left nothing and never ended the session.
async fn a_stolen_session_guessing_change_codes_is_recorded_and_ended(profile: Profile) {
    let app = TestApp::spawn(profile).await;
    let email = app.verified_user().await;
    let stolen = app.token(&email, PASSWORD).await;
    let res = app
        .post_auth(
            "/me/email",
            &stolen,
            Some(&json!({ "new_email": app.email(), "password": PASSWORD })),
        )
        .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let target = app.email();
    let mut ended_after = None;
    for guess in 0..12u32 {
        let res = app
            .post_auth(
                "/me/email/confirm",
                &stolen,
                Some(&json!({ "new_email": target, "otp": format!("{:06}", 100_000 + guess) })),
            )
            .await;
        if res.status() == StatusCode::UNAUTHORIZED {
            ended_after = Some(guess);
            break;
        }
        assert!(
            [StatusCode::BAD_REQUEST, StatusCode::TOO_MANY_REQUESTS].contains(&res.status()),
            "{}",
            res.status()
        );
    }
    assert_eq!(
        ended_after,
        Some(10),
        "the eleventh wrong code ends the session"
    );
    assert_eq!(app.me(&stolen).await.status(), StatusCode::UNAUTHORIZED);
    let owner = app.token(&email, PASSWORD).await;
    let kinds = kinds_once(&app, &owner, "lockout").await;
    assert_eq!(
        count(&kinds, "reauth_failed") + count(&kinds, "reauth_throttled"),
        11,
        "{kinds:?}"
    );
    assert_eq!(count(&kinds, "lockout"), 1, "{kinds:?}");
    app.cleanup().await;
}

/// Past the second-factor budget, a stolen session's TOTP enrolment tries are refused (429),
/// recorded as refused and counted against the session's hard limit, so hammering the
/// endpoint ends the session. Before, the refused tries left nothing and counted nothing.
async fn a_stolen_session_hammering_totp_enrolment_is_recorded_and_ended(profile: Profile) {
    let app = TestApp::spawn(profile).await;
    let email = app.verified_user().await;
    let stolen = app.token(&email, PASSWORD).await;
    let res = app
        .post_auth(
            "/me/mfa/totp",
            &stolen,
            Some(&json!({ "password": PASSWORD })),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let (mut refused, mut ended_after) = (0, None);
    for guess in 0..12u32 {
        let res = app
            .post_auth(
                "/me/mfa/totp/confirm",
                &stolen,
                Some(&json!({ "code": format!("{:06}", 900_000 + guess) })),
            )
            .await;
        match res.status() {
            StatusCode::UNAUTHORIZED => {
                ended_after = Some(guess);
                break;
            }
            StatusCode::TOO_MANY_REQUESTS => refused += 1,
            other => assert_eq!(other, StatusCode::FORBIDDEN, "a wrong code"),
        }
    }
    assert!(refused > 0, "the second-factor budget never refused");
    assert_eq!(ended_after, Some(10), "the eleventh try ends the session");
    let owner = app.token(&email, PASSWORD).await;
    let kinds = kinds_once(&app, &owner, "lockout").await;
    assert_eq!(count(&kinds, "reauth_throttled"), refused + 1, "{kinds:?}");
    assert_eq!(count(&kinds, "lockout"), 1, "{kinds:?}");
    app.cleanup().await;
}

/// After five wrong passwords inside a session the re-authentication budget refuses the
/// sixth try unchecked, even the right password: the history says it was refused
/// (`reauth_throttled`), not that the password was wrong. Before, it said `reauth_failed`.
async fn a_right_password_refused_by_the_budget_is_recorded_as_throttled(profile: Profile) {
    let app = TestApp::spawn(profile).await;
    let email = app.verified_user().await;
    let token = app.token(&email, PASSWORD).await;
    let change = |current: &str| json!({ "current_password": current, "new_password": "a new and fine passphrase" });
    for _ in 0..5 {
        let res = app
            .post_auth("/change-password", &token, Some(&change("not it at all")))
            .await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
    }
    let res = app
        .post_auth("/change-password", &token, Some(&change(PASSWORD)))
        .await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let kinds = kinds_once(&app, &token, "reauth_throttled").await;
    assert_eq!(kinds[0], "reauth_throttled", "{kinds:?}");
    assert_eq!(count(&kinds, "reauth_failed"), 5, "{kinds:?}");
    app.cleanup().await;
}

/// Wrong login codes for an address with an account are recorded on it (`login_failed`,
/// `bad_credentials`); an address without an account gets the same answers, and nothing is
/// recorded anywhere. Before, failed login-code tries left nothing.
async fn failed_login_codes_are_recorded_on_the_account_and_answer_the_same_without_one(
    profile: Profile,
) {
    let app = TestApp::spawn(profile).await;
    let email = app.verified_user().await;
    let nobody = app.email();
    let mut answers = Vec::new();
    for address in [&email, &nobody] {
        let res = app.post("/login/code", &json!({ "email": address })).await;
        assert_eq!(res.status(), StatusCode::ACCEPTED);
        let res = app
            .post(
                "/login/code/verify",
                &json!({ "email": address, "otp": "000000" }),
            )
            .await;
        let status = res.status();
        answers.push((status, error_code(res).await));
    }
    assert_eq!(answers[0], answers[1]);
    assert_eq!(answers[0].0, StatusCode::BAD_REQUEST);
    let before = app.security_event_rows().await.len();
    let token = app.token(&email, PASSWORD).await;
    let kinds = kinds_once(&app, &token, "login_failed:bad_credentials").await;
    assert_eq!(
        count(&kinds, "login_failed:bad_credentials"),
        1,
        "{kinds:?}"
    );
    // Signup, verification, the failed code, and this login: nothing for the other address.
    assert!(before <= 3, "{:?}", app.security_event_rows().await);
    app.cleanup().await;
}

/// Somebody who asked for an account's reset (or the owner, mistyping) tries wrong codes: each
/// try is recorded on the account as `reset_failed` (found by the outside test: nothing was
/// recorded), and an address without an account answers the same and records nothing.
async fn wrong_reset_codes_are_recorded_on_the_account_and_answer_the_same_without_one(
    profile: Profile,
) {
    let app = TestApp::spawn(profile).await;
    let email = app.verified_user().await;
    let nobody = app.email();
    let mut answers = Vec::new();
    for address in [&email, &nobody] {
        let res = app
            .post("/forgot-password", &json!({ "email": address }))
            .await;
        assert_eq!(res.status(), StatusCode::ACCEPTED);
        for _ in 0..2 {
            let body = json!({
                "email": address,
                "otp": "000000",
                "new_password": "a brand new passphrase 42",
            });
            let res = app.post("/reset-password", &body).await;
            let status = res.status();
            answers.push((status, error_code(res).await));
        }
    }
    assert!(answers.iter().all(|a| *a == answers[0]), "{answers:?}");
    assert_eq!(answers[0].0, StatusCode::BAD_REQUEST);
    let token = app.token(&email, PASSWORD).await;
    let kinds = kinds_once(&app, &token, "reset_failed").await;
    assert_eq!(count(&kinds, "reset_failed"), 2, "{kinds:?}");
    let rows = app.security_event_rows().await;
    assert_eq!(
        rows.iter().filter(|r| r.contains("reset_failed")).count(),
        2,
        "another address's tries were recorded: {rows:?}"
    );
    app.cleanup().await;
}

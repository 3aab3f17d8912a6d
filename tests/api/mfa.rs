//! Two-factor authentication, black box on both profiles: enrol, the two-step login, replay
//! and guessing of the second step, stolen second-step tokens, step-up, turning it off.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{error_code, Profile, TestApp, PASSWORD};

both_profiles!(
    turning_totp_on_ends_the_sessions_opened_without_it,
    two_step_login_with_totp_and_recovery_codes,
    a_replayed_totp_code_is_refused_also_in_parallel,
    guessing_the_second_step_hits_the_reauthentication_budget,
    a_stolen_mfa_token_is_useless_from_another_client_and_after_use,
    change_password_asks_for_a_second_factor_and_turning_totp_off_ends_other_sessions,
);

/// The app's generator, from the `otpauth://` URI the API returned.
pub(crate) fn app_of(enrolment: &Value) -> totp_rs::Totp {
    totp_rs::Totp::from_url(enrolment["otpauth_uri"].as_str().unwrap()).unwrap()
}

pub(crate) fn now() -> u64 {
    u64::try_from(chrono::Utc::now().timestamp()).unwrap()
}

/// The code of time step `step` (codes are named by step, not by the clock at the time of
/// use, so a test that crosses a step boundary means the same codes; the server accepts one
/// step of drift).
pub(crate) fn code_of(app: &totp_rs::Totp, step: u64) -> String {
    app.generate(step * 30).to_string()
}

/// A verified user with TOTP on, confirmed with the code of the step then current:
/// (address, session token, app, recovery codes). The app's `step` field is that step.
pub(crate) struct Enrolled {
    pub(crate) email: String,
    pub(crate) token: String,
    pub(crate) totp: totp_rs::Totp,
    pub(crate) codes: Vec<String>,
    pub(crate) step: u64,
}

pub(crate) async fn enrolled(app: &TestApp) -> Enrolled {
    let email = app.verified_user().await;
    let token = app.token(&email, PASSWORD).await;
    let res = app
        .post_auth(
            "/me/mfa/totp",
            &token,
            Some(&json!({ "password": PASSWORD })),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let enrolment: Value = res.json().await.unwrap();
    assert!(enrolment["qr_svg"].as_str().unwrap().starts_with("<?xml"));
    let totp = app_of(&enrolment);
    let step = now() / 30;
    let res = app
        .post_auth(
            "/me/mfa/totp/confirm",
            &token,
            Some(&json!({ "code": code_of(&totp, step) })),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    let codes: Vec<String> = body["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(codes.len(), 10);
    Enrolled {
        email,
        token,
        totp,
        codes,
        step,
    }
}

/// The first step: the right password answers `mfa_required` and no session.
async fn first_step(app: &TestApp, email: &str) -> String {
    let res = app.login(email, PASSWORD).await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["mfa_required"], json!(true), "{body}");
    assert!(
        body.get("session").is_none(),
        "no session before the second step: {body}"
    );
    body["mfa_token"].as_str().unwrap().to_owned()
}

async fn second_step(app: &TestApp, mfa_token: &str, code: &str) -> reqwest::Response {
    app.post(
        "/login/mfa",
        &json!({ "mfa_token": mfa_token, "code": code }),
    )
    .await
}

/// A session opened with the password alone (say, by someone who had it) ends when the
/// owner turns two-factor authentication on; the session that turned it on stays (ASVS
/// 7.4.3; found by the outside test: such a session still read `/me` and minted tokens).
async fn turning_totp_on_ends_the_sessions_opened_without_it(profile: Profile) {
    let app = TestApp::spawn(profile).await;
    let email = app.verified_user().await;
    let other = app.token(&email, PASSWORD).await;
    let token = app.token(&email, PASSWORD).await;
    let res = app
        .post_auth(
            "/me/mfa/totp",
            &token,
            Some(&json!({ "password": PASSWORD })),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let totp = app_of(&res.json().await.unwrap());
    let res = app
        .post_auth(
            "/me/mfa/totp/confirm",
            &token,
            Some(&json!({ "code": code_of(&totp, now() / 30) })),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(app.me(&other).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(app.me(&token).await.status(), StatusCode::OK);
    app.cleanup().await;
}

async fn two_step_login_with_totp_and_recovery_codes(profile: Profile) {
    let app = TestApp::spawn(profile).await;
    let Enrolled { email, codes, .. } = enrolled(&app).await;

    let mfa_token = first_step(&app, &email).await;
    let res = second_step(&app, &mfa_token, &codes[0]).await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    let session = body["session"]["token"].as_str().unwrap();
    assert_eq!(app.me(session).await.status(), StatusCode::OK);

    // A used recovery code is gone.
    let mfa_token = first_step(&app, &email).await;
    let res = second_step(&app, &mfa_token, &codes[0]).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(res).await, "invalid_second_factor");
    app.cleanup().await;
}

async fn a_replayed_totp_code_is_refused_also_in_parallel(profile: Profile) {
    let app = TestApp::spawn(profile).await;
    let Enrolled {
        email, totp, step, ..
    } = enrolled(&app).await;
    // The confirmation used its step: that code (or an earlier one) is a replay.
    let mfa_token = first_step(&app, &email).await;
    let res = second_step(&app, &mfa_token, &code_of(&totp, step)).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(res).await, "invalid_second_factor");
    // The next step's code works once: of parallel second steps of four logins (four
    // tokens) with it, exactly one gets a session (the last accepted step is a
    // compare-and-set in the store).
    let next = code_of(&totp, step + 1);
    let mut tokens = vec![mfa_token];
    for _ in 0..3 {
        tokens.push(first_step(&app, &email).await);
    }
    let answers =
        futures::future::join_all(tokens.iter().map(|t| second_step(&app, t, &next))).await;
    let ok = answers
        .iter()
        .filter(|r| r.status() == StatusCode::OK)
        .count();
    assert_eq!(
        ok,
        1,
        "{:?}",
        answers.iter().map(|r| r.status()).collect::<Vec<_>>()
    );
    assert!(answers
        .iter()
        .all(|r| [StatusCode::OK, StatusCode::UNAUTHORIZED].contains(&r.status())));
    let mfa_token = first_step(&app, &email).await;
    let res = second_step(&app, &mfa_token, &next).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    app.cleanup().await;
}

async fn guessing_the_second_step_hits_the_reauthentication_budget(profile: Profile) {
    let app = TestApp::spawn(profile).await;
    let Enrolled {
        email, totp, step, ..
    } = enrolled(&app).await;
    let mfa_token = first_step(&app, &email).await;
    let right = code_of(&totp, step + 1);
    let wrong = if right == "000000" {
        "111111"
    } else {
        "000000"
    };
    // Five wrong codes per account per 15 minutes (RATE_LIMIT_REAUTH_PER_USER), spent
    // before the check; the sixth guess is not checked.
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(second_step(&app, &mfa_token, wrong).await.status());
    }
    let mut want = vec![StatusCode::UNAUTHORIZED; 5];
    want.push(StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(statuses, want);
    // The right code is refused too once the budget is spent.
    let res = second_step(&app, &mfa_token, &right).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    app.cleanup().await;
}

async fn a_stolen_mfa_token_is_useless_from_another_client_and_after_use(profile: Profile) {
    let app = TestApp::spawn(profile).await;
    let Enrolled {
        email,
        totp,
        codes,
        step,
        ..
    } = enrolled(&app).await;
    let mfa_token = first_step(&app, &email).await;
    let thief = app.observed(
        reqwest::Client::builder()
            .user_agent("a thief's client")
            .build()
            .unwrap(),
    );
    let res = thief
        .post(app.url("/login/mfa"))
        .json(&json!({ "mfa_token": mfa_token, "code": codes[1] }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(res).await, "invalid_mfa_token");
    // The owner's client finishes; afterwards the token is worth nothing.
    let res = second_step(&app, &mfa_token, &code_of(&totp, step + 1)).await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = second_step(&app, &mfa_token, &codes[2]).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(res).await, "invalid_mfa_token");
    // Nor is a session token, a made-up token or garbage.
    for bogus in ["x".repeat(43), "not a token".to_owned()] {
        let res = second_step(&app, &bogus, &codes[2]).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    app.cleanup().await;
}

async fn change_password_asks_for_a_second_factor_and_turning_totp_off_ends_other_sessions(
    profile: Profile,
) {
    let app = TestApp::spawn(profile).await;
    let Enrolled {
        email,
        token,
        codes,
        ..
    } = enrolled(&app).await;
    let change = |factor: Option<&str>| {
        let mut body = json!({
            "current_password": PASSWORD,
            "new_password": "a brand new passphrase",
        });
        if let Some(f) = factor {
            body["second_factor"] = json!(f);
        }
        body
    };
    let res = app
        .post_auth("/change-password", &token, Some(&change(None)))
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(error_code(res).await, "second_factor_required");

    // A second session (logged in with a recovery code), then TOTP off from the first one.
    let mfa_token = first_step(&app, &email).await;
    let res = second_step(&app, &mfa_token, &codes[0]).await;
    let other: Value = res.json().await.unwrap();
    let other = other["session"]["token"].as_str().unwrap().to_owned();
    let res = app
        .client_delete_json(
            "/me/mfa/totp",
            &token,
            &json!({ "password": PASSWORD, "code": codes[1] }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.me(&other).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(app.me(&token).await.status(), StatusCode::OK);
    // The password alone logs in again, and changes it without a code.
    let res = app
        .post_auth("/change-password", &token, Some(&change(None)))
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    app.cleanup().await;
}

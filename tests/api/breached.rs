//! Breached passwords refused (ASVS 6.2.12): with a list configured, a new password on it is
//! refused wherever a password is set, before anything is stored; the list is asked with the
//! password's SHA-1 only; when it cannot be asked, the password is accepted.

use std::time::Duration;

use auth_core::PasswordSha1;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;

/// On the list this test writes.
const BREACHED: &str = "monkey-dragon-123456";
const GOOD: &str = "a passphrase nobody has used";

async fn refused_as_breached(res: reqwest::Response, field: &str) {
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "weak_password", "{body}");
    let why = body["error"]["fields"][field].as_str().unwrap_or_default();
    assert!(why.contains("breach"), "{body}");
}

/// A stranger who knows a breached password cannot get it onto an account: signup, change
/// and reset all refuse it, and nothing is stored or mailed by the refused request.
async fn breached_passwords_are_refused_wherever_a_password_is_set(profile: Profile) {
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("breached.txt");
    std::fs::write(
        &list,
        format!(
            "{}:1234\n",
            PasswordSha1::of_bytes(BREACHED.as_bytes()).to_hex()
        ),
    )
    .unwrap();
    let app = TestApp::spawn_with(
        profile,
        &[("BREACHED_PASSWORDS_FILE", list.to_str().unwrap())],
    )
    .await;

    let accounts = app.user_rows().await;
    let stranger = app.email();
    refused_as_breached(app.signup(&stranger, BREACHED).await, "password").await;
    assert_eq!(
        app.user_rows().await,
        accounts,
        "no account for a refused signup"
    );
    app.mail
        .assert_no_new_mail(&stranger, Duration::from_millis(300))
        .await;

    let owner = app.verified_user().await;
    let token = app.token(&owner, PASSWORD).await;
    let res = app
        .post_auth(
            "/change-password",
            &token,
            Some(&json!({"current_password": PASSWORD, "new_password": BREACHED})),
        )
        .await;
    refused_as_breached(res, "new_password").await;
    assert_eq!(app.login(&owner, PASSWORD).await.status(), StatusCode::OK);

    let before = app.mail.count_to(&owner);
    let res = app.post("/forgot-password", &json!({"email": owner})).await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let code = app.nth_code(&owner, before + 1).await;
    let reset =
        |password: &'static str| json!({"email": owner, "otp": code, "new_password": password});
    let res = app.post("/reset-password", &reset(BREACHED)).await;
    refused_as_breached(res, "new_password").await;
    // The code was not spent on the refused password.
    let res = app.post("/reset-password", &reset(GOOD)).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(app.login(&owner, GOOD).await.status(), StatusCode::OK);
    app.cleanup().await;
}

/// A range service that cannot be reached does not stop signups: the password is accepted and
/// the skipped check is logged (fail-open, as documented).
#[tokio::test]
async fn an_unreachable_range_service_lets_passwords_through_and_says_so() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{closed}/range/");
    let app = TestApp::spawn_with(
        Profile::Server,
        &[
            ("BREACHED_PASSWORDS_API", &url),
            ("BREACHED_PASSWORDS_TIMEOUT", "500ms"),
        ],
    )
    .await;
    let email = app.email();
    assert_eq!(
        app.signup(&email, BREACHED).await.status(),
        StatusCode::CREATED
    );
    assert!(
        captured_logs().contains("breached-password check skipped"),
        "the skipped check is logged"
    );
    app.cleanup().await;
}

crate::both_profiles!(breached_passwords_are_refused_wherever_a_password_is_set);

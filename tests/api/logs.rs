//! No password, code, token or session id ever appears in a log line.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;

async fn secrets_never_reach_the_logs(profile: Profile) {
    let app = TestApp::spawn(profile).await;
    let email = app.email();
    let password = format!("unique log canary {}", uuid::Uuid::new_v4().simple());
    assert_eq!(
        app.signup(&email, &password).await.status(),
        StatusCode::CREATED
    );
    let code = app.nth_code(&email, 1).await;
    assert_eq!(app.verify(&email, &code).await.status(), StatusCode::OK);
    let token = app.token(&email, &password).await;
    let list: Value = app
        .get_auth("/sessions", &token)
        .await
        .json()
        .await
        .unwrap();
    let session_id = list["sessions"][0]["id"].as_str().unwrap().to_owned();
    let res = app
        .delete_auth(&format!("/sessions/{session_id}"), &token)
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    app.post("/forgot-password", &json!({"email": email})).await;
    let reset_code = app.nth_code(&email, 2).await;
    let new_password = format!("another log canary {}", uuid::Uuid::new_v4().simple());
    let res = app
        .post(
            "/reset-password",
            &json!({"email": email, "otp": reset_code, "new_password": new_password}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);

    let logs = captured_logs();
    assert!(logs.contains("login succeeded"), "logs were captured");
    for (what, secret) in [
        ("password", password.as_str()),
        ("new password", new_password.as_str()),
        ("token", token.as_str()),
        ("session id", session_id.as_str()),
        ("session id (simple)", &session_id.replace('-', "")),
    ] {
        assert!(!logs.contains(secret), "the {what} appears in the logs");
    }
    // Codes are six digits and could collide with other numbers; check them in context.
    for c in [&code, &reset_code] {
        assert!(
            !logs.contains(&format!("\"{c}\"")),
            "a code appears in the logs"
        );
        assert!(
            !logs.contains(&format!("otp={c}")),
            "a code appears in the logs"
        );
    }
    app.cleanup().await;
}

crate::both_profiles!(secrets_never_reach_the_logs);

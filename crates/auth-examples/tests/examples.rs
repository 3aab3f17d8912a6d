//! Runs the examples: the lifecycle as a library function (on `block_on` and on Tokio: any
//! executor), and the axum app on a real socket, driven over HTTP with reqwest.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::sync::Arc;

use auth_core::{EmailAddress, OtpPurpose};
use auth_examples::lifecycle::EMAIL;
use auth_examples::web::{LoginView, MeView, UserView};
use auth_examples::{in_process_service, router, run_lifecycle, Step};
use reqwest::StatusCode;
use serde_json::json;

/// Checks every step of the lifecycle, in order.
fn check_lifecycle(steps: &[Step]) {
    let [signed_up, verified, logged_in, authenticated, changed, logged_out, reset_requested, reset, relogged] =
        steps
    else {
        panic!("expected 9 steps, got {}: {steps:#?}", steps.len());
    };

    let Step::SignedUp { user, code_mailed } = signed_up else {
        panic!("step 1 is {signed_up:?}");
    };
    assert_eq!(user.email.as_str(), EMAIL);
    assert!(!user.is_verified(), "a new account is unverified");
    assert!(code_mailed, "signup mails a verification code");
    let user_id = user.id;

    let Step::Verified { user } = verified else {
        panic!("step 2 is {verified:?}");
    };
    assert_eq!(user.id, user_id);
    assert!(user.is_verified(), "the mailed code verifies the address");

    let Step::LoggedIn { session } = logged_in else {
        panic!("step 3 is {logged_in:?}");
    };
    assert_eq!(session.user.id, user_id);
    assert!(session.expires_at > session.created_at);
    let session_id = session.id;

    let Step::Authenticated { session } = authenticated else {
        panic!("step 4 is {authenticated:?}");
    };
    assert_eq!(
        session.id, session_id,
        "the token resolves to the login's session"
    );
    assert_eq!(session.user.id, user_id);

    let Step::PasswordChanged {
        session_kept,
        old_password_accepted,
    } = changed
    else {
        panic!("step 5 is {changed:?}");
    };
    assert!(session_kept, "the session that changed the password stays");
    assert!(!old_password_accepted, "the old password no longer logs in");

    let Step::LoggedOutEverywhere {
        revoked,
        token_accepted,
    } = logged_out
    else {
        panic!("step 6 is {logged_out:?}");
    };
    assert_eq!(*revoked, 1, "the one live session is revoked");
    assert!(!token_accepted, "the token is dead after logout everywhere");

    let Step::ResetRequested { code_mailed } = reset_requested else {
        panic!("step 7 is {reset_requested:?}");
    };
    assert!(
        code_mailed,
        "forgot-password mails a reset code to a verified account"
    );

    let Step::PasswordReset { user } = reset else {
        panic!("step 8 is {reset:?}");
    };
    assert_eq!(user.id, user_id);

    let Step::LoggedInWithNewPassword {
        session,
        previous_password_accepted,
    } = relogged
    else {
        panic!("step 9 is {relogged:?}");
    };
    assert_eq!(session.user.id, user_id);
    assert_ne!(session.id, session_id, "a new session");
    assert!(
        !previous_password_accepted,
        "the password before the reset is dead"
    );
}

#[test]
fn the_lifecycle_runs_on_block_on_and_every_step_holds() {
    let mut printed = Vec::new();
    let steps = run_lifecycle(|step| printed.push(step.to_string())).expect("lifecycle");
    check_lifecycle(&steps);
    // The callback saw every step as it completed.
    assert_eq!(printed.len(), steps.len());
    assert!(printed[0].starts_with("signup: "), "{printed:?}");
}

#[tokio::test(flavor = "current_thread")]
async fn the_same_lifecycle_runs_on_a_tokio_runtime() {
    let (service, mail) = in_process_service().expect("set-up");
    let steps = auth_examples::lifecycle(&service, &mail, &mut |_| {})
        .await
        .expect("lifecycle");
    check_lifecycle(&steps);
}

/// The axum app on 127.0.0.1:0, as the example serves it (with the peer address).
async fn start_app() -> (String, auth_memory::CaptureMailer) {
    let (service, mail) = in_process_service().expect("set-up");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("local address");
    let app = router(Arc::new(service)).into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), mail)
}

#[tokio::test]
async fn the_axum_app_signs_up_verifies_logs_in_serves_me_and_logs_out() {
    let (base, mail) = start_app().await;
    let http = reqwest::Client::new();
    let email = "grace@example.com";
    let password = "lantern orchard 1843 velvet";

    // Signup: 201, unverified.
    let res = http
        .post(format!("{base}/signup"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let user: UserView = res.json().await.unwrap();
    assert_eq!(user.email, email);
    assert!(!user.verified);

    // Login before verifying: 401 invalid_credentials, like a wrong password (enumeration
    // protection is on by default).
    let res = http
        .post(format!("{base}/login"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_credentials");

    // Verify with the code from the mail: 200, verified.
    let code = mail
        .last_code_for(
            &EmailAddress::parse(email).unwrap(),
            OtpPurpose::VerifyEmail,
        )
        .expect("a verification code was mailed");
    let res = http
        .post(format!("{base}/verify"))
        .json(&json!({"email": email, "code": code.expose()}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let verified: UserView = res.json().await.unwrap();
    assert_eq!(
        verified,
        UserView {
            verified: true,
            ..user
        }
    );

    // Login: 200 with a bearer token.
    let res = http
        .post(format!("{base}/login"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let login: LoginView = res.json().await.unwrap();
    assert_eq!(login.user.id, verified.id);

    // /me with the token: the account and the session.
    let res = http
        .get(format!("{base}/me"))
        .bearer_auth(&login.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let me: MeView = res.json().await.unwrap();
    assert_eq!(me.user, verified);
    assert_eq!(me.expires_at, login.expires_at);

    // Logout: 204.
    let res = http
        .post(format!("{base}/logout"))
        .bearer_auth(&login.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);

    // /me with the revoked token: 401, WWW-Authenticate: Bearer, JSON error.
    let res = http
        .get(format!("{base}/me"))
        .bearer_auth(&login.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(res.headers()["www-authenticate"], "Bearer");
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthenticated");

    // And without any token.
    let res = http.get(format!("{base}/me")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_axum_app_maps_domain_errors() {
    let (base, _mail) = start_app().await;
    let http = reqwest::Client::new();
    let post =
        |path: &str, body: serde_json::Value| http.post(format!("{base}{path}")).json(&body).send();

    let res = post(
        "/signup",
        json!({"email": "not an address", "password": "x"}),
    )
    .await
    .unwrap();
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);

    let res = post(
        "/signup",
        json!({"email": "ada@example.com", "password": "password123"}),
    )
    .await
    .unwrap();
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "weak_password");

    let res = post(
        "/login",
        json!({"email": "nobody@example.com", "password": "lantern orchard 1843 velvet"}),
    )
    .await
    .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_credentials");

    let res = post(
        "/verify",
        json!({"email": "nobody@example.com", "code": "123456"}),
    )
    .await
    .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_otp");
}

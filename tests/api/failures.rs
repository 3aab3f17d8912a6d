//! Every failure row of the API contract.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;

fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

async fn signup_failures(profile: Profile) {
    // Taken addresses answer 409 only with enumeration protection off.
    let app = TestApp::spawn_with(profile, &[("ENUMERATION_PROTECTION", "false")]).await;
    let email = app.verified_user().await;

    let res = app.signup(&email, "another good passphrase").await;
    assert_eq!(res.status(), StatusCode::CONFLICT);
    assert_eq!(error_code(res).await, "email_taken");
    // case-insensitive
    let res = app
        .signup(&email.to_uppercase(), "another good passphrase")
        .await;
    assert_eq!(res.status(), StatusCode::CONFLICT);

    for bad in ["not-an-email", "", "a@b@c", "x\r\nBcc: evil@example.com"] {
        let res = app.signup(bad, PASSWORD).await;
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY, "{bad:?}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"]["code"], "invalid_email");
        assert!(body["error"]["fields"]["email"].is_string());
    }
    let fresh = app.email();
    for weak in [
        "short",
        "password123",
        "qwertyuiop",
        &fresh,
        &"x".repeat(129),
    ] {
        let res = app.signup(&fresh, weak).await;
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY, "{weak:?}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"]["code"], "weak_password");
        assert!(body["error"]["fields"]["password"].is_string());
    }
    // nothing was created for the refused signups
    let res = app.login(&fresh, PASSWORD).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    app.cleanup().await;
}

/// Each code of a pending account verifies the signup it was mailed for: the other signup's
/// code is still valid until one of them is used, and the account ends with the password of
/// the signup whose code was typed.
async fn repeated_signup_keeps_each_code_with_its_own_password(profile: Profile) {
    let app = TestApp::spawn_with(profile, &[("MAIL_COOLDOWN", "0")]).await;
    let email = app.email();
    assert_eq!(
        app.signup(&email, "stranger's password").await.status(),
        StatusCode::CREATED
    );
    let stranger_code = app.nth_code(&email, 1).await;
    assert_eq!(
        app.signup(&email, PASSWORD).await.status(),
        StatusCode::CREATED
    );
    let owner_code = app.nth_code(&email, 2).await;
    assert_eq!(
        app.verify(&email, &owner_code).await.status(),
        StatusCode::OK
    );
    // Verified now: the other code changes nothing (the account is verified either way).
    if stranger_code != owner_code {
        assert_eq!(
            app.verify(&email, &stranger_code).await.status(),
            StatusCode::OK
        );
    }
    assert_eq!(
        app.login(&email, "stranger's password").await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(app.login(&email, PASSWORD).await.status(), StatusCode::OK);
    app.cleanup().await;
}

async fn verify_otp_failures(profile: Profile) {
    let app = TestApp::spawn(profile).await;
    let email = app.email();
    app.signup(&email, PASSWORD).await;
    let code = app.nth_code(&email, 1).await;
    let wrong = if code == "000000" { "000001" } else { "000000" };

    let res = app.verify(&app.email(), &code).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(res).await, "invalid_otp", "unknown email");
    let res = app.verify(&email, "12ab56").await;
    assert_eq!(error_code(res).await, "invalid_otp", "malformed code");

    for _ in 0..5 {
        let res = app.verify(&email, wrong).await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
        assert_eq!(error_code(res).await, "invalid_otp");
    }
    // the sixth attempt fails even with the right code
    let res = app.verify(&email, &code).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(error_code(res).await, "too_many_attempts");
    app.cleanup().await;
}

async fn expired_code_is_refused(profile: Profile) {
    let app = TestApp::spawn_with(profile, &[("OTP_TTL", "1s")]).await;
    let email = app.email();
    app.signup(&email, PASSWORD).await;
    let code = app.nth_code(&email, 1).await;
    // The state here is time itself: the code's 1 s lifetime has to pass.
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let res = app.verify(&email, &code).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(res).await, "otp_expired");
    app.cleanup().await;
}

async fn resend_and_forgot_answer_the_same_for_every_address(profile: Profile) {
    let app = TestApp::spawn_with(profile, &[("MAIL_COOLDOWN", "2s")]).await;
    let known = app.verified_user().await;
    let unverified = app.email();
    app.signup(&unverified, PASSWORD).await;
    let unknown = app.email();

    let mut bodies = Vec::new();
    for email in [&known, &unknown] {
        let res = app.post("/forgot-password", &json!({"email": email})).await;
        assert_eq!(res.status(), StatusCode::ACCEPTED);
        bodies.push(res.bytes().await.unwrap());
    }
    assert_eq!(bodies[0], bodies[1]);
    app.nth_code(&known, 2).await; // the reset code reached the real account
    app.mail
        .assert_no_new_mail(&unknown, Duration::from_millis(300))
        .await;

    // resend: once the signup cooldown has passed, unknown and verified addresses get the same
    // 202; a second resend inside the cooldown is the same 202 for every address, known or not,
    // and mails nothing (ENUMERATION_PROTECTION, on by default, enforces cooldowns silently).
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let a = app.post("/resend-otp", &json!({"email": unknown})).await;
    let b = app.post("/resend-otp", &json!({"email": known})).await;
    assert_eq!(a.status(), StatusCode::ACCEPTED);
    assert_eq!(b.status(), StatusCode::ACCEPTED);
    assert_eq!(a.bytes().await.unwrap(), b.bytes().await.unwrap());
    assert_eq!(
        app.post("/resend-otp", &json!({"email": unverified}))
            .await
            .status(),
        StatusCode::ACCEPTED
    );
    app.nth_code(&unverified, 2).await; // a new code for the unverified account
    let mut inside = Vec::new();
    for email in [&unknown, &known, &unverified] {
        let res = app.post("/resend-otp", &json!({"email": email})).await;
        assert_eq!(res.status(), StatusCode::ACCEPTED, "{email}");
        inside.push(res.bytes().await.unwrap());
    }
    assert!(inside.windows(2).all(|w| w[0] == w[1]));
    app.mail
        .assert_no_new_mail(&unverified, Duration::from_millis(300))
        .await;
    assert_eq!(
        app.mail.count_to(&unverified),
        2,
        "no mail inside the cooldown"
    );
    let res = app
        .post("/forgot-password", &json!({"email": "nope"}))
        .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    app.cleanup().await;
}

async fn login_failures_do_not_tell_which_part_was_wrong(profile: Profile) {
    let app = TestApp::spawn(profile).await;
    let email = app.verified_user().await;
    let wrong_pw = app.login(&email, "not the password at all").await;
    let unknown = app.login(&app.email(), PASSWORD).await;
    assert_eq!(wrong_pw.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);
    let a: Value = wrong_pw.json().await.unwrap();
    let b: Value = unknown.json().await.unwrap();
    assert_eq!(a, b);
    assert_eq!(a["error"]["code"], "invalid_credentials");
    // exact password: no case folding, no truncation
    assert_eq!(
        app.login(&email, &PASSWORD.to_uppercase()).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.login(&email, &PASSWORD[..20]).await.status(),
        StatusCode::UNAUTHORIZED
    );
    // a token presented at login is never adopted
    let t1 = app.token(&email, PASSWORD).await;
    let res = app
        .client
        .post(app.url("/login"))
        .bearer_auth(&t1)
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let body: Value = res.json().await.unwrap();
    assert_ne!(body["session"]["token"].as_str().unwrap(), t1);
    app.cleanup().await;
}

async fn authenticated_endpoints_refuse_bad_tokens(profile: Profile) {
    let app = TestApp::spawn(profile).await;
    let garbage = "A".repeat(43);
    for (method, path) in [
        ("GET", "/me"),
        ("POST", "/me"),
        ("POST", "/logout"),
        ("POST", "/logout-all"),
        ("GET", "/sessions"),
        ("POST", "/change-password"),
    ] {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let none = app
            .client
            .request(m.clone(), app.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(none.status(), StatusCode::UNAUTHORIZED, "{method} {path}");
        assert_eq!(none.headers()["www-authenticate"], "Bearer");
        let bad = app
            .client
            .request(m.clone(), app.url(path))
            .bearer_auth(&garbage)
            .send()
            .await
            .unwrap();
        assert_eq!(bad.status(), StatusCode::UNAUTHORIZED, "{method} {path}");
        let malformed = app
            .client
            .request(m, app.url(path))
            .header("authorization", "Basic Zm9vOmJhcg==")
            .send()
            .await
            .unwrap();
        assert_eq!(
            malformed.status(),
            StatusCode::UNAUTHORIZED,
            "{method} {path}"
        );
    }
    app.cleanup().await;
}

async fn sessions_of_others_cannot_be_revoked(profile: Profile) {
    let app = TestApp::spawn(profile).await;
    let alice = app.verified_user().await;
    let bob = app.verified_user().await;
    let ta = app.token(&alice, PASSWORD).await;
    let tb = app.token(&bob, PASSWORD).await;
    let list: Value = app.get_auth("/sessions", &tb).await.json().await.unwrap();
    let bob_id = list["sessions"][0]["id"].as_str().unwrap().to_owned();
    for id in [
        bob_id.as_str(),
        "not-a-uuid",
        "00000000-0000-0000-0000-000000000000",
    ] {
        let res = app.delete_auth(&format!("/sessions/{id}"), &ta).await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{id}");
        assert_eq!(error_code(res).await, "not_found");
    }
    assert_eq!(app.me(&tb).await.status(), StatusCode::OK);
    app.cleanup().await;
}

async fn change_password_failures_change_nothing(profile: Profile) {
    let app = TestApp::spawn(profile).await;
    let email = app.verified_user().await;
    let t1 = app.token(&email, PASSWORD).await;
    let t2 = app.token(&email, PASSWORD).await;
    let res = app
        .post_auth(
            "/change-password",
            &t1,
            Some(&json!({"current_password": "wrong wrong wrong", "new_password": "a brand new passphrase"})),
        )
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(error_code(res).await, "invalid_credentials");
    let res = app
        .post_auth(
            "/change-password",
            &t1,
            Some(&json!({"current_password": PASSWORD, "new_password": "password123"})),
        )
        .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_code(res).await, "weak_password");
    assert_eq!(app.me(&t2).await.status(), StatusCode::OK);
    assert_eq!(app.login(&email, PASSWORD).await.status(), StatusCode::OK);
    app.cleanup().await;
}

async fn reset_password_failures(profile: Profile) {
    let app = TestApp::spawn(profile).await;
    let email = app.verified_user().await;
    let token = app.token(&email, PASSWORD).await;
    app.post("/forgot-password", &json!({"email": email})).await;
    let code = app.nth_code(&email, 2).await;
    let wrong = if code == "000000" { "000001" } else { "000000" };
    let res = app
        .post(
            "/reset-password",
            &json!({"email": email, "otp": wrong, "new_password": "a brand new passphrase"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(res).await, "invalid_otp");
    let res = app
        .post(
            "/reset-password",
            &json!({"email": email, "otp": code, "new_password": "qwertyuiop"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // the signup code's purpose is not reset: a verify code never resets
    assert_eq!(app.me(&token).await.status(), StatusCode::OK);
    assert_eq!(app.login(&email, PASSWORD).await.status(), StatusCode::OK);
    app.cleanup().await;
}

async fn malformed_requests_get_json_errors(profile: Profile) {
    let app = TestApp::spawn(profile).await;
    let post_raw = |path: &'static str, ct: &'static str, body: Vec<u8>| {
        app.client
            .post(app.url(path))
            .header("content-type", ct)
            .body(body)
            .send()
    };
    let res = post_raw("/signup", "application/json", b"{not json".to_vec())
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(res).await, "invalid_request");
    let res = post_raw(
        "/signup",
        "application/json",
        br#"{"email":"a@example.com"}"#.to_vec(),
    )
    .await
    .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let res = post_raw(
        "/signup",
        "application/json",
        br#"{"email":1,"password":"secret-value-xyz"}"#.to_vec(),
    )
    .await
    .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(!res.text().await.unwrap().contains("secret-value-xyz"));
    let res = post_raw("/signup", "text/plain", b"{}".to_vec())
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let big = format!(
        r#"{{"email":"a@example.com","password":"{}"}}"#,
        "x".repeat(20_000)
    );
    let res = post_raw("/signup", "application/json", big.into_bytes())
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(error_code(res).await, "payload_too_large");
    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    let res = post_raw("/login", "application/json", deep.into_bytes())
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);

    let res = app
        .client
        .get(app.url("/no-such-route"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_code(res).await, "not_found");
    let res = app.client.get(app.url("/signup")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(error_code(res).await, "method_not_allowed");
    app.cleanup().await;
}

async fn operations_endpoints_and_headers(profile: Profile) {
    let app = TestApp::spawn(profile).await;
    let res = app.client.get(app.url("/health")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    for (h, v) in [
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
        ("x-frame-options", "DENY"),
        ("cache-control", "no-store"),
    ] {
        assert_eq!(res.headers()[h], v, "{h}");
    }
    assert!(res.headers().contains_key("x-request-id"));
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["status"], "ok");

    let res = app.client.get(app.url("/ready")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);

    let res = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let doc: Value = res.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    for path in [
        "/signup",
        "/verify-otp",
        "/login",
        "/me",
        "/sessions/{id}",
        "/reset-password",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} missing");
    }
    let res = app.client.get(app.url("/docs/")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let html = res.text().await.unwrap();
    assert!(
        html.contains("swagger"),
        "docs page renders the API document"
    );
    assert!(!html.contains("https://"), "no CDN assets");
    app.cleanup().await;
}

async fn cookie_requests_from_foreign_origins_are_refused(profile: Profile) {
    let app = TestApp::spawn(profile).await;
    let email = app.verified_user().await;
    let res = app
        .post(
            "/login",
            &json!({"email": email, "password": PASSWORD, "transport": "cookie"}),
        )
        .await;
    let cookie = set_cookie(res.headers(), app.cookie_name).unwrap();
    let pair = cookie.split(';').next().unwrap().to_owned();
    let res = app
        .client
        .post(app.url("/logout"))
        .header("cookie", &pair)
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(error_code(res).await, "cross_site_request");
    let res = app
        .client
        .post(app.url("/logout"))
        .header("cookie", &pair)
        .header("origin", app.address.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let removal = set_cookie(res.headers(), app.cookie_name).unwrap();
    assert!(removal.contains("Max-Age=0"), "{removal}");
    app.cleanup().await;
}

async fn plain_http_cookie_is_named_session(profile: Profile) {
    let app = TestApp::spawn_with(profile, &[("COOKIE_SECURE", "false")]).await;
    let email = app.verified_user().await;
    let res = app
        .post(
            "/login",
            &json!({"email": email, "password": PASSWORD, "transport": "cookie"}),
        )
        .await;
    let cookie = set_cookie(res.headers(), "session").expect("cookie named session");
    assert!(!cookie.contains("Secure"));
    app.cleanup().await;
}

#[tokio::test]
async fn redis_down_gives_503_and_ready_names_it() {
    let port = closed_port();
    let url = format!("redis://127.0.0.1:{port}");
    let app = TestApp::spawn_with(
        Profile::Server,
        &[("REDIS_URL", &url), ("DEPENDENCY_TIMEOUT", "1s")],
    )
    .await;
    let res = app.me(&"A".repeat(43)).await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(res.headers().contains_key("retry-after"));
    assert_eq!(error_code(res).await, "service_unavailable");
    let res = app.client.get(app.url("/ready")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["checks"]["session_store"], "down");
    assert_eq!(body["checks"]["user_store"], "ok");
    app.cleanup().await;
}

async fn parallel_signups_and_parallel_code_use_have_one_winner(profile: Profile) {
    let app = TestApp::spawn(profile).await;
    let email = app.email();
    let attempts = (0..8).map(|_| app.signup(&email, PASSWORD));
    let statuses: Vec<StatusCode> = futures::future::join_all(attempts)
        .await
        .into_iter()
        .map(|r| r.status())
        .collect();
    let created = statuses
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    assert!(created >= 1, "{statuses:?}");
    assert!(
        statuses.iter().all(|s| [
            StatusCode::CREATED,
            StatusCode::CONFLICT,
            StatusCode::TOO_MANY_REQUESTS
        ]
        .contains(s)),
        "no 500 in a signup race: {statuses:?}"
    );
    // With enumeration protection on, a signup that finds the pending account stores its own
    // code (hidden answers cannot say "try later"), so racers may each mail one; the mail
    // budget of the address bounds them.
    let code = app.nth_code(&email, 1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mailed = app.mail.count_to(&email);
    assert!((1..=8).contains(&mailed), "{mailed} mails");
    let uses = (0..8).map(|_| app.verify(&email, &code));
    let ok = futures::future::join_all(uses)
        .await
        .into_iter()
        .filter(|r| r.status() == StatusCode::OK)
        .count();
    assert_eq!(ok, 1, "a code verifies exactly once");
    assert_eq!(app.login(&email, PASSWORD).await.status(), StatusCode::OK);
    app.cleanup().await;
}

crate::both_profiles!(
    signup_failures,
    repeated_signup_keeps_each_code_with_its_own_password,
    verify_otp_failures,
    expired_code_is_refused,
    resend_and_forgot_answer_the_same_for_every_address,
    login_failures_do_not_tell_which_part_was_wrong,
    authenticated_endpoints_refuse_bad_tokens,
    sessions_of_others_cannot_be_revoked,
    change_password_failures_change_nothing,
    reset_password_failures,
    malformed_requests_get_json_errors,
    operations_endpoints_and_headers,
    cookie_requests_from_foreign_origins_are_refused,
    plain_http_cookie_is_named_session,
    parallel_signups_and_parallel_code_use_have_one_winner
);

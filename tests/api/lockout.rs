//! Lockout and enumeration threats: strangers must not be able to lock the owner out (of the
//! password login from a known device, of login by emailed code, of a password reset), and
//! the unauthenticated answers must not tell new, pending and verified addresses apart.
//! Attackers and the owner are distinct machines: clients bound to their own 127.0.0.x.

use std::net::IpAddr;

use reqwest::{Response, StatusCode};
use serde_json::{json, Value};

use crate::helpers::*;

/// An HTTP client whose connections come from `127.0.0.{n}`.
fn machine(app: &TestApp, n: u8) -> ApiClient {
    app.observed(
        reqwest::Client::builder()
            .local_address(IpAddr::from([127, 0, 0, n]))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
    )
}

async fn post(app: &TestApp, client: &ApiClient, path: &str, body: &Value) -> Response {
    client.post(app.url(path)).json(body).send().await.unwrap()
}

/// Ten machines (127.0.0.10-19) guess the password of `email` five times each: fifty wrong
/// logins, the per-address login budget (50 per 30 minutes).
async fn distributed_password_guessing(app: &TestApp, email: &str) {
    for n in 10..20u8 {
        let attacker = machine(app, n);
        for _ in 0..5 {
            let res = post(
                app,
                &attacker,
                "/login",
                &json!({"email": email, "password": "attacker guess"}),
            )
            .await;
            assert!(
                [StatusCode::UNAUTHORIZED, StatusCode::TOO_MANY_REQUESTS].contains(&res.status()),
                "{}",
                res.status()
            );
        }
    }
}

/// The name of the device cookie: `__Host-device` next to a `__Host-session` cookie.
fn device_cookie_name(app: &TestApp) -> &'static str {
    if app.cookie_name.starts_with("__Host-") {
        "__Host-device"
    } else {
        "device"
    }
}

/// The value of a `Set-Cookie` named `name` (`name=value`), if the response sets one.
fn cookie_pair(res: &Response, name: &str) -> Option<String> {
    set_cookie(res.headers(), name).map(|c| c.split(';').next().unwrap().to_owned())
}

/// OWASP device cookies: fifty wrong passwords for one address from ten machines spend the
/// address's login budget (anonymous logins, the owner's included, get 429), but a login that
/// carries the owner's device credential (bearer: `device_token`; browser: the HttpOnly
/// `device` cookie) spends only that device's budget and gets in, from any address. A forged
/// or foreign credential is anonymous. Before device credentials: the owner got 429 too.
async fn owner_with_a_known_device_logs_in_during_a_distributed_attack(profile: Profile) {
    let app = TestApp::spawn(profile).await;
    let email = app.verified_user().await;
    let other = app.verified_user().await;

    // Yesterday: the owner logged in from a phone app (bearer) and from a browser (cookie).
    let phone = machine(&app, 2);
    let res = post(
        &app,
        &phone,
        "/login",
        &json!({"email": email, "password": PASSWORD}),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    let device_token = body["device_token"]
        .as_str()
        .expect("a bearer login returns a device_token")
        .to_owned();
    let browser = machine(&app, 3);
    let res = post(
        &app,
        &browser,
        "/login",
        &json!({"email": email, "password": PASSWORD, "transport": "cookie"}),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let device_cookie = cookie_pair(&res, device_cookie_name(&app)).expect("a device cookie");
    let raw = set_cookie(res.headers(), device_cookie_name(&app)).unwrap();
    assert!(raw.contains("HttpOnly"), "{raw}");
    let body: Value = res.json().await.unwrap();
    assert!(
        body.get("device_token").is_none(),
        "cookie transport: no token in the body"
    );
    // A device credential of another account, held by the attacker.
    let res = post(
        &app,
        &machine(&app, 9),
        "/login",
        &json!({"email": other, "password": PASSWORD}),
    )
    .await;
    let foreign: Value = res.json().await.unwrap();
    let foreign = foreign["device_token"].as_str().unwrap().to_owned();

    distributed_password_guessing(&app, &email).await;

    // Anonymous clients are stopped, the owner too when without a device (the attack works).
    let res = post(
        &app,
        &machine(&app, 30),
        "/login",
        &json!({"email": email, "password": PASSWORD}),
    )
    .await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let last = if device_token.ends_with('x') {
        "y"
    } else {
        "x"
    };
    for forged in [
        foreign.clone(),
        format!("{}{last}", &device_token[..device_token.len() - 1]),
    ] {
        let res = post(
            &app,
            &machine(&app, 31),
            "/login",
            &json!({"email": email, "password": "attacker guess", "device_token": forged}),
        )
        .await;
        assert_eq!(
            res.status(),
            StatusCode::TOO_MANY_REQUESTS,
            "a foreign or forged device credential is anonymous"
        );
    }

    // The phone, now on another network, with its device token: in.
    let res = post(
        &app,
        &machine(&app, 32),
        "/login",
        &json!({"email": email, "password": PASSWORD, "device_token": device_token}),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK, "the known device gets in");
    let body: Value = res.json().await.unwrap();
    let token = body["session"]["token"].as_str().unwrap();
    assert_eq!(app.me(token).await.status(), StatusCode::OK);
    assert!(body["device_token"].is_string(), "a renewed credential");

    // The browser with its device cookie: a typo, then in.
    for (password, expected) in [
        ("a typo in the password", StatusCode::UNAUTHORIZED),
        (PASSWORD, StatusCode::OK),
    ] {
        let res = browser
            .post(app.url("/login"))
            .header("cookie", &device_cookie)
            .json(&json!({"email": email, "password": password, "transport": "cookie"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), expected);
    }
    app.cleanup().await;
}

/// A way in no stranger can block: with the password login of the address locked by a
/// distributed attack and strangers guessing login codes, the owner asks for a login code and
/// logs in with it (bearer and cookie). The answer to asking is the same for every address.
/// Before: `POST /login/code` did not exist (404).
async fn owner_can_always_get_in_by_emailed_code(profile: Profile) {
    let app = TestApp::spawn_with(profile, &[("MAIL_COOLDOWN", "0")]).await;
    let email = app.verified_user().await;
    distributed_password_guessing(&app, &email).await;
    let owner = machine(&app, 40);
    let res = post(
        &app,
        &owner,
        "/login",
        &json!({"email": email, "password": PASSWORD}),
    )
    .await;
    assert_eq!(
        res.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "the attack works"
    );

    let res = post(&app, &owner, "/login/code", &json!({"email": email})).await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let known: Value = res.json().await.unwrap();
    let res = post(&app, &owner, "/login/code", &json!({"email": app.email()})).await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let unknown: Value = res.json().await.unwrap();
    assert_eq!(known, unknown, "the same answer for an unknown address");
    let code = app.nth_code(&email, 2).await;

    // Strangers guess login codes from four machines.
    for n in 50..54u8 {
        let attacker = machine(&app, n);
        for guess in 0..5u32 {
            let otp = format!("{:06}", 100_000 + guess * 7 + u32::from(n));
            if otp == code {
                continue;
            }
            let res = post(
                &app,
                &attacker,
                "/login/code/verify",
                &json!({"email": email, "otp": otp}),
            )
            .await;
            assert!(
                [StatusCode::BAD_REQUEST, StatusCode::TOO_MANY_REQUESTS].contains(&res.status()),
                "{}",
                res.status()
            );
        }
    }

    let res = post(
        &app,
        &owner,
        "/login/code/verify",
        &json!({"email": email, "otp": code}),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK, "the owner gets in by code");
    let body: Value = res.json().await.unwrap();
    let token = body["session"]["token"].as_str().unwrap();
    assert_eq!(app.me(token).await.status(), StatusCode::OK);
    assert!(body["device_token"].is_string());
    // The code works once. (Refused as an invalid code, or, since the strangers above spent
    // the address's budget for checks without a live code, as too many requests.)
    let res = post(
        &app,
        &owner,
        "/login/code/verify",
        &json!({"email": email, "otp": code}),
    )
    .await;
    assert!(
        [StatusCode::BAD_REQUEST, StatusCode::TOO_MANY_REQUESTS].contains(&res.status()),
        "{}",
        res.status()
    );

    // A browser: the session in a cookie, never in the body.
    let res = post(&app, &owner, "/login/code", &json!({"email": email})).await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let code = app.nth_code(&email, 3).await;
    let res = post(
        &app,
        &owner,
        "/login/code/verify",
        &json!({"email": email, "otp": code, "transport": "cookie"}),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let session = cookie_pair(&res, app.cookie_name).expect("a session cookie");
    assert!(cookie_pair(&res, device_cookie_name(&app)).is_some());
    let body: Value = res.json().await.unwrap();
    assert!(body["session"].get("token").is_none());
    let res = app.with_cookie(reqwest::Method::GET, "/me", &session).await;
    assert_eq!(res.status(), StatusCode::OK);
    app.cleanup().await;
}

/// Twenty bogus reset codes from four machines do not use up the owner's attempts: the owner
/// (the client that asked for the code) still resets with it, and can ask for a new code and
/// use that one too. Before: the shared attempt budget of the codes was dead (429
/// `too_many_attempts`), and so was the address's reset budget.
async fn strangers_guesses_do_not_kill_the_owners_reset(profile: Profile) {
    let app = TestApp::spawn_with(profile, &[("MAIL_COOLDOWN", "0")]).await;
    let email = app.verified_user().await;
    let owner = machine(&app, 60);
    let res = post(&app, &owner, "/forgot-password", &json!({"email": email})).await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let code = app.nth_code(&email, 2).await;

    let mut refused = 0;
    for n in 61..65u8 {
        let attacker = machine(&app, n);
        for guess in 0..5u32 {
            let otp = format!("{:06}", 200_000 + guess * 11 + u32::from(n));
            if otp == code {
                continue;
            }
            let body = json!({"email": email, "otp": otp, "new_password": "attacker passphrase"});
            let res = post(&app, &attacker, "/reset-password", &body).await;
            match res.status() {
                StatusCode::BAD_REQUEST => {}
                StatusCode::TOO_MANY_REQUESTS => refused += 1,
                other => panic!("unexpected {other}"),
            }
        }
    }
    assert!(refused > 0, "the strangers' own budget stops them");

    let body = json!({"email": email, "otp": code, "new_password": "the owner's new passphrase"});
    let res = post(&app, &owner, "/reset-password", &body).await;
    assert_eq!(res.status(), StatusCode::OK, "the owner's code still works");

    // And the owner can always ask for a new code, and use it.
    let res = post(&app, &owner, "/forgot-password", &json!({"email": email})).await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let code = app.nth_code(&email, 4).await;
    let body = json!({"email": email, "otp": code, "new_password": "yet another passphrase"});
    let res = post(&app, &owner, "/reset-password", &body).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        app.login(&email, "yet another passphrase").await.status(),
        StatusCode::OK
    );
    app.cleanup().await;
}

/// Status and body of a response, with the values that are random by design (ids) and the
/// clock (timestamps) replaced by their kind.
async fn shape(res: Response) -> (StatusCode, Value) {
    let status = res.status();
    let mut body: Value = res.json().await.unwrap();
    if let Some(user) = body.get_mut("user") {
        user["id"] = json!("<uuid>");
        user["created_at"] = json!("<timestamp>");
        user["email"] = json!("<email>");
    }
    (status, body)
}

/// With the default settings, signup (twice in a row), resend-otp, forgot-password and
/// login-by-code answer identically for a new, a pending and a verified address, and a
/// pending account's id and signup time never come back. Before: ENUMERATION_PROTECTION was
/// off by default (409 for a verified address), a repeated signup answered 429 inside the
/// cooldown or the pending account's real id and created_at, and resend-otp 429 right after a
/// signup but 202 for an unknown address.
async fn signup_answers_are_identical_for_new_pending_and_verified(profile: Profile) {
    let app = TestApp::spawn(profile).await;
    let verified = app.verified_user().await;
    let pending = app.email();
    let res = app.signup(&pending, PASSWORD).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let real: Value = res.json().await.unwrap();
    let new = app.email();

    let mut answers = Vec::new();
    for email in [&new, &pending, &verified] {
        let mut seen = Vec::new();
        for _ in 0..2 {
            let res = app.signup(email, PASSWORD).await;
            let status = res.status();
            let body: Value = res.json().await.unwrap();
            assert_ne!(
                body["user"]["id"], real["user"]["id"],
                "never the pending id"
            );
            assert_ne!(
                body["user"]["created_at"], real["user"]["created_at"],
                "never the pending signup time"
            );
            assert_eq!(body["user"]["email_verified"], json!(false));
            seen.push((status, {
                let mut b = body;
                b["user"]["id"] = json!("<uuid>");
                b["user"]["created_at"] = json!("<timestamp>");
                b["user"]["email"] = json!("<email>");
                b
            }));
        }
        for path in ["/resend-otp", "/forgot-password", "/login/code"] {
            let res = app.post(path, &json!({"email": email})).await;
            seen.push(shape(res).await);
        }
        answers.push(seen);
    }
    assert_eq!(answers[0][0].0, StatusCode::CREATED);
    assert_eq!(answers[0], answers[1], "new and pending answer alike");
    assert_eq!(answers[0], answers[2], "new and verified answer alike");
    for (status, _) in &answers[0][2..] {
        assert_eq!(*status, StatusCode::ACCEPTED);
    }
    app.cleanup().await;
}

/// One IPv6 host usually owns a whole /64: two addresses of one /64 (behind a trusted proxy)
/// spend one per-IP budget, another /64 has its own. (The rule lived in the core already; this
/// is its end-to-end proof.)
async fn ipv6_neighbours_share_a_budget(profile: Profile) {
    let app = TestApp::spawn_with(
        profile,
        &[
            ("TRUSTED_PROXIES", "127.0.0.1"),
            ("RATE_LIMIT_FORGOT_PASSWORD_PER_IP", "2/1h"),
        ],
    )
    .await;
    let ask = |from: &'static str| {
        let app = &app;
        let body = json!({"email": app.email()});
        async move {
            app.client
                .post(app.url("/forgot-password"))
                .header("x-forwarded-for", from)
                .json(&body)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(ask("2001:db8::1").await, StatusCode::ACCEPTED);
    assert_eq!(ask("2001:db8::1").await, StatusCode::ACCEPTED);
    assert_eq!(
        ask("2001:db8::2").await,
        StatusCode::TOO_MANY_REQUESTS,
        "a neighbour in the same /64 shares the budget"
    );
    assert_eq!(
        ask("2001:db8:0:1::1").await,
        StatusCode::ACCEPTED,
        "another /64 has its own"
    );
    app.cleanup().await;
}

/// Signing up someone's address with a password of one's own, then logging in with it, must
/// not tell whether the address already had a verified account: the answer is the same 401
/// whether the signup created a pending account (whose password the attacker chose) or the
/// address was verified (whose password the attacker does not know). Failed before: 403
/// `email_not_verified` for the first, 401 for the second.
async fn signup_then_login_does_not_tell_a_verified_address(profile: Profile) {
    let app = TestApp::spawn(profile).await;
    let owner = app.verified_user().await;
    let fresh = app.email();
    let chosen = "the attacker's own passphrase";
    let mut answers = Vec::new();
    for address in [&owner, &fresh] {
        assert_eq!(
            app.signup(address, chosen).await.status(),
            StatusCode::CREATED
        );
        let res = app.login(address, chosen).await;
        let status = res.status();
        let body: serde_json::Value = res.json().await.unwrap();
        answers.push((status, body));
    }
    assert_eq!(answers[0].0, StatusCode::UNAUTHORIZED);
    assert_eq!(answers[0], answers[1], "verified vs new address");
    assert_eq!(answers[1].1["error"]["code"], "invalid_credentials");
    app.cleanup().await;
}

crate::both_profiles!(
    signup_then_login_does_not_tell_a_verified_address,
    owner_with_a_known_device_logs_in_during_a_distributed_attack,
    owner_can_always_get_in_by_emailed_code,
    strangers_guesses_do_not_kill_the_owners_reset,
    signup_answers_are_identical_for_new_pending_and_verified,
    ipv6_neighbours_share_a_budget,
);

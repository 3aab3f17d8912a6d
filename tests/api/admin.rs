//! Administration (ASVS 7.4.2, 7.4.5): who may use `/admin/...`, the privilege window, and what
//! an administrator's changes do to the other accounts. One test per threat or rule.

use std::net::IpAddr;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::*;

/// Makes `email`'s account an administrator behind the API's back (what `auth-http admin
/// promote` does).
async fn promote(app: &TestApp, email: &str) {
    let sql = format!("UPDATE users SET role = 'admin' WHERE email = '{email}'");
    app.execute_sql(&sql, &sql).await;
}

/// A verified administrator, logged in, with the privilege window open: (address, token).
async fn admin(app: &TestApp) -> (String, String) {
    let email = app.verified_user().await;
    promote(app, &email).await;
    let token = app.token(&email, PASSWORD).await;
    let res = app
        .post_auth(
            "/admin/reauth",
            &token,
            Some(&json!({"password": PASSWORD})),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    (email, token)
}

/// Waits for a mail to `to` whose subject contains `words`.
async fn notice(app: &TestApp, to: &str, words: &str) {
    let deadline = tokio::time::Instant::now() + MAIL_WAIT;
    while !app
        .mail
        .messages_to(to)
        .iter()
        .any(|m| m.subject().contains(words))
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no mail to {to} saying {words:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The public id of the session behind `token`.
async fn session_id(app: &TestApp, token: &str) -> String {
    let page: Value = app.get_auth("/sessions", token).await.json().await.unwrap();
    page["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["current"] == true)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn user_id(app: &TestApp, token: &str) -> String {
    let me: Value = app.me(token).await.json().await.unwrap();
    me["user"]["id"].as_str().unwrap().to_owned()
}

async fn send(app: &TestApp, method: Method, path: &str, token: Option<&str>) -> reqwest::Response {
    let mut req = app.client.request(method.clone(), app.url(path));
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    if path.ends_with("/role") {
        req = req.json(&json!({"role": "admin"}));
    } else if path.ends_with("/reauth") {
        req = req.json(&json!({"password": PASSWORD}));
    }
    req.send().await.unwrap()
}

/// Every administrative route, for the account `id`.
fn routes(id: &str) -> Vec<(Method, String)> {
    let session = uuid::Uuid::new_v4();
    vec![
        (Method::POST, "/admin/reauth".to_owned()),
        (Method::GET, "/admin/users".to_owned()),
        (Method::GET, format!("/admin/users/{id}")),
        (Method::DELETE, format!("/admin/users/{id}")),
        (Method::POST, format!("/admin/users/{id}/disable")),
        (Method::POST, format!("/admin/users/{id}/enable")),
        (Method::PUT, format!("/admin/users/{id}/role")),
        (
            Method::POST,
            format!("/admin/users/{id}/resend-verification"),
        ),
        (Method::DELETE, format!("/admin/users/{id}/sessions")),
        (
            Method::DELETE,
            format!("/admin/users/{id}/sessions/{session}"),
        ),
        (Method::DELETE, format!("/admin/users/{id}/mfa")),
        (Method::GET, format!("/admin/users/{id}/events")),
    ]
}

/// ASVS 4.1 / 7.4.5: no administrative route answers anyone but an administrator: 401 without
/// a session, 403 `forbidden` for an ordinary account, which changes nothing.
async fn admin_routes_refuse_anonymous_and_ordinary_accounts(profile: Profile) {
    let app = TestApp::spawn(profile).await;
    let victim = app.verified_user().await;
    let victim_token = app.token(&victim, PASSWORD).await;
    let victim_id = user_id(&app, &victim_token).await;
    let user = app.verified_user().await;
    let user_token = app.token(&user, PASSWORD).await;

    for (method, path) in routes(&victim_id) {
        let res = send(&app, method.clone(), &path, None).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{method} {path}");
        let res = send(&app, method.clone(), &path, Some(&user_token)).await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{method} {path}");
        assert_eq!(error_code(res).await, "forbidden", "{method} {path}");
    }
    assert_eq!(app.me(&victim_token).await.status(), StatusCode::OK);
    assert_eq!(app.login(&victim, PASSWORD).await.status(), StatusCode::OK);
    app.cleanup().await;
}

/// A stolen administrator session alone is not enough: every administrative request needs the
/// password given again in this session within `ADMIN_REAUTH_WINDOW`; a wrong password opens
/// nothing, and the window closes on time.
async fn admin_requests_need_a_recent_password(profile: Profile) {
    let app = TestApp::spawn_with(profile, &[("ADMIN_REAUTH_WINDOW", "2s")]).await;
    let email = app.verified_user().await;
    promote(&app, &email).await;
    let token = app.token(&email, PASSWORD).await;

    let res = app.get_auth("/admin/users", &token).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(error_code(res).await, "reauthentication_required");

    let wrong = json!({"password": "not the password at all"});
    let res = app.post_auth("/admin/reauth", &token, Some(&wrong)).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(error_code(res).await, "invalid_credentials");
    let res = app.get_auth("/admin/users", &token).await;
    assert_eq!(error_code(res).await, "reauthentication_required");

    let right = json!({"password": PASSWORD});
    let res = app.post_auth("/admin/reauth", &token, Some(&right)).await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert!(body["privileged_until"].is_string());
    assert_eq!(
        app.get_auth("/admin/users", &token).await.status(),
        StatusCode::OK
    );

    // Another session of the same administrator has no window of its own.
    let other = app.token(&email, PASSWORD).await;
    let res = app.get_auth("/admin/users", &other).await;
    assert_eq!(error_code(res).await, "reauthentication_required");

    // The window closes: poll until refused, within a deadline well past 2 s.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let res = app.get_auth("/admin/users", &token).await;
        if res.status() == StatusCode::FORBIDDEN {
            assert_eq!(error_code(res).await, "reauthentication_required");
            break;
        }
        assert_eq!(res.status(), StatusCode::OK);
        assert!(
            tokio::time::Instant::now() < deadline,
            "the privilege window never closed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    app.cleanup().await;
}

/// ASVS 6.3 / 7.4.2: a stolen administrator session and password are not enough when the
/// administrator has two-factor authentication on: the privilege window also needs a current
/// code; a missing or wrong one opens nothing (and a wrong one spends the re-authentication
/// budget like a wrong password).
async fn admin_privilege_window_needs_the_second_factor_when_totp_is_on(profile: Profile) {
    let app = TestApp::spawn(profile).await;
    let enrolled = crate::mfa::enrolled(&app).await;
    promote(&app, &enrolled.email).await;
    let token = &enrolled.token;

    let res = app
        .post_auth("/admin/reauth", token, Some(&json!({"password": PASSWORD})))
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(error_code(res).await, "second_factor_required");
    let res = app.get_auth("/admin/users", token).await;
    assert_eq!(error_code(res).await, "reauthentication_required");

    // A wrong code (the recovery codes are 10 characters; a TOTP code is 6 digits).
    let right = crate::mfa::code_of(&enrolled.totp, crate::mfa::now() / 30);
    let wrong = if right == "000000" {
        "111111"
    } else {
        "000000"
    };
    let res = app
        .post_auth(
            "/admin/reauth",
            token,
            Some(&json!({"password": PASSWORD, "second_factor": wrong})),
        )
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(error_code(res).await, "invalid_second_factor");
    let res = app.get_auth("/admin/users", token).await;
    assert_eq!(error_code(res).await, "reauthentication_required");

    // The code of the enrolment step was spent at confirmation: a recovery code works.
    let res = app
        .post_auth(
            "/admin/reauth",
            token,
            Some(&json!({"password": PASSWORD, "second_factor": enrolled.codes[0]})),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        app.get_auth("/admin/users", token).await.status(),
        StatusCode::OK
    );
    app.cleanup().await;
}

/// A demoted administrator loses access at once, even with an open window: the role is read
/// from the user store on every request, not from the session.
async fn a_demoted_admin_loses_access_at_once(profile: Profile) {
    let app = TestApp::spawn(profile).await;
    let (_, first) = admin(&app).await;
    let (second_email, second) = admin(&app).await;
    let second_id = user_id(&app, &second).await;

    let res = app
        .client
        .request(
            Method::PUT,
            app.url(&format!("/admin/users/{second_id}/role")),
        )
        .bearer_auth(&first)
        .json(&json!({"role": "user"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let res = app.get_auth("/admin/users", &second).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(error_code(res).await, "forbidden");
    notice(&app, &second_email, "no longer an administrator").await;

    // Made an administrator again, the old session does not find its window still open.
    let res = app
        .client
        .request(
            Method::PUT,
            app.url(&format!("/admin/users/{second_id}/role")),
        )
        .bearer_auth(&first)
        .json(&json!({"role": "admin"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let res = app.get_auth("/admin/users", &second).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(error_code(res).await, "reauthentication_required");

    // Nobody changes their own role (or disables or deletes their own account).
    let first_id = user_id(&app, &first).await;
    let res = app
        .client
        .request(
            Method::PUT,
            app.url(&format!("/admin/users/{first_id}/role")),
        )
        .bearer_auth(&first)
        .json(&json!({"role": "user"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CONFLICT);
    assert_eq!(error_code(res).await, "own_account");
    let res = app
        .post_auth(&format!("/admin/users/{first_id}/disable"), &first, None)
        .await;
    assert_eq!(error_code(res).await, "own_account");
    let res = app
        .client
        .request(
            Method::PUT,
            app.url(&format!("/admin/users/{second_id}/role")),
        )
        .bearer_auth(&first)
        .json(&json!({"role": "root"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    app.cleanup().await;
}

/// The account list filters by address prefix, state and role, pages with a cursor and bounds
/// its page; one account shows its live sessions.
async fn an_admin_finds_users_and_sees_their_sessions(profile: Profile) {
    let app = TestApp::spawn(profile).await;
    let (_, token) = admin(&app).await;
    let tag = uuid::Uuid::new_v4().simple().to_string();
    let mut emails = Vec::new();
    for label in ["a", "b", "c"] {
        let email = format!("find-{tag}-{label}@example.com");
        assert_eq!(
            app.signup(&email, PASSWORD).await.status(),
            StatusCode::CREATED
        );
        emails.push(email);
    }
    let code = app.nth_code(&emails[0], 1).await;
    assert_eq!(app.verify(&emails[0], &code).await.status(), StatusCode::OK);
    let session = app.token(&emails[0], PASSWORD).await;

    let list = |query: String| {
        let app = &app;
        let token = token.clone();
        async move {
            let res = app.get_auth(&format!("/admin/users?{query}"), &token).await;
            assert_eq!(res.status(), StatusCode::OK, "{query}");
            res.json::<Value>().await.unwrap()
        }
    };
    let prefix = format!("email=FIND-{tag}-");
    let page = list(format!("{prefix}&limit=2")).await;
    let got: Vec<&str> = page["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["email"].as_str().unwrap())
        .collect();
    assert_eq!(got, [emails[0].as_str(), emails[1].as_str()]);
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    let rest = list(format!("{prefix}&limit=2&cursor={cursor}")).await;
    assert_eq!(rest["users"][0]["email"], emails[2].as_str());
    assert!(rest.get("next_cursor").is_none());

    let active = list(format!("{prefix}&state=active")).await;
    assert_eq!(active["users"].as_array().unwrap().len(), 1);
    assert_eq!(active["users"][0]["state"], "active");
    assert_eq!(active["users"][0]["role"], "user");
    let unverified = list(format!("{prefix}&state=unverified")).await;
    assert_eq!(unverified["users"].as_array().unwrap().len(), 2);
    let admins = list(format!("{prefix}&role=admin")).await;
    assert!(admins["users"].as_array().unwrap().is_empty());

    for bad in [
        "limit=0",
        "limit=101",
        "state=gone",
        "role=root",
        "cursor=nope",
    ] {
        let res = app.get_auth(&format!("/admin/users?{bad}"), &token).await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{bad}");
    }

    let id = active["users"][0]["id"].as_str().unwrap();
    let res = app.get_auth(&format!("/admin/users/{id}"), &token).await;
    assert_eq!(res.status(), StatusCode::OK);
    let one: Value = res.json().await.unwrap();
    assert_eq!(one["user"]["email"], emails[0].as_str());
    assert_eq!(one["sessions"].as_array().unwrap().len(), 1);
    assert_eq!(app.me(&session).await.status(), StatusCode::OK);
    let missing = uuid::Uuid::new_v4();
    let res = app
        .get_auth(&format!("/admin/users/{missing}"), &token)
        .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    app.cleanup().await;
}

/// ASVS 7.4.5: an administrator ends one session of a user, or all of them; the tokens stop
/// working at once.
async fn an_admin_ends_one_or_every_session_of_a_user(profile: Profile) {
    let app = TestApp::spawn(profile).await;
    let (_, token) = admin(&app).await;
    let email = app.verified_user().await;
    let first = app.token(&email, PASSWORD).await;
    let second = app.token(&email, PASSWORD).await;
    let third = app.token(&email, PASSWORD).await;
    let id = user_id(&app, &first).await;

    let one: Value = app
        .get_auth(&format!("/admin/users/{id}"), &token)
        .await
        .json()
        .await
        .unwrap();
    let first_session = session_id(&app, &first).await;
    assert_eq!(one["sessions"].as_array().unwrap().len(), 3);

    let res = app
        .delete_auth(
            &format!("/admin/users/{id}/sessions/{first_session}"),
            &token,
        )
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.me(&first).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(app.me(&second).await.status(), StatusCode::OK);
    let res = app
        .delete_auth(
            &format!("/admin/users/{id}/sessions/{first_session}"),
            &token,
        )
        .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);

    let res = app
        .delete_auth(&format!("/admin/users/{id}/sessions"), &token)
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["revoked"], 2);
    assert_eq!(app.me(&second).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(app.me(&third).await.status(), StatusCode::UNAUTHORIZED);
    // The administrator's own session is untouched.
    assert_eq!(app.me(&token).await.status(), StatusCode::OK);
    app.cleanup().await;
}

/// ASVS 7.4.2: disabling an account ends every session at once and refuses every way back in
/// (password, login code) with 403 `account_disabled` until it is enabled; the owner is
/// mailed both times.
async fn a_disabled_account_loses_its_sessions_and_cannot_log_in(profile: Profile) {
    let app = TestApp::spawn(profile).await;
    let (_, token) = admin(&app).await;
    let email = app.verified_user().await;
    let session = app.token(&email, PASSWORD).await;
    let id = user_id(&app, &session).await;

    let res = app
        .post_auth(&format!("/admin/users/{id}/disable"), &token, None)
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.me(&session).await.status(), StatusCode::UNAUTHORIZED);
    let res = app.login(&email, PASSWORD).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(error_code(res).await, "account_disabled");
    // A wrong password still says only "invalid credentials".
    let res = app.login(&email, "not the password at all").await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

    // No way back in by a mailed code either: the answers are the usual ones (they must not
    // tell the account's state), but no login or reset code is mailed while it is disabled.
    let res = app.post("/login/code", &json!({"email": email})).await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let res = app.post("/forgot-password", &json!({"email": email})).await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    notice(&app, &email, "was disabled").await;

    let listed: Value = app
        .get_auth(&format!("/admin/users/{id}"), &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["user"]["state"], "disabled");
    assert!(listed["sessions"].as_array().unwrap().is_empty());

    let res = app
        .post_auth(&format!("/admin/users/{id}/enable"), &token, None)
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.login(&email, PASSWORD).await.status(), StatusCode::OK);
    notice(&app, &email, "enabled again").await;
    // The couriers take the oldest mail first: had a code been queued while the account was
    // disabled, it would have arrived before this notice.
    let codes: Vec<String> = app
        .mail
        .messages_to(&email)
        .iter()
        .map(|m| m.subject())
        .filter(|s| s.contains("login code") || s.contains("password reset code"))
        .collect();
    assert!(
        codes.is_empty(),
        "codes mailed to a disabled account: {codes:?}"
    );
    app.cleanup().await;
}

/// ASVS 7.4.2: a deleted account's sessions end, its password no longer works, its owner is
/// told; the address is free again.
async fn an_admin_deletes_a_user(profile: Profile) {
    let app = TestApp::spawn(profile).await;
    let (_, token) = admin(&app).await;
    let email = app.verified_user().await;
    let session = app.token(&email, PASSWORD).await;
    let id = user_id(&app, &session).await;

    let res = app.delete_auth(&format!("/admin/users/{id}"), &token).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.me(&session).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.login(&email, PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let res = app.delete_auth(&format!("/admin/users/{id}"), &token).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    notice(&app, &email, "was deleted").await;
    assert_eq!(
        app.signup(&email, PASSWORD).await.status(),
        StatusCode::CREATED
    );
    app.cleanup().await;
}

/// Inside the address's mail cooldown an administrator's resend mails nothing, and says so:
/// 429 with `Retry-After`, not 202 (the administrator knows the account exists, so the
/// enumeration-safe silence of the anonymous resend is not owed). Before, it answered 202.
async fn an_admin_resend_inside_the_mail_cooldown_says_nothing_was_sent(profile: Profile) {
    let app = TestApp::spawn_with(profile, &[("MAIL_COOLDOWN", "60s")]).await;
    let (_, token) = admin(&app).await;
    let email = app.email();
    assert_eq!(
        app.signup(&email, PASSWORD).await.status(),
        StatusCode::CREATED
    );
    app.nth_code(&email, 1).await;
    let listed: Value = app
        .get_auth(&format!("/admin/users?email={email}"), &token)
        .await
        .json()
        .await
        .unwrap();
    let id = listed["users"][0]["id"].as_str().unwrap().to_owned();
    let res = app
        .post_auth(
            &format!("/admin/users/{id}/resend-verification"),
            &token,
            None,
        )
        .await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert_eq!(error_code(res).await, "too_many_requests");
    app.mail
        .assert_no_new_mail(&email, Duration::from_millis(300))
        .await;
    app.cleanup().await;
}

/// An administrator resends the verification code of a pending account (and only of one).
async fn an_admin_resends_a_verification_code(profile: Profile) {
    let app = TestApp::spawn_with(profile, &[("MAIL_COOLDOWN", "0")]).await;
    let (_, token) = admin(&app).await;
    let email = app.email();
    assert_eq!(
        app.signup(&email, PASSWORD).await.status(),
        StatusCode::CREATED
    );
    app.nth_code(&email, 1).await;
    let listed: Value = app
        .get_auth(&format!("/admin/users?email={email}"), &token)
        .await
        .json()
        .await
        .unwrap();
    let id = listed["users"][0]["id"].as_str().unwrap().to_owned();

    let res = app
        .post_auth(
            &format!("/admin/users/{id}/resend-verification"),
            &token,
            None,
        )
        .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let code = app.nth_code(&email, 2).await;
    assert_eq!(app.verify(&email, &code).await.status(), StatusCode::OK);
    let res = app
        .post_auth(
            &format!("/admin/users/{id}/resend-verification"),
            &token,
            None,
        )
        .await;
    assert_eq!(res.status(), StatusCode::CONFLICT);
    assert_eq!(error_code(res).await, "already_verified");
    app.cleanup().await;
}

/// ASVS 7.4.2: a login whose password was checked before an administrator disabled the account
/// keeps no session. Eight logins, each from its own loopback address, fill a one-thread hasher
/// (each has read the revocation epoch and the account before it queued); the disable runs
/// while they hash; none of their sessions may be left afterwards.
async fn a_login_racing_a_disable_keeps_no_session(profile: Profile) {
    let settings = [
        ("ARGON2_MEMORY_KIB", "19456"),
        ("ARGON2_ITERATIONS", "12"),
        ("HASHES_IN_FLIGHT_PER_CLIENT", "0"),
        ("ARGON2_WORKERS", "1"),
        ("ARGON2_QUEUE", "7"),
    ];
    let app = TestApp::spawn_with(profile, &settings).await;
    let (_, token) = admin(&app).await;
    let (mut survivors, mut opened, mut refused, mut raced) = (0, 0, 0, 0);
    let mut unauthorized = 0;
    for _round in 0..4 {
        let email = app.verified_user().await;
        let owner = app.token(&email, PASSWORD).await;
        let id = user_id(&app, &owner).await;
        let logins: Vec<_> = (0..8u8)
            .map(|i| {
                let client = app.observed(
                    reqwest::Client::builder()
                        .local_address(IpAddr::from([127, 0, 0, 40 + i]))
                        .build()
                        .unwrap(),
                );
                let url = app.url("/login");
                let body = json!({"email": email, "password": PASSWORD});
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(4 * u64::from(i))).await;
                    let res = client.post(url).json(&body).send().await.unwrap();
                    let status = res.status();
                    let body: Value = res.json().await.unwrap();
                    (status, body["session"]["token"].as_str().map(str::to_owned))
                })
            })
            .collect();
        // Disable while every login is inside the hasher; on a loaded machine the first may
        // be done before the last arrives: then this round races less tightly.
        if hasher_fills(&app, &logins).await {
            raced += 1;
        }
        let res = app
            .post_auth(&format!("/admin/users/{id}/disable"), &token, None)
            .await;
        assert_eq!(res.status(), StatusCode::NO_CONTENT);
        let mut tokens = vec![owner];
        for login in logins {
            let (status, token) = login.await.unwrap();
            if status == StatusCode::FORBIDDEN {
                refused += 1;
            }
            if status == StatusCode::UNAUTHORIZED {
                unauthorized += 1;
            }
            tokens.extend(token);
        }
        opened += tokens.len() - 1;
        for t in &tokens {
            if app.me(t).await.status() == StatusCode::OK {
                survivors += 1;
            }
        }
    }
    assert_eq!(
        survivors, 0,
        "sessions outlived the disable ({opened} logins answered 200, {refused} 403)"
    );
    // Every login had the right password: one that lost its session to the disable says
    // what is true (403 `account_disabled`), not "wrong password".
    assert_eq!(
        unauthorized, 0,
        "right-password logins answered 401 ({opened} 200, {refused} 403)"
    );
    assert!(
        raced > 0,
        "no round had every login inside the hasher at once"
    );
    app.cleanup().await;
}

/// Polls `/ready` until the hasher reports `saturated` (true) or every login has answered
/// (false).
async fn hasher_fills<T>(app: &TestApp, logins: &[tokio::task::JoinHandle<T>]) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while tokio::time::Instant::now() < deadline {
        let ready: Value = app
            .client
            .get(app.url("/ready"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if ready["checks"]["password_hasher"] == "saturated" {
            return true;
        }
        if logins.iter().all(tokio::task::JoinHandle::is_finished) {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    false
}

/// The kinds of the newest `n` events of a history page.
fn kinds(page: &Value, n: usize) -> Vec<String> {
    page["events"]
        .as_array()
        .unwrap()
        .iter()
        .take(n)
        .map(|e| e["kind"].as_str().unwrap().to_owned())
        .collect()
}

/// An account whose owner lost the authenticator and the recovery codes gets back in: an
/// administrator (only an administrator, with the privilege window open) turns its second
/// factor off; every session of the account ends, the owner is mailed, the reset is in the
/// account's history, and the owner logs in with the password alone.
async fn an_admin_resets_a_users_lost_second_factor(profile: Profile) {
    let app = TestApp::spawn(profile).await;
    let (_, admin_token) = admin(&app).await;
    let user = crate::mfa::enrolled(&app).await;
    let id = user_id(&app, &user.token).await;
    let path = format!("/admin/users/{id}/mfa");

    // Not by the owner (nor any ordinary account) through the admin route.
    let res = app.delete_auth(&path, &user.token).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(error_code(res).await, "forbidden");
    let body: Value = app.login(&user.email, PASSWORD).await.json().await.unwrap();
    assert_eq!(body["mfa_required"], json!(true), "{body}");
    let view: Value = app
        .get_auth(&format!("/admin/users/{id}"), &admin_token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(view["two_factor_enabled"], json!(true), "{view}");

    let res = app.delete_auth(&path, &admin_token).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    notice(&app, &user.email, "turned off two-factor").await;
    assert_eq!(app.me(&user.token).await.status(), StatusCode::UNAUTHORIZED);

    let token = app.token(&user.email, PASSWORD).await;
    let view: Value = app
        .get_auth(&format!("/admin/users/{id}"), &admin_token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(view["two_factor_enabled"], json!(false), "{view}");
    let page: Value = app
        .get_auth("/me/events", &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        kinds(&page, 2),
        ["login_succeeded", "two_factor_reset_by_admin"],
        "{page}"
    );
    let reset = &page["events"][1];
    assert!(
        reset.get("ip").is_none(),
        "the administrator's network is not shown: {reset}"
    );

    // Nothing to reset any more; no such account.
    let res = app.delete_auth(&path, &admin_token).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let nobody = uuid::Uuid::new_v4();
    let res = app
        .delete_auth(&format!("/admin/users/{nobody}/mfa"), &admin_token)
        .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    app.cleanup().await;
}

/// `GET /admin/users/{id}`, which must answer 200.
async fn admin_view(app: &TestApp, admin_token: &str, id: &str) -> Value {
    let res = app
        .get_auth(&format!("/admin/users/{id}"), admin_token)
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    res.json().await.unwrap()
}

/// The administrator sees why an account gets no mail: an address suppressed after a
/// provider's report shows as suppressed, until when and why, in the account's view.
async fn an_admin_sees_that_mail_to_a_user_is_suppressed(profile: Profile) {
    let bounce = "bounce-token-bounce-token-bounce-token-0123";
    let app = TestApp::spawn_with(profile, &[("BOUNCE_WEBHOOK_TOKEN", bounce)]).await;
    let (_, admin_token) = admin(&app).await;
    let email = app.verified_user().await;
    let token = app.token(&email, PASSWORD).await;
    let id = user_id(&app, &token).await;
    let before = admin_view(&app, &admin_token, &id).await;
    assert_eq!(before["mail_suppression"], Value::Null, "{before}");
    assert_eq!(before["two_factor_enabled"], json!(false), "{before}");

    let res = app
        .client
        .post(app.url("/mail/bounces"))
        .header("authorization", format!("Bearer {bounce}"))
        .json(&json!({ "address": email, "kind": "bounce" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let reported: Value = res.json().await.unwrap();

    let after = admin_view(&app, &admin_token, &id).await;
    assert_eq!(after["mail_suppression"]["reason"], "bounce", "{after}");
    let until = after["mail_suppression"]["until"].as_str().unwrap();
    let until = chrono::DateTime::parse_from_rfc3339(until).unwrap();
    let expected =
        chrono::DateTime::parse_from_rfc3339(reported["suppressed_until"].as_str().unwrap())
            .unwrap();
    assert!(
        (until - expected).num_seconds().abs() <= 1,
        "{until} vs {expected}"
    );
    assert!(until > chrono::Utc::now());
    app.cleanup().await;
}

/// ASVS 16: what an administrator does to an account is in that account's history, for the
/// owner (`/me/events`) and for administrators (`/admin/users/{id}/events`, privileged); the
/// administrator's network is not shown to the owner.
async fn admin_actions_are_in_the_users_security_history(profile: Profile) {
    let app = TestApp::spawn(profile).await;
    let (_, admin_token) = admin(&app).await;
    let email = app.verified_user().await;
    let token = app.token(&email, PASSWORD).await;
    let id = user_id(&app, &token).await;
    let events = format!("/admin/users/{id}/events");

    let res = app.get_auth(&events, &token).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN, "not for the owner");
    for action in ["disable", "enable"] {
        let res = app
            .post_auth(&format!("/admin/users/{id}/{action}"), &admin_token, None)
            .await;
        assert_eq!(res.status(), StatusCode::NO_CONTENT, "{action}");
    }
    let res = app
        .delete_auth(&format!("/admin/users/{id}/sessions"), &admin_token)
        .await;
    assert_eq!(res.status(), StatusCode::OK);

    let res = app
        .get_auth(&format!("{events}?limit=3"), &admin_token)
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let page: Value = res.json().await.unwrap();
    assert_eq!(
        kinds(&page, 3),
        [
            "sessions_ended_by_admin",
            "account_enabled_by_admin",
            "account_disabled_by_admin"
        ],
        "{page}"
    );
    assert!(page["next_cursor"].is_string(), "signup, login... follow");
    let res = app
        .get_auth(&format!("{events}?cursor=garbage"), &admin_token)
        .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);

    // The owner sees the same, after logging in again.
    let token = app.token(&email, PASSWORD).await;
    let mine: Value = app
        .get_auth("/me/events", &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        kinds(&mine, 4),
        [
            "login_succeeded",
            "sessions_ended_by_admin",
            "account_enabled_by_admin",
            "account_disabled_by_admin"
        ],
        "{mine}"
    );
    for e in mine["events"].as_array().unwrap().iter().skip(1).take(3) {
        assert!(
            e.get("ip").is_none() && e.get("user_agent").is_none(),
            "{e}"
        );
    }

    // A deleted account's history stays readable (deletion included) until it ages out.
    let res = app
        .delete_auth(&format!("/admin/users/{id}"), &admin_token)
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let page: Value = app
        .get_auth(&events, &admin_token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(kinds(&page, 1), ["account_deleted_by_admin"], "{page}");
    app.cleanup().await;
}

/// The web UI's administration page is served, and an ordinary account's cookie gets 403 from
/// the API behind it.
async fn the_admin_page_is_served(profile: Profile) {
    let app = TestApp::spawn(profile).await;
    let res = app.client.get(app.url("/ui/admin")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let html = res.text().await.unwrap();
    assert!(html.contains("admin.js"), "{html}");
    let res = app.with_cookie(Method::GET, "/admin/users", "x=y").await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    app.cleanup().await;
}

/// The account search checks the caller before it reads its parameters (a stranger learns
/// nothing, not even that one was malformed), answers every malformed one with the JSON 400,
/// and a control character (a NUL, which PostgreSQL refuses in text) is one of them, not a 500.
async fn the_account_search_checks_the_caller_first_and_refuses_control_characters(
    profile: Profile,
) {
    let app = TestApp::spawn(profile).await;
    let user = app.verified_user().await;
    let user_token = app.token(&user, PASSWORD).await;
    let (_, admin_token) = admin(&app).await;

    let res = app.get_auth("/admin/users?limit=abc", &user_token).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(error_code(res).await, "forbidden");
    for query in [
        "limit=abc",
        "email=a%00",
        "email=%00",
        "email=%25%00",
        "email=a%0A",
    ] {
        let res = app
            .get_auth(&format!("/admin/users?{query}"), &admin_token)
            .await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(error_code(res).await, "invalid_request", "{query}");
    }
    app.cleanup().await;
}

crate::both_profiles!(
    the_account_search_checks_the_caller_first_and_refuses_control_characters,
    admin_routes_refuse_anonymous_and_ordinary_accounts,
    admin_requests_need_a_recent_password,
    admin_privilege_window_needs_the_second_factor_when_totp_is_on,
    a_demoted_admin_loses_access_at_once,
    an_admin_finds_users_and_sees_their_sessions,
    an_admin_ends_one_or_every_session_of_a_user,
    a_disabled_account_loses_its_sessions_and_cannot_log_in,
    an_admin_deletes_a_user,
    an_admin_resends_a_verification_code,
    an_admin_resend_inside_the_mail_cooldown_says_nothing_was_sent,
    a_login_racing_a_disable_keeps_no_session,
    the_admin_page_is_served,
    an_admin_resets_a_users_lost_second_factor,
    an_admin_sees_that_mail_to_a_user_is_suppressed,
    admin_actions_are_in_the_users_security_history,
);

//! The whole lifecycle, end to end.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;

async fn full_lifecycle_signup_to_reset(profile: Profile) {
    let app = TestApp::spawn(profile).await;
    let email = app.email();

    // signup → 201, unverified, code mailed
    let res = app.signup(&email, PASSWORD).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["user"]["email"], email.as_str());
    assert_eq!(body["user"]["email_verified"], false);
    assert!(body["user"].get("password_hash").is_none());
    let mail = app.mail.wait_for_mail(&email, MAIL_WAIT).await;
    assert!(mail.subject().contains(&mail.code()), "code in the subject");

    // login before verification → 401, like a wrong password (enumeration protection)
    let res = app.login(&email, PASSWORD).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(res).await, "invalid_credentials");

    // verify → 200, verified
    let res = app.verify(&email, &mail.code()).await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["user"]["email_verified"], true);

    // login (bearer) → token in body, no cookie
    let res = app.login(&email, PASSWORD).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(set_cookie(res.headers(), app.cookie_name).is_none());
    assert_eq!(res.headers()["cache-control"], "no-store");
    let body: Value = res.json().await.unwrap();
    let bearer = body["session"]["token"].as_str().unwrap().to_owned();
    assert_eq!(bearer.len(), 43);
    assert!(body["session"]["expires_at"].is_string());

    // /me by bearer, GET and POST
    let res = app.me(&bearer).await;
    assert_eq!(res.status(), StatusCode::OK);
    let me: Value = res.json().await.unwrap();
    assert_eq!(me["user"]["email"], email.as_str());
    assert!(me["session"]["created_at"].is_string());
    let res = app.post_auth("/me", &bearer, None).await;
    assert_eq!(res.status(), StatusCode::OK);

    // login (cookie) → cookie only, never the token in the body
    let res = app
        .post(
            "/login",
            &json!({"email": email, "password": PASSWORD, "transport": "cookie"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let cookie = set_cookie(res.headers(), app.cookie_name).expect("session cookie");
    for attr in [
        "HttpOnly",
        "SameSite=Lax",
        "Path=/",
        "Secure",
        "Max-Age=86400",
    ] {
        assert!(cookie.contains(attr), "{attr} missing in {cookie}");
    }
    assert!(!cookie.contains("Domain"), "{cookie}");
    let cookie_token = cookie
        .split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1
        .to_owned();
    let body: Value = res.json().await.unwrap();
    assert!(body["session"].get("token").is_none(), "{body}");
    assert!(!body.to_string().contains(&cookie_token));

    // /me by cookie
    let res = app
        .with_cookie(
            reqwest::Method::GET,
            "/me",
            &format!("{}={cookie_token}", app.cookie_name),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);

    // logout (bearer) → 204, then /me 401 with WWW-Authenticate
    let res = app.post_auth("/logout", &bearer, None).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let res = app.me(&bearer).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(res.headers()["www-authenticate"], "Bearer");
    assert_eq!(error_code(res).await, "unauthenticated");

    // list sessions: three logins → three sessions, one current
    let t1 = app.token(&email, PASSWORD).await;
    let t2 = app.token(&email, PASSWORD).await;
    let res = app.get_auth("/sessions", &t1).await;
    assert_eq!(res.status(), StatusCode::OK);
    let list: Value = res.json().await.unwrap();
    let sessions = list["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 3, "{list}"); // cookie session + t1 + t2
    assert_eq!(sessions.iter().filter(|s| s["current"] == true).count(), 1);
    assert!(!list.to_string().contains(&t1) && !list.to_string().contains(&t2));

    // revoke t2 by its id (from t2's own view)
    let t2_list: Value = app.get_auth("/sessions", &t2).await.json().await.unwrap();
    let t2_id = t2_list["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["current"] == true)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = app.delete_auth(&format!("/sessions/{t2_id}"), &t1).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.me(&t2).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(app.me(&t1).await.status(), StatusCode::OK);

    // change password: t1 stays, the cookie session is revoked; notice mailed
    let before = app.mail.count_to(&email);
    let new_password = "a brand new passphrase";
    let res = app
        .post_auth(
            "/change-password",
            &t1,
            Some(&json!({"current_password": PASSWORD, "new_password": new_password})),
        )
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.me(&t1).await.status(), StatusCode::OK);
    let res = app
        .with_cookie(
            reqwest::Method::GET,
            "/me",
            &format!("{}={cookie_token}", app.cookie_name),
        )
        .await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    app.nth_code_or_notice(&email, before + 1).await;
    assert_eq!(
        app.login(&email, PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );

    // forgot → reset with the mailed code → every session revoked
    let t3 = app.token(&email, new_password).await;
    let before = app.mail.count_to(&email);
    let res = app.post("/forgot-password", &json!({"email": email})).await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let code = app.nth_code(&email, before + 1).await;
    let final_password = "yet another fine passphrase";
    let res = app
        .post(
            "/reset-password",
            &json!({"email": email, "otp": code, "new_password": final_password}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(app.me(&t1).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(app.me(&t3).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.login(&email, new_password).await.status(),
        StatusCode::UNAUTHORIZED
    );

    // login with the new password
    let t4 = app.token(&email, final_password).await;
    assert_eq!(app.me(&t4).await.status(), StatusCode::OK);

    // logout-all
    let t5 = app.token(&email, final_password).await;
    assert_eq!(
        app.post_auth("/logout-all", &t4, None).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(app.me(&t4).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(app.me(&t5).await.status(), StatusCode::UNAUTHORIZED);

    app.cleanup().await;
}

impl TestApp {
    /// Waits for the `n`-th mail to `to` (a notice carries no code).
    pub async fn nth_code_or_notice(&self, to: &str, n: usize) {
        let deadline = tokio::time::Instant::now() + MAIL_WAIT;
        while self.mail.count_to(to) < n {
            assert!(
                tokio::time::Instant::now() < deadline,
                "no mail {n} to {to}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let mails = self.mail.messages_to(to);
        assert!(
            mails[n - 1].subject().to_lowercase().contains("password"),
            "{}",
            mails[n - 1].subject()
        );
    }
}

/// ASVS 7.3.1 / 7.3.2: a session in use outlives the idle timeout; left alone for it, it
/// ends (401, also in the session list of another device); logging in again works.
async fn sessions_end_after_the_idle_timeout_but_not_while_in_use(profile: Profile) {
    let app = TestApp::spawn_with(profile, &[("SESSION_IDLE_TIMEOUT", "3s")]).await;
    let email = app.verified_user().await;
    let busy = app.token(&email, PASSWORD).await;
    let quiet = app.token(&email, PASSWORD).await;

    // Used every half second for twice the idle timeout: never idle.
    let started = std::time::Instant::now();
    while started.elapsed() < std::time::Duration::from_secs(6) {
        assert_eq!(app.me(&busy).await.status(), StatusCode::OK);
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    let res = app.get_auth("/sessions", &busy).await;
    assert_eq!(res.status(), StatusCode::OK);
    let listed: Value = res.json().await.unwrap();
    assert_eq!(
        listed["sessions"].as_array().unwrap().len(),
        1,
        "the idle session is not listed: {listed}"
    );
    assert_eq!(app.me(&quiet).await.status(), StatusCode::UNAUTHORIZED);

    // Now the busy one rests for longer than the timeout.
    tokio::time::sleep(std::time::Duration::from_millis(3500)).await;
    let res = app.me(&busy).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(res).await, "unauthenticated");
    let fresh = app.token(&email, PASSWORD).await;
    assert_eq!(app.me(&fresh).await.status(), StatusCode::OK);
    app.cleanup().await;
}

/// ASVS 7.4.2: deleting the account (with the password) ends every session at once, the
/// account is gone (login fails like for an unknown address), the owner gets a notice, and the
/// address can sign up again. A wrong password, a missing body or no session change nothing.
async fn deleting_the_account_ends_every_session_and_frees_the_address(profile: Profile) {
    let app = TestApp::spawn(profile).await;
    let email = app.verified_user().await;
    let t1 = app.token(&email, PASSWORD).await;
    let t2 = app.token(&email, PASSWORD).await;
    let delete = |token: &str, body: Option<Value>| {
        let mut req = app.client.delete(app.url("/me")).bearer_auth(token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        req.send()
    };

    let res = delete(&t1, Some(json!({"password": "not my password at all"})))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(error_code(res).await, "invalid_credentials");
    let res = delete(&t1, None).await.unwrap();
    assert!(res.status().is_client_error(), "{}", res.status());
    let res = app
        .client
        .delete(app.url("/me"))
        .json(&json!({"password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(app.me(&t1).await.status(), StatusCode::OK);
    assert_eq!(app.me(&t2).await.status(), StatusCode::OK);

    let mails_before = app.mail.count_to(&email);
    let res = delete(&t1, Some(json!({"password": PASSWORD})))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.me(&t1).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(app.me(&t2).await.status(), StatusCode::UNAUTHORIZED);
    let res = app.login(&email, PASSWORD).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(res).await, "invalid_credentials");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while app.mail.count_to(&email) <= mails_before {
        assert!(std::time::Instant::now() < deadline, "no deletion notice");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let notice = app.mail.messages_to(&email)[mails_before].subject();
    assert!(notice.contains("deleted"), "subject: {notice}");

    // The address is free again: a new account, verified with a new code.
    assert_eq!(
        app.signup(&email, PASSWORD).await.status(),
        StatusCode::CREATED
    );
    let code = app.nth_code(&email, mails_before + 2).await;
    assert_eq!(app.verify(&email, &code).await.status(), StatusCode::OK);
    let fresh = app.token(&email, PASSWORD).await;
    assert_eq!(app.me(&fresh).await.status(), StatusCode::OK);
    app.cleanup().await;
}

crate::both_profiles!(
    deleting_the_account_ends_every_session_and_frees_the_address,
    full_lifecycle_signup_to_reset,
    sessions_are_listed_a_page_at_a_time,
    sessions_end_after_the_idle_timeout_but_not_while_in_use
);

/// `GET /sessions` pages: every session exactly once, newest first, `next_cursor` until the
/// last page; a malformed cursor or limit is 400.
async fn sessions_are_listed_a_page_at_a_time(profile: Profile) {
    let app = TestApp::spawn(profile).await;
    let email = app.verified_user().await;
    let mut tokens = Vec::new();
    for _ in 0..5 {
        tokens.push(app.token(&email, PASSWORD).await);
    }
    let me = &tokens[4];
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    for _page in 0..10 {
        let path = match &cursor {
            Some(c) => format!("/sessions?limit=2&cursor={c}"),
            None => "/sessions?limit=2".to_owned(),
        };
        let res = app.get_auth(&path, me).await;
        assert_eq!(res.status(), StatusCode::OK);
        let body: Value = res.json().await.unwrap();
        let page = body["sessions"].as_array().unwrap();
        assert!(page.len() <= 2);
        ids.extend(page.iter().map(|s| s["id"].as_str().unwrap().to_owned()));
        cursor = body["next_cursor"].as_str().map(str::to_owned);
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(ids.len(), 5, "{ids:?}");
    let all: Value = app.get_auth("/sessions", me).await.json().await.unwrap();
    let all: Vec<String> = all["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, all, "pages cover the one-page listing, in its order");
    for bad in [
        "/sessions?limit=0",
        "/sessions?limit=101",
        "/sessions?cursor=nope",
    ] {
        let res = app.get_auth(bad, me).await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(error_code(res).await, "invalid_request");
    }
    app.cleanup().await;
}

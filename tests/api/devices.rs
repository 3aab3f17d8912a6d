//! Device-aware sessions, black box on both profiles: what `GET /sessions` shows of each
//! device, the session binding (`SESSION_BINDING`) and the new-device mail.

use std::net::IpAddr;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;

both_profiles!(
    sessions_show_browser_os_network_last_use_and_this_device,
    a_token_used_from_another_browser_is_ended_with_user_agent_binding,
    a_token_used_from_another_network_is_ended_with_ip_prefix_binding,
    without_binding_a_session_works_from_anywhere,
    a_login_from_a_new_device_tells_the_owner,
    no_new_device_mail_when_it_is_turned_off,
);

const FIREFOX_LINUX: &str =
    "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
const FIREFOX_LINUX_NEXT: &str =
    "Mozilla/5.0 (X11; Linux x86_64; rv:129.0) Gecko/20100101 Firefox/129.0";
const SAFARI_IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) \
    AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";

/// A client with this user agent, from 127.0.0.`n`.
fn device(app: &TestApp, user_agent: &str, n: u8) -> ApiClient {
    app.observed(
        reqwest::Client::builder()
            .user_agent(user_agent)
            .local_address(IpAddr::from([127, 0, 0, n]))
            .build()
            .unwrap(),
    )
}

async fn login_on(app: &TestApp, client: &ApiClient, email: &str) -> String {
    let res = client
        .post(app.url("/login"))
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    body["session"]["token"].as_str().unwrap().to_owned()
}

async fn me_on(app: &TestApp, client: &ApiClient, token: &str) -> StatusCode {
    client
        .get(app.url("/me"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
}

/// The account page's list: each session with its browser and OS (parsed from the user
/// agent), the network it came from (never the whole address), its last use, and which one
/// is this device; ending another one works from there.
async fn sessions_show_browser_os_network_last_use_and_this_device(profile: Profile) {
    let app = TestApp::spawn(profile).await;
    let email = app.verified_user().await;
    let laptop = device(&app, FIREFOX_LINUX, 1);
    let phone = device(&app, SAFARI_IPHONE, 2);
    let on_laptop = login_on(&app, &laptop, &email).await;
    let _on_phone = login_on(&app, &phone, &email).await;

    let res = laptop
        .get(app.url("/sessions"))
        .bearer_auth(&on_laptop)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    let sessions = body["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2, "{body}");
    let this = sessions.iter().find(|s| s["current"] == true).unwrap();
    assert_eq!(this["browser"], "Firefox", "{this}");
    assert_eq!(this["os"], "Linux", "{this}");
    assert_eq!(this["ip"], "127.0.0.0/24", "{this}");
    assert!(this["last_seen_at"].is_string(), "{this}");
    let other = sessions.iter().find(|s| s["current"] == false).unwrap();
    assert_eq!(other["browser"], "Safari", "{other}");
    assert_eq!(other["os"], "iPhone", "{other}");

    let res = laptop
        .delete(app.url(&format!("/sessions/{}", other["id"].as_str().unwrap())))
        .bearer_auth(&on_laptop)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let body: Value = laptop
        .get(app.url("/sessions"))
        .bearer_auth(&on_laptop)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["sessions"].as_array().unwrap().len(), 1);
    app.cleanup().await;
}

/// With `SESSION_BINDING=user-agent`, a token copied into another browser is refused and the
/// session is ended: not even the original browser can use it afterwards.
async fn a_token_used_from_another_browser_is_ended_with_user_agent_binding(profile: Profile) {
    let app = TestApp::spawn_with(profile, &[("SESSION_BINDING", "user-agent")]).await;
    let email = app.verified_user().await;
    let owner = device(&app, FIREFOX_LINUX, 1);
    let thief = device(&app, SAFARI_IPHONE, 1);
    let token = login_on(&app, &owner, &email).await;
    assert_eq!(me_on(&app, &owner, &token).await, StatusCode::OK);

    assert_eq!(me_on(&app, &thief, &token).await, StatusCode::UNAUTHORIZED);
    assert_eq!(me_on(&app, &owner, &token).await, StatusCode::UNAUTHORIZED);
    app.cleanup().await;
}

/// With `SESSION_BINDING=ip-prefix` (here the whole IPv4 address), a token used from another
/// network is refused and the session ended; the same network keeps working.
async fn a_token_used_from_another_network_is_ended_with_ip_prefix_binding(profile: Profile) {
    let app = TestApp::spawn_with(
        profile,
        &[
            ("SESSION_BINDING", "ip-prefix"),
            ("SESSION_IP_PREFIX_V4", "32"),
        ],
    )
    .await;
    let email = app.verified_user().await;
    let home = device(&app, FIREFOX_LINUX, 1);
    let same_address_other_browser = device(&app, SAFARI_IPHONE, 1);
    let elsewhere = device(&app, FIREFOX_LINUX, 2);
    let token = login_on(&app, &home, &email).await;
    assert_eq!(
        me_on(&app, &same_address_other_browser, &token).await,
        StatusCode::OK
    );
    assert_eq!(
        me_on(&app, &elsewhere, &token).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(me_on(&app, &home, &token).await, StatusCode::UNAUTHORIZED);
    app.cleanup().await;
}

/// The default (`off`): a session works from any client.
async fn without_binding_a_session_works_from_anywhere(profile: Profile) {
    let app = TestApp::spawn(profile).await;
    let email = app.verified_user().await;
    let token = login_on(&app, &device(&app, FIREFOX_LINUX, 1), &email).await;
    for client in [
        device(&app, SAFARI_IPHONE, 2),
        device(&app, FIREFOX_LINUX, 3),
    ] {
        assert_eq!(me_on(&app, &client, &token).await, StatusCode::OK);
    }
    app.cleanup().await;
}

/// Someone logging in with the owner's password from a device the account was never used
/// from: the owner is mailed. The first device of an account, a device seen before and the
/// same browser after an update mail nothing.
async fn a_login_from_a_new_device_tells_the_owner(profile: Profile) {
    let app = TestApp::spawn(profile).await;
    let email = app.verified_user().await;
    let laptop = device(&app, FIREFOX_LINUX, 1);
    login_on(&app, &laptop, &email).await;
    login_on(&app, &laptop, &email).await;
    login_on(&app, &device(&app, FIREFOX_LINUX_NEXT, 1), &email).await;
    app.mail
        .assert_no_new_mail(&email, Duration::from_millis(500))
        .await;
    assert_eq!(app.mail.count_to(&email), 1, "only the verification code");

    login_on(&app, &device(&app, SAFARI_IPHONE, 9), &email).await;
    let deadline = tokio::time::Instant::now() + MAIL_WAIT;
    while app.mail.count_to(&email) < 2 {
        assert!(tokio::time::Instant::now() < deadline, "no new-device mail");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let notice = app.mail.messages_to(&email).pop().unwrap();
    assert!(
        notice.subject().contains("New sign-in"),
        "{}",
        notice.subject()
    );
    assert!(notice.try_code().is_none());
    app.cleanup().await;
}

/// `NEW_DEVICE_MAIL=false`: nothing is mailed for a new device.
async fn no_new_device_mail_when_it_is_turned_off(profile: Profile) {
    let app = TestApp::spawn_with(profile, &[("NEW_DEVICE_MAIL", "false")]).await;
    let email = app.verified_user().await;
    login_on(&app, &device(&app, FIREFOX_LINUX, 1), &email).await;
    login_on(&app, &device(&app, SAFARI_IPHONE, 2), &email).await;
    app.mail
        .assert_no_new_mail(&email, Duration::from_millis(500))
        .await;
    assert_eq!(app.mail.count_to(&email), 1);
    app.cleanup().await;
}

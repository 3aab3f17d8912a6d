//! Passkeys and the owner's revocations, black box on both profiles with the software
//! authenticator of `passkeys.rs`: a passkey planted by someone who had the session and the
//! password does not survive the owner's reset; a password change keeps the passkeys and
//! lists them to the owner; deleting a passkey ends the sessions it opened; passkey sign-ins
//! racing a reset or "log out everywhere" keep no session.

use std::net::IpAddr;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{error_code, ApiClient, Profile, TestApp, PASSWORD};
use crate::passkeys::{register, sign_in_options, Authenticator, PASSKEYS};

both_profiles!(
    a_passkey_planted_with_a_stolen_session_does_not_survive_the_owners_reset,
    a_password_change_keeps_the_passkeys_and_lists_them_to_the_owner,
    deleting_a_passkey_ends_the_sessions_it_opened,
    passkey_sign_ins_racing_a_reset_keep_no_session,
    passkey_sign_ins_racing_logout_everywhere_keep_no_session,
);

const NEW_PASSWORD: &str = "the owner's fresh passphrase";

/// Signs in with `authenticator` (no password); the answer.
async fn passkey_sign_in(app: &TestApp, authenticator: &mut Authenticator) -> reqwest::Response {
    let (ceremony, options) = sign_in_options(app).await;
    app.post(
        "/login/passkey",
        &json!({ "ceremony_id": ceremony, "credential": authenticator.get(&options) }),
    )
    .await
}

async fn session_token(res: reqwest::Response) -> String {
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    body["session"]["token"].as_str().unwrap().to_owned()
}

/// The text of the newest mail to `to` whose text holds `needle`, waiting up to 10 s.
async fn mail_with(app: &TestApp, to: &str, needle: &str) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(text) = app
            .mail
            .messages_to(to)
            .iter()
            .rev()
            .map(|m| m.text_body())
            .find(|t| t.contains(needle))
        {
            return text;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no mail to {to} with {needle:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The code of the newest password reset mail to `email`, waiting up to 10 s (notices about
/// passkeys may arrive in between).
async fn reset_code(app: &TestApp, email: &str) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(mail) = app
            .mail
            .messages_to(email)
            .into_iter()
            .rev()
            .find(|m| m.subject().contains("password reset code"))
        {
            return mail.code();
        }
        assert!(tokio::time::Instant::now() < deadline, "no reset code");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Resets the password of `email` by mail (the owner's recovery path).
async fn reset_by_mail(app: &TestApp, email: &str) {
    let res = app
        .post("/forgot-password", &json!({ "email": email }))
        .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let code = reset_code(app, email).await;
    let res = app
        .post(
            "/reset-password",
            &json!({ "email": email, "otp": code, "new_password": NEW_PASSWORD }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
}

async fn passkey_names(app: &TestApp, token: &str) -> Vec<String> {
    let res = app.get_auth("/me/passkeys", token).await;
    assert_eq!(res.status(), StatusCode::OK);
    let listed: Value = res.json().await.unwrap();
    listed["passkeys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect()
}

/// Someone who had the owner's session and password adds a passkey and signs in with it. The
/// owner resets the password by mail: the planted passkey signs nobody in any more, the
/// session it opened is gone, the reset mail names it and says how to add a passkey again,
/// and the history records its removal. Before, the passkey still signed in after the reset.
async fn a_passkey_planted_with_a_stolen_session_does_not_survive_the_owners_reset(
    profile: Profile,
) {
    let app = TestApp::spawn_with(profile, PASSKEYS).await;
    let email = app.verified_user().await;
    let stolen = app.token(&email, PASSWORD).await;
    let mut planted = Authenticator::new();
    register(&app, &stolen, &mut planted, "intruder's key").await;
    let intruder = session_token(passkey_sign_in(&app, &mut planted).await).await;

    reset_by_mail(&app, &email).await;

    assert_eq!(app.me(&stolen).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(app.me(&intruder).await.status(), StatusCode::UNAUTHORIZED);
    let res = passkey_sign_in(&app, &mut planted).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(res).await, "invalid_passkey");

    let owner = app.token(&email, NEW_PASSWORD).await;
    assert!(passkey_names(&app, &owner).await.is_empty());
    let mail = mail_with(&app, &email, "every passkey of the account was removed").await;
    assert!(mail.contains("- intruder's key"), "{mail}");
    assert!(mail.contains("add one on the account page"), "{mail}");

    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let page: Value = app
            .get_auth("/me/events?limit=100", &owner)
            .await
            .json()
            .await
            .unwrap();
        let kinds: Vec<&str> = page["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["kind"].as_str())
            .collect();
        if kinds.contains(&"passkey_removed") && kinds.contains(&"reset_completed") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{kinds:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    app.cleanup().await;
}

/// A change of password (the owner knows the old one) keeps the passkeys, and its notice
/// lists them, so that the owner can spot one that is not theirs.
async fn a_password_change_keeps_the_passkeys_and_lists_them_to_the_owner(profile: Profile) {
    let app = TestApp::spawn_with(profile, PASSKEYS).await;
    let email = app.verified_user().await;
    let token = app.token(&email, PASSWORD).await;
    let mut laptop = Authenticator::new();
    register(&app, &token, &mut laptop, "laptop").await;
    let body = json!({ "current_password": PASSWORD, "new_password": NEW_PASSWORD });
    let res = app.post_auth("/change-password", &token, Some(&body)).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let mail = mail_with(&app, &email, "These passkeys can sign in to your account").await;
    assert!(mail.contains("- laptop"), "{mail}");
    assert!(!mail.contains("was removed"), "{mail}");
    assert_eq!(passkey_names(&app, &token).await, ["laptop"]);
    session_token(passkey_sign_in(&app, &mut laptop).await).await;
    app.cleanup().await;
}

/// The owner deletes a passkey someone else added: the sessions that passkey opened end at
/// once; those of another passkey and of the password stay. Before, they lived on.
async fn deleting_a_passkey_ends_the_sessions_it_opened(profile: Profile) {
    let app = TestApp::spawn_with(profile, PASSKEYS).await;
    let email = app.verified_user().await;
    let owner = app.token(&email, PASSWORD).await;
    let mut planted = Authenticator::new();
    let mut mine = Authenticator::new();
    let created = register(&app, &owner, &mut planted, "not mine").await;
    register(&app, &owner, &mut mine, "mine").await;
    let intruder = session_token(passkey_sign_in(&app, &mut planted).await).await;
    let intruder_again = session_token(passkey_sign_in(&app, &mut planted).await).await;
    let own_passkey = session_token(passkey_sign_in(&app, &mut mine).await).await;

    let id = created["id"].as_str().unwrap();
    let res = app
        .client_delete_json(
            &format!("/me/passkeys/{id}"),
            &owner,
            &json!({ "password": PASSWORD }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);

    assert_eq!(app.me(&intruder).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.me(&intruder_again).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(app.me(&own_passkey).await.status(), StatusCode::OK);
    assert_eq!(app.me(&owner).await.status(), StatusCode::OK);
    app.cleanup().await;
}

/// An HTTP client whose connections come from `127.0.0.{n}`.
fn client_from(app: &TestApp, n: u8) -> ApiClient {
    app.observed(
        reqwest::Client::builder()
            .local_address(IpAddr::from([127, 0, 0, n]))
            .build()
            .unwrap(),
    )
}

/// Passkeys registered per round of a race: registering asks for the password, and the
/// re-authentication budget allows five an account per quarter of an hour.
const RACERS: usize = 4;

/// A fresh account with [`RACERS`] passkeys: (address, a password session, the authenticators).
async fn account_with_passkeys(app: &TestApp) -> (String, String, Vec<Authenticator>) {
    let email = app.verified_user().await;
    let token = app.token(&email, PASSWORD).await;
    let mut authenticators = Vec::new();
    for i in 0..RACERS {
        let mut a = Authenticator::new();
        register(app, &token, &mut a, &format!("key {i}")).await;
        authenticators.push(a);
    }
    (email, token, authenticators)
}

/// Each authenticator signs in from its own address (`127.0.0.{first + i}`), 5 ms apart, and
/// `revoke` starts at once or, with `after_first_answer`, once the first sign-in answered
/// (the others then in flight). Returns, for each sign-in that
/// answered 200, whether it answered before `revoke` finished and whether its session is
/// still alive afterwards.
async fn sign_ins_racing<F>(
    app: &TestApp,
    authenticators: Vec<Authenticator>,
    first: u8,
    after_first_answer: bool,
    revoke: F,
) -> Vec<(bool, bool)>
where
    F: std::future::Future<Output = ()>,
{
    let mut started = Vec::new();
    for (i, authenticator) in authenticators.into_iter().enumerate() {
        let client = client_from(app, first + u8::try_from(i).unwrap());
        let res = client
            .post(app.url("/login/passkey/options"))
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let body: Value = res.json().await.unwrap();
        started.push((client, authenticator, body));
    }
    let answered_once = std::sync::Arc::new(tokio::sync::Notify::new());
    let sign_ins: Vec<_> = started
        .into_iter()
        .enumerate()
        .map(|(i, (client, mut authenticator, body))| {
            let url = app.url("/login/passkey");
            let answered_once = answered_once.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(5 * i as u64)).await;
                let credential = authenticator.get(&body["options"]);
                let res = client
                    .post(url)
                    .json(&json!({ "ceremony_id": body["ceremony_id"], "credential": credential }))
                    .send()
                    .await
                    .unwrap();
                let answered = std::time::Instant::now();
                answered_once.notify_one();
                if res.status() != StatusCode::OK {
                    return None;
                }
                let body: Value = res.json().await.unwrap();
                Some((
                    answered,
                    body["session"]["token"].as_str().unwrap().to_owned(),
                ))
            })
        })
        .collect();
    if after_first_answer {
        answered_once.notified().await;
    }
    revoke.await;
    let revoked = std::time::Instant::now();
    let mut outcomes = Vec::new();
    for sign_in in sign_ins {
        if let Some((answered, token)) = sign_in.await.unwrap() {
            let alive = app.me(&token).await.status() == StatusCode::OK;
            outcomes.push((answered < revoked, alive));
        }
    }
    outcomes
}

/// Argon2 as costly as in production, so the reset's hashing leaves the window in which the
/// sign-ins arrive.
const RACE_SETTINGS: [(&str, &str); 4] = [
    PASSKEYS[0],
    PASSKEYS[1],
    ("ARGON2_MEMORY_KIB", "19456"),
    ("ARGON2_ITERATIONS", "2"),
];

/// Passkey sign-ins racing the owner's reset: whatever their order, no session of theirs
/// is alive once the reset answered (four rounds of four parallel sign-ins).
async fn passkey_sign_ins_racing_a_reset_keep_no_session(profile: Profile) {
    let app = TestApp::spawn_with(profile, &RACE_SETTINGS).await;
    let (mut survivors, mut opened) = (0, 0);
    for round in 0..4u8 {
        let (email, _, authenticators) = account_with_passkeys(&app).await;
        let res = app
            .post("/forgot-password", &json!({ "email": email }))
            .await;
        assert_eq!(res.status(), StatusCode::ACCEPTED);
        let code = reset_code(&app, &email).await;
        let body = json!({ "email": email, "otp": code, "new_password": NEW_PASSWORD });
        let reset = app.post("/reset-password", &body);
        let outcomes = sign_ins_racing(&app, authenticators, 60 + round * 8, false, async {
            assert_eq!(reset.await.status(), StatusCode::OK);
        })
        .await;
        // After the reset no passkey of the account is left: no session may be either.
        survivors += outcomes.iter().filter(|(_, alive)| *alive).count();
        opened += outcomes.len();
    }
    assert_eq!(
        survivors, 0,
        "passkey sessions outlived the reset ({opened} sign-ins answered 200)"
    );
    app.cleanup().await;
}

/// The same race against "log out everywhere": no sign-in that answered before it did keeps
/// its session (four rounds).
async fn passkey_sign_ins_racing_logout_everywhere_keep_no_session(profile: Profile) {
    let app = TestApp::spawn_with(profile, &RACE_SETTINGS).await;
    let (mut survivors, mut opened, mut later) = (0, 0, 0);
    for round in 0..4u8 {
        let (_, token, authenticators) = account_with_passkeys(&app).await;
        let logout_all = app.post_auth("/logout-all", &token, None);
        // Logging out everywhere is sent once the first sign-in answered, the others in flight.
        let outcomes = sign_ins_racing(&app, authenticators, 100 + round * 8, true, async {
            assert_eq!(logout_all.await.status(), StatusCode::NO_CONTENT);
        })
        .await;
        // A sign-in that answered before "log out everywhere" did had its session stored
        // before the sweep ended: it must be gone. One that answered later may have started
        // after it, and keeps its session.
        survivors += outcomes
            .iter()
            .filter(|(before, alive)| *before && *alive)
            .count();
        opened += outcomes.iter().filter(|(before, _)| *before).count();
        later += outcomes.iter().filter(|(before, _)| !*before).count();
    }
    assert_eq!(
        survivors, 0,
        "passkey sessions outlived logout everywhere ({opened} sign-ins answered before it)"
    );
    assert!(
        opened > 0,
        "no sign-in answered before logout-all ({later} after)"
    );
    app.cleanup().await;
}

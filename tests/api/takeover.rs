//! Takeover threats: one test per threat, named after it. Several clients get their own source
//! address on the loopback network (a client socket bound to 127.0.0.x), as distinct machines
//! would.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use reqwest::{Response, StatusCode};
use serde_json::{json, Value};

use crate::helpers::*;

/// Argon2 as costly as in production (about 20-50 ms a hash here), so that the window between
/// checking a password and storing the session is as wide as it is for real.
const REAL_HASHING: [(&str, &str); 2] =
    [("ARGON2_MEMORY_KIB", "19456"), ("ARGON2_ITERATIONS", "2")];

/// An HTTP client whose connections come from `127.0.0.{n}`.
fn client_from(app: &TestApp, n: u8) -> ApiClient {
    app.observed(
        reqwest::Client::builder()
            .local_address(IpAddr::from([127, 0, 0, n]))
            .build()
            .unwrap(),
    )
}

async fn login_from(app: &TestApp, client: &ApiClient, email: &str, password: &str) -> Response {
    client
        .post(app.url("/login"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap()
}

async fn token_of(res: Response) -> Option<String> {
    if res.status() != StatusCode::OK {
        return None;
    }
    let body: Value = res.json().await.unwrap();
    Some(body["session"]["token"].as_str().unwrap().to_owned())
}

/// Eight logins with `password`, 4 ms apart, each from its own address; `revoke` starts
/// `revoke_after` after the first login was sent and must end with the revocation complete.
/// Returns (sessions of those logins still alive afterwards, logins that answered 200).
async fn logins_racing<F>(
    app: &TestApp,
    email: &str,
    password: &str,
    revoke_after: Duration,
    revoke: F,
) -> (usize, usize)
where
    F: std::future::Future<Output = ()>,
{
    let logins: Vec<_> = (0..8u8)
        .map(|i| {
            let client = client_from(app, 20 + i);
            let url = app.url("/login");
            let body = json!({"email": email, "password": password});
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(4 * u64::from(i))).await;
                let res = client.post(url).json(&body).send().await.unwrap();
                token_of(res).await
            })
        })
        .collect();
    tokio::time::sleep(revoke_after).await;
    revoke.await;
    let mut tokens = Vec::new();
    for login in logins {
        tokens.extend(login.await.unwrap());
    }
    let mut alive = 0;
    for token in &tokens {
        if app.me(token).await.status() == StatusCode::OK {
            alive += 1;
        }
    }
    (alive, tokens.len())
}

/// The race tests spawn eight logins on one address at once: the per-account share of the
/// hasher (a different defence, tested below) would refuse most of them.
const RACE_SETTINGS: [(&str, &str); 3] = [
    REAL_HASHING[0],
    REAL_HASHING[1],
    ("HASHES_IN_FLIGHT_PER_CLIENT", "0"),
];

/// ASVS 7.4.3: a login whose password was checked before a reset must not keep its session.
/// The reset starts first; the logins arrive while it hashes the new password, read the old
/// hash, and finish after the reset's sweep. Before the revocation epoch, 2-7 of 8 survived.
async fn a_login_racing_a_reset_keeps_no_session(profile: Profile) {
    let app = TestApp::spawn_with(profile, &RACE_SETTINGS).await;
    let (mut survivors, mut opened) = (0, 0);
    for _round in 0..4 {
        let email = app.verified_user().await;
        let res = app.post("/forgot-password", &json!({"email": email})).await;
        assert_eq!(res.status(), StatusCode::ACCEPTED);
        let code = app.nth_code(&email, 2).await;
        let body = json!({"email": email, "otp": code, "new_password": "a brand new passphrase"});
        let reset = app.post("/reset-password", &body);
        let (alive, ok) = logins_racing(&app, &email, PASSWORD, Duration::ZERO, async {
            assert_eq!(reset.await.status(), StatusCode::OK);
        })
        .await;
        survivors += alive;
        opened += ok;
    }
    assert_eq!(
        survivors, 0,
        "sessions outlived the reset ({opened} logins answered 200)"
    );
    app.cleanup().await;
}

/// The same race against a password change: only the session that changed it lives on.
async fn a_login_racing_a_password_change_keeps_no_session(profile: Profile) {
    let app = TestApp::spawn_with(profile, &RACE_SETTINGS).await;
    let mut survivors = 0;
    for _round in 0..4 {
        let email = app.verified_user().await;
        let owner = app.token(&email, PASSWORD).await;
        let body = json!({"current_password": PASSWORD, "new_password": "a brand new passphrase"});
        let change = app.post_auth("/change-password", &owner, Some(&body));
        let (alive, _) = logins_racing(&app, &email, PASSWORD, Duration::ZERO, async {
            assert_eq!(change.await.status(), StatusCode::NO_CONTENT);
        })
        .await;
        survivors += alive;
        assert_eq!(
            app.me(&owner).await.status(),
            StatusCode::OK,
            "the changer's session stays"
        );
    }
    assert_eq!(survivors, 0, "sessions outlived the password change");
    app.cleanup().await;
}

/// And against "log out everywhere": one hashing thread and a queue of seven, so the hasher is
/// full exactly when all eight logins are inside it (each has read the revocation epoch and
/// the password hash before it queued). Logout-all then runs; none of their sessions may be
/// left afterwards.
async fn a_login_racing_logout_everywhere_keeps_no_session(profile: Profile) {
    // A hash of ~100 ms, so the eight logins (sent within 28 ms) are all inside at once.
    let settings = [
        ("ARGON2_MEMORY_KIB", "19456"),
        ("ARGON2_ITERATIONS", "8"),
        ("HASHES_IN_FLIGHT_PER_CLIENT", "0"),
        ("ARGON2_WORKERS", "1"),
        ("ARGON2_QUEUE", "7"),
    ];
    let app = TestApp::spawn_with(profile, &settings).await;
    let (mut survivors, mut opened) = (0, 0);
    for _round in 0..4 {
        let email = app.verified_user().await;
        let owner = app.token(&email, PASSWORD).await;
        let (alive, ok) = logins_racing(&app, &email, PASSWORD, Duration::ZERO, async {
            app.until_the_hasher_is_full().await;
            let res = app.post_auth("/logout-all", &owner, None).await;
            assert_eq!(res.status(), StatusCode::NO_CONTENT);
        })
        .await;
        survivors += alive;
        opened += ok;
    }
    assert_eq!(
        survivors, 0,
        "sessions outlived logout-all ({opened} logins answered 200)"
    );
    app.cleanup().await;
}

/// Someone holding a stolen session guesses the password through change-password: five checks
/// per quarter hour, then 429 with `Retry-After`; past ten failures the session is ended and the
/// owner is told. The right password, guessed late, changes nothing. (Before: 100 guesses in a
/// second, 99×403 then 204 and the password was theirs.)
async fn a_stolen_session_cannot_brute_force_the_password(profile: Profile) {
    let app = TestApp::spawn(profile).await;
    let email = app.verified_user().await;
    let attacker = client_from(&app, 66);
    let stolen = token_of(login_from(&app, &attacker, &email, PASSWORD).await)
        .await
        .unwrap();

    let mut answers = Vec::new();
    for i in 0..12 {
        let res = attacker
            .post(app.url("/change-password"))
            .bearer_auth(&stolen)
            .json(&json!({"current_password": format!("guess number {i}"), "new_password": "the attackers own password"}))
            .send()
            .await
            .unwrap();
        if res.status() == StatusCode::TOO_MANY_REQUESTS {
            assert!(res.headers().contains_key("retry-after"));
        }
        answers.push(res.status().as_u16());
    }
    assert_eq!(&answers[..5], &[403; 5], "{answers:?}");
    assert_eq!(&answers[5..10], &[429; 5], "{answers:?}");
    assert_eq!(&answers[10..], &[401; 2], "{answers:?}");

    // The right password now: the session is gone, nothing changes.
    let res = attacker
        .post(app.url("/change-password"))
        .bearer_auth(&stolen)
        .json(&json!({"current_password": PASSWORD, "new_password": "the attackers own password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(app.me(&stolen).await.status(), StatusCode::UNAUTHORIZED);

    // The owner was told, and still gets in with their password from their own machine.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !app
        .mail
        .messages_to(&email)
        .iter()
        .any(|m| m.subject().contains("session was ended"))
    {
        assert!(Instant::now() < deadline, "no mail about the ended session");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let owner = client_from(&app, 67);
    assert_eq!(
        login_from(&app, &owner, &email, PASSWORD).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        login_from(&app, &owner, &email, "the attackers own password")
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    app.cleanup().await;
}

/// One client flooding wrong change-password requests through its session must not take the
/// hasher from everybody else: another user's logins from another address keep working.
/// (Before: 200 parallel requests from one IP, and another user's correct logins got 503.)
async fn one_client_cannot_starve_the_hasher_for_others(profile: Profile) {
    let app = TestApp::spawn_with(
        profile,
        &[
            ("ARGON2_WORKERS", "1"),
            ("ARGON2_QUEUE", "4"),
            ("RATE_LIMIT_LOGIN_PER_IP", "off"),
            REAL_HASHING[0],
            REAL_HASHING[1],
        ],
    )
    .await;
    let attacker_email = app.verified_user().await;
    let victim_email = app.verified_user().await;
    let attacker = client_from(&app, 70);
    let token = token_of(login_from(&app, &attacker, &attacker_email, PASSWORD).await)
        .await
        .unwrap();

    let until = Instant::now() + Duration::from_secs(3);
    let flood: Vec<_> = (0..16)
        .map(|_| {
            let (client, url, token) = (attacker.clone(), app.url("/change-password"), token.clone());
            tokio::spawn(async move {
                let mut statuses = Vec::new();
                while Instant::now() < until {
                    let res = client
                        .post(&url)
                        .bearer_auth(&token)
                        .json(&json!({"current_password": "wrong wrong wrong", "new_password": "whatever it takes"}))
                        .send()
                        .await
                        .unwrap();
                    statuses.push(res.status().as_u16());
                }
                statuses
            })
        })
        .collect();

    let victim = client_from(&app, 71);
    tokio::time::sleep(Duration::from_millis(200)).await;
    for i in 0..5 {
        let res = login_from(&app, &victim, &victim_email, PASSWORD).await;
        assert_eq!(
            res.status(),
            StatusCode::OK,
            "victim login {i} during the flood"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let mut statuses = Vec::new();
    for f in flood {
        statuses.extend(f.await.unwrap());
    }
    assert!(
        !statuses.contains(&204),
        "the flood never changed the password"
    );
    assert!(
        statuses.len() > 20,
        "the flood was a flood: {} requests",
        statuses.len()
    );
    app.cleanup().await;
}

/// Two signups for one address, a cooldown apart: `first_password` then `second_password`.
/// Returns the codes of both mails.
async fn two_signups(app: &TestApp, email: &str, first: &str, second: &str) -> (String, String) {
    assert_eq!(app.signup(email, first).await.status(), StatusCode::CREATED);
    let first_code = app.nth_code(email, 1).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        app.signup(email, second).await.status(),
        StatusCode::CREATED
    );
    let second_code = app.nth_code(email, 2).await;
    let again = &app.mail.messages_to(email)[1];
    assert!(
        again.text_body().contains("asked again"),
        "the second mail says it is a repeated request: {}",
        again.text_body()
    );
    (first_code, second_code)
}

/// The owner's code verifies the account with the owner's password, and `other` opens nothing.
async fn owners_code_gives_the_owners_password(
    app: &TestApp,
    email: &str,
    code: &str,
    other: &str,
) {
    assert_eq!(app.verify(email, code).await.status(), StatusCode::OK);
    assert_eq!(app.login(email, PASSWORD).await.status(), StatusCode::OK);
    assert_eq!(
        app.login(email, other).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

/// The owner signs up; a moment later someone else signs up with the owner's address and a
/// password of their own. The owner's code still verifies, with the owner's password; the
/// other password opens nothing. (Before: the owner's code answered 400 and the newest code
/// verified the account with the other party's password.)
async fn a_later_signup_cannot_take_over_a_pending_account(profile: Profile) {
    let app = TestApp::spawn_with(profile, &[("MAIL_COOLDOWN", "1s")]).await;
    let email = app.email();
    let (owners_code, _) = two_signups(&app, &email, PASSWORD, "the strangers password").await;

    owners_code_gives_the_owners_password(&app, &email, &owners_code, "the strangers password")
        .await;
    app.cleanup().await;
}

/// The other order: a stranger first, then the owner, who verifies with the code of their own
/// signup and gets their own password.
async fn an_earlier_signup_cannot_take_over_a_pending_account(profile: Profile) {
    let app = TestApp::spawn_with(profile, &[("MAIL_COOLDOWN", "1s")]).await;
    let email = app.email();
    let (_, owners_code) = two_signups(&app, &email, "the strangers password", PASSWORD).await;

    owners_code_gives_the_owners_password(&app, &email, &owners_code, "the strangers password")
        .await;
    app.cleanup().await;
}

/// Several later signups by someone else cannot push the owner's code out: the code of the
/// signup that created the account stays valid for its lifetime, whatever came after it.
/// (Found by an outside test: three later signups evicted it, leaving the owner only codes
/// bound to the other party's passwords.)
async fn many_later_signups_cannot_push_out_the_owners_code(profile: Profile) {
    let app = TestApp::spawn_with(profile, &[("MAIL_COOLDOWN", "1s")]).await;
    let email = app.email();
    let (owners_code, _) = two_signups(&app, &email, PASSWORD, "the strangers password").await;
    for n in 3..=5 {
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let res = app
            .signup(&email, &format!("the strangers password {n}"))
            .await;
        assert_eq!(res.status(), StatusCode::CREATED);
        app.nth_code(&email, n).await;
    }
    owners_code_gives_the_owners_password(&app, &email, &owners_code, "the strangers password 5")
        .await;
    app.cleanup().await;
}

/// Wrong reset codes get the same answers whether or not the address has an account (and so a
/// code): five `invalid_otp`, then `too_many_attempts`. (Found by an outside test: only a real
/// account's code ran out of attempts.)
async fn wrong_reset_codes_do_not_tell_whether_an_account_exists(profile: Profile) {
    let app = TestApp::spawn(profile).await;
    let known = app.verified_user().await;
    let unknown = app.email();
    let mut answers = Vec::new();
    for email in [&known, &unknown] {
        let res = app.post("/forgot-password", &json!({"email": email})).await;
        assert_eq!(res.status(), StatusCode::ACCEPTED);
        let mut these = Vec::new();
        for _ in 0..6 {
            let body =
                json!({"email": email, "otp": "000000", "new_password": "a brand new passphrase"});
            let res = app.post("/reset-password", &body).await;
            let status = res.status().as_u16();
            these.push((status, error_code(res).await));
        }
        answers.push(these);
    }
    assert_eq!(answers[0], answers[1]);
    assert_eq!(answers[0][5], (429, "too_many_attempts".to_owned()));
    app.cleanup().await;
}

/// A login code asked for before a password reset opens nothing after it. (Found by an outside
/// test: it still logged in.)
async fn a_login_code_dies_with_a_password_reset(profile: Profile) {
    let app = TestApp::spawn(profile).await;
    let email = app.verified_user().await;
    let res = app.post("/login/code", &json!({"email": email})).await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let login_code = app.nth_code(&email, 2).await;
    let res = app.post("/forgot-password", &json!({"email": email})).await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let reset_code = app.nth_code(&email, 3).await;
    let body = json!({"email": email, "otp": reset_code, "new_password": "a brand new passphrase"});
    assert_eq!(
        app.post("/reset-password", &body).await.status(),
        StatusCode::OK
    );
    let res = app
        .post(
            "/login/code/verify",
            &json!({"email": email, "otp": login_code}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    app.cleanup().await;
}

/// A reset code mailed before a password change, or before another reset code was used, sets
/// no password after it. (Found by an outside test: such codes still reset the password for
/// the rest of their ten minutes.)
async fn a_reset_code_dies_with_a_password_change_or_another_reset(profile: Profile) {
    let owned = TestApp::spawn_with(profile, &[("MAIL_COOLDOWN", "1s")]).await;
    let app = &owned;
    let email = app.verified_user().await;
    let forgot = || async { app.post("/forgot-password", &json!({"email": email})).await };
    assert_eq!(forgot().await.status(), StatusCode::ACCEPTED);
    let before_change = app.nth_code(&email, 2).await;
    let token = app.token(&email, PASSWORD).await;
    let changed = "a brand new passphrase";
    let body = json!({"current_password": PASSWORD, "new_password": changed});
    let res = app.post_auth("/change-password", &token, Some(&body)).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let reset = |code: String, password: &'static str| {
        let body = json!({"email": email, "otp": code, "new_password": password});
        async move { app.post("/reset-password", &body).await }
    };
    let res = reset(before_change, "the strangers password").await;
    assert_eq!(
        res.status(),
        StatusCode::BAD_REQUEST,
        "dead after the change"
    );

    // Two live reset codes; the first one used kills the other. (The password-changed notice
    // is the third mail; wait for it, so the codes are the fourth and fifth.)
    while app.mail.count_to(&email) < 3 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(forgot().await.status(), StatusCode::ACCEPTED);
    let first = app.nth_code(&email, 4).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(forgot().await.status(), StatusCode::ACCEPTED);
    let second = app.nth_code(&email, 5).await;
    assert_eq!(
        reset(first, "the owners next passphrase").await.status(),
        StatusCode::OK
    );
    let res = reset(second, "the strangers password").await;
    assert_eq!(
        res.status(),
        StatusCode::BAD_REQUEST,
        "dead after the reset"
    );
    assert_eq!(
        app.login(&email, "the owners next passphrase")
            .await
            .status(),
        StatusCode::OK
    );
    owned.cleanup().await;
}

/// A stranger signs up with the owner's address; moments later, inside the mail cooldown, the
/// owner signs up with their own password. The owner's signup is not dropped: its code (in a
/// second mail) verifies the account with the owner's password, and so does a later resend.
/// (Found by an outside test: inside the cooldown the owner's signup changed nothing, and every
/// code the owner could get set the stranger's password.)
async fn a_signup_inside_a_strangers_cooldown_still_counts(profile: Profile) {
    let app = TestApp::spawn(profile).await;
    let email = app.email();
    let stranger = "the strangers password";
    assert_eq!(
        app.signup(&email, stranger).await.status(),
        StatusCode::CREATED
    );
    app.nth_code(&email, 1).await;
    assert_eq!(
        app.signup(&email, PASSWORD).await.status(),
        StatusCode::CREATED
    );
    let owners_code = app.nth_code(&email, 2).await;
    let res = app.post("/resend-otp", &json!({"email": email})).await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    owners_code_gives_the_owners_password(&app, &email, &owners_code, stranger).await;
    app.cleanup().await;
}

/// The owner signs up, a stranger signs up again with the owner's address, and the owner asks
/// for the code again: no code bound to the stranger's password comes, and the owner's own
/// code still gives the owner's password. (Found by an outside test: the resend mailed a code
/// that set the stranger's password.)
async fn a_resend_after_a_strangers_signup_does_not_carry_the_strangers_password(profile: Profile) {
    let app = TestApp::spawn_with(profile, &[("MAIL_COOLDOWN", "1s")]).await;
    let email = app.email();
    let stranger = "the strangers password";
    let (owners_code, _) = two_signups(&app, &email, PASSWORD, stranger).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let res = app.post("/resend-otp", &json!({"email": email})).await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    app.mail
        .assert_no_new_mail(&email, Duration::from_millis(500))
        .await;
    assert_eq!(app.mail.count_to(&email), 2, "no third mail");
    owners_code_gives_the_owners_password(&app, &email, &owners_code, stranger).await;
    app.cleanup().await;
}

/// A signup answers alike for a new address and a taken one, down to the precision of the
/// times in the body. (Found by an outside test: 6 fractional digits for a new account, 9 for
/// the answer about a taken address.)
async fn signup_times_do_not_tell_a_taken_address(profile: Profile) {
    let app = TestApp::spawn(profile).await;
    let taken = app.verified_user().await;
    let mut shapes = Vec::new();
    for email in [app.email(), taken] {
        let res = app.signup(&email, PASSWORD).await;
        assert_eq!(res.status(), StatusCode::CREATED);
        let body: Value = res.json().await.unwrap();
        let created = body["user"]["created_at"].as_str().unwrap().to_owned();
        shapes.push(created.len());
    }
    assert_eq!(shapes[0], shapes[1], "created_at has the same form");
    app.cleanup().await;
}

crate::both_profiles!(
    a_login_code_dies_with_a_password_reset,
    a_resend_after_a_strangers_signup_does_not_carry_the_strangers_password,
    a_reset_code_dies_with_a_password_change_or_another_reset,
    a_signup_inside_a_strangers_cooldown_still_counts,
    signup_times_do_not_tell_a_taken_address,
    wrong_reset_codes_do_not_tell_whether_an_account_exists,
    many_later_signups_cannot_push_out_the_owners_code,
    a_later_signup_cannot_take_over_a_pending_account,
    an_earlier_signup_cannot_take_over_a_pending_account,
    a_login_racing_a_reset_keeps_no_session,
    a_login_racing_a_password_change_keeps_no_session,
    a_login_racing_logout_everywhere_keeps_no_session,
    a_stolen_session_cannot_brute_force_the_password,
    one_client_cannot_starve_the_hasher_for_others,
);

//! Change of address (`POST /me/email`, `POST /me/email/confirm`), black box on both
//! profiles: each test is named after what it stops.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;

both_profiles!(
    an_address_changes_only_with_the_code_from_the_new_mailbox,
    a_change_request_does_not_tell_whether_the_new_address_is_taken,
    a_stolen_session_cannot_brute_force_the_password_through_a_change_of_address,
    a_change_code_cannot_be_guessed,
    two_accounts_moving_to_one_address_get_one_owner_and_no_conflict_answer,
    a_password_reset_cancels_a_pending_change_of_address,
    a_change_of_address_racing_logout_everywhere_keeps_no_session,
    bad_change_requests_get_json_errors_and_change_nothing,
    a_pending_signup_does_not_block_a_move_to_its_address,
    a_password_change_racing_a_confirmed_change_of_address_cannot_both_succeed,
);

async fn request_change(app: &TestApp, token: &str, new_email: &str) -> reqwest::Response {
    app.post_auth(
        "/me/email",
        token,
        Some(&json!({"new_email": new_email, "password": PASSWORD})),
    )
    .await
}

async fn confirm_change(
    app: &TestApp,
    token: &str,
    new_email: &str,
    code: &str,
) -> reqwest::Response {
    app.post_auth(
        "/me/email/confirm",
        token,
        Some(&json!({"new_email": new_email, "otp": code})),
    )
    .await
}

/// The kinds in the session's security history, waiting up to 10 s for `wanted` (events are
/// written by a task of their own).
async fn history_has(app: &TestApp, token: &str, wanted: &str) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let res = app.get_auth("/me/events?limit=100", token).await;
        if res.status() == StatusCode::OK {
            let page: Value = res.json().await.unwrap();
            if page["events"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["kind"] == wanted)
            {
                return true;
            }
        }
        if tokio::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Someone with the password (and a session) cannot move the account to an address whose
/// mailbox they do not read: the move needs the code mailed there. The owner's mailbox is told
/// of the request and of the move; the move ends every other session (the one that asked
/// keeps working, with the new address), the old address no longer logs in, the new one does,
/// and the security history records it. A code works only for the address it was mailed to.
async fn an_address_changes_only_with_the_code_from_the_new_mailbox(profile: Profile) {
    let app = TestApp::spawn(profile).await;
    let old = app.verified_user().await;
    let token = app.token(&old, PASSWORD).await;
    let other_device = app.token(&old, PASSWORD).await;
    let new = app.email();
    let elsewhere = app.email();
    let mails_to_old = app.mail.count_to(&old);

    let res = request_change(&app, &token, &new).await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let code = app.nth_code(&new, 1).await;
    let deadline = tokio::time::Instant::now() + MAIL_WAIT;
    while app.mail.count_to(&old) <= mails_to_old {
        assert!(tokio::time::Instant::now() < deadline, "no notice to {old}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let requested = app.mail.messages_to(&old).pop().unwrap();
    assert!(
        requested.try_code().is_none(),
        "the old address gets no code"
    );
    assert!(
        requested.subject().contains("change"),
        "{}",
        requested.subject()
    );

    // Nothing moved yet.
    let me: Value = app.me(&token).await.json().await.unwrap();
    assert_eq!(me["user"]["email"], old.as_str());
    // The code is bound to the address it was mailed to.
    let res = confirm_change(&app, &token, &elsewhere, &code).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(res).await, "invalid_otp");

    let res = confirm_change(&app, &token, &new, &code).await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["user"]["email"], new.as_str());
    assert_eq!(body["user"]["email_verified"], true);

    // Single use.
    let res = confirm_change(&app, &token, &new, &code).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);

    let me: Value = app.me(&token).await.json().await.unwrap();
    assert_eq!(me["user"]["email"], new.as_str(), "this session follows");
    assert_eq!(
        app.me(&other_device).await.status(),
        StatusCode::UNAUTHORIZED,
        "every other session ends"
    );
    assert_eq!(
        app.login(&old, PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(app.login(&new, PASSWORD).await.status(), StatusCode::OK);
    let changed = {
        let deadline = tokio::time::Instant::now() + MAIL_WAIT;
        loop {
            let last = app.mail.messages_to(&old).pop().unwrap();
            if last.subject().contains("was changed") {
                break last;
            }
            assert!(tokio::time::Instant::now() < deadline, "no changed notice");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    assert!(changed.try_code().is_none());
    assert!(history_has(&app, &token, "email_change_requested").await);
    assert!(history_has(&app, &token, "email_changed").await);
    app.cleanup().await;
}

/// The answer to a change request is the same whether or not the new address has an account,
/// in status, body and time; the owner of a taken address gets a notice without a code.
async fn a_change_request_does_not_tell_whether_the_new_address_is_taken(profile: Profile) {
    let app = TestApp::spawn(profile).await;
    let taken = app.verified_user().await;
    let mut times = (Vec::new(), Vec::new());
    let mut bodies = Vec::new();
    for round in 0..6 {
        for to_taken in [true, false] {
            let email = app.verified_user().await;
            let token = app.token(&email, PASSWORD).await;
            let target = if to_taken { taken.clone() } else { app.email() };
            let started = Instant::now();
            let res = request_change(&app, &token, &target).await;
            let elapsed = started.elapsed();
            let status = res.status();
            let body: Value = res.json().await.unwrap();
            bodies.push((status, body));
            if round > 0 {
                if to_taken {
                    times.0.push(elapsed);
                } else {
                    times.1.push(elapsed);
                }
            }
        }
    }
    assert!(
        bodies.windows(2).all(|w| w[0] == w[1]),
        "answers differ: {bodies:?}"
    );
    assert_eq!(bodies[0].0, StatusCode::ACCEPTED);
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let (taken_median, free_median) = (median(&mut times.0), median(&mut times.1));
    let diff = taken_median.abs_diff(free_median);
    assert!(
        diff < Duration::from_millis(40).max(free_median / 2),
        "taken {taken_median:?} against free {free_median:?}"
    );
    // The taken address's owner was told, never given a code.
    let deadline = tokio::time::Instant::now() + MAIL_WAIT;
    loop {
        let notices: Vec<_> = app.mail.messages_to(&taken).into_iter().skip(1).collect();
        if notices.len() >= 6 {
            assert!(notices.iter().all(|m| m.try_code().is_none()));
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "notices missing");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    app.cleanup().await;
}

/// Someone holding a stolen session guesses the password through the change of address: five
/// checks per quarter hour (the re-authentication budget that change-password spends too),
/// then 429; past ten failures the session is ended. The right password, guessed late, moves
/// nothing and mails no code.
async fn a_stolen_session_cannot_brute_force_the_password_through_a_change_of_address(
    profile: Profile,
) {
    let app = TestApp::spawn(profile).await;
    let email = app.verified_user().await;
    let stolen = app.token(&email, PASSWORD).await;
    let target = app.email();
    let mut answers = Vec::new();
    for i in 0..12 {
        let res = app
            .post_auth(
                "/me/email",
                &stolen,
                Some(&json!({"new_email": target, "password": format!("guess number {i}")})),
            )
            .await;
        answers.push(res.status().as_u16());
    }
    assert_eq!(&answers[..5], &[403; 5], "{answers:?}");
    assert_eq!(&answers[5..10], &[429; 5], "{answers:?}");
    assert_eq!(&answers[10..], &[401; 2], "{answers:?}");
    let res = request_change(&app, &stolen, &target).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    app.mail
        .assert_no_new_mail(&target, Duration::from_millis(300))
        .await;
    assert_eq!(app.mail.count_to(&target), 0);
    app.cleanup().await;
}

/// The code is six digits and gets five tries: then it is dead, even with the right digits.
async fn a_change_code_cannot_be_guessed(profile: Profile) {
    let app = TestApp::spawn(profile).await;
    let email = app.verified_user().await;
    let token = app.token(&email, PASSWORD).await;
    let new = app.email();
    assert_eq!(
        request_change(&app, &token, &new).await.status(),
        StatusCode::ACCEPTED
    );
    let code = app.nth_code(&new, 1).await;
    let wrong = if code == "000000" { "000001" } else { "000000" };
    for _ in 0..5 {
        let res = confirm_change(&app, &token, &new, wrong).await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
        assert_eq!(error_code(res).await, "invalid_otp");
    }
    let res = confirm_change(&app, &token, &new, &code).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(error_code(res).await, "too_many_attempts");
    let me: Value = app.me(&token).await.json().await.unwrap();
    assert_eq!(me["user"]["email"], email.as_str());
    app.cleanup().await;
}

/// Two accounts with codes for one address confirm at the same moment: one gets the address,
/// the other a plain `invalid_otp` (never 409 or 500) and keeps its own; the mailbox is told.
async fn two_accounts_moving_to_one_address_get_one_owner_and_no_conflict_answer(profile: Profile) {
    let app = TestApp::spawn(profile).await;
    let target = app.email();
    let mut racers = Vec::new();
    for n in 1..=2 {
        let email = app.verified_user().await;
        let token = app.token(&email, PASSWORD).await;
        assert_eq!(
            request_change(&app, &token, &target).await.status(),
            StatusCode::ACCEPTED
        );
        let code = app.nth_code(&target, n).await;
        racers.push((email, token, code));
    }
    let (a, b) = (&racers[0], &racers[1]);
    let (ra, rb) = tokio::join!(
        confirm_change(&app, &a.1, &target, &a.2),
        confirm_change(&app, &b.1, &target, &b.2)
    );
    let mut statuses = [ra.status().as_u16(), rb.status().as_u16()];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 400]);
    let (winner, loser) = if ra.status() == StatusCode::OK {
        (a, (b, rb))
    } else {
        (b, (a, ra))
    };
    assert_eq!(error_code(loser.1).await, "invalid_otp");
    let me: Value = app.me(&loser.0 .1).await.json().await.unwrap();
    assert_eq!(me["user"]["email"], loser.0 .0.as_str());
    let me: Value = app.me(&winner.1).await.json().await.unwrap();
    assert_eq!(me["user"]["email"], target.as_str());
    // The mailbox that holds both codes learns why the second did nothing.
    let deadline = tokio::time::Instant::now() + MAIL_WAIT;
    while app.mail.count_to(&target) < 3 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no notice of the lost move"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    app.cleanup().await;
}

/// The owner, seeing the "change requested" notice, resets the password: the code mailed to
/// the attacker's address is worthless from then on.
async fn a_password_reset_cancels_a_pending_change_of_address(profile: Profile) {
    let app = TestApp::spawn(profile).await;
    let email = app.verified_user().await;
    let stolen = app.token(&email, PASSWORD).await;
    let attackers = app.email();
    assert_eq!(
        request_change(&app, &stolen, &attackers).await.status(),
        StatusCode::ACCEPTED
    );
    let code = app.nth_code(&attackers, 1).await;
    // A second session of the attacker's, opened with the password, survives nothing either.
    let attacker_again = app.token(&email, PASSWORD).await;

    // The verification code, then the notice of the request.
    let deadline = tokio::time::Instant::now() + MAIL_WAIT;
    while app.mail.count_to(&email) < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no notice to {email}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mails = app.mail.count_to(&email);
    let res = app.post("/forgot-password", &json!({"email": email})).await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let reset_code = app.nth_code(&email, mails + 1).await;
    let res = app
        .post(
            "/reset-password",
            &json!({"email": email, "otp": reset_code, "new_password": "the owners new passphrase"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);

    for token in [&stolen, &attacker_again] {
        let res = confirm_change(&app, token, &attackers, &code).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    let owner = app.token(&email, "the owners new passphrase").await;
    let res = confirm_change(&app, &owner, &attackers, &code).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let me: Value = app.me(&owner).await.json().await.unwrap();
    assert_eq!(me["user"]["email"], email.as_str());
    app.cleanup().await;
}

/// A change of address and a logout everywhere at the same moment: whichever wins, the
/// loser's answer says so and nothing outlives a logout everywhere that answered 204 (a
/// change that finished first ended the owner's session, so the logout found nothing to do).
async fn a_change_of_address_racing_logout_everywhere_keeps_no_session(profile: Profile) {
    let app = TestApp::spawn(profile).await;
    for _ in 0..4 {
        let email = app.verified_user().await;
        let changer = app.token(&email, PASSWORD).await;
        let owner = app.token(&email, PASSWORD).await;
        let new = app.email();
        assert_eq!(
            request_change(&app, &changer, &new).await.status(),
            StatusCode::ACCEPTED
        );
        let code = app.nth_code(&new, 1).await;
        let (confirmed, logged_out) = tokio::join!(
            confirm_change(&app, &changer, &new, &code),
            app.post_auth("/logout-all", &owner, None)
        );
        let (confirmed, logged_out) = (confirmed.status().as_u16(), logged_out.status().as_u16());
        assert!(
            [200, 400, 401].contains(&confirmed),
            "confirm answered {confirmed}"
        );
        assert!(
            [204, 401].contains(&logged_out),
            "logout-all answered {logged_out}"
        );
        if logged_out == 204 {
            for token in [&changer, &owner] {
                assert_eq!(
                    app.me(token).await.status(),
                    StatusCode::UNAUTHORIZED,
                    "a session outlived logout-all (confirm answered {confirmed})"
                );
            }
        } else {
            assert_eq!(confirmed, 200, "logout-all lost only to a finished change");
        }
        // Either way the account answers to exactly one address.
        let moved = confirmed == 200;
        let (now, before) = if moved {
            (&new, &email)
        } else {
            (&email, &new)
        };
        assert_eq!(app.login(now, PASSWORD).await.status(), StatusCode::OK);
        assert_eq!(
            app.login(before, PASSWORD).await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    app.cleanup().await;
}

/// Odd bodies get JSON errors with the right status and change nothing; without a session
/// the answer is 401 whatever the body.
async fn bad_change_requests_get_json_errors_and_change_nothing(profile: Profile) {
    let app = TestApp::spawn(profile).await;
    let email = app.verified_user().await;
    let token = app.token(&email, PASSWORD).await;
    let cases: [(Value, u16, &str); 5] = [
        (
            json!({"new_email": "not an address", "password": PASSWORD}),
            422,
            "invalid_email",
        ),
        (
            json!({"new_email": email, "password": PASSWORD}),
            422,
            "invalid_email",
        ),
        (json!({"new_email": app.email()}), 400, "invalid_request"),
        (
            json!({"new_email": app.email(), "password": "wrong password here"}),
            403,
            "invalid_credentials",
        ),
        (json!([1, 2]), 400, "invalid_request"),
    ];
    for (body, status, code) in cases {
        let res = app.post_auth("/me/email", &token, Some(&body)).await;
        assert_eq!(res.status().as_u16(), status, "{body}");
        assert_eq!(error_code(res).await, code, "{body}");
    }
    for body in [
        json!({"new_email": app.email(), "otp": "12345"}),
        json!({"new_email": app.email(), "otp": "123456"}),
    ] {
        let res = app
            .post_auth("/me/email/confirm", &token, Some(&body))
            .await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(error_code(res).await, "invalid_otp");
    }
    let res = app
        .post(
            "/me/email",
            &json!({"new_email": app.email(), "password": PASSWORD}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let res = app
        .post("/me/email/confirm", &json!({"new_email": "x", "otp": "1"}))
        .await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let me: Value = app.me(&token).await.json().await.unwrap();
    assert_eq!(me["user"]["email"], email.as_str());
    app.cleanup().await;
}

/// A signup nobody verified does not hold an address against a move: a pending signup made
/// before the request does not stop the code (and no "address taken" notice goes to a mailbox
/// without an account), and one made after it does not kill the code. The confirmation
/// removes the pending account; its password opens nothing. Before, the first got an "address
/// taken" notice instead of a code and the second made the code answer `invalid_otp`.
async fn a_pending_signup_does_not_block_a_move_to_its_address(profile: Profile) {
    let app = TestApp::spawn(profile).await;
    let stranger_password = "a stranger's own passphrase";
    for signup_first in [true, false] {
        let old = app.verified_user().await;
        let token = app.token(&old, PASSWORD).await;
        let new = app.email();
        if signup_first {
            let res = app.signup(&new, stranger_password).await;
            assert_eq!(res.status(), StatusCode::CREATED);
        }
        let before = app.mail.count_to(&new);
        let res = request_change(&app, &token, &new).await;
        assert_eq!(res.status(), StatusCode::ACCEPTED);
        if !signup_first {
            let res = app.signup(&new, stranger_password).await;
            assert_eq!(res.status(), StatusCode::CREATED);
        }
        // The change code is the mail after the first `before` (the signup's code mail,
        // when it came later, is the one after).
        let deadline = tokio::time::Instant::now() + MAIL_WAIT;
        let code = loop {
            let change = app
                .mail
                .messages_to(&new)
                .into_iter()
                .skip(before)
                .find(|m| m.subject().to_lowercase().contains("address"));
            if let Some(mail) = change {
                break mail
                    .try_code()
                    .unwrap_or_else(|| panic!("no code in {}", mail.subject()));
            }
            assert!(tokio::time::Instant::now() < deadline, "no change mail");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let res = confirm_change(&app, &token, &new, &code).await;
        assert_eq!(res.status(), StatusCode::OK, "signup first: {signup_first}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["user"]["email"], new.as_str());
        assert_eq!(app.login(&new, PASSWORD).await.status(), StatusCode::OK);
        let res = app.login(&new, stranger_password).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    app.cleanup().await;
}

/// The owner must never be told "password changed" about an account that moved meanwhile:
/// a password change and the confirmation of a change of address, sent together, do not both
/// succeed (each is a compare-and-set on what the other changes: the move on the password hash,
/// the password change on the address). Eight rounds; before, both answered success in about
/// half of them.
async fn a_password_change_racing_a_confirmed_change_of_address_cannot_both_succeed(
    profile: Profile,
) {
    let app = TestApp::spawn_with(
        profile,
        &[("ARGON2_MEMORY_KIB", "19456"), ("ARGON2_ITERATIONS", "2")],
    )
    .await;
    let (mut both, mut moved, mut changed) = (0, 0, 0);
    for _round in 0..8 {
        let old = app.verified_user().await;
        let token = app.token(&old, PASSWORD).await;
        let new = app.email();
        assert_eq!(
            request_change(&app, &token, &new).await.status(),
            StatusCode::ACCEPTED
        );
        let code = app.nth_code(&new, 1).await;
        let body = json!({"current_password": PASSWORD, "new_password": "a brand new passphrase"});
        let (password, address) = tokio::join!(
            app.post_auth("/change-password", &token, Some(&body)),
            async {
                // The confirmation lands while the password change hashes.
                tokio::time::sleep(Duration::from_millis(5)).await;
                confirm_change(&app, &token, &new, &code).await
            }
        );
        let password_ok = password.status() == StatusCode::NO_CONTENT;
        let address_ok = address.status() == StatusCode::OK;
        both += usize::from(password_ok && address_ok);
        moved += usize::from(address_ok);
        changed += usize::from(password_ok);
    }
    assert_eq!(
        both, 0,
        "both succeeded in {both} of 8 rounds ({moved} moves, {changed} password changes)"
    );
    app.cleanup().await;
}

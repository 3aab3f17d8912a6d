//! Mail that always arrives: every mail goes through the outbox in the user database and a
//! courier delivers it, so the request path never waits on the mail server.

use std::sync::Arc;
use std::time::{Duration, Instant};

use auth_core::outbox::{MailQueue, MailSeal};
use auth_core::{
    EmailAddress, MailMessage, Mailer, OsRandom, OutboxStore, SecretString, SystemClock,
};
use auth_postgres::{PgOutbox, PgUserRepository, PostgresSettings};
use auth_testkit::smtp::MailSink;
use reqwest::StatusCode;
use secrecy::SecretBox;
use serde_json::json;

use crate::helpers::*;

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// The outbox of the server profile's database, and a queue into it sealed with the test
/// secret (what the server itself would write).
fn outbox_of(app: &TestApp) -> (PgOutbox, MailQueue) {
    let url = SecretString::from(app.var("DATABASE_URL").unwrap().to_owned());
    let repo = PgUserRepository::connect(&PostgresSettings::new(url)).unwrap();
    let secret = app.var("AUTH_SECRET").unwrap().as_bytes().to_vec();
    let seal = MailSeal::derive(&SecretBox::new(secret.into_boxed_slice())).unwrap();
    let queue = MailQueue::new(
        Arc::new(repo.outbox()),
        seal,
        Arc::new(SystemClock),
        Arc::new(OsRandom),
        Duration::from_secs(3600),
    );
    (repo.outbox(), queue)
}

/// Polls `/ready` until `check` holds for its `mail_outbox` report.
async fn until_outbox(app: &TestApp, what: &str, check: impl Fn(&serde_json::Value) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let report = app.outbox_report().await;
        if check(&report) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: the outbox reports {report}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_mail_server_outage_does_not_fail_signup_and_the_code_arrives_when_it_returns() {
    let port = free_port();
    let app = TestApp::spawn_with(
        Profile::Server,
        &[
            ("SMTP_PORT", &port.to_string()),
            ("DEPENDENCY_TIMEOUT", "1s"),
            ("OUTBOX_BACKOFF_CAP", "3s"),
        ],
    )
    .await;
    let email = app.email();
    let started = Instant::now();
    let res = app.signup(&email, PASSWORD).await;
    assert_eq!(
        res.status(),
        StatusCode::CREATED,
        "no mail server in the request path"
    );
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    until_outbox(&app, "the code waits", |r| r["pending"] == 1).await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    let sink = MailSink::start_on(port);
    let back = Instant::now();
    let mail = sink.wait_for_mail(&email, Duration::from_secs(6)).await;
    // The backoff cap (3 s here, 20 s by default), plus the poll interval.
    assert!(
        back.elapsed() < Duration::from_secs(5),
        "{:?}",
        back.elapsed()
    );
    let res = app.verify(&email, &mail.code()).await;
    assert_eq!(res.status(), StatusCode::OK, "the delayed code still works");
    until_outbox(&app, "nothing left", |r| r["pending"] == 0).await;
    app.cleanup().await;
}

#[tokio::test]
async fn a_temporary_refusal_is_retried_until_delivered_once() {
    let app = TestApp::spawn_with(Profile::Server, &[("OUTBOX_BACKOFF_CAP", "1s")]).await;
    let email = app.email();
    app.sink().refuse_recipient_times(&email, 451, 2);
    assert_eq!(
        app.signup(&email, PASSWORD).await.status(),
        StatusCode::CREATED
    );
    let mail = app
        .sink()
        .wait_for_mail(&email, Duration::from_secs(10))
        .await;
    assert_eq!(mail.code().len(), 6);
    app.sink()
        .assert_no_new_mail(&email, Duration::from_secs(2))
        .await;
    assert_eq!(
        app.sink().recipient_attempts(&email),
        3,
        "two 451s, one delivery"
    );
    app.cleanup().await;
}

#[tokio::test]
async fn a_permanent_refusal_buries_the_mail_and_suppresses_the_address_without_retries() {
    let app = TestApp::spawn_with(
        Profile::Server,
        &[("OUTBOX_BACKOFF_CAP", "1s"), ("MAIL_COOLDOWN", "0")],
    )
    .await;
    let email = app.email();
    app.sink().refuse_recipient(&email, 550);
    assert_eq!(
        app.signup(&email, PASSWORD).await.status(),
        StatusCode::CREATED
    );
    until_outbox(&app, "dead and suppressed", |r| {
        r["dead"] == 1 && r["suppressed"] == 1 && r["pending"] == 0
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        app.sink().recipient_attempts(&email),
        1,
        "no retry of a 550"
    );

    // A suppressed address answers the same, and its mail is not even tried.
    let res = app.post("/resend-otp", &json!({ "email": email })).await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    until_outbox(&app, "the resend buried too", |r| r["dead"] == 2).await;
    assert_eq!(app.sink().recipient_attempts(&email), 1);
    app.cleanup().await;
}

#[tokio::test]
async fn a_provider_bounce_report_suppresses_the_address() {
    let token = "bounce-token-bounce-token-bounce-token-0123";
    let app = TestApp::spawn_with(Profile::Server, &[("BOUNCE_WEBHOOK_TOKEN", token)]).await;
    let email = app.verified_user().await;
    let report = |auth: &str| {
        app.client
            .post(app.url("/mail/bounces"))
            .header("authorization", auth)
            .json(&json!({ "address": email, "kind": "complaint" }))
            .send()
    };
    let res = report("Bearer wrong").await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let res = report("").await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.outbox_report().await["suppressed"],
        0,
        "nothing changed"
    );
    let res = report(&format!("Bearer {token}")).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["status"], "suppressed");
    assert_eq!(app.outbox_report().await["suppressed"], 1);

    let res = app
        .post("/forgot-password", &json!({ "email": email }))
        .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED, "answers the same");
    until_outbox(&app, "the reset mail not sent", |r| r["dead"] == 1).await;
    assert_eq!(
        app.sink().count_to(&email),
        1,
        "only the signup code went out"
    );

    let res = app
        .client
        .post(app.url("/mail/bounces"))
        .header("authorization", format!("Bearer {token}"))
        .json(&json!({ "address": "not an address", "kind": "bounce" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    app.cleanup().await;
}

#[tokio::test]
async fn the_bounce_endpoint_does_not_exist_without_a_token() {
    let app = TestApp::spawn(Profile::Server).await;
    let res = app
        .post(
            "/mail/bounces",
            &json!({ "address": "a@example.com", "kind": "bounce" }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_deliver_a_thousand_queued_messages_exactly_once() {
    const MESSAGES: usize = 1000;
    let first = TestApp::spawn(Profile::Server).await;
    let shared = [
        (
            "DATABASE_URL",
            first.var("DATABASE_URL").unwrap().to_owned(),
        ),
        ("SMTP_PORT", first.sink().port().to_string()),
    ];
    let shared: Vec<(&str, &str)> = shared.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (_, queue) = outbox_of(&first);
    let addresses: Vec<String> = (0..MESSAGES).map(|_| first.email()).collect();
    for chunk in addresses.chunks(50) {
        futures::future::join_all(chunk.iter().map(|to| {
            let to = EmailAddress::parse(to).unwrap();
            let queue = &queue;
            async move {
                queue
                    .send(&to, &MailMessage::password_changed())
                    .await
                    .unwrap()
            }
        }))
        .await;
    }
    let second = TestApp::spawn_with(Profile::Server, &shared).await;
    let third = TestApp::spawn_with(Profile::Server, &shared).await;
    let started = Instant::now();
    let deadline = started + Duration::from_secs(90);
    while first.sink().messages().len() < MESSAGES {
        assert!(
            Instant::now() < deadline,
            "{} of {MESSAGES} delivered",
            first.sink().messages().len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let drained = started.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(first.sink().messages().len(), MESSAGES, "no message twice");
    for to in &addresses {
        assert_eq!(first.sink().count_to(to), 1, "exactly once to {to}");
    }
    eprintln!(
        "outbox drain: {MESSAGES} messages by three instances in {drained:?} ({:.0}/s)",
        MESSAGES as f64 / drained.as_secs_f64()
    );
    second.cleanup().await;
    third.cleanup().await;
    first.cleanup().await;
}

#[tokio::test]
async fn a_crashed_instance_s_claims_are_delivered_by_another_after_the_lease() {
    let crashed = TestApp::spawn(Profile::Server).await;
    crashed.handle().stop(true).await;
    let (store, queue) = outbox_of(&crashed);
    let email = crashed.email();
    queue
        .send(
            &EmailAddress::parse(&email).unwrap(),
            &MailMessage::password_changed(),
        )
        .await
        .unwrap();
    // The crashed instance had claimed it, for three seconds, and never reported back.
    let claimed = store
        .claim(chrono::Utc::now(), Duration::from_secs(3), 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    let claimed_at = Instant::now();
    let shared = [
        (
            "DATABASE_URL",
            crashed.var("DATABASE_URL").unwrap().to_owned(),
        ),
        ("SMTP_PORT", crashed.sink().port().to_string()),
    ];
    let shared: Vec<(&str, &str)> = shared.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let survivor = TestApp::spawn_with(Profile::Server, &shared).await;
    crashed
        .sink()
        .assert_no_new_mail(&email, Duration::from_millis(2000))
        .await;
    crashed
        .sink()
        .wait_for_mail(&email, Duration::from_secs(5))
        .await;
    assert!(
        claimed_at.elapsed() >= Duration::from_secs(3),
        "not before the lease ran out"
    );
    survivor.cleanup().await;
    crashed.cleanup().await;
}

#[tokio::test]
async fn forgot_password_takes_as_long_for_an_account_as_without_one_with_a_slow_mail_server() {
    let app = TestApp::spawn_with(
        Profile::Server,
        &[
            ("MAIL_COOLDOWN", "0"),
            ("RATE_LIMIT_FORGOT_PASSWORD_PER_IP", "1000/1h"),
            ("RATE_LIMIT_FORGOT_PASSWORD_PER_EMAIL", "1000/1h"),
            ("RATE_LIMIT_MAIL_PER_EMAIL", "1000/1h"),
            ("UNIFORM_ANSWER_TIME", "50ms"),
        ],
    )
    .await;
    let known = app.verified_user().await;
    app.sink().set_latency(Duration::from_millis(60));
    let time = |email: String| {
        let app = &app;
        async move {
            let started = Instant::now();
            let res = app
                .post("/forgot-password", &json!({ "email": email }))
                .await;
            assert_eq!(res.status(), StatusCode::ACCEPTED);
            started.elapsed()
        }
    };
    let (mut with, mut without) = (Vec::new(), Vec::new());
    for _ in 0..15 {
        with.push(time(known.clone()).await);
        without.push(time(app.email()).await);
    }
    with.sort();
    without.sort();
    let (with, without) = (with[7], without[7]);
    eprintln!(
        "forgot-password medians with a 60 ms mail server: account {with:?}, none {without:?}"
    );
    assert!(
        with < Duration::from_millis(60),
        "the mail server is not in the path: {with:?}"
    );
    let gap = with.abs_diff(without);
    assert!(gap < Duration::from_millis(3), "{with:?} vs {without:?}");
    app.cleanup().await;
}

#[tokio::test]
async fn queued_mail_is_sealed_in_the_database() {
    let port = free_port();
    let app = TestApp::spawn_with(Profile::Server, &[("SMTP_PORT", &port.to_string())]).await;
    let email = app.email();
    assert_eq!(
        app.signup(&email, PASSWORD).await.status(),
        StatusCode::CREATED
    );
    until_outbox(&app, "queued", |r| r["pending"] == 1).await;
    let url = app.var("DATABASE_URL").unwrap().to_owned();
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let row = client
        .query_one("SELECT kind, sealed FROM mail_outbox", &[])
        .await
        .unwrap();
    let kind: String = row.get(0);
    let sealed: Vec<u8> = row.get(1);
    assert_eq!(kind, "verify_email");
    let text = String::from_utf8_lossy(&sealed);
    assert!(
        !text.contains("valid_for") && !text.contains("code"),
        "sealed: {text}"
    );
    // The code the server will mail is not among the six-digit runs of the row either.
    let sink = MailSink::start_on(port);
    let code = sink
        .wait_for_mail(&email, Duration::from_secs(30))
        .await
        .code();
    assert!(!sealed.windows(6).any(|w| w == code.as_bytes()));
    // The courier deletes the row once the mail server has taken the message.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left: i64 = client
            .query_one("SELECT count(*) FROM mail_outbox", &[])
            .await
            .unwrap()
            .get(0);
        if left == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "erased once delivered: {left} rows left"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    app.cleanup().await;
}

/// The signup request's `Accept-Language` picks the language of the account's mail, now and
/// later (stored with the account), whoever asks later.
async fn mail_is_written_in_the_language_of_the_signup_request(profile: Profile) {
    let app = TestApp::spawn(profile).await;
    let email = app.email();
    let res = app
        .client
        .post(app.url("/signup"))
        .header("accept-language", "de-CH, de;q=0.9, en;q=0.5")
        .json(&json!({ "email": email, "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let code = app.nth_code(&email, 1).await;
    let mail = &app.mail.messages_to(&email)[0];
    assert!(
        mail.subject().contains("Bestätigungscode"),
        "{}",
        mail.subject()
    );
    assert_eq!(mail.header("content-language").as_deref(), Some("de"));
    assert_eq!(app.verify(&email, &code).await.status(), StatusCode::OK);

    // A reset asked for by a client that prefers English is still in the account's language.
    let res = app
        .client
        .post(app.url("/forgot-password"))
        .header("accept-language", "en")
        .json(&json!({ "email": email }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    app.nth_code(&email, 2).await;
    let reset = &app.mail.messages_to(&email)[1];
    assert_eq!(reset.header("content-language").as_deref(), Some("de"));

    // Without a preference: English.
    let other = app.email();
    assert_eq!(
        app.signup(&other, PASSWORD).await.status(),
        StatusCode::CREATED
    );
    app.nth_code(&other, 1).await;
    let mail = &app.mail.messages_to(&other)[0];
    assert!(
        mail.subject().contains("verification code"),
        "{}",
        mail.subject()
    );
    app.cleanup().await;
}

crate::both_profiles!(
    mail_is_written_in_the_language_of_the_signup_request,
    no_account_or_password_change_without_its_mail
);

/// The backlog moves when a request queues mail for an account, so only operators see it.
/// (Found by an outside test: polling `/ready` while asking for a reset told which addresses
/// have accounts.)
#[tokio::test]
async fn only_operators_see_the_mail_backlog() {
    let port = free_port();
    let app = TestApp::spawn_with(Profile::Server, &[("SMTP_PORT", &port.to_string())]).await;
    let email = app.email();
    assert_eq!(
        app.signup(&email, PASSWORD).await.status(),
        StatusCode::CREATED
    );
    until_outbox(&app, "the code waits", |r| r["pending"] == 1).await;
    for auth in [None, Some("Bearer wrong-token"), Some("Bearer ")] {
        let mut req = app.client.get(app.url("/ready"));
        if let Some(auth) = auth {
            req = req.header("authorization", auth);
        }
        let ready: serde_json::Value = req.send().await.unwrap().json().await.unwrap();
        assert_eq!(ready["status"], "ok");
        assert!(ready.get("mail_outbox").is_none(), "{auth:?}: {ready}");
    }
    app.cleanup().await;
}

/// Without the token, the bounce endpoint says nothing about what it would accept.
#[tokio::test]
async fn the_bounce_endpoint_checks_the_token_before_the_body() {
    let token = "bounce-token-bounce-token-bounce-token-0123";
    let app = TestApp::spawn_with(Profile::Server, &[("BOUNCE_WEBHOOK_TOKEN", token)]).await;
    for (content_type, body) in [
        ("application/json", "{\"nope\": 1}"),
        ("text/plain", "hello"),
        ("application/json", "not json"),
    ] {
        let res = app
            .client
            .post(app.url("/mail/bounces"))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.status(),
            StatusCode::UNAUTHORIZED,
            "{content_type} {body}"
        );
    }
    let with_token = |content_type: &'static str, body: &'static str| {
        app.client
            .post(app.url("/mail/bounces"))
            .bearer_auth(token)
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let res = with_token("text/plain", "hello").await.unwrap();
    assert_eq!(res.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let res = with_token("application/json", "{\"nope\": 1}")
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    app.cleanup().await;
}

/// An oversized bounce report gets the API's JSON 413, like every other error.
#[tokio::test]
async fn an_oversized_bounce_report_gets_a_json_413() {
    let token = "bounce-token-bounce-token-bounce-token-0123";
    let app = TestApp::spawn_with(Profile::Server, &[("BOUNCE_WEBHOOK_TOKEN", token)]).await;
    let res = app
        .client
        .post(app.url("/mail/bounces"))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body("x".repeat(20_000))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(error_code(res).await, "payload_too_large");
    app.cleanup().await;
}

/// Makes the database refuse to queue mail to `addresses` (a trigger on the outbox table).
async fn refuse_mail_to(app: &TestApp, addresses: &[&str]) {
    let list = addresses
        .iter()
        .map(|a| format!("'{a}'"))
        .collect::<Vec<_>>()
        .join(", ");
    app.execute_sql(
        &format!(
            "CREATE FUNCTION refuse_mail() RETURNS trigger AS $$
             BEGIN
                 IF lower(NEW.recipient) IN ({list}) THEN
                     RAISE EXCEPTION 'mail refused by the test';
                 END IF;
                 RETURN NEW;
             END $$ LANGUAGE plpgsql;
             CREATE TRIGGER refuse_mail BEFORE INSERT ON mail_outbox
                 FOR EACH ROW EXECUTE FUNCTION refuse_mail();"
        ),
        &format!(
            "CREATE TRIGGER refuse_mail BEFORE INSERT ON mail_outbox
             WHEN lower(NEW.recipient) IN ({list})
             BEGIN SELECT RAISE(ABORT, 'mail refused by the test'); END"
        ),
    )
    .await;
}

async fn accept_mail_again(app: &TestApp) {
    app.execute_sql(
        "DROP TRIGGER refuse_mail ON mail_outbox; DROP FUNCTION refuse_mail();",
        "DROP TRIGGER refuse_mail",
    )
    .await;
}

/// A change and its mail are one transaction: when the mail cannot be queued, the signup
/// leaves no account and the password change leaves the old password; once mail can be
/// queued again the same signup creates the account with its code. (Before, the account was
/// written first and its mail afterwards, so a failure in between left an account whose code
/// mail never existed, and a password change whose notice was lost.)
async fn no_account_or_password_change_without_its_mail(profile: Profile) {
    let app = TestApp::spawn(profile).await;
    let owner = app.verified_user().await;
    let token = app.token(&owner, PASSWORD).await;
    let stranger = app.email();
    let accounts = app.user_rows().await;
    refuse_mail_to(&app, &[&owner, &stranger]).await;

    let res = app.signup(&stranger, PASSWORD).await;
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        app.user_rows().await,
        accounts,
        "no account without its mail"
    );

    let res = app
        .post_auth(
            "/change-password",
            &token,
            Some(&json!({"current_password": PASSWORD, "new_password": "an entirely new passphrase"})),
        )
        .await;
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        app.login(&owner, PASSWORD).await.status(),
        StatusCode::OK,
        "the password did not change without its notice"
    );
    assert_eq!(
        app.me(&token).await.status(),
        StatusCode::OK,
        "no session was ended"
    );

    accept_mail_again(&app).await;
    assert_eq!(
        app.signup(&stranger, PASSWORD).await.status(),
        StatusCode::CREATED
    );
    let code = app.nth_code(&stranger, 1).await;
    assert_eq!(app.verify(&stranger, &code).await.status(), StatusCode::OK);
    assert_eq!(
        app.login(&stranger, PASSWORD).await.status(),
        StatusCode::OK
    );
    assert_eq!(app.user_rows().await, accounts + 1);
    app.cleanup().await;
}

//! Abuse resistance: one test per threat, named after it. Tight limits come in through
//! `spawn_with`, so each test trips its defence in a handful of requests; without the defence
//! each of them fails.

use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::{Response, StatusCode};
use serde_json::{json, Value};

use crate::helpers::*;

/// A request that arrived through the trusted proxy on 127.0.0.1 for `client`.
async fn post_from(app: &TestApp, client: &str, path: &str, body: &Value) -> Response {
    app.client
        .post(app.url(path))
        .header("x-forwarded-for", client)
        .json(body)
        .send()
        .await
        .unwrap()
}

fn retry_after(res: &Response) -> u64 {
    res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// A 429 from a rate limit: the JSON error and a `Retry-After` of at least one second.
async fn assert_rate_limited(res: Response) -> u64 {
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let secs = retry_after(&res);
    assert!(secs >= 1);
    assert_eq!(res.headers()["cache-control"], "no-store");
    assert_eq!(error_code(res).await, "too_many_requests");
    secs
}

fn wrong_code(code: &str, n: u32) -> String {
    let c: u32 = code.parse().unwrap();
    format!("{:06}", (c + n) % 1_000_000)
}

async fn otp_cannot_be_brute_forced(profile: Profile) {
    let app = TestApp::spawn_with(
        profile,
        &[
            ("MAIL_COOLDOWN", "0"),
            ("RATE_LIMIT_VERIFY_OTP_PER_EMAIL", "14/1h"),
        ],
    )
    .await;
    let email = app.email();
    app.signup(&email, PASSWORD).await;
    let code = app.nth_code(&email, 1).await;

    // Per code: ten parallel wrong guesses; the store counts atomically, so no race lets a
    // sixth one be checked.
    let wrong: Vec<String> = (1..=10).map(|n| wrong_code(&code, n)).collect();
    let guesses = wrong.iter().map(|c| app.verify(&email, c));
    let mut refused = 0;
    for res in futures::future::join_all(guesses).await {
        match res.status() {
            // Wrong, or no code left (it died under a sixth attempt).
            StatusCode::BAD_REQUEST => assert_eq!(error_code(res).await, "invalid_otp"),
            StatusCode::TOO_MANY_REQUESTS => {
                assert_eq!(error_code(res).await, "too_many_attempts");
                refused += 1;
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert!(refused >= 1, "a sixth parallel attempt was refused");
    let res = app.verify(&email, &code).await;
    assert_ne!(res.status(), StatusCode::OK, "the right code is dead too");
    assert!(res.status().is_client_error());

    // Per address and hour: new codes do not buy new guesses beyond the hourly budget (14
    // here; 11 are spent).
    let res = app.post("/resend-otp", &json!({"email": email})).await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let code = app.nth_code(&email, 2).await;
    for n in 1..=3 {
        let res = app.verify(&email, &wrong_code(&code, n)).await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    }
    let res = app.verify(&email, &code).await;
    assert_rate_limited(res).await;
    app.cleanup().await;
}

async fn login_cannot_be_brute_forced_per_ip(profile: Profile) {
    let app = TestApp::spawn_with(profile, &[("RATE_LIMIT_LOGIN_PER_IP", "10/1h")]).await;
    let email = app.verified_user().await;
    // Credential stuffing from one IP: a different address every time.
    for _ in 0..10 {
        let res = app.login(&app.email(), "a guessed password").await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    let secs = assert_rate_limited(app.login(&app.email(), "a guessed password").await).await;
    assert!(
        secs <= 360,
        "one attempt comes back every 6 minutes: {secs}"
    );
    // Even a right password is not checked from this IP now.
    assert_eq!(
        app.login(&email, PASSWORD).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    // The trip is a security event in the log.
    assert!(
        captured_logs().contains("\"security_event\":\"rate_limited\""),
        "a tripped limit is logged"
    );
    app.cleanup().await;
}

async fn password_guessing_slows_down_and_the_owner_still_gets_in(profile: Profile) {
    let app = TestApp::spawn_with(
        profile,
        &[
            ("TRUSTED_PROXIES", "127.0.0.1"),
            ("RATE_LIMIT_LOGIN_PER_EMAIL_IP", "3/3s,5/1h"),
        ],
    )
    .await;
    let email = app.verified_user().await;
    let guesser = "198.51.100.7";
    let login = |password: &'static str| {
        let body = json!({"email": email, "password": password});
        let app = &app;
        async move { post_from(app, guesser, "/login", &body).await }
    };
    for _ in 0..3 {
        assert_eq!(
            login("wrong guess").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let first_lock = assert_rate_limited(login("wrong guess").await).await;
    assert_eq!(first_lock, 1, "a short lock: one guess per second");
    // A short lock only: the owner's right password works once it passes, and starts over.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert_eq!(login(PASSWORD).await.status(), StatusCode::OK);

    // Seconds growing with failures: after five failures the hourly tier takes over.
    for _ in 0..3 {
        assert_eq!(
            login("wrong guess").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let mut failures = 3;
    let longer = loop {
        tokio::time::sleep(Duration::from_millis(1_100)).await;
        let res = login("wrong guess").await;
        if res.status() == StatusCode::UNAUTHORIZED {
            failures += 1;
            assert!(failures <= 5, "more guesses than the hourly tier allows");
            continue;
        }
        break assert_rate_limited(res).await;
    };
    assert_eq!(failures, 5);
    assert!(
        longer >= 60,
        "the lock grew from {first_lock}s to {longer}s"
    );
    // Only the guessing client is locked: the owner from elsewhere logs in at once.
    let res = post_from(
        &app,
        "203.0.113.9",
        "/login",
        &json!({"email": email, "password": PASSWORD}),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    app.cleanup().await;
}

async fn victim_can_still_log_in_after_an_attacker_floods_their_email(profile: Profile) {
    let app = TestApp::spawn_with(
        profile,
        &[
            ("TRUSTED_PROXIES", "127.0.0.1"),
            ("RATE_LIMIT_LOGIN_PER_EMAIL_IP", "3/1h"),
            ("RATE_LIMIT_LOGIN_PER_EMAIL", "10/1h"),
        ],
    )
    .await;
    let victim = app.verified_user().await;
    let body = json!({"email": victim, "password": "attacker guess"});
    let mut unauthorized = 0;
    for _ in 0..20 {
        let res = post_from(&app, "198.51.100.66", "/login", &body).await;
        match res.status() {
            StatusCode::UNAUTHORIZED => unauthorized += 1,
            StatusCode::TOO_MANY_REQUESTS => {}
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(unauthorized, 3, "the attacker got three guesses");
    let res = post_from(
        &app,
        "203.0.113.5",
        "/login",
        &json!({"email": victim, "password": PASSWORD}),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK, "the victim is not locked out");
    app.cleanup().await;
}

async fn spoofed_forwarded_for_does_not_reset_the_budget(profile: Profile) {
    // No trusted proxy: X-Forwarded-For from the peer is not believed.
    let app = TestApp::spawn_with(profile, &[("RATE_LIMIT_FORGOT_PASSWORD_PER_IP", "3/1h")]).await;
    for n in 0..3 {
        let res = post_from(
            &app,
            &format!("192.0.2.{n}"),
            "/forgot-password",
            &json!({"email": app.email()}),
        )
        .await;
        assert_eq!(res.status(), StatusCode::ACCEPTED);
    }
    let res = post_from(
        &app,
        "192.0.2.200, 198.51.100.1",
        "/forgot-password",
        &json!({"email": app.email()}),
    )
    .await;
    assert_rate_limited(res).await;
    app.cleanup().await;
}

async fn mailbox_cannot_be_flooded(profile: Profile) {
    let app = TestApp::spawn_with(
        profile,
        &[
            ("MAIL_COOLDOWN", "0"),
            ("RATE_LIMIT_MAIL_PER_EMAIL", "3/1h"),
        ],
    )
    .await;
    let email = app.email();
    assert_eq!(
        app.signup(&email, PASSWORD).await.status(),
        StatusCode::CREATED
    );
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let res = app.post("/resend-otp", &json!({"email": email})).await;
        statuses.push(res.status());
    }
    assert_eq!(
        statuses,
        [
            StatusCode::ACCEPTED,
            StatusCode::ACCEPTED,
            StatusCode::TOO_MANY_REQUESTS,
            StatusCode::TOO_MANY_REQUESTS,
            StatusCode::TOO_MANY_REQUESTS,
            StatusCode::TOO_MANY_REQUESTS,
        ]
    );
    app.nth_code(&email, 3).await;
    // forgot-password spends the same per-address mail budget.
    let res = app.post("/forgot-password", &json!({"email": email})).await;
    assert_rate_limited(res).await;
    app.mail
        .assert_no_new_mail(&email, Duration::from_millis(300))
        .await;
    assert_eq!(
        app.mail.count_to(&email),
        3,
        "three mails in the hour, no more"
    );
    app.cleanup().await;
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

async fn login_timing_does_not_reveal_accounts(profile: Profile) {
    let app = TestApp::spawn_with(
        profile,
        &[
            // Realistic hashing cost: the difference to hide is a database lookup.
            ("ARGON2_MEMORY_KIB", "8192"),
            ("ARGON2_ITERATIONS", "2"),
            ("RATE_LIMIT_LOGIN_PER_IP", "off"),
            ("RATE_LIMIT_LOGIN_PER_EMAIL", "off"),
            ("RATE_LIMIT_LOGIN_PER_EMAIL_IP", "off"),
        ],
    )
    .await;
    let known = app.verified_user().await;
    let unknown = app.email();
    let timed = |email: String| {
        let app = &app;
        async move {
            let started = Instant::now();
            let res = app.login(&email, "not the password").await;
            let elapsed = started.elapsed();
            let status = res.status();
            let body = res.bytes().await.unwrap();
            (elapsed, status, body)
        }
    };
    for _ in 0..5 {
        timed(known.clone()).await; // warm-up: connections, caches
        timed(unknown.clone()).await;
    }
    // Other tests share the two cores, so a round can be skewed by a neighbour's burst: up to
    // three rounds, and one within 10% passes. A real difference (an unknown address costing
    // no hash) fails every round.
    let mut rounds = Vec::new();
    for _ in 0..3 {
        let (mut k, mut u) = (Vec::new(), Vec::new());
        for i in 0..50 {
            // Interleaved, and alternating which kind goes first.
            let (first, second) = if i % 2 == 0 {
                (known.clone(), unknown.clone())
            } else {
                (unknown.clone(), known.clone())
            };
            let a = timed(first).await;
            let b = timed(second).await;
            let ((tk, sk, bk), (tu, su, bu)) = if i % 2 == 0 { (a, b) } else { (b, a) };
            assert_eq!((sk, &bk), (su, &bu), "same status and body");
            assert_eq!(sk, StatusCode::UNAUTHORIZED);
            k.push(tk);
            u.push(tu);
        }
        let (mk, mu) = (median(k), median(u));
        let diff = mk.abs_diff(mu).as_secs_f64() / mk.min(mu).as_secs_f64();
        rounds.push(format!(
            "known {mk:?} vs unknown {mu:?}: {:.1}% apart",
            diff * 100.0
        ));
        if diff < 0.10 {
            app.cleanup().await;
            return;
        }
    }
    panic!("median login times differ by 10% or more: {rounds:#?}");
}

/// A random JSON value of bounded depth.
fn random_json(rng: &mut StdRng, depth: u32) -> Value {
    let pick = if depth == 0 {
        rng.gen_range(0..5)
    } else {
        rng.gen_range(0..7)
    };
    match pick {
        0 => Value::Null,
        1 => json!(rng.gen::<bool>()),
        2 => json!(rng.gen::<i64>()),
        3 => json!(rng.gen::<f64>() * 1e10),
        4 => json!(random_string(rng)),
        5 => Value::Array(
            (0..rng.gen_range(0..4))
                .map(|_| random_json(rng, depth - 1))
                .collect(),
        ),
        _ => {
            let mut m = serde_json::Map::new();
            for _ in 0..rng.gen_range(0..5) {
                m.insert(random_field(rng), random_json(rng, depth - 1));
            }
            Value::Object(m)
        }
    }
}

fn random_string(rng: &mut StdRng) -> String {
    const PIECES: &[&str] = &[
        "a",
        "@",
        "example.com",
        ".",
        " ",
        "\u{0}",
        "\r\n",
        "é",
        "😀",
        "\u{202e}",
        "\"",
        "\\",
        "%00",
        "<script>",
        "' OR 1=1 --",
        "${jndi:x}",
        "0",
        "123456",
        "ＡＢＣ",
        "\u{fffd}",
    ];
    let len = match rng.gen_range(0..10) {
        0 => rng.gen_range(100..3000),
        _ => rng.gen_range(0..12),
    };
    (0..len)
        .map(|_| PIECES[rng.gen_range(0..PIECES.len())])
        .collect()
}

fn random_field(rng: &mut StdRng) -> String {
    const FIELDS: &[&str] = &[
        "email",
        "password",
        "otp",
        "new_password",
        "current_password",
        "transport",
        "x",
    ];
    if rng.gen_bool(0.8) {
        FIELDS[rng.gen_range(0..FIELDS.len())].to_owned()
    } else {
        random_string(rng)
    }
}

/// A body for `path`: usually the right fields with random values, sometimes anything.
fn random_body(rng: &mut StdRng) -> Vec<u8> {
    match rng.gen_range(0..10) {
        0 => (0..rng.gen_range(0..200))
            .map(|_| rng.gen::<u8>())
            .collect(),
        1 => random_json(rng, 6).to_string().into_bytes(),
        2 => {
            let n = rng.gen_range(1..3000);
            format!("{}{}", "[".repeat(n), "]".repeat(rng.gen_range(0..=n))).into_bytes()
        }
        _ => {
            let mut m = serde_json::Map::new();
            for field in [
                "email",
                "password",
                "otp",
                "new_password",
                "current_password",
                "transport",
            ] {
                if rng.gen_bool(0.7) {
                    let v = match rng.gen_range(0..4) {
                        0 => random_json(rng, 2),
                        1 => json!(format!("{}@example.com", random_string(rng))),
                        2 => json!(format!("{:06}", rng.gen_range(0..1_000_000))),
                        _ => json!(random_string(rng)),
                    };
                    m.insert(field.to_owned(), v);
                }
            }
            Value::Object(m).to_string().into_bytes()
        }
    }
}

async fn random_bodies_never_cause_a_500(profile: Profile) {
    let app = TestApp::spawn(profile).await;
    let email = app.verified_user().await;
    let token = app.token(&email, PASSWORD).await;
    let seed = std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5ec0_a07b);
    let mut rng = StdRng::seed_from_u64(seed);
    let endpoints: &[(reqwest::Method, &str)] = &[
        (reqwest::Method::POST, "/signup"),
        (reqwest::Method::POST, "/verify-otp"),
        (reqwest::Method::POST, "/resend-otp"),
        (reqwest::Method::POST, "/login"),
        (reqwest::Method::POST, "/forgot-password"),
        (reqwest::Method::POST, "/reset-password"),
        (reqwest::Method::POST, "/change-password"),
        (reqwest::Method::POST, "/me"),
        (reqwest::Method::GET, "/me"),
        (reqwest::Method::POST, "/logout-all"),
        (reqwest::Method::GET, "/sessions"),
        (reqwest::Method::DELETE, "/sessions/not-a-uuid"),
        (reqwest::Method::POST, "/logout"),
    ];
    for round in 0..40 {
        for (method, path) in endpoints {
            let body = random_body(&mut rng);
            let content_type = match rng.gen_range(0..6) {
                0 => "text/plain",
                1 => "application/json; charset=utf-8",
                2 => "application/x-www-form-urlencoded",
                _ => "application/json",
            };
            let mut req = app
                .client
                .request(method.clone(), app.url(path))
                .header("content-type", content_type)
                .body(body.clone());
            req = match rng.gen_range(0..4) {
                // Never the real token on logout: the rest of the run needs the session.
                0 if !path.starts_with("/logout") => req.bearer_auth(&token),
                1 => req.bearer_auth(random_string(&mut rng).replace(['\r', '\n', '\0'], "")),
                2 => req.header("cookie", format!("__Host-session={}", rng.gen::<u64>())),
                _ => req,
            };
            let res = req.send().await.unwrap();
            let status = res.status();
            assert!(
                !status.is_server_error(),
                "round {round} (FUZZ_SEED={seed}): {method} {path} with {:?} gave {status}",
                String::from_utf8_lossy(&body)
            );
            let bytes = res.bytes().await.unwrap();
            if !bytes.is_empty() {
                let v: Value = serde_json::from_slice(&bytes).expect("every body is JSON");
                assert!(v.is_object());
            }
        }
    }
    assert_eq!(app.me(&token).await.status(), StatusCode::OK);
    app.cleanup().await;
}

async fn signup_race_has_one_winner(profile: Profile) {
    // The losers are told so only with enumeration protection off (on, every signup answers
    // 201); one account and one code mailed either way.
    let app = TestApp::spawn_with(profile, &[("ENUMERATION_PROTECTION", "false")]).await;
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
    assert_eq!(created, 1, "{statuses:?}");
    assert!(
        statuses.iter().all(|s| [
            StatusCode::CREATED,
            StatusCode::CONFLICT,
            StatusCode::TOO_MANY_REQUESTS
        ]
        .contains(s)),
        "the losers are told so, never a 500: {statuses:?}"
    );
    let code = app.nth_code(&email, 1).await;
    app.mail
        .assert_no_new_mail(&email, Duration::from_millis(500))
        .await;
    assert_eq!(app.mail.count_to(&email), 1, "one code mailed");
    let uses = (0..8).map(|_| app.verify(&email, &code));
    let ok = futures::future::join_all(uses)
        .await
        .into_iter()
        .filter(|r| r.status() == StatusCode::OK)
        .count();
    assert_eq!(ok, 1, "a code verifies exactly once");
    app.cleanup().await;
}

async fn session_fixation_is_impossible(profile: Profile) {
    let app = TestApp::spawn_with(profile, &[("COOKIE_SECURE", "false")]).await;
    let email = app.verified_user().await;
    // A bearer token presented at login (here: a live one) is never adopted.
    let planted = app.token(&email, PASSWORD).await;
    let res = app
        .client
        .post(app.url("/login"))
        .bearer_auth(&planted)
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let body: Value = res.json().await.unwrap();
    let issued = body["session"]["token"].as_str().unwrap();
    assert_ne!(issued, planted);
    assert_eq!(app.me(issued).await.status(), StatusCode::OK);

    // A cookie planted by an attacker is replaced, and never becomes a session.
    let fixed = "A".repeat(43);
    let res = app
        .client
        .post(app.url("/login"))
        .header("cookie", format!("{}={fixed}", app.cookie_name))
        .json(&json!({"email": email, "password": PASSWORD, "transport": "cookie"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let cookie = set_cookie(res.headers(), app.cookie_name).expect("a new cookie");
    assert!(!cookie.contains(&fixed), "{cookie}");
    assert_eq!(app.me(&fixed).await.status(), StatusCode::UNAUTHORIZED);
    app.cleanup().await;
}

/// Two instances on one Redis share every budget: switching instances buys nothing.
#[tokio::test]
async fn rate_limits_are_shared_by_every_instance() {
    let shared = format!("test-shared-{}", uuid::Uuid::new_v4().simple());
    let overrides = [
        ("REDIS_KEY_PREFIX", shared.as_str()),
        ("RATE_LIMIT_LOGIN_PER_IP", "4/1h"),
    ];
    let a = TestApp::spawn_with(Profile::Server, &overrides).await;
    let b = TestApp::spawn_with(Profile::Server, &overrides).await;
    for app in [&a, &b, &a, &b] {
        let res = app.login(&app.email(), PASSWORD).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    for app in [&a, &b] {
        assert_rate_limited(app.login(&app.email(), PASSWORD).await).await;
    }
    a.cleanup().await;
    b.cleanup().await;
    delete_prefix(&shared).await;
}

async fn signup_does_not_reveal_taken_addresses_with_enumeration_protection(profile: Profile) {
    let app = TestApp::spawn_with(
        profile,
        &[("ENUMERATION_PROTECTION", "true"), ("MAIL_COOLDOWN", "0")],
    )
    .await;
    let owner = app.verified_user().await;
    let fresh = app.email();

    let taken = app.signup(&owner, "an intruder's passphrase").await;
    let new = app.signup(&fresh, "an intruder's passphrase").await;
    assert_eq!(taken.status(), StatusCode::CREATED);
    assert_eq!(new.status(), StatusCode::CREATED);
    let taken: serde_json::Value = taken.json().await.unwrap();
    let new: serde_json::Value = new.json().await.unwrap();
    let shape = |v: &serde_json::Value| {
        let mut keys: Vec<String> = v["user"].as_object().unwrap().keys().cloned().collect();
        keys.sort();
        (keys, v["user"]["email_verified"].clone())
    };
    assert_eq!(
        shape(&taken),
        shape(&new),
        "same answer for a taken and a new address"
    );

    // The owner is told, and nothing about the account changed.
    app.nth_code_or_notice_matching(&owner, 2, "tried to sign up")
        .await;
    assert_eq!(
        app.login(&owner, "an intruder's passphrase").await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(app.login(&owner, PASSWORD).await.status(), StatusCode::OK);
    app.cleanup().await;
}

impl TestApp {
    /// Waits for the `n`-th mail to `to` and checks its subject mentions `word`.
    async fn nth_code_or_notice_matching(&self, to: &str, n: usize, word: &str) {
        let deadline = tokio::time::Instant::now() + MAIL_WAIT;
        while self.mail.count_to(to) < n {
            assert!(
                tokio::time::Instant::now() < deadline,
                "no mail {n} to {to}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let subject = self.mail.messages_to(to)[n - 1].subject().to_lowercase();
        assert!(subject.contains(word), "{subject}");
    }
}

/// A login storm fills the password hasher: requests that need a hash are then refused at
/// once with 503 + `Retry-After`, before they reach the database, and change nothing: no
/// account, no mail, the reset code stays usable.
async fn a_saturated_hasher_refuses_at_once_and_changes_nothing(profile: Profile) {
    let mut app = TestApp::spawn(profile).await;
    let email = app.verified_user().await;

    // One hashing thread, no queue, and a hash of a few seconds: one login holds the hasher.
    app.restart_with(&[
        ("ARGON2_WORKERS", "1"),
        ("ARGON2_QUEUE", "0"),
        ("ARGON2_MEMORY_KIB", "65536"),
        ("ARGON2_ITERATIONS", "64"),
        // The slow hash must not run into the request deadline on a loaded machine.
        ("REQUEST_TIMEOUT", "120s"),
    ])
    .await;
    let res = app.post("/forgot-password", &json!({"email": email})).await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let code = app.nth_code(&email, 2).await;
    let holder = {
        let (client, url) = (app.client.clone(), app.url("/login"));
        let email = email.clone();
        tokio::spawn(async move {
            let body = json!({"email": email, "password": "not the password at all"});
            let started = Instant::now();
            let res = client.post(url).json(&body).send().await.unwrap();
            (res.status(), started.elapsed())
        })
    };
    // Until the holder's hash has started (the only thread busy, no queue: saturated).
    app.until_the_hasher_is_full().await;

    let newcomer = app.email();
    let started = Instant::now();
    let refused = [
        app.login(&email, PASSWORD).await,
        app.signup(&newcomer, PASSWORD).await,
        app.post(
            "/reset-password",
            &json!({"email": email, "otp": code, "new_password": "a brand new passphrase"}),
        )
        .await,
    ];
    let quickly = started.elapsed();
    for res in refused {
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(retry_after(&res), 5);
        assert_eq!(error_code(res).await, "service_unavailable");
    }
    let (status, held_for) = holder.await.unwrap();
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let ready: Value = app
        .client
        .get(app.url("/ready"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["checks"]["password_hasher"], "ok", "{ready}");
    assert!(
        quickly < held_for,
        "three refusals took {quickly:?}, longer than the one hash ({held_for:?})"
    );

    // Nothing happened: no mail to the newcomer, and the reset code still works.
    app.mail
        .assert_no_new_mail(&newcomer, Duration::from_millis(300))
        .await;
    assert_eq!(app.mail.count_to(&newcomer), 0);
    let res = app
        .post(
            "/reset-password",
            &json!({"email": email, "otp": code, "new_password": "a brand new passphrase"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        app.signup(&newcomer, PASSWORD).await.status(),
        StatusCode::CREATED
    );
    app.cleanup().await;
}

crate::both_profiles!(
    a_saturated_hasher_refuses_at_once_and_changes_nothing,
    signup_does_not_reveal_taken_addresses_with_enumeration_protection,
    otp_cannot_be_brute_forced,
    login_cannot_be_brute_forced_per_ip,
    password_guessing_slows_down_and_the_owner_still_gets_in,
    victim_can_still_log_in_after_an_attacker_floods_their_email,
    spoofed_forwarded_for_does_not_reset_the_budget,
    mailbox_cannot_be_flooded,
    login_timing_does_not_reveal_accounts,
    random_bodies_never_cause_a_500,
    signup_race_has_one_winner,
    session_fixation_is_impossible,
);

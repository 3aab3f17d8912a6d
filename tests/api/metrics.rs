//! `/metrics` (`METRICS_ADDR`): what a scripted lifecycle moves, what never shows, and a
//! scrape while the database does not answer.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;

/// Every sample of a scrape: `name{labels}` → value.
fn parse(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_owned(), value.parse().ok()?))
        })
        .collect()
}

async fn scrape(app: &TestApp) -> (String, BTreeMap<String, f64>) {
    let base = app.metrics_address.as_ref().expect("METRICS_ADDR is set");
    let res = reqwest::get(format!("{base}/metrics")).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let content_type = res.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    let text = res.text().await.unwrap();
    let samples = parse(&text);
    (text, samples)
}

/// The metric names (`secureauth_...`, without a histogram's `_bucket` suffix) in `text`.
fn metric_names(text: &str) -> std::collections::BTreeSet<String> {
    let mut names = std::collections::BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("secureauth_") {
        rest = &rest[at..];
        let end = rest
            .find(|c: char| !(c.is_ascii_lowercase() || c == '_'))
            .unwrap_or(rest.len());
        let name = &rest[..end];
        names.insert(name.strip_suffix("_bucket").unwrap_or(name).to_owned());
        rest = &rest[end..];
    }
    names
}

fn delta(before: &BTreeMap<String, f64>, after: &BTreeMap<String, f64>, series: &str) -> f64 {
    after.get(series).copied().unwrap_or(0.0) - before.get(series).copied().unwrap_or(0.0)
}

/// The counters move by exactly what was done; no address, password, code or token shows;
/// the API's own port does not serve `/metrics`.
async fn metrics_count_a_lifecycle_and_leak_no_user_data(profile: Profile) {
    let app = TestApp::spawn_with(
        profile,
        &[
            ("METRICS_ADDR", "127.0.0.1:0"),
            ("RATE_LIMIT_RESEND_OTP_PER_IP", "1/1h"),
        ],
    )
    .await;
    let (_, before) = scrape(&app).await;

    // Act: 9 requests.
    let email = app.email();
    assert_eq!(
        app.signup(&email, PASSWORD).await.status(),
        StatusCode::CREATED
    );
    let code = app.nth_code(&email, 1).await;
    assert_eq!(app.verify(&email, &code).await.status(), StatusCode::OK);
    assert_eq!(
        app.login(&email, "not the password at all").await.status(),
        StatusCode::UNAUTHORIZED
    );
    let res = app.login(&email, PASSWORD).await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    let token = body["session"]["token"].as_str().unwrap().to_owned();
    let device = body["device_token"].as_str().unwrap().to_owned();
    assert_eq!(app.me(&token).await.status(), StatusCode::OK);
    assert_eq!(
        app.post_auth("/logout", &token, None).await.status(),
        StatusCode::NO_CONTENT
    );
    let other = app.email();
    assert_eq!(
        app.post("/forgot-password", &json!({ "email": other }))
            .await
            .status(),
        StatusCode::ACCEPTED
    );
    let resend = json!({ "email": other });
    assert_eq!(
        app.post("/resend-otp", &resend).await.status(),
        StatusCode::ACCEPTED
    );
    assert_eq!(
        app.post("/resend-otp", &resend).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );

    // The courier reports a round once it is over: wait for the signup's mail to be counted.
    let deadline = Instant::now() + Duration::from_secs(10);
    let (text, after) = loop {
        let (text, after) = scrape(&app).await;
        let sent = delta(
            &before,
            &after,
            r#"secureauth_mail_deliveries_total{result="sent"}"#,
        );
        if sent >= 1.0 {
            assert_eq!(sent, 1.0, "one mail went out");
            break (text, after);
        }
        assert!(Instant::now() < deadline, "no delivery counted: {text}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };

    let expected = [
        (r#"secureauth_signups_total{result="ok"}"#, 1.0),
        (r#"secureauth_verifications_total{result="ok"}"#, 1.0),
        (
            r#"secureauth_logins_total{method="password",result="bad_credentials"}"#,
            1.0,
        ),
        (
            r#"secureauth_logins_total{method="password",result="ok"}"#,
            1.0,
        ),
        (
            r#"secureauth_session_revocations_total{reason="logout"}"#,
            1.0,
        ),
        (
            r#"secureauth_password_resets_total{stage="requested",result="ok"}"#,
            1.0,
        ),
        (
            r#"secureauth_rate_limited_total{action="resend-otp",reason="too_many_requests"}"#,
            1.0,
        ),
        (
            r#"secureauth_http_requests_total{method="POST",route="/login",status="401"}"#,
            1.0,
        ),
        (
            r#"secureauth_http_requests_total{method="POST",route="/login",status="200"}"#,
            1.0,
        ),
        (
            r#"secureauth_http_requests_total{method="GET",route="/me",status="200"}"#,
            1.0,
        ),
        (
            r#"secureauth_http_requests_total{method="POST",route="/resend-otp",status="429"}"#,
            1.0,
        ),
        (
            r#"secureauth_http_request_duration_seconds_count{method="POST",route="/login"}"#,
            2.0,
        ),
    ];
    for (series, want) in expected {
        assert_eq!(delta(&before, &after, series), want, "{series}\n{text}");
    }
    let requests: f64 = after
        .keys()
        .filter(|k| k.starts_with("secureauth_http_requests_total{"))
        .map(|k| delta(&before, &after, k))
        .sum();
    assert_eq!(requests, 9.0, "exactly the requests made: {text}");
    for unmoved in [
        "secureauth_dependency_errors_total",
        r#"secureauth_password_resets_total{stage="completed",result="ok"}"#,
        "secureauth_session_revocations_total{reason=\"logout_all\"}",
    ] {
        assert!(
            after
                .keys()
                .filter(|k| k.starts_with(unmoved))
                .all(|k| delta(&before, &after, k) == 0.0),
            "{unmoved} moved: {text}"
        );
    }

    // The gauges read at scrape time.
    assert!(after["secureauth_hasher_workers"] >= 1.0, "{text}");
    assert_eq!(after["secureauth_hasher_busy_workers"], 0.0);
    assert_eq!(after["secureauth_hasher_queued"], 0.0);
    assert_eq!(after["secureauth_mail_outbox_up"], 1.0, "{text}");
    assert_eq!(after["secureauth_mail_outbox_dead"], 0.0);
    assert!(after.contains_key("secureauth_mail_outbox_pending"));
    assert!(after.contains_key("secureauth_hasher_wait_seconds_count"));
    for pool in ["postgres", "redis"] {
        let series = format!(r#"secureauth_pool_max_size{{pool="{pool}"}}"#);
        match profile {
            Profile::Server => assert!(after[&series] >= 1.0, "{series}: {text}"),
            Profile::Embedded => assert!(!after.contains_key(&series), "{series}: {text}"),
        }
    }

    // Every metric the dashboard draws exists (the 503s by dependency: see the outage test).
    if profile == Profile::Server {
        let dashboard = include_str!("../../docs/grafana-dashboard.json");
        let names = metric_names(dashboard);
        assert!(names.len() >= 15, "{names:?}");
        for name in names {
            if name == "secureauth_dependency_errors_total" {
                continue;
            }
            assert!(
                text.contains(&format!("# TYPE {name} ")),
                "the dashboard draws {name}, which is not exported:\n{text}"
            );
        }
    }

    // No user data, not even in a label.
    for secret in [
        email.as_str(),
        other.as_str(),
        PASSWORD,
        code.as_str(),
        token.as_str(),
        device.as_str(),
        "example.com",
        "127.0.0.1",
    ] {
        assert!(!text.contains(secret), "{secret:?} in the scrape");
    }

    // Only on the metrics listener.
    let res = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let base = app.metrics_address.clone().unwrap();
    let res = reqwest::get(format!("{base}/signup")).await.unwrap();
    assert_eq!(
        res.status(),
        StatusCode::NOT_FOUND,
        "the API is not served there"
    );
    app.cleanup().await;
}

/// With `METRICS_TOKEN`, a scrape without it (or with another) gets 401 and no numbers.
async fn metrics_token_guards_the_scrape(profile: Profile) {
    const TOKEN: &str = "metrics-token-metrics-token-0123456789";
    let app = TestApp::spawn_with(
        profile,
        &[("METRICS_ADDR", "127.0.0.1:0"), ("METRICS_TOKEN", TOKEN)],
    )
    .await;
    let url = format!("{}/metrics", app.metrics_address.as_ref().unwrap());
    let client = reqwest::Client::new();
    for given in [None, Some("metrics-token-metrics-token-0123456780")] {
        let mut req = client.get(&url);
        if let Some(token) = given {
            req = req.bearer_auth(token);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{given:?}");
        assert!(!res.text().await.unwrap().contains("secureauth_"));
    }
    let res = client.get(&url).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res
        .text()
        .await
        .unwrap()
        .contains("secureauth_hasher_workers"));
    app.cleanup().await;
}

/// Without `METRICS_ADDR` there is no metrics listener, and the API has no `/metrics`.
async fn metrics_are_off_by_default(profile: Profile) {
    let app = TestApp::spawn(profile).await;
    assert!(app.metrics_address.is_none());
    let res = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    app.cleanup().await;
}

/// A database that accepts connections and never answers must not hang a scrape: it answers
/// within the outbox read's bound, with the outbox marked unreadable and its gauges NaN, and
/// the 503 it caused is counted by dependency.
#[tokio::test]
async fn a_scrape_answers_while_the_database_hangs() {
    // Accepts (the kernel completes the handshake) and never says a word.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "postgres://postgres@127.0.0.1:{}/secureauth",
        silent.local_addr().unwrap().port()
    );
    let app = TestApp::spawn_with(
        Profile::Server,
        &[
            ("METRICS_ADDR", "127.0.0.1:0"),
            ("DATABASE_URL", &url),
            ("DEPENDENCY_TIMEOUT", "5s"),
        ],
    )
    .await;
    let started = Instant::now();
    let (text, samples) = scrape(&app).await;
    let took = started.elapsed();
    assert!(
        took < Duration::from_millis(4500),
        "the scrape waited {took:?}, longer than its outbox bound"
    );
    assert_eq!(samples["secureauth_mail_outbox_up"], 0.0, "{text}");
    assert!(
        samples["secureauth_mail_outbox_pending"].is_nan(),
        "unknown, not zero: {text}"
    );
    assert!(samples.contains_key(r#"secureauth_pool_max_size{pool="postgres"}"#));

    let res = app.signup(&app.email(), PASSWORD).await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    let (text, samples) = scrape(&app).await;
    assert_eq!(
        samples[r#"secureauth_dependency_errors_total{dependency="user_store"}"#], 1.0,
        "{text}"
    );
    assert_eq!(
        samples[r#"secureauth_signups_total{result="unavailable"}"#], 1.0,
        "{text}"
    );
    drop(silent);
    app.cleanup().await;
}

crate::both_profiles!(
    metrics_count_a_lifecycle_and_leak_no_user_data,
    metrics_token_guards_the_scrape,
    metrics_are_off_by_default
);

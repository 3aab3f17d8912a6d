//! Webhooks: endpoints registered by administrators receive the security events they asked
//! for, signed (Standard Webhooks), retried with backoff through the durable queue, with a
//! delivery log. The receiver is a small HTTP server on loopback; signatures are checked with
//! the `hmac` crate directly, not with the server's code.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::helpers::*;

both_profiles!(
    deliveries_are_signed_retried_until_they_arrive_and_logged,
    only_administrators_reach_the_webhook_routes,
    bad_webhook_input_is_refused_and_changes_nothing,
    a_dead_receiver_ends_dead_without_holding_up_mail_or_requests,
);

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    headers: Vec<(String, String)>,
    body: String,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// An HTTP receiver on loopback that answers each request with the next status of `script`
/// (the last one from then on) and keeps what it got.
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    async fn start(script: &[u16]) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let got = Arc::new(Mutex::new(Vec::new()));
        let script = script.to_vec();
        let log = Arc::clone(&got);
        tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else {
                    return;
                };
                let Some(request) = read_request(&mut socket).await else {
                    continue;
                };
                let n = {
                    let mut log = log.lock().unwrap();
                    log.push(request);
                    log.len()
                };
                let status = script[(n - 1).min(script.len() - 1)];
                let answer = format!(
                    "HTTP/1.1 {status} X\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"
                );
                let _ = socket.write_all(answer.as_bytes()).await;
                let _ = socket.shutdown().await;
            }
        });
        Self { url, got }
    }

    fn received(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    async fn wait_for(&self, n: usize) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the receiver got {} of {n} requests",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn read_request(socket: &mut tokio::net::TcpStream) -> Option<Received> {
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        let n = socket.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        raw.extend_from_slice(&buf[..n]);
        if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
    };
    let head = String::from_utf8_lossy(&raw[..head_end]).to_string();
    let headers: Vec<(String, String)> = head
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = raw[head_end + 4..].to_vec();
    while body.len() < length {
        let n = socket.read(&mut buf).await.ok()?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&buf[..n]);
    }
    Some(Received {
        headers,
        body: String::from_utf8_lossy(&body).to_string(),
    })
}

/// Checks `webhook-signature` the way a receiver does, with its own HMAC over
/// `{id}.{timestamp}.{body}` under the secret's decoded bytes.
fn signature_verifies(secret: &str, r: &Received) -> bool {
    let key = B64.decode(secret.strip_prefix("whsec_").unwrap()).unwrap();
    let signed = format!(
        "{}.{}.{}",
        r.header("webhook-id").unwrap(),
        r.header("webhook-timestamp").unwrap(),
        r.body
    );
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(signed.as_bytes());
    let expected = format!("v1,{}", B64.encode(mac.finalize().into_bytes()));
    r.header("webhook-signature")
        .unwrap()
        .split(' ')
        .any(|s| s == expected)
}

/// A verified administrator with the privilege window open: its token.
async fn admin(app: &TestApp) -> String {
    let email = app.verified_user().await;
    let sql = format!("UPDATE users SET role = 'admin' WHERE email = '{email}'");
    app.execute_sql(&sql, &sql).await;
    let token = app.token(&email, PASSWORD).await;
    let res = app
        .post_auth(
            "/admin/reauth",
            &token,
            Some(&json!({"password": PASSWORD})),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    token
}

async fn register(app: &TestApp, token: &str, url: &str, events: &[&str]) -> (String, String) {
    let res = app
        .post_auth(
            "/admin/webhooks",
            token,
            Some(&json!({"url": url, "events": events})),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let body: Value = res.json().await.unwrap();
    let secret = body["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"), "{secret}");
    (body["webhook"]["id"].as_str().unwrap().to_owned(), secret)
}

async fn deliveries(app: &TestApp, token: &str, id: &str) -> Vec<Value> {
    let res = app
        .get_auth(&format!("/admin/webhooks/{id}/deliveries"), token)
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let page: Value = res.json().await.unwrap();
    page["deliveries"].as_array().unwrap().clone()
}

/// Waits until the endpoint's log shows `n` deliveries, all in `state`.
async fn wait_for_log(app: &TestApp, token: &str, id: &str, n: usize, state: &str) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let log = deliveries(app, token, id).await;
        if log.len() == n && log.iter().all(|d| d["state"] == state) {
            return log;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the delivery log never showed {n} {state}: {log:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn deliveries_are_signed_retried_until_they_arrive_and_logged(profile: Profile) {
    let app = TestApp::spawn_with(profile, &[("METRICS_ADDR", "127.0.0.1:0")]).await;
    let admin = admin(&app).await;
    let receiver = Receiver::start(&[500, 200]).await;
    let (id, secret) = register(&app, &admin, &receiver.url, &["login_failed"]).await;

    // A login (not asked for), then a wrong password (asked for).
    let email = app.verified_user().await;
    let token = app.token(&email, PASSWORD).await;
    let wrong = "wrong horse battery staple";
    assert_eq!(
        app.login(&email, wrong).await.status(),
        StatusCode::UNAUTHORIZED
    );

    // Refused once (500), retried with backoff, then delivered.
    let got = receiver.wait_for(2).await;
    let (first, second) = (&got[0], &got[1]);
    for r in [first, second] {
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert!(
            signature_verifies(&secret, r),
            "the signature does not verify: {r:?}"
        );
        let ts: i64 = r.header("webhook-timestamp").unwrap().parse().unwrap();
        assert!((chrono::Utc::now().timestamp() - ts).abs() < 60);
    }
    assert_eq!(
        first.header("webhook-id"),
        second.header("webhook-id"),
        "the id is the receiver's idempotency key: the same on every attempt"
    );
    assert_eq!(first.body, second.body);
    let body: Value = serde_json::from_str(&second.body).unwrap();
    assert_eq!(body["type"], "login_failed");
    assert_eq!(body["data"]["kind"], "login_failed");
    assert_eq!(body["data"]["reason"], "bad_credentials");
    assert!(body["data"]["event_id"].is_string() && body["data"]["user_id"].is_string());
    // The user's own history holds the same event.
    let history: Value = app
        .get_auth("/me/events", &token)
        .await
        .json()
        .await
        .unwrap();
    assert!(history["events"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["id"] == body["data"]["event_id"]));
    // No secret in the body: not the password, the wrong one, the token, the address or the
    // endpoint's secret.
    for secret_text in [
        PASSWORD,
        wrong,
        token.as_str(),
        email.as_str(),
        secret.as_str(),
    ] {
        assert!(
            !second.body.contains(secret_text),
            "the body holds a secret: {}",
            second.body
        );
    }

    let log = wait_for_log(&app, &admin, &id, 1, "delivered").await;
    assert_eq!(log[0]["attempts"], 2);
    assert_eq!(log[0]["last_status"], 200);
    assert_eq!(log[0]["id"].as_str(), first.header("webhook-id"));
    assert_eq!(log[0]["kind"], "login_failed");
    assert!(log[0]["finished_at"].is_string());

    // Only the kinds asked for: the login (and the admin's own) never came.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.received().len(), 2);

    // The courier's attempts and the backlog are in the metrics.
    let metrics = reqwest::get(format!("{}/metrics", app.metrics_address.as_ref().unwrap()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "secureauth_webhook_deliveries_total{result=\"delivered\"} 1",
        "secureauth_webhook_deliveries_total{result=\"retried\"} 1",
        "secureauth_webhook_pending 0",
    ] {
        assert!(metrics.lines().any(|l| l == line), "no {line} in {metrics}");
    }

    // Listed without the secret; removed with its log.
    let list: Value = app
        .get_auth("/admin/webhooks", &admin)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["webhooks"][0]["id"], id.as_str());
    assert_eq!(list["webhooks"][0]["events"], json!(["login_failed"]));
    assert!(!list.to_string().contains(&secret));
    let res = app
        .delete_auth(&format!("/admin/webhooks/{id}"), &admin)
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let res = app
        .delete_auth(&format!("/admin/webhooks/{id}"), &admin)
        .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    app.cleanup().await;
}

async fn only_administrators_reach_the_webhook_routes(profile: Profile) {
    let app = TestApp::spawn(profile).await;
    let admin = admin(&app).await;
    let receiver = Receiver::start(&[200]).await;
    let (id, _) = register(&app, &admin, &receiver.url, &["lockout"]).await;
    let email = app.verified_user().await;
    let user = app.token(&email, PASSWORD).await;
    let body = json!({"url": receiver.url, "events": ["login_failed"]});
    let answers = [
        app.post_auth("/admin/webhooks", &user, Some(&body)).await,
        app.get_auth("/admin/webhooks", &user).await,
        app.delete_auth(&format!("/admin/webhooks/{id}"), &user)
            .await,
        app.get_auth(&format!("/admin/webhooks/{id}/deliveries"), &user)
            .await,
    ];
    for res in answers {
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        assert_eq!(error_code(res).await, "forbidden");
    }
    // Without a session: 401.
    let res = app.post("/admin/webhooks", &body).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    // An administrator whose privilege window is closed must give the password again.
    let other = app.verified_user().await;
    let sql = format!("UPDATE users SET role = 'admin' WHERE email = '{other}'");
    app.execute_sql(&sql, &sql).await;
    let unprivileged = app.token(&other, PASSWORD).await;
    let res = app
        .post_auth("/admin/webhooks", &unprivileged, Some(&body))
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(error_code(res).await, "reauthentication_required");
    // Nothing changed.
    let list: Value = app
        .get_auth("/admin/webhooks", &admin)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["webhooks"].as_array().unwrap().len(), 1);
    app.cleanup().await;
}

async fn bad_webhook_input_is_refused_and_changes_nothing(profile: Profile) {
    let app = TestApp::spawn(profile).await;
    let admin = admin(&app).await;
    let url = "http://127.0.0.1:9/hook";
    for (body, status, code) in [
        (
            json!({"url": "ftp://example.com/x", "events": ["lockout"]}),
            422,
            "invalid_webhook",
        ),
        (
            json!({"url": "not a url", "events": ["lockout"]}),
            422,
            "invalid_webhook",
        ),
        (
            json!({"url": "https://u:p@example.com/", "events": ["lockout"]}),
            422,
            "invalid_webhook",
        ),
        (
            json!({"url": url, "events": ["lockout", "password_stolen"]}),
            422,
            "invalid_webhook",
        ),
        (json!({"url": url, "events": []}), 422, "invalid_webhook"),
        (json!({"url": url}), 400, "invalid_request"),
        (
            json!({"url": url, "events": "lockout"}),
            400,
            "invalid_request",
        ),
        (
            json!({"url": url, "events": ["lockout"], "secret": "mine"}),
            400,
            "invalid_request",
        ),
    ] {
        let res = app.post_auth("/admin/webhooks", &admin, Some(&body)).await;
        assert_eq!(res.status().as_u16(), status, "{body}");
        let answer: Value = res.json().await.unwrap();
        assert_eq!(answer["error"]["code"], code, "{body}");
    }
    let huge = json!({"url": format!("https://example.com/{}", "a".repeat(20_000)), "events": ["lockout"]});
    let res = app
        .client
        .post(app.url("/admin/webhooks"))
        .bearer_auth(&admin)
        .header("content-type", "application/json")
        .body(huge.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(error_code(res).await, "payload_too_large");
    let unknown = uuid::Uuid::new_v4();
    for path in [
        format!("/admin/webhooks/{unknown}/deliveries"),
        "/admin/webhooks/not-a-uuid/deliveries".to_owned(),
    ] {
        let res = app.get_auth(&path, &admin).await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{path}");
    }
    let list: Value = app
        .get_auth("/admin/webhooks", &admin)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        list["webhooks"],
        json!([]),
        "a refused endpoint must not be stored"
    );
    app.cleanup().await;
}

async fn a_dead_receiver_ends_dead_without_holding_up_mail_or_requests(profile: Profile) {
    let app = TestApp::spawn_with(profile, &[("WEBHOOK_MAX_ATTEMPTS", "3")]).await;
    let admin = admin(&app).await;
    // A port nobody listens on: every attempt is refused.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let (id, _) = register(
        &app,
        &admin,
        &format!("http://{closed}/hook"),
        &["reset_requested"],
    )
    .await;
    let email = app.verified_user().await;
    let started = tokio::time::Instant::now();
    let res = app.post("/forgot-password", &json!({"email": email})).await;
    assert!(res.status().is_success());
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the request waited for the receiver"
    );
    // The reset mail goes out while the webhook keeps failing.
    app.nth_code(&email, 2).await;
    let log = wait_for_log(&app, &admin, &id, 1, "dead").await;
    assert_eq!(log[0]["attempts"], 3);
    assert_eq!(log[0]["last_status"], Value::Null);
    assert!(log[0]["last_error"]
        .as_str()
        .unwrap()
        .starts_with("gave up after 3 attempts"));
    app.cleanup().await;
}

/// A copy of the database must not give away the signing secrets: the row holds the secret
/// sealed, never its bytes or its `whsec_` text.
#[tokio::test]
async fn webhook_secrets_are_sealed_in_the_database() {
    let app = TestApp::spawn(Profile::Server).await;
    let admin = admin(&app).await;
    let (id, secret) = register(&app, &admin, "http://127.0.0.1:9/hook", &["lockout"]).await;
    let key = B64.decode(secret.strip_prefix("whsec_").unwrap()).unwrap();
    let url = app.var("DATABASE_URL").unwrap().to_owned();
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let row = client
        .query_one("SELECT id::text, sealed_secret FROM webhook_endpoints", &[])
        .await
        .unwrap();
    let (stored_id, sealed): (String, Vec<u8>) = (row.get(0), row.get(1));
    assert_eq!(stored_id, id);
    assert!(sealed.len() > key.len(), "nonce and tag around the secret");
    assert!(!sealed.windows(key.len()).any(|w| w == key.as_slice()));
    assert!(!String::from_utf8_lossy(&sealed).contains(&secret));
    app.cleanup().await;
}

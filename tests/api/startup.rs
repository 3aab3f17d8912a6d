//! Starting while PostgreSQL and Redis are down: the server starts, `/ready` answers 503
//! naming what is missing, and everything works once they come back, without a restart.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use secrecy::ExposeSecret as _;
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};

use crate::helpers::*;

/// A port nobody listens on (bound once to learn it, then released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// From now on, forwards connections to `port` to `upstream` (until the test ends).
async fn bring_up(port: u16, upstream: SocketAddr) {
    let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            tokio::spawn(async move {
                if let Ok(mut server) = TcpStream::connect(upstream).await {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                }
            });
        }
    });
}

async fn ready(app: &TestApp) -> (StatusCode, Value) {
    let res = app.client.get(app.url("/ready")).send().await.unwrap();
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starts_with_postgres_and_redis_down_and_connects_when_they_come_back() {
    let db = auth_postgres::testing::TestDatabase::new().await;
    let (pg_port, redis_port) = (free_port(), free_port());
    let url = db.url().expose_secret().to_owned();
    let down_url = url.replacen(":5432/", &format!(":{pg_port}/"), 1);
    assert_ne!(
        url, down_url,
        "the test database URL names port 5432: {url}"
    );
    let redis_url = format!("redis://127.0.0.1:{redis_port}");
    let app = TestApp::spawn_with(
        Profile::Server,
        &[
            ("DATABASE_URL", &down_url),
            ("REDIS_URL", &redis_url),
            ("DEPENDENCY_TIMEOUT", "1s"),
        ],
    )
    .await;

    let (status, body) = ready(&app).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["checks"]["user_store"], "down", "{body}");
    assert_eq!(body["checks"]["session_store"], "down", "{body}");
    let res = app.signup(&app.email(), PASSWORD).await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);

    bring_up(pg_port, "127.0.0.1:5432".parse().unwrap()).await;
    let (status, body) = ready(&app).await;
    assert_eq!(body["checks"]["session_store"], "down", "{body}");
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    bring_up(redis_port, "127.0.0.1:6379".parse().unwrap()).await;

    let start = Instant::now();
    loop {
        let (status, body) = ready(&app).await;
        if status == StatusCode::OK {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "still not ready: {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The schema was migrated in the background: a whole signup works.
    let email = app.verified_user().await;
    assert_eq!(app.login(&email, PASSWORD).await.status(), StatusCode::OK);
    app.cleanup().await;
    db.cleanup().await.unwrap();
}

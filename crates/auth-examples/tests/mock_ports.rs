//! A unit test of the embedder's own code (here: the axum extractor and the error mapping of
//! `auth_examples::web`) against mocks of every port: `MockPorts` builds the service in one
//! line, each test sets only the expectations it needs. No socket, no runtime beyond the
//! test's own.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use auth_core::testing::MockPorts;
use auth_core::{RateDecision, SessionStoreError, SessionToken, Utc};
use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::response::Response;
use tower::ServiceExt as _;

async fn send(ports: MockPorts, request: Request<Body>) -> Response {
    let app = auth_examples::router(Arc::new(ports.service()));
    app.oneshot(request).await.expect("infallible")
}

fn me_with_token() -> Request<Body> {
    let token = SessionToken::from_bytes([1; 32]).expose();
    Request::get("/me")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap()
}

#[tokio::test]
async fn a_malformed_token_is_401_without_touching_any_port() {
    // The one-line set-up: mocks without expectations (a call to any port fails the test), a
    // hand-moved clock, no rate limits, the default configuration.
    let service = MockPorts::new(Utc::now()).service();

    let app = auth_examples::router(Arc::new(service));
    let request = Request::get("/me")
        .header(header::AUTHORIZATION, "Bearer not-a-session-token")
        .body(Body::empty())
        .unwrap();
    let res = app.oneshot(request).await.expect("infallible");
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(res.headers()[header::WWW_AUTHENTICATE], "Bearer");
}

#[tokio::test]
async fn an_unknown_token_is_401_with_www_authenticate() {
    let mut ports = MockPorts::new(Utc::now());
    ports.sessions.expect_get().returning(|_| Ok(None));

    let res = send(ports, me_with_token()).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(res.headers()[header::WWW_AUTHENTICATE], "Bearer");
}

#[tokio::test]
async fn a_session_store_outage_is_503_with_retry_after() {
    let mut ports = MockPorts::new(Utc::now());
    ports
        .sessions
        .expect_get()
        .returning(|_| Err(SessionStoreError::Unavailable("connection refused".into())));

    let res = send(ports, me_with_token()).await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(res.headers()[header::RETRY_AFTER], "5");
}

#[tokio::test]
async fn a_spent_budget_is_429_with_the_cores_retry_after() {
    let mut ports = MockPorts::new(Utc::now());
    let mut limiter = auth_core::MockRateLimiter::new();
    limiter.expect_acquire().returning(|_, _| {
        Ok(RateDecision::Limited {
            retry_after: Duration::from_secs(42),
        })
    });
    ports.limiter = Arc::new(limiter);
    // Refused before the account is looked up or a password hashed.
    ports.users.expect_find_by_email().never();
    ports.hasher.expect_verify().never();

    let request = Request::post("/login")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(
            r#"{"email":"ada@example.com","password":"lantern orchard 1843 velvet"}"#,
        ))
        .unwrap();
    let res = send(ports, request).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(res.headers()[header::RETRY_AFTER], "42");
}

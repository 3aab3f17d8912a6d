//! The verifier and the two example extractors against a real JWKS server on loopback (axum,
//! keys generated here), with tokens signed here: a valid token passes both extractors, bad
//! ones get 401, an unreachable key set 503, and unknown `kid`s cannot make the verifier
//! hammer the key set.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use auth_jwt::{JwksVerifier, VerifierConfig, VerifyError};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ed25519_dalek::{Signer as _, SigningKey};
use serde_json::{json, Value};

#[path = "../examples/actix_service.rs"]
#[allow(dead_code)]
mod actix_example;
#[path = "../examples/axum_service.rs"]
#[allow(dead_code)]
mod axum_example;

const ISSUER: &str = "https://auth.example.test";
const AUDIENCE: &str = "orders";

struct Jwks {
    url: String,
    hits: Arc<AtomicUsize>,
}

/// Serves `{"keys": [key]}` (kid `k1`) and counts the requests.
async fn serve_jwks(key: &SigningKey) -> Jwks {
    let body = json!({"keys": [{
        "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": "k1",
        "x": URL_SAFE_NO_PAD.encode(key.verifying_key().to_bytes()),
    }]});
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&hits);
    let app = axum::Router::new().route(
        "/.well-known/jwks.json",
        axum::routing::get(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            let body = body.clone();
            async move { axum::Json(body) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/.well-known/jwks.json",
        listener.local_addr().unwrap()
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    Jwks { url, hits }
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
}

fn sign(kid: &str, claims: &Value, key: &SigningKey) -> String {
    let input = format!(
        "{}.{}",
        b64(&json!({"alg": "EdDSA", "typ": "at+jwt", "kid": kid})),
        b64(claims)
    );
    format!(
        "{input}.{}",
        URL_SAFE_NO_PAD.encode(key.sign(input.as_bytes()).to_bytes())
    )
}

fn claims() -> Value {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    json!({
        "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 300,
        "sub": "7f1c1b7e-9a57-4a51-9a3a-0d5c1f0b2a11",
        "sid": "0b6f4c3e-2d1a-4f5e-8c7b-6a5d4c3b2a19",
        "jti": "b3c1f0e2d4a5968778695a4b3c2d1e0f",
    })
}

fn verifier(url: &str) -> Arc<JwksVerifier> {
    Arc::new(JwksVerifier::new(VerifierConfig::new(ISSUER, AUDIENCE).with_jwks_url(url)).unwrap())
}

#[tokio::test]
async fn the_axum_extractor_admits_valid_tokens_only() {
    let key = SigningKey::from_bytes(&[5; 32]);
    let jwks = serve_jwks(&key).await;
    let app = axum_example::router(verifier(&jwks.url));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let http = reqwest::Client::new();

    let token = sign("k1", &claims(), &key);
    let res = http
        .get(format!("{base}/whoami"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["user"], claims()["sub"]);
    assert_eq!(body["session"], claims()["sid"]);

    let forged = sign("k1", &claims(), &SigningKey::from_bytes(&[6; 32]));
    for auth in [
        None,
        Some(format!("Bearer {forged}")),
        Some("Bearer not-a-jwt".into()),
        Some(format!("Basic {token}")),
    ] {
        let mut req = http.get(format!("{base}/whoami"));
        if let Some(a) = &auth {
            req = req.header("authorization", a);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), 401, "{auth:?}");
        assert_eq!(res.headers()["www-authenticate"], "Bearer");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"], "invalid_token");
    }
}

#[actix_web::test]
async fn the_actix_extractor_admits_valid_tokens_only() {
    let key = SigningKey::from_bytes(&[7; 32]);
    let jwks = serve_jwks(&key).await;
    let verifier = actix_web::web::Data::from(verifier(&jwks.url));
    let app = actix_web::test::init_service(
        actix_web::App::new()
            .app_data(verifier)
            .configure(actix_example::routes),
    )
    .await;
    let token = sign("k1", &claims(), &key);
    let req = actix_web::test::TestRequest::get()
        .uri("/whoami")
        .insert_header(("authorization", format!("Bearer {token}")))
        .to_request();
    let body: Value = actix_web::test::call_and_read_body_json(&app, req).await;
    assert_eq!(body["user"], claims()["sub"]);

    let mut expired = claims();
    expired["exp"] = json!(1_000_000);
    for auth in [
        String::new(),
        format!("Bearer {}", sign("k1", &expired, &key)),
        format!("Bearer {}", sign("k2", &claims(), &key)),
    ] {
        let mut req = actix_web::test::TestRequest::get().uri("/whoami");
        if !auth.is_empty() {
            req = req.insert_header(("authorization", auth.clone()));
        }
        let res = actix_web::test::call_service(&app, req.to_request()).await;
        assert_eq!(res.status(), 401, "{auth}");
        assert_eq!(
            res.headers()
                .get("www-authenticate")
                .unwrap()
                .to_str()
                .unwrap(),
            "Bearer"
        );
    }
}

#[tokio::test]
async fn unknown_key_ids_cannot_make_the_verifier_hammer_the_key_set() {
    let key = SigningKey::from_bytes(&[8; 32]);
    let jwks = serve_jwks(&key).await;
    let v = verifier(&jwks.url);
    v.verify(&sign("k1", &claims(), &key)).await.unwrap();
    assert_eq!(jwks.hits.load(Ordering::SeqCst), 1);
    for i in 0..200 {
        let forged = sign(&format!("made-up-{i}"), &claims(), &key);
        assert_eq!(v.verify(&forged).await, Err(VerifyError::UnknownKey));
    }
    // At most one refetch per min_refresh_interval (10 s by default).
    assert!(
        jwks.hits.load(Ordering::SeqCst) <= 2,
        "{} fetches",
        jwks.hits.load(Ordering::SeqCst)
    );
    // Known keys keep verifying from the cache.
    v.verify(&sign("k1", &claims(), &key)).await.unwrap();
}

#[tokio::test]
async fn an_unreachable_key_set_is_unavailable_not_invalid() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "http://{}/.well-known/jwks.json",
        listener.local_addr().unwrap()
    );
    drop(listener);
    let v = JwksVerifier::new(
        VerifierConfig::new(ISSUER, AUDIENCE)
            .with_jwks_url(url)
            .tap_timeout(Duration::from_secs(2)),
    )
    .unwrap();
    let key = SigningKey::from_bytes(&[9; 32]);
    let err = v.verify(&sign("k1", &claims(), &key)).await.unwrap_err();
    assert!(err.is_unavailable(), "{err:?}");
}

trait TapTimeout {
    fn tap_timeout(self, t: Duration) -> Self;
}

impl TapTimeout for VerifierConfig {
    fn tap_timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }
}

//! An axum service behind SecureAuth: `GET /whoami` answers the caller's user and session ids
//! from their access token, without calling SecureAuth (only its key set, cached).
//!
//! ```sh
//! cargo run -p auth-jwt --example axum_service     # listens on 127.0.0.1:9091
//! curl -H "Authorization: Bearer $TOKEN" localhost:9091/whoami
//! ```
//!
//! The extractor, [`Caller`], is the part to copy: any state from which an
//! `Arc<JwksVerifier>` can be taken (`FromRef`) works.

use std::sync::Arc;

use auth_jwt::{AccessClaims, JwksVerifier, VerifierConfig, VerifyError};
use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

/// A caller with a valid SecureAuth access token.
#[derive(Debug)]
pub struct Caller(pub AccessClaims);

/// Why a request was refused: 401 JSON with `WWW-Authenticate: Bearer`, or 503 when the keys
/// cannot be fetched.
#[derive(Debug)]
pub struct Refused(pub VerifyError);

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        tracing::debug!(reason = %self.0, "access token refused");
        if self.0.is_unavailable() {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(serde_json::json!({"error": "unavailable"})),
            )
                .into_response();
        }
        (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            Json(serde_json::json!({"error": "invalid_token"})),
        )
            .into_response()
    }
}

impl<S> FromRequestParts<S> for Caller
where
    Arc<JwksVerifier>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Refused;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Refused> {
        let verifier = Arc::<JwksVerifier>::from_ref(state);
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .ok_or(Refused(VerifyError::Malformed))?;
        verifier.verify(token).await.map(Caller).map_err(Refused)
    }
}

async fn whoami(Caller(claims): Caller) -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "user": claims.sub,
        "session": claims.sid,
        "expires_at": claims.exp,
    }))
}

/// The routes of this service on `verifier`.
pub fn router(verifier: Arc<JwksVerifier>) -> Router {
    Router::new()
        .route("/whoami", get(whoami))
        .with_state(verifier)
}

#[allow(dead_code)]
#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let issuer = std::env::var("SECUREAUTH_URL").unwrap_or_else(|_| "http://127.0.0.1:8080".into());
    let audience = std::env::var("JWT_AUDIENCE").unwrap_or_else(|_| "secureauth".into());
    let verifier = Arc::new(JwksVerifier::new(VerifierConfig::new(issuer, audience))?);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:9091").await?;
    println!("listening on http://127.0.0.1:9091 (GET /whoami)");
    axum::serve(listener, router(verifier)).await?;
    Ok(())
}

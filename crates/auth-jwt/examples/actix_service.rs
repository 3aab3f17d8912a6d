//! An actix-web service behind SecureAuth: `GET /whoami` answers the caller's user and
//! session ids from their access token, without calling SecureAuth (only its key set, cached).
//!
//! ```sh
//! # SecureAuth on :8080 (development: JWT_ISSUER defaults to http://127.0.0.1:8080)
//! cargo run -p auth-jwt --example actix_service
//! TOKEN=$(curl -s -X POST localhost:8080/token -H "Authorization: Bearer $SESSION" | jq -r .access_token)
//! curl -H "Authorization: Bearer $TOKEN" localhost:9090/whoami
//! ```
//!
//! The extractor, [`Caller`], is the part to copy: a handler that takes it only runs for a
//! valid token; anything else gets 401 JSON with `WWW-Authenticate: Bearer` (503 when the keys
//! cannot be fetched).

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::{header, StatusCode};
use actix_web::{web, FromRequest, HttpRequest, HttpResponse, ResponseError};
use auth_jwt::{AccessClaims, JwksVerifier, VerifierConfig, VerifyError};

/// A caller with a valid SecureAuth access token.
#[derive(Debug)]
pub struct Caller(pub AccessClaims);

/// Why a request was refused.
#[derive(Debug)]
pub struct Refused(pub VerifyError);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl ResponseError for Refused {
    fn status_code(&self) -> StatusCode {
        if self.0.is_unavailable() {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            StatusCode::UNAUTHORIZED
        }
    }

    fn error_response(&self) -> HttpResponse {
        // The reason is logged, not told: a prober learns nothing about the keys.
        tracing::debug!(reason = %self.0, "access token refused");
        let mut res = HttpResponse::build(self.status_code());
        if self.status_code() == StatusCode::UNAUTHORIZED {
            res.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
        }
        res.json(serde_json::json!({"error": if self.0.is_unavailable() {
            "unavailable"
        } else {
            "invalid_token"
        }}))
    }
}

impl FromRequest for Caller {
    type Error = Refused;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Refused>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let verifier = req.app_data::<web::Data<JwksVerifier>>().cloned();
        let token = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim().to_owned());
        Box::pin(async move {
            let verifier = verifier.ok_or_else(|| {
                Refused(VerifyError::Config("no JwksVerifier in app data".into()))
            })?;
            let token = token.ok_or(Refused(VerifyError::Malformed))?;
            verifier.verify(&token).await.map(Caller).map_err(Refused)
        })
    }
}

async fn whoami(caller: Caller) -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({
        "user": caller.0.sub,
        "session": caller.0.sid,
        "expires_at": caller.0.exp,
    }))
}

/// The routes of this service, for `App::new().configure(routes)`.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/whoami", web::get().to(whoami));
}

/// The verifier for the SecureAuth at `SECUREAUTH_URL` (default `http://127.0.0.1:8080`) and
/// the audience `JWT_AUDIENCE` (default `secureauth`).
pub fn verifier_from_env() -> Result<JwksVerifier, VerifyError> {
    let issuer = std::env::var("SECUREAUTH_URL").unwrap_or_else(|_| "http://127.0.0.1:8080".into());
    let audience = std::env::var("JWT_AUDIENCE").unwrap_or_else(|_| "secureauth".into());
    JwksVerifier::new(VerifierConfig::new(issuer, audience))
}

#[allow(dead_code)]
#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let verifier = web::Data::new(verifier_from_env().map_err(std::io::Error::other)?);
    println!("listening on http://127.0.0.1:9090 (GET /whoami)");
    actix_web::HttpServer::new(move || {
        actix_web::App::new()
            .app_data(verifier.clone())
            .configure(routes)
    })
    .bind(("127.0.0.1", 9090))?
    .run()
    .await
}

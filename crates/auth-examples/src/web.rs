//! The core inside an axum 0.8 service: what an application that already runs axum writes.
//!
//! | route | body | answer |
//! |---|---|---|
//! | `POST /signup` | `{"email", "password"}` | 201 [`UserView`] |
//! | `POST /verify` | `{"email", "code"}` | 200 [`UserView`] |
//! | `POST /login` | `{"email", "password"}` | 200 [`LoginView`] (the bearer token) |
//! | `GET /me` | `Authorization: Bearer …` | 200 [`MeView`] |
//! | `POST /logout` | `Authorization: Bearer …` | 204 |
//!
//! Errors are `{"error": {"code", "message"}}` ([`ApiError`]): a spent request budget is 429
//! and a dependency that is down 503, both with `Retry-After`, decided by the core's own
//! `retry_after()` and `is_unavailable()` before any per-operation status.
//!
//! Serve the router with `into_make_service_with_connect_info::<SocketAddr>()` so that the
//! [`Client`] extractor sees the peer address the core budgets requests on (behind a reverse
//! proxy, read the address the proxy forwards instead).

use std::convert::Infallible;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, FromRef, FromRequestParts, State};
use axum::http::header::{AUTHORIZATION, RETRY_AFTER, USER_AGENT, WWW_AUTHENTICATE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use auth_core::{
    AuthService, AuthenticateError, ClientInfo, DateTime, EmailAddress, LoginError, OtpCheckError,
    OtpCode, PasswordAttempt, SecretString, Session, SessionError, SessionToken, SignupError, User,
    Utc,
};

/// `Retry-After` of a 503: a dependency that is down gives no better hint.
pub const UNAVAILABLE_RETRY_AFTER: Duration = Duration::from_secs(5);

/// The axum app: the five routes over `service`.
pub fn router(service: Arc<AuthService>) -> Router {
    Router::new()
        .route("/signup", post(signup))
        .route("/verify", post(verify))
        .route("/login", post(login))
        .route("/me", get(me))
        .route("/logout", post(logout))
        .with_state(service)
}

// ---- extractors -------------------------------------------------------------------------

/// The caller as the core wants it for its request budgets: peer IP (from axum's
/// `ConnectInfo`, when the app is served with it) and `User-Agent`.
#[derive(Debug, Clone)]
pub struct Client(pub ClientInfo);

impl<S: Send + Sync> FromRequestParts<S> for Client {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(peer)| peer.ip());
        let user_agent = parts.headers.get(USER_AGENT).and_then(|v| v.to_str().ok());
        Ok(Self(ClientInfo::new(ip, user_agent)))
    }
}

/// A request with a live session: `Authorization: Bearer <token>`, checked by
/// [`AuthService::authenticate`]. Missing, malformed, unknown, expired and revoked tokens are
/// all 401 with `WWW-Authenticate: Bearer`. Works in any router whose state gives an
/// `Arc<AuthService>` ([`FromRef`]).
#[derive(Debug)]
pub struct Authenticated {
    /// The session behind the token.
    pub session: Session,
    /// The token, for logout.
    pub token: SessionToken,
}

impl<S> FromRequestParts<S> for Authenticated
where
    Arc<AuthService>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let token = bearer_token(&parts.headers).ok_or_else(ApiError::unauthenticated)?;
        let service = Arc::<AuthService>::from_ref(state);
        let session = service.authenticate(&token).await?;
        Ok(Self { session, token })
    }
}

/// The token of `Authorization: Bearer <token>` (scheme case-insensitive), if well-formed.
fn bearer_token(headers: &HeaderMap) -> Option<SessionToken> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    SessionToken::parse(token.trim())
}

// ---- JSON in and out --------------------------------------------------------------------

/// `POST /signup` and `POST /login`.
#[derive(Debug, Deserialize)]
pub struct CredentialsBody {
    /// The address.
    pub email: String,
    /// The password (never printed: `SecretString`).
    pub password: SecretString,
}

/// `POST /verify`.
#[derive(Debug, Deserialize)]
pub struct VerifyBody {
    /// The address.
    pub email: String,
    /// The six-digit code from the mail.
    pub code: String,
}

/// An account.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct UserView {
    /// Id.
    pub id: String,
    /// Address.
    pub email: String,
    /// Whether the address is proven.
    pub verified: bool,
}

impl From<&User> for UserView {
    fn from(user: &User) -> Self {
        Self {
            id: user.id.to_string(),
            email: user.email.to_string(),
            verified: user.is_verified(),
        }
    }
}

/// `POST /login`.
#[derive(Debug, Serialize, Deserialize)]
pub struct LoginView {
    /// The bearer token: send it as `Authorization: Bearer <token>`.
    pub token: String,
    /// End of the session's absolute lifetime.
    pub expires_at: DateTime<Utc>,
    /// The account.
    pub user: UserView,
}

/// `GET /me`.
#[derive(Debug, Serialize, Deserialize)]
pub struct MeView {
    /// The account (as of login).
    pub user: UserView,
    /// The session's public id.
    pub session_id: String,
    /// End of the session's absolute lifetime.
    pub expires_at: DateTime<Utc>,
}

// ---- handlers ---------------------------------------------------------------------------

async fn signup(
    State(service): State<Arc<AuthService>>,
    Client(client): Client,
    Json(body): Json<CredentialsBody>,
) -> Result<(StatusCode, Json<UserView>), ApiError> {
    let email = parse_email(&body.email)?;
    let password = service
        .password_policy()
        .parse(body.password, &email)
        .map_err(|e| ApiError::unprocessable("weak_password", &e))?;
    let user = service.signup(email, password, &client).await?;
    Ok((StatusCode::CREATED, Json(UserView::from(&user))))
}

async fn verify(
    State(service): State<Arc<AuthService>>,
    Client(client): Client,
    Json(body): Json<VerifyBody>,
) -> Result<Json<UserView>, ApiError> {
    let email = parse_email(&body.email)?;
    let code =
        OtpCode::parse(&body.code).map_err(|e| ApiError::unprocessable("invalid_otp", &e))?;
    let user = service.verify_otp(&email, &code, &client).await?;
    Ok(Json(UserView::from(&user)))
}

async fn login(
    State(service): State<Arc<AuthService>>,
    Client(client): Client,
    Json(body): Json<CredentialsBody>,
) -> Result<Json<LoginView>, ApiError> {
    let email = parse_email(&body.email)?;
    let password = PasswordAttempt::parse(body.password)
        .map_err(|e| ApiError::unprocessable("invalid_password", &e))?;
    let outcome = service.login(&email, &password, client).await?;
    Ok(Json(LoginView {
        token: outcome.token.expose(),
        expires_at: outcome.session.expires_at,
        user: UserView::from(&outcome.user),
    }))
}

async fn me(Authenticated { session, .. }: Authenticated) -> Json<MeView> {
    Json(MeView {
        user: UserView::from(&session.user),
        session_id: session.id.to_string(),
        expires_at: session.expires_at,
    })
}

async fn logout(
    State(service): State<Arc<AuthService>>,
    Authenticated { token, .. }: Authenticated,
) -> Result<StatusCode, ApiError> {
    service.logout(&token).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn parse_email(raw: &str) -> Result<EmailAddress, ApiError> {
    EmailAddress::parse(raw).map_err(|e| ApiError::unprocessable("invalid_email", &e))
}

// ---- errors -----------------------------------------------------------------------------

/// An error answer: status, `{"error": {"code", "message"}}`, and `Retry-After` for 429 and
/// 503.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    retry_after: Option<Duration>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl fmt::Display) -> Self {
        Self {
            status,
            code,
            message: message.to_string(),
            retry_after: None,
        }
    }

    fn unprocessable(code: &'static str, error: &dyn fmt::Display) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, error)
    }

    fn unauthenticated() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "authentication required",
        )
    }

    /// The status of this error.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// Maps an error of the core: a spent budget (`retry_after()`) is 429, an outage
    /// (`is_unavailable()`) 503, both with `Retry-After`; otherwise `domain` decides, and
    /// what it does not know is 500 (logged, not sent).
    fn from_core<E: CoreError>(error: &E, domain: Option<(StatusCode, &'static str)>) -> Self {
        if let Some(retry_after) = error.retry_after() {
            return Self {
                retry_after: Some(retry_after),
                ..Self::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too_many_requests",
                    "too many requests; try again later",
                )
            };
        }
        if error.is_unavailable() {
            return Self {
                retry_after: Some(UNAVAILABLE_RETRY_AFTER),
                ..Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "service_unavailable",
                    "the service is unavailable; try again later",
                )
            };
        }
        match domain {
            Some((status, code)) => Self::new(status, code, error),
            None => {
                // A real service logs the whole chain with its logger of choice.
                eprintln!("internal error: {}", chain(error));
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error",
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({"error": {"code": self.code, "message": self.message}});
        let mut response = (self.status, Json(body)).into_response();
        let headers = response.headers_mut();
        if let Some(retry_after) = self.retry_after {
            // Whole seconds, rounded up: "0" would invite an immediate retry.
            let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
            headers.insert(RETRY_AFTER, HeaderValue::from(secs.max(1)));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// The two questions every error of `auth_core::AuthService` answers.
trait CoreError: std::error::Error {
    fn retry_after(&self) -> Option<Duration>;
    fn is_unavailable(&self) -> bool;
}

macro_rules! core_error {
    ($($t:ty),* $(,)?) => {$(
        impl CoreError for $t {
            fn retry_after(&self) -> Option<Duration> {
                <$t>::retry_after(self)
            }
            fn is_unavailable(&self) -> bool {
                <$t>::is_unavailable(self)
            }
        }
    )*};
}

core_error!(
    SignupError,
    OtpCheckError,
    LoginError,
    AuthenticateError,
    SessionError
);

impl From<SignupError> for ApiError {
    fn from(e: SignupError) -> Self {
        let domain = match &e {
            SignupError::EmailTaken => Some((StatusCode::CONFLICT, "email_taken")),
            _ => None,
        };
        Self::from_core(&e, domain)
    }
}

impl From<OtpCheckError> for ApiError {
    fn from(e: OtpCheckError) -> Self {
        let domain = match &e {
            OtpCheckError::InvalidOtp => Some((StatusCode::BAD_REQUEST, "invalid_otp")),
            OtpCheckError::OtpExpired => Some((StatusCode::BAD_REQUEST, "otp_expired")),
            OtpCheckError::TooManyAttempts => {
                Some((StatusCode::TOO_MANY_REQUESTS, "too_many_attempts"))
            }
            _ => None,
        };
        Self::from_core(&e, domain)
    }
}

impl From<LoginError> for ApiError {
    fn from(e: LoginError) -> Self {
        let domain = match &e {
            LoginError::InvalidCredentials => {
                Some((StatusCode::UNAUTHORIZED, "invalid_credentials"))
            }
            LoginError::EmailNotVerified => Some((StatusCode::FORBIDDEN, "email_not_verified")),
            _ => None,
        };
        Self::from_core(&e, domain)
    }
}

impl From<AuthenticateError> for ApiError {
    fn from(e: AuthenticateError) -> Self {
        match &e {
            AuthenticateError::Unauthenticated => Self::unauthenticated(),
            _ => Self::from_core(&e, None),
        }
    }
}

impl From<SessionError> for ApiError {
    fn from(e: SessionError) -> Self {
        let domain = match &e {
            SessionError::NotFound => Some((StatusCode::NOT_FOUND, "not_found")),
            _ => None,
        };
        Self::from_core(&e, domain)
    }
}

/// An error and its causes on one line.
fn chain(error: &dyn std::error::Error) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}

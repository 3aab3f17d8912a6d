//! Handlers of passkeys: register and manage inside a session, sign in without a password,
//! and a passkey as the second login step.

use actix_web::{web, HttpRequest, HttpResponse};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::dto::{parse_device, Transport};
use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::extract::AuthenticatedSession;
use crate::routes::logged_in;
use crate::state::AppState;
use crate::throttle::Client;

type Answer = std::result::Result<HttpResponse, actix_web::Error>;
type Wrapped<T> = std::result::Result<web::Json<T>, actix_web::Error>;

fn no_store() -> actix_web::HttpResponseBuilder {
    let mut b = HttpResponse::Ok();
    b.insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"));
    b
}

fn ceremony_id(raw: &str) -> Result<auth_core::CeremonyId, ApiError> {
    auth_core::CeremonyId::parse(raw).ok_or(ApiError::Passkey(ErrorCode::InvalidPasskeyCeremony))
}

fn name(raw: &str) -> Result<auth_core::PasskeyName, ApiError> {
    auth_core::PasskeyName::parse(raw).map_err(|e| ApiError::InvalidRequest(e.to_string()))
}

fn factor(raw: Option<&SecretString>) -> Result<Option<auth_core::SecondFactor>, ApiError> {
    raw.map(|c| {
        auth_core::SecondFactor::parse(c.expose_secret())
            .map_err(|_| ApiError::InvalidSecondFactor { at_login: false })
    })
    .transpose()
}

/// A ceremony started: pass `options` to `navigator.credentials.create()` or `.get()` (as
/// `publicKey`, binary fields base64url), then send the answer with `ceremony_id`.
#[derive(Debug, Serialize, ToSchema)]
pub struct PasskeyCeremonyResponse {
    /// Single use; expires at `expires_at`.
    pub ceremony_id: String,
    /// The WebAuthn `publicKey` options.
    #[schema(value_type = Object)]
    pub options: serde_json::Value,
    /// When the ceremony stops working.
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

impl From<auth_core::PasskeyCeremony> for PasskeyCeremonyResponse {
    fn from(c: auth_core::PasskeyCeremony) -> Self {
        Self {
            ceremony_id: c.id.expose(),
            options: c.options,
            expires_at: c.expires_at,
        }
    }
}

/// One passkey of the account.
#[derive(Debug, Serialize, ToSchema)]
pub struct PasskeyResponse {
    /// Its id (for renaming and deleting).
    pub id: String,
    /// The name its owner gave it.
    pub name: String,
    /// When it was registered.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// When it last signed the owner in.
    pub last_used_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl From<auth_core::PasskeyInfo> for PasskeyResponse {
    fn from(p: auth_core::PasskeyInfo) -> Self {
        Self {
            id: p.id.to_string(),
            name: p.name.to_string(),
            created_at: p.created_at,
            last_used_at: p.last_used_at,
        }
    }
}

/// `GET /me/passkeys`.
#[derive(Debug, Serialize, ToSchema)]
pub struct PasskeyListResponse {
    /// Oldest first.
    pub passkeys: Vec<PasskeyResponse>,
}

/// `POST /me/passkeys/options` and `DELETE /me/passkeys/{id}`: the password again.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PasskeyReauthRequest {
    /// The account's password.
    #[schema(value_type = String)]
    pub password: SecretString,
    /// With two-factor authentication on: a current TOTP or recovery code.
    #[schema(value_type = Option<String>)]
    #[serde(default)]
    pub second_factor: Option<SecretString>,
}

/// `POST /me/passkeys`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PasskeyRegisterRequest {
    /// From `POST /me/passkeys/options`.
    pub ceremony_id: String,
    /// A name for the passkey (1-64 characters).
    pub name: String,
    /// The `PublicKeyCredential` from `navigator.credentials.create()`, binary fields
    /// base64url.
    #[schema(value_type = Object)]
    pub credential: serde_json::Value,
}

/// `PATCH /me/passkeys/{id}`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PasskeyRenameRequest {
    /// The new name (1-64 characters).
    pub name: String,
}

/// `POST /login/passkey`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PasskeyLoginRequest {
    /// From `POST /login/passkey/options`.
    pub ceremony_id: String,
    /// The `PublicKeyCredential` from `navigator.credentials.get()`, binary fields base64url.
    #[schema(value_type = Object)]
    pub credential: serde_json::Value,
    /// `bearer` (default) or `cookie`.
    #[serde(default)]
    pub transport: Transport,
    /// As at `POST /login`.
    #[schema(value_type = Option<String>)]
    #[serde(default)]
    pub device_token: Option<SecretString>,
}

/// `POST /login/mfa/passkey/options`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PasskeySecondStepOptionsRequest {
    /// The `mfa_token` of the password step.
    #[schema(value_type = String)]
    pub mfa_token: SecretString,
}

/// `POST /login/mfa/passkey`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PasskeySecondStepRequest {
    /// The `mfa_token` of the password step.
    #[schema(value_type = String)]
    pub mfa_token: SecretString,
    /// From `POST /login/mfa/passkey/options`.
    pub ceremony_id: String,
    /// The `PublicKeyCredential` from `navigator.credentials.get()`.
    #[schema(value_type = Object)]
    pub credential: serde_json::Value,
    /// `bearer` (default) or `cookie`.
    #[serde(default)]
    pub transport: Transport,
    /// As at `POST /login`.
    #[schema(value_type = Option<String>)]
    #[serde(default)]
    pub device_token: Option<SecretString>,
}

fn mfa_token(raw: &SecretString) -> Result<auth_core::MfaToken, ApiError> {
    auth_core::MfaToken::parse(raw.expose_secret()).ok_or(ApiError::InvalidMfaToken)
}

fn device_of(
    state: &AppState,
    req: &HttpRequest,
    sent: Option<SecretString>,
) -> Option<auth_core::DeviceCredential> {
    parse_device(sent).or_else(|| {
        req.cookie(state.cookie.device_name())
            .and_then(|c| auth_core::DeviceCredential::parse(c.value()))
    })
}

/// Start registering a passkey: needs the password again (and the second factor with TOTP on).
#[utoipa::path(post, path = "/me/passkeys/options", operation_id = "passkey_registration_options", request_body = PasskeyReauthRequest, tag = "account",
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, body = PasskeyCeremonyResponse, description = "Options for `navigator.credentials.create()`; the ceremony is bound to this session and client"),
        (status = 400, body = ErrorBody, description = "`invalid_request`: malformed body"),
        (status = 401, body = ErrorBody, description = "`unauthenticated`"),
        (status = 403, body = ErrorBody, description = "`invalid_credentials`: wrong password; `second_factor_required`, `invalid_second_factor`"),
        (status = 404, body = ErrorBody, description = "`passkeys_unavailable`: the service runs without passkeys"),
        (status = 409, body = ErrorBody, description = "`too_many_passkeys`"),
        (status = 429, body = ErrorBody, description = "`too_many_requests`: the re-authentication budget is spent; see `Retry-After`"),
    ))]
pub async fn registration_options(
    state: web::Data<AppState>,
    auth: AuthenticatedSession,
    client: Client,
    body: Wrapped<PasskeyReauthRequest>,
) -> Answer {
    let body = body?.into_inner();
    let password = auth_core::PasswordAttempt::parse(body.password)
        .map_err(|_| ApiError::WrongCurrentPassword)?;
    let factor = factor(body.second_factor.as_ref())?;
    let ceremony = state
        .service
        .begin_passkey_registration(&auth.session, &password, factor.as_ref(), &client.0)
        .await
        .map_err(ApiError::from)?;
    Ok(no_store().json(PasskeyCeremonyResponse::from(ceremony)))
}

/// Finish registering a passkey with the authenticator's answer.
#[utoipa::path(post, path = "/me/passkeys", operation_id = "passkey_register", request_body = PasskeyRegisterRequest, tag = "account",
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 201, body = PasskeyResponse, description = "Registered; a notice was mailed"),
        (status = 400, body = ErrorBody, description = "`invalid_passkey_ceremony`: unknown, used, expired, or from another session or client; `passkey_rejected`: the answer did not verify, its `type` is not `public-key`, its `id` and `rawId` differ or are not the credential id in its authenticator data, or that id is shorter than 16 or longer than 1023 bytes; `invalid_request`"),
        (status = 401, body = ErrorBody, description = "`unauthenticated`"),
        (status = 404, body = ErrorBody, description = "`passkeys_unavailable`"),
        (status = 409, body = ErrorBody, description = "`passkey_already_registered`: the credential is registered already (to any account)"),
    ))]
pub async fn register(
    state: web::Data<AppState>,
    auth: AuthenticatedSession,
    client: Client,
    body: Wrapped<PasskeyRegisterRequest>,
) -> Answer {
    let body = body?.into_inner();
    let (id, name) = (ceremony_id(&body.ceremony_id)?, name(&body.name)?);
    let passkey = state
        .service
        .finish_passkey_registration(&auth.session, &id, &name, &body.credential, &client.0)
        .await
        .map_err(ApiError::from)?;
    Ok(HttpResponse::Created().json(PasskeyResponse::from(passkey)))
}

/// The account's passkeys.
#[utoipa::path(get, path = "/me/passkeys", operation_id = "passkey_list", tag = "account", security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, body = PasskeyListResponse, description = "Oldest first"),
        (status = 401, body = ErrorBody, description = "`unauthenticated`"),
        (status = 404, body = ErrorBody, description = "`passkeys_unavailable`"),
    ))]
pub async fn list(state: web::Data<AppState>, auth: AuthenticatedSession) -> Answer {
    let passkeys = state
        .service
        .list_passkeys(&auth.session)
        .await
        .map_err(ApiError::from)?;
    Ok(no_store().json(PasskeyListResponse {
        passkeys: passkeys.into_iter().map(PasskeyResponse::from).collect(),
    }))
}

fn passkey_id(raw: &str) -> Result<auth_core::PasskeyId, ApiError> {
    auth_core::PasskeyId::parse(raw).ok_or(ApiError::Passkey(ErrorCode::NotFound))
}

/// Rename one of the account's passkeys.
#[utoipa::path(patch, path = "/me/passkeys/{id}", operation_id = "passkey_rename", request_body = PasskeyRenameRequest, tag = "account",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = String, Path, description = "The passkey's id")),
    responses(
        (status = 204, description = "Renamed"),
        (status = 400, body = ErrorBody, description = "`invalid_request`: malformed body or name"),
        (status = 401, body = ErrorBody, description = "`unauthenticated`"),
        (status = 404, body = ErrorBody, description = "`not_found`: no such passkey of this account; `passkeys_unavailable`"),
    ))]
pub async fn rename(
    state: web::Data<AppState>,
    auth: AuthenticatedSession,
    path: web::Path<String>,
    body: Wrapped<PasskeyRenameRequest>,
) -> Answer {
    let body = body?.into_inner();
    let (id, name) = (passkey_id(&path)?, name(&body.name)?);
    state
        .service
        .rename_passkey(&auth.session, id, &name)
        .await
        .map_err(ApiError::from)?;
    Ok(HttpResponse::NoContent().finish())
}

/// Delete one of the account's passkeys: needs the password again (and the second factor
/// with TOTP on).
#[utoipa::path(delete, path = "/me/passkeys/{id}", operation_id = "passkey_delete", request_body = PasskeyReauthRequest, tag = "account",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = String, Path, description = "The passkey's id")),
    responses(
        (status = 204, description = "Deleted; a notice was mailed"),
        (status = 400, body = ErrorBody, description = "`invalid_request`: malformed body"),
        (status = 401, body = ErrorBody, description = "`unauthenticated`"),
        (status = 403, body = ErrorBody, description = "`invalid_credentials`, `second_factor_required`, `invalid_second_factor`"),
        (status = 404, body = ErrorBody, description = "`not_found`: no such passkey of this account; `passkeys_unavailable`"),
        (status = 429, body = ErrorBody, description = "`too_many_requests`: the re-authentication budget is spent; see `Retry-After`"),
    ))]
pub async fn delete(
    state: web::Data<AppState>,
    auth: AuthenticatedSession,
    client: Client,
    path: web::Path<String>,
    body: Wrapped<PasskeyReauthRequest>,
) -> Answer {
    let body = body?.into_inner();
    let id = passkey_id(&path)?;
    let password = auth_core::PasswordAttempt::parse(body.password)
        .map_err(|_| ApiError::WrongCurrentPassword)?;
    let factor = factor(body.second_factor.as_ref())?;
    state
        .service
        .delete_passkey(&auth.session, id, &password, factor.as_ref(), &client.0)
        .await
        .map_err(ApiError::from)?;
    Ok(HttpResponse::NoContent().finish())
}

/// Start a sign-in with a passkey (no address): options for any discoverable credential.
#[utoipa::path(post, path = "/login/passkey/options", operation_id = "passkey_login_options", tag = "session",
    responses(
        (status = 200, body = PasskeyCeremonyResponse, description = "Options for `navigator.credentials.get()`; the same for everybody"),
        (status = 404, body = ErrorBody, description = "`passkeys_unavailable`"),
        (status = 429, body = ErrorBody, description = "`too_many_requests`: the client's passkey budget is spent; see `Retry-After`"),
    ))]
pub async fn login_options(state: web::Data<AppState>, client: Client) -> Answer {
    let ceremony = state
        .service
        .begin_passkey_sign_in(&client.0)
        .await
        .map_err(ApiError::from)?;
    Ok(no_store().json(PasskeyCeremonyResponse::from(ceremony)))
}

/// Sign in with a passkey: opens a session as `POST /login` does.
#[utoipa::path(post, path = "/login/passkey", operation_id = "passkey_login", request_body = PasskeyLoginRequest, tag = "session",
    responses(
        (status = 200, body = crate::dto::LoginResponse, description = "As for `POST /login`",
            headers(("Set-Cookie" = String, description = "Cookie transport only: the session and device cookies"))),
        (status = 400, body = ErrorBody, description = "`invalid_passkey_ceremony`: unknown, used, expired or from another client (start again); `passkey_rejected`: the credential's `type` is not `public-key` or its `id` and `rawId` differ; `invalid_request`"),
        (status = 401, body = ErrorBody, description = "`invalid_passkey`: the answer did not verify, the credential is unknown, or a revocation ran meanwhile"),
        (status = 403, body = ErrorBody, description = "`account_disabled`"),
        (status = 404, body = ErrorBody, description = "`passkeys_unavailable`"),
        (status = 429, body = ErrorBody, description = "`too_many_requests`: see `Retry-After`"),
    ))]
pub async fn login(
    state: web::Data<AppState>,
    req: HttpRequest,
    client: Client,
    body: Wrapped<PasskeyLoginRequest>,
) -> Answer {
    let body = body?.into_inner();
    let id = ceremony_id(&body.ceremony_id)?;
    let device = device_of(&state, &req, body.device_token);
    let login = state
        .service
        .finish_passkey_sign_in(&id, &body.credential, client.0, device.as_ref())
        .await
        .map_err(ApiError::from)?;
    Ok(logged_in(&state, login, body.transport))
}

/// Start the second login step with a passkey (instead of a code).
#[utoipa::path(post, path = "/login/mfa/passkey/options", operation_id = "passkey_second_step_options", request_body = PasskeySecondStepOptionsRequest, tag = "session",
    responses(
        (status = 200, body = PasskeyCeremonyResponse, description = "Options for `navigator.credentials.get()` listing the account's passkeys"),
        (status = 400, body = ErrorBody, description = "`invalid_request`"),
        (status = 401, body = ErrorBody, description = "`invalid_mfa_token`"),
        (status = 404, body = ErrorBody, description = "`passkeys_unavailable`"),
        (status = 409, body = ErrorBody, description = "`no_passkey`: the account has none"),
        (status = 429, body = ErrorBody, description = "`too_many_requests`: the client's passkey budget is spent; see `Retry-After`"),
    ))]
pub async fn second_step_options(
    state: web::Data<AppState>,
    client: Client,
    body: Wrapped<PasskeySecondStepOptionsRequest>,
) -> Answer {
    let token = mfa_token(&body?.into_inner().mfa_token)?;
    let ceremony = state
        .service
        .begin_passkey_second_factor(&token, &client.0)
        .await
        .map_err(ApiError::from)?;
    Ok(no_store().json(PasskeyCeremonyResponse::from(ceremony)))
}

/// The second login step with a passkey.
#[utoipa::path(post, path = "/login/mfa/passkey", operation_id = "passkey_second_step", request_body = PasskeySecondStepRequest, tag = "session",
    responses(
        (status = 200, body = crate::dto::LoginResponse, description = "As for `POST /login`",
            headers(("Set-Cookie" = String, description = "Cookie transport only: the session and device cookies"))),
        (status = 400, body = ErrorBody, description = "`invalid_passkey_ceremony`; `passkey_rejected`: the credential's `type` is not `public-key` or its `id` and `rawId` differ; `invalid_request`"),
        (status = 401, body = ErrorBody, description = "`invalid_mfa_token` (log in again); `invalid_passkey`"),
        (status = 403, body = ErrorBody, description = "`account_disabled`"),
        (status = 404, body = ErrorBody, description = "`passkeys_unavailable`"),
        (status = 429, body = ErrorBody, description = "`too_many_requests`: the second-factor budget is spent; see `Retry-After`"),
    ))]
pub async fn second_step(
    state: web::Data<AppState>,
    req: HttpRequest,
    client: Client,
    body: Wrapped<PasskeySecondStepRequest>,
) -> Answer {
    let body = body?.into_inner();
    let token = mfa_token(&body.mfa_token)?;
    let id = ceremony_id(&body.ceremony_id)?;
    let device = device_of(&state, &req, body.device_token);
    let login = state
        .service
        .finish_passkey_second_factor(&token, &id, &body.credential, client.0, device.as_ref())
        .await
        .map_err(ApiError::from)?;
    Ok(logged_in(&state, login, body.transport))
}

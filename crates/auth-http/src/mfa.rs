//! Handlers of two-factor authentication: enrol (with the QR code), confirm, the second login
//! step, new recovery codes, turn off.

use actix_web::{web, HttpRequest, HttpResponse};
use qrcode::render::svg;
use qrcode::QrCode;

use crate::dto::*;
use crate::error::{ApiError, ErrorBody};
use crate::extract::AuthenticatedSession;
use crate::routes::logged_in;
use crate::state::AppState;
use crate::throttle::Client;

type Result<T = HttpResponse> = std::result::Result<T, ApiError>;
type Wrapped<T> = std::result::Result<web::Json<T>, actix_web::Error>;
type Answer = std::result::Result<HttpResponse, actix_web::Error>;

fn no_store() -> actix_web::HttpResponseBuilder {
    let mut b = HttpResponse::Ok();
    b.insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"));
    b
}

/// The QR code of `uri` as an SVG document.
fn qr_svg(uri: &str) -> Result<String> {
    let code = QrCode::new(uri.as_bytes()).map_err(|e| ApiError::Internal(Box::new(e)))?;
    Ok(code
        .render::<svg::Color<'_>>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build())
}

/// Whether two-factor authentication is on, and how many recovery codes are left.
#[utoipa::path(get, path = "/me/mfa", tag = "account", security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = MfaStatusResponse, description = "The second factor of this account")))]
pub async fn mfa_status(state: web::Data<AppState>, auth: AuthenticatedSession) -> Result {
    let status = state
        .service
        .totp_status(auth.session.user.id)
        .await
        .map_err(ApiError::from_failure)?;
    Ok(no_store().json(MfaStatusResponse {
        totp_enabled: status.enabled,
        recovery_codes_left: status.recovery_codes_left,
    }))
}

/// Start TOTP enrolment: a new secret, shown once, pending until confirmed with a code.
#[utoipa::path(post, path = "/me/mfa/totp", request_body = TotpEnrolRequest, tag = "account",
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, body = TotpEnrolResponse, description = "The secret as an `otpauth://` URI, in base32 and as a QR code (SVG); confirm with `POST /me/mfa/totp/confirm`"),
        (status = 403, body = ErrorBody, description = "`invalid_credentials`: wrong password"),
        (status = 409, body = ErrorBody, description = "`mfa_already_enabled`"),
        (status = 429, body = ErrorBody, description = "`too_many_requests`: the re-authentication budget is spent; see `Retry-After`"),
    ))]
pub async fn enrol_totp(
    state: web::Data<AppState>,
    auth: AuthenticatedSession,
    client: Client,
    body: Wrapped<TotpEnrolRequest>,
) -> Answer {
    let password = auth_core::PasswordAttempt::parse(body?.into_inner().password)
        .map_err(|_| ApiError::WrongCurrentPassword)?;
    let enrolment = state
        .service
        .begin_totp_enrolment(&auth.session, &password, &client.0)
        .await
        .map_err(ApiError::from)?;
    let otpauth_uri = enrolment.totp.otpauth_uri();
    let qr_svg = qr_svg(&otpauth_uri)?;
    Ok(no_store().json(TotpEnrolResponse {
        secret: enrolment.totp.secret_base32(),
        otpauth_uri,
        qr_svg,
    }))
}

/// Turn TOTP on with a current code; returns the recovery codes, shown once.
#[utoipa::path(post, path = "/me/mfa/totp/confirm", request_body = TotpConfirmRequest, tag = "account",
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, body = RecoveryCodesResponse, description = "On; ten single-use recovery codes (stored only hashed); a notice was mailed"),
        (status = 403, body = ErrorBody, description = "`invalid_second_factor`: wrong code"),
        (status = 409, body = ErrorBody, description = "`mfa_already_enabled`, or `mfa_not_enabled`: no enrolment waiting"),
        (status = 429, body = ErrorBody, description = "`too_many_requests`: the re-authentication budget is spent; see `Retry-After`"),
    ))]
pub async fn confirm_totp(
    state: web::Data<AppState>,
    auth: AuthenticatedSession,
    client: Client,
    body: Wrapped<TotpConfirmRequest>,
) -> Answer {
    use secrecy::ExposeSecret;
    let raw = body?.into_inner().code;
    let code = auth_core::OtpCode::parse(raw.expose_secret())
        .map_err(|_| ApiError::InvalidSecondFactor { at_login: false })?;
    let codes = state
        .service
        .confirm_totp(&auth.session, &code, &client.0)
        .await
        .map_err(ApiError::from)?;
    Ok(recovery_codes(codes))
}

fn recovery_codes(codes: Vec<auth_core::RecoveryCode>) -> HttpResponse {
    no_store().json(RecoveryCodesResponse {
        recovery_codes: codes.iter().map(auth_core::RecoveryCode::expose).collect(),
    })
}

/// New recovery codes in place of the old ones; needs the password and a current code.
#[utoipa::path(post, path = "/me/mfa/recovery-codes", request_body = MfaManageRequest, tag = "account",
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, body = RecoveryCodesResponse, description = "Ten new codes; the old ones no longer work"),
        (status = 403, body = ErrorBody, description = "`invalid_credentials` or `invalid_second_factor`"),
        (status = 409, body = ErrorBody, description = "`mfa_not_enabled`"),
        (status = 429, body = ErrorBody, description = "`too_many_requests`: the re-authentication budget is spent; see `Retry-After`"),
    ))]
pub async fn regenerate_recovery_codes(
    state: web::Data<AppState>,
    auth: AuthenticatedSession,
    client: Client,
    body: Wrapped<MfaManageRequest>,
) -> Answer {
    let (password, code) = body?.into_inner().try_into_domain()?;
    let codes = state
        .service
        .regenerate_recovery_codes(&auth.session, &password, &code, &client.0)
        .await
        .map_err(ApiError::from)?;
    Ok(recovery_codes(codes))
}

/// Turn TOTP off; needs the password and a current code. Every other session ends.
#[utoipa::path(delete, path = "/me/mfa/totp", request_body = MfaManageRequest, tag = "account",
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 204, description = "Off; every other session ended; a notice was mailed"),
        (status = 403, body = ErrorBody, description = "`invalid_credentials` or `invalid_second_factor`"),
        (status = 409, body = ErrorBody, description = "`mfa_not_enabled`"),
        (status = 429, body = ErrorBody, description = "`too_many_requests`: the re-authentication budget is spent; see `Retry-After`"),
    ))]
pub async fn disable_totp(
    state: web::Data<AppState>,
    auth: AuthenticatedSession,
    client: Client,
    body: Wrapped<MfaManageRequest>,
) -> Answer {
    let (password, code) = body?.into_inner().try_into_domain()?;
    state
        .service
        .disable_totp(&auth.session, &password, &code, &client.0)
        .await
        .map_err(ApiError::from)?;
    Ok(HttpResponse::NoContent().finish())
}

/// The second login step: the `mfa_token` of `POST /login` and a TOTP or recovery code.
#[utoipa::path(post, path = "/login/mfa", request_body = LoginMfaRequest, tag = "session",
    responses(
        (status = 200, body = LoginResponse, description = "As for `POST /login`",
            headers(("Set-Cookie" = String, description = "Cookie transport only: the session and device cookies"))),
        (status = 401, body = ErrorBody, description = "`invalid_mfa_token`: unknown, used, expired or from another client (log in again); `invalid_second_factor`: wrong or used code"),
        (status = 403, body = ErrorBody, description = "`account_disabled`: an administrator disabled the account"),
        (status = 429, body = ErrorBody, description = "`too_many_requests`: the re-authentication budget (per account, per IP) is spent; see `Retry-After`"),
    ))]
pub async fn login_mfa(
    state: web::Data<AppState>,
    req: HttpRequest,
    client: Client,
    body: web::Json<LoginMfaRequest>,
) -> Result {
    let (token, code, transport, device) = body.into_inner().try_into_domain()?;
    let device = device.or_else(|| {
        req.cookie(state.cookie.device_name())
            .and_then(|c| auth_core::DeviceCredential::parse(c.value()))
    });
    let done = state
        .service
        .login_second_factor(&token, &code, client.0, device.as_ref())
        .await?;
    Ok(logged_in(&state, done.login, transport))
}

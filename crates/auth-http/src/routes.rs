//! Handlers: extract the DTO, convert to domain types, call the service, map the result.

use std::collections::BTreeMap;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use auth_core::{DeviceCredential, LoginOutcome, SessionId};

use crate::dto::*;
use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::extract::AuthenticatedSession;
use crate::state::AppState;
use crate::throttle::Client;

type Result<T = HttpResponse> = std::result::Result<T, ApiError>;

const ACCEPTED_RESEND: AcceptedResponse = AcceptedResponse {
    status: "accepted",
    message: "If the address has an account waiting for verification, a new code is on its way.",
};
const ACCEPTED_FORGOT: AcceptedResponse = AcceptedResponse {
    status: "accepted",
    message: "If the address has an account, a reset code is on its way.",
};
const ACCEPTED_LOGIN_CODE: AcceptedResponse = AcceptedResponse {
    status: "accepted",
    message: "If the address has an account, a login code is on its way.",
};

/// Registers the API routes; any other method on a known path answers 405 JSON.
pub fn configure(cfg: &mut web::ServiceConfig) {
    fn resource(path: &str) -> actix_web::Resource {
        web::resource(path).default_service(web::to(method_not_allowed))
    }
    cfg.service(resource("/signup").route(web::post().to(signup)))
        .service(resource("/verify-otp").route(web::post().to(verify_otp)))
        .service(resource("/resend-otp").route(web::post().to(resend_otp)))
        .service(resource("/login").route(web::post().to(login)))
        .service(resource("/login/code").route(web::post().to(request_login_code)))
        .service(resource("/login/code/verify").route(web::post().to(verify_login_code)))
        .service(resource("/login/mfa").route(web::post().to(crate::mfa::login_mfa)))
        .service(
            resource("/login/passkey/options")
                .route(web::post().to(crate::passkeys::login_options)),
        )
        .service(resource("/login/passkey").route(web::post().to(crate::passkeys::login)))
        .service(
            resource("/login/mfa/passkey/options")
                .route(web::post().to(crate::passkeys::second_step_options)),
        )
        .service(resource("/login/mfa/passkey").route(web::post().to(crate::passkeys::second_step)))
        .service(
            resource("/me/passkeys")
                .route(web::get().to(crate::passkeys::list))
                .route(web::post().to(crate::passkeys::register)),
        )
        .service(
            resource("/me/passkeys/options")
                .route(web::post().to(crate::passkeys::registration_options)),
        )
        .service(
            resource("/me/passkeys/{id}")
                .route(web::patch().to(crate::passkeys::rename))
                .route(web::delete().to(crate::passkeys::delete)),
        )
        .service(resource("/me/mfa").route(web::get().to(crate::mfa::mfa_status)))
        .service(resource("/me/events").route(web::get().to(crate::events::me_events)))
        .service(
            resource("/me/mfa/totp")
                .route(web::post().to(crate::mfa::enrol_totp))
                .route(web::delete().to(crate::mfa::disable_totp)),
        )
        .service(resource("/me/mfa/totp/confirm").route(web::post().to(crate::mfa::confirm_totp)))
        .service(
            resource("/me/mfa/recovery-codes")
                .route(web::post().to(crate::mfa::regenerate_recovery_codes)),
        )
        .service(
            resource("/me")
                .route(web::get().to(me))
                .route(web::post().to(me_post))
                .route(web::delete().to(delete_account)),
        )
        .service(resource("/logout").route(web::post().to(logout)))
        .service(resource("/logout-all").route(web::post().to(logout_all)))
        .service(resource("/sessions").route(web::get().to(list_sessions)))
        .service(resource("/sessions/{id}").route(web::delete().to(revoke_session)))
        .service(resource("/change-password").route(web::post().to(change_password)))
        .service(resource("/me/email").route(web::post().to(change_email)))
        .service(resource("/me/email/confirm").route(web::post().to(confirm_email_change)))
        .service(resource("/forgot-password").route(web::post().to(forgot_password)))
        .service(resource("/reset-password").route(web::post().to(reset_password)))
        .service(resource("/health").route(web::get().to(health)))
        .service(resource("/ready").route(web::get().to(ready)))
        .service(resource("/mail/bounces").route(web::post().to(report_bounce)))
        .service(resource("/token").route(web::post().to(token)))
        .service(resource("/.well-known/jwks.json").route(web::get().to(jwks)))
        .service(
            resource("/.well-known/secureauth-configuration").route(web::get().to(token_metadata)),
        );
}

async fn method_not_allowed() -> Result {
    Err(ApiError::MethodNotAllowed)
}

/// 404 JSON for unknown routes.
pub async fn not_found() -> Result {
    Err(ApiError::NotFound)
}

fn no_store() -> actix_web::HttpResponseBuilder {
    let mut b = HttpResponse::Ok();
    b.insert_header((header::CACHE_CONTROL, "no-store"));
    b
}

/// Create an account; a verification code is mailed.
#[utoipa::path(post, path = "/signup", request_body = SignupRequest, tag = "account",
    responses(
        (status = 201, body = UserResponse, description = "Account created, unverified; a code was mailed. With `ENUMERATION_PROTECTION` on (the default) every address answers so: a new one, one with a pending signup (a random id, never the pending account's; inside the mail cooldown nothing changes) and a verified one (its owner is mailed a notice)"),
        (status = 409, body = ErrorBody, description = "`email_taken`: a verified account has this address (only with `ENUMERATION_PROTECTION=false`)"),
        (status = 422, body = ErrorBody, description = "`invalid_email` or `weak_password`"),
        (status = 429, body = ErrorBody, description = "`too_many_requests`: a rate limit (per IP or per address), or (only with `ENUMERATION_PROTECTION=false`) a code was mailed moments ago; see `Retry-After`"),
    ))]
pub async fn signup(
    state: web::Data<AppState>,
    client: Client,
    body: web::Json<SignupRequest>,
) -> Result {
    let (email, password) = body
        .into_inner()
        .try_into_domain(state.service.password_policy())?;
    let user = state
        .in_uniform_time(state.service.signup(email, password, &client.0))
        .await?;
    Ok(HttpResponse::Created()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(UserResponse::new(&user)))
}

/// Verify the address with the mailed code.
#[utoipa::path(post, path = "/verify-otp", request_body = VerifyOtpRequest, tag = "account",
    responses(
        (status = 200, body = UserResponse, description = "Verified"),
        (status = 400, body = ErrorBody, description = "`invalid_otp` (also for an unknown address) or `otp_expired`"),
        (status = 422, body = ErrorBody, description = "`invalid_email`"),
        (status = 429, body = ErrorBody, description = "`too_many_attempts`: the code is dead; `too_many_requests`: a rate limit, see `Retry-After`"),
    ))]
pub async fn verify_otp(
    state: web::Data<AppState>,
    client: Client,
    body: web::Json<VerifyOtpRequest>,
) -> Result {
    let (email, code) = body.into_inner().try_into_domain()?;
    let user = state.service.verify_otp(&email, &code, &client.0).await?;
    Ok(no_store().json(UserResponse::new(&user)))
}

/// Mail a new verification code.
#[utoipa::path(post, path = "/resend-otp", request_body = EmailRequest, tag = "account",
    responses(
        (status = 202, body = AcceptedResponse, description = "Same answer whatever the address; inside the per-address mail cooldown nothing is sent"),
        (status = 422, body = ErrorBody, description = "`invalid_email`"),
        (status = 429, body = ErrorBody, description = "`too_many_requests`: over a rate limit (any address), or (only with `ENUMERATION_PROTECTION=false`) inside the per-address cooldown; see `Retry-After`"),
    ))]
pub async fn resend_otp(
    state: web::Data<AppState>,
    client: Client,
    body: web::Json<EmailRequest>,
) -> Result {
    let email = body.into_inner().try_into_domain()?;
    state
        .in_uniform_time(state.service.resend_otp(&email, &client.0))
        .await?;
    Ok(HttpResponse::Accepted().json(ACCEPTED_RESEND))
}

/// Log in; opens a session.
#[utoipa::path(post, path = "/login", request_body = LoginRequest, tag = "session",
    responses(
        (status = 200, body = LoginAnswer, description = "With two-factor authentication on: `mfa_required` and an `mfa_token` for `POST /login/mfa`, no session. Otherwise: Bearer: token and `device_token` in the body. Cookie: token only in `Set-Cookie`, with the HttpOnly `device` cookie",
            headers(("Set-Cookie" = String, description = "Cookie transport only: the session cookie (`__Host-session`, or `session` with `COOKIE_SECURE=false`; HttpOnly, SameSite=Lax) and the device cookie (`__Host-device` or `device`; HttpOnly, SameSite=Strict)"))),
        (status = 401, body = ErrorBody, description = "`invalid_credentials`"),
        (status = 403, body = ErrorBody, description = "`email_not_verified`; `account_disabled`: the password is right but an administrator disabled the account"),
        (status = 422, body = ErrorBody, description = "`invalid_email`"),
        (status = 429, body = ErrorBody, description = "`too_many_requests`: a rate limit (per IP, per address and IP after failed attempts, per address; with a valid device credential only the device's own budget); see `Retry-After`. `POST /login/code` is a way in that no stranger can block"),
    ))]
pub async fn login(
    state: web::Data<AppState>,
    req: HttpRequest,
    client: Client,
    body: web::Json<LoginRequest>,
) -> Result {
    let (email, password, transport, device) = body.into_inner().try_into_domain()?;
    let device = device.or_else(|| device_cookie(&req, &state));
    match state
        .service
        .login_with_device(&email, &password, client.0, device.as_ref())
        .await
    {
        Ok(outcome) => Ok(logged_in(&state, outcome, transport)),
        Err(auth_core::LoginError::SecondFactorRequired(pending)) => Ok(mfa_required(pending)),
        Err(e) => Err(e.into()),
    }
}

/// The device credential of the browser's `device` cookie, if it has one.
fn device_cookie(req: &HttpRequest, state: &AppState) -> Option<DeviceCredential> {
    req.cookie(state.cookie.device_name())
        .and_then(|c| DeviceCredential::parse(c.value()))
}

/// The answer to a successful login: the session token and the device credential, in the body
/// (bearer) or in HttpOnly cookies (cookie transport).
/// The answer to a right password when the account has a second factor: no session yet.
pub(crate) fn mfa_required(pending: auth_core::PendingLogin) -> HttpResponse {
    let mut res = no_store().json(MfaRequiredResponse {
        mfa_required: true,
        mfa_token: pending.token.expose(),
        expires_at: pending.expires_at,
    });
    res.extensions_mut()
        .insert(crate::metrics::SecondFactorPending);
    res
}

pub(crate) fn logged_in(
    state: &AppState,
    outcome: LoginOutcome,
    transport: Transport,
) -> HttpResponse {
    let expires_at = outcome.session.expires_at;
    let mut res = no_store();
    let (token, device_token) = match transport {
        Transport::Bearer => (
            Some(outcome.token.expose()),
            Some(outcome.device.expose().to_owned()),
        ),
        Transport::Cookie => {
            let ttl = state.service.config().session_ttl.as_secs();
            let max_age = i64::try_from(ttl).unwrap_or(i64::MAX);
            res.cookie(state.cookie.session_cookie(outcome.token.expose(), max_age));
            let device_ttl = state.service.config().device_ttl.as_secs();
            let device_max_age = i64::try_from(device_ttl).unwrap_or(i64::MAX);
            res.cookie(
                state
                    .cookie
                    .device_cookie(outcome.device.expose().to_owned(), device_max_age),
            );
            (None, None)
        }
    };
    res.json(LoginResponse {
        user: (&outcome.user).into(),
        session: LoginSession { token, expires_at },
        device_token,
    })
}

/// Mail a login code: a way in without the password, that nobody can block by guessing it.
#[utoipa::path(post, path = "/login/code", request_body = EmailRequest, tag = "session",
    responses(
        (status = 202, body = AcceptedResponse, description = "Same answer whatever the address (a code goes to a verified account only, at most once per mail cooldown)"),
        (status = 422, body = ErrorBody, description = "`invalid_email`"),
        (status = 429, body = ErrorBody, description = "`too_many_requests`: a rate limit (per IP, per address, mails per address); see `Retry-After`"),
    ))]
pub async fn request_login_code(
    state: web::Data<AppState>,
    client: Client,
    body: web::Json<EmailRequest>,
) -> Result {
    let email = body.into_inner().try_into_domain()?;
    state
        .in_uniform_time(state.service.request_login_code(&email, &client.0))
        .await?;
    Ok(HttpResponse::Accepted().json(ACCEPTED_LOGIN_CODE))
}

/// Log in with a mailed login code; opens a session like `POST /login`.
#[utoipa::path(post, path = "/login/code/verify", request_body = LoginCodeVerifyRequest, tag = "session",
    responses(
        (status = 200, body = LoginAnswer, description = "As for `POST /login` (`mfa_required` with two-factor authentication on)",
            headers(("Set-Cookie" = String, description = "Cookie transport only: the session cookie (`__Host-session`, or `session` with `COOKIE_SECURE=false`; HttpOnly, SameSite=Lax) and the device cookie (`__Host-device` or `device`; HttpOnly, SameSite=Strict)"))),
        (status = 400, body = ErrorBody, description = "`invalid_otp` (also for an unknown address) or `otp_expired`"),
        (status = 403, body = ErrorBody, description = "`account_disabled`: the code is right but an administrator disabled the account"),
        (status = 422, body = ErrorBody, description = "`invalid_email`"),
        (status = 429, body = ErrorBody, description = "`too_many_attempts`: this client's attempts on the codes are spent (those of the client that asked for the code are counted apart from everybody else's; ask for a new code); `too_many_requests`: a rate limit, see `Retry-After`"),
    ))]
pub async fn verify_login_code(
    state: web::Data<AppState>,
    req: HttpRequest,
    client: Client,
    body: web::Json<LoginCodeVerifyRequest>,
) -> Result {
    let (email, code, transport, device) = body.into_inner().try_into_domain()?;
    let device = device.or_else(|| device_cookie(&req, &state));
    match state
        .service
        .login_with_code(&email, &code, client.0, device.as_ref())
        .await
    {
        Ok(outcome) => Ok(logged_in(&state, outcome, transport)),
        Err(auth_core::OtpCheckError::SecondFactorRequired(pending)) => Ok(mfa_required(pending)),
        Err(e) => Err(e.into()),
    }
}

/// The current user and session.
#[utoipa::path(get, path = "/me", tag = "session", security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = MeResponse, description = "The account and the session of this request")))]
pub async fn me(auth: AuthenticatedSession) -> Result {
    let s = &auth.session;
    Ok(no_store().json(MeResponse {
        user: (&s.user).into(),
        session: MeSession {
            created_at: s.created_at,
            expires_at: s.expires_at,
        },
    }))
}

/// The current user and session, as `GET /me`.
///
/// A POST authenticated by the session cookie must come from an allowed origin.
#[utoipa::path(post, path = "/me", operation_id = "me_post", tag = "session",
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = MeResponse, description = "As for `GET /me`")))]
pub async fn me_post(auth: AuthenticatedSession) -> Result {
    me(auth).await
}

/// Delete the account for good, after asking for its password again: every session is
/// revoked, the account removed (its address is free for a new signup), a notice mailed.
#[utoipa::path(delete, path = "/me", request_body = DeleteAccountRequest, tag = "account",
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 204, description = "Deleted; every session revoked; cookie cleared",
            headers(("Set-Cookie" = String, description = "Clears the session cookie (an empty value, expired)"))),
        (status = 403, body = ErrorBody, description = "`invalid_credentials`: wrong password; nothing changed"),
        (status = 429, body = ErrorBody, description = "`too_many_requests`: the re-authentication budget (per account, per IP) or this client's share of the hasher is spent; see `Retry-After`"),
    ))]
pub async fn delete_account(
    state: web::Data<AppState>,
    auth: AuthenticatedSession,
    client: Client,
    // Wrapped so that an unauthenticated request is told 401, not what is wrong with its body.
    body: std::result::Result<web::Json<DeleteAccountRequest>, actix_web::Error>,
) -> std::result::Result<HttpResponse, actix_web::Error> {
    let (password, factor) = body?.into_inner().try_into_domain()?;
    state
        .service
        .delete_account_with_factor(&auth.session, &password, factor.as_ref(), &client.0)
        .await
        .map_err(ApiError::from)?;
    Ok(HttpResponse::NoContent()
        .cookie(state.cookie.removal_cookie())
        .finish())
}

/// Revoke the current session.
#[utoipa::path(post, path = "/logout", tag = "session", security(("bearer" = []), ("cookie" = [])),
    responses((status = 204, description = "Revoked; cookie cleared",
        headers(("Set-Cookie" = String, description = "Clears the session cookie (an empty value, expired)")))))]
pub async fn logout(
    state: web::Data<AppState>,
    auth: AuthenticatedSession,
    client: Client,
) -> Result {
    state
        .service
        .logout_with_client(&auth.token, Some(&client.0))
        .await?;
    Ok(HttpResponse::NoContent()
        .cookie(state.cookie.removal_cookie())
        .finish())
}

/// Revoke every session of the user.
#[utoipa::path(post, path = "/logout-all", tag = "session", security(("bearer" = []), ("cookie" = [])),
    responses((status = 204, description = "All sessions revoked; cookie cleared",
        headers(("Set-Cookie" = String, description = "Clears the session cookie (an empty value, expired)")))))]
pub async fn logout_all(
    state: web::Data<AppState>,
    auth: AuthenticatedSession,
    client: Client,
) -> Result {
    state
        .service
        .logout_all_with_client(&auth.session, &client.0)
        .await?;
    Ok(HttpResponse::NoContent()
        .cookie(state.cookie.removal_cookie())
        .finish())
}

/// The user's live sessions, newest first, a page at a time (`limit`, default 50, at most
/// 100; `cursor` from the previous page's `next_cursor`).
#[utoipa::path(get, path = "/sessions", tag = "session", security(("bearer" = []), ("cookie" = [])),
    params(SessionsQuery),
    responses(
        (status = 200, body = SessionsResponse, description = "A page of the live sessions"),
        (status = 400, body = ErrorBody, description = "`invalid_request`: a malformed `limit` or `cursor`"),
    ))]
pub async fn list_sessions(
    state: web::Data<AppState>,
    auth: AuthenticatedSession,
    query: web::Query<SessionsQuery>,
) -> Result {
    let (after, limit) = query.into_inner().try_into_domain()?;
    let page = state
        .service
        .list_sessions_page(auth.session.user.id, after, limit)
        .await?;
    Ok(no_store().json(SessionsResponse {
        sessions: page
            .sessions
            .iter()
            .map(|s| SessionDto::new(s, auth.session.id, state.session_ip_prefix))
            .collect(),
        next_cursor: page.next.map(|c| c.encode()),
    }))
}

/// Revoke one of the user's sessions by its public id.
#[utoipa::path(delete, path = "/sessions/{id}", tag = "session", security(("bearer" = []), ("cookie" = [])),
    params(("id" = uuid::Uuid, Path, description = "Session id from `GET /sessions`")),
    responses(
        (status = 204, description = "Revoked",
            headers(("Set-Cookie" = String, description = "Clears the session cookie when the session revoked is the one of this cookie-authenticated request"))),
        (status = 404, body = ErrorBody, description = "`not_found`: not one of the caller's sessions"),
    ))]
pub async fn revoke_session(
    state: web::Data<AppState>,
    auth: AuthenticatedSession,
    client: Client,
    path: web::Path<String>,
) -> Result {
    let id = SessionId::parse(&path).ok_or(ApiError::NotFound)?;
    state
        .service
        .revoke_session_with_client(auth.session.user.id, id, &client.0)
        .await?;
    let mut res = HttpResponse::NoContent();
    if id == auth.session.id && auth.transport == Transport::Cookie {
        res.cookie(state.cookie.removal_cookie());
    }
    Ok(res.finish())
}

/// Change the password; every other session is revoked.
#[utoipa::path(post, path = "/change-password", request_body = ChangePasswordRequest, tag = "account",
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 204, description = "Changed; other sessions revoked; a notice listing the account's passkeys was mailed"),
        (status = 403, body = ErrorBody, description = "`invalid_credentials`: wrong current password; nothing changed"),
        (status = 422, body = ErrorBody, description = "`weak_password`"),
        (status = 429, body = ErrorBody, description = "`too_many_requests`: the re-authentication budget (per account, per IP) or this client's share of the hasher is spent; see `Retry-After`. Past the hard limit the session is ended and the answer is 401"),
    ))]
pub async fn change_password(
    state: web::Data<AppState>,
    auth: AuthenticatedSession,
    client: Client,
    // Wrapped so that an unauthenticated request is told 401, not what is wrong with its body.
    body: std::result::Result<web::Json<ChangePasswordRequest>, actix_web::Error>,
) -> std::result::Result<HttpResponse, actix_web::Error> {
    let (current, new_password, factor) = body?
        .into_inner()
        .try_into_domain(state.service.password_policy(), &auth.session.user.email)?;
    state
        .service
        .change_password_with_factor(
            &auth.session,
            &current,
            new_password,
            factor.as_ref(),
            &client.0,
        )
        .await
        .map_err(ApiError::from)?;
    Ok(HttpResponse::NoContent().finish())
}

/// Ask to move the account to another address, with the password: a 6-digit code is mailed
/// to the new address, a notice to the current one. The same answer whether or not the new
/// address has an account (its owner is then mailed a notice instead of a code).
#[utoipa::path(post, path = "/me/email", request_body = ChangeEmailRequest, tag = "account",
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 202, body = AcceptedResponse, description = "A code is on its way to the new address (the same answer whether or not it is taken)"),
        (status = 403, body = ErrorBody, description = "`invalid_credentials`: wrong password; `second_factor_required` / `invalid_second_factor` with two-factor authentication on; nothing changed"),
        (status = 422, body = ErrorBody, description = "`invalid_email`: `new_email` is not a deliverable address, or is the account's address already"),
        (status = 429, body = ErrorBody, description = "`too_many_requests`: the re-authentication budget (per account, per IP), the mail cooldown of this account or this client's share of the hasher is spent; see `Retry-After`. Past the hard limit of wrong passwords the session is ended and the answer is 401"),
    ))]
pub async fn change_email(
    state: web::Data<AppState>,
    auth: AuthenticatedSession,
    client: Client,
    // Wrapped so that an unauthenticated request is told 401, not what is wrong with its body.
    body: std::result::Result<web::Json<ChangeEmailRequest>, actix_web::Error>,
) -> std::result::Result<HttpResponse, actix_web::Error> {
    let (new_email, password, factor) = body?.into_inner().try_into_domain()?;
    state
        .service
        .request_email_change(
            &auth.session,
            &password,
            &new_email,
            factor.as_ref(),
            &client.0,
        )
        .await
        .map_err(ApiError::from)?;
    Ok(no_store().status(actix_web::http::StatusCode::ACCEPTED).json(AcceptedResponse {
        status: "accepted",
        message: "If the address can be used, a code is on its way to it. Enter it to finish the change.",
    }))
}

/// Finish a change of address with the code mailed to the new address: the account moves,
/// every other session is revoked, a notice goes to the former address.
#[utoipa::path(post, path = "/me/email/confirm", request_body = ConfirmEmailChangeRequest, tag = "account",
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, body = UserResponse, description = "Moved; other sessions revoked; this session carries the new address"),
        (status = 400, body = ErrorBody, description = "`invalid_otp` (wrong, used or outdated code, a code for another address, or a verified account took the address meanwhile: one answer) or `otp_expired`; nothing changed. A wrong code counts toward the session's hard limit like a wrong password: past it the session is ended and the answer is 401"),
        (status = 422, body = ErrorBody, description = "`invalid_email`: `new_email` is not a deliverable address"),
        (status = 429, body = ErrorBody, description = "`too_many_attempts`: too many wrong codes; ask for a new one"),
    ))]
pub async fn confirm_email_change(
    state: web::Data<AppState>,
    auth: AuthenticatedSession,
    client: Client,
    // Wrapped so that an unauthenticated request is told 401, not what is wrong with its body.
    body: std::result::Result<web::Json<ConfirmEmailChangeRequest>, actix_web::Error>,
) -> std::result::Result<HttpResponse, actix_web::Error> {
    let (new_email, code) = body?.into_inner().try_into_domain()?;
    let user = state
        .service
        .confirm_email_change(&auth.session, &new_email, &code, &client.0)
        .await
        .map_err(ApiError::from)?;
    Ok(no_store().json(UserResponse {
        user: (&user).into(),
    }))
}

/// Start a password reset; a code is mailed to a verified account.
#[utoipa::path(post, path = "/forgot-password", request_body = EmailRequest, tag = "account",
    responses(
        (status = 202, body = AcceptedResponse, description = "Same answer whatever the address"),
        (status = 422, body = ErrorBody, description = "`invalid_email`"),
        (status = 429, body = ErrorBody, description = "`too_many_requests`: a rate limit (per IP or per address); see `Retry-After`"),
    ))]
pub async fn forgot_password(
    state: web::Data<AppState>,
    client: Client,
    body: web::Json<EmailRequest>,
) -> Result {
    let email = body.into_inner().try_into_domain()?;
    state
        .in_uniform_time(state.service.forgot_password(&email, &client.0))
        .await?;
    Ok(HttpResponse::Accepted().json(ACCEPTED_FORGOT))
}

/// Set a new password with the mailed reset code; every session is revoked.
#[utoipa::path(post, path = "/reset-password", request_body = ResetPasswordRequest, tag = "account",
    responses(
        (status = 200, body = UserResponse, description = "Password set; every session revoked; a notice was mailed"),
        (status = 400, body = ErrorBody, description = "`invalid_otp` or `otp_expired`"),
        (status = 422, body = ErrorBody, description = "`invalid_email` or `weak_password`"),
        (status = 429, body = ErrorBody, description = "`too_many_attempts`: this client's attempts on the codes are spent (the client that asked for the code has its own, apart from everybody else's); `too_many_requests`: a rate limit, see `Retry-After`"),
    ))]
pub async fn reset_password(
    state: web::Data<AppState>,
    client: Client,
    body: web::Json<ResetPasswordRequest>,
) -> Result {
    let (email, code, new_password) = body
        .into_inner()
        .try_into_domain(state.service.password_policy())?;
    let user = state
        .service
        .reset_password(&email, &code, new_password, &client.0)
        .await?;
    Ok(no_store().json(UserResponse::new(&user)))
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/health", tag = "operations", responses((status = 200, body = HealthResponse, description = "The process answers")))]
pub async fn health() -> HttpResponse {
    HttpResponse::Ok().json(HealthResponse { status: "ok" })
}

/// Readiness: the user store and the session store answer (PostgreSQL and Redis, or SQLite
/// and process memory in the embedded profile); the hasher's load is reported too, and, to a
/// request with `Authorization: Bearer <OPS_TOKEN>`, the mail outbox's backlog.
#[utoipa::path(get, path = "/ready", tag = "operations",
    responses(
        (status = 200, body = ReadyResponse, description = "Ready; the hasher's load is reported, and to an operator (`OPS_TOKEN`) the mail outbox"),
        (status = 503, body = ReadyResponse, description = "Names what is down; see `Retry-After`"),
    ))]
pub async fn ready(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let r = state.service.readiness().await;
    let status = |ok: bool| if ok { "ok" } else { "down" };
    let mut checks = BTreeMap::from([
        ("user_store", status(r.users)),
        ("session_store", status(r.sessions)),
    ]);
    // Load, not health: a saturated hasher still serves sessions, so it does not make the
    // instance unready; it tells operators (and autoscalers) why logins get 503.
    let load = if r.hasher_has_capacity {
        "ok"
    } else {
        "saturated"
    };
    checks.insert("password_hasher", load);
    // Only for operators: the backlog moves when a request queues mail for an account.
    let shown = state
        .ops_token
        .as_ref()
        .is_some_and(|token| crate::state::bearer_matches(&req, token));
    let mail_outbox = match &state.outbox {
        Some(outbox) if shown => outbox.stats().await.ok().map(|s| OutboxReport {
            pending: s.pending,
            oldest_pending_seconds: s.oldest_pending.map_or(0, |at| {
                (chrono::Utc::now() - at)
                    .num_seconds()
                    .max(0)
                    .unsigned_abs()
            }),
            dead: s.dead,
            suppressed: s.suppressed,
        }),
        _ => None,
    };
    if r.users && r.sessions {
        HttpResponse::Ok().json(ReadyResponse {
            status: "ok",
            checks,
            mail_outbox,
        })
    } else {
        HttpResponse::ServiceUnavailable()
            .insert_header((header::RETRY_AFTER, 5u64))
            .json(ReadyResponse {
                status: "unavailable",
                checks,
                mail_outbox,
            })
    }
}

/// Feed a bounce or complaint from the mail provider (say, its webhook) into the suppression
/// list: the address gets no mail for `MAIL_SUPPRESS_FOR`. Needs `Authorization: Bearer
/// <BOUNCE_WEBHOOK_TOKEN>`; without that setting the endpoint does not exist (404).
#[utoipa::path(post, path = "/mail/bounces", request_body = BounceRequest, tag = "operations",
    security(("bounce_token" = [])),
    responses(
        (status = 200, body = BounceResponse, description = "The address is suppressed"),
        (status = 401, body = ErrorBody, description = "`unauthenticated`: missing or wrong token",
            headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 404, body = ErrorBody, description = "`not_found`: `BOUNCE_WEBHOOK_TOKEN` is not set"),
        (status = 422, body = ErrorBody, description = "`invalid_email`"),
    ))]
pub async fn report_bounce(
    state: web::Data<AppState>,
    req: HttpRequest,
    mut payload: web::Payload,
) -> Result {
    let (Some(expected), Some(outbox)) = (&state.bounce_token, &state.outbox) else {
        return Err(ApiError::NotFound);
    };
    // Read by hand (bounded), so an oversized body gets the API's JSON 413.
    let mut body = web::BytesMut::new();
    while let Some(chunk) = futures::StreamExt::next(&mut payload).await {
        let chunk =
            chunk.map_err(|_| ApiError::InvalidRequest("the body could not be read".into()))?;
        if body.len() + chunk.len() > crate::startup::MAX_BODY_BYTES {
            return Err(ApiError::PayloadTooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    // The token first: a caller without it learns nothing about the body's format.
    if !crate::state::bearer_matches(&req, expected) {
        return Err(ApiError::Unauthenticated);
    }
    let json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<mime::Mime>().ok())
        .is_some_and(|m| m.essence_str() == "application/json");
    if !json {
        return Err(ApiError::UnsupportedMediaType);
    }
    let body: BounceRequest = serde_json::from_slice(&body).map_err(|e| {
        ApiError::InvalidRequest(format!(
            "the body is not a bounce report (line {}, column {})",
            e.line(),
            e.column()
        ))
    })?;
    let address =
        auth_core::EmailAddress::parse(&body.address).map_err(|e| ApiError::Validation {
            code: ErrorCode::InvalidEmail,
            field: "address",
            message: e.to_string(),
        })?;
    let reason = match body.kind {
        BounceKind::Bounce => auth_core::SuppressionReason::Bounce,
        BounceKind::Complaint => auth_core::SuppressionReason::Complaint,
    };
    let until = chrono::Utc::now()
        + chrono::TimeDelta::from_std(outbox.suppress_for()).unwrap_or(chrono::TimeDelta::MAX);
    outbox
        .store()
        .suppress(&address, until, reason)
        .await
        .map_err(|e| ApiError::from_failure(e.into()))?;
    tracing::info!(
        reason = reason.as_str(),
        "address suppressed by a provider report"
    );
    Ok(no_store().json(BounceResponse {
        status: "suppressed",
        suppressed_until: until,
    }))
}

/// The token issuer, or 404 when service tokens are off.
fn issuer(state: &AppState) -> Result<&crate::tokens::TokenIssuer> {
    state.tokens.as_deref().ok_or(ApiError::NotFound)
}

/// A short-lived access token (JWT) for this session, for services that verify it with the
/// published keys instead of calling back. The session is checked as for `GET /me`, so a
/// revoked session gets none; a token already minted stays valid until its `exp` (at most
/// `JWT_TTL`, never past the session's end).
#[utoipa::path(post, path = "/token", tag = "tokens", security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, body = TokenResponse, description = "A signed access token"),
        (status = 404, body = ErrorBody, description = "`not_found`: service tokens are off (production without `JWT_SIGNING_KEYS`)"),
    ))]
pub async fn token(state: web::Data<AppState>, auth: AuthenticatedSession) -> Result {
    let issuer = issuer(&state)?;
    let grant = state
        .service
        .grant_access(&auth.session, issuer.ttl)
        .ok_or(ApiError::Unauthenticated)?;
    let access_token = issuer
        .sign(&grant)
        .map_err(|e| ApiError::Internal(Box::new(e)))?;
    Ok(no_store().json(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: grant.lifetime_secs(),
        expires_at: grant.expires_at,
    }))
}

fn cacheable() -> actix_web::HttpResponseBuilder {
    let mut b = HttpResponse::Ok();
    b.insert_header((header::CACHE_CONTROL, crate::tokens::JWKS_CACHE_CONTROL));
    b
}

/// The public keys that verify access tokens (a JWK set): the signing key first, then the
/// keys being rotated in or out. Cache it; fetch it again when a token names an unknown `kid`.
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "tokens",
    responses(
        (status = 200, body = JwksResponse, description = "The keys",
            headers(("Cache-Control" = String, description = "`public, max-age=300`"))),
        (status = 404, body = ErrorBody, description = "`not_found`: service tokens are off"),
    ))]
pub async fn jwks(state: web::Data<AppState>) -> Result {
    let issuer = issuer(&state)?;
    Ok(cacheable().json(JwksResponse {
        keys: issuer.jwks().to_vec(),
    }))
}

/// Metadata for verifiers: the issuer, the JWKS address, the audience. Shaped like OpenID
/// discovery, but this service is not an OpenID provider (no ID tokens, no authorization
/// endpoint).
#[utoipa::path(get, path = "/.well-known/secureauth-configuration", tag = "tokens",
    responses(
        (status = 200, body = TokenMetadata, description = "The metadata",
            headers(("Cache-Control" = String, description = "`public, max-age=300`"))),
        (status = 404, body = ErrorBody, description = "`not_found`: service tokens are off"),
    ))]
pub async fn token_metadata(state: web::Data<AppState>) -> Result {
    let issuer = issuer(&state)?;
    Ok(cacheable().json(TokenMetadata {
        issuer: issuer.issuer.clone(),
        jwks_uri: issuer.jwks_uri(),
        token_endpoint: format!("{}/token", issuer.issuer),
        audience: issuer.audience.clone(),
        token_signing_alg_values_supported: vec!["EdDSA"],
        access_token_ttl_seconds: issuer.ttl.as_secs(),
    }))
}

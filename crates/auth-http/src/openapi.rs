//! The OpenAPI 3.1 document, generated from the handlers and DTOs.

use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::dto::*;
use crate::error::{ErrorBody, ErrorDetail};
use crate::routes;

/// The API document served at `/openapi.json` and rendered at `/docs`.
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "SecureAuth",
        description = "Email + password authentication with server-side, revocable sessions."
    ),
    paths(
        routes::signup,
        routes::verify_otp,
        routes::resend_otp,
        routes::login,
        routes::request_login_code,
        routes::verify_login_code,
        routes::me,
        routes::delete_account,
        routes::logout,
        routes::logout_all,
        routes::list_sessions,
        routes::revoke_session,
        routes::change_password,
        routes::forgot_password,
        routes::reset_password,
        routes::health,
        routes::ready,
        routes::report_bounce,
    ),
    components(schemas(
        SignupRequest, VerifyOtpRequest, EmailRequest, LoginRequest, LoginCodeVerifyRequest, Transport,
        ChangePasswordRequest, DeleteAccountRequest, ResetPasswordRequest, UserDto, UserResponse, LoginSession,
        LoginResponse, MeSession, MeResponse, SessionDto, SessionsResponse, AcceptedResponse,
        HealthResponse, ReadyResponse, OutboxReport, BounceRequest, BounceKind, BounceResponse,
        ErrorBody, ErrorDetail,
    )),
    modifiers(&SecuritySchemes),
    tags(
        (name = "account", description = "Signup, verification, passwords"),
        (name = "session", description = "Login, sessions, logout"),
        (name = "operations", description = "Health and readiness"),
    )
)]
pub struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "bounce_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("The value of `BOUNCE_WEBHOOK_TOKEN`"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new("__Host-session"))),
        );
    }
}

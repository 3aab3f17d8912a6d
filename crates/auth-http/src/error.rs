//! [`ApiError`]: every failure the API can answer with, and its single status table.

use std::time::Duration;

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use auth_core::{
    AuthenticateError, ChangePasswordError, DeleteAccountError, EmailError, Failure,
    ForgotPasswordError, LoginError, OtpCheckError, PasswordError, ResendOtpError,
    ResetPasswordError, SessionError, SignupError,
};
use serde::Serialize;
use utoipa::ToSchema;

/// The JSON body of every error: `{"error": {"code": "...", "message": "..."}}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// Machine-readable code, human-readable message, and per-field details for 422.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// What went wrong, for a program to act on.
    pub code: ErrorCode,
    /// A sentence for a person.
    pub message: String,
    /// For validation errors: field name → what is wrong with it.
    // Omitted when empty, never null: the schema must not say nullable.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub fields: Option<std::collections::BTreeMap<&'static str, String>>,
}

/// Every `error.code` the API sends: a closed set, so that a client can match on it. Each
/// operation's answers in the OpenAPI document name the codes it can send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    InvalidRequest,
    UnsupportedMediaType,
    PayloadTooLarge,
    InvalidEmail,
    WeakPassword,
    EmailTaken,
    InvalidOtp,
    OtpExpired,
    TooManyAttempts,
    TooManyRequests,
    InvalidCredentials,
    EmailNotVerified,
    Unauthenticated,
    CrossSiteRequest,
    NotFound,
    MethodNotAllowed,
    RequestTimeout,
    ServiceUnavailable,
    Internal,
    SecondFactorRequired,
    InvalidSecondFactor,
    InvalidMfaToken,
    MfaAlreadyEnabled,
    MfaNotEnabled,
    AccountDisabled,
    Forbidden,
    ReauthenticationRequired,
    OwnAccount,
    AlreadyVerified,
    PasskeysUnavailable,
    InvalidPasskeyCeremony,
    PasskeyRejected,
    PasskeyAlreadyRegistered,
    TooManyPasskeys,
    InvalidPasskey,
    NoPasskey,
    InvalidWebhook,
}

/// Every error the API returns.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: malformed JSON, missing fields, wrong types.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// 415: not `application/json`.
    #[error("unsupported media type")]
    UnsupportedMediaType,
    /// 413: body too large.
    #[error("payload too large")]
    PayloadTooLarge,
    /// 422: a field failed validation.
    #[error("validation failed on {field}: {message}")]
    Validation {
        /// [`ErrorCode::InvalidEmail`] or [`ErrorCode::WeakPassword`].
        code: ErrorCode,
        /// The JSON field.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// 409.
    #[error("email taken")]
    EmailTaken,
    /// 400.
    #[error("invalid otp")]
    InvalidOtp,
    /// 400.
    #[error("otp expired")]
    OtpExpired,
    /// 429: code exhausted.
    #[error("too many attempts")]
    TooManyAttempts,
    /// 429 with `Retry-After`.
    #[error("too many requests")]
    TooManyRequests {
        /// Time until the client may try again.
        retry_after: Duration,
    },
    /// 401 at login.
    #[error("invalid credentials")]
    InvalidCredentials,
    /// 403 at change-password: the current password is wrong.
    #[error("wrong current password")]
    WrongCurrentPassword,
    /// 403.
    #[error("email not verified")]
    EmailNotVerified,
    /// 401 with `WWW-Authenticate: Bearer`.
    #[error("unauthenticated")]
    Unauthenticated,
    /// 403: a cookie-authenticated request from a foreign origin.
    #[error("cross-site request refused")]
    CrossSiteRequest,
    /// 404.
    #[error("not found")]
    NotFound,
    /// 405.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// 403: the account has a second factor and the request carries none.
    #[error("second factor required")]
    SecondFactorRequired,
    /// 403 (401 at the second login step): a wrong or used second factor.
    #[error("invalid second factor")]
    InvalidSecondFactor {
        /// At `POST /login/mfa` (401) rather than inside a session (403).
        at_login: bool,
    },
    /// 401: the second-step token is unknown, used, expired or from another client.
    #[error("invalid mfa token")]
    InvalidMfaToken,
    /// 409.
    #[error("mfa already enabled")]
    MfaAlreadyEnabled,
    /// 409.
    #[error("mfa not enabled")]
    MfaNotEnabled,
    /// 403: the credentials were right but the account is disabled.
    #[error("account disabled")]
    AccountDisabled,
    /// 403: the session's account is not an administrator.
    #[error("forbidden")]
    Forbidden,
    /// 403: an administrative request outside the session's privilege window.
    #[error("reauthentication required")]
    ReauthenticationRequired,
    /// 409: an administrator's change to their own account.
    #[error("own account")]
    OwnAccount,
    /// 409: resending a verification code to a verified address.
    #[error("already verified")]
    AlreadyVerified,
    /// A passkey operation's own refusal.
    #[error("passkey: {0:?}")]
    Passkey(ErrorCode),
    /// 503: a dependency is down or overloaded.
    #[error("service unavailable")]
    Unavailable(#[source] Failure),
    /// 500: never expected; the cause is logged, not sent.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl ApiError {
    /// The `error.code` this error is sent with.
    pub(crate) fn code(&self) -> ErrorCode {
        match self {
            Self::InvalidRequest(_) => ErrorCode::InvalidRequest,
            Self::UnsupportedMediaType => ErrorCode::UnsupportedMediaType,
            Self::PayloadTooLarge => ErrorCode::PayloadTooLarge,
            Self::Validation { code, .. } => *code,
            Self::EmailTaken => ErrorCode::EmailTaken,
            Self::InvalidOtp => ErrorCode::InvalidOtp,
            Self::OtpExpired => ErrorCode::OtpExpired,
            Self::TooManyAttempts => ErrorCode::TooManyAttempts,
            Self::TooManyRequests { .. } => ErrorCode::TooManyRequests,
            Self::InvalidCredentials | Self::WrongCurrentPassword => ErrorCode::InvalidCredentials,
            Self::EmailNotVerified => ErrorCode::EmailNotVerified,
            Self::Unauthenticated => ErrorCode::Unauthenticated,
            Self::CrossSiteRequest => ErrorCode::CrossSiteRequest,
            Self::NotFound => ErrorCode::NotFound,
            Self::MethodNotAllowed => ErrorCode::MethodNotAllowed,
            Self::Unavailable(_) => ErrorCode::ServiceUnavailable,
            Self::Internal(_) => ErrorCode::Internal,
            Self::SecondFactorRequired => ErrorCode::SecondFactorRequired,
            Self::InvalidSecondFactor { .. } => ErrorCode::InvalidSecondFactor,
            Self::InvalidMfaToken => ErrorCode::InvalidMfaToken,
            Self::Passkey(code) => *code,
            Self::MfaAlreadyEnabled => ErrorCode::MfaAlreadyEnabled,
            Self::MfaNotEnabled => ErrorCode::MfaNotEnabled,
            Self::AccountDisabled => ErrorCode::AccountDisabled,
            Self::Forbidden => ErrorCode::Forbidden,
            Self::ReauthenticationRequired => ErrorCode::ReauthenticationRequired,
            Self::OwnAccount => ErrorCode::OwnAccount,
            Self::AlreadyVerified => ErrorCode::AlreadyVerified,
        }
    }

    fn message(&self) -> String {
        match self {
            Self::InvalidRequest(detail) => format!("The request is malformed: {detail}"),
            Self::UnsupportedMediaType => "The request body must be application/json.".into(),
            Self::PayloadTooLarge => "The request body is too large.".into(),
            Self::Validation { message, .. } => message.clone(),
            Self::EmailTaken => "An account with this email address already exists.".into(),
            Self::InvalidOtp => "The code is invalid.".into(),
            Self::OtpExpired => "The code has expired. Request a new one.".into(),
            Self::TooManyAttempts => {
                "Too many wrong codes. Request a new code and try again.".into()
            }
            Self::TooManyRequests { retry_after } => format!(
                "Too many requests. Try again in {} seconds.",
                retry_after_secs(*retry_after)
            ),
            Self::InvalidCredentials => {
                "Invalid email or password, or the address is not verified yet.".into()
            }
            Self::WrongCurrentPassword => "The current password is wrong.".into(),
            Self::EmailNotVerified => {
                "Verify your email address with the code we sent before logging in.".into()
            }
            Self::Unauthenticated => "Authentication required.".into(),
            Self::CrossSiteRequest => {
                "Cookie-authenticated requests must come from an allowed origin.".into()
            }
            Self::NotFound => "Not found.".into(),
            Self::MethodNotAllowed => "Method not allowed.".into(),
            Self::Unavailable(f) => format!(
                "The {} is temporarily unavailable. Try again shortly.",
                f.dependency()
            ),
            Self::Internal(_) => "Something went wrong on our side.".into(),
            Self::SecondFactorRequired => {
                "Enter a code from your authenticator app or a recovery code.".into()
            }
            Self::InvalidSecondFactor { .. } => "The code is wrong or was used before.".into(),
            Self::InvalidMfaToken => "This login has expired or is not valid. Log in again.".into(),
            Self::Passkey(code) => match code {
                ErrorCode::PasskeysUnavailable => "Passkeys are not available here.",
                ErrorCode::InvalidPasskeyCeremony => {
                    "This passkey request has expired or is not valid. Start again."
                }
                ErrorCode::PasskeyRejected => "The passkey's answer was not accepted.",
                ErrorCode::PasskeyAlreadyRegistered => "This passkey is registered already.",
                ErrorCode::TooManyPasskeys => {
                    "This account has the most passkeys it may have. Remove one first."
                }
                ErrorCode::NoPasskey => "This account has no passkey.",
                ErrorCode::NotFound => "No such passkey.",
                _ => "The passkey was not accepted.",
            }
            .into(),
            Self::MfaAlreadyEnabled => "Two-factor authentication is already on.".into(),
            Self::MfaNotEnabled => {
                "Two-factor authentication is off, or no enrolment is waiting.".into()
            }
            Self::AccountDisabled => "This account is disabled. Contact the administrators.".into(),
            Self::Forbidden => "This needs an administrator.".into(),
            Self::ReauthenticationRequired => {
                "Give your password again (POST /admin/reauth) to continue.".into()
            }
            Self::OwnAccount => {
                "Administrators cannot disable, delete or change the role of their own account."
                    .into()
            }
            Self::AlreadyVerified => "The address is already verified.".into(),
        }
    }

    /// Maps a service failure: outages to 503, anything else to 500.
    pub fn from_failure(f: Failure) -> Self {
        if f.is_unavailable() {
            Self::Unavailable(f)
        } else {
            Self::Internal(Box::new(f))
        }
    }
}

fn retry_after_secs(d: Duration) -> u64 {
    // Round up so a client that waits exactly this long is never early.
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// Logs a server-side error with its whole cause chain (never sent to the client).
fn log_chain(err: &(dyn std::error::Error + 'static), level_error: bool) {
    let mut chain = String::new();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if !chain.is_empty() {
            chain.push_str(": ");
        }
        chain.push_str(&e.to_string());
        cur = e.source();
    }
    if level_error {
        tracing::error!(error.chain = %chain, "request failed");
    } else {
        tracing::warn!(error.chain = %chain, "dependency unavailable");
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::InvalidRequest(_) | Self::InvalidOtp | Self::OtpExpired => {
                StatusCode::BAD_REQUEST
            }
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Validation { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::EmailTaken => StatusCode::CONFLICT,
            Self::TooManyAttempts | Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::InvalidCredentials | Self::Unauthenticated | Self::InvalidMfaToken => {
                StatusCode::UNAUTHORIZED
            }
            Self::InvalidSecondFactor { at_login: true } => StatusCode::UNAUTHORIZED,
            Self::InvalidSecondFactor { at_login: false } | Self::SecondFactorRequired => {
                StatusCode::FORBIDDEN
            }
            Self::MfaAlreadyEnabled
            | Self::MfaNotEnabled
            | Self::OwnAccount
            | Self::AlreadyVerified => StatusCode::CONFLICT,
            Self::AccountDisabled | Self::Forbidden | Self::ReauthenticationRequired => {
                StatusCode::FORBIDDEN
            }
            Self::WrongCurrentPassword | Self::EmailNotVerified | Self::CrossSiteRequest => {
                StatusCode::FORBIDDEN
            }
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Passkey(code) => match code {
                ErrorCode::PasskeysUnavailable | ErrorCode::NotFound => StatusCode::NOT_FOUND,
                ErrorCode::InvalidPasskeyCeremony | ErrorCode::PasskeyRejected => {
                    StatusCode::BAD_REQUEST
                }
                ErrorCode::PasskeyAlreadyRegistered
                | ErrorCode::TooManyPasskeys
                | ErrorCode::NoPasskey => StatusCode::CONFLICT,
                _ => StatusCode::UNAUTHORIZED,
            },
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            Self::Internal(e) => log_chain(e.as_ref(), true),
            Self::Unavailable(e) => log_chain(e, false),
            _ => {}
        }
        let fields = match self {
            Self::Validation { field, message, .. } => {
                Some(std::iter::once((*field, message.clone())).collect())
            }
            _ => None,
        };
        let mut res = HttpResponse::build(self.status_code());
        res.insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")));
        match self {
            Self::Unauthenticated => {
                res.insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
            }
            Self::TooManyRequests { retry_after } => {
                res.insert_header((header::RETRY_AFTER, retry_after_secs(*retry_after)));
            }
            Self::Unavailable(_) => {
                res.insert_header((header::RETRY_AFTER, 5u64));
            }
            _ => {}
        }
        res.json(ErrorBody {
            error: ErrorDetail {
                code: self.code(),
                message: self.message(),
                fields,
            },
        })
    }
}

impl From<EmailError> for ApiError {
    fn from(e: EmailError) -> Self {
        Self::Validation {
            code: ErrorCode::InvalidEmail,
            field: "email",
            message: capitalise(&e.to_string()),
        }
    }
}

/// A password-policy error on the given field.
pub fn weak_password(field: &'static str, e: PasswordError) -> ApiError {
    ApiError::Validation {
        code: ErrorCode::WeakPassword,
        field,
        message: capitalise(&e.to_string()),
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(first) => first.to_uppercase().chain(c).collect::<String>() + ".",
        None => String::new(),
    }
}

impl ApiError {
    /// 422 `weak_password` on `field`: the new password is on the breached-password list.
    fn breached_password(field: &'static str) -> Self {
        Self::Validation {
            code: ErrorCode::WeakPassword,
            field,
            message: "This password appears in a known data breach; choose another one.".into(),
        }
    }
}

impl From<SignupError> for ApiError {
    fn from(e: SignupError) -> Self {
        match e {
            SignupError::EmailTaken => Self::EmailTaken,
            SignupError::PasswordBreached => Self::breached_password("password"),
            SignupError::TooManyRequests { retry_after } => Self::TooManyRequests { retry_after },
            SignupError::Failure(f) => Self::from_failure(f),
        }
    }
}

impl From<OtpCheckError> for ApiError {
    fn from(e: OtpCheckError) -> Self {
        match e {
            OtpCheckError::InvalidOtp => Self::InvalidOtp,
            // The routes that can get it answer it themselves (200, mfa_required).
            OtpCheckError::SecondFactorRequired(_) => Self::InvalidOtp,
            OtpCheckError::AccountDisabled => Self::AccountDisabled,
            OtpCheckError::OtpExpired => Self::OtpExpired,
            OtpCheckError::TooManyAttempts => Self::TooManyAttempts,
            OtpCheckError::TooManyRequests { retry_after } => Self::TooManyRequests { retry_after },
            OtpCheckError::Failure(f) => Self::from_failure(f),
        }
    }
}

impl From<ResetPasswordError> for ApiError {
    fn from(e: ResetPasswordError) -> Self {
        match e {
            ResetPasswordError::InvalidOtp => Self::InvalidOtp,
            ResetPasswordError::OtpExpired => Self::OtpExpired,
            ResetPasswordError::TooManyAttempts => Self::TooManyAttempts,
            ResetPasswordError::TooManyRequests { retry_after } => {
                Self::TooManyRequests { retry_after }
            }
            ResetPasswordError::PasswordBreached => Self::breached_password("new_password"),
            ResetPasswordError::Failure(f) => Self::from_failure(f),
        }
    }
}

impl From<ResendOtpError> for ApiError {
    fn from(e: ResendOtpError) -> Self {
        match e {
            ResendOtpError::TooManyRequests { retry_after } => {
                Self::TooManyRequests { retry_after }
            }
            ResendOtpError::Failure(f) => Self::from_failure(f),
        }
    }
}

impl From<ForgotPasswordError> for ApiError {
    fn from(e: ForgotPasswordError) -> Self {
        match e {
            ForgotPasswordError::TooManyRequests { retry_after } => {
                Self::TooManyRequests { retry_after }
            }
            ForgotPasswordError::Failure(f) => Self::from_failure(f),
        }
    }
}

impl From<LoginError> for ApiError {
    fn from(e: LoginError) -> Self {
        match e {
            LoginError::InvalidCredentials => Self::InvalidCredentials,
            // The routes that can get it answer it themselves (200, mfa_required).
            LoginError::SecondFactorRequired(_) => Self::InvalidCredentials,
            LoginError::EmailNotVerified => Self::EmailNotVerified,
            LoginError::AccountDisabled => Self::AccountDisabled,
            LoginError::TooManyRequests { retry_after } => Self::TooManyRequests { retry_after },
            LoginError::Failure(f) => Self::from_failure(f),
        }
    }
}

impl From<AuthenticateError> for ApiError {
    fn from(e: AuthenticateError) -> Self {
        match e {
            AuthenticateError::Unauthenticated => Self::Unauthenticated,
            AuthenticateError::Failure(f) => Self::from_failure(f),
        }
    }
}

impl From<auth_core::AdminError> for ApiError {
    fn from(e: auth_core::AdminError) -> Self {
        use auth_core::AdminError;
        match e {
            AdminError::Unauthenticated => Self::Unauthenticated,
            AdminError::Forbidden => Self::Forbidden,
            AdminError::ReauthenticationRequired => Self::ReauthenticationRequired,
            AdminError::InvalidCredentials => Self::WrongCurrentPassword,
            AdminError::SecondFactorRequired => Self::SecondFactorRequired,
            AdminError::InvalidSecondFactor => Self::InvalidSecondFactor { at_login: false },
            AdminError::NotFound => Self::NotFound,
            AdminError::OwnAccount => Self::OwnAccount,
            AdminError::AlreadyVerified => Self::AlreadyVerified,
            AdminError::EmailTaken => Self::EmailTaken,
            AdminError::PasswordBreached => Self::breached_password("password"),
            AdminError::InvalidWebhook { field, message } => Self::Validation {
                code: ErrorCode::InvalidWebhook,
                field,
                message,
            },
            AdminError::TooManyRequests { retry_after } => Self::TooManyRequests { retry_after },
            AdminError::Failure(f) => Self::from_failure(f),
        }
    }
}

impl From<SessionError> for ApiError {
    fn from(e: SessionError) -> Self {
        match e {
            SessionError::NotFound => Self::NotFound,
            SessionError::Failure(f) => Self::from_failure(f),
        }
    }
}

impl From<DeleteAccountError> for ApiError {
    fn from(e: DeleteAccountError) -> Self {
        match e {
            DeleteAccountError::InvalidCredentials => Self::WrongCurrentPassword,
            DeleteAccountError::SecondFactorRequired => Self::SecondFactorRequired,
            DeleteAccountError::InvalidSecondFactor => {
                Self::InvalidSecondFactor { at_login: false }
            }
            DeleteAccountError::Unauthenticated => Self::Unauthenticated,
            DeleteAccountError::TooManyRequests { retry_after } => {
                Self::TooManyRequests { retry_after }
            }
            DeleteAccountError::Failure(f) => Self::from_failure(f),
        }
    }
}

impl From<auth_core::ChangeEmailError> for ApiError {
    fn from(e: auth_core::ChangeEmailError) -> Self {
        use auth_core::ChangeEmailError as E;
        match e {
            E::InvalidCredentials => Self::WrongCurrentPassword,
            E::SecondFactorRequired => Self::SecondFactorRequired,
            E::InvalidSecondFactor => Self::InvalidSecondFactor { at_login: false },
            E::SameAddress => Self::Validation {
                code: ErrorCode::InvalidEmail,
                field: "new_email",
                message: "This is the account's address already.".into(),
            },
            E::Unauthenticated => Self::Unauthenticated,
            E::TooManyRequests { retry_after } => Self::TooManyRequests { retry_after },
            E::Failure(f) => Self::from_failure(f),
        }
    }
}

impl From<auth_core::ConfirmEmailChangeError> for ApiError {
    fn from(e: auth_core::ConfirmEmailChangeError) -> Self {
        use auth_core::ConfirmEmailChangeError as E;
        match e {
            E::InvalidOtp => Self::InvalidOtp,
            E::OtpExpired => Self::OtpExpired,
            E::TooManyAttempts => Self::TooManyAttempts,
            E::Unauthenticated => Self::Unauthenticated,
            E::TooManyRequests { retry_after } => Self::TooManyRequests { retry_after },
            E::Failure(f) => Self::from_failure(f),
        }
    }
}

impl From<ChangePasswordError> for ApiError {
    fn from(e: ChangePasswordError) -> Self {
        match e {
            ChangePasswordError::InvalidCredentials => Self::WrongCurrentPassword,
            ChangePasswordError::SecondFactorRequired => Self::SecondFactorRequired,
            ChangePasswordError::InvalidSecondFactor => {
                Self::InvalidSecondFactor { at_login: false }
            }
            ChangePasswordError::Unauthenticated => Self::Unauthenticated,
            ChangePasswordError::PasswordBreached => Self::breached_password("new_password"),
            ChangePasswordError::TooManyRequests { retry_after } => {
                Self::TooManyRequests { retry_after }
            }
            ChangePasswordError::Failure(f) => Self::from_failure(f),
        }
    }
}

impl From<auth_core::MfaError> for ApiError {
    fn from(e: auth_core::MfaError) -> Self {
        use auth_core::MfaError;
        match e {
            MfaError::InvalidCredentials => Self::WrongCurrentPassword,
            MfaError::InvalidCode => Self::InvalidSecondFactor { at_login: false },
            MfaError::AlreadyEnabled => Self::MfaAlreadyEnabled,
            MfaError::NotPending | MfaError::NotEnabled => Self::MfaNotEnabled,
            MfaError::Unauthenticated => Self::Unauthenticated,
            MfaError::TooManyRequests { retry_after } => Self::TooManyRequests { retry_after },
            MfaError::Failure(f) => Self::from_failure(f),
        }
    }
}

impl From<auth_core::SecondStepError> for ApiError {
    fn from(e: auth_core::SecondStepError) -> Self {
        use auth_core::SecondStepError;
        match e {
            SecondStepError::InvalidToken => Self::InvalidMfaToken,
            SecondStepError::InvalidCode => Self::InvalidSecondFactor { at_login: true },
            SecondStepError::AccountDisabled => Self::AccountDisabled,
            SecondStepError::TooManyRequests { retry_after } => {
                Self::TooManyRequests { retry_after }
            }
            SecondStepError::Failure(f) => Self::from_failure(f),
        }
    }
}

impl From<auth_core::PasskeyError> for ApiError {
    fn from(e: auth_core::PasskeyError) -> Self {
        use auth_core::PasskeyError as E;
        match e {
            E::NotConfigured => Self::Passkey(ErrorCode::PasskeysUnavailable),
            E::InvalidCredentials => Self::WrongCurrentPassword,
            E::SecondFactorRequired => Self::SecondFactorRequired,
            E::InvalidSecondFactor => Self::InvalidSecondFactor { at_login: false },
            E::InvalidCeremony => Self::Passkey(ErrorCode::InvalidPasskeyCeremony),
            E::Rejected => Self::Passkey(ErrorCode::PasskeyRejected),
            E::AlreadyRegistered => Self::Passkey(ErrorCode::PasskeyAlreadyRegistered),
            E::TooManyPasskeys => Self::Passkey(ErrorCode::TooManyPasskeys),
            E::NotFound => Self::Passkey(ErrorCode::NotFound),
            E::Unauthenticated => Self::Unauthenticated,
            E::TooManyRequests { retry_after } => Self::TooManyRequests { retry_after },
            E::Failure(f) => Self::from_failure(f),
        }
    }
}

impl From<auth_core::PasskeyLoginError> for ApiError {
    fn from(e: auth_core::PasskeyLoginError) -> Self {
        use auth_core::PasskeyLoginError as E;
        match e {
            E::NotConfigured => Self::Passkey(ErrorCode::PasskeysUnavailable),
            E::InvalidCeremony => Self::Passkey(ErrorCode::InvalidPasskeyCeremony),
            E::InvalidCredentials => Self::Passkey(ErrorCode::InvalidPasskey),
            E::Malformed => Self::Passkey(ErrorCode::PasskeyRejected),
            E::InvalidToken => Self::InvalidMfaToken,
            E::NoPasskey => Self::Passkey(ErrorCode::NoPasskey),
            E::AccountDisabled => Self::AccountDisabled,
            E::TooManyRequests { retry_after } => Self::TooManyRequests { retry_after },
            E::Failure(f) => Self::from_failure(f),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    /// Every refused address, including the legal-but-undeliverable forms, is a 422
    /// `invalid_email` on the `email` field with the parser's sentence: never a 500.
    #[test]
    fn every_email_error_is_422_invalid_email() {
        for raw in [
            "",
            "no-at-sign",
            "\"quoted local\"@example.com",
            "user@[127.0.0.1]",
            "user@127.0.0.1",
            "user(comment)@example.com",
            "üser@example.com",
            "user@exa_mple.com",
            "user@localhost",
            "x\r\n@example.com",
        ] {
            let e = auth_core::EmailAddress::parse(raw).unwrap_err();
            let sentence = e.to_string();
            let api = ApiError::from(e);
            assert_eq!(
                api.status_code(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "{raw:?}"
            );
            assert_eq!(api.code(), ErrorCode::InvalidEmail, "{raw:?}");
            match api {
                ApiError::Validation { field, message, .. } => {
                    assert_eq!(field, "email");
                    assert!(message
                        .to_lowercase()
                        .contains(&sentence.to_lowercase()[..10]));
                }
                other => panic!("{raw:?}: {other:?}"),
            }
        }
    }
}

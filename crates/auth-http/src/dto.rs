//! HTTP request and response bodies. Requests derive `Deserialize` and convert to domain types
//! with `try_into_domain()`; domain types never touch serde.

use std::collections::BTreeMap;

use auth_core::{
    DeviceCredential, EmailAddress, OtpCode, Password, PasswordAttempt, PasswordPolicy, Session,
    SessionId, User,
};
use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::{weak_password, ApiError};

/// `POST /signup`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct SignupRequest {
    /// The address to register; a code is mailed to it. Only deliverable forms are accepted
    /// (no quoted local part, comment or IP literal; ASCII before the `@`); a Unicode domain is
    /// stored in its ASCII (punycode) form.
    #[schema(format = IdnEmail, example = "ada@example.com")]
    pub email: String,
    /// 8 to 128 characters (at least `PASSWORD_MIN_LENGTH`, when it is set higher), not a
    /// common password, not the email address.
    #[schema(value_type = String, min_length = 8, max_length = 128, example = "correct horse battery staple")]
    pub password: SecretString,
}

impl SignupRequest {
    /// Parses into domain types.
    pub fn try_into_domain(
        self,
        policy: &PasswordPolicy,
    ) -> Result<(EmailAddress, Password), ApiError> {
        let email = EmailAddress::parse(&self.email)?;
        let password = policy
            .parse(self.password, &email)
            .map_err(|e| weak_password("password", e))?;
        Ok((email, password))
    }
}

/// `POST /verify-otp`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct VerifyOtpRequest {
    /// The address the code was sent to.
    #[schema(format = IdnEmail, example = "ada@example.com")]
    pub email: String,
    /// The 6-digit code from the mail.
    #[schema(value_type = String, pattern = "^[0-9]{6}$", example = "042917")]
    pub otp: SecretString,
}

impl VerifyOtpRequest {
    /// Parses into domain types. A code that is not six digits is simply a wrong code.
    pub fn try_into_domain(self) -> Result<(EmailAddress, OtpCode), ApiError> {
        let email = EmailAddress::parse(&self.email)?;
        let code = parse_code(&self.otp)?;
        Ok((email, code))
    }
}

fn parse_code(raw: &SecretString) -> Result<OtpCode, ApiError> {
    use secrecy::ExposeSecret;
    OtpCode::parse(raw.expose_secret()).map_err(|_| ApiError::InvalidOtp)
}

/// `POST /resend-otp` and `POST /forgot-password`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct EmailRequest {
    /// The address.
    #[schema(format = IdnEmail, example = "ada@example.com")]
    pub email: String,
}

impl EmailRequest {
    /// Parses into a domain type.
    pub fn try_into_domain(self) -> Result<EmailAddress, ApiError> {
        Ok(EmailAddress::parse(&self.email)?)
    }
}

/// How the session token travels.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    /// Token in the response body; send it back as `Authorization: Bearer`.
    #[default]
    Bearer,
    /// Token only in an HttpOnly cookie (browsers); never in the body.
    Cookie,
}

/// `POST /login`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginRequest {
    /// The account's address.
    #[schema(format = IdnEmail, example = "ada@example.com")]
    pub email: String,
    /// The password.
    #[schema(value_type = String, example = "correct horse battery staple")]
    pub password: SecretString,
    /// `bearer` (default) or `cookie`.
    #[serde(default)]
    pub transport: Transport,
    /// The `device_token` of an earlier successful login from this client (bearer clients;
    /// browsers send the `device` cookie instead). With it, failed logins of this device count
    /// in its own budget, which nobody else's failures touch. Anything unrecognised is ignored.
    #[schema(value_type = Option<String>)]
    #[serde(default)]
    pub device_token: Option<SecretString>,
}

/// A login request parsed into domain types.
pub type ParsedLogin = (
    EmailAddress,
    PasswordAttempt,
    Transport,
    Option<DeviceCredential>,
);

impl LoginRequest {
    /// Parses into domain types. An out-of-bounds password can never match: it is refused as
    /// invalid credentials without hashing.
    pub fn try_into_domain(self) -> Result<ParsedLogin, ApiError> {
        let email = EmailAddress::parse(&self.email)?;
        let password =
            PasswordAttempt::parse(self.password).map_err(|_| ApiError::InvalidCredentials)?;
        Ok((
            email,
            password,
            self.transport,
            parse_device(self.device_token),
        ))
    }
}

pub(crate) fn parse_device(raw: Option<SecretString>) -> Option<DeviceCredential> {
    use secrecy::ExposeSecret;
    raw.and_then(|r| DeviceCredential::parse(r.expose_secret()))
}

/// `POST /login/code/verify`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginCodeVerifyRequest {
    /// The account's address.
    #[schema(format = IdnEmail, example = "ada@example.com")]
    pub email: String,
    /// The 6-digit login code from the mail.
    #[schema(value_type = String, pattern = "^[0-9]{6}$", example = "042917")]
    pub otp: SecretString,
    /// `bearer` (default) or `cookie`.
    #[serde(default)]
    pub transport: Transport,
    /// As for `POST /login`: the device's earlier `device_token`, if any.
    #[schema(value_type = Option<String>)]
    #[serde(default)]
    pub device_token: Option<SecretString>,
}

impl LoginCodeVerifyRequest {
    /// Parses into domain types; a code that is not six digits is simply a wrong code.
    pub fn try_into_domain(
        self,
    ) -> Result<(EmailAddress, OtpCode, Transport, Option<DeviceCredential>), ApiError> {
        let email = EmailAddress::parse(&self.email)?;
        let code = parse_code(&self.otp)?;
        Ok((email, code, self.transport, parse_device(self.device_token)))
    }
}

/// `POST /change-password`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ChangePasswordRequest {
    /// The password in force now.
    #[schema(value_type = String)]
    pub current_password: SecretString,
    /// The new password (same rules as at signup).
    #[schema(value_type = String, min_length = 8, max_length = 128)]
    pub new_password: SecretString,
    /// With two-factor authentication on: a code from the app or a recovery code.
    #[schema(value_type = Option<String>)]
    #[serde(default)]
    pub second_factor: Option<SecretString>,
}

impl ChangePasswordRequest {
    /// Parses into domain types for the account `email`.
    pub fn try_into_domain(
        self,
        policy: &PasswordPolicy,
        email: &EmailAddress,
    ) -> Result<(PasswordAttempt, Password, Option<auth_core::SecondFactor>), ApiError> {
        let current = PasswordAttempt::parse(self.current_password)
            .map_err(|_| ApiError::WrongCurrentPassword)?;
        let new_password = policy
            .parse(self.new_password, email)
            .map_err(|e| weak_password("new_password", e))?;
        Ok((
            current,
            new_password,
            parse_second_factor(self.second_factor)?,
        ))
    }
}

/// `DELETE /me`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct DeleteAccountRequest {
    /// The account's password, asked again before the account goes.
    #[schema(value_type = String)]
    pub password: SecretString,
    /// With two-factor authentication on: a code from the app or a recovery code.
    #[schema(value_type = Option<String>)]
    #[serde(default)]
    pub second_factor: Option<SecretString>,
}

impl DeleteAccountRequest {
    /// Parses into domain types; a password no account could have is simply wrong.
    pub fn try_into_domain(
        self,
    ) -> Result<(PasswordAttempt, Option<auth_core::SecondFactor>), ApiError> {
        let password =
            PasswordAttempt::parse(self.password).map_err(|_| ApiError::WrongCurrentPassword)?;
        Ok((password, parse_second_factor(self.second_factor)?))
    }
}

/// An address in the `new_email` field: a 422 names that field.
fn parse_new_email(raw: &str) -> Result<EmailAddress, ApiError> {
    EmailAddress::parse(raw).map_err(|e| match ApiError::from(e) {
        ApiError::Validation { code, message, .. } => ApiError::Validation {
            code,
            field: "new_email",
            message,
        },
        other => other,
    })
}

/// `POST /me/email`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ChangeEmailRequest {
    /// The address to move the account to.
    #[schema(format = IdnEmail, example = "ada@example.org")]
    pub new_email: String,
    /// The account's password, asked again.
    #[schema(value_type = String)]
    pub password: SecretString,
    /// With two-factor authentication on: a code from the app or a recovery code.
    #[schema(value_type = Option<String>)]
    #[serde(default)]
    pub second_factor: Option<SecretString>,
}

impl ChangeEmailRequest {
    /// Parses into domain types; a password no account could have is simply wrong.
    pub fn try_into_domain(
        self,
    ) -> Result<
        (
            EmailAddress,
            PasswordAttempt,
            Option<auth_core::SecondFactor>,
        ),
        ApiError,
    > {
        let email = parse_new_email(&self.new_email)?;
        let password =
            PasswordAttempt::parse(self.password).map_err(|_| ApiError::WrongCurrentPassword)?;
        Ok((email, password, parse_second_factor(self.second_factor)?))
    }
}

/// `POST /me/email/confirm`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ConfirmEmailChangeRequest {
    /// The new address, as given to `POST /me/email`.
    #[schema(format = IdnEmail, example = "ada@example.org")]
    pub new_email: String,
    /// The 6-digit code mailed to the new address.
    #[schema(value_type = String, pattern = "^[0-9]{6}$", example = "042917")]
    pub otp: SecretString,
}

impl ConfirmEmailChangeRequest {
    /// Parses into domain types.
    pub fn try_into_domain(self) -> Result<(EmailAddress, OtpCode), ApiError> {
        let email = parse_new_email(&self.new_email)?;
        let code = parse_code(&self.otp)?;
        Ok((email, code))
    }
}

/// `POST /reset-password`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ResetPasswordRequest {
    /// The account's address.
    #[schema(format = IdnEmail, example = "ada@example.com")]
    pub email: String,
    /// The 6-digit reset code from the mail.
    #[schema(value_type = String, pattern = "^[0-9]{6}$", example = "042917")]
    pub otp: SecretString,
    /// The new password (same rules as at signup).
    #[schema(value_type = String, min_length = 8, max_length = 128)]
    pub new_password: SecretString,
}

impl ResetPasswordRequest {
    /// Parses into domain types.
    pub fn try_into_domain(
        self,
        policy: &PasswordPolicy,
    ) -> Result<(EmailAddress, OtpCode, Password), ApiError> {
        let email = EmailAddress::parse(&self.email)?;
        let new_password = policy
            .parse(self.new_password, &email)
            .map_err(|e| weak_password("new_password", e))?;
        let code = parse_code(&self.otp)?;
        Ok((email, code, new_password))
    }
}

/// A user as the API shows it: never a hash or a secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserDto {
    /// Id.
    pub id: Uuid,
    /// Normalised address: lower-case, the domain in its ASCII (punycode) form.
    pub email: String,
    /// Whether the address was verified.
    pub email_verified: bool,
    /// Signup time.
    pub created_at: DateTime<Utc>,
}

impl From<&User> for UserDto {
    fn from(u: &User) -> Self {
        Self {
            id: u.id.as_uuid(),
            email: u.email.to_string(),
            email_verified: u.is_verified(),
            created_at: u.created_at,
        }
    }
}

/// `{user}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserResponse {
    /// The account.
    pub user: UserDto,
}

impl UserResponse {
    /// Wraps a user.
    pub fn new(user: &User) -> Self {
        Self { user: user.into() }
    }
}

/// The session part of a login response.
#[derive(Debug, Serialize, ToSchema)]
pub struct LoginSession {
    /// The bearer token (bearer transport only; absent with the cookie transport).
    // Omitted when empty, never null: the schema must not say nullable.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub token: Option<String>,
    /// End of the session's absolute lifetime.
    pub expires_at: DateTime<Utc>,
}

/// `POST /login` and `POST /login/code/verify` success.
#[derive(Debug, Serialize, ToSchema)]
pub struct LoginResponse {
    /// The account.
    pub user: UserDto,
    /// The new session.
    pub session: LoginSession,
    /// Bearer transport only: this client's device credential, bound to the address. Keep it
    /// and send it as `device_token` with the next login: then failed logins of this device
    /// count in its own budget, and strangers guessing the password cannot lock it out.
    /// Browsers (cookie transport) get it as the HttpOnly `device` cookie instead.
    // Omitted when empty, never null: the schema must not say nullable.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub device_token: Option<String>,
}

/// The session part of `/me`.
#[derive(Debug, Serialize, ToSchema)]
pub struct MeSession {
    /// Login time.
    pub created_at: DateTime<Utc>,
    /// End of the absolute lifetime.
    pub expires_at: DateTime<Utc>,
}

/// `GET /me` success.
#[derive(Debug, Serialize, ToSchema)]
pub struct MeResponse {
    /// The account (as of login).
    pub user: UserDto,
    /// The session used for this request.
    pub session: MeSession,
}

/// One entry of `GET /sessions`.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionDto {
    /// Public id (usable with `DELETE /sessions/{id}`; grants no access).
    pub id: Uuid,
    /// Login time.
    pub created_at: DateTime<Utc>,
    /// End of the absolute lifetime.
    pub expires_at: DateTime<Utc>,
    /// Last use as recorded (it may lag the real last use by up to a minute).
    pub last_seen_at: DateTime<Utc>,
    /// The network of the client at login: its address cut to `SESSION_IP_PREFIX_V4` /
    /// `SESSION_IP_PREFIX_V6` bits, e.g. `203.0.113.0/24`.
    #[schema(example = "203.0.113.0/24")]
    pub ip: Option<String>,
    /// Client user agent at login.
    pub user_agent: Option<String>,
    /// The browser (or client) the user agent names, e.g. `Firefox`; `null` when unknown.
    #[schema(example = "Firefox")]
    pub browser: Option<String>,
    /// The operating system the user agent names, e.g. `Linux`; `null` when unknown.
    #[schema(example = "Linux")]
    pub os: Option<String>,
    /// Whether this is the session making the request ("this device").
    pub current: bool,
}

/// Browser and operating system named by a user agent, when it names them.
pub fn describe_user_agent(ua: &str) -> (Option<String>, Option<String>) {
    static PARSER: std::sync::OnceLock<woothee::parser::Parser> = std::sync::OnceLock::new();
    let Some(found) = PARSER.get_or_init(woothee::parser::Parser::new).parse(ua) else {
        return (None, None);
    };
    let known =
        |v: &str| (!v.is_empty() && v != woothee::woothee::VALUE_UNKNOWN).then(|| v.to_owned());
    (known(found.name), known(found.os))
}

impl SessionDto {
    /// Builds the entry; `current` is the id of the caller's session, `prefix` the leading
    /// bits (IPv4, IPv6) of the client address shown.
    pub fn new(s: &Session, current: SessionId, prefix: (u8, u8)) -> Self {
        let (browser, os) = s
            .client
            .user_agent
            .as_deref()
            .map_or((None, None), describe_user_agent);
        Self {
            id: s.id.as_uuid(),
            created_at: s.created_at,
            expires_at: s.expires_at,
            last_seen_at: s.last_seen_at,
            ip: s
                .client
                .ip
                .map(|ip| auth_core::TruncatedIp::new(ip, prefix.0, prefix.1).to_string()),
            user_agent: s.client.user_agent.clone(),
            browser,
            os,
            current: s.id == current,
        }
    }
}

/// `GET /sessions` success.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionsResponse {
    /// Live sessions, newest first (by login). A page may hold fewer than `limit` sessions,
    /// even none, and still have a next page (sessions that ended meanwhile are left out).
    pub sessions: Vec<SessionDto>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    // Omitted when empty, never null: the schema must not say nullable.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub next_cursor: Option<String>,
}

/// Default page size of `GET /sessions`.
pub const DEFAULT_SESSIONS_PAGE: usize = 50;

/// Query of `GET /sessions`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SessionsQuery {
    /// Sessions per page, 1 to 100 (default 50).
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl SessionsQuery {
    /// The cursor and page size; 400 for a malformed cursor or a limit out of range.
    pub fn try_into_domain(self) -> Result<(Option<auth_core::SessionCursor>, usize), ApiError> {
        let limit = match self.limit {
            None => DEFAULT_SESSIONS_PAGE,
            Some(n) if (1..=auth_core::MAX_SESSIONS_PAGE as u32).contains(&n) => n as usize,
            Some(_) => {
                return Err(ApiError::InvalidRequest(format!(
                    "limit must be between 1 and {}",
                    auth_core::MAX_SESSIONS_PAGE
                )))
            }
        };
        let cursor = match self.cursor {
            None => None,
            Some(raw) => Some(
                auth_core::SessionCursor::parse(&raw)
                    .ok_or_else(|| ApiError::InvalidRequest("malformed cursor".into()))?,
            ),
        };
        Ok((cursor, limit))
    }
}

/// The body of every 202: identical whatever the address, so it tells nothing.
#[derive(Debug, Serialize, ToSchema)]
pub struct AcceptedResponse {
    /// Always `accepted`.
    pub status: &'static str,
    /// What happens next.
    pub message: &'static str,
}

/// `GET /health`.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthResponse {
    /// `ok`.
    pub status: &'static str,
}

/// `GET /ready`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReadyResponse {
    /// `ok` or `unavailable`.
    pub status: &'static str,
    /// Each dependency: `ok` or `down`; and `password_hasher`: `ok`, or `saturated` while
    /// every hashing thread is busy and its queue is full (logins then get 503; the instance
    /// stays ready).
    pub checks: BTreeMap<&'static str, &'static str>,
    /// The mail outbox's backlog: only with `Authorization: Bearer <OPS_TOKEN>` (it moves when
    /// a request queues mail for an account), and absent when the outbox cannot be read. Slow
    /// or failing mail never makes the instance unready: requests do not wait for it.
    // Omitted when empty, never null: the schema must not say nullable.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub mail_outbox: Option<OutboxReport>,
}

/// The mail outbox in `GET /ready`.
#[derive(Debug, Serialize, ToSchema)]
pub struct OutboxReport {
    /// Messages waiting for delivery.
    pub pending: u64,
    /// Age in seconds of the oldest of them (0 when none waits).
    pub oldest_pending_seconds: u64,
    /// Messages given up on (see `auth-http outbox list`).
    pub dead: u64,
    /// Addresses that currently get no mail (refused for good, bounced, complained).
    pub suppressed: u64,
}

/// `POST /mail/bounces`: a bounce or complaint reported by the mail provider.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BounceRequest {
    /// The address the mail bounced from or that complained.
    #[schema(format = IdnEmail, example = "ada@example.com")]
    pub address: String,
    /// `bounce` (a permanent delivery failure reported after the fact) or `complaint` (the
    /// recipient marked a message as spam).
    pub kind: BounceKind,
}

/// What the provider reported.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BounceKind {
    /// A permanent delivery failure.
    Bounce,
    /// A spam complaint.
    Complaint,
}

/// The answer to `POST /mail/bounces`.
#[derive(Debug, Serialize, ToSchema)]
pub struct BounceResponse {
    /// `suppressed`.
    pub status: &'static str,
    /// Until when the address gets no mail.
    pub suppressed_until: chrono::DateTime<chrono::Utc>,
}

// --- two-factor authentication ---------------------------------------------------------------

/// Parses an optional second factor; a malformed one is simply wrong.
pub fn parse_second_factor(
    raw: Option<SecretString>,
) -> Result<Option<auth_core::SecondFactor>, ApiError> {
    use secrecy::ExposeSecret;
    raw.map(|r| {
        auth_core::SecondFactor::parse(r.expose_secret())
            .map_err(|_| ApiError::InvalidSecondFactor { at_login: false })
    })
    .transpose()
}

/// `POST /login` when the account has a second factor: no session yet.
#[derive(Debug, Serialize, ToSchema)]
pub struct MfaRequiredResponse {
    /// Always `true`.
    pub mfa_required: bool,
    /// Send it with a code to `POST /login/mfa`: single use, from this client only, within
    /// `expires_at`.
    pub mfa_token: String,
    /// When the token stops working (at most 5 minutes after the password).
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

/// The answer of `POST /login` and `POST /login/code/verify`: a session, or the second step.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum LoginAnswer {
    /// Logged in.
    Session(LoginResponse),
    /// A second factor is required.
    SecondFactor(MfaRequiredResponse),
}

/// `POST /login/mfa`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginMfaRequest {
    /// The `mfa_token` of the first step.
    #[schema(value_type = String)]
    pub mfa_token: SecretString,
    /// Six digits from the authenticator app, or a recovery code (`xxxxx-xxxxx`).
    #[schema(value_type = String, example = "123456")]
    pub code: SecretString,
    /// `bearer` (default) or `cookie`.
    #[serde(default)]
    pub transport: Transport,
    /// As at `POST /login`.
    #[schema(value_type = Option<String>)]
    #[serde(default)]
    pub device_token: Option<SecretString>,
}

/// `POST /login/mfa` parsed.
pub type ParsedLoginMfa = (
    auth_core::MfaToken,
    auth_core::SecondFactor,
    Transport,
    Option<DeviceCredential>,
);

impl LoginMfaRequest {
    /// Parses into domain types; a malformed token or code is refused like a wrong one.
    pub fn try_into_domain(self) -> Result<ParsedLoginMfa, ApiError> {
        use secrecy::ExposeSecret;
        let token = auth_core::MfaToken::parse(self.mfa_token.expose_secret())
            .ok_or(ApiError::InvalidMfaToken)?;
        let code = auth_core::SecondFactor::parse(self.code.expose_secret())
            .map_err(|_| ApiError::InvalidSecondFactor { at_login: true })?;
        Ok((token, code, self.transport, parse_device(self.device_token)))
    }
}

/// `GET /me/mfa`.
#[derive(Debug, Serialize, ToSchema)]
pub struct MfaStatusResponse {
    /// Two-factor authentication (TOTP) is on.
    pub totp_enabled: bool,
    /// Unused recovery codes (0 when off).
    pub recovery_codes_left: u32,
}

/// `POST /me/mfa/totp`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct TotpEnrolRequest {
    /// The account's password.
    #[schema(value_type = String)]
    pub password: SecretString,
}

/// A new TOTP secret, shown once.
#[derive(Debug, Serialize, ToSchema)]
pub struct TotpEnrolResponse {
    /// `otpauth://totp/...`: what the QR code holds.
    pub otpauth_uri: String,
    /// The secret in base32, to type into an app by hand.
    pub secret: String,
    /// The QR code of `otpauth_uri`, as an SVG document.
    pub qr_svg: String,
}

/// `POST /me/mfa/totp/confirm`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct TotpConfirmRequest {
    /// Six digits from the authenticator app.
    #[schema(value_type = String, pattern = "^[0-9]{6}$", example = "123456")]
    pub code: SecretString,
}

/// Recovery codes, shown once: each works once in place of a code from the app.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecoveryCodesResponse {
    /// Ten codes (`xxxxx-xxxxx`).
    pub recovery_codes: Vec<String>,
}

/// `POST /me/mfa/recovery-codes`, `DELETE /me/mfa/totp`: password and a current code.
#[derive(Debug, Deserialize, ToSchema)]
pub struct MfaManageRequest {
    /// The account's password.
    #[schema(value_type = String)]
    pub password: SecretString,
    /// Six digits from the authenticator app, or a recovery code.
    #[schema(value_type = String)]
    pub code: SecretString,
}

impl MfaManageRequest {
    /// Parses into domain types.
    pub fn try_into_domain(self) -> Result<(PasswordAttempt, auth_core::SecondFactor), ApiError> {
        let password =
            PasswordAttempt::parse(self.password).map_err(|_| ApiError::WrongCurrentPassword)?;
        let code = parse_second_factor(Some(self.code))?
            .ok_or(ApiError::InvalidSecondFactor { at_login: false })?;
        Ok((password, code))
    }
}

/// `POST /token`: a short-lived access token for services that trust this one.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    /// The signed JWT (EdDSA): `iss`, `sub` (user id), `sid` (session id), `aud`, `iat`,
    /// `exp`, `jti`; `kid` in its header. Send it to your services as `Authorization: Bearer`.
    pub access_token: String,
    /// `Bearer`.
    pub token_type: &'static str,
    /// Seconds until it expires (`JWT_TTL`, less when the session ends sooner).
    pub expires_in: u64,
    /// When it expires (its `exp`).
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

/// `GET /.well-known/jwks.json`: the public keys that verify access tokens.
#[derive(Debug, Serialize, ToSchema)]
pub struct JwksResponse {
    /// Every key in use, the signing one first.
    pub keys: Vec<crate::tokens::PublicJwk>,
}

/// `GET /.well-known/secureauth-configuration`: where to find the keys and what tokens say.
/// Shaped like OpenID discovery metadata, but this service is no OpenID provider.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenMetadata {
    /// The `iss` of every token.
    pub issuer: String,
    /// Where the keys are published.
    pub jwks_uri: String,
    /// Where a session gets an access token.
    pub token_endpoint: String,
    /// The `aud` of every token.
    pub audience: String,
    /// `["EdDSA"]`.
    pub token_signing_alg_values_supported: Vec<&'static str>,
    /// The longest lifetime of a token, in seconds.
    pub access_token_ttl_seconds: u64,
}

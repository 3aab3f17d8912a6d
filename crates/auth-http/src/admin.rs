//! Handlers of the administration API (`/admin/...`): the privilege window, the account list,
//! one account with its sessions, and the changes an administrator makes to other accounts.
//!
//! Every handler takes [`AdminSession`] (401 without a session, 403 `forbidden` for a
//! non-administrator); the core checks the role again, fresh from the user store, and the
//! privilege window (403 `reauthentication_required`) on every operation but `POST
//! /admin/reauth`, which opens it.

use actix_web::{web, HttpResponse};
use auth_core::{AccountState, AccountSummary, Role, SessionId, UserId, UserQuery};
use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::dto::{AcceptedResponse, SessionDto};
use crate::error::{ApiError, ErrorBody};
use crate::extract::AdminSession;
use crate::state::AppState;
use crate::throttle::Client;

type Result<T = HttpResponse> = std::result::Result<T, ApiError>;
type Wrapped<T> = std::result::Result<web::Json<T>, actix_web::Error>;
type Answer = std::result::Result<HttpResponse, actix_web::Error>;

/// Default page of `GET /admin/users`.
const DEFAULT_USERS_PAGE: usize = 50;
/// Longest address prefix a search takes.
const MAX_PREFIX_CHARS: usize = 254;

/// Registers the `/admin` routes; any other method on them answers 405 JSON.
pub fn configure(cfg: &mut web::ServiceConfig) {
    fn resource(path: &str) -> actix_web::Resource {
        web::resource(path).default_service(web::to(|| async {
            Err::<HttpResponse, _>(ApiError::MethodNotAllowed)
        }))
    }
    cfg.service(resource("/admin/reauth").route(web::post().to(reauth)))
        .service(resource("/admin/users").route(web::get().to(list_users)))
        .service(
            resource("/admin/users/{id}")
                .route(web::get().to(get_user))
                .route(web::delete().to(delete_user)),
        )
        .service(resource("/admin/users/{id}/disable").route(web::post().to(disable_user)))
        .service(resource("/admin/users/{id}/enable").route(web::post().to(enable_user)))
        .service(resource("/admin/users/{id}/role").route(web::put().to(set_role)))
        .service(
            resource("/admin/users/{id}/resend-verification")
                .route(web::post().to(resend_verification)),
        )
        .service(resource("/admin/users/{id}/mfa").route(web::delete().to(reset_mfa)))
        .service(resource("/admin/users/{id}/events").route(web::get().to(user_events)))
        .service(resource("/admin/users/{id}/sessions").route(web::delete().to(revoke_all)))
        .service(
            resource("/admin/users/{id}/sessions/{session_id}")
                .route(web::delete().to(revoke_session)),
        )
        .service(
            resource("/admin/webhooks")
                .route(web::get().to(crate::webhooks::list_webhooks))
                .route(web::post().to(crate::webhooks::create_webhook)),
        )
        .service(
            resource("/admin/webhooks/{id}")
                .route(web::delete().to(crate::webhooks::delete_webhook)),
        )
        .service(
            resource("/admin/webhooks/{id}/deliveries")
                .route(web::get().to(crate::webhooks::webhook_deliveries)),
        );
}

fn no_store() -> actix_web::HttpResponseBuilder {
    let mut b = HttpResponse::Ok();
    b.insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"));
    b
}

fn user_id(raw: &str) -> Result<UserId> {
    UserId::parse(raw).ok_or(ApiError::NotFound)
}

/// `POST /admin/reauth`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdminReauthRequest {
    /// The administrator's password.
    #[schema(value_type = String)]
    pub password: SecretString,
    /// With two-factor authentication on: a code from the app or a recovery code.
    #[schema(value_type = Option<String>)]
    #[serde(default)]
    pub second_factor: Option<SecretString>,
}

/// `POST /admin/reauth` success.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdminReauthResponse {
    /// Until when this session may make administrative requests.
    pub privileged_until: DateTime<Utc>,
}

/// An account as the administration API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdminUserDto {
    /// Id.
    pub id: Uuid,
    /// Normalised address.
    pub email: String,
    /// Whether the address was verified.
    pub email_verified: bool,
    /// `user` or `admin`.
    pub role: &'static str,
    /// `unverified`, `active` or `disabled`.
    pub state: &'static str,
    /// When it was disabled, if it is.
    pub disabled_at: Option<DateTime<Utc>>,
    /// Signup time.
    pub created_at: DateTime<Utc>,
}

impl From<&AccountSummary> for AdminUserDto {
    fn from(a: &AccountSummary) -> Self {
        Self {
            id: a.user.id.as_uuid(),
            email: a.user.email.to_string(),
            email_verified: a.user.is_verified(),
            role: a.status.role.as_str(),
            state: AccountState::of(&a.user, &a.status).as_str(),
            disabled_at: a.status.disabled_at,
            created_at: a.user.created_at,
        }
    }
}

/// `GET /admin/users` success.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdminUsersResponse {
    /// The accounts, in address order.
    pub users: Vec<AdminUserDto>,
    /// Pass as `cursor` for the next page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub next_cursor: Option<String>,
}

/// `GET /admin/users/{id}` success.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdminUserResponse {
    /// The account.
    pub user: AdminUserDto,
    /// Its newest live sessions, newest first, at most 100 (`current` is always false).
    pub sessions: Vec<SessionDto>,
    /// Whether the account holds more sessions than `sessions` shows.
    pub more_sessions: bool,
    /// Whether the account has two-factor authentication (TOTP) on.
    pub two_factor_enabled: bool,
    /// When mail to the account's address is suppressed (after a rejection, a bounce or a
    /// complaint): until when and why; `null` when mail goes out.
    pub mail_suppression: Option<MailSuppressionDto>,
}

/// A suppression of mail to an address.
#[derive(Debug, Serialize, ToSchema)]
pub struct MailSuppressionDto {
    /// No mail to the address until then.
    pub until: DateTime<Utc>,
    /// `rejected`, `bounce`, `complaint` or `operator`.
    #[schema(example = "bounce")]
    pub reason: &'static str,
}

/// `DELETE /admin/users/{id}/sessions` success.
#[derive(Debug, Serialize, ToSchema)]
pub struct RevokedResponse {
    /// How many sessions were ended.
    pub revoked: u64,
}

/// `PUT /admin/users/{id}/role`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetRoleRequest {
    /// `user` or `admin`.
    pub role: String,
}

/// Query of `GET /admin/users`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AdminUsersQuery {
    /// Only addresses that start with this (case-insensitive, literal).
    pub email: Option<String>,
    /// `unverified`, `active` or `disabled`.
    pub state: Option<String>,
    /// `user` or `admin`.
    pub role: Option<String>,
    /// Accounts per page, 1 to 100 (default 50).
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl AdminUsersQuery {
    /// The search; 400 for a value out of range.
    pub fn try_into_domain(self) -> Result<UserQuery> {
        let bad = |m: &str| ApiError::InvalidRequest(m.to_owned());
        let limit = match self.limit {
            None => DEFAULT_USERS_PAGE,
            Some(n) if (1..=auth_core::MAX_ACCOUNTS_PAGE as u32).contains(&n) => n as usize,
            Some(_) => return Err(bad("limit must be between 1 and 100")),
        };
        let state = match self.state.as_deref() {
            None | Some("") => None,
            Some(raw) => Some(
                AccountState::parse(raw)
                    .ok_or_else(|| bad("state must be unverified, active or disabled"))?,
            ),
        };
        let role = match self.role.as_deref() {
            None | Some("") => None,
            Some(raw) => Some(Role::parse(raw).ok_or_else(|| bad("role must be user or admin"))?),
        };
        let email_prefix = match self.email {
            Some(p) if p.chars().count() > MAX_PREFIX_CHARS => {
                return Err(bad("email is too long"));
            }
            Some(p) if p.is_empty() => None,
            // No address holds one, and PostgreSQL refuses a NUL in text.
            Some(p) if p.chars().any(char::is_control) => {
                return Err(bad("email must not contain control characters"));
            }
            p => p,
        };
        let after = match self.cursor {
            None => None,
            Some(raw) => {
                Some(auth_core::EmailAddress::parse(&raw).map_err(|_| bad("malformed cursor"))?)
            }
        };
        Ok(UserQuery {
            email_prefix,
            state,
            role,
            after,
            limit,
        })
    }
}

/// Open this session's administrative privilege window: the administrator's password again,
/// and with two-factor authentication on, a current code from the app or a recovery code.
#[utoipa::path(post, path = "/admin/reauth", request_body = AdminReauthRequest, tag = "admin",
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, body = AdminReauthResponse, description = "The window is open until `privileged_until` (`ADMIN_REAUTH_WINDOW`, default 10 minutes)"),
        (status = 401, body = ErrorBody, description = "`unauthenticated`"),
        (status = 403, body = ErrorBody, description = "`forbidden`: not an administrator; `invalid_credentials`: wrong password; `second_factor_required`: two-factor authentication is on and `second_factor` is missing; `invalid_second_factor`: a wrong or used code"),
        (status = 429, body = ErrorBody, description = "`too_many_requests`: the re-authentication budget is spent; see `Retry-After`"),
    ))]
pub async fn reauth(
    state: web::Data<AppState>,
    admin: AdminSession,
    client: Client,
    body: Wrapped<AdminReauthRequest>,
) -> Answer {
    let body = body?.into_inner();
    let password = auth_core::PasswordAttempt::parse(body.password)
        .map_err(|_| ApiError::WrongCurrentPassword)?;
    let factor = crate::dto::parse_second_factor(body.second_factor)?;
    let until = state
        .service
        .admin_reauthenticate(&admin.0, &password, factor.as_ref(), &client.0)
        .await
        .map_err(ApiError::from)?;
    Ok(no_store().json(AdminReauthResponse {
        privileged_until: until,
    }))
}

/// Search the accounts, in address order, a page at a time.
#[utoipa::path(get, path = "/admin/users", tag = "admin", params(AdminUsersQuery),
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, body = AdminUsersResponse, description = "A page of accounts"),
        (status = 400, body = ErrorBody, description = "`invalid_request`: a malformed filter, `limit` or `cursor`"),
        (status = 401, body = ErrorBody, description = "`unauthenticated`"),
        (status = 403, body = ErrorBody, description = "`forbidden`: not an administrator; `reauthentication_required`: the privilege window is closed"),
    ))]
pub async fn list_users(
    state: web::Data<AppState>,
    req: actix_web::HttpRequest,
    admin: AdminSession,
) -> Result {
    // Read only once the caller is known to be an administrator: a stranger learns nothing
    // about the parameters, not even that one was malformed.
    let query = web::Query::<AdminUsersQuery>::from_query(req.query_string())
        .map_err(|e| ApiError::InvalidRequest(format!("query string: {e}")))?;
    let query = query.into_inner().try_into_domain()?;
    let page = state.service.admin_list_users(&admin.0, query).await?;
    Ok(no_store().json(AdminUsersResponse {
        users: page.accounts.iter().map(AdminUserDto::from).collect(),
        next_cursor: page.next.map(|e| e.to_string()),
    }))
}

/// One account, its live sessions, whether it has two-factor authentication on, and whether
/// mail to its address is suppressed.
#[utoipa::path(get, path = "/admin/users/{id}", tag = "admin",
    params(("id" = uuid::Uuid, Path, description = "The account's id")),
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, body = AdminUserResponse, description = "The account and its sessions"),
        (status = 401, body = ErrorBody, description = "`unauthenticated`"),
        (status = 403, body = ErrorBody, description = "`forbidden` or `reauthentication_required`"),
        (status = 404, body = ErrorBody, description = "`not_found`: no such account"),
    ))]
pub async fn get_user(
    state: web::Data<AppState>,
    admin: AdminSession,
    path: web::Path<String>,
) -> Result {
    let id = user_id(&path)?;
    let found = state.service.admin_get_user(&admin.0, id).await?;
    let mail_suppression = match &state.outbox {
        Some(outbox) => outbox
            .store()
            .suppression(&found.account.user.email, Utc::now())
            .await
            .map_err(|e| ApiError::from_failure(e.into()))?
            .map(|(until, reason)| MailSuppressionDto {
                until,
                reason: reason.as_str(),
            }),
        None => None,
    };
    let nobody = SessionId::from_uuid(Uuid::nil());
    Ok(no_store().json(AdminUserResponse {
        user: AdminUserDto::from(&found.account),
        sessions: found
            .sessions
            .iter()
            .map(|s| SessionDto::new(s, nobody, state.session_ip_prefix))
            .collect(),
        more_sessions: found.more_sessions,
        two_factor_enabled: found.two_factor,
        mail_suppression,
    }))
}

/// Delete the account for good; every session ends and the owner is mailed.
#[utoipa::path(delete, path = "/admin/users/{id}", tag = "admin",
    params(("id" = uuid::Uuid, Path, description = "The account's id")),
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, body = ErrorBody, description = "`unauthenticated`"),
        (status = 403, body = ErrorBody, description = "`forbidden` or `reauthentication_required`"),
        (status = 404, body = ErrorBody, description = "`not_found`: no such account"),
        (status = 409, body = ErrorBody, description = "`own_account`: the administrator's own account"),
    ))]
pub async fn delete_user(
    state: web::Data<AppState>,
    admin: AdminSession,
    client: Client,
    path: web::Path<String>,
) -> Result {
    let id = user_id(&path)?;
    state
        .service
        .admin_delete_user(&admin.0, id, &client.0)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Disable the account: every session ends at once, logins are refused with 403
/// `account_disabled`, and the owner is mailed.
#[utoipa::path(post, path = "/admin/users/{id}/disable", tag = "admin",
    params(("id" = uuid::Uuid, Path, description = "The account's id")),
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 204, description = "Disabled (or was already); no session of the account is left"),
        (status = 401, body = ErrorBody, description = "`unauthenticated`"),
        (status = 403, body = ErrorBody, description = "`forbidden` or `reauthentication_required`"),
        (status = 404, body = ErrorBody, description = "`not_found`: no such account"),
        (status = 409, body = ErrorBody, description = "`own_account`: the administrator's own account"),
    ))]
pub async fn disable_user(
    state: web::Data<AppState>,
    admin: AdminSession,
    client: Client,
    path: web::Path<String>,
) -> Result {
    let id = user_id(&path)?;
    state
        .service
        .admin_disable_user(&admin.0, id, &client.0)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Enable a disabled account again; the owner is mailed.
#[utoipa::path(post, path = "/admin/users/{id}/enable", tag = "admin",
    params(("id" = uuid::Uuid, Path, description = "The account's id")),
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 204, description = "Enabled (or was already)"),
        (status = 401, body = ErrorBody, description = "`unauthenticated`"),
        (status = 403, body = ErrorBody, description = "`forbidden` or `reauthentication_required`"),
        (status = 404, body = ErrorBody, description = "`not_found`: no such account"),
        (status = 409, body = ErrorBody, description = "`own_account`: the administrator's own account"),
    ))]
pub async fn enable_user(
    state: web::Data<AppState>,
    admin: AdminSession,
    client: Client,
    path: web::Path<String>,
) -> Result {
    let id = user_id(&path)?;
    state
        .service
        .admin_enable_user(&admin.0, id, &client.0)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Set the account's role; the owner is mailed when it changes.
#[utoipa::path(put, path = "/admin/users/{id}/role", request_body = SetRoleRequest, tag = "admin",
    params(("id" = uuid::Uuid, Path, description = "The account's id")),
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 204, description = "The role is set"),
        (status = 400, body = ErrorBody, description = "`invalid_request`: the role is not `user` or `admin`"),
        (status = 401, body = ErrorBody, description = "`unauthenticated`"),
        (status = 403, body = ErrorBody, description = "`forbidden` or `reauthentication_required`"),
        (status = 404, body = ErrorBody, description = "`not_found`: no such account"),
        (status = 409, body = ErrorBody, description = "`own_account`: the administrator's own account"),
    ))]
pub async fn set_role(
    state: web::Data<AppState>,
    admin: AdminSession,
    client: Client,
    path: web::Path<String>,
    body: Wrapped<SetRoleRequest>,
) -> Answer {
    let role = Role::parse(&body?.into_inner().role)
        .ok_or_else(|| ApiError::InvalidRequest("role must be user or admin".into()))?;
    let id = user_id(&path)?;
    state
        .service
        .admin_set_role(&admin.0, id, role, &client.0)
        .await
        .map_err(ApiError::from)?;
    Ok(HttpResponse::NoContent().finish())
}

/// Mail the account a new verification code (an account not verified yet).
#[utoipa::path(post, path = "/admin/users/{id}/resend-verification", tag = "admin",
    params(("id" = uuid::Uuid, Path, description = "The account's id")),
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 202, body = AcceptedResponse, description = "A code is on its way"),
        (status = 401, body = ErrorBody, description = "`unauthenticated`"),
        (status = 403, body = ErrorBody, description = "`forbidden` or `reauthentication_required`"),
        (status = 404, body = ErrorBody, description = "`not_found`: no such account"),
        (status = 409, body = ErrorBody, description = "`already_verified`"),
        (status = 429, body = ErrorBody, description = "`too_many_requests`: the address's mail cooldown is running (a code was mailed moments ago; nothing is sent) or a rate limit is spent",
            headers(("Retry-After" = u64, description = "Seconds until a code can be mailed again"))),
    ))]
pub async fn resend_verification(
    state: web::Data<AppState>,
    admin: AdminSession,
    client: Client,
    path: web::Path<String>,
) -> Result {
    let id = user_id(&path)?;
    state
        .service
        .admin_resend_verification(&admin.0, id, &client.0)
        .await?;
    Ok(HttpResponse::Accepted().json(AcceptedResponse {
        status: "accepted",
        message: "A new verification code is on its way.",
    }))
}

/// End every session of the account (ASVS 7.4.5).
#[utoipa::path(delete, path = "/admin/users/{id}/sessions", tag = "admin",
    params(("id" = uuid::Uuid, Path, description = "The account's id")),
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, body = RevokedResponse, description = "Every session ended"),
        (status = 401, body = ErrorBody, description = "`unauthenticated`"),
        (status = 403, body = ErrorBody, description = "`forbidden` or `reauthentication_required`"),
        (status = 404, body = ErrorBody, description = "`not_found`: no such account"),
    ))]
pub async fn revoke_all(
    state: web::Data<AppState>,
    admin: AdminSession,
    client: Client,
    path: web::Path<String>,
) -> Result {
    let id = user_id(&path)?;
    let revoked = state
        .service
        .admin_revoke_all(&admin.0, id, &client.0)
        .await?;
    Ok(no_store().json(RevokedResponse { revoked }))
}

/// End one session of the account.
#[utoipa::path(delete, path = "/admin/users/{id}/sessions/{session_id}", tag = "admin", operation_id = "admin_revoke_session",
    params(
        ("id" = uuid::Uuid, Path, description = "The account's id"),
        ("session_id" = uuid::Uuid, Path, description = "The session's public id"),
    ),
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 204, description = "Ended"),
        (status = 401, body = ErrorBody, description = "`unauthenticated`"),
        (status = 403, body = ErrorBody, description = "`forbidden` or `reauthentication_required`"),
        (status = 404, body = ErrorBody, description = "`not_found`: no such session of this account"),
    ))]
pub async fn revoke_session(
    state: web::Data<AppState>,
    admin: AdminSession,
    client: Client,
    path: web::Path<(String, String)>,
) -> Result {
    let (id, session_id) = path.into_inner();
    let id = user_id(&id)?;
    let session_id = SessionId::parse(&session_id).ok_or(ApiError::NotFound)?;
    state
        .service
        .admin_revoke_session(&admin.0, id, session_id, &client.0)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Turn the account's two-factor authentication off (its owner lost the authenticator and the
/// recovery codes): every session of the account ends, the owner is mailed, and the reset is
/// recorded in the account's security history.
#[utoipa::path(delete, path = "/admin/users/{id}/mfa", tag = "admin",
    params(("id" = uuid::Uuid, Path, description = "The account's id")),
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 204, description = "Two-factor authentication is off; the owner logs in with the password alone"),
        (status = 401, body = ErrorBody, description = "`unauthenticated`"),
        (status = 403, body = ErrorBody, description = "`forbidden` or `reauthentication_required`"),
        (status = 404, body = ErrorBody, description = "`not_found`: no such account, or it has two-factor authentication off"),
        (status = 409, body = ErrorBody, description = "`own_account`: the administrator's own account (turn it off with `DELETE /me/mfa/totp`)"),
    ))]
pub async fn reset_mfa(
    state: web::Data<AppState>,
    admin: AdminSession,
    client: Client,
    path: web::Path<String>,
) -> Result {
    let id = user_id(&path)?;
    state
        .service
        .admin_reset_mfa(&admin.0, id, &client.0)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The account's security history, newest first, a page at a time (as `GET /me/events` shows
/// it to its owner), including what administrators did to it. An account deleted lately still
/// has its history until it ages out.
#[utoipa::path(get, path = "/admin/users/{id}/events", tag = "admin",
    params(("id" = uuid::Uuid, Path, description = "The account's id"), crate::events::EventsQuery),
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, body = crate::events::EventsResponse, description = "A page of the account's security events"),
        (status = 400, body = ErrorBody, description = "`invalid_request`: a malformed `limit` or `cursor`"),
        (status = 401, body = ErrorBody, description = "`unauthenticated`"),
        (status = 403, body = ErrorBody, description = "`forbidden` or `reauthentication_required`"),
        (status = 404, body = ErrorBody, description = "`not_found`: the id is not a UUID"),
    ))]
pub async fn user_events(
    state: web::Data<AppState>,
    admin: AdminSession,
    path: web::Path<String>,
    // Wrapped so that a malformed query string gets the JSON 400 of every other bad input.
    query: std::result::Result<web::Query<crate::events::EventsQuery>, actix_web::Error>,
) -> Result {
    let id = user_id(&path)?;
    let query = query.map_err(|e| ApiError::InvalidRequest(e.to_string()))?;
    let (after, limit) = query.into_inner().try_into_domain()?;
    let page = state
        .service
        .admin_security_events(&admin.0, id, after, limit)
        .await?;
    Ok(no_store().json(crate::events::EventsResponse {
        events: page
            .events
            .iter()
            .map(crate::events::SecurityEventDto::from)
            .collect(),
        next_cursor: page.next.map(|c| c.encode()),
    }))
}

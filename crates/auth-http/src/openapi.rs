//! The OpenAPI 3.1 document, generated from the handlers and DTOs.
//!
//! Each handler's `#[utoipa::path]` declares the answers of its own operation. The answers
//! that come from the layers every operation of a kind goes through (the JSON body parser, the
//! session extractor and its cross-site check, the request deadline, the dependencies) are
//! declared once, in [`SharedResponses`], and added to every operation they apply to. The API
//! tests check every answer they get against this document (`tests/api/conformance.rs`).

use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{
    Content, Header, HeaderBuilder, ObjectBuilder, PathItem, Ref, RefOr, Response, ResponseBuilder,
    SecurityRequirement, Type,
};
use utoipa::{Modify, OpenApi};

use crate::dto::*;
use crate::error::{ErrorBody, ErrorCode, ErrorDetail};
use crate::routes;

/// The API document served at `/openapi.json` and rendered at `/docs`.
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "SecureAuth",
        description = "Email + password authentication with server-side, revocable sessions."
    ),
    servers((url = "/", description = "The server that serves this document")),
    paths(
        routes::signup,
        routes::verify_otp,
        routes::resend_otp,
        routes::login,
        routes::request_login_code,
        routes::verify_login_code,
        routes::me,
        routes::me_post,
        routes::delete_account,
        routes::logout,
        routes::logout_all,
        routes::list_sessions,
        routes::revoke_session,
        routes::change_password,
        routes::change_email,
        routes::confirm_email_change,
        routes::forgot_password,
        routes::reset_password,
        routes::health,
        routes::ready,
        routes::report_bounce,
        crate::mfa::mfa_status,
        crate::mfa::enrol_totp,
        crate::mfa::confirm_totp,
        crate::mfa::regenerate_recovery_codes,
        crate::mfa::disable_totp,
        crate::mfa::login_mfa,
        crate::passkeys::registration_options,
        crate::passkeys::register,
        crate::passkeys::list,
        crate::passkeys::rename,
        crate::passkeys::delete,
        crate::passkeys::login_options,
        crate::passkeys::login,
        crate::passkeys::second_step_options,
        crate::passkeys::second_step,
        crate::events::me_events,
        routes::token,
        routes::jwks,
        routes::token_metadata,
        crate::admin::reauth,
        crate::admin::list_users,
        crate::admin::get_user,
        crate::admin::delete_user,
        crate::admin::disable_user,
        crate::admin::enable_user,
        crate::admin::set_role,
        crate::admin::resend_verification,
        crate::admin::revoke_all,
        crate::admin::revoke_session,
        crate::admin::reset_mfa,
        crate::admin::user_events,
        crate::webhooks::create_webhook,
        crate::webhooks::list_webhooks,
        crate::webhooks::delete_webhook,
        crate::webhooks::webhook_deliveries,
    ),
    components(schemas(
        SignupRequest, VerifyOtpRequest, EmailRequest, LoginRequest, LoginCodeVerifyRequest, Transport,
        ChangePasswordRequest, ChangeEmailRequest, ConfirmEmailChangeRequest, DeleteAccountRequest, ResetPasswordRequest, UserDto, UserResponse, LoginSession,
        LoginResponse, MeSession, MeResponse, SessionDto, SessionsResponse, AcceptedResponse,
        HealthResponse, ReadyResponse, OutboxReport, BounceRequest, BounceKind, BounceResponse,
        TokenResponse, JwksResponse, crate::tokens::PublicJwk, TokenMetadata,
        ErrorBody, ErrorDetail, ErrorCode, MfaStatusResponse, MfaRequiredResponse, LoginAnswer, LoginMfaRequest,
        TotpEnrolRequest, TotpEnrolResponse, TotpConfirmRequest, RecoveryCodesResponse, MfaManageRequest,
        crate::events::EventsResponse, crate::events::SecurityEventDto,
        crate::admin::AdminReauthRequest, crate::admin::AdminReauthResponse, crate::admin::AdminUserDto,
        crate::admin::AdminUsersResponse, crate::admin::AdminUserResponse, crate::admin::RevokedResponse,
        crate::admin::SetRoleRequest, crate::admin::MailSuppressionDto,
        crate::webhooks::CreateWebhookRequest, crate::webhooks::WebhookDto,
        crate::webhooks::CreatedWebhookResponse, crate::webhooks::WebhooksResponse,
        crate::webhooks::DeliveryDto, crate::webhooks::DeliveriesResponse,
        crate::passkeys::PasskeyCeremonyResponse, crate::passkeys::PasskeyResponse,
        crate::passkeys::PasskeyListResponse, crate::passkeys::PasskeyReauthRequest,
        crate::passkeys::PasskeyRegisterRequest, crate::passkeys::PasskeyRenameRequest,
        crate::passkeys::PasskeyLoginRequest, crate::passkeys::PasskeySecondStepOptionsRequest,
        crate::passkeys::PasskeySecondStepRequest,
    )),
    modifiers(&SecuritySchemes, &SharedResponses),
    tags(
        (name = "account", description = "Signup, verification, passwords"),
        (name = "session", description = "Login, sessions, logout"),
        (name = "operations", description = "Health and readiness"),
        (name = "admin", description = "Administration: accounts, their sessions, roles, second factors and security history; needs an administrator and a recent password (`POST /admin/reauth`)"),
        (name = "tokens", description = "Service tokens: short-lived access JWTs for a session, and the keys that verify them"),
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

/// Paths whose operations never answer with an error body of their own: `/health` answers as
/// long as the process runs, `/ready` reports its dependencies in its own body.
const PROBES: &[&str] = &["/health", "/ready"];

/// One answer shared by a kind of operation: its status, the name under which it is declared
/// in `components.responses`, and the response.
struct Shared {
    status: &'static str,
    name: &'static str,
    response: Response,
}

/// The answers of the layers around the handlers, declared once in `components.responses`:
///
/// - every operation: 408 `request_timeout` (the request deadline, `crate::server`), and 400
///   for a request that is not valid HTTP (the HTTP parser; no body);
/// - every operation with a JSON body: 400 `invalid_request`, 413, 415 (the body parser,
///   `crate::startup`);
/// - every operation that takes a session (`bearer` or `cookie`): 401 `unauthenticated` with
///   `WWW-Authenticate`; a state-changing one also 403 `cross_site_request` (the session
///   extractor, `crate::extract`);
/// - every operation but the probes: 500 and 503 `service_unavailable`.
///
/// An operation that declares a status itself keeps its own answer, which gains the shared
/// one's description and headers. Every 429 and 503 declares `Retry-After` (set by
/// [`crate::error::ApiError`]); an operation without a security requirement gets
/// `security: []`, saying it is public.
struct SharedResponses;

impl SharedResponses {
    fn body() -> [Shared; 3] {
        [
            Shared {
                status: "400",
                name: "InvalidRequest",
                response: error_response(
                    "`invalid_request`: the body is not JSON, or a field is missing or has the \
                     wrong type or value. (A request that is not valid HTTP, say with a control \
                     character in a header, is refused by the HTTP parser before this service \
                     reads it: 400 with an empty body, and the connection is closed.)",
                ),
            },
            Shared {
                status: "413",
                name: "PayloadTooLarge",
                response: error_response(&format!(
                    "`payload_too_large`: the body is larger than {} KiB",
                    crate::startup::MAX_BODY_BYTES / 1024
                )),
            },
            Shared {
                status: "415",
                name: "UnsupportedMediaType",
                response: error_response(
                    "`unsupported_media_type`: the body is not sent as `application/json`",
                ),
            },
        ]
    }

    fn unauthenticated() -> Shared {
        let mut response = error_response(
            "`unauthenticated`: no session token, or an unknown, expired, idle or revoked one",
        );
        response
            .headers
            .insert("WWW-Authenticate".into(), string_header("`Bearer`"));
        Shared {
            status: "401",
            name: "Unauthenticated",
            response,
        }
    }

    fn cross_site() -> Shared {
        Shared {
            status: "403",
            name: "CrossSiteRequest",
            response: error_response(
                "`cross_site_request`: a request authenticated by the session cookie came from \
                 a page of another origin (neither this site nor one of `ALLOWED_ORIGINS`); \
                 nothing changed. Requests with a bearer token are not checked so",
            ),
        }
    }

    /// The HTTP parser's refusal of a request that is not valid HTTP (a control character in
    /// a header, say): before any handler or JSON error body, so it has none.
    fn malformed_http() -> Shared {
        Shared {
            status: "400",
            name: "MalformedHttp",
            response: ResponseBuilder::new()
                .description(
                    "the request is not valid HTTP (say, a control character in a header): the \
                     HTTP parser refuses it before this service reads it, with an empty body, \
                     and closes the connection",
                )
                .build(),
        }
    }

    fn request_timeout() -> Shared {
        Shared {
            status: "408",
            name: "RequestTimeout",
            response: error_response(
                "`request_timeout`: the request was not received and answered within \
                 `REQUEST_TIMEOUT`; the connection is closed (`Connection: close`)",
            ),
        }
    }

    /// A connection past its client's share (`MAX_CONNECTIONS_PER_CLIENT`), answered before
    /// any of its request is read: it can meet any operation.
    fn too_many_connections() -> Shared {
        let mut response = error_response(
            "`too_many_requests`: this client (its IP address, or its IPv6 prefix) already has \
             `MAX_CONNECTIONS_PER_CLIENT` connections open; the new connection is answered at \
             once and closed (`Connection: close`). Close idle connections, or retry after \
             `Retry-After`",
        );
        response.headers.insert("Retry-After".into(), retry_after());
        Shared {
            status: "429",
            name: "TooManyConnections",
            response,
        }
    }

    fn failures() -> [Shared; 2] {
        [
            Shared {
                status: "500",
                name: "Internal",
                response: error_response(
                    "`internal`: an unexpected failure; the cause is logged, never sent",
                ),
            },
            Shared {
                status: "503",
                name: "ServiceUnavailable",
                response: {
                    let mut response = error_response(
                        "`service_unavailable`: a dependency is down or overloaded (the user \
                         store, the session store, the password hasher); try again after \
                         `Retry-After`",
                    );
                    response.headers.insert("Retry-After".into(), retry_after());
                    response
                },
            },
        ]
    }
}

impl Modify for SharedResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let bearer = SecurityRequirement::new("bearer", Vec::<String>::new());
        let cookie = SecurityRequirement::new("cookie", Vec::<String>::new());
        let mut used = Vec::new();
        for (path, item) in openapi.paths.paths.iter_mut() {
            let probe = PROBES.contains(&path.as_str());
            for (safe, op) in operations(item) {
                let requirements = op.security.get_or_insert_with(Vec::new);
                let by_session = requirements.contains(&bearer) || requirements.contains(&cookie);
                let by_cookie = requirements.contains(&cookie);
                let mut shared = vec![
                    SharedResponses::request_timeout(),
                    SharedResponses::too_many_connections(),
                ];
                if op.request_body.is_some() {
                    shared.extend(SharedResponses::body());
                } else {
                    shared.push(SharedResponses::malformed_http());
                }
                if by_session {
                    shared.push(SharedResponses::unauthenticated());
                }
                if by_cookie && !safe {
                    shared.push(SharedResponses::cross_site());
                }
                if !probe {
                    shared.extend(SharedResponses::failures());
                }
                for s in shared {
                    add(op, &s);
                    used.push(s);
                }
                for (status, response) in &mut op.responses.responses {
                    if let ("429" | "503", RefOr::T(r)) = (status.as_str(), response) {
                        r.headers
                            .entry("Retry-After".into())
                            .or_insert_with(retry_after);
                    }
                }
            }
        }
        let components = openapi.components.get_or_insert_with(Default::default);
        for s in used {
            components
                .responses
                .entry(s.name.into())
                .or_insert(RefOr::T(s.response));
        }
    }
}

/// The operations of a path, each with whether its method is safe (no state change: the
/// cross-site check does not apply).
fn operations(item: &mut PathItem) -> impl Iterator<Item = (bool, &mut Operation)> {
    [
        (true, &mut item.get),
        (true, &mut item.head),
        (true, &mut item.options),
        (false, &mut item.post),
        (false, &mut item.put),
        (false, &mut item.patch),
        (false, &mut item.delete),
    ]
    .into_iter()
    .filter_map(|(safe, op)| op.as_mut().map(|op| (safe, op)))
}

/// Declares `shared` on `op`: a reference to the shared answer, or, where the operation has
/// an answer of its own for that status, the shared description and headers added to it.
fn add(op: &mut Operation, shared: &Shared) {
    match op.responses.responses.get_mut(shared.status) {
        Some(RefOr::T(own)) => {
            if own.description.is_empty() {
                own.description.clone_from(&shared.response.description);
            } else if !own.description.contains(&shared.response.description) {
                own.description = format!("{}\n\n{}", own.description, shared.response.description);
            }
            for (name, header) in &shared.response.headers {
                own.headers
                    .entry(name.clone())
                    .or_insert_with(|| header.clone());
            }
        }
        Some(RefOr::Ref(_)) => {}
        None => {
            op.responses.responses.insert(
                shared.status.into(),
                RefOr::Ref(Ref::from_response_name(shared.name)),
            );
        }
    }
}

/// An answer with the error body.
fn error_response(description: &str) -> Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            Content::new(Some(Ref::from_schema_name("ErrorBody"))),
        )
        .build()
}

fn string_header(description: &str) -> Header {
    HeaderBuilder::new()
        .schema(ObjectBuilder::new().schema_type(Type::String))
        .description(Some(description))
        .build()
}

fn retry_after() -> Header {
    HeaderBuilder::new()
        .schema(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(0)),
        )
        .description(Some(
            "Seconds to wait before trying again (with `too_many_requests` and \
             `service_unavailable`)",
        ))
        .build()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use serde_json::Value;

    use super::*;

    fn document() -> Value {
        serde_json::to_value(ApiDoc::openapi()).unwrap()
    }

    /// `(method path, operation)` of every operation.
    fn operations(doc: &Value) -> Vec<(String, &Value)> {
        let mut all = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                if ["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                    all.push((format!("{} {path}", method.to_uppercase()), op));
                }
            }
        }
        all
    }

    /// The response `op` declares for `status`, with a `$ref` resolved.
    fn response<'d>(doc: &'d Value, op: &'d Value, status: &str) -> Option<&'d Value> {
        let r = op["responses"].get(status)?;
        match r.get("$ref").and_then(Value::as_str) {
            Some(reference) => {
                let name = reference.strip_prefix("#/components/responses/").unwrap();
                Some(doc["components"]["responses"].get(name).expect(reference))
            }
            None => Some(r),
        }
    }

    #[test]
    fn every_operation_declares_the_answers_of_the_layers_it_goes_through() {
        let doc = document();
        for (name, op) in operations(&doc) {
            let has = |status| response(&doc, op, status).is_some();
            assert!(has("408"), "{name}: the request deadline");
            if op.get("requestBody").is_some() {
                for status in ["400", "413", "415"] {
                    assert!(has(status), "{name}: {status} of the body parser");
                }
            }
            let security = op["security"].as_array().expect("security declared");
            let by = |scheme: &str| security.iter().any(|r| r.get(scheme).is_some());
            if by("bearer") || by("cookie") {
                let unauthenticated = response(&doc, op, "401").expect("401");
                assert!(
                    unauthenticated["headers"].get("WWW-Authenticate").is_some(),
                    "{name}"
                );
            }
            if by("cookie") && !name.starts_with("GET ") {
                let refused = response(&doc, op, "403").expect("403");
                let description = refused["description"].as_str().unwrap();
                assert!(description.contains("`cross_site_request`"), "{name}");
            }
        }
    }

    #[test]
    fn public_operations_say_they_need_no_credentials() {
        let doc = document();
        for (path, method) in [("/signup", "post"), ("/login", "post"), ("/health", "get")] {
            assert_eq!(
                doc["paths"][path][method]["security"],
                serde_json::json!([]),
                "{method} {path}"
            );
        }
        assert!(!doc["servers"].as_array().unwrap().is_empty());
    }

    #[test]
    fn rate_limits_and_outages_declare_retry_after() {
        let doc = document();
        for (name, op) in operations(&doc) {
            for status in ["429", "503"] {
                if let Some(r) = response(&doc, op, status) {
                    assert!(
                        r["headers"].get("Retry-After").is_some(),
                        "{name}: {status}"
                    );
                }
            }
        }
    }

    #[test]
    fn every_answer_is_described() {
        let doc = document();
        for (name, op) in operations(&doc) {
            for status in op["responses"].as_object().unwrap().keys() {
                let r = response(&doc, op, status).unwrap();
                let description = r["description"].as_str().unwrap_or_default();
                assert!(!description.trim().is_empty(), "{name}: {status}");
            }
        }
    }

    /// The constraints the document states are the domain's.
    #[test]
    fn request_constraints_are_the_domains() {
        let doc = document();
        let schemas = &doc["components"]["schemas"];
        for (schema, field) in [
            ("SignupRequest", "password"),
            ("ChangePasswordRequest", "new_password"),
            ("ResetPasswordRequest", "new_password"),
        ] {
            let p = &schemas[schema]["properties"][field];
            assert_eq!(
                p["minLength"],
                auth_core::DEFAULT_MIN_PASSWORD_CHARS,
                "{schema}.{field}"
            );
            assert_eq!(
                p["maxLength"],
                auth_core::MAX_PASSWORD_CHARS,
                "{schema}.{field}"
            );
        }
        for schema in [
            "VerifyOtpRequest",
            "LoginCodeVerifyRequest",
            "ResetPasswordRequest",
        ] {
            let otp = &schemas[schema]["properties"]["otp"];
            assert_eq!(otp["pattern"], "^[0-9]{6}$", "{schema}");
        }
    }

    /// The server omits these fields rather than sending `null`: a strict client must not be
    /// told they may be `null`.
    #[test]
    fn omitted_fields_are_optional_but_never_null() {
        let doc = document();
        for (schema, field) in [
            ("ErrorDetail", "fields"),
            ("LoginSession", "token"),
            ("LoginResponse", "device_token"),
            ("SessionsResponse", "next_cursor"),
            ("ReadyResponse", "mail_outbox"),
        ] {
            let s = &doc["components"]["schemas"][schema];
            let property = &s["properties"][field];
            assert!(property.is_object(), "{schema}.{field}");
            assert!(
                !property.to_string().contains("\"null\""),
                "{schema}.{field} is nullable: {property}"
            );
            let required = s["required"].as_array().cloned().unwrap_or_default();
            assert!(!required.contains(&field.into()), "{schema}.{field}");
        }
    }
}

//! [`Application`]: binds the listener and runs the actix-web server.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::{Server, Service as _};
use actix_web::error::{JsonPayloadError, PathError, PayloadError};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::DefaultHeaders;
use actix_web::{web, App, HttpMessage, HttpServer};
use auth_core::AuthService;
use tracing_actix_web::{RequestId, TracingLogger};
use utoipa::OpenApi;

use crate::error::ApiError;
use crate::openapi::ApiDoc;
use crate::routes;
use crate::settings::Settings;
use crate::state::{AppState, ClientIpPolicy, CookiePolicy, OriginPolicy};
use crate::telemetry::RequestSpan;

/// Largest accepted request body.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// A bound, ready-to-run server.
pub struct Application {
    port: u16,
    server: Server,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("port", &self.port)
            .finish()
    }
}

impl Application {
    /// Builds the adapters from `settings`, then the server (port 0 picks a free port).
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let service = crate::wiring::build_service(&settings).await?;
        Self::with_service(&settings, Arc::new(service))
    }

    /// Builds the server around an existing service (any adapters; the service brings its
    /// own rate limiter and hasher).
    pub fn with_service(settings: &Settings, service: Arc<AuthService>) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(settings.bind_addr)?;
        let port = listener.local_addr()?.port();
        let state = web::Data::new(AppState {
            service,
            cookie: CookiePolicy {
                secure: settings.cookie_secure,
            },
            origins: OriginPolicy {
                allowed: settings.allowed_origins.clone(),
                secure_cookie: settings.cookie_secure,
            },
            client_ip: ClientIpPolicy {
                trusted_proxies: settings.trusted_proxies.clone(),
            },
        });
        let openapi = ApiDoc::openapi();
        let hsts = settings.cookie_secure;
        let mut server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .app_data(
                    web::JsonConfig::default()
                        .limit(MAX_BODY_BYTES)
                        .content_type_required(true)
                        .error_handler(|e, _| json_error(e).into()),
                )
                .app_data(web::PayloadConfig::new(MAX_BODY_BYTES))
                .app_data(web::PathConfig::default().error_handler(|e: PathError, _| {
                    ApiError::InvalidRequest(e.to_string()).into()
                }))
                .configure(routes::configure)
                .configure(crate::ui::configure)
                .service(web::resource("/docs").route(web::get().to(|| async {
                    actix_web::HttpResponse::Found()
                        .insert_header(("Location", "/docs/"))
                        .finish()
                })))
                .service(crate::docs::swagger_ui(openapi.clone()))
                .default_service(web::to(routes::not_found))
                .wrap(security_headers(hsts))
                .wrap(actix_web::middleware::from_fn(
                    crate::docs::content_security_policy,
                ))
                .wrap_fn(|req, srv| {
                    let request_id = req.extensions().get::<RequestId>().copied();
                    let fut = srv.call(req);
                    async move {
                        let mut res = fut.await?;
                        if let Some(id) = request_id {
                            if let Ok(v) = HeaderValue::from_str(&id.to_string()) {
                                res.headers_mut()
                                    .insert(HeaderName::from_static("x-request-id"), v);
                            }
                        }
                        Ok(res)
                    }
                })
                .wrap(TracingLogger::<RequestSpan>::new())
        })
        .listen(listener)?
        .shutdown_timeout(30);
        if let Some(workers) = settings.workers {
            server = server.workers(workers);
        }
        Ok(Self {
            port,
            server: server.run(),
        })
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Runs until SIGINT/SIGTERM; in-flight requests finish (up to 30 s) before it returns.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }

    /// A handle to stop the server from elsewhere (tests).
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }
}

/// `Strict-Transport-Security` sent when the session cookie is `Secure` (the service is then
/// served over HTTPS): browsers refuse plain HTTP to this host, and its subdomains, for a year.
pub const HSTS: &str = "max-age=31536000; includeSubDomains";

fn security_headers(hsts: bool) -> DefaultHeaders {
    let headers = DefaultHeaders::new()
        .add(("X-Content-Type-Options", "nosniff"))
        .add(("Referrer-Policy", "no-referrer"))
        .add(("X-Frame-Options", "DENY"))
        .add(("Content-Security-Policy", "frame-ancestors 'none'"))
        .add(("Cache-Control", "no-store"));
    if hsts {
        headers.add(("Strict-Transport-Security", HSTS))
    } else {
        headers
    }
}

/// Maps body-parsing failures to the API's errors, never echoing the body (it may hold a
/// password).
fn json_error(e: JsonPayloadError) -> ApiError {
    match e {
        JsonPayloadError::OverflowKnownLength { .. } | JsonPayloadError::Overflow { .. } => {
            ApiError::PayloadTooLarge
        }
        JsonPayloadError::Payload(PayloadError::Overflow) => ApiError::PayloadTooLarge,
        JsonPayloadError::ContentType => ApiError::UnsupportedMediaType,
        JsonPayloadError::Deserialize(e) => {
            let msg = e.to_string();
            let detail = if msg.starts_with("missing field") || msg.starts_with("unknown variant") {
                msg
            } else if e.is_eof() || e.is_syntax() {
                format!(
                    "the body is not valid JSON (line {}, column {})",
                    e.line(),
                    e.column()
                )
            } else {
                format!(
                    "a field has the wrong type or value (line {}, column {})",
                    e.line(),
                    e.column()
                )
            };
            ApiError::InvalidRequest(detail)
        }
        other => ApiError::InvalidRequest(other.to_string()),
    }
}

//! [`Application`]: binds the listener and runs the actix-web server.

use std::sync::Arc;
use std::time::Duration;

use actix_service::{
    apply_fn_factory, fn_service, map_config, IntoServiceFactory as _, ServiceFactoryExt as _,
};
use actix_web::dev::{AppConfig, Server, Service as _};
use actix_web::error::{JsonPayloadError, PathError, PayloadError};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::DefaultHeaders;
use actix_web::{web, App, HttpMessage};
use auth_core::AuthService;
use tracing_actix_web::{RequestId, TracingLogger};
use utoipa::OpenApi;

use crate::error::ApiError;
use anyhow::Context as _;

use crate::mail::{CourierTask, MailOutbox};
use crate::metrics::Metrics;
use crate::openapi::ApiDoc;
use crate::routes;
use crate::server::{self, ConnDeadline, DeadlineIo};
use crate::settings::{MailDelivery, Settings};
use crate::state::{AppState, ClientIpPolicy, CookiePolicy, OriginPolicy};
use crate::telemetry::RequestSpan;

/// How long a stopping server waits for its mail courier's round; what it has not reported
/// by then is taken over by another instance when its lease runs out.
pub const COURIER_STOP_GRACE: Duration = Duration::from_secs(10);

/// How long a stopping server waits for the security events of its last requests to be
/// written (and their webhooks queued).
pub const EVENT_DRAIN_GRACE: Duration = Duration::from_secs(5);

/// Largest accepted request body.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// A bound, ready-to-run server.
pub struct Application {
    port: u16,
    server: Server,
    courier: Option<CourierTask>,
    /// This instance's webhook courier.
    webhook_courier: Option<CourierTask>,
    /// The security-event writer, drained on the way out.
    events: Option<crate::events::EventDrain>,
    /// The metrics listener (`METRICS_ADDR`), its port, and the registry it renders.
    metrics: Option<(u16, Server, Metrics)>,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("port", &self.port)
            .field("metrics_port", &self.metrics_port())
            .finish()
    }
}

impl Application {
    /// Builds the adapters from `settings`, then the server (port 0 picks a free port).
    /// Starts this instance's mail courier too (not with `MAIL_DELIVERY=inline`, which
    /// queues nothing).
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let (service, outbox, probes, background) =
            crate::wiring::build_observed_service(&settings).await?;
        let metrics = match settings.metrics.addr {
            Some(_) => Some(Metrics::new(probes)?),
            None => None,
        };
        let service = Arc::new(service);
        // Ends by itself once the server (the last holder of the service) is gone.
        crate::events::spawn_pruner(Arc::downgrade(&service), settings.events.retention());
        let mut app = Self::with_parts(&settings, service, Some(outbox.clone()), metrics.clone())?;
        if settings.mail.delivery == MailDelivery::Outbox {
            app.courier = Some(outbox.spawn_observed_courier(metrics.clone()));
        }
        app.webhook_courier = Some(background.webhooks.spawn_courier(metrics));
        app.events = Some(background.events);
        Ok(app)
    }

    /// Builds the server around an existing service (any adapters; the service brings its
    /// own rate limiter and hasher, and its mailer delivers however it likes).
    /// With `METRICS_ADDR`, its requests are counted (the gauges of adapters it was not built
    /// with are absent).
    pub fn with_service(settings: &Settings, service: Arc<AuthService>) -> anyhow::Result<Self> {
        let metrics = match settings.metrics.addr {
            Some(_) => Some(Metrics::new(crate::metrics::Probes::default())?),
            None => None,
        };
        Self::with_parts(settings, service, None, metrics)
    }

    fn with_parts(
        settings: &Settings,
        service: Arc<AuthService>,
        outbox: Option<MailOutbox>,
        metrics: Option<Metrics>,
    ) -> anyhow::Result<Self> {
        let listener = server::bind(
            settings.http.bind_addr,
            server::LISTEN_BACKLOG,
            settings.http.send_buffer,
        )?;
        // Bound before the API's server starts, so a taken port stops the start-up.
        let metrics_server = match (settings.metrics.addr, &metrics) {
            (Some(addr), Some(metrics)) => {
                let listener = server::bind(addr, 128, None)
                    .with_context(|| format!("binding METRICS_ADDR {addr}"))?;
                let port = listener.local_addr()?.port();
                tracing::info!(addr = %addr.ip(), port, "metrics: GET /metrics (Prometheus)");
                let token = settings.metrics.token.clone();
                Some((
                    port,
                    crate::metrics::serve(listener, metrics.clone(), token)?,
                    metrics.clone(),
                ))
            }
            _ => None,
        };
        let metrics = metrics.map(web::Data::new);
        let local_addr = listener.local_addr()?;
        let port = local_addr.port();
        let tokens = crate::tokens::TokenIssuer::from_settings(&settings.tokens)?.map(Arc::new);
        match &tokens {
            Some(t) => tracing::info!(
                kid = t.signing_kid(),
                keys = t.jwks().len(),
                issuer = %t.issuer,
                audience = %t.audience,
                ttl_secs = t.ttl.as_secs(),
                "service tokens: POST /token signs EdDSA access tokens; keys at /.well-known/jwks.json"
            ),
            None => tracing::info!(
                "service tokens: off (set JWT_SIGNING_KEYS and JWT_ISSUER to turn them on)"
            ),
        }
        let state = web::Data::new(AppState {
            service,
            cookie: CookiePolicy {
                secure: settings.http.cookie_secure,
            },
            origins: OriginPolicy {
                allowed: settings.http.allowed_origins.clone(),
                secure_cookie: settings.http.cookie_secure,
            },
            client_ip: ClientIpPolicy {
                trusted_proxies: settings.http.trusted_proxies.clone(),
            },
            outbox,
            bounce_token: settings.mail.outbox.bounce_token.clone(),
            ops_token: settings.mail.outbox.ops_token.clone(),
            uniform_answer_time: settings.auth.uniform_answer_time,
            tokens,
            session_ip_prefix: (
                settings.auth.devices.ipv4_prefix,
                settings.auth.devices.ipv6_prefix,
            ),
        });
        let openapi = ApiDoc::openapi();
        let hsts = settings.http.cookie_secure;
        let request_timeout = settings.http.request_timeout;
        let app =
            move || {
                let mut app = App::new().app_data(state.clone());
                if let Some(metrics) = &metrics {
                    app = app.app_data(metrics.clone());
                }
                app.app_data(
                    web::JsonConfig::default()
                        .limit(MAX_BODY_BYTES)
                        .content_type_required(true)
                        .error_handler(|e, _| json_error(e).into()),
                )
                .app_data(web::PayloadConfig::new(MAX_BODY_BYTES))
                .app_data(web::QueryConfig::default().error_handler(|e, _| {
                    ApiError::InvalidRequest(format!("query string: {e}")).into()
                }))
                .app_data(web::PathConfig::default().error_handler(|e: PathError, _| {
                    ApiError::InvalidRequest(e.to_string()).into()
                }))
                .configure(routes::configure)
                .configure(crate::admin::configure)
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
                .wrap(actix_web::middleware::from_fn(crate::metrics::track))
                .wrap(TracingLogger::<RequestSpan>::new())
            };
        let mut builder = actix_server::Server::build()
            .max_concurrent_connections(settings.http.max_connections)
            .backlog(server::LISTEN_BACKLOG.unsigned_abs())
            .shutdown_timeout(settings.http.shutdown_timeout.as_secs());
        if let Some(workers) = settings.http.workers {
            builder = builder.workers(workers);
        }
        let connections = crate::connections::ClientConnections::new(
            settings.http.max_connections_per_client,
            settings.auth.throttle.ipv6_prefix_len,
            &settings.http.trusted_proxies,
        );
        let request_rate = settings.http.max_requests_per_client.map(|per_second| {
            crate::request_rate::ClientRequestRate::new(
                per_second,
                settings.auth.throttle.ipv6_prefix_len,
                &settings.http.trusted_proxies,
            )
        });
        let shutdown = builder.graceful_shutdown_signal();
        let builder = builder.listen("auth-http", listener, move || {
            let request_rate = request_rate.clone();
            let shutdown = shutdown.clone();
            let http = actix_http::HttpService::build()
                .keep_alive(actix_http::KeepAlive::Timeout(Duration::from_secs(5)))
                // Only the first head of a connection; DeadlineIo bounds every request.
                .client_request_timeout(request_timeout)
                .client_disconnect_timeout(Duration::from_secs(1))
                .local_addr(local_addr)
                .graceful_shutdown_signal(move || {
                    let signal = shutdown.clone();
                    async move { signal.notified().await }
                })
                .on_connect_ext(|io: &DeadlineIo, ext| {
                    ext.insert(io.shared());
                })
                .h1(apply_fn_factory(
                    map_config(
                        app()
                            .into_factory()
                            .map_err(|err: actix_web::Error| err.error_response()),
                        move |()| AppConfig::default(),
                    ),
                    // Around the whole app: the deadline covers every layer of it, and a
                    // client past its request budget is answered before any of it.
                    move |req: actix_http::Request, app| {
                        let conn = req.conn_data::<Arc<ConnDeadline>>().cloned();
                        let refused = request_rate
                            .as_ref()
                            .and_then(|rate| rate.check(req.peer_addr().map(|a| a.ip())).err());
                        match refused {
                            None => futures::future::Either::Left(server::with_deadline(
                                app.call(req),
                                conn,
                                request_timeout,
                            )),
                            Some(wait) => {
                                crate::telemetry::count_refusal("requests_per_client");
                                if let Some(conn) = &conn {
                                    conn.response_done();
                                }
                                futures::future::Either::Right(futures::future::ok(
                                    crate::request_rate::too_many_requests(wait).into(),
                                ))
                            }
                        }
                    },
                ));
            let connections = connections.clone();
            fn_service(move |io: tokio::net::TcpStream| {
                let peer = io.peer_addr().ok();
                let slot = connections.admit(peer.map(|p| p.ip()));
                async move {
                    let Some(slot) = slot else {
                        crate::connections::refuse(io).await;
                        return Err(actix_http::error::DispatchError::Io(std::io::Error::other(
                            "too many connections from one client",
                        )));
                    };
                    Ok((DeadlineIo::new(io, request_timeout).holding(slot), peer))
                }
            })
            .and_then(http)
        })?;
        Ok(Self {
            port,
            server: builder.run(),
            courier: None,
            webhook_courier: None,
            events: None,
            metrics: metrics_server,
        })
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Runs until SIGINT/SIGTERM; in-flight requests finish (up to `SHUTDOWN_TIMEOUT`, after
    /// which every connection is cut) before it returns.
    /// The security events still queued are then written (up to `EVENT_DRAIN_GRACE`), and the
    /// mail and webhook couriers finish their rounds (up to `COURIER_STOP_GRACE` each).
    /// The metrics listener, when `METRICS_ADDR` is set, runs alongside and stops with it.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let metrics = self.metrics.map(|(_, server, metrics)| {
            let handle = server.handle();
            (handle, tokio::spawn(server), metrics.spawn_upkeep())
        });
        let result = self.server.await;
        if let Some((handle, task, upkeep)) = metrics {
            upkeep.abort();
            handle.stop(true).await;
            let _ = task.await;
        }
        // The events of the last requests first: their webhooks are queued as they are
        // written, and what is queued stays for the next start (or another instance).
        if let Some(events) = self.events {
            if !events.drain(EVENT_DRAIN_GRACE).await {
                tracing::warn!("security events still queued at shutdown were not written");
            }
        }
        if let Some(courier) = self.courier {
            courier.stop(COURIER_STOP_GRACE).await;
        }
        if let Some(courier) = self.webhook_courier {
            courier.stop(COURIER_STOP_GRACE).await;
        }
        result
    }

    /// The port of the metrics listener (`METRICS_ADDR`), if there is one.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics.as_ref().map(|(port, ..)| *port)
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

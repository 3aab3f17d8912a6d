//! Operator metrics: `GET /metrics` in the Prometheus text format, on a listener of its own
//! (`METRICS_ADDR`; off by default), never on the API's.
//!
//! - Requests are counted by method, route *pattern* (`/sessions/{id}`, never a concrete
//!   path) and status, with a latency histogram per route.
//! - Authentication outcomes (signups, verifications, logins, password resets, session
//!   revocations) are derived here from the route and the answer (status and API error
//!   code), so the domain stays free of I/O and of any metrics runtime.
//! - 503s are counted by the dependency that failed, 429s by the action refused.
//! - The hasher's workers and queue, the connection pools and the mail outbox are gauges read
//!   at scrape time; the outbox needs a database read, bounded by a timeout: a scrape answers
//!   while PostgreSQL is down, with `secureauth_mail_outbox_up 0` and the outbox gauges `NaN`.
//!
//! No label carries user data (addresses, ids, IPs, tokens): every label value comes from a
//! closed set or from the route table.
//!
//! Each [`Metrics`] has its own registry (not the process-wide recorder of the `metrics`
//! facade), so several servers in one process (tests, an embedding application) each count
//! their own requests.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{web, HttpResponse};
use auth_core::outbox::DeliveryReport;
use auth_core::Dependency;
use metrics::{counter, gauge, histogram, Unit};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};

use crate::error::{ApiError, ErrorCode};
use crate::mail::MailOutbox;

/// Latency buckets (seconds) of requests and of the hasher's queue: from a cached answer
/// to a request that ran into its deadline.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// How often the registry drains recorded latencies into its histograms between scrapes
/// (without it, a server nobody scrapes would keep every sample).
pub const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Longest a scrape waits for the outbox's numbers before it answers without them.
pub const OUTBOX_STATS_TIMEOUT: Duration = Duration::from_secs(2);

/// What the gauges are read from at scrape time; each part is optional (the embedded profile
/// has no connection pools, a service built elsewhere no hasher of ours).
#[derive(Clone, Default)]
pub struct Probes {
    /// The password hasher's pool.
    pub hasher: Option<auth_argon2::Argon2Hasher>,
    /// The PostgreSQL connection pool.
    pub postgres: Option<auth_postgres::PgPool>,
    /// The Redis store (its pool).
    pub redis: Option<auth_redis::RedisStore>,
    /// The mail outbox (its backlog).
    pub outbox: Option<MailOutbox>,
    /// The webhook queue (its backlog).
    pub webhooks: Option<std::sync::Arc<dyn auth_core::WebhookStore>>,
}

impl std::fmt::Debug for Probes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Probes")
            .field("hasher", &self.hasher.is_some())
            .field("postgres", &self.postgres.is_some())
            .field("redis", &self.redis.is_some())
            .field("outbox", &self.outbox.is_some())
            .field("webhooks", &self.webhooks.is_some())
            .finish()
    }
}

/// The registry of one server, and what its gauges are read from. Cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    probes: Probes,
    outbox_timeout: Duration,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("probes", &self.inner.probes)
            .finish_non_exhaustive()
    }
}

impl Metrics {
    /// A registry with every metric described; the hasher (if any) reports its queue waits
    /// into it from now on.
    pub fn new(probes: Probes) -> anyhow::Result<Self> {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full("secureauth_http_request_duration_seconds".into()),
                LATENCY_BUCKETS,
            )?
            .set_buckets_for_metric(
                Matcher::Full("secureauth_hasher_wait_seconds".into()),
                LATENCY_BUCKETS,
            )?
            .build_recorder();
        let handle = recorder.handle();
        let metrics = Self {
            inner: Arc::new(Inner {
                recorder,
                handle,
                probes,
                outbox_timeout: OUTBOX_STATS_TIMEOUT,
            }),
        };
        metrics.describe();
        if let Some(hasher) = &metrics.inner.probes.hasher {
            // The histogram handle only: the hasher must not keep the registry (and so
            // itself) alive.
            let waits = metrics.with(|| histogram!("secureauth_hasher_wait_seconds"));
            hasher.observe_waits(Arc::new(move |d| waits.record(d.as_secs_f64())));
        }
        Ok(metrics)
    }

    /// Runs `f` with this registry as the facade's recorder (on this thread, for `f` only).
    fn with<T>(&self, f: impl FnOnce() -> T) -> T {
        metrics::with_local_recorder(&self.inner.recorder, f)
    }

    fn describe(&self) {
        use metrics::{describe_counter, describe_gauge, describe_histogram};
        self.with(|| {
            describe_counter!(
                "secureauth_http_requests_total",
                "Requests answered, by method, route pattern and status"
            );
            describe_histogram!(
                "secureauth_http_request_duration_seconds",
                Unit::Seconds,
                "Time to answer a request, by method and route pattern"
            );
            describe_counter!(
                "secureauth_signups_total",
                "POST /signup answers by result (ok also for an address that has an account, with enumeration protection on)"
            );
            describe_counter!(
                "secureauth_verifications_total",
                "POST /verify-otp answers by result"
            );
            describe_counter!(
                "secureauth_logins_total",
                "Logins by way in (password, code, mfa, passkey, mfa_passkey) and result (ok, mfa_required, bad_credentials, bad_passkey, invalid_ceremony, unverified, throttled, locked, unavailable, invalid_request, ...)"
            );
            describe_counter!(
                "secureauth_password_resets_total",
                "Password resets by stage (requested, completed) and result"
            );
            describe_counter!(
                "secureauth_session_revocations_total",
                "Successful revocations by reason (logout, logout_all, session, password_change, password_reset, account_deleted, mfa_change)"
            );
            describe_counter!(
                "secureauth_rate_limited_total",
                "Requests refused with 429 by action (too_many_requests: a request budget; too_many_attempts: a code's attempts spent)"
            );
            describe_counter!(
                "secureauth_dependency_errors_total",
                "Requests answered 503 by the dependency that failed"
            );
            describe_gauge!(
                "secureauth_hasher_workers",
                "Password hasher worker threads"
            );
            describe_gauge!(
                "secureauth_hasher_busy_workers",
                "Password hasher workers running a hash now"
            );
            describe_gauge!(
                "secureauth_hasher_queued",
                "Password hashing calls waiting for a worker now"
            );
            describe_histogram!(
                "secureauth_hasher_wait_seconds",
                Unit::Seconds,
                "Time a hashing call waited for a worker"
            );
            describe_gauge!(
                "secureauth_pool_max_size",
                "Connection pool bound, by pool (postgres, redis)"
            );
            describe_gauge!(
                "secureauth_pool_size",
                "Open connections, by pool"
            );
            describe_gauge!(
                "secureauth_pool_available",
                "Idle connections, by pool"
            );
            describe_gauge!(
                "secureauth_pool_waiting",
                "Callers waiting for a connection, by pool"
            );
            describe_gauge!(
                "secureauth_mail_outbox_up",
                "1 when the last scrape could read the mail outbox, 0 when not (its gauges are then NaN)"
            );
            describe_gauge!(
                "secureauth_mail_outbox_pending",
                "Mail messages waiting for delivery"
            );
            describe_gauge!(
                "secureauth_mail_outbox_oldest_pending_seconds",
                Unit::Seconds,
                "Age of the oldest waiting message (0 when none waits)"
            );
            describe_gauge!(
                "secureauth_mail_outbox_dead",
                "Messages given up on (see `auth-http outbox list`)"
            );
            describe_gauge!(
                "secureauth_mail_outbox_suppressed_addresses",
                "Addresses suppressed after a bounce or complaint"
            );
            describe_counter!(
                "secureauth_mail_deliveries_total",
                "Delivery attempts of this instance's courier by result (sent, deferred, dead, suppressed, expired)"
            );
            describe_gauge!(
                "secureauth_webhook_pending",
                "Webhook deliveries waiting (NaN when the queue could not be read)"
            );
            describe_gauge!(
                "secureauth_webhook_oldest_pending_seconds",
                "Age of the oldest waiting webhook delivery"
            );
            describe_gauge!(
                "secureauth_webhook_dead",
                "Webhook deliveries given up on, kept for WEBHOOK_RETENTION_DAYS"
            );
            describe_counter!(
                "secureauth_webhook_deliveries_total",
                "Webhook delivery attempts of this instance's courier by result (delivered, retried, dead)"
            );
        });
    }

    /// Counts one answered request.
    pub fn record_request(&self, answer: &Answer<'_>, elapsed: Duration) {
        self.with(|| {
            let method = method_label(answer.method);
            let route = answer.route.to_owned();
            counter!(
                "secureauth_http_requests_total",
                "method" => method,
                "route" => route.clone(),
                "status" => answer.status.as_str().to_owned(),
            )
            .increment(1);
            histogram!(
                "secureauth_http_request_duration_seconds",
                "method" => method,
                "route" => route,
            )
            .record(elapsed.as_secs_f64());
            for (name, labels) in auth_events(answer) {
                counter!(name, &labels).increment(1);
            }
        });
    }

    /// Counts a courier round's outcomes.
    pub fn record_deliveries(&self, report: &DeliveryReport) {
        self.with(|| {
            for (result, n) in [
                ("sent", report.sent),
                ("deferred", report.deferred),
                ("dead", report.dead),
                ("suppressed", report.suppressed),
                ("expired", report.expired),
            ] {
                counter!("secureauth_mail_deliveries_total", "result" => result)
                    .increment(u64::try_from(n).unwrap_or(u64::MAX));
            }
        });
    }

    /// Counts a webhook courier round's outcomes.
    pub fn record_webhooks(&self, report: &auth_core::webhooks::WebhookReport) {
        self.with(|| {
            for (result, n) in [
                ("delivered", report.delivered),
                ("retried", report.retried),
                ("dead", report.dead),
            ] {
                counter!("secureauth_webhook_deliveries_total", "result" => result)
                    .increment(u64::try_from(n).unwrap_or(u64::MAX));
            }
        });
    }

    /// Starts the task that drains recorded samples into the histograms every
    /// [`UPKEEP_INTERVAL`]; it ends when the handle is aborted.
    pub fn spawn_upkeep(&self) -> tokio::task::JoinHandle<()> {
        let handle = self.inner.handle.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(UPKEEP_INTERVAL).await;
                handle.run_upkeep();
            }
        })
    }

    /// Reads the gauges (the outbox within its timeout) and renders the registry.
    pub async fn scrape(&self) -> String {
        let probes = &self.inner.probes;
        let outbox = match &probes.outbox {
            Some(outbox) => Some(
                tokio::time::timeout(self.inner.outbox_timeout, outbox.stats())
                    .await
                    .ok()
                    .and_then(Result::ok),
            ),
            None => None,
        };
        let webhooks = match &probes.webhooks {
            Some(store) => Some(
                tokio::time::timeout(self.inner.outbox_timeout, store.stats())
                    .await
                    .ok()
                    .and_then(Result::ok),
            ),
            None => None,
        };
        self.with(|| {
            match webhooks {
                None => {}
                Some(Some(stats)) => {
                    gauge!("secureauth_webhook_pending").set(stats.pending as f64);
                    let age = stats.oldest_pending.map_or(0.0, |at| {
                        ((chrono::Utc::now() - at).num_milliseconds().max(0) as f64) / 1000.0
                    });
                    gauge!("secureauth_webhook_oldest_pending_seconds").set(age);
                    gauge!("secureauth_webhook_dead").set(stats.dead as f64);
                }
                Some(None) => {
                    for name in [
                        "secureauth_webhook_pending",
                        "secureauth_webhook_oldest_pending_seconds",
                        "secureauth_webhook_dead",
                    ] {
                        gauge!(name).set(f64::NAN);
                    }
                }
            }
            if let Some(hasher) = &probes.hasher {
                gauge!("secureauth_hasher_workers").set(hasher.settings().max_concurrent as f64);
                gauge!("secureauth_hasher_busy_workers").set(hasher.in_flight() as f64);
                gauge!("secureauth_hasher_queued").set(hasher.queued() as f64);
            }
            if let Some(pool) = &probes.postgres {
                let s = pool.status();
                pool_gauges("postgres", s.max_size, s.size, s.available, s.waiting);
            }
            if let Some(redis) = &probes.redis {
                let s = redis.pool_status();
                pool_gauges("redis", s.max_size, s.size, s.available, s.waiting);
            }
            match outbox {
                None => {}
                Some(Some(stats)) => {
                    gauge!("secureauth_mail_outbox_up").set(1.0);
                    gauge!("secureauth_mail_outbox_pending").set(stats.pending as f64);
                    let age = stats.oldest_pending.map_or(0.0, |at| {
                        ((chrono::Utc::now() - at).num_milliseconds().max(0) as f64) / 1000.0
                    });
                    gauge!("secureauth_mail_outbox_oldest_pending_seconds").set(age);
                    gauge!("secureauth_mail_outbox_dead").set(stats.dead as f64);
                    gauge!("secureauth_mail_outbox_suppressed_addresses")
                        .set(stats.suppressed as f64);
                }
                Some(None) => {
                    // Unknown, not zero: a dashboard shows a gap rather than an empty queue.
                    gauge!("secureauth_mail_outbox_up").set(0.0);
                    for name in [
                        "secureauth_mail_outbox_pending",
                        "secureauth_mail_outbox_oldest_pending_seconds",
                        "secureauth_mail_outbox_dead",
                        "secureauth_mail_outbox_suppressed_addresses",
                    ] {
                        gauge!(name).set(f64::NAN);
                    }
                }
            }
        });
        self.inner.handle.run_upkeep();
        self.inner.handle.render()
    }
}

fn pool_gauges(pool: &'static str, max_size: usize, size: usize, available: usize, waiting: usize) {
    gauge!("secureauth_pool_max_size", "pool" => pool).set(max_size as f64);
    gauge!("secureauth_pool_size", "pool" => pool).set(size as f64);
    gauge!("secureauth_pool_available", "pool" => pool).set(available as f64);
    gauge!("secureauth_pool_waiting", "pool" => pool).set(waiting as f64);
}

/// What the metrics see of one answered request.
#[derive(Debug, Clone, Copy)]
pub struct Answer<'a> {
    /// The request's method.
    pub method: &'a Method,
    /// The route pattern that matched, or `unmatched`.
    pub route: &'a str,
    /// The status sent.
    pub status: StatusCode,
    /// The API error code sent, if the answer is an error of the API.
    pub code: Option<ErrorCode>,
    /// The dependency that failed, for a 503.
    pub dependency: Option<Dependency>,
    /// A right password (or code) whose account asks for a second factor: no session yet.
    pub second_factor_pending: bool,
}

/// Marks a 200 to a login step that asks for the second factor (set by the handler).
#[derive(Debug, Clone, Copy)]
pub struct SecondFactorPending;

/// A closed set of method names: an arbitrary method must not make a new series.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

fn dependency_label(d: Dependency) -> &'static str {
    match d {
        Dependency::UserStore => "user_store",
        Dependency::SessionStore => "session_store",
        Dependency::OtpStore => "otp_store",
        Dependency::Mailer => "mailer",
        Dependency::Hasher => "password_hasher",
        Dependency::RateLimiter => "rate_limiter",
        Dependency::TotpStore => "totp_store",
        Dependency::SecurityEvents => "security_events",
        Dependency::Webhooks => "webhooks",
        Dependency::PasskeyStore => "passkey_store",
        Dependency::PasskeyChallenges => "passkey_challenges",
        Dependency::PasskeyVerifier => "passkey_verifier",
    }
}

/// The result label of an authentication step's answer.
fn result_label(answer: &Answer<'_>) -> &'static str {
    if answer.status.is_success() {
        return if answer.second_factor_pending {
            "mfa_required"
        } else {
            "ok"
        };
    }
    match (answer.status, answer.code) {
        (_, Some(ErrorCode::InvalidCredentials)) => "bad_credentials",
        (_, Some(ErrorCode::EmailNotVerified)) => "unverified",
        (_, Some(ErrorCode::TooManyRequests)) => "throttled",
        // The code's (or the second step's) attempts are spent: it is dead.
        (_, Some(ErrorCode::TooManyAttempts)) => "locked",
        (_, Some(ErrorCode::InvalidOtp)) => "invalid_code",
        (_, Some(ErrorCode::OtpExpired)) => "expired_code",
        (_, Some(ErrorCode::InvalidSecondFactor)) => "bad_second_factor",
        (_, Some(ErrorCode::InvalidMfaToken)) => "invalid_mfa_token",
        (_, Some(ErrorCode::EmailTaken)) => "email_taken",
        (_, Some(ErrorCode::WeakPassword)) => "weak_password",
        (_, Some(ErrorCode::AccountDisabled)) => "disabled",
        (_, Some(ErrorCode::InvalidPasskey)) => "bad_passkey",
        (_, Some(ErrorCode::InvalidPasskeyCeremony)) => "invalid_ceremony",
        (StatusCode::SERVICE_UNAVAILABLE, _) => "unavailable",
        (StatusCode::REQUEST_TIMEOUT, _) => "timeout",
        (s, _) if s.is_client_error() => "invalid_request",
        _ => "error",
    }
}

type Labels = Vec<(&'static str, String)>;

/// The authentication counters one answer moves: (metric name, labels).
fn auth_events(answer: &Answer<'_>) -> Vec<(&'static str, Labels)> {
    let mut events = Vec::new();
    let result = || ("result", result_label(answer).to_owned());
    let ok = answer.status.is_success();
    let post = answer.method == Method::POST;
    let delete = answer.method == Method::DELETE;
    match answer.route {
        "/signup" if post => events.push(("secureauth_signups_total", vec![result()])),
        "/verify-otp" if post => events.push(("secureauth_verifications_total", vec![result()])),
        "/login" if post => events.push((
            "secureauth_logins_total",
            vec![("method", "password".to_owned()), result()],
        )),
        "/login/code/verify" if post => events.push((
            "secureauth_logins_total",
            vec![("method", "code".to_owned()), result()],
        )),
        "/login/mfa" if post => events.push((
            "secureauth_logins_total",
            vec![("method", "mfa".to_owned()), result()],
        )),
        "/login/passkey" if post => events.push((
            "secureauth_logins_total",
            vec![("method", "passkey".to_owned()), result()],
        )),
        "/login/mfa/passkey" if post => events.push((
            "secureauth_logins_total",
            vec![("method", "mfa_passkey".to_owned()), result()],
        )),
        "/forgot-password" if post => events.push((
            "secureauth_password_resets_total",
            vec![("stage", "requested".to_owned()), result()],
        )),
        "/reset-password" if post => {
            events.push((
                "secureauth_password_resets_total",
                vec![("stage", "completed".to_owned()), result()],
            ));
            if ok {
                events.push(revocation("password_reset"));
            }
        }
        "/logout" if post && ok => events.push(revocation("logout")),
        "/logout-all" if post && ok => events.push(revocation("logout_all")),
        "/sessions/{id}" if delete && ok => events.push(revocation("session")),
        "/change-password" if post && ok => events.push(revocation("password_change")),
        "/me" if delete && ok => events.push(revocation("account_deleted")),
        "/me/mfa/totp/confirm" if post && ok => events.push(revocation("mfa_change")),
        _ => {}
    }
    if answer.status == StatusCode::TOO_MANY_REQUESTS {
        let reason = match answer.code {
            Some(ErrorCode::TooManyAttempts) => "too_many_attempts",
            _ => "too_many_requests",
        };
        events.push((
            "secureauth_rate_limited_total",
            vec![
                ("action", action_label(answer.route).to_owned()),
                ("reason", reason.to_owned()),
            ],
        ));
    }
    if answer.status == StatusCode::SERVICE_UNAVAILABLE {
        let dependency = answer.dependency.map_or("other", dependency_label);
        events.push((
            "secureauth_dependency_errors_total",
            vec![("dependency", dependency.to_owned())],
        ));
    }
    events
}

fn revocation(reason: &'static str) -> (&'static str, Labels) {
    (
        "secureauth_session_revocations_total",
        vec![("reason", reason.to_owned())],
    )
}

/// The action a route stands for (`/login/code` → `login/code`).
fn action_label(route: &str) -> &str {
    route.strip_prefix('/').unwrap_or(route)
}

/// Middleware of the API: counts every answer (the route pattern is known once the request
/// has been routed, so it is read from the response's request).
pub async fn track(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let metrics = req.app_data::<web::Data<Metrics>>().cloned();
    let method = req.method().clone();
    let res = next.call(req).await;
    if let Some(metrics) = metrics {
        match &res {
            Ok(res) => {
                let api_error = res
                    .response()
                    .error()
                    .and_then(|e| e.as_error::<ApiError>());
                let route = res.request().match_pattern();
                let answer = Answer {
                    method: res.request().method(),
                    route: route.as_deref().unwrap_or("unmatched"),
                    status: res.status(),
                    code: api_error.map(ApiError::code),
                    dependency: match api_error {
                        Some(ApiError::Unavailable(f)) => Some(f.dependency()),
                        _ => None,
                    },
                    second_factor_pending: res
                        .response()
                        .extensions()
                        .get::<SecondFactorPending>()
                        .is_some(),
                };
                metrics.record_request(&answer, started.elapsed());
            }
            Err(e) => {
                let status = e.as_response_error().status_code();
                // An error no layer turned into a response: actix answers it as it stands.
                let answer = Answer {
                    method: &method,
                    route: "unmatched",
                    status,
                    code: e.as_error::<ApiError>().map(ApiError::code),
                    dependency: None,
                    second_factor_pending: false,
                };
                metrics.record_request(&answer, started.elapsed());
            }
        }
    }
    res
}

/// The bearer token `/metrics` asks for (`METRICS_TOKEN`), if any.
#[derive(Clone)]
struct ScrapeToken(Option<secrecy::SecretString>);

/// `GET /metrics` of the metrics listener.
async fn scrape(
    metrics: web::Data<Metrics>,
    token: web::Data<ScrapeToken>,
    req: actix_web::HttpRequest,
) -> HttpResponse {
    if let Some(expected) = &token.0 {
        if !crate::state::bearer_matches(&req, expected) {
            return HttpResponse::Unauthorized()
                .insert_header((actix_web::http::header::WWW_AUTHENTICATE, "Bearer"))
                .finish();
        }
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .body(metrics.scrape().await)
}

/// The metrics listener: `GET /metrics` and nothing else, on one worker thread, without
/// signal handling of its own (it stops with the API). With `token`, a scrape must carry it
/// as a bearer token.
pub fn serve(
    listener: std::net::TcpListener,
    metrics: Metrics,
    token: Option<secrecy::SecretString>,
) -> std::io::Result<actix_web::dev::Server> {
    let data = web::Data::new(metrics);
    let token = web::Data::new(ScrapeToken(token));
    Ok(actix_web::HttpServer::new(move || {
        actix_web::App::new()
            .app_data(data.clone())
            .app_data(token.clone())
            .service(web::resource("/metrics").route(web::get().to(scrape)))
            .default_service(web::to(|| async { HttpResponse::NotFound().finish() }))
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(1)
    .listen(listener)?
    .run())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn answer(method: &'static Method, route: &'static str, status: u16) -> Answer<'static> {
        Answer {
            method,
            route,
            status: StatusCode::from_u16(status).unwrap(),
            code: None,
            dependency: None,
            second_factor_pending: false,
        }
    }

    #[test]
    fn passkey_logins_are_counted_by_way_in_and_result() {
        for (route, method, status, code, want) in [
            ("/login/passkey", "passkey", 200, None, "ok"),
            (
                "/login/passkey",
                "passkey",
                401,
                Some(ErrorCode::InvalidPasskey),
                "bad_passkey",
            ),
            (
                "/login/passkey",
                "passkey",
                400,
                Some(ErrorCode::InvalidPasskeyCeremony),
                "invalid_ceremony",
            ),
            (
                "/login/mfa/passkey",
                "mfa_passkey",
                403,
                Some(ErrorCode::AccountDisabled),
                "disabled",
            ),
        ] {
            let a = Answer {
                code,
                ..answer(&Method::POST, route, status)
            };
            let events = auth_events(&a);
            assert_eq!(events.len(), 1, "{route}");
            assert_eq!(events[0].0, "secureauth_logins_total");
            assert!(
                events[0].1.contains(&("method", method.to_owned())),
                "{:?}",
                events[0].1
            );
            assert!(
                events[0].1.contains(&("result", want.to_owned())),
                "{:?}",
                events[0].1
            );
        }
    }

    #[test]
    fn login_answers_map_to_their_result() {
        let cases = [
            (200, None, "ok"),
            (401, Some(ErrorCode::InvalidCredentials), "bad_credentials"),
            (403, Some(ErrorCode::EmailNotVerified), "unverified"),
            (429, Some(ErrorCode::TooManyRequests), "throttled"),
            (503, Some(ErrorCode::ServiceUnavailable), "unavailable"),
            (422, Some(ErrorCode::InvalidEmail), "invalid_request"),
        ];
        for (status, code, want) in cases {
            let a = Answer {
                code,
                ..answer(&Method::POST, "/login", status)
            };
            let events = auth_events(&a);
            assert_eq!(events[0].0, "secureauth_logins_total");
            assert!(
                events[0].1.contains(&("result", want.to_owned())),
                "{status}: {:?}",
                events[0].1
            );
        }
    }

    #[test]
    fn revocations_count_successes_only() {
        assert_eq!(
            auth_events(&answer(&Method::POST, "/logout", 204)),
            vec![revocation("logout")]
        );
        assert!(auth_events(&answer(&Method::POST, "/logout", 401)).is_empty());
        assert!(auth_events(&answer(&Method::GET, "/sessions/{id}", 200)).is_empty());
        assert_eq!(
            auth_events(&answer(&Method::DELETE, "/sessions/{id}", 204)),
            vec![revocation("session")]
        );
    }

    #[test]
    fn an_outage_is_counted_by_its_dependency_and_a_refusal_by_its_action() {
        let a = Answer {
            dependency: Some(Dependency::SessionStore),
            ..answer(&Method::GET, "/me", 503)
        };
        assert_eq!(
            auth_events(&a),
            vec![(
                "secureauth_dependency_errors_total",
                vec![("dependency", "session_store".to_owned())]
            )]
        );
        let a = Answer {
            code: Some(ErrorCode::TooManyRequests),
            ..answer(&Method::POST, "/login/code", 429)
        };
        assert_eq!(
            auth_events(&a),
            vec![(
                "secureauth_rate_limited_total",
                vec![
                    ("action", "login/code".to_owned()),
                    ("reason", "too_many_requests".to_owned())
                ]
            )]
        );
    }

    #[test]
    fn an_unknown_method_does_not_make_a_new_series() {
        let m = Method::from_bytes(b"FROBNICATE").unwrap();
        assert_eq!(method_label(&m), "other");
    }

    #[tokio::test]
    async fn a_registry_renders_what_it_counted_and_no_other_registry_does() {
        let one = Metrics::new(Probes::default()).unwrap();
        let two = Metrics::new(Probes::default()).unwrap();
        one.record_request(
            &answer(&Method::POST, "/signup", 201),
            Duration::from_millis(3),
        );
        let text = one.scrape().await;
        assert!(
            text.contains(r#"secureauth_signups_total{result="ok"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(
                r#"secureauth_http_requests_total{method="POST",route="/signup",status="201"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains("secureauth_http_request_duration_seconds_bucket"),
            "a histogram, not a summary: {text}"
        );
        assert!(!two.scrape().await.contains("secureauth_signups_total{"));
    }
}

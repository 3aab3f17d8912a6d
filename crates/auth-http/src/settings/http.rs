//! The HTTP section: the listener, connection bounds, cookies and the clients believed.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use secrecy::SecretString;

use super::env::{err, Env};
use super::ConfigError;

/// Default of `MAX_CONNECTIONS` (per worker).
pub const DEFAULT_MAX_CONNECTIONS: usize = 2048;

/// The public listener.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// `BIND_ADDR`: address to listen on (default `127.0.0.1:8080`).
    pub bind_addr: SocketAddr,
    /// `HTTP_WORKERS`: actix worker threads (default: number of cores).
    pub workers: Option<usize>,
    /// `REQUEST_TIMEOUT`: the whole life of one request, from its first byte to the last byte
    /// of its response (head, body, handler, response write); past it the client gets 408 or
    /// the connection is closed (default `15s`, at least `1s`).
    pub request_timeout: Duration,
    /// `MAX_CONNECTIONS`: open connections per HTTP worker; more wait in the listen backlog
    /// (default [`DEFAULT_MAX_CONNECTIONS`]).
    pub max_connections: usize,
    /// `MAX_CONNECTIONS_PER_CLIENT`: open connections per client IP (IPv6: per
    /// `IPV6_PREFIX_LEN` prefix) over all workers; one more is answered 429 and closed; trusted
    /// proxies are not bounded (default
    /// [`DEFAULT_MAX_CONNECTIONS_PER_CLIENT`](crate::connections::DEFAULT_MAX_CONNECTIONS_PER_CLIENT);
    /// `off`: no bound).
    pub max_connections_per_client: Option<usize>,
    /// `MAX_REQUESTS_PER_CLIENT`: requests per second one client (IPv4 address, IPv6 prefix)
    /// may send, bursts of twice that; the next is answered 429 and its connection closed;
    /// trusted proxies are not bounded (default
    /// [`DEFAULT_MAX_REQUESTS_PER_CLIENT`](crate::request_rate::DEFAULT_MAX_REQUESTS_PER_CLIENT);
    /// `off`: no bound).
    pub max_requests_per_client: Option<std::num::NonZeroU32>,
    /// `SEND_BUFFER_SIZE`: the kernel send buffer of each connection in bytes, 4096 to
    /// 4194304 (default [`DEFAULT_SEND_BUFFER`](crate::server::DEFAULT_SEND_BUFFER); `off`:
    /// the kernel's auto-tuning). It bounds the work a client that pipelines requests and
    /// never reads the answers can make the server do (see [`crate::server`]).
    pub send_buffer: Option<usize>,
    /// `SHUTDOWN_TIMEOUT`: after SIGTERM/SIGINT, how long requests in flight may finish before
    /// every connection is cut (default `25s`).
    pub shutdown_timeout: Duration,
    /// `COOKIE_SECURE`: set `Secure` on the session cookie, and send HSTS (default `true`).
    pub cookie_secure: bool,
    /// `ALLOWED_ORIGINS`: extra origins allowed for cookie-authenticated requests.
    pub allowed_origins: Vec<String>,
    /// `TRUSTED_PROXIES`: proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpAddr>,
}

impl HttpSettings {
    pub(super) fn read(env: &Env<'_>) -> Result<Self, ConfigError> {
        let bind_addr = env
            .socket_addr("BIND_ADDR", "0.0.0.0:8080")?
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080)));
        let request_timeout = env.duration_in(
            "REQUEST_TIMEOUT",
            Duration::from_secs(15),
            Duration::from_secs(1)..=Duration::MAX,
            "must be at least 1s",
        )?;
        let max_connections_per_client = if env.string("MAX_CONNECTIONS_PER_CLIENT").is_none() {
            Some(crate::connections::DEFAULT_MAX_CONNECTIONS_PER_CLIENT)
        } else if env.is_off("MAX_CONNECTIONS_PER_CLIENT") {
            None
        } else {
            env.positive("MAX_CONNECTIONS_PER_CLIENT")?
        };
        let max_requests_per_client = if env.is_off("MAX_REQUESTS_PER_CLIENT") {
            None
        } else {
            std::num::NonZeroU32::new(env.number_in(
                "MAX_REQUESTS_PER_CLIENT",
                1..=1_000_000,
                crate::request_rate::DEFAULT_MAX_REQUESTS_PER_CLIENT,
            )?)
        };
        let send_buffer = if env.is_off("SEND_BUFFER_SIZE") {
            None
        } else {
            Some(env.number_in(
                "SEND_BUFFER_SIZE",
                4096..=4 * 1024 * 1024,
                crate::server::DEFAULT_SEND_BUFFER,
            )?)
        };
        let trusted_proxies = env
            .list("TRUSTED_PROXIES")
            .iter()
            .map(|s| {
                s.parse()
                    .map_err(|_| err("TRUSTED_PROXIES", format!("{s:?} is not an IP address")))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            bind_addr,
            workers: env.positive("HTTP_WORKERS")?,
            request_timeout,
            max_connections: env
                .positive("MAX_CONNECTIONS")?
                .unwrap_or(DEFAULT_MAX_CONNECTIONS),
            max_connections_per_client,
            max_requests_per_client,
            send_buffer,
            shutdown_timeout: env.duration("SHUTDOWN_TIMEOUT", Duration::from_secs(25))?,
            cookie_secure: env.flag("COOKIE_SECURE", true)?,
            allowed_origins: env
                .list("ALLOWED_ORIGINS")
                .into_iter()
                .map(|o| o.trim_end_matches('/').to_owned())
                .collect(),
            trusted_proxies,
        })
    }
}

/// The operator's Prometheus listener.
#[derive(Debug, Clone, Default)]
pub struct MetricsSettings {
    /// `METRICS_ADDR`: address of the Prometheus listener (`GET /metrics`); `None` (the
    /// default, or `off`): no metrics. Never served on `BIND_ADDR`.
    pub addr: Option<SocketAddr>,
    /// `METRICS_TOKEN`: when set (at least 32 bytes), `/metrics` answers only requests with
    /// `Authorization: Bearer <METRICS_TOKEN>`.
    pub token: Option<SecretString>,
}

impl MetricsSettings {
    pub(super) fn read(env: &Env<'_>, http: &HttpSettings) -> Result<Self, ConfigError> {
        let addr = if env.is_off("METRICS_ADDR") {
            None
        } else {
            env.socket_addr("METRICS_ADDR", "127.0.0.1:9100")?
        };
        if addr.is_some_and(|a| a == http.bind_addr && a.port() != 0) {
            return Err(err(
                "METRICS_ADDR",
                "must differ from BIND_ADDR: metrics are served on their own listener",
            ));
        }
        Ok(Self {
            addr,
            token: env.token("METRICS_TOKEN")?,
        })
    }
}

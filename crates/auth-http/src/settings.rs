//! Typed settings, read once at start-up from environment variables (and a `.env` file), each
//! validated with an error that names the variable.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use auth_core::{Quota, RateLimit, ThrottleConfig};
use secrecy::{ExposeSecret, SecretString};

use crate::telemetry::LogFormat;

/// The embedded default database.
pub const DEFAULT_SQLITE_URL: &str = "sqlite://./data/secureauth.db";

/// A setting that could not be used; names the variable.
#[derive(Debug, thiserror::Error)]
#[error("configuration error in {var}: {message}")]
pub struct ConfigError {
    /// The environment variable.
    pub var: &'static str,
    /// What is wrong with it.
    pub message: String,
}

fn err(var: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        var,
        message: message.into(),
    }
}

/// Where the service runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppEnv {
    /// Local use: convenient defaults (a random per-process `AUTH_SECRET`, mail to files).
    Development,
    /// Deployed: every secret and dependency must be configured explicitly.
    Production,
}

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// TLS from the first byte (port 465).
    Implicit,
    /// Plain connection upgraded with STARTTLS (port 587).
    StartTls,
    /// No TLS: only for a local development mail server.
    None,
}

/// How the service hands its mail to the mail server (`MAIL_DELIVERY`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailDelivery {
    /// Queued in the user database and sent by this instance's courier task (the default):
    /// no request waits for the mail server.
    Outbox,
    /// Sent inside the request, straight through SMTP (or the file mailer), with no queue and
    /// no courier. Development only: requests wait for the mail server, and only those that
    /// mail (say, a reset for an existing account) do, so answer times would tell which
    /// addresses have accounts. For measuring the outbox against (`auth-bench`) and debugging.
    Inline,
}

/// SMTP server settings.
#[derive(Debug, Clone)]
pub struct SmtpConfig {
    /// Server host name.
    pub host: String,
    /// Server port.
    pub port: u16,
    /// TLS mode.
    pub tls: SmtpTls,
    /// Login name, if the server requires authentication.
    pub username: Option<String>,
    /// Password for `username`.
    pub password: Option<SecretString>,
}

/// Every setting of the server.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `APP_ENV`: `development` (default) or `production`.
    pub app_env: AppEnv,
    /// `BIND_ADDR`: address to listen on (default `127.0.0.1:8080`).
    pub bind_addr: SocketAddr,
    /// `METRICS_ADDR`: address of the Prometheus listener (`GET /metrics`); `None` (the
    /// default): no metrics. Never served on `BIND_ADDR`.
    pub metrics_addr: Option<SocketAddr>,
    /// `METRICS_TOKEN`: when set (at least 32 bytes), `/metrics` answers only requests with
    /// `Authorization: Bearer <METRICS_TOKEN>`.
    pub metrics_token: Option<SecretString>,
    /// `DATABASE_URL`: `postgres://...` or `sqlite://path` (default `sqlite://./data/secureauth.db`).
    pub database_url: SecretString,
    /// `DATABASE_CA_FILE`: PEM file of the CAs trusted for TLS to PostgreSQL
    /// (`?sslmode=require` in `DATABASE_URL`); without it, the public web roots.
    pub database_ca_file: Option<PathBuf>,
    /// `REDIS_URL`: Redis URL; `None` keeps sessions and codes in process memory (one instance).
    pub redis_url: Option<SecretString>,
    /// `REDIS_KEY_PREFIX`: prefix of every Redis key (default `secureauth:`).
    pub redis_key_prefix: String,
    /// `SMTP_HOST`/`SMTP_SERVER`, ...: the SMTP server; `None` writes mail to `MAIL_DIR`.
    pub smtp: Option<SmtpConfig>,
    /// `MAIL_FROM`/`SMTP_EMAIL`: sender mailbox.
    pub mail_from: String,
    /// `MAIL_DIR`: where mail goes without SMTP (default `./data/mail`).
    pub mail_dir: PathBuf,
    /// `MAIL_DELIVERY`: `outbox` (default) or `inline` (development only).
    pub mail_delivery: MailDelivery,
    /// `UNIFORM_ANSWER_TIME`: signup, resend-otp, forgot-password and login-code requests
    /// answer no sooner than this after they were read (default `50ms`; `0`: as soon as
    /// done), so the few milliseconds that writing a code and queueing its mail take for an
    /// existing account do not show (with `ENUMERATION_PROTECTION` on).
    pub uniform_answer_time: Duration,
    /// `OUTBOX_*`, `MAIL_SUPPRESS_FOR`, `BOUNCE_WEBHOOK_TOKEN`: how queued mail is delivered.
    pub outbox: OutboxSettings,
    /// `BREACHED_PASSWORDS_*`: the list of breached passwords new passwords are checked against.
    pub breached_passwords: BreachedPasswordSettings,
    /// `MAIL_TEMPLATES_DIR`: a folder of mail templates laid over the built-in ones
    /// (`<dir>/<lang>/<file>`, see `auth_smtp`'s documentation); loaded and checked at
    /// start-up. `None`: the built-in English and German texts.
    pub mail_templates_dir: Option<PathBuf>,
    /// `SESSION_TTL`: absolute session lifetime (default `24h`).
    pub session_ttl: Duration,
    /// `SESSION_IDLE_TIMEOUT`: a session unused this long ends (default `30m`; `off`: never).
    pub session_idle_timeout: Option<Duration>,
    /// `OTP_TTL`: code lifetime (default `10m`).
    pub otp_ttl: Duration,
    /// `MAIL_COOLDOWN`: minimum time between code mails to one address (default `60s`).
    pub mail_cooldown: Duration,
    /// `PASSWORD_MIN_LENGTH`: minimum password length (default 8, at least 8).
    pub password_min_length: usize,
    /// `COOKIE_SECURE`: set `Secure` on the session cookie (default `true`).
    pub cookie_secure: bool,
    /// `AUTH_SECRET`: HMAC key for one-time codes (at least 32 bytes).
    pub auth_secret: Option<SecretString>,
    /// `LOG_FORMAT`: `pretty` (default) or `json`.
    pub log_format: LogFormat,
    /// `ALLOWED_ORIGINS`: extra origins allowed for cookie-authenticated requests.
    pub allowed_origins: Vec<String>,
    /// `WEBAUTHN_RP_ID`, `WEBAUTHN_ORIGIN`: passkeys; off without them.
    pub passkeys: Option<PasskeySettings>,
    /// `TRUSTED_PROXIES`: proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpAddr>,
    /// `ENUMERATION_PROTECTION` (default on): signup, resend-otp, forgot-password and
    /// login-by-code answer the same for new, pending and verified addresses (cooldowns are
    /// enforced silently); off: signup for a verified address answers 409.
    pub enumeration_protection: bool,
    /// `DEPENDENCY_TIMEOUT`: how long to wait for PostgreSQL, Redis or SMTP (default `3s`).
    pub dependency_timeout: Duration,
    /// `ARGON2_MEMORY_KIB`, `ARGON2_ITERATIONS`, `ARGON2_PARALLELISM`: hashing cost.
    pub argon2: (u32, u32, u32),
    /// `ARGON2_WORKERS`: hashing threads, i.e. Argon2 runs at once (default: number of cores).
    pub argon2_workers: Option<usize>,
    /// `ARGON2_QUEUE`: requests allowed to wait for a hashing thread; one more gets 503
    /// (default: 64 per hashing thread; `0` refuses as soon as every thread is busy).
    pub argon2_queue: Option<usize>,
    /// `ARGON2_NICE`: nice value of the hashing threads, 0–19 (default 0; Linux): above 0,
    /// when the cores are busy, the threads that answer requests go first.
    pub argon2_nice: u8,
    /// `HTTP_WORKERS`: actix worker threads (default: number of cores).
    pub workers: Option<usize>,
    /// `RATE_LIMIT_*`: request budgets per client IP and per address (see [`RATE_LIMIT_VARS`]).
    pub throttle: ThrottleConfig,
    /// `REQUEST_TIMEOUT`: the whole life of one request, from its first byte to the last byte
    /// of its response (head, body, handler, response write); past it the client gets 408 or
    /// the connection is closed (default `15s`).
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
    /// `SHUTDOWN_TIMEOUT`: after SIGTERM/SIGINT, how long requests in flight may finish before
    /// every connection is cut (default `25s`).
    pub shutdown_timeout: Duration,
    /// `MAX_SESSIONS_PER_USER`: live sessions per account; a login that would open one more
    /// ends the oldest (default [`DEFAULT_MAX_SESSIONS_PER_USER`]).
    pub max_sessions_per_user: usize,
    /// `JWT_*`: service tokens (`POST /token`, `/.well-known/jwks.json`).
    pub tokens: crate::tokens::TokenSettings,
    /// `MFA_ISSUER`, `MFA_TOKEN_TTL`: two-factor authentication.
    pub mfa: MfaSettings,
    /// `SECURITY_EVENT_*`: each account's security history.
    pub events: SecurityEventSettings,
    /// `ADMIN_REAUTH_WINDOW`: how long an administrator's password, given again inside a
    /// session (`POST /admin/reauth`), opens that session's administrative requests (default
    /// `10m`; from `1s` to `1h`).
    pub admin_reauth_window: Duration,
}

/// Default of `MAX_CONNECTIONS` (per worker).
pub const DEFAULT_MAX_CONNECTIONS: usize = 2048;
/// Default of `MAX_SESSIONS_PER_USER`.
pub const DEFAULT_MAX_SESSIONS_PER_USER: usize = 100;

/// Every `RATE_LIMIT_*` variable and the budget it sets. A value is `off` or a comma-separated
/// list of `N/duration` tiers that all apply, e.g. `5/1m,20/1h`.
pub const RATE_LIMIT_VARS: [&str; 22] = [
    "RATE_LIMIT_SIGNUP_PER_IP",
    "RATE_LIMIT_SIGNUP_PER_EMAIL",
    "RATE_LIMIT_LOGIN_PER_IP",
    "RATE_LIMIT_LOGIN_PER_EMAIL",
    "RATE_LIMIT_LOGIN_PER_EMAIL_IP",
    "RATE_LIMIT_LOGIN_PER_DEVICE",
    "RATE_LIMIT_LOGIN_CODE_PER_IP",
    "RATE_LIMIT_LOGIN_CODE_PER_EMAIL",
    "RATE_LIMIT_LOGIN_CODE_VERIFY_PER_IP",
    "RATE_LIMIT_LOGIN_CODE_VERIFY_PER_EMAIL",
    "RATE_LIMIT_VERIFY_OTP_PER_IP",
    "RATE_LIMIT_VERIFY_OTP_PER_EMAIL",
    "RATE_LIMIT_RESEND_OTP_PER_IP",
    "RATE_LIMIT_RESEND_OTP_PER_EMAIL",
    "RATE_LIMIT_FORGOT_PASSWORD_PER_IP",
    "RATE_LIMIT_FORGOT_PASSWORD_PER_EMAIL",
    "RATE_LIMIT_RESET_PASSWORD_PER_IP",
    "RATE_LIMIT_RESET_PASSWORD_PER_EMAIL",
    "RATE_LIMIT_MAIL_PER_EMAIL",
    "RATE_LIMIT_REAUTH_PER_USER",
    "RATE_LIMIT_REAUTH_PER_IP",
    "RATE_LIMIT_REAUTH_FAILURES_PER_SESSION",
];

fn throttle_slot<'a>(t: &'a mut ThrottleConfig, var: &str) -> Option<&'a mut RateLimit> {
    Some(match var {
        "RATE_LIMIT_SIGNUP_PER_IP" => &mut t.signup.per_ip,
        "RATE_LIMIT_SIGNUP_PER_EMAIL" => &mut t.signup.per_email,
        "RATE_LIMIT_LOGIN_PER_IP" => &mut t.login.per_ip,
        "RATE_LIMIT_LOGIN_PER_EMAIL" => &mut t.login.per_email,
        "RATE_LIMIT_LOGIN_PER_EMAIL_IP" => &mut t.login_per_email_ip,
        "RATE_LIMIT_LOGIN_PER_DEVICE" => &mut t.login_per_device,
        "RATE_LIMIT_LOGIN_CODE_PER_IP" => &mut t.login_code.per_ip,
        "RATE_LIMIT_LOGIN_CODE_PER_EMAIL" => &mut t.login_code.per_email,
        "RATE_LIMIT_LOGIN_CODE_VERIFY_PER_IP" => &mut t.login_code_verify.per_ip,
        "RATE_LIMIT_LOGIN_CODE_VERIFY_PER_EMAIL" => &mut t.login_code_verify.per_email,
        "RATE_LIMIT_VERIFY_OTP_PER_IP" => &mut t.verify_otp.per_ip,
        "RATE_LIMIT_VERIFY_OTP_PER_EMAIL" => &mut t.verify_otp.per_email,
        "RATE_LIMIT_RESEND_OTP_PER_IP" => &mut t.resend_otp.per_ip,
        "RATE_LIMIT_RESEND_OTP_PER_EMAIL" => &mut t.resend_otp.per_email,
        "RATE_LIMIT_FORGOT_PASSWORD_PER_IP" => &mut t.forgot_password.per_ip,
        "RATE_LIMIT_FORGOT_PASSWORD_PER_EMAIL" => &mut t.forgot_password.per_email,
        "RATE_LIMIT_RESET_PASSWORD_PER_IP" => &mut t.reset_password.per_ip,
        "RATE_LIMIT_RESET_PASSWORD_PER_EMAIL" => &mut t.reset_password.per_email,
        "RATE_LIMIT_MAIL_PER_EMAIL" => &mut t.mail_per_email,
        "RATE_LIMIT_REAUTH_PER_USER" => &mut t.reauth_per_user,
        "RATE_LIMIT_REAUTH_PER_IP" => &mut t.reauth_per_ip,
        "RATE_LIMIT_REAUTH_FAILURES_PER_SESSION" => &mut t.reauth_failures_per_session,
        _ => return None,
    })
}

/// Parses `off` or `N/duration[,N/duration...]` (a bare duration number means seconds).
pub fn parse_rate_limit(raw: &str) -> Result<RateLimit, String> {
    let raw = raw.trim();
    if raw.eq_ignore_ascii_case("off") {
        return Ok(RateLimit::off());
    }
    let mut tiers = Vec::new();
    for tier in raw.split(',').map(str::trim) {
        let (n, period) = tier
            .split_once('/')
            .ok_or_else(|| format!("{tier:?} is not N/duration, e.g. 5/1m"))?;
        let limit: u32 = n
            .trim()
            .parse()
            .map_err(|_| format!("{n:?} is not a positive number"))?;
        let period = period.trim();
        let period = match period.parse::<u64>() {
            Ok(secs) => Duration::from_secs(secs),
            Err(_) => humantime::parse_duration(period)
                .map_err(|e| format!("{period:?} is not a duration ({e}); e.g. 90s, 10m, 1h"))?,
        };
        tiers.push(Quota::new(limit, period).ok_or_else(|| {
            format!("{tier:?}: the limit must be at least 1 and the period at least 1ms")
        })?);
    }
    Ok(RateLimit(tiers))
}

/// Passkeys (WebAuthn): the relying party this service is. Both variables or neither.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeySettings {
    /// `WEBAUTHN_RP_ID`: the relying-party id, a domain: the host of `WEBAUTHN_ORIGIN` or a
    /// parent domain of it. Passkeys are bound to it for good.
    pub rp_id: String,
    /// `WEBAUTHN_ORIGIN`: the one origin (scheme, host, port) the web pages that use passkeys
    /// are served from; an answer made for any other origin is refused.
    pub origin: String,
    /// `WEBAUTHN_CEREMONY_TTL`: how long a ceremony may take (default `5m`, at most `10m`).
    pub ceremony_ttl: Duration,
}

impl PasskeySettings {
    /// Reads the section. In production the origin must be `https://` and one of the origins
    /// the service is served from (`ALLOWED_ORIGINS`), and the id must fit the origin.
    fn from_lookup(
        get: &impl Fn(&[&'static str]) -> Option<(&'static str, String)>,
        app_env: AppEnv,
        allowed_origins: &[String],
    ) -> Result<Option<Self>, ConfigError> {
        let (rp_id, origin) = match (get(&["WEBAUTHN_RP_ID"]), get(&["WEBAUTHN_ORIGIN"])) {
            (None, None) => return Ok(None),
            (Some(_), None) => {
                return Err(err("WEBAUTHN_ORIGIN", "required with WEBAUTHN_RP_ID"));
            }
            (None, Some(_)) => {
                return Err(err("WEBAUTHN_RP_ID", "required with WEBAUTHN_ORIGIN"));
            }
            (Some((_, id)), Some((_, origin))) => (id, origin.trim_end_matches('/').to_owned()),
        };
        let ceremony_ttl = match get(&["WEBAUTHN_CEREMONY_TTL"]) {
            None => Duration::from_secs(300),
            Some((var, v)) => humantime::parse_duration(&v)
                .ok()
                .filter(|d| (Duration::from_secs(10)..=auth_core::MAX_CEREMONY_TTL).contains(d))
                .ok_or_else(|| err(var, "must be a duration between 10s and 10m"))?,
        };
        if let Err(e) = auth_webauthn::WebauthnVerifier::new(&rp_id, &origin, "SecureAuth") {
            return Err(err("WEBAUTHN_RP_ID", e.to_string()));
        }
        if app_env == AppEnv::Production {
            if !origin.starts_with("https://") {
                return Err(err(
                    "WEBAUTHN_ORIGIN",
                    "must be an https:// origin in production",
                ));
            }
            if !allowed_origins.contains(&origin) {
                return Err(err(
                    "WEBAUTHN_ORIGIN",
                    "must be the origin the service is served from: list it in ALLOWED_ORIGINS",
                ));
            }
        }
        Ok(Some(Self {
            rp_id,
            origin,
            ceremony_ttl,
        }))
    }
}

impl Settings {
    /// Reads the process environment (after loading `.env` if present).
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads settings through `lookup` (tests pass a map).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |names: &[&'static str]| -> Option<(&'static str, String)> {
            names.iter().find_map(|n| {
                lookup(n)
                    .map(|v| v.trim().to_owned())
                    .filter(|v| !v.is_empty())
                    .map(|v| (*n, v))
            })
        };
        let app_env = match get(&["APP_ENV"]).map(|(_, v)| v.to_ascii_lowercase()) {
            None => AppEnv::Development,
            Some(v) if v == "development" || v == "dev" => AppEnv::Development,
            Some(v) if v == "production" || v == "prod" => AppEnv::Production,
            Some(v) => {
                return Err(err(
                    "APP_ENV",
                    format!("expected development or production, got {v:?}"),
                ))
            }
        };
        let dev = app_env == AppEnv::Development;

        let parse_duration = |var: &'static str, default: &str| -> Result<Duration, ConfigError> {
            let raw = get(&[var])
                .map(|(_, v)| v)
                .unwrap_or_else(|| default.into());
            // A bare number means seconds.
            if let Ok(secs) = raw.parse::<u64>() {
                return Ok(Duration::from_secs(secs));
            }
            humantime::parse_duration(&raw).map_err(|e| {
                err(
                    var,
                    format!("{raw:?} is not a duration ({e}); e.g. 90s, 10m, 24h"),
                )
            })
        };
        let parse_bool = |var: &'static str, default: bool| -> Result<bool, ConfigError> {
            match get(&[var]).map(|(_, v)| v.to_ascii_lowercase()) {
                None => Ok(default),
                Some(v) if ["1", "true", "yes", "on"].contains(&v.as_str()) => Ok(true),
                Some(v) if ["0", "false", "no", "off"].contains(&v.as_str()) => Ok(false),
                Some(v) => Err(err(var, format!("expected true or false, got {v:?}"))),
            }
        };
        fn parse_num<T: std::str::FromStr>(
            raw: Option<(&'static str, String)>,
            default: T,
        ) -> Result<T, ConfigError> {
            match raw {
                None => Ok(default),
                Some((name, v)) => v.parse().map_err(|_| ConfigError {
                    var: name,
                    message: format!("{v:?} is not a valid number"),
                }),
            }
        }

        let bind_addr = get(&["BIND_ADDR"])
            .map(|(_, v)| v)
            .unwrap_or_else(|| "127.0.0.1:8080".into());
        let bind_addr = bind_addr.parse().map_err(|_| {
            err(
                "BIND_ADDR",
                format!("{bind_addr:?} is not host:port, e.g. 0.0.0.0:8080"),
            )
        })?;

        let metrics_addr = match get(&["METRICS_ADDR"]) {
            None => None,
            Some((_, v)) if v.eq_ignore_ascii_case("off") => None,
            Some((_, v)) => {
                let addr: SocketAddr = v.parse().map_err(|_| {
                    err(
                        "METRICS_ADDR",
                        format!("{v:?} is not host:port, e.g. 127.0.0.1:9100"),
                    )
                })?;
                if addr == bind_addr && addr.port() != 0 {
                    return Err(err(
                        "METRICS_ADDR",
                        "must differ from BIND_ADDR: metrics are served on their own listener",
                    ));
                }
                Some(addr)
            }
        };

        let database_url = get(&["DATABASE_URL"])
            .map(|(_, v)| v)
            .unwrap_or_else(|| DEFAULT_SQLITE_URL.into());
        let is_postgres =
            database_url.starts_with("postgres://") || database_url.starts_with("postgresql://");
        if !is_postgres && !database_url.starts_with("sqlite:") {
            return Err(err(
                "DATABASE_URL",
                "must start with postgres://, postgresql:// or sqlite://",
            ));
        }
        let database_ca_file = get(&["DATABASE_CA_FILE"]).map(|(_, v)| PathBuf::from(v));
        if database_ca_file.is_some() && !is_postgres {
            return Err(err(
                "DATABASE_CA_FILE",
                "applies to a postgres:// DATABASE_URL with sslmode=require",
            ));
        }
        let redis_url = get(&["REDIS_URL"]).map(|(_, v)| v);
        if let Some(url) = &redis_url {
            if !url.starts_with("redis://") && !url.starts_with("rediss://") {
                return Err(err("REDIS_URL", "must start with redis:// or rediss://"));
            }
        } else if !dev {
            return Err(err(
                "REDIS_URL",
                "required in production: the in-memory session store serves one instance only \
                 and loses every session on restart",
            ));
        }
        let redis_key_prefix = get(&["REDIS_KEY_PREFIX"])
            .map(|(_, v)| v)
            .unwrap_or_else(|| "secureauth".into());

        let smtp = match get(&["SMTP_HOST", "SMTP_SERVER"]) {
            None => None,
            Some((_, host)) => {
                let tls = match get(&["SMTP_TLS"]).map(|(_, v)| v.to_ascii_lowercase()) {
                    None => None,
                    Some(v) if v == "implicit" || v == "tls" || v == "ssl" => {
                        Some(SmtpTls::Implicit)
                    }
                    Some(v) if v == "starttls" => Some(SmtpTls::StartTls),
                    Some(v) if v == "none" || v == "plain" || v == "off" => Some(SmtpTls::None),
                    Some(v) => {
                        return Err(err(
                            "SMTP_TLS",
                            format!("expected implicit, starttls or none, got {v:?}"),
                        ))
                    }
                };
                let port: Option<u16> = match get(&["SMTP_PORT"]) {
                    None => None,
                    Some((name, v)) => Some(v.parse().map_err(|_| ConfigError {
                        var: name,
                        message: format!("{v:?} is not a port number"),
                    })?),
                };
                let (port, tls) = match (port, tls) {
                    (Some(p), Some(t)) => (p, t),
                    (None, Some(SmtpTls::Implicit)) => (465, SmtpTls::Implicit),
                    (None, Some(SmtpTls::StartTls)) => (587, SmtpTls::StartTls),
                    (None, Some(SmtpTls::None)) => (25, SmtpTls::None),
                    (Some(465), None) => (465, SmtpTls::Implicit),
                    (Some(p), None) => (p, SmtpTls::StartTls),
                    (None, None) => (587, SmtpTls::StartTls),
                };
                if tls == SmtpTls::None && !dev {
                    return Err(err("SMTP_TLS", "plain SMTP is only allowed in development"));
                }
                Some(SmtpConfig {
                    host,
                    port,
                    tls,
                    username: get(&["SMTP_USERNAME", "SMTP_USER"]).map(|(_, v)| v),
                    password: get(&["SMTP_PASSWORD"]).map(|(_, v)| SecretString::from(v)),
                })
            }
        };
        if smtp.is_none() && !dev {
            return Err(err("SMTP_HOST", "an SMTP server is required in production"));
        }
        let mail_from = get(&["MAIL_FROM", "SMTP_EMAIL"])
            .map(|(_, v)| v)
            .unwrap_or_else(|| "SecureAuth <no-reply@localhost>".into());
        let mail_dir = get(&["MAIL_DIR"])
            .map(|(_, v)| PathBuf::from(v))
            .unwrap_or_else(|| PathBuf::from("data/mail"));
        let mail_templates_dir = get(&["MAIL_TEMPLATES_DIR"]).map(|(_, v)| PathBuf::from(v));
        let mail_delivery = match get(&["MAIL_DELIVERY"]).map(|(_, v)| v.to_ascii_lowercase()) {
            None => MailDelivery::Outbox,
            Some(v) if v == "outbox" => MailDelivery::Outbox,
            Some(v) if v == "inline" => MailDelivery::Inline,
            Some(v) => {
                return Err(err(
                    "MAIL_DELIVERY",
                    format!("expected outbox or inline, got {v:?}"),
                ))
            }
        };
        if mail_delivery == MailDelivery::Inline && !dev {
            return Err(err(
                "MAIL_DELIVERY",
                "inline is refused in production: requests that send mail (a code or notice \
                 for an existing account) would wait for the mail server, so answer times would \
                 tell which addresses have accounts; use outbox (the default)",
            ));
        }

        let token = |var: &'static str| -> Result<Option<SecretString>, ConfigError> {
            match get(&[var]).map(|(_, v)| SecretString::from(v)) {
                Some(t) if t.expose_secret().len() < 32 => Err(err(
                    var,
                    "must be at least 32 bytes; generate one with `openssl rand -hex 32`",
                )),
                t => Ok(t),
            }
        };
        let bounce_token = token("BOUNCE_WEBHOOK_TOKEN")?;
        let ops_token = token("OPS_TOKEN")?;
        let metrics_token = token("METRICS_TOKEN")?;
        let auth_secret = get(&["AUTH_SECRET"]).map(|(_, v)| SecretString::from(v));
        match &auth_secret {
            Some(s) if s.expose_secret().len() < 32 => {
                return Err(err(
                    "AUTH_SECRET",
                    "must be at least 32 bytes; generate one with `openssl rand -hex 32`",
                ))
            }
            None if !dev => {
                return Err(err(
                    "AUTH_SECRET",
                    "required in production (the HMAC key of one-time codes, shared by every \
                     instance); generate one with `openssl rand -hex 32`",
                ))
            }
            _ => {}
        }
        if let (Some(secret), false) = (&auth_secret, dev) {
            check_secret_looks_random(secret.expose_secret())?;
        }

        let log_format = match get(&["LOG_FORMAT"]).map(|(_, v)| v.to_ascii_lowercase()) {
            None => LogFormat::Pretty,
            Some(v) if v == "pretty" || v == "text" => LogFormat::Pretty,
            Some(v) if v == "json" => LogFormat::Json,
            Some(v) => {
                return Err(err(
                    "LOG_FORMAT",
                    format!("expected pretty or json, got {v:?}"),
                ))
            }
        };
        let allowed_origins: Vec<String> = get(&["ALLOWED_ORIGINS"])
            .map(|(_, v)| {
                v.split(',')
                    .map(|o| o.trim().trim_end_matches('/').to_owned())
                    .filter(|o| !o.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        let trusted_proxies = match get(&["TRUSTED_PROXIES"]) {
            None => Vec::new(),
            Some((_, v)) => v
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| {
                    s.parse()
                        .map_err(|_| err("TRUSTED_PROXIES", format!("{s:?} is not an IP address")))
                })
                .collect::<Result<_, _>>()?,
        };

        let session_ttl = parse_duration("SESSION_TTL", "24h")?;
        let otp_ttl = parse_duration("OTP_TTL", "10m")?;
        if otp_ttl > Duration::from_secs(600) || otp_ttl.is_zero() {
            return Err(err("OTP_TTL", "must be between 1s and 10m"));
        }
        if session_ttl < Duration::from_secs(60) {
            return Err(err("SESSION_TTL", "must be at least 60s"));
        }
        let session_idle_timeout = match get(&["SESSION_IDLE_TIMEOUT"]) {
            Some((_, v)) if v.trim().eq_ignore_ascii_case("off") => None,
            _ => {
                let idle = parse_duration("SESSION_IDLE_TIMEOUT", "30m")?;
                if idle < Duration::from_secs(1) {
                    return Err(err("SESSION_IDLE_TIMEOUT", "must be at least 1s (or off)"));
                }
                Some(idle)
            }
        };
        let positive = |var: &'static str| -> Result<Option<usize>, ConfigError> {
            get(&[var])
                .map(|(_, v)| {
                    v.parse::<usize>()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or_else(|| err(var, format!("{v:?} is not a positive number")))
                })
                .transpose()
        };
        let workers = positive("HTTP_WORKERS")?;
        let argon2_workers = positive("ARGON2_WORKERS")?;
        let argon2_queue =
            match get(&["ARGON2_QUEUE"]) {
                None => None,
                Some((_, v)) => Some(v.parse::<usize>().map_err(|_| {
                    err("ARGON2_QUEUE", format!("{v:?} is not a number (0 or more)"))
                })?),
            };

        let request_timeout = parse_duration("REQUEST_TIMEOUT", "15s")?;
        if request_timeout < Duration::from_secs(1) {
            return Err(err("REQUEST_TIMEOUT", "must be at least 1s"));
        }
        let shutdown_timeout = parse_duration("SHUTDOWN_TIMEOUT", "25s")?;
        let admin_reauth_window = parse_duration("ADMIN_REAUTH_WINDOW", "10m")?;
        if !(Duration::from_secs(1)..=Duration::from_secs(60 * 60)).contains(&admin_reauth_window) {
            return Err(err("ADMIN_REAUTH_WINDOW", "must be between 1s and 1h"));
        }
        let max_connections = positive("MAX_CONNECTIONS")?.unwrap_or(DEFAULT_MAX_CONNECTIONS);
        let max_sessions_per_user =
            positive("MAX_SESSIONS_PER_USER")?.unwrap_or(DEFAULT_MAX_SESSIONS_PER_USER);
        let max_connections_per_client = match get(&["MAX_CONNECTIONS_PER_CLIENT"]) {
            Some((_, v)) if v.eq_ignore_ascii_case("off") => None,
            Some(_) => positive("MAX_CONNECTIONS_PER_CLIENT")?,
            None => Some(crate::connections::DEFAULT_MAX_CONNECTIONS_PER_CLIENT),
        };

        let mut throttle = ThrottleConfig::default();
        for var in RATE_LIMIT_VARS {
            if let (Some((_, raw)), Some(slot)) = (get(&[var]), throttle_slot(&mut throttle, var)) {
                *slot = parse_rate_limit(&raw).map_err(|m| err(var, m))?;
            }
        }
        if let Some((var, v)) = get(&["HASHES_IN_FLIGHT_PER_CLIENT"]) {
            throttle.hashes_in_flight_per_client = v
                .parse()
                .map_err(|_| err(var, format!("{v:?} is not a number (0: no bound)")))?;
        }
        if let Some((var, v)) = get(&["IPV6_PREFIX_LEN"]) {
            throttle.ipv6_prefix_len = v
                .parse()
                .ok()
                .filter(|n| (1..=128).contains(n))
                .ok_or_else(|| err(var, format!("{v:?} is not a prefix length (1-128)")))?;
        }

        let tokens = crate::tokens::TokenSettings::from_lookup(&get, app_env, bind_addr)?;
        let passkeys = PasskeySettings::from_lookup(&get, app_env, &allowed_origins)?;

        Ok(Self {
            passkeys,
            app_env,
            bind_addr,
            metrics_addr,
            metrics_token,
            database_url: database_url.into(),
            database_ca_file,
            redis_url: redis_url.map(SecretString::from),
            redis_key_prefix,
            smtp,
            mail_from,
            mail_dir,
            mail_delivery,
            mail_templates_dir,
            session_ttl,
            session_idle_timeout,
            otp_ttl,
            mail_cooldown: parse_duration("MAIL_COOLDOWN", "60s")?,
            uniform_answer_time: parse_duration("UNIFORM_ANSWER_TIME", "50ms")?,
            breached_passwords: BreachedPasswordSettings::read(&get)?,
            outbox: OutboxSettings {
                poll_interval: parse_duration("OUTBOX_POLL_INTERVAL", "1s")?,
                max_attempts: parse_num(get(&["OUTBOX_MAX_ATTEMPTS"]), 200)?,
                backoff_cap: parse_duration("OUTBOX_BACKOFF_CAP", "20s")?,
                lease: parse_duration("OUTBOX_LEASE", "60s")?,
                max_age: parse_duration("OUTBOX_MAX_AGE", "24h")?,
                suppress_for: parse_duration("MAIL_SUPPRESS_FOR", "7d")?,
                bounce_token,
                ops_token,
            },
            password_min_length: parse_num(get(&["PASSWORD_MIN_LENGTH"]), 8)?,
            cookie_secure: parse_bool("COOKIE_SECURE", true)?,
            auth_secret,
            log_format,
            allowed_origins,
            trusted_proxies,
            enumeration_protection: parse_bool("ENUMERATION_PROTECTION", true)?,
            dependency_timeout: parse_duration("DEPENDENCY_TIMEOUT", "3s")?,
            argon2: (
                parse_num(get(&["ARGON2_MEMORY_KIB"]), 19_456)?,
                parse_num(get(&["ARGON2_ITERATIONS"]), 2)?,
                parse_num(get(&["ARGON2_PARALLELISM"]), 1)?,
            ),
            argon2_workers,
            argon2_queue,
            argon2_nice: match get(&["ARGON2_NICE"]) {
                None => auth_argon2::Argon2Settings::DEFAULT_WORKER_NICE,
                Some((var, v)) => v
                    .parse()
                    .ok()
                    .filter(|n| *n <= auth_argon2::Argon2Settings::MAX_WORKER_NICE)
                    .ok_or_else(|| err(var, format!("{v:?} is not a nice value (0-19)")))?,
            },
            workers,
            throttle,
            request_timeout,
            max_connections,
            max_connections_per_client,
            shutdown_timeout,
            max_sessions_per_user,
            tokens,
            mfa: MfaSettings::read(&get)?,
            events: SecurityEventSettings::read(&get)?,
            admin_reauth_window,
        })
    }
}

/// Where the list of breached passwords is (ASVS 6.2.12); off by default. A new password on
/// it (signup, change, reset) is refused with 422 `weak_password`; when the list cannot be
/// asked the password is accepted and a warning logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BreachedPasswordSettings {
    /// No check (the default).
    Off,
    /// `BREACHED_PASSWORDS_API`: a k-anonymity range service, e.g.
    /// `https://api.pwnedpasswords.com/range/` (only five hex digits of the password's SHA-1
    /// are sent), with `BREACHED_PASSWORDS_TIMEOUT` per query (default `2s`).
    RangeApi {
        /// The base URL.
        url: String,
        /// The bound on one query.
        timeout: Duration,
    },
    /// `BREACHED_PASSWORDS_FILE`: a file of SHA-1 hashes (`HASH` or `HASH:COUNT` per line),
    /// read into memory at start-up.
    File(PathBuf),
}

/// A settings section's view of the environment: the first of `names` that is set, with its
/// trimmed value.
type EnvGet<'a> = dyn Fn(&[&'static str]) -> Option<(&'static str, String)> + 'a;

impl BreachedPasswordSettings {
    fn read(get: &EnvGet<'_>) -> Result<Self, ConfigError> {
        let timeout = match get(&["BREACHED_PASSWORDS_TIMEOUT"]) {
            None => auth_breached::DEFAULT_RANGE_TIMEOUT,
            Some((var, raw)) => humantime::parse_duration(&raw)
                .or_else(|e| raw.parse::<u64>().map(Duration::from_secs).map_err(|_| e))
                .map_err(|e| err(var, format!("{raw:?} is not a duration ({e}); e.g. 2s")))?,
        };
        match (
            get(&["BREACHED_PASSWORDS_API"]),
            get(&["BREACHED_PASSWORDS_FILE"]),
        ) {
            (None, None) => Ok(Self::Off),
            (Some((_, url)), None) => Ok(Self::RangeApi { url, timeout }),
            (None, Some((_, path))) => Ok(Self::File(PathBuf::from(path))),
            (Some(_), Some(_)) => Err(err(
                "BREACHED_PASSWORDS_FILE",
                "set BREACHED_PASSWORDS_API or BREACHED_PASSWORDS_FILE, not both".to_owned(),
            )),
        }
    }
}

/// How queued mail is delivered (see `auth_core::outbox`).
#[derive(Debug, Clone)]
pub struct OutboxSettings {
    /// `OUTBOX_POLL_INTERVAL`: how often an idle courier looks for due mail queued by other
    /// instances (default `1s`; mail queued by this instance wakes it at once).
    pub poll_interval: Duration,
    /// `OUTBOX_MAX_ATTEMPTS`: transient failures before a message is given up (default 200).
    pub max_attempts: u32,
    /// `OUTBOX_BACKOFF_CAP`: the longest wait between two attempts (default `20s`): a mail
    /// server that comes back is used within about this long.
    pub backoff_cap: Duration,
    /// `OUTBOX_LEASE`: how long a claim lasts; a crashed instance's messages are taken over
    /// after it (default `60s`).
    pub lease: Duration,
    /// `OUTBOX_MAX_AGE`: a notice not delivered within this long is dropped (default `24h`;
    /// code mails are dropped when their code expires).
    pub max_age: Duration,
    /// `MAIL_SUPPRESS_FOR`: how long an address that was refused for good, bounced or
    /// complained gets no mail (default `7d`).
    pub suppress_for: Duration,
    /// `BOUNCE_WEBHOOK_TOKEN`: the bearer token `POST /mail/bounces` requires (at least 32
    /// bytes); without it the endpoint answers 404.
    pub bounce_token: Option<SecretString>,
    /// `OPS_TOKEN`: the bearer token that shows `/ready`'s mail backlog (at least 32 bytes);
    /// without it nobody sees it there (the backlog moves when a request queues mail, so it
    /// would tell which addresses have accounts).
    pub ops_token: Option<SecretString>,
}

/// Least estimated entropy of a production `AUTH_SECRET`, in bits.
pub const MIN_SECRET_BITS: f64 = 128.0;

/// A rough upper estimate of the entropy of `secret`, in bits: the Shannon entropy of its
/// character frequencies times the length of its shortest repeating unit (the whole string
/// when it does not repeat). Few distinct characters or repetition score low: `32 × 'a'` is 0
/// bits, `abab...` 2, `password` eight times 22, `0123456789abcdef` twice 64; 64 random hex
/// digits score about 245, 44 base64 characters about 210. It cannot see other structure (a
/// phrase of varied words scores well), so it only catches the obviously non-random.
pub fn estimated_entropy_bits(secret: &str) -> f64 {
    let chars: Vec<char> = secret.chars().collect();
    if chars.is_empty() {
        return 0.0;
    }
    let mut counts = std::collections::HashMap::<char, usize>::new();
    for c in &chars {
        *counts.entry(*c).or_default() += 1;
    }
    #[allow(clippy::cast_precision_loss)]
    let total = chars.len() as f64;
    let per_char: f64 = counts
        .values()
        .map(|&k| {
            #[allow(clippy::cast_precision_loss)]
            let p = k as f64 / total;
            -p * p.log2()
        })
        .sum();
    #[allow(clippy::cast_precision_loss)]
    let unit = shortest_period(&chars) as f64;
    per_char * unit
}

/// Length of the shortest `p` such that `s[i] == s[i + p]` for every `i` (KMP failure function).
fn shortest_period(s: &[char]) -> usize {
    let mut fail = vec![0usize; s.len()];
    let mut k = 0;
    for i in 1..s.len() {
        while k > 0 && s[i] != s[k] {
            k = fail[k - 1];
        }
        if s[i] == s[k] {
            k += 1;
        }
        fail[i] = k;
    }
    s.len() - fail.last().copied().unwrap_or(0)
}

/// Secrets published in this repository (docker/compose.yaml's development default).
const PUBLIC_SECRETS: &[&str] = &["compose-development-only-secret-not-for-production"];

/// Production refuses an `AUTH_SECRET` that does not look random: one-time codes are only as
/// unguessable as their HMAC key.
fn check_secret_looks_random(secret: &str) -> Result<(), ConfigError> {
    if PUBLIC_SECRETS.contains(&secret) {
        return Err(err(
            "AUTH_SECRET",
            "is the public development value of docker/compose.yaml; generate one with \
             `openssl rand -hex 32`",
        ));
    }
    let bits = estimated_entropy_bits(secret);
    if bits < MIN_SECRET_BITS {
        return Err(err(
            "AUTH_SECRET",
            format!(
                "does not look random (estimated {bits:.0} bits of entropy, at least \
                 {MIN_SECRET_BITS:.0} required in production: too few distinct characters or \
                 too much repetition); generate one with `openssl rand -hex 32`"
            ),
        ));
    }
    Ok(())
}

/// Two-factor authentication (TOTP).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MfaSettings {
    /// `MFA_ISSUER`: the name authenticator apps show next to the account (default
    /// [`DEFAULT_MFA_ISSUER`]; at most [`MAX_MFA_ISSUER_CHARS`] characters, no colon, no
    /// control characters). Apps file codes under it: changing it later shows enrolled users
    /// a new name only when they enrol again.
    pub issuer: String,
    /// `MFA_TOKEN_TTL`: how long the token of a login waiting for its second factor works
    /// (default and most `5m`, least `30s`).
    pub token_ttl: Duration,
}

/// Default of `MFA_ISSUER`.
pub const DEFAULT_MFA_ISSUER: &str = "SecureAuth";
/// Longest `MFA_ISSUER`, in characters.
pub const MAX_MFA_ISSUER_CHARS: usize = 64;
/// Longest (and default) `MFA_TOKEN_TTL`: a password that was right stays usable for the
/// second step no longer than this.
pub const MAX_MFA_TOKEN_TTL: Duration = Duration::from_secs(5 * 60);
/// Shortest `MFA_TOKEN_TTL`: time to open the app and type a code.
pub const MIN_MFA_TOKEN_TTL: Duration = Duration::from_secs(30);

impl Default for MfaSettings {
    fn default() -> Self {
        Self {
            issuer: DEFAULT_MFA_ISSUER.to_owned(),
            token_ttl: MAX_MFA_TOKEN_TTL,
        }
    }
}

impl MfaSettings {
    fn read(get: &EnvGet<'_>) -> Result<Self, ConfigError> {
        let mut settings = Self::default();
        if let Some((var, issuer)) = get(&["MFA_ISSUER"]) {
            if issuer.contains(':') || issuer.chars().any(char::is_control) {
                return Err(err(var, "must not contain a colon or control characters"));
            }
            if issuer.chars().count() > MAX_MFA_ISSUER_CHARS {
                return Err(err(
                    var,
                    format!("must be at most {MAX_MFA_ISSUER_CHARS} characters"),
                ));
            }
            settings.issuer = issuer;
        }
        if let Some((var, raw)) = get(&["MFA_TOKEN_TTL"]) {
            let ttl = raw
                .parse::<u64>()
                .map(Duration::from_secs)
                .or_else(|_| humantime::parse_duration(&raw))
                .map_err(|e| err(var, format!("{raw:?} is not a duration ({e}); e.g. 2m")))?;
            if !(MIN_MFA_TOKEN_TTL..=MAX_MFA_TOKEN_TTL).contains(&ttl) {
                return Err(err(var, "must be between 30s and 5m"));
            }
            settings.token_ttl = ttl;
        }
        Ok(settings)
    }
}

/// Each account's security history (`GET /me/events`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecurityEventSettings {
    /// `SECURITY_EVENT_RETENTION_DAYS`: events older than this many days are deleted
    /// (default 365; 1 to 3650).
    pub retention_days: u32,
    /// `SECURITY_EVENT_IP_PREFIX_V4`: leading bits of an IPv4 client address kept (default
    /// 24; 0 to 32).
    pub ipv4_prefix: u8,
    /// `SECURITY_EVENT_IP_PREFIX_V6`: leading bits of an IPv6 client address kept (default
    /// 48; 0 to 128).
    pub ipv6_prefix: u8,
}

impl Default for SecurityEventSettings {
    fn default() -> Self {
        let core = auth_core::SecurityEventConfig::default();
        Self {
            retention_days: 365,
            ipv4_prefix: core.ipv4_prefix,
            ipv6_prefix: core.ipv6_prefix,
        }
    }
}

impl SecurityEventSettings {
    /// The retention as a duration.
    pub fn retention(&self) -> Duration {
        Duration::from_secs(u64::from(self.retention_days) * 24 * 60 * 60)
    }

    /// What the service records with.
    pub fn config(&self) -> auth_core::SecurityEventConfig {
        auth_core::SecurityEventConfig {
            ipv4_prefix: self.ipv4_prefix,
            ipv6_prefix: self.ipv6_prefix,
        }
    }

    fn read(get: &EnvGet<'_>) -> Result<Self, ConfigError> {
        fn number<T: std::str::FromStr + PartialOrd + std::fmt::Display>(
            get: &EnvGet<'_>,
            var: &'static str,
            range: std::ops::RangeInclusive<T>,
            default: T,
        ) -> Result<T, ConfigError> {
            let Some((var, raw)) = get(&[var]) else {
                return Ok(default);
            };
            match raw.parse::<T>() {
                Ok(n) if range.contains(&n) => Ok(n),
                _ => Err(err(
                    var,
                    format!(
                        "{raw:?} must be a whole number from {} to {}",
                        range.start(),
                        range.end()
                    ),
                )),
            }
        }
        let d = Self::default();
        Ok(Self {
            retention_days: number(
                get,
                "SECURITY_EVENT_RETENTION_DAYS",
                1..=3650,
                d.retention_days,
            )?,
            ipv4_prefix: number(get, "SECURITY_EVENT_IP_PREFIX_V4", 0..=32, d.ipv4_prefix)?,
            ipv6_prefix: number(get, "SECURITY_EVENT_IP_PREFIX_V6", 0..=128, d.ipv6_prefix)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn security_event_settings_have_defaults_and_bounds() {
        let s = with(&[]).unwrap().events;
        assert_eq!(s, SecurityEventSettings::default());
        assert_eq!(
            (s.retention_days, s.ipv4_prefix, s.ipv6_prefix),
            (365, 24, 48)
        );
        let s = with(&[
            ("SECURITY_EVENT_RETENTION_DAYS", "30"),
            ("SECURITY_EVENT_IP_PREFIX_V4", "16"),
            ("SECURITY_EVENT_IP_PREFIX_V6", "0"),
        ])
        .unwrap()
        .events;
        assert_eq!(
            (s.retention_days, s.ipv4_prefix, s.ipv6_prefix),
            (30, 16, 0)
        );
        assert_eq!(s.retention(), Duration::from_secs(30 * 86_400));
        for (var, bad) in [
            ("SECURITY_EVENT_RETENTION_DAYS", "0"),
            ("SECURITY_EVENT_RETENTION_DAYS", "3651"),
            ("SECURITY_EVENT_RETENTION_DAYS", "a year"),
            ("SECURITY_EVENT_IP_PREFIX_V4", "33"),
            ("SECURITY_EVENT_IP_PREFIX_V6", "129"),
            ("SECURITY_EVENT_IP_PREFIX_V6", "-1"),
        ] {
            let e = with(&[(var, bad)]).unwrap_err();
            assert_eq!(e.var, var, "{bad:?}");
        }
    }

    /// A random-looking AUTH_SECRET (`openssl rand -hex 32`).
    const STRONG_SECRET: &str = "3f9c2a7e8b1d4f60c5e2a9b7d3f18e4c6a0b5d9e2f7c1a8b4e6d0f3c9a2b7e5d";

    fn with(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Settings::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn development_defaults() {
        let s = with(&[]).unwrap();
        assert_eq!(s.app_env, AppEnv::Development);
        assert_eq!(s.session_ttl, Duration::from_secs(86_400));
        assert_eq!(s.otp_ttl, Duration::from_secs(600));
        assert!(s.cookie_secure);
        assert!(s.smtp.is_none());
        assert_eq!(s.database_url.expose_secret(), DEFAULT_SQLITE_URL);
        assert!(s.redis_url.is_none());
        assert!(s.mail_templates_dir.is_none());
    }

    #[test]
    fn mfa_settings_default_to_the_service_defaults() {
        let mfa = with(&[]).unwrap().mfa;
        let config = auth_core::AuthConfig::default();
        assert_eq!(mfa.issuer, config.totp_issuer);
        assert_eq!(mfa.token_ttl, config.mfa_token_ttl);
        assert_eq!(mfa.token_ttl, Duration::from_secs(300));
        let blank = with(&[("MFA_ISSUER", "  "), ("MFA_TOKEN_TTL", "")]).unwrap();
        assert_eq!(
            blank.mfa,
            MfaSettings::default(),
            "empty values mean the default"
        );
    }

    #[test]
    fn mfa_issuer_is_read_trimmed() {
        let s = with(&[("MFA_ISSUER", "  Example Corp (staging) ")]).unwrap();
        assert_eq!(s.mfa.issuer, "Example Corp (staging)");
        let s = with(&[("MFA_ISSUER", &"é".repeat(MAX_MFA_ISSUER_CHARS))]).unwrap();
        assert_eq!(s.mfa.issuer.chars().count(), MAX_MFA_ISSUER_CHARS);
    }

    #[test]
    fn mfa_issuer_that_would_break_the_otpauth_uri_is_refused() {
        let long = "x".repeat(MAX_MFA_ISSUER_CHARS + 1);
        for bad in ["Example:Corp", "Example\u{7}Corp", long.as_str()] {
            let e = with(&[("MFA_ISSUER", bad)]).unwrap_err();
            assert_eq!(e.var, "MFA_ISSUER", "{bad:?}");
        }
    }

    #[test]
    fn mfa_token_ttl_accepts_30s_to_5m() {
        for (raw, secs) in [
            ("2m", 120),
            ("90", 90),
            ("30s", 30),
            ("5m", 300),
            ("300s", 300),
        ] {
            let s = with(&[("MFA_TOKEN_TTL", raw)]).unwrap();
            assert_eq!(s.mfa.token_ttl, Duration::from_secs(secs), "{raw}");
        }
        for bad in ["5m1s", "301", "1h", "29s", "0", "soon", "-1m"] {
            let e = with(&[("MFA_TOKEN_TTL", bad)]).unwrap_err();
            assert_eq!(e.var, "MFA_TOKEN_TTL", "{bad:?}");
        }
    }

    #[test]
    fn mail_templates_dir_is_optional() {
        let s = with(&[("MAIL_TEMPLATES_DIR", " /etc/secureauth/mail ")]).unwrap();
        assert_eq!(
            s.mail_templates_dir.as_deref(),
            Some(std::path::Path::new("/etc/secureauth/mail"))
        );
        let s = with(&[("MAIL_TEMPLATES_DIR", "")]).unwrap();
        assert!(s.mail_templates_dir.is_none());
    }

    #[test]
    fn mail_delivery_is_the_outbox_unless_inline_is_asked_for_in_development() {
        assert_eq!(with(&[]).unwrap().mail_delivery, MailDelivery::Outbox);
        for (raw, expected) in [
            ("outbox", MailDelivery::Outbox),
            ("inline", MailDelivery::Inline),
            (" Inline ", MailDelivery::Inline),
            ("OUTBOX", MailDelivery::Outbox),
        ] {
            let s = with(&[("MAIL_DELIVERY", raw)]).unwrap();
            assert_eq!(s.mail_delivery, expected, "{raw:?}");
        }
        for bad in ["direct", "sync", "queue"] {
            let e = with(&[("MAIL_DELIVERY", bad)]).unwrap_err();
            assert_eq!(e.var, "MAIL_DELIVERY", "{bad}");
            assert!(e.message.contains("outbox or inline"), "{}", e.message);
        }

        let production = [
            ("APP_ENV", "production"),
            ("AUTH_SECRET", STRONG_SECRET),
            ("REDIS_URL", "redis://cache"),
            ("SMTP_HOST", "smtp.example.com"),
        ];
        assert_eq!(
            with(&production).unwrap().mail_delivery,
            MailDelivery::Outbox
        );
        let mut outbox = production.to_vec();
        outbox.push(("MAIL_DELIVERY", "outbox"));
        assert_eq!(with(&outbox).unwrap().mail_delivery, MailDelivery::Outbox);
        let mut inline = production.to_vec();
        inline.push(("MAIL_DELIVERY", "inline"));
        let e = with(&inline).unwrap_err();
        assert_eq!(e.var, "MAIL_DELIVERY");
        assert!(e.message.contains("production"), "{}", e.message);
        assert!(e.to_string().contains("MAIL_DELIVERY"), "{e}");
    }

    #[test]
    fn passkey_settings_refuse_a_foreign_origin_in_production() {
        assert!(with(&[]).unwrap().passkeys.is_none(), "off by default");
        let dev = with(&[
            ("WEBAUTHN_RP_ID", "localhost"),
            ("WEBAUTHN_ORIGIN", "http://localhost:8080/"),
        ])
        .unwrap()
        .passkeys
        .unwrap();
        assert_eq!(dev.origin, "http://localhost:8080");
        assert_eq!(dev.ceremony_ttl, Duration::from_secs(300));
        assert_eq!(
            with(&[("WEBAUTHN_RP_ID", "localhost")]).unwrap_err().var,
            "WEBAUTHN_ORIGIN"
        );
        // An id that is not the origin's host or a parent of it.
        assert_eq!(
            with(&[
                ("WEBAUTHN_RP_ID", "evil.example"),
                ("WEBAUTHN_ORIGIN", "https://auth.example.com"),
            ])
            .unwrap_err()
            .var,
            "WEBAUTHN_RP_ID"
        );
        let prod = |origin: &str, allowed: &str| {
            with(&[
                ("APP_ENV", "production"),
                ("AUTH_SECRET", STRONG_SECRET),
                ("REDIS_URL", "redis://cache"),
                ("SMTP_HOST", "smtp.example.com"),
                ("ALLOWED_ORIGINS", allowed),
                ("WEBAUTHN_RP_ID", "example.com"),
                ("WEBAUTHN_ORIGIN", origin),
            ])
        };
        let e = prod("https://auth.example.com", "https://other.example.com").unwrap_err();
        assert_eq!(e.var, "WEBAUTHN_ORIGIN");
        assert!(e.message.contains("ALLOWED_ORIGINS"), "{}", e.message);
        assert_eq!(
            prod("http://auth.example.com", "http://auth.example.com")
                .unwrap_err()
                .var,
            "WEBAUTHN_ORIGIN"
        );
        let ok = prod("https://auth.example.com", "https://auth.example.com").unwrap();
        assert_eq!(ok.passkeys.unwrap().rp_id, "example.com");
    }

    #[test]
    fn production_refuses_the_embedded_stores() {
        let base = [
            ("APP_ENV", "production"),
            ("AUTH_SECRET", STRONG_SECRET),
            ("SMTP_HOST", "smtp.example.com"),
        ];
        assert_eq!(with(&base).unwrap_err().var, "REDIS_URL");
        let mut v = base.to_vec();
        v.push(("REDIS_URL", "redis://cache"));
        assert!(with(&v).is_ok(), "SQLite is allowed in production");
        let e = with(&[
            ("APP_ENV", "production"),
            ("AUTH_SECRET", STRONG_SECRET),
            ("REDIS_URL", "redis://cache"),
        ])
        .unwrap_err();
        assert_eq!(e.var, "SMTP_HOST");
        assert_eq!(
            with(&[("DATABASE_URL", "mysql://x")]).unwrap_err().var,
            "DATABASE_URL"
        );
    }

    #[test]
    fn production_requires_secret_and_names_it() {
        let e = with(&[
            ("APP_ENV", "production"),
            ("DATABASE_URL", "postgres://x@db/app"),
            ("REDIS_URL", "redis://cache"),
            ("SMTP_HOST", "smtp.example.com"),
        ])
        .unwrap_err();
        assert_eq!(e.var, "AUTH_SECRET");
    }

    #[test]
    fn production_refuses_a_secret_that_is_not_random_and_names_it() {
        let prod = |secret: &str| {
            with(&[
                ("APP_ENV", "production"),
                ("REDIS_URL", "redis://cache"),
                ("SMTP_HOST", "smtp.example.com"),
                ("AUTH_SECRET", secret),
            ])
        };
        let repeated = "a".repeat(32);
        let two_letters = "ab".repeat(32);
        let words = "password".repeat(8);
        let hex_run = "0123456789abcdef".repeat(4);
        for weak in [
            repeated.as_str(),
            two_letters.as_str(),
            words.as_str(),
            hex_run.as_str(),
        ] {
            let e = prod(weak).unwrap_err();
            assert_eq!(e.var, "AUTH_SECRET", "{weak}");
            assert!(e.message.contains("does not look random"), "{}", e.message);
            assert!(!e.message.contains(weak), "the secret is never echoed");
        }
        // What the README tells people to run: `openssl rand -hex 32` / `-base64 32`.
        for strong in [
            STRONG_SECRET,
            "q8Zr0T3vXk1mN5pL7sB2wY9cF4hJ6gD0aE+uR/oI3tQ=",
        ] {
            assert!(prod(strong).is_ok(), "{strong}");
        }
        let e = prod("compose-development-only-secret-not-for-production").unwrap_err();
        assert_eq!(e.var, "AUTH_SECRET");
        assert!(e.message.contains("public"), "{}", e.message);
        // Development keeps accepting any secret of 32 bytes or more.
        assert!(with(&[("AUTH_SECRET", repeated.as_str())]).is_ok());
    }

    #[test]
    fn entropy_estimate() {
        assert_eq!(estimated_entropy_bits(""), 0.0);
        assert_eq!(estimated_entropy_bits(&"a".repeat(32)), 0.0);
        assert!((estimated_entropy_bits(&"ab".repeat(32)) - 2.0).abs() < 1e-9);
        assert!((estimated_entropy_bits("0123456789abcdef") - 64.0).abs() < 1e-9);
        assert!((estimated_entropy_bits(&"0123456789abcdef".repeat(4)) - 64.0).abs() < 1e-9);
        assert!((estimated_entropy_bits(&"password".repeat(8)) - 22.0).abs() < 1e-9);
        assert_eq!(shortest_period(&['a', 'b', 'a']), 2);
        assert_eq!(shortest_period(&['a', 'b', 'c']), 3);
    }

    #[test]
    fn legacy_smtp_names_are_accepted() {
        let s = with(&[
            ("SMTP_SERVER", "smtp.example.com"),
            ("SMTP_PORT", "465"),
            ("SMTP_USER", "mailer"),
            ("SMTP_PASSWORD", "pw"),
            ("SMTP_EMAIL", "Team <team@example.com>"),
        ])
        .unwrap();
        let smtp = s.smtp.unwrap();
        assert_eq!(smtp.host, "smtp.example.com");
        assert_eq!((smtp.port, smtp.tls), (465, SmtpTls::Implicit));
        assert_eq!(smtp.username.as_deref(), Some("mailer"));
        assert_eq!(s.mail_from, "Team <team@example.com>");
    }

    #[test]
    fn metrics_are_off_unless_metrics_addr_names_their_own_listener() {
        assert_eq!(with(&[]).unwrap().metrics_addr, None);
        assert_eq!(with(&[("METRICS_ADDR", "off")]).unwrap().metrics_addr, None);
        assert_eq!(
            with(&[("METRICS_ADDR", "127.0.0.1:9100")])
                .unwrap()
                .metrics_addr,
            Some("127.0.0.1:9100".parse().unwrap())
        );
        assert_eq!(
            with(&[("METRICS_ADDR", "9100")]).unwrap_err().var,
            "METRICS_ADDR"
        );
        assert_eq!(
            with(&[("METRICS_TOKEN", "short")]).unwrap_err().var,
            "METRICS_TOKEN"
        );
        assert_eq!(
            with(&[
                ("BIND_ADDR", "127.0.0.1:8080"),
                ("METRICS_ADDR", "127.0.0.1:8080")
            ])
            .unwrap_err()
            .var,
            "METRICS_ADDR"
        );
    }

    #[test]
    fn bad_values_name_their_variable() {
        assert_eq!(
            with(&[("SESSION_TTL", "soon")]).unwrap_err().var,
            "SESSION_TTL"
        );
        assert_eq!(
            with(&[("SMTP_SERVER", "h"), ("SMTP_PORT", "x")])
                .unwrap_err()
                .var,
            "SMTP_PORT"
        );
        assert_eq!(with(&[("BIND_ADDR", "nope")]).unwrap_err().var, "BIND_ADDR");
        assert_eq!(
            with(&[("AUTH_SECRET", "short")]).unwrap_err().var,
            "AUTH_SECRET"
        );
        assert_eq!(
            with(&[("COOKIE_SECURE", "maybe")]).unwrap_err().var,
            "COOKIE_SECURE"
        );
        assert_eq!(
            with(&[("PASSWORD_MIN_LENGTH", "x")]).unwrap_err().var,
            "PASSWORD_MIN_LENGTH"
        );
        assert_eq!(with(&[("OTP_TTL", "1h")]).unwrap_err().var, "OTP_TTL");
    }

    #[test]
    fn rate_limits_parse_tiers_and_name_their_variable() {
        let s = with(&[]).unwrap();
        assert_eq!(s.throttle, ThrottleConfig::default());
        let s = with(&[
            ("RATE_LIMIT_LOGIN_PER_EMAIL_IP", "3/10s, 6/1h"),
            ("RATE_LIMIT_SIGNUP_PER_IP", "off"),
            ("RATE_LIMIT_MAIL_PER_EMAIL", "2/60"),
        ])
        .unwrap();
        assert_eq!(
            s.throttle.login_per_email_ip,
            RateLimit::per(3, Duration::from_secs(10)).and(6, Duration::from_secs(3600))
        );
        assert_eq!(s.throttle.signup.per_ip, RateLimit::off());
        assert_eq!(
            s.throttle.mail_per_email,
            RateLimit::per(2, Duration::from_secs(60))
        );
        for var in RATE_LIMIT_VARS {
            for bad in ["5", "x/1m", "0/1m", "5/soon", "5/0"] {
                assert_eq!(with(&[(var, bad)]).unwrap_err().var, var, "{var}={bad}");
            }
        }
    }

    #[test]
    fn connection_limits_have_defaults_and_name_their_variable() {
        let s = with(&[]).unwrap();
        assert_eq!(s.request_timeout, Duration::from_secs(15));
        assert_eq!(s.shutdown_timeout, Duration::from_secs(25));
        assert_eq!(s.max_connections, DEFAULT_MAX_CONNECTIONS);
        assert_eq!(s.max_sessions_per_user, 100);
        assert_eq!(s.max_connections_per_client, Some(64));
        assert_eq!(s.argon2_nice, 0);
        assert_eq!(with(&[("ARGON2_NICE", "5")]).unwrap().argon2_nice, 5);
        assert_eq!(with(&[("ARGON2_NICE", "0")]).unwrap().argon2_nice, 0);
        assert_eq!(with(&[("ARGON2_NICE", "19")]).unwrap().argon2_nice, 19);
        let s = with(&[
            ("REQUEST_TIMEOUT", "2s"),
            ("SHUTDOWN_TIMEOUT", "0"),
            ("MAX_CONNECTIONS", "64"),
            ("MAX_SESSIONS_PER_USER", "3"),
            ("MAX_CONNECTIONS_PER_CLIENT", "8"),
        ])
        .unwrap();
        assert_eq!(s.request_timeout, Duration::from_secs(2));
        assert_eq!(s.shutdown_timeout, Duration::ZERO);
        assert_eq!((s.max_connections, s.max_sessions_per_user), (64, 3));
        assert_eq!(s.max_connections_per_client, Some(8));
        let s = with(&[("MAX_CONNECTIONS_PER_CLIENT", "Off")]).unwrap();
        assert_eq!(s.max_connections_per_client, None);
        for (var, bad) in [
            ("MAX_CONNECTIONS_PER_CLIENT", "0"),
            ("ARGON2_NICE", "20"),
            ("ARGON2_NICE", "-1"),
            ("MAX_CONNECTIONS_PER_CLIENT", "many"),
            ("REQUEST_TIMEOUT", "100ms"),
            ("REQUEST_TIMEOUT", "soon"),
            ("SHUTDOWN_TIMEOUT", "x"),
            ("MAX_CONNECTIONS", "0"),
            ("MAX_SESSIONS_PER_USER", "none"),
        ] {
            assert_eq!(with(&[(var, bad)]).unwrap_err().var, var, "{var}={bad}");
        }
    }

    #[test]
    fn durations_accept_seconds_and_units() {
        let s = with(&[("SESSION_TTL", "3600"), ("OTP_TTL", "5m")]).unwrap();
        assert_eq!(s.session_ttl, Duration::from_secs(3600));
        assert_eq!(s.otp_ttl, Duration::from_secs(300));
        assert_eq!(s.session_idle_timeout, Some(Duration::from_secs(30 * 60)));
        let s = with(&[("SESSION_IDLE_TIMEOUT", "15m")]).unwrap();
        assert_eq!(s.session_idle_timeout, Some(Duration::from_secs(15 * 60)));
        let s = with(&[("SESSION_IDLE_TIMEOUT", "OFF")]).unwrap();
        assert_eq!(s.session_idle_timeout, None);
        for bad in ["0", "500ms", "soon"] {
            assert_eq!(
                with(&[("SESSION_IDLE_TIMEOUT", bad)]).unwrap_err().var,
                "SESSION_IDLE_TIMEOUT",
                "{bad}"
            );
        }
    }
}

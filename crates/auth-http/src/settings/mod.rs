//! Typed settings, read once at start-up from environment variables (and a `.env` file), each
//! validated with an error that names the variable.
//!
//! [`Settings`] is a set of sections, one per part of the service ([`HttpSettings`],
//! [`DatabaseSettings`], [`SessionStoreSettings`], [`MailSettings`], the hasher's
//! [`Argon2Settings`], [`AuthSettings`], ...), each read by its own function through [`Env`],
//! a small reader with one typed helper per kind of value. Where an adapter has a settings
//! type of its own (PostgreSQL, SQLite, Redis, memory, SMTP, Argon2), the section is that
//! type, filled in here, so `wiring` hands it over unchanged.

mod auth;
mod env;
mod http;
mod mail;
mod passkeys;
mod stores;
mod webhooks;

use std::time::Duration;

pub use auth_argon2::Argon2Settings;

pub use self::auth::{
    estimated_entropy_bits, parse_rate_limit, AuthSettings, BindingMode, BreachedPasswordSettings,
    DeviceSettings, MfaSettings, SecurityEventSettings, DEFAULT_MFA_ISSUER, MAX_MFA_ISSUER_CHARS,
    MAX_MFA_TOKEN_TTL, MIN_MFA_TOKEN_TTL, MIN_SECRET_BITS, RATE_LIMIT_VARS,
};
pub use self::env::{Env, MIN_TOKEN_BYTES};
pub use self::http::{HttpSettings, MetricsSettings, DEFAULT_MAX_CONNECTIONS};
pub use self::mail::{MailDelivery, MailSettings, OutboxSettings, DEFAULT_MAIL_FROM};
pub use self::passkeys::PasskeySettings;
pub use self::stores::{
    DatabaseSettings, SessionStoreSettings, DEFAULT_MAX_SESSIONS_PER_USER, DEFAULT_SQLITE_URL,
};
pub use self::webhooks::WebhookSettings;
use crate::telemetry::LogFormat;
pub(crate) use env::err;

/// A setting that could not be used; names the variable.
#[derive(Debug, thiserror::Error)]
#[error("configuration error in {var}: {message}")]
pub struct ConfigError {
    /// The environment variable.
    pub var: &'static str,
    /// What is wrong with it.
    pub message: String,
}

/// Where the service runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppEnv {
    /// Local use: convenient defaults (a random per-process `AUTH_SECRET`, mail to files).
    Development,
    /// Deployed: every secret and dependency must be configured explicitly.
    Production,
}

/// Every setting of the server, by section.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `APP_ENV`: `development` (default) or `production`.
    pub app_env: AppEnv,
    /// `LOG_FORMAT`: `pretty` (default) or `json`.
    pub log_format: LogFormat,
    /// `DEPENDENCY_TIMEOUT`: how long to wait for PostgreSQL, Redis or SMTP (default `3s`);
    /// already applied to the sections that talk to them.
    pub dependency_timeout: Duration,
    /// The public listener (`BIND_ADDR`, `HTTP_WORKERS`, `REQUEST_TIMEOUT`,
    /// `MAX_CONNECTIONS*`, `SHUTDOWN_TIMEOUT`, `COOKIE_SECURE`, `ALLOWED_ORIGINS`,
    /// `TRUSTED_PROXIES`).
    pub http: HttpSettings,
    /// The Prometheus listener (`METRICS_ADDR`, `METRICS_TOKEN`).
    pub metrics: MetricsSettings,
    /// The user database (`DATABASE_URL`, `DATABASE_CA_FILE`).
    pub database: DatabaseSettings,
    /// Sessions, codes and rate limits (`REDIS_URL`, `REDIS_KEY_PREFIX`,
    /// `MAX_SESSIONS_PER_USER`).
    pub sessions: SessionStoreSettings,
    /// Mail (`SMTP_*`, `MAIL_*`, `OUTBOX_*`).
    pub mail: MailSettings,
    /// `ARGON2_MEMORY_KIB`, `ARGON2_ITERATIONS`, `ARGON2_PARALLELISM`: hashing cost;
    /// `ARGON2_WORKERS`: hashing threads (default: number of cores); `ARGON2_QUEUE`: requests
    /// allowed to wait for one, one more gets 503 (default: 64 per thread; `0` refuses as soon
    /// as every thread is busy); `ARGON2_NICE`: nice value of the hashing threads, 0–19
    /// (default 0; Linux): above 0, when the cores are busy, the threads that answer requests
    /// go first.
    pub argon2: Argon2Settings,
    /// How the service authenticates (`AUTH_SECRET`, lifetimes, `RATE_LIMIT_*`, `MFA_*`, ...).
    pub auth: AuthSettings,
    /// `JWT_*`: service tokens (`POST /token`, `/.well-known/jwks.json`).
    pub tokens: crate::tokens::TokenSettings,
    /// `SECURITY_EVENT_*`: each account's security history.
    pub events: SecurityEventSettings,
    /// `WEBAUTHN_RP_ID`, `WEBAUTHN_ORIGIN`, `WEBAUTHN_CEREMONY_TTL`: passkeys; off without
    /// them.
    pub passkeys: Option<PasskeySettings>,
    /// `WEBHOOK_*`: how webhook deliveries are sent, retried and kept.
    pub webhooks: WebhookSettings,
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_SERVICE_NAME`: traces (feature `otlp`).
    pub traces: crate::telemetry::TraceSettings,
}

impl Settings {
    /// Reads the process environment (after loading `.env` if present).
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads settings through `lookup` (tests pass a map).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env::new(&lookup);
        let app_env = env.choice(
            "APP_ENV",
            &[
                (&["development", "dev"], AppEnv::Development),
                (&["production", "prod"], AppEnv::Production),
            ],
            AppEnv::Development,
            "development or production",
        )?;
        let dev = app_env == AppEnv::Development;
        let dependency_timeout = env.duration("DEPENDENCY_TIMEOUT", Duration::from_secs(3))?;
        let http = HttpSettings::read(&env)?;
        let metrics = MetricsSettings::read(&env, &http)?;
        let database = DatabaseSettings::read(&env, dependency_timeout)?;
        let sessions = SessionStoreSettings::read(&env, dev, dependency_timeout)?;
        let mail = MailSettings::read(&env, dev, dependency_timeout)?;
        let auth = AuthSettings::read(&env, dev)?;
        Ok(Self {
            log_format: env.choice(
                "LOG_FORMAT",
                &[
                    (&["pretty", "text"], LogFormat::Pretty),
                    (&["json"], LogFormat::Json),
                ],
                LogFormat::Pretty,
                "pretty or json",
            )?,
            argon2: read_argon2(&env)?,
            tokens: crate::tokens::TokenSettings::read(&env, app_env, http.bind_addr)?,
            events: SecurityEventSettings::read(&env)?,
            traces: crate::telemetry::TraceSettings::read(&env)?,
            passkeys: PasskeySettings::read(&env, app_env, &http.allowed_origins)?,
            webhooks: WebhookSettings::read(&env, app_env)?,
            app_env,
            dependency_timeout,
            http,
            metrics,
            database,
            sessions,
            mail,
            auth,
        })
    }
}

/// `ARGON2_*`, into the hasher's own settings (checked when the hasher is built).
fn read_argon2(env: &Env<'_>) -> Result<Argon2Settings, ConfigError> {
    let base = env
        .positive("ARGON2_WORKERS")?
        .map_or_else(Argon2Settings::default, Argon2Settings::with_concurrency);
    let queue = env
        .string("ARGON2_QUEUE")
        .map(|v| {
            v.parse::<usize>()
                .map_err(|_| err("ARGON2_QUEUE", format!("{v:?} is not a number (0 or more)")))
        })
        .transpose()?;
    Ok(Argon2Settings {
        memory_kib: env.number("ARGON2_MEMORY_KIB", base.memory_kib)?,
        iterations: env.number("ARGON2_ITERATIONS", base.iterations)?,
        parallelism: env.number("ARGON2_PARALLELISM", base.parallelism)?,
        max_queue: queue.unwrap_or(base.max_queue),
        worker_nice: env.number_in(
            "ARGON2_NICE",
            0..=Argon2Settings::MAX_WORKER_NICE,
            Argon2Settings::DEFAULT_WORKER_NICE,
        )?,
        ..base
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use auth_core::RateLimit;
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
    fn sections_are_the_adapters_own_settings_with_the_dependency_timeout_applied() {
        let s = with(&[
            ("DEPENDENCY_TIMEOUT", "7s"),
            ("DATABASE_URL", "postgres://app:pw@db/auth?sslmode=require"),
            ("DATABASE_CA_FILE", "/etc/ssl/db-ca.pem"),
            ("REDIS_URL", "redis://cache:6379"),
            ("REDIS_KEY_PREFIX", "tenant-a"),
            ("MAX_SESSIONS_PER_USER", "12"),
            ("SMTP_HOST", "smtp.example.com"),
            ("ARGON2_WORKERS", "3"),
            ("ARGON2_QUEUE", "0"),
            ("ARGON2_MEMORY_KIB", "65536"),
        ])
        .unwrap();
        let DatabaseSettings::Postgres(pg) = &s.database else {
            panic!("postgres:// gives PostgreSQL: {:?}", s.database)
        };
        let seven = Duration::from_secs(7);
        assert_eq!(
            (pg.connect_timeout, pg.acquire_timeout, pg.query_timeout),
            (seven, seven, seven)
        );
        assert_eq!(
            pg.ca_file.as_deref(),
            Some(std::path::Path::new("/etc/ssl/db-ca.pem"))
        );
        assert!(
            !s.database.describe().contains("pw"),
            "{}",
            s.database.describe()
        );
        let SessionStoreSettings::Redis(redis) = &s.sessions else {
            panic!("REDIS_URL gives Redis")
        };
        assert_eq!(
            (redis.key_prefix.as_str(), redis.timeout),
            ("tenant-a", seven)
        );
        assert_eq!(redis.max_sessions_per_user, 12);
        let smtp = s.mail.smtp.as_ref().unwrap();
        assert_eq!(
            smtp.timeout,
            Duration::from_secs(7),
            "at least 5s, else the timeout"
        );
        assert_eq!((smtp.port, smtp.tls), (587, auth_smtp::TlsMode::StartTls));
        assert_eq!(
            (
                s.argon2.max_concurrent,
                s.argon2.max_queue,
                s.argon2.memory_kib
            ),
            (3, 0, 65_536)
        );
        assert_eq!(
            with(&[("ARGON2_WORKERS", "3")]).unwrap().argon2,
            Argon2Settings::with_concurrency(3),
            "unset variables keep the hasher's own defaults"
        );
        let quick = with(&[("SMTP_HOST", "h"), ("DEPENDENCY_TIMEOUT", "1s")]).unwrap();
        assert_eq!(quick.mail.smtp.unwrap().timeout, Duration::from_secs(5));
        assert_eq!(
            with(&[("DATABASE_CA_FILE", "/ca.pem")]).unwrap_err().var,
            "DATABASE_CA_FILE",
            "a CA file for SQLite is a mistake"
        );
        assert_eq!(
            with(&[("DEPENDENCY_TIMEOUT", "later")]).unwrap_err().var,
            "DEPENDENCY_TIMEOUT"
        );
    }

    #[test]
    fn traces_go_to_an_http_collector_only_when_the_build_can_export_them() {
        let s = with(&[]).unwrap().traces;
        assert_eq!(s.otlp_endpoint, None);
        assert_eq!(s.service_name, crate::telemetry::DEFAULT_SERVICE_NAME);
        let e = with(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318")]).unwrap_err();
        assert_eq!(e.var, "OTEL_EXPORTER_OTLP_ENDPOINT");
        let set = with(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
            ("OTEL_SERVICE_NAME", "auth-eu"),
        ]);
        if cfg!(feature = "otlp") {
            let s = set.unwrap().traces;
            assert_eq!(s.otlp_endpoint.as_deref(), Some("http://collector:4318"));
            assert_eq!(s.service_name, "auth-eu");
        } else {
            let e = set.unwrap_err();
            assert_eq!(e.var, "OTEL_EXPORTER_OTLP_ENDPOINT");
            assert!(e.message.contains("--features otlp"), "{}", e.message);
        }
    }

    #[test]
    fn device_settings_have_defaults_and_refuse_odd_values() {
        let s = with(&[]).unwrap().auth.devices;
        assert_eq!(s, DeviceSettings::default());
        assert_eq!(s.binding(), auth_core::SessionBinding::Off);
        let s = with(&[
            ("SESSION_BINDING", "ip-prefix"),
            ("SESSION_IP_PREFIX_V4", "16"),
            ("SESSION_IP_PREFIX_V6", "64"),
            ("NEW_DEVICE_MAIL", "false"),
        ])
        .unwrap()
        .auth
        .devices;
        assert_eq!(
            s.binding(),
            auth_core::SessionBinding::IpPrefix {
                ipv4_prefix: 16,
                ipv6_prefix: 64
            }
        );
        assert!(!s.new_device_mail);
        let s = with(&[("SESSION_BINDING", "user-agent")])
            .unwrap()
            .auth
            .devices;
        assert_eq!(s.binding(), auth_core::SessionBinding::UserAgent);
        for (var, raw) in [
            ("SESSION_BINDING", "cookie"),
            ("SESSION_IP_PREFIX_V4", "33"),
            ("SESSION_IP_PREFIX_V6", "129"),
            ("NEW_DEVICE_MAIL", "maybe"),
        ] {
            assert_eq!(with(&[(var, raw)]).unwrap_err().var, var);
        }
    }

    #[test]
    fn redis_cluster_is_a_node_list_or_a_flag() {
        let redis = |vars: &[(&str, &str)]| match with(vars).unwrap().sessions {
            SessionStoreSettings::Redis(r) => r,
            SessionStoreSettings::Memory(_) => panic!("REDIS_URL gives Redis"),
        };
        assert!(!redis(&[("REDIS_URL", "redis://a:7000")]).is_cluster());
        assert!(redis(&[("REDIS_URL", "redis://a:7000"), ("REDIS_CLUSTER", "true")]).is_cluster());
        assert!(redis(&[("REDIS_URL", "redis://a:7000, rediss://b:7000")]).is_cluster());
        for bad in ["redis://a:7000,b:7000", "redis://a:7000,,", "http://a"] {
            assert_eq!(
                with(&[("REDIS_URL", bad)]).unwrap_err().var,
                "REDIS_URL",
                "{bad}"
            );
        }
        let e = with(&[("REDIS_URL", "redis://a"), ("REDIS_CLUSTER", "maybe")]).unwrap_err();
        assert_eq!(e.var, "REDIS_CLUSTER");
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
    fn development_defaults() {
        let s = with(&[]).unwrap();
        assert_eq!(s.app_env, AppEnv::Development);
        assert_eq!(s.auth.session_ttl, Duration::from_secs(86_400));
        assert_eq!(s.auth.otp_ttl, Duration::from_secs(600));
        assert!(s.http.cookie_secure);
        assert!(s.mail.smtp.is_none());
        assert!(matches!(&s.database, DatabaseSettings::Sqlite(db)
            if *db == auth_sqlite::SqliteSettings::from_url(DEFAULT_SQLITE_URL).unwrap()));
        assert!(!s.sessions.is_redis());
        assert!(s.mail.templates_dir.is_none());
    }

    #[test]
    fn mfa_settings_default_to_the_service_defaults() {
        let mfa = with(&[]).unwrap().auth.mfa;
        let config = auth_core::AuthConfig::default();
        assert_eq!(mfa.issuer, config.totp_issuer);
        assert_eq!(mfa.token_ttl, config.mfa_token_ttl);
        assert_eq!(mfa.token_ttl, Duration::from_secs(300));
        let blank = with(&[("MFA_ISSUER", "  "), ("MFA_TOKEN_TTL", "")]).unwrap();
        assert_eq!(
            blank.auth.mfa,
            MfaSettings::default(),
            "empty values mean the default"
        );
    }

    #[test]
    fn mfa_issuer_is_read_trimmed() {
        let s = with(&[("MFA_ISSUER", "  Example Corp (staging) ")]).unwrap();
        assert_eq!(s.auth.mfa.issuer, "Example Corp (staging)");
        let s = with(&[("MFA_ISSUER", &"é".repeat(MAX_MFA_ISSUER_CHARS))]).unwrap();
        assert_eq!(s.auth.mfa.issuer.chars().count(), MAX_MFA_ISSUER_CHARS);
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
            assert_eq!(s.auth.mfa.token_ttl, Duration::from_secs(secs), "{raw}");
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
            s.mail.templates_dir.as_deref(),
            Some(std::path::Path::new("/etc/secureauth/mail"))
        );
        let s = with(&[("MAIL_TEMPLATES_DIR", "")]).unwrap();
        assert!(s.mail.templates_dir.is_none());
    }

    #[test]
    fn mail_delivery_is_the_outbox_unless_inline_is_asked_for_in_development() {
        assert_eq!(with(&[]).unwrap().mail.delivery, MailDelivery::Outbox);
        for (raw, expected) in [
            ("outbox", MailDelivery::Outbox),
            ("inline", MailDelivery::Inline),
            (" Inline ", MailDelivery::Inline),
            ("OUTBOX", MailDelivery::Outbox),
        ] {
            let s = with(&[("MAIL_DELIVERY", raw)]).unwrap();
            assert_eq!(s.mail.delivery, expected, "{raw:?}");
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
            with(&production).unwrap().mail.delivery,
            MailDelivery::Outbox
        );
        let mut outbox = production.to_vec();
        outbox.push(("MAIL_DELIVERY", "outbox"));
        assert_eq!(with(&outbox).unwrap().mail.delivery, MailDelivery::Outbox);
        let mut inline = production.to_vec();
        inline.push(("MAIL_DELIVERY", "inline"));
        let e = with(&inline).unwrap_err();
        assert_eq!(e.var, "MAIL_DELIVERY");
        assert!(e.message.contains("production"), "{}", e.message);
        assert!(e.to_string().contains("MAIL_DELIVERY"), "{e}");
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
        assert_eq!(auth::shortest_period(&['a', 'b', 'a']), 2);
        assert_eq!(auth::shortest_period(&['a', 'b', 'c']), 3);
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
        let smtp = s.mail.smtp.unwrap();
        assert_eq!(smtp.host, "smtp.example.com");
        assert_eq!((smtp.port, smtp.tls), (465, auth_smtp::TlsMode::Implicit));
        assert_eq!(smtp.username.as_deref(), Some("mailer"));
        assert_eq!(s.mail.from, "Team <team@example.com>");
        assert_eq!(smtp.from, s.mail.from);
    }

    #[test]
    fn metrics_are_off_unless_metrics_addr_names_their_own_listener() {
        assert_eq!(with(&[]).unwrap().metrics.addr, None);
        assert_eq!(with(&[("METRICS_ADDR", "off")]).unwrap().metrics.addr, None);
        assert_eq!(
            with(&[("METRICS_ADDR", "127.0.0.1:9100")])
                .unwrap()
                .metrics
                .addr,
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
        assert_eq!(s.auth.throttle, auth_core::ThrottleConfig::default());
        let s = with(&[
            ("RATE_LIMIT_LOGIN_PER_EMAIL_IP", "3/10s, 6/1h"),
            ("RATE_LIMIT_SIGNUP_PER_IP", "off"),
            ("RATE_LIMIT_MAIL_PER_EMAIL", "2/60"),
        ])
        .unwrap();
        assert_eq!(
            s.auth.throttle.login_per_email_ip,
            RateLimit::per(3, Duration::from_secs(10)).and(6, Duration::from_secs(3600))
        );
        assert_eq!(s.auth.throttle.signup.per_ip, RateLimit::off());
        assert_eq!(
            s.auth.throttle.mail_per_email,
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
        assert_eq!(s.http.request_timeout, Duration::from_secs(15));
        assert_eq!(s.http.shutdown_timeout, Duration::from_secs(25));
        assert_eq!(s.http.max_connections, DEFAULT_MAX_CONNECTIONS);
        assert_eq!(s.sessions.max_sessions_per_user(), 100);
        assert_eq!(s.http.max_connections_per_client, Some(64));
        assert_eq!(s.http.send_buffer, Some(16 * 1024));
        assert_eq!(s.http.max_requests_per_client.map(|n| n.get()), Some(500));
        let rate = |v| {
            with(&[("MAX_REQUESTS_PER_CLIENT", v)])
                .unwrap()
                .http
                .max_requests_per_client
                .map(|n| n.get())
        };
        assert_eq!(rate("off"), None);
        assert_eq!(rate("20"), Some(20));
        assert_eq!(s.argon2.worker_nice, 0);
        assert_eq!(with(&[("ARGON2_NICE", "5")]).unwrap().argon2.worker_nice, 5);
        assert_eq!(with(&[("ARGON2_NICE", "0")]).unwrap().argon2.worker_nice, 0);
        assert_eq!(
            with(&[("ARGON2_NICE", "19")]).unwrap().argon2.worker_nice,
            19
        );
        let s = with(&[
            ("REQUEST_TIMEOUT", "2s"),
            ("SHUTDOWN_TIMEOUT", "0"),
            ("MAX_CONNECTIONS", "64"),
            ("MAX_SESSIONS_PER_USER", "3"),
            ("MAX_CONNECTIONS_PER_CLIENT", "8"),
        ])
        .unwrap();
        assert_eq!(s.http.request_timeout, Duration::from_secs(2));
        assert_eq!(s.http.shutdown_timeout, Duration::ZERO);
        assert_eq!(
            (s.http.max_connections, s.sessions.max_sessions_per_user()),
            (64, 3)
        );
        assert_eq!(s.http.max_connections_per_client, Some(8));
        let s = with(&[("MAX_CONNECTIONS_PER_CLIENT", "Off")]).unwrap();
        assert_eq!(s.http.max_connections_per_client, None);
        let buffer = |v| with(&[("SEND_BUFFER_SIZE", v)]).unwrap().http.send_buffer;
        assert_eq!(buffer("off"), None);
        assert_eq!(buffer("4096"), Some(4096));
        assert_eq!(buffer("4194304"), Some(4 * 1024 * 1024));
        for (var, bad) in [
            ("SEND_BUFFER_SIZE", "4095"),
            ("MAX_REQUESTS_PER_CLIENT", "0"),
            ("MAX_REQUESTS_PER_CLIENT", "lots"),
            ("SEND_BUFFER_SIZE", "4194305"),
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
        assert_eq!(s.auth.session_ttl, Duration::from_secs(3600));
        assert_eq!(s.auth.otp_ttl, Duration::from_secs(300));
        assert_eq!(
            s.auth.session_idle_timeout,
            Some(Duration::from_secs(30 * 60))
        );
        let s = with(&[("SESSION_IDLE_TIMEOUT", "15m")]).unwrap();
        assert_eq!(
            s.auth.session_idle_timeout,
            Some(Duration::from_secs(15 * 60))
        );
        let s = with(&[("SESSION_IDLE_TIMEOUT", "OFF")]).unwrap();
        assert_eq!(s.auth.session_idle_timeout, None);
        for bad in ["0", "500ms", "soon"] {
            assert_eq!(
                with(&[("SESSION_IDLE_TIMEOUT", bad)]).unwrap_err().var,
                "SESSION_IDLE_TIMEOUT",
                "{bad}"
            );
        }
    }
}

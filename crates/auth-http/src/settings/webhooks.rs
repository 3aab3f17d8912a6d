//! The webhook section: how deliveries are sent, retried and kept.

use std::time::Duration;

use super::env::Env;
use super::{AppEnv, ConfigError};

/// Webhooks (`WEBHOOK_*`): endpoints are registered through the administration API; these say
/// how their deliveries go out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookSettings {
    /// `WEBHOOK_ALLOW_HTTP`: accept plain `http://` endpoint URLs (default: yes in
    /// development, no in production, where only `https://` is accepted unless this is set).
    pub allow_http: bool,
    /// `WEBHOOK_TIMEOUT`: the whole time one attempt may take, connection included
    /// (default `5s`, from `100ms` to `30s`); the connection alone gets at most half of it.
    pub timeout: Duration,
    /// `WEBHOOK_MAX_ATTEMPTS`: attempts before a delivery that keeps failing is dead
    /// (default 12, 1 to 100).
    pub max_attempts: u32,
    /// `WEBHOOK_BACKOFF_CAP`: the longest wait between attempts (default `10m`; from `1s`):
    /// waits start at a second and double, with jitter.
    pub backoff_cap: Duration,
    /// `WEBHOOK_MAX_AGE`: a delivery still undelivered this long after its event is dead
    /// (default `24h`, from `1m` to `30d`).
    pub max_age: Duration,
    /// `WEBHOOK_RETENTION_DAYS`: how long delivered and dead deliveries stay in the log
    /// (default 7, 1 to 365).
    pub retention_days: u32,
    /// `WEBHOOK_POLL_INTERVAL`: how often the courier looks for deliveries queued by other
    /// instances (default `1s`); it is woken at once for its own.
    pub poll_interval: Duration,
    /// `WEBHOOK_MAX_ENDPOINTS`: most endpoints at once (default 20, 1 to 1000).
    pub max_endpoints: usize,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            allow_http: true,
            timeout: Duration::from_secs(5),
            max_attempts: 12,
            backoff_cap: Duration::from_secs(600),
            max_age: Duration::from_secs(24 * 3600),
            retention_days: 7,
            poll_interval: Duration::from_secs(1),
            max_endpoints: 20,
        }
    }
}

impl WebhookSettings {
    pub(super) fn read(env: &Env<'_>, app_env: AppEnv) -> Result<Self, ConfigError> {
        let d = Self::default();
        Ok(Self {
            allow_http: env.flag("WEBHOOK_ALLOW_HTTP", app_env == AppEnv::Development)?,
            timeout: env.duration_in(
                "WEBHOOK_TIMEOUT",
                d.timeout,
                Duration::from_millis(100)..=Duration::from_secs(30),
                "must be a duration between 100ms and 30s",
            )?,
            max_attempts: env.number_in("WEBHOOK_MAX_ATTEMPTS", 1..=100, d.max_attempts)?,
            backoff_cap: env.duration_in(
                "WEBHOOK_BACKOFF_CAP",
                d.backoff_cap,
                Duration::from_secs(1)..=Duration::from_secs(24 * 3600),
                "must be a duration between 1s and 24h",
            )?,
            max_age: env.duration_in(
                "WEBHOOK_MAX_AGE",
                d.max_age,
                Duration::from_secs(60)..=Duration::from_secs(30 * 24 * 3600),
                "must be a duration between 1m and 30d",
            )?,
            retention_days: env.number_in("WEBHOOK_RETENTION_DAYS", 1..=365, d.retention_days)?,
            poll_interval: env.duration_in(
                "WEBHOOK_POLL_INTERVAL",
                d.poll_interval,
                Duration::from_millis(50)..=Duration::from_secs(60),
                "must be a duration between 50ms and 1m",
            )?,
            max_endpoints: env.number_in("WEBHOOK_MAX_ENDPOINTS", 1..=1000, d.max_endpoints)?,
        })
    }

    /// How long finished deliveries are kept.
    pub fn retention(&self) -> Duration {
        Duration::from_secs(u64::from(self.retention_days) * 24 * 3600)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn read(vars: &[(&str, &str)], app_env: AppEnv) -> Result<WebhookSettings, ConfigError> {
        let lookup = |k: &str| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| (*v).to_owned())
        };
        WebhookSettings::read(&Env::new(&lookup), app_env)
    }

    #[test]
    fn plain_http_endpoints_are_refused_in_production_unless_allowed() {
        assert!(read(&[], AppEnv::Development).unwrap().allow_http);
        assert!(!read(&[], AppEnv::Production).unwrap().allow_http);
        assert!(
            read(&[("WEBHOOK_ALLOW_HTTP", "true")], AppEnv::Production)
                .unwrap()
                .allow_http
        );
    }

    #[test]
    fn bounds_are_checked_and_name_the_variable() {
        assert_eq!(
            read(&[], AppEnv::Development).unwrap(),
            WebhookSettings::default()
        );
        for (var, value) in [
            ("WEBHOOK_TIMEOUT", "1m"),
            ("WEBHOOK_MAX_ATTEMPTS", "0"),
            ("WEBHOOK_MAX_AGE", "1s"),
            ("WEBHOOK_RETENTION_DAYS", "0"),
            ("WEBHOOK_MAX_ENDPOINTS", "x"),
        ] {
            assert_eq!(
                read(&[(var, value)], AppEnv::Development).unwrap_err().var,
                var
            );
        }
    }
}

//! The mail section: the transport (SMTP, read into the adapter's own settings, or files),
//! the sender, the texts and the outbox.

use std::path::PathBuf;
use std::time::Duration;

use auth_smtp::{SmtpSettings, TlsMode};
use secrecy::SecretString;

use super::env::{err, Env};
use super::ConfigError;

/// Default of `MAIL_FROM`.
pub const DEFAULT_MAIL_FROM: &str = "SecureAuth <no-reply@localhost>";

/// How the service hands its mail to the mail server (`MAIL_DELIVERY`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailDelivery {
    /// Queued in the user database and sent by this instance's courier task (the default):
    /// no request waits for the mail server.
    Outbox,
    /// Sent inside the request that causes it, with the transport itself as the mailer and
    /// no courier. Development only: requests wait for the mail server, and only those that
    /// mail (say, a reset for an existing account) do, so answer times would tell which
    /// addresses have accounts. For measuring the outbox against (`auth-bench`) and debugging.
    Inline,
}

/// Where mail goes and how.
#[derive(Debug, Clone)]
pub struct MailSettings {
    /// `SMTP_HOST`/`SMTP_SERVER`, `SMTP_PORT`, `SMTP_TLS`, `SMTP_USERNAME`/`SMTP_USER`,
    /// `SMTP_PASSWORD`: the SMTP server; `None` writes mail to [`Self::dir`] (development).
    pub smtp: Option<SmtpSettings>,
    /// `MAIL_FROM`/`SMTP_EMAIL`: sender mailbox (default [`DEFAULT_MAIL_FROM`]).
    pub from: String,
    /// `MAIL_DIR`: where mail goes without SMTP (default `./data/mail`).
    pub dir: PathBuf,
    /// `MAIL_DELIVERY`: `outbox` (default) or `inline` (development only).
    pub delivery: MailDelivery,
    /// `MAIL_TEMPLATES_DIR`: a folder of mail templates laid over the built-in ones
    /// (`<dir>/<lang>/<file>`, see `auth_smtp`'s documentation); loaded and checked at
    /// start-up. `None`: the built-in English and German texts.
    pub templates_dir: Option<PathBuf>,
    /// `OUTBOX_*`, `MAIL_SUPPRESS_FOR`, `BOUNCE_WEBHOOK_TOKEN`, `OPS_TOKEN`: how queued mail
    /// is delivered.
    pub outbox: OutboxSettings,
}

impl MailSettings {
    pub(super) fn read(
        env: &Env<'_>,
        dev: bool,
        dependency_timeout: Duration,
    ) -> Result<Self, ConfigError> {
        let from = env
            .first(&["MAIL_FROM", "SMTP_EMAIL"])
            .map(|(_, v)| v)
            .unwrap_or_else(|| DEFAULT_MAIL_FROM.into());
        let smtp = match env.first(&["SMTP_HOST", "SMTP_SERVER"]) {
            None if !dev => {
                return Err(err("SMTP_HOST", "an SMTP server is required in production"))
            }
            None => None,
            Some((_, host)) => Some(smtp(env, dev, host, &from, dependency_timeout)?),
        };
        let delivery = env.choice(
            "MAIL_DELIVERY",
            &[
                (&["outbox"], MailDelivery::Outbox),
                (&["inline"], MailDelivery::Inline),
            ],
            MailDelivery::Outbox,
            "outbox or inline",
        )?;
        if delivery == MailDelivery::Inline && !dev {
            return Err(err(
                "MAIL_DELIVERY",
                "inline is refused in production: requests that send mail (a code or notice \
                 for an existing account) would wait for the mail server, so answer times would \
                 tell which addresses have accounts; use outbox (the default)",
            ));
        }
        Ok(Self {
            smtp,
            from,
            dir: env
                .path("MAIL_DIR")
                .unwrap_or_else(|| PathBuf::from("data/mail")),
            delivery,
            templates_dir: env.path("MAIL_TEMPLATES_DIR"),
            outbox: OutboxSettings::read(env)?,
        })
    }
}

/// The SMTP adapter's settings: the port follows the TLS mode unless given (465 implicit
/// TLS, 587 STARTTLS, 25 plain), and the TLS mode the port.
fn smtp(
    env: &Env<'_>,
    dev: bool,
    host: String,
    from: &str,
    dependency_timeout: Duration,
) -> Result<SmtpSettings, ConfigError> {
    let tls = match env.string("SMTP_TLS") {
        None => None,
        Some(_) => Some(env.choice(
            "SMTP_TLS",
            &[
                (&["implicit", "tls", "ssl"], TlsMode::Implicit),
                (&["starttls"], TlsMode::StartTls),
                (&["none", "plain", "off"], TlsMode::None),
            ],
            TlsMode::StartTls,
            "implicit, starttls or none",
        )?),
    };
    let port: Option<u16> = env
        .string("SMTP_PORT")
        .map(|v| {
            v.parse()
                .map_err(|_| err("SMTP_PORT", format!("{v:?} is not a port number")))
        })
        .transpose()?;
    let (port, tls) = match (port, tls) {
        (Some(p), Some(t)) => (p, t),
        (None, Some(t)) => (t.default_port(), t),
        (Some(465), None) => (465, TlsMode::Implicit),
        (Some(p), None) => (p, TlsMode::StartTls),
        (None, None) => (TlsMode::StartTls.default_port(), TlsMode::StartTls),
    };
    if tls == TlsMode::None && !dev {
        return Err(err("SMTP_TLS", "plain SMTP is only allowed in development"));
    }
    let mut smtp = SmtpSettings::new(host, tls, from);
    smtp.port = port;
    smtp.username = env.first(&["SMTP_USERNAME", "SMTP_USER"]).map(|(_, v)| v);
    smtp.password = env.string("SMTP_PASSWORD").map(SecretString::from);
    // Sending a message takes a few round trips: never less than 5 s for the whole of it.
    smtp.timeout = dependency_timeout.max(Duration::from_secs(5));
    Ok(smtp)
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

impl OutboxSettings {
    fn read(env: &Env<'_>) -> Result<Self, ConfigError> {
        const HOUR: u64 = 60 * 60;
        Ok(Self {
            poll_interval: env.duration("OUTBOX_POLL_INTERVAL", Duration::from_secs(1))?,
            max_attempts: env.number("OUTBOX_MAX_ATTEMPTS", 200)?,
            backoff_cap: env.duration("OUTBOX_BACKOFF_CAP", Duration::from_secs(20))?,
            lease: env.duration("OUTBOX_LEASE", Duration::from_secs(60))?,
            max_age: env.duration("OUTBOX_MAX_AGE", Duration::from_secs(24 * HOUR))?,
            suppress_for: env.duration("MAIL_SUPPRESS_FOR", Duration::from_secs(7 * 24 * HOUR))?,
            bounce_token: env.token("BOUNCE_WEBHOOK_TOKEN")?,
            ops_token: env.token("OPS_TOKEN")?,
        })
    }
}

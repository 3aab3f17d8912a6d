//! [`SmtpMailer`]: sends over SMTP with lettre's pooled async transport.

use std::fmt;
use std::sync::{PoisonError, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use auth_core::{EmailAddress, MailMessage, Mailer, MailerError};
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::{AsyncSmtpTransportBuilder, PoolConfig};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use secrecy::{ExposeSecret, SecretString};

use crate::message::build;
use crate::render::Renderer;

/// How the connection to the server is encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// TLS from the first byte ("SMTPS", usually port 465).
    Implicit,
    /// Plain connection upgraded with `STARTTLS`, which is required (usually port 587).
    StartTls,
    /// No encryption at all. Only for a development server on the local machine; credentials
    /// are refused in this mode.
    None,
}

impl TlsMode {
    /// The usual port for the mode: 465, 587 or 25.
    pub fn default_port(self) -> u16 {
        match self {
            Self::Implicit => 465,
            Self::StartTls => 587,
            Self::None => 25,
        }
    }
}

/// Connection settings of [`SmtpMailer`]. `Debug` never shows the password.
#[derive(Debug, Clone)]
pub struct SmtpSettings {
    /// Server host name (also the name checked against the TLS certificate).
    pub host: String,
    /// Server port.
    pub port: u16,
    /// Encryption of the connection.
    pub tls: TlsMode,
    /// User name for `AUTH`; set together with `password`, or neither.
    pub username: Option<String>,
    /// Password for `AUTH`.
    pub password: Option<SecretString>,
    /// Sender mailbox, e.g. `SecureAuth <no-reply@example.com>` or a bare address. Checked by
    /// [`SmtpMailer::new`].
    pub from: String,
    /// Bound on one whole send (connecting, TLS, every SMTP command). A send that takes longer
    /// fails with [`MailerError::Unavailable`].
    pub timeout: Duration,
    /// Most idle connections kept open for reuse. A burst of concurrent sends may open more
    /// for a moment; those are closed after their message instead of being kept.
    pub pool_size: u32,
}

impl SmtpSettings {
    /// Default for [`SmtpSettings::timeout`].
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
    /// Default for [`SmtpSettings::pool_size`].
    pub const DEFAULT_POOL_SIZE: u32 = 4;

    /// Settings without credentials, on the usual port for `tls`, with the default timeout and
    /// pool size.
    pub fn new(host: impl Into<String>, tls: TlsMode, from: impl Into<String>) -> Self {
        Self {
            host: host.into(),
            port: tls.default_port(),
            tls,
            username: None,
            password: None,
            from: from.into(),
            timeout: Self::DEFAULT_TIMEOUT,
            pool_size: Self::DEFAULT_POOL_SIZE,
        }
    }
}

/// Why [`SmtpMailer::new`] (or [`crate::FileMailer::with_from`]) refused its settings.
#[derive(Debug, thiserror::Error)]
pub enum SmtpConfigError {
    /// The host is empty or contains whitespace.
    #[error("the SMTP host is empty or contains whitespace")]
    InvalidHost,
    /// `from` is not a mailbox.
    #[error("the sender {from:?} is not a valid mailbox")]
    InvalidFrom {
        /// The value given.
        from: String,
        /// Why lettre refused it.
        #[source]
        source: lettre::address::AddressError,
    },
    /// Only one of `username` and `password` is set.
    #[error("the SMTP username and password must be set together")]
    IncompleteCredentials,
    /// Credentials with [`TlsMode::None`] would travel in clear text.
    #[error("SMTP credentials require TLS (Implicit or StartTls)")]
    CredentialsWithoutTls,
    /// `timeout` is zero.
    #[error("the SMTP timeout must be greater than zero")]
    ZeroTimeout,
    /// `pool_size` is zero.
    #[error("the SMTP pool size must be at least 1")]
    ZeroPoolSize,
    /// The TLS configuration could not be built.
    #[error("cannot set up TLS for the SMTP connection")]
    Tls(#[source] lettre::transport::smtp::Error),
    /// Not called inside a Tokio runtime (the connection pool needs one).
    #[error("the SMTP mailer must be created inside a Tokio runtime")]
    NoRuntime(#[source] tokio::runtime::TryCurrentError),
}

pub(crate) fn parse_from(from: &str) -> Result<Mailbox, SmtpConfigError> {
    from.parse::<Mailbox>()
        .map_err(|source| SmtpConfigError::InvalidFrom {
            from: from.to_owned(),
            source,
        })
}

type Transport = AsyncSmtpTransport<Tokio1Executor>;

/// Sends mail through an SMTP server, keeping a small pool of open connections.
///
/// Errors: a permanent refusal (`5xx`) is [`MailerError::Rejected`]; everything else
/// (connection refused, timeout, `4xx`, TLS or protocol failure) is
/// [`MailerError::Unavailable`]. No send takes longer than [`SmtpSettings::timeout`].
///
/// Create and use it inside a Tokio runtime; share it with `Arc`.
pub struct SmtpMailer {
    builder: AsyncSmtpTransportBuilder,
    /// `None` only while dropping.
    transport: RwLock<Option<Transport>>,
    from: Mailbox,
    host: String,
    port: u16,
    tls: TlsMode,
    timeout: Duration,
    /// The runtime the pool's background task lives on; the pool must be dropped inside it.
    runtime: tokio::runtime::Handle,
    renderer: Renderer,
}

impl fmt::Debug for SmtpMailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpMailer")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("from", &self.from.to_string())
            .field("timeout", &self.timeout)
            .field("renderer", &self.renderer)
            .finish_non_exhaustive()
    }
}

impl SmtpMailer {
    /// Checks the settings and prepares the connection pool. Does not connect: the first send
    /// does. Renders with the built-in templates until [`with_renderer`](Self::with_renderer).
    pub fn new(settings: SmtpSettings) -> Result<Self, SmtpConfigError> {
        let SmtpSettings {
            host,
            port,
            tls,
            username,
            password,
            from,
            timeout,
            pool_size,
        } = settings;
        if host.is_empty() || host.chars().any(char::is_whitespace) {
            return Err(SmtpConfigError::InvalidHost);
        }
        let from = parse_from(&from)?;
        if timeout.is_zero() {
            return Err(SmtpConfigError::ZeroTimeout);
        }
        if pool_size == 0 {
            return Err(SmtpConfigError::ZeroPoolSize);
        }
        let credentials = match (username, password) {
            (Some(user), Some(password)) => {
                Some(Credentials::new(user, password.expose_secret().to_owned()))
            }
            (None, None) => None,
            _ => return Err(SmtpConfigError::IncompleteCredentials),
        };
        if credentials.is_some() && tls == TlsMode::None {
            return Err(SmtpConfigError::CredentialsWithoutTls);
        }
        let runtime = tokio::runtime::Handle::try_current().map_err(SmtpConfigError::NoRuntime)?;

        let mut builder = match tls {
            TlsMode::Implicit => Transport::relay(&host).map_err(SmtpConfigError::Tls)?,
            TlsMode::StartTls => Transport::starttls_relay(&host).map_err(SmtpConfigError::Tls)?,
            TlsMode::None => Transport::builder_dangerous(&host),
        }
        .port(port)
        // lettre applies this to the TCP connect; the whole send is bounded in `send`.
        .timeout(Some(timeout))
        .pool_config(PoolConfig::new().max_size(pool_size));
        if let Some(credentials) = credentials {
            builder = builder.credentials(credentials);
        }
        let transport = builder.clone().build();
        Ok(Self {
            builder,
            transport: RwLock::new(Some(transport)),
            from,
            host,
            port,
            tls,
            timeout,
            runtime,
            renderer: Renderer::builtin(),
        })
    }

    /// Renders mail with `renderer` (e.g. [`Renderer::with_overrides`]).
    pub fn with_renderer(mut self, renderer: Renderer) -> Self {
        self.renderer = renderer;
        self
    }

    /// The sender mailbox.
    pub fn from(&self) -> &Mailbox {
        &self.from
    }

    fn transport(&self) -> Option<Transport> {
        self.transport
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// A send cut off mid-conversation leaves its connection in an unknown state, and lettre
    /// would put it back in the pool: start a fresh pool instead (the old one closes its
    /// connections when its last user is done).
    fn reset_pool(&self) {
        let fresh = self.builder.clone().build();
        let old = self
            .transport
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .replace(fresh);
        drop(old);
    }
}

impl Drop for SmtpMailer {
    fn drop(&mut self) {
        // Dropping the pool spawns its clean-up on the current runtime, which panics outside
        // one (e.g. after the runtime shut down): enter the pool's own runtime first.
        let _guard = self.runtime.enter();
        let transport = self
            .transport
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        drop(transport);
    }
}

/// Permanent (`5xx`) refusals are [`MailerError::Rejected`]; anything else may work later.
pub(crate) fn map_smtp_error(error: lettre::transport::smtp::Error) -> MailerError {
    if error.is_permanent() {
        MailerError::Rejected(Box::new(error))
    } else {
        MailerError::Unavailable(Box::new(error))
    }
}

/// The send took longer than [`SmtpSettings::timeout`].
#[derive(Debug, thiserror::Error)]
#[error("the SMTP server did not complete the send within {0:?}")]
pub struct SendTimeout(pub Duration);

/// The mailer is being dropped.
#[derive(Debug, thiserror::Error)]
#[error("the SMTP mailer is shut down")]
struct ShutDown;

#[async_trait]
impl Mailer for SmtpMailer {
    /// [`send_localized`](Mailer::send_localized) without a language preference: English.
    async fn send(&self, to: &EmailAddress, message: &MailMessage) -> Result<(), MailerError> {
        self.send_localized(to, message, None).await
    }

    #[tracing::instrument(skip_all, fields(kind = message.kind(), language = tracing::field::Empty))]
    async fn send_localized<'a>(
        &self,
        to: &EmailAddress,
        message: &MailMessage,
        language: Option<&'a str>,
    ) -> Result<(), MailerError> {
        let rendered = self.renderer.render(message, language);
        tracing::Span::current().record("language", rendered.language.as_str());
        let email = build(&self.from, to, rendered)?;
        let transport = self
            .transport()
            .ok_or_else(|| MailerError::Unavailable(Box::new(ShutDown)))?;
        match tokio::time::timeout(self.timeout, transport.send(email)).await {
            Ok(Ok(_response)) => {
                tracing::debug!("mail accepted by the SMTP server");
                Ok(())
            }
            Ok(Err(error)) => {
                let mapped = map_smtp_error(error);
                tracing::warn!(error = %DisplayChain(&mapped), "SMTP send failed");
                Err(mapped)
            }
            Err(_elapsed) => {
                tracing::warn!(timeout = ?self.timeout, "SMTP send timed out");
                self.reset_pool();
                Err(MailerError::Unavailable(Box::new(SendTimeout(
                    self.timeout,
                ))))
            }
        }
    }
}

/// Displays an error with its sources, `a: b: c`.
pub(crate) struct DisplayChain<'a>(pub &'a (dyn std::error::Error + 'static));

impl fmt::Display for DisplayChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(e) = source {
            write!(f, ": {e}")?;
            source = e.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> SmtpSettings {
        SmtpSettings::new(
            "smtp.example.com",
            TlsMode::StartTls,
            "SecureAuth <no-reply@example.com>",
        )
    }

    #[test]
    fn defaults() {
        let s = settings();
        assert_eq!(s.port, 587);
        assert_eq!(TlsMode::Implicit.default_port(), 465);
        assert_eq!(TlsMode::None.default_port(), 25);
        assert_eq!(s.timeout, Duration::from_secs(10));
        assert_eq!(s.pool_size, 4);
    }

    #[tokio::test]
    async fn valid_settings_build_for_every_tls_mode() {
        for tls in [TlsMode::Implicit, TlsMode::StartTls, TlsMode::None] {
            let mailer = SmtpMailer::new(SmtpSettings { tls, ..settings() }).unwrap();
            assert_eq!(mailer.from().email.to_string(), "no-reply@example.com");
        }
        let with_credentials = SmtpSettings {
            username: Some("mailer".into()),
            password: Some(SecretString::from("hunter2-hunter2")),
            ..settings()
        };
        let debug = format!("{with_credentials:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        let mailer = SmtpMailer::new(with_credentials).unwrap();
        assert!(!format!("{mailer:?}").contains("hunter2"));
    }

    #[tokio::test]
    async fn invalid_settings_are_refused() {
        type Expect = fn(&SmtpConfigError) -> bool;
        let cases: Vec<(SmtpSettings, Expect)> = vec![
            (
                SmtpSettings {
                    host: String::new(),
                    ..settings()
                },
                |e| matches!(e, SmtpConfigError::InvalidHost),
            ),
            (
                SmtpSettings {
                    from: "not a mailbox".into(),
                    ..settings()
                },
                |e| matches!(e, SmtpConfigError::InvalidFrom { .. }),
            ),
            (
                SmtpSettings {
                    username: Some("u".into()),
                    ..settings()
                },
                |e| matches!(e, SmtpConfigError::IncompleteCredentials),
            ),
            (
                SmtpSettings {
                    password: Some(SecretString::from("p")),
                    ..settings()
                },
                |e| matches!(e, SmtpConfigError::IncompleteCredentials),
            ),
            (
                SmtpSettings {
                    tls: TlsMode::None,
                    username: Some("u".into()),
                    password: Some(SecretString::from("p")),
                    ..settings()
                },
                |e| matches!(e, SmtpConfigError::CredentialsWithoutTls),
            ),
            (
                SmtpSettings {
                    timeout: Duration::ZERO,
                    ..settings()
                },
                |e| matches!(e, SmtpConfigError::ZeroTimeout),
            ),
            (
                SmtpSettings {
                    pool_size: 0,
                    ..settings()
                },
                |e| matches!(e, SmtpConfigError::ZeroPoolSize),
            ),
        ];
        for (settings, expected) in cases {
            let err = SmtpMailer::new(settings).unwrap_err();
            assert!(expected(&err), "{err:?}");
        }
    }

    #[test]
    fn outside_a_runtime_creation_fails_cleanly() {
        assert!(matches!(
            SmtpMailer::new(settings()),
            Err(SmtpConfigError::NoRuntime(_))
        ));
    }

    #[test]
    fn dropping_after_the_runtime_is_gone_does_not_panic() {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let mailer = runtime.block_on(async { SmtpMailer::new(settings()).unwrap() });
        drop(runtime);
        drop(mailer);
    }
}

//! [`PostgresSettings`]: what the adapter needs to know, and the pool it builds from it.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use auth_core::BoxError;
use diesel_async::pooled_connection::deadpool::{BuildError, Pool};
use diesel_async::AsyncPgConnection;
use secrecy::{ExposeSecret, SecretString};

use crate::connection::{self, Connector};

/// The connection pool type used by this crate.
pub type PgPool = Pool<AsyncPgConnection>;

/// Settings of the PostgreSQL adapter.
///
/// Build one with [`PostgresSettings::new`] and override fields as needed:
///
/// ```
/// use std::time::Duration;
/// use auth_postgres::PostgresSettings;
///
/// let settings = PostgresSettings {
///     max_connections: 20,
///     connect_timeout: Duration::from_secs(2),
///     ..PostgresSettings::new("postgres://app:secret@db:5432/auth".into())
/// };
/// assert!(!format!("{settings:?}").contains("secret"));
/// ```
#[derive(Clone)]
pub struct PostgresSettings {
    /// Connection URL (`postgres://user:password@host:port/database`, or the libpq
    /// `key=value` form). It may hold a password, so it is a secret and never logged.
    pub url: SecretString,
    /// Largest number of open connections in the pool.
    pub max_connections: usize,
    /// Longest time to open one connection (TCP connect, start-up and authentication).
    pub connect_timeout: Duration,
    /// Longest time an operation waits to obtain a usable connection from the pool: waiting
    /// for a free one, opening a new one and checking it. When it elapses the operation fails
    /// with `Unavailable`, so a dead server is reported within this bound, never a hang.
    pub acquire_timeout: Duration,
    /// Longest time one statement may take once it has a connection. When it elapses the
    /// operation fails with `Unavailable`.
    ///
    /// Every connection is opened with PostgreSQL's `statement_timeout` and `lock_timeout` set
    /// a little below it ([`Self::server_statement_timeout`]), so the server itself ends a
    /// statement that is stuck (behind a lock, on a slow disk) and the connection goes back
    /// to the pool, healthy. Only when the server does not answer at all does this client-side
    /// bound fire: then the statement is cancelled (a cancel request on a new connection) and
    /// the connection discarded. Either way a stall never leaves a statement running on the
    /// server, nor grows the number of connections past [`Self::max_connections`].
    pub query_timeout: Duration,
    /// PEM file of the certificate authorities that sign the server's certificate, for a URL
    /// with `sslmode=require`. Without it, the public web roots (Mozilla's, from
    /// `webpki-roots`) are trusted.
    ///
    /// TLS: `sslmode=require` connects over TLS only and verifies the server's certificate
    /// chain and host name (stricter than libpq's `require`, which checks neither). Without
    /// `sslmode`, or with `disable` or `prefer`, connections are plain: an unverified TLS
    /// connection would not stop an active attacker, so `prefer` does not try one.
    pub ca_file: Option<PathBuf>,
}

impl PostgresSettings {
    /// Default for [`Self::max_connections`].
    pub const DEFAULT_MAX_CONNECTIONS: usize = 10;
    /// Default for [`Self::connect_timeout`].
    pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
    /// Default for [`Self::acquire_timeout`].
    pub const DEFAULT_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
    /// Default for [`Self::query_timeout`].
    pub const DEFAULT_QUERY_TIMEOUT: Duration = Duration::from_secs(10);

    /// The `statement_timeout` and `lock_timeout` every connection runs with: four fifths of
    /// [`Self::query_timeout`] (at least 1 ms), so the server gives up first.
    pub fn server_statement_timeout(&self) -> Duration {
        (self.query_timeout * 4 / 5).max(Duration::from_millis(1))
    }

    /// What every connection runs once it is open, before any statement of the service: the
    /// [`server_statement_timeout`](Self::server_statement_timeout) as `statement_timeout` and
    /// `lock_timeout`.
    ///
    /// Statements, not start-up `options`: a connection pooler in front of PostgreSQL (such as
    /// PgBouncer 1.18, which refuses or drops unknown start-up parameters) passes statements
    /// through, and in its session mode a `SET` lasts as long as the client's connection.
    pub(crate) fn session_setup(&self) -> String {
        let ms = self.server_statement_timeout().as_millis();
        format!("SET statement_timeout = {ms}; SET lock_timeout = {ms}")
    }

    /// Settings for this URL, with the default pool size and timeouts.
    pub fn new(url: SecretString) -> Self {
        Self {
            url,
            max_connections: Self::DEFAULT_MAX_CONNECTIONS,
            connect_timeout: Self::DEFAULT_CONNECT_TIMEOUT,
            acquire_timeout: Self::DEFAULT_ACQUIRE_TIMEOUT,
            query_timeout: Self::DEFAULT_QUERY_TIMEOUT,
            ca_file: None,
        }
    }

    /// Builds a connection pool. No connection is opened yet: the pool connects on first use,
    /// so an application can start while the database is down and recovers when it comes back.
    ///
    /// Fails only when the settings are unusable (malformed URL, no host, zero size or
    /// timeout); call `ping()` on the repository at start-up to check reachability.
    pub fn pool(&self) -> Result<PgPool, PostgresError> {
        let manager = connection::manager(Arc::new(self.connector()?), self.connect_timeout);
        Pool::builder(manager)
            .max_size(self.max_connections)
            .build()
            .map_err(PostgresError::Pool)
    }

    /// The parsed URL and its transport (plain or verified TLS), after checking every setting.
    pub(crate) fn connector(&self) -> Result<Connector, PostgresError> {
        let config = self.connect_config()?;
        if config.get_ssl_mode() == tokio_postgres::config::SslMode::Require {
            let tls = tls_client_config(self.ca_file.as_deref())?;
            return Ok(Connector::tls(config, tls).with_setup(self.session_setup()));
        }
        if self.ca_file.is_some() {
            return Err(PostgresError::InvalidSettings(
                "a CA file is set, but the URL does not ask for TLS: add sslmode=require",
            ));
        }
        Ok(Connector::plain(config).with_setup(self.session_setup()))
    }

    /// The parsed URL, after checking every setting.
    pub(crate) fn connect_config(&self) -> Result<tokio_postgres::Config, PostgresError> {
        if self.max_connections == 0 {
            return Err(PostgresError::InvalidSettings(
                "max_connections must be at least 1",
            ));
        }
        if self.connect_timeout.is_zero()
            || self.acquire_timeout.is_zero()
            || self.query_timeout.is_zero()
        {
            return Err(PostgresError::InvalidSettings("timeouts must be positive"));
        }
        let mut config = tokio_postgres::Config::from_str(self.url.expose_secret())
            .map_err(|e| PostgresError::InvalidUrl(Box::new(e)))?;
        if config.get_hosts().is_empty() {
            return Err(PostgresError::InvalidSettings("the URL names no host"));
        }
        if config.get_application_name().is_none() {
            // Lets a DBA tell our sessions apart in pg_stat_activity.
            config.application_name("secureauth");
        }
        Ok(config)
    }
}

/// rustls settings trusting the CAs of `ca_file`, or the public web roots without one.
fn tls_client_config(ca_file: Option<&Path>) -> Result<rustls::ClientConfig, PostgresError> {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::CertificateDer;

    let tls_error = |e: &dyn fmt::Display| PostgresError::Tls(e.to_string().into());
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|e| {
                    PostgresError::Tls(format!("CA file {}: {e}", path.display()).into())
                })?;
            if certs.is_empty() {
                return Err(PostgresError::Tls(
                    format!("CA file {} holds no certificate", path.display()).into(),
                ));
            }
            for cert in certs {
                roots.add(cert).map_err(|e| tls_error(&e))?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_error(&e))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

impl fmt::Debug for PostgresSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresSettings")
            .field("url", &"[REDACTED]")
            .field("max_connections", &self.max_connections)
            .field("connect_timeout", &self.connect_timeout)
            .field("acquire_timeout", &self.acquire_timeout)
            .field("query_timeout", &self.query_timeout)
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

/// Why [`PostgresSettings`] cannot be turned into a pool.
#[derive(Debug, thiserror::Error)]
pub enum PostgresError {
    /// The URL does not parse. The message never repeats the URL.
    #[error("the PostgreSQL URL is not valid")]
    InvalidUrl(#[source] BoxError),
    /// A setting is out of range.
    #[error("invalid PostgreSQL settings: {0}")]
    InvalidSettings(&'static str),
    /// The TLS settings cannot be used (unreadable CA file, no certificate in it...).
    #[error("unusable PostgreSQL TLS settings: {0}")]
    Tls(#[source] BoxError),
    /// The pool could not be built.
    #[error("could not build the PostgreSQL connection pool")]
    Pool(#[source] BuildError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_url() {
        let settings = PostgresSettings::new("postgres://app:hunter2@db.internal/auth".into());
        let debug = format!("{settings:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(!debug.contains("db.internal"), "{debug}");
    }

    #[test]
    fn connections_carry_a_server_side_statement_timeout_below_the_query_timeout() {
        let settings = PostgresSettings {
            query_timeout: Duration::from_secs(3),
            ..PostgresSettings::new(
                "postgres://app@127.0.0.1/auth?options=-c%20search_path%3Dx".into(),
            )
        };
        let config = settings.connect_config().unwrap();
        // The URL's own options are left as they are; the timeouts are statements.
        assert_eq!(config.get_options(), Some("-c search_path=x"));
        assert_eq!(
            settings.session_setup(),
            "SET statement_timeout = 2400; SET lock_timeout = 2400"
        );
        assert!(settings.server_statement_timeout() < settings.query_timeout);
    }

    #[test]
    fn rejects_unusable_settings() {
        let ok = PostgresSettings::new("postgres://app@127.0.0.1:5432/auth".into());
        assert!(ok.connect_config().is_ok());

        let bad_url = PostgresSettings::new("postgres://app:pw@host:notaport/db".into());
        let err = bad_url.connect_config().unwrap_err();
        assert!(matches!(err, PostgresError::InvalidUrl(_)), "{err:?}");
        assert!(!format!("{err:?} {err}").contains("pw@"));

        let no_host = PostgresSettings::new("dbname=auth".into());
        assert!(matches!(
            no_host.connect_config(),
            Err(PostgresError::InvalidSettings(_))
        ));

        let empty_pool = PostgresSettings {
            max_connections: 0,
            ..ok.clone()
        };
        assert!(matches!(
            empty_pool.pool(),
            Err(PostgresError::InvalidSettings(_))
        ));

        let no_timeout = PostgresSettings {
            acquire_timeout: Duration::ZERO,
            ..ok
        };
        assert!(matches!(
            no_timeout.pool(),
            Err(PostgresError::InvalidSettings(_))
        ));
    }
}

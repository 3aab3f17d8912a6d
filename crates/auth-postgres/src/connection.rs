//! Opening and checking connections, with our own bounds on time.
//!
//! The pool manager is given a setup callback instead of the URL string: the URL stays inside a
//! parsed `tokio_postgres::Config` (never a plain `String` that could end up in a log), and
//! every connection attempt and health check is bounded, so a dead or silent server becomes an
//! error quickly instead of a hang.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use diesel::result::{ConnectionError, ConnectionResult, DatabaseErrorKind, QueryResult};
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
};
use diesel_async::{AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection as _};

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A parsed connection configuration and how connections are secured: plain, or TLS with the
/// server's certificate and host name verified by rustls.
#[derive(Clone)]
pub(crate) struct Connector {
    config: tokio_postgres::Config,
    tls: Option<tokio_postgres_rustls::MakeRustlsConnect>,
    /// Statements each new connection runs before it is used (its session settings).
    setup: Option<String>,
}

impl Connector {
    /// Connections without TLS.
    pub(crate) fn plain(config: tokio_postgres::Config) -> Self {
        Self {
            config,
            tls: None,
            setup: None,
        }
    }

    /// Runs `statements` on every connection it opens, before handing it out.
    pub(crate) fn with_setup(mut self, statements: String) -> Self {
        self.setup = Some(statements);
        self
    }

    /// Connections over TLS only, verified against `tls`'s roots.
    pub(crate) fn tls(config: tokio_postgres::Config, tls: rustls::ClientConfig) -> Self {
        Self {
            config,
            tls: Some(tokio_postgres_rustls::MakeRustlsConnect::new(tls)),
            setup: None,
        }
    }

    /// Asks the server to cancel whatever statement the connection of `token` runs (a cancel
    /// request travels on a connection of its own, with the same transport).
    pub(crate) async fn cancel(&self, token: tokio_postgres::CancelToken) {
        let result = match &self.tls {
            None => token.cancel_query(tokio_postgres::NoTls).await,
            Some(tls) => token.cancel_query(tls.clone()).await,
        };
        if let Err(e) = result {
            tracing::debug!(error = %e, "cancel request failed");
        }
    }

    /// Opens one connection, giving up after `timeout`.
    pub(crate) async fn establish(&self, timeout: Duration) -> ConnectionResult<AsyncPgConnection> {
        let failed = |e: tokio_postgres::Error| ConnectionError::BadConnection(chain(&e));
        let connect = async {
            let mut conn = match &self.tls {
                None => {
                    let (client, connection) = self
                        .config
                        .connect(tokio_postgres::NoTls)
                        .await
                        .map_err(failed)?;
                    AsyncPgConnection::try_from_client_and_connection(client, connection).await
                }
                Some(tls) => {
                    let (client, connection) =
                        self.config.connect(tls.clone()).await.map_err(failed)?;
                    AsyncPgConnection::try_from_client_and_connection(client, connection).await
                }
            }?;
            if let Some(setup) = &self.setup {
                conn.batch_execute(setup)
                    .await
                    .map_err(ConnectionError::CouldntSetupConfiguration)?;
            }
            Ok(conn)
        };
        match tokio::time::timeout(timeout, connect).await {
            Ok(result) => result,
            Err(_) => Err(ConnectionError::BadConnection(format!(
                "no connection to PostgreSQL within {timeout:?}"
            ))),
        }
    }
}

/// An error and its causes on one line ("error performing TLS handshake: invalid peer
/// certificate: UnknownIssuer"): the pool keeps only a string.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

/// A pool manager that opens connections with [`establish`] and checks each one with a bounded
/// `SELECT 1` before handing it out again, so a connection the server dropped while it sat in
/// the pool is replaced instead of failing the next request, and the pool heals by itself once
/// the server is back.
pub(crate) fn manager(
    connector: Arc<Connector>,
    connect_timeout: Duration,
) -> AsyncDieselConnectionManager<AsyncPgConnection> {
    let mut manager_config = ManagerConfig::<AsyncPgConnection>::default();
    manager_config.custom_setup = Box::new(move |_url: &str| {
        let connector = Arc::clone(&connector);
        Box::pin(async move { connector.establish(connect_timeout).await })
    });
    manager_config.recycling_method = RecyclingMethod::CustomFunction(recycle_check(move |conn| {
        Box::pin(bounded_ping(conn, connect_timeout))
    }));
    // The URL is deliberately not given to the manager: the setup callback owns the config.
    AsyncDieselConnectionManager::new_with_config(String::new(), manager_config)
}

/// Pins down the higher-ranked signature the pool expects; a bare closure would not infer it.
fn recycle_check<F>(check: F) -> Box<F>
where
    F: for<'c> Fn(&'c mut AsyncPgConnection) -> BoxFuture<'c, QueryResult<()>>
        + Send
        + Sync
        + 'static,
{
    Box::new(check)
}

async fn bounded_ping(conn: &mut AsyncPgConnection, timeout: Duration) -> QueryResult<()> {
    match tokio::time::timeout(timeout, diesel::sql_query("SELECT 1").execute(conn)).await {
        Ok(result) => result.map(|_| ()),
        Err(_) => Err(diesel::result::Error::DatabaseError(
            DatabaseErrorKind::ClosedConnection,
            Box::new(format!("health check got no answer within {timeout:?}")),
        )),
    }
}

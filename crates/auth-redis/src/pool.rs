//! The connection pool and the one place where commands are sent and errors classified.
//!
//! deadpool-redis' stock manager PINGs every connection on checkout, which doubles the round
//! trips of every call, including the session lookup that the port requires to be one round
//! trip. This manager trusts a connection that was used recently and checks only those that
//! sat idle; a connection that fails in use is thrown away by [`Executor::run`] instead.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use auth_core::ports::BoxError;
use auth_core::{OtpStoreError, SessionStoreError};
use deadpool::managed::{self, Metrics, Object, QueueMode, RecycleError, RecycleResult, Timeouts};
use deadpool::Runtime;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, ErrorKind, FromRedisValue, RedisError};
use tokio::time::{timeout_at, Instant};

use crate::settings::{RedisSettings, RedisSetupError};

pub(crate) struct Manager {
    client: Client,
    config: AsyncConnectionConfig,
    idle_recheck_after: Duration,
    ping_seq: AtomicU64,
}

impl fmt::Debug for Manager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `Client` would print the connection info, password included.
        f.debug_struct("Manager")
            .field("idle_recheck_after", &self.idle_recheck_after)
            .finish_non_exhaustive()
    }
}

impl managed::Manager for Manager {
    type Type = MultiplexedConnection;
    type Error = RedisError;

    async fn create(&self) -> Result<MultiplexedConnection, RedisError> {
        self.client
            .get_multiplexed_async_connection_with_config(&self.config)
            .await
    }

    async fn recycle(
        &self,
        conn: &mut MultiplexedConnection,
        metrics: &Metrics,
    ) -> RecycleResult<RedisError> {
        if metrics.last_used() < self.idle_recheck_after {
            return Ok(());
        }
        // A numbered PING, so that a reply meant for an earlier, abandoned request cannot
        // pass for this one.
        let n = self.ping_seq.fetch_add(1, Ordering::Relaxed).to_string();
        let echoed: String = redis::cmd("PING")
            .arg(&n)
            .query_async(conn)
            .await
            .map_err(RecycleError::Backend)?;
        if echoed == n {
            Ok(())
        } else {
            Err(RecycleError::message("unexpected PING reply"))
        }
    }
}

pub(crate) type Pool = managed::Pool<Manager>;

/// A request that [`Executor::run`] can send (and send again on a fresh connection).
pub(crate) enum Request<'a> {
    Cmd(&'a redis::Cmd),
    Pipe(&'a redis::Pipeline),
    Script(&'a redis::ScriptInvocation<'a>),
}

impl Request<'_> {
    async fn send<T: FromRedisValue>(
        &self,
        conn: &mut MultiplexedConnection,
    ) -> redis::RedisResult<T> {
        match self {
            Self::Cmd(cmd) => cmd.query_async(conn).await,
            Self::Pipe(pipe) => pipe.query_async(conn).await,
            // EVALSHA, falling back to SCRIPT LOAD + EVALSHA after a server restart.
            Self::Script(script) => script.invoke_async(conn).await,
        }
    }
}

/// Whether a request may be sent a second time after the connection broke under it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retry {
    /// Reads (and idempotent housekeeping): a second copy changes nothing.
    Idempotent,
    /// Writes: the first copy may have been applied before the connection broke.
    Never,
}

/// Sends requests through the pool within a deadline and turns failures into port errors.
#[derive(Debug)]
pub(crate) struct Executor {
    pool: Pool,
    timeout: Duration,
}

impl Executor {
    pub(crate) fn new(settings: &RedisSettings) -> Result<Self, RedisSetupError> {
        use secrecy::ExposeSecret as _;

        let client =
            Client::open(settings.url.expose_secret()).map_err(RedisSetupError::InvalidUrl)?;
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(settings.timeout)
            .set_response_timeout(settings.timeout);
        let manager = Manager {
            client,
            config,
            idle_recheck_after: settings.idle_recheck_after,
            ping_seq: AtomicU64::new(0),
        };
        let pool = Pool::builder(manager)
            .max_size(settings.pool_size)
            // The most recently used connection first: under light load one connection stays
            // warm (no PING) and the rest idle, instead of every connection idling in turn.
            .queue_mode(QueueMode::Lifo)
            .runtime(Runtime::Tokio1)
            .timeouts(Timeouts {
                wait: Some(settings.timeout),
                create: Some(settings.timeout),
                recycle: Some(settings.timeout),
            })
            .build()
            .map_err(|e| RedisSetupError::Pool(Box::new(e)))?;
        Ok(Self {
            pool,
            timeout: settings.timeout,
        })
    }

    /// Sends `request`, and returns within the configured timeout whatever happens.
    pub(crate) async fn run<T: FromRedisValue>(
        &self,
        request: Request<'_>,
        retry: Retry,
    ) -> Result<T, Failure> {
        let deadline = Instant::now() + self.timeout;
        let mut retried = false;
        loop {
            let mut conn = match timeout_at(deadline, self.pool.get()).await {
                Ok(Ok(conn)) => conn,
                Ok(Err(e)) => return Err(Failure::Unavailable(Box::new(e))),
                Err(_) => return Err(Failure::timed_out(self.timeout)),
            };
            let err = match timeout_at(deadline, request.send::<T>(&mut conn)).await {
                Ok(Ok(value)) => return Ok(value),
                Ok(Err(e)) => e,
                Err(_) => {
                    // The reply may still arrive and would be read by nobody: do not reuse.
                    drop(Object::take(conn));
                    return Err(Failure::timed_out(self.timeout));
                }
            };
            if !is_outage(&err) {
                return Err(Failure::Other(Box::new(err)));
            }
            drop(Object::take(conn));
            if err.is_io_error() {
                // The idle connections most likely went down with this one (server restart,
                // network cut): drop them now rather than fail one request per connection.
                let dropped = self.pool.retain(|_, _| false).removed.len();
                tracing::warn!(error = %err, dropped, "Redis connection failed; pool emptied");
                if retry == Retry::Idempotent && !retried {
                    retried = true;
                    continue;
                }
            }
            return Err(Failure::Unavailable(Box::new(err)));
        }
    }
}

/// Errors that say "Redis is not there (right now)", as opposed to "Redis said no".
fn is_outage(err: &RedisError) -> bool {
    err.is_io_error()
        || matches!(
            err.kind(),
            ErrorKind::BusyLoadingError
                | ErrorKind::TryAgain
                | ErrorKind::ClusterDown
                | ErrorKind::MasterDown
                | ErrorKind::ReadOnly
                | ErrorKind::AuthenticationFailed
        )
}

/// A classified failure, converted into the error enum of whichever port is being served.
#[derive(Debug)]
pub(crate) enum Failure {
    Unavailable(BoxError),
    Other(BoxError),
}

impl Failure {
    fn timed_out(after: Duration) -> Self {
        Self::Unavailable(Box::new(TimedOut(after)))
    }

    pub(crate) fn corrupt(what: &'static str, reason: impl Into<String>) -> Self {
        Self::Other(Box::new(CorruptRecord {
            what,
            reason: reason.into(),
        }))
    }
}

impl From<Failure> for SessionStoreError {
    fn from(f: Failure) -> Self {
        match f {
            Failure::Unavailable(e) => Self::Unavailable(e),
            Failure::Other(e) => Self::Other(e),
        }
    }
}

impl From<Failure> for OtpStoreError {
    fn from(f: Failure) -> Self {
        match f {
            Failure::Unavailable(e) => Self::Unavailable(e),
            Failure::Other(e) => Self::Other(e),
        }
    }
}

/// No answer within the configured timeout.
#[derive(Debug, thiserror::Error)]
#[error("Redis did not answer within {0:?}")]
pub(crate) struct TimedOut(Duration);

/// A stored value that does not decode. The reason never quotes the value: it may hold an
/// e-mail address.
#[derive(Debug, thiserror::Error)]
#[error("corrupt {what} record in Redis: {reason}")]
pub(crate) struct CorruptRecord {
    what: &'static str,
    reason: String,
}

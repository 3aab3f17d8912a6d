//! The connection pool and the one place where commands are sent and errors classified.
//!
//! Connections come from a `deadpool-redis` pool, whose manager opens them with the configured
//! timeouts and PINGs a connection every time it is checked out. A checkout is therefore a
//! round trip of its own, and the session lookup must be one round trip in all. So the
//! executor checks a connection out once per *lane* and keeps it there: a redis-rs
//! `MultiplexedConnection` is a handle onto one pipelined socket, built to be cloned and used
//! by many tasks at once, and every request of a lane rides on a clone of it.
//!
//! - Each thread uses its own lane (`thread id mod lanes`), so an actix worker talks to Redis
//!   through a connection driven by its own runtime.
//! - A lane unused for longer than `idle_recheck_after` gives its connection back and checks
//!   one out again, which PINGs it: one that died while idle (server restart, NAT timeout) is
//!   replaced instead of failing a request. Lanes in steady use send no PING.
//! - A connection that fails in use or times out is taken out of its lane and, once the
//!   requests still waiting on it are done, out of the pool; until then it keeps its pool slot,
//!   so a stalled server never sees more connections than the pool's size;
//!   a broken socket empties every lane and the idle pool, since they most likely went down
//!   together. The next request checks out (or opens) a fresh one: recovery needs no restart.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use auth_core::ports::BoxError;
use auth_core::{OtpStoreError, SessionStoreError};
use deadpool_redis::{Connection, Manager, Pool, QueueMode, Runtime, Timeouts};
use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster_async::ClusterConnection;
use redis::{AsyncConnectionConfig, ErrorKind, FromRedisValue, RedisError, ServerErrorKind};
use tokio::time::{timeout_at, Instant};

use crate::settings::{RedisSettings, RedisSetupError};

/// A request that [`Executor::run`] can send (and send again on a fresh connection).
pub(crate) enum Request<'a> {
    Cmd(&'a redis::Cmd),
    Script(&'a redis::ScriptInvocation<'a>),
}

impl Request<'_> {
    async fn send<T: FromRedisValue>(&self, conn: &mut Mux) -> redis::RedisResult<T> {
        match self {
            Self::Cmd(cmd) => cmd.query_async(conn).await,
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

/// A connection checked out of the pool, shared by a lane and the requests in flight on it.
///
/// It holds its pool slot until the last of them is done: a connection given up on (a
/// timeout, a broken socket) keeps its socket open while requests still wait on it, and the
/// pool must not open a replacement meanwhile, or a stalled server would see more
/// connections than the pool's size. Once the last one is done, a connection given up on
/// leaves the pool for good (its socket closes), a healthy one goes back.
struct Shared {
    conn: Option<Pooled>,
    given_up: AtomicBool,
}

/// A connection checked out of either pool.
enum Pooled {
    Single(Connection),
    Cluster(deadpool::managed::Object<ClusterManager>),
}

/// Opens cluster connections for the pool. Not deadpool-redis' own cluster manager: that one
/// keeps redis-rs' defaults (16 retries with back-off, 1 s per connection attempt), under
/// which a connection that met a dead master kept every request waiting, for every node, long
/// after the replica had taken over. Here a request is retried twice, quickly, within the
/// store's timeout, and the executor replaces a connection that timed out.
pub(crate) struct ClusterManager {
    client: redis::cluster::ClusterClient,
}

impl deadpool::managed::Manager for ClusterManager {
    type Type = ClusterConnection;
    type Error = RedisError;

    async fn create(&self) -> Result<ClusterConnection, RedisError> {
        self.client.get_async_connection().await
    }

    async fn recycle(
        &self,
        conn: &mut ClusterConnection,
        _: &deadpool::managed::Metrics,
    ) -> deadpool::managed::RecycleResult<RedisError> {
        let pong: String = redis::cmd("PING").query_async(conn).await?;
        if pong == "PONG" {
            Ok(())
        } else {
            Err(deadpool::managed::RecycleError::message(
                "unexpected reply to PING",
            ))
        }
    }
}

impl Pooled {
    fn multiplexed(&self) -> Mux {
        match self {
            Self::Single(c) => Mux::Single((**c).clone()),
            Self::Cluster(c) => Mux::Cluster((**c).clone()),
        }
    }

    /// Takes it out of its pool for good: its socket(s) close when the last clone is gone.
    fn detach(self) {
        match self {
            Self::Single(c) => drop(Connection::take(c)),
            Self::Cluster(c) => drop(deadpool::managed::Object::take(c)),
        }
    }
}

/// A handle onto a pooled connection that many requests use at once: one multiplexed socket,
/// or a cluster connection (a multiplexed socket per node, routing each command by its key).
#[derive(Clone)]
pub(crate) enum Mux {
    Single(MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Mux {
    fn req_packed_command<'a>(
        &'a mut self,
        cmd: &'a redis::Cmd,
    ) -> redis::RedisFuture<'a, redis::Value> {
        match self {
            Self::Single(c) => c.req_packed_command(cmd),
            Self::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<redis::Value>> {
        match self {
            Self::Single(c) => c.req_packed_commands(cmd, offset, count),
            Self::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(c) => c.get_db(),
            Self::Cluster(c) => c.get_db(),
        }
    }
}

/// The pool: connections to one server, or to a Redis Cluster.
enum AnyPool {
    Single(Pool),
    Cluster(deadpool::managed::Pool<ClusterManager>),
}

impl AnyPool {
    fn is_cluster(&self) -> bool {
        matches!(self, Self::Cluster(_))
    }

    fn status(&self) -> deadpool_redis::Status {
        match self {
            Self::Single(p) => p.status(),
            Self::Cluster(p) => p.status(),
        }
    }

    async fn get(&self) -> Result<Pooled, BoxError> {
        match self {
            Self::Single(p) => p.get().await.map(Pooled::Single).map_err(Into::into),
            Self::Cluster(p) => p.get().await.map(Pooled::Cluster).map_err(Into::into),
        }
    }

    /// Drops every idle connection; returns how many.
    fn clear(&self) -> usize {
        match self {
            Self::Single(p) => p.retain(|_, _| false).removed.len(),
            Self::Cluster(p) => p.retain(|_, _| false).removed.len(),
        }
    }
}

impl Shared {
    fn new(conn: Pooled) -> Arc<Self> {
        Arc::new(Self {
            conn: Some(conn),
            given_up: AtomicBool::new(false),
        })
    }

    fn multiplexed(&self) -> Option<Mux> {
        self.conn.as_ref().map(Pooled::multiplexed)
    }

    fn give_up(&self) {
        self.given_up.store(true, Ordering::Release);
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        if self.given_up.load(Ordering::Acquire) {
            if let Some(conn) = self.conn.take() {
                conn.detach();
            }
        }
    }
}

/// A connection checked out of the pool and shared by the requests of one lane.
struct Lane {
    conn: Arc<Shared>,
    last_used: Instant,
    generation: u64,
}

/// What one request sends on: a clone of its lane's connection (the socket handle first, so
/// it is dropped before the slot is freed).
struct Handle {
    conn: Mux,
    shared: Arc<Shared>,
    lane: usize,
    generation: u64,
}

/// Sends requests through the pool within a deadline and turns failures into port errors.
pub(crate) struct Executor {
    pool: AnyPool,
    lanes: Box<[Mutex<Option<Lane>>]>,
    next_generation: AtomicU64,
    timeout: Duration,
    idle_recheck_after: Duration,
}

impl fmt::Debug for Executor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Not the pool: its manager would print the connection info, password included.
        f.debug_struct("Executor")
            .field("pool_status", &self.pool.status())
            .field("lanes", &self.lanes.len())
            .field("timeout", &self.timeout)
            .field("idle_recheck_after", &self.idle_recheck_after)
            .finish_non_exhaustive()
    }
}

impl Executor {
    pub(crate) fn pool_status(&self) -> deadpool_redis::Status {
        self.pool.status()
    }

    pub(crate) fn new(settings: &RedisSettings) -> Result<Self, RedisSetupError> {
        let timeouts = Timeouts {
            wait: Some(settings.timeout),
            create: Some(settings.timeout),
            recycle: Some(settings.timeout),
        };
        let urls = settings.urls();
        let pool = if settings.is_cluster() {
            let client = redis::cluster::ClusterClientBuilder::new(urls)
                .connection_timeout(settings.timeout.min(Duration::from_millis(100)))
                .response_timeout(settings.timeout)
                .retries(1)
                .min_retry_wait(10)
                .max_retry_wait(100)
                .build()
                .map_err(RedisSetupError::InvalidUrl)?;
            AnyPool::Cluster(
                deadpool::managed::Pool::builder(ClusterManager { client })
                    .max_size(settings.pool_size)
                    .queue_mode(QueueMode::Lifo)
                    .runtime(Runtime::Tokio1)
                    .timeouts(timeouts)
                    .build()
                    .map_err(|e| RedisSetupError::Pool(Box::new(e)))?,
            )
        } else {
            let config = AsyncConnectionConfig::new()
                .set_connection_timeout(Some(settings.timeout))
                .set_response_timeout(Some(settings.timeout));
            let url = urls.into_iter().next().unwrap_or_default();
            let manager =
                Manager::new_with_config(url, config).map_err(RedisSetupError::InvalidUrl)?;
            AnyPool::Single(
                Pool::builder(manager)
                    .max_size(settings.pool_size)
                    // The most recently returned connection first, so a lane that refreshes
                    // after idling gets its own connection back (PINGed) rather than a
                    // colder one.
                    .queue_mode(QueueMode::Lifo)
                    .runtime(Runtime::Tokio1)
                    .timeouts(timeouts)
                    .build()
                    .map_err(|e| RedisSetupError::Pool(Box::new(e)))?,
            )
        };
        // Lanes hold checked-out connections, so there are never more lanes than the pool
        // may hold; a request whose lane is empty can then always get one.
        let lanes = (0..settings.pool_size).map(|_| Mutex::new(None)).collect();
        Ok(Self {
            pool,
            lanes,
            next_generation: AtomicU64::new(0),
            timeout: settings.timeout,
            idle_recheck_after: settings.idle_recheck_after,
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
            let mut handle = self.checkout(deadline).await?;
            let err = match timeout_at(deadline, request.send::<T>(&mut handle.conn)).await {
                Ok(Ok(value)) => return Ok(value),
                Ok(Err(e)) => e,
                Err(_) => {
                    // A server that stopped answering: the next request should not queue
                    // behind this connection, but check out (and PING) another.
                    self.discard(&handle);
                    return Err(Failure::timed_out(self.timeout));
                }
            };
            if !is_outage(&err) {
                return Err(Failure::Other(Box::new(err)));
            }
            if self.pool.is_cluster() {
                // One node's failure says nothing about the others: the pool is not emptied,
                // but this connection, which may be stuck on the failed node, is replaced.
                self.discard(&handle);
                return Err(Failure::Unavailable(Box::new(err)));
            }
            self.discard(&handle);
            if err.is_io_error() {
                // The other connections most likely went down with this one (server restart,
                // network cut): drop them now rather than fail one request per connection.
                let dropped = self.drop_all();
                tracing::warn!(error = %err, dropped, "Redis connection failed; pool emptied");
                if retry == Retry::Idempotent && !retried {
                    retried = true;
                    continue;
                }
            }
            return Err(Failure::Unavailable(Box::new(err)));
        }
    }

    /// The connection of this thread's lane; checks one out of the pool when the lane is
    /// empty or idled past `idle_recheck_after`.
    async fn checkout(&self, deadline: Instant) -> Result<Handle, Failure> {
        let lane = lane_of_this_thread() % self.lanes.len();
        let idle = {
            let mut slot = lock(&self.lanes[lane]);
            match slot.as_mut() {
                Some(l) if l.last_used.elapsed() < self.idle_recheck_after => {
                    if let Some(conn) = l.conn.multiplexed() {
                        l.last_used = Instant::now();
                        return Ok(Handle {
                            conn,
                            shared: Arc::clone(&l.conn),
                            lane,
                            generation: l.generation,
                        });
                    }
                    slot.take()
                }
                _ => slot.take(),
            }
        };
        // Back to the pool, which PINGs it when it is checked out again (just below).
        drop(idle);
        let conn = match timeout_at(deadline, self.pool.get()).await {
            Ok(Ok(conn)) => conn,
            Ok(Err(e)) => return Err(Failure::Unavailable(e)),
            Err(_) => return Err(Failure::timed_out(self.timeout)),
        };
        let generation = self.next_generation.fetch_add(1, Ordering::Relaxed);
        let multiplexed = conn.multiplexed();
        let shared = Shared::new(conn);
        let handle = Handle {
            conn: multiplexed,
            shared: Arc::clone(&shared),
            lane,
            generation,
        };
        let mut slot = lock(&self.lanes[lane]);
        if slot.is_none() {
            *slot = Some(Lane {
                conn: shared,
                last_used: Instant::now(),
                generation,
            });
        }
        // Otherwise another request of this lane got there first; this connection serves
        // this one request and goes back to the pool after it.
        Ok(handle)
    }

    /// Takes the handle's connection out of its lane, and out of the pool for good once the
    /// requests still in flight on it are done.
    fn discard(&self, handle: &Handle) {
        handle.shared.give_up();
        let taken = {
            let mut slot = lock(&self.lanes[handle.lane]);
            match slot.as_ref() {
                Some(l) if l.generation == handle.generation => slot.take(),
                _ => None,
            }
        };
        drop(taken);
    }

    /// Empties every lane and the idle pool; returns how many connections were dropped.
    fn drop_all(&self) -> usize {
        let mut dropped = 0;
        for lane in self.lanes.iter() {
            let taken = lock(lane).take();
            if let Some(lane) = taken {
                lane.conn.give_up();
                dropped += 1;
            }
        }
        dropped + self.pool.clear()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The guarded sections cannot panic half-way; a poisoned lane is still consistent.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A small number per thread, handed out in order of first use.
fn lane_of_this_thread() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static LANE: usize = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    LANE.with(|lane| *lane)
}

/// Errors that say "Redis is not there (right now)", as opposed to "Redis said no".
fn is_outage(err: &RedisError) -> bool {
    err.is_io_error()
        || matches!(
            err.kind(),
            ErrorKind::AuthenticationFailed
                | ErrorKind::ClusterConnectionNotFound
                | ErrorKind::Server(
                    ServerErrorKind::BusyLoading
                        | ServerErrorKind::TryAgain
                        | ServerErrorKind::ClusterDown
                        | ServerErrorKind::MasterDown
                        | ServerErrorKind::ReadOnly
                )
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

//! [`Database`]: one opened database, shared by every adapter of this crate that uses it
//! ([`SqliteUserRepository`](crate::SqliteUserRepository) and
//! [`SqliteOutbox`](crate::SqliteOutbox)), so that they write in turn and, in memory, see the
//! same tables.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use diesel::result::QueryResult;
use diesel::{Connection, SqliteConnection};
use diesel_async::pooled_connection::deadpool::Object;
use tokio::sync::{Mutex, MutexGuard};

use crate::connection::{self, SqliteAsyncConnection, SqlitePool};
use crate::errors::{self, Failure};
use crate::settings::{SqliteError, SqliteSettings};
use crate::setup;

/// A connection checked out of the pool.
pub(crate) type PooledConnection = Object<SqliteAsyncConnection>;

/// The pool, this process's turn to write, and the bounds on waiting for either. Cheap to
/// clone: clones share all of it.
#[derive(Clone)]
pub(crate) struct Database {
    pool: SqlitePool,
    /// Serialises this process's writes. A `tokio` mutex: it is held across the `.await` of
    /// the statement, and it queues waiters fairly.
    write_turn: Arc<Mutex<()>>,
    busy_timeout: Duration,
    acquire_timeout: Duration,
}

impl Database {
    /// Creates the file of `settings` when missing and a pool on it; opens no connection yet
    /// and applies no migration.
    pub(crate) async fn open(settings: &SqliteSettings) -> Result<Self, SqliteError> {
        let target = settings.open_target()?;
        setup::prepare_file(settings).await?;
        let manager = connection::manager(target, settings.busy_timeout);
        let pool = SqlitePool::builder(manager)
            .max_size(settings.pool_size())
            .build()
            .map_err(|e| SqliteError::Unavailable(Box::new(e)))?;
        Ok(Self {
            pool,
            write_turn: Arc::new(Mutex::new(())),
            busy_timeout: settings.busy_timeout,
            acquire_timeout: settings.acquire_timeout,
        })
    }

    pub(crate) fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// A connection from the pool, waiting at most `acquire_timeout`.
    pub(crate) async fn checkout(&self) -> Result<PooledConnection, Failure> {
        match tokio::time::timeout(self.acquire_timeout, self.pool.get()).await {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(error)) => Err(errors::from_pool(error)),
            Err(_) => Err(errors::timed_out(
                "getting a connection",
                self.acquire_timeout,
            )),
        }
    }

    /// Waits for this process's turn to write, at most `busy_timeout`.
    pub(crate) async fn write_turn(&self) -> Result<MutexGuard<'_, ()>, Failure> {
        tokio::time::timeout(self.busy_timeout, self.write_turn.lock())
            .await
            .map_err(|_| errors::timed_out("waiting for the turn to write", self.busy_timeout))
    }

    /// Runs `work` on a blocking thread in one `BEGIN IMMEDIATE` transaction, in this
    /// process's turn to write: SQLite's write lock is taken before the first read, so what
    /// `work` reads cannot change before it writes, whichever process else uses the file.
    /// Rolled back when `work` fails.
    pub(crate) async fn write<R, W>(&self, work: W) -> Result<R, Failure>
    where
        R: Send + 'static,
        W: FnOnce(&mut SqliteConnection) -> QueryResult<R> + Send + 'static,
    {
        let _turn = self.write_turn().await?;
        let mut conn = self.checkout().await?;
        conn.spawn_blocking(move |conn| conn.immediate_transaction(work))
            .await
            .map_err(errors::failure)
    }

    /// Runs `work` on a blocking thread in one read transaction (a consistent snapshot in WAL
    /// mode), in parallel with other reads and with the writer.
    pub(crate) async fn read<R, W>(&self, work: W) -> Result<R, Failure>
    where
        R: Send + 'static,
        W: FnOnce(&mut SqliteConnection) -> QueryResult<R> + Send + 'static,
    {
        let mut conn = self.checkout().await?;
        conn.spawn_blocking(move |conn| conn.transaction(work))
            .await
            .map_err(errors::failure)
    }
}

impl fmt::Debug for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Database")
            .field("pool", &self.pool.status())
            .field("busy_timeout", &self.busy_timeout)
            .field("acquire_timeout", &self.acquire_timeout)
            .finish_non_exhaustive()
    }
}

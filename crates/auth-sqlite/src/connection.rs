//! Opening connections: every connection gets the same PRAGMAs before it is used.

use std::time::Duration;

use diesel::result::ConnectionError;
use diesel::SqliteConnection;
use diesel_async::pooled_connection::deadpool::Pool;
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
};
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
use diesel_async::{AsyncConnection, SimpleAsyncConnection};

/// The async connection type of this crate: Diesel's synchronous SQLite connection, run on
/// tokio's blocking threads.
pub type SqliteAsyncConnection = SyncConnectionWrapper<SqliteConnection>;

/// The connection pool type of this crate.
pub type SqlitePool = Pool<SqliteAsyncConnection>;

/// The PRAGMAs run on every new connection. `busy_timeout` comes first so that switching the
/// journal mode already waits for a lock instead of failing.
///
/// - WAL: readers never block the writer and the writer never blocks readers.
/// - `synchronous = NORMAL`: in WAL mode, durable across application crashes; a power loss
///   can lose the last transactions but never corrupts the file.
/// - `foreign_keys = ON`: SQLite leaves them off by default.
pub(crate) fn pragmas(busy_timeout: Duration) -> String {
    let ms = u32::try_from(busy_timeout.as_millis()).unwrap_or(u32::MAX);
    format!(
        "PRAGMA busy_timeout = {ms}; PRAGMA journal_mode = WAL; \
         PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;"
    )
}

/// Opens one connection to `target` and applies [`pragmas`].
pub(crate) async fn establish(
    target: &str,
    busy_timeout: Duration,
) -> Result<SqliteAsyncConnection, ConnectionError> {
    let mut conn = SqliteAsyncConnection::establish(target).await?;
    conn.batch_execute(&pragmas(busy_timeout))
        .await
        .map_err(ConnectionError::CouldntSetupConfiguration)?;
    Ok(conn)
}

/// A pool manager whose connections are set up by [`establish`]. Recycling does not run a test
/// query: a local file does not drop connections, and a failing one reports on first use.
pub(crate) fn manager(
    target: String,
    busy_timeout: Duration,
) -> AsyncDieselConnectionManager<SqliteAsyncConnection> {
    let mut config = ManagerConfig::<SqliteAsyncConnection>::default();
    config.custom_setup = Box::new(move |url: &str| {
        let url = url.to_owned();
        Box::pin(async move { establish(&url, busy_timeout).await })
    });
    config.recycling_method = RecyclingMethod::Fast;
    AsyncDieselConnectionManager::new_with_config(target, config)
}

//! Test support (feature `testing`): [`TestDatabase`], a fresh, migrated PostgreSQL database
//! for one test.
//!
//! ```no_run
//! # async fn example() {
//! use auth_core::UserRepository;
//! use auth_postgres::testing::TestDatabase;
//!
//! let db = TestDatabase::new().await; // panics with a clear message if PostgreSQL is down
//! let users = db.repository();
//! users.ping().await.unwrap();
//! // Hand `db.settings()` to an application under test, ...
//! db.cleanup().await; // or just let `db` go out of scope
//! # }
//! ```
//!
//! The server is the one named by the environment variable [`DATABASE_URL_ENV`]
//! (`DATABASE_URL`), default [`DEFAULT_ADMIN_URL`]. Its role must be allowed to
//! `CREATE DATABASE`. The admin database itself is never modified.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use auth_core::BoxError;
use diesel_async::RunQueryDsl;
use secrecy::{ExposeSecret, SecretString};

use crate::connection;
use crate::migrations::{run_migrations, MigrationError};
use crate::repository::PgUserRepository;
use crate::settings::{PostgresError, PostgresSettings};

/// Environment variable holding the admin URL of the test server.
pub const DATABASE_URL_ENV: &str = "DATABASE_URL";

/// Admin URL used when [`DATABASE_URL_ENV`] is not set.
pub const DEFAULT_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// Prefix of the name of every database [`TestDatabase`] creates, so leftovers of killed test
/// runs are easy to find (`SELECT datname FROM pg_database WHERE datname LIKE 'secureauth_test_%'`).
pub const TEST_DATABASE_PREFIX: &str = "secureauth_test_";

/// Bound on creating or dropping the test database once connected.
const ADMIN_STATEMENT_TIMEOUT: Duration = Duration::from_secs(30);

/// The admin URL: [`DATABASE_URL_ENV`] if set, else [`DEFAULT_ADMIN_URL`].
pub fn admin_url_from_env() -> SecretString {
    match std::env::var(DATABASE_URL_ENV) {
        Ok(url) if !url.trim().is_empty() => SecretString::from(url),
        _ => SecretString::from(DEFAULT_ADMIN_URL),
    }
}

/// A uniquely named PostgreSQL database, created for one test and dropped afterwards.
///
/// [`TestDatabase::new`] / [`TestDatabase::create`] connect to the admin URL (see
/// [`admin_url_from_env`]), create `secureauth_test_<uuid>` and apply the migrations.
/// [`TestDatabase::cleanup`] drops it (`DROP DATABASE ... WITH (FORCE)`, which also ends any
/// session still connected to it). If it is not called, `Drop` does the same on a helper thread;
/// `Drop` never panics, it reports a failure on stderr.
///
/// When PostgreSQL cannot be reached, creation fails with an error that names `DATABASE_URL`;
/// it never skips silently.
pub struct TestDatabase {
    name: String,
    admin_url: SecretString,
    settings: PostgresSettings,
    repository: PgUserRepository,
    dropped: bool,
}

impl TestDatabase {
    /// A fresh, migrated database on the server of [`admin_url_from_env`].
    ///
    /// # Panics
    ///
    /// When the database cannot be created or migrated; the message names `DATABASE_URL` and
    /// says what to fix. Use [`Self::create`] to handle the error yourself.
    #[allow(
        clippy::panic,
        reason = "test support: a test without its database must fail, loudly"
    )]
    pub async fn new() -> Self {
        match Self::create().await {
            Ok(db) => db,
            Err(error) => panic!("{}", error.report()),
        }
    }

    /// A fresh, migrated database on the server of [`admin_url_from_env`].
    pub async fn create() -> Result<Self, TestDatabaseError> {
        Self::create_with(&admin_url_from_env(), true).await
    }

    /// A fresh, empty database (no migrations applied) on the server of
    /// [`admin_url_from_env`], for tests of the migrations themselves.
    pub async fn create_unmigrated() -> Result<Self, TestDatabaseError> {
        Self::create_with(&admin_url_from_env(), false).await
    }

    /// A fresh database on the server of `admin_url`, migrated if `migrate` is true.
    pub async fn create_with(
        admin_url: &SecretString,
        migrate: bool,
    ) -> Result<Self, TestDatabaseError> {
        let admin = admin_config(admin_url)?;
        let target = describe(&admin);
        let name = format!("{TEST_DATABASE_PREFIX}{}", uuid::Uuid::new_v4().simple());
        // Everything that can be checked without the server is checked before the database
        // exists, so that past `CREATE DATABASE` only `Drop` is needed to clean up.
        let url = database_url(admin_url.expose_secret(), &name).ok_or_else(|| {
            TestDatabaseError::InvalidUrl {
                source: "cannot point the URL at another database (does it set dbname?)".into(),
            }
        })?;
        let settings = PostgresSettings::new(url.into());
        let repository =
            PgUserRepository::connect(&settings).map_err(TestDatabaseError::Settings)?;

        let mut conn = connection::Connector::plain(admin.clone())
            .establish(PostgresSettings::DEFAULT_CONNECT_TIMEOUT)
            .await
            .map_err(|e| TestDatabaseError::Unreachable {
                target: target.clone(),
                source: Box::new(e),
            })?;
        // The name is ours (prefix + hex), so quoting it is enough; identifiers cannot be bound.
        let create = diesel::sql_query(format!("CREATE DATABASE \"{name}\"")).execute(&mut conn);
        let created = tokio::time::timeout(ADMIN_STATEMENT_TIMEOUT, create).await;
        drop(conn);
        match created {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                return Err(TestDatabaseError::CreateFailed {
                    target,
                    source: Box::new(e),
                })
            }
            Err(_) => {
                return Err(TestDatabaseError::CreateFailed {
                    target,
                    source: format!("no answer within {ADMIN_STATEMENT_TIMEOUT:?}").into(),
                })
            }
        }

        let db = Self {
            name,
            admin_url: admin_url.clone(),
            settings,
            repository,
            dropped: false,
        };
        if migrate {
            run_migrations(&db.settings)
                .await
                .map_err(TestDatabaseError::Migrations)?;
        }
        Ok(db)
    }

    /// The database's name (`secureauth_test_<uuid>`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The URL of this database (the admin URL with the database name replaced).
    pub fn url(&self) -> &SecretString {
        &self.settings.url
    }

    /// Settings pointing at this database, with the default pool size and timeouts.
    pub fn settings(&self) -> &PostgresSettings {
        &self.settings
    }

    /// A repository on this database. Clones share one pool, which `cleanup`/`Drop` close.
    pub fn repository(&self) -> PgUserRepository {
        self.repository.clone()
    }

    /// Drops the database now, asynchronously, and reports failure instead of printing it.
    pub async fn cleanup(mut self) -> Result<(), TestDatabaseError> {
        self.dropped = true;
        self.repository.close();
        drop_database(&self.admin_url, &self.name).await
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        self.dropped = true;
        self.repository.close();
        drop_database_blocking(&self.admin_url, &self.name);
    }
}

impl fmt::Debug for TestDatabase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestDatabase")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Why a [`TestDatabase`] could not be created or dropped. Every message names
/// `DATABASE_URL`, and none repeats a password.
#[derive(Debug, thiserror::Error)]
pub enum TestDatabaseError {
    /// The admin URL does not parse.
    #[error("{DATABASE_URL_ENV} is not a valid PostgreSQL URL")]
    InvalidUrl {
        /// The parser's complaint.
        #[source]
        source: BoxError,
    },
    /// Nothing answered at the admin URL.
    #[error(
        "cannot connect to PostgreSQL at {target} (from {DATABASE_URL_ENV}, default \
         {DEFAULT_ADMIN_URL}): start PostgreSQL or set {DATABASE_URL_ENV} to the URL of a \
         running server whose role may CREATE DATABASE"
    )]
    Unreachable {
        /// Where we tried to connect, without password.
        target: String,
        /// The connection error.
        #[source]
        source: BoxError,
    },
    /// The server refused `CREATE DATABASE` (often: the role lacks `CREATEDB`).
    #[error(
        "CREATE DATABASE failed on {target} (from {DATABASE_URL_ENV}): its role must be \
         allowed to create databases"
    )]
    CreateFailed {
        /// Where, without password.
        target: String,
        /// The server's error.
        #[source]
        source: BoxError,
    },
    /// Dropping the database failed.
    #[error("DROP DATABASE {name} failed on the server of {DATABASE_URL_ENV}")]
    DropFailed {
        /// The database left behind.
        name: String,
        /// The cause.
        #[source]
        source: BoxError,
    },
    /// The settings derived from the admin URL are unusable.
    #[error("invalid settings derived from {DATABASE_URL_ENV}")]
    Settings(#[source] PostgresError),
    /// The migrations failed on the fresh database.
    #[error("migrating the test database (server from {DATABASE_URL_ENV}) failed")]
    Migrations(#[source] MigrationError),
}

impl TestDatabaseError {
    /// The message with its whole chain of causes, one per line.
    pub fn report(&self) -> String {
        let mut report = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(cause) = source {
            report.push_str("\n  caused by: ");
            report.push_str(&cause.to_string());
            source = cause.source();
        }
        report
    }
}

fn admin_config(admin_url: &SecretString) -> Result<tokio_postgres::Config, TestDatabaseError> {
    let settings = PostgresSettings::new(admin_url.clone());
    settings.connect_config().map_err(|e| match e {
        PostgresError::InvalidUrl(source) => TestDatabaseError::InvalidUrl { source },
        other => TestDatabaseError::Settings(other),
    })
}

/// `user@host:port/database`, for messages: everything that helps find the server, no password.
fn describe(config: &tokio_postgres::Config) -> String {
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, host)| {
            let host = match host {
                tokio_postgres::config::Host::Tcp(name) => name.clone(),
                tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
            };
            match config.get_ports().get(i).or(config.get_ports().first()) {
                Some(port) => format!("{host}:{port}"),
                None => format!("{host}:5432"),
            }
        })
        .collect();
    format!(
        "{}@{}/{}",
        config.get_user().unwrap_or(""),
        hosts.join(","),
        config.get_dbname().unwrap_or("")
    )
}

/// The admin URL pointed at database `name`: the path of a URL is replaced, a `key=value`
/// string gets a later `dbname=` (the last one wins). `None` when the result would not name
/// `name`, e.g. because a `?dbname=` parameter overrides the path: better no test database than
/// tests running in the admin database.
fn database_url(admin_url: &str, name: &str) -> Option<String> {
    let url = match admin_url.find("://") {
        Some(scheme_end) => {
            let (head, query) = admin_url
                .find('?')
                .map_or((admin_url, ""), |i| admin_url.split_at(i));
            let authority = scheme_end + 3;
            let path = head
                .get(authority..)
                .and_then(|rest| rest.find('/'))
                .map_or(head.len(), |i| authority + i);
            format!("{}/{name}{query}", head.get(..path)?)
        }
        None => format!("{admin_url} dbname={name}"),
    };
    let config = tokio_postgres::Config::from_str(&url).ok()?;
    (config.get_dbname() == Some(name)).then_some(url)
}

async fn drop_database(admin_url: &SecretString, name: &str) -> Result<(), TestDatabaseError> {
    let failed = |source: BoxError| TestDatabaseError::DropFailed {
        name: name.to_owned(),
        source,
    };
    let admin = admin_config(admin_url)?;
    let mut conn = connection::Connector::plain(admin.clone())
        .establish(PostgresSettings::DEFAULT_CONNECT_TIMEOUT)
        .await
        .map_err(|e| failed(Box::new(e)))?;
    // FORCE ends sessions still open on it (a pool a test leaked, a spawned server).
    let statement = diesel::sql_query(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"));
    match tokio::time::timeout(ADMIN_STATEMENT_TIMEOUT, statement.execute(&mut conn)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(failed(Box::new(e))),
        Err(_) => Err(failed(
            format!("no answer within {ADMIN_STATEMENT_TIMEOUT:?}").into(),
        )),
    }
}

/// [`drop_database`] from synchronous code (`Drop`), which may run on a runtime thread where
/// blocking on a future is not allowed: a helper thread gets its own small runtime.
fn drop_database_blocking(admin_url: &SecretString, name: &str) {
    let admin_url = admin_url.clone();
    let owned_name = name.to_owned();
    let spawned = std::thread::Builder::new()
        .name("drop-test-database".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| TestDatabaseError::DropFailed {
                    name: owned_name.clone(),
                    source: Box::new(e),
                })?;
            runtime.block_on(drop_database(&admin_url, &owned_name))
        });
    let outcome = match spawned {
        Ok(handle) => handle.join(),
        Err(e) => Ok(Err(TestDatabaseError::DropFailed {
            name: name.to_owned(),
            source: Box::new(e),
        })),
    };
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(error)) => eprintln!("warning: test database left behind: {}", error.report()),
        Err(_) => eprintln!("warning: test database {name} left behind: the drop thread panicked"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_url_replaces_only_the_database() {
        assert_eq!(
            database_url("postgres://postgres@127.0.0.1:5432/test", "x1").as_deref(),
            Some("postgres://postgres@127.0.0.1:5432/x1")
        );
        assert_eq!(
            database_url("postgresql://u:p%2Fw@db:5433/test?sslmode=disable", "x2").as_deref(),
            Some("postgresql://u:p%2Fw@db:5433/x2?sslmode=disable")
        );
        assert_eq!(
            database_url("postgres://u@db", "x3").as_deref(),
            Some("postgres://u@db/x3")
        );
        assert_eq!(
            database_url("host=db user=u dbname=test", "x4").as_deref(),
            Some("host=db user=u dbname=test dbname=x4")
        );
        // A query parameter would win over the path: refuse rather than use the admin database.
        assert_eq!(database_url("postgres://u@db/test?dbname=test", "x5"), None);
    }

    #[test]
    fn describe_hides_the_password() {
        let config =
            tokio_postgres::Config::from_str("postgres://ada:hunter2@db.example:6543/admin")
                .unwrap();
        assert_eq!(describe(&config), "ada@db.example:6543/admin");
    }
}

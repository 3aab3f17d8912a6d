//! The storage sections: the user database and the session store, read straight into the
//! adapters' own settings.

use std::time::Duration;

use auth_memory::MemorySettings;
use auth_postgres::PostgresSettings;
use auth_redis::RedisSettings;
use auth_sqlite::SqliteSettings;
use secrecy::SecretString;

use super::env::{err, Env};
use super::ConfigError;

/// The embedded default database.
pub const DEFAULT_SQLITE_URL: &str = SqliteSettings::DEFAULT_URL;
/// Default of `MAX_SESSIONS_PER_USER`.
pub const DEFAULT_MAX_SESSIONS_PER_USER: usize = auth_redis::DEFAULT_MAX_SESSIONS_PER_USER;

/// `DATABASE_URL`, `DATABASE_CA_FILE`: where users live.
#[derive(Debug, Clone)]
pub enum DatabaseSettings {
    /// `postgres://` or `postgresql://`; every timeout is `DEPENDENCY_TIMEOUT`.
    Postgres(PostgresSettings),
    /// `sqlite://path` (the default, [`DEFAULT_SQLITE_URL`]).
    Sqlite(SqliteSettings),
}

impl DatabaseSettings {
    pub(super) fn read(env: &Env<'_>, dependency_timeout: Duration) -> Result<Self, ConfigError> {
        let url = env
            .string("DATABASE_URL")
            .unwrap_or_else(|| DEFAULT_SQLITE_URL.into());
        let ca_file = env.path("DATABASE_CA_FILE");
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let mut pg = PostgresSettings::new(SecretString::from(url));
            pg.connect_timeout = dependency_timeout;
            pg.acquire_timeout = dependency_timeout;
            // The server ends a stuck statement (statement_timeout/lock_timeout, set below
            // this) before a request has waited longer than any other dependency.
            pg.query_timeout = dependency_timeout;
            pg.ca_file = ca_file;
            return Ok(Self::Postgres(pg));
        }
        if !url.starts_with("sqlite:") {
            return Err(err(
                "DATABASE_URL",
                "must start with postgres://, postgresql:// or sqlite://",
            ));
        }
        if ca_file.is_some() {
            return Err(err(
                "DATABASE_CA_FILE",
                "applies to a postgres:// DATABASE_URL with sslmode=require",
            ));
        }
        SqliteSettings::from_url(&url)
            .map(Self::Sqlite)
            .map_err(|e| err("DATABASE_URL", format!("not a valid sqlite:// URL: {e}")))
    }

    /// What the start-up log says about the database (never the PostgreSQL URL: it may hold a
    /// password).
    pub fn describe(&self) -> String {
        match self {
            Self::Postgres(_) => "PostgreSQL (DATABASE_URL)".to_owned(),
            Self::Sqlite(s) => format!(
                "SQLite at {} (set DATABASE_URL=postgres://... for PostgreSQL)",
                match &s.location {
                    auth_sqlite::SqliteLocation::File(path) => path.display().to_string(),
                    auth_sqlite::SqliteLocation::Memory => "memory".to_owned(),
                }
            ),
        }
    }
}

/// `REDIS_URL`, `REDIS_KEY_PREFIX`, `REDIS_CLUSTER`, `MAX_SESSIONS_PER_USER`: where sessions,
/// codes and rate limits live. A Redis Cluster is named by one or more of its nodes,
/// comma-separated (`redis://10.0.0.1:7000,redis://10.0.0.2:7000`; the others are found from
/// them); a list of several nodes means a cluster by itself, one node with `REDIS_CLUSTER=true`.
#[derive(Debug, Clone)]
pub enum SessionStoreSettings {
    /// Redis, shared by every instance.
    Redis(RedisSettings),
    /// Process memory: one instance only, lost on restart (development).
    Memory(MemorySettings),
}

impl SessionStoreSettings {
    pub(super) fn read(
        env: &Env<'_>,
        dev: bool,
        dependency_timeout: Duration,
    ) -> Result<Self, ConfigError> {
        let max_sessions_per_user = env
            .positive("MAX_SESSIONS_PER_USER")?
            .unwrap_or(DEFAULT_MAX_SESSIONS_PER_USER);
        let Some(url) = env.string("REDIS_URL") else {
            if !dev {
                return Err(err(
                    "REDIS_URL",
                    "required in production: the in-memory session store serves one instance \
                     only and loses every session on restart",
                ));
            }
            return Ok(Self::Memory(MemorySettings {
                max_sessions_per_user,
                ..MemorySettings::default()
            }));
        };
        if url
            .split(',')
            .map(str::trim)
            .any(|n| !n.starts_with("redis://") && !n.starts_with("rediss://"))
        {
            return Err(err(
                "REDIS_URL",
                "must start with redis:// or rediss:// (each node of a comma-separated list)",
            ));
        }
        let prefix = env
            .string("REDIS_KEY_PREFIX")
            .unwrap_or_else(|| "secureauth".into());
        let mut redis = RedisSettings::new(SecretString::from(url), prefix);
        redis.timeout = dependency_timeout;
        redis.max_sessions_per_user = max_sessions_per_user;
        redis.cluster = env.flag("REDIS_CLUSTER", false)?;
        Ok(Self::Redis(redis))
    }

    /// The live-session cap of either store.
    pub fn max_sessions_per_user(&self) -> usize {
        match self {
            Self::Redis(r) => r.max_sessions_per_user,
            Self::Memory(m) => m.max_sessions_per_user,
        }
    }

    /// Whether sessions are shared through Redis.
    pub fn is_redis(&self) -> bool {
        matches!(self, Self::Redis(_))
    }
}

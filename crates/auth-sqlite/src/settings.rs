//! [`SqliteSettings`]: where the database lives and how connections behave.

use std::path::{Path, PathBuf};
use std::time::Duration;

use auth_core::BoxError;

/// Where the database lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SqliteLocation {
    /// A database file (created, with its parent directory, when missing).
    File(PathBuf),
    /// A private in-memory database, gone when the repository is dropped. For tests: it uses
    /// one connection, so every operation is serialised.
    Memory,
}

/// Settings of the SQLite adapter.
///
/// ```
/// use std::time::Duration;
/// use auth_sqlite::{SqliteLocation, SqliteSettings};
///
/// let settings = SqliteSettings::from_url("sqlite://./data/secureauth.db").unwrap();
/// assert_eq!(settings.location, SqliteLocation::File("./data/secureauth.db".into()));
/// let settings = SqliteSettings { max_connections: 2, ..settings };
/// # let _ = settings;
/// assert_eq!(SqliteSettings::from_url("sqlite::memory:").unwrap().location, SqliteLocation::Memory);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqliteSettings {
    /// The database file, or memory.
    pub location: SqliteLocation,
    /// Largest number of open connections. Reads run in parallel on them (WAL mode); writes
    /// are serialised by the repository. Forced to 1 for [`SqliteLocation::Memory`].
    pub max_connections: usize,
    /// How long a statement waits for a lock held by another connection or process
    /// (`PRAGMA busy_timeout`), and how long a write waits for its turn in this process.
    /// When it elapses the operation fails with `Unavailable`.
    pub busy_timeout: Duration,
    /// Longest time an operation waits to obtain a connection from the pool (opening one
    /// included). When it elapses the operation fails with `Unavailable`.
    pub acquire_timeout: Duration,
}

impl SqliteSettings {
    /// Default for [`Self::max_connections`].
    pub const DEFAULT_MAX_CONNECTIONS: usize = 4;
    /// Default for [`Self::busy_timeout`].
    pub const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(5);
    /// Default for [`Self::acquire_timeout`].
    pub const DEFAULT_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
    /// The URL of the default database file.
    pub const DEFAULT_URL: &'static str = "sqlite://./data/secureauth.db";

    /// Settings for a database file, with default pool size and timeouts.
    pub fn file(path: impl Into<PathBuf>) -> Self {
        Self::at(SqliteLocation::File(path.into()))
    }

    /// Settings for a private in-memory database (tests).
    pub fn memory() -> Self {
        Self::at(SqliteLocation::Memory)
    }

    fn at(location: SqliteLocation) -> Self {
        Self {
            location,
            max_connections: Self::DEFAULT_MAX_CONNECTIONS,
            busy_timeout: Self::DEFAULT_BUSY_TIMEOUT,
            acquire_timeout: Self::DEFAULT_ACQUIRE_TIMEOUT,
        }
    }

    /// Parses a database URL:
    ///
    /// - `sqlite://./data/secureauth.db`, `sqlite://data/x.db` (relative) or
    ///   `sqlite:///var/lib/secureauth/x.db` (absolute), also `sqlite:path`;
    /// - `sqlite::memory:` or `:memory:` for an in-memory database;
    /// - a bare file path.
    ///
    /// Query strings (`?mode=...`) are refused rather than silently ignored.
    pub fn from_url(url: &str) -> Result<Self, SqliteError> {
        let url = url.trim();
        if matches!(url, "sqlite::memory:" | ":memory:" | "sqlite://:memory:") {
            return Ok(Self::memory());
        }
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .unwrap_or(url);
        if path.is_empty() {
            return Err(SqliteError::InvalidSettings("the SQLite URL names no file"));
        }
        if path.contains('?') || path.contains('#') {
            return Err(SqliteError::InvalidSettings(
                "SQLite URL parameters are not supported; use a plain file path",
            ));
        }
        Ok(Self::file(path))
    }

    /// The string SQLite opens, after checking every setting.
    pub(crate) fn open_target(&self) -> Result<String, SqliteError> {
        if self.max_connections == 0 {
            return Err(SqliteError::InvalidSettings(
                "max_connections must be at least 1",
            ));
        }
        if self.busy_timeout.is_zero() || self.acquire_timeout.is_zero() {
            return Err(SqliteError::InvalidSettings("timeouts must be positive"));
        }
        match &self.location {
            SqliteLocation::Memory => Ok(":memory:".to_owned()),
            SqliteLocation::File(path) => file_target(path),
        }
    }

    /// Pool size after the rules above.
    pub(crate) fn pool_size(&self) -> usize {
        match self.location {
            // Every connection to `:memory:` is a different database.
            SqliteLocation::Memory => 1,
            SqliteLocation::File(_) => self.max_connections,
        }
    }
}

impl Default for SqliteSettings {
    /// `./data/secureauth.db`.
    fn default() -> Self {
        Self::file("./data/secureauth.db")
    }
}

fn file_target(path: &Path) -> Result<String, SqliteError> {
    let text = path.to_str().ok_or(SqliteError::InvalidSettings(
        "the SQLite file path is not valid UTF-8",
    ))?;
    if text.is_empty() || text == ":memory:" {
        return Err(SqliteError::InvalidSettings(
            "the SQLite file path is empty",
        ));
    }
    // SQLite is opened with URI filenames enabled: a relative path that looks like a URI must
    // stay a path.
    if text.starts_with("file:") {
        return Ok(format!("./{text}"));
    }
    Ok(text.to_owned())
}

/// Why a SQLite repository could not be opened or migrated.
#[derive(Debug, thiserror::Error)]
pub enum SqliteError {
    /// A setting is unusable.
    #[error("invalid SQLite settings: {0}")]
    InvalidSettings(&'static str),
    /// The database file (or its directory) could not be created or opened, or stayed locked.
    #[error("the SQLite database is unavailable")]
    Unavailable(#[source] BoxError),
    /// Applying a migration failed; it was rolled back.
    #[error("applying the SQLite migrations failed")]
    Migration(#[source] BoxError),
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn urls_parse() {
        let cases = [
            ("sqlite://./data/secureauth.db", "./data/secureauth.db"),
            ("sqlite://data/x.db", "data/x.db"),
            ("sqlite:///var/lib/x.db", "/var/lib/x.db"),
            ("sqlite:x.db", "x.db"),
            ("/tmp/y.db", "/tmp/y.db"),
        ];
        for (url, path) in cases {
            assert_eq!(
                SqliteSettings::from_url(url).unwrap().location,
                SqliteLocation::File(path.into()),
                "{url}"
            );
        }
        for url in ["sqlite::memory:", ":memory:"] {
            assert_eq!(
                SqliteSettings::from_url(url).unwrap().location,
                SqliteLocation::Memory
            );
        }
        for bad in ["", "sqlite://", "sqlite://x.db?mode=ro"] {
            assert!(SqliteSettings::from_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn rejects_unusable_settings() {
        let ok = SqliteSettings::file("x.db");
        assert_eq!(ok.open_target().unwrap(), "x.db");
        assert_eq!(
            SqliteSettings::file("file:x.db").open_target().unwrap(),
            "./file:x.db"
        );
        let none = SqliteSettings {
            max_connections: 0,
            ..ok.clone()
        };
        assert!(none.open_target().is_err());
        let no_wait = SqliteSettings {
            busy_timeout: Duration::ZERO,
            ..ok
        };
        assert!(no_wait.open_target().is_err());
        let memory = SqliteSettings {
            max_connections: 8,
            ..SqliteSettings::memory()
        };
        assert_eq!(memory.pool_size(), 1);
    }
}

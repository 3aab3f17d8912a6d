//! # auth-sqlite
//!
//! SQLite implementations of [`auth_core::UserRepository`] and of the mail outbox
//! [`auth_core::OutboxStore`] for SecureAuth's embedded profile, built on Diesel's SQLite
//! connection run through `diesel-async`'s `SyncConnectionWrapper`, with a small `deadpool`
//! connection pool. SQLite is bundled: no system library is needed.
//!
//! - [`SqliteSettings`]: where the file is (`sqlite://./data/secureauth.db` by default, or
//!   `sqlite::memory:` for tests), the pool size and the timeouts.
//! - [`SqliteUserRepository::open`] creates the file and its directory when missing, applies
//!   the embedded migrations ([`MIGRATIONS`], this crate's `migrations/` folder) and returns
//!   the repository; [`run_migrations`] does only the migrations, for a `migrate` command.
//! - [`SqliteUserRepository::outbox`] returns the [`SqliteOutbox`] of the same database, on
//!   the same pool (so `sqlite::memory:` holds both).
//! - Every connection runs `PRAGMA busy_timeout`, `journal_mode = WAL`,
//!   `synchronous = NORMAL` and `foreign_keys = ON`. Reads run in parallel; this process's
//!   writes take turns (so concurrent requests never see "database is locked"), and
//!   `busy_timeout` covers other processes on the same file.
//! - Errors are translated at the edge: a unique violation on the address becomes
//!   [`UserRepoError::Duplicate`](auth_core::UserRepoError::Duplicate); a lock still held
//!   after the timeout, a file that cannot be opened and I/O errors become
//!   [`UserRepoError::Unavailable`](auth_core::UserRepoError::Unavailable) (and
//!   [`OutboxError::Unavailable`](auth_core::OutboxError::Unavailable)); everything else is
//!   `Other`.
//!
//! ```no_run
//! use std::sync::Arc;
//! use auth_core::{OutboxStore, UserRepository};
//! use auth_sqlite::{SqliteSettings, SqliteUserRepository};
//!
//! # async fn start() -> Result<(), Box<dyn std::error::Error>> {
//! let settings = SqliteSettings::from_url("sqlite://./data/secureauth.db")?;
//! let repository = SqliteUserRepository::open(&settings).await?;
//! let outbox: Arc<dyn OutboxStore> = Arc::new(repository.outbox());
//! let users: Arc<dyn UserRepository> = Arc::new(repository);
//! users.ping().await?;
//! # let _ = outbox;
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

mod connection;
mod database;
mod errors;
mod events;
mod migrations;
mod outbox;
mod passkeys;
mod repository;
mod schema;
mod settings;
mod setup;
mod totp;
mod webhooks;

pub use connection::{SqliteAsyncConnection, SqlitePool};
pub use events::SqliteSecurityEvents;
pub use migrations::run_migrations;
pub use outbox::SqliteOutbox;
pub use passkeys::SqlitePasskeyStore;
pub use repository::SqliteUserRepository;
pub use settings::{SqliteError, SqliteLocation, SqliteSettings};
pub use setup::MIGRATIONS;
pub use totp::SqliteTotpStore;
pub use webhooks::SqliteWebhooks;

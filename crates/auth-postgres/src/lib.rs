//! # auth-postgres
//!
//! PostgreSQL implementation of [`auth_core::UserRepository`], built on Diesel and
//! `diesel-async` with a `deadpool` connection pool.
//!
//! - [`PostgresSettings`]: typed settings (the URL is a secret and is never logged);
//!   [`PostgresSettings::pool`] builds a pool, [`PgUserRepository::connect`] a repository.
//! - [`run_migrations`]: applies the embedded migrations (the workspace's top-level
//!   `migrations/` folder) under a PostgreSQL advisory lock, so it is idempotent and safe when
//!   several instances start at once. Call it on start-up or from a `migrate` command.
//! - Errors are translated at the edge: a unique violation on the address becomes
//!   [`UserRepoError::Duplicate`](auth_core::UserRepoError::Duplicate); a refused, closed or
//!   timed-out connection becomes
//!   [`UserRepoError::Unavailable`](auth_core::UserRepoError::Unavailable), within the
//!   timeouts of the settings; everything else is `Other`.
//! - With the `testing` feature, [`testing::TestDatabase`] gives each test a fresh, migrated
//!   database.
//!
//! ```no_run
//! use std::sync::Arc;
//! use auth_core::UserRepository;
//! use auth_postgres::{run_migrations, PgUserRepository, PostgresSettings};
//!
//! # async fn start() -> Result<(), Box<dyn std::error::Error>> {
//! let settings = PostgresSettings::new("postgres://app:secret@db:5432/auth".into());
//! run_migrations(&settings).await?;
//! let users: Arc<dyn UserRepository> = Arc::new(PgUserRepository::connect(&settings)?);
//! users.ping().await?;
//! # Ok(())
//! # }
//! ```
//!
//! ## TLS
//!
//! A URL with `sslmode=require` connects over TLS only (rustls) and verifies the server's
//! certificate chain and host name, against the public web roots or the CAs of
//! [`PostgresSettings::ca_file`]. Without `sslmode`, or with `disable` or `prefer`,
//! connections are plain TCP: keep the database on loopback or a private network then.

#![warn(missing_docs)]

mod connection;
mod errors;
mod events;
mod migrations;
mod outbox;
mod passkeys;
mod repository;
mod schema;
mod settings;
mod totp;
mod webhooks;

#[cfg(feature = "testing")]
pub mod testing;

pub use events::PgSecurityEvents;
pub use migrations::{run_migrations, MigrationError, MIGRATIONS, MIGRATION_LOCK_KEY};
pub use outbox::PgOutbox;
pub use passkeys::PgPasskeyStore;
pub use repository::PgUserRepository;
pub use settings::{PgPool, PostgresError, PostgresSettings};
pub use totp::PgTotpStore;
pub use webhooks::PgWebhooks;

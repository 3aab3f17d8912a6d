//! The embedded migrations and [`run_migrations`].

use auth_core::BoxError;
use diesel::sql_types::BigInt;
use diesel::RunQueryDsl;
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_async::AsyncPgConnection;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use crate::settings::{PostgresError, PostgresSettings};

/// The migrations of the workspace's top-level `migrations/` folder, compiled into the binary
/// so a deployment needs no files besides the executable.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations");

/// Key of the session-level PostgreSQL advisory lock held while migrations are applied.
/// Any other tool that changes this schema should take the same lock.
pub const MIGRATION_LOCK_KEY: i64 = 0x5EC0_A0D7_0000_0001;

/// Why [`run_migrations`] failed.
#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    /// The settings are unusable.
    #[error("invalid PostgreSQL settings")]
    Settings(#[from] PostgresError),
    /// PostgreSQL could not be reached (within the settings' `connect_timeout`).
    #[error("could not connect to PostgreSQL to apply migrations")]
    Unavailable(#[source] BoxError),
    /// Taking the lock or applying a migration failed; the failed migration was rolled back.
    #[error("applying the database migrations failed")]
    Failed(#[source] BoxError),
}

/// Applies every embedded migration not yet applied, and returns the versions it applied
/// (empty when the schema was already current).
///
/// Idempotent, and safe when several instances call it at once: it holds a PostgreSQL advisory
/// lock ([`MIGRATION_LOCK_KEY`]) on a dedicated connection while it works, so one instance
/// applies the migrations and the others wait, then find nothing left to do. Each migration
/// runs in its own transaction. The lock belongs to the session, so it is released even if this
/// process dies half-way.
pub async fn run_migrations(settings: &PostgresSettings) -> Result<Vec<String>, MigrationError> {
    let conn = settings
        .connector()?
        .establish(settings.connect_timeout)
        .await
        .map_err(|e| MigrationError::Unavailable(Box::new(e)))?;
    // Diesel's migration harness is synchronous; the wrapper blocks on the runtime, which is
    // only allowed on a blocking thread.
    let applied = tokio::task::spawn_blocking(move || apply_locked(conn))
        .await
        .map_err(|e| MigrationError::Failed(Box::new(e)))??;
    // Debug only: the caller decides how loudly to report what was applied.
    tracing::debug!(?applied, "database migrations checked");
    Ok(applied)
}

fn apply_locked(conn: AsyncPgConnection) -> Result<Vec<String>, MigrationError> {
    let mut conn = AsyncConnectionWrapper::<AsyncPgConnection>::from(conn);
    diesel::sql_query("SELECT pg_advisory_lock($1)")
        .bind::<BigInt, _>(MIGRATION_LOCK_KEY)
        .execute(&mut conn)
        .map_err(|e| MigrationError::Failed(Box::new(e)))?;
    let applied = conn
        .run_pending_migrations(MIGRATIONS)
        .map(|versions| versions.iter().map(ToString::to_string).collect())
        .map_err(MigrationError::Failed);
    // Closing the connection would release the lock too; unlocking lets a waiting instance
    // go on without waiting for the close. Its failure changes nothing for the caller.
    let _ = diesel::sql_query("SELECT pg_advisory_unlock($1)")
        .bind::<BigInt, _>(MIGRATION_LOCK_KEY)
        .execute(&mut conn);
    applied
}

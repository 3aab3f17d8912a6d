//! The embedded migrations and [`run_migrations`].

use diesel::result::Error as DieselError;
use diesel::SqliteConnection;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use crate::connection::{self, SqliteAsyncConnection};
use crate::errors::is_outage_message;
use crate::settings::{SqliteError, SqliteSettings};

/// The migrations of this crate's `migrations/` folder, compiled into the binary so a
/// deployment needs no files besides the executable.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// Applies every embedded migration not yet applied to the database of `settings`, and returns
/// the versions it applied (empty when the schema was already current).
///
/// [`SqliteUserRepository::open`](crate::SqliteUserRepository::open) already does this; call it
/// separately from a `migrate` command. Creates the file (and its directory) when missing.
/// Idempotent, and safe when several processes start at once: the migrations run inside one
/// `BEGIN IMMEDIATE` transaction, so one process applies them while the others wait (up to the
/// settings' `busy_timeout`) and then find nothing left to do. For an in-memory database this
/// migrates a database that is dropped right after; it is only useful as a check.
pub async fn run_migrations(settings: &SqliteSettings) -> Result<Vec<String>, SqliteError> {
    let target = settings.open_target()?;
    crate::repository::prepare_file(settings).await?;
    let mut conn = connection::establish(&target, settings.busy_timeout)
        .await
        .map_err(|e| SqliteError::Unavailable(Box::new(e)))?;
    apply(&mut conn).await
}

/// Applies the pending migrations on `conn`, in one immediate transaction.
pub(crate) async fn apply(conn: &mut SqliteAsyncConnection) -> Result<Vec<String>, SqliteError> {
    let applied = conn
        .spawn_blocking(|conn: &mut SqliteConnection| {
            conn.immediate_transaction(|conn| {
                conn.run_pending_migrations(MIGRATIONS)
                    .map(|versions| versions.iter().map(ToString::to_string).collect())
                    .map_err(DieselError::QueryBuilderError)
            })
        })
        .await
        .map_err(|e| match &e {
            DieselError::DatabaseError(_, info) if is_outage_message(info.message()) => {
                SqliteError::Unavailable(Box::new(e))
            }
            _ => SqliteError::Migration(Box::new(e)),
        })?;
    // Debug only: the caller decides how loudly to report what was applied.
    tracing::debug!(?applied, "SQLite migrations checked");
    Ok(applied)
}

//! Getting a database ready before use, shared by [`SqliteUserRepository::open`] and
//! [`run_migrations`]: its file (created private, see [`prepare_file`]) and its schema (the
//! embedded [`MIGRATIONS`], see [`apply`]).
//!
//! [`SqliteUserRepository::open`]: crate::SqliteUserRepository::open
//! [`run_migrations`]: crate::run_migrations

use diesel::result::Error as DieselError;
use diesel::SqliteConnection;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use crate::connection::SqliteAsyncConnection;
use crate::errors::is_outage_message;
use crate::settings::{SqliteError, SqliteLocation, SqliteSettings};

/// The migrations of this crate's `migrations/` folder, compiled into the binary so a
/// deployment needs no files besides the executable.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// Creates the database file of `settings` and its directory when missing (nothing for an
/// in-memory database).
pub(crate) async fn prepare_file(settings: &SqliteSettings) -> Result<(), SqliteError> {
    let SqliteLocation::File(path) = &settings.location else {
        return Ok(());
    };
    let path = path.clone();
    tokio::task::spawn_blocking(move || create_private_file(&path))
        .await
        .map_err(|e| SqliteError::Unavailable(Box::new(e)))?
        .map_err(|e| SqliteError::Unavailable(Box::new(e)))
}

/// Creates the database file, when missing, readable by this user only (0600), in folders
/// created 0700 (existing folders are left as they are). SQLite then opens the empty file as a
/// new database, and gives its `-wal` and `-shm` files the database file's permissions.
fn create_private_file(path: &std::path::Path) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
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

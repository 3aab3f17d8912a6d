//! [`run_migrations`]: the migrations alone, for a `migrate` command.

use crate::connection;
use crate::settings::{SqliteError, SqliteSettings};
use crate::setup;

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
    setup::prepare_file(settings).await?;
    let mut conn = connection::establish(&target, settings.busy_timeout)
        .await
        .map_err(|e| SqliteError::Unavailable(Box::new(e)))?;
    setup::apply(&mut conn).await
}

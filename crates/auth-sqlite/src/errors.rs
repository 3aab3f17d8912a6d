//! Translation of SQLite, Diesel and pool errors into [`UserRepoError`], in one place.

use std::time::Duration;

use auth_core::UserRepoError;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_async::pooled_connection::deadpool::PoolError;

/// The primary key column, as SQLite names it in a constraint message.
const USERS_PK_COLUMN: &str = "users.id";

/// SQLite's messages (`sqlite3_errstr`) for conditions that are outages of the store rather
/// than a problem with the request: a lock still held after `busy_timeout`, a failing or full
/// disk, a file that cannot be opened or written. Diesel reports these as
/// `DatabaseErrorKind::Unknown`, so the message is all there is to go on.
const OUTAGE_MESSAGES: &[&str] = &[
    "database is locked",
    "database table is locked",
    "disk I/O error",
    "unable to open database file",
    "database or disk is full",
    "attempt to write a readonly database",
    "locking protocol",
    "database disk image is malformed",
];

/// Whether a SQLite error message names an outage.
pub(crate) fn is_outage_message(message: &str) -> bool {
    OUTAGE_MESSAGES.iter().any(|m| message.contains(m))
}

/// A failed statement.
///
/// A unique violation is a duplicate address, except on the primary key, where it means the
/// caller reused an id: a bug, not a taken address.
pub(crate) fn from_diesel(error: DieselError) -> UserRepoError {
    match &error {
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info)
            if !info.message().contains(USERS_PK_COLUMN) =>
        {
            UserRepoError::Duplicate
        }
        DieselError::DatabaseError(
            DatabaseErrorKind::UnableToSendCommand | DatabaseErrorKind::ClosedConnection,
            _,
        ) => UserRepoError::Unavailable(Box::new(error)),
        DieselError::DatabaseError(_, info) if is_outage_message(info.message()) => {
            UserRepoError::Unavailable(Box::new(error))
        }
        _ => UserRepoError::Other(Box::new(error)),
    }
}

/// A failed attempt to obtain a connection: the file could not be opened or set up, or the
/// pool had none free in time. Every cause is an outage, except a pool built without what it
/// needs.
pub(crate) fn from_pool(error: PoolError) -> UserRepoError {
    match error {
        PoolError::NoRuntimeSpecified => UserRepoError::Other(Box::new(error)),
        other => UserRepoError::Unavailable(Box::new(other)),
    }
}

/// A bound of the settings elapsed.
pub(crate) fn timed_out(what: &str, after: Duration) -> UserRepoError {
    UserRepoError::Unavailable(format!("{what}: SQLite was busy for {after:?}").into())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    fn db_error(kind: DatabaseErrorKind, message: &str) -> DieselError {
        DieselError::DatabaseError(kind, Box::new(message.to_owned()))
    }

    #[test]
    fn classifies_errors() {
        assert!(matches!(
            from_diesel(db_error(
                DatabaseErrorKind::UniqueViolation,
                "UNIQUE constraint failed: users.email"
            )),
            UserRepoError::Duplicate
        ));
        assert!(matches!(
            from_diesel(db_error(
                DatabaseErrorKind::UniqueViolation,
                "UNIQUE constraint failed: users.id"
            )),
            UserRepoError::Other(_)
        ));
        assert!(matches!(
            from_diesel(db_error(DatabaseErrorKind::Unknown, "database is locked")),
            UserRepoError::Unavailable(_)
        ));
        assert!(matches!(
            from_diesel(db_error(DatabaseErrorKind::Unknown, "disk I/O error")),
            UserRepoError::Unavailable(_)
        ));
        assert!(matches!(
            from_diesel(db_error(DatabaseErrorKind::CheckViolation, "CHECK failed")),
            UserRepoError::Other(_)
        ));
        assert!(matches!(
            from_diesel(DieselError::NotFound),
            UserRepoError::Other(_)
        ));
    }
}

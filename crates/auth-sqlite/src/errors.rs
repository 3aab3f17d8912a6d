//! Translation of SQLite, Diesel and pool errors into the ports' errors ([`UserRepoError`],
//! [`OutboxError`]), in one place.

use std::time::Duration;

use auth_core::{BoxError, OutboxError, UserRepoError};
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

/// A failure every port of this crate reports the same way: the store is out of reach, or it
/// answered with an error that is not an outage. Converted into each port's error with `?`.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The database cannot be reached or did not answer in time.
    Unavailable(BoxError),
    /// Anything else.
    Other(BoxError),
}

impl Failure {
    /// The cause, whatever the kind.
    pub(crate) fn into_source(self) -> BoxError {
        match self {
            Failure::Unavailable(source) | Failure::Other(source) => source,
        }
    }
}

impl From<Failure> for UserRepoError {
    fn from(failure: Failure) -> Self {
        match failure {
            Failure::Unavailable(source) => UserRepoError::Unavailable(source),
            Failure::Other(source) => UserRepoError::Other(source),
        }
    }
}

impl From<Failure> for OutboxError {
    fn from(failure: Failure) -> Self {
        match failure {
            Failure::Unavailable(source) => OutboxError::Unavailable(source),
            Failure::Other(source) => OutboxError::Other(source),
        }
    }
}

/// A failed statement, as an outage or not: a lost connection or a message naming an outage
/// is `Unavailable`, everything else (constraint violations included) is `Other`.
pub(crate) fn failure(error: DieselError) -> Failure {
    match &error {
        DieselError::DatabaseError(
            DatabaseErrorKind::UnableToSendCommand | DatabaseErrorKind::ClosedConnection,
            _,
        ) => Failure::Unavailable(Box::new(error)),
        DieselError::DatabaseError(_, info) if is_outage_message(info.message()) => {
            Failure::Unavailable(Box::new(error))
        }
        _ => Failure::Other(Box::new(error)),
    }
}

/// A failed statement of the user repository.
///
/// A unique violation is a duplicate address, except on the primary key, where it means the
/// caller reused an id: a bug, not a taken address.
pub(crate) fn from_diesel(error: DieselError) -> UserRepoError {
    match &error {
        // The address index, not a key: a colliding id (of an account, or of a mail queued
        // with one) is a failure, not "address taken".
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info)
            if !info.message().contains(USERS_PK_COLUMN)
                && !info.message().contains("mail_outbox.") =>
        {
            UserRepoError::Duplicate
        }
        _ => failure(error).into(),
    }
}

/// A failed attempt to obtain a connection: the file could not be opened or set up, or the
/// pool had none free in time. Every cause is an outage, except a pool built without what it
/// needs.
pub(crate) fn from_pool(error: PoolError) -> Failure {
    match error {
        PoolError::NoRuntimeSpecified => Failure::Other(Box::new(error)),
        other => Failure::Unavailable(Box::new(other)),
    }
}

/// A bound of the settings elapsed.
pub(crate) fn timed_out(what: &str, after: Duration) -> Failure {
    Failure::Unavailable(format!("{what}: SQLite was busy for {after:?}").into())
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

    fn outbox(error: DieselError) -> OutboxError {
        failure(error).into()
    }

    #[test]
    fn classifies_outbox_errors() {
        assert!(matches!(
            outbox(db_error(DatabaseErrorKind::Unknown, "database is locked")),
            OutboxError::Unavailable(_)
        ));
        assert!(matches!(
            outbox(db_error(DatabaseErrorKind::ClosedConnection, "closed")),
            OutboxError::Unavailable(_)
        ));
        // A reused message id is a bug of the caller, not an outage.
        assert!(matches!(
            outbox(db_error(
                DatabaseErrorKind::UniqueViolation,
                "UNIQUE constraint failed: mail_outbox.id"
            )),
            OutboxError::Other(_)
        ));
        assert!(matches!(
            OutboxError::from(timed_out("waiting", Duration::from_secs(1))),
            OutboxError::Unavailable(_)
        ));
    }
}

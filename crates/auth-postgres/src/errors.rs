//! Translation of driver and pool errors into [`UserRepoError`], in one place.

use std::time::Duration;

use auth_core::UserRepoError;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_async::pooled_connection::deadpool::PoolError;

/// Name of the primary key constraint of `users` (PostgreSQL's default naming).
const USERS_PKEY: &str = "users_pkey";

/// A failed statement.
///
/// Without a SQLSTATE (diesel-async reports I/O failures as `UnableToSendCommand`) the server
/// was not reached or the connection died: an outage. A unique violation is a duplicate
/// address, except on the primary key, where it means the caller reused an id: a bug, not a
/// taken address.
pub(crate) fn from_diesel(error: DieselError) -> UserRepoError {
    match &error {
        // The address index, not a key: a colliding id (of an account, or of a mail queued
        // with one) is a failure, not "address taken".
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info)
            if info.constraint_name() != Some(USERS_PKEY)
                && info.table_name() != Some("mail_outbox") =>
        {
            UserRepoError::Duplicate
        }
        DieselError::DatabaseError(
            DatabaseErrorKind::UnableToSendCommand | DatabaseErrorKind::ClosedConnection,
            _,
        ) => UserRepoError::Unavailable(Box::new(error)),
        // `statement_timeout` or `lock_timeout` (SQLSTATE 57014 / 55P03): the database is
        // stalled, not wrong. diesel keeps no SQLSTATE for these, only the message.
        DieselError::DatabaseError(DatabaseErrorKind::Unknown, info)
            if info.message().starts_with("canceling statement due to")
                || info.message().starts_with("could not obtain lock") =>
        {
            UserRepoError::Unavailable(Box::new(error))
        }
        _ => UserRepoError::Other(Box::new(error)),
    }
}

/// A failed attempt to obtain a connection: every cause is an outage (refused, timed out,
/// closed pool, failed handshake), except a pool built without what it needs.
pub(crate) fn from_pool(error: PoolError) -> UserRepoError {
    match error {
        PoolError::NoRuntimeSpecified => UserRepoError::Other(Box::new(error)),
        other => UserRepoError::Unavailable(Box::new(other)),
    }
}

/// A bound of the settings elapsed.
pub(crate) fn timed_out(what: &str, after: Duration) -> UserRepoError {
    UserRepoError::Unavailable(format!("{what}: no answer from PostgreSQL within {after:?}").into())
}

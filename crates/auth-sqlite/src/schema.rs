//! Diesel's view of the tables created by `migrations/`. Written by hand (no `diesel` CLI in
//! the build); the `storage` integration test exercises every column.

diesel::table! {
    users (id) {
        id -> Text,
        email -> Text,
        password_hash -> Text,
        verified_at -> Nullable<TimestamptzSqlite>,
        created_at -> TimestamptzSqlite,
        updated_at -> TimestamptzSqlite,
        language -> Nullable<Text>,
    }
}

diesel::table! {
    mail_outbox (id) {
        id -> Text,
        recipient -> Text,
        kind -> Text,
        supersedes -> Nullable<Text>,
        sealed -> Binary,
        state -> Text,
        attempts -> BigInt,
        created_at -> TimestamptzSqlite,
        next_attempt_at -> TimestamptzSqlite,
        expires_at -> TimestamptzSqlite,
        lease_id -> Nullable<Text>,
        lease_until -> Nullable<TimestamptzSqlite>,
        last_error -> Nullable<Text>,
    }
}

diesel::table! {
    mail_suppressions (address) {
        address -> Text,
        until -> TimestamptzSqlite,
        reason -> Text,
    }
}

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
    }
}

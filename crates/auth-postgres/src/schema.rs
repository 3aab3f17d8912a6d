//! Diesel's view of the tables created by `migrations/`. Written by hand (no `diesel` CLI in
//! the build); the `migrations` integration test checks it against the migrated database.

diesel::table! {
    users (id) {
        id -> Uuid,
        email -> Text,
        password_hash -> Text,
        verified_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        language -> Nullable<Text>,
        role -> Text,
        disabled_at -> Nullable<Timestamptz>,
    }
}

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
        role -> Text,
        disabled_at -> Nullable<TimestamptzSqlite>,
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

diesel::table! {
    totp_secrets (user_id) {
        user_id -> Text,
        sealed_secret -> Binary,
        enabled_at -> Nullable<TimestamptzSqlite>,
        last_step -> Nullable<BigInt>,
        created_at -> TimestamptzSqlite,
    }
}

diesel::table! {
    totp_recovery_codes (user_id, code_hash) {
        user_id -> Text,
        code_hash -> Binary,
    }
}

diesel::table! {
    mfa_challenges (token_hash) {
        token_hash -> Binary,
        user_id -> Text,
        client -> Binary,
        epoch -> BigInt,
        expires_at -> TimestamptzSqlite,
    }
}

diesel::table! {
    security_events (id) {
        id -> Text,
        user_id -> Text,
        at -> TimestamptzSqlite,
        kind -> Text,
        reason -> Nullable<Text>,
        ip -> Nullable<Text>,
        user_agent -> Nullable<Text>,
        request_id -> Nullable<Text>,
    }
}

diesel::table! {
    passkeys (id) {
        id -> Text,
        user_id -> Text,
        credential_id -> Binary,
        credential -> Binary,
        sign_count -> BigInt,
        name -> Text,
        created_at -> TimestamptzSqlite,
        last_used_at -> Nullable<TimestamptzSqlite>,
    }
}

diesel::table! {
    webhook_endpoints (id) {
        id -> Text,
        url -> Text,
        kinds -> Text,
        sealed_secret -> Binary,
        created_at -> TimestamptzSqlite,
    }
}

diesel::table! {
    webhook_deliveries (id) {
        id -> Text,
        endpoint_id -> Text,
        event_id -> Text,
        kind -> Text,
        payload -> Text,
        state -> Text,
        attempts -> BigInt,
        last_status -> Nullable<BigInt>,
        last_error -> Nullable<Text>,
        created_at -> TimestamptzSqlite,
        next_attempt_at -> TimestamptzSqlite,
        expires_at -> TimestamptzSqlite,
        finished_at -> Nullable<TimestamptzSqlite>,
        lease_id -> Nullable<Text>,
        lease_until -> Nullable<TimestamptzSqlite>,
    }
}

diesel::joinable!(webhook_deliveries -> webhook_endpoints (endpoint_id));
diesel::allow_tables_to_appear_in_same_query!(webhook_deliveries, webhook_endpoints);

-- Passkeys (auth_core::PasskeyStore): WebAuthn credentials, several per user. A credential id
-- is registered to one account only (unique index); the counter is compared-and-set in one
-- UPDATE. Everything goes with its user.

CREATE TABLE passkeys (
    id            uuid        NOT NULL PRIMARY KEY,
    user_id       uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    credential_id bytea       NOT NULL,
    credential    bytea       NOT NULL,
    sign_count    bigint      NOT NULL,
    name          text        NOT NULL,
    created_at    timestamptz NOT NULL,
    last_used_at  timestamptz,
    CONSTRAINT passkeys_credential_id_key UNIQUE (credential_id),
    CONSTRAINT passkeys_credential_id_len CHECK (octet_length(credential_id) BETWEEN 1 AND 1023),
    CONSTRAINT passkeys_sign_count_range CHECK (sign_count BETWEEN 0 AND 4294967295),
    CONSTRAINT passkeys_name_len CHECK (char_length(name) BETWEEN 1 AND 64)
);

CREATE INDEX passkeys_user ON passkeys (user_id, created_at);

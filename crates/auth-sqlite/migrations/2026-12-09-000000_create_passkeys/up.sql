-- Passkeys (auth_core::PasskeyStore): WebAuthn credentials, several per user. A credential id
-- is registered to one account only (unique index); the counter is compared-and-set in one
-- UPDATE. Ids are hyphenated UUIDs as text and times UTC text, as in `users`. Everything goes
-- with its user.

CREATE TABLE passkeys (
    id            TEXT    NOT NULL PRIMARY KEY,
    user_id       TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    credential_id BLOB    NOT NULL UNIQUE,
    credential    BLOB    NOT NULL,
    sign_count    INTEGER NOT NULL,
    name          TEXT    NOT NULL,
    created_at    TEXT    NOT NULL,
    last_used_at  TEXT,
    CONSTRAINT passkeys_credential_id_len CHECK (length(credential_id) BETWEEN 1 AND 1023),
    CONSTRAINT passkeys_sign_count_range CHECK (sign_count BETWEEN 0 AND 4294967295),
    CONSTRAINT passkeys_name_len CHECK (length(name) BETWEEN 1 AND 64)
) STRICT;

CREATE INDEX passkeys_user ON passkeys (user_id, created_at);

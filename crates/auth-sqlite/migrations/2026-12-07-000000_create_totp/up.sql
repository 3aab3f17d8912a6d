-- Second factors (auth_core::TotpStore): one TOTP secret per user, sealed by the service
-- (nonce and ciphertext: the store never sees it in the clear), its recovery codes as HMACs,
-- and the short-lived tokens of logins waiting for their second step (SHA-256 only). Ids are
-- hyphenated UUIDs as text and times UTC text, as in `users`. Everything goes with its user.

CREATE TABLE totp_secrets (
    user_id       TEXT    NOT NULL PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    sealed_secret BLOB    NOT NULL,
    -- NULL while the enrolment waits for its confirming code.
    enabled_at    TEXT,
    -- The last time step a code was accepted for: a code of this step or an earlier one is
    -- refused (replay). Compare-and-set in one UPDATE.
    last_step     INTEGER,
    created_at    TEXT    NOT NULL,
    CONSTRAINT totp_secrets_last_step_not_negative CHECK (last_step IS NULL OR last_step >= 0)
) STRICT;

CREATE TABLE totp_recovery_codes (
    user_id   TEXT NOT NULL REFERENCES totp_secrets (user_id) ON DELETE CASCADE,
    code_hash BLOB NOT NULL,
    PRIMARY KEY (user_id, code_hash),
    CONSTRAINT totp_recovery_codes_hash_len CHECK (length(code_hash) = 32)
) STRICT;

CREATE TABLE mfa_challenges (
    token_hash BLOB    NOT NULL PRIMARY KEY,
    user_id    TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client     BLOB    NOT NULL,
    epoch      INTEGER NOT NULL,
    expires_at TEXT    NOT NULL,
    CONSTRAINT mfa_challenges_hash_len CHECK (length(token_hash) = 32)
) STRICT;

CREATE INDEX mfa_challenges_user ON mfa_challenges (user_id, expires_at);

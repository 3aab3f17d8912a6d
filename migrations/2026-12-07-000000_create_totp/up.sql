-- Second factors (auth_core::TotpStore): one TOTP secret per user, sealed by the application
-- (nonce and ciphertext: this table never holds it in the clear), its recovery codes as
-- HMACs, and the short-lived tokens of logins waiting for their second step (SHA-256 only).
-- Everything goes with its user.
CREATE TABLE totp_secrets (
    user_id       uuid        PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    sealed_secret bytea       NOT NULL,
    -- NULL while the enrolment waits for its confirming code.
    enabled_at    timestamptz,
    -- The last time step a code was accepted for; a code of this step or an earlier one is a
    -- replay. Advanced by one compare-and-set UPDATE.
    last_step     bigint,
    created_at    timestamptz NOT NULL,
    CONSTRAINT totp_secrets_last_step CHECK (last_step IS NULL OR last_step >= 0)
);

CREATE TABLE totp_recovery_codes (
    user_id   uuid  NOT NULL REFERENCES totp_secrets (user_id) ON DELETE CASCADE,
    code_hash bytea NOT NULL,
    PRIMARY KEY (user_id, code_hash),
    CONSTRAINT totp_recovery_codes_hash_len CHECK (octet_length(code_hash) = 32)
);

CREATE TABLE mfa_challenges (
    token_hash bytea       PRIMARY KEY,
    user_id    uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client     bytea       NOT NULL,
    epoch      bigint      NOT NULL,
    expires_at timestamptz NOT NULL,
    CONSTRAINT mfa_challenges_hash_len CHECK (octet_length(token_hash) = 32)
);

CREATE INDEX mfa_challenges_user ON mfa_challenges (user_id, expires_at);

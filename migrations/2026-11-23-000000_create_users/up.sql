-- User accounts. Times are timestamptz (microsecond precision, stored as UTC).
CREATE TABLE users (
    id            uuid        PRIMARY KEY,
    email         text        NOT NULL,
    password_hash text        NOT NULL,
    verified_at   timestamptz,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    CONSTRAINT users_email_not_empty CHECK (email <> ''),
    CONSTRAINT users_password_hash_not_empty CHECK (password_hash <> '')
);

-- Uniqueness of an address is enforced here, case-insensitively, so that two concurrent
-- signups cannot both succeed, whatever the application does before the INSERT.
-- Lookups by address use the same expression so they can use this index.
CREATE UNIQUE INDEX users_email_lower_key ON users (lower(email));

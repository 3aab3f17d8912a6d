-- User accounts: the PostgreSQL `users` table, adapted to SQLite.
-- Ids are hyphenated UUIDs as text; times are UTC text written by Diesel
-- ("YYYY-MM-DD HH:MM:SS.ffffff+00:00"), which keeps microseconds exactly.
-- STRICT makes SQLite enforce the declared types (SQLite 3.37+; the bundled one is newer).
CREATE TABLE users (
    id            TEXT NOT NULL PRIMARY KEY,
    email         TEXT NOT NULL COLLATE NOCASE,
    password_hash TEXT NOT NULL,
    verified_at   TEXT,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    CONSTRAINT users_id_is_uuid CHECK (length(id) = 36),
    CONSTRAINT users_email_not_empty CHECK (email <> ''),
    CONSTRAINT users_password_hash_not_empty CHECK (password_hash <> '')
) STRICT;

-- Uniqueness of an address is enforced here, case-insensitively, so that two concurrent
-- signups cannot both succeed, whatever the application does before the INSERT. The
-- application stores addresses lower-cased (Unicode); NOCASE also folds ASCII case in rows
-- written by other tools. Lookups by `email = ?` use the column's collation, hence this index.
CREATE UNIQUE INDEX users_email_key ON users (email COLLATE NOCASE);

-- The transactional mail outbox (auth_core::OutboxStore) and the addresses that get no mail
-- for a while. Ids and leases are hyphenated UUIDs as text and times are UTC text written by
-- Diesel, as in `users`. That text orders like the times it stands for (fixed-width date and
-- time, then an optional fraction, then "+00:00", and '+' sorts before '.' and the digits),
-- so `<`, `ORDER BY` and `min()` on these columns compare times.

CREATE TABLE mail_outbox (
    id              TEXT    NOT NULL PRIMARY KEY,
    -- Stored in the address's normalised (lower-case) form; NOCASE also folds ASCII case in
    -- rows written by other tools.
    recipient       TEXT    NOT NULL COLLATE NOCASE,
    kind            TEXT    NOT NULL,
    supersedes      TEXT,
    -- Nonce and ciphertext, exactly as handed over: the store never sees a code in the clear.
    sealed          BLOB    NOT NULL,
    state           TEXT    NOT NULL DEFAULT 'pending',
    attempts        INTEGER NOT NULL DEFAULT 0,
    created_at      TEXT    NOT NULL,
    next_attempt_at TEXT    NOT NULL,
    expires_at      TEXT    NOT NULL,
    -- The current claim: a courier's lease and when it runs out; both NULL when unclaimed.
    lease_id        TEXT,
    lease_until     TEXT,
    last_error      TEXT,
    CONSTRAINT mail_outbox_id_is_uuid CHECK (length(id) = 36),
    CONSTRAINT mail_outbox_recipient_not_empty CHECK (recipient <> ''),
    CONSTRAINT mail_outbox_state CHECK (state IN ('pending', 'dead')),
    CONSTRAINT mail_outbox_attempts_not_negative CHECK (attempts >= 0),
    CONSTRAINT mail_outbox_lease_is_uuid CHECK (lease_id IS NULL OR length(lease_id) = 36),
    CONSTRAINT mail_outbox_lease_has_an_end CHECK ((lease_id IS NULL) = (lease_until IS NULL))
) STRICT;

-- Claims: due pending messages.
CREATE INDEX mail_outbox_claim ON mail_outbox (state, next_attempt_at);
-- Sweeps: expired messages, pending or dead.
CREATE INDEX mail_outbox_expires_at ON mail_outbox (expires_at);
-- Enqueues: the unsent messages a new one supersedes.
CREATE INDEX mail_outbox_supersedes ON mail_outbox (recipient COLLATE NOCASE, supersedes)
    WHERE supersedes IS NOT NULL;

CREATE TABLE mail_suppressions (
    -- Lower-cased, so that one address has one row whatever its case.
    address TEXT NOT NULL PRIMARY KEY COLLATE NOCASE,
    until   TEXT NOT NULL,
    reason  TEXT NOT NULL,
    CONSTRAINT mail_suppressions_address_not_empty CHECK (address <> ''),
    CONSTRAINT mail_suppressions_reason_not_empty CHECK (reason <> '')
) STRICT;

-- Sweeps and the count of live suppressions.
CREATE INDEX mail_suppressions_until ON mail_suppressions (until);

-- The transactional mail outbox: requests queue messages here and answer; couriers on every
-- instance claim due messages under a lease and deliver them. Bodies are sealed (AEAD) by
-- the application: this table never holds a code in the clear.
CREATE TABLE mail_outbox (
    id              uuid        PRIMARY KEY,
    recipient       text        NOT NULL,
    kind            text        NOT NULL,
    -- Pending, unclaimed messages with the same recipient and key are replaced by a newer one.
    supersedes      text,
    sealed          bytea       NOT NULL,
    state           text        NOT NULL DEFAULT 'pending',
    attempts        integer     NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL,
    next_attempt_at timestamptz NOT NULL,
    expires_at      timestamptz NOT NULL,
    lease_id        uuid,
    lease_until     timestamptz,
    last_error      text,
    CONSTRAINT mail_outbox_state CHECK (state IN ('pending', 'dead')),
    CONSTRAINT mail_outbox_attempts CHECK (attempts >= 0)
);

-- What a courier claims: pending messages by due time.
CREATE INDEX mail_outbox_due ON mail_outbox (next_attempt_at, created_at) WHERE state = 'pending';
-- What the sweeper deletes.
CREATE INDEX mail_outbox_expires ON mail_outbox (expires_at);
-- What a new message supersedes.
CREATE INDEX mail_outbox_supersedes ON mail_outbox (lower(recipient), supersedes)
    WHERE supersedes IS NOT NULL AND state = 'pending';

-- Addresses that get no mail for a while (permanent refusals, bounces, complaints).
CREATE TABLE mail_suppressions (
    -- Lower-cased by the application.
    address text        PRIMARY KEY,
    until   timestamptz NOT NULL,
    reason  text        NOT NULL
);

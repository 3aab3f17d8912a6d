-- Each account's security history (auth_core::SecurityEvents): the PostgreSQL
-- `security_events` table, adapted to SQLite. Append-only, deleted only past the retention
-- period; not tied to the `users` row (an account's deletion is itself an event, kept until it
-- ages out). Ids are hyphenated UUIDs as text and times UTC text, as in `users`. No column
-- holds a secret.
CREATE TABLE security_events (
    id         TEXT NOT NULL PRIMARY KEY,
    user_id    TEXT NOT NULL,
    at         TEXT NOT NULL,
    kind       TEXT NOT NULL,
    -- login_failed only: bad_credentials, unverified, throttled, second_factor_failed.
    reason     TEXT,
    -- "203.0.113.0/24", "2001:db8:1::/48".
    ip         TEXT,
    user_agent TEXT,
    request_id TEXT,
    CONSTRAINT security_events_kind_len CHECK (length(kind) <= 64),
    CONSTRAINT security_events_reason_len CHECK (length(reason) <= 64),
    CONSTRAINT security_events_ip_len CHECK (length(ip) <= 64),
    CONSTRAINT security_events_user_agent_len CHECK (length(user_agent) <= 256),
    CONSTRAINT security_events_request_id_len CHECK (length(request_id) <= 64)
) STRICT;

CREATE INDEX security_events_user_at ON security_events (user_id, at DESC, id DESC);
CREATE INDEX security_events_at ON security_events (at);

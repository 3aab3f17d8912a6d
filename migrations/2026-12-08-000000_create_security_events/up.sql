-- Each account's security history (auth_core::SecurityEvents): append-only, deleted only past
-- the retention period. Not tied to the `users` row (no foreign key): an account's deletion is
-- itself an event, kept until it ages out. No column holds a secret: the client address is a
-- network (host bits cleared), the user agent and request id are bounded.
CREATE TABLE security_events (
    id         uuid        PRIMARY KEY,
    user_id    uuid        NOT NULL,
    at         timestamptz NOT NULL,
    kind       text        NOT NULL,
    -- login_failed only: bad_credentials, unverified, throttled, second_factor_failed.
    reason     text,
    -- "203.0.113.0/24", "2001:db8:1::/48".
    ip         text,
    user_agent text,
    request_id text,
    CONSTRAINT security_events_kind_len CHECK (length(kind) <= 64),
    CONSTRAINT security_events_reason_len CHECK (length(reason) <= 64),
    CONSTRAINT security_events_ip_len CHECK (length(ip) <= 64),
    CONSTRAINT security_events_user_agent_len CHECK (length(user_agent) <= 256),
    CONSTRAINT security_events_request_id_len CHECK (length(request_id) <= 64)
);

-- A user's page, newest first.
CREATE INDEX security_events_user_at ON security_events (user_id, at DESC, id DESC);
-- Retention.
CREATE INDEX security_events_at ON security_events (at);

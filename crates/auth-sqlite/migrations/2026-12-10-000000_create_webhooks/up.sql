-- Webhook endpoints (auth_core::WebhookStore) and their durable delivery queue: the
-- PostgreSQL tables, adapted to SQLite. Ids are hyphenated UUIDs as text and times UTC text;
-- the kinds an endpoint wants are a JSON array of names. A claim runs in one BEGIN IMMEDIATE
-- transaction. The signing secret is sealed by the application; no column holds it in the
-- clear.
CREATE TABLE webhook_endpoints (
    id            TEXT NOT NULL PRIMARY KEY,
    url           TEXT NOT NULL,
    kinds         TEXT NOT NULL,
    sealed_secret BLOB NOT NULL,
    created_at    TEXT NOT NULL,
    CONSTRAINT webhook_endpoints_url_len CHECK (length(url) BETWEEN 1 AND 2048)
) STRICT;

CREATE TABLE webhook_deliveries (
    id              TEXT    NOT NULL PRIMARY KEY,
    endpoint_id     TEXT    NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_id        TEXT    NOT NULL,
    kind            TEXT    NOT NULL,
    payload         TEXT    NOT NULL,
    state           TEXT    NOT NULL DEFAULT 'pending',
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_status     INTEGER,
    last_error      TEXT,
    created_at      TEXT    NOT NULL,
    next_attempt_at TEXT    NOT NULL,
    expires_at      TEXT    NOT NULL,
    finished_at     TEXT,
    lease_id        TEXT,
    lease_until     TEXT,
    CONSTRAINT webhook_deliveries_state CHECK (state IN ('pending', 'delivered', 'dead')),
    CONSTRAINT webhook_deliveries_attempts CHECK (attempts >= 0),
    CONSTRAINT webhook_deliveries_payload_len CHECK (length(payload) <= 65536)
) STRICT;

CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at, created_at)
    WHERE state = 'pending';
CREATE INDEX webhook_deliveries_log ON webhook_deliveries (endpoint_id, created_at DESC, id DESC);
CREATE INDEX webhook_deliveries_finished ON webhook_deliveries (finished_at)
    WHERE finished_at IS NOT NULL;

-- Webhook endpoints (auth_core::WebhookStore) and their durable delivery queue, with the
-- mail outbox's semantics: couriers claim due deliveries under a lease (FOR UPDATE SKIP
-- LOCKED) and report back naming it. The signing secret is sealed by the application
-- (XChaCha20-Poly1305, bound to the endpoint id); no column holds it in the clear. The body
-- is the event as JSON, without any secret.
CREATE TABLE webhook_endpoints (
    id            uuid        PRIMARY KEY,
    url           text        NOT NULL,
    kinds         text[]      NOT NULL,
    sealed_secret bytea       NOT NULL,
    created_at    timestamptz NOT NULL,
    CONSTRAINT webhook_endpoints_url_len CHECK (char_length(url) BETWEEN 1 AND 2048),
    CONSTRAINT webhook_endpoints_kinds CHECK (cardinality(kinds) BETWEEN 1 AND 64)
);

CREATE TABLE webhook_deliveries (
    id              uuid        PRIMARY KEY,
    endpoint_id     uuid        NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_id        uuid        NOT NULL,
    kind            text        NOT NULL,
    payload         text        NOT NULL,
    state           text        NOT NULL DEFAULT 'pending',
    attempts        integer     NOT NULL DEFAULT 0,
    last_status     integer,
    last_error      text,
    created_at      timestamptz NOT NULL,
    next_attempt_at timestamptz NOT NULL,
    expires_at      timestamptz NOT NULL,
    finished_at     timestamptz,
    lease_id        uuid,
    lease_until     timestamptz,
    CONSTRAINT webhook_deliveries_state CHECK (state IN ('pending', 'delivered', 'dead')),
    CONSTRAINT webhook_deliveries_attempts CHECK (attempts >= 0),
    CONSTRAINT webhook_deliveries_payload_len CHECK (octet_length(payload) <= 65536)
);

-- What a courier claims.
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at, created_at)
    WHERE state = 'pending';
-- An endpoint's log, newest first.
CREATE INDEX webhook_deliveries_log ON webhook_deliveries (endpoint_id, created_at DESC, id DESC);
-- What the pruner deletes.
CREATE INDEX webhook_deliveries_finished ON webhook_deliveries (finished_at)
    WHERE finished_at IS NOT NULL;

-- Per-tenant circuit breaker for disposals, and the per-tenant event sequence.
-- The row is locked by every disposal and every event writer of the tenant, so
-- the hourly count and the event sequence are claimed atomically, and `seq`
-- order is commit order (a later transaction waits for the lock).
CREATE TABLE tenant_counters (
    tenant_id TEXT PRIMARY KEY NOT NULL REFERENCES tenants(id),
    brake_tripped_at TEXT,
    next_seq BIGINT NOT NULL
);

-- Transactional outbox: written in the state change's transaction.
CREATE TABLE outbox (
    id TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    seq BIGINT NOT NULL,
    event_type TEXT NOT NULL,
    subject_user_id TEXT,
    data TEXT NOT NULL,
    occurred_at TEXT NOT NULL
);
CREATE UNIQUE INDEX outbox_seq ON outbox (tenant_id, seq);

-- Webhook delivery progress per (tenant, endpoint), with a lease so one relay
-- delivers each endpoint's events in order.
CREATE TABLE webhook_cursors (
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    endpoint TEXT NOT NULL,
    last_seq BIGINT NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt_at TEXT NOT NULL,
    paused BOOLEAN NOT NULL,
    lease_owner TEXT,
    lease_until TEXT,
    PRIMARY KEY (tenant_id, endpoint)
);

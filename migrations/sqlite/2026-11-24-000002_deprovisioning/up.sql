-- Deprovisioning: the content ledger, user data, SSO subjects, disposals and
-- their receipts, tombstones (keyed hashes only), audit.

ALTER TABLE users ADD COLUMN legal_hold BOOLEAN NOT NULL DEFAULT FALSE;

CREATE TABLE content_items (
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    kind TEXT NOT NULL,
    item_id TEXT NOT NULL,
    owner_id TEXT,
    parent_kind TEXT,
    parent_id TEXT,
    title TEXT,
    personal_root BOOLEAN NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (tenant_id, kind, item_id)
);
CREATE INDEX content_items_owner ON content_items (tenant_id, owner_id);
CREATE INDEX content_items_parent ON content_items (tenant_id, parent_kind, parent_id);

-- Who an item is shared with (the archive folder is shared with the new owner).
CREATE TABLE content_shares (
    tenant_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    item_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (tenant_id, kind, item_id, user_id)
);
CREATE INDEX content_shares_user ON content_shares (tenant_id, user_id);

CREATE TABLE user_data (
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    category TEXT NOT NULL,
    record_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (tenant_id, category, record_id)
);
CREATE INDEX user_data_user ON user_data (tenant_id, user_id);

CREATE TABLE sso_subjects (
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    issuer TEXT NOT NULL,
    subject TEXT NOT NULL,
    user_id TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (tenant_id, issuer, subject)
);
CREATE INDEX sso_subjects_user ON sso_subjects (tenant_id, user_id);

-- One row per disposal run: scheduled (grace), held (brake or legal hold), done, cancelled.
CREATE TABLE disposals (
    id TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    user_id TEXT NOT NULL,
    state TEXT NOT NULL,
    cause TEXT NOT NULL,
    due_at TEXT NOT NULL,
    actor TEXT NOT NULL,
    caller_user_id TEXT,
    plan_hash TEXT,
    policy_digest TEXT,
    counts TEXT,
    created_at TEXT NOT NULL,
    completed_at TEXT
);
-- At most one open disposal per person: a repeated or concurrent trigger finds it.
CREATE UNIQUE INDEX disposals_open ON disposals (tenant_id, user_id) WHERE state IN ('scheduled', 'held');
CREATE INDEX disposals_due ON disposals (state, due_at);

-- Receipt lines: ids, kinds, owner ids; never titles.
CREATE TABLE disposal_items (
    -- No foreign key: the executor writes the run's row first, in the same
    -- transaction, and a per-row check doubles the cost of a large receipt.
    disposal_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    item_id TEXT NOT NULL,
    action TEXT NOT NULL,
    from_owner TEXT,
    to_owner TEXT,
    target_link TEXT,
    PRIMARY KEY (disposal_id, kind, item_id)
);

CREATE TABLE tombstones (
    id TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    disposal_id TEXT,
    created_at TEXT NOT NULL,
    lifted_at TEXT
);

-- HMAC-SHA256(key, tenant ‖ 0 ‖ type ‖ 0 ‖ normalised value): never the identifier.
CREATE TABLE tombstone_hashes (
    tombstone_id TEXT NOT NULL REFERENCES tombstones(id),
    tenant_id TEXT NOT NULL,
    hash TEXT NOT NULL,
    id_type TEXT NOT NULL,
    norm_version INTEGER NOT NULL,
    PRIMARY KEY (tombstone_id, hash)
);
CREATE INDEX tombstone_hashes_lookup ON tombstone_hashes (tenant_id, hash);

-- The key-check value of the tombstone key in use: a server with another key refuses to start.
CREATE TABLE deployment_keys (
    name TEXT PRIMARY KEY NOT NULL,
    check_value TEXT NOT NULL,
    created_at TEXT NOT NULL
);

-- Append-only: ids, actor (token name), action, changed attribute names; never values.
CREATE TABLE audit_log (
    id TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    subject_type TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    detail TEXT
);
CREATE INDEX audit_log_tenant ON audit_log (tenant_id, at);

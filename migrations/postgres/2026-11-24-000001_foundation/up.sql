-- Timestamps are UTC RFC 3339 text with microseconds and 'Z' (fixed width, so text
-- order is time order on both backends). Ids are UUID text.
CREATE TABLE tenants (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL
);

CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    name TEXT NOT NULL,
    scope TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    acts_as TEXT,
    created_at TEXT NOT NULL,
    revoked_at TEXT
);
CREATE INDEX api_tokens_tenant ON api_tokens (tenant_id);

CREATE TABLE users (
    id TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    state TEXT NOT NULL,
    user_name TEXT NOT NULL,
    user_name_key TEXT NOT NULL,
    external_id TEXT,
    display_name_key TEXT,
    given_name_key TEXT,
    family_name_key TEXT,
    active BOOLEAN NOT NULL,
    manager_id TEXT,
    suspended_at TEXT,
    data TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    version BIGINT NOT NULL
);
-- Uniqueness covers exactly the SCIM-visible users (the same predicate filters use).
CREATE UNIQUE INDEX users_user_name_key ON users (tenant_id, user_name_key) WHERE state IN ('active', 'suspended');
CREATE INDEX users_external_id ON users (tenant_id, external_id);
CREATE INDEX users_display_name_key ON users (tenant_id, display_name_key);
CREATE INDEX users_order ON users (tenant_id, created_at, id);
CREATE INDEX users_manager ON users (tenant_id, manager_id);

CREATE TABLE user_emails (
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    tenant_id TEXT NOT NULL,
    value TEXT NOT NULL,
    value_key TEXT NOT NULL,
    kind TEXT,
    is_primary BOOLEAN NOT NULL,
    PRIMARY KEY (user_id, position)
);
CREATE INDEX user_emails_value_key ON user_emails (tenant_id, value_key);

CREATE TABLE groups (
    id TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    display_name TEXT NOT NULL,
    display_name_key TEXT NOT NULL,
    external_id TEXT,
    data TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    version BIGINT NOT NULL
);
CREATE UNIQUE INDEX groups_display_name_key ON groups (tenant_id, display_name_key);
CREATE INDEX groups_external_id ON groups (tenant_id, external_id);
CREATE INDEX groups_order ON groups (tenant_id, created_at, id);

-- One row per membership: adding a member to a huge group is one insert.
CREATE TABLE group_members (
    group_id TEXT NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
    member_id TEXT NOT NULL,
    tenant_id TEXT NOT NULL,
    member_type TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (group_id, member_id)
);
CREATE INDEX group_members_member ON group_members (tenant_id, member_id);

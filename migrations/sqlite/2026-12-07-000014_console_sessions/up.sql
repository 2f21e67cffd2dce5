-- Admin console sessions (issue 18): only the SHA-256 of the session id is
-- stored. A row names the token that signed in; revoking the token deletes
-- its rows, and every console request reads the token's revocation too.
CREATE TABLE console_sessions (
    id_hash TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    token_id TEXT NOT NULL REFERENCES api_tokens (id),
    scope TEXT NOT NULL,
    created_at TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    csrf TEXT NOT NULL
);
CREATE INDEX console_sessions_token ON console_sessions (token_id);
CREATE INDEX console_sessions_last_seen ON console_sessions (last_seen);
CREATE INDEX console_sessions_created ON console_sessions (created_at);

-- The replica registry: each `serve` process keeps its row fresh (a heartbeat
-- every few seconds) so the replicas can see each other: which versions run
-- (a rolling upgrade in progress) and whether they enforce the same policy
-- file (its digest). Rows not refreshed for a while are ignored, then swept.
-- Expand-only: older binaries never read it.
CREATE TABLE replicas (
    id TEXT PRIMARY KEY NOT NULL,
    label TEXT NOT NULL,
    version TEXT NOT NULL,
    schema_version TEXT NOT NULL,
    policy_digest TEXT NOT NULL,
    started_at TEXT NOT NULL,
    last_seen TEXT NOT NULL
);
CREATE INDEX replicas_last_seen ON replicas (last_seen);

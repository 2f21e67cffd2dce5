-- Event retention: every event of the tenant up to this seq has been
-- deleted, so a feed cursor below it has missed events (410 Gone).
ALTER TABLE tenant_counters ADD COLUMN events_purged_through BIGINT NOT NULL DEFAULT 0;

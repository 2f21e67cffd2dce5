ALTER TABLE tenant_counters DROP COLUMN events_purged_through;

ALTER TABLE tenant_counters DROP COLUMN disposals_done;

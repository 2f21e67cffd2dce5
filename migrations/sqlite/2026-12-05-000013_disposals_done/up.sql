-- How many of the tenant's disposals ever completed (never fewer): while it is
-- below the brake's hourly limit the limit cannot be reached, and the brake
-- skips counting the last hour's disposals, a count that grows with the limit.
ALTER TABLE tenant_counters ADD COLUMN disposals_done BIGINT NOT NULL DEFAULT 0;
INSERT INTO tenant_counters (tenant_id, brake_tripped_at, next_seq)
    SELECT DISTINCT tenant_id, NULL, 1 FROM disposals WHERE state = 'done'
    ON CONFLICT DO NOTHING;
UPDATE tenant_counters SET disposals_done = (
    SELECT COUNT(*) FROM disposals d
    WHERE d.tenant_id = tenant_counters.tenant_id AND d.state = 'done');

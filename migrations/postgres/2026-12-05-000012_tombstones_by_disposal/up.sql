-- A disposal that completes a held DELETE checks whether the person was
-- already tombstoned for it; without this it scanned every tombstone.
CREATE INDEX tombstones_disposal ON tombstones (disposal_id);

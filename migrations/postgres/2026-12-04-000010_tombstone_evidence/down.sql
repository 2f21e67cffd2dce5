ALTER TABLE tombstones DROP COLUMN had_external_id;

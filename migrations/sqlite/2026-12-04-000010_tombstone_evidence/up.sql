-- Identity evidence (issue 14): a tombstone records whether the disposed person
-- had an externalId, even where its hash was skipped (another active user held
-- it), so "both sides carry an externalId, and they differ" can be decided
-- after disposal. Older tombstones: inferred from a stored externalId hash.
ALTER TABLE tombstones ADD COLUMN had_external_id BOOLEAN NOT NULL DEFAULT FALSE;
UPDATE tombstones SET had_external_id = TRUE
WHERE EXISTS (SELECT 1 FROM tombstone_hashes h
              WHERE h.tombstone_id = tombstones.id AND h.id_type = 'externalId');

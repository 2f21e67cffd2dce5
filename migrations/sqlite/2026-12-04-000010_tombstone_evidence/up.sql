-- Identity evidence (issue 14): a tombstone records whether the disposed person
-- had an externalId, even where its hash was skipped (another active user held
-- it), so "both sides carry an externalId, and they differ" can be decided
-- after disposal. Older tombstones: inferred from a stored externalId hash.
ALTER TABLE tombstones ADD COLUMN had_external_id BOOLEAN NOT NULL DEFAULT FALSE;
UPDATE tombstones SET had_external_id = TRUE
WHERE EXISTS (SELECT 1 FROM tombstone_hashes h
              WHERE h.tombstone_id = tombstones.id AND h.id_type = 'externalId');
-- externalId is compared trimmed everywhere now (blank = absent). Rows stored
-- before with surrounding spaces get the trimmed column, unless another user of
-- the tenant already holds the trimmed value (left as it was rather than
-- failing the migration; the stored document keeps the value as sent).
UPDATE users SET external_id = NULLIF(TRIM(external_id), '')
WHERE external_id IS NOT NULL AND external_id <> TRIM(external_id)
  AND NOT EXISTS (SELECT 1 FROM users o WHERE o.tenant_id = users.tenant_id
                  AND o.id <> users.id AND o.external_id = TRIM(users.external_id));

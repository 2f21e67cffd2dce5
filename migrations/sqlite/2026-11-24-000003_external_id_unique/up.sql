-- An externalId names one visible user per tenant (POST treats it as an identifier).
CREATE UNIQUE INDEX users_external_id_unique ON users (tenant_id, external_id)
    WHERE external_id IS NOT NULL AND state IN ('active', 'suspended');

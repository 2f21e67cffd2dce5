CREATE INDEX users_external_id ON users (tenant_id, external_id);
CREATE INDEX users_user_name_lookup ON users (tenant_id, user_name_key);

-- manager.value folded like userName: finds the reports that name a person by
-- userName or email in any case (disposal repoints them to the stub's id).
ALTER TABLE users ADD COLUMN manager_key TEXT;
CREATE INDEX users_manager_key ON users (tenant_id, manager_key);

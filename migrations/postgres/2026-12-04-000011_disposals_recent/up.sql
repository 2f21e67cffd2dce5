-- The disposal brake counts a tenant's disposals done in the last hour on every
-- disposal; without this it walked every done disposal of every tenant
-- (`disposals_due` by state), a cost that grew with each DELETE.
CREATE INDEX disposals_recent ON disposals (tenant_id, state, completed_at);

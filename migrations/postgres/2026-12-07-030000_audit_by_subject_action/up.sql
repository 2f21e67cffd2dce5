-- The console's audit page filters by person and by action: without these,
-- one person's few rows are found by reading the tenant's whole log.
-- Expand-only: indexes an older replica ignores.
CREATE INDEX audit_log_subject ON audit_log (tenant_id, subject_id, at, id);
CREATE INDEX audit_log_action ON audit_log (tenant_id, action, at, id);

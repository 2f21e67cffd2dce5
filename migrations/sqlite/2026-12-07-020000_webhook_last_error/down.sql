ALTER TABLE webhook_cursors DROP COLUMN last_error_at;
ALTER TABLE webhook_cursors DROP COLUMN last_error;

-- The last failed delivery's reason ("HTTP 503", "transport: Connection Failed";
-- never a body or PII) and when: the console and GET /admin/v1/webhooks show
-- it. Expand-only: an older replica ignores the columns.
ALTER TABLE webhook_cursors ADD COLUMN last_error TEXT;
ALTER TABLE webhook_cursors ADD COLUMN last_error_at TEXT;

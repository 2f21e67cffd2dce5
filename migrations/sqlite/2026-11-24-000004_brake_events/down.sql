DROP TABLE webhook_cursors;
DROP TABLE outbox;
DROP TABLE tenant_counters;

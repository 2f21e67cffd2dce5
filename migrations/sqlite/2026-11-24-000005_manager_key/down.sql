DROP INDEX users_manager_key;
ALTER TABLE users DROP COLUMN manager_key;

DROP INDEX users_external_id_unique;

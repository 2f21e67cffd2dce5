DROP INDEX users_user_name_lookup;

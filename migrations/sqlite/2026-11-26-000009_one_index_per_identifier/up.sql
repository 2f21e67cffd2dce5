-- One index per identifier. Every query that looks a user up by userName or
-- externalId now repeats the visible-state predicate literally
-- (`state IN ('active', 'suspended')`, store::users::visible), so the partial
-- unique indexes serve it, and the plain twins only cost writes: each create
-- wrote both, two of the users table's nine index entries.
DROP INDEX users_user_name_lookup;
DROP INDEX users_external_id;

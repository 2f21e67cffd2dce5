-- The search document (scim::search_doc): every stored attribute as filters
-- compare it, so any attribute filters and sorts in SQL. NULL until written;
-- rows from before this migration are filled in at start-up.
ALTER TABLE users ADD COLUMN search TEXT;

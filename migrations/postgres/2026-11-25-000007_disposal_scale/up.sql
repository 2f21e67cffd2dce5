-- Disposal at scale. Item keys compare as bytes (as SQLite's BINARY does), so
-- an index on them is in the plan hash's order and the executor streams the
-- plan instead of sorting or loading it. Columns compared with item keys
-- change too: mixing collations in one comparison is an error.
ALTER TABLE content_items
    ALTER COLUMN kind TYPE TEXT COLLATE "C",
    ALTER COLUMN item_id TYPE TEXT COLLATE "C",
    ALTER COLUMN parent_kind TYPE TEXT COLLATE "C",
    ALTER COLUMN parent_id TYPE TEXT COLLATE "C";
ALTER TABLE content_shares
    ALTER COLUMN kind TYPE TEXT COLLATE "C",
    ALTER COLUMN item_id TYPE TEXT COLLATE "C";
ALTER TABLE disposal_items
    ALTER COLUMN kind TYPE TEXT COLLATE "C",
    ALTER COLUMN item_id TYPE TEXT COLLATE "C";

-- An owner's items in (kind, item_id) order, covering what the planner reads.
DROP INDEX content_items_owner;
CREATE INDEX content_items_owner ON content_items (tenant_id, owner_id, kind, item_id) INCLUDE (personal_root);

-- Only items with a parent are ever looked up by parent: top-level items need
-- no entry (and moving them maintains one index fewer).
DROP INDEX content_items_parent;
CREATE INDEX content_items_parent ON content_items (tenant_id, parent_kind, parent_id) WHERE parent_id IS NOT NULL;

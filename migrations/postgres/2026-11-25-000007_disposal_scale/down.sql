DROP INDEX content_items_parent;
CREATE INDEX content_items_parent ON content_items (tenant_id, parent_kind, parent_id);
DROP INDEX content_items_owner;
CREATE INDEX content_items_owner ON content_items (tenant_id, owner_id);
ALTER TABLE disposal_items
    ALTER COLUMN kind TYPE TEXT COLLATE "default",
    ALTER COLUMN item_id TYPE TEXT COLLATE "default";
ALTER TABLE content_shares
    ALTER COLUMN kind TYPE TEXT COLLATE "default",
    ALTER COLUMN item_id TYPE TEXT COLLATE "default";
ALTER TABLE content_items
    ALTER COLUMN kind TYPE TEXT COLLATE "default",
    ALTER COLUMN item_id TYPE TEXT COLLATE "default",
    ALTER COLUMN parent_kind TYPE TEXT COLLATE "default",
    ALTER COLUMN parent_id TYPE TEXT COLLATE "default";

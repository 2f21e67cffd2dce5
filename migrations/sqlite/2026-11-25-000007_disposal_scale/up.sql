-- Disposal at scale (see the PostgreSQL twin; SQLite already compares bytes).

-- An owner's items in (kind, item_id) order, covering what the planner reads.
DROP INDEX content_items_owner;
CREATE INDEX content_items_owner ON content_items (tenant_id, owner_id, kind, item_id, personal_root);

-- Only items with a parent are ever looked up by parent.
DROP INDEX content_items_parent;
CREATE INDEX content_items_parent ON content_items (tenant_id, parent_kind, parent_id) WHERE parent_id IS NOT NULL;

-- Receipt lines clustered on their key: one b-tree per line instead of a
-- table and an index, written in key order by the executor.
CREATE TABLE disposal_items_new (
    disposal_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    item_id TEXT NOT NULL,
    action TEXT NOT NULL,
    from_owner TEXT,
    to_owner TEXT,
    target_link TEXT,
    PRIMARY KEY (disposal_id, kind, item_id)
) WITHOUT ROWID;
INSERT INTO disposal_items_new (disposal_id, kind, item_id, action, from_owner, to_owner, target_link)
    SELECT disposal_id, kind, item_id, action, from_owner, to_owner, target_link FROM disposal_items;
DROP TABLE disposal_items;
ALTER TABLE disposal_items_new RENAME TO disposal_items;

CREATE TABLE disposal_items_old (
    disposal_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    item_id TEXT NOT NULL,
    action TEXT NOT NULL,
    from_owner TEXT,
    to_owner TEXT,
    target_link TEXT,
    PRIMARY KEY (disposal_id, kind, item_id)
);
INSERT INTO disposal_items_old (disposal_id, kind, item_id, action, from_owner, to_owner, target_link)
    SELECT disposal_id, kind, item_id, action, from_owner, to_owner, target_link FROM disposal_items;
DROP TABLE disposal_items;
ALTER TABLE disposal_items_old RENAME TO disposal_items;
DROP INDEX content_items_parent;
CREATE INDEX content_items_parent ON content_items (tenant_id, parent_kind, parent_id);
DROP INDEX content_items_owner;
CREATE INDEX content_items_owner ON content_items (tenant_id, owner_id);

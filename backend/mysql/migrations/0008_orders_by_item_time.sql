-- A restore of an item into Redis lists the item's orders of the last minutes (the
-- orders its read holds, so a lost ticket's late settle knows whether the restore
-- counted it): one more index entry per order, for a read that would otherwise scan
-- every order of the item.
ALTER TABLE orders ADD KEY idx_orders_item_created (item_id, created_at);

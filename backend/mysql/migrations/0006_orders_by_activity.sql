-- Operators page through an activity's orders by id (keyset) and export them: one more
-- index entry per order written, for reads that would otherwise scan every order of
-- every activity.
ALTER TABLE orders ADD KEY idx_orders_activity (activity_id, id);

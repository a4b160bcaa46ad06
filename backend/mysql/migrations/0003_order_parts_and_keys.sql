-- An order's units may come from several buckets (parts "<bucket>:<units>,...", NULL
-- when all came from `bucket`), and the order keeps the shopper's idempotency key, so a
-- retry with the key finds the first order even when Redis lost its records: unique per
-- shopper, item and key (NULL when the shopper sent none). A ticket decided as not
-- written is kept as a row of status 'void' (no key, no units), so a late write of the
-- same ticket meets the unique ticket and writes nothing.
ALTER TABLE orders ADD COLUMN parts VARCHAR(700) NULL;
ALTER TABLE orders ADD COLUMN idem_key VARCHAR(128) NULL;
ALTER TABLE orders ADD UNIQUE KEY uk_orders_idem (user_id, item_id, idem_key);

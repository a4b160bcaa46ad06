-- Tickets and idempotency keys compare exactly, as Redis compares them: the default
-- collation folds case and pads spaces, so a shopper's keys "a" and "A" (or "a ") were
-- one key in MySQL (the second order's write replayed the first's order) while Redis
-- kept two, and an upper-cased ticket read as the ticket. Binary strings compare byte
-- for byte (the _bin collations still pad spaces). MariaDB copies the orders table for
-- this change, and order writes wait until it is done: on a large table, migrate in a
-- quiet window. Orders whose keys differed only in case were one key before; after it,
-- a retry with the other spelling is a new key.
ALTER TABLE orders MODIFY ticket VARBINARY(80) NOT NULL, MODIFY idem_key VARBINARY(128) NULL;
ALTER TABLE ticket_replays MODIFY ticket VARBINARY(80) NOT NULL;

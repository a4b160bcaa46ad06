-- Tickets and idempotency keys compare exactly, as Redis compares them: the default
-- collation folds case and pads spaces, so a shopper's keys "a" and "A" (or "a ") were
-- one key in MySQL (the second order's write replayed the first's order) while Redis
-- kept two, and an upper-cased ticket read as the ticket. Binary strings compare byte
-- for byte (the _bin collations still pad spaces).
ALTER TABLE orders MODIFY ticket VARBINARY(80) NOT NULL, MODIFY idem_key VARBINARY(128) NULL;
ALTER TABLE ticket_replays MODIFY ticket VARBINARY(80) NOT NULL;

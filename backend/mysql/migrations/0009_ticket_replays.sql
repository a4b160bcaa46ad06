-- A ticket whose request met an order of the same idempotency key (written by another
-- ticket of the key, as after Redis lost the key) ends created, replaying that order:
-- its result lived only in Redis, so a second loss of Redis left it unknown. This row
-- keeps which order it replayed, for reads of the ticket.
CREATE TABLE ticket_replays (
  ticket     VARCHAR(80) NOT NULL,
  order_id   BIGINT      NOT NULL,
  created_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  PRIMARY KEY (ticket)
);

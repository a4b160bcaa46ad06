-- Activities, items, stock rows and orders.
CREATE TABLE activities (
  id             BIGINT       NOT NULL AUTO_INCREMENT,
  name           VARCHAR(200) NOT NULL,
  start_at       DATETIME(3)  NOT NULL,
  end_at         DATETIME(3)  NOT NULL,
  state          VARCHAR(16)  NOT NULL DEFAULT 'draft',
  strategy       VARCHAR(16)  NOT NULL,
  per_user_limit INT          NOT NULL DEFAULT 1,
  bucket_count   INT          NOT NULL DEFAULT 1,
  version        BIGINT       NOT NULL DEFAULT 1,
  created_at     DATETIME(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  updated_at     DATETIME(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  PRIMARY KEY (id),
  KEY idx_activities_state (state, start_at)
);

CREATE TABLE items (
  id          BIGINT       NOT NULL AUTO_INCREMENT,
  activity_id BIGINT       NOT NULL,
  name        VARCHAR(200) NOT NULL,
  price_cents BIGINT       NOT NULL,
  total_stock BIGINT       NOT NULL,
  PRIMARY KEY (id),
  KEY idx_items_activity (activity_id)
);

-- The stock of an item, one row per bucket (one bucket unless the strategy is bucket).
-- Writers update it optimistically: ... WHERE item_id = ? AND bucket = ? AND version = ?.
CREATE TABLE item_stock (
  item_id   BIGINT NOT NULL,
  bucket    INT    NOT NULL,
  available BIGINT NOT NULL,
  version   BIGINT NOT NULL DEFAULT 0,
  PRIMARY KEY (item_id, bucket)
);

-- One row per admitted request that became an order. The ticket is the idempotency key
-- of the write: a redelivered message meets the unique index and writes nothing.
CREATE TABLE orders (
  id           BIGINT      NOT NULL AUTO_INCREMENT,
  ticket       VARCHAR(80) NOT NULL,
  user_id      BIGINT      NOT NULL,
  activity_id  BIGINT      NOT NULL,
  item_id      BIGINT      NOT NULL,
  bucket       INT         NOT NULL DEFAULT 0,
  quantity     INT         NOT NULL,
  amount_cents BIGINT      NOT NULL,
  status       VARCHAR(16) NOT NULL DEFAULT 'created',
  created_at   DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  updated_at   DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  PRIMARY KEY (id),
  UNIQUE KEY uk_orders_ticket (ticket),
  KEY idx_orders_user (user_id, id),
  KEY idx_orders_item (item_id, status),
  KEY idx_orders_status (status, created_at)
);

-- Units of an item each user holds: the database's own guard of the per-user limit,
-- so it holds even when Redis has lost its buyer records.
CREATE TABLE purchases (
  item_id BIGINT NOT NULL,
  user_id BIGINT NOT NULL,
  units   INT    NOT NULL,
  PRIMARY KEY (item_id, user_id)
);

-- The fleet's control state: what every gateway applies. control_versions counts the
-- changes of each kind (plugins, limits) and holds the limits; plugins is the chain as
-- the fleet wants it; modules are kept by content, in pieces (a module is up to 16 MiB,
-- more than one statement may carry); plugin_history is every change, for reading and
-- for rolling back.
CREATE TABLE control_versions (
  kind       VARCHAR(32)  NOT NULL,
  version    BIGINT       NOT NULL,
  body       MEDIUMTEXT   NULL,
  updated_by VARCHAR(200) NOT NULL DEFAULT '',
  updated_at DATETIME(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  PRIMARY KEY (kind)
);

CREATE TABLE plugins (
  name         VARCHAR(63)  NOT NULL,
  version      BIGINT       NOT NULL,
  sha256       CHAR(64)     NOT NULL,
  position     INT          NOT NULL,
  config       MEDIUMTEXT   NULL,
  fail_policy  VARCHAR(8)   NOT NULL,
  timeout_ms   BIGINT       NOT NULL,
  memory_pages INT          NOT NULL,
  pool_size    INT          NOT NULL,
  size_bytes   INT          NOT NULL,
  updated_by   VARCHAR(200) NOT NULL,
  updated_at   DATETIME(3)  NOT NULL,
  PRIMARY KEY (name)
);

CREATE TABLE plugin_module_chunks (
  sha256 CHAR(64)   NOT NULL,
  seq    INT        NOT NULL,
  data   MEDIUMBLOB NOT NULL,
  PRIMARY KEY (sha256, seq)
);

CREATE TABLE plugin_history (
  id         BIGINT       NOT NULL AUTO_INCREMENT,
  name       VARCHAR(63)  NOT NULL,
  version    BIGINT       NOT NULL,
  action     VARCHAR(16)  NOT NULL,
  spec       MEDIUMTEXT   NOT NULL,
  updated_by VARCHAR(200) NOT NULL,
  updated_at DATETIME(3)  NOT NULL,
  PRIMARY KEY (id),
  KEY idx_plugin_history_name (name, id)
);

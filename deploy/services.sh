#!/usr/bin/env bash
# deploy/services.sh — install, start, check and stop the real services the
# tests need, on this machine, without Docker or systemd.
#
#   deploy/services.sh up        install what is missing, start what is not answering,
#                                wait until everything answers (idempotent; a second
#                                `up` only checks and returns in a few seconds)
#   deploy/services.sh status    print each service and whether it answers (exit 0 iff all do)
#   deploy/services.sh down      stop everything this script started (pid files)
#   deploy/services.sh env       print `export` lines with the addresses
#   deploy/services.sh selftest  send + consume a RocketMQ message (also run by `up`
#                                whenever it had to start the broker)
#   deploy/services.sh reset     down, then delete all service data (keeps downloads)
#
# Services (all on 127.0.0.1): MariaDB, Redis, a 3-master Redis Cluster, Apache
# RocketMQ name server + broker (jars from Maven Central). Also installs HAProxy
# (not started here: deploy/fleet.sh runs it). See deploy/SERVICES.md.
set -Eeuo pipefail

# ---------------------------------------------------------------- settings ---
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
STATE="${SECKILL_STATE_DIR:-/tmp/seckill-services}"
TIMEOUT="${SECKILL_SERVICES_TIMEOUT:-120}"       # seconds to wait for each service

MYSQL_PORT="${SECKILL_MYSQL_PORT:-3306}"
MYSQL_DB=seckill
MYSQL_USER=seckill
MYSQL_PASSWORD=seckill

REDIS_PORT="${SECKILL_REDIS_PORT:-6379}"
read -r -a CLUSTER_PORTS <<<"${SECKILL_REDIS_CLUSTER_PORTS:-7001 7002 7003}"

ROCKETMQ_VERSION="${SECKILL_ROCKETMQ_VERSION:-5.3.3}"
NAMESRV_PORT="${SECKILL_ROCKETMQ_NAMESRV_PORT:-9876}"
BROKER_PORT="${SECKILL_ROCKETMQ_BROKER_PORT:-10911}"  # also uses BROKER_PORT-2 (fast/VIP channel) and BROKER_PORT+1 (HA)
ROCKETMQ_CLUSTER=DefaultCluster
ROCKETMQ_BROKER_NAME=broker-a
# The project's topics (created explicitly: the broker runs with autoCreateTopicEnable=false).
ROCKETMQ_TOPICS="seckill_orders seckill_orders_bucket seckill_order_timeout seckill_orders_test seckill_fleet_orders"
# Extra topics from the environment (space or comma separated).
ROCKETMQ_TOPICS="$ROCKETMQ_TOPICS ${SECKILL_ROCKETMQ_TOPICS:-}"
ROCKETMQ_TOPICS="${ROCKETMQ_TOPICS//,/ }"
# Used only by `selftest`, so the project's topics never hold self-test messages
# (a brand-new consumer group on this broker starts from the oldest message).
ROCKETMQ_SELFTEST_TOPIC=seckill_services_selftest

# --- JVM flags: the ONLY place they are set. ---------------------------------
# Module flags. Measured on Java 17 with RocketMQ 5.3.3 and this broker config: the
# name server, the broker, send/consume, timer messages and shutdown need NONE of
# the --add-opens/--add-exports flags that are often quoted.
#  * The store's only JDK-internal touch points are `(sun.nio.ch.DirectBuffer)` casts,
#    reached only with optional features left off here (warmMapedFileEnable,
#    transientStorePoolEnable, dataReadAheadEnable=false, cold-data control). Should
#    one be turned on, that cast would throw IllegalAccessError without this export,
#    so it is kept as a cheap guard.
#  * MappedByteBuffer.isLoaded0 (looked up reflectively, wants java.nio opened) no
#    longer exists on Java 17; RocketMQ catches that and skips it, so
#    --add-opens java.base/java.nio is pointless here.
#  * Buffer cleaning goes through Netty (sun.misc.Unsafe.invokeCleaner): no flag.
RMQ_JVM_MODULE_FLAGS=(--add-exports=java.base/sun.nio.ch=ALL-UNNAMED)
# tls.server.mode=disabled: by default (permissive) the name server and the broker each
# build a self-signed TLS context at boot, which costs 5-10 s of CPU on this box;
# the Go client speaks plain TCP.
RMQ_JVM_COMMON=(-Dfile.encoding=UTF-8 -Dtls.server.mode=disabled -Djava.security.egd=file:/dev/./urandom)
RMQ_JVM_NAMESRV=(-server -XX:+UseG1GC -XX:+ExitOnOutOfMemoryError -Xms256m -Xmx512m -XX:MaxDirectMemorySize=256m)
RMQ_JVM_BROKER=(-server -XX:+UseG1GC -XX:+ExitOnOutOfMemoryError -Xms512m -Xmx1g -XX:MaxDirectMemorySize=512m)
RMQ_JVM_TOOL=(-XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xms32m -Xmx256m)

MYSQL_DIR="$STATE/mariadb"
REDIS_DIR="$STATE/redis"
CLUSTER_DIR="$STATE/redis-cluster"
RMQ_DIR="$STATE/rocketmq"
RMQ_LIB="$RMQ_DIR/lib"
RMQ_HELPER="$RMQ_DIR/helper"
RMQ_CONF="$RMQ_DIR/conf"
RMQ_HOME="$RMQ_DIR/home"     # user.home: RocketMQ writes logs/ (and store/ defaults) here

export DEBIAN_FRONTEND=noninteractive

# ----------------------------------------------------------------- helpers ---
say()  { printf '==> %s\n' "$*"; }
warn() { printf '==> WARNING: %s\n' "$*" >&2; }
die()  { printf '\n!!! ERROR: %s\n' "$*" >&2; exit 1; }
now()  { date +%s; }

# Print the tail of one or more log files, loudly, to stderr.
show_log() {
  local f
  for f in "$@"; do
    [[ -f "$f" ]] || continue
    {
      printf '\n!!!!!!!!!!!!!!!!!!!! last 40 lines of %s !!!!!!!!!!!!!!!!!!!!\n' "$f"
      # (drop logback's own start-up chatter that RocketMQ prints to stdout)
      grep -v -E '^[0-9:,]+ \|-(INFO|WARN) in ' "$f" | tail -n 40
      printf '!!!!!!!!!!!!!!!!!!!! end of %s !!!!!!!!!!!!!!!!!!!!\n\n' "$f"
    } >&2
  done
}

fail_service() { # name message logs...
  local name="$1" msg="$2"; shift 2
  printf '\n!!! %s FAILED: %s\n' "$name" "$msg" >&2
  show_log "$@"
  exit 1
}

tcp_open() { # port — true when something accepts on 127.0.0.1:port
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

proc_running() { # pid — alive and not a zombie waiting to be reaped
  kill -0 "$1" 2>/dev/null || return 1
  [[ -r "/proc/$1/stat" ]] || return 0
  local stat; stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
  stat="${stat##*) }"
  [[ "${stat%% *}" != Z ]]
}

pid_alive() { # pidfile [cmdline-substring]
  local f="$1" want="${2:-}" pid
  [[ -s "$f" ]] || return 1
  pid="$(tr -dc '0-9' <"$f")"
  [[ -n "$pid" ]] && proc_running "$pid" || return 1
  if [[ -n "$want" && -r "/proc/$pid/cmdline" ]]; then
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$want" || return 1
  fi
}

# Start a command as a daemon detached from this shell (new session, no stdin),
# with output appended to a log; the daemon's own pid is written to pidfile.
spawn() { # pidfile logfile cmd...
  local pidfile="$1" log="$2"; shift 2
  mkdir -p "$(dirname "$pidfile")" "$(dirname "$log")"
  rm -f "$pidfile"
  # shellcheck disable=SC2016  # $$ and $@ are for the inner bash
  setsid bash -c 'echo $$ >"$0"; exec "$@"' "$pidfile" "$@" </dev/null >>"$log" 2>&1 9>&- &
  local _
  for _ in $(seq 1 50); do [[ -s "$pidfile" ]] && return 0; sleep 0.1; done
  return 1
}

# Stop the process in pidfile: TERM, wait, then KILL. Only touches a pid whose
# command line still contains `want` (so a recycled pid is never killed).
stop_pidfile() { # name pidfile want [grace-seconds]
  local name="$1" f="$2" want="$3" grace="${4:-30}" pid t0
  if ! pid_alive "$f" "$want"; then
    rm -f "$f"
    say "$name: not running"
    return 0
  fi
  pid="$(tr -dc '0-9' <"$f")"
  t0=$(now)
  kill -TERM "$pid" 2>/dev/null || true
  while proc_running "$pid"; do
    if (($(now) - t0 >= grace)); then
      warn "$name (pid $pid) still alive after ${grace}s, sending KILL"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.5
      break
    fi
    sleep 0.2
  done
  rm -f "$f"
  say "$name: stopped (pid $pid, $(($(now) - t0)) s)"
}

# wait_for name timeout pidfile want check-fn [args...] — poll check-fn until it
# succeeds; fail early if the process in pidfile died.
wait_for() {
  local name="$1" limit="$2" pidfile="$3" want="$4"; shift 4
  local t0; t0=$(now)
  until "$@" >/dev/null 2>&1; do
    if [[ -n "$pidfile" ]] && ! pid_alive "$pidfile" "$want"; then
      return 2
    fi
    if (($(now) - t0 >= limit)); then
      return 1
    fi
    sleep 0.3
  done
}

# ------------------------------------------------------------- installing ---
APT_UPDATED=0
need_pkgs=()

want_cmd() { # command package
  command -v "$1" >/dev/null 2>&1 || need_pkgs+=("$2")
}

mariadbd_bin() {
  local b
  for b in mariadbd mysqld; do
    command -v "$b" 2>/dev/null && return 0
    [[ -x "/usr/sbin/$b" ]] && { echo "/usr/sbin/$b"; return 0; }
  done
  return 1
}

install_packages() {
  need_pkgs=()
  mariadbd_bin >/dev/null || need_pkgs+=(mariadb-server)
  want_cmd mariadb mariadb-client
  want_cmd mariadb-install-db mariadb-server
  want_cmd redis-server redis-server
  want_cmd redis-cli redis-tools
  want_cmd java openjdk-17-jdk-headless
  want_cmd javac openjdk-17-jdk-headless
  want_cmd jar openjdk-17-jdk-headless
  want_cmd mvn maven
  want_cmd flock util-linux
  # Not a service of the tests' own: deploy/fleet.sh puts it in front of the gateways,
  # and deploy_test.go validates deploy/haproxy/haproxy.cfg with `haproxy -c`.
  want_cmd haproxy haproxy
  ((${#need_pkgs[@]})) || return 0

  local pkgs; pkgs="$(printf '%s\n' "${need_pkgs[@]}" | sort -u | tr '\n' ' ')"
  say "packages: installing $pkgs"
  local SUDO=()
  if ((EUID != 0)); then
    command -v sudo >/dev/null || die "need root (or sudo) to install: $pkgs"
    SUDO=(sudo -n)
  fi
  # Keep the packages' init scripts from starting their own mariadb/redis on the
  # default ports (we run our own instances): policy-rc.d exit 101 = "don't start".
  local made_policy=0
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\n# temporary, from deploy/services.sh\nexit 101\n' | "${SUDO[@]}" tee /usr/sbin/policy-rc.d >/dev/null
    "${SUDO[@]}" chmod 755 /usr/sbin/policy-rc.d
    made_policy=1
  fi
  local log="$STATE/apt.log" rc=0 t0; t0=$(now)
  if ((APT_UPDATED == 0)); then
    "${SUDO[@]}" apt-get update -q -o DPkg::Lock::Timeout=600 >"$log" 2>&1 || rc=$?
    APT_UPDATED=1
  fi
  if ((rc == 0)); then
    # shellcheck disable=SC2086
    "${SUDO[@]}" apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=600 $pkgs >>"$log" 2>&1 </dev/null || rc=$?
  fi
  if ((made_policy)); then "${SUDO[@]}" rm -f /usr/sbin/policy-rc.d; fi
  ((rc == 0)) || fail_service packages "apt-get failed (rc=$rc)" "$log"
  say "packages: installed in $(($(now) - t0)) s"
}

# ---------------------------------------------------------------- mariadb ---
mysql_client() { command -v mariadb || command -v mysql; }

mysql_answers() { # as the application user over TCP
  "$(mysql_client)" --no-defaults --protocol=tcp -h127.0.0.1 -P"$MYSQL_PORT" \
    -u"$MYSQL_USER" -p"$MYSQL_PASSWORD" --connect-timeout=3 -N -e 'SELECT 1' "$MYSQL_DB" >/dev/null 2>&1
}

mysql_root_socket() { # socket sql...
  local sock="$1"; shift
  "$(mysql_client)" --no-defaults --protocol=socket -S "$sock" -uroot --connect-timeout=5 "$@"
}

mysql_provision_sql() {
  cat <<SQL
CREATE DATABASE IF NOT EXISTS \`$MYSQL_DB\` CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci;
CREATE USER IF NOT EXISTS '$MYSQL_USER'@'127.0.0.1' IDENTIFIED BY '$MYSQL_PASSWORD';
CREATE USER IF NOT EXISTS '$MYSQL_USER'@'localhost' IDENTIFIED BY '$MYSQL_PASSWORD';
CREATE USER IF NOT EXISTS '$MYSQL_USER'@'::1' IDENTIFIED BY '$MYSQL_PASSWORD';
ALTER USER '$MYSQL_USER'@'127.0.0.1' IDENTIFIED BY '$MYSQL_PASSWORD';
ALTER USER '$MYSQL_USER'@'localhost' IDENTIFIED BY '$MYSQL_PASSWORD';
ALTER USER '$MYSQL_USER'@'::1' IDENTIFIED BY '$MYSQL_PASSWORD';
-- ALL on *.*: the test suite creates and drops scratch databases seckill_test_*.
GRANT ALL PRIVILEGES ON *.* TO '$MYSQL_USER'@'127.0.0.1';
GRANT ALL PRIVILEGES ON *.* TO '$MYSQL_USER'@'localhost';
GRANT ALL PRIVILEGES ON *.* TO '$MYSQL_USER'@'::1';
FLUSH PRIVILEGES;
SQL
}

mysql_write_cnf() {
  local user_line=""
  ((EUID == 0)) && user_line="user = root"
  cat >"$MYSQL_DIR/my.cnf" <<CNF
# Generated by deploy/services.sh — a throwaway MariaDB for tests.
[mysqld]
$user_line
datadir            = $MYSQL_DIR/data
socket             = $MYSQL_DIR/mysqld.sock
pid-file           = $MYSQL_DIR/mariadb.pid
log-error          = $MYSQL_DIR/mariadb.log
port               = $MYSQL_PORT
bind-address       = 127.0.0.1
skip-name-resolve
max_connections    = 500
character-set-server = utf8mb4
collation-server   = utf8mb4_general_ci
skip-log-bin
performance_schema = OFF
innodb_buffer_pool_size = 256M
innodb_log_file_size    = 64M
# Test box, not production: commit to the OS at each transaction and fsync about
# once a second. A machine crash may lose ~1 s of commits; a mariadbd crash loses
# nothing. Makes commit-heavy tests (stock decrements, orders) much faster.
innodb_flush_log_at_trx_commit = 2
innodb_doublewrite      = 0
sync_binlog             = 0
[client]
socket             = $MYSQL_DIR/mysqld.sock
CNF
}

mariadb_up() {
  local t0; t0=$(now)
  if mysql_answers; then
    say "mariadb: already up on 127.0.0.1:$MYSQL_PORT"
    return 0
  fi
  if tcp_open "$MYSQL_PORT"; then
    # Something answers but not as our user: our own instance (provision it),
    # or the package's system instance (provision it through its root socket).
    local sock
    for sock in "$MYSQL_DIR/mysqld.sock" /run/mysqld/mysqld.sock; do
      [[ -S "$sock" ]] || continue
      if mysql_provision_sql | mysql_root_socket "$sock" >>"$MYSQL_DIR/provision.log" 2>&1 && mysql_answers; then
        say "mariadb: up on 127.0.0.1:$MYSQL_PORT (existing server, user provisioned via $sock)"
        return 0
      fi
    done
    fail_service mariadb "port $MYSQL_PORT is taken by something that rejects $MYSQL_USER/$MYSQL_PASSWORD and has no root socket we can use" \
      "$MYSQL_DIR/provision.log" "$MYSQL_DIR/mariadb.log"
  fi

  local bin; bin="$(mariadbd_bin)" || die "mariadb: mariadbd not found after install"
  mkdir -p "$MYSQL_DIR"
  mysql_write_cnf
  if [[ ! -d "$MYSQL_DIR/data/mysql" ]]; then
    say "mariadb: initialising data dir $MYSQL_DIR/data"
    rm -rf "$MYSQL_DIR/data"
    local installer; installer="$(command -v mariadb-install-db || command -v mysql_install_db)"
    local iu=(); ((EUID == 0)) && iu=(--user=root)
    "$installer" --defaults-file="$MYSQL_DIR/my.cnf" "${iu[@]}" --auth-root-authentication-method=socket \
      --skip-test-db >"$MYSQL_DIR/install.log" 2>&1 </dev/null \
      || fail_service mariadb "mariadb-install-db failed" "$MYSQL_DIR/install.log" "$MYSQL_DIR/mariadb.log"
  fi
  if pid_alive "$MYSQL_DIR/mariadbd.pid" mariadbd; then
    say "mariadb: our mariadbd is running but not answering yet; waiting for it"
  else
    say "mariadb: starting $bin on 127.0.0.1:$MYSQL_PORT"
    spawn "$MYSQL_DIR/mariadbd.pid" "$MYSQL_DIR/mariadbd.out" "$bin" --defaults-file="$MYSQL_DIR/my.cnf" \
      || fail_service mariadb "could not spawn mariadbd" "$MYSQL_DIR/mariadbd.out"
  fi
  local rc=0
  wait_for mariadb "$TIMEOUT" "$MYSQL_DIR/mariadbd.pid" mariadbd mysql_root_socket "$MYSQL_DIR/mysqld.sock" -e 'SELECT 1' || rc=$?
  case $rc in
    0) ;;
    2) fail_service mariadb "mariadbd exited during startup" "$MYSQL_DIR/mariadb.log" "$MYSQL_DIR/mariadbd.out" ;;
    *) fail_service mariadb "no answer on its socket after ${TIMEOUT}s" "$MYSQL_DIR/mariadb.log" "$MYSQL_DIR/mariadbd.out" ;;
  esac
  mysql_provision_sql | mysql_root_socket "$MYSQL_DIR/mysqld.sock" >"$MYSQL_DIR/provision.log" 2>&1 \
    || fail_service mariadb "creating database/user failed" "$MYSQL_DIR/provision.log"
  mysql_answers || fail_service mariadb "$MYSQL_USER cannot log in over TCP 127.0.0.1:$MYSQL_PORT" "$MYSQL_DIR/mariadb.log"
  say "mariadb: up on 127.0.0.1:$MYSQL_PORT ($(($(now) - t0)) s)"
}

mariadb_down() {
  stop_pidfile mariadb "$MYSQL_DIR/mariadbd.pid" mariadbd 60
}

# ------------------------------------------------------------------ redis ---
redis_ping() { # port
  [[ "$(redis-cli -h 127.0.0.1 -p "$1" --no-auth-warning ping 2>/dev/null)" == PONG ]]
}

redis_start() { # name port dir extra-args...
  local name="$1" port="$2" dir="$3"; shift 3
  mkdir -p "$dir"
  rm -f "$dir/redis.pid"
  redis-server --port "$port" --bind 127.0.0.1 --protected-mode yes --daemonize yes \
    --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" --dir "$dir" \
    --save "" --appendonly no "$@" </dev/null >>"$dir/redis.out" 2>&1 9>&- \
    || fail_service "$name" "redis-server refused to start" "$dir/redis.out" "$dir/redis.log"
}

redis_up() {
  local t0; t0=$(now)
  if redis_ping "$REDIS_PORT"; then
    say "redis: already up on 127.0.0.1:$REDIS_PORT"
    return 0
  fi
  tcp_open "$REDIS_PORT" && fail_service redis "port $REDIS_PORT is taken by something that is not answering PING"
  say "redis: starting on 127.0.0.1:$REDIS_PORT"
  redis_start redis "$REDIS_PORT" "$REDIS_DIR"
  local rc=0
  wait_for redis "$TIMEOUT" "" "" redis_ping "$REDIS_PORT" || rc=$?
  ((rc == 0)) || fail_service redis "no PONG after ${TIMEOUT}s" "$REDIS_DIR/redis.log" "$REDIS_DIR/redis.out"
  say "redis: up on 127.0.0.1:$REDIS_PORT ($(($(now) - t0)) s)"
}

redis_down() {
  stop_pidfile redis "$REDIS_DIR/redis.pid" redis-server 20
}

cluster_field() { # port field
  redis-cli -h 127.0.0.1 -p "$1" cluster info 2>/dev/null | tr -d '\r' | sed -n "s/^$2://p"
}

cluster_ok() {
  local p
  for p in "${CLUSTER_PORTS[@]}"; do
    [[ "$(cluster_field "$p" cluster_state)" == ok ]] || return 1
    [[ "$(cluster_field "$p" cluster_known_nodes)" -ge ${#CLUSTER_PORTS[@]} ]] 2>/dev/null || return 1
  done
}

cluster_pings() {
  local p
  for p in "${CLUSTER_PORTS[@]}"; do redis_ping "$p" || return 1; done
}

cluster_create() {
  local p addrs=()
  for p in "${CLUSTER_PORTS[@]}"; do
    redis-cli -h 127.0.0.1 -p "$p" flushall >/dev/null 2>&1 || true
    redis-cli -h 127.0.0.1 -p "$p" cluster reset hard >/dev/null 2>&1 || true
    addrs+=("127.0.0.1:$p")
  done
  say "redis cluster: creating ${addrs[*]}"
  redis-cli --cluster create "${addrs[@]}" --cluster-replicas 0 --cluster-yes \
    >"$CLUSTER_DIR/create.log" 2>&1 </dev/null \
    || fail_service "redis cluster" "redis-cli --cluster create failed" "$CLUSTER_DIR/create.log"
}

redis_cluster_up() {
  local t0 p; t0=$(now)
  if cluster_pings && cluster_ok; then
    say "redis cluster: already up on ${CLUSTER_PORTS[*]} (cluster_state:ok)"
    return 0
  fi
  mkdir -p "$CLUSTER_DIR"
  for p in "${CLUSTER_PORTS[@]}"; do
    redis_ping "$p" && continue
    tcp_open "$p" && fail_service "redis cluster" "port $p is taken by something that is not answering PING"
    say "redis cluster: starting node 127.0.0.1:$p"
    redis_start "redis cluster node $p" "$p" "$CLUSTER_DIR/$p" \
      --cluster-enabled yes --cluster-config-file "nodes-$p.conf" --cluster-node-timeout 5000 \
      --cluster-announce-ip 127.0.0.1
  done
  local rc=0
  wait_for "redis cluster" "$TIMEOUT" "" "" cluster_pings || rc=$?
  if ((rc != 0)); then
    local logs=(); for p in "${CLUSTER_PORTS[@]}"; do logs+=("$CLUSTER_DIR/$p/redis.log"); done
    fail_service "redis cluster" "nodes did not answer PING after ${TIMEOUT}s" "${logs[@]}"
  fi
  for p in "${CLUSTER_PORTS[@]}"; do
    [[ "$(redis-cli -h 127.0.0.1 -p "$p" info cluster 2>/dev/null | tr -d '\r' | sed -n 's/^cluster_enabled://p')" == 1 ]] \
      || fail_service "redis cluster" "127.0.0.1:$p answers but is not in cluster mode"
  done

  # Restarted nodes keep nodes-PORT.conf and re-form the same cluster by themselves;
  # brand-new (or inconsistent) nodes get a fresh `--cluster create`.
  local formed=1
  for p in "${CLUSTER_PORTS[@]}"; do
    [[ "$(cluster_field "$p" cluster_slots_assigned)" == 16384 &&
       "$(cluster_field "$p" cluster_known_nodes)" -ge ${#CLUSTER_PORTS[@]} ]] 2>/dev/null || formed=0
  done
  if ((formed)); then
    wait_for "redis cluster" 20 "" "" cluster_ok || formed=0
  fi
  ((formed)) || cluster_create
  rc=0
  wait_for "redis cluster" "$TIMEOUT" "" "" cluster_ok || rc=$?
  if ((rc != 0)); then
    local logs=("$CLUSTER_DIR/create.log"); for p in "${CLUSTER_PORTS[@]}"; do logs+=("$CLUSTER_DIR/$p/redis.log"); done
    fail_service "redis cluster" "cluster_state did not become ok after ${TIMEOUT}s" "${logs[@]}"
  fi
  say "redis cluster: up on ${CLUSTER_PORTS[*]} (cluster_state:ok, $(($(now) - t0)) s)"
}

redis_cluster_down() {
  local p
  for p in "${CLUSTER_PORTS[@]}"; do
    stop_pidfile "redis cluster node $p" "$CLUSTER_DIR/$p/redis.pid" redis-server 20
  done
}

# --------------------------------------------------------------- rocketmq ---
rmq_fetch() {
  local stamp="$RMQ_LIB/.complete-$ROCKETMQ_VERSION"
  [[ -f "$stamp" ]] && return 0
  local t0; t0=$(now)
  say "rocketmq: fetching $ROCKETMQ_VERSION jars from Maven Central (deploy/rocketmq/pom.xml)"
  mkdir -p "$RMQ_DIR"
  rm -rf "$RMQ_LIB.tmp"
  mvn -B -ntp -q -f "$SCRIPT_DIR/rocketmq/pom.xml" -Drocketmq.version="$ROCKETMQ_VERSION" \
    dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$RMQ_LIB.tmp" \
    >"$RMQ_DIR/mvn.log" 2>&1 </dev/null \
    || fail_service rocketmq "maven could not fetch the RocketMQ jars" "$RMQ_DIR/mvn.log"
  [[ -f "$RMQ_LIB.tmp/rocketmq-broker-$ROCKETMQ_VERSION.jar" ]] \
    || fail_service rocketmq "rocketmq-broker-$ROCKETMQ_VERSION.jar missing after maven" "$RMQ_DIR/mvn.log"
  rm -rf "$RMQ_LIB" "$RMQ_HELPER"
  mv "$RMQ_LIB.tmp" "$RMQ_LIB"
  touch "$stamp"
  say "rocketmq: $(find "$RMQ_LIB" -name '*.jar' | wc -l) jars fetched in $(($(now) - t0)) s"
}

rmq_helper_build() {
  # Keyed on the source's content (a fresh clone has new mtimes every time).
  local src="$SCRIPT_DIR/rocketmq/RmqCtl.java" sum
  sum="$(sha256sum "$src" | cut -d' ' -f1)"
  if [[ -f "$RMQ_HELPER/RmqCtl.class" && "$(cat "$RMQ_HELPER/.source-sha256" 2>/dev/null)" == "$sum" ]]; then
    return 0
  fi
  rm -rf "$RMQ_HELPER"
  mkdir -p "$RMQ_HELPER"
  javac -nowarn -encoding UTF-8 -d "$RMQ_HELPER" -cp "$RMQ_LIB/*" "$src" >"$RMQ_DIR/javac.log" 2>&1 \
    || fail_service rocketmq "compiling deploy/rocketmq/RmqCtl.java failed" "$RMQ_DIR/javac.log"
  echo "$sum" >"$RMQ_HELPER/.source-sha256"
}

rmq_write_conf() {
  mkdir -p "$RMQ_CONF" "$RMQ_HOME" "$RMQ_DIR/store"
  # Each component's logback config ships inside its jar; with all jars on one
  # classpath the broker's would win for every JVM, so point each at its own.
  local f jar
  for f in namesrv:rocketmq-namesrv broker:rocketmq-broker tools:rocketmq-tools; do
    jar="$RMQ_LIB/${f#*:}-$ROCKETMQ_VERSION.jar"
    if [[ ! -s "$RMQ_CONF/rmq.${f%%:*}.logback.xml" ]]; then
      (cd "$RMQ_CONF" && jar xf "$jar" "rmq.${f%%:*}.logback.xml")
    fi
  done
  cat >"$RMQ_CONF/namesrv.conf" <<CONF
# Generated by deploy/services.sh
listenPort=$NAMESRV_PORT
bindAddress=127.0.0.1
# The name server's internal client would otherwise dial this host's first
# non-loopback address; nothing here needs it.
scanAvailableNameSrv=false
CONF
  cat >"$RMQ_CONF/broker.conf" <<CONF
# Generated by deploy/services.sh — a single-master broker for tests.
brokerClusterName=$ROCKETMQ_CLUSTER
brokerName=$ROCKETMQ_BROKER_NAME
brokerId=0
brokerRole=ASYNC_MASTER
flushDiskType=ASYNC_FLUSH
namesrvAddr=127.0.0.1:$NAMESRV_PORT
listenPort=$BROKER_PORT
bindAddress=127.0.0.1
# The address the broker registers with the name server and that clients dial:
# without it the broker advertises this host's first non-loopback address.
brokerIP1=127.0.0.1
brokerIP2=127.0.0.1
# Re-register every 10 s (the minimum) instead of 30 s, so a restarted name server
# learns the routes again quickly. (RmqCtl "ready" also nudges the broker to register
# at once; that goes through updateBrokerConfig, which makes the broker rewrite this
# file as a full dump of its settings. It is regenerated on every start.)
registerNameServerPeriod=10000
# Topics are created explicitly by services.sh; consumer groups are created on demand.
autoCreateTopicEnable=false
autoCreateSubscriptionGroup=true
storePathRootDir=$RMQ_DIR/store
storePathCommitLog=$RMQ_DIR/store/commitlog
# Small files for a test box (defaults: 1 GiB commit log, 5.7 MiB consume queue, 100 MiB timer log).
mappedFileSizeCommitLog=67108864
mappedFileSizeConsumeQueue=60000
mappedFileSizeTimerLog=16777216
# Keep accepting writes on a fairly full (shared) disk: by default the broker refuses
# every message once the disk is 90% full ("the broker's disk is full"); clean old
# files early.
diskMaxUsedSpaceRatio=95
diskSpaceWarningLevelRatio=98
diskSpaceCleanForciblyRatio=95
fileReservedTime=24
# Arbitrary-delay ("timer") messages: TIMER_DELIVER_MS / TIMER_DELAY_SEC / TIMER_DELAY_MS properties.
timerWheelEnable=true
timerMaxDelaySec=259200
CONF
}

rmq_java() { # kind(namesrv|broker|tools) extra jvm args...
  local kind="$1"; shift
  local mem=()
  case "$kind" in
    namesrv) mem=("${RMQ_JVM_NAMESRV[@]}") ;;
    broker) mem=("${RMQ_JVM_BROKER[@]}") ;;
    tools) mem=("${RMQ_JVM_TOOL[@]}") ;;
  esac
  printf '%s\0' java "${RMQ_JVM_COMMON[@]}" "${mem[@]}" "${RMQ_JVM_MODULE_FLAGS[@]}" \
    -Duser.home="$RMQ_HOME" -Drocketmq.home.dir="$RMQ_DIR" \
    -Drmq.logback.configurationFile="$RMQ_CONF/rmq.$kind.logback.xml" "$@"
}

rmqctl() { # RmqCtl args...
  local cmd=()
  mapfile -d '' cmd < <(rmq_java tools -cp "$RMQ_HELPER:$RMQ_LIB/*" RmqCtl)
  ROCKETMQ_HOME="$RMQ_DIR" "${cmd[@]}" "$@" </dev/null
}

rmq_check() { # registered + every topic routed
  # shellcheck disable=SC2086
  rmqctl check "127.0.0.1:$NAMESRV_PORT" "$ROCKETMQ_CLUSTER" $ROCKETMQ_TOPICS "$ROCKETMQ_SELFTEST_TOPIC"
}

namesrv_booted() { tcp_open "$NAMESRV_PORT" && grep -q 'boot success' "$RMQ_DIR/namesrv.out" 2>/dev/null; }
broker_booted() { tcp_open "$BROKER_PORT" && grep -q 'boot success' "$RMQ_DIR/broker.out" 2>/dev/null; }

rmq_start() { # kind port main-class args...
  local kind="$1" port="$2" main="$3"; shift 3
  local cmd=() t0; t0=$(now)
  mapfile -d '' cmd < <(rmq_java "$kind" -cp "$RMQ_LIB/*" "$main" "$@")
  if pid_alive "$RMQ_DIR/$kind.pid" "$main"; then
    say "rocketmq $kind: our process is running but not answering yet; waiting for it"
  else
    say "rocketmq $kind: starting on 127.0.0.1:$port"
    : >"$RMQ_DIR/$kind.out"
    ROCKETMQ_HOME="$RMQ_DIR" spawn "$RMQ_DIR/$kind.pid" "$RMQ_DIR/$kind.out" "${cmd[@]}" \
      || fail_service "rocketmq $kind" "could not spawn java" "$RMQ_DIR/$kind.out"
  fi
  local rc=0
  wait_for "rocketmq $kind" "$TIMEOUT" "$RMQ_DIR/$kind.pid" "$main" "${kind}_booted" || rc=$?
  case $rc in
    0) say "rocketmq $kind: up on 127.0.0.1:$port ($(($(now) - t0)) s)" ;;
    2) fail_service "rocketmq $kind" "java exited during startup" "$RMQ_DIR/$kind.out" "$RMQ_HOME/logs/rocketmqlogs/$kind.log" ;;
    *) fail_service "rocketmq $kind" "not up after ${TIMEOUT}s" "$RMQ_DIR/$kind.out" "$RMQ_HOME/logs/rocketmqlogs/$kind.log" ;;
  esac
}

rmq_selftest() {
  local t0; t0=$(now)
  rmqctl selftest "127.0.0.1:$NAMESRV_PORT" "$ROCKETMQ_SELFTEST_TOPIC" "$ROCKETMQ_CLUSTER" >"$RMQ_DIR/selftest.log" 2>&1 \
    || fail_service rocketmq "self-test (send + consume on $ROCKETMQ_SELFTEST_TOPIC) failed" \
      "$RMQ_DIR/selftest.log" "$RMQ_HOME/logs/rocketmqlogs/broker.log"
  sed 's/^rmqctl: /    /' "$RMQ_DIR/selftest.log"
  say "rocketmq: self-test passed ($(($(now) - t0)) s)"
}

rocketmq_up() {
  local t0 started=0; t0=$(now)
  rmq_fetch
  rmq_helper_build
  if tcp_open "$NAMESRV_PORT" && tcp_open "$BROKER_PORT" && rmq_check >/dev/null 2>&1; then
    say "rocketmq: already up (name server 127.0.0.1:$NAMESRV_PORT, broker 127.0.0.1:$BROKER_PORT, topics routed)"
    return 0
  fi
  rmq_write_conf
  if ! tcp_open "$NAMESRV_PORT"; then
    rmq_start namesrv "$NAMESRV_PORT" org.apache.rocketmq.namesrv.NamesrvStartup -c "$RMQ_CONF/namesrv.conf"
  else
    say "rocketmq namesrv: already up on 127.0.0.1:$NAMESRV_PORT"
  fi
  if ! tcp_open "$BROKER_PORT"; then
    rmq_start broker "$BROKER_PORT" org.apache.rocketmq.broker.BrokerStartup -c "$RMQ_CONF/broker.conf"
    started=1
  else
    say "rocketmq broker: already up on 127.0.0.1:$BROKER_PORT"
  fi
  say "rocketmq: waiting for the broker to register and creating topics: $ROCKETMQ_TOPICS"
  # shellcheck disable=SC2086
  rmqctl ready "127.0.0.1:$NAMESRV_PORT" "$ROCKETMQ_CLUSTER" "$TIMEOUT" "127.0.0.1:$BROKER_PORT" $ROCKETMQ_TOPICS "$ROCKETMQ_SELFTEST_TOPIC" \
    >"$RMQ_DIR/ready.log" 2>&1 \
    || fail_service rocketmq "broker not registered / topic routes missing" "$RMQ_DIR/ready.log" \
      "$RMQ_DIR/broker.out" "$RMQ_HOME/logs/rocketmqlogs/broker.log" "$RMQ_HOME/logs/rocketmqlogs/namesrv.log"
  sed 's/^rmqctl: /    /' "$RMQ_DIR/ready.log"
  if ((started)) && [[ "${SECKILL_ROCKETMQ_SELFTEST:-1}" != 0 ]]; then
    rmq_selftest
  fi
  say "rocketmq: up, name server 127.0.0.1:$NAMESRV_PORT, broker 127.0.0.1:$BROKER_PORT ($(($(now) - t0)) s)"
}

rocketmq_down() {
  # The broker needs ~10 s for an orderly shutdown (flush, unregister).
  stop_pidfile "rocketmq broker" "$RMQ_DIR/broker.pid" org.apache.rocketmq.broker.BrokerStartup 45
  stop_pidfile "rocketmq namesrv" "$RMQ_DIR/namesrv.pid" org.apache.rocketmq.namesrv.NamesrvStartup 20
}

# --------------------------------------------------------------- commands ---
with_lock() {
  mkdir -p "$STATE"
  exec 9>"$STATE/.lock"
  if ! flock -w 900 9; then die "another services.sh has held $STATE/.lock for 15 min"; fi
}

disk_check() { # warn when the disk under $STATE is nearly full
  local pct
  pct=$(df -P "$STATE" 2>/dev/null | awk 'NR == 2 { sub("%", "", $5); print $5 }')
  if [[ "$pct" =~ ^[0-9]+$ ]] && ((pct >= 90)); then
    warn "the disk holding $STATE is ${pct}% full: the RocketMQ broker refuses messages at 98% (diskSpaceWarningLevelRatio) and cleans its files early; free some space (go clean -cache, old clones)"
  fi
}

cmd_up() {
  local t0; t0=$(now)
  mkdir -p "$STATE"
  disk_check
  install_packages
  with_lock
  mariadb_up
  redis_up
  redis_cluster_up
  rocketmq_up
  say "all services up ($(($(now) - t0)) s); addresses: deploy/services.sh env"
}

cmd_down() {
  with_lock
  # In parallel: the broker alone needs 10-20 s for its orderly shutdown. The name
  # server goes after the broker so the broker can still unregister from it.
  local pids=() rc=0 p
  rocketmq_down & pids+=($!)
  redis_cluster_down & pids+=($!)
  redis_down & pids+=($!)
  mariadb_down & pids+=($!)
  for p in "${pids[@]}"; do wait "$p" || rc=1; done
  return $rc
}

cmd_status() {
  local bad=0
  report() { # name address check...
    local name="$1" addr="$2"; shift 2
    if "$@" >/dev/null 2>&1; then
      printf '  %-17s %-58s up\n' "$name" "$addr"
    else
      printf '  %-17s %-58s DOWN\n' "$name" "$addr"
      bad=1
    fi
  }
  have_redis() { command -v redis-cli >/dev/null 2>&1; }
  st_mysql() { [[ -n "$(mysql_client)" ]] && mysql_answers; }
  st_redis() { have_redis && redis_ping "$REDIS_PORT"; }
  st_cluster() { have_redis && cluster_pings && cluster_ok; }
  st_broker() { tcp_open "$BROKER_PORT" && [[ -f "$RMQ_HELPER/RmqCtl.class" ]] && rmq_check; }
  report mariadb "127.0.0.1:$MYSQL_PORT (user $MYSQL_USER, db $MYSQL_DB)" st_mysql
  report redis "127.0.0.1:$REDIS_PORT" st_redis
  report "redis cluster" "$(printf '127.0.0.1:%s ' "${CLUSTER_PORTS[@]}")(state ok)" st_cluster
  report "rocketmq namesrv" "127.0.0.1:$NAMESRV_PORT" tcp_open "$NAMESRV_PORT"
  report "rocketmq broker" "127.0.0.1:$BROKER_PORT (registered, topics routed)" st_broker
  return $bad
}

cmd_env() {
  local addrs; addrs="$(printf '127.0.0.1:%s,' "${CLUSTER_PORTS[@]}")"
  cat <<ENV
export SECKILL_MYSQL_DSN='$MYSQL_USER:$MYSQL_PASSWORD@tcp(127.0.0.1:$MYSQL_PORT)/$MYSQL_DB?parseTime=true&multiStatements=true'
export SECKILL_REDIS_ADDR='127.0.0.1:$REDIS_PORT'
export SECKILL_REDIS_CLUSTER_ADDRS='${addrs%,}'
export SECKILL_ROCKETMQ_NAMESRV='127.0.0.1:$NAMESRV_PORT'
ENV
}

cmd_selftest() {
  with_lock
  rmq_fetch
  rmq_helper_build
  rmq_selftest
}

cmd_reset() {
  cmd_down
  say "reset: deleting service data under $STATE (keeping downloaded jars)"
  rm -rf "$MYSQL_DIR" "$REDIS_DIR" "$CLUSTER_DIR" "$RMQ_DIR/store" "$RMQ_HOME" "$RMQ_CONF"
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  env) cmd_env ;;
  selftest) cmd_selftest ;;
  reset) cmd_reset ;;
  *)
    echo "usage: $0 up|down|status|env|selftest|reset" >&2
    exit 2
    ;;
esac

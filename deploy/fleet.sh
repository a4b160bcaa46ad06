#!/usr/bin/env bash
# deploy/fleet.sh — the fleet on this machine, without Docker: N gateways, M backends
# and K workers as separate processes of one binary, HAProxy in front of the gateways,
# on the services of deploy/services.sh.
#
#   deploy/fleet.sh start    build bin/seckill, start the services (services.sh up),
#                            apply the migrations, then start what is not running:
#                            backends, workers, gateways, HAProxy; wait until each
#                            answers (idempotent: a second start only checks)
#   deploy/fleet.sh status   one line per process; exit 0 only if all answer
#   deploy/fleet.sh stop     stop what start started (pid files: TERM, wait, KILL);
#                            never the services
#   deploy/fleet.sh env      print `export` lines: the fleet's URL and its secrets
#   deploy/fleet.sh haproxy-config
#                            print the HAProxy config start would run (nothing starts)
#
# Settings (environment):
#   SECKILL_FLEET_GATEWAYS (2), SECKILL_FLEET_BACKENDS (2), SECKILL_FLEET_WORKERS (2):
#       how many of each, 1 to 10; start keeps the shape (and the port) in the state
#       dir, and later commands use it unless told otherwise (a start with fewer
#       stops the extra processes; gateways restart when the backends change)
#   SECKILL_FLEET_PORT (18080): HAProxy's port; its stats and metrics on PORT+1
#       (/stats, /metrics); gateway i gets port base PORT+100+10(i-1) (public on the
#       base, ops on base+1), backend j PORT+200+10(j-1) (kitex base+2, ops base+3),
#       worker k PORT+300+10(k-1) (ops base+4): each process its own SECKILL_PORT_BASE
#   SECKILL_FLEET_DIR (/tmp/seckill-fleet): logs/, run/ (pid files), haproxy.cfg,
#       secrets.env (the JWT secret, admin token and RPC credentials, generated once, mode 600)
#   SECKILL_FLEET_BIN: run this binary instead of building bin/seckill
#   SECKILL_FLEET_SERVICES=0: do not run `deploy/services.sh up` (they are up)
#   SECKILL_FLEET_TIMEOUT (60): seconds to wait for each process to answer
# Any other SECKILL_ setting in the environment reaches every process (the services'
# addresses default to `deploy/services.sh env`); the listeners' and the backends'
# addresses are the fleet's own. The fleet's name (SECKILL_FLEET) defaults to "local",
# its workers' topic and group to seckill_fleet_orders and seckill_fleet_workers.
set -Eeuo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"
STATE="${SECKILL_FLEET_DIR:-/tmp/seckill-fleet}"
# The shape: the caller's, else the one the last start saved, else the defaults.
SHAPE="$STATE/shape.env"
if [[ -s "$SHAPE" ]]; then
  while IFS='=' read -r k v; do
    [[ "$k" =~ ^SECKILL_FLEET_(GATEWAYS|BACKENDS|WORKERS|PORT)$ && -z "${!k:-}" ]] && printf -v "$k" '%s' "$v"
  done <"$SHAPE"
fi
GATEWAYS="${SECKILL_FLEET_GATEWAYS:-2}"
BACKENDS="${SECKILL_FLEET_BACKENDS:-2}"
WORKERS="${SECKILL_FLEET_WORKERS:-2}"
PORT="${SECKILL_FLEET_PORT:-18080}"
TIMEOUT="${SECKILL_FLEET_TIMEOUT:-60}"
BIN="${SECKILL_FLEET_BIN:-$ROOT/bin/seckill}"
LOGS="$STATE/logs"
RUN="$STATE/run"
HAPROXY_TEMPLATE="$SCRIPT_DIR/haproxy/haproxy.cfg"
HAPROXY_CFG="$STATE/haproxy.cfg"

say() { printf '==> %s\n' "$*"; }
die() { printf '\n!!! ERROR: %s\n' "$*" >&2; exit 1; }
now() { date +%s; }

for n in GATEWAYS BACKENDS WORKERS; do
  if ! [[ "${!n}" =~ ^[0-9]+$ ]] || ((${!n} < 1 || ${!n} > 10)); then
    die "SECKILL_FLEET_$n must be 1 to 10, not ${!n}"
  fi
done
if ! [[ "$PORT" =~ ^[0-9]+$ ]] || ((PORT < 1024 || PORT > 65535 - 400)); then
  die "SECKILL_FLEET_PORT must be 1024 to $((65535 - 400)), not $PORT"
fi

# ------------------------------------------------------------ the layout ---
# base ROLE INDEX — the SECKILL_PORT_BASE of a process.
base() {
  case "$1" in
    gateway) echo $((PORT + 100 + 10 * ($2 - 1))) ;;
    backend) echo $((PORT + 200 + 10 * ($2 - 1))) ;;
    worker) echo $((PORT + 300 + 10 * ($2 - 1))) ;;
  esac
}
# health ROLE INDEX — "port path" of the check that says the process is up.
health() {
  local b; b=$(base "$1" "$2")
  case "$1" in
    gateway) echo "$((b + 1)) /readyz" ;; # ops listener: ready (a backend answers)
    backend) echo "$((b + 3)) /healthz" ;;
    worker) echo "$((b + 4)) /healthz" ;;
  esac
}
count() {
  case "$1" in gateway) echo "$GATEWAYS" ;; backend) echo "$BACKENDS" ;; worker) echo "$WORKERS" ;; esac
}

# ------------------------------------------------------------- processes ---
tcp_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# http_status PORT PATH — the status code of GET http://127.0.0.1:PORT/PATH (no curl needed).
http_status() {
  (
    exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
    printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' "$2" >&3
    read -r -t 5 _ code _ <&3 || exit 1
    printf '%s' "$code"
  ) 2>/dev/null
}
http_ok() { [[ "$(http_status "$1" "$2")" == 200 ]]; }

# http_get PORT PATH — the whole answer (headers and body) of GET http://127.0.0.1:PORT/PATH.
http_get() {
  (
    exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
    printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' "$2" >&3
    timeout 5 cat <&3
  ) 2>/dev/null
}

proc_running() { # pid — alive and not a zombie
  kill -0 "$1" 2>/dev/null || return 1
  local stat; stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
  stat="${stat##*) }"
  [[ "${stat%% *}" != Z ]]
}

pid_alive() { # pidfile want — the process in pidfile runs and its command line has want
  local f="$1" want="$2" pid
  [[ -s "$f" ]] || return 1
  pid="$(tr -dc '0-9' <"$f")"
  [[ -n "$pid" ]] && proc_running "$pid" || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$want"
}

# spawn pidfile logfile cmd... — a daemon in its own session, no stdin, output
# appended to logfile; its pid (the command's own, after exec) in pidfile.
spawn() {
  local pidfile="$1" log="$2"; shift 2
  rm -f "$pidfile"
  # shellcheck disable=SC2016  # $$ and $@ are for the inner bash
  setsid bash -c 'echo $$ >"$0"; exec "$@"' "$pidfile" "$@" </dev/null >>"$log" 2>&1 9>&- &
  local _
  for _ in $(seq 1 50); do [[ -s "$pidfile" ]] && return 0; sleep 0.1; done
  return 1
}

# stop_pidfile name pidfile want grace — TERM, wait up to grace seconds, then KILL.
stop_pidfile() {
  local name="$1" f="$2" want="$3" grace="$4" pid t0
  if ! pid_alive "$f" "$want"; then
    rm -f "$f"
    return 0
  fi
  pid="$(tr -dc '0-9' <"$f")"
  t0=$(now)
  kill -TERM "$pid" 2>/dev/null || true
  while proc_running "$pid"; do
    if (($(now) - t0 >= grace)); then
      printf '==> WARNING: %s (pid %s) still alive after %ss, sending KILL\n' "$name" "$pid" "$grace" >&2
      kill -KILL "$pid" 2>/dev/null || true
      break
    fi
    sleep 0.2
  done
  rm -f "$f"
  say "$name: stopped (pid $pid, $(($(now) - t0)) s)"
}

show_log() {
  printf '\n!!!!!!!!!! last 30 lines of %s !!!!!!!!!!\n' "$1" >&2
  tail -n 30 "$1" >&2 || true
  printf '!!!!!!!!!! end of %s !!!!!!!!!!\n\n' "$1" >&2
}

# wait_up name pidfile want port path — until GET answers 200; fail if the process dies.
wait_up() {
  local name="$1" pidfile="$2" want="$3" port="$4" path="$5" t0; t0=$(now)
  until http_ok "$port" "$path"; do
    if ! pid_alive "$pidfile" "$want"; then
      show_log "$LOGS/$name.log"
      die "$name exited while starting (log: $LOGS/$name.log)"
    fi
    if (($(now) - t0 >= TIMEOUT)); then
      show_log "$LOGS/$name.log"
      die "$name: http://127.0.0.1:$port$path did not answer 200 within ${TIMEOUT}s (log: $LOGS/$name.log)"
    fi
    sleep 0.2
  done
}

# ----------------------------------------------------------- environment ---
# The services' addresses: what the caller set wins over `services.sh env`.
services_env() {
  local line name
  while IFS= read -r line; do
    name="${line#export }"
    name="${name%%=*}"
    [[ -n "${!name+set}" ]] || eval "$line"
  done < <("$SCRIPT_DIR/services.sh" env)
}

# The fleet's own secrets: the caller's, else generated once and kept in the state dir
# (so tokens minted against the fleet stay valid across restarts).
# A secret missing from an older file is added to it. A ticket secret added to a fleet
# that had none keeps the RPC secret, its tickets' key until then, as the previous one
# for a day (backend.stale_ticket is 15 min by default; after that the gateways, which
# hold the RPC secret, must not mint tickets the backends take).
secrets() {
  local f="$STATE/secrets.env" prev="$STATE/previous-ticket-secret.env" k missing=() previous=""
  for k in SECKILL_JWT_SECRET SECKILL_ADMIN_TOKEN SECKILL_BACKEND_RPC_SECRET SECKILL_BACKEND_RPC_OPERATOR_SECRET SECKILL_BACKEND_TICKET_SECRET; do
    grep -qs "^$k=" "$f" || missing+=("$k")
  done
  if ((${#missing[@]})); then
    command -v openssl >/dev/null || die "needs openssl to generate the fleet's secrets"
    if [[ -s "$f" && -z "${SECKILL_BACKEND_TICKET_SECRET:-}" && " ${missing[*]} " == *" SECKILL_BACKEND_TICKET_SECRET "* ]]; then
      previous=${SECKILL_BACKEND_RPC_SECRET:-$(sed -n 's/^SECKILL_BACKEND_RPC_SECRET=//p' "$f" | head -n 1)}
    fi
    (
      umask 077
      {
        [[ -s "$f" ]] && cat "$f"
        for k in "${missing[@]}"; do printf '%s=%s\n' "$k" "$(openssl rand -hex 32)"; done
      } >"$f.tmp"
      [[ -z "$previous" ]] || printf 'SECKILL_BACKEND_PREVIOUS_TICKET_SECRET=%s\n' "$previous" >"$prev"
    )
    mv -f "$f.tmp" "$f"
  fi
  # The previous ticket secret lapses a day after it was kept.
  if [[ -f "$prev" ]] && [[ -n "$(find "$prev" -mmin +1440 2>/dev/null)" ]]; then
    rm -f "$prev"
  fi
  local v
  while IFS='=' read -r k v; do
    [[ -n "${!k:-}" ]] || export "$k=$v"
  done < <(cat "$f" "$prev" 2>/dev/null)
}

# Settings a process must not take from the caller: the fleet sets the listeners
# through SECKILL_PORT_BASE and tells gateways where the backends are.
unset SECKILL_PORT_BASE SECKILL_GATEWAY_LISTEN SECKILL_GATEWAY_OPS_LISTEN SECKILL_BACKEND_LISTEN \
  SECKILL_BACKEND_OPS_LISTEN SECKILL_WORKER_OPS_LISTEN SECKILL_BACKEND_ADDRS SECKILL_GATEWAY_BACKEND_SERVICE

# The local fleet is a fleet of its own on shared services: its control channel,
# limiter and counters, and its workers' topic and group, are apart from those of a
# `seckill all` or a test on the same Redis and broker.
export SECKILL_FLEET="${SECKILL_FLEET:-local}"
# HAProxy reaches the gateways from loopback: its X-Forwarded-For names the client.
export SECKILL_GATEWAY_TRUSTED_PROXIES="${SECKILL_GATEWAY_TRUSTED_PROXIES:-127.0.0.1/32}"
export SECKILL_ROCKETMQ_TOPIC="${SECKILL_ROCKETMQ_TOPIC:-seckill_fleet_orders}"
export SECKILL_ROCKETMQ_GROUP="${SECKILL_ROCKETMQ_GROUP:-seckill_fleet_workers}"

backend_addrs() {
  local j addrs=()
  for ((j = 1; j <= BACKENDS; j++)); do addrs+=("127.0.0.1:$(($(base backend "$j") + 2))"); done
  local IFS=,
  echo "${addrs[*]}"
}

# ---------------------------------------------------------------- haproxy ---
ensure_haproxy() {
  command -v haproxy >/dev/null && return 0
  ((EUID == 0)) || die "haproxy is missing: apt-get install -y haproxy (as root)"
  say "haproxy: installing from Debian"
  mkdir -p "$STATE"
  # Keep the package's init script from starting a system HAProxy.
  local made_policy=0 rc=0
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\n# temporary, from deploy/fleet.sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    made_policy=1
  fi
  {
    DEBIAN_FRONTEND=noninteractive apt-get update -q -o DPkg::Lock::Timeout=600 &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=600 haproxy </dev/null
  } >"$STATE/apt.log" 2>&1 || rc=$?
  ((made_policy)) && rm -f /usr/sbin/policy-rc.d
  ((rc == 0)) || { show_log "$STATE/apt.log"; die "apt-get install haproxy failed"; }
}

# render_haproxy FILE — the compose file's config with this fleet's gateways as servers.
render_haproxy() {
  local out="$1" i b servers=""
  for ((i = 1; i <= GATEWAYS; i++)); do
    b=$(base gateway "$i")
    servers+="    server gateway-$i 127.0.0.1:$b check port $((b + 1))"$'\n'
  done
  SERVERS="$servers" awk '
    /^[[:space:]]*# BEGIN gateways/ { print; printf "%s", ENVIRON["SERVERS"]; skip = 1; next }
    /^[[:space:]]*# END gateways/ { skip = 0 }
    !skip { print }
  ' "$HAPROXY_TEMPLATE" >"$out"
  grep -q "server gateway-1 " "$out" || die "$HAPROXY_TEMPLATE has no '# BEGIN gateways' / '# END gateways' lines"
}

# lb_gateways_up — how many gateways HAProxy has in its rotation (its stats, CSV).
lb_gateways_up() {
  http_get "$((PORT + 1))" '/stats;csv' | tr -d '\r' |
    awk -F, '$1 == "gateways" && $2 ~ /^gateway-/ && $18 == "UP" { n++ } END { print n + 0 }'
}
lb_all_up() { [[ "$(lb_gateways_up)" == "$GATEWAYS" ]]; }

haproxy_env() { echo "LB_BIND=127.0.0.1:$PORT" "LB_STATS_BIND=127.0.0.1:$((PORT + 1))"; }

haproxy_up() {
  ensure_haproxy
  local new="$HAPROXY_CFG.new" pidfile="$RUN/haproxy.pid"
  render_haproxy "$new"
  # shellcheck disable=SC2046
  env $(haproxy_env) haproxy -c -q -f "$new" >"$LOGS/haproxy-check.log" 2>&1 ||
    { show_log "$LOGS/haproxy-check.log"; die "haproxy -c rejected $new"; }
  if pid_alive "$pidfile" "$HAPROXY_CFG" && cmp -s "$new" "$HAPROXY_CFG"; then
    rm -f "$new"
    say "haproxy: already running on 127.0.0.1:$PORT"
  else
    stop_pidfile haproxy "$pidfile" "$HAPROXY_CFG" 10
    tcp_open "$PORT" && die "port $PORT is taken (SECKILL_FLEET_PORT picks another)"
    mv -f "$new" "$HAPROXY_CFG"
    say "haproxy: starting on 127.0.0.1:$PORT (stats http://127.0.0.1:$((PORT + 1))/stats)"
    # shellcheck disable=SC2046
    spawn "$pidfile" "$LOGS/haproxy.log" env $(haproxy_env) haproxy -db -f "$HAPROXY_CFG" ||
      die "could not start haproxy"
  fi
  # Up once a request through it reaches a gateway and every gateway is in rotation.
  wait_up haproxy "$pidfile" "$HAPROXY_CFG" "$PORT" /healthz
  local t0; t0=$(now)
  until lb_all_up; do
    if (($(now) - t0 >= TIMEOUT)); then
      show_log "$LOGS/haproxy.log"
      die "haproxy: $(lb_gateways_up) of $GATEWAYS gateways in rotation after ${TIMEOUT}s"
    fi
    sleep 0.2
  done
}

# ------------------------------------------------------------- components ---
# start_role ROLE — start each instance of ROLE that is not running, then wait for all.
start_role() {
  local role="$1" n i name b pidfile port path restarted started=()
  n=$(count "$role")
  for ((i = 1; i <= n; i++)); do
    name="$role-$i"
    b=$(base "$role" "$i")
    pidfile="$RUN/$name.pid"
    restarted=0
    if pid_alive "$pidfile" "$BIN $role"; then
      # A process of an older build is restarted, one at a time, and so is a gateway
      # started for another set of backends (HAProxy's checks take it out meanwhile).
      if [[ "$(cat "$RUN/$name.bin" 2>/dev/null)" == "$(bin_id)" &&
        ("$role" != gateway || "$(cat "$RUN/$name.backends" 2>/dev/null)" == "$(backend_addrs)") ]]; then
        continue
      fi
      stop_pidfile "$name" "$pidfile" " $role" 60
      restarted=1
    fi
    read -r port path <<<"$(health "$role" "$i")"
    tcp_open "$port" && die "$name: port $port is taken by another process (SECKILL_FLEET_PORT picks another)"
    local extra=() unset=()
    # The ticket secrets are the backends' alone.
    [[ "$role" == backend ]] || unset=(-u SECKILL_BACKEND_TICKET_SECRET -u SECKILL_BACKEND_PREVIOUS_TICKET_SECRET)
    if [[ "$role" == gateway ]]; then
      extra=("SECKILL_BACKEND_ADDRS=$(backend_addrs)")
      backend_addrs >"$RUN/$name.backends"
    fi
    : >>"$LOGS/$name.log"
    bin_id >"$RUN/$name.bin"
    spawn "$pidfile" "$LOGS/$name.log" env "${unset[@]}" "SECKILL_PORT_BASE=$b" "${extra[@]}" "$BIN" "$role" ||
      die "could not start $name"
    started+=("$name")
    # A restart waits for its process before the next one stops: the role keeps
    # serving throughout.
    ((restarted)) && wait_up "$name" "$pidfile" "$BIN $role" "$port" "$path"
  done
  for ((i = 1; i <= n; i++)); do
    name="$role-$i"
    read -r port path <<<"$(health "$role" "$i")"
    wait_up "$name" "$RUN/$name.pid" "$BIN $role" "$port" "$path"
  done
  if ((${#started[@]})); then
    say "$role: started ${started[*]}; $n answering"
  else
    say "$role: $n already running"
  fi
}

# bin_id — the identity of the binary a process runs (its modification time and size).
bin_id() { stat -c '%Y %s' "$BIN"; }

# stop_extra ROLE — stop instances beyond the count asked for (a smaller fleet).
stop_extra() {
  local role="$1" n f i
  n=$(count "$role")
  for f in "$RUN/$role"-*.pid; do
    [[ -e "$f" ]] || continue
    i="${f##*-}"
    i="${i%.pid}"
    if ((i > n)); then
      stop_pidfile "$role-$i" "$f" " $role" 60
      rm -f "$RUN/$role-$i.backends"
    fi
  done
  return 0
}

build() {
  if [[ -n "${SECKILL_FLEET_BIN:-}" ]]; then
    [[ -x "$BIN" ]] || die "SECKILL_FLEET_BIN=$BIN is not an executable"
    return 0
  fi
  local t0; t0=$(now)
  say "building $BIN"
  (cd "$ROOT" && go build -o "$BIN" ./cmd/seckill) || die "go build failed"
  say "built in $(($(now) - t0)) s"
}

with_lock() {
  mkdir -p "$STATE"
  exec 9>"$STATE/.lock"
  flock -w 300 9 || die "another fleet.sh has held $STATE/.lock for 5 min"
}

cmd_start() {
  local t0; t0=$(now)
  with_lock
  mkdir -p "$LOGS" "$RUN"
  printf 'SECKILL_FLEET_GATEWAYS=%s\nSECKILL_FLEET_BACKENDS=%s\nSECKILL_FLEET_WORKERS=%s\nSECKILL_FLEET_PORT=%s\n' \
    "$GATEWAYS" "$BACKENDS" "$WORKERS" "$PORT" >"$SHAPE"
  if [[ "${SECKILL_FLEET_SERVICES:-1}" != 0 ]]; then
    "$SCRIPT_DIR/services.sh" up
  fi
  services_env
  secrets
  build
  "$BIN" migrate >>"$LOGS/migrate.log" 2>&1 || { show_log "$LOGS/migrate.log"; die "seckill migrate failed"; }
  say "migrate: $(tail -n 1 "$LOGS/migrate.log")"
  stop_extra gateway
  stop_extra backend
  stop_extra worker
  start_role backend
  start_role worker
  start_role gateway
  haproxy_up
  say "fleet up ($GATEWAYS gateways, $BACKENDS backends, $WORKERS workers) in $(($(now) - t0)) s: http://127.0.0.1:$PORT"
}

cmd_stop() {
  with_lock
  mkdir -p "$RUN"
  # Traffic first, then the gateways, then what they call; each role's processes in
  # parallel (a worker finishes the batches in hand).
  stop_pidfile haproxy "$RUN/haproxy.pid" "$HAPROXY_CFG" 10
  local role f pids=() rc=0 p
  for role in gateway backend worker; do
    pids=()
    for f in "$RUN/$role"-*.pid; do
      [[ -e "$f" ]] || continue
      f="${f##*/}"
      stop_pidfile "${f%.pid}" "$RUN/$f" " $role" 60 &
      pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p" || rc=1; done
  done
  rm -f "$RUN"/*.backends
  say "fleet stopped (the services of deploy/services.sh keep running)"
  return $rc
}

cmd_status() {
  local bad=0 role n i name port path state pid
  line() { printf '  %-11s %-8s %-44s %s\n' "$@"; }
  for role in gateway backend worker; do
    n=$(count "$role")
    for ((i = 1; i <= n; i++)); do
      name="$role-$i"
      read -r port path <<<"$(health "$role" "$i")"
      pid="-"
      if pid_alive "$RUN/$name.pid" "$BIN $role"; then
        pid="$(tr -dc '0-9' <"$RUN/$name.pid")"
        local code; code="$(http_status "$port" "$path")" || code=""
        case "$code" in
          200) state=up ;;
          "") state="NOT ANSWERING"; bad=1 ;;
          *) state="NOT READY ($code)"; bad=1 ;;
        esac
      else
        state=DOWN
        bad=1
      fi
      line "$name" "$pid" "SECKILL_PORT_BASE=$(base "$role" "$i") http://127.0.0.1:$port$path" "$state"
    done
  done
  pid="-"
  if pid_alive "$RUN/haproxy.pid" "$HAPROXY_CFG"; then
    pid="$(tr -dc '0-9' <"$RUN/haproxy.pid")"
    local in; in="$(lb_gateways_up)"
    if http_ok "$PORT" /healthz && ((in == GATEWAYS)); then
      state="up"
    else
      state="NOT ALL GATEWAYS"
      bad=1
    fi
    state+=" ($in/$GATEWAYS gateways in rotation)"
  else
    state=DOWN
    bad=1
  fi
  line haproxy "$pid" "http://127.0.0.1:$PORT (stats :$((PORT + 1))/stats)" "$state"
  return $bad
}

cmd_env() {
  local f="$STATE/secrets.env"
  [[ -s "$f" ]] || die "no fleet secrets yet: deploy/fleet.sh start"
  printf "export SECKILL_FLEET_URL='http://127.0.0.1:%s'\n" "$PORT"
  sed "s/^\([A-Z_]*\)=\(.*\)$/export \1='\2'/" "$f"
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  env) cmd_env ;;
  haproxy-config)
    tmp="$(mktemp)"
    trap 'rm -f "$tmp"' EXIT
    render_haproxy "$tmp"
    cat "$tmp"
    ;;
  *)
    echo "usage: $0 start|stop|status|env|haproxy-config" >&2
    exit 2
    ;;
esac

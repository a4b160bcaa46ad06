#!/usr/bin/env bash
# deploy/k8s/make-secrets.sh — create the Secret the manifests read, apart from them
# (no manifest holds a secret value):
#   SECKILL_JWT_SECRET, SECKILL_ADMIN_TOKEN,
#   SECKILL_BACKEND_RPC_SECRET, SECKILL_BACKEND_RPC_OPERATOR_SECRET, SECKILL_BACKEND_TICKET_SECRET
#                                            generated: 32 random bytes each (openssl, hex)
#   SECKILL_MYSQL_DSN                        from the environment, or asked for
#   SECKILL_REDIS_PASSWORD                   from the environment, or asked for (may be empty)
#
#   SECKILL_MYSQL_DSN='seckill:PASS@tcp(mysql:3306)/seckill' SECKILL_REDIS_PASSWORD=PASS \
#     deploy/k8s/make-secrets.sh            create it with kubectl (refuses if it exists)
#   deploy/k8s/make-secrets.sh --force      replace it: new JWT secret (every shopper's
#                                           token stops working), admin token and RPC
#                                           credentials (restart every pod together)
#   deploy/k8s/make-secrets.sh --dry-run    print the Secret's YAML instead of applying it:
#                                           ... --dry-run | kubectl apply -f -
#   deploy/k8s/make-secrets.sh --dotenv deploy/.env
#                                           write the .env of deploy/compose.yaml instead:
#                                           every value random, mode 600 (refuses to
#                                           overwrite the file unless --force)
# Options: -n|--namespace NS (default seckill), --name NAME (default seckill),
#          --context CTX (kubectl's context).
# Nothing is echoed or logged: values go to kubectl's standard input, or to standard
# output with --dry-run.
set -Eeuo pipefail

NAMESPACE=seckill
NAME=seckill
CONTEXT=()
FORCE=0
MODE=apply
DOTENV=""

die() { printf 'make-secrets: %s\n' "$*" >&2; exit 1; }
usage() { sed -n '2,/^set -E/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit "${1:-2}"; }

while (($#)); do
  case "$1" in
    -n | --namespace) NAMESPACE="${2:?$1 needs a value}"; shift ;;
    --name) NAME="${2:?$1 needs a value}"; shift ;;
    --context) CONTEXT=(--context "${2:?$1 needs a value}"); shift ;;
    --force) FORCE=1 ;;
    --dry-run) MODE=print ;;
    --dotenv) MODE=dotenv; DOTENV="${2:?--dotenv needs a file}"; shift ;;
    -h | --help) usage 0 ;;
    *) printf 'make-secrets: unknown argument %q\n' "$1" >&2; usage ;;
  esac
  shift
done

command -v openssl >/dev/null || die "needs openssl (apt-get install -y openssl)"
random() { openssl rand -hex 32; } # 32 bytes of the CSPRNG, 64 hex characters

# ask VAR prompt — the value of VAR from the environment (set, even empty), else read
# from the terminal without echo, else fail: nothing is made up for a missing value.
ask() {
  local var="$1" prompt="$2" v
  if [[ -n "${!var+set}" ]]; then
    printf '%s' "${!var}"
    return
  fi
  [[ -t 0 ]] || die "set $var (no terminal to ask on)"
  read -rsp "$prompt: " v </dev/tty
  printf '\n' >&2
  printf '%s' "$v"
}

if [[ "$MODE" == dotenv ]]; then
  if [[ -e "$DOTENV" && $FORCE == 0 ]]; then
    die "$DOTENV exists; --force replaces it (new secrets: shoppers' tokens stop working)"
  fi
  tmp="$(dirname "$DOTENV")/.$(basename "$DOTENV").tmp.$$"
  (
    umask 077
    cat >"$tmp" <<ENV
# The secrets of deploy/compose.yaml, made by deploy/k8s/make-secrets.sh --dotenv.
# Keep this file out of version control (deploy/.gitignore lists it).
SECKILL_JWT_SECRET=$(random)
SECKILL_ADMIN_TOKEN=$(random)
SECKILL_BACKEND_RPC_SECRET=$(random)
SECKILL_BACKEND_RPC_OPERATOR_SECRET=$(random)
SECKILL_BACKEND_TICKET_SECRET=$(random)
SECKILL_REDIS_PASSWORD=$(random)
MYSQL_PASSWORD=$(random)
GRAFANA_ADMIN_PASSWORD=$(random)
ENV
  )
  mv -f "$tmp" "$DOTENV"
  printf 'make-secrets: wrote %s (mode 600)\n' "$DOTENV" >&2
  exit 0
fi

KUBECTL=(kubectl "${CONTEXT[@]}" -n "$NAMESPACE")
if [[ "$MODE" == apply ]]; then
  command -v kubectl >/dev/null || die "needs kubectl (or use --dry-run and apply the output yourself)"
  if "${KUBECTL[@]}" get secret "$NAME" >/dev/null 2>&1 && ((FORCE == 0)); then
    die "secret $NAMESPACE/$NAME exists; --force replaces it (new JWT secret: shoppers' tokens stop working)"
  fi
fi

dsn="$(ask SECKILL_MYSQL_DSN 'MySQL DSN, user:password@tcp(host:3306)/seckill')"
[[ "$dsn" =~ ^[^:@/]+:.+@.+/.+ ]] || die "SECKILL_MYSQL_DSN: want user:password@tcp(host:port)/database"
redis_password="$(ask SECKILL_REDIS_PASSWORD 'Redis password (empty: none)')"

b64() { printf '%s' "$1" | base64 -w0; }
secret_yaml() {
  cat <<YAML
apiVersion: v1
kind: Secret
metadata:
  name: $NAME
  namespace: $NAMESPACE
  labels: {app.kubernetes.io/name: seckill}
type: Opaque
data:
  SECKILL_JWT_SECRET: "$(b64 "$(random)")"
  SECKILL_ADMIN_TOKEN: "$(b64 "$(random)")"
  SECKILL_BACKEND_RPC_SECRET: "$(b64 "$(random)")"
  SECKILL_BACKEND_RPC_OPERATOR_SECRET: "$(b64 "$(random)")"
  SECKILL_BACKEND_TICKET_SECRET: "$(b64 "$(random)")"
  SECKILL_MYSQL_DSN: "$(b64 "$dsn")"
  SECKILL_REDIS_PASSWORD: "$(b64 "$redis_password")"
YAML
}

if [[ "$MODE" == print ]]; then
  secret_yaml
  exit 0
fi
if ((FORCE)); then
  secret_yaml | "${KUBECTL[@]}" apply -f - >/dev/null
  printf 'make-secrets: replaced secret %s/%s; restart the pods to use it:\n' "$NAMESPACE" "$NAME" >&2
  printf '  kubectl -n %s rollout restart deployment seckill-gateway seckill-backend seckill-worker\n' "$NAMESPACE" >&2
else
  # create, not apply: it fails rather than overwrite one made meanwhile.
  secret_yaml | "${KUBECTL[@]}" create -f - >/dev/null
  printf 'make-secrets: created secret %s/%s\n' "$NAMESPACE" "$NAME" >&2
fi

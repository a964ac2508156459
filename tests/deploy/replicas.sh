#!/usr/bin/env bash
# Many replicas, one conversation: 3 `rgemma serve` replicas sharing a Redis
# state store behind nginx round-robin (no affinity), driven by
# tests/deploy/replicas.mjs: conversations resent in full resume on whichever
# replica serves each turn and answer what a single cold server answers; with
# one replica killed (kill -9) mid-run, and with Redis stopped mid-run and
# started again. Real redis-server and nginx (Debian's), on loopback, random
# ports, bounded in time; everything is stopped at the end.
#   tests/deploy/replicas.sh [BUILD_DIR]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD="$(cd "${1:-$ROOT/build}" && pwd)"
BIN="$BUILD/rgemma"
MODEL="$ROOT/tests/data/fixtures/small"
WORK="$(mktemp -d)"
for t in redis-server nginx node; do command -v "$t" >/dev/null || { echo "replicas.sh: $t not found (scripts/install-deps.sh installs it)" >&2; exit 1; }; done

PIDS=()
cleanup() {
  # nginx's master stops its workers on SIGTERM (SIGKILL would orphan them).
  [[ -f "$WORK/nginx.pid" ]] && kill -TERM "$(cat "$WORK/nginx.pid")" 2>/dev/null || true
  local p
  for p in "${PIDS[@]}" "$(cat "$WORK/redis.pid" 2>/dev/null)"; do
    [[ -n "$p" ]] && { kill -KILL "$p" && wait "$p"; } 2>/dev/null || true
  done
  sleep 0.2
  rm -rf "$WORK"
}
trap cleanup EXIT

source "$ROOT/tests/deploy/nginx.sh"
wait_file() {  # wait_file FILE WHAT
  for _ in $(seq 1 600); do [[ -s "$1" ]] && return 0; sleep 0.1; done
  echo "replicas.sh: $2 did not start" >&2; cat "$WORK"/*.log >&2; return 1
}

REDIS_PORT=$(free_port)
# The same arguments as a string for replicas.mjs, which starts Redis again after the outage.
export REDIS_ARGS="--port $REDIS_PORT --bind 127.0.0.1 --save '' --appendonly no --loglevel warning"
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --loglevel warning \
  >"$WORK/redis.log" 2>&1 </dev/null &
echo $! >"$WORK/redis.pid"
for _ in $(seq 1 100); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done

start_server() {  # name args...
  local name=$1; shift
  "$BIN" serve -m "$MODEL" --host 127.0.0.1 --port 0 --port-file "$WORK/$name.port" --threads 1 --parallel 4 \
    --max-queue 256 "$@" >"$WORK/$name.log" 2>&1 </dev/null &
  PIDS+=("$!")
  echo $! >"$WORK/$name.pid"
}
for r in 1 2 3; do start_server "replica$r" --state-store "redis://127.0.0.1:$REDIS_PORT/0"; done
start_server cold --cache-mb 0
for n in replica1 replica2 replica3 cold; do wait_file "$WORK/$n.port" "$n"; done

NGINX_PORT=$(free_port)
write_nginx_conf "$WORK" "$NGINX_PORT" "$(cat "$WORK/replica1.port")" "$(cat "$WORK/replica2.port")" \
  "$(cat "$WORK/replica3.port")"
start_nginx "$WORK" "$NGINX_PORT"

status=0
NGINX_URL="http://127.0.0.1:$NGINX_PORT" COLD_URL="http://127.0.0.1:$(cat "$WORK/cold.port")" \
  REPLICA_PIDS="$(cat "$WORK/replica1.pid") $(cat "$WORK/replica2.pid") $(cat "$WORK/replica3.pid")" \
  REPLICA_URLS="$(for r in 1 2 3; do printf 'http://127.0.0.1:%s ' "$(cat "$WORK/replica$r.port")"; done)" \
  REDIS_PID_FILE="$WORK/redis.pid" REDIS_LOG="$WORK/redis.log" \
  timeout 600 node "$ROOT/tests/deploy/replicas.mjs" || status=$?
if [[ $status -ne 0 ]]; then
  for f in "$WORK"/*.log; do echo "--- tail of $f" >&2; tail -n 20 "$f" >&2; done
fi
exit $status

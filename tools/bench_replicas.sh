#!/usr/bin/env bash
# Turn latency of one long conversation resent in full on every turn, through
# nginx round-robin over 2 replicas (each --threads 1), so consecutive turns
# land on alternating replicas (not part of the test suite).
#   tools/bench_replicas.sh BUILD MODEL [TURNS]
# Three configurations, one after the other, same conversation:
#   nocache: --cache-mb 0 (every turn re-prefills everything)
#   local:   each replica's own memory cache only (a turn finds its replica's
#            snapshot from two turns before)
#   store:   the same plus --state-store redis:// (a turn finds the other
#            replica's snapshot of the turn before)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="$(cd "$1" && pwd)/rgemma"; MODEL=$2; TURNS=${3:-8}
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  [[ -f "$WORK/nginx.pid" ]] && kill -TERM "$(cat "$WORK/nginx.pid")" 2>/dev/null || true
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
source "$ROOT/tests/deploy/nginx.sh"
wait_file() { for _ in $(seq 1 600); do [[ -s "$1" ]] && return 0; sleep 0.1; done; echo "no $1" >&2; exit 1; }

REDIS_PORT=$(free_port)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --loglevel warning >"$WORK/redis.log" 2>&1 </dev/null &
PIDS+=("$!")
for _ in $(seq 1 100); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done

run_config() {  # name serve-args...
  local name=$1; shift
  local ports=()
  local pids=()
  for r in 1 2; do
    rm -f "$WORK/r$r.port"
    "$BIN" serve -m "$MODEL" --host 127.0.0.1 --port 0 --port-file "$WORK/r$r.port" --threads 1 --parallel 1 -q "$@" \
      >"$WORK/$name-r$r.log" 2>&1 </dev/null &
    pids+=("$!")
  done
  for r in 1 2; do wait_file "$WORK/r$r.port"; ports+=("$(cat "$WORK/r$r.port")"); done
  local port; port=$(free_port)
  write_nginx_conf "$WORK" "$port" "${ports[@]}"
  start_nginx "$WORK" "$port"
  local npid=$!
  echo "== $name: 2 replicas (--threads 1) behind nginx round-robin; serve $*"
  node "$ROOT/tests/server/bench_chat_cache.mjs" "http://127.0.0.1:$port" --turns "$TURNS" --modes cache
  kill -TERM "$npid" 2>/dev/null; wait "$npid" 2>/dev/null || true
  rm -f "$WORK/nginx.pid"
  for p in "${pids[@]}"; do kill -TERM "$p"; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
run_config nocache --cache-mb 0
run_config local
redis-cli -p "$REDIS_PORT" flushall >/dev/null
run_config store --state-store "redis://127.0.0.1:$REDIS_PORT/0"

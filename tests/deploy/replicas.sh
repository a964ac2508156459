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

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
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
mkdir -p "$WORK/nginx"
cat >"$WORK/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $WORK/nginx.pid;
error_log $WORK/nginx.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $WORK/nginx/body;
  proxy_temp_path $WORK/nginx/proxy;
  fastcgi_temp_path $WORK/nginx/fastcgi;
  uwsgi_temp_path $WORK/nginx/uwsgi;
  scgi_temp_path $WORK/nginx/scgi;
  upstream rgemma {
    # Round robin, no affinity: any replica can continue any conversation.
    server 127.0.0.1:$(cat "$WORK/replica1.port") max_fails=1 fail_timeout=30s;
    server 127.0.0.1:$(cat "$WORK/replica2.port") max_fails=1 fail_timeout=30s;
    server 127.0.0.1:$(cat "$WORK/replica3.port") max_fails=1 fail_timeout=30s;
  }
  server {
    listen 127.0.0.1:$NGINX_PORT;
    location / {
      proxy_pass http://rgemma;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
      proxy_read_timeout 120s;
      # A replica that dies before answering: the request goes to another.
      proxy_next_upstream error timeout http_502 non_idempotent;
      proxy_next_upstream_tries 3;
    }
  }
}
CONF
nginx -p "$WORK" -c "$WORK/nginx.conf" >"$WORK/nginx.out" 2>&1 </dev/null &
for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$NGINX_PORT") 2>/dev/null && break; sleep 0.1; done

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

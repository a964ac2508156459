# Sourced by tests/deploy/replicas.sh and tools/bench_replicas.sh: helpers to
# run rgemma replicas behind a real nginx on loopback.

# A free loopback port.
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# write_nginx_conf WORK LISTEN_PORT UPSTREAM_PORT... : writes WORK/nginx.conf,
# round-robin over the upstreams with no affinity (any replica may continue
# any conversation). A replica that fails before answering is marked down
# for 30 s and its request goes to another (up to 3 tries).
write_nginx_conf() {
  local work=$1 listen=$2; shift 2
  local servers="" p
  for p in "$@"; do servers+="    server 127.0.0.1:$p max_fails=1 fail_timeout=30s;"$'\n'; done
  mkdir -p "$work/nginx"
  cat >"$work/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $work/nginx.pid;
error_log $work/nginx.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $work/nginx/body;
  proxy_temp_path $work/nginx/proxy;
  fastcgi_temp_path $work/nginx/fastcgi;
  uwsgi_temp_path $work/nginx/uwsgi;
  scgi_temp_path $work/nginx/scgi;
  upstream rgemma {
$servers  }
  server {
    listen 127.0.0.1:$listen;
    location / {
      proxy_pass http://rgemma;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
      proxy_read_timeout 600s;
      proxy_next_upstream error timeout http_502 non_idempotent;
      proxy_next_upstream_tries 3;
    }
  }
}
CONF
}

# start_nginx WORK LISTEN_PORT: starts nginx on WORK/nginx.conf in the
# background ($! is its pid) and waits until it accepts connections.
start_nginx() {
  nginx -p "$1" -c "$1/nginx.conf" >"$1/nginx.out" 2>&1 </dev/null &
  local i
  for i in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$2") 2>/dev/null && return 0; sleep 0.1; done
  echo "nginx did not start:" >&2; cat "$1/nginx.out" "$1/nginx.log" >&2 2>/dev/null; return 1
}

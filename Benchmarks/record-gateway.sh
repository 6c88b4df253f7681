#!/usr/bin/env bash
# Records real gateway traffic for the benchmark's second row: nginx as the gateway in front of
# real upstreams on loopback, both legs in one capture, with the failures a gateway sees in
# production mixed into healthy traffic:
#   - upstream A: nginx serving static files (1 KB to 256 KB), kept-alive from the gateway;
#   - upstream B: a Python HTTP/1.1 server that resets the connection after every 25th request,
#     answers every 60th too late for the gateway's 1 s read timeout (504), and closes kept-alive
#     connections after 0.5 s idle (keep-alive races with the gateway's pool);
#   - upstream C: a closed port in A's group (refused, retried on A by nginx).
#
#   sudo bash Benchmarks/record-gateway.sh [OUT.pcap] [SIZE_MB]    (default Benchmarks/data/gateway-512MB.pcap, 512)
#   CAPDIAG_GATEWAY_SMALL=1 bash Benchmarks/record-gateway.sh Captures/lo-gateway-busy.pcap 20   (the test capture)
#
# Network rule: everything listens and connects on 127.0.0.1 only (ports 19100-19103). The load
# (ApacheBench) is bounded by request count and by time (120 s at most); the capture stops at
# SIZE_MB or when the load ends; every process started here is stopped by PID on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-Benchmarks/data/gateway-512MB.pcap}
size_mb=${2:-512}
need=()
command -v nginx >/dev/null || need+=(nginx-light)
command -v tcpdump >/dev/null || need+=(tcpdump)
command -v ab >/dev/null || need+=(apache2-utils)
if [ ${#need[@]} -gt 0 ]; then
    # Keep Debian from starting the packaged nginx on the host.
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
    rm -f /usr/sbin/policy-rc.d
fi
work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pidfile in "$work"/*.pid; do [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null || true; done
    sleep 0.5
    rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/static" "$(dirname "$out")"
for kb in 1 4 16 64 256; do head -c $((kb * 1024)) /dev/urandom > "$work/static/f$kb"; done

cat > "$work/upstream-a.conf" <<EOF
worker_processes 1; pid $work/a.pid; error_log $work/a-error.log; daemon on;
events { worker_connections 1024; }
http { access_log off; keepalive_timeout 60s; keepalive_requests 10000;
  server { listen 127.0.0.1:19101; root $work/static; } }
EOF
cat > "$work/gateway.conf" <<EOF
worker_processes 1; pid $work/gw.pid; error_log $work/gw-error.log; daemon on;
events { worker_connections 4096; }
http { access_log off;
  upstream static_pool { server 127.0.0.1:19101; server 127.0.0.1:19103; keepalive 32; }
  upstream app_pool { server 127.0.0.1:19102; keepalive 32; }
  server { listen 127.0.0.1:19100;
    proxy_http_version 1.1; proxy_set_header Connection "";
    proxy_connect_timeout 1s; proxy_read_timeout 1s;
    location /static/ { proxy_pass http://static_pool/; }
    location /app/ { proxy_pass http://app_pool; proxy_next_upstream off; } } }
EOF
cat > "$work/upstream-b.py" <<'EOF'
import socket, struct, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

count = 0
lock = threading.Lock()
deadline = time.time() + float(sys.argv[1])

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 0.5  # closes kept-alive connections after 0.5 s idle
    def log_message(self, *args): pass
    def do_GET(self):
        global count
        with lock:
            count += 1
            n = count
        if n % 25 == 0:  # reset after reading the request
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True
            return
        if n % 60 == 0:
            time.sleep(1.5)  # past the gateway's 1 s read timeout
        body = b"x" * (512 + (n % 7) * 700)
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

class Server(ThreadingHTTPServer):
    def handle_error(self, request, client_address): pass  # the gateway hung up: expected here

server = Server(("127.0.0.1", 19102), Handler)
server.daemon_threads = True
threading.Thread(target=server.serve_forever, daemon=True).start()
while time.time() < deadline: time.sleep(0.5)
EOF

nginx -c "$work/upstream-a.conf"
nginx -c "$work/gateway.conf"
python3 "$work/upstream-b.py" 150 & pids+=($!)
sleep 1
rm -f "$out"
# -C/-W would rotate; one file, stopped at the size by the watcher below or when the load ends.
tcpdump -i lo -s 0 -U -w "$out" 'tcp port 19100 or tcp portrange 19101-19103' 2>/dev/null & tcpdump_pid=$!; pids+=($tcpdump_pid)
sleep 1
limit=$((size_mb * 1000000))
loads=()
if [ "${CAPDIAG_GATEWAY_SMALL:-0}" = 1 ]; then
    # The small test capture (Captures/lo-gateway-busy.pcap): 300 static requests and 4 s of
    # the application's, over kept-alive connections that carry far more than 32 requests each.
    ab -q -k -c 2 -n 300 "http://127.0.0.1:19100/static/f1" >/dev/null 2>&1 & loads+=($!); pids+=($!)
    ab -q -k -c 4 -t 4 -n 100000 "http://127.0.0.1:19100/app/item" >/dev/null 2>&1 & loads+=($!); pids+=($!)
else
    for kb in 1 4 16 64 256; do
        ab -q -k -c 4 -t 120 -n 400000 "http://127.0.0.1:19100/static/f$kb" >/dev/null 2>&1 & loads+=($!); pids+=($!)
    done
    ab -q -k -c 8 -t 120 -n 400000 "http://127.0.0.1:19100/app/item" >/dev/null 2>&1 & loads+=($!); pids+=($!)
fi
# Stop at the size (checked twice a second) or when every load ended, whichever comes first.
while :; do
    [ "$(stat -c %s "$out" 2>/dev/null || echo 0)" -ge "$limit" ] && break
    running=0
    for pid in "${loads[@]}"; do kill -0 "$pid" 2>/dev/null && running=1; done
    [ $running = 1 ] || break
    sleep 0.5
done
for pid in "${loads[@]}"; do kill "$pid" 2>/dev/null || true; done
sleep 1
kill "$tcpdump_pid" 2>/dev/null || true
wait "$tcpdump_pid" 2>/dev/null || true
echo "wrote $out: $(stat -c %s "$out") bytes"

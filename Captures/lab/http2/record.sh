#!/usr/bin/env bash
# capdiag's HTTP/2 and gRPC lab: real gateways and upstreams on loopback, one capture per
# scenario (tcpdump -i lo, both legs where a gateway is involved), and a label per scenario
# (label.py: the expected cause, what the client saw, the gateway's log lines, and tshark's
# reading of every HTTP/2 stream).
#
#   sudo bash Captures/lab/http2/record.sh [SCENARIO ...]     (all scenarios when none is named)
#
# Scenarios: h2c-healthy h2c-upgrade grpc-healthy grpc-unavailable grpc-killed-midstream
#            grpc-goaway grpc-reset haproxy-h2-healthy haproxy-h2-upstream-killed
#
# Network rule: only 127.0.0.1 is addressed (ports 19001-19031). Every client loop is bounded
# in count and time (and each server exits by itself within 60 s); everything started here is
# stopped by its PID, and the work directory is removed on exit, also on failure.
# Needs Debian packages (installed when missing) and PyPI grpcio and h2 (in a venv under /tmp).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${CAPDIAG_H2LAB_OUT:-$here}
need=()
command -v nghttpd >/dev/null || need+=(nghttp2-server)
command -v nghttp >/dev/null || need+=(nghttp2-client)
command -v nghttpx >/dev/null || need+=(nghttp2-proxy)
command -v nginx >/dev/null || need+=(nginx)
command -v haproxy >/dev/null || need+=(haproxy)
command -v tcpdump >/dev/null || need+=(tcpdump)
command -v tshark >/dev/null || need+=(tshark)
command -v curl >/dev/null || need+=(curl)
command -v python3 >/dev/null || need+=(python3 python3-venv)
if [ ${#need[@]} -gt 0 ]; then
    # Keep Debian from starting the packaged nginx and haproxy services on the host.
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
    rm -f /usr/sbin/policy-rc.d
fi
venv=${CAPDIAG_H2LAB_VENV:-/tmp/capdiag-h2lab-venv}
if ! "$venv/bin/python" -c 'import grpc, h2' 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q grpcio h2
fi
py="$venv/bin/python"

work=$(mktemp -d /tmp/capdiag-h2lab.XXXXXX)
pids=()
cleanup() {
    set +e
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done
    sleep 0.3
    for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null; done
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

# Started in the background, remembered for cleanup: start VAR COMMAND...
start() {
    local var=$1; shift
    "$@" &
    local pid=$!
    pids+=("$pid")
    printf -v "$var" '%s' "$pid"
}
# Stops one process started here, by PID, and waits for it.
stop() {
    kill "$1" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}
wait_port() {
    for _ in $(seq 100); do
        # Listening, asked of the kernel: a test connection would show in the gateway's log.
        if [ -n "$(ss -Hltn "sport = :$1")" ]; then return 0; fi
        sleep 0.1
    done
    echo "port $1 never opened" >&2; return 1
}
capture_start() {  # capture_start NAME PORT...
    local name=$1; shift
    local filter="tcp port $1"; shift
    for port in "$@"; do filter="$filter or tcp port $port"; done
    : > "$work/tcpdump.err"
    start tcpdump_pid tcpdump -i lo -nn -s 0 -B 32768 --immediate-mode -U -w "$out/$name.pcap" "$filter" 2>"$work/tcpdump.err"
    for _ in $(seq 50); do grep -q "listening on" "$work/tcpdump.err" && break; sleep 0.1; done
    sleep 0.2
}
capture_stop() {
    sleep 0.5
    kill -INT "$tcpdump_pid" 2>/dev/null || true
    wait "$tcpdump_pid" 2>/dev/null || true
    # A packet the kernel dropped would make the capture disagree with the client: say so.
    grep -E "captured|dropped" "$work/tcpdump.err" | tr '\n' ' ' >&2; echo >&2
}

mkdir -p "$work/htdocs"
head -c 3000 /dev/zero | tr '\0' 'a' > "$work/htdocs/a.txt"
head -c 200 /dev/zero | tr '\0' 'b' > "$work/htdocs/b.txt"
head -c 200000 /dev/urandom | base64 > "$work/htdocs/big.txt"
head -c 20000 /dev/urandom | base64 > "$work/htdocs/mid.txt"

nginx_conf() {  # nginx_conf UPSTREAM_PORT
    cat > "$work/nginx.conf" <<NGINX
worker_processes 1;
pid $work/nginx.pid;
error_log $work/nginx-error.log info;
events { worker_connections 64; }
http {
    access_log $work/nginx-access.log;
    client_body_temp_path $work/body;
    proxy_temp_path $work/proxy;
    fastcgi_temp_path $work/fastcgi;
    uwsgi_temp_path $work/uwsgi;
    scgi_temp_path $work/scgi;
    upstream grpcup {
        server 127.0.0.1:$1;
        keepalive 8;
    }
    server {
        listen 127.0.0.1:19010 http2;
        location / { grpc_pass grpc://grpcup; }
    }
}
NGINX
}
nginx_start() {
    : > "$work/nginx-error.log"
    start nginx_pid nginx -c "$work/nginx.conf" -p "$work" -g 'daemon off;'
    wait_port 19010
}

haproxy_conf() {  # haproxy_conf UPSTREAM_PORT
    cat > "$work/haproxy.cfg" <<HAPROXY
global
    log stdout format raw local0 info
defaults
    mode http
    log global
    option httplog
    timeout connect 2s
    retries 1
    timeout client 10s
    timeout server 10s
frontend lab
    bind 127.0.0.1:19020
    default_backend up
backend up
    server up1 127.0.0.1:$1 proto h2
HAPROXY
}

label() {  # label NAME CAUSE CLIENT_JSON GATEWAY_LOG CLIENT_PORT UPSTREAM_PORT NOTE [CLIENT_DECODE]
    "$py" "$here/label.py" --pcap "$out/$1.pcap" --name "$1" --cause "$2" --client "$3" --gateway-log "$4" \
        --client-port "$5" --upstream-port "$6" --note "$7" --client-decode "${8:-http2}" \
        --cause-if-clean "${CLEAN_CAUSE:-}" > "$out/$1.json"
    echo "recorded $1: $(wc -c < "$out/$1.pcap") bytes"
}

scenario_h2c_healthy() {
    start up nghttpd --no-tls -a 127.0.0.1 -d "$work/htdocs" 19001
    wait_port 19001
    capture_start h2c-healthy 19001
    # One connection, ten streams (prior knowledge): nghttp -m 5 asks each URI five times.
    timeout 20 nghttp -n -m 5 http://127.0.0.1:19001/a.txt http://127.0.0.1:19001/b.txt > /dev/null
    timeout 20 nghttp -n http://127.0.0.1:19001/missing > /dev/null || true
    capture_stop
    stop "$up"
    echo '{"counts": {"200": 10, "404": 1}}' > "$work/client.json"
    label h2c-healthy healthy "$work/client.json" "" 0 19001 "nghttp to nghttpd, h2c prior knowledge: 10 streams on one connection, then one 404"
}

scenario_h2c_upgrade() {
    # nghttpd does not answer Upgrade: h2c on a cleartext port; nghttpx's frontend does.
    start up nghttpd --no-tls -a 127.0.0.1 -d "$work/htdocs" 19001
    wait_port 19001
    start proxy nghttpx -f '127.0.0.1,19030;no-tls' -b '127.0.0.1,19001;;proto=h2' --workers=1 \
        --pid-file="$work/nghttpx.pid" --errorlog-file="$work/nghttpx.log" --accesslog-file=/dev/null
    wait_port 19030
    capture_start h2c-upgrade 19030 19001
    # HTTP/1.1 GET with Upgrade: h2c and HTTP2-Settings; 101; then HTTP/2 on stream 1 and 3.
    timeout 20 nghttp -n -u http://127.0.0.1:19030/a.txt http://127.0.0.1:19030/b.txt > /dev/null
    capture_stop
    stop "$proxy"
    stop "$up"
    echo '{"counts": {"200": 2}}' > "$work/client.json"
    label h2c-upgrade healthy "$work/client.json" "" 19030 19001 \
        "nghttp -u to nghttpx (cleartext frontend) -> nghttpd (h2): HTTP/1.1 Upgrade: h2c, 101, then HTTP/2 on the client leg (stream 1 is the upgrade request)" http
}

# The gRPC client prints its JSON on stdout: run it through a wrapper that keeps it.
grpc_run() {  # grpc_run NAME CAUSE MODE KIND N GAP THREADS KILL_AFTER NOTE
    local name=$1 cause=$2 mode=$3 kind=$4 n=$5 gap=$6 threads=$7 kill_after=$8 note=$9
    nginx_conf "${UPSTREAM_PORT:-19011}"
    if [ "$mode" = reset ]; then
        start up "$py" "$here/lab_h2reset.py" 19011
    else
        start up "$py" "$here/lab_grpc.py" server 19011 "$mode"
    fi
    wait_port 19011
    nginx_start
    capture_start "$name" 19010 19011
    : > "$work/client.out"
    start client bash -c "timeout 40 '$py' '$here/lab_grpc.py' client 127.0.0.1:19010 $kind $n $gap $threads > '$work/client.out'"
    if [ "$kill_after" != 0 ]; then
        sleep "$kill_after"
        kill -9 "$up" 2>/dev/null || true
    fi
    wait "$client" 2>/dev/null || true
    capture_stop
    stop "$up"
    stop "$nginx_pid"
    label "$name" "$cause" "$work/client.out" "$work/nginx-error.log" 19010 19011 "$note"
}

scenario_grpc_healthy() {
    grpc_run grpc-healthy healthy ok unary 20 30 1 0 \
        "grpcio client -> nginx grpc_pass (keepalive 8) -> grpcio server: 20 unary calls, all OK"
}
scenario_grpc_unavailable() {
    grpc_run grpc-unavailable grpc_unavailable unavailable unary 20 30 1 0 \
        "the grpcio server aborts every odd call with UNAVAILABLE (trailers-only response, HTTP 200): nginx relays it and logs nothing"
}
scenario_grpc_killed_midstream() {
    grpc_run grpc-killed-midstream upstream_closed_with_streams_open ok stream 3 0 3 0.5 \
        "three server-streaming calls (10 messages 150 ms apart) in parallel; the grpcio server is killed (SIGKILL) 0.5 s in"
}
scenario_grpc_goaway() {
    CLEAN_CAUSE=healthy grpc_run grpc-goaway goaway_race maxage unary 80 20 3 0 \
        "grpcio server with grpc.max_connection_age_ms=400 (grace 300): it sends GOAWAY while 3 client threads keep calling (80 unary calls)"
}
scenario_grpc_reset() {
    grpc_run grpc-reset stream_reset_by_upstream reset unary 12 30 1 0 \
        "an h2 (python-hyper) upstream resets every third stream with RST_STREAM(INTERNAL_ERROR); 12 unary calls"
}

haproxy_run() {  # haproxy_run NAME CAUSE KILL_AFTER COUNT RATE PARALLEL FILE NOTE
    local name=$1 cause=$2 kill_after=$3 count=$4 rate=$5 parallel=$6 file=$7 note=$8
    haproxy_conf 19021
    start up nghttpd --no-tls -a 127.0.0.1 -d "$work/htdocs" 19021
    wait_port 19021
    start hap bash -c "exec haproxy -f '$work/haproxy.cfg' -db > '$work/haproxy.log' 2>&1"
    wait_port 19020
    capture_start "$name" 19020 19021
    : > "$work/curl.out"
    local clients=()
    for p in $(seq "$parallel"); do
        start c bash -c "for i in \$(seq $count); do curl -s -o /dev/null --max-time 8 $rate -w '%{http_code}\n' http://127.0.0.1:19020/\$( [ \$((i % 2)) = 0 ] && echo a.txt || echo $file ) >> '$work/curl.out'; sleep 0.05; done"
        clients+=("$c")
    done
    if [ "$kill_after" != 0 ]; then
        sleep "$kill_after"
        kill -9 "$up" 2>/dev/null || true
    fi
    for c in "${clients[@]}"; do wait "$c" 2>/dev/null || true; done
    capture_stop
    stop "$up"
    stop "$hap"
    "$py" -c "
import json, sys
counts = {}
for line in open(sys.argv[1]):
    line = line.strip()
    if line: counts[line] = counts.get(line, 0) + 1
print(json.dumps({'counts': counts}))" "$work/curl.out" > "$work/client.json"
    label "$name" "$cause" "$work/client.json" "$work/haproxy.log" 19020 19021 "$note"
}
scenario_haproxy_h2_healthy() {
    haproxy_run haproxy-h2-healthy healthy 0 4 "" 2 mid.txt \
        "curl (HTTP/1.1) -> HAProxy 2.6 (server proto h2) -> nghttpd h2c: 2 clients x 4 requests, 27 KB and 3 KB files"
}
scenario_haproxy_h2_upstream_killed() {
    haproxy_run haproxy-h2-upstream-killed connection_refused 0.25 8 "" 2 mid.txt \
        "as haproxy-h2-healthy (2 clients x 8 requests, HAProxy retries 1) but nghttpd is killed (SIGKILL) 0.25 s in: the h2 connections to it close between requests (HAProxy reads each whole response at once on loopback, so no stream is open at the kill: tried with a 270 KB file read at 20 kB/s, HAProxy still had it all), and later requests find the port closed: 503 after 2 refused connects (SC--)"
}

all=(h2c-healthy h2c-upgrade grpc-healthy grpc-unavailable grpc-killed-midstream grpc-goaway grpc-reset haproxy-h2-healthy haproxy-h2-upstream-killed)
selected=("$@")
[ ${#selected[@]} -eq 0 ] && selected=("${all[@]}")
for name in "${selected[@]}"; do
    "scenario_${name//-/_}"
done

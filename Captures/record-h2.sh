#!/usr/bin/env bash
# Records the HTTP/2 captures in Captures/ (loopback only): nghttpd serves a tiny docroot in
# cleartext (h2c) on 127.0.0.1:18201 and over TLS on 127.0.0.1:18203; nghttp (and curl, when it
# speaks HTTP/2) fetch a few paths from it. nghttpd does not implement the HTTP/1.1 Upgrade to
# h2c, so the Upgrade capture goes through nghttpx (same project) on 127.0.0.1:18202, a
# cleartext frontend that accepts "Upgrade: h2c" and forwards over h2c to that nghttpd; only
# the client leg (port 18202) is recorded. Every process started here is stopped by PID (also
# on failure); every client run is bounded by `timeout` and tcpdump by a packet count.
#   sudo bash Captures/record-h2.sh
set -euo pipefail
cd "$(dirname "$0")"
command -v tcpdump >/dev/null || apt-get install -y tcpdump
command -v openssl >/dev/null || apt-get install -y openssl
command -v nghttpd >/dev/null || apt-get install -y nghttp2-server
command -v nghttp >/dev/null || apt-get install -y nghttp2-client
command -v nghttpx >/dev/null || apt-get install -y nghttp2-proxy
work=$(mktemp -d)
SERVER_PIDS=()
CAPTURE_PID=
cleanup() {
    [ -n "$CAPTURE_PID" ] && { kill -INT "$CAPTURE_PID" 2>/dev/null || true; wait "$CAPTURE_PID" 2>/dev/null || true; }
    for pid in "${SERVER_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

# A tiny docroot: two files; /missing.txt is the 404.
mkdir "$work/htdocs"
printf '<!doctype html><title>capdiag h2</title><p>hello over HTTP/2</p>\n' > "$work/htdocs/index.html"
printf 'hello %s\n' one two three > "$work/htdocs/hello.txt"
openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=upstream.test -addext subjectAltName=IP:127.0.0.1 \
    -keyout "$work/key.pem" -out "$work/cert.pem" -days 2 2>/dev/null
# No TLS 1.3 for the TLS capture, so that the ServerHello (not TLS 1.3's encrypted
# EncryptedExtensions) carries the ALPN answer where a capture can see it. nghttpd and nghttp set
# their own version range (TLS 1.0 to 1.3, overriding MinProtocol/MaxProtocol from a config), but
# keep OpenSSL's SSL_OP_NO_TLSv1_3, which "Protocol = -TLSv1.3" sets.
cat > "$work/tls12.cnf" <<'CNF'
openssl_conf = openssl_init
[openssl_init]
ssl_conf = ssl_sect
[ssl_sect]
system_default = system_default_sect
[system_default_sect]
Protocol = -TLSv1.3
CNF

# start_server PORT COMMAND…: starts a server in the background, waits until 127.0.0.1:PORT listens.
start_server() {
    local port=$1; shift
    "$@" >>"$work/servers.log" 2>&1 &
    SERVER_PIDS+=("$!")
    for _ in $(seq 50); do ss -Hltn "sport = :$port" | grep -q . && return; sleep 0.1; done
    echo "$1 did not listen on $port" >&2; cat "$work/servers.log" >&2; exit 1
}
# fetch ARGS…: nghttp without output, bounded; fails when a request went unanswered (nghttp
# still exits 0 then).
fetch() {
    timeout 15 nghttp -n -t 5 "$@" 2>&1 | tee "$work/nghttp.log"
    if grep -q "not processed" "$work/nghttp.log"; then echo "nghttp: a request went unanswered" >&2; exit 1; fi
}
# start_capture FILE PORT: starts tcpdump on lo for one port, waits until it listens.
start_capture() {
    : >"$work/tcpdump.log"
    tcpdump -i lo --immediate-mode -U -s 262144 -c 300 --time-stamp-precision=nano -w "$1" "tcp port $2" 2>"$work/tcpdump.log" &
    CAPTURE_PID=$!
    for _ in $(seq 50); do grep -q "listening on" "$work/tcpdump.log" && return; sleep 0.1; done
}
stop_capture() { sleep 0.5; kill -INT "$CAPTURE_PID" 2>/dev/null || true; wait "$CAPTURE_PID" 2>/dev/null || true; CAPTURE_PID=; }

h2c=http://127.0.0.1:18201
start_server 18201 nghttpd -a 127.0.0.1 -d "$work/htdocs" --no-tls 18201

# 1. h2c with prior knowledge: nghttp sends the connection preface ("PRI * HTTP/2.0") at once and
#    fetches three paths as three streams on one connection (200, 200, 404); then curl, if it
#    speaks HTTP/2, does the same for one path on a second connection.
start_capture lo-h2c-prior-knowledge.pcap 18201
fetch "$h2c/index.html" "$h2c/hello.txt" "$h2c/missing.txt"
if curl --version | grep -qw HTTP2; then
    timeout 15 curl -sS -o /dev/null --max-time 5 --http2-prior-knowledge "$h2c/hello.txt"
fi
stop_capture

# 2. h2c via HTTP/1.1 Upgrade, through nghttpx: the first request goes out as HTTP/1.1 with
#    "Upgrade: h2c", nghttpx answers 101 Switching Protocols and then the response on stream 1
#    in HTTP/2; the client sends the preface after the 101, and the second path as a new stream.
start_server 18202 nghttpx --conf=/dev/null --workers=1 --log-level=WARN \
    --frontend='127.0.0.1,18202;no-tls' --backend='127.0.0.1,18201;;proto=h2' \
    --errorlog-file="$work/nghttpx-error.log" --accesslog-file="$work/nghttpx-access.log"
start_capture lo-h2c-upgrade.pcap 18202
fetch -u http://127.0.0.1:18202/index.html http://127.0.0.1:18202/hello.txt
stop_capture

# 3. HTTP/2 over TLS 1.2: ALPN offers h2 in the ClientHello, the ServerHello selects h2. nghttp
#    does not verify the certificate by default (it only warns; -y silences that).
OPENSSL_CONF="$work/tls12.cnf" start_server 18203 nghttpd -a 127.0.0.1 -d "$work/htdocs" 18203 "$work/key.pem" "$work/cert.pem"
start_capture lo-h2-tls.pcap 18203
OPENSSL_CONF="$work/tls12.cnf" fetch -y https://127.0.0.1:18203/index.html https://127.0.0.1:18203/hello.txt https://127.0.0.1:18203/missing.txt
stop_capture

ls -l lo-h2c-prior-knowledge.pcap lo-h2c-upgrade.pcap lo-h2-tls.pcap

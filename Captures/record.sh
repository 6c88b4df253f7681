#!/usr/bin/env bash
# Records the small loopback captures in Captures/. Loopback only; every process started
# here is stopped by PID; each scenario is bounded in packets and time.
#   sudo bash Captures/record.sh      (needs root for tcpdump; installs tcpdump and editcap)
set -euo pipefail
cd "$(dirname "$0")"
command -v tcpdump >/dev/null || apt-get install -y tcpdump
command -v editcap >/dev/null || apt-get install -y wireshark-common

# start_capture FILE IFACE FILTER [extra tcpdump flags]: starts tcpdump, waits until it listens.
start_capture() {
    local file=$1 iface=$2 filter=$3; shift 3
    tcpdump -i "$iface" --immediate-mode -U -s 262144 -c 200 "$@" -w "$file" "$filter" 2>/tmp/capdiag-record.log &
    CAPTURE_PID=$!
    for _ in $(seq 50); do grep -q "listening on" /tmp/capdiag-record.log 2>/dev/null && return; sleep 0.1; done
}
stop_capture() { sleep 0.5; kill -INT "$CAPTURE_PID" 2>/dev/null || true; wait "$CAPTURE_PID" 2>/dev/null || true; }

# 1. Connection refused: nothing listens on 127.0.0.1:18081, the kernel answers the SYN with RST.
start_capture lo-refused.pcap lo "tcp port 18081"
python3 -c '
import socket
s = socket.socket()
try: s.connect(("127.0.0.1", 18081))
except ConnectionRefusedError: pass
'
stop_capture

# 2. HTTP/1.1 keep-alive: three requests on one connection to a Python server, then a clean close.
# 3. Connection reset by the server: it reads the request, then closes with SO_LINGER 0 (RST).
python3 - <<'PY' &
import socket, struct, threading, time
def keepalive_server():
    srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 18082)); srv.listen(4); srv.settimeout(20)
    conn, _ = srv.accept(); conn.settimeout(10)
    buf = b""
    for n in range(3):
        while b"\r\n\r\n" not in buf: buf += conn.recv(4096)
        _, buf = buf.split(b"\r\n\r\n", 1)
        body = b"hello %d\n" % n
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    conn.recv(4096)  # client closes
    conn.close(); srv.close()
def reset_server():
    srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 18083)); srv.listen(4); srv.settimeout(20)
    conn, _ = srv.accept(); conn.settimeout(10)
    conn.recv(4096)
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close(); srv.close()
threading.Thread(target=keepalive_server).start()
threading.Thread(target=reset_server).start()
PY
SERVER_PID=$!
sleep 0.5

start_capture lo-http-keepalive.pcap lo "tcp port 18082" --time-stamp-precision=nano
python3 -c '
import http.client, time
c = http.client.HTTPConnection("127.0.0.1", 18082, timeout=5)
for n in range(3):
    c.request("GET", "/item/%d" % n, headers={"X-Request-Id": "req-%d" % n})
    c.getresponse().read(); time.sleep(0.2)
c.close()
'
stop_capture

start_capture any-server-reset.pcap any "tcp port 18083"
python3 -c '
import socket
s = socket.create_connection(("127.0.0.1", 18083), timeout=5)
s.sendall(b"POST /upload HTTP/1.1\r\nHost: upstream\r\nContent-Length: 5\r\n\r\nhello")
try: print(s.recv(4096))
except ConnectionResetError: pass
'
stop_capture
wait "$SERVER_PID" 2>/dev/null || true

# The keep-alive capture again as pcapng, to cover that format.
editcap -F pcapng lo-http-keepalive.pcap lo-http-keepalive.pcapng
ls -l ./*.pcap ./*.pcapng

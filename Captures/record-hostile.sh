#!/usr/bin/env bash
# Records Captures/lo-http-hostile.pcap: requests whose targets and headers carry markup,
# terminal escapes and credentials, for the safe-output and redaction tests. On 127.0.0.1:18090
# a Python upstream resets the first connection after reading the request and answers the
# second with a header section holding a Set-Cookie and a malformed line with escapes.
# Loopback only; processes stopped by PID.
#   sudo bash Captures/record-hostile.sh
set -euo pipefail
cd "$(dirname "$0")"
command -v tcpdump >/dev/null || apt-get install -y tcpdump
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat > "$work/hostile.py" <<'PY'
import socket, struct, threading, time

def serve():
    srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 18090)); srv.listen(8); srv.settimeout(5)
    for n in range(2):
        conn, _ = srv.accept()
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(4096)
            if not chunk: break
            data += chunk
        if n == 0:
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        else:
            conn.sendall(b"HTTP/1.1 200 OK\r\nSet-Cookie: id=SECRET-SETCOOKIE-5\r\n"
                         b"bad line \x1b[2J<img src=x onerror=alert(3)> Authorization: Bearer SECRET-INLINE-6\r\n"
                         b"Content-Length: 2\r\n\r\nok")
            time.sleep(0.2)
        conn.close()
    srv.close()

server = threading.Thread(target=serve); server.start(); time.sleep(0.3)
requests = [
    b"GET /<script>alert(1)</script>?token=SECRET-TOKEN-1&page=`x`|[a](javascript:alert(2)) HTTP/1.1\r\n"
    b"Host: upstream\r\nAuthorization: Bearer SECRET-AUTH-2\r\nCookie: session=SECRET-COOKIE-3\r\n\r\n",
    b"GET /\x1b[31mred\x1b[0m/*bold*/?api_key=SECRET-APIKEY-4 HTTP/1.1\r\nHost: upstream\r\n"
    b"X-Api-Key: SECRET-APIKEY-7\r\n\r\n",
]
for request in requests:
    s = socket.create_connection(("127.0.0.1", 18090), timeout=5)
    s.sendall(request)
    try:
        while s.recv(4096): pass
    except OSError: pass
    s.close()
server.join()
PY
tcpdump -i lo --immediate-mode -U -c 100 -w lo-http-hostile.pcap 'tcp port 18090' 2>"$work/tcpdump.log" &
tcpdump_pid=$!
for _ in $(seq 50); do grep -q "listening on" "$work/tcpdump.log" && break; sleep 0.1; done
python3 "$work/hostile.py"
sleep 0.5
kill "$tcpdump_pid"; wait "$tcpdump_pid" || true
echo "wrote Captures/lo-http-hostile.pcap"

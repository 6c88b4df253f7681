#!/usr/bin/env bash
# Records the HTTP and TLS scenario captures in Captures/ (loopback only): a scripted Python
# upstream misbehaves differently on each port, a Python client talks to each, tcpdump records
# everything once, and the capture is split per port. Every process started here is stopped
# by PID; every exchange is bounded by socket timeouts.
#   sudo bash Captures/record-http.sh
set -euo pipefail
cd "$(dirname "$0")"
command -v tcpdump >/dev/null || apt-get install -y tcpdump
command -v openssl >/dev/null || apt-get install -y openssl
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=upstream.test -keyout "$work/key.pem" -out "$work/cert.pem" -days 2 2>/dev/null

cat > "$work/upstream.py" <<'PY'
import socket, ssl, struct, sys, threading, time
work = sys.argv[1]

def serve(port, handler, tls=False):
    srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port)); srv.listen(8); srv.settimeout(30)
    conn, _ = srv.accept(); conn.settimeout(10)
    try:
        if tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); ctx.load_cert_chain(f"{work}/cert.pem", f"{work}/key.pem")
            try: conn = ctx.wrap_socket(conn, server_side=True)
            except (ssl.SSLError, OSError): conn.close(); srv.close(); return
        handler(conn)
    except OSError: pass
    finally:
        try: conn.close()
        except OSError: pass
        srv.close()

def read_request(conn, buf=b""):
    while b"\r\n\r\n" not in buf:
        data = conn.recv(4096)
        if not data: return None, buf
        buf += data
    head, rest = buf.split(b"\r\n\r\n", 1)
    return head, rest

def pipelining(conn):
    buf = b""
    for n in range(3):
        head, buf = read_request(conn, buf)
        if head is None: return
    body = b"ok"
    conn.sendall(b"".join(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n" + body for _ in range(3)))
    conn.recv(100)

def chunked(conn):
    read_request(conn)
    conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
    for part in (b"first part ", b"second part ", b"last"):
        conn.sendall(b"%x\r\n%s\r\n" % (len(part), part)); time.sleep(0.05)
    conn.sendall(b"0\r\n\r\n"); conn.recv(100)

def cut(rst):
    def handler(conn):
        read_request(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"x" * 100)
        time.sleep(0.05)
        if rst: conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    return handler

def invalid_header(conn):
    read_request(conn)
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nthis line has no colon\r\nContent-Length: 2\r\n\r\nok")
    time.sleep(0.1)

def garbage(conn):
    read_request(conn)
    conn.sendall(bytes(range(0, 64)) * 4)
    time.sleep(0.1)

def big_headers(conn):
    read_request(conn)
    conn.sendall(b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 10000 + b"\r\nContent-Length: 2\r\n\r\nok")
    conn.recv(100)

def plain_http(conn):
    conn.recv(4096)
    conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    time.sleep(0.1)

def tls_ok(conn):
    read_request(conn)

threads = [threading.Thread(target=serve, args=a) for a in [
    (18091, pipelining), (18092, chunked), (18093, cut(False)), (18094, cut(True)), (18095, invalid_header),
    (18096, garbage), (18097, big_headers), (18098, tls_ok, True), (18099, plain_http)]]
for t in threads: t.start()
for t in threads: t.join()
PY

cat > "$work/client.py" <<'PY'
import socket, ssl, time
def talk(port, data, read=True):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(data)
    if read:
        try:
            while s.recv(65536): pass
        except OSError: pass
    s.close()
def get(path, extra=b""): return b"GET %s HTTP/1.1\r\nHost: upstream.test\r\nX-Request-Id: rec-%s\r\n%s\r\n" % (path, path[1:], extra)
s = socket.create_connection(("127.0.0.1", 18091), timeout=5)
s.sendall(get(b"/p1") + get(b"/p2") + get(b"/p3"))
time.sleep(0.3); s.close()
talk(18092, get(b"/chunked"))
talk(18093, get(b"/cut-fin"))
talk(18094, get(b"/cut-rst"))
talk(18095, get(b"/invalid-header"))
talk(18096, get(b"/garbage"))
talk(18097, get(b"/big-headers"))
# TLS 1.2 to a self-signed certificate: the client rejects it with a plaintext alert.
ctx = ssl.create_default_context(); ctx.maximum_version = ssl.TLSVersion.TLSv1_2
raw = socket.create_connection(("127.0.0.1", 18098), timeout=5)
try: ctx.wrap_socket(raw, server_hostname="upstream.test")
except ssl.SSLError: pass
raw.close()
# TLS to a plain HTTP server: it answers the ClientHello with an HTTP 400.
raw = socket.create_connection(("127.0.0.1", 18099), timeout=5)
try: ssl.create_default_context().wrap_socket(raw, server_hostname="upstream.test")
except (ssl.SSLError, OSError): pass
raw.close()
PY

tcpdump -i lo --immediate-mode -U -s 262144 -c 2000 -w "$work/all.pcap" 'tcp portrange 18091-18099' 2>"$work/tcpdump.log" &
capture=$!
for _ in $(seq 50); do grep -q "listening on" "$work/tcpdump.log" && break; sleep 0.1; done
python3 "$work/upstream.py" "$work" &
upstream=$!
sleep 0.5
python3 "$work/client.py"
wait "$upstream" || true
sleep 0.5
kill -INT "$capture"; wait "$capture" || true

split() { tcpdump -r "$work/all.pcap" -w "$1" "tcp port $2" 2>/dev/null; }
split lo-http-pipelining.pcap 18091
split lo-http-chunked.pcap 18092
split lo-http-cut-fin.pcap 18093
split lo-http-cut-rst.pcap 18094
split lo-http-invalid-header.pcap 18095
split lo-http-garbage.pcap 18096
split lo-http-big-headers.pcap 18097
split lo-tls-unknown-ca.pcap 18098
split lo-tls-to-plain-http.pcap 18099
ls -l lo-http-*.pcap lo-tls-*.pcap

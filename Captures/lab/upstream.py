#!/usr/bin/env python3
"""The lab's scripted upstream: one listener per port, each misbehaving in its own way.

Runs inside the upstream namespace until the deadline (argv[2] seconds) and then exits, so it
can never outlive the lab. argv[1] is the folder holding cert.pem/key.pem.
"""
import socket, ssl, struct, sys, threading, time

work, lifetime = sys.argv[1], float(sys.argv[2])
deadline = time.time() + lifetime
HOST = "10.77.2.2"

def read_head(conn, buf=b""):
    while b"\r\n\r\n" not in buf:
        data = conn.recv(65536)
        if not data:
            return None, buf
        buf += data
    head, rest = buf.split(b"\r\n\r\n", 1)
    length = 0
    for line in head.split(b"\r\n")[1:]:
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    while len(rest) < length:
        data = conn.recv(65536)
        if not data:
            break
        rest += data
    return head, rest[length:]

def ok(body=b"ok\n", extra=b""):
    return b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n%sContent-Length: %d\r\n\r\n%s" % (extra, len(body), body)

def keep_serving(conn, respond, idle=None):
    """Answers requests on one connection until the client closes or it idles out."""
    buf = b""
    while True:
        conn.settimeout(idle if idle else 30)
        try:
            head, buf = read_head(conn, buf)
        except socket.timeout:
            return  # idle: close (FIN)
        if head is None:
            return
        if not respond(conn, head):
            return

def healthy(conn):
    keep_serving(conn, lambda c, h: c.sendall(ok()) or True)

def reset_after_request(conn):
    read_head(conn)
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

def fin_without_answer(conn):
    read_head(conn)

def garbage(conn):
    read_head(conn); conn.sendall(bytes(range(256))); time.sleep(0.2)

def invalid_header(conn):
    read_head(conn); conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nthis line has no colon\r\nContent-Length: 3\r\n\r\nok\n"); time.sleep(0.2)

def big_headers(conn):
    read_head(conn); conn.sendall(ok(extra=b"X-Big: " + b"a" * 12000 + b"\r\n")); time.sleep(0.2)

def cut(rst):
    def handler(conn):
        read_head(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 20000)
        time.sleep(0.1)
        if rst:
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    return handler

def slow(conn):
    read_head(conn); time.sleep(3); 
    try: conn.sendall(ok())
    except OSError: pass

def keepalive_short_idle(conn):
    # Closes a kept-alive connection after 1.0 s without a request, as many servers do.
    keep_serving(conn, lambda c, h: c.sendall(ok()) or True, idle=1.0)

def own_503(conn):
    keep_serving(conn, lambda c, h: c.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 12\r\nRetry-After: 5\r\n\r\nbusy, later\n") or True)

def mixed(conn, counter=[0]):
    def respond(c, h):
        counter[0] += 1
        if counter[0] % 10 == 0:
            c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return False
        c.sendall(ok()); return True
    keep_serving(conn, respond)

def hang(conn):
    # Accepts TCP, never answers the ClientHello.
    try: conn.recv(65536); time.sleep(5)
    except OSError: pass

def tls_server(conn):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(f"{work}/cert.pem", f"{work}/key.pem")
    try:
        tls = ctx.wrap_socket(conn, server_side=True)
        keep_serving(tls, lambda c, h: c.sendall(ok()) or True)
    except (ssl.SSLError, OSError):
        pass

def tls_with(cert, key):
    # TLS with another certificate (lab.sh signs it with its own CA, for a SAN to check).
    def handler(conn):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(f"{work}/{cert}", f"{work}/{key}")
        try:
            tls = ctx.wrap_socket(conn, server_side=True)
            keep_serving(tls, lambda c, h: c.sendall(ok()) or True)
        except (ssl.SSLError, OSError):
            pass
    return handler

def stall_mid_response(conn):
    # Status line, headers (Content-Length: 100000) and a fifth of the body, then silence
    # without closing, as a stuck upstream. It closes only once the gateway has closed, or
    # after 4 s.
    read_head(conn)
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 100000\r\n\r\n" + b"x" * 20000)
    conn.settimeout(4)
    try:
        while conn.recv(65536):
            pass
    except (socket.timeout, OSError):
        pass

def plain_on_tls_port(conn):
    try:
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        time.sleep(0.2)
    except OSError: pass

HANDLERS = {
    9000: healthy, 9004: reset_after_request, 9005: fin_without_answer, 9006: garbage, 9007: invalid_header,
    9008: big_headers, 9009: cut(False), 9010: cut(True), 9011: slow, 9012: keepalive_short_idle,
    9013: tls_server, 9014: plain_on_tls_port, 9015: hang, 9016: own_503, 9017: healthy, 9018: mixed,
    9020: tls_with("upstream-cert.pem", "upstream-key.pem"), 9021: stall_mid_response,
}

def never_accept(port):
    # A listen queue of one that is never drained: once full, the kernel drops new SYNs.
    srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((HOST, port)); srv.listen(0)
    while time.time() < deadline:
        time.sleep(0.5)
    srv.close()

def listener(port, handler):
    srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((HOST, port)); srv.listen(64); srv.settimeout(0.5)
    while time.time() < deadline:
        try:
            conn, _ = srv.accept()
        except socket.timeout:
            continue
        def run(c=conn):
            try: handler(c)
            except OSError: pass
            finally:
                try: c.close()
                except OSError: pass
        threading.Thread(target=run, daemon=True).start()
    srv.close()

threads = [threading.Thread(target=listener, args=(p, h), daemon=True) for p, h in HANDLERS.items()]
threads.append(threading.Thread(target=never_accept, args=(9019,), daemon=True))
for t in threads: t.start()
for t in threads: t.join()

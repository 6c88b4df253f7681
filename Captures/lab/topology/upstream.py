#!/usr/bin/env python3
"""The topology lab's scripted upstream: one listener per port on 127.0.0.1, inside the same
namespace (cdtopo-gw) as the gateways that proxy to it.

    upstream.py WORK LIFETIME LOG

Runs until the deadline (LIFETIME seconds) and then exits, so it can never outlive the lab.
WORK holds cert.pem/key.pem (TLS port). LOG gets one JSON object a line per event, flushed at
once, so the lab can join every upstream attempt to the client request behind it:
  accept   a connection was accepted: port, peer (the gateway's local ip:port)
  request  a request head was read: peer, request line, X-Request-Id, X-Client-Seq, action
  idle     a kept-alive connection was closed after its idle time (FIN)
  tls      the TLS handshake ended (ok or the error)
"""
import json, random, socket, ssl, struct, sys, threading, time

work, lifetime, log_path = sys.argv[1], float(sys.argv[2]), sys.argv[3]
deadline = time.time() + lifetime
HOST = "127.0.0.1"
log_file = open(log_path, "a", buffering=1)
log_lock = threading.Lock()


def addr(pair):
    return f"{pair[0]}:{pair[1]}"


def log(event, conn, port, **fields):
    try:
        peer = addr(conn.getpeername())
    except OSError:
        peer = fields.pop("peer", None)
    entry = {"t": round(time.time(), 6), "event": event, "port": port, "peer": peer}
    entry.update(fields)
    with log_lock:
        log_file.write(json.dumps(entry, sort_keys=True) + "\n")


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


def describe(head):
    """The request line and the two headers the lab joins on."""
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            key, value = line.split(":", 1)
            headers[key.strip().lower()] = value.strip()
    return {"request": lines[0], "x_request_id": headers.get("x-request-id"),
            "x_client_seq": headers.get("x-client-seq")}


def ok(body=b"ok\n", close=False):
    extra = b"Connection: close\r\n" if close else b""
    return b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n%sContent-Length: %d\r\n\r\n%s" % (extra, len(body), body)


def rst(conn):
    # SO_LINGER 0: the close() in listener() then sends RST instead of FIN.
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def keep_serving(conn, port, respond, idle=None):
    """Answers requests on one connection until the client closes or it idles out."""
    buf = b""
    while True:
        conn.settimeout(idle if idle else 30)
        try:
            head, buf = read_head(conn, buf)
        except socket.timeout:
            if idle:
                log("idle", conn, port, idle_seconds=idle)
            return
        if head is None:
            return
        if not respond(conn, head):
            return


def healthy(conn, port):
    def respond(c, head):
        log("request", c, port, action="200", **describe(head))
        c.sendall(ok())
        return True
    keep_serving(conn, port, respond)


def reset_after_request(conn, port):
    head, _ = read_head(conn)
    if head is not None:
        log("request", conn, port, action="reset", **describe(head))
        rst(conn)


def slow(conn, port):
    head, _ = read_head(conn)
    if head is None:
        return
    log("request", conn, port, action="200 after 3 s", **describe(head))
    time.sleep(3)
    try:
        conn.sendall(ok())
    except OSError:
        pass


def keepalive_short_idle(conn, port):
    # Closes a kept-alive connection after 1.0 s without a request, as many servers do.
    def respond(c, head):
        log("request", c, port, action="200", **describe(head))
        c.sendall(ok())
        return True
    keep_serving(conn, port, respond, idle=1.0)


def every_third_resets(port):
    """Counts the requests this port receives (over all connections): every 3rd is reset
    after it was read, the others get 200 after a random 50-300 ms, then the connection
    closes (Connection: close), so each attempt has a 4-tuple of its own."""
    lock, counter, rng = threading.Lock(), [0], random.Random(port)

    def handler(conn, port):
        head, _ = read_head(conn)
        if head is None:
            return
        with lock:
            counter[0] += 1
            n = counter[0]
            delay = rng.uniform(0.05, 0.3)
        if n % 3 == 0:
            log("request", conn, port, action="reset", upstream_seq=n, **describe(head))
            rst(conn)
            return
        log("request", conn, port, action=f"200 after {delay * 1000:.0f} ms", upstream_seq=n, **describe(head))
        time.sleep(delay)
        conn.sendall(ok(close=True))
    return handler


def tls_server(conn, port):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(f"{work}/cert.pem", f"{work}/key.pem")
    peer = addr(conn.getpeername())
    try:
        tls = ctx.wrap_socket(conn, server_side=True)
    except (ssl.SSLError, OSError) as e:
        log("tls", conn, port, peer=peer, result=f"handshake failed: {e}")
        return
    log("tls", tls, port, peer=peer, result=f"handshake done ({tls.version()})")
    try:
        keep_serving(tls, port, lambda c, h: log("request", c, port, action="200", **describe(h)) or c.sendall(ok()) or True)
    except (ssl.SSLError, OSError) as e:
        log("tls", conn, port, peer=peer, result=f"closed: {e}")


HANDLERS = {
    3002: healthy,              # behind an nft rule that drops its SYNs
    3003: tls_server,           # a certificate the gateway does not trust
    3004: reset_after_request,
    3005: keepalive_short_idle,
    3006: slow,
    3007: every_third_resets(3007),   # concurrent-resets-haproxy
    3008: reset_after_request,  # retry-second-upstream, first server
    3009: healthy,              # retry-second-upstream, second server
    3010: reset_after_request,  # behind the back proxy of proxy-chain
    3011: every_third_resets(3011),   # concurrent-resets-nginx
}                               # 3001: nothing listens (refused)


def listener(port, handler):
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((HOST, port))
    srv.listen(128)
    srv.settimeout(0.5)
    while time.time() < deadline:
        try:
            conn, peer = srv.accept()
        except socket.timeout:
            continue
        log("accept", conn, port, peer=addr(peer))

        def run(c=conn):
            try:
                handler(c, port)
            except OSError:
                pass
            finally:
                try:
                    c.close()
                except OSError:
                    pass
        threading.Thread(target=run, daemon=True).start()
    srv.close()


threads = [threading.Thread(target=listener, args=(p, h), daemon=True) for p, h in HANDLERS.items()]
for t in threads:
    t.start()
for t in threads:
    t.join()

#!/usr/bin/env python3
"""Loopback traffic for the live-capture test and the soak script (127.0.0.1 only).

  live-traffic.py scenarios BASE_PORT
      a refused connection (BASE_PORT), one HTTP exchange (BASE_PORT+1), and an upstream that
      resets after reading the request (BASE_PORT+2); returns when all three are done.
  live-traffic.py soak BASE_PORT SECONDS RATE
      RATE short connections per second for SECONDS seconds (bounded in time and count), in a
      fixed mix out of every 10: 8 HTTP exchanges with a server on BASE_PORT, 1 refused
      (BASE_PORT+1, nothing listens) and 1 reset by a server on BASE_PORT+2 after the request;
      then prints what it did as JSON ({"healthy": n, "refused": n, "reset": n}) and exits.
"""
import socket, struct, sys, threading, time

def serve(port, handler, count):
    srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port)); srv.listen(128); srv.settimeout(10)
    for _ in range(count):
        try: conn, _ = srv.accept()
        except socket.timeout: break
        conn.settimeout(5)
        try: handler(conn)
        except OSError: pass
        finally: conn.close()
    srv.close()

def read_request(conn):
    buf = b""
    while b"\r\n\r\n" not in buf:
        data = conn.recv(4096)
        if not data: break
        buf += data

def answer(conn):
    read_request(conn)
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")

def reset(conn):
    read_request(conn)
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

def request(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(b"GET /live HTTP/1.1\r\nHost: upstream\r\n\r\n")
    try:
        while s.recv(4096): pass
    except OSError: pass
    s.close()

mode, base = sys.argv[1], int(sys.argv[2])
if mode == "scenarios":
    servers = [threading.Thread(target=serve, args=(base + 1, answer, 1)), threading.Thread(target=serve, args=(base + 2, reset, 1))]
    for t in servers: t.start()
    time.sleep(0.3)
    try: socket.create_connection(("127.0.0.1", base), timeout=2)
    except OSError: pass
    request(base + 1)
    request(base + 2)
    for t in servers: t.join()
else:
    import json
    seconds, rate = float(sys.argv[3]), int(sys.argv[4])
    total = int(seconds * rate)
    kinds = ["healthy"] * 8 + ["refused", "reset"]
    planned = {kind: sum(1 for n in range(total) if kinds[n % 10] == kind) for kind in set(kinds)}
    servers = [threading.Thread(target=serve, args=(base, answer, planned["healthy"])),
               threading.Thread(target=serve, args=(base + 2, reset, planned["reset"]))]
    for t in servers: t.start()
    time.sleep(0.3)
    done = {"healthy": 0, "refused": 0, "reset": 0, "errors": 0}
    start = time.time()
    for n in range(total):
        delay = start + n / rate - time.time()
        if delay > 0: time.sleep(delay)
        kind = kinds[n % 10]
        try:
            if kind == "refused":
                try: socket.create_connection(("127.0.0.1", base + 1), timeout=2).close(); done["errors"] += 1
                except ConnectionRefusedError: done["refused"] += 1
            else:
                request(base if kind == "healthy" else base + 2)
                done[kind] += 1
        except OSError:
            done["errors"] += 1
    for t in servers: t.join()
    print(json.dumps(done))

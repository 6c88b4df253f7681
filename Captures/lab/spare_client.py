#!/usr/bin/env python3
"""A client that opens spare TLS connections and abandons them, as browsers do.

Usage: spare_client.py HOST PORT VERSION(1.2|1.3) NAME DETAILS_JSON

Runs a fixed plan (9 connections at most, each bounded by a 3 s socket timeout):
  - a real GET over TLS (Connection: close), answered 200;
  - spare connections: the handshake completes, the client sends nothing and closes after
    20-50 ms, most with a plain close (FIN), one with a close_notify alert first and, on
    TLS 1.3, one without reading the server's NewSessionTickets (the kernel sends RST);
  - connections abandoned mid-handshake: the client reads the server's whole flight
    (TLS 1.2: up to ServerHelloDone; TLS 1.3: up to the server's Finished) and closes without
    sending its own second flight (no ClientKeyExchange/Finished);
  - a second real GET.
Prints the HTTP status of each real GET, one a line, and writes what every connection did to
DETAILS_JSON (it goes into the scenario's label).
"""
import json, socket, ssl, sys, time

host, port, version, name, details_path = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
TIMEOUT = 3.0

def context():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    v = ssl.TLSVersion.TLSv1_3 if version == "1.3" else ssl.TLSVersion.TLSv1_2
    ctx.minimum_version = ctx.maximum_version = v
    return ctx

def connect():
    sock = socket.create_connection((host, port), timeout=TIMEOUT)
    return sock, sock.getsockname()[1]

def real_request(n):
    sock, sport = connect()
    tls = context().wrap_socket(sock)
    tls.sendall(f"GET /{name}/{n} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n".encode())
    data = b""
    try:
        while True:
            chunk = tls.recv(65536)
            if not chunk:
                break
            data += chunk
    except (ssl.SSLError, OSError):
        pass
    tls.close()
    status = data.split(b" ", 2)[1].decode() if data.startswith(b"HTTP/") else "000"
    return status, {"client_port": sport, "tls": version, "action": "request", "request": f"GET /{name}/{n}", "status": status}

def drain(tls):
    # Reads what the server sent after the handshake (TLS 1.3 session tickets) without blocking.
    tls.setblocking(False)
    try:
        while tls.recv(65536):
            pass
    except (ssl.SSLWantReadError, BlockingIOError, ssl.SSLError, OSError):
        pass

def spare(idle_ms, how):
    sock, sport = connect()
    tls = context().wrap_socket(sock)
    time.sleep(idle_ms / 1000)
    if how == "fin":
        drain(tls)
        tls.close()
    elif how == "close_notify":
        drain(tls)
        tls.setblocking(True)
        tls.settimeout(0.2)
        try:
            tls.unwrap()  # sends close_notify; waits (0.2 s at most) for the server's
        except (ssl.SSLError, OSError):
            pass
        sock.close()
    else:  # "rst": the tickets stay unread, so closing the socket resets the connection
        tls.close()
    closing = {"fin": "FIN", "close_notify": "close_notify alert, then FIN", "rst": "RST (server's session tickets left unread)"}[how]
    return {"client_port": sport, "tls": version, "action": "spare", "idle_ms": idle_ms, "close": closing}

def abort_mid_handshake():
    sock, sport = connect()
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = context().wrap_bio(incoming, outgoing)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    sock.sendall(outgoing.read())  # ClientHello
    deadline = time.time() + TIMEOUT
    while time.time() < deadline:
        data = sock.recv(65536)
        if not data:
            break
        incoming.write(data)
        try:
            obj.do_handshake()
            break  # TLS 1.3: the server's Finished arrived; the client's Finished waits in `outgoing`
        except ssl.SSLWantReadError:
            if outgoing.pending:
                break  # TLS 1.2: ServerHelloDone arrived; ClientKeyExchange/CCS/Finished wait
    withheld = outgoing.pending
    sock.close()
    after = "ServerHelloDone" if version == "1.2" else "the server's Finished"
    return {"client_port": sport, "tls": version, "action": "abandoned_mid_handshake",
            "close": f"FIN after {after}, the client's {withheld}-byte flight never sent"}

statuses, conns = [], []
status, d = real_request(1); statuses.append(status); conns.append(d)
time.sleep(0.1)
for idle in (20, 35, 50):
    conns.append(spare(idle, "fin")); time.sleep(0.05)
conns.append(spare(30, "close_notify")); time.sleep(0.05)
if version == "1.3":
    conns.append(spare(25, "rst")); time.sleep(0.05)
for _ in range(2):
    conns.append(abort_mid_handshake()); time.sleep(0.05)
status, d = real_request(2); statuses.append(status); conns.append(d)
with open(details_path, "w") as f:
    json.dump({"client_connections": conns}, f)
print("\n".join(statuses))

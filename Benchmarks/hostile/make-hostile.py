#!/usr/bin/env python3
"""Writes deterministic hostile captures: shapes an attacker (or a broken network) can send to
make a passive analyzer slow or make it run out of memory.

Usage: make-hostile.py SHAPE OUTPUT.pcap [N]

Shapes (default N in brackets):
  ooo       one connection whose client sends N one-byte segments out of order: the odd
            offsets ascending, then the even ones descending, byte 0 last, so that up to N/2
            holes stay open at once [262144]
  pipeline  one connection carrying N pipelined requests (packed into full segments) before
            the N responses [100000]
  dns       DNS over TCP on port 53: N queries and N answers on one connection in 64 KB
            segments (as loopback and GRO captures have them), and every thousandth answer
            a 64 KB message sent 100 bytes a segment [200000]
  syn       N SYN-only flows, distinct (address, port) pairs, 100 us apart [1000000]
  memcap    N connections, each holding 200 KB of out-of-order data behind a missing first
            segment (under the 256 KiB per-direction cap, 280 MB in all with N = 1400); the
            missing segments and FINs come at the end [1400]

The same arguments always give the same bytes.
"""
import struct, sys

SYN, ACK, PSH, FIN, RST = 0x02, 0x10, 0x08, 0x01, 0x04
ETH = b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x00"


class Writer:
    def __init__(self, path):
        self.f = open(path, "wb")
        # Classic pcap, microsecond timestamps, Ethernet.
        self.f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
        self.t = 1_700_000_000 * 1_000_000  # microseconds

    def packet(self, src, dst, sport, dport, seq, ack, flags, payload=b"", step=10):
        self.t += step
        tcp = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, 0x50, flags, 64240, 0, 0)
        ip = struct.pack("!BBHHHBBH", 0x45, 0, 40 + len(payload), 0, 0x4000, 64, 6, 0) + struct.pack("!II", src, dst)
        frame = ETH + ip + tcp + payload
        self.f.write(struct.pack("<IIII", self.t // 1_000_000, self.t % 1_000_000, len(frame), len(frame)))
        self.f.write(frame)

    def close(self):
        self.f.close()


CLIENT, SERVER = 0x0A000001, 0x0A000002


class Connection:
    """One TCP connection with a completed handshake; sequence numbers tracked per side."""

    def __init__(self, w, sport, dport, client=CLIENT, server=SERVER, isn=(1000, 50000)):
        self.w, self.sport, self.dport, self.client, self.server = w, sport, dport, client, server
        self.c, self.s = isn
        w.packet(client, server, sport, dport, self.c, 0, SYN)
        w.packet(server, client, dport, sport, self.s, self.c + 1, SYN | ACK)
        self.c += 1
        self.s += 1
        w.packet(client, server, sport, dport, self.c, self.s, ACK)

    def client_at(self, offset, data, flags=PSH | ACK):
        self.w.packet(self.client, self.server, self.sport, self.dport, self.c + offset, self.s, flags, data)

    def send_client(self, data):
        self.w.packet(self.client, self.server, self.sport, self.dport, self.c, self.s, PSH | ACK, data)
        self.c += len(data)

    def send_server(self, data):
        self.w.packet(self.server, self.client, self.dport, self.sport, self.s, self.c, PSH | ACK, data)
        self.s += len(data)

    def close(self):
        self.w.packet(self.client, self.server, self.sport, self.dport, self.c, self.s, FIN | ACK)
        self.w.packet(self.server, self.client, self.dport, self.sport, self.s, self.c + 1, FIN | ACK)
        self.w.packet(self.client, self.server, self.sport, self.dport, self.c + 1, self.s + 1, ACK)


def packed(messages, limit=1400):
    """Joins messages into segments of at most `limit` bytes (a message may span two)."""
    stream = b"".join(messages)
    return [stream[i:i + limit] for i in range(0, len(stream), limit)]


def shape_ooo(w, n):
    conn = Connection(w, 40000, 8080)
    payload = lambda offset: bytes([0x61 + offset % 26])
    for offset in range(1, n, 2):
        conn.client_at(offset, payload(offset))
    for offset in range((n - 1) // 2 * 2, 0, -2):
        conn.client_at(offset, payload(offset))
    conn.client_at(0, payload(0))
    conn.c += n
    conn.close()


def shape_pipeline(w, n):
    conn = Connection(w, 40001, 8080)
    requests = [b"GET /r/%d HTTP/1.1\r\nHost: u\r\n\r\n" % i for i in range(n)]
    responses = [b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"] * n
    for segment in packed(requests):
        conn.send_client(segment)
    for segment in packed(responses):
        conn.send_server(segment)
    conn.close()


def dns_message(ident, response, answers=1):
    name = b"\x03www\x07example\x03com\x00"
    if not response:
        body = struct.pack("!HHHHHH", ident, 0x0100, 1, 0, 0, 0) + name + struct.pack("!HH", 1, 1)
    else:
        answer = b"".join(
            b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 300, 4) + bytes([192, 0, 2, (ident + k) % 250 + 1])
            for k in range(answers))
        body = struct.pack("!HHHHHH", ident, 0x8180, 1, answers, 0, 0) + name + struct.pack("!HH", 1, 1) + answer
    return struct.pack("!H", len(body)) + body


def shape_dns(w, n):
    # Loopback and GRO captures carry segments of up to 64 KB: here a thousand messages each.
    # Every thousandth answer is a 64 KB message (4000 records) that arrives 100 bytes a segment.
    conn = Connection(w, 40002, 53)
    for start in range(0, n, 1000):
        batch = range(start, min(n, start + 1000))
        for send, response in ((conn.send_client, False), (conn.send_server, True)):
            for segment in packed([dns_message(i & 0xFFFF, response) for i in batch], limit=65000):
                send(segment)
        conn.send_client(dns_message((start + 999) & 0xFFFF, False))
        for segment in packed([dns_message((start + 999) & 0xFFFF, True, answers=4000)], limit=100):
            conn.send_server(segment)
    conn.close()


def shape_syn(w, n):
    for i in range(n):
        src = 0x0B000000 + i // 50000
        w.packet(src, SERVER, 10000 + i % 50000, 8080, i * 7919, 0, SYN, step=100)


def shape_memcap(w, n):
    per = 200_000
    segment = 1400
    conns = []
    for i in range(n):
        conn = Connection(w, 20000 + i % 40000, 8080, client=0x0C000000 + i // 40000, isn=(i * 104729, 7))
        conns.append(conn)
        body = bytes([0x41 + i % 26]) * segment
        for offset in range(segment, per, segment):
            conn.client_at(offset, body)
    for i, conn in enumerate(conns):
        conn.client_at(0, bytes([0x41 + i % 26]) * segment)
        conn.c += (per + segment - 1) // segment * segment
        conn.close()


SHAPES = {
    "ooo": (shape_ooo, 262144),
    "pipeline": (shape_pipeline, 100000),
    "dns": (shape_dns, 200000),
    "syn": (shape_syn, 1000000),
    "memcap": (shape_memcap, 1400),
}

if __name__ == "__main__":
    if len(sys.argv) < 3 or sys.argv[1] not in SHAPES:
        sys.exit(__doc__)
    function, default = SHAPES[sys.argv[1]]
    writer = Writer(sys.argv[2])
    function(writer, int(sys.argv[3]) if len(sys.argv) > 3 else default)
    writer.close()

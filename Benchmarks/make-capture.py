#!/usr/bin/env python3
"""Writes a large deterministic pcap of gateway-to-upstream HTTP traffic for benchmarks.

Usage: make-capture.py OUTPUT.pcap [TARGET_MB] [MAX_SEGMENTS]   (default 600 MB, 6 segments)

Flows run 64 at a time, interleaved packet by packet. Each is an HTTP exchange: handshake,
a 350-byte GET, a 200 response with Content-Length filling 1-6 full-size segments, ACKs, FIN
both ways.
One flow in 50 is refused (SYN, RST) and one in 40 retransmits a response segment, so the
analysis does real work. The same arguments always give the same bytes.
"""
import random, struct, sys

out_path = sys.argv[1]
target = int(sys.argv[2] if len(sys.argv) > 2 else 600) * 1_000_000
max_segments = int(sys.argv[3] if len(sys.argv) > 3 else 6)
rng = random.Random(502)

def ip4(a): return struct.pack("!I", a)
GATEWAY, UPSTREAM = 0x0A000001, 0x0A000002

def frame(src, dst, sport, dport, seq, ack, flags, payload):
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, 0x50, flags, 64240, 0, 0)
    total = 20 + 20 + len(payload)
    ip = struct.pack("!BBHHHBBH", 0x45, 0, total, 0, 0x4000, 64, 6, 0) + ip4(src) + ip4(dst)
    eth = b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x00"
    return eth + ip + tcp + payload

def request(n):
    head = b"GET /item/%d HTTP/1.1\r\nHost: upstream\r\nX-Request-Id: bench-%d\r\nX-Pad: " % (n, n)
    return head + b"p" * (350 - len(head) - 4) + b"\r\n\r\n"

def response(segments):
    total = segments * 1400
    for digits in range(1, 8):
        head = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n" % (total - 60)
        head = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n" % (total - len(head))
    return head + b"b" * (total - len(head))

def flow_packets(n):
    sport = 1024 + (n % 60000)
    up = 8080 + (n % 4)
    c, s = rng.getrandbits(32), rng.getrandbits(32)
    SYN, ACK, PSH, FIN, RST = 0x02, 0x10, 0x08, 0x01, 0x04
    g = lambda seq, ack, fl, data=b"": frame(GATEWAY, UPSTREAM, sport, up, seq, ack, fl, data)
    u = lambda seq, ack, fl, data=b"": frame(UPSTREAM, GATEWAY, up, sport, seq, ack, fl, data)
    if n % 50 == 7:
        return [g(c, 0, SYN), u(0, c + 1, RST | ACK)]
    p = [g(c, 0, SYN), u(s, c + 1, SYN | ACK), g(c + 1, s + 1, ACK), g(c + 1, s + 1, PSH | ACK, request(n))]
    cs, ss = c + 351, s + 1
    p.append(u(ss, cs, ACK))
    segments = rng.randint(1, max_segments)
    body = response(segments)
    for i in range(segments):
        chunk = body[i * 1400:(i + 1) * 1400]
        p.append(u(ss, cs, ACK | (PSH if i == 0 else 0), chunk))
        if n % 40 == 3 and i == 0:
            p.append(u(ss, cs, ACK, chunk))  # retransmission
        ss += 1400
        p.append(g(cs, ss, ACK))
    p += [g(cs, ss, FIN | ACK), u(ss, cs + 1, FIN | ACK), g(cs + 1, ss + 1, ACK)]
    return p

written = 0
t_us = 1_764_000_000 * 1_000_000
with open(out_path, "wb") as f:
    f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
    n = 0
    while written < target:
        group = [flow_packets(n + i) for i in range(64)]
        n += 64
        chunks = []
        index = 0
        while any(group):
            for packets in group:
                if index < len(packets):
                    pkt = packets[index]
                    t_us += 37
                    chunks.append(struct.pack("<IIII", t_us // 1_000_000, t_us % 1_000_000, len(pkt), len(pkt)))
                    chunks.append(pkt)
                    written += 16 + len(pkt)
            index += 1
            if index > 4 * max_segments + 16: break
        f.write(b"".join(chunks))
print(f"{out_path}: {written / 1e6:.0f} MB, {n} flows")

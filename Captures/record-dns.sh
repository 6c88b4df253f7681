#!/usr/bin/env bash
# Records Captures/lo-dns.pcap: a scripted DNS server on 127.0.0.1:53 (UDP and TCP) answers
# each name differently; a Python client asks. Loopback only; processes stopped by PID.
#   sudo bash Captures/record-dns.sh
set -euo pipefail
cd "$(dirname "$0")"
command -v tcpdump >/dev/null || apt-get install -y tcpdump
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat > "$work/dns.py" <<'PY'
import socket, struct, sys, threading, time

def question(packet):
    labels, offset = [], 12
    while packet[offset]:
        n = packet[offset]; labels.append(packet[offset + 1:offset + 1 + n].decode()); offset += 1 + n
    return ".".join(labels), offset + 5

def answer(packet, good_count=[0]):
    name, end = question(packet)
    qid = packet[:2]
    rcode, answers = 0, []
    if name == "good.test":
        good_count[0] += 1
        answers = [bytes([10, 0, 0, good_count[0]])]
    elif name == "tcp.test": answers = [bytes([10, 0, 0, 9])]
    elif name == "missing.test": rcode = 3
    elif name == "broken.test": rcode = 2
    elif name == "refused.test": rcode = 5
    elif name == "silent.test": return None
    flags = 0x8180 | rcode
    head = qid + struct.pack("!HHHHH", flags, 1, len(answers), 0, 0)
    body = packet[12:end]
    for a in answers: body += b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + a
    return head + body

def udp_server():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 53)); s.settimeout(10)
    try:
        for _ in range(7):
            data, peer = s.recvfrom(512)
            reply = answer(data)
            if reply: s.sendto(reply, peer)
    except OSError: pass
    s.close()

def tcp_server():
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1", 53)); s.listen(1); s.settimeout(10)
    try:
        c, _ = s.accept(); c.settimeout(5)
        length = struct.unpack("!H", c.recv(2))[0]; data = c.recv(length)
        reply = answer(data); c.sendall(struct.pack("!H", len(reply)) + reply); c.recv(10); c.close()
    except OSError: pass
    s.close()

if sys.argv[1] == "server":
    threads = [threading.Thread(target=udp_server), threading.Thread(target=tcp_server)]
    for t in threads: t.start()
    for t in threads: t.join()
else:
    def query(name, qid):
        q = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0)
        for label in name.split("."): q += bytes([len(label)]) + label.encode()
        return q + b"\x00" + struct.pack("!HH", 1, 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(0.5)
    for qid, name in enumerate(["good.test", "missing.test", "broken.test", "refused.test", "silent.test", "good.test"], 100):
        s.sendto(query(name, qid), ("127.0.0.1", 53))
        try: s.recvfrom(512)
        except OSError: pass
    t = socket.create_connection(("127.0.0.1", 53), timeout=5)
    q = query("tcp.test", 200); t.sendall(struct.pack("!H", len(q)) + q)
    t.recv(512); t.close()
PY
tcpdump -i lo --immediate-mode -U -c 100 -w lo-dns.pcap 'port 53' 2>"$work/tcpdump.log" &
capture=$!
for _ in $(seq 50); do grep -q "listening on" "$work/tcpdump.log" && break; sleep 0.1; done
python3 "$work/dns.py" server &
server=$!
sleep 0.3
python3 "$work/dns.py" client
sleep 0.3
kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true
kill -INT "$capture"; wait "$capture" || true
ls -l lo-dns.pcap

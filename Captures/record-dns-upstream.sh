#!/usr/bin/env bash
# Records Captures/lo-dns-then-refused.pcap: a client resolves upstream.test through a Python
# DNS server on 127.0.0.1:53 (answer: 127.0.0.2), then connects to 127.0.0.2:18091, where nothing
# listens, twice. Shows the DNS answer that sent the client to a dead upstream, which --export
# writes into the flow's pcap. Loopback only; processes stopped by PID.
#   sudo bash Captures/record-dns-upstream.sh
set -euo pipefail
cd "$(dirname "$0")"
command -v tcpdump >/dev/null || apt-get install -y tcpdump
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat > "$work/client.py" <<'PY'
import socket, struct, threading, time

def server(ready):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 53)); s.settimeout(5); ready.set()
    for _ in range(2):
        packet, peer = s.recvfrom(512)
        end = 12
        while packet[end]: end += 1 + packet[end]
        question = packet[12:end + 5]
        header = packet[:2] + struct.pack("!HHHHH", 0x8180, 1, 1, 0, 0)
        answer = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 30, 4) + bytes([127, 0, 0, 2])
        s.sendto(header + question + answer, peer)
    s.close()

ready = threading.Event()
thread = threading.Thread(target=server, args=(ready,)); thread.start(); ready.wait()
for n in range(2):
    query = struct.pack("!HHHHHH", 0x4200 + n, 0x0100, 1, 0, 0, 0) + b"\x08upstream\x04test\x00" + struct.pack("!HH", 1, 1)
    q = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); q.settimeout(2)
    q.sendto(query, ("127.0.0.1", 53)); q.recvfrom(512); q.close()
    try: socket.create_connection(("127.0.0.2", 18091), timeout=2)
    except OSError: pass
    time.sleep(0.2)
thread.join()
PY
tcpdump -i lo --immediate-mode -U -c 100 -w lo-dns-then-refused.pcap 'udp port 53 or tcp port 18091' 2>"$work/tcpdump.log" &
capture=$!
for _ in $(seq 50); do grep -q "listening on" "$work/tcpdump.log" && break; sleep 0.1; done
python3 "$work/client.py"
sleep 0.3
kill -INT "$capture"; wait "$capture" || true
ls -l lo-dns-then-refused.pcap

#!/usr/bin/env bash
# Records two small captures with nanosecond timestamps:
#   lo-custom-protocol-close.pcap  (loopback): a custom line protocol on 127.0.0.1:18301 where the
#       client sends "HELLO capdiag\r\n" and the server closes first without a word (3 times), and
#       an FTP-like exchange on 127.0.0.1:18302 where the server speaks first and the client
#       closes first after QUIT (2 times). Neither is HTTP or TLS.
#   ns-syn-retransmits.pcap  (a namespace pair of its own, client 10.78.1.2 -> server 10.78.1.1):
#       20 sequential curl GETs to python3 -m http.server on 10.78.1.1:8080; an nft rule in the
#       server namespace drops the first SYN of every connection whose source port is a multiple
#       of 4 (curl binds 40001..40020, so 5 connections), so those connect only after the
#       client's SYN retransmission about 1 s later. Recorded on the client's veth.
# Network rule: only 127.0.0.1 and the script's own namespaces (cdprec-*, 10.78.0.0/16) are
# addressed. Every process started here is stopped by PID (also on failure), every client is
# bounded by a timeout, every tcpdump by a packet count, and the namespaces (with their veth and
# nft table) are deleted on exit.
#   sudo bash Captures/record-precision.sh
set -euo pipefail
cd "$(dirname "$0")"
need=()
command -v tcpdump >/dev/null || need+=(tcpdump)
command -v tshark >/dev/null || need+=(tshark)
command -v nft >/dev/null || need+=(nftables)
command -v ip >/dev/null || need+=(iproute2)
command -v curl >/dev/null || need+=(curl)
if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

work=$(mktemp -d /tmp/capdiag-precision.XXXXXX)
PIDS=()
CAPTURE_PID=
cleanup() {
    set +e
    [ -n "$CAPTURE_PID" ] && { kill -INT "$CAPTURE_PID" 2>/dev/null; wait "$CAPTURE_PID" 2>/dev/null; }
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done
    for ns in cdprec-cl cdprec-srv; do ip netns del "$ns" 2>/dev/null; done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start_capture FILE NETNS IFACE FILTER: tcpdump (nanosecond timestamps, bounded by a packet
# count), in NETNS unless it is "-"; waits until it listens.
start_capture() {
    local file=$1 ns=$2 iface=$3 filter=$4 run=()
    [ "$ns" != - ] && run=(ip netns exec "$ns")
    : >"$work/tcpdump.log"
    "${run[@]}" tcpdump -i "$iface" --immediate-mode -U -s 262144 -c 1000 --time-stamp-precision=nano \
        -w "$file" "$filter" 2>"$work/tcpdump.log" &
    CAPTURE_PID=$!
    for _ in $(seq 50); do grep -q "listening on" "$work/tcpdump.log" && return; sleep 0.1; done
    echo "tcpdump did not start" >&2; cat "$work/tcpdump.log" >&2; exit 1
}
stop_capture() {
    sleep 0.5; kill -INT "$CAPTURE_PID" 2>/dev/null || true; wait "$CAPTURE_PID" 2>/dev/null || true; CAPTURE_PID=
    grep -h "dropped by kernel" "$work/tcpdump.log" | sed 's/^/tcpdump: /' || true
}

# 1. Custom protocols on loopback. The servers accept a fixed number of connections, each socket
#    has a timeout, and the process exits by itself.
python3 - <<'PY' >"$work/servers.log" 2>&1 &
import socket, threading, time

def listener(port):
    srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port)); srv.listen(4); srv.settimeout(30)
    return srv

def read_line(conn, buf):
    for _ in range(100):
        if b"\r\n" in buf: break
        chunk = conn.recv(4096)
        if not chunk: break
        buf += chunk
    line, _, rest = buf.partition(b"\r\n")
    return line, rest

def read_to_eof(conn):
    for _ in range(100):
        if not conn.recv(4096): return

def hello_server():  # reads the greeting, says nothing, closes first (FIN) after 50 ms
    srv = listener(18301)
    for _ in range(3):
        conn, _ = srv.accept(); conn.settimeout(10)
        read_line(conn, b"")
        time.sleep(0.05)
        conn.close()
    srv.close()

def ftp_like_server():  # speaks first; closes only after the client's FIN
    srv = listener(18302)
    for _ in range(2):
        conn, _ = srv.accept(); conn.settimeout(10)
        conn.sendall(b"220 ready\r\n")
        _, rest = read_line(conn, b"")
        conn.sendall(b"331 ok\r\n")
        read_line(conn, rest)
        read_to_eof(conn)
        conn.close()
    srv.close()

threads = [threading.Thread(target=hello_server), threading.Thread(target=ftp_like_server)]
for t in threads: t.start()
for t in threads: t.join()
PY
PIDS+=($!)
for _ in $(seq 50); do
    [ "$(ss -Hltn '( sport = :18301 or sport = :18302 )' | wc -l)" -eq 2 ] && break; sleep 0.1
done

start_capture lo-custom-protocol-close.pcap - lo "tcp port 18301 or tcp port 18302"
timeout 30 python3 - <<'PY'
import socket, time

def read_to_eof(s):
    for _ in range(100):
        if not s.recv(4096): return

def read_line(s):
    buf = b""
    for _ in range(100):
        if b"\r\n" in buf: return buf
        chunk = s.recv(4096)
        if not chunk: return buf
        buf += chunk
    return buf

for _ in range(3):  # a) the client greets, the server closes first, then the client
    s = socket.create_connection(("127.0.0.1", 18301), timeout=5)
    s.sendall(b"HELLO capdiag\r\n")
    read_to_eof(s)
    s.close()
    time.sleep(0.2)
for _ in range(2):  # b) the server greets, the client quits and closes first, then the server
    s = socket.create_connection(("127.0.0.1", 18302), timeout=5)
    assert read_line(s) == b"220 ready\r\n"
    s.sendall(b"USER x\r\n")
    assert read_line(s) == b"331 ok\r\n"
    s.sendall(b"QUIT\r\n")
    s.close()
    time.sleep(0.2)
PY
stop_capture
wait "${PIDS[0]}"  # the servers exit after their last connection
PIDS=()

# 2. SYN retransmissions in a namespace pair: client cdprec-cl (10.78.1.2, veth cdprec-c) and
#    server cdprec-srv (10.78.1.1, veth cdprec-s).
for ns in cdprec-cl cdprec-srv; do ip netns del "$ns" 2>/dev/null || true; ip netns add "$ns"; done
ip link add cdprec-c netns cdprec-cl type veth peer name cdprec-s netns cdprec-srv
ip -n cdprec-cl addr add 10.78.1.2/24 dev cdprec-c
ip -n cdprec-srv addr add 10.78.1.1/24 dev cdprec-s
for ns in cdprec-cl cdprec-srv; do ip -n "$ns" link set lo up; done
ip -n cdprec-cl link set cdprec-c up
ip -n cdprec-srv link set cdprec-s up
# The first SYN from a source port that is a multiple of 4 is dropped and its port remembered;
# the retransmitted SYN (same port) passes.
ip netns exec cdprec-srv nft -f - <<'NFT'
table inet cdprec {
    set dropped_once {
        type inet_service
        flags dynamic, timeout
        timeout 60s
    }
    chain input {
        type filter hook input priority 0;
        tcp dport 8080 tcp flags & (syn | ack) == syn tcp sport @dropped_once accept
        tcp dport 8080 tcp flags & (syn | ack) == syn tcp sport & 3 == 0 add @dropped_once { tcp sport } drop
    }
}
NFT
mkdir "$work/htdocs"
printf 'hello from capdiag\n' > "$work/htdocs/hello.txt"
ip netns exec cdprec-srv timeout 120 python3 -m http.server 8080 --bind 10.78.1.1 --directory "$work/htdocs" \
    >"$work/http-server.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 50); do ip netns exec cdprec-srv ss -Hltn 'sport = :8080' | grep -q . && break; sleep 0.1; done

start_capture ns-syn-retransmits.pcap cdprec-cl cdprec-c "tcp port 8080"
statuses=()
for i in $(seq 20); do
    statuses+=("$(ip netns exec cdprec-cl curl -s -o /dev/null -w '%{http_code}' --max-time 5 \
        --local-port $((40000 + i)) "http://10.78.1.1:8080/hello.txt?n=$i" || true)")
    sleep 0.1
done
stop_capture
echo "curl statuses: ${statuses[*]}"

# Checks: every GET answered 200, and the five chosen connections show a retransmitted SYN.
ok=0; for s in "${statuses[@]}"; do [ "$s" = 200 ] && ok=$((ok + 1)); done
retrans=$(tshark -r ns-syn-retransmits.pcap -Y "tcp.analysis.retransmission && tcp.flags.syn==1 && tcp.flags.ack==0" \
    -T fields -e tcp.srcport 2>/dev/null | sort -un | paste -sd ' ')
answers=$(tshark -r ns-syn-retransmits.pcap -Y "http.response.code == 200" 2>/dev/null | wc -l)
echo "ns-syn-retransmits.pcap: retransmitted SYN from ports: $retrans; HTTP 200 responses: $answers"
if [ "$ok" -ne 20 ] || [ "$answers" -ne 20 ] || [ "$retrans" != "40004 40008 40012 40016 40020" ]; then
    echo "ns-syn-retransmits.pcap does not show what it should" >&2; exit 1
fi
ls -l lo-custom-protocol-close.pcap ns-syn-retransmits.pcap

#!/usr/bin/env bash
# capdiag's topology lab: gateways on the same host as their upstream. One namespace (cdtopo-gw)
# holds nginx, HAProxy and the scripted upstream (upstream.py), all on 127.0.0.1 of its own lo;
# a client namespace (cdtopo-client, 10.79.1.2) reaches the gateways over a veth (10.79.1.1 on
# the gateway's eth0). One-host runs put the client in cdtopo-gw too (everything 127.0.0.1) and
# record lo (NAME.lo.pcap); client-namespace runs record -i any in cdtopo-gw (NAME.any.pcap: the
# client leg on eth0, the upstream leg on lo). Each run writes a label (NAME.json, or
# NAME.any.json for the client-namespace run of a scenario that also has a one-host run) with
# what the client saw, what the gateway and the upstream logged, and, for every request that did
# not get 200, the upstream 4-tuple of the attempt that failed it; then checks with tshark that
# each labelled 4-tuple is in the capture with the failure on it.
#
#   sudo bash Captures/lab/topology/lab-topology.sh [SCENARIO[.lo|.any] ...]   (all when none is named;
#   SCENARIO records all its runs, SCENARIO.lo or SCENARIO.any only that one)
#
# Network rule: only the namespaces made here (cdtopo-*) are addressed: 127.0.0.1 inside
# cdtopo-gw and 10.79.1.0/24 between the two. Every client loop is bounded in count and time
# (curl --max-time 10); the upstream exits by itself; everything started here is stopped by PID,
# and the namespaces (with the veth and the nft table) are deleted on exit, also on failure.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${CAPDIAG_TOPO_OUT:-$here}
# Selection: NAME runs every run of scenario NAME (the one-host and the client-namespace run);
# NAME.lo or NAME.any runs that one alone (the other run's capture and label are left as they are).
scenarios=(onehost-refused-nginx onehost-refused-haproxy onehost-connect-timeout-nginx onehost-connect-timeout-haproxy
           onehost-tls onehost-reset onehost-keepalive-race onehost-slow concurrent-resets-haproxy concurrent-resets-nginx
           retry-second-upstream proxy-chain)
selected=("$@")
for sel in "${selected[@]}"; do
    base=${sel%.lo}; base=${base%.any}
    [[ " ${scenarios[*]} " == *" $base "* ]] \
        || { echo "topo: unknown scenario '$sel' (one of: ${scenarios[*]}, each optionally .lo or .any)" >&2; exit 2; }
done
run() {  # run NAME RUN: whether run RUN (lo or any) of scenario NAME is selected
    [ ${#selected[@]} -eq 0 ] || [[ " ${selected[*]} " == *" $1 "* ]] || [[ " ${selected[*]} " == *" $1.$2 "* ]]
}
need=()
command -v nginx >/dev/null || need+=(nginx-light)
command -v haproxy >/dev/null || need+=(haproxy)
command -v tcpdump >/dev/null || need+=(tcpdump)
command -v nft >/dev/null || need+=(nftables)
command -v ip >/dev/null || need+=(iproute2)
command -v curl >/dev/null || need+=(curl)
command -v openssl >/dev/null || need+=(openssl)
command -v tshark >/dev/null || need+=(tshark)   # the labels' capture facts and the check
if [ ${#need[@]} -gt 0 ]; then
    # Keep Debian from starting the packaged nginx and HAProxy services on the host.
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
    rm -f /usr/sbin/policy-rc.d
fi

work=$(mktemp -d /tmp/capdiag-topo.XXXXXX)
pids=()
cleanup() {
    set +e
    for f in nginx.pid nginx-back.pid haproxy.pid; do
        [ -f "$work/$f" ] && kill "$(cat "$work/$f")" 2>/dev/null
    done
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done
    sleep 0.5
    for ns in cdtopo-client cdtopo-gw; do ip netns del "$ns" 2>/dev/null; done
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

# Topology: client 10.79.1.2 [eth0] — [eth0] 10.79.1.1 cdtopo-gw: nginx, nginx (back), HAProxy,
#           upstream.py, all on 127.0.0.1 (lo)
for ns in cdtopo-client cdtopo-gw; do ip netns del "$ns" 2>/dev/null || true; ip netns add "$ns"; done
ip -n cdtopo-gw link add eth0 type veth peer name eth0 netns cdtopo-client
ip -n cdtopo-gw addr add 10.79.1.1/24 dev eth0
ip -n cdtopo-client addr add 10.79.1.2/24 dev eth0
for ns in cdtopo-client cdtopo-gw; do ip -n "$ns" link set lo up; ip -n "$ns" link set eth0 up; done

# SYNs to 127.0.0.1:3002 vanish (connect timeout). For the keep-alive race, half of the
# upstream's FINs on 3005 are lost once, so the FIN comes ~200 ms late (the retransmission after
# the RTO), the window in which the upstream has closed and the gateway still reuses the
# connection (as lab.sh does on 9012).
ip netns exec cdtopo-gw nft -f - <<'NFT'
table inet cdtopo {
    chain input {
        type filter hook input priority 0;
        iif "lo" tcp dport 3002 tcp flags & (syn | ack) == syn drop
    }
    chain output {
        type filter hook output priority 0;
        tcp sport 3005 tcp flags & fin == fin numgen random mod 2 == 0 drop
    }
}
NFT

# The upstream's certificate on 3003 (self-signed, 127.0.0.1), and another CA that the gateway
# trusts instead (verify fails).
openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
    -keyout "$work/key.pem" -out "$work/cert.pem" -days 2 2>/dev/null
openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=other-ca -keyout "$work/other.key" -out "$work/other-ca.pem" -days 2 2>/dev/null

mkdir -p "$work/logs"
: > "$work/upstream.log"
log_format="log_format topo '\$remote_addr:\$remote_port \$status request_id=\$request_id forwarded_id=\"\$http_x_request_id\" '
                     'client_seq=\"\$http_x_client_seq\" upstream_addr=\"\$upstream_addr\" upstream_status=\"\$upstream_status\" '
                     'upstream_connect_time=\"\$upstream_connect_time\" upstream_header_time=\"\$upstream_header_time\" '
                     'request_time=\$request_time request=\"\$request\"';"
cat > "$work/nginx.conf" <<NGINX
daemon on;
pid $work/nginx.pid;
error_log $work/logs/nginx.error.log info;
worker_processes 1;
events { worker_connections 512; }
http {
    access_log off;
    $log_format
    proxy_connect_timeout 2s;
    proxy_read_timeout 5s;
    proxy_set_header X-Request-Id \$request_id;
    upstream ka_lo { server 127.0.0.1:3005; keepalive 8; }
    upstream ka_any { server 127.0.0.1:3005; keepalive 8; }
    # max_fails=0: 3008 is never marked down, so round robin keeps sending requests to it (every
    # other one, in practice), each passed on to 3009 (proxy_next_upstream error, the default).
    upstream retry { server 127.0.0.1:3008 max_fails=0; server 127.0.0.1:3009 max_fails=0; }
NGINX
server_block() {  # server_block STEM LISTEN PROXY_PASS [EXTRA]
    cat >> "$work/nginx.conf" <<NGINX
    server {
        listen $2;
        error_log $work/logs/$1.error.log info;
        access_log $work/logs/$1.access.log topo;
        location / { proxy_pass $3; ${4:-} }
    }
NGINX
}
keepalive='proxy_http_version 1.1; proxy_set_header Connection ""; proxy_set_header X-Request-Id $request_id;'
server_block onehost-refused-nginx.lo 127.0.0.1:8080 http://127.0.0.1:3001
server_block onehost-refused-nginx.any 10.79.1.1:8080 http://127.0.0.1:3001
server_block onehost-connect-timeout-nginx.lo 127.0.0.1:8082 http://127.0.0.1:3002 "proxy_connect_timeout 1s;"
server_block onehost-connect-timeout-nginx.any 10.79.1.1:8082 http://127.0.0.1:3002 "proxy_connect_timeout 1s;"
tls_verify="proxy_ssl_verify on; proxy_ssl_protocols TLSv1.3; proxy_ssl_trusted_certificate $work/other-ca.pem;"
server_block onehost-tls.lo 127.0.0.1:8084 https://127.0.0.1:3003 "$tls_verify"
server_block onehost-tls.any 10.79.1.1:8084 https://127.0.0.1:3003 "$tls_verify"
server_block onehost-reset.lo 127.0.0.1:8085 http://127.0.0.1:3004
server_block onehost-reset.any 10.79.1.1:8085 http://127.0.0.1:3004
server_block onehost-keepalive-race.lo 127.0.0.1:8086 http://ka_lo "$keepalive"
server_block onehost-keepalive-race.any 10.79.1.1:8086 http://ka_any "$keepalive"
server_block onehost-slow.lo 127.0.0.1:8087 http://127.0.0.1:3006 "proxy_read_timeout 1s;"
server_block onehost-slow.any 10.79.1.1:8087 http://127.0.0.1:3006 "proxy_read_timeout 1s;"
server_block concurrent-resets-nginx.any 10.79.1.1:8089 http://127.0.0.1:3011
server_block proxy-chain.any 10.79.1.1:8090 http://127.0.0.1:8091
server_block retry-second-upstream.lo 127.0.0.1:8092 http://retry
echo "}" >> "$work/nginx.conf"

# The back proxy of proxy-chain: an nginx of its own (own master, own config) on 127.0.0.1:8091,
# passing the front's X-Request-Id on to the upstream.
cat > "$work/nginx-back.conf" <<NGINX
daemon on;
pid $work/nginx-back.pid;
error_log $work/logs/nginx-back.error.log info;
worker_processes 1;
events { worker_connections 256; }
http {
    access_log off;
    $log_format
    server {
        listen 127.0.0.1:8091;
        error_log $work/logs/back.error.log info;
        access_log $work/logs/back.access.log topo;
        location / { proxy_pass http://127.0.0.1:3010; proxy_set_header X-Request-Id \$http_x_request_id; }
    }
}
NGINX

# HAProxy: its access line carries the client (%ci:%cp), its own address toward the server
# (%bi:%bp), the server (%si:%sp), the status, the termination state (%tsc), the retries (%rc),
# its unique id (sent upstream as X-Request-Id) and the client's X-Client-Seq (%hr).
cat > "$work/haproxy.cfg" <<HAPROXY
global
    log stdout format raw local0
defaults
    mode http
    log global
    timeout connect 2s
    timeout client 10s
    timeout server 5s
    unique-id-format "%[uuid()]"
    unique-id-header X-Request-Id
    log-format "%ci:%cp %ft %b/%s %TR/%Tw/%Tc/%Tr/%Ta %ST %B %tsc %ac/%fc/%bc/%sc/%rc %bi:%bp %si:%sp id=%ID seq=%hr %{+Q}r"
HAPROXY
haproxy_pair() {  # haproxy_pair STEM BIND UPSTREAM_PORT [EXTRA]
    cat >> "$work/haproxy.cfg" <<HAPROXY
frontend fe-$1
    bind $2
    capture request header X-Client-Seq len 16
    default_backend be-$1
backend be-$1
    ${4:-}
    server s1 127.0.0.1:$3
HAPROXY
}
haproxy_pair onehost-refused-haproxy.lo 127.0.0.1:8081 3001
haproxy_pair onehost-refused-haproxy.any 10.79.1.1:8081 3001
haproxy_pair onehost-connect-timeout-haproxy.lo 127.0.0.1:8083 3002 "timeout connect 1s"
haproxy_pair onehost-connect-timeout-haproxy.any 10.79.1.1:8083 3002 "timeout connect 1s"
haproxy_pair concurrent-resets-haproxy.any 10.79.1.1:8088 3007

ip netns exec cdtopo-gw python3 "$here/upstream.py" "$work" 600 "$work/upstream.log" &
pids+=($!)
ip netns exec cdtopo-gw nginx -c "$work/nginx.conf" -p "$work"
ip netns exec cdtopo-gw nginx -c "$work/nginx-back.conf" -p "$work"
ip netns exec cdtopo-gw haproxy -db -f "$work/haproxy.cfg" > "$work/logs/haproxy.log" 2>&1 &
echo $! > "$work/haproxy.pid"
for _ in $(seq 50); do
    listening=$(ip netns exec cdtopo-gw ss -Htln | awk '{print $4}')
    grep -q '127.0.0.1:3011$' <<<"$listening" && grep -q '127.0.0.1:8081$' <<<"$listening" && break
    sleep 0.1
done

# The label writer and capture check (Python, run on the host: it reads files only).
cat > "$work/topo_label.py" <<'PY'
import collections, json, re, subprocess, sys
a = dict(x.split("=", 1) for x in sys.argv[1:])
stem, name, cause, gw, work = a["stem"], a["name"], a["cause"], a["gw"], a["work"]
logs, out, listen, parallel = f"{work}/logs", a["out"], a["listen"], a["parallel"] == "1"
up_ports = [int(p) for p in a["up"].split(",")]
captures = json.loads(a["captures"])
main_pcap = f"{out}/{captures['both_legs']}"

def lines(path):
    try:
        with open(path) as f:
            return [l.rstrip("\n") for l in f if l.strip()]
    except FileNotFoundError:
        return []

# What the client saw: "SEQ STATUS LOCAL_IP:LOCAL_PORT CURL_EXIT START_EPOCH" per request.
clients = []
for i in range(1, int(a["count"]) + 1):
    seq, status, local, rc, start = (lines(f"{work}/client.{i}") or [f"{i} 000 - 99 0"])[0].split()
    clients.append({"client_seq": int(seq), "status": status, "client": local, "curl_exit": int(rc), "start": float(start)})

NGX = re.compile(r'^(?P<remote>\S+) (?P<status>\d+) request_id=(?P<rid>\S+) forwarded_id="(?P<fid>[^"]*)" '
                 r'client_seq="(?P<seq>[^"]*)" upstream_addr="(?P<ua>[^"]*)" upstream_status="(?P<us>[^"]*)"')
HAP = re.compile(r'^(?P<remote>\S+) (?P<fe>\S+) (?P<bs>\S+) (?P<timers>\S+) (?P<status>\d+) (?P<bytes>\d+) (?P<tsc>\S+) '
                 r'(?P<conns>\S+) (?P<local>\S+) (?P<server>\S+) id=(?P<rid>\S*) seq=\{?(?P<seq>[^} ]*)\}? ')

def nginx_errors(path):
    errors = [re.sub(r"^\S+ \S+ \[(\w+)\] \d+#\d+: (\*\d+ )?", r"[\1] ", l) for l in lines(path)]
    return [l for l in errors if "closed keepalive connection" not in l]

def by_seq(entries):
    return {int(e["seq"]): e for e in entries if e["seq"].isdigit()}

if gw == "haproxy":
    access = [l for l in lines(f"{logs}/haproxy.log") if l.split(" ")[1:2] == [f"fe-{stem}"]]
    errors = []
    parsed = by_seq([m.groupdict() for m in map(HAP.match, access) if m])
    version = "HAProxy/" + subprocess.run(["haproxy", "-v"], capture_output=True, text=True).stdout.split()[2]
else:
    access = lines(f"{logs}/{stem}.access.log")
    errors = nginx_errors(f"{logs}/{stem}.error.log")
    parsed = by_seq([m.groupdict() for m in map(NGX.match, access) if m])
    version = subprocess.run(["nginx", "-v"], capture_output=True, text=True).stderr.strip().replace("nginx version: ", "")
uplog = [json.loads(l) for l in lines(a["uplog"])]
behind_ports = [3010] if gw == "chain" else []
uplog_here = [e for e in uplog if e["port"] in up_ports + behind_ports]

# ---- the capture, through tshark: TCP flows toward a port, packets in order ----
SYN, RST, FIN, ACK = 0x02, 0x04, 0x01, 0x10
def flows(pcap, port):
    r = subprocess.run(["tshark", "-r", pcap, "-n", "-Y", f"tcp.port=={port}", "-T", "fields", "-E", "separator=/t",
                        "-e", "frame.number", "-e", "frame.time_epoch", "-e", "ip.src", "-e", "tcp.srcport",
                        "-e", "ip.dst", "-e", "tcp.dstport", "-e", "tcp.flags", "-e", "tcp.seq_raw",
                        "-e", "tcp.payload", "-e", "tcp.stream"], capture_output=True, text=True, check=True)
    result, seen = collections.OrderedDict(), {}
    for row in r.stdout.splitlines():
        f = row.split("\t")
        if len(f) < 10:
            continue
        num, t, src, sport, dst, dport, flags, seqraw, payload, stream = f[:10]
        payload = bytes.fromhex(payload.replace(":", ""))
        key = (src, sport, dst, dport, seqraw, flags, len(payload))
        if key in seen and float(t) - seen[key] < 0.001:
            continue  # the same packet seen twice (-i any), not a retransmission
        seen[key] = float(t)
        side = "server" if int(sport) == port else "peer"
        peer = f"{dst}:{dport}" if side == "server" else f"{src}:{sport}"
        fl = result.setdefault(stream, {"peer": peer, "server": f"{src}:{sport}" if side == "server" else f"{dst}:{dport}",
                                        "first": float(t), "pkts": []})
        fl["pkts"].append({"frame": int(num), "t": float(t), "from": side, "flags": int(flags, 16), "data": payload})
    return list(result.values())

def seq_of(data):
    m = re.search(rb"X-Client-Seq: (\d+)\r\n", data)
    return int(m.group(1)) if m else None

def carries(fl, seq):
    return any(seq_of(p["data"]) == seq for p in fl["pkts"] if p["from"] == "peer")

def request_index(fl, seq):
    for i, p in enumerate(fl["pkts"]):
        if p["from"] == "peer" and p["data"] and (seq is None or seq_of(p["data"]) == seq):
            return i
    return None

def evidence(fl, kind, seq):
    """(ok, text): the failure KIND on flow FL (peer = the gateway, server = the upstream)."""
    pk = fl["pkts"]
    syn = sum(1 for p in pk if p["from"] == "peer" and p["flags"] & SYN and not p["flags"] & ACK)
    synack = any(p["from"] == "server" and p["flags"] & SYN and p["flags"] & ACK for p in pk)
    if kind == "connection_refused":
        rst = next((p for p in pk if p["from"] == "server" and p["flags"] & RST), None)
        return bool(syn and not synack and rst), f"SYN x{syn}, no SYN/ACK, RST from the upstream (frame {rst and rst['frame']})"
    if kind == "connection_timeout":
        span = pk[-1]["t"] - pk[0]["t"] if pk else 0
        return bool(syn and not synack and not any(p["flags"] & RST for p in pk)), \
            f"SYN x{syn} over {span:.2f} s, no SYN/ACK, no RST"
    if kind == "tls_certificate_error":
        hello = next((p for p in pk if p["from"] == "peer" and p["data"][:1] == b"\x16"), None)
        flight = any(p["from"] == "server" and p["data"][:1] == b"\x16" for p in pk)
        close = next((p for p in pk if p["from"] == "peer" and p["flags"] & (FIN | RST)), None)
        sent = sum(len(p["data"]) for p in pk if p["from"] == "peer")
        how = close and ("RST" if close["flags"] & RST else "FIN")
        return bool(hello and flight and close), \
            f"ClientHello, the upstream's handshake flight, then the gateway closed ({how}, frame {close and close['frame']}); gateway sent {sent} bytes in all"
    i = request_index(fl, seq)
    if i is None:
        return False, f"no request{'' if seq is None else f' with X-Client-Seq {seq}'} on this flow"
    after = pk[i + 1:]
    req = pk[i]
    if kind in ("upstream_reset_after_request", "keepalive_race", "reset"):
        rst = next((p for p in after if p["from"] == "server" and p["flags"] & RST), None)
        answered = any(p["from"] == "server" and p["data"] for p in after if not rst or p["t"] <= rst["t"])
        reused = sum(1 for p in pk[:i] if p["from"] == "peer" and p["data"])
        return bool(rst and not answered), \
            f"request (frame {req['frame']}{', after %d earlier request(s) on this connection' % reused if reused else ''}), " \
            f"no answer, RST from the upstream {((rst['t'] - req['t']) * 1000) if rst else 0:.1f} ms later (frame {rst and rst['frame']})"
    if kind == "response_timeout":
        fin = next((p for p in after if p["from"] == "peer" and p["flags"] & (FIN | RST)), None)
        answered = any(p["from"] == "server" and p["data"] for p in after if not fin or p["t"] <= fin["t"])
        return bool(fin and not answered), f"request (frame {req['frame']}), no answer, gateway FIN {(fin['t'] - req['t']) if fin else 0:.2f} s later (frame {fin and fin['frame']})"
    answer = next((p for p in after if p["from"] == "server" and p["data"]), None)
    line = answer["data"].split(b"\r\n", 1)[0].decode("latin-1") if answer else ""
    if kind == "upstream_is_gateway":
        server = re.search(rb"\r\nServer: ([^\r]*)", answer["data"]) if answer else None
        return line.startswith("HTTP/1.1 502"), f"request (frame {req['frame']}), answered \"{line}\" (Server: {server and server.group(1).decode()}, frame {answer and answer['frame']})"
    if kind.startswith("status "):
        return line.split(" ")[1:2] == [kind.split()[1]], f"answered \"{line}\" (frame {answer and answer['frame']})"
    return False, f"unknown check {kind}"

up_flows = {p: flows(main_pcap, p) for p in up_ports}
all_up_flows = sorted((f for fl in up_flows.values() for f in fl), key=lambda f: f["first"])
starts = sorted((c["start"], c["client_seq"]) for c in clients)

def attempts_in_capture(seq):
    carrying = [f for f in all_up_flows if carries(f, seq)]
    if carrying or parallel:
        return carrying, "the flows carrying X-Client-Seq"
    k = [s for _, s in starts].index(seq)
    lo, hi = starts[k][0], starts[k + 1][0] if k + 1 < len(starts) else float("inf")
    return [f for f in all_up_flows if lo <= f["first"] < hi], "the flows opened while the request was pending (sequential requests)"

def addr_port(s):
    return s if re.match(r"^[\d.]+:\d+$", s or "") and not s.endswith(":0") else None

client_requests, failed, checks = [], [], []
back = by_seq([m.groupdict() for m in map(NGX.match, lines(f"{logs}/back.access.log")) if m]) if gw == "chain" else {}
back_by_fid = {e["fid"]: e for e in back.values()}
for c in clients:
    seq = c["client_seq"]
    entry = parsed.get(seq, {})
    rid = entry.get("rid") or None
    req = {"client_seq": seq, "client": c["client"], "status": c["status"], "curl_exit": c["curl_exit"]}
    if rid and rid != "-":
        req["request_id"] = rid
    if gw == "haproxy":
        req.update(gateway_log_client=entry.get("remote"), upstream=addr_port(entry.get("server")),
                   upstream_local=addr_port(entry.get("local")), termination_state=entry.get("tsc"),
                   retries=entry.get("conns", "").split("/")[-1] or None)
    else:
        req.update(gateway_log_client=entry.get("remote"), upstream_addr=entry.get("ua"), upstream_status=entry.get("us"))
    # Upstream attempts, from the upstream's own log (the X-Request-Id it received) and the capture.
    logged = [e for e in uplog_here if e["event"] == "request" and rid and e.get("x_request_id") == rid and e["port"] in up_ports]
    cap, how = attempts_in_capture(seq)
    req["upstream_attempts"] = [{"upstream": f["server"], "upstream_local": f["peer"]} for f in cap]
    if logged:
        req["upstream_log"] = [{k: e.get(k) for k in ("port", "peer", "action", "x_request_id", "x_client_seq")} for e in logged]
    client_requests.append(req)
    if c["status"] == "200" or cause == "retried_ok":
        continue
    # The failed attempt: its upstream and the gateway's local address toward it.
    upstream = local = None
    sources = {}
    if gw == "haproxy":
        upstream, local = req["upstream"], req["upstream_local"]
        sources = {"upstream": "haproxy log %si:%sp", "upstream_local": "haproxy log %bi:%bp"}
        if logged and local:
            sources["upstream_log_agrees"] = logged[-1]["peer"] == local
    elif gw == "chain":
        upstream = (entry.get("ua") or "").split(", ")[-1] or None
        sources["upstream"] = "front nginx $upstream_addr"
        b = back_by_fid.get(rid)
        if b:
            local = b["remote"]
            sources["upstream_local"] = "back nginx access log $remote_addr:$remote_port (matched on the front's X-Request-Id)"
            req["back_proxy"] = {"request_id": b["rid"], "status": b["status"], "upstream_addr": b["ua"], "upstream_status": b["us"]}
            behind = [e for e in uplog if e["port"] == 3010 and e["event"] == "request" and e.get("x_request_id") == rid]
            if behind:
                req["back_proxy"]["upstream_local"] = behind[-1]["peer"]
    else:
        upstream = (entry.get("ua") or "").split(", ")[-1] or None
        sources["upstream"] = "nginx $upstream_addr"
        if logged:
            local = logged[-1]["peer"]
            sources["upstream_local"] = "upstream log: peer of the request carrying this X-Request-Id"
        elif cause == "tls_certificate_error":
            k = [s for _, s in starts].index(seq)
            lo, hi = starts[k][0], starts[k + 1][0] if k + 1 < len(starts) else float("inf")
            tls = [e for e in uplog_here if e["event"] == "tls" and lo <= e["t"] < hi]
            if tls:
                local = tls[-1]["peer"]
                sources["upstream_local"] = "upstream log: peer of the TLS handshake made while the request was pending"
                req["upstream_tls"] = tls[-1]["result"]
    if not local and cap:
        # nginx does not log its local port: the capture's last attempt for this request.
        failing = [f for f in cap if evidence(f, cause, seq if carries(f, seq) else None)[0]]
        f = (failing or cap)[-1]
        local, upstream = f["peer"], upstream or f["server"]
        sources["upstream_local"] = f"capture: {how}"
        idle = [e for e in uplog_here if e["event"] == "idle" and e["peer"] == local]
        if idle:
            sources["upstream_log_idle_close"] = f"the upstream logged closing {local} after {idle[-1]['idle_seconds']} s idle"
    failed.append({"client_seq": seq, "client": c["client"], "status": c["status"], "upstream": upstream,
                   "upstream_local": local, "request_id": req.get("request_id"), "sources": sources,
                   "upstream_attempts": req["upstream_attempts"], **({"back_proxy": req["back_proxy"]} if "back_proxy" in req else {})})

label = {
    "scenario": name,
    "expected_cause": cause,
    "gateway": version,
    "gateway_listen": listen,
    "topology": a["topology"],
    "client": {"requests": len(clients), "statuses": dict(collections.Counter(c["status"] for c in clients))},
    "client_requests": client_requests,
    "failed_requests": failed,
    "gateway_error_log": errors,
    "gateway_access_log": access,
    "upstream_log": [{k: v for k, v in e.items() if k != "t"} for e in uplog_here],
    "captures": captures,
    "command": f"sudo bash Captures/lab/topology/lab-topology.sh {name}",
}
if gw == "chain":
    label["back_gateway"] = version
    label["back_gateway_listen"] = "127.0.0.1:8091"
    label["back_gateway_error_log"] = nginx_errors(f"{logs}/back.error.log")
    label["back_gateway_access_log"] = lines(f"{logs}/back.access.log")
with open(a["label"], "w") as f:
    json.dump(label, f, indent=2, sort_keys=True)
    f.write("\n")
print(f"topo: {stem}: client statuses {label['client']['statuses']}, {len(errors)} error-log lines, "
      f"{len(failed)} failed requests labelled")

# ---- the check: every labelled 4-tuple is in the capture, with the failure on it ----
listen_port = int(listen.rsplit(":", 1)[1])
client_flows = flows(main_pcap, listen_port)
bad = 0
def check(what, ok, text):
    global bad
    bad += not ok
    print(f"topo: check {stem} {what}: {'ok' if ok else 'MISMATCH'}: {text}")
for fr in failed:
    seq = fr["client_seq"]
    cf = [f for f in client_flows if f["peer"] == fr["client"]]
    if cf:
        check(f"seq {seq} client leg {fr['client']} -> {listen}", *evidence(cf[-1], f"status {fr['status']}", seq))
    else:
        check(f"seq {seq} client leg {fr['client']} -> {listen}", False, "no such flow in the capture")
    fl = [f for f in all_up_flows if f["peer"] == fr["upstream_local"] and f["server"] == fr["upstream"]]
    what = f"seq {seq} upstream {fr['upstream_local']} -> {fr['upstream']}"
    if not fl:
        check(what, False, "no such flow in the capture")
        continue
    # The request reached the upstream only if the gateway sent it there in clear.
    check(what, *evidence(fl[-1], cause, seq if carries(fl[-1], seq) else None))
for role, other in captures.items():
    if role == "both_legs":
        continue
    other_flows = [f for p in up_ports for f in flows(f"{out}/{other}", p)]
    for fr in failed:
        fl = [f for f in other_flows if f["peer"] == fr["upstream_local"] and f["server"] == fr["upstream"]]
        what = f"seq {fr['client_seq']} upstream {fr['upstream_local']} -> {fr['upstream']} in {other}"
        check(what, *(evidence(fl[-1], cause, fr["client_seq"] if carries(fl[-1], fr["client_seq"]) else None)
                      if fl else (False, "no such flow in the capture")))
for req in (client_requests if cause == "retried_ok" else []):
    for e in req.get("upstream_log", []):
        fl = [f for f in all_up_flows if f["peer"] == e["peer"] and f["server"].endswith(f":{e['port']}")]
        kind = "reset" if e["action"] == "reset" else "status 200"
        what = f"seq {req['client_seq']} attempt {e['peer']} -> 127.0.0.1:{e['port']} ({e['action']})"
        check(what, *(evidence(fl[-1], kind, req["client_seq"]) if fl else (False, "no such flow in the capture")))
    cf = [f for f in client_flows if f["peer"] == req["client"]]
    check(f"seq {req['client_seq']} client leg {req['client']}", *(evidence(cf[-1], f"status {req['status']}", req["client_seq"]) if cf else (False, "no such flow")))
if bad:
    open(f"{work}/check-failed", "a").write(f"{stem}\n")
PY

# scenario KEY=VALUE ...: records one run and writes its label.
#   name     the scenario                   run     lo (client in cdtopo-gw, -i lo) or any
#   label    the label's file stem           gw      nginx, haproxy or chain
#   port     the gateway's port              up      the upstream port(s), comma-separated
#   count    requests                        interval seconds between sequential requests
#   method   GET or POST                     parallel 1: all requests at once
#   filter   the capture filter (default: the gateway's and the upstream ports)
#   upstream_only  also record lo with "tcp port N" alone (NAME.upstreamonly.pcap)
drops=0
scenario() {
    local name='' run=lo label='' cause='' gw=nginx port='' up='' count=1 interval=0.2 method=GET parallel=0
    local filter='' upstream_only='' topology=''
    local "$@"
    local stem="$name.$run" ns=cdtopo-gw iface=lo host=127.0.0.1
    if [ "$run" = any ]; then ns=cdtopo-client; iface=any; host=10.79.1.1; fi
    label=${label:-$name}
    if [ -z "$filter" ]; then
        filter="tcp port $port"
        for p in ${up//,/ }; do filter="$filter or tcp port $p"; done
    fi
    echo "topo: $stem"
    rm -f "$work"/client.* "$work"/tcpdump.*.log
    local caps=("$iface|$stem.pcap|$filter") captures="{\"both_legs\": \"$stem.pcap\"" k=0 spec tcpdumps=() files=()
    if [ -n "$upstream_only" ]; then
        caps+=("lo|$name.upstreamonly.pcap|tcp port $upstream_only")
        captures="$captures, \"upstream_leg\": \"$name.upstreamonly.pcap\""
    fi
    captures="$captures}"
    for spec in "${caps[@]}"; do
        IFS='|' read -r cif cfile cfilter <<<"$spec"
        k=$((k + 1))
        ip netns exec cdtopo-gw tcpdump -i "$cif" --immediate-mode -U -B 32768 -s 262144 -c 20000 \
            -w "$out/$cfile" "$cfilter" 2>"$work/tcpdump.$k.log" &
        tcpdumps+=($!); pids+=($!); files+=("$out/$cfile")
    done
    for _ in $(seq 50); do
        [ "$(grep -l "listening on" "$work"/tcpdump.*.log 2>/dev/null | wc -l)" -eq ${#caps[@]} ] && break
        sleep 0.1
    done
    local upstart; upstart=$(wc -l < "$work/upstream.log")
    client_one() {  # client_one SEQ: one bounded request with its own X-Client-Seq
        local i=$1 start r rc args
        start=$(date +%s.%N)
        args=(-s -o /dev/null --noproxy '*' --max-time 10 -H "X-Client-Seq: $i" -w '%{http_code} %{local_ip}:%{local_port}')
        [ "$method" = POST ] && args+=(-X POST -d "n=$i")
        r=$(ip netns exec "$ns" curl "${args[@]}" "http://$host:$port/$name/$i") && rc=0 || rc=$?
        [ -n "$r" ] || r="000 -"
        echo "$i $r $rc $start" > "$work/client.$i"
    }
    if [ "$parallel" = 1 ]; then
        local curls=()
        for i in $(seq "$count"); do client_one "$i" & curls+=($!); pids+=($!); done
        wait "${curls[@]}" 2>/dev/null || true
    else
        for i in $(seq "$count"); do client_one "$i"; sleep "$interval"; done
    fi
    sleep 1.5
    kill -INT "${tcpdumps[@]}" 2>/dev/null || true
    wait "${tcpdumps[@]}" 2>/dev/null || true
    chown --reference="$out" "${files[@]}"   # tcpdump wrote them as its own user
    local log n
    for log in "$work"/tcpdump.*.log; do
        n=$(sed -n 's/^\([0-9]*\) packets* dropped by kernel.*/\1/p' "$log")
        echo "topo: $stem: tcpdump: $(grep -h "captured" "$log"), ${n:-?} dropped by kernel"
        [ "${n:-1}" = 0 ] || drops=1
    done
    tail -n +"$((upstart + 1))" "$work/upstream.log" > "$work/upstream.slice"
    python3 "$work/topo_label.py" stem="$stem" name="$name" cause="$cause" gw="$gw" work="$work" out="$out" \
        listen="$host:$port" up="$up" count="$count" parallel="$parallel" captures="$captures" \
        uplog="$work/upstream.slice" label="$out/$label.json" topology="$topology"
}

onehost="client, gateway and upstream in one namespace, all on 127.0.0.1 (lo)"
viaveth="client in cdtopo-client 10.79.1.2 over a veth to the gateway's 10.79.1.1 (eth0); gateway and upstream on 127.0.0.1 (lo) in cdtopo-gw"
run onehost-refused-nginx lo && scenario name=onehost-refused-nginx run=lo port=8080 up=3001 count=3 cause=connection_refused \
    topology="$onehost: nginx 127.0.0.1:8080 -> 127.0.0.1:3001 (nothing listens)"
run onehost-refused-nginx any && scenario name=onehost-refused-nginx run=any label=onehost-refused-nginx.any port=8080 up=3001 \
    count=3 cause=connection_refused topology="$viaveth: nginx 10.79.1.1:8080 -> 127.0.0.1:3001 (nothing listens)"
run onehost-refused-haproxy lo && scenario name=onehost-refused-haproxy run=lo gw=haproxy port=8081 up=3001 count=3 \
    cause=connection_refused topology="$onehost: HAProxy 127.0.0.1:8081 -> 127.0.0.1:3001 (nothing listens; retries 3)"
run onehost-refused-haproxy any && scenario name=onehost-refused-haproxy run=any label=onehost-refused-haproxy.any gw=haproxy \
    port=8081 up=3001 count=3 cause=connection_refused \
    topology="$viaveth: HAProxy 10.79.1.1:8081 -> 127.0.0.1:3001 (nothing listens; retries 3)"
run onehost-connect-timeout-nginx lo && scenario name=onehost-connect-timeout-nginx port=8082 up=3002 count=2 \
    cause=connection_timeout topology="$onehost: nginx 127.0.0.1:8082 -> 127.0.0.1:3002, nft drops SYNs to 3002 on lo; proxy_connect_timeout 1s"
run onehost-connect-timeout-nginx any && scenario name=onehost-connect-timeout-nginx run=any label=onehost-connect-timeout-nginx.any \
    port=8082 up=3002 count=2 cause=connection_timeout \
    topology="$viaveth: nginx 10.79.1.1:8082 -> 127.0.0.1:3002, nft drops SYNs to 3002 on lo; proxy_connect_timeout 1s"
run onehost-connect-timeout-haproxy lo && scenario name=onehost-connect-timeout-haproxy gw=haproxy port=8083 up=3002 count=2 \
    cause=connection_timeout topology="$onehost: HAProxy 127.0.0.1:8083 -> 127.0.0.1:3002, nft drops SYNs to 3002 on lo; timeout connect 1s, retries 3"
run onehost-connect-timeout-haproxy any && scenario name=onehost-connect-timeout-haproxy run=any \
    label=onehost-connect-timeout-haproxy.any gw=haproxy port=8083 up=3002 count=2 cause=connection_timeout \
    topology="$viaveth: HAProxy 10.79.1.1:8083 -> 127.0.0.1:3002, nft drops SYNs to 3002 on lo; timeout connect 1s, retries 3"
run onehost-tls lo && scenario name=onehost-tls port=8084 up=3003 count=2 cause=tls_certificate_error \
    topology="$onehost: nginx 127.0.0.1:8084 -> https://127.0.0.1:3003 (TLS 1.3, self-signed certificate; proxy_ssl_verify on with another CA)"
run onehost-tls any && scenario name=onehost-tls run=any label=onehost-tls.any port=8084 up=3003 count=2 cause=tls_certificate_error \
    topology="$viaveth: nginx 10.79.1.1:8084 -> https://127.0.0.1:3003 (TLS 1.3, self-signed certificate; proxy_ssl_verify on with another CA)"
run onehost-reset lo && scenario name=onehost-reset port=8085 up=3004 count=3 upstream_only=3004 cause=upstream_reset_after_request \
    topology="$onehost: nginx 127.0.0.1:8085 -> 127.0.0.1:3004 (reads the request, RST)"
run onehost-reset any && scenario name=onehost-reset run=any label=onehost-reset.any port=8085 up=3004 count=3 \
    cause=upstream_reset_after_request topology="$viaveth: nginx 10.79.1.1:8085 -> 127.0.0.1:3004 (reads the request, RST)"
run onehost-keepalive-race lo && scenario name=onehost-keepalive-race port=8086 up=3005 count=15 interval=1.05 method=POST \
    cause=keepalive_race \
    topology="$onehost: nginx 127.0.0.1:8086 -> upstream ka_lo { 127.0.0.1:3005; keepalive 8 } (closes after 1.0 s idle; nft drops half its FINs once)"
run onehost-keepalive-race any && scenario name=onehost-keepalive-race run=any label=onehost-keepalive-race.any port=8086 up=3005 \
    count=15 interval=1.05 method=POST cause=keepalive_race \
    topology="$viaveth: nginx 10.79.1.1:8086 -> upstream ka_any { 127.0.0.1:3005; keepalive 8 } (closes after 1.0 s idle; nft drops half its FINs once)"
run onehost-slow lo && scenario name=onehost-slow port=8087 up=3006 count=2 cause=response_timeout \
    topology="$onehost: nginx 127.0.0.1:8087 -> 127.0.0.1:3006 (answers after 3 s); proxy_read_timeout 1s"
run onehost-slow any && scenario name=onehost-slow run=any label=onehost-slow.any port=8087 up=3006 count=2 cause=response_timeout \
    topology="$viaveth: nginx 10.79.1.1:8087 -> 127.0.0.1:3006 (answers after 3 s); proxy_read_timeout 1s"
run concurrent-resets-haproxy any && scenario name=concurrent-resets-haproxy run=any gw=haproxy port=8088 up=3007 count=24 parallel=1 \
    cause=upstream_reset_after_request \
    topology="$viaveth: 24 concurrent clients -> HAProxy 10.79.1.1:8088 -> 127.0.0.1:3007 (every 3rd request it receives: RST; the others 200 after 50-300 ms)"
run concurrent-resets-nginx any && scenario name=concurrent-resets-nginx run=any port=8089 up=3011 count=24 parallel=1 \
    cause=upstream_reset_after_request \
    topology="$viaveth: 24 concurrent clients -> nginx 10.79.1.1:8089 -> 127.0.0.1:3011 (every 3rd request it receives: RST; the others 200 after 50-300 ms)"
run retry-second-upstream lo && scenario name=retry-second-upstream port=8092 up=3008,3009 count=4 cause=retried_ok \
    topology="$onehost: nginx 127.0.0.1:8092 -> upstream retry { 127.0.0.1:3008 (reads the request, RST); 127.0.0.1:3009 (200) }, proxy_next_upstream error"
run proxy-chain any && scenario name=proxy-chain run=any gw=chain port=8090 up=8091 count=3 filter="tcp port 8090 or tcp port 8091" \
    cause=upstream_is_gateway \
    topology="$viaveth: front nginx 10.79.1.1:8090 -> back nginx 127.0.0.1:8091 (another nginx master) -> 127.0.0.1:3010 (reads the request, RST); only the front's legs are captured (port 3010 filtered out)"

echo "topo: done, captures and labels in $out"
status=0
if [ "$drops" != 0 ]; then echo "topo: WARNING: tcpdump dropped packets (see above)"; status=1; fi
if [ -f "$work/check-failed" ]; then echo "topo: WARNING: capture check failed for: $(tr '\n' ' ' < "$work/check-failed")"; status=1; fi
exit $status

#!/usr/bin/env bash
# capdiag's failure lab, scenarios that need a topology of their own: the gateway's interfaces
# are Linux bridges (as on a Docker or VM host: a bridge with a veth port per peer), so
# `tcpdump -i any` sees every packet twice, once on the bridge device and once on the bridge
# port, microseconds apart, with the same IP ID, sequence number and length.
#
#   sudo bash Captures/lab/lab-extra.sh [SCENARIO ...]    (all scenarios when none is named)
#
# Same rules as lab.sh: only the namespaces made here (cdlab2-*, 10.77.0.0/16 inside them) are
# addressed; every client loop is bounded; everything started here is stopped by PID and the
# namespaces are deleted on exit, also on failure. It uses lab.sh's upstream.py and label.py.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${CAPDIAG_LAB_OUT:-$here}
need=()
command -v nginx >/dev/null || need+=(nginx-light)
command -v tcpdump >/dev/null || need+=(tcpdump)
command -v ip >/dev/null || need+=(iproute2)
command -v curl >/dev/null || need+=(curl)
command -v openssl >/dev/null || need+=(openssl)
if [ ${#need[@]} -gt 0 ]; then
    # Keep Debian from starting the packaged nginx service on the host.
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
    rm -f /usr/sbin/policy-rc.d
fi

work=$(mktemp -d /tmp/capdiag-lab2.XXXXXX)
pids=()
cleanup() {
    set +e
    [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done
    sleep 0.5
    for ns in cdlab2-client cdlab2-gw cdlab2-up; do ip netns del "$ns" 2>/dev/null; done
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

# Topology (the addresses of lab.sh, in namespaces of its own):
#   client 10.77.1.2 [cl-gw] — [gw-cl] bridge br-cl 10.77.1.1  gateway  10.77.2.1 bridge br-up [gw-up] — [up-gw] 10.77.2.2 upstream
for ns in cdlab2-client cdlab2-gw cdlab2-up; do ip netns del "$ns" 2>/dev/null || true; ip netns add "$ns"; done
bridged() {  # bridged NS IF ADDR GW_IF BRIDGE GW_ADDR: NS's IF is a port of the gateway's BRIDGE
    ip link add "$2" netns "$1" type veth peer name "$4" netns cdlab2-gw
    ip -n cdlab2-gw link add "$5" type bridge
    ip -n cdlab2-gw link set "$4" master "$5"
    ip -n "$1" addr add "$3/24" dev "$2"; ip -n cdlab2-gw addr add "$6/24" dev "$5"
    ip -n "$1" link set "$2" up; ip -n cdlab2-gw link set "$4" up; ip -n cdlab2-gw link set "$5" up
}
bridged cdlab2-client cl-gw 10.77.1.2 gw-cl br-cl 10.77.1.1
bridged cdlab2-up up-gw 10.77.2.2 gw-up br-up 10.77.2.1
for ns in cdlab2-client cdlab2-gw cdlab2-up; do ip -n "$ns" link set lo up; done
ip -n cdlab2-client route add default via 10.77.1.1
ip -n cdlab2-up route add default via 10.77.2.1

# upstream.py loads these only for its TLS ports, which no scenario here uses.
openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=10.77.2.2 -keyout "$work/key.pem" -out "$work/cert.pem" -days 2 2>/dev/null

mkdir -p "$work/logs"
cat > "$work/nginx.conf" <<NGINX
daemon on;
pid $work/nginx.pid;
error_log $work/logs/nginx.error.log warn;
worker_processes 1;
events { worker_connections 256; }
http {
    access_log off;
    log_format lab '\$status upstream_addr="\$upstream_addr" upstream_status="\$upstream_status" '
                   'upstream_connect_time="\$upstream_connect_time" upstream_header_time="\$upstream_header_time" '
                   'request_time=\$request_time request="\$request"';
    proxy_connect_timeout 2s;
    proxy_read_timeout 5s;
    proxy_set_header X-Request-Id \$request_id;
NGINX
server_block() {  # server_block NAME PORT PROXY_PASS
    cat >> "$work/nginx.conf" <<NGINX
    server {
        listen 10.77.1.1:$2;
        error_log $work/logs/$1.error.log info;
        access_log $work/logs/$1.access.log lab;
        location / { proxy_pass $3; }
    }
NGINX
}
server_block duplicates-any 8000 http://10.77.2.2:9000
server_block duplicates-any-reset 8004 http://10.77.2.2:9004
echo "}" >> "$work/nginx.conf"

ip netns exec cdlab2-up python3 "$here/upstream.py" "$work" 120 &
pids+=($!)
ip netns exec cdlab2-gw nginx -c "$work/nginx.conf" -p "$work"
sleep 1

# scenario NAME PORT CAUSE COUNT INTERVAL: COUNT GETs, both legs with -i any (every packet
# twice) and the upstream leg on the bridge device br-up (every packet once).
scenario() {
    local name=$1 port=$2 cause=$3 count=$4 interval=$5
    echo "lab-extra: $name"
    ip netns exec cdlab2-gw tcpdump -i any --immediate-mode -U -B 32768 -s 262144 -c 20000 -w "$out/$name.any.pcap" \
        "tcp port $port or host 10.77.2.2" 2>"$work/any.log" &
    local any=$!
    ip netns exec cdlab2-gw tcpdump -i br-up --immediate-mode -U -B 32768 -s 262144 -c 20000 -w "$out/$name.upstream.pcap" \
        "host 10.77.2.2" 2>"$work/up.log" &
    local up=$!
    pids+=($any $up)
    for _ in $(seq 50); do grep -q "listening" "$work/any.log" && grep -q "listening" "$work/up.log" && break; sleep 0.1; done
    local statuses=()
    for i in $(seq "$count"); do
        statuses+=("$(ip netns exec cdlab2-client curl -s -o /dev/null -w '%{http_code}' --max-time 10 \
            "http://10.77.1.1:$port/$name/$i" || true)")
        sleep "$interval"
    done
    sleep 1.5
    kill -INT "$any" "$up" 2>/dev/null || true
    wait "$any" "$up" 2>/dev/null || true
    grep -h "dropped by kernel" "$work/any.log" "$work/up.log" | sed "s/^/lab-extra: $name: tcpdump: /" || true
    echo '{"topology": "gateway interfaces are bridges (br-cl, br-up) with one veth port each; -i any sees each packet on the bridge and on its port", "upstream_leg_interface": "br-up"}' > "$work/extra.json"
    CAPDIAG_LAB_EXTRA="$work/extra.json" CAPDIAG_LAB_COMMAND="sudo bash Captures/lab/lab-extra.sh $name" \
        python3 "$here/label.py" "$name" "$port" "$cause" "$work/logs" "$out" "${statuses[@]}"
}

selected=("$@")
run() { [ ${#selected[@]} -eq 0 ] || [[ " ${selected[*]} " == *" $1 "* ]]; }
run duplicates-any && scenario duplicates-any 8000 healthy 5 0.2
run duplicates-any-reset && scenario duplicates-any-reset 8004 upstream_reset_after_request 2 0.2
echo "lab-extra: done, captures and labels in $out"

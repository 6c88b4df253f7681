#!/usr/bin/env bash
# capdiag's failure lab: real nginx between a client and a scripted upstream, in network
# namespaces of its own, one scenario per gateway port (HAProxy and tinyproxy beside nginx for a
# few; lab-extra.sh has the scenarios that need another topology). Records every scenario twice
# (tcpdump -i any in the gateway namespace: both legs, Linux cooked v2; and the gateway's
# upstream-facing interface alone: Ethernet), and writes a label per scenario with what the
# client saw and what nginx logged.
#
#   sudo bash Captures/lab/lab.sh [SCENARIO ...]     (all scenarios when none is named)
#
# CAPDIAG_LAB_RAW_LOGS=DIR (opt-in, used by gateway-logs/record.sh) also keeps each scenario's raw
# gateway logs, timestamps and all, in DIR: NAME.nginx-error.log, NAME.nginx-access.log (in the
# key=value format below, `capdiag`) and NAME.haproxy.log, and adds the scenarios that only the
# log reader needs (no-live-upstreams, haproxy-httplog). Without it nothing changes.
#
# Network rule: only the lab's own namespaces (10.77.0.0/16 inside them) are addressed.
# Every client loop is bounded in count and time; the upstream exits by itself; everything
# started here is stopped by PID, and the namespaces (with their veths and nft tables) are
# deleted on exit, also on failure.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${CAPDIAG_LAB_OUT:-$here}
raw=${CAPDIAG_LAB_RAW_LOGS:-}
need=()
command -v nginx >/dev/null || need+=(nginx-light)
command -v haproxy >/dev/null || need+=(haproxy)
command -v tcpdump >/dev/null || need+=(tcpdump)
command -v nft >/dev/null || need+=(nftables)
command -v ip >/dev/null || need+=(iproute2)
command -v curl >/dev/null || need+=(curl)
command -v openssl >/dev/null || need+=(openssl)
command -v editcap >/dev/null || need+=(wireshark-common)
command -v tinyproxy >/dev/null || need+=(tinyproxy)
if [ ${#need[@]} -gt 0 ]; then
    # Keep Debian from starting the packaged nginx (and tinyproxy) service on the host.
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
    rm -f /usr/sbin/policy-rc.d
fi

work=$(mktemp -d /tmp/capdiag-lab.XXXXXX)
pids=()
cleanup() {
    set +e
    [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null
    [ -f "$work/haproxy.pid" ] && kill "$(cat "$work/haproxy.pid")" 2>/dev/null
    [ -f "$work/tinyproxy.pid" ] && kill "$(cat "$work/tinyproxy.pid")" 2>/dev/null
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done
    sleep 0.5
    for ns in cdlab-client cdlab-gw cdlab-up cdlab-rtr; do ip netns del "$ns" 2>/dev/null; done
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

# Topology: client 10.77.1.2 — 10.77.1.1 gateway 10.77.2.1 — 10.77.2.2 upstream
#           gateway 10.77.3.1 — 10.77.3.2 router, which rejects 10.77.9.9 (admin-prohibited)
for ns in cdlab-client cdlab-gw cdlab-up cdlab-rtr; do ip netns del "$ns" 2>/dev/null || true; ip netns add "$ns"; done
link() {  # link NS_A IF_A ADDR_A NS_B IF_B ADDR_B
    ip link add "$2" netns "$1" type veth peer name "$5" netns "$4"
    ip -n "$1" addr add "$3/24" dev "$2"; ip -n "$4" addr add "$6/24" dev "$5"
    ip -n "$1" link set "$2" up; ip -n "$4" link set "$5" up
}
link cdlab-client cl-gw 10.77.1.2 cdlab-gw gw-cl 10.77.1.1
link cdlab-gw gw-up 10.77.2.1 cdlab-up up-gw 10.77.2.2
link cdlab-gw gw-rtr 10.77.3.1 cdlab-rtr rtr-gw 10.77.3.2
for ns in cdlab-client cdlab-gw cdlab-up cdlab-rtr; do ip -n "$ns" link set lo up; done
ip -n cdlab-client route add default via 10.77.1.1
ip -n cdlab-up route add default via 10.77.2.1
ip -n cdlab-gw route add 10.77.9.0/24 via 10.77.3.2
ip netns exec cdlab-rtr sysctl -qw net.ipv4.ip_forward=1
# A route to 10.77.9.0/24 out of another interface (a veth pair inside the router), so the
# packet reaches the forward hook and its reject rule (without a route the router answers
# "network unreachable" itself; out of the same interface it sends a redirect).
ip -n cdlab-rtr link add rtr-far type veth peer name rtr-far-peer
ip -n cdlab-rtr link set rtr-far up
ip -n cdlab-rtr link set rtr-far-peer up
ip -n cdlab-rtr route add 10.77.9.0/24 dev rtr-far
ip netns exec cdlab-rtr nft -f - <<'NFT'
table inet cdlab {
    chain forward {
        type filter hook forward priority 0;
        ip daddr 10.77.9.9 tcp dport 9003 reject with icmp type admin-prohibited
        drop
    }
}
NFT
# SYNs to 9002 vanish at the upstream (connect timeout). For the keep-alive race, half of
# the upstream's FINs on 9012 are lost once: on a real network the FIN is in flight for an RTT,
# here (no netem in this kernel) the retransmission after the RTO opens a window of ~200 ms in
# which the upstream has closed but the gateway still thinks the connection is reusable.
ip netns exec cdlab-up nft -f - <<'NFT'
table inet cdlab {
    chain input {
        type filter hook input priority 0;
        tcp dport 9002 drop
    }
    chain output {
        type filter hook output priority 0;
        tcp sport 9012 tcp flags & fin == fin numgen random mod 2 == 0 drop
    }
}
NFT

# Certificates: the upstream's, and another CA that the gateway trusts instead (verify fails).
openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=10.77.2.2 -keyout "$work/key.pem" -out "$work/cert.pem" -days 2 2>/dev/null
openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=other-ca -keyout "$work/other.key" -out "$work/other-ca.pem" -days 2 2>/dev/null
# The lab's own CA, trusted by the gateway for tls13-name-mismatch, and two certificates it
# signs: the upstream's on 9020 (SAN upstream.test and 10.77.2.2, not the name the gateway
# asks for) and the gateway's own for its TLS listeners.
openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=cdlab-ca -keyout "$work/lab-ca.key" -out "$work/lab-ca.pem" -days 2 2>/dev/null
sign() {  # sign NAME CN SAN
    openssl req -new -newkey rsa:2048 -nodes -subj "/CN=$2" -keyout "$work/$1-key.pem" -out "$work/$1.csr" 2>/dev/null
    printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' "$3" > "$work/$1.ext"
    openssl x509 -req -in "$work/$1.csr" -CA "$work/lab-ca.pem" -CAkey "$work/lab-ca.key" -CAcreateserial \
        -days 2 -extfile "$work/$1.ext" -out "$work/$1-cert.pem" 2>/dev/null
}
sign upstream upstream.test "DNS:upstream.test,IP:10.77.2.2"
sign gateway gateway.test "DNS:gateway.test,IP:10.77.1.1"

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
NGINX
if [ -n "$raw" ]; then
    # The access log format capdiag recommends (Captures/lab/gateway-logs/README.md).
    cat >> "$work/nginx.conf" <<'NGINX'
    log_format capdiag '$remote_addr:$remote_port [$time_iso8601] msec=$msec "$request" $status '
                       'upstream_addr="$upstream_addr" upstream_status="$upstream_status" '
                       'upstream_connect_time="$upstream_connect_time" upstream_header_time="$upstream_header_time" '
                       'upstream_response_time="$upstream_response_time" request_time=$request_time '
                       'request_id=$request_id';
    upstream all_refused { server 10.77.2.2:9001; server 10.77.2.2:9003; }
NGINX
fi
cat >> "$work/nginx.conf" <<NGINX
    proxy_connect_timeout 2s;
    proxy_read_timeout 5s;
    proxy_set_header X-Request-Id \$request_id;
    upstream keepalive_race { server 10.77.2.2:9012; keepalive 8; }
    upstream mixed { server 10.77.2.2:9018; keepalive 8; }
    upstream failover { server 10.77.2.2:9001; server 10.77.2.2:9017; }
NGINX
server_block() {  # server_block NAME PORT PROXY_PASS [EXTRA] [LISTEN_OPTIONS] [SERVER_EXTRA]
    cat >> "$work/nginx.conf" <<NGINX
    server {
        listen 10.77.1.1:$2${5:+ $5};${6:+
        $6}
        error_log $work/logs/$1.error.log info;
        access_log $work/logs/$1.access.log lab;${raw:+
        access_log $work/logs/$1.capdiag-access.log capdiag;}
        location / { proxy_pass $3; ${4:-} }
    }
NGINX
}
server_block healthy 8000 http://10.77.2.2:9000
server_block refused 8001 http://10.77.2.2:9001
server_block syn-dropped 8002 http://10.77.2.2:9002
server_block icmp-prohibited 8003 http://10.77.9.9:9003
server_block reset-after-request 8004 http://10.77.2.2:9004
server_block fin-without-answer 8005 http://10.77.2.2:9005
server_block garbage 8006 http://10.77.2.2:9006
server_block invalid-header 8007 http://10.77.2.2:9007
server_block big-headers 8008 http://10.77.2.2:9008
server_block cut-fin 8009 http://10.77.2.2:9009
server_block cut-rst 8010 http://10.77.2.2:9010
server_block slow-upstream 8011 http://10.77.2.2:9011 "proxy_read_timeout 1s;"
server_block keepalive-race 8012 http://keepalive_race 'proxy_http_version 1.1; proxy_set_header Connection "";'
server_block tls-untrusted 8013 https://10.77.2.2:9013 "proxy_ssl_verify on; proxy_ssl_trusted_certificate $work/other-ca.pem;"
server_block tls-plain-http 8014 https://10.77.2.2:9014
server_block tls-hang 8015 https://10.77.2.2:9015
server_block upstream-503 8016 http://10.77.2.2:9016
server_block failover 8017 http://failover
server_block mixed 8018 http://mixed 'proxy_http_version 1.1; proxy_set_header Connection "";'
server_block listen-queue-full 8019 http://10.77.2.2:9019
tls13="proxy_ssl_verify on; proxy_ssl_protocols TLSv1.3;"
server_block tls13-untrusted 8020 https://10.77.2.2:9013 "$tls13 proxy_ssl_trusted_certificate $work/other-ca.pem;"
server_block tls13-name-mismatch 8021 https://10.77.2.2:9020 \
    "$tls13 proxy_ssl_trusted_certificate $work/lab-ca.pem; proxy_ssl_name wrong.example; proxy_ssl_server_name on;"
# TLS listeners for the spare-connection client (the gateway terminates TLS, plain HTTP upstream).
gw_tls="ssl_certificate $work/gateway-cert.pem; ssl_certificate_key $work/gateway-key.pem;"
server_block tls-spare-connections 8022 http://10.77.2.2:9000 "" ssl "$gw_tls ssl_protocols TLSv1.2;"
server_block tls13-spare-connections 8023 http://10.77.2.2:9000 "" ssl "$gw_tls ssl_protocols TLSv1.3;"
server_block stall-mid-response 8024 http://10.77.2.2:9021 "proxy_read_timeout 1s;"
# 8025: tinyproxy (connect-tunnel). Failing scenarios again, recorded with tcpdump -s 96:
server_block snaplen96-reset 8026 http://10.77.2.2:9004
server_block snaplen96-cut-fin 8027 http://10.77.2.2:9009
# Only with CAPDIAG_LAB_RAW_LOGS: two refusing servers, so the second request finds both marked
# down ("no live upstreams", $upstream_addr is then the group's name).
[ -z "$raw" ] || server_block no-live-upstreams 8028 http://all_refused
echo "}" >> "$work/nginx.conf"

# HAProxy beside nginx, for the scenarios where it behaves differently (it answers a refused
# connect with 503 after retries, logs termination states instead of error lines).
cat > "$work/haproxy.cfg" <<HAPROXY
global
    log stdout format raw local0
defaults
    mode http
    log global
    timeout connect 2s
    timeout client 10s
    timeout server 5s
    log-format "%ci:%cp [%tr] %ft %b/%s %TR/%Tw/%Tc/%Tr/%Ta %ST %B %tsc %ac/%fc/%bc/%sc/%rc %bi:%bp %{+Q}r"
HAPROXY
haproxy_pair() {  # haproxy_pair NAME PORT UPSTREAM_PORT [EXTRA]
    cat >> "$work/haproxy.cfg" <<HAPROXY
frontend fe-$1
    bind 10.77.1.1:$2
    default_backend be-$1
backend be-$1
    ${4:-}
    server s1 10.77.2.2:$3
HAPROXY
}
haproxy_pair haproxy-refused 8501 9001
haproxy_pair haproxy-reset-after-request 8504 9004
haproxy_pair haproxy-fin-without-answer 8505 9005
haproxy_pair haproxy-slow-upstream 8511 9011 "timeout server 1s"
haproxy_pair haproxy-keepalive-race 8512 9012 "http-reuse always"
if [ -n "$raw" ]; then
    # HAProxy's default `option httplog` line, with an RFC 3164 syslog header, beside the lab's
    # own log-format (the upstream resets after the request, as haproxy-reset-after-request).
    cat >> "$work/haproxy.cfg" <<HAPROXY
frontend fe-haproxy-httplog
    bind 10.77.1.1:8520
    no log
    log stdout format rfc3164 local0
    option httplog
    default_backend be-haproxy-httplog
backend be-haproxy-httplog
    server s1 10.77.2.2:9004
HAPROXY
fi

# tinyproxy as a forward proxy (CONNECT tunnels to the upstream's TLS and plain ports). It runs
# as nobody in the foreground and, without a LogFile, logs to its standard output.
cat > "$work/tinyproxy.conf" <<TINYPROXY
User nobody
Group nogroup
Port 8025
Listen 10.77.1.1
Timeout 10
LogLevel Info
MaxClients 20
Allow 10.77.1.0/24
ConnectPort 9013
ConnectPort 9000
DisableViaHeader Yes
TINYPROXY

ip netns exec cdlab-up python3 "$here/upstream.py" "$work" 600 &
pids+=($!)
ip netns exec cdlab-gw nginx -c "$work/nginx.conf" -p "$work"
ip netns exec cdlab-gw haproxy -db -f "$work/haproxy.cfg" > "$work/logs/haproxy.log" 2>&1 &
echo $! > "$work/haproxy.pid"
ip netns exec cdlab-gw tinyproxy -d -c "$work/tinyproxy.conf" > "$work/logs/tinyproxy.log" 2>&1 &
echo $! > "$work/tinyproxy.pid"
sleep 1

# Clients of the scenarios that curl alone does not make (METHOD names them: client_METHOD).
# Each gets NAME PORT COUNT, prints one HTTP status a line, and may leave $work/extra.json
# (what it did, for the label).
client_spare12() { ip netns exec cdlab-client python3 "$here/spare_client.py" 10.77.1.1 "$2" 1.2 "$1" "$work/extra.json"; }
client_spare13() { ip netns exec cdlab-client python3 "$here/spare_client.py" 10.77.1.1 "$2" 1.3 "$1" "$work/extra.json"; }
client_download() {  # GETs that keep what curl received: a cut body still says 200
    local i r rc downloads=()
    for i in $(seq "$3"); do
        r=$(ip netns exec cdlab-client curl -s -o /dev/null -w '%{http_code} %{size_download}' --max-time 10 \
            "http://10.77.1.1:$2/$1/$i") && rc=0 || rc=$?
        echo "${r% *}"
        downloads+=("{\"status\": \"${r% *}\", \"body_bytes\": ${r#* }, \"curl_exit\": $rc}")
        sleep 0.2
    done
    (IFS=,; echo "{\"client_downloads\": [${downloads[*]}]}") > "$work/extra.json"
}
client_tunnel() {  # COUNT requests through tinyproxy's CONNECT to TLS, then COUNT of plain HTTP
    local i r rc tunnels=()
    for i in $(seq "$3"); do
        r=$(ip netns exec cdlab-client curl -s -o /dev/null -k -w '%{http_connect} %{http_code}' --max-time 10 \
            -x "http://10.77.1.1:$2" "https://10.77.2.2:9013/$1/$i") && rc=0 || rc=$?
        echo "${r#* }"
        tunnels+=("{\"target\": \"https://10.77.2.2:9013/$1/$i\", \"connect_status\": \"${r% *}\", \"status\": \"${r#* }\", \"curl_exit\": $rc}")
        sleep 0.2
    done
    for i in $(seq $(($3 + 1)) $(($3 * 2))); do
        r=$(ip netns exec cdlab-client curl -s -o /dev/null -p -w '%{http_connect} %{http_code}' --max-time 10 \
            -x "http://10.77.1.1:$2" "http://10.77.2.2:9000/$1/$i") && rc=0 || rc=$?
        echo "${r#* }"
        tunnels+=("{\"target\": \"http://10.77.2.2:9000/$1/$i\", \"connect_status\": \"${r% *}\", \"status\": \"${r#* }\", \"curl_exit\": $rc}")
        sleep 0.2
    done
    (IFS=,; echo "{\"client_tunnels\": [${tunnels[*]}]}") > "$work/extra.json"
}

# scenario NAME PORT CAUSE COUNT INTERVAL METHOD: records one scenario and writes its label.
# SNAPLEN=N in its environment records both captures with tcpdump -s N.
scenario() {
    local name=$1 port=$2 cause=$3 count=$4 interval=$5 method=$6 snap=${SNAPLEN:-262144}
    echo "lab: $name"
    rm -f "$work/extra.json" "$work/snap.json"
    ip netns exec cdlab-gw tcpdump -i any --immediate-mode -U -B 32768 -s "$snap" -c 20000 -w "$out/$name.any.pcap" \
        "tcp port $port or host 10.77.2.2 or host 10.77.9.9 or icmp" 2>"$work/any.log" &
    local any=$!
    ip netns exec cdlab-gw tcpdump -i gw-up --immediate-mode -U -B 32768 -s "$snap" -c 20000 -w "$out/$name.upstream.pcap" \
        "host 10.77.2.2" 2>"$work/up.log" &
    local up=$!
    pids+=($any $up)
    for _ in $(seq 50); do grep -q "listening" "$work/any.log" && grep -q "listening" "$work/up.log" && break; sleep 0.1; done
    local statuses=()
    if [ "$method" = PARALLEL ]; then
        # COUNT concurrent GETs, each bounded by curl's --max-time.
        local curls=()
        for i in $(seq "$count"); do
            ip netns exec cdlab-client curl -s -o /dev/null -w '%{http_code}' --max-time 10 \
                "http://10.77.1.1:$port/$name/$i" > "$work/status.$i" 2>/dev/null &
            curls+=($!)
            sleep "$interval"
        done
        wait "${curls[@]}" 2>/dev/null || true
        for i in $(seq "$count"); do statuses+=("$(cat "$work/status.$i")"); done
    elif declare -F "client_$method" >/dev/null; then
        mapfile -t statuses < <("client_$method" "$name" "$port" "$count")
    else
        for i in $(seq "$count"); do
            local args=(-s -o /dev/null -w '%{http_code}' --max-time 10 "http://10.77.1.1:$port/$name/$i")
            [ "$method" = POST ] && args+=(-X POST -d "n=$i")
            statuses+=("$(ip netns exec cdlab-client curl "${args[@]}" || true)")
            sleep "$interval"
        done
    fi
    sleep 1.5
    kill -INT "$any" "$up" 2>/dev/null || true
    wait "$any" "$up" 2>/dev/null || true
    grep -h "dropped by kernel" "$work/any.log" "$work/up.log" | sed "s/^/lab: $name: tcpdump: /" || true
    local extras=""
    [ -f "$work/extra.json" ] && extras="$work/extra.json"
    if [ -n "${SNAPLEN:-}" ]; then echo "{\"snap_length\": $snap}" > "$work/snap.json"; extras="$extras:$work/snap.json"; fi
    CAPDIAG_LAB_EXTRA="$extras" python3 "$here/label.py" "$name" "$port" "$cause" "$work/logs" "$out" "${statuses[@]}"
    if [ -n "$raw" ]; then
        mkdir -p "$raw"
        [ ! -s "$work/logs/$name.error.log" ] || cp "$work/logs/$name.error.log" "$raw/$name.nginx-error.log"
        [ ! -s "$work/logs/$name.capdiag-access.log" ] || cp "$work/logs/$name.capdiag-access.log" "$raw/$name.nginx-access.log"
        grep -a " fe-$name " "$work/logs/haproxy.log" > "$raw/$name.haproxy.log" || rm -f "$raw/$name.haproxy.log"
    fi
}

selected=("$@")
run() { [ ${#selected[@]} -eq 0 ] || [[ " ${selected[*]} " == *" $1 "* ]]; }
run healthy && scenario healthy 8000 healthy 10 0.1 GET
run refused && scenario refused 8001 connection_refused 3 0.2 GET
run syn-dropped && scenario syn-dropped 8002 connection_timeout 2 0.1 GET
run icmp-prohibited && scenario icmp-prohibited 8003 destination_unavailable 2 0.2 GET
run reset-after-request && scenario reset-after-request 8004 upstream_reset_after_request 3 0.2 GET
run fin-without-answer && scenario fin-without-answer 8005 upstream_closed_before_response 3 0.2 GET
run garbage && scenario garbage 8006 invalid_response 2 0.2 GET
run invalid-header && scenario invalid-header 8007 invalid_header 2 0.2 GET
run big-headers && scenario big-headers 8008 response_header_too_large 2 0.2 GET
run cut-fin && scenario cut-fin 8009 response_cut_short_fin 2 0.2 GET
run cut-rst && scenario cut-rst 8010 response_cut_short_rst 2 0.2 GET
run slow-upstream && scenario slow-upstream 8011 response_timeout 2 0.2 GET
run keepalive-race && scenario keepalive-race 8012 keepalive_race 30 1.05 POST
run tls-untrusted && scenario tls-untrusted 8013 tls_certificate_error 2 0.2 GET
run tls-plain-http && scenario tls-plain-http 8014 protocol_mismatch 2 0.2 GET
run tls-hang && scenario tls-hang 8015 tls_handshake_timeout 1 0.2 GET
run upstream-503 && scenario upstream-503 8016 upstream_application_error 3 0.2 GET
run failover && scenario failover 8017 failover_retry 3 0.2 GET
run mixed && scenario mixed 8018 sporadic_upstream_resets 40 0.05 GET
run listen-queue-full && scenario listen-queue-full 8019 listen_queue_overflow 6 0.05 PARALLEL
run haproxy-refused && scenario haproxy-refused 8501 connection_refused 2 0.2 GET
run haproxy-reset-after-request && scenario haproxy-reset-after-request 8504 upstream_reset_after_request 2 0.2 GET
run haproxy-fin-without-answer && scenario haproxy-fin-without-answer 8505 upstream_closed_before_response 2 0.2 GET
run haproxy-slow-upstream && scenario haproxy-slow-upstream 8511 response_timeout 2 0.2 GET
run haproxy-keepalive-race && scenario haproxy-keepalive-race 8512 keepalive_race 30 1.05 POST
run tls13-untrusted && scenario tls13-untrusted 8020 tls_certificate_error 2 0.2 GET
run tls13-name-mismatch && scenario tls13-name-mismatch 8021 tls_certificate_error 2 0.2 GET
run tls-spare-connections && scenario tls-spare-connections 8022 healthy 0 0 spare12
run tls13-spare-connections && scenario tls13-spare-connections 8023 healthy 0 0 spare13
run stall-mid-response && scenario stall-mid-response 8024 response_stalled 2 0 download
run connect-tunnel && CAPDIAG_LAB_GATEWAY=tinyproxy scenario connect-tunnel 8025 healthy 2 0 tunnel
run snaplen96-reset && SNAPLEN=96 scenario snaplen96-reset 8026 upstream_reset_after_request 3 0.2 GET
run snaplen96-cut-fin && SNAPLEN=96 scenario snaplen96-cut-fin 8027 response_cut_short_fin 2 0.2 GET
if [ -n "$raw" ]; then
    run no-live-upstreams && scenario no-live-upstreams 8028 connection_refused 3 0.2 GET
    run haproxy-httplog && scenario haproxy-httplog 8520 upstream_reset_after_request 2 0.2 GET
fi
# One capture as pcapng too.
if [ -f "$out/healthy.any.pcap" ]; then editcap -F pcapng "$out/healthy.any.pcap" "$out/healthy.any.pcapng"; fi
echo "lab: done, captures and labels in $out"

#!/usr/bin/env bash
# Per-packet cost of `capdiag -r` on HTTP/2 (h2c) against HTTP/1.1, on captures recorded here.
#   bash Benchmarks/h2-bench.sh                 (as root: apt-get and tcpdump on lo)
# 1. installs nghttp2-server, nghttp2-client (nghttpd, h2load), nginx-light, tcpdump, jq if missing;
# 2. records the captures on loopback with tcpdump (--immediate-mode -B 262144 -s 0, port filter):
#    h2.pcap:  h2load (prior knowledge, -c 20 -m 10) against nghttpd --no-tls, one worker;
#    h1.pcap:  h2load --h1 (-c 20, keep-alive, no pipelining) against nginx, one worker;
#    h2m1.pcap (unless H2M1=0): as h2.pcap but -m 1, one stream at a time per connection, so
#              requests and responses travel in packets as in h1.pcap;
#    the same REQUESTS round-robin over the same four files (200 B, 1 KiB, 4 KiB, 16 KiB);
# 3. builds the bare libpcap loop (../shared/bench/bare_pcap.c beside the repository) and capdiag (release, from a
#    clean clone of this repository unless CAPDIAG is given), then alternates, PAIRS rounds per
#    capture: bare loop, `capdiag -q -r` (text), `capdiag -q -T jsonl -r`;
# 4. checks the HTTP/2 analysis: the flows' http2.requests sum against h2load's "done" count.
# Prints one table (median seconds of the rounds; ratio = median of the per-round ratios to the
# bare loop, min-max in brackets; RSS = largest peak of the rounds) and writes it to $WORK/results.txt.
# On loopback (MTU 64 KiB) the h2 responses of -m 10 share segments: about 0.3 packets per request
# there, 2 in h1.pcap; so read ns/pkt beside ns/req and MB/s.
# Environment: WORK (/tmp/h2bench), REQUESTS (requests per capture, 45000: ~250 MB each), PAIRS (3),
#   H2_PORT (18480), H1_PORT (18481), CAPDIAG (a capdiag binary; default: build one),
#   BARE_SRC (../shared/bench/bare_pcap.c beside the repository), RECAPTURE=1 (record even if the captures exist),
#   LOAD_TIMEOUT (seconds per h2load run, 300), TSHARK_PACKETS (0; N>0: also count client
#   HEADERS frames with tshark on the first N packets and compare with capdiag on the same cut).
# Network: loopback only (127.0.0.1); every load is bounded by -n and `timeout`; only the
# processes started here are stopped, on exit too.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
WORK=${WORK:-/tmp/h2bench}
REQUESTS=${REQUESTS:-45000}
PAIRS=${PAIRS:-3}
H2_PORT=${H2_PORT:-18480}
H1_PORT=${H1_PORT:-18481}
LOAD_TIMEOUT=${LOAD_TIMEOUT:-300}
BARE_SRC=${BARE_SRC:-$repo/../shared/bench/bare_pcap.c}
TSHARK_PACKETS=${TSHARK_PACKETS:-0}
H2M1=${H2M1:-1}
captures="h2 h1"; [ "$H2M1" = 1 ] && captures="h2 h2m1 h1"
mkdir -p "$WORK"
cd "$WORK"

# --- processes started here, stopped on exit (by PID only) -----------------------------------
pids=()
stop() {  # stop PID: SIGTERM (SIGINT for tcpdump so it flushes), wait up to 5 s, then SIGKILL
    local pid=$1 sig=${2:-TERM}
    kill -0 "$pid" 2>/dev/null || return 0
    kill -"$sig" "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
cleanup() { local pid; for pid in "${pids[@]}"; do stop "$pid"; done; pids=(); }
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- 1. tools ----------------------------------------------------------------------------------
need=()
command -v nghttpd >/dev/null || need+=(nghttp2-server)
command -v h2load >/dev/null || need+=(nghttp2-client)
command -v tcpdump >/dev/null || need+=(tcpdump)
command -v nginx >/dev/null || need+=(nginx-light)
command -v jq >/dev/null || need+=(jq)
command -v gcc >/dev/null || need+=(gcc)
[ -f /usr/include/pcap/pcap.h ] || need+=(libpcap-dev)
[ -x /usr/bin/time ] || need+=(time)
if [ ${#need[@]} -gt 0 ]; then
    echo "installing: ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# --- 2. binaries -------------------------------------------------------------------------------
gcc -O2 -o "$WORK/bare_pcap" "$BARE_SRC" -lpcap
if [ -z "${CAPDIAG:-}" ]; then
    [ -d "$WORK/src/.git" ] || git clone -q "$repo" "$WORK/src"
    echo "building capdiag (release) in $WORK/src at $(git -C "$WORK/src" rev-parse --short HEAD)"
    (cd "$WORK/src" && swift build -c release --product capdiag >"$WORK/build.log" 2>&1) \
        || { tail -20 "$WORK/build.log"; exit 1; }
    CAPDIAG=$WORK/src/.build/release/capdiag
fi

# --- 3. docroot, servers, captures -------------------------------------------------------------
docroot=$WORK/docroot
mkdir -p "$docroot"
for size in 200 1024 4096 16384; do  # deterministic contents
    [ "$(stat -c %s "$docroot/f$size" 2>/dev/null || echo 0)" = "$size" ] ||
        head -c "$size" < <(yes 'capdiag h2 benchmark body 0123456789abcdefghijklmnopqrstuvwxyz') >"$docroot/f$size"
done
chmod -R a+rX "$docroot"
uris() { local p; for p in f200 f1024 f4096 f16384; do printf 'http://127.0.0.1:%s/%s ' "$1" "$p"; done; }

port_free() { ! ss -Hltn "sport = :$1" | grep -q .; }
wait_port() {  # wait_port PORT PID: until something listens on PORT (10 s), the PID still alive
    for _ in $(seq 100); do
        kill -0 "$2" 2>/dev/null || { echo "server (pid $2) exited" >&2; return 1; }
        ss -Hltn "sport = :$1" | grep -q . && return 0
        sleep 0.1
    done
    echo "nothing listens on port $1" >&2; return 1
}

start_nghttpd() {
    nghttpd --no-tls -a 127.0.0.1 -n 1 -d "$docroot" "$H2_PORT" >"$WORK/nghttpd.log" 2>&1 &
    server_pid=$!; pids+=("$server_pid")
    wait_port "$H2_PORT" "$server_pid"
}
start_nginx() {
    mkdir -p "$WORK/nginx/tmp"
    cat >"$WORK/nginx/nginx.conf" <<EOF
worker_processes 1;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log;
events { worker_connections 1024; }
http {
    access_log off;
    default_type application/octet-stream;
    keepalive_requests 100000000;
    keepalive_timeout 60s;
    client_body_temp_path $WORK/nginx/tmp/body;
    proxy_temp_path $WORK/nginx/tmp/proxy;
    fastcgi_temp_path $WORK/nginx/tmp/fastcgi;
    uwsgi_temp_path $WORK/nginx/tmp/uwsgi;
    scgi_temp_path $WORK/nginx/tmp/scgi;
    server { listen 127.0.0.1:$H1_PORT; root $docroot; }
}
EOF
    nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -g 'daemon off;' >"$WORK/nginx/stdout.log" 2>&1 &
    server_pid=$!; pids+=("$server_pid")
    wait_port "$H1_PORT" "$server_pid"
}

record() {  # record NAME PORT START_FN H2LOAD_ARGS...: NAME.pcap, NAME.h2load.log, NAME.tcpdump.log
    local name=$1 port=$2 start=$3; shift 3
    if [ -s "$name.pcap" ] && [ -s "$name.h2load.log" ] && [ "${RECAPTURE:-0}" != 1 ]; then
        echo "$name: reusing $WORK/$name.pcap"; return
    fi
    port_free "$port" || { echo "port $port is in use; set H2_PORT/H1_PORT" >&2; exit 1; }
    rm -f "$name.pcap"
    "$start"
    tcpdump -i lo -n -s 0 -B 262144 --immediate-mode -w "$name.pcap" "tcp port $port" 2>"$name.tcpdump.log" &
    local tcpdump_pid=$!; pids+=("$tcpdump_pid")
    for _ in $(seq 100); do grep -q 'listening on' "$name.tcpdump.log" && break; sleep 0.1; done
    grep -q 'listening on' "$name.tcpdump.log" || { cat "$name.tcpdump.log" >&2; exit 1; }
    echo "$name: h2load $* (timeout ${LOAD_TIMEOUT}s)"
    local rc=0
    timeout "$LOAD_TIMEOUT" h2load "$@" >"$name.h2load.log" 2>&1 || rc=$?
    sleep 1
    stop "$tcpdump_pid" INT
    stop "$server_pid"
    pids=()
    [ "$rc" = 0 ] || { echo "h2load exited $rc" >&2; tail -5 "$name.h2load.log" >&2; exit 1; }
    grep -E '^(finished in|requests:)' "$name.h2load.log" | sed "s/^/  /"
    grep -E 'captured|received by filter|dropped by kernel' "$name.tcpdump.log" | sed "s/^/  tcpdump: /"
}

record h2 "$H2_PORT" start_nghttpd -n "$REQUESTS" -c 20 -m 10 $(uris "$H2_PORT")
record h1 "$H1_PORT" start_nginx --h1 -n "$REQUESTS" -c 20 -m 1 $(uris "$H1_PORT")
# h2m1: HTTP/2 with one stream at a time per connection, the packet pattern of h1 (no pipelining)
[ "$H2M1" = 1 ] && record h2m1 "$H2_PORT" start_nghttpd -n "$REQUESTS" -c 20 -m 1 $(uris "$H2_PORT")

# --- 4. measurements ---------------------------------------------------------------------------
timed() {  # timed OUT COMMAND...: prints "seconds peak_kB" (seconds from the ns clock:
    local out=$1 t0 t1; shift  # /usr/bin/time's %e has 10 ms steps; its %M gives the peak RSS)
    t0=$(date +%s%N)
    /usr/bin/time -f "%e %M" -o "$WORK/time.out" "$@" >"$out" 2>"$out.err" || {
        echo "failed: $*" >&2; tail -3 "$out.err" >&2; exit 1; }
    t1=$(date +%s%N)
    awk -v t0="$t0" -v t1="$t1" '{printf "%.4f %d\n", (t1-t0)/1e9, $2}' "$WORK/time.out"
}
median() { sort -g | awk '{v[NR]=$1} END{print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
table=$WORK/results.txt
{
    echo "capdiag $(git -C "${CAPDIAG%/.build/*}" rev-parse --short HEAD 2>/dev/null || echo '?') ($CAPDIAG), $(nproc) cores, $(date -u +%FT%TZ), $PAIRS rounds"
    printf '%-7s %-13s %9s %7s %9s %7s %8s %7s %7s %17s %7s\n' capture tool packets MB requests "s" ns/pkt ns/req "MB/s" "ratio to bare" "RSS MB"
} >"$table"
for name in $captures; do
    cap=$WORK/$name.pcap
    cat "$cap" >/dev/null  # page cache
    packets=$("$WORK/bare_pcap" "$cap" | cut -d' ' -f1)
    mb=$(awk -v b="$(stat -c %s "$cap")" 'BEGIN{printf "%.1f", b/1e6}')
    reqs=$(awk '/^requests:/{for(i=1;i<NF;i++) if($(i+1)~/^done/) print $i}' "$WORK/$name.h2load.log")
    : >"$WORK/$name.runs"
    for round in $(seq "$PAIRS"); do
        read -r bs bk < <(timed /dev/null "$WORK/bare_pcap" "$cap")
        read -r ts tk < <(timed "$WORK/$name.text.out" "$CAPDIAG" -q -r "$cap")
        read -r js jk < <(timed "$WORK/$name.jsonl" "$CAPDIAG" -q -T jsonl -r "$cap")
        echo "$round $bs $bk $ts $tk $js $jk" | tee -a "$WORK/$name.runs" |
            awk -v n="$name" '{printf "  %s round %d: bare %.3f s, text %.3f s (%d MB), jsonl %.3f s (%d MB)\n", n, $1, $2, $4, $5/1024, $6, $7/1024}'
    done
    row() {  # row TOOL SECONDS_COLUMN RSS_COLUMN
        local s r lo hi rss
        s=$(awk -v c="$2" '{print $c}' "$WORK/$name.runs" | median)
        rss=$(awk -v c="$3" 'BEGIN{m=0} $c>m{m=$c} END{print m}' "$WORK/$name.runs")
        if [ "$2" = 2 ]; then r=1; lo=1; hi=1; else
            r=$(awk -v c="$2" '{print $c/$2}' "$WORK/$name.runs" | median)
            lo=$(awk -v c="$2" '{print $c/$2}' "$WORK/$name.runs" | sort -g | head -1)
            hi=$(awk -v c="$2" '{print $c/$2}' "$WORK/$name.runs" | sort -g | tail -1)
        fi
        awk -v n="$name" -v t="$1" -v p="$packets" -v mb="$mb" -v q="$reqs" -v s="$s" -v r="$r" -v lo="$lo" -v hi="$hi" -v k="$rss" \
            'BEGIN{printf "%-7s %-13s %9d %7s %9d %7.3f %8.0f %7.0f %7.0f %5.1f (%.1f-%.1f) %7.1f\n", n, t, p, mb, q, s, s*1e9/p, s*1e9/q, mb/s, r, lo, hi, k/1024}'
    }
    { row "bare loop" 2 3; row "capdiag text" 4 5; row "capdiag jsonl" 6 7; } >>"$table"
done

# --- 5. is the HTTP/2 analysis sane? -----------------------------------------------------------
{
    for name in ${captures/h1/}; do
        done_h2=$(awk '/^requests:/{for(i=1;i<NF;i++) if($(i+1)~/^done/) print $i}' "$WORK/$name.h2load.log")
        flows=$(tail -1 "$WORK/$name.jsonl" | jq -c '.flows')
        h2flows=$(jq -s '[.[] | select(.http2 != null)] | length' "$WORK/$name.jsonl")
        h2reqs=$(jq -s '[.[] | .http2.requests // 0] | add' "$WORK/$name.jsonl")
        statuses=$(jq -sc '[.[] | .http2.statuses // {} | to_entries[]] | group_by(.key)
            | map({(.[0].key): (map(.value) | add)}) | add' "$WORK/$name.jsonl")
        echo "$name check: summary .flows = $flows; flows with http2: $h2flows; sum of http2.requests = $h2reqs;" \
            "statuses $statuses; h2load done = $done_h2 -> $([ "$h2reqs" = "$done_h2" ] && echo MATCH || echo MISMATCH)"
    done
    for name in $captures; do
        printf '%s capture: %s\n' "$name" "$(grep -E 'dropped by kernel' "$WORK/$name.tcpdump.log" | tr '\n' ' ')"
    done
} >>"$table"

if [ "$TSHARK_PACKETS" -gt 0 ] && command -v tshark >/dev/null; then
    cut=$WORK/h2-first$TSHARK_PACKETS.pcap
    editcap -r "$WORK/h2.pcap" "$cut" "1-$TSHARK_PACKETS"
    ts_reqs=$(tshark -n -r "$cut" -d "tcp.port==$H2_PORT,http2" -Y "http2 && tcp.dstport == $H2_PORT" \
        -T fields -e http2.type 2>/dev/null | tr ',' '\n' | grep -cx 1)
    cd_reqs=$("$CAPDIAG" -q -T jsonl -r "$cut" | jq -s '[.[] | .http2.requests // 0] | add')
    echo "h2 check on the first $TSHARK_PACKETS packets: tshark client HEADERS frames = $ts_reqs, capdiag http2.requests = $cd_reqs" >>"$table"
fi
cat "$table"

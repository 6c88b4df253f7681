#!/usr/bin/env bash
# Packet loss of capdiag's live capture under a loopback burst of short HTTP connections, per
# capture setting (immediate mode or not, kernel buffer size), and the delivery latency each
# libpcap mode gives. Loopback only: a server on 127.0.0.1:18600 (18601 for the latency probe),
# clients connect from ephemeral ports. Every load is bounded in count and in time: the server
# exits after 45 s (alarm), each client worker stops at its share of the connections or after
# 15 s, capdiag stops after --duration 30s, the latency probe after 8 s. Needs root, gcc,
# libpcap-dev and python3. It never builds capdiag: give it a binary.
#
#   sudo bash Benchmarks/burst.sh loss       packet loss and verdicts per setting (default mode)
#   sudo bash Benchmarks/burst.sh latency    delay from capture to delivery, immediate vs batched
#   sudo bash Benchmarks/burst.sh ring       the PACKET_RX_RING geometry libpcap asks for
#
# Environment (defaults in brackets):
#   CAPDIAG      capdiag binary [/tmp/burst-capdiag]  (cp .build/release/capdiag /tmp/burst-capdiag)
#   RUNS         runs per setting [3]
#   CONNECTIONS  connections per burst [20000]      WORKERS  client processes [4]
#   RATE         connections per second, 0 = as fast as possible [0]
#   SETTINGS     names from the list in setting_args [immediate no-immediate immediate-B256M no-immediate-B256M]
#                "immediate" asks for immediate mode whichever the binary's default (--immediate-mode
#                where the binary has that flag, else nothing: before 4d9cb06 it was the default);
#                "default" passes no mode flag at all.
#   OUT          scratch directory [/tmp/capdiag-burst]
#
# Expected packets: each connection is 10 TCP segments here (handshake 3, request, response, the
# client's ACK, FIN and ACK both ways); the script also reads the kernel's TCP OutSegs counter
# across the burst (exact, but counts any other TCP traffic of the host). On loopback libpcap
# sees every packet twice (as sent and as received) and drops the sent copy in user space, so
# the kernel counters (pcap_stats received/dropped) are about twice the packet counts.
set -euo pipefail

mode=${1:-loss}
CAPDIAG=${CAPDIAG:-/tmp/burst-capdiag}
RUNS=${RUNS:-3}
CONNECTIONS=${CONNECTIONS:-20000}
WORKERS=${WORKERS:-4}
RATE=${RATE:-0}
SETTINGS=${SETTINGS:-immediate no-immediate immediate-B256M no-immediate-B256M}
OUT=${OUT:-/tmp/capdiag-burst}
PORT=18600
PROBE_PORT=18601
[[ $(id -u) == 0 ]] || { echo "needs root (live capture)" >&2; exit 1; }
[[ -x $CAPDIAG ]] || { echo "no capdiag at $CAPDIAG (cp .build/release/capdiag $CAPDIAG)" >&2; exit 1; }

# Immediate mode was the default until commit 4d9cb06, which added --immediate-mode to ask for it.
IMMEDIATE=""
if "$CAPDIAG" --help 2>/dev/null | grep -Eq '^ +--immediate-mode'; then IMMEDIATE="--immediate-mode"; fi

setting_args() {
    case $1 in
    default) echo "" ;;                                      # the binary's own default, -B 32768
    immediate) echo "$IMMEDIATE" ;;
    no-immediate) echo "--no-immediate-mode" ;;
    immediate-B256M) echo "$IMMEDIATE -B 262144" ;;
    no-immediate-B256M) echo "--no-immediate-mode -B 262144" ;;
    immediate-B2M) echo "$IMMEDIATE -B 2048" ;;
    no-immediate-B2M) echo "--no-immediate-mode -B 2048" ;;
    no-immediate-B8M) echo "--no-immediate-mode -B 8192" ;;
    no-immediate-B64M) echo "--no-immediate-mode -B 65536" ;;
    no-immediate-B128M) echo "--no-immediate-mode -B 131072" ;;
    immediate-s1600) echo "$IMMEDIATE -s 1600" ;;          # diagnosis only: cuts HTTP bodies
    *) echo "unknown setting $1" >&2; exit 64 ;;
    esac
}

mkdir -p "$OUT"

pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT

# ---------------------------------------------------------------------------------------------
# The helpers, in C so that the load generator leaves as much CPU to capdiag as it can.
cat > "$OUT/burst-server.c" <<'EOF'
/* 127.0.0.1:PORT, THREADS threads blocking in accept(); each connection: read the request head,
   answer a short 200, close. Exits after SECONDS (alarm).   burst-server PORT THREADS SECONDS */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

static int listener;
static const char response[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";

static void *serve(void *unused) {
    (void)unused;
    char buf[2048];
    for (;;) {
        int c = accept(listener, NULL, NULL);
        if (c < 0) continue;
        struct timeval tv = {2, 0};
        setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        size_t have = 0;
        while (have < sizeof buf - 1) {
            ssize_t n = read(c, buf + have, sizeof buf - 1 - have);
            if (n <= 0) break;
            have += (size_t)n;
            buf[have] = 0;
            if (strstr(buf, "\r\n\r\n")) { (void)!write(c, response, sizeof response - 1); break; }
        }
        close(c);
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 4) { fprintf(stderr, "usage: %s PORT THREADS SECONDS\n", argv[0]); return 64; }
    int port = atoi(argv[1]), threads = atoi(argv[2]), seconds = atoi(argv[3]);
    listener = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    if (bind(listener, (struct sockaddr *)&a, sizeof a) || listen(listener, 4096)) { perror("bind/listen"); return 1; }
    alarm((unsigned)seconds);
    pthread_t t;
    for (int i = 1; i < threads; i++) pthread_create(&t, NULL, serve, NULL);
    serve(NULL);
    return 0;
}
EOF
cat > "$OUT/burst-client.c" <<'EOF'
/* WORKERS processes open CONNECTIONS short connections in total to 127.0.0.1:PORT, each sending
   one HTTP request and reading the answer to EOF. Every worker stops at its share of the count
   or after SECONDS. RATE > 0 paces the total to RATE connections per second (0: flat out).
   Prints: completed failed elapsed_s     burst-client PORT CONNECTIONS WORKERS SECONDS [RATE] */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }

int main(int argc, char **argv) {
    if (argc != 5 && argc != 6) { fprintf(stderr, "usage: %s PORT CONNECTIONS WORKERS SECONDS [RATE]\n", argv[0]); return 64; }
    int port = atoi(argv[1]), total = atoi(argv[2]), workers = atoi(argv[3]);
    double seconds = atof(argv[4]), rate = argc == 6 ? atof(argv[5]) : 0;
    long *counts = mmap(NULL, 2 * sizeof(long) * (size_t)workers, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    double start = now(), deadline = start + seconds;
    for (int w = 0; w < workers; w++) {
        if (fork() == 0) {
            int share = total / workers + (w < total % workers);
            long ok = 0, bad = 0;
            char req[160], buf[1024];
            for (int i = 0; i < share && now() < deadline; i++) {
                if (rate > 0) {   /* worker w owns slots w, w+workers, ... of one global schedule */
                    double due = start + ((double)i * workers + w) / rate, wait_s = due - now();
                    if (wait_s > 0) { struct timespec ts = {(time_t)wait_s, (long)((wait_s - (time_t)wait_s) * 1e9)}; nanosleep(&ts, NULL); }
                }
                int s = socket(AF_INET, SOCK_STREAM, 0);
                struct timeval tv = {2, 0};
                setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
                setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
                int good = 0;
                if (connect(s, (struct sockaddr *)&a, sizeof a) == 0) {
                    int n = snprintf(req, sizeof req, "GET /burst/%d/%d HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n\r\n", w, i, port);
                    if (write(s, req, (size_t)n) == n) {
                        size_t have = 0; ssize_t r;
                        while ((r = read(s, buf + have, sizeof buf - 1 - have)) > 0) have += (size_t)r;
                        buf[have] = 0;
                        good = r == 0 && strncmp(buf, "HTTP/1.1 200 ", 13) == 0;
                    }
                }
                close(s);
                if (good) ok++; else bad++;
            }
            counts[2 * w] = ok; counts[2 * w + 1] = bad;
            _exit(0);
        }
    }
    while (wait(NULL) > 0) {}
    long ok = 0, bad = 0;
    for (int w = 0; w < workers; w++) { ok += counts[2 * w]; bad += counts[2 * w + 1]; }
    printf("%ld %ld %.3f\n", ok, bad, now() - start);
    return 0;
}
EOF
cat > "$OUT/latency-probe.c" <<'EOF'
/* A live capture opened as capdiag opens it (LiveCapture.swift, LiveReader.swift): snaplen
   262144, promiscuous, read timeout T ms, immediate mode on/off, buffer B KiB, nanosecond
   timestamps, non-blocking reads with poll(2) for T ms. Per packet: delay = CLOCK_REALTIME at
   delivery - the kernel's capture timestamp.
   latency-probe IFACE IMMEDIATE(0|1) TIMEOUT_MS BUFFER_KIB SECONDS FILTER */
#include <pcap/pcap.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static int cmp(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return (x > y) - (x < y); }
static double now_real(void) { struct timespec t; clock_gettime(CLOCK_REALTIME, &t); return t.tv_sec + t.tv_nsec / 1e9; }
static double now_mono(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }

int main(int argc, char **argv) {
    if (argc != 7) { fprintf(stderr, "usage: %s IFACE IMMEDIATE TIMEOUT_MS BUFFER_KIB SECONDS FILTER\n", argv[0]); return 64; }
    char err[PCAP_ERRBUF_SIZE];
    int timeout = atoi(argv[3]);
    pcap_t *p = pcap_create(argv[1], err);
    if (!p) { fprintf(stderr, "%s\n", err); return 2; }
    pcap_set_snaplen(p, 262144);
    pcap_set_promisc(p, 1);
    pcap_set_timeout(p, timeout);
    pcap_set_immediate_mode(p, atoi(argv[2]));
    pcap_set_buffer_size(p, atoi(argv[4]) * 1024);
    pcap_set_tstamp_precision(p, PCAP_TSTAMP_PRECISION_NANO);
    if (pcap_activate(p) < 0) { fprintf(stderr, "activate: %s\n", pcap_geterr(p)); return 2; }
    struct bpf_program prog;
    if (pcap_compile(p, &prog, argv[6], 1, PCAP_NETMASK_UNKNOWN) || pcap_setfilter(p, &prog)) { fprintf(stderr, "filter: %s\n", pcap_geterr(p)); return 2; }
    pcap_setnonblock(p, 1, err);
    int fd = pcap_get_selectable_fd(p);
    size_t cap = 1 << 22, n = 0;
    double *delay = malloc(cap * sizeof *delay), end = now_mono() + atof(argv[5]);
    while (now_mono() < end) {
        struct pcap_pkthdr *h; const u_char *d;
        int r = pcap_next_ex(p, &h, &d);
        if (r == 1) { if (n < cap) delay[n++] = now_real() - (h->ts.tv_sec + h->ts.tv_usec / 1e9); }
        else if (r == 0) { struct pollfd e = {fd, POLLIN, 0}; poll(&e, 1, timeout); }
        else break;
    }
    struct pcap_stat st; pcap_stats(p, &st);
    qsort(delay, n, sizeof *delay, cmp);
    double sum = 0; for (size_t i = 0; i < n; i++) sum += delay[i];
#define Q(q) (n ? delay[(size_t)((q) * (n - 1))] * 1e3 : 0)
    printf("packets %zu  delay_ms mean %.2f p50 %.2f p90 %.2f p99 %.2f max %.2f  kernel recv %u drop %u\n",
           n, n ? sum / n * 1e3 : 0, Q(0.5), Q(0.9), Q(0.99), Q(1.0), st.ps_recv, st.ps_drop);
    return 0;
}
EOF
cat > "$OUT/ringshim.c" <<'EOF'
/* LD_PRELOAD: prints the PACKET_RX_RING request libpcap makes. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <sys/socket.h>
#include <linux/if_packet.h>
int setsockopt(int fd, int level, int name, const void *val, socklen_t len) {
    static int (*real)(int, int, int, const void *, socklen_t);
    if (!real) real = dlsym(RTLD_NEXT, "setsockopt");
    if (level == SOL_PACKET && name == PACKET_RX_RING && len >= sizeof(struct tpacket_req)) {
        const struct tpacket_req *r = val;
        if (r->tp_block_size)
            fprintf(stderr, "[ring] block_size=%u block_nr=%u frame_size=%u frame_nr=%u mapped=%u KiB\n", r->tp_block_size,
                    r->tp_block_nr, r->tp_frame_size, r->tp_frame_nr, r->tp_block_size / 1024 * r->tp_block_nr);
    }
    return real(fd, level, name, val, len);
}
EOF
gcc -O2 -o "$OUT/burst-server" "$OUT/burst-server.c" -lpthread
gcc -O2 -o "$OUT/burst-client" "$OUT/burst-client.c"
gcc -O2 -o "$OUT/latency-probe" "$OUT/latency-probe.c" -lpcap
gcc -O2 -shared -fPIC -o "$OUT/ringshim.so" "$OUT/ringshim.c" -ldl

outsegs() { awk '/^Tcp:/ && $2 ~ /^[0-9]/ {print $12 + $13}' /proc/net/snmp; }   # OutSegs + RetransSegs

# Server-side TIME_WAIT sockets of the previous burst: wait (at most 65 s) so runs start alike.
settle() {
    local deadline=$((SECONDS + 65))
    while ((SECONDS < deadline)) && [[ $(ss -Htan state time-wait "( sport = :$PORT )" | wc -l) -gt 0 ]]; do sleep 2; done
}

# ---------------------------------------------------------------------------------------------
if [[ $mode == ring ]]; then
    for setting in immediate no-immediate immediate-B256M no-immediate-B256M immediate-B2M no-immediate-B2M immediate-s1600; do
        # shellcheck disable=SC2046
        line=$(LD_PRELOAD="$OUT/ringshim.so" "$CAPDIAG" -q -T json -i lo $(setting_args "$setting") --duration 1s \
            tcp port $PORT 2>&1 >/dev/null | grep '^\[ring\]' || true)
        printf '%-20s %s\n' "$setting" "$line"
    done
    exit 0
fi

if [[ $mode == latency ]]; then
    # A light, steady load (17 and 173 connections/s: not a divisor of the timeouts, so arrival
    # times fall at every phase of the kernel's block timer) and a heavy one (2000/s).
    for load in "17 85" "173 865" "2000 10000"; do
        read -r rate count <<<"$load"
        for cfg in "1 100" "0 100" "0 50" "0 20" "0 10"; do
            read -r immediate timeout <<<"$cfg"
            "$OUT/burst-server" $PROBE_PORT 2 14 & server=$!; pids+=("$server")
            "$OUT/latency-probe" lo "$immediate" "$timeout" 32768 8 "tcp port $PROBE_PORT" >"$OUT/latency.out" & probe=$!
            pids+=("$probe")
            sleep 1
            client=$("$OUT/burst-client" $PROBE_PORT "$count" 2 6 "$rate")
            wait "$probe" || true
            kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true
            printf 'immediate=%s timeout=%3sms  %5s conn/s (%s)  %s\n' "$immediate" "$timeout" "$rate" "$client" "$(cat "$OUT/latency.out")"
        done
    done
    exit 0
fi

[[ $mode == loss ]] || { echo "mode: loss, latency or ring" >&2; exit 64; }
results="$OUT/results-rate$RATE.tsv"
printf 'setting\trun\tcompleted\tfailed\tburst_s\texpected\toutsegs\tread\tkernel_received\tkernel_dropped\tflows\tflows_SF\tflagged\tworst\tcauses\tcpu_user_s\tcpu_sys_s\tmax_rss_kb\tload1\n' >"$results"
for setting in $SETTINGS; do
    args=$(setting_args "$setting")
    echo "# $setting: capdiag -q -T json -i lo $args --duration 30s tcp port $PORT" >&2
    for ((run = 1; run <= RUNS; run++)); do
        settle
        base="$OUT/$setting-rate$RATE-run$run"
        load1=$(cut -d' ' -f1 /proc/loadavg)
        "$OUT/burst-server" $PORT 4 45 & server=$!; pids+=("$server")
        # shellcheck disable=SC2086
        /usr/bin/time -f '%U %S %M' -o "$base.time" "$CAPDIAG" -q -T json -i lo $args --duration 30s tcp port $PORT \
            >"$base.json" 2>"$base.err" & capdiag=$!
        pids+=("$capdiag")
        sleep 1
        before=$(outsegs)
        read -r completed failed elapsed < <("$OUT/burst-client" $PORT "$CONNECTIONS" "$WORKERS" 15 "$RATE")
        sleep 0.5
        after=$(outsegs)
        wait "$capdiag" || true
        kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true
        python3 - "$base" "$setting" "$run" "$completed" "$failed" "$elapsed" "$((after - before))" "$load1" >>"$results" <<'EOF'
import json, sys
base, setting, run, completed, failed, elapsed, outsegs, load1 = sys.argv[1:]
summary = json.load(open(base + ".json"))["summary"]
capture, diagnosis = summary["capture"], summary["diagnosis"]
kernel = capture.get("kernel") or {}
causes = {}
for upstream in diagnosis.get("upstreams", []):
    for cause in upstream.get("causes", []):
        causes[cause["code"]] = causes.get(cause["code"], 0) + cause["count"]
for failure in diagnosis.get("client_failures", []):
    code = failure.get("code", "client_failure")
    causes[code] = causes.get(code, 0) + failure.get("count", 1)
if diagnosis.get("gateways"):
    causes["gateways_inferred"] = len(diagnosis["gateways"])
user, system, rss = open(base + ".time").read().split()[-3:]
print("\t".join(map(str, [
    setting, run, completed, failed, elapsed, 10 * int(completed), outsegs, capture["packets"]["read"],
    kernel.get("received", ""), kernel.get("dropped", ""), summary["flows"]["total"],
    summary["flows"]["by_conn_state"].get("SF", 0), summary["flows"]["flagged"], diagnosis.get("worst_severity", ""),
    ",".join(f"{k}:{v}" for k, v in sorted(causes.items())) or "-", user, system, rss, load1])))
EOF
        tail -1 "$results"
        # The flow list is large (~30 MB a run); keep the summary only.
        python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); json.dump(d["summary"], open(sys.argv[1], "w"))' "$base.json"
    done
done
echo
echo "rate=${RATE} (0 = as fast as possible), $CONNECTIONS connections, $WORKERS workers; all rows: $results"
python3 - "$results" <<'EOF'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
print(f"{'setting':20} {'run':>3} {'done':>6} {'burst s':>7} {'expected':>8} {'OutSegs':>8} {'read':>7} {'lost %':>6} "
      f"{'k.recv':>7} {'k.drop':>7} {'flows':>6} {'SF':>6} {'flagged':>7} {'worst':>6}  causes")
for r in rows:
    lost = 100 * (int(r["outsegs"]) - int(r["read"])) / max(1, int(r["outsegs"]))
    print(f"{r['setting']:20} {r['run']:>3} {r['completed']:>6} {r['burst_s']:>7} {r['expected']:>8} {r['outsegs']:>8} "
          f"{r['read']:>7} {lost:6.2f} {r['kernel_received']:>7} {r['kernel_dropped']:>7} {r['flows']:>6} {r['flows_SF']:>6} "
          f"{r['flagged']:>7} {r['worst']:>6}  {r['causes']}")
EOF

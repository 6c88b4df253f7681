#!/usr/bin/env bash
# Time and peak memory of `capdiag -q` on hostile captures (Benchmarks/hostile/make-hostile.py),
# beside the bare libpcap read loop on the same file.
#   bash Benchmarks/hostile/run.sh [SCALE]    (SCALE 1 = full size, the default; 0.1 = a tenth)
#   CAPDIAG=path/to/capdiag bash Benchmarks/hostile/run.sh   measures another build
# Captures are cached in Benchmarks/data/hostile/. Prints one line per shape: seconds, ratio to
# the bare loop, peak RSS. Run on an idle machine.
set -euo pipefail
cd "$(dirname "$0")/../.."
scale=${1:-1}
data=Benchmarks/data/hostile
mkdir -p "$data"
gcc -O2 -o "$data/pcap_loop" Benchmarks/pcap_loop.c -lpcap
if [ -z "${CAPDIAG:-}" ]; then
    swift build -c release --product capdiag >/dev/null
    CAPDIAG=.build/release/capdiag
fi

# shape, default N, what it is
shapes=(
    "ooo 262144 one-byte out-of-order segments"
    "pipeline 100000 pipelined request/response pairs"
    "dns 200000 DNS-over-TCP queries and answers"
    "syn 1000000 SYN-only flows"
    "memcap 1400 connections holding 200 KB out of order"
)

run() {  # run OUTFILE COMMAND...: prints "seconds kb"
    local out=$1; shift
    /usr/bin/time -f "%e %M" -o "$out" "$@" >/dev/null 2>&1 || true
    cat "$out"
}

printf "%-9s %9s %9s %9s %8s %10s  %s\n" shape N "MB" seconds "x loop" "peak RSS" "what"
for line in "${shapes[@]}"; do
    read -r shape count what <<<"$line"
    n=$(awk -v c="$count" -v s="$scale" 'BEGIN{n=int(c*s); print n < 10 ? 10 : n}')
    capture=$data/$shape-$n.pcap
    [ -f "$capture" ] || python3 Benchmarks/hostile/make-hostile.py "$shape" "$capture" "$n"
    cat "$capture" >/dev/null  # warm the page cache
    read -r base_s _ < <(run /tmp/capdiag-hostile.time "$data/pcap_loop" "$capture")
    read -r s kb < <(run /tmp/capdiag-hostile.time "$CAPDIAG" -q -r "$capture")
    awk -v sh="$shape" -v n="$n" -v mb="$(stat -c %s "$capture")" -v s="$s" -v b="$base_s" -v kb="$kb" -v w="$what" \
        'BEGIN{b = b < 0.01 ? 0.01 : b; printf "%-9s %9d %9.1f %8.2fs %8.0fx %7.0f MB  %s\n", sh, n, mb/1e6, s, s/b, kb/1024, w}'
done

#!/usr/bin/env bash
# Throughput and peak memory of `capdiag -r` on a large deterministic capture, beside a bare
# libpcap read loop (C, pcap_next_ex only) and `tshark -q -z conv,tcp`.
#   bash Benchmarks/run.sh [SIZE_MB]     (default 600; the capture is cached in Benchmarks/data/)
# Prints one line per tool: seconds, packets/s, MB/s, peak RSS. Run on an idle machine.
set -euo pipefail
cd "$(dirname "$0")/.."
size=${1:-600}
bash scripts/setup.sh
mkdir -p Benchmarks/data
capture=Benchmarks/data/bench-${size}MB.pcap
[ -f "$capture" ] || python3 Benchmarks/make-capture.py "$capture" "$size"
gcc -O2 -o Benchmarks/data/pcap_loop Benchmarks/pcap_loop.c -lpcap
swift build -c release --product capdiag >/dev/null
cat "$capture" >/dev/null  # warm the page cache so every tool reads from memory
packets=$(Benchmarks/data/pcap_loop "$capture" | cut -d' ' -f1)
bytes=$(stat -c %s "$capture")

measure() {  # measure NAME COMMAND...: best of three runs
    local name=$1; shift
    local best="" rss=""
    for _ in 1 2 3; do
        /usr/bin/time -f "%e %M" -o /tmp/capdiag-bench.time "$@" >/dev/null 2>&1
        read -r seconds kb < /tmp/capdiag-bench.time
        if [ -z "$best" ] || awk "BEGIN{exit !($seconds < $best)}"; then best=$seconds; rss=$kb; fi
    done
    awk -v n="$name" -v s="$best" -v p="$packets" -v b="$bytes" -v k="$rss" \
        'BEGIN{printf "%-28s %7.2f s %10.0f packets/s %8.1f MB/s %8.0f MB peak RSS\n", n, s, p/s, b/1e6/s, k/1024}'
}
echo "capture: $capture, $packets packets, $((bytes / 1000000)) MB"
measure "pcap_next_ex loop (C)" Benchmarks/data/pcap_loop "$capture"
measure "capdiag -r (text)" .build/release/capdiag -q -r "$capture"
measure "capdiag -r -T jsonl" .build/release/capdiag -q -T jsonl -r "$capture"
if [ "${SKIP_TSHARK:-0}" != 1 ]; then
    measure "tshark -q -z conv,tcp" tshark -n -q -r "$capture" -z conv,tcp
fi

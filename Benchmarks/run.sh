#!/usr/bin/env bash
# The benchmark of issue 15: capdiag against a bare libpcap loop, run alternately on the same
# files (the machine is shared, so only ratios of neighbouring runs mean anything), with peak RSS.
#
#   bash Benchmarks/run.sh [ROUNDS]          (default 3 rounds; ROUNDS=1 for a quick look)
#
# Files (cached in Benchmarks/data/, built once):
#   synth-100M, synth-1G   ../shared/bench/gen_synth.py --seed 1 (deterministic synthetic HTTP)
#   gateway-512MB          Benchmarks/record-gateway.sh: real nginx in front of real upstreams
#                          on loopback, with resets, timeouts and a refused port (needs root)
#   synth-4G (BENCH_4G=1)  for the per-packet cost from 100 MB to 4 GB
#   BENCH_FILES="a.pcap b.pcap" measures those files instead
# Tools per round, in this order: the bare loop (../shared/bench/bare_pcap.c, gcc -O2),
# `capdiag -q -r` (text, diagnosis included), `capdiag -q -T jsonl -r`, and `tcptrace -n` when
# installed (BENCH_TCPTRACE=1 installs it). Prints, per file and tool, the median seconds, the
# ratio to the bare loop's median, and the largest peak RSS.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
shared=${CAPDIAG_SHARED:-../shared}
data=Benchmarks/data
mkdir -p "$data"
bash scripts/setup.sh
if [ "${BENCH_TCPTRACE:-0}" = 1 ] && ! command -v tcptrace >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tcptrace >/dev/null
fi
gcc -O2 -o "$data/bare_pcap" "$shared/bench/bare_pcap.c" -lpcap
swift build -c release --product capdiag >/dev/null
capdiag=.build/release/capdiag

files=()
# BENCH_FILES="a.pcap b.pcap" measures those instead (your own captures).
read -r -a files <<< "${BENCH_FILES:-}"
for size in $([ -z "${BENCH_FILES:-}" ] && echo 100M 1G) $([ "${BENCH_4G:-0}" = 1 ] && echo 4G); do
    file=$data/synth-$size.pcap
    [ -f "$file" ] || python3 "$shared/bench/gen_synth.py" -o "$file" --size "$size" --seed 1
    files+=("$file")
done
gateway=$data/gateway-512MB.pcap
if [ -z "${BENCH_FILES:-}" ]; then
    if [ ! -f "$gateway" ] && [ "$(id -u)" = 0 ]; then bash Benchmarks/record-gateway.sh "$gateway" 512; fi
    [ -f "$gateway" ] && files+=("$gateway")
fi

run() {  # run LOG COMMAND...: appends "seconds kilobytes" to LOG
    local log=$1; shift
    /usr/bin/time -f "%e %M" -o "$log.one" "$@" >/dev/null 2>&1 || true
    cat "$log.one" >> "$log"
}
for file in "${files[@]}"; do
    cat "$file" >/dev/null  # page cache warm: every tool reads from memory
    packets=$("$data/bare_pcap" "$file" 2>/dev/null | grep -o '[0-9]\+' | head -1 || echo "?")
    logs=$(mktemp -d)
    for _ in $(seq "$rounds"); do
        run "$logs/bare" "$data/bare_pcap" "$file"
        run "$logs/text" "$capdiag" -q -r "$file"
        run "$logs/jsonl" "$capdiag" -q -T jsonl -r "$file"
        if command -v tcptrace >/dev/null; then run "$logs/tcptrace" tcptrace -n "$file"; fi
    done
    echo "== $file: $(stat -L -c %s "$file") bytes, $packets packets, $rounds rounds"
    python3 - "$logs" <<'EOF'
import os, statistics, sys
logs = sys.argv[1]
def read(name):
    path = os.path.join(logs, name)
    if not os.path.exists(path): return None
    rows = [line.split() for line in open(path) if line.strip()]
    return statistics.median(float(r[0]) for r in rows), max(int(r[1]) for r in rows)
bare = read("bare")
for name, label in [("bare", "bare pcap_next_ex loop"), ("text", "capdiag -r (text)"), ("jsonl", "capdiag -T jsonl"), ("tcptrace", "tcptrace -n")]:
    got = read(name)
    if got is None: continue
    seconds, kb = got
    # /usr/bin/time has 10 ms resolution: no ratio for a file the bare loop reads faster.
    ratio = f"{seconds / bare[0]:5.1f}x" if bare[0] >= 0.05 else "    –"
    print(f"  {label:26s} {seconds:7.2f} s  {ratio}  {kb / 1024:7.0f} MB peak RSS")
EOF
    rm -rf "$logs"
done

#!/usr/bin/env bash
# Heap allocations of `capdiag -r` (text report) at two capture sizes, counted by valgrind.
# If analysis allocated per packet, the difference would grow with the packet count; what is
# left grows with flows (the flow dictionary and slab growing, flows leaving the table).
#   bash Benchmarks/allocations.sh
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || apt-get install -y -qq valgrind >/dev/null
swift build -c release --product capdiag >/dev/null
mkdir -p Benchmarks/data
for size in 6 60; do
    capture=Benchmarks/data/bench-${size}MB.pcap
    [ -f "$capture" ] || python3 Benchmarks/make-capture.py "$capture" "$size" >/dev/null
    allocs=$(valgrind --tool=memcheck --leak-check=no .build/release/capdiag -q -r "$capture" 2>&1 >/dev/null \
        | sed -n 's/.*total heap usage: \([0-9,]*\) allocs.*/\1/p' | tr -d ,)
    packets=$(.build/release/capdiag -q -T jsonl -r "$capture" | tail -1 | python3 -c 'import json,sys; s=json.load(sys.stdin); print(s["capture"]["packets"]["read"], s["flows"]["total"])')
    echo "${size} MB: packets flows = ${packets}; heap allocations = ${allocs}"
done

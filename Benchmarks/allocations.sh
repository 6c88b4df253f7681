#!/usr/bin/env bash
# Heap allocations of `capdiag -r` (text report), counted by valgrind on three captures that
# differ in flows and in packets per flow, then split into a cost per flow and per packet by
# solving allocations = fixed + per_flow × flows + per_packet × packets.
#   bash Benchmarks/allocations.sh
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || apt-get install -y -qq valgrind >/dev/null
swift build -c release --product capdiag >/dev/null
mkdir -p Benchmarks/data
rows=()
for spec in "6 6" "60 6" "60 30"; do
    set -- $spec
    capture=Benchmarks/data/alloc-${1}MB-${2}seg.pcap
    [ -f "$capture" ] || python3 Benchmarks/make-capture.py "$capture" "$1" "$2" >/dev/null
    allocs=$(valgrind --tool=memcheck --leak-check=no .build/release/capdiag -q -r "$capture" 2>&1 >/dev/null \
        | sed -n 's/.*total heap usage: \([0-9,]*\) allocs.*/\1/p' | tr -d ,)
    read -r packets flows < <(.build/release/capdiag -q -T jsonl -r "$capture" | tail -1 \
        | python3 -c 'import json,sys; s=json.load(sys.stdin); print(s["capture"]["packets"]["read"], s["flows"]["total"])')
    echo "$capture: $packets packets, $flows flows, $allocs heap allocations"
    rows+=("$allocs $flows $packets")
done
python3 - "${rows[@]}" <<'PY'
import sys
import numpy as np
rows = [list(map(float, r.split())) for r in sys.argv[1:]]
a = np.array([[1, r[1], r[2]] for r in rows]); b = np.array([r[0] for r in rows])
fixed, per_flow, per_packet = np.linalg.solve(a, b)
print(f"fixed {fixed:.0f}, per flow {per_flow:.2f}, per packet {per_packet:.4f} allocations")
PY

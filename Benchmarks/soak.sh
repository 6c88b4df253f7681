#!/usr/bin/env bash
# A long live capture as a service would run it: two capdiag -i lo side by side on the same
# loopback traffic (127.0.0.1 only, bounded in time and count), one with the default 15-minute
# window and one with a 3-minute window, each writing metrics every 10 s. Their resident memory
# is sampled every 10 s; at the end the metrics' refusal and reset counters are compared with
# what the traffic generator did, and the kernel drop counters are read.
#   sudo bash Benchmarks/soak.sh [SECONDS] [CONNECTIONS_PER_SECOND]    (default 1800 s, 200/s)
# The traffic: out of every 10 connections 8 HTTP exchanges, 1 refused, 1 reset after the
# request (scripts/live-traffic.py soak). Results: /tmp/capdiag-soak/ (rss.tsv, metrics, stdout).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-1800}
rate=${2:-200}
base=18300
out=/tmp/capdiag-soak
rm -rf "$out"; mkdir -p "$out"
swift build -c release --product capdiag >/dev/null
binary=.build/release/capdiag
filter="tcp portrange $base-$((base + 2))"
"$binary" -q -i lo --duration "$((seconds + 75))s" --interval 10 --metrics-file "$out/default.prom" \
    --jsonl-file "$out/default.jsonl" $filter > "$out/default.txt" &
default=$!
"$binary" -q -i lo --duration "$((seconds + 75))s" --interval 10 --window 3m --metrics-file "$out/window3m.prom" $filter \
    > "$out/window3m.txt" &
short=$!
trap 'kill $default $short 2>/dev/null || true' EXIT
sleep 2
python3 scripts/live-traffic.py soak "$base" "$seconds" "$rate" > "$out/traffic.json" &
traffic=$!
rss() { awk '/VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$1/status" 2>/dev/null || echo 0; }
printf 'seconds\tdefault_window_MB\twindow_3m_MB\n' | tee "$out/rss.tsv"
for ((t = 10; t <= seconds; t += 10)); do
    sleep 10
    printf '%d\t%s\t%s\n' "$t" "$(rss $default)" "$(rss $short)" | tee -a "$out/rss.tsv"
done
wait "$traffic"
wait "$default" || true
wait "$short" || true
trap - EXIT
echo "traffic: $(cat "$out/traffic.json")"
for run in default window3m; do
    refused=$(awk '/^capdiag_upstream_failures_total/ && /connection_refused/ {s += $2} END {print s + 0}' "$out/$run.prom")
    reset=$(awk '/^capdiag_upstream_failures_total/ && /upstream_reset/ {s += $2} END {print s + 0}' "$out/$run.prom")
    drops=$(awk '/^capdiag_kernel_dropped_packets_total/ {print $2}' "$out/$run.prom")
    echo "$run: metrics count $refused refused and $reset reset connections; kernel drops $drops"
done
# RSS at minute 5 against every later sample.
python3 - "$out/rss.tsv" <<'PY'
import sys
rows = [line.split("\t") for line in open(sys.argv[1]).read().split("\n")[1:] if line]
at5 = {i: float(r[i]) for r in rows if int(r[0]) == 300 for i in (1, 2)}
for i, name in ((1, "default window (15m)"), (2, "window 3m")):
    if i not in at5: continue
    later = [float(r[i]) for r in rows if int(r[0]) >= 300]
    print(f"{name}: RSS at 5 min {at5[i]:.1f} MB, after it {min(later):.1f}-{max(later):.1f} MB "
          f"({(max(later) / at5[i] - 1) * 100:+.1f} % at most)")
PY

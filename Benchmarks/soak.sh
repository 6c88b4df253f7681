#!/usr/bin/env bash
# Memory of a long live capture: capdiag -i lo watches loopback HTTP connections generated at
# a fixed rate (127.0.0.1 only, bounded in time and count) and its resident memory is sampled
# every 10 s. Flows leave the table as they end, so memory should stop growing once the first
# terminated flows have passed their 60 s linger.
#   sudo bash Benchmarks/soak.sh [SECONDS] [CONNECTIONS_PER_SECOND]    (default 180 s, 50/s)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-180}
rate=${2:-50}
swift build -c release --product capdiag >/dev/null
.build/release/capdiag -q -i lo --duration "$((seconds + 5))s" 'tcp port 18300' > /tmp/capdiag-soak.txt &
capdiag=$!
sleep 1
python3 scripts/live-traffic.py soak 18300 "$seconds" "$rate" &
traffic=$!
echo "seconds  rss_MB  (capdiag pid $capdiag, $rate connections/s for $seconds s)"
for ((t = 10; t <= seconds; t += 10)); do
    sleep 10
    rss=$(awk '/VmRSS/ {print $2}' "/proc/$capdiag/status" 2>/dev/null || echo 0)
    printf '%7d  %6.1f\n' "$t" "$(echo "$rss / 1024" | bc -l)"
done
wait "$traffic" || true
wait "$capdiag" || true
grep -E "TCP flows|packets:" /tmp/capdiag-soak.txt

#!/usr/bin/env bash
# Records real gateway logs, timestamps and all, beside the capture of the same requests: for each
# scenario the lab's `tcpdump -i any` capture in the gateway namespace (both legs), nginx's raw
# error log, its access log in capdiag's recommended key=value format, and HAProxy's log (the
# lab's log-format with %bi:%bp, or the stock `option httplog` one), plus a label (label.py) that
# ties every logged request to its connections in the capture.
#
#   sudo bash Captures/lab/gateway-logs/record.sh [SCENARIO ...]   (the default set when none is named)
#
# It runs ../lab.sh with CAPDIAG_LAB_OUT (the lab's own captures and labels go to a temporary
# folder and are not touched) and CAPDIAG_LAB_RAW_LOGS (raw logs). The gateways run with
# TZ=$CAPDIAG_GATEWAY_TZ (default Asia/Kolkata, UTC+05:30): nginx's error log and HAProxy's dates
# are local time without a zone, so a zone other than UTC shows whether a reader treats them
# as naive wall-clock time. Same network rule as lab.sh: only the lab's namespaces are addressed,
# every client loop is bounded, everything started is stopped by PID, namespaces are deleted.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tz=${CAPDIAG_GATEWAY_TZ:-Asia/Kolkata}
[ -e "/usr/share/zoneinfo/$tz" ] || { echo "record.sh: no zoneinfo for $tz" >&2; exit 2; }
command -v tshark >/dev/null || { echo "record.sh: label.py needs tshark (wireshark's tshark package)" >&2; exit 2; }
scenarios=("$@")
if [ ${#scenarios[@]} -eq 0 ]; then
    scenarios=(healthy refused syn-dropped icmp-prohibited reset-after-request fin-without-answer garbage
        invalid-header big-headers slow-upstream keepalive-race tls-plain-http tls-untrusted failover mixed
        upstream-503 no-live-upstreams haproxy-refused haproxy-reset-after-request haproxy-fin-without-answer
        haproxy-slow-upstream haproxy-keepalive-race haproxy-httplog)
fi
tmp=$(mktemp -d /tmp/capdiag-gateway-logs.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/lab" "$tmp/raw"
TZ=$tz CAPDIAG_LAB_OUT="$tmp/lab" CAPDIAG_LAB_RAW_LOGS="$tmp/raw" \
    CAPDIAG_LAB_COMMAND="sudo bash Captures/lab/gateway-logs/record.sh" bash "$here/../lab.sh" "${scenarios[@]}"
for name in "${scenarios[@]}"; do
    [ -f "$tmp/lab/$name.any.pcap" ] || { echo "record.sh: $name: no capture" >&2; exit 1; }
    rm -f "$here/$name".*
    cp "$tmp/lab/$name.any.pcap" "$here/$name.any.pcap"
    for log in nginx-error nginx-access haproxy; do
        [ ! -f "$tmp/raw/$name.$log.log" ] || cp "$tmp/raw/$name.$log.log" "$here/$name.$log.log"
    done
    python3 "$here/label.py" "$name" "$tmp/lab/$name.json" "$here" "$tz"
done
du -sh "$here"

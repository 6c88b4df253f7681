#!/usr/bin/env bash
# First run on a fresh Debian machine: installs what is missing, builds capdiag in release
# mode, and analyses the sample captures.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
swift build -c release --product capdiag
.build/release/capdiag -r Captures/lo-refused.pcap -r Captures/lo-http-keepalive.pcap -r Captures/any-server-reset.pcap
# A ticket report and the offending flows as pcaps, for the lab's keep-alive race.
.build/release/capdiag -q -r Captures/lab/keepalive-race.any.pcap --report demo-report.md --export demo-exports >/dev/null
echo "report: demo-report.md, flows: demo-exports/"

#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds, runs every test (unit, end-to-end
# on Captures/, tshark cross-check and robustness on the public corpus).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --tests
# The public corpus lives beside the repository (../shared/captures/public); a clone elsewhere
# can point at it with CAPDIAG_PUBLIC_CAPTURES.
if [ -z "${CAPDIAG_PUBLIC_CAPTURES:-}" ] && [ ! -f ../shared/captures/public/MANIFEST.tsv ]; then
    found=$(find / -maxdepth 5 \( -path /proc -o -path /sys -o -path /usr -o -path /opt -o -path /var \) -prune \
        -o -type f -path '*/shared/captures/public/MANIFEST.tsv' -print 2>/dev/null | head -1 || true)
    if [ -n "$found" ]; then export CAPDIAG_PUBLIC_CAPTURES=$(dirname "$found"); fi
fi
if [ -z "${CAPDIAG_PUBLIC_CAPTURES:-}" ] && [ ! -f ../shared/captures/public/MANIFEST.tsv ]; then
    echo "warning: public capture corpus not found; its tests will be skipped" >&2
fi
swift build --build-tests
# The packages a gateway host gets (static binary, tarball, .deb); the Packaging tests install
# the .deb into an empty root and run it there.
export CAPDIAG_PACKAGE_DIR=/tmp/capdiag-dist-test
bash scripts/package.sh "$CAPDIAG_PACKAGE_DIR" >/dev/null
swift test
# A short, bounded whole-CLI mutation run (the long runs are `python3 scripts/fuzz-cli.py
# --binary .build/release/capdiag --seconds 1800`, figures in the README): any crash, hang or
# broken JSON fails the suite, with the mutant kept in /tmp/capdiag-fuzz-ci.
python3 scripts/fuzz-cli.py --binary .build/debug/capdiag --seconds 45 --seed 1 --out /tmp/capdiag-fuzz-ci

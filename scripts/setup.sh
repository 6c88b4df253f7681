#!/usr/bin/env bash
# Installs what capdiag needs on Debian, only when missing: libpcap-dev and zlib1g-dev to build,
# the decompressors for compressed captures; with --tests also what the test suite uses
# (tcpdump, tshark, chromium for the HTML report check, jq, curl and promtool for the live stream
# and metrics checks, binutils, groff and systemd-analyze for the package checks).
set -euo pipefail
# What building and running capdiag needs; `--tests` adds what the test suite uses.
tests=false
[ "${1:-}" = --tests ] && tests=true
missing=()
dpkg -s libpcap-dev >/dev/null 2>&1 || missing+=(libpcap-dev)
# zlib reads gzip-compressed gateway logs (CapdiagGatewayLogs).
dpkg -s zlib1g-dev >/dev/null 2>&1 || missing+=(zlib1g-dev)
# Compressed captures (.pcap.gz, .zst, .xz, .bz2) stream through their decompressor.
command -v gzip >/dev/null 2>&1 || missing+=(gzip)
command -v zstd >/dev/null 2>&1 || missing+=(zstd)
command -v xz >/dev/null 2>&1 || missing+=(xz-utils)
command -v bzip2 >/dev/null 2>&1 || missing+=(bzip2)
if $tests; then
    command -v tshark >/dev/null 2>&1 || missing+=(tshark)
    command -v tcpdump >/dev/null 2>&1 || missing+=(tcpdump)
    # jq reads the live JSON Lines stream in a test, as a log pipeline would.
    command -v jq >/dev/null 2>&1 || missing+=(jq)
    # Headless Chromium checks that the HTML report loads and draws its diagrams (tests only:
    # the demo needs no browser).
    command -v chromium >/dev/null 2>&1 || missing+=(chromium)
    # Prometheus' own checker (promtool) validates the metrics exposition; curl scrapes it live.
    command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
    command -v curl >/dev/null 2>&1 || missing+=(curl)
    # The package test: the static binary stripped, its man page rendered, its unit verified.
    command -v strip >/dev/null 2>&1 || missing+=(binutils)
    command -v groff >/dev/null 2>&1 || missing+=(groff-base)
    command -v man >/dev/null 2>&1 || missing+=(man-db)
    command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
fi
if [ ${#missing[@]} -gt 0 ]; then
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    # Packages with services (prometheus) must not start them: only promtool is wanted.
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null && $SUDO chmod +x /usr/sbin/policy-rc.d
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
    $SUDO rm -f /usr/sbin/policy-rc.d
fi

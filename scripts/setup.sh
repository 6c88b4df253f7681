#!/usr/bin/env bash
# Installs what capdiag needs on Debian (libpcap-dev to build; tcpdump and tshark for the
# tests and the lab; chromium for the HTML report check), only when missing.
set -euo pipefail
missing=()
dpkg -s libpcap-dev >/dev/null 2>&1 || missing+=(libpcap-dev)
command -v tshark >/dev/null 2>&1 || missing+=(tshark)
command -v tcpdump >/dev/null 2>&1 || missing+=(tcpdump)
# jq reads the live JSON Lines stream in a test, as a log pipeline would.
command -v jq >/dev/null 2>&1 || missing+=(jq)
# Headless Chromium checks that the HTML report loads and draws its diagrams.
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

#!/usr/bin/env bash
# Writes capdiag's outputs for every capture in Captures/ and the public corpus into DIR, so two
# builds can be compared byte for byte (a refactoring must not change any output):
#   bash scripts/output-snapshot.sh /tmp/before [CAPDIAG]; (change, rebuild)
#   bash scripts/output-snapshot.sh /tmp/after [CAPDIAG]; diff -r /tmp/before /tmp/after
# Per capture: text, JSON, JSON Lines, and for Captures/ also the Markdown and HTML reports and
# the exported flows (file names and sizes).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: output-snapshot.sh DIR [CAPDIAG]}
capdiag=$(realpath "${2:-.build/release/capdiag}")
corpus=${CAPDIAG_PUBLIC_CAPTURES:-../shared/captures/public}
mkdir -p "$out"
snapshot() {  # snapshot NAME FILE [reports]
    local name=$1 file=$2
    "$capdiag" -q -r "$file" > "$out/$name.txt" 2>/dev/null || true
    "$capdiag" -q -T json -r "$file" > "$out/$name.json" 2>/dev/null || true
    "$capdiag" -q -T jsonl -r "$file" > "$out/$name.jsonl" 2>/dev/null || true
    if [ "${3:-}" = reports ]; then
        local dir; dir=$(mktemp -d)
        (cd "$dir" && "$capdiag" -q -r "$file" --report r.md --export flows > /dev/null 2>&1 || true
         "$capdiag" -q -r "$file" --report r.html > /dev/null 2>&1 || true)
        cp "$dir/r.md" "$out/$name.md" 2>/dev/null || true
        cp "$dir/r.html" "$out/$name.html" 2>/dev/null || true
        (cd "$dir" && find flows -type f -printf '%p %s\n' 2>/dev/null | sort) > "$out/$name.exports" || true
        rm -rf "$dir"
    fi
}
for file in Captures/*.pcap Captures/*.pcapng Captures/lab/*.pcap Captures/lab/*.pcapng; do
    [ -f "$file" ] || continue
    snapshot "$(echo "$file" | tr '/' '_')" "$(realpath "$file")" reports
done
if [ -f "$corpus/MANIFEST.tsv" ]; then
    tail -n +2 "$corpus/MANIFEST.tsv" | cut -f1 | while read -r file; do
        snapshot "corpus_$(echo "$file" | tr '/' '_')" "$corpus/$file"
    done
fi
echo "snapshot of $(ls "$out" | wc -l) files in $out"

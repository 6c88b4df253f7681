#!/usr/bin/env bash
# Builds what goes onto a gateway host: one capdiag binary with the Swift runtime linked in
# (it needs only libc and libpcap), its man page and shell completions, and packs them as a
# release tarball and a Debian package.
#   bash scripts/package.sh [OUTDIR]      (default dist/; needs libpcap-dev, dpkg-deb, groff)
# Outputs: OUTDIR/capdiag-VERSION-linux-ARCH.tar.gz, OUTDIR/capdiag_VERSION_ARCH.deb, and the
# staged tree OUTDIR/root/ they are made from. The container recipe beside this script
# (scripts/container/Containerfile) copies the binary from the tarball.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(realpath -m "${1:-dist}")
scratch=.build-static
rm -rf "$out"; mkdir -p "$out"

# The Swift standard library and Foundation linked statically: nothing of the toolchain is
# needed at run time.
swift build -c release --static-swift-stdlib --product capdiag --scratch-path "$scratch" >&2
binary="$scratch/release/capdiag"
version=$("$binary" --version)
arch=$(dpkg --print-architecture 2>/dev/null || uname -m)

root="$out/root"
install -d "$root/usr/bin" "$root/usr/share/man/man1" "$root/usr/share/bash-completion/completions" \
    "$root/usr/share/zsh/vendor-completions" "$root/usr/share/fish/vendor_completions.d" \
    "$root/lib/systemd/system" "$root/usr/lib/sysusers.d" "$root/usr/share/doc/capdiag"
install -m 0755 "$binary" "$root/usr/bin/capdiag"
strip "$root/usr/bin/capdiag"

# The man page, generated from the argument parser, with its SYNOPSIS fixed: the generator
# writes a "subcommand" argument capdiag does not have.
bash scripts/manpage.sh "$root/usr/bin/capdiag" > "$out/capdiag.1"
gzip -9n < "$out/capdiag.1" > "$root/usr/share/man/man1/capdiag.1.gz"

"$root/usr/bin/capdiag" --generate-completion-script bash > "$root/usr/share/bash-completion/completions/capdiag"
"$root/usr/bin/capdiag" --generate-completion-script zsh > "$root/usr/share/zsh/vendor-completions/_capdiag"
"$root/usr/bin/capdiag" --generate-completion-script fish > "$root/usr/share/fish/vendor_completions.d/capdiag.fish"
sed 's#/usr/local/bin/capdiag#/usr/bin/capdiag#' scripts/systemd/capdiag@.service > "$root/lib/systemd/system/capdiag@.service"
install -m 0644 scripts/systemd/capdiag.sysusers "$root/usr/lib/sysusers.d/capdiag.conf"
install -m 0644 README.md docs/json-schema.md docs/gateway-words.md "$root/usr/share/doc/capdiag/"

tar -C "$root" -czf "$out/capdiag-$version-linux-$arch.tar.gz" usr lib

# The Debian package: besides libc, libpcap and zlib, the Swift runtime linked in needs the C++ runtime (libstdc++6, libgcc-s1: present on every Debian system).
install -d "$root/DEBIAN"
size=$(du -sk "$root/usr" "$root/lib" | awk '{s += $1} END {print s}')
cat > "$root/DEBIAN/control" <<EOF
Package: capdiag
Version: $version
Architecture: $arch
Maintainer: capdiag developers <capdiag@localhost>
Depends: libc6, libpcap0.8 (>= 1.10), zlib1g, libstdc++6, libgcc-s1
Recommends: gzip, zstd, xz-utils
Installed-Size: $size
Section: net
Priority: optional
Description: find what on the wire between a gateway and its upstream caused a 502
 capdiag reads pcap/pcapng captures (or captures live through libpcap), reassembles TCP and
 HTTP, scores every flow for resets, handshake failures, timeouts and invalid responses, and
 names the cause per upstream with evidence and a fix, in reports for tickets.
EOF
cat > "$root/DEBIAN/postinst" <<'EOF'
#!/bin/sh
set -e
# The user the service drops to (-Z capdiag).
if [ "$1" = configure ] && command -v systemd-sysusers >/dev/null 2>&1; then
    systemd-sysusers /usr/lib/sysusers.d/capdiag.conf || true
fi
EOF
chmod 0755 "$root/DEBIAN/postinst"
dpkg-deb --root-owner-group --build "$root" "$out/capdiag_${version}_$arch.deb" >&2
rm -rf "$root/DEBIAN"
ls -l "$out"/*.tar.gz "$out"/*.deb

#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Builds what a real VM boots directly (no disk): Debian's kernel, extracted
# from linux-image-*-amd64, and an initramfs of busybox-static, the guest agent
# with every library it loads (ldd's list plus tpm2-tss' device TCTI, which the
# TCTI loader opens at run time), the NIC driver, an /init and the files of
# OVERLAY (configs, TLS credentials). The agent is not linked statically:
# Debian ships tpm2-tss only as shared libraries (no libtss2-*.a), and the TCTI
# loader opens its module with dlopen; the initramfs carries the same
# libraries instead, at the paths the loader looks in.
#
#   guest-image.sh CACHE OUT GUEST_AGENT INIT [OVERLAY]
#
# CACHE keeps the downloaded .deb files between runs (apt-get download; the
# machine needs Debian's package index, as after `apt-get update`). OUT gets
# vmlinuz, initrd.img, kver and files.sha256: "SHA256 PATH" of every regular
# file in the initramfs, as the guest sees it (for an IMA allowlist).
# Exits 77 with the reason on stderr when a package cannot be had.
set -euo pipefail
CACHE=$1 OUT=$2 AGENT=$3 INIT=$4 OVERLAY=${5:-}
mkdir -p "$CACHE" "$OUT"
need() { # PATTERN PACKAGE: a .deb in CACHE, downloaded if absent
	local f
	f=$(ls "$CACHE"/$1 2>/dev/null | tail -1 || true)
	if [ -z "$f" ]; then
		(cd "$CACHE" && apt-get download "$2" >"$CACHE/download.log" 2>&1) ||
			{ echo "cannot download $2 from Debian's archive: $(grep -E '^(E|W):' "$CACHE/download.log" | head -1)" >&2; exit 77; }
		f=$(ls "$CACHE"/$1 | tail -1)
	fi
	echo "$f"
}
# the kernel cached, else the one linux-image-amd64 (the metapackage) depends on
kpkg=$(ls "$CACHE"/linux-image-[0-9]*-amd64_*.deb 2>/dev/null | tail -1 | sed 's#.*/\(linux-image-[^_]*\)_.*#\1#' || true)
if [ -z "$kpkg" ]; then
	kpkg=$(apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[0-9].*-amd64\)$/\1/p' | head -1 || true)
fi
[ -n "$kpkg" ] || { echo "no linux-image-amd64 in apt's index (apt-get update?) and none in $CACHE" >&2; exit 77; }
kdeb=$(need "${kpkg}_*.deb" "$kpkg")
bdeb=$(need 'busybox-static_*.deb' busybox-static)

W=$OUT/work
rm -rf "$W"
mkdir -p "$W/k" "$W/bb" "$W/root"
dpkg-deb -x "$kdeb" "$W/k"
dpkg-deb -x "$bdeb" "$W/bb"
KVER=$(ls "$W/k/lib/modules" | head -1)
cp "$W/k/boot/vmlinuz-$KVER" "$OUT/vmlinuz"
echo "$KVER" >"$OUT/kver"

R=$W/root
mkdir -p "$R"/{bin,sbin,usr/sbin,etc,proc,sys,dev,run,tmp,var/lib,lib/modules}
cp "$W/bb/bin/busybox" "$R/bin/busybox"
install -m 0755 "$INIT" "$R/init"
# the NIC (e1000 is a module in Debian's kernel; TPM and IMA are built in)
cp "$W/k/lib/modules/$KVER/kernel/drivers/net/ethernet/intel/e1000/e1000.ko" "$R/lib/modules/"
install -m 0755 "$AGENT" "$R/usr/sbin/kumquat-guest-agent"
# the agent's libraries at the paths the loader asks for, as regular files
libs() { ldd "$1" | sed -n 's/.*=> \(\/[^ ]*\) .*/\1/p; s/^[[:space:]]*\(\/[^ ]*\) (.*/\1/p'; }
tcti=$(ls /usr/lib/x86_64-linux-gnu/libtss2-tcti-device.so.0 2>/dev/null || true)
[ -n "$tcti" ] || { echo "libtss2-tcti-device.so.0 not found (Debian: libtss2-tcti-device0)" >&2; exit 77; }
for l in $( (libs "$AGENT"; echo "$tcti"; libs "$tcti") | sort -u); do
	mkdir -p "$R$(dirname "$l")"
	cp -L "$l" "$R$l"
done
[ -z "$OVERLAY" ] || cp -a "$OVERLAY/." "$R/"
(cd "$R" && find . -type f ! -path ./init -printf '%P\n' | sort | while read -r f; do
	echo "$(sha256sum <"$f" | cut -d' ' -f1) /$f"
done) >"$OUT/files.sha256"
# busybox's cpio: the host may have none
(cd "$R" && find . | "$R/bin/busybox" cpio -o -H newc 2>/dev/null | gzip -1) >"$OUT/initrd.img"
rm -rf "$W"

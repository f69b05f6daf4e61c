#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# `meson install` into a scratch DESTDIR puts in place everything a host
# needs, for the build's own prefix:
#  - every daemon in sbin (each runs: --version), kumquat in bin;
#  - a systemd unit per daemon, one daemon per unit, whose ExecStart runs that
#    daemon with /etc/kumquat/DAEMON.conf (whose example is installed); the
#    units pass `systemd-analyze verify` (ExecStart pointed at the DESTDIR copy)
#    where systemd-analyze works;
#  - every DAEMON.conf.example, byte for byte, in share/doc/kumquat/examples;
#  - for a hypervisor: libvirt's qemu hook (share/kumquat/hooks/qemu.d/kumquat),
#    swtpm_setup's cert tool (libexec/kumquat/kumquat-cert-tool) and
#    swtpm_setup.conf.example selecting it -- the scripts byte for byte what
#    `kumquat-vtpm-mgr install` writes for the same paths, and the example's
#    settings the ones it puts in swtpm_setup.conf;
#  - a man page for every binary, every doc of docs/ and docs/api/ in
#    share/doc/kumquat.
set -euo pipefail

: "${KQ_BUILD:?run through meson test}" "${KQ_SOURCE:?run through meson test}"
fail() { echo "FAIL: $*" >&2; FAILED=1; }
skip() { echo "SKIP: $*"; exit 77; }
note() { echo "note: $*"; }
FAILED=0
MESON=${1:-$(command -v meson || true)}  # meson.build passes the one it found
[ -n "$MESON" ] || skip "meson is not installed"
command -v python3 >/dev/null || skip "python3 is not installed"

T=$(mktemp -d /tmp/kq-install.XXXXXX)
trap 'rm -rf "$T"' EXIT
D=$T/dest

# The install directories of this build (absolute, without DESTDIR).
eval "$("$MESON" introspect "$KQ_BUILD" --buildoptions | python3 -c '
import json, os, shlex, sys
o = {x["name"]: x["value"] for x in json.load(sys.stdin)}
for k in ("bindir", "sbindir", "libexecdir", "datadir", "mandir"):
    print("%s=%s" % (k.upper(), shlex.quote(os.path.join(o["prefix"], o[k]))))
print("PREFIX=%s" % shlex.quote(o["prefix"]))
')"
UNITDIR=$PREFIX/lib/systemd/system
EXAMPLES=$DATADIR/doc/kumquat/examples

if ! "$MESON" install -C "$KQ_BUILD" --destdir "$D" --no-rebuild >"$T/install.log" 2>&1; then
	cat "$T/install.log" >&2
	echo "FAIL: meson install failed" >&2
	exit 1
fi
echo "installed into $D (prefix $PREFIX)"

# --- binaries
DAEMONS=()
for u in "$KQ_SOURCE"/*/kumquat-*.service.in; do
	DAEMONS+=("$(basename "$u" .service.in)")
done
[ ${#DAEMONS[@]} -ge 5 ] || fail "only ${#DAEMONS[@]} systemd units in the source: ${DAEMONS[*]}"
for b in "${DAEMONS[@]}"; do
	if [ ! -x "$D$SBINDIR/$b" ]; then
		fail "$SBINDIR/$b is not installed"
	elif ! out=$("$D$SBINDIR/$b" --version 2>&1) || [ "${out%% *}" != "$b" ]; then
		fail "$SBINDIR/$b --version: $out"
	fi
done
for f in "$D$SBINDIR"/*; do
	b=$(basename "$f")
	[ -e "$KQ_SOURCE/${b#kumquat-}/$b.service.in" ] || fail "$SBINDIR/$b has no systemd unit"
done
if [ ! -x "$D$BINDIR/kumquat" ]; then
	fail "$BINDIR/kumquat is not installed"
elif ! "$D$BINDIR/kumquat" --version >/dev/null 2>&1; then
	fail "$BINDIR/kumquat --version fails"
fi

# --- systemd units
mkdir -p "$T/units"
for b in "${DAEMONS[@]}"; do
	unit=$D$UNITDIR/$b.service
	if [ ! -f "$unit" ]; then
		fail "$UNITDIR/$b.service is not installed"
		continue
	fi
	exec_start=$(sed -n 's/^ExecStart=//p' "$unit")
	[ "$(printf '%s\n' "$exec_start" | wc -l)" = 1 ] || fail "$b.service: not one ExecStart: $exec_start"
	read -r prog rest <<<"$exec_start"
	[ "$prog" = "$SBINDIR/$b" ] || fail "$b.service: ExecStart runs $prog, not the installed $SBINDIR/$b"
	# its documentation: the man page and the doc, both installed
	docs=$(sed -n 's/^Documentation=//p' "$unit")
	grep -q "man:$b(8)" <<<"$docs" || fail "$b.service: Documentation= names no man:$b(8): $docs"
	for f in $(grep -o 'file://[^ ]*' <<<"$docs"); do
		[ -f "$D${f#file://}" ] || fail "$b.service: Documentation= $f is not installed"
	done
	if grep -q '^User=' "$unit"; then
		user=$(sed -n 's/^User=//p' "$unit")
		grep -q "^u $user " "$D$PREFIX/lib/sysusers.d/kumquat.conf" 2>/dev/null ||
			fail "$b.service runs as $user, which no installed sysusers.d file creates"
	fi
	conf=$(sed -n 's/.*--config \([^ ]*\).*/\1/p' <<<"$rest")
	if [ -z "$conf" ]; then
		fail "$b.service: ExecStart names no --config"
	elif [ ! -f "$D$EXAMPLES/$(basename "$conf").example" ]; then
		fail "$b.service: --config $conf, but $EXAMPLES/$(basename "$conf").example is not installed"
	fi
	# for systemd-analyze: the same unit running the copy in DESTDIR
	sed "s|^ExecStart=$prog|ExecStart=$D$SBINDIR/$b|" "$unit" >"$T/units/$b.service"
done
if ! command -v systemd-analyze >/dev/null; then
	note "systemd-analyze is not installed: units not verified"
else
	mkdir -p "$T/sanity"
	printf '[Unit]\nDescription=sanity\n[Service]\nExecStart=/bin/true\n' >"$T/sanity/kq-sanity.service"
	if ! systemd-analyze verify "$T/sanity/kq-sanity.service" >"$T/sa.log" 2>&1; then
		note "systemd-analyze verify does not work here ($(head -1 "$T/sa.log")): units not verified"
	elif ! systemd-analyze verify --man=no "$T"/units/*.service >"$T/sa.log" 2>&1 || [ -s "$T/sa.log" ]; then
		cat "$T/sa.log" >&2
		fail "systemd-analyze verify complains about the units"
	else
		echo "systemd-analyze verify: ${#DAEMONS[@]} units clean"
	fi
fi

# --- example configs
n=0
for ex in "$KQ_SOURCE"/*/*.conf.example; do
	f=$D$EXAMPLES/$(basename "$ex")
	n=$((n + 1))
	if [ ! -f "$f" ]; then
		fail "$EXAMPLES/$(basename "$ex") is not installed"
	elif ! cmp -s "$ex" "$f"; then
		fail "$EXAMPLES/$(basename "$ex") differs from the source's"
	fi
done
[ "$n" -ge 5 ] || fail "only $n example configs in the source"

# --- the hypervisor's pieces: hook, cert tool, swtpm_setup.conf
HOOK=$DATADIR/kumquat/hooks/qemu.d/kumquat
CERT_TOOL=$LIBEXECDIR/kumquat/kumquat-cert-tool
SWTPM_CONF=$EXAMPLES/swtpm_setup.conf.example
for f in "$HOOK" "$CERT_TOOL"; do
	if [ ! -x "$D$f" ]; then
		fail "$f is not installed (executable)"
	elif ! sh -n "$D$f"; then
		fail "$f: not a valid sh script"
	elif ! grep -q "exec '$SBINDIR/kumquat-vtpm-mgr' --config '/etc/kumquat/vtpm-mgr.conf' " "$D$f"; then
		fail "$f does not run $SBINDIR/kumquat-vtpm-mgr with /etc/kumquat/vtpm-mgr.conf"
	fi
done
[ -f "$D$SWTPM_CONF" ] || fail "$SWTPM_CONF is not installed"
# what install writes for the same binary, the config in a scratch place
# (install writes a config there when none exists: never in /etc from a test)
W=$T/w
mkdir -p "$W"
if ! "$KQ_BUILD/vtpm-mgr/kumquat-vtpm-mgr" --config "$W/vtpm-mgr.conf" install \
	--swtpm-setup-conf "$W/swtpm_setup.conf" --hooks-dir "$W/hooks" --libexec-dir "$W/libexec" \
	--cert-tool-options "$W/vtpm-cert-tool.options" --binary "$SBINDIR/kumquat-vtpm-mgr" >"$T/vi.log" 2>&1; then
	cat "$T/vi.log" >&2
	fail "kumquat-vtpm-mgr install into $W failed"
fi
unscratch() {
	sed -e "s|$W/vtpm-mgr.conf|/etc/kumquat/vtpm-mgr.conf|g" \
		-e "s|$W/libexec/kumquat-cert-tool|$CERT_TOOL|g" \
		-e "s|$W/vtpm-cert-tool.options|/etc/kumquat/vtpm-cert-tool.options|g" "$1"
}
if [ -f "$W/hooks/qemu.d/kumquat" ] && [ -x "$D$HOOK" ]; then
	unscratch "$W/hooks/qemu.d/kumquat" | diff -u - "$D$HOOK" ||
		fail "$HOOK is not what kumquat-vtpm-mgr install writes"
fi
if [ -f "$W/libexec/kumquat-cert-tool" ] && [ -x "$D$CERT_TOOL" ]; then
	unscratch "$W/libexec/kumquat-cert-tool" | diff -u - "$D$CERT_TOOL" ||
		fail "$CERT_TOOL is not what kumquat-vtpm-mgr install writes"
fi
if [ -f "$W/swtpm_setup.conf" ] && [ -f "$D$SWTPM_CONF" ]; then
	settings() { grep -v '^[[:space:]]*\(#\|$\)' | sed 's/[[:space:]]*=[[:space:]]*/ = /' | sort; }
	diff -u <(unscratch "$W/swtpm_setup.conf" | settings) <(settings <"$D$SWTPM_CONF") ||
		fail "$SWTPM_CONF does not set what kumquat-vtpm-mgr install sets"
	grep -q "^create_certs_tool = $CERT_TOOL\$" "$D$SWTPM_CONF" ||
		fail "$SWTPM_CONF does not select the installed $CERT_TOOL"
	# a copy in /etc must count as the admin's file: install then keeps its other lines
	! grep -q 'kumquat-vtpm-mgr install' "$D$SWTPM_CONF" ||
		fail "$SWTPM_CONF carries install's marker ('kumquat-vtpm-mgr install')"
fi

# --- man pages, the docs and the API description
for f in "$D$SBINDIR"/* "$D$BINDIR"/*; do
	b=$(basename "$f")
	compgen -G "$D$MANDIR/man[1-8]/$b.[1-8]*" >/dev/null || fail "no man page for $b in $MANDIR"
done
for f in "$KQ_SOURCE"/docs/*.md "$KQ_SOURCE"/docs/api/*; do
	[ -f "$D$PREFIX/share/doc/kumquat/${f#"$KQ_SOURCE"/docs/}" ] || fail "${f#"$KQ_SOURCE"/} is not installed"
done

if [ "$FAILED" != 0 ]; then
	echo "FAIL: see above"
	exit 1
fi
echo "ok: binaries, ${#DAEMONS[@]} units, $n example configs, hook, cert tool, swtpm_setup.conf"

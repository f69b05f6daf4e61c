# SPDX-License-Identifier: Apache-2.0
# For the end-to-end tests (sourced after tests/integration/lib.sh, in
# $KQ_TMP): Debian's libvirtd in private mount and PID namespaces, with
# kumquat's qemu hook and swtpm_setup cert tool installed by
# `kumquat-vtpm-mgr install` inside them.
#
# /etc, /var and /run are overlays whose writable layers live on a tmpfs of
# the namespace; /etc/libvirt, /var/lib/libvirt, /var/cache/libvirt,
# /var/log/libvirt and /run/libvirt are empty tmpfs (the host's domains,
# networks and hooks stay out). Nothing lands on the host's paths, and ending
# the namespace's first process ends libvirtd, swtpm and QEMU with it.
#
#   libvirtd_need             skip (77) with the reason when this cannot run
#   libvirtd_start VMGR_CONF  start it; files in $KQ_TMP/etc/ are copied over
#                             the namespace's /etc (a test's own hook wrapper at
#                             etc/libvirt/hooks/qemu.d/kumquat replaces the
#                             default one, which logs to hook.calls and runs the
#                             installed hook, kept as hooks/kumquat.installed)
#   V ARGS...                 virsh -c qemu:///system inside the namespace
#   $ROOT                     the namespace's / seen from outside
#   why NAME                  what to print when libvirt's start of NAME fails

libvirtd_need() {
	[ "$(id -u)" = 0 ] || skip "not root: libvirtd (qemu:///system) and the host agent's vTPM socket need root"
	local c
	for c in libvirtd:libvirt-daemon qemu-system-x86_64:qemu-system-x86 virsh:libvirt-clients \
		swtpm:swtpm swtpm_setup:swtpm-tools tpm2_nvread:tpm2-tools openssl:openssl unshare:util-linux \
		nsenter:util-linux jq:jq; do
		command -v "${c%%:*}" >/dev/null || skip "${c%%:*} is not installed (Debian: ${c#*:})"
	done
	compgen -G '/usr/lib*/libvirt/connection-driver/libvirt_driver_qemu.so' >/dev/null ||
		compgen -G '/usr/lib/*/libvirt/connection-driver/libvirt_driver_qemu.so' >/dev/null ||
		skip "libvirt's QEMU driver is not installed (Debian: libvirt-daemon-driver-qemu)"
	unshare -m -p -f --mount-proc --propagation private true 2>"$KQ_TMP/probe.err" ||
		skip "no private mount and PID namespaces here (unshare -m -p): $(head -1 "$KQ_TMP/probe.err")"
	mkdir -p "$KQ_TMP/probe"
	unshare -m --propagation private sh -c "mount -t tmpfs kq-probe '$KQ_TMP/probe' && mkdir '$KQ_TMP/probe/u' '$KQ_TMP/probe/w' &&
		mount -t overlay kq-probe -o lowerdir=/etc,upperdir='$KQ_TMP/probe/u',workdir='$KQ_TMP/probe/w' '$KQ_TMP/probe'" \
		2>"$KQ_TMP/probe.err" || skip "no overlayfs in a private mount namespace: $(head -1 "$KQ_TMP/probe.err")"
	echo quit | timeout 30 qemu-system-x86_64 -accel tcg -M none -nodefaults -display none -monitor stdio \
		>"$KQ_TMP/probe.err" 2>&1 || skip "QEMU (TCG) cannot run here: $(grep -v '^(qemu)\|^QEMU' "$KQ_TMP/probe.err" | head -1)"
	[ -x "$KQ_BUILD/vtpm-mgr/kumquat-vtpm-mgr" ] || skip "kumquat-vtpm-mgr was not built"
}

UNSHARE_PID="" NSPID="" LVPID=""
children() { cat /proc/"$1"/task/"$1"/children 2>/dev/null | tr -d ' ' || true; }
V() { nsenter -t "$NSPID" -m -p -- virsh -q -c qemu:///system "$@"; }
libvirtd_stop() {
	local d i
	[ -n "$UNSHARE_PID" ] || return 0
	if [ -n "$LVPID" ] && kill -0 "$LVPID" 2>/dev/null; then
		for d in $(V list --name 2>/dev/null); do V destroy "$d" >/dev/null 2>&1 || true; done
		kill "$LVPID" 2>/dev/null || true
		for i in $(seq 50); do kill -0 "$LVPID" 2>/dev/null || break; sleep 0.1; done
	fi
	# SIGKILL to the namespace's first process ends everything left in the namespace
	[ -n "$NSPID" ] || NSPID=$(children "$UNSHARE_PID")
	if [ -n "$NSPID" ]; then kill -KILL "$NSPID" 2>/dev/null || true; else kill -KILL "$UNSHARE_PID" 2>/dev/null || true; fi
	wait "$UNSHARE_PID" 2>/dev/null || true
	UNSHARE_PID=""
}

libvirtd_start() { # VMGR_CONF
	local vmgr=$KQ_BUILD/vtpm-mgr/kumquat-vtpm-mgr i
	mkdir -p "$KQ_TMP/etc/libvirt/hooks/qemu.d" "$KQ_TMP/ns"
	# swtpm_setup runs as root: the host agent serves only uid 0 (docs/vtpm.md).
	# No cgroups (nothing created under the host's /sys/fs/cgroup), QEMU's
	# output to a file (no virtlogd needed).
	cat >"$KQ_TMP/etc/libvirt/qemu.conf" <<EOC
user = "root"
group = "root"
swtpm_user = "root"
swtpm_group = "root"
cgroup_controllers = [ ]
stdio_handler = "file"
security_driver = "none"
EOC
	if [ ! -e "$KQ_TMP/etc/libvirt/hooks/qemu.d/kumquat" ]; then
		cat >"$KQ_TMP/etc/libvirt/hooks/qemu.d/kumquat" <<EOS
#!/bin/sh
echo "\$*" >>"$KQ_TMP/hook.calls"
exec /etc/libvirt/hooks/kumquat.installed "\$@"
EOS
		chmod 755 "$KQ_TMP/etc/libvirt/hooks/qemu.d/kumquat"
	fi
	cat >"$KQ_TMP/ns-init" <<'EOS'
#!/bin/bash
# PID 1 of the namespace: private /etc, /var and /run, then libvirtd.
set -euo pipefail
T=$1 NS=$1/ns VMGR=$2 VMGR_CONF=$3
mount -t tmpfs -o mode=0700 kq-e2e "$NS"
for d in etc var run; do
	mkdir "$NS/$d.upper" "$NS/$d.work"
	mount -t overlay "kq-e2e-$d" -o "lowerdir=/$d,upperdir=$NS/$d.upper,workdir=$NS/$d.work" "/$d"
done
for d in /etc/libvirt /var/lib/libvirt /var/cache/libvirt /var/log/libvirt /run/libvirt; do
	mkdir -p "$d"
	mount -t tmpfs -o mode=0755 kq-e2e "$d"
done
mkdir /var/log/libvirt/qemu
# swtpm_setup's temporary files (libvirt passes TMPDIR on)
mkdir -m 1777 /run/kq-e2e-tmp
export TMPDIR=/run/kq-e2e-tmp
# kumquat's cert tool in swtpm_setup's config, kumquat's qemu hook for libvirt
"$VMGR" --config "$VMGR_CONF" install --swtpm-setup-conf /etc/swtpm_setup.conf \
	--hooks-dir /etc/libvirt/hooks --libexec-dir "$T/libexec" \
	--cert-tool-options /etc/kumquat/vtpm-cert-tool.options >"$T/install.out"
mv /etc/libvirt/hooks/qemu.d/kumquat /etc/libvirt/hooks/kumquat.installed
cp -a "$T/etc/." /etc/
# a swtpm_setup.conf in root's home would win over /etc's
for h in /root "${HOME:-/root}"; do
	if [ -e "$h/.config/swtpm_setup.conf" ]; then
		mount --bind /etc/swtpm_setup.conf "$h/.config/swtpm_setup.conf"
	fi
done
# libvirtd looks its compiled-in user up before reading qemu.conf
getent passwd libvirt-qemu >/dev/null ||
	echo 'libvirt-qemu:x:64055:64055:Libvirt Qemu,,,:/var/lib/libvirt:/usr/sbin/nologin' >>/etc/passwd
getent group libvirt-qemu >/dev/null || echo 'libvirt-qemu:x:64055:' >>/etc/group
echo ready >"$T/ns.ready"
export LIBVIRT_LOG_OUTPUTS="3:file:$T/libvirtd.log"
libvirtd >"$T/libvirtd.out" 2>&1 &
wait $!
EOS
	chmod 755 "$KQ_TMP/ns-init"
	trap 'libvirtd_stop; kq_cleanup' EXIT
	unshare -m -p --fork --kill-child --mount-proc --propagation private -- \
		"$KQ_TMP/ns-init" "$KQ_TMP" "$vmgr" "$1" >"$KQ_TMP/ns.log" 2>&1 &
	UNSHARE_PID=$!
	for i in $(seq 100); do
		if [ -f "$KQ_TMP/ns.ready" ]; then
			NSPID=$(children $UNSHARE_PID)
			LVPID=$(children "$NSPID")
			[ -n "$LVPID" ] && break
		fi
		kill -0 $UNSHARE_PID 2>/dev/null || fail "the namespace did not come up: $(cat "$KQ_TMP/ns.log")"
		sleep 0.1
	done
	[ -n "$LVPID" ] || fail "the namespace did not come up: $(cat "$KQ_TMP/ns.log")"
	ROOT=/proc/$NSPID/root
	for i in $(seq 150); do
		V version >/dev/null 2>&1 && break
		kill -0 "$LVPID" 2>/dev/null ||
			fail "libvirtd exited: $(tail -5 "$KQ_TMP/libvirtd.out"; grep -E ' (error|warning) : ' "$KQ_TMP/libvirtd.log" | tail -5)"
		sleep 0.2
	done
	V version >/dev/null 2>&1 || fail "libvirtd does not answer: $(grep ' error : ' "$KQ_TMP/libvirtd.log" | tail -5)"
}

why() { # NAME
	echo "--- swtpm log:"; tail -15 "$ROOT/var/log/swtpm/libvirt/qemu/$1-swtpm.log" 2>/dev/null || true
	echo "--- QEMU log:"; tail -5 "$ROOT/var/log/libvirt/qemu/$1.log" 2>/dev/null || true
	echo "--- hook calls:"; cat "$KQ_TMP/hook.calls" 2>/dev/null || true
	echo "--- host agent:"; tail -5 "$KQ_TMP/host.log"
	echo "--- libvirtd:"; grep -E ' (error|warning) : ' "$KQ_TMP/libvirtd.log" | tail -5 || true
}

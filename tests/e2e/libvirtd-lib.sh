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
children() { awk '{ print $1 }' /proc/"$1"/task/"$1"/children 2>/dev/null || true; } # the first child
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
	mkdir -p "$KQ_TMP/etc/libvirt/hooks/qemu.d"
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
T=$1 NS=/mnt VMGR=$2 VMGR_CONF=$3
# the writable layers on a tmpfs over /mnt (this namespace's only); $T, which
# may lie under /var, is bound back over the overlays so it stays the host's
mkdir -p "$NS"
mount -t tmpfs -o mode=0700 kq-e2e "$NS"
mkdir "$NS/t"
mount --bind "$T" "$NS/t"
for d in etc var run; do
	mkdir "$NS/$d.upper" "$NS/$d.work"
	mount -t overlay "kq-e2e-$d" -o "lowerdir=/$d,upperdir=$NS/$d.upper,workdir=$NS/$d.work" "/$d"
done
mount --bind "$NS/t" "$T"
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
	# LIBVIRTD_KEEP set: it outlives the caller (libvirtd_stop or SIGKILL to $NSPID ends it)
	[ -n "${LIBVIRTD_KEEP:-}" ] || trap 'libvirtd_stop; kq_cleanup' EXIT
	unshare -m -p --fork --kill-child --mount-proc --propagation private -- \
		"$KQ_TMP/ns-init" "$KQ_TMP" "$vmgr" "$1" >"$KQ_TMP/ns.log" 2>&1 </dev/null &
	UNSHARE_PID=$!
	# for whoever must end it without this shell (killing unshare ends the namespace)
	echo "$UNSHARE_PID" >"$KQ_TMP/unshare.pid"
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
	echo "$NSPID" >"$KQ_TMP/ns.pid"
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
	echo "--- host agent:"; tail -5 "$KQ_TMP/${HOST_LOG:-host.log}"
	echo "--- libvirtd:"; grep -E ' (error|warning) : ' "$KQ_TMP/libvirtd.log" | tail -5 || true
}

# vm_accel IMG: "kvm" when /dev/kvm boots the kernel IMG/vmlinuz (some hosts
# expose /dev/kvm without VMX/SVM, in nested software modes on which Debian's
# kernel hangs early), "qemu" (TCG) otherwise; the reason on stderr
vm_accel() {
	if ! echo quit | timeout 10 qemu-system-x86_64 -accel kvm -M none -nodefaults -display none -monitor stdio \
		>/dev/null 2>&1; then
		echo "no usable /dev/kvm: TCG" >&2
		echo qemu
		return
	fi
	rm -f "$KQ_TMP/kvm-probe.log"
	timeout 20 qemu-system-x86_64 -accel kvm -M pc -m 256 -nodefaults -display none -no-reboot \
		-serial file:"$KQ_TMP/kvm-probe.log" -kernel "$1/vmlinuz" -append "console=ttyS0 panic=-1 rdinit=/bin/false" \
		>/dev/null 2>&1 || true
	if grep -q "Run /bin/false as init process" "$KQ_TMP/kvm-probe.log" 2>/dev/null; then
		echo kvm
	else
		echo "/dev/kvm opens but does not boot Debian's kernel within 20 s: TCG" >&2
		echo qemu
	fi
}

# vm_domain_xml NAME UUID TYPE IMG CONSOLE AGENT_PORT CMD_PORT: a domain that
# boots IMG's kernel and initramfs (tests/e2e/guest-image.sh) with a vTPM, its
# console to the file CONSOLE, QEMU's user-mode network with the guest agent
# (8893) and the /init's command port (9000) forwarded from 127.0.0.1
vm_domain_xml() {
	cat <<EOX
<domain type='$3' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
  <name>$1</name>
  <uuid>$2</uuid>
  <memory unit='MiB'>384</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>$4/vmlinuz</kernel>
    <initrd>$4/initrd.img</initrd>
    <cmdline>console=ttyS0 panic=-1 ima_template=ima-ng ima_hash=sha256</cmdline>
  </os>
  <features><acpi/></features>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>$(command -v qemu-system-x86_64)</emulator>
    <controller type='usb' model='none'/>
    <serial type='file'><source path='$5'/><target port='0'/></serial>
    <tpm model='tpm-crb'><backend type='emulator' version='2.0'/></tpm>
    <memballoon model='none'/>
  </devices>
  <qemu:commandline>
    <qemu:arg value='-netdev'/>
    <qemu:arg value='user,id=kqnet,hostfwd=tcp:127.0.0.1:$6-:8893,hostfwd=tcp:127.0.0.1:$7-:9000'/>
    <qemu:arg value='-device'/>
    <qemu:arg value='e1000,netdev=kqnet'/>
  </qemu:commandline>
</domain>
EOX
}

# vm_guest_conf ID AGENT_PORT REGISTRAR_PORT: the guest agent's config inside
# the VM (credentials at /etc/kumquat/{ca,guest,guest-key}.pem)
vm_guest_conf() {
	cat <<EOC
[agent]
id = $1
state_dir = /var/lib/kumquat/guest-agent
contact = https://127.0.0.1:$2
[tpm]
tcti = device:/dev/tpmrm0
[registrar]
url = https://10.0.2.2:$3
ca = /etc/kumquat/ca.pem
[server]
listen = 0.0.0.0
port = 8893
cert = /etc/kumquat/guest.pem
key = /etc/kumquat/guest-key.pem
client_ca = /etc/kumquat/ca.pem
[payload]
dir = /run/kumquat/payload
EOC
}

# vm_cmd PORT CMD: a command for the VM's /init (tests/e2e/guest-init)
vm_cmd() {
	exec 3<>"/dev/tcp/127.0.0.1/$1" || return 1
	echo "$2" >&3
	exec 3>&-
}

# vm_ima_policy CONSOLE FILES: a Keylime runtime policy for a VM booted from
# the image whose files.sha256 is FILES: every file of the image, and the boot
# aggregate of this machine type's firmware (SeaBIOS measures the same PCRs
# 0-9 every boot), read from the console of a known-good boot
vm_ima_policy() {
	local ba
	ba=$(tr -d '\r' <"$1" | sed -n 's/^KQ-GUEST: boot_aggregate \([0-9a-f]\{64\}\)$/\1/p' | head -1)
	[ -n "$ba" ] || return 1
	{ echo "$ba boot_aggregate"; cat "$2"; } |
		jq -R -s '{meta: {version: 1, generator: 0}, release: 0,
			digests: (split("\n") | map(select(length > 0) | split(" ")) | reduce .[] as $e ({}; .[$e[1]] += [$e[0]])),
			excludes: [], keyrings: {}, ima: {ignored_keyrings: [], log_hash_alg: "sha1", dm_policy: null},
			"ima-buf": {}, "verification-keys": ""}'
}

#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# A real libvirt domain gets its vTPM's EK certificate from kumquat: Debian's
# libvirtd (QEMU driver, TCG) runs swtpm_setup on the domain's first start,
# with kumquat's cert tool selected in /etc/swtpm_setup.conf and kumquat's
# qemu hook reporting the domain to the host agent first. The certificates in
# the vTPM's NV verify against the host's vTPM-CA and name the domain. A
# domain libvirt starts without the hook reporting it gets no certificate:
# the host agent refuses (unknown_vm) and libvirt's start fails, with no
# fallback to another CA.
#
# libvirtd runs in private namespaces (tests/e2e/libvirtd-lib.sh).
# Skips (77) with the reason when not root, or when libvirtd, its QEMU driver,
# QEMU or the namespaces are not available here.
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/libvirtd-lib.sh"
: "${KQ_BUILD:?}"
AGENT=$KQ_BUILD/host-agent/kumquat-host-agent
VMGR=$KQ_BUILD/vtpm-mgr/kumquat-vtpm-mgr

libvirtd_need
cd "$KQ_TMP" || exit 1

ms() { echo $(($(date +%s%N) / 1000000)); }
secs() { local d=$(($(ms) - $1)); printf '%d.%02d s' $((d / 1000)) $((d % 1000 / 10)); } # since $1 (ms)
T0=$(ms)
step() { echo "== $* ($(secs "$T0"))"; }
VM=9a1e2f3c-6b7d-4c8e-8f90-0a1b2c3d4e01   # reported by the hook
VM2=9a1e2f3c-6b7d-4c8e-8f90-0a1b2c3d4e02  # started without the hook
NAME=kq-e2e-vm
NAME2=kq-e2e-unreported

# ---- the host: its TPM, the registrar, the host agent with its local socket ----
step "host: TPM, registrar, host agent"
provision_swtpm "$KQ_TMP/host"
start_swtpm "$KQ_TMP/host/state"
mkdir -p ek-ca tls
cp host/localca/issuercert.pem host/localca/swtpm-localca-rootca-cert.pem ek-ca/
expect 0 "$KUMQUAT" ca init --dir tls
expect 0 "$KUMQUAT" ca issue --dir tls --name registrar --server
start_registrar
cat >host.conf <<EOC
[agent]
state_dir = $KQ_TMP/host-state
[tpm]
tcti = $KQ_TCTI
[registrar]
url = $REG_URL
ca = $KQ_TMP/tls/ca.pem
[vtpm]
socket = $KQ_TMP/host.sock
EOC
tflush
"$AGENT" --config host.conf >host.log 2>&1 &
AGENT_PID=$!
KQ_PIDS+=("$AGENT_PID")
for i in $(seq 100); do
	[ -S host.sock ] && grep -q "vTPM socket" host.log && break
	kill -0 $AGENT_PID 2>/dev/null || fail "the host agent exited: $(tail -3 host.log)"
	[ "$i" = 100 ] && fail "the host agent did not open its socket: $(tail -3 host.log)"
	sleep 0.1
done
HOST_ID=$(cat host-state/id)
[ -f host-state/vtpm-ca.pem ] || fail "no vTPM-CA certificate"

# ---- what goes into the namespace's /etc ----
# the vTPM manager's map and the host agent's socket
cat >vmgr.conf <<EOC
[vtpm-mgr]
database = $KQ_TMP/vmgr.db
[host-agent]
socket = $KQ_TMP/host.sock
EOC
mkdir -p etc/libvirt/hooks/qemu.d
# libvirt's qemu hook: the one `install` writes, but for the domain started unreported
cat >etc/libvirt/hooks/qemu.d/kumquat <<EOS
#!/bin/sh
echo "\$*" >>"$KQ_TMP/hook.calls"
[ "\$1" = "$NAME2" ] && exit 0
exec /etc/libvirt/hooks/kumquat.installed "\$@"
EOS
chmod 755 etc/libvirt/hooks/qemu.d/kumquat

# ---- libvirtd in its namespaces ----
step "libvirtd in private mount and PID namespaces"
libvirtd_start "$KQ_TMP/vmgr.conf"

domain_xml() { # NAME UUID
	cat <<EOX
<domain type='qemu'>
  <name>$1</name>
  <uuid>$2</uuid>
  <memory unit='MiB'>32</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='network'/></os>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>$(command -v qemu-system-x86_64)</emulator>
    <controller type='usb' model='none'/>
    <memballoon model='none'/>
    <tpm model='tpm-crb'><backend type='emulator' version='2.0'/></tpm>
  </devices>
</domain>
EOX
}
# ---- a domain reported by the hook: its vTPM is certified by the host ----
step "domain $NAME: define, start"
domain_xml $NAME $VM >dom1.xml
expect 0 V define "$KQ_TMP/dom1.xml"
t0=$(ms)
V start $NAME >start1.out 2>&1 || { why $NAME >&2; fail "virsh start $NAME: $(cat start1.out)"; }
echo "   virsh start: $(secs "$t0")"
[ "$(V domstate $NAME)" = running ] || fail "$NAME is $(V domstate $NAME)"
grep -q "^$NAME prepare begin" hook.calls || fail "libvirt did not run the hook: $(cat hook.calls 2>/dev/null)"
grep -q "VM $VM ($NAME) is running" host.log || { why $NAME >&2; fail "the host agent was not told of $NAME"; }
grep -q "issued a ek certificate for VM $VM" host.log || { why $NAME >&2; fail "no EK certificate issued for $NAME"; }
grep -q "issued a platform certificate for VM $VM" host.log || fail "no platform certificate issued for $NAME"
grep -q "Invoking $KQ_TMP/libexec/kumquat-cert-tool" "$ROOT/var/log/swtpm/libvirt/qemu/$NAME-swtpm.log" ||
	fail "swtpm_setup did not use kumquat's cert tool: $(why $NAME)"
STATE=$ROOT/var/lib/libvirt/swtpm/$VM/tpm2
[ -s "$STATE/tpm2-00.permall" ] || fail "no vTPM state in /var/lib/libvirt/swtpm/$VM/tpm2"

step "domain $NAME: stop; the certificates in its vTPM's NV"
expect 0 V destroy $NAME
grep -q "VM $VM ($NAME) is stopped" host.log || fail "the host agent was not told $NAME stopped: $(tail -3 host.log)"
mkdir vtpm1
cp "$STATE/tpm2-00.permall" vtpm1/
start_swtpm "$KQ_TMP/vtpm1"
VTPM_PID=$SWTPM_PID
nvcert() { # INDEX OUT: the DER certificate in an NV index (NV may hold padding after it)
	tflush
	tpm2_nvread "$1" -o "$2.nv" >/dev/null 2>&1 || return 1
	openssl x509 -inform DER -in "$2.nv" -outform DER -out "$2" 2>/dev/null
}
nvcert 0x01c00002 ek-rsa.der || fail "no RSA EK certificate in the vTPM's NV"
nvcert 0x01c00016 ek-ecc.der || fail "no ECC EK certificate in the vTPM's NV"
nvcert 0x01c08000 platform.der || fail "no platform certificate in the vTPM's NV"
for c in ek-rsa ek-ecc platform; do
	openssl x509 -inform DER -in $c.der -out $c.pem
	openssl verify -CAfile host-state/vtpm-ca.pem $c.pem >verify.out 2>&1 ||
		fail "$c certificate: openssl verify against the vTPM-CA: $(cat verify.out)"
	openssl x509 -in $c.pem -noout -text >$c.txt
	grep -q "URI:urn:uuid:$VM" $c.txt || fail "the $c certificate does not name VM $VM: $(grep -A3 'Alternative' $c.txt)"
	grep -q "URI:urn:kumquat:host:$HOST_ID" $c.txt || fail "the $c certificate does not name the host $HOST_ID"
done
grep -q "2.23.133.8.1" ek-rsa.txt || fail "no TCG EK certificate EKU"
tflush
tpm2_readpublic -c 0x81010001 -f pem -o ek-rsa-key.pem >/dev/null 2>&1 || fail "no RSA EK at 0x81010001 in the vTPM"
tflush
[ "$(openssl pkey -pubin -in ek-rsa-key.pem -outform DER | sha256sum)" = \
  "$(openssl x509 -in ek-rsa.pem -pubkey -noout | openssl pkey -pubin -outform DER | sha256sum)" ] ||
	fail "the RSA EK certificate is for another key than the vTPM's EK"
kill "$VTPM_PID"; wait "$VTPM_PID" 2>/dev/null || true
# the vTPM manager's own view, by VM UUID, inside the namespace (libvirt's path)
nsenter -t "$NSPID" -m -p -- "$VMGR" inspect $VM --json --expect-cert "$KQ_TMP/ek-rsa.der" >inspect.json 2>inspect.err ||
	fail "kumquat-vtpm-mgr inspect $VM: $(cat inspect.err)"
jq -e --arg vm $VM '.vm_uuid == $vm and (.ek_certs | length) == 2 and all(.ek_certs[]; .matches_ek)
	and .expected_cert.found and .expected_cert.matches_ek' inspect.json >/dev/null ||
	fail "inspect --json: $(head -c 600 inspect.json)"

# ---- a domain libvirt starts without the hook: no certificate, no start ----
step "domain $NAME2 (hook disabled): start must fail"
domain_xml $NAME2 $VM2 >dom2.xml
expect 0 V define "$KQ_TMP/dom2.xml"
t0=$(ms)
if V start $NAME2 >start2.out 2>&1; then
	why $NAME2 >&2
	fail "libvirt started $NAME2, whose vTPM the host agent must not certify"
fi
echo "   virsh start failed after $(secs "$t0"): $(tr '\n' ' ' <start2.out | cut -c1-200)"
grep -q "swtpm_setup" start2.out || fail "$NAME2 failed for another reason than swtpm_setup: $(cat start2.out)"
grep -q "unknown_vm" "$ROOT/var/log/swtpm/libvirt/qemu/$NAME2-swtpm.log" ||
	fail "swtpm_setup's log does not give the host agent's refusal: $(why $NAME2)"
grep -q "swtpm_localca" "$ROOT/var/log/swtpm/libvirt/qemu/$NAME2-swtpm.log" && fail "swtpm_setup fell back to swtpm's local CA"
grep -q "refused a ek certificate for VM $VM2" host.log || fail "the host agent did not log the refusal: $(tail -3 host.log)"
grep -q "issued a .* certificate for VM $VM2" host.log && fail "the host agent issued a certificate for $NAME2"
[ "$(V domstate $NAME2)" = "shut off" ] || fail "$NAME2 is $(V domstate $NAME2)"
if [ -e "$ROOT/var/lib/libvirt/swtpm/$VM2/tpm2/tpm2-00.permall" ]; then
	# whatever libvirt leaves behind must not hold a certificate
	mkdir vtpm2
	cp "$ROOT/var/lib/libvirt/swtpm/$VM2/tpm2/tpm2-00.permall" vtpm2/
	start_swtpm "$KQ_TMP/vtpm2"
	nvcert 0x01c00002 ek2.der && fail "$NAME2's vTPM holds an EK certificate"
	kill "$SWTPM_PID"; wait "$SWTPM_PID" 2>/dev/null || true
fi

step "undefine both"
expect 0 V undefine $NAME --tpm
expect 0 V undefine $NAME2 --tpm
[ -e "$STATE" ] && fail "libvirt kept $NAME's vTPM state after undefine --tpm"
[ -z "$(V list --all --name)" ] || fail "domains left: $(V list --all --name)"
step "done: libvirt's swtpm_setup got $NAME's EK certificates from kumquat; $NAME2, unreported, got none"

#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# A real VM attested end to end with its host. Debian's libvirtd (in private
# namespaces, tests/e2e/libvirtd-lib.sh) starts a domain that boots Debian's
# kernel directly with an initramfs built here (busybox-static, the guest agent
# and its libraries: tests/e2e/guest-image.sh) and a vTPM:
# <tpm model='tpm-crb'><backend type='emulator' version='2.0'/>. libvirt runs
# swtpm_setup with kumquat's cert tool (the host agent certifies the vTPM's EK
# for the domain's UUID, reported by kumquat's qemu hook) and launches swtpm.
# Inside the VM the kernel measures every executed or mapped file (IMA), and
# the guest agent enrols at the registrar (10.0.2.2, QEMU's user-mode network)
# with its vTPM EK certificate, then serves its evidence on a port QEMU
# forwards from 127.0.0.1. The verifier judges the guest through deep quotes
# of its host (a swtpm as the host's TPM): both pass. Then a binary outside the
# guest's allowlist runs in the VM: the guest fails (ima/not_in_allowlist), the
# host does not; a PCR of the host is extended outside its policy: the host
# fails and the guest with it (host/host_failed).
#
# KVM when /dev/kvm boots Debian's kernel (a short probe), TCG otherwise.
# Skips (77) with the reason when not root, when libvirtd, QEMU or namespaces
# are missing, or when the kernel or busybox-static cannot be downloaded from
# Debian's archive (cached in KQ_E2E_CACHE, default /var/cache/kumquat-e2e).
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/../integration/hypervisor-lib.sh"
. "$(dirname "$0")/libvirtd-lib.sh"
: "${KQ_BUILD:?}"
E2E=$(cd "$(dirname "$0")" && pwd)
GUEST=$KQ_BUILD/guest-agent/kumquat-guest-agent
VERIFIER=$KQ_BUILD/verifier/kumquat-verifier
CACHE=${KQ_E2E_CACHE:-/var/cache/kumquat-e2e}
libvirtd_need
need python3 curl dpkg-deb apt-get gzip
cd "$KQ_TMP" || exit 1

T0=$SECONDS
step() { echo "== $* ($((SECONDS - T0)) s)"; }
VM=5b7c0d1e-2f3a-4b4c-8d5e-6f7a8b9c0d01
DOM=kq-e2e-guest
GID=c0ffee00-1111-4222-8333-444455556666
freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
GPORT=$(freeport) CPORT=$(freeport)
guest() { vm_cmd "$CPORT" "$1" || fail "cannot reach the VM's command port"; }
console() { tr -d '\r' <console.log 2>/dev/null || true; }

# ---- the host ----
step "host: TPM, CA, registrar, host agent"
provision_swtpm "$KQ_TMP/host"
start_swtpm "$KQ_TMP/host/state"
HOST_TCTI=$KQ_TCTI
mkdir -p ek-ca tls ov/etc/kumquat
cp host/localca/issuercert.pem host/localca/swtpm-localca-rootca-cert.pem ek-ca/
expect 0 "$KUMQUAT" ca init --dir tls
# the VM reaches the registrar at 10.0.2.2 (QEMU's user-mode network maps it to the host's 127.0.0.1)
expect 0 "$KUMQUAT" ca issue --dir tls --name registrar --server --san 10.0.2.2
for n in host-agent verifier guest; do expect 0 "$KUMQUAT" ca issue --dir tls --name $n --server; done
for n in verifier-client admin; do expect 0 "$KUMQUAT" ca issue --dir tls --name $n --client; done
start_registrar
# no boot log or IMA list on this host (answered as null), this machine's boot id
mkdir -p logs
cat /proc/sys/kernel/random/boot_id >logs/boot_id
host_agent_conf host "$HOST_TCTI"
start_host_agent

# ---- the VM's image: kernel, initramfs with the guest agent and its config ----
step "guest image (kernel and busybox-static from Debian's archive, cached in $CACHE)"
cp tls/ca.pem tls/guest.pem tls/guest-key.pem ov/etc/kumquat/
vm_guest_conf "$GID" "$GPORT" "$REG_PORT" >ov/etc/kumquat/guest-agent.conf
rc=0
bash "$E2E/guest-image.sh" "$CACHE" "$KQ_TMP/img" "$GUEST" "$E2E/guest-init" "$KQ_TMP/ov" 2>image.err || rc=$?
[ $rc = 77 ] && skip "$(tail -1 image.err)"
[ $rc = 0 ] || fail "building the guest image: $(tail -3 image.err)"

DOMTYPE=$(vm_accel img 2>accel.txt)
ACCEL=$([ "$DOMTYPE" = kvm ] && echo KVM || echo TCG)
echo "   accelerator: $ACCEL ($(cat accel.txt))"

# ---- libvirtd with kumquat's hook and cert tool ----
step "libvirtd in private namespaces"
cat >vmgr.conf <<EOC
[vtpm-mgr]
database = $KQ_TMP/vmgr.db
[host-agent]
socket = $KQ_TMP/host.sock
EOC
libvirtd_start "$KQ_TMP/vmgr.conf"
vm_domain_xml "$DOM" "$VM" "$DOMTYPE" "$KQ_TMP/img" "$KQ_TMP/console.log" "$GPORT" "$CPORT" >dom.xml
step "domain $DOM: define, start"
expect 0 V define "$KQ_TMP/dom.xml"
V start $DOM >start.out 2>&1 || { why $DOM >&2; fail "virsh start $DOM: $(cat start.out)"; }
grep -q "issued a ek certificate for VM $VM" host.log || { why $DOM >&2; fail "no EK certificate issued for $DOM"; }
grep -q "Invoking $KQ_TMP/libexec/kumquat-cert-tool" "$ROOT/var/log/swtpm/libvirt/qemu/$DOM-swtpm.log" ||
	fail "swtpm_setup did not use kumquat's cert tool: $(why $DOM)"

step "the guest agent enrols from inside the VM"
export KUMQUAT_REGISTRAR_URL=$REG_URL KUMQUAT_CA=$KQ_TMP/tls/ca.pem
export KUMQUAT_CERT=$KQ_TMP/tls/admin.pem KUMQUAT_KEY=$KQ_TMP/tls/admin-key.pem
for i in $(seq 120); do
	"$KUMQUAT" registrar show "$GID" --json >reg.json 2>/dev/null && jq -e '.activated > 0 and .payload_key_at != null' reg.json >/dev/null && break
	[ "$(V domstate $DOM 2>/dev/null)" = running ] || fail "$DOM stopped: $(console | tail -20)"
	[ "$i" = 120 ] && { console | tail -30 >&2; tail -5 registrar.log >&2; fail "the guest agent did not enrol in 120 s"; }
	sleep 1
done
echo "   enrolled after $((SECONDS - T0)) s: $(jq -c '{id, kind, vm_uuid, host_id}' reg.json)"
jq -e --arg vm "$VM" --arg h "$HOST_ID" '.kind == "guest" and .vm_uuid == $vm and .host_id == $h' reg.json >/dev/null ||
	fail "the registrar's record of the guest: $(cat reg.json)"
grep -q "KQ-GUEST: IMA policy loaded" console.log || fail "the VM did not load its IMA policy: $(console | grep KQ-GUEST)"
echo "   $(console | grep 'KQ-GUEST: network up')"

# ---- the verifier ----
step "verifier: host and guest with deep quotes"
verifier_conf >verifier.conf
cat >>verifier.conf <<EOC
[attest]
interval = 2
timeout_ms = 30000
retries = 2
EOC
"$VERIFIER" --config verifier.conf >verifier.log 2>&1 &
KQ_PIDS+=($!)
VER_PORT=$(wait_listening verifier.log)
export KUMQUAT_VERIFIER_URL=https://127.0.0.1:$VER_PORT
export KUMQUAT_CA=$KQ_TMP/tls/ca.pem KUMQUAT_CERT=$KQ_TMP/tls/admin.pem KUMQUAT_KEY=$KQ_TMP/tls/admin-key.pem
declare -A NAME=([$HOST_ID]=host [$GID]=guest)
. "$KQ_SOURCE/tests/integration/verifier-lib.sh"

vm_ima_policy console.log img/files.sha256 >guest-ima.json ||
	fail "the VM printed no boot_aggregate: $(console | grep KQ-GUEST)"
expect 0 "$KUMQUAT" policy add guest-ima --kind ima --file guest-ima.json
# the host: PCR 15 must stay as it is now (it has no boot log or IMA here)
tflush
P15=$(tpm2_pcrread sha256:15 | sed -n 's/.*15 *: 0x\([0-9A-Fa-f]*\).*/\1/p' | tr A-F a-f)
[ ${#P15} = 64 ] || fail "reading the host's PCR 15"
echo "{\"sha256\": {\"15\": \"$P15\"}}" >host-pcr.json
expect 0 "$KUMQUAT" policy add host-pcr --kind pcr --file host-pcr.json
expect 0 "$KUMQUAT" add "$HOST_ID" --address "127.0.0.1:$AGENT_PORT" --interval 2 --pcr-policy host-pcr
expect 0 "$KUMQUAT" add "$GID" --address "127.0.0.1:$GPORT" --host "$HOST_ID" --interval 2 --ima-policy guest-ima
wait_state "$HOST_ID" attesting 60
wait_state "$GID" attesting 60
passing "$HOST_ID" "$GID"
status "$GID"
jq -e --arg h "$HOST_ID" --arg vm "$VM" '.kind == "guest" and .host_id == $h and .vm_uuid == $vm and .ima_offset > 10' \
	st.json >/dev/null || fail "the guest's status: $(cat st.json)"
echo "   guest: $(jq -r '"\(.state), \(.passes) passes, IMA at entry \(.ima_offset)"' st.json)"
grep -q "TPM quote for .* leaves\|TPM quote for .* leaf" host.log || fail "no deep quote in the host agent's log: $(tail -5 host.log)"
expect 0 "$KUMQUAT" status "$HOST_ID"
grep -q "^  $GID .*attesting" last.out || fail "kumquat status does not show the guest under its host: $(cat last.out)"
sed 's/^/   /' last.out

# ---- a binary outside the allowlist runs in the VM: the guest fails, not the host ----
step "the VM runs a binary outside its allowlist"
guest run-unlisted
fails_with ima not_in_allowlist "$GID"
jq -e '[.reasons[] | select(.message | test("/tmp/unlisted"))] | length > 0' st.json >/dev/null ||
	fail "the reason does not name /tmp/unlisted: $(jq -c .reasons st.json)"
passing "$HOST_ID"

# allowlisted under a new policy and resumed: the guest passes again
UNLISTED=$(dpkg-deb --fsys-tarfile "$(ls "$CACHE"/busybox-static_*.deb | tail -1)" | tar -xO ./bin/busybox |
	{ cat; echo; } | sha256sum | cut -d' ' -f1)
jq --arg d "$UNLISTED" '.digests["/tmp/unlisted"] = [$d]' guest-ima.json >guest-ima-2.json
expect 0 "$KUMQUAT" policy add guest-ima-2 --kind ima --file guest-ima-2.json
expect 0 "$KUMQUAT" update "$GID" --ima-policy guest-ima-2 --resume
wait_state "$GID" attesting 30
passing "$GID"

# ---- the host's PCR 15 extended: the host fails, and its guest with it ----
step "the host's PCR 15 is extended outside its policy"
tflush
tpm2_pcrextend 15:sha256=$(printf '%064x' 1) || fail "extending the host's PCR 15"
fails_with pcr pcr_mismatch "$HOST_ID"
fails_with host host_failed "$GID"

step "stop the VM"
guest poweroff
for i in $(seq 100); do [ "$(V domstate $DOM 2>/dev/null)" = "shut off" ] && break; sleep 0.2; done
[ "$(V domstate $DOM)" = "shut off" ] || V destroy $DOM >/dev/null 2>&1 || true
expect 0 V undefine $DOM --tpm
step "done: a real VM ($ACCEL) and its host attested with deep quotes; the guest's and the host's tampering each caught on its layer"

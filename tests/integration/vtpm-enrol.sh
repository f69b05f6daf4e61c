#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# A VM's vTPM certified by its host's TPM, end to end on 127.0.0.1: swtpm as
# the host's TPM with an enrolled host agent serving its local vTPM socket;
# the VM reported by the vTPM manager's libvirt hook; Debian's unmodified
# swtpm_setup with kumquat's cert tool creates the vTPM state; its EK
# certificate verifies against the host's vTPM-CA certificate and names the
# VM; swtpm runs the vTPM and the guest agent enrols through it. Refused, with
# their reasons: a vTPM certificate from another CA, a host not enrolled at
# this registrar, a guest claiming another VM, a revoked host, a VM the host
# was never told about, and certificate requests from a non-root user.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/hypervisor-lib.sh"
need swtpm swtpm_setup tpm2_nvread tpm2_getcap openssl setpriv
: "${KQ_BUILD:?}" "${KQ_TESTDATA:?}"
REG=$KQ_BUILD/registrar/kumquat-registrar
AGENT=$KQ_BUILD/host-agent/kumquat-host-agent
GUEST=$KQ_BUILD/guest-agent/kumquat-guest-agent
VMGR=$KQ_BUILD/vtpm-mgr/kumquat-vtpm-mgr
[ -x "$VMGR" ] || skip "kumquat-vtpm-mgr was not built"
cd "$KQ_TMP"

step() { echo "== $*"; }
VM=7c9d9a4e-1111-4000-8000-000000000001
VM2=7c9d9a4e-2222-4000-8000-000000000002

# ---- the host: its TPM, the registrar, the host agent with its local socket ----
provision_swtpm "$KQ_TMP/host"
start_swtpm "$KQ_TMP/host/state"
HOST_TCTI=$KQ_TCTI
mkdir -p ek-ca tls
cp host/localca/issuercert.pem host/localca/swtpm-localca-rootca-cert.pem ek-ca/
expect 0 "$KUMQUAT" ca init --dir tls
expect 0 "$KUMQUAT" ca issue --dir tls --name registrar --server
expect 0 "$KUMQUAT" ca issue --dir tls --name admin --client
export KUMQUAT_CA=$KQ_TMP/tls/ca.pem KUMQUAT_CERT=$KQ_TMP/tls/admin.pem KUMQUAT_KEY=$KQ_TMP/tls/admin-key.pem

start_named_registrar() { # NAME: a registrar with its own database; sets URL_<NAME>
	cat >"$1.conf" <<EOC
[server]
port = 0
cert = $KQ_TMP/tls/registrar.pem
key = $KQ_TMP/tls/registrar-key.pem
client_ca = $KQ_TMP/tls/ca.pem
[registrar]
database = $KQ_TMP/$1.db
ek_ca_dir = $KQ_TMP/ek-ca
EOC
	"$REG" --config "$1.conf" >"$1.log" 2>&1 &
	KQ_PIDS+=($!)
	eval "URL_$1=https://127.0.0.1:$(wait_listening "$1.log")"
}
start_named_registrar reg
export KUMQUAT_REGISTRAR_URL=$URL_reg

start_host_agent() { # NAME TCTI REGISTRAR_URL: sets PID_<NAME>; socket NAME.sock
	cat >"$1.conf" <<EOC
[agent]
state_dir = $KQ_TMP/$1-state
[tpm]
tcti = $2
[registrar]
url = $3
ca = $KQ_TMP/tls/ca.pem
[vtpm]
socket = $KQ_TMP/$1.sock
EOC
	"$AGENT" --config "$1.conf" >"$1.log" 2>&1 &
	eval "PID_$1=$!"
	KQ_PIDS+=($!)
	for i in $(seq 100); do
		[ -S "$1.sock" ] && grep -q "vTPM socket" "$1.log" && return 0
		kill -0 "$(eval echo \$PID_$1)" 2>/dev/null || fail "host agent $1 exited: $(tail -3 "$1.log")"
		sleep 0.1
	done
	fail "host agent $1 did not open its socket: $(tail -3 "$1.log")"
}
tflush
start_host_agent host "$HOST_TCTI" "$URL_reg"
HOST_ID=$(cat host-state/id)
[ -f host-state/vtpm-ca.pem ] || fail "no vTPM-CA certificate"
openssl x509 -in host-state/vtpm-ca.pem -noout -text | grep -q "CA:TRUE" || fail "the vTPM-CA certificate is no CA"

# ---- the vTPM manager: the VM as libvirt's hook reports it ----
vtpm_mgr_setup
domain_xml vm1 $VM | "$VMGR" --config vmgr.conf hook vm1 prepare begin - || fail "the hook failed"
grep -q "VM $VM (vm1) is" host.log || fail "the host agent did not learn of the VM: $(tail -3 host.log)"

# ---- swtpm_setup (Debian's) with kumquat's cert tool ----
step "swtpm_setup with the kumquat cert tool"
# vtpm_mgr_setup's cert tool, with platform certificate options
printf -- '--platform-manufacturer Debian\n--platform-model QEMU\n--platform-version 7.2\n' >certtool.options
mkvtpm() { # DIR NAME:UUID -> swtpm_setup's exit status
	mkdir -p "$1"
	swtpm_setup --tpm2 --tpmstate "$1" --createek --create-ek-cert --create-platform-cert --lock-nvram \
		--config swtpm_setup.conf --vmid "$2" --overwrite >"$1.log" 2>&1
}
mkvtpm vtpm1 vm1:$VM || fail "swtpm_setup: $(tail -5 vtpm1.log)"
grep -q "issued a ek certificate for VM $VM" host.log || fail "no EK certificate issued: $(tail -3 host.log)"
grep -q "issued a platform certificate for VM $VM" host.log || fail "no platform certificate issued"

# the vTPM, running: its EK certificate from NV
start_swtpm "$KQ_TMP/vtpm1"
VTPM_TCTI=$KQ_TCTI
tflush
tpm2_nvread 0x01c00002 -o ek.der >/dev/null 2>&1 || fail "no RSA EK certificate in the vTPM's NV"
tflush
openssl x509 -inform DER -in ek.der -out ek.pem 2>/dev/null || fail "the EK certificate is not DER"
# (NV may hold padding after the DER)
openssl verify -CAfile host-state/vtpm-ca.pem ek.pem >verify.out 2>&1 || fail "openssl verify: $(cat verify.out)"
openssl x509 -in ek.pem -noout -text >ek.txt
grep -q "URI:urn:uuid:$VM" ek.txt || fail "the EK certificate does not name the VM: $(grep -A3 'Alternative' ek.txt)"
grep -q "URI:urn:kumquat:host:$HOST_ID" ek.txt || fail "the EK certificate does not name the host"
grep -q "2.23.133.8.1" ek.txt || fail "no TCG EK certificate EKU"
# the key in it is the vTPM's EK
tpm2_readpublic -c 0x81010001 -f pem -o vtpm-ek.pem >/dev/null 2>&1 || fail "no EK at 0x81010001 in the vTPM"
tflush
[ "$(openssl pkey -pubin -in vtpm-ek.pem -outform DER | sha256sum)" = \
  "$(openssl x509 -in ek.pem -pubkey -noout | openssl pkey -pubin -outform DER | sha256sum)" ] ||
	fail "the certificate is for another key than the vTPM's EK"
if "$VMGR" inspect --help >/dev/null 2>&1; then
	kill "$SWTPM_PID"; wait "$SWTPM_PID" 2>/dev/null || true
	expect 0 "$VMGR" inspect "$KQ_TMP/vtpm1" --expect-cert ek.der
	start_swtpm "$KQ_TMP/vtpm1"
	VTPM_TCTI=$KQ_TCTI
fi

# ---- the guest agent enrols through its vTPM ----
step "guest enrolment"
guest_conf() { # NAME TCTI VM-UUID REGISTRAR-URL
	cat >"$1.conf" <<EOC
[agent]
state_dir = $KQ_TMP/$1-state
vm_uuid = $3
[tpm]
tcti = $2
[registrar]
url = $4
ca = $KQ_TMP/tls/ca.pem
EOC
}
guest_conf guest1 "$VTPM_TCTI" $VM "$URL_reg"
tflush
"$GUEST" --config guest1.conf >guest1.log 2>&1 || fail "guest enrolment: $(tail -3 guest1.log)"
GUEST_ID=$(cat guest1-state/id)
expect 0 "$KUMQUAT" registrar show "$GUEST_ID" --json
jq -e --arg vm $VM --arg host "$HOST_ID" '.kind == "guest" and .vm_uuid == $vm and .host_id == $host' last.out \
	>/dev/null || fail "registrar record: $(cat last.out)"

# a guest claiming another VM than its certificate names
step "refusals"
guest_conf liar "$VTPM_TCTI" $VM2 "$URL_reg"
tflush
expect 1 "$GUEST" --config liar.conf
grep -q "vm_uuid_mismatch" last.err || fail "claiming another VM: $(cat last.err)"

# a vTPM whose EK certificate another CA signed (swtpm's own local CA)
kill "$SWTPM_PID"; wait "$SWTPM_PID" 2>/dev/null || true
provision_swtpm "$KQ_TMP/foreign"
start_swtpm "$KQ_TMP/foreign/state"
guest_conf foreign "$KQ_TCTI" $VM "$URL_reg"
tflush
expect 1 "$GUEST" --config foreign.conf
grep -q "ek_cert_untrusted" last.err || fail "a foreign vTPM certificate: $(cat last.err)"
kill "$SWTPM_PID"; wait "$SWTPM_PID" 2>/dev/null || true

# a host enrolled elsewhere: its vTPM's guest is unknown here
provision_swtpm "$KQ_TMP/host2"
start_swtpm "$KQ_TMP/host2/state"
cp host2/localca/issuercert.pem ek-ca/host2-issuer.pem
cp host2/localca/swtpm-localca-rootca-cert.pem ek-ca/host2-root.pem
start_named_registrar other
tflush
start_host_agent host2 "$KQ_TCTI" "$URL_other"
cat >vmgr2.conf <<EOC
[vtpm-mgr]
database = $KQ_TMP/vmgr2.db
[host-agent]
socket = $KQ_TMP/host2.sock
EOC
domain_xml vm2 $VM2 | "$VMGR" --config vmgr2.conf hook vm2 prepare begin - || fail "the hook failed"
echo "socket = $KQ_TMP/host2.sock" >certtool.conf
mkvtpm vtpm2 vm2:$VM2 || fail "swtpm_setup on host 2: $(tail -5 vtpm2.log)"
echo "socket = $KQ_TMP/host.sock" >certtool.conf
start_swtpm "$KQ_TMP/vtpm2"
guest_conf guest2 "$KQ_TCTI" $VM2 "$URL_reg"
tflush
expect 1 "$GUEST" --config guest2.conf
grep -q "unknown_host" last.err || fail "a host enrolled elsewhere: $(cat last.err)"
kill "$SWTPM_PID"; wait "$SWTPM_PID" 2>/dev/null || true

# a VM the host agent was never told about
if mkvtpm vtpm3 vm3:7c9d9a4e-3333-4000-8000-000000000003; then fail "a certificate for an unknown VM"; fi
grep -q "unknown_vm" vtpm3.log || fail "unknown VM: $(tail -5 vtpm3.log)"

# certificate requests from a non-root user: the socket is root's (0600), and
# even with its mode opened the host agent checks the peer's uid
[ "$(stat -c %a host.sock)" = 600 ] || fail "the socket is not 0600"
chmod 755 "$KQ_TMP"
mkdir -p nobody && chmod 777 nobody
setpriv --reuid=nobody --regid=nogroup --clear-groups "$VMGR" cert-tool --type ek --ek 00 --dir nobody \
	--vmid vm1:$VM --tpm2 --socket "$KQ_TMP/host.sock" >nobody.out 2>&1 && fail "a non-root user got a certificate"
chmod 666 host.sock
setpriv --reuid=nobody --regid=nogroup --clear-groups "$VMGR" cert-tool --type ek --ek 00 --dir nobody \
	--vmid vm1:$VM --tpm2 --socket "$KQ_TMP/host.sock" >nobody.out 2>&1 && fail "a non-root user got a certificate"
grep -q "forbidden" nobody.out || fail "non-root: $(cat nobody.out)"
grep -q "refused a request from uid" host.log || fail "the refusal was not logged"
chmod 600 host.sock
[ ! -e nobody/ek.cert ] || fail "a certificate was written for a non-root user"

# a revoked host vouches for no new guest
expect 0 "$KUMQUAT" registrar revoke "$HOST_ID"
domain_xml vm4 7c9d9a4e-4444-4000-8000-000000000004 | "$VMGR" --config vmgr.conf hook vm4 prepare begin - ||
	fail "the hook failed"
mkvtpm vtpm4 vm4:7c9d9a4e-4444-4000-8000-000000000004 || fail "swtpm_setup vm4: $(tail -5 vtpm4.log)"
start_swtpm "$KQ_TMP/vtpm4"
guest_conf guest4 "$KQ_TCTI" 7c9d9a4e-4444-4000-8000-000000000004 "$URL_reg"
tflush
expect 1 "$GUEST" --config guest4.conf
grep -q "host_revoked" last.err || fail "a revoked host: $(cat last.err)"
# and its record, which keeps its TPM out, stays
expect 1 "$KUMQUAT" registrar delete "$HOST_ID"
grep -q "revoked" last.err || fail "deleting a revoked host: $(cat last.err)"
expect 0 "$KUMQUAT" registrar show "$HOST_ID"
echo "vTPM: certified by the host TPM, guest enrolled, refusals with reasons"
